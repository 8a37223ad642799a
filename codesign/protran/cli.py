"""`edgetran protran ...`: active-learning campaigns, regressor comparison, prediction, reports.

Devices are ``published:<device>`` (the authors' measurements, e.g.
``published:cpu_rpi_b1_r1``) or a registered live kind: ``rig:<board>`` once the bench
host registered it (the ``edgetran`` command does; the virtual rig's board is
``rig:virtual-rpi4``). ``run`` on a live device measures the architectures the loop
queries as it goes, from a seeded candidate pool sampled from the design space
(:func:`codesign.protran.evaluators.sample_candidate_pool`, stored in the campaign file);
``report`` on a live device reads a campaign file. Without a registration, ``rig:`` exits
with code 2 and one line saying the bench host is not available.

Domain errors become ``typer.BadParameter`` (one line, exit 2); files are written
through a temporary sibling and a rename.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import typer
from rich.console import Console
from rich.table import Table

from codesign.cli import check_output, emit_json, read_json_input

protran_app = typer.Typer(
    help="ProTran: surrogates of latency, energy and peak power; active-learning profiling campaigns.",
    no_args_is_help=True,
)

ALL_REGRESSORS = "lr,gpr,svr,dt,bdt,gbdt,nn"


@contextmanager
def protran_errors() -> Iterator[None]:
    """Turn ProTran's input errors into one-line usage errors (exit 2)."""
    from codesign.architecture import ArchitectureError
    from codesign.embedding import EmbeddingError
    from codesign.protran.campaign_store import CampaignStoreError
    from codesign.protran.evaluators import EvaluatorError
    from codesign.protran.features import FeatureError
    from codesign.protran.loop import LoopError
    from codesign.protran.measures import MeasurementError
    from codesign.protran.surrogates import SurrogateError
    from codesign.published import PublishedDataError
    from codesign.sampling import SamplingError

    try:
        yield
    except (
        ArchitectureError, CampaignStoreError, EmbeddingError, EvaluatorError, FeatureError, LoopError,
        MeasurementError, PublishedDataError, SamplingError, SurrogateError,
    ) as error:
        raise typer.BadParameter(str(error)) from None


def _device_spec(text: str):
    """A parsed ``--device`` value (exit 2 for unknown kinds and unregistered rigs)."""
    from codesign.protran.evaluators import parse_device_spec

    with protran_errors():
        return parse_device_spec(text)


def _published_device(text: str, command: str = "") -> str:
    """The published device name of a ``--device`` value (exit 2 for live devices and unknown devices)."""
    from codesign.published import list_devices

    spec = _device_spec(text)
    if spec.kind != "published":
        raise typer.BadParameter(f"{command or 'this command'} needs published measurements; {spec.text} is a live device")
    known = [d.name for d in list_devices()]
    if spec.name not in known:
        raise typer.BadParameter(f"unknown published device {spec.name!r} (known: {', '.join(known)})")
    return spec.name


def _devices(text: str) -> list[str]:
    """``published:all`` or a comma-separated list of ``published:<device>``."""
    from codesign.published import list_devices

    if text.strip() == "published:all":
        return [d.name for d in list_devices()]
    names = [_published_device(part) for part in text.split(",") if part.strip()]
    if not names:
        raise typer.BadParameter("no device named")
    return names


def _check_choice(value: str, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise typer.BadParameter(f"unknown {what} {value!r} (choose from {', '.join(choices)})")
    return value


def _fmt(value: Optional[float], digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


PRESET_HELP = (
    "paper: the paper's recipe (GBDT on the 37-d embedding, stop at the first fit below the threshold, the authors' "
    "normalisation); ours: GP on compact features, patience 5, running maximum. Explicit options override it."
)
NORMALISATION_HELP = (
    "running-max (the paper's text: divide by the maximum so far; default) or authors (LABELLED OPTION: the authors' "
    "code divided by max_values.json, 2x the first 16 records' maximum, which shrinks MSEs 2.1-7.7x; published only)."
)
RUN_DEFAULTS = {"regressor": "gpr", "features": "workload", "patience": 5, "normalisation": "running-max"}


def _preset_settings(preset: Optional[str], **given: Any) -> dict:
    """Regressor, features, patience and normalisation: explicit options, else the preset's, else the defaults."""
    from codesign.protran.loop import NORMALISATIONS, PRESETS

    if preset is not None and preset not in PRESETS:
        raise typer.BadParameter(f"unknown preset {preset!r} (choose from {', '.join(PRESETS)})")
    base = {**RUN_DEFAULTS, **(PRESETS[preset] if preset else {})}
    out = {key: given[key] if given.get(key) is not None else base[key] for key in RUN_DEFAULTS}
    _check_choice(out["normalisation"], NORMALISATIONS, "normalisation")
    return out


LIVE_INITIAL = 8  # initial batch of a live campaign (every evaluation is an export and a measurement)
LIVE_BUDGET = 12  # evaluations of a live campaign unless --budget says otherwise: ~22 s each on this 2-core host (export ~10-15 s,
# profile ~5 s), so the default campaign takes about 4-5 minutes (20 took 7 min 23 s)


@protran_app.command("run")
def run_command(
    device: str = typer.Option(..., "--device", help="published:<device>, or rig:<board> to measure live on the rig."),
    preset: Optional[str] = typer.Option(None, "--preset", help=PRESET_HELP),
    regressor: Optional[str] = typer.Option(None, "--regressor", help=f"One of {ALL_REGRESSORS} (default gpr, or the preset's)."),
    features: Optional[str] = typer.Option(None, "--features", help="embedding (the paper's), workload (embedding + FLOPs/params/bytes per layer and op type) or compact (op-type totals and shape features, no indices); default workload, or the preset's."),
    normalisation: Optional[str] = typer.Option(None, "--normalisation", help=NORMALISATION_HELP),
    holdout: Optional[float] = typer.Option(None, "--holdout", help="Published pools: share held out (seeded) before the campaign and scored every fit, never queried (default 0.2; live: 0).", min=0.0, max=0.9),
    threshold: float = typer.Option(0.005, "--threshold", help="Validation MSE of every normalised measure to stop at.", min=0.0),
    seed: int = typer.Option(0, "--seed", help="Random seed (initial batch, folds, fits, random queries; live: pool and weights)."),
    initial: Optional[int] = typer.Option(None, "--initial", help=f"LHS samples of the initial batch (default 16; live: {LIVE_INITIAL}).", min=2),
    budget: Optional[int] = typer.Option(None, "--budget", help=f"Most evaluations in all (default: the whole pool; live: {LIVE_BUDGET}).", min=2),
    folds: int = typer.Option(5, "--folds", help="K of the K-fold validation.", min=2),
    patience: Optional[int] = typer.Option(None, "--patience", help="Consecutive fits below the threshold needed to stop (default 5; paper text and --preset paper: 1).", min=1),
    store: Optional[Path] = typer.Option(None, "--store", help="The EdgeTran store (SQLite; the same file `profile` and `campaign run` use) holding the campaign: created, or resumed if it exists."),
    campaign: str = typer.Option("protran", "--campaign", help="Name of the campaign in --store (several campaigns may share one store)."),
    save_model: Optional[Path] = typer.Option(None, "--save-model", help="Write the final surrogates to this JSON file."),
    rig: Optional[Path] = typer.Option(None, "--rig", help="Live: rig.toml of the board (default: the virtual rig)."),
    runs: Optional[int] = typer.Option(None, "--runs", help="Live: timed runs per repeat (default 10; raised when a block is too short).", min=1),
    repeats: Optional[int] = typer.Option(None, "--repeats", help="Live: repeats per architecture (default 2; geometric means).", min=1),
    pool_size: int = typer.Option(64, "--pool-size", help="Live: candidates sampled from the design space (only queried ones are measured).", min=2),
    pool_max_gflop: float = typer.Option(2.0, "--pool-max-gflop", help="Live: keep candidates of at most this many GFLOP/seq at the board's sequence length (0: no cap).", min=0.0),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (no progress bar)."),
) -> None:
    """Run (or resume) an active-learning campaign (Fig. 6): on a published pool, or live on a rig board."""
    from codesign.protran.campaign_store import CampaignStore
    from codesign.protran.evaluators import PublishedPoolEvaluator
    from codesign.protran.features import FEATURE_SETS
    from codesign.protran.loop import LoopConfig, run_campaign
    from codesign.protran.surrogates import REGRESSORS

    spec = _device_spec(device)
    live = spec.kind != "published"
    name = spec.name if live else _published_device(device, "run")
    chosen = _preset_settings(preset, regressor=regressor, features=features, patience=patience, normalisation=normalisation)
    regressor, features, patience = chosen["regressor"], chosen["features"], chosen["patience"]
    normalisation = chosen["normalisation"]
    if live and normalisation == "authors":
        raise typer.BadParameter(f"--normalisation authors divides by the authors' max_values.json; {spec.text} has none")
    if live and holdout:
        raise typer.BadParameter(f"--holdout: a live campaign on {spec.text} cannot score unmeasured architectures; leave it out")
    holdout = 0.0 if live else (0.2 if holdout is None else holdout)
    _check_choice(regressor, tuple(REGRESSORS), "regressor")
    _check_choice(features, FEATURE_SETS, "feature set")
    if threshold <= 0:
        raise typer.BadParameter(f"--threshold must be positive, got {threshold}")
    if save_model is not None:
        check_output(save_model)
    if not live:
        unused = [flag for flag, value in (("--rig", rig), ("--runs", runs), ("--repeats", repeats)) if value is not None]
        if unused:
            raise typer.BadParameter(f"{', '.join(unused)}: only for live devices (rig:<board>), not {spec.text}")
    if rig is not None and not rig.is_file():
        raise typer.BadParameter(f"--rig {rig}: file not found")
    if store is not None and not store.parent.is_dir():
        what = "is not a directory" if store.parent.exists() else "does not exist"
        raise typer.BadParameter(f"--store {store}: {store.parent} {what}")
    if initial is None:
        initial = LIVE_INITIAL if live else 16
    if budget is None and live:
        budget = max(LIVE_BUDGET, initial)
    with protran_errors():
        config = LoopConfig(
            regressor, features, threshold, initial, budget, seed, folds, patience, holdout=holdout, normalisation=normalisation
        )
    if not live:
        with protran_errors():
            evaluator = PublishedPoolEvaluator(name)
            campaign_store = CampaignStore(store, campaign) if store is not None else None
        pool, truth, pool_info = evaluator.pool, evaluator.truth, None
    else:
        from codesign.protran.evaluators import make_evaluator

        phase = _Phase()
        options = {"rig": str(rig) if rig is not None else None, "runs": runs, "repeats": repeats, "seed": seed, "on_phase": phase}
        new_file = store is not None and not store.exists()
        campaign_store = None
        try:
            with protran_errors():
                evaluator = make_evaluator(spec, options)
                campaign_store = CampaignStore(store, campaign) if store is not None else None
                pool, pool_info = _live_pool(evaluator, campaign_store, pool_size, pool_max_gflop, seed)
        except BaseException:
            if campaign_store is not None:
                campaign_store.close()
            if new_file:  # nothing was measured: leave no empty campaign file behind
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{store}{suffix}").unlink(missing_ok=True)
            raise
        truth = None
    from codesign.protran.evaluators import EvaluatorError

    counted = _CountingEvaluator(evaluator)
    try:
        with protran_errors():
            try:
                if as_json:
                    result = run_campaign(counted, pool, config, campaign_store, truth=truth)
                else:
                    result = _run_with_progress(counted, pool, config, campaign_store, truth, phase if live else None)
            except EvaluatorError as error:
                if live and campaign_store is not None:  # every finished measurement is committed: say how to go on
                    stored = len(campaign_store.evaluations())
                    raise EvaluatorError(f"{error}; {stored} evaluation(s) are stored in {store}: the same command resumes") from None
                raise
    finally:
        if campaign_store is not None:
            campaign_store.close()
    if save_model is not None:
        _save_model(save_model, result.surrogates, evaluator, regressor, features, result.maxima, result.samples)
    data = result.to_dict()
    data["evaluations_this_run"] = counted.calls
    if live:
        data["live"] = {"device": spec.text, "pool": pool_info, **_describe(evaluator)}
    if as_json:
        emit_json(data)
        return
    _print_result(result)
    if live:
        where = _describe(evaluator)
        emulated = " (EMULATED: virtual rig)" if where.get("emulated") else ""
        typer.echo(
            f"measured live on {spec.text}{emulated}: {counted.calls} new evaluation(s) this run, "
            f"{result.samples - counted.calls} resumed from the store; pool of {pool_info['candidates']} sampled candidates"
        )


class _Phase:
    """What the live evaluator is doing now (set by its ``on_phase``; shown in the progress bar)."""

    def __init__(self) -> None:
        self.text = ""
        self.listener = None

    def __call__(self, text: str) -> None:
        self.text = text
        if self.listener is not None:
            self.listener(text)


class _CountingEvaluator:
    """Wraps an evaluator, counting calls and telling a listener after each (the loop sees the same device)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.device = inner.device
        self.context = inner.context
        self.calls = 0
        self.listener = None

    def __call__(self, arch):
        if self.listener is not None:
            self.listener("start", None)
        measurement = self.inner(arch)
        self.calls += 1
        if self.listener is not None:
            self.listener("done", measurement)
        return measurement

    def __len__(self) -> int:
        return len(self.inner)

    def __getattr__(self, name: str):
        """Everything else (``source``, ``authors_maxima``, ``describe``) is the wrapped evaluator's."""
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)


def _describe(evaluator) -> dict:
    describe = getattr(evaluator, "describe", None)
    return describe() if callable(describe) else {}


def _live_pool(evaluator, store, size: int, max_gflop: float, seed: int) -> tuple[list, dict]:
    """The candidate pool of a live campaign: sampled and stored in a new campaign file, or read back from it."""
    from codesign.design_space import default_space
    from codesign.protran.campaign_store import CampaignStoreError
    from codesign.protran.evaluators import PoolSpec, architecture_key, sample_candidate_pool

    spec = PoolSpec(size=size, max_gflop=max_gflop or None, seed=seed)
    wanted = {
        **spec.to_dict(),
        "sequence_length": evaluator.context.sequence_length,
        "batch_size": evaluator.context.batch_size,
    }
    stored = None
    if store is not None:
        stored = store.state().get("pool")
        if stored is None and store.config() is not None:
            raise CampaignStoreError(
                f"{store.path}: a campaign of {store.config().get('device')!r} without a sampled pool "
                "(a published-pool campaign); start a live campaign in a new file"
            )
    if stored is not None:
        for key, value in wanted.items():
            if stored.get(key) != value:
                raise CampaignStoreError(f"{store.path}: the candidate pool was sampled with {key}={stored.get(key)!r}, not {value!r}")
        space = default_space()
        pool = [space.validate(model) for model in stored["architectures"]]
        if [architecture_key(a) for a in pool] != stored["keys"]:
            raise CampaignStoreError(f"{store.path}: the stored candidate pool does not match its keys")
        return pool, {**wanted, "candidates": len(pool), "from_store": True}
    pool = sample_candidate_pool(spec, evaluator.context)
    record = {**wanted, "keys": [architecture_key(a) for a in pool], "architectures": [a.to_dict() for a in pool]}
    if store is not None:
        store.set_state("pool", record)
    return pool, {**wanted, "candidates": len(pool), "from_store": False}


def _run_with_progress(evaluator, pool, config, store, truth, phase=None):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from codesign.protran.loop import run_campaign

    open_pool = len(pool) - (int(round(config.holdout * len(pool))) if truth is not None else 0)
    total = min(config.budget or open_pool, open_pool)
    label = f"{evaluator.device} {config.regressor}"
    state = {"mse": "", "done": len(store.evaluations()) if store is not None else 0}
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=False
    ) as bar:
        task = bar.add_task(label, total=total, completed=state["done"])

        def describe(extra: str = "") -> str:
            parts = [label, state["mse"], extra]
            return " | ".join(part for part in parts if part)

        def update(record: dict) -> None:
            state["mse"] = "val MSE " + " ".join(f"{v:.4f}" for v in record["val_mse"].values())
            state["done"] = record["samples"]
            bar.update(task, completed=record["samples"], description=describe())

        def on_evaluation(event: str, measurement) -> None:
            if event == "start":
                bar.update(task, description=describe(f"measuring #{state['done'] + 1}"))
                return
            state["done"] += 1
            bar.update(
                task, completed=state["done"],
                description=describe(f"#{state['done']}: {measurement.latency_s * 1e3:.2f} ms, {measurement.energy_j * 1e3:.2f} mJ, {measurement.peak_power_w:.2f} W"),
            )

        if phase is not None:
            evaluator.listener = on_evaluation
            phase.listener = lambda text: bar.update(task, description=describe(f"#{state['done'] + 1}: {text}"))
        return run_campaign(evaluator, pool, config, store, truth=truth, progress=update)


def _print_result(result) -> None:
    from codesign.protran.measures import MEASURE_SHORT, MEASURES

    config = result.config
    table = Table(
        title=f"{result.device}: {config.regressor} on {config.features} features, {config.normalisation} normalisation"
    )
    columns = ("measure", "val MSE", "val mean", "val R^2", "held MSE", "held mean", "held R^2", "held +-10%")
    for column in columns:
        table.add_column(column, justify="right")
    last = result.history[-1]
    held = result.held_out or {}
    for measure in MEASURES:
        scores = held.get(measure, {})
        table.add_row(
            MEASURE_SHORT[measure],
            _fmt(result.val_mse[measure]),
            _fmt(last["val_mean_predictor_mse"][measure]),
            _fmt(last["val_r2"][measure], 2),
            _fmt(scores.get("mse")),
            _fmt(scores.get("mean_predictor_mse")),
            _fmt(scores.get("r2"), 2),
            "-" if not scores else f"{100 * scores['within_10pct']:.0f}%",
        )
    Console().print(table)
    state = "converged" if result.converged else f"did not converge ({result.stop_reason})"
    typer.echo(f"{result.samples} architectures evaluated; {state} at threshold {config.threshold:g} (patience {config.patience})")
    typer.echo(
        "val: 5-fold validation MSE on the evaluated architectures (the campaign's divisors); mean: the MSE of predicting "
        "the training mean (val: the other folds' mean); R^2 = 1 - MSE / mean (below 0: worse than the mean)."
    )
    if held:
        typer.echo(
            f"held: {held['count']} architectures held out before the campaign (seed {config.seed}), never queried; "
            "MSEs divided by the whole pool's maxima (comparable across campaigns)."
        )
    if result.units and "note" in result.units:
        typer.echo(f"units: {result.units['note']}")


def _save_model(path: Path, surrogates: dict, evaluator, regressor: str, features: str, maxima: dict, samples: int) -> None:
    from codesign.protran.surrogates import save_surrogates

    meta = {
        "device": evaluator.device,
        "regressor": regressor,
        "features": features,
        "sequence_length": evaluator.context.sequence_length,
        "batch_size": evaluator.context.batch_size,
        "maxima": dict(maxima),
        "samples": samples,
        "targets": "measure / maxima[measure]; predictions are multiplied back",
    }
    with protran_errors():
        save_surrogates(path, surrogates, meta)


@protran_app.command("compare")
def compare_command(
    device: str = typer.Option(..., "--device", help="published:<device>."),
    regressors: str = typer.Option(ALL_REGRESSORS, "--regressors", help="Comma-separated regressors."),
    budget: int = typer.Option(32, "--budget", help="Samples of each learning curve (loop run without stopping).", min=2),
    preset: Optional[str] = typer.Option(None, "--preset", help="Curve settings: paper (embedding, first-below stopping, the authors' normalisation) or ours (compact, patience 5, running maximum)."),
    features: Optional[str] = typer.Option(None, "--features", help="Feature set of the learning curves (default workload, or the preset's)."),
    normalisation: Optional[str] = typer.Option(None, "--normalisation", help=NORMALISATION_HELP),
    patience: Optional[int] = typer.Option(None, "--patience", help="Consecutive fits below the threshold that mark a curve's stop (default 5).", min=1),
    threshold: float = typer.Option(0.005, "--threshold", help="Threshold marked on the curves.", min=0.0),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    curves: bool = typer.Option(True, "--curves/--no-curves", help="Also run the loop of each regressor (Fig. 7)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (no progress bar)."),
) -> None:
    """Whole-pool 5-fold error (embedding and the curves' features) with the mean predictor and R^2, calibration, learning curves."""
    from codesign.protran.comparison import compare_regressors, compare_steps
    from codesign.protran.features import FEATURE_SETS
    from codesign.protran.measures import MEASURES, units_note
    from codesign.protran.surrogates import parse_regressors

    name = _published_device(device, "compare")
    chosen_settings = _preset_settings(preset, features=features, patience=patience, normalisation=normalisation)
    features = chosen_settings["features"]
    settings = {"patience": chosen_settings["patience"], "normalisation": chosen_settings["normalisation"]}
    _check_choice(features, FEATURE_SETS, "feature set")
    with protran_errors():
        chosen = parse_regressors(regressors)
        if as_json or not _interactive():
            report = compare_regressors(name, chosen, budget, features, seed, threshold or 1e-12, curves, **settings)
        else:
            report = _compare_with_progress(name, chosen, budget, features, seed, threshold or 1e-12, curves, settings, compare_steps(chosen, features, curves))
    if as_json:
        emit_json(report)
        return
    table = Table(title=f"{name}: 5-fold error over all {report['pool']} published architectures (MSE of max-normalised values)")
    for column in ("regressor", "features", "MSE lat/en/pp", "mean-pred. MSE", "R^2", "+-10%", "1 sigma", "2 sigma", "stop", "held-out MSE @stop"):
        table.add_column(column, justify="right")
    for regressor, entry in report["regressors"].items():
        curve = entry.get("curve", {})
        stop = curve.get("first_below_threshold")
        at_stop = next((p for p in curve.get("points", []) if p["samples"] == stop), None) if stop else None
        if not at_stop and curve.get("points"):
            at_stop = curve["points"][-1]
        for feature_set, h in entry["holdout"].items():
            on_curve = feature_set == features and curves
            table.add_row(
                regressor,
                feature_set,
                " ".join(f"{h['mse'][m]:.4f}" for m in MEASURES),
                " ".join(f"{h['mean_predictor_mse'][m]:.4f}" for m in MEASURES),
                " ".join(f"{h['r2'][m]:.2f}" for m in MEASURES),
                " ".join(f"{100 * h['within_10pct'][m]:.0f}%" for m in MEASURES),
                " ".join(f"{100 * h['coverage'][m]['within_1sigma']:.0f}%" for m in MEASURES),
                " ".join(f"{100 * h['coverage'][m]['within_2sigma']:.0f}%" for m in MEASURES),
                (str(stop) if stop else f"> {budget}") if on_curve else "",
                " ".join(f"{at_stop['held_out_mse'][m]:.4f}" for m in MEASURES) if on_curve and at_stop and at_stop.get("held_out_mse") else "",
            )
    Console().print(table)
    typer.echo(
        f"stop: samples at which {settings['patience']} consecutive fits had every validation MSE below {threshold:g} "
        f"({settings['normalisation']} normalisation); held-out: the fixed 20% split of the curve's campaign, divided by the pool maxima."
    )
    typer.echo(f"units: {units_note('published')['note']}")


def _interactive() -> bool:
    """Whether stderr is a terminal (progress bars only there)."""
    import sys

    return sys.stderr.isatty()


def _compare_with_progress(name, regressors, budget, features, seed, threshold, curves, settings, steps):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from codesign.protran.comparison import compare_regressors

    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
        console=Console(stderr=True), transient=True,
    ) as bar:
        task = bar.add_task(f"{name}: compare", total=steps)
        started = {"count": 0}

        def step(text: str) -> None:
            if started["count"]:
                bar.advance(task)
            started["count"] += 1
            bar.update(task, description=f"{name} {text}")

        report = compare_regressors(name, regressors, budget, features, seed, threshold, curves, progress=step, **settings)
        bar.update(task, completed=steps)
    return report


def _load_architectures(file: str) -> tuple[list, bool]:
    from codesign.design_space import default_space

    data = read_json_input(file)
    single = isinstance(data, dict)
    models = [data] if single else data
    if not isinstance(models, list) or not models:
        raise typer.BadParameter(f"{file}: expected a model dictionary or a non-empty list of them")
    space = default_space()
    archs = []
    for i, model in enumerate(models):
        where = file if single else f"{file} entry {i}"
        try:
            archs.append(space.validate(model))
        except ValueError as error:
            raise typer.BadParameter(f"{where}: {error}") from None
    return archs, single


@protran_app.command("predict")
def predict_command(
    file: str = typer.Argument(..., help="JSON file with a model dictionary or a list of them ('-': stdin)."),
    device: str = typer.Option(..., "--device", help="published:<device>, or rig:<board> with --model."),
    model: Optional[Path] = typer.Option(None, "--model", help="A surrogate file saved by run/predict --save-model."),
    regressor: str = typer.Option("gpr", "--regressor", help="Regressor fitted on all published measurements (without --model)."),
    features: str = typer.Option("workload", "--features", help="Feature set (without --model)."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the fit."),
    save_model: Optional[Path] = typer.Option(None, "--save-model", help="Also save the fitted surrogates (without --model)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Predicted latency, energy and peak power (mean and std) of architectures on a device."""
    import numpy as np

    from codesign.protran.evaluators import PublishedPoolEvaluator, architecture_key
    from codesign.protran.features import FEATURE_SETS, WorkloadContext, featurize
    from codesign.protran.measures import MEASURES
    from codesign.protran.surrogates import REGRESSORS, load_surrogates
    from codesign.protran.surrogates.base import single_threaded_blas

    spec = _device_spec(device)
    if spec.kind != "published" and model is None:
        raise typer.BadParameter(
            f"predict on {spec.text} needs --model (surrogates saved by protran run --device {spec.text} --save-model)"
        )
    name = spec.name if spec.kind != "published" else _published_device(device, "predict")
    archs, _ = _load_architectures(file)
    with protran_errors():
        if model is not None:
            surrogates, meta = load_surrogates(model)
            if meta.get("device") != name:
                raise typer.BadParameter(f"{model}: surrogates of device {meta.get('device')!r}, not {name!r}")
            if set(surrogates) != set(MEASURES):
                raise typer.BadParameter(f"{model}: expected surrogates of {', '.join(MEASURES)}")
            features = str(meta["features"])
            context = WorkloadContext(int(meta["sequence_length"]), int(meta["batch_size"]))
            maxima = np.array([float(meta["maxima"][m]) for m in MEASURES])
            source = {"model": str(model), "regressor": meta.get("regressor"), "samples": meta.get("samples")}
        else:
            from codesign.protran.report import fit_device_surrogates

            _check_choice(regressor, tuple(REGRESSORS), "regressor")
            _check_choice(features, FEATURE_SETS, "feature set")
            evaluator = PublishedPoolEvaluator(name)
            surrogates, maxima = fit_device_surrogates(evaluator, regressor, features, seed)
            context = evaluator.context
            source = {"fitted_on": f"all {len(evaluator)} published measurements", "regressor": regressor}
            if save_model is not None:
                check_output(save_model)
                _save_model(save_model, surrogates, evaluator, regressor, features, dict(zip(MEASURES, maxima.tolist())), len(evaluator))
        X = featurize(archs, features, context)
        with single_threaded_blas():
            predictions = {m: surrogates[m].predict(X) for m in MEASURES}
    rows = []
    for i, arch in enumerate(archs):
        row: dict[str, Any] = {"key": architecture_key(arch)}
        for k, m in enumerate(MEASURES):
            row[m] = {"mean": float(predictions[m].mean[i] * maxima[k]), "std": float(predictions[m].std[i] * maxima[k])}
        rows.append(row)
    from codesign.protran.measures import measure_labels, units_note

    origin = "published" if spec.kind == "published" else "live"
    if as_json:
        emit_json({
            "device": name, "features": features, **source, "origin": origin, "units": units_note(origin),
            "predictions": rows,  # always a list, one entry per architecture (a single model dictionary too)
        })
        return
    labels = measure_labels(origin)
    what = "the authors' published measurements (per evaluation run)" if origin == "published" else "live measurements (per sequence)"
    table = Table(title=f"{name}: predicted mean +- std, a surrogate of {what}")
    for column in ("#", *(labels[m] for m in MEASURES)):
        table.add_column(column, justify="right")
    for i, row in enumerate(rows):
        table.add_row(str(i), *(f"{row[m]['mean']:.4g} +- {row[m]['std']:.2g}" for m in MEASURES))
    Console().print(table)
    if origin == "published":
        typer.echo(f"units: {units_note('published')['note']}")


@protran_app.command("report")
def report_command(
    device: str = typer.Option(..., "--device", help="published:<device>, a comma-separated list, published:all; or rig:<board> with --store."),
    out: Path = typer.Option(..., "--out", help="Directory for the PNGs and summary.md (created if missing)."),
    store: Optional[Path] = typer.Option(None, "--store", help="Live devices: the campaign file of `protran run --device rig:<board> --store`."),
    campaign: str = typer.Option("protran", "--campaign", help="Live devices: the campaign's name in --store."),
    regressor: Optional[str] = typer.Option(None, "--regressor", help="Surrogate of Figs. 8, 13, 14 (default gpr; live: the campaign's)."),
    features: str = typer.Option("workload", "--features", help="Feature set (published devices; live: the campaign's)."),
    curve_regressors: str = typer.Option(ALL_REGRESSORS, "--curve-regressors", help="Regressors of Fig. 7 (published devices)."),
    budget: int = typer.Option(32, "--budget", help="Samples of each learning curve (published devices).", min=2),
    curve_devices: str = typer.Option("first", "--curve-devices", help="Devices with a Fig. 7: first, all, or a list."),
    glue_regressor: str = typer.Option("gbdt", "--glue-regressor", help="Regressor of the GLUE-score surrogate."),
    glue_splits: int = typer.Option(100, "--glue-splits", help="Random 9/4 splits for the GLUE metrics.", min=1),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    threshold: float = typer.Option(0.005, "--threshold", help="Threshold of Fig. 7 (published devices; live: the campaign's).", min=0.0),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Figures 7, 8, 13, 14 (PNG), Table VI and a markdown summary: published devices, or a live campaign file."""
    from codesign.protran.features import FEATURE_SETS
    from codesign.protran.surrogates import REGRESSORS, parse_regressors

    first = device.split(",")[0].strip()
    spec = _device_spec(first) if first != "published:all" else None
    live = spec is not None and spec.kind != "published"
    if regressor is not None:
        _check_choice(regressor, tuple(REGRESSORS), "regressor")
    _check_choice(glue_regressor, tuple(REGRESSORS), "regressor")
    _check_choice(features, FEATURE_SETS, "feature set")
    if live:
        if "," in device:
            raise typer.BadParameter(f"--device {device!r}: a live campaign report takes one device")
        if store is None:
            raise typer.BadParameter(f"a report on {spec.text} needs --store (the campaign file of protran run --device {spec.text} --store)")
        if not store.is_file():
            raise typer.BadParameter(f"--store {store}: campaign file not found")
    elif store is not None:
        raise typer.BadParameter("--store: only for live devices (rig:<board>); published reports need no campaign file")
    else:
        names = _devices(device)
        if curve_devices == "first":
            curve_names = names[:1]
        elif curve_devices == "all":
            curve_names = names
        else:
            curve_names = _devices(curve_devices)
            if not set(curve_names) <= set(names):
                raise typer.BadParameter(f"--curve-devices {curve_devices!r}: every curve device must be one of --device")
    say = (lambda message: None) if as_json else (lambda message: typer.echo(f"report: {message}", err=True))
    from codesign.protran.report import ReportError, check_destination

    try:  # built in a temporary directory beside --out and moved into place: refuse a destination it would wrongly replace
        check_destination(out)
    except ReportError as error:
        raise typer.BadParameter(str(error)) from None
    if live:
        from codesign.protran.campaign_report import CampaignReportError, build_campaign_report

        with protran_errors():
            try:
                from codesign.protran.campaign_report import load_live_campaign

                load_live_campaign(store, spec.name, campaign)  # refuse before creating the output directory
                summary = build_campaign_report(
                    store, out, spec.name, regressor, seed, glue_regressor=glue_regressor, glue_splits=glue_splits, progress=say,
                    campaign_name=campaign,
                )
            except (CampaignReportError, ReportError) as error:
                raise typer.BadParameter(str(error)) from None
    else:
        from codesign.protran.report import build_report

        with protran_errors():
            chosen = parse_regressors(curve_regressors)
            try:
                summary = build_report(
                    names, out, regressor or "gpr", features, chosen, budget, curve_names, seed, threshold or 1e-12,
                    glue_regressor=glue_regressor, glue_splits=glue_splits, progress=say,
                )
            except ReportError as error:
                raise typer.BadParameter(str(error)) from None
    if as_json:
        emit_json(json.loads(json.dumps(summary, default=float)))
        return
    typer.echo(f"wrote {len(summary['files'])} files to {out}: " + ", ".join(summary["files"]))
