"""The figures of a ProTran report (PNG, matplotlib): units, origin, ticks and limits a reviewer can trust.

Choices (issue #12, "figures a reviewer would accept"):

* **One unit per measure and origin**, used by every figure and table of a report
  (:func:`display_units`): live campaigns (measured or emulated) show ms/seq, mJ/seq and
  W; the published data keep the authors' stored units, worded as
  :data:`codesign.protran.measures.PUBLISHED_LABELS` says (s and J per evaluation run,
  not per sequence): rescaling them to "ms" would invite a comparison with live per-sequence
  numbers that the data do not support.
* **The origin in every title**: each suptitle starts with ``[EMULATED]``,
  ``[PUBLISHED]`` or ``[MEASURED]`` (:func:`origin_title`), and the PNG's ``Title``
  metadata holds the same text.
* **Nothing drawn at or past an edge**: axis limits come from every plotted point with a
  margin (:func:`padded_limits`); :func:`figure_facts` records, per panel, the limits,
  scales, labelled ticks and the number of plotted points outside the limits (shrunk by
  ``EDGE_MARGIN``), so tests and ``summary.json`` can check it.
* **Counts get integer ticks** (Fig. 7's evaluated architectures). An axis is logarithmic
  only when its values span more than ``LOG_AXES_ABOVE_RATIO`` (10x), and then has labels
  at 1, 2 and 5 per decade: any span of 10x holds at least three of them (beyond
  ``MAX_DECADES_FOR_125`` decades, at powers of ten only, so labels do not overlap).
* **Fig. 13 is a grid of the (median hidden size, layers) cells that exist**: one cell
  per pair present among the predicted architectures, coloured by the mean prediction of
  its architectures; no colour between layer counts that no architecture has (a
  contour plot interpolated between 2 and 4 layers with fractional ticks and drew
  wedges where the capped pool has no models); every measured architecture is drawn
  inside its cell, side by side when several share one, so none hides another; the
  colour scale is linear unless the values span more than ``LOG_AXES_ABOVE_RATIO``, so a
  narrow peak-power range still shows its variation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from codesign.atomic_io import atomic_path
from codesign.protran.measures import MEASURE_SHORT, MEASURES, PUBLISHED_LABELS

FIGURE_DPI = 110
WITHIN_BAND = 0.10  # +-10% band of Fig. 8
LOG_AXES_ABOVE_RATIO = 10.0  # log axes (and log colour scales) only when values span more than this ratio
AXIS_PADDING = 0.06  # margin beyond the outermost points, as a fraction of the span (of log10 on log axes)
EDGE_MARGIN = 0.01  # a point closer to an edge than this fraction of the span counts as clipped
ORIGINS = ("emulated", "measured", "published")
LIVE_UNITS = {"latency_s": ("ms/seq", 1e3), "energy_j": ("mJ/seq", 1e3), "peak_power_w": ("W", 1.0)}
MAX_DECADES_FOR_125 = 3.0  # log axes spanning more decades are labelled at powers of ten only (still >= 3 labels)
MAX_CATEGORY_LABELS = 12  # Fig. 13 labels every k-th median hidden size beyond this many columns


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# -- units and origin ----------------------------------------------------------------------


def display_units(origin: str) -> dict[str, tuple[str, float]]:
    """Per measure: the unit text and the factor from the stored value (s, J, W) to the displayed one."""
    if origin not in ORIGINS:
        raise ValueError(f"unknown origin {origin!r} (known: {', '.join(ORIGINS)})")
    if origin == "published":  # the wording of codesign.protran.measures.PUBLISHED_LABELS, e.g. "s/run"
        return {m: (PUBLISHED_LABELS[m].split("(", 1)[1].rstrip(")").split(",")[0], 1.0) for m in MEASURES}
    return dict(LIVE_UNITS)


def measure_label(measure: str, origin: str) -> str:
    """Axis label of a measure with its displayed unit, e.g. ``latency (ms/seq)``."""
    return f"{MEASURE_SHORT[measure]} ({display_units(origin)[measure][0]})"


def to_display(values: np.ndarray, origin: str) -> np.ndarray:
    """Values ``(n, 3)`` in stored units (s, J, W) scaled to the displayed units."""
    factors = np.array([display_units(origin)[m][1] for m in MEASURES])
    return np.asarray(values, dtype=float) * factors


def origin_title(origin: str, text: str) -> str:
    """A figure title that starts with its origin in capitals: ``[EMULATED] virtual-rpi4: ...``."""
    if origin not in ORIGINS:
        raise ValueError(f"unknown origin {origin!r} (known: {', '.join(ORIGINS)})")
    return f"[{origin.upper()}] {text}"


# -- limits, ticks and facts ---------------------------------------------------------------


def padded_limits(values: np.ndarray, logarithmic: bool, padding: float = AXIS_PADDING) -> tuple[float, float]:
    """Limits that hold every (finite; on log axes positive) value with a margin on both sides."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values) & ((values > 0) if logarithmic else True)]
    if values.size == 0:
        return (0.1, 10.0) if logarithmic else (0.0, 1.0)
    low, high = float(values.min()), float(values.max())
    if logarithmic:
        a, b = np.log10(low), np.log10(high)
        span = max(b - a, 0.05)
        return float(10 ** (a - padding * span)), float(10 ** (b + padding * span))
    span = high - low if high > low else max(abs(high), 1.0) * 0.1
    return low - padding * span, high + padding * span


def use_log_ticks(axis, low: float, high: float) -> None:
    """Labelled ticks at 1, 2 and 5 per decade on a log axis from ``low`` to ``high`` (only at powers of ten beyond
    ``MAX_DECADES_FOR_125`` decades, where 1-2-5 labels would overlap), without crowded minor labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    decades = np.log10(high / low) if low > 0 and high > low else 1.0
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if decades <= MAX_DECADES_FOR_125 else (1.0,)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.3g}"))
    axis.set_minor_formatter(NullFormatter())


def use_count_ticks(axis) -> None:
    """Integer ticks only (an axis of counts)."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _inside(value: float, limits: tuple[float, float], scale: str) -> bool:
    low, high = sorted(limits)
    if scale == "log":
        if value <= 0 or low <= 0:
            return False
        value, low, high = np.log10(value), np.log10(low), np.log10(high)
    margin = EDGE_MARGIN * (high - low)
    return bool(low + margin <= value <= high - margin)


def _panel_points(ax) -> np.ndarray:
    """Data coordinates of every plotted marker of a panel (scatter offsets and marker lines)."""
    from matplotlib.collections import PathCollection
    from matplotlib.lines import Line2D

    points = []
    for collection in ax.collections:
        if isinstance(collection, PathCollection):
            offsets = np.asarray(collection.get_offsets(), dtype=float)
            if offsets.size:
                points.append(offsets.reshape(-1, 2))
    for line in ax.lines:
        if isinstance(line, Line2D) and line.get_marker() not in (None, "", " ", "None", "none") and line.get_visible():
            xy = np.column_stack([np.asarray(line.get_xdata(), dtype=float), np.asarray(line.get_ydata(), dtype=float)])
            if xy.size:
                points.append(xy)
    return np.concatenate(points) if points else np.empty((0, 2))


def _labelled_ticks(ax, which: str) -> list[list]:
    axis = ax.xaxis if which == "x" else ax.yaxis
    limits = sorted(ax.get_xlim() if which == "x" else ax.get_ylim())
    ticks = []
    for minor in (False, True):
        locations = axis.get_minorticklocs() if minor else axis.get_majorticklocs()
        labels = ax.get_xticklabels(minor=minor) if which == "x" else ax.get_yticklabels(minor=minor)
        for location, label in zip(locations, labels):
            if label.get_text().strip() and limits[0] <= location <= limits[1]:
                ticks.append([float(location), label.get_text()])
    return ticks


def figure_facts(fig) -> dict:
    """What a reader sees: the title and, per panel, labels, limits, scales, labelled ticks and clipped points."""
    title = fig._suptitle.get_text() if fig._suptitle is not None else ""
    panels = []
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            continue
        xlim, ylim = tuple(map(float, ax.get_xlim())), tuple(map(float, ax.get_ylim()))
        xscale, yscale = ax.get_xscale(), ax.get_yscale()
        points = _panel_points(ax)
        outside = sum(1 for x, y in points if not (_inside(x, xlim, xscale) and _inside(y, ylim, yscale)))
        panels.append({
            "title": ax.get_title(), "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(),
            "xlim": list(xlim), "ylim": list(ylim), "xscale": xscale, "yscale": yscale,
            "xticks": _labelled_ticks(ax, "x"), "yticks": _labelled_ticks(ax, "y"),
            "points": int(len(points)), "distinct_points": int(len({(round(x, 9), round(y, 9)) for x, y in points})),
            "outside": int(outside),
        })
    return {"title": title, "panels": panels}


def save_figure(fig, path: Path) -> dict:
    """Write the PNG atomically (mode from the umask), with its title as PNG metadata; return :func:`figure_facts`."""
    plt = _pyplot()
    try:
        fig.canvas.draw()  # tick labels exist only once drawn
        facts = figure_facts(fig)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=FIGURE_DPI, bbox_inches="tight", metadata={"Title": facts["title"]})
    finally:
        plt.close(fig)
    return facts


# -- figures -------------------------------------------------------------------------------


def plot_learning_curves(curves: dict, threshold: float, path: Path, title: str) -> dict:
    """Fig. 7: validation MSE (solid) against evaluated architectures, with the optional curves a record carries.

    Per curve point: ``val_mse`` (solid); ``never_queried_mse`` (dotted), ``held_out_mse``
    (dash-dot, the fixed seeded test split) and ``val_mean_predictor_mse`` (grey, the error
    of predicting the training folds' mean on the first curve's validation folds) when present.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), layout="constrained")
    colours = plt.get_cmap("tab10")
    all_samples = [p["samples"] for curve in curves.values() for p in curve["points"]]
    for i, measure in enumerate(MEASURES):
        ax = axes[i]
        values = [threshold]
        for k, (name, curve) in enumerate(curves.items()):
            points = curve["points"]
            samples = [p["samples"] for p in points]
            solid = [p["val_mse"][measure] for p in points]
            ax.plot(samples, solid, color=colours(k), marker="o", markersize=3, label=f"{name}: validation (5-fold on queried)")
            values += solid
            for key, style, text in (
                ("never_queried_mse", ":", "never queried"), ("held_out_mse", "-.", "fixed held-out split"),
            ):
                pairs = [(p["samples"], p[key][measure]) for p in points if p.get(key)]
                if pairs:
                    ax.plot(*zip(*pairs), color=colours(k), linestyle=style, linewidth=1, label=f"{name}: {text}")
                    values += [v for _, v in pairs]
            base = [(p["samples"], p["val_mean_predictor_mse"][measure]) for p in points if p.get("val_mean_predictor_mse")]
            if base and k == 0:  # one baseline: the validation sets of the curves differ little
                ax.plot(*zip(*base), color="grey", linewidth=1.2, alpha=0.7, label=f"mean predictor on {name}'s validation folds")
                values += [v for _, v in base]
        ax.axhline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
        values = np.array(values)
        logarithmic = values.min() > 0 and values.max() / values.min() > LOG_AXES_ABOVE_RATIO
        limits = padded_limits(values, logarithmic)
        if logarithmic:
            ax.set_yscale("log")
            use_log_ticks(ax.yaxis, *limits)
        ax.set_ylim(*limits)
        ax.set_xlim(*padded_limits(np.array(all_samples, dtype=float), False))
        use_count_ticks(ax.xaxis)
        ax.set_xlabel("evaluated architectures")
        ax.set_ylabel(f"MSE of max-normalised {MEASURE_SHORT[measure]}")
        ax.set_title(MEASURE_SHORT[measure])
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 4), fontsize=9)
    fig.suptitle(title)
    return save_figure(fig, path)


def plot_predicted_vs_measured(oof: dict, origin: str, path: Path, title: str) -> dict:
    """Fig. 8: out-of-fold predictions with +-1 sigma bars against measurements, +-10% band shaded.

    ``oof`` holds ``measured``, ``mean``, ``std`` ``(n, 3)`` in stored units. On log axes a
    prediction at or below zero cannot be drawn: the panel title counts such points.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), layout="constrained")
    measured, mean, std = (to_display(oof[k], origin) for k in ("measured", "mean", "std"))
    for i, measure in enumerate(MEASURES):
        ax = axes[i]
        y, m, s = measured[:, i], mean[:, i], std[:, i]
        shown = np.concatenate([y, m])
        logarithmic = shown.min() > 0 and shown.max() / shown.min() > LOG_AXES_ABOVE_RATIO
        if not logarithmic and y.min() > 0 and y.max() / y.min() > LOG_AXES_ABOVE_RATIO:
            logarithmic = True  # some predictions <= 0: drawn as a count, the measured range decides the axes
        drawable = (m > 0) if logarithmic else np.ones_like(m, dtype=bool)
        low, high = padded_limits(np.concatenate([y, m[drawable]]), logarithmic)
        line = np.geomspace(low, high, 50) if logarithmic else np.linspace(low, high, 50)
        ax.fill_between(line, line * (1 - WITHIN_BAND), line * (1 + WITHIN_BAND), color="green", alpha=0.15, label="+-10%")
        ax.plot(line, line, color="black", linewidth=1)
        ax.errorbar(
            y[drawable], m[drawable], yerr=s[drawable], fmt="o", markersize=3, elinewidth=0.8, alpha=0.8,
            label="prediction +- 1 sigma",
        )
        if logarithmic:
            ax.set_xscale("log")
            ax.set_yscale("log")
            use_log_ticks(ax.xaxis, low, high)
            use_log_ticks(ax.yaxis, low, high)
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        inside = float(np.mean(np.abs(y - m) <= s))
        within = float(np.mean(np.abs(y - m) <= WITHIN_BAND * y))
        hidden = int((~drawable).sum())
        note = f"; {hidden} prediction(s) <= 0 not drawn" if hidden else ""
        ax.set_title(f"{MEASURE_SHORT[measure]}: {within:.0%} within +-10%, {inside:.0%} within 1 sigma{note}", fontsize=10)
        ax.set_xlabel(f"measured {measure_label(measure, origin)}")
        ax.set_ylabel(f"predicted {measure_label(measure, origin)}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper left")
    fig.suptitle(title)
    return save_figure(fig, path)


def _spread_in_cell(count: int) -> list[tuple[float, float]]:
    """Offsets (cell units, within +-0.35, centred) for ``count`` markers sharing one cell: a small square grid."""
    if count == 1:
        return [(0.0, 0.0)]
    side = int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / side))
    step = 0.7 / side
    return [(step * (k % side - (side - 1) / 2), step * ((rows - 1) / 2 - k // side)) for k in range(count)]


def plot_depth_width(
    predicted_cells: dict, points: dict, origin: str, path: Path, title: str, panel_notes: Sequence[str] = ("", "", ""),
) -> dict:
    """Fig. 13: mean prediction per (median hidden size, layers) cell that exists; measured architectures inside their cells.

    ``predicted_cells``: ``{(median_hidden, layers): (count, mean (3,) in stored units)}``;
    ``points``: ``width``, ``layers`` and ``values`` ``(n, 3)`` (stored units) of the measured architectures.
    """
    plt = _pyplot()
    from matplotlib.colors import LogNorm, Normalize

    widths = sorted({w for w, _ in predicted_cells} | set(np.asarray(points["width"]).tolist()))
    depths = sorted({d for _, d in predicted_cells} | set(int(d) for d in points["layers"]))
    column = {w: k for k, w in enumerate(widths)}
    row = {d: k for k, d in enumerate(depths)}
    grid = np.full((len(depths), len(widths), 3), np.nan)
    for (w, d), (_, mean) in predicted_cells.items():
        grid[row[d], column[w]] = to_display(np.asarray(mean)[None, :], origin)[0]
    values = to_display(np.asarray(points["values"], dtype=float).reshape(-1, 3), origin)
    by_cell: dict = {}
    for k, (w, d) in enumerate(zip(np.asarray(points["width"]).tolist(), [int(d) for d in points["layers"]])):
        by_cell.setdefault((w, d), []).append(k)
    px, py = np.empty(len(values)), np.empty(len(values))
    for (w, d), members in by_cell.items():
        for k, (dx, dy) in zip(members, _spread_in_cell(len(members))):
            px[k], py[k] = column[w] + dx, row[d] + dy

    fig, axes = plt.subplots(1, 3, figsize=(17, 2.6 + 0.45 * len(depths)), layout="constrained")
    label_every = max(1, int(np.ceil(len(widths) / MAX_CATEGORY_LABELS)))
    for i, measure in enumerate(MEASURES):
        ax = axes[i]
        shown = np.concatenate([grid[:, :, i][np.isfinite(grid[:, :, i])], values[:, i]])
        low, high = float(shown.min()), float(shown.max())
        if low > 0 and high / low > LOG_AXES_ABOVE_RATIO:
            norm = LogNorm(vmin=low, vmax=high)
        else:
            norm = Normalize(vmin=low, vmax=high if high > low else low + 1e-9)
        ax.set_facecolor("#e6e6e6")  # cells without any architecture stay grey
        mesh = ax.pcolormesh(
            np.arange(len(widths) + 1) - 0.5, np.arange(len(depths) + 1) - 0.5, np.ma.masked_invalid(grid[:, :, i]),
            norm=norm, cmap="viridis", shading="flat",
        )
        ax.scatter(px, py, c=values[:, i], norm=norm, cmap="viridis", edgecolors="white", linewidths=0.8, s=30, zorder=3)
        bar = fig.colorbar(mesh, ax=ax, label=measure_label(measure, origin))
        if isinstance(norm, LogNorm):
            use_log_ticks(bar.ax.yaxis, low, high)
        ax.set_xticks(range(0, len(widths), label_every), [f"{widths[k]:g}" for k in range(0, len(widths), label_every)])
        ax.set_yticks(range(len(depths)), [str(d) for d in depths])
        ax.set_xlim(-0.5, len(widths) - 0.5)
        ax.set_ylim(-0.5, len(depths) - 0.5)
        if len(widths) > MAX_CATEGORY_LABELS:
            ax.tick_params(axis="x", labelrotation=60)
        ax.set_xlabel("median hidden size (cells that exist)")
        ax.set_ylabel("encoder layers")
        ax.set_title(f"{MEASURE_SHORT[measure]}{panel_notes[i]}", fontsize=10)
    fig.suptitle(title)
    return save_figure(fig, path)


def plot_pareto(frontiers: dict, origin: str, path: Path, title: str, informative: bool) -> dict:
    """Fig. 14: predicted GLUE against each predicted measure, one frontier per device.

    With ``informative`` false (the GLUE surrogate is no better than predicting the
    mean) the frontiers are still drawn, dashed and grey-toned, and the vertical axis says
    that their order is noise: the measure axis stays meaningful, the GLUE axis does not.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.2), layout="constrained")
    colours = plt.get_cmap("tab10")
    for i, measure in enumerate(MEASURES):
        ax = axes[i]
        costs, gains = [], []
        for k, (device, data) in enumerate(frontiers.items()):
            cost = np.asarray(data[measure]["cost"], dtype=float) * display_units(origin)[measure][1]
            glue = np.asarray(data[measure]["glue"], dtype=float)
            ax.step(
                cost, glue, where="post", color=colours(k), marker="o", markersize=3, label=device,
                linestyle="-" if informative else "--", alpha=1.0 if informative else 0.6,
            )
            costs.extend(cost.tolist())
            gains.extend(glue.tolist())
        logarithmic = bool(costs) and min(costs) > 0 and max(costs) > LOG_AXES_ABOVE_RATIO * min(costs)
        limits = padded_limits(np.array(costs), logarithmic)
        if logarithmic:
            ax.set_xscale("log")
            use_log_ticks(ax.xaxis, *limits)
        ax.set_xlim(*limits)
        ax.set_ylim(*padded_limits(np.array(gains), False))
        ax.set_xlabel(f"predicted {measure_label(measure, origin)}")
        ax.set_ylabel("predicted GLUE score")
        if not informative:
            ax.text(
                0.98, 0.03, "NOT INFORMATIVE: the GLUE surrogate is\nno better than predicting the mean",
                transform=ax.transAxes, va="bottom", ha="right", fontsize=9, color="darkred",
                bbox={"facecolor": "white", "edgecolor": "darkred", "alpha": 0.85},
            )
        ax.set_title(MEASURE_SHORT[measure])
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=max(1, len(labels)), fontsize=9)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)
