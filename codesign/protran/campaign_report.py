"""Report of a live campaign (``edgetran protran report --device rig:<board> --store DB``).

A live campaign has no published truth: only the architectures it queried were
measured. Everything here is read from the campaign file (configuration, candidate
pool, measurements, history); nothing is measured again and no rig is needed. Compared
with the published-pool report (:mod:`codesign.protran.report`):

* ``fig7_validation_mse_<device>.png``: the campaign's own validation MSE (5-fold on the
  queried set, from the stored history) against the number of evaluated architectures,
  with the threshold. The never-queried MSE (dotted in the published report) needs the
  truth of architectures nobody measured: skipped. The published report's one line per
  regressor would re-run the loop, i.e. re-measure: one line, the campaign's regressor.
* ``fig8_predicted_vs_measured_<device>.png``: out-of-fold (5-fold) predictions of the
  campaign's regressor against what the campaign measured (the queried set: like the
  validation MSE, pessimistic for the pool at large, since queries chase uncertainty).
* ``fig13_depth_width_<device>.png``: the surrogate fitted on every campaign measurement,
  predicted over the candidate pool and up to ``CONTOUR_SAMPLES`` more architectures
  sampled with the pool's own GFLOP cap (predicting the whole design space from models
  under the cap would be extrapolation): the mean prediction per (median hidden size,
  layers) cell that exists, the measured architectures as points inside their cells;
  skipped when they do not span both depth and width. Under a low cap the depth axis has
  few values (2 and 4 layers at 2 GFLOP/seq): two rows, nothing drawn between them.
* ``fig14_pareto.png``: predicted GLUE score against each predicted measure over the
  campaign's candidate pool (same trust filter as the published report; marked NOT
  INFORMATIVE when the GLUE surrogate does not beat the mean).
* ``campaign_measurements_<device>.png``: every measurement against GFLOP per sequence,
  marked by why it was queried, with the min-max spread over repeats.
* Table VI from the measurements: the best measured architecture per measure (of the
  queried set only).
* Held-out error (5-fold over the measured set) of the campaign's own feature set, with
  the mean predictor's MSE and R^2. The 37-d index embedding is not scored here: with a
  dozen measurements its per-layer slots are zero for every model shallower than the
  held-out one and the surrogate extrapolates along them (the README's 12-measurement
  campaign gave a latency MSE of 6.4 on max-normalised values, from one prediction of
  9.8x the maximum); the published report compares feature sets on pools of 17-191.

Titles start with ``[EMULATED]`` (virtual rig) or ``[MEASURED]``; units are ms/seq,
mJ/seq and W in every figure and table (:mod:`codesign.protran.report_figures`). The
report is built beside ``out`` and moved into place (an interrupted one leaves the
previous report intact).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from codesign.architecture import Architecture
from codesign.protran.accuracy import DEFAULT_GLUE_FEATURES, DEFAULT_GLUE_REGRESSOR, GlueSurrogate, evaluate_glue_surrogate
from codesign.protran.campaign_store import CampaignStore
from codesign.protran.comparison import holdout_evaluation, out_of_fold_predictions
from codesign.atomic_io import write_text_atomically
from codesign.protran.evaluators import EvaluatorError, architecture_key
from codesign.protran.features import WorkloadContext, median_hidden, total_workload
from codesign.protran.measures import MEASURE_SHORT, MEASURES, PerformanceMeasurement
from codesign.protran.report import (
    REPORT_GLUE_SPLITS,
    Steps,
    depth_width_cells,
    figure_lines,
    fit_device_surrogates,
    frontier_of,
    frontier_summary,
    glue_informative,
    glue_lines,
    glue_note,
    holdout_rows,
    HOLDOUT_HEADER,
    measured_best,
    open_report_directory,
    pareto_lines,
    predict_measures,
    range_notes,
    units_line,
)
from codesign.protran.report_figures import (
    display_units,
    measure_label,
    origin_title,
    padded_limits,
    plot_depth_width,
    plot_learning_curves,
    plot_pareto,
    plot_predicted_vs_measured,
    save_figure,
    to_display,
    _pyplot,
)

CONTOUR_SAMPLES = 256  # architectures under the pool's cap predicted for the depth/width contours (at most)
CONTOUR_DRAW = 4096  # design-space samples drawn to find them
MIN_HOLDOUT = 6  # fewer measurements than this: no out-of-fold figure (5 folds of 1 point say nothing)
HOLDOUT_FOLDS = 5


class CampaignReportError(ValueError):
    """A campaign file that cannot be reported (not a live campaign, another device, too few measurements)."""


@dataclass
class MeasuredSet:
    """The campaign's measured architectures, shaped like a published pool (``pool``, ``truth``, ``context``)."""

    device: str
    context: WorkloadContext
    pool: list[Architecture]
    measurements: list[PerformanceMeasurement]
    reasons: list[str]

    def __post_init__(self) -> None:
        self._by_key = {architecture_key(a): m for a, m in zip(self.pool, self.measurements)}

    def __len__(self) -> int:
        return len(self.pool)

    def truth(self, arch: Architecture) -> PerformanceMeasurement:
        """What the campaign measured for ``arch``."""
        key = architecture_key(arch)
        if key not in self._by_key:
            raise EvaluatorError(f"{self.device}: the campaign did not measure architecture {key}")
        return self._by_key[key]


@dataclass
class LiveCampaign:
    """Everything a live campaign file holds."""

    path: Path
    config: dict
    pool_record: dict
    candidates: list[Architecture]
    measured: MeasuredSet
    history: list[dict]
    state: dict


def load_live_campaign(path: str | Path, device: str | None = None, campaign: str | None = None) -> LiveCampaign:
    """Read a live campaign file (refused when it is missing, of a published pool, or of another device)."""
    from codesign.design_space import default_space

    path = Path(path)
    if not path.is_file():
        raise CampaignReportError(f"{path}: campaign file not found")
    with CampaignStore(path, campaign, read_only=True) as store:  # a report never migrates or writes the store
        config, state = store.config(), store.state()
        if config is None:
            which = f"no campaign {campaign!r}" if campaign else "no campaign"
            raise CampaignReportError(f"{path}: {which} in this store (`edgetran store campaigns --store {path}` lists them)")
        if "pool" not in state:
            raise CampaignReportError(f"{path}: a published-pool campaign of {config.get('device')!r}, not a live one")
        if device is not None and config.get("device") != device:
            raise CampaignReportError(f"{path}: a campaign of device {config.get('device')!r}, not {device!r}")
        evaluations = store.evaluations()
        history = store.history()
    space = default_space()
    pool_record = state["pool"]
    context = WorkloadContext(int(pool_record["sequence_length"]), int(pool_record["batch_size"]))
    measured = MeasuredSet(
        device=str(config["device"]),
        context=context,
        pool=[space.validate(e.architecture) for e in evaluations],
        measurements=[PerformanceMeasurement.from_dict(e.measurement) for e in evaluations],
        reasons=[e.reason for e in evaluations],
    )
    candidates = [space.validate(model) for model in pool_record["architectures"]]
    return LiveCampaign(path, config, pool_record, candidates, measured, history, state)


def plot_campaign_measurements(campaign: LiveCampaign, origin: str, path: Path) -> dict:
    """Every measurement against GFLOP/seq, marked by query reason, with min-max spread over repeats."""
    plt = _pyplot()
    measured = campaign.measured
    gflop = np.array([total_workload(a, measured.context)["total_gflop"] for a in measured.pool])
    values = to_display(np.array([m.values() for m in measured.measurements]), origin)
    factors = [display_units(origin)[m][1] for m in MEASURES]
    spread_keys = ("latency_s_per_seq", "energy_j_per_seq", "peak_power_w")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), layout="constrained")
    markers = {"initial": ("o", "tab:blue"), "uncertainty": ("^", "tab:orange"), "random": ("s", "tab:green")}
    for i, measure in enumerate(MEASURES):
        ax = axes[i]
        extent = [values[:, i]]
        for reason, (marker, colour) in markers.items():
            chosen = [k for k, r in enumerate(measured.reasons) if r == reason]
            if not chosen:
                continue
            low, high = [], []
            for k in chosen:
                spread = (measured.measurements[k].extra.get("spread") or {}).get(spread_keys[i]) or {}
                low.append(values[k, i] - float(spread.get("min", values[k, i] / factors[i])) * factors[i])
                high.append(float(spread.get("max", values[k, i] / factors[i])) * factors[i] - values[k, i])
            low, high = np.maximum(low, 0), np.maximum(high, 0)
            extent += [values[chosen, i] - low, values[chosen, i] + high]
            ax.errorbar(
                gflop[chosen], values[chosen, i], yerr=[low, high], fmt=marker, color=colour,
                markersize=5, elinewidth=0.8, capsize=2, label=f"{reason} ({len(chosen)})",
            )
        for k in range(len(measured.pool)):
            ax.annotate(str(k), (gflop[k], values[k, i]), textcoords="offset points", xytext=(3, 3), fontsize=6, alpha=0.6)
        ax.set_xlim(*padded_limits(gflop, False))
        ax.set_ylim(*padded_limits(np.concatenate(extent), False))
        ax.set_xlabel("GFLOP per sequence (counted workload)")
        ax.set_ylabel(f"measured {measure_label(measure, origin)}")
        ax.set_title(MEASURE_SHORT[measure])
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper left")
    fig.suptitle(origin_title(
        origin, f"{measured.device}: {len(measured.pool)} measurements in query order (numbers); bars: min-max over repeats"
    ))
    return save_figure(fig, path)


def _emulated(campaign: LiveCampaign) -> bool:
    return any(bool(m.extra.get("emulated")) for m in campaign.measured.measurements)


def campaign_origin(campaign: LiveCampaign) -> str:
    """``emulated`` when any measurement came from an emulated board, else ``measured``."""
    return "emulated" if _emulated(campaign) else "measured"


def _curve_point(record: dict) -> dict:
    """A Fig. 7 point from a stored history record: validation MSE and, when recorded, its mean-predictor MSE."""
    point = {"samples": record["samples"], "val_mse": record["val_mse"], "never_queried_mse": None}
    if record.get("val_mean_predictor_mse"):
        point["val_mean_predictor_mse"] = record["val_mean_predictor_mse"]
    if isinstance(record.get("held_out"), dict) and record["held_out"].get("mse"):
        point["held_out_mse"] = record["held_out"]["mse"]
    return point


def _contour_samples(campaign: LiveCampaign, seed: int) -> list[Architecture]:
    """Architectures for the contours: the candidate pool plus up to ``CONTOUR_SAMPLES`` of ``CONTOUR_DRAW``
    design-space samples within the pool's cap (one seeded draw, no top-up rounds, so a report stays quick)."""
    from codesign.sampling import sample_architectures

    record = campaign.pool_record
    cap = record.get("max_gflop")
    drawn = sample_architectures(record.get("sampler", "sobol"), CONTOUR_DRAW, seed + 1)
    context = campaign.measured.context
    fitting = [a for a in drawn if cap is None or total_workload(a, context)["total_gflop"] <= cap][:CONTOUR_SAMPLES]
    chosen, seen = [], set()
    for arch in [*campaign.candidates, *fitting]:
        key = architecture_key(arch)
        if key not in seen:
            seen.add(key)
            chosen.append(arch)
    return chosen


def _has_area(archs: list[Architecture]) -> bool:
    """Whether (median hidden size, layers) of the architectures span a 2-D region (contours need one)."""
    cells = {(median_hidden(a), a.layers) for a in archs}
    return len(cells) >= 3 and len({c[0] for c in cells}) >= 2 and len({c[1] for c in cells}) >= 2


def build_campaign_report(
    store: str | Path,
    out: Path,
    device: str | None = None,
    regressor: str | None = None,
    seed: int = 0,
    glue_regressor: str = DEFAULT_GLUE_REGRESSOR,
    glue_features: str = DEFAULT_GLUE_FEATURES,
    glue_splits: int = REPORT_GLUE_SPLITS,
    progress: Callable[[str], None] | None = None,
    campaign_name: str | None = None,
) -> dict:
    """Write the figures and ``summary.md`` of a live campaign file to ``out`` (built aside, moved into place)."""
    out = Path(out)
    campaign = load_live_campaign(store, device, campaign_name)
    config, measured = campaign.config, campaign.measured
    name = measured.device
    regressor = regressor or config["regressor"]
    features = config["features"]
    threshold = float(config["threshold"])
    if len(measured) < 2:
        raise CampaignReportError(f"{campaign.path}: {len(measured)} measurement(s); a report needs at least 2")
    origin = campaign_origin(campaign)
    say = Steps(5, progress)
    with open_report_directory(out) as work:
        summary: dict = {
            "kind": "live campaign",
            "origin": origin,
            "units": {m: display_units(origin)[m][0] for m in MEASURES},
            "store": str(campaign.path),
            "device": name,
            "emulated": origin == "emulated",
            "regressor": regressor,
            "campaign_regressor": config["regressor"],
            "features": features,
            "threshold": threshold,
            "seed": seed,
            "config": config,
            "status": campaign.state.get("status"),
            "pool": {k: v for k, v in campaign.pool_record.items() if k not in ("keys", "architectures")},
            "candidates": len(campaign.candidates),
            "measured": len(measured),
            "files": [],
            "figures": {},
            "skipped": [],
        }
        summary["pool"]["candidates"] = len(campaign.candidates)
        summary["measurements"] = _measurement_rows(measured)

        def saved(path: Path, facts: dict) -> None:
            summary["files"].append(path.name)
            summary["figures"][path.name] = facts

        say("learning curve from the stored history")
        if campaign.history:
            curve = {config["regressor"]: {"points": [_curve_point(r) for r in campaign.history]}}
            path = work / f"fig7_validation_mse_{name}.png"
            saved(path, plot_learning_curves(curve, threshold, path, origin_title(
                origin, f"{name}: validation MSE of the live campaign (5-fold on the queried set); no never-queried MSE (no truth)")))
            summary["history"] = [
                {"samples": r["samples"], "val_mse": r["val_mse"], "below_threshold": r["below_threshold"]} for r in campaign.history
            ]
        else:
            summary["skipped"].append("Fig. 7: no fitted surrogate stored yet")
        summary["skipped"].append("never-queried MSE (Fig. 7 dotted lines): needs measurements of architectures the campaign did not query")

        values = np.array([m.values() for m in measured.measurements])
        if len(measured) >= MIN_HOLDOUT:
            say("out-of-fold predictions of the measured architectures")
            oof = out_of_fold_predictions(measured, regressor, features, seed, HOLDOUT_FOLDS)
            path = work / f"fig8_predicted_vs_measured_{name}.png"
            saved(path, plot_predicted_vs_measured(oof, origin, path, origin_title(
                origin, f"{name}: {regressor} out-of-fold (5-fold) predictions vs the campaign's {len(measured)} measurements")))
            summary["holdout"] = {features: holdout_evaluation(measured, regressor, features, seed, HOLDOUT_FOLDS)}
            if features != "embedding":
                summary["skipped"].append(
                    "held-out error on the 37-d index embedding: with a dozen measurements its per-layer dimensions are "
                    "zero for every model shallower than the held-out one, and the surrogate extrapolates along them "
                    "(out-of-fold predictions of several times the maximum, so MSEs above 1 on max-normalised values); "
                    "the published report and bench compare feature sets on pools of 17-191"
                )
        else:
            summary["skipped"].append(f"Fig. 8 and held-out error: {len(measured)} measurements (at least {MIN_HOLDOUT} needed)")

        say("surrogates on every measurement: depth/width grid")
        models, maxima = fit_device_surrogates(measured, regressor, features, seed)
        samples = _contour_samples(campaign, seed)
        if _has_area(samples) and _has_area(measured.pool):
            cap = campaign.pool_record.get("max_gflop")
            where = f"with at most {cap:g} GFLOP/seq" if cap else "from the whole space"
            mean, _ = predict_measures(models, maxima, samples, measured, features)
            cells = depth_width_cells(samples, mean)
            extra = len(samples) - len(campaign.candidates)
            path = work / f"fig13_depth_width_{name}.png"
            saved(path, plot_depth_width(
                cells,
                {"width": [median_hidden(a) for a in measured.pool], "layers": [a.layers for a in measured.pool], "values": values},
                origin, path,
                origin_title(origin, f"{name}: mean prediction per cell over the {len(campaign.candidates)} candidates and {extra} more "
                             f"architectures sampled {where} ({len(cells)} cells; grey: none); the {len(measured)} measurements as points"),
                range_notes(cells, values, origin),
            ))
            summary["depth_width"] = {
                "candidates": len(campaign.candidates), "extra_samples": extra, "cells": len(cells),
                "layers": sorted({d for _, d in cells}),
            }
        else:
            summary["skipped"].append("Fig. 13: the architectures do not span both depth and width")

        say("Pareto frontiers over the candidate pool")
        glue = evaluate_glue_surrogate(glue_regressor, glue_features, seed, glue_splits)
        summary["glue"] = glue
        summary["glue_informative"] = glue_informative(glue)
        glue_model = GlueSurrogate(glue_regressor, glue_features, seed)
        candidates = campaign.candidates
        mean, std = predict_measures(models, maxima, candidates, measured, features)
        glue_mean, _ = glue_model.predict(candidates)
        frontier = frontier_of(mean, std, glue_mean)
        path = work / "fig14_pareto.png"
        saved(path, plot_pareto(
            {name: frontier}, origin, path,
            origin_title(origin, f"{name}: candidate pool of {len(candidates)}. {glue_note(glue, glue_regressor)}"),
            summary["glue_informative"],
        ))
        summary["pareto"] = {name: frontier_summary(frontier, origin)}

        say("measurements figure and summary")
        path = work / f"campaign_measurements_{name}.png"
        saved(path, plot_campaign_measurements(campaign, origin, path))
        summary["table_vi_measured"] = measured_best(measured, origin)
        summary["files"] += ["summary.md", "summary.json"]
        write_text_atomically(work / "summary.md", campaign_markdown(summary))
        write_text_atomically(work / "summary.json", json.dumps(summary, indent=2, default=float) + "\n")
    return summary


def _measurement_rows(measured: MeasuredSet) -> list[dict]:
    rows = []
    for k, (arch, m, reason) in enumerate(zip(measured.pool, measured.measurements, measured.reasons)):
        work = total_workload(arch, measured.context)
        rows.append({
            "position": k,
            "reason": reason,
            "key": architecture_key(arch),
            "layers": arch.layers,
            "median_hidden": median_hidden(arch),
            "gflop": work["total_gflop"],
            "mparams": work["total_mparams"],
            "latency_s": m.latency_s,
            "energy_j": m.energy_j,
            "peak_power_w": m.peak_power_w,
            "idle_power_w": m.extra.get("idle_power_w"),
            "runs": m.extra.get("runs"),
            "repeats": m.extra.get("repeats"),
            "seconds": m.extra.get("seconds"),
            "emulated": m.extra.get("emulated"),
            "trace": m.extra.get("trace"),
        })
    return rows


def _pct(value: float) -> str:
    return f"{100 * value:.0f}%"


def _num(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def campaign_markdown(summary: dict) -> str:
    """The markdown summary of a live campaign report."""
    config, pool = summary["config"], summary["pool"]
    emulated = " **EMULATED** (virtual rig: the board's power follows the runner's CPU activity on this host)" if summary["emulated"] else ""
    cap = pool.get("max_gflop")
    units = summary["units"]
    lines = [
        f"# ProTran report: live campaign on {summary['device']} ({summary['origin'].upper()})",
        "",
        f"Campaign file `{summary['store']}`; device `{summary['device']}`{emulated}.",
        "",
        units_line(summary),
        "",
        f"- loop: `{config['regressor']}` on `{config['features']}` features, seed {config['seed']}, initial {config['initial']}, "
        f"budget {config.get('budget')}, threshold {config['threshold']:g} for {config['patience']} consecutive fits; "
        f"status: {summary.get('status') or 'unfinished'} after {summary['measured']} measurements",
        f"- candidate pool: {summary['candidates']} architectures sampled by `{pool['sampler']}` (seed {pool['seed']}) "
        + (f"with at most {cap:g} GFLOP/seq" if cap else "from the whole space")
        + f" at {pool['sequence_length']} tokens, batch {pool['batch_size']}",
        f"- surrogate of the figures: `{summary['regressor']}`",
        "",
        "No published truth exists for a live device: only the queried architectures were measured. Skipped:",
        "",
    ]
    lines += [f"- {item}" for item in summary["skipped"]]
    lines += [
        "",
        "## Measurements (query order)",
        "",
        f"| # | why | layers | median hidden | GFLOP/seq | M params | latency {units['latency_s']} | energy {units['energy_j']} | "
        f"peak {units['peak_power_w']} | idle W | runs x repeats | s |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for row in summary["measurements"]:
        shown = to_display(np.array([[row["latency_s"], row["energy_j"], row["peak_power_w"]]]), summary["origin"])[0]
        lines.append(
            f"| {row['position']} | {row['reason']} | {row['layers']} | {row['median_hidden']:g} | {row['gflop']:.3f} | "
            f"{row['mparams']:.1f} | {shown[0]:.3f} | {shown[1]:.3f} | {shown[2]:.3f} | "
            f"{_num(row['idle_power_w'], '.3f')} | {row['runs']} x {row['repeats']} | {_num(row['seconds'], '.1f')} |"
        )
    if summary.get("history"):
        lines += [
            "", "## Validation MSE (5-fold on the queried set, max-normalised) per fit", "",
            "| samples | latency | energy | peak power | all below |", "|---:|---:|---:|---:|---|",
        ]
        for r in summary["history"]:
            lines.append(
                f"| {r['samples']} | " + " | ".join(f"{r['val_mse'][m]:.4f}" for m in MEASURES) + f" | {'yes' if r['below_threshold'] else 'no'} |"
            )
    if summary.get("holdout"):
        lines += [
            "",
            "## Held-out error over the measured set (5-fold)",
            "",
            "MSE of max-normalised values next to the MSE of predicting the training folds' mean and R^2 = 1 - MSE / that "
            "(R^2 <= 0: no better than the mean).",
            "",
            HOLDOUT_HEADER.format(first=""),
            "|---|---|---|---|---|---|---|",
        ]
        lines += holdout_rows(summary["holdout"])
    lines += [
        "",
        "## Table VI from the measurements: best measured architecture per measure",
        "",
        f"| measure | key | layers | latency {units['latency_s']} | energy {units['energy_j']} | peak power {units['peak_power_w']} |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for measure, b in summary["table_vi_measured"].items():
        lines.append(
            f"| min {MEASURE_SHORT[measure]} | `{b['key'][:12]}` | {b['layers']} | "
            + " | ".join(f"{b[m]:.4g}" for m in MEASURES) + " |"
        )
    lines += pareto_lines(summary)
    lines += glue_lines(summary)
    lines += figure_lines(summary)
    lines += ["", "What each figure shows:", ""]
    lines += [f"- `{name}`: {_figure_note(name)}" for name in summary["files"] if name.endswith(".png")]
    return "\n".join(lines) + "\n"


FIGURE_NOTES = {
    "fig7_": "the campaign's validation MSE per fit (stored history), threshold dashed; no never-queried curve (no truth)",
    "fig8_": "out-of-fold predictions of the measured architectures against the measurements, +-10% band shaded",
    "fig13_": "mean prediction of the surrogate fitted on every measurement, per (median hidden size, layers) cell that "
    "exists among the candidate pool and more capped samples; no colour between layer counts no architecture has; "
    "measured architectures as points inside their cells",
    "fig14_": "predicted GLUE score against each predicted measure over the candidate pool (Pareto frontiers)",
    "campaign_measurements_": "every measurement against GFLOP/seq, by query reason, min-max over repeats",
}


def _figure_note(name: str) -> str:
    return next((note for prefix, note in FIGURE_NOTES.items() if name.startswith(prefix)), "")
