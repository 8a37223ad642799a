"""`edgetran model ...`: parameter counts, export, weight transfer and MLM pre-training.

FILE arguments take a model dictionary (JSON, built with fresh weights from ``--seed``)
or a checkpoint (``.pt``, written by ``model pretrain`` or ``model transfer``). torch is
imported only by the commands that build models, so the rest of the CLI starts fast and
``model params`` on a model dictionary needs no torch at all.

Domain errors become ``typer.BadParameter`` (one line on stderr, exit 2); a format whose
packages are not installed exits 2 with the ``pip install`` line that adds them.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from contextlib import contextmanager, nullcontext
from enum import Enum
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.console import Console
from rich.table import Table

from codesign.cli import check_output, emit_json, write_text_atomically

model_app = typer.Typer(help="Transformer models: parameter counts, export, weight transfer, MLM pre-training.", no_args_is_help=True)


class Format(str, Enum):
    """Export formats."""

    onnx = "onnx"
    openvino = "openvino"
    tflite = "tflite"


class Mode(str, Enum):
    """Weight-transfer modes (EdgeTran Sec. III-A2)."""

    ot = "ot"
    rp = "rp"


class Task(str, Enum):
    """Task heads."""

    classify = "classify"
    mlm = "mlm"


@contextmanager
def model_errors() -> Iterator[None]:
    """Turn the model room's input errors into one-line usage errors (exit 2)."""
    from codesign.architecture import ArchitectureError

    try:
        yield
    except ArchitectureError as error:
        raise typer.BadParameter(str(error)) from None
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        # CheckpointError, TransferError, TaskError, ExportError, FormatUnavailable, bad sizes
        raise typer.BadParameter(" ".join(str(error).split())) from None


def _read_model_dict(path: str):
    from codesign.architecture import Architecture
    from codesign.models.files import read_model_dict

    return Architecture.from_dict(read_model_dict(path))


def _config(vocab_size: int, max_positions: int):
    from codesign.models.config import ModelConfig

    return ModelConfig(vocab_size=vocab_size, max_positions=max_positions)


VOCAB_OPTION = typer.Option(30522, "--vocab-size", min=1, help="Vocabulary of a model dictionary (BERT: 30,522).")
POSITIONS_OPTION = typer.Option(512, "--max-positions", min=1, help="Positions of a model dictionary (BERT: 512).")
SEED_OPTION = typer.Option(0, "--seed", help="Seed of fresh weights (and of every other random step).")


@model_app.command("params")
def params(
    file: str = typer.Argument(..., help="Model dictionary (JSON) or checkpoint (.pt)."),
    labels: int = typer.Option(2, "--labels", min=1, help="Labels of the classification head (reported separately)."),
    vocab_size: int = VOCAB_OPTION,
    max_positions: int = POSITIONS_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Parameters of a model (embeddings + layers + pooler, as BERT counts them), per layer and per head."""
    from codesign.models.files import is_checkpoint
    from codesign.models.params import parameter_report

    with model_errors():
        if is_checkpoint(file):
            from codesign.models.checkpoint import load_checkpoint

            model, _ = load_checkpoint(file)
            report = parameter_report(model.architecture, model.config, getattr(model, "num_labels", labels))
        else:
            report = parameter_report(_read_model_dict(file), _config(vocab_size, max_positions), labels)
    if as_json:
        emit_json(report)
        return
    table = Table(title=f"{report['parameters']:,} parameters (embeddings {report['embeddings']:,}, pooler {report['pooler']:,})")
    for column in ("layer", "hidden", "heads", "attention", "feed-forward", "norms", "projection", "total"):
        table.add_column(column, justify="right")
    for row in report["per_layer"]:
        table.add_row(
            str(row["layer"]),
            str(row["hidden"]),
            " ".join(row["heads"]),
            f"{row['attention']:,}",
            f"{row['feed_forward']:,}",
            f"{row['layer_norms']:,}",
            f"{row['projection']:,}",
            f"{row['total']:,}",
        )
    Console().print(table)
    typer.echo(f"task heads: MLM {report['heads']['mlm']:,}, classifier ({labels} labels) {report['heads']['classify']:,}")


@model_app.command("export")
def export(
    file: str = typer.Argument(..., help="Model dictionary (JSON) or checkpoint (.pt)."),
    fmt: Format = typer.Option(..., "--format", "-f", help="onnx, openvino or tflite."),
    seq_len: int = typer.Option(128, "--seq-len", min=1, help="Sequence length (tokens) the model takes."),
    batch: int = typer.Option(1, "--batch", min=1, help="Batch size (ONNX/OpenVINO take any; TFLite exactly this)."),
    out: Path = typer.Option(..., "--out", help="Folder for <sha256>.<ext> and <sha256>.json (created if missing)."),
    task: Task = typer.Option(Task.classify, "--task", help="Head of a model dictionary (a checkpoint keeps its own)."),
    labels: int = typer.Option(2, "--labels", min=1, help="Labels of a model dictionary's classification head."),
    vocab_size: int = VOCAB_OPTION,
    max_positions: int = POSITIONS_OPTION,
    seed: int = SEED_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Export to ONNX / OpenVINO IR / TFLite, check logits against torch, store sha256-named with a sidecar."""
    check_output(out, directory=True)
    from codesign.export.formats import FormatUnavailable, require_format

    try:
        require_format(fmt.value)
    except FormatUnavailable as error:
        raise typer.BadParameter(str(error)) from None
    from codesign.export.exporter import export_model
    from codesign.models.checkpoint import load_model_source

    from codesign.export.cache import cached_sidecar, export_key, remember_export

    source = Path(file)
    key = None
    if source.is_file():  # cached by content: the same source and settings give the same artifact
        key = export_key(source_sha256=hashlib.sha256(source.read_bytes()).hexdigest(), fmt=fmt.value, seq=seq_len, batch=batch,
                         task=task.value, labels=labels, vocab=vocab_size, positions=max_positions, seed=seed)
    cached = cached_sidecar(out, key) if key is not None and out.is_dir() else None
    if cached is not None:
        sidecar = json.loads(cached.read_text())
        result = {"path": str(cached.parent / sidecar["files"][0]), "sidecar": str(cached), **sidecar, "cached": True}
    else:
        with model_errors(), Console(stderr=True).status(f"exporting {source.name} to {fmt.value} (build, export, parity check)", spinner="dots") \
                if not as_json and sys.stderr.isatty() else nullcontext():
            started = time.perf_counter()
            model, _ = load_model_source(file, task.value, labels, _config(vocab_size, max_positions), seed)
            result = export_model(model, fmt.value, seq_len, batch, out, seed)
            result["cached"] = False
            result["wall_seconds"] = time.perf_counter() - started
        if key is not None:
            remember_export(out, key, result["sidecar"])
    if as_json:
        emit_json(result)
        return
    how = "cached: an earlier export of the same content and settings" if result["cached"] else f"export {result['export_seconds']:.1f} s"
    typer.echo(
        f"{result['format']}: {result['path']} (sha256 {result['sha256'][:12]}..., {how}, "
        f"max |logit - torch| {result['parity']['max_abs_diff']:.2e})"
    )


@model_app.command("transfer")
def transfer_command(
    parent: str = typer.Argument(..., help="Trained parent: checkpoint (.pt), or a model dictionary built from --seed."),
    child: str = typer.Argument(..., help="Child model dictionary (JSON)."),
    mode: Mode = typer.Option(..., "--mode", help="ot (ordered transfer) or rp (random projection)."),
    out: Path = typer.Option(..., "--out", help="Folder for the child checkpoint and the full report (created if missing)."),
    name: str = typer.Option("child", "--name", help="File stem: <name>.pt and <name>.transfer.json."),
    seed: int = SEED_OPTION,
    vocab_size: int = VOCAB_OPTION,
    max_positions: int = POSITIONS_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print JSON (the summary; tensor by tensor in the report file)."),
) -> None:
    """Transfer a parent's weights into a neighbouring child (direct copy, OT or RP; new blocks fresh)."""
    check_output(out, directory=True)
    from codesign.models.checkpoint import load_model_source, save_checkpoint
    from codesign.transfer import transfer

    with model_errors():
        parent_model, _ = load_model_source(parent, "mlm", 2, _config(vocab_size, max_positions), seed)
        child_arch = _read_model_dict(child)
        child_model, report = transfer(parent_model, child_arch, mode.value, seed)
        out.mkdir(parents=True, exist_ok=True)
        full = report.to_dict()
        checkpoint = save_checkpoint(child_model, out / f"{name}.pt", {"transfer": {k: v for k, v in full.items() if k != "tensors"}, "parent": str(parent)})
        report_path = out / f"{name}.transfer.json"
        write_text_atomically(report_path, json.dumps(full, indent=2) + "\n")
    summary = {"checkpoint": str(checkpoint), "report": str(report_path), **{k: v for k, v in full.items() if k != "tensors"}}
    if as_json:
        emit_json(summary)
        return
    table = Table(title=f"{mode.value.upper()} transfer: {full['transferred_fraction']:.1%} of the child's parameters inherited")
    for column in ("layer", "head", "child head", "from parent head", "how"):
        table.add_column(column)
    for row in full["heads"]:
        source = f"{row['from']['head']} ({row['from']['name']})" if row["from"] else "-"
        table.add_row(str(row["layer"]), str(row["head"]), row["child"], source, row["how"])
    Console().print(table)
    counts = ", ".join(f"{k} {v:,}" for k, v in full["parameters"].items())
    typer.echo(f"parameters: {counts}")
    if full["unused_parent_parts"]:
        typer.echo(f"not used from the parent: {', '.join(full['unused_parent_parts'])}")
    typer.echo(f"wrote {checkpoint} and {report_path}")


@model_app.command("pretrain")
def pretrain(
    file: str = typer.Argument(..., help="Model dictionary (JSON, MLM head, bundled vocabulary) or MLM checkpoint (.pt)."),
    steps: int = typer.Option(200, "--steps", min=0, help="Most training steps."),
    seq_len: int = typer.Option(32, "--seq-len", min=3, help="Tokens per corpus window."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Windows per step."),
    learning_rate: float = typer.Option(1e-3, "--lr", min=0.0, help="Peak learning rate (AdamW)."),
    target_loss: Optional[float] = typer.Option(None, "--target-loss", help="Stop at the first evaluation at or below this loss."),
    corpus: Optional[Path] = typer.Option(None, "--corpus", help="Folder of .txt files (default: the bundled corpus)."),
    out: Path = typer.Option(..., "--out", help="Folder for the trained checkpoint (created if missing)."),
    name: str = typer.Option("model", "--name", help="File stem of the checkpoint: <name>.pt."),
    max_positions: int = POSITIONS_OPTION,
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="torch CPU threads (default: torch's choice)."),
    seed: int = SEED_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Pre-train with masked language modelling on the bundled corpus (seeded); report the loss curve."""
    check_output(out, directory=True)
    from codesign.corpus.text import corpus_texts
    from codesign.corpus.tokenizer import bundled_tokenizer
    from codesign.models.checkpoint import load_model_source, save_checkpoint
    from codesign.models.pretrain import TrainSettings, corpus_mlm_data, train_mlm

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    with model_errors():
        tokenizer = bundled_tokenizer()
        model, meta = load_model_source(file, "mlm", 2, _config(tokenizer.vocab_size, max_positions), seed)
        if model.task != "mlm":
            raise ValueError(f"{file}: a {model.task} checkpoint; pre-training needs an MLM head")
        if model.config.vocab_size != tokenizer.vocab_size:
            raise ValueError(
                f"{file}: vocabulary of {model.config.vocab_size} tokens; the bundled tokenizer has {tokenizer.vocab_size}"
            )
        if seq_len > model.config.max_positions:
            raise ValueError(f"--seq-len {seq_len} exceeds the model's {model.config.max_positions} positions")
        data = corpus_mlm_data(seq_len, tokenizer, corpus_texts(corpus) if corpus is not None else None)
        settings = TrainSettings(batch_size=batch_size, learning_rate=learning_rate)
        result = train_mlm(model, data, steps, seed, settings, target_loss)
        out.mkdir(parents=True, exist_ok=True)
        record = {"steps": result.steps, "final_eval_loss": result.final_eval_loss, "seed": seed, "seq_len": seq_len, "from": str(file)}
        checkpoint = save_checkpoint(model, out / f"{name}.pt", {**meta, "pretrain": record})
    summary = {"checkpoint": str(checkpoint), **result.to_dict(), "seed": seed}
    if as_json:
        emit_json(summary)
        return
    reached = "" if target_loss is None else (
        f"; target {target_loss:.4f} reached at step {result.steps_to_target}" if result.steps_to_target is not None else f"; target {target_loss:.4f} not reached"
    )
    typer.echo(f"{result.steps} steps, pre-training loss {result.eval_curve[0][1]:.4f} -> {result.final_eval_loss:.4f}{reached}")
    typer.echo(f"wrote {checkpoint}")
