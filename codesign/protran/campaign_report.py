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
* ``fig13_contours_<device>.png``: the surrogate fitted on every campaign measurement,
  predicted over the candidate pool and up to ``CONTOUR_SAMPLES`` more architectures
  sampled with the pool's own GFLOP cap (predicting the whole design space from models
  under the cap would be extrapolation), the measured architectures as points; skipped
  when they do not span both depth and width. Under a low cap the depth axis has few
  values (2 and 4 layers at 2 GFLOP/seq): the band between them is interpolation.
* ``fig14_pareto.png``: predicted GLUE score against each predicted measure over the
  campaign's candidate pool (same trust filter as the published report).
* ``campaign_measurements_<device>.png``: every measurement against GFLOP per sequence,
  marked by why it was queried, with the min-max spread over repeats.
* Table VI from the measurements: the best measured architecture per measure (of the
  queried set only).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from codesign.architecture import Architecture
from codesign.protran.accuracy import DEFAULT_GLUE_FEATURES, DEFAULT_GLUE_REGRESSOR, GlueSurrogate, evaluate_glue_surrogate
from codesign.protran.campaign_store import CampaignStore, CampaignStoreError
from codesign.protran.comparison import holdout_evaluation, out_of_fold_predictions
from codesign.protran.evaluators import EvaluatorError, architecture_key
from codesign.protran.features import WorkloadContext, median_hidden, total_workload
from codesign.protran.measures import MEASURE_LABELS, MEASURE_SHORT, MEASURES, PerformanceMeasurement
from codesign.protran.report import (
    REPORT_GLUE_SPLITS,
    TRUSTED_PREDICTION,
    _pyplot,
    _save,
    _write_text,
    fit_device_surrogates,
    measured_best,
    pareto_front,
    plot_contours,
    plot_learning_curves,
    plot_pareto,
    plot_predicted_vs_measured,
    predict_measures,
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


def load_live_campaign(path: str | Path, device: str | None = None) -> LiveCampaign:
    """Read a live campaign file (refused when it is missing, of a published pool, or of another device)."""
    from codesign.design_space import default_space

    path = Path(path)
    if not path.is_file():
        raise CampaignReportError(f"{path}: campaign file not found")
    with CampaignStore(path) as store:
        config, state = store.config(), store.state()
        if config is None:
            raise CampaignReportError(f"{path}: not a campaign file (no configuration stored)")
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


def plot_campaign_measurements(campaign: LiveCampaign, path: Path) -> None:
    """Every measurement against GFLOP/seq, marked by query reason, with min-max spread over repeats."""
    plt = _pyplot()
    measured = campaign.measured
    gflop = np.array([total_workload(a, measured.context)["total_gflop"] for a in measured.pool])
    values = np.array([m.values() for m in measured.measurements])
    spread_keys = ("latency_s_per_seq", "energy_j_per_seq", "peak_power_w")
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), layout="constrained")
    markers = {"initial": ("o", "tab:blue"), "uncertainty": ("^", "tab:orange"), "random": ("s", "tab:green")}
    for i, measure in enumerate(MEASURES):
        ax = axes[i]
        for reason, (marker, colour) in markers.items():
            chosen = [k for k, r in enumerate(measured.reasons) if r == reason]
            if not chosen:
                continue
            low, high = [], []
            for k in chosen:
                spread = (measured.measurements[k].extra.get("spread") or {}).get(spread_keys[i]) or {}
                low.append(values[k, i] - float(spread.get("min", values[k, i])))
                high.append(float(spread.get("max", values[k, i])) - values[k, i])
            ax.errorbar(
                gflop[chosen], values[chosen, i], yerr=[np.maximum(low, 0), np.maximum(high, 0)], fmt=marker, color=colour,
                markersize=5, elinewidth=0.8, capsize=2, label=f"{reason} ({len(chosen)})",
            )
        for k in range(len(measured.pool)):
            ax.annotate(str(k), (gflop[k], values[k, i]), textcoords="offset points", xytext=(3, 3), fontsize=6, alpha=0.6)
        ax.set_xlabel("GFLOP per sequence (workload count)")
        ax.set_ylabel(f"measured {MEASURE_LABELS[measure]}")
        ax.set_title(MEASURE_SHORT[measure])
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper left")
    emulated = " (EMULATED board)" if _emulated(campaign) else ""
    fig.suptitle(
        f"{measured.device}{emulated}: {len(measured.pool)} measurements in query order (numbers); bars: min-max over repeats"
    )
    _save(fig, path)


def _emulated(campaign: LiveCampaign) -> bool:
    return any(bool(m.extra.get("emulated")) for m in campaign.measured.measurements)


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
) -> dict:
    """Write the figures and ``summary.md`` of a live campaign file into ``out``; return the numbers."""
    say = progress or (lambda message: None)
    out = Path(out)
    campaign = load_live_campaign(store, device)
    config, measured = campaign.config, campaign.measured
    name = measured.device
    regressor = regressor or config["regressor"]
    features = config["features"]
    threshold = float(config["threshold"])
    if len(measured) < 2:
        raise CampaignReportError(f"{campaign.path}: {len(measured)} measurement(s); a report needs at least 2")
    summary: dict = {
        "kind": "live campaign",
        "store": str(campaign.path),
        "device": name,
        "emulated": _emulated(campaign),
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
        "skipped": [],
    }
    summary["pool"]["candidates"] = len(campaign.candidates)
    summary["measurements"] = _measurement_rows(measured)

    say("learning curve from the stored history")
    if campaign.history:
        curve = {
            config["regressor"]: {
                "points": [{"samples": r["samples"], "val_mse": r["val_mse"], "never_queried_mse": None} for r in campaign.history]
            }
        }
        path = out / f"fig7_validation_mse_{name}.png"
        plot_learning_curves(
            curve, name, threshold, path,
            title=f"{name}: validation MSE of the live campaign (5-fold on the queried set); no never-queried MSE (no truth)",
        )
        summary["files"].append(path.name)
        summary["history"] = [
            {"samples": r["samples"], "val_mse": r["val_mse"], "below_threshold": r["below_threshold"]} for r in campaign.history
        ]
    else:
        summary["skipped"].append("Fig. 7: no fitted surrogate stored yet")
    summary["skipped"].append("never-queried MSE (Fig. 7 dotted lines): needs measurements of architectures the campaign did not query")

    if len(measured) >= MIN_HOLDOUT:
        say("out-of-fold predictions of the measured architectures")
        oof = out_of_fold_predictions(measured, regressor, features, seed, HOLDOUT_FOLDS)
        path = out / f"fig8_predicted_vs_measured_{name}.png"
        plot_predicted_vs_measured(
            oof, name, regressor, path,
            title=f"{name}: {regressor} out-of-fold (5-fold) predictions vs the campaign's {len(measured)} measurements",
        )
        summary["files"].append(path.name)
        summary["holdout"] = {f: holdout_evaluation(measured, regressor, f, seed, HOLDOUT_FOLDS) for f in ("embedding", "workload")}
    else:
        summary["skipped"].append(f"Fig. 8 and held-out error: {len(measured)} measurements (at least {MIN_HOLDOUT} needed)")

    say("surrogates on every measurement: contours")
    models, maxima = fit_device_surrogates(measured, regressor, features, seed)
    samples = _contour_samples(campaign, seed)
    if _has_area(samples) and _has_area(measured.pool):
        path = out / f"fig13_contours_{name}.png"
        cap = campaign.pool_record.get("max_gflop")
        where = f"at most {cap:g} GFLOP/seq" if cap else "the whole space"
        plot_contours(
            measured, models, maxima, features, seed, path, samples=samples,
            title=f"{name}: surrogate prediction over {len(samples)} sampled architectures of {where} (contours) "
            "and the campaign's measurements (points)",
        )
        summary["files"].append(path.name)
    else:
        summary["skipped"].append("Fig. 13: the architectures do not span both depth and width")

    say("Pareto frontiers over the candidate pool")
    glue = evaluate_glue_surrogate(glue_regressor, glue_features, seed, glue_splits)
    summary["glue"] = glue
    glue_model = GlueSurrogate(glue_regressor, glue_features, seed)
    candidates = campaign.candidates
    mean, std = predict_measures(models, maxima, candidates, measured, features)
    glue_mean, _ = glue_model.predict(candidates)
    frontier: dict = {}
    for i, measure in enumerate(MEASURES):
        trusted = np.flatnonzero(mean[:, i] - std[:, i] > 0)
        front = trusted[pareto_front(mean[trusted, i], glue_mean[trusted])]
        frontier[measure] = {
            "cost": mean[front, i], "glue": glue_mean[front], "excluded": int(len(candidates) - len(trusted)),
            "candidates": len(candidates),
        }
    note = (
        f"{name}: candidate pool of {len(candidates)}. GLUE from {glue_regressor} on {glue['scored_models']} scored models "
        f"(leave-one-out MSE {glue['leave_one_out']['mse']:.4f} vs {glue['leave_one_out']['mse_train_mean']:.4f} for the mean)"
    )
    path = out / "fig14_pareto.png"
    plot_pareto({name: frontier}, path, note)
    summary["files"].append(path.name)
    summary["pareto"] = {
        m: {
            "points": int(len(v["cost"])), "candidates": v["candidates"], "excluded_untrusted": v["excluded"],
            "glue_range": [float(v["glue"].min()), float(v["glue"].max())] if len(v["cost"]) else None,
            "cost_range": [float(v["cost"].min()), float(v["cost"].max())] if len(v["cost"]) else None,
        }
        for m, v in frontier.items()
    }

    say("measurements figure")
    path = out / f"campaign_measurements_{name}.png"
    plot_campaign_measurements(campaign, path)
    summary["files"].append(path.name)
    summary["table_vi_measured"] = measured_best(measured)
    _write_text(out / "summary.md", campaign_markdown(summary))
    _write_text(out / "summary.json", json.dumps(summary, indent=2, default=float) + "\n")
    summary["files"] += ["summary.md", "summary.json"]
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
    lines = [
        f"# ProTran report: live campaign on {summary['device']}",
        "",
        f"Campaign file `{summary['store']}`; device `{summary['device']}`{emulated}.",
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
        "| # | why | layers | median hidden | GFLOP/seq | M params | latency ms | energy mJ | peak W | idle W | runs x repeats | s |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for row in summary["measurements"]:
        lines.append(
            f"| {row['position']} | {row['reason']} | {row['layers']} | {row['median_hidden']:g} | {row['gflop']:.3f} | "
            f"{row['mparams']:.1f} | {row['latency_s'] * 1e3:.3f} | {row['energy_j'] * 1e3:.3f} | {row['peak_power_w']:.3f} | "
            f"{_num(row['idle_power_w'], '.3f')} | {row['runs']} x {row['repeats']} | {_num(row['seconds'], '.1f')} |"
        )
    if summary.get("history"):
        lines += ["", "## Validation MSE (5-fold on the queried set) per fit", "", "| samples | latency | energy | peak power | all below |", "|---:|---:|---:|---:|---|"]
        for r in summary["history"]:
            lines.append(
                f"| {r['samples']} | " + " | ".join(f"{r['val_mse'][m]:.4f}" for m in MEASURES) + f" | {'yes' if r['below_threshold'] else 'no'} |"
            )
    if summary.get("holdout"):
        lines += [
            "",
            "## Held-out error over the measured set (5-fold)",
            "",
            "| features | MSE lat / en / pp | +-10% lat / en / pp | 1 sigma lat / en / pp | 2 sigma lat / en / pp |",
            "|---|---|---|---|---|",
        ]
        for features, h in summary["holdout"].items():
            lines.append(
                f"| {features} | " + " / ".join(f"{h['mse'][m]:.4f}" for m in MEASURES) + " | "
                + " / ".join(_pct(h["within_10pct"][m]) for m in MEASURES) + " | "
                + " / ".join(_pct(h["coverage"][m]["within_1sigma"]) for m in MEASURES) + " | "
                + " / ".join(_pct(h["coverage"][m]["within_2sigma"]) for m in MEASURES) + " |"
            )
    lines += [
        "",
        "## Table VI from the measurements: best measured architecture per measure",
        "",
        "| measure | key | layers | latency ms | energy J | peak power W |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for measure, b in summary["table_vi_measured"].items():
        lines.append(
            f"| min {MEASURE_SHORT[measure]} | `{b['key'][:12]}` | {b['layers']} | {b['latency_ms']:.4g} | {b['energy_j']:.4g} | {b['peak_power_w']:.4g} |"
        )
    lines += [
        "",
        f"## Pareto frontiers (Fig. 14) over the candidate pool, where {TRUSTED_PREDICTION}",
        "",
        "| measure | frontier points | excluded | predicted measure range |",
        "|---|---:|---:|---|",
    ]
    for measure, p in summary["pareto"].items():
        span = "-" if p["cost_range"] is None else f"{p['cost_range'][0]:.4g} to {p['cost_range'][1]:.4g}"
        lines.append(f"| {MEASURE_SHORT[measure]} | {p['points']} | {p['excluded_untrusted']} of {p['candidates']} | {span} |")
    lines += ["", "## Figures", ""]
    lines += [f"- `{name}`: {_figure_note(name)}" for name in summary["files"] if name.endswith(".png")]
    return "\n".join(lines) + "\n"


FIGURE_NOTES = {
    "fig7_": "the campaign's validation MSE per fit (stored history), threshold dashed; no never-queried curve (no truth)",
    "fig8_": "out-of-fold predictions of the measured architectures against the measurements, +-10% band shaded",
    "fig13_": "surrogate fitted on every measurement, predicted over the candidate pool and more capped samples; "
    "measured architectures as points (depth values between those sampled are interpolated)",
    "fig14_": "predicted GLUE score against each predicted measure over the candidate pool (Pareto frontiers)",
    "campaign_measurements_": "every measurement against GFLOP/seq, by query reason, min-max over repeats",
}


def _figure_note(name: str) -> str:
    return next((note for prefix, note in FIGURE_NOTES.items() if name.startswith(prefix)), "")
