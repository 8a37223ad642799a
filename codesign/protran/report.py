"""Report figures (PNG, matplotlib) and a markdown summary of ProTran on the published pools.

Per device:

* ``fig7_validation_mse_<device>.png`` (for ``curve_devices``, by default the first
  device only, as the paper draws Fig. 7 for one platform: every curve runs the loop,
  and the neural ensemble alone takes minutes on a large pool): validation MSE (solid)
  and never-queried MSE (dotted) against the number of evaluated architectures, one
  line per regressor, one panel per measure, the threshold dashed (paper Fig. 7);
* ``fig8_predicted_vs_measured_<device>.png``: out-of-fold (5-fold) predictions with
  +-1 sigma error bars against the measured values, the +-10% band shaded (Fig. 8);
* ``fig13_contours_<device>.png``: each measure over depth (layers) and width (median
  hidden size), as predicted by the surrogate fitted on all of the device's published
  measurements for ``CONTOUR_SAMPLES`` LHS architectures; the contours interpolate the
  mean prediction of each (layers, median hidden size) cell; the published
  architectures are overlaid as points coloured by their *measured* value on the same
  scale (Fig. 13).

Across devices:

* ``fig14_pareto.png``: Pareto frontiers of predicted GLUE score against each predicted
  measure, one frontier per device, over the union of the published architectures and
  ``PARETO_SAMPLES`` LHS architectures (Fig. 14), keeping only candidates whose predicted
  measure is positive by more than one standard deviation (``TRUSTED_PREDICTION``). The GLUE predictions come from a
  surrogate fitted on 13 scored models (:mod:`codesign.protran.accuracy`), so the
  vertical axis is coarse; the summary says how coarse;
* ``summary.md``: the settings, held-out error and calibration per device, the
  measured Table VI (best published architecture per measure and device) and the
  accuracy surrogate's metrics.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from codesign.atomic_io import write_text_atomically
from codesign.architecture import Architecture
from codesign.protran.accuracy import DEFAULT_GLUE_FEATURES, DEFAULT_GLUE_REGRESSOR, GlueSurrogate, evaluate_glue_surrogate
from codesign.protran.comparison import holdout_evaluation, learning_curve, out_of_fold_predictions
from codesign.protran.evaluators import PublishedPoolEvaluator, architecture_key
from codesign.protran.features import featurize, median_hidden
from codesign.protran.measures import MEASURE_LABELS, MEASURE_SHORT, MEASURES
from codesign.protran.surrogates import make_surrogate
from codesign.protran.surrogates.base import single_threaded_blas
from codesign.sampling import sample_architectures

CONTOUR_SAMPLES = 2048  # LHS architectures predicted for the depth/width contours
PARETO_SAMPLES = 1024  # LHS architectures added to the published ones for the Pareto frontiers
FIGURE_DPI = 110
WITHIN_BAND = 0.10  # +-10% band of Fig. 8
LOG_AXES_ABOVE_RATIO = 10.0  # Fig. 8 uses log axes when the values span more than this ratio
REPORT_GLUE_SPLITS = 100  # random 9/4 splits of the GLUE metrics in a report
# A candidate enters a Pareto frontier only where its predicted measure is positive by more than one predictive
# standard deviation (mean - std > 0). Far outside a small pool (the Jetson GPU has 18 architectures) the GP's
# linear part extrapolates to latencies below zero; such points would sit at the far left of every frontier.
TRUSTED_PREDICTION = "mean - std > 0"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    """Save a figure through a temporary file and a rename (no partial PNGs)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=FIGURE_DPI, bbox_inches="tight")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        _pyplot().close(fig)


def _write_text(path: Path, text: str) -> None:
    write_text_atomically(path, text)


def fit_device_surrogates(evaluator: PublishedPoolEvaluator, regressor: str, features: str, seed: int = 0) -> tuple[dict, np.ndarray]:
    """Surrogates of the three measures fitted on all of a device's published measurements; and the maxima."""
    X = featurize(evaluator.pool, features, evaluator.context)
    Y = np.array([evaluator.truth(arch).values() for arch in evaluator.pool])
    maxima = Y.max(axis=0)
    with single_threaded_blas():
        models = {m: make_surrogate(regressor, seed, features).fit(X, Y[:, i] / maxima[i]) for i, m in enumerate(MEASURES)}
    return models, maxima


def predict_measures(models: dict, maxima: np.ndarray, archs: Sequence[Architecture], evaluator: PublishedPoolEvaluator, features: str) -> tuple[np.ndarray, np.ndarray]:
    """Predicted mean and std ``(n, 3)`` in measurement units."""
    X = featurize(archs, features, evaluator.context)
    mean, std = np.empty((len(archs), 3)), np.empty((len(archs), 3))
    with single_threaded_blas():
        for i, m in enumerate(MEASURES):
            prediction = models[m].predict(X)
            mean[:, i], std[:, i] = prediction.mean * maxima[i], prediction.std * maxima[i]
    return mean, std


# -- figures -------------------------------------------------------------------------------


def plot_learning_curves(curves: dict, device: str, threshold: float, path: Path, title: str | None = None) -> None:
    """Fig. 7: validation and never-queried MSE against samples, per regressor and measure."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), layout="constrained")
    colours = plt.get_cmap("tab10")
    for i, measure in enumerate(MEASURES):
        ax = axes[i]
        for k, (name, curve) in enumerate(curves.items()):
            samples = [p["samples"] for p in curve["points"]]
            ax.plot(samples, [p["val_mse"][measure] for p in curve["points"]], color=colours(k), label=name)
            held = [(p["samples"], p["never_queried_mse"][measure]) for p in curve["points"] if p["never_queried_mse"]]
            if held:
                ax.plot(*zip(*held), color=colours(k), linestyle=":", linewidth=1)
        ax.axhline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
        ax.set_yscale("log")
        ax.set_xlabel("evaluated architectures")
        ax.set_ylabel(f"MSE of normalised {MEASURE_SHORT[measure]}")
        ax.set_title(MEASURE_SHORT[measure])
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=9)
    fig.suptitle(title or f"{device}: validation MSE (solid, 5-fold on the queried set) and never-queried MSE (dotted)")
    _save(fig, path)


def plot_predicted_vs_measured(oof: dict, device: str, regressor: str, path: Path, title: str | None = None) -> None:
    """Fig. 8: out-of-fold predictions with +-1 sigma bars against measurements."""
    plt = _pyplot()
    from matplotlib.ticker import FuncFormatter, NullFormatter

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), layout="constrained")
    for i, measure in enumerate(MEASURES):
        ax = axes[i]
        y, mean, std = oof["measured"][:, i], oof["mean"][:, i], oof["std"][:, i]
        low, high = min(y.min(), (mean - std).min()), max(y.max(), (mean + std).max())
        low = max(low, y.min() * 0.3)
        logarithmic = high / low > LOG_AXES_ABOVE_RATIO
        line = np.geomspace(low, high, 50) if logarithmic else np.linspace(low, high, 50)
        ax.fill_between(line, line * (1 - WITHIN_BAND), line * (1 + WITHIN_BAND), color="green", alpha=0.15, label="+-10%")
        ax.plot(line, line, color="black", linewidth=1)
        ax.errorbar(y, mean, yerr=std, fmt="o", markersize=3, elinewidth=0.8, alpha=0.8, label="prediction +- 1 sigma")
        if logarithmic:
            ax.set_xscale("log")
            ax.set_yscale("log")
            for axis in (ax.xaxis, ax.yaxis):  # a narrow log range gets crowded minor labels otherwise
                axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.3g}"))
                axis.set_minor_formatter(NullFormatter())
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        inside = float(np.mean(np.abs(y - mean) <= std))
        within = float(np.mean(np.abs(y - mean) <= WITHIN_BAND * y))
        ax.set_title(f"{MEASURE_SHORT[measure]}: {within:.0%} within +-10%, {inside:.0%} within 1 sigma", fontsize=10)
        ax.set_xlabel(f"measured {MEASURE_LABELS[measure]}")
        ax.set_ylabel(f"predicted {MEASURE_LABELS[measure]}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper left")
    fig.suptitle(title or f"{device}: {regressor} out-of-fold (5-fold) predictions vs published measurements")
    _save(fig, path)


def plot_contours(
    evaluator: PublishedPoolEvaluator, models: dict, maxima: np.ndarray, features: str, seed: int, path: Path,
    samples: Sequence[Architecture] | None = None, title: str | None = None,
) -> dict:
    """Fig. 13: predicted measures over (median hidden size, layers); returns the plotted cell means.

    ``samples`` are the predicted architectures (default: ``CONTOUR_SAMPLES`` LHS samples of the whole space);
    the points are ``evaluator.pool`` coloured by ``evaluator.truth``.
    """
    plt = _pyplot()
    from matplotlib.colors import LogNorm

    samples = list(samples) if samples is not None else sample_architectures("lhs", CONTOUR_SAMPLES, seed)
    mean, _ = predict_measures(models, maxima, samples, evaluator, features)
    width = np.array([median_hidden(a) for a in samples])
    depth = np.array([a.layers for a in samples], dtype=float)
    cells = sorted(set(zip(width.tolist(), depth.tolist())))
    cell_mean = np.array([[mean[(width == w) & (depth == d), i].mean() for i in range(3)] for w, d in cells])
    cw, cd = np.array([c[0] for c in cells]), np.array([c[1] for c in cells])
    measured = np.array([evaluator.truth(a).values() for a in evaluator.pool])
    pw = np.array([median_hidden(a) for a in evaluator.pool])
    pd = np.array([a.layers for a in evaluator.pool], dtype=float)
    from matplotlib.ticker import FuncFormatter

    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8), layout="constrained")
    for i, measure in enumerate(MEASURES):
        ax = axes[i]
        values = np.concatenate([cell_mean[:, i], measured[:, i]])
        positive = values[values > 0]
        norm = LogNorm(vmin=positive.min(), vmax=positive.max())
        levels = np.geomspace(positive.min(), positive.max(), 14)
        contour = ax.tricontourf(cw, cd, np.maximum(cell_mean[:, i], positive.min()), levels=levels, norm=norm, cmap="viridis")
        ax.scatter(pw, pd, c=measured[:, i], norm=norm, cmap="viridis", edgecolors="white", linewidths=0.6, s=28, clip_on=False, zorder=3)
        bar = fig.colorbar(contour, ax=ax, label=MEASURE_LABELS[measure], ticks=levels[::3])
        bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.3g}"))
        bar.ax.yaxis.set_minor_formatter(FuncFormatter(lambda value, _: ""))
        ax.set_xlabel("median hidden size")
        ax.set_ylabel("encoder layers")
        ax.set_title(MEASURE_SHORT[measure])
    fig.suptitle(
        title
        or f"{evaluator.device}: surrogate prediction over {CONTOUR_SAMPLES} LHS architectures (contours) "
        "and published measurements (points)"
    )
    _save(fig, path)
    return {"cells": len(cells)}


def pareto_front(cost: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """Indices of the points no other point beats (lower cost and higher gain), by increasing cost."""
    order = np.lexsort((-gain, cost))
    front, best = [], -np.inf
    for index in order:
        if gain[index] > best:
            front.append(index)
            best = gain[index]
    return np.array(front, dtype=np.int64)


def plot_pareto(frontiers: dict, path: Path, glue_note: str) -> None:
    """Fig. 14: predicted GLUE against each predicted measure, one frontier per device."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.2), layout="constrained")
    colours = plt.get_cmap("tab10")
    for i, measure in enumerate(MEASURES):
        ax = axes[i]
        costs = []
        for k, (device, data) in enumerate(frontiers.items()):
            cost, glue = data[measure]["cost"], data[measure]["glue"]
            ax.step(cost, glue, where="post", color=colours(k), marker="o", markersize=3, label=device)
            costs.extend(np.asarray(cost).tolist())
        if costs and max(costs) > LOG_AXES_ABOVE_RATIO * min(costs):  # linear axes for a narrow range (one live board)
            ax.set_xscale("log")
        ax.set_xlabel(f"predicted {MEASURE_LABELS[measure]}")
        ax.set_ylabel("predicted GLUE score")
        ax.set_title(MEASURE_SHORT[measure])
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=9)
    fig.suptitle(f"Pareto frontiers (predicted). {glue_note}", fontsize=10)
    _save(fig, path)


# -- the whole report ----------------------------------------------------------------------


def measured_best(evaluator: PublishedPoolEvaluator) -> dict:
    """Table VI from measurements: the published architecture minimising each measure, with all three values."""
    values = np.array([evaluator.truth(a).values() for a in evaluator.pool])
    table = {}
    for i, measure in enumerate(MEASURES):
        best = int(np.argmin(values[:, i]))
        table[measure] = {
            "key": architecture_key(evaluator.pool[best]),
            "layers": evaluator.pool[best].layers,
            "latency_ms": float(values[best, 0] * 1000),
            "energy_j": float(values[best, 1]),
            "peak_power_w": float(values[best, 2]),
        }
    return table


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
    """Write every figure and ``summary.md`` for the given published devices into ``out``; return the numbers."""
    out = Path(out)
    say = progress or (lambda message: None)
    summary: dict = {"regressor": regressor, "features": features, "seed": seed, "threshold": threshold, "devices": {}, "files": []}
    glue_model = GlueSurrogate(glue_regressor, glue_features, seed)
    say("accuracy surrogate")
    summary["glue"] = evaluate_glue_surrogate(glue_regressor, glue_features, seed, glue_splits)
    lhs = sample_architectures("lhs", PARETO_SAMPLES, seed + 1)
    frontiers = {}
    curve_devices = list(devices[:1]) if curve_devices is None else list(curve_devices)
    for device in devices:
        evaluator = PublishedPoolEvaluator(device)
        name = evaluator.device
        entry: dict = {"pool": len(evaluator), "batch_size": evaluator.context.batch_size}
        if name in curve_devices:
            say(f"{name}: learning curves")
            curves = {r: learning_curve(evaluator, r, budget, features, seed, threshold) for r in curve_regressors}
            entry["curves"] = {
                r: {"first_below_threshold": c["first_below_threshold"], "seconds": c["seconds"]} for r, c in curves.items()
            }
            path = out / f"fig7_validation_mse_{name}.png"
            plot_learning_curves(curves, name, threshold, path)
            summary["files"].append(path.name)
        say(f"{name}: held-out predictions")
        oof = out_of_fold_predictions(evaluator, regressor, features, seed)
        path = out / f"fig8_predicted_vs_measured_{name}.png"
        plot_predicted_vs_measured(oof, name, regressor, path)
        summary["files"].append(path.name)
        entry["holdout"] = {f: holdout_evaluation(evaluator, regressor, f, seed) for f in ("embedding", "workload")}
        say(f"{name}: contours and Pareto frontiers")
        models, maxima = fit_device_surrogates(evaluator, regressor, features, seed)
        path = out / f"fig13_contours_{name}.png"
        plot_contours(evaluator, models, maxima, features, seed, path)
        summary["files"].append(path.name)
        candidates = list(evaluator.pool) + lhs
        mean, std = predict_measures(models, maxima, candidates, evaluator, features)
        glue_mean, _ = glue_model.predict(candidates)
        frontiers[name] = {}
        for i, measure in enumerate(MEASURES):
            trusted = np.flatnonzero(mean[:, i] - std[:, i] > 0)  # see TRUSTED_PREDICTION
            front = trusted[pareto_front(mean[trusted, i], glue_mean[trusted])]
            frontiers[name][measure] = {
                "cost": mean[front, i], "glue": glue_mean[front], "excluded": int(len(candidates) - len(trusted)),
                "candidates": len(candidates),
            }
        entry["table_vi_measured"] = measured_best(evaluator)
        summary["devices"][name] = entry
    glue = summary["glue"]
    note = (
        f"GLUE from {glue_regressor} on {glue['scored_models']} scored models "
        f"(leave-one-out MSE {glue['leave_one_out']['mse']:.4f} vs {glue['leave_one_out']['mse_train_mean']:.4f} for the mean)"
    )
    path = out / "fig14_pareto.png"
    plot_pareto(frontiers, path, note)
    summary["files"].append(path.name)
    summary["pareto"] = {
        d: {
            m: {
                "points": int(len(v["cost"])),
                "candidates": v["candidates"],
                "excluded_untrusted": v["excluded"],
                "glue_range": [float(v["glue"].min()), float(v["glue"].max())],
                "cost_range": [float(v["cost"].min()), float(v["cost"].max())],
            }
            for m, v in f.items()
        }
        for d, f in frontiers.items()
    }
    _write_text(out / "summary.md", summary_markdown(summary))
    _write_text(out / "summary.json", json.dumps(summary, indent=2, default=float) + "\n")
    summary["files"] += ["summary.md", "summary.json"]
    return summary


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"


def summary_markdown(summary: dict) -> str:
    """The markdown summary of a report."""
    lines = [
        "# ProTran report (published measurements)",
        "",
        f"Surrogate: `{summary['regressor']}` on `{summary['features']}` features, seed {summary['seed']}; "
        f"convergence threshold {summary['threshold']:g} (validation MSE of max-normalised measures).",
        "",
        "## Held-out error (5-fold over each published pool)",
        "",
        "MSE of max-normalised values; share of predictions within +-10%; share of measurements inside +-1 / +-2 sigma "
        "(68% / 95% when calibrated).",
        "",
        "| device | pool | features | MSE lat / en / pp | +-10% lat / en / pp | 1 sigma lat / en / pp | 2 sigma lat / en / pp |",
        "|---|---:|---|---|---|---|---|",
    ]
    for device, entry in summary["devices"].items():
        for features, h in entry["holdout"].items():
            lines.append(
                f"| {device} | {entry['pool']} | {features} | "
                + " / ".join(f"{h['mse'][m]:.4f}" for m in MEASURES) + " | "
                + " / ".join(_pct(h["within_10pct"][m]) for m in MEASURES) + " | "
                + " / ".join(_pct(h["coverage"][m]["within_1sigma"]) for m in MEASURES) + " | "
                + " / ".join(_pct(h["coverage"][m]["within_2sigma"]) for m in MEASURES) + " |"
            )
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
    lines += [
        "",
        "## Table VI from the measurements: best published architecture per measure",
        "",
        "| device | min latency: ms / J / W | min energy: ms / J / W | min peak power: ms / J / W |",
        "|---|---|---|---|",
    ]
    for device, entry in summary["devices"].items():
        cells = []
        for measure in MEASURES:
            b = entry["table_vi_measured"][measure]
            cells.append(f"{b['latency_ms']:.4g} / {b['energy_j']:.4g} / {b['peak_power_w']:.4g}")
        lines.append(f"| {device} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"## Pareto frontiers (Fig. 14): candidates kept where {TRUSTED_PREDICTION} of the predicted measure",
        "",
        "| device | measure | frontier points | candidates excluded | predicted measure range |",
        "|---|---|---:|---:|---|",
    ]
    for device, per_measure in summary.get("pareto", {}).items():
        for measure, p in per_measure.items():
            lines.append(
                f"| {device} | {MEASURE_SHORT[measure]} | {p['points']} | {p['excluded_untrusted']} of {p['candidates']} | "
                f"{p['cost_range'][0]:.4g} to {p['cost_range'][1]:.4g} |"
            )
    glue = summary["glue"]
    paper, rand, loo = glue["paper_split"], glue["random_splits"], glue["leave_one_out"]
    lines += [
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
        "",
        "## Figures",
        "",
    ]
    lines += [f"- `{name}`" for name in summary["files"] if name.endswith(".png")]
    return "\n".join(lines) + "\n"
