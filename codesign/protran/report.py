"""Report figures (PNG) and a markdown summary of ProTran on the published pools.

Every figure title starts with ``[PUBLISHED]``; every figure and table shows the
published measures in the authors' stored units, worded as
:data:`codesign.published.PUBLISHED_MEASURE_UNITS` (per evaluation run, not per
sequence). How the figures are drawn (limits, ticks, units, origin): see
:mod:`codesign.protran.report_figures`.

Per device:

* ``fig7_validation_mse_<device>.png`` (for ``curve_devices``, by default the first
  device only, as the paper draws Fig. 7 for one platform: every curve runs the loop,
  and the neural ensemble alone takes minutes on a large pool): validation MSE (solid)
  and never-queried MSE (dotted; held-out and mean-predictor MSE where the loop's
  records carry them) against the number of evaluated architectures, one line per
  regressor, one panel per measure, the threshold dashed (paper Fig. 7);
* ``fig8_predicted_vs_measured_<device>.png``: out-of-fold (5-fold) predictions with
  +-1 sigma error bars against the measured values, the +-10% band shaded (Fig. 8);
* ``fig13_depth_width_<device>.png``: each measure per (median hidden size, layers) cell,
  the mean prediction of the surrogate fitted on all of the device's published
  measurements over the published architectures and ``CONTOUR_SAMPLES`` LHS
  architectures; the published architectures drawn inside their cells, coloured by
  their *measured* value on the same scale (Fig. 13, as a grid of the cells that exist).

Across devices:

* ``fig14_pareto.png``: Pareto frontiers of predicted GLUE score against each predicted
  measure, one frontier per device, over the union of the published architectures and
  ``PARETO_SAMPLES`` LHS architectures (Fig. 14), keeping only candidates whose predicted
  measure is positive by more than one standard deviation (``TRUSTED_PREDICTION``). The
  GLUE predictions come from a surrogate fitted on 13 scored models
  (:mod:`codesign.protran.accuracy`); where its leave-one-out MSE is not below the mean
  predictor's, the figure and the summary say that the frontiers' GLUE order is noise;
* ``summary.md`` and ``summary.json``: the settings, held-out error next to the
  mean-predictor error and R^2 per device, calibration, the measured Table VI (best
  published architecture per measure and device), the accuracy surrogate's metrics, and
  per figure its title, axis limits, units and labelled ticks.

The report is built in a temporary directory beside ``out`` and moved into place when
complete (:func:`codesign.atomic_io.atomic_directory`): an interrupted report leaves the
previous one intact. Files are written with the umask's permissions (0644 under 022).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from codesign.architecture import Architecture
from codesign.atomic_io import atomic_directory, write_text_atomically
from codesign.protran.accuracy import DEFAULT_GLUE_FEATURES, DEFAULT_GLUE_REGRESSOR, GlueSurrogate, evaluate_glue_surrogate
from codesign.protran.comparison import holdout_evaluation, learning_curve, out_of_fold_predictions
from codesign.protran.evaluators import PublishedPoolEvaluator, architecture_key
from codesign.protran.features import featurize, median_hidden
from codesign.protran.loop import LoopError
from codesign.protran.measures import MEASURE_SHORT, MEASURES, PUBLISHED_NOTE, units_note
from codesign.protran.report_figures import (
    display_units,
    origin_title,
    plot_depth_width,
    plot_learning_curves,
    plot_pareto,
    plot_predicted_vs_measured,
    to_display,
)
from codesign.protran.surrogates import make_surrogate
from codesign.protran.surrogates.base import single_threaded_blas
from codesign.sampling import sample_architectures

CONTOUR_SAMPLES = 2048  # LHS architectures predicted for the depth/width grid
PARETO_SAMPLES = 1024  # LHS architectures added to the published ones for the Pareto frontiers
REPORT_GLUE_SPLITS = 100  # random 9/4 splits of the GLUE metrics in a report
# A candidate enters a Pareto frontier only where its predicted measure is positive by more than one predictive
# standard deviation (mean - std > 0). Far outside a small pool (the Jetson GPU has 18 architectures) the GP's
# linear part extrapolates to latencies below zero; such points would sit at the far left of every frontier.
TRUSTED_PREDICTION = "mean - std > 0"


class ReportError(ValueError):
    """A report that cannot be written where asked (an output that is not a report directory, unwritable)."""


class Steps:
    """Progress of a report: ``[k/n] step, elapsed, ETA`` lines to a callback (the CLI prints them on stderr)."""

    def __init__(self, total: int, say: Callable[[str], None] | None) -> None:
        self.total, self.done, self.say = max(total, 1), 0, say
        self.start = time.perf_counter()

    def __call__(self, message: str) -> None:
        """Announce the next step."""
        if self.say is None:
            return
        elapsed = time.perf_counter() - self.start
        eta = f", about {elapsed / self.done * (self.total - self.done):.0f} s left" if self.done else ""
        self.done += 1
        self.say(f"[{self.done}/{self.total}] {message} ({elapsed:.0f} s elapsed{eta})")


REPORT_MARKER = "summary.json"  # a directory holding this (and nothing but report files) is a previous report


def check_destination(out: Path) -> None:
    """Refuse an ``out`` the report would wrongly replace: a file, or a non-empty directory that is not a report.

    The report replaces ``out`` whole, so a directory with other files (``--out .``) would be
    deleted; a previous report (it holds ``summary.json`` and only ``.png`` / ``.md`` /
    ``.json`` files) is replaced. The parent must exist and be writable.
    """
    from codesign.atomic_io import OutputPathError, check_output_directory

    out = Path(out)
    if out.parent.exists() and not out.parent.is_dir():
        raise ReportError(f"{out}: {out.parent} is not a directory")
    if not out.parent.is_dir():
        raise ReportError(f"{out}: directory {out.parent} does not exist")
    if out.exists() and not out.is_dir():
        raise ReportError(f"{out}: exists and is not a directory")
    try:
        check_output_directory(out.parent)  # the report is built in a sibling of out
    except OutputPathError as error:
        raise ReportError(str(error)) from None
    if out.is_dir():
        entries = list(out.iterdir())
        foreign = [p.name for p in entries if p.is_dir() or p.suffix not in (".png", ".md", ".json")]
        if entries and (not (out / REPORT_MARKER).is_file() or foreign):
            raise ReportError(
                f"{out}: not empty and not a previous report (the report replaces the directory whole); choose a new or empty directory"
            )


class _ReportDirectory:
    """The temporary directory a report is built in, created before any work (so an unwritable parent fails fast)."""

    def __init__(self, out: Path) -> None:
        check_destination(out)
        self.out = Path(out)
        self._context = atomic_directory(self.out)
        try:
            self.path = self._context.__enter__()
        except OSError as error:
            raise ReportError(f"{out}: cannot write into {self.out.parent}: {error.strerror or error}") from None

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc) -> bool:
        return bool(self._context.__exit__(*exc))


def open_report_directory(out: Path) -> _ReportDirectory:
    """Check ``out`` and create the temporary directory to build the report in (use as a context manager)."""
    return _ReportDirectory(out)


def fit_device_surrogates(evaluator: PublishedPoolEvaluator, regressor: str, features: str, seed: int = 0) -> tuple[dict, np.ndarray]:
    """Surrogates of the three measures fitted on all of a device's published measurements; and the maxima."""
    X = featurize(evaluator.pool, features, evaluator.context)
    Y = np.array([evaluator.truth(arch).values() for arch in evaluator.pool])
    maxima = Y.max(axis=0)
    with single_threaded_blas():
        models = {m: make_surrogate(regressor, seed, features).fit(X, Y[:, i] / maxima[i]) for i, m in enumerate(MEASURES)}
    return models, maxima


def predict_measures(models: dict, maxima: np.ndarray, archs: Sequence[Architecture], evaluator: PublishedPoolEvaluator, features: str) -> tuple[np.ndarray, np.ndarray]:
    """Predicted mean and std ``(n, 3)`` in stored units (s, J, W)."""
    X = featurize(archs, features, evaluator.context)
    mean, std = np.empty((len(archs), 3)), np.empty((len(archs), 3))
    with single_threaded_blas():
        for i, m in enumerate(MEASURES):
            prediction = models[m].predict(X)
            mean[:, i], std[:, i] = prediction.mean * maxima[i], prediction.std * maxima[i]
    return mean, std


def depth_width_cells(archs: Sequence[Architecture], mean: np.ndarray) -> dict:
    """``{(median hidden, layers): (count, mean prediction (3,))}`` over the cells the architectures occupy."""
    cells: dict = {}
    for arch, row in zip(archs, np.asarray(mean, dtype=float)):
        cells.setdefault((float(median_hidden(arch)), int(arch.layers)), []).append(row)
    return {cell: (len(rows), np.mean(rows, axis=0)) for cell, rows in cells.items()}


def range_notes(cells: dict, measured: np.ndarray, origin: str) -> list[str]:
    """Per measure, ``": predicted a-b, measured c-d <unit>"`` for the panel titles of Fig. 13."""
    units = display_units(origin)
    predicted = to_display(np.array([mean for _, mean in cells.values()]), origin)
    shown = to_display(measured, origin)
    return [
        f": predicted {predicted[:, i].min():.3g}-{predicted[:, i].max():.3g}, measured {shown[:, i].min():.3g}-{shown[:, i].max():.3g} "
        f"{units[m][0]}"
        for i, m in enumerate(MEASURES)
    ]


def glue_informative(glue: dict) -> bool:
    """Whether the GLUE surrogate beats predicting the training mean (leave-one-out MSE)."""
    loo = glue["leave_one_out"]
    return bool(loo["mse"] < loo["mse_train_mean"])


def glue_note(glue: dict, regressor: str) -> str:
    """One sentence on the GLUE surrogate for Fig. 14's title and the summary."""
    loo = glue["leave_one_out"]
    text = (
        f"GLUE from {regressor} on {glue['scored_models']} scored models: leave-one-out MSE {loo['mse']:.4f} "
        f"vs {loo['mse_train_mean']:.4f} for the mean"
    )
    if not glue_informative(glue):
        text += ":\nthe surrogate is NO BETTER THAN THE MEAN, so the vertical order of these frontiers is noise"
    return text


def pareto_front(cost: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """Indices of the points no other point beats (lower cost and higher gain), by increasing cost."""
    order = np.lexsort((-gain, cost))
    front, best = [], -np.inf
    for index in order:
        if gain[index] > best:
            front.append(index)
            best = gain[index]
    return np.array(front, dtype=np.int64)


def frontier_of(mean: np.ndarray, std: np.ndarray, glue_mean: np.ndarray) -> dict:
    """Per measure: the Pareto frontier (stored units) of the trusted candidates, and how many were excluded."""
    frontier = {}
    for i, measure in enumerate(MEASURES):
        trusted = np.flatnonzero(mean[:, i] - std[:, i] > 0)  # see TRUSTED_PREDICTION
        front = trusted[pareto_front(mean[trusted, i], glue_mean[trusted])]
        frontier[measure] = {
            "cost": mean[front, i], "glue": glue_mean[front], "excluded": int(len(mean) - len(trusted)), "candidates": len(mean),
        }
    return frontier


def frontier_summary(frontier: dict, origin: str) -> dict:
    """The JSON of one device's frontiers, ranges in displayed units."""
    units = display_units(origin)
    return {
        m: {
            "points": int(len(v["cost"])), "candidates": v["candidates"], "excluded_untrusted": v["excluded"],
            "glue_range": [float(v["glue"].min()), float(v["glue"].max())] if len(v["cost"]) else None,
            "cost_range": [float(v["cost"].min() * units[m][1]), float(v["cost"].max() * units[m][1])] if len(v["cost"]) else None,
            "unit": units[m][0],
        }
        for m, v in frontier.items()
    }


def measured_best(evaluator: PublishedPoolEvaluator, origin: str) -> dict:
    """Table VI from measurements: the architecture minimising each measure, with all three values in displayed units."""
    values = np.array([evaluator.truth(a).values() for a in evaluator.pool])
    shown = to_display(values, origin)
    units = display_units(origin)
    table = {}
    for i, measure in enumerate(MEASURES):
        best = int(np.argmin(values[:, i]))
        table[measure] = {
            "key": architecture_key(evaluator.pool[best]),
            "layers": evaluator.pool[best].layers,
            **{m: float(shown[best, k]) for k, m in enumerate(MEASURES)},
            "units": {m: units[m][0] for m in MEASURES},
        }
    return table


# -- the whole report ----------------------------------------------------------------------


def build_report(
    devices: Sequence[str],
    out: Path,
    regressor: str = "gpr",
    features: str = "workload",
    curve_regressors: Sequence[str] = ("lr", "gpr", "svr", "dt", "bdt", "gbdt", "nn"),
    budget: int = 32,
    curve_devices: Sequence[str] | None = None,
    seed: int = 0,
    threshold: float = 0.005,
    glue_regressor: str = DEFAULT_GLUE_REGRESSOR,
    glue_features: str = DEFAULT_GLUE_FEATURES,
    glue_splits: int = REPORT_GLUE_SPLITS,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Write every figure and ``summary.md`` for the given published devices to ``out`` (built aside, moved into place)."""
    out = Path(out)
    origin = "published"
    curve_devices = list(devices[:1]) if curve_devices is None else list(curve_devices)
    evaluators = [PublishedPoolEvaluator(device) for device in devices]
    curve_count = sum(1 for e in evaluators if e.device in curve_devices)
    say = Steps(2 + 3 * len(evaluators) + curve_count, progress)
    with open_report_directory(out) as work:
        summary: dict = {
            "kind": "published", "origin": origin, "units": {m: display_units(origin)[m][0] for m in MEASURES},
            "units_of_the_data": units_note(origin),
            "regressor": regressor, "features": features, "seed": seed, "threshold": threshold, "devices": {},
            "files": [], "figures": {},
        }

        def saved(path: Path, facts: dict) -> None:
            summary["files"].append(path.name)
            summary["figures"][path.name] = facts

        glue_model = GlueSurrogate(glue_regressor, glue_features, seed)
        say("accuracy surrogate")
        summary["glue"] = evaluate_glue_surrogate(glue_regressor, glue_features, seed, glue_splits)
        lhs = sample_architectures("lhs", PARETO_SAMPLES, seed + 1)
        frontiers = {}
        for evaluator in evaluators:
            name = evaluator.device
            entry: dict = {"pool": len(evaluator), "batch_size": evaluator.context.batch_size}
            values = np.array([evaluator.truth(a).values() for a in evaluator.pool])
            if name in curve_devices:
                say(f"{name}: learning curves ({', '.join(curve_regressors)})")
                try:
                    curves = {r: learning_curve(evaluator, r, budget, features, seed, threshold) for r in curve_regressors}
                except LoopError as error:  # a pool too small for the initial batch once the held-out split is set aside
                    summary.setdefault("skipped", []).append(f"Fig. 7 of {name}: {error}")
                    curves = None
                if curves is not None:
                    entry["curves"] = {
                        r: {"first_below_threshold": c["first_below_threshold"], "seconds": c["seconds"]} for r, c in curves.items()
                    }
                    path = work / f"fig7_validation_mse_{name}.png"
                    saved(path, plot_learning_curves(curves, threshold, path, origin_title(
                        origin, f"{name}: validation MSE (solid, 5-fold on the queried set), held-out split (dash-dot) "
                        "and never-queried MSE (dotted)")))
            say(f"{name}: held-out predictions")
            oof = out_of_fold_predictions(evaluator, regressor, features, seed)
            path = work / f"fig8_predicted_vs_measured_{name}.png"
            saved(path, plot_predicted_vs_measured(oof, origin, path, origin_title(
                origin, f"{name}: {regressor} out-of-fold (5-fold) predictions vs the {len(evaluator)} published measurements")))
            say(f"{name}: held-out error with both feature sets")
            entry["holdout"] = {f: holdout_evaluation(evaluator, regressor, f, seed) for f in ("embedding", "workload")}
            say(f"{name}: depth/width grid and Pareto frontiers")
            models, maxima = fit_device_surrogates(evaluator, regressor, features, seed)
            samples = list(evaluator.pool) + sample_architectures("lhs", CONTOUR_SAMPLES, seed)
            mean, _ = predict_measures(models, maxima, samples, evaluator, features)
            cells = depth_width_cells(samples, mean)
            path = work / f"fig13_depth_width_{name}.png"
            saved(path, plot_depth_width(
                cells, {"width": [median_hidden(a) for a in evaluator.pool], "layers": [a.layers for a in evaluator.pool], "values": values},
                origin, path,
                origin_title(origin, f"{name}: mean prediction per cell over the {len(evaluator)} published and {CONTOUR_SAMPLES} LHS "
                             f"architectures ({len(cells)} cells; grey: none), the {len(evaluator)} published measurements as points"),
                range_notes(cells, values, origin),
            ))
            candidates = list(evaluator.pool) + lhs
            mean, std = predict_measures(models, maxima, candidates, evaluator, features)
            glue_mean, _ = glue_model.predict(candidates)
            frontiers[name] = frontier_of(mean, std, glue_mean)
            entry["table_vi_measured"] = measured_best(evaluator, origin)
            summary["devices"][name] = entry
        say("Pareto figure and summary")
        glue = summary["glue"]
        summary["glue_informative"] = glue_informative(glue)
        path = work / "fig14_pareto.png"
        saved(path, plot_pareto(
            frontiers, origin, path, origin_title(origin, f"Pareto frontiers (predicted). {glue_note(glue, glue_regressor)}"),
            summary["glue_informative"],
        ))
        summary["pareto"] = {d: frontier_summary(f, origin) for d, f in frontiers.items()}
        summary["files"] += ["summary.md", "summary.json"]
        write_text_atomically(work / "summary.md", summary_markdown(summary))
        write_text_atomically(work / "summary.json", json.dumps(summary, indent=2, default=float) + "\n")
    return summary


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"


def _num(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def holdout_rows(holdout: dict, prefix: str = "") -> list[str]:
    """Markdown rows of held-out error, with the mean predictor's MSE and R^2 beside each MSE."""
    rows = []
    for features, h in holdout.items():
        rows.append(
            f"| {prefix}{features} | "
            + " / ".join(f"{h['mse'][m]:.4f}" for m in MEASURES) + " | "
            + " / ".join(_num((h.get("mean_predictor_mse") or {}).get(m), ".4f") for m in MEASURES) + " | "
            + " / ".join(_num((h.get("r2") or {}).get(m), ".2f") for m in MEASURES) + " | "
            + " / ".join(_pct(h["within_10pct"][m]) for m in MEASURES) + " | "
            + " / ".join(_pct(h["coverage"][m]["within_1sigma"]) for m in MEASURES) + " | "
            + " / ".join(_pct(h["coverage"][m]["within_2sigma"]) for m in MEASURES) + " |"
        )
    return rows


HOLDOUT_HEADER = (
    "| {first}features | MSE lat / en / pp | mean predictor MSE | R^2 | +-10% lat / en / pp | 1 sigma lat / en / pp | 2 sigma lat / en / pp |"
)


def units_line(summary: dict) -> str:
    """The sentence that states the units of every number in a summary."""
    units = summary["units"]
    return (
        f"Units throughout (figures and tables): latency in {units['latency_s']}, energy in {units['energy_j']}, "
        f"peak power in {units['peak_power_w']}; origin: **{summary['origin'].upper()}**."
    )


def summary_markdown(summary: dict) -> str:
    """The markdown summary of a published-data report."""
    lines = [
        "# ProTran report (PUBLISHED measurements)",
        "",
        units_line(summary) + f" The {PUBLISHED_NOTE}.",
        "",
        f"Surrogate: `{summary['regressor']}` on `{summary['features']}` features, seed {summary['seed']}; "
        f"convergence threshold {summary['threshold']:g} (validation MSE of max-normalised measures).",
        "",
        "## Held-out error (5-fold over each published pool)",
        "",
        "MSE of max-normalised values, next to the MSE of predicting the training folds' mean and R^2 = 1 - MSE / that; "
        "share of predictions within +-10%; share of measurements inside +-1 / +-2 sigma (68% / 95% when calibrated).",
        "",
        HOLDOUT_HEADER.format(first="device | pool | "),
        "|---|---:|---|---|---|---|---|---|---|",
    ]
    for device, entry in summary["devices"].items():
        lines += holdout_rows(entry["holdout"], prefix=f"{device} | {entry['pool']} | ")
    if summary.get("skipped"):
        lines += ["", "Skipped:", ""] + [f"- {item}" for item in summary["skipped"]]
    with_curves = {d: e["curves"] for d, e in summary["devices"].items() if "curves" in e}
    if with_curves:
        regressors = list(next(iter(with_curves.values())))
        lines += [
            "",
            "## Learning curves (Fig. 7): first sample count with every validation MSE below the threshold",
            "",
            "| device | " + " | ".join(regressors) + " |",
            "|---|" + "---:|" * len(regressors),
        ]
        for device, curves in with_curves.items():
            lines.append(
                f"| {device} | " + " | ".join(str(c["first_below_threshold"] or "not within budget") for c in curves.values()) + " |"
            )
    units = summary["units"]
    triple = " / ".join(units[m] for m in MEASURES)
    lines += [
        "",
        "## Table VI from the measurements: best published architecture per measure",
        "",
        f"Each cell: latency / energy / peak power, in {triple}.",
        "",
        "| device | min latency | min energy | min peak power |",
        "|---|---|---|---|",
    ]
    for device, entry in summary["devices"].items():
        cells = []
        for measure in MEASURES:
            b = entry["table_vi_measured"][measure]
            cells.append(" / ".join(f"{b[m]:.4g}" for m in MEASURES))
        lines.append(f"| {device} | " + " | ".join(cells) + " |")
    lines += pareto_lines(summary)
    lines += glue_lines(summary)
    lines += figure_lines(summary)
    return "\n".join(lines) + "\n"


def pareto_lines(summary: dict) -> list[str]:
    """The Pareto section of a summary (published: per device; live: one device)."""
    lines = [
        "",
        f"## Pareto frontiers (Fig. 14): candidates kept where {TRUSTED_PREDICTION} of the predicted measure",
        "",
    ]
    if not summary.get("glue_informative", True):
        lines += ["**The GLUE surrogate is no better than predicting the mean** (leave-one-out, below): the frontiers' "
                  "GLUE order is noise; only the measure axis is meaningful.", ""]
    lines += ["| device | measure | frontier points | candidates excluded | predicted measure range |", "|---|---|---:|---:|---|"]
    for device, per_measure in summary.get("pareto", {}).items():
        for measure, p in per_measure.items():
            span = "-" if p["cost_range"] is None else f"{p['cost_range'][0]:.4g} to {p['cost_range'][1]:.4g} {p['unit']}"
            lines.append(f"| {device} | {MEASURE_SHORT[measure]} | {p['points']} | {p['excluded_untrusted']} of {p['candidates']} | {span} |")
    return lines


def glue_lines(summary: dict) -> list[str]:
    """The accuracy-surrogate section of a summary."""
    glue = summary["glue"]
    paper, rand, loo = glue["paper_split"], glue["random_splits"], glue["leave_one_out"]
    return [
        "",
        f"## Accuracy surrogate: `{glue['regressor']}` on `{glue['features']}` features, {glue['scored_models']} scored models",
        "",
        f"- paper split (first 11 records: {paper['train']} scored for training, {paper['test']} for test): "
        f"MSE {paper['mse']:.4f} (training mean: {paper['mse_train_mean']:.4f}), "
        f"best of 3 {paper['best_of_3']['accuracy']:.2f} over {paper['best_of_3']['groups']} groups (random 0.33), "
        f"nDCG {paper['ndcg']:.3f} (random order {paper['ndcg_random']:.3f})",
        f"- {rand['splits']} random {paper['train']}/{paper['test']} splits: MSE {rand['mse']:.4f} (mean {rand['mse_train_mean']:.4f}), "
        f"best of 3 {rand['best_of_3']:.2f}, nDCG {rand['ndcg']:.3f} (random {rand['ndcg_random']:.3f}), "
        f"coverage {_pct(rand['within_1sigma'])} / {_pct(rand['within_2sigma'])}",
        f"- leave-one-out: MSE {loo['mse']:.4f} (mean {loo['mse_train_mean']:.4f}); mean predictive std {loo['mean_std']:.3f} "
        f"against a score spread of {glue['score_std']:.3f}",
    ]


def figure_lines(summary: dict) -> list[str]:
    """The figures section: per PNG its title and each panel's axes (limits in displayed units)."""
    lines = ["", "## Figures", ""]
    for name in summary["files"]:
        facts = summary["figures"].get(name)
        if facts is None:
            continue
        lines.append(f"- `{name}`: " + facts["title"].replace("\n", " "))
        for panel in facts["panels"]:
            lines.append(
                f"  - {panel['title'] or 'panel'}: x {panel['xlabel']} {_axis_span(panel, 'x')}, "
                f"y {panel['ylabel']} {_axis_span(panel, 'y')}"
            )
    return lines


def _axis_span(panel: dict, axis: str) -> str:
    """``a to b (scale)``, or ``categories first, ..., last`` for an axis whose tick labels name categories (Fig. 13)."""
    ticks = panel[f"{axis}ticks"]
    try:
        numeric = all(abs(float(text.replace("\u2212", "-")) - value) <= 1e-6 * max(1.0, abs(value)) for value, text in ticks)
    except ValueError:
        numeric = False
    if ticks and not numeric:
        return "categories " + ", ".join(text for _, text in ticks)
    low, high = panel[f"{axis}lim"]
    return f"{low:.3g} to {high:.3g} ({panel[f'{axis}scale']})"
