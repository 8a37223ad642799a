"""`edgetran space ...` and `edgetran published ...`: the design space and published data.

Domain errors become ``typer.BadParameter`` here; the `edgetran` entry point prints
them as one line and exits with code 2.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Any, Iterator, Optional

import typer
from rich.console import Console
from rich.table import Table

space_app = typer.Typer(help="The FlexiBERT 2.0 design space: counts, sampling, embeddings, validation.", no_args_is_help=True)
published_app = typer.Typer(help="The authors' published measurements and GLUE scores.", no_args_is_help=True)

TABLE_ROWS_SHOWN = 40


class SamplingMethod(str, Enum):
    """Sampling methods of Sec. III-B1."""

    sobol = "sobol"
    lhs = "lhs"
    halton = "halton"
    hammersly = "hammersly"
    random = "random"


@contextmanager
def input_errors() -> Iterator[None]:
    """Turn the codesign room's input errors into one-line usage errors (exit 2)."""
    from codesign.architecture import ArchitectureError
    from codesign.design_space import DesignSpaceError
    from codesign.embedding import EmbeddingError
    from codesign.published import PublishedDataError
    from codesign.sampling import SamplingError

    try:
        yield
    except (ArchitectureError, DesignSpaceError, EmbeddingError, PublishedDataError, SamplingError) as error:
        raise typer.BadParameter(str(error)) from None


def read_json_input(source: str) -> Any:
    """Parse JSON from a file path, or from standard input when the path is '-'."""
    try:
        if source == "-":
            return json.load(sys.stdin)
        with open(source, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise typer.BadParameter(f"{source}: file not found") from None
    except IsADirectoryError:
        raise typer.BadParameter(f"{source}: is a directory, expected a JSON file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise typer.BadParameter(f"{source}: not valid JSON ({error})") from None


def write_text_atomically(path: Path, text: str) -> None:
    """Write a file through a temporary sibling and a rename: never a partial file."""
    from codesign.atomic_io import write_text_atomically as write

    check_output(path)
    write(Path(path), text)


def check_output(path: Path, directory: bool = False) -> Path:
    """Refuse (exit 2) an output file (or directory) that cannot be written, before any work is done."""
    from codesign.atomic_io import OutputPathError, check_output_directory, check_output_file

    try:
        return check_output_directory(path) if directory else check_output_file(path)
    except OutputPathError as error:
        raise typer.BadParameter(str(error)) from None


def emit_json(data: Any) -> None:
    """Print JSON to standard output."""
    typer.echo(json.dumps(data, indent=2))


def _space():
    from codesign.design_space import default_space

    return default_space()


@space_app.command("stats")
def stats(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Counts of the design space: operation types, architectures, embedding size."""
    summary = _space().summary()
    if as_json:
        emit_json(summary)
        return
    table = Table(title=f"Design space {summary['name']}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    table.add_row("feed-forward operation types", str(summary["feed_forward_op_types"]))
    table.add_row("multi-head operation types", str(summary["attention_op_types"]))
    table.add_row("architectures", summary["architectures_approx"])
    table.add_row("embedding dimensions", str(summary["embedding_dim"]))
    Console().print(table)
    typer.echo(f"architectures (exact): {summary['architectures']}")


def _architecture_table(archs: list, title: str) -> Table:
    from codesign.diversity import median_heads, model_category

    table = Table(title=title)
    for column in ("#", "layers", "heads per layer", "hidden sizes", "median heads", "category"):
        table.add_column(column)
    for i, arch in enumerate(archs[:TABLE_ROWS_SHOWN]):
        table.add_row(
            str(i),
            str(arch.layers),
            " ".join(map(str, arch.heads_per_layer)),
            " ".join(map(str, arch.hidden)),
            str(median_heads(arch)),
            model_category(arch),
        )
    return table


@space_app.command("sample")
def sample(
    method: SamplingMethod = typer.Option(SamplingMethod.lhs, "--method", "-m", help="Sampling method."),
    n: int = typer.Option(16, "-n", help="Number of distinct architectures.", min=1),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    stratify: bool = typer.Option(True, "--stratify/--no-stratify", help="Half narrow, half wide models (Fig. 5)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Also write the model dictionaries to this JSON file."),
    as_json: bool = typer.Option(False, "--json", help="Print the model dictionaries as JSON."),
) -> None:
    """Sample distinct, valid architectures by a low-discrepancy or random method."""
    from codesign.sampling import sample_architectures

    if out is not None:
        check_output(out)
    with input_errors():
        archs = sample_architectures(method.value, n, seed, _space(), stratify)
    models = [arch.to_dict() for arch in archs]
    if out is not None:
        write_text_atomically(out, json.dumps(models, indent=2) + "\n")
    if as_json:
        emit_json(models)
        return
    Console().print(_architecture_table(archs, f"{n} architectures by {method.value} (seed {seed})"))
    if n > TABLE_ROWS_SHOWN:
        typer.echo(f"... {n - TABLE_ROWS_SHOWN} more; use --json or --out for all of them")


@space_app.command("embed")
def embed_command(
    file: str = typer.Argument(..., help="JSON file with a model dictionary or a list of them ('-': stdin)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (the default output is JSON too)."),
) -> None:
    """The 37-dimensional embedding of a model dictionary (or of each in a list)."""
    from codesign.embedding import embed

    data = read_json_input(file)
    space = _space()
    with input_errors():
        if isinstance(data, list):
            result = [embed(_validated(model, space, f"{file} entry {i}"), space).tolist() for i, model in enumerate(data)]
        else:
            result = embed(_validated(data, space, file), space).tolist()
    typer.echo(json.dumps(result))


def _validated(model: Any, space, where: str):
    from codesign.architecture import ArchitectureError

    try:
        return space.validate(model)
    except ArchitectureError as error:
        raise ArchitectureError("", f"{where}: {error}") from None


@space_app.command("decode")
def decode_command(
    vector: str = typer.Argument(..., help="An embedding as a JSON list, e.g. '[0, 0, 42, 3, ...]', or a JSON file."),
    as_json: bool = typer.Option(False, "--json", help="Print the model dictionary as JSON."),
) -> None:
    """The model dictionary of a 37-dimensional embedding (head dim = hidden // heads)."""
    from codesign.embedding import decode

    text = vector.strip()
    if text.startswith("["):
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise typer.BadParameter(f"embedding is not a JSON list ({error})") from None
    else:
        values = read_json_input(vector)
    with input_errors():
        arch = decode(values, _space())
    if as_json:
        emit_json(arch.to_dict())
        return
    table = Table(title=f"{arch.layers}-layer architecture")
    for column in ("layer", "hidden", "heads", "feed-forward stack"):
        table.add_column(column)
    for j in range(arch.layers):
        heads = ", ".join(head.name for head in arch.heads[j])
        table.add_row(str(j), str(arch.hidden[j]), heads, " > ".join(map(str, arch.feed_forward[j])))
    Console().print(table)


@space_app.command("diversity")
def diversity(
    n: int = typer.Option(256, "-n", help="Samples per method.", min=2),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    methods: str = typer.Option(",".join(m.value for m in SamplingMethod), "--methods", help="Comma-separated methods."),
    stratify: bool = typer.Option(True, "--stratify/--no-stratify", help="Half narrow, half wide models (Fig. 5)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Pairwise-distance quartiles and deep/shallow x wide/narrow counts per sampling method (Figs. 4-5)."""
    from codesign.diversity import CATEGORIES, diversity_report

    chosen = [m.strip() for m in methods.split(",") if m.strip()]
    with input_errors():
        report = diversity_report(n, seed, chosen, _space(), stratify)
    if as_json:
        emit_json(report)
        return
    table = Table(title=f"Diversity of {n} samples per method (seed {seed}); distances on scaled embeddings")
    for column in ("method", "q1", "median", "q3", *(c.replace("_", "\n") for c in CATEGORIES)):
        table.add_column(column, justify="right")
    for method, row in report["methods"].items():
        q = row["distance_quartiles"]
        table.add_row(method, *(f"{v:.3f}" for v in q), *(str(row["categories"][c]) for c in CATEGORIES))
    Console().print(table)
    best = max(report["methods"].items(), key=lambda item: item[1]["distance_quartiles"][0])[0]
    typer.echo(f"highest first quartile of pairwise distances: {best}")


def _validate_entries(data: Any, source: str) -> tuple[int, int]:
    """Validate a model dict, a list of them, or a published dataset; return (models, embeddings checked)."""
    from codesign.architecture import ArchitectureError
    from codesign.embedding import embed
    from codesign.published import parse_stored_embedding

    space = _space()
    if isinstance(data, dict) and data and all(isinstance(v, dict) and "model_dict" in v for v in data.values()):
        entries = [(f"entry {key!r}", value["model_dict"], value.get("embedding")) for key, value in data.items()]
    elif isinstance(data, list):
        entries = []
        for i, item in enumerate(data):
            if isinstance(item, dict) and "model_dict" in item:
                entries.append((f"entry {i}", item["model_dict"], item.get("embedding")))
            else:
                entries.append((f"entry {i}", item, None))
    else:
        entries = [("", data, None)]
    checked = 0
    for label, model, stored in entries:
        where = f"{source} {label}".strip()
        try:
            arch = space.validate(model)
        except ArchitectureError as error:
            raise typer.BadParameter(f"{where}: {error}") from None
        if stored is not None:
            with input_errors():
                expected = parse_stored_embedding(stored, where)
            computed = tuple(embed(arch, space).tolist())
            if computed != expected:
                first = next((i for i, (a, b) in enumerate(zip(computed, expected)) if a != b), min(len(computed), len(expected)))
                raise typer.BadParameter(
                    f"{where}: stored embedding differs from the computed one at e[{first}] "
                    f"(stored {expected[first] if first < len(expected) else 'nothing'}, "
                    f"computed {computed[first] if first < len(computed) else 'nothing'})"
                )
            checked += 1
    return len(entries), checked


@space_app.command("validate")
def validate(
    file: str = typer.Argument(..., help="A model dictionary, a list of them, or a published dataset.json ('-': stdin)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Check architectures against the design space; exit 2 naming the first bad entry and field."""
    models, checked = _validate_entries(read_json_input(file), file)
    if as_json:
        emit_json({"valid": models, "embeddings_checked": checked})
    else:
        extra = f", {checked} stored embeddings match" if checked else ""
        typer.echo(f"{models} valid architecture{'s' if models != 1 else ''}{extra}")


@published_app.command("list")
def published_list(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Devices with published measurements, and the GLUE set."""
    from codesign.published import load_device, load_glue, list_devices

    with input_errors():
        rows = []
        for device in list_devices():
            dataset = load_device(device.name)
            rows.append(
                {
                    "device": device.name,
                    "processor": device.processor,
                    "platform": device.platform,
                    "batch_size": device.batch_size,
                    "architectures": len(dataset.measurements),
                    "max_latency_s": dataset.max_latency_s,
                    "max_energy_j": dataset.max_energy_j,
                    "max_peak_power_w": dataset.max_peak_power_w,
                }
            )
        glue = load_glue()
    if as_json:
        from codesign.protran.measures import units_note

        emit_json({"devices": rows, "glue_architectures": len(glue), "units": units_note("published")})
        return
    table = Table(title="Published ProTran measurements (BSD-3, Tuli & Jha)")
    for column in ("device", "batch", "architectures", "max_values.json latency s/run", "energy J/run", "peak W"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(
            row["device"],
            str(row["batch_size"]),
            str(row["architectures"]),
            f"{row['max_latency_s']:.4g}",
            f"{row['max_energy_j']:.4g}",
            f"{row['max_peak_power_w']:.4g}",
        )
    Console().print(table)
    typer.echo(f"GLUE scores: {len(glue)} fully pre-trained architectures")
    from codesign.protran.measures import PUBLISHED_NOTE

    typer.echo(f"units: {PUBLISHED_NOTE}; the maxima are the authors' normalisation divisors (max_values.json), not the data's")
