"""Energy windows over power samples: integrals, peaks, coverage, gaps, geometric means.

Energy of a window is always an integral or a difference between two readings, never
a sample times a duration (Zeus):

* from power samples: trapezoidal integration over ``[t0, t1]``, with the power at the
  window's edges interpolated linearly between the neighbouring samples;
* from a cumulative energy counter (RAPL, NVML): ``counter(t1) - counter(t0)``,
  each interpolated linearly.

**Coverage** is the fraction of the window that lies between samples no further apart
than ``3 x`` the nominal interval (the sensor's update interval, or the median
spacing). A longer gap is still bridged linearly for the energy, but it counts as
uncovered and produces a warning; so does a window extending past the data.
Invalid samples (NaN: an overflow) are dropped before integrating.

Many windows at once (:func:`energy_windows`) use one cumulative integral and
``searchsorted``, so an hour of 2 kHz samples is a few numpy passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

GAP_FACTOR = 3.0  # a spacing above 3 nominal intervals is a gap


@dataclass(frozen=True)
class WindowEnergy:
    """Energy and power figures of one window."""

    start_s: float
    end_s: float
    energy_j: float
    peak_power_w: float
    mean_power_w: float
    coverage: float
    samples: int
    gaps: int
    baseline_w: float = 0.0
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def duration_s(self) -> float:
        """Window length."""
        return self.end_s - self.start_s

    def to_dict(self) -> dict:
        """JSON-ready figures (the CLI contract of `trace energy`)."""
        return {
            "start_s": self.start_s,
            "end_s": self.end_s,
            "duration_s": self.duration_s,
            "energy_j": self.energy_j,
            "peak_power_w": self.peak_power_w,
            "mean_power_w": self.mean_power_w,
            "baseline_w": self.baseline_w,
            "coverage": self.coverage,
            "samples": self.samples,
            "gaps": self.gaps,
            "warnings": list(self.warnings),
        }


def _clean(t: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(t, dtype=float)
    p = np.asarray(p, dtype=float)
    if t.shape != p.shape or t.ndim != 1:
        raise ValueError(f"times and values must be 1-D arrays of equal length, got {t.shape} and {p.shape}")
    keep = np.isfinite(t) & np.isfinite(p)
    if keep.all():
        return t, p
    return t[keep], p[keep]


def nominal_interval(t: np.ndarray, declared_s: float | None = None) -> float:
    """The sensor's declared update interval if given, else the median sample spacing."""
    return _nominal_from_spacing(np.diff(np.asarray(t, dtype=float)), declared_s)


def _nominal_from_spacing(spacing: np.ndarray, declared_s: float | None) -> float:
    if declared_s:
        return float(declared_s)
    return float(np.median(spacing)) if len(spacing) else math.inf


def _cumulative(spacing: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Running trapezoidal integral at every sample (0 at the first)."""
    out = np.empty(len(p))
    out[0] = 0.0
    np.cumsum(spacing * (p[1:] + p[:-1]) * 0.5, out=out[1:])
    return out


def _interval(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Index i of the interval [t[i], t[i+1]] holding each x (x within [t0, t_last])."""
    return np.clip(np.searchsorted(t, x, side="right") - 1, 0, len(t) - 2)


def _cumulative_at(x: np.ndarray, t: np.ndarray, p: np.ndarray, cumulative: np.ndarray) -> np.ndarray:
    """Integral of the linear interpolant from t[0] to x (x clipped into [t0, t_last])."""
    x = np.clip(x, t[0], t[-1])
    i = _interval(x, t)
    return cumulative[i] + (x - t[i]) * (p[i] + np.interp(x, t, p)) / 2


def _window_max(p: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Max of p[lo:hi] per window (-inf for an empty window)."""
    return np.array([p[a:b].max() if b > a else -np.inf for a, b in zip(lo.tolist(), hi.tolist())])


def energy_windows(
    t: Sequence[float],
    power_w: Sequence[float],
    starts: Sequence[float],
    ends: Sequence[float],
    baseline_w: float = 0.0,
    interval_s: float | None = None,
) -> list[WindowEnergy]:
    """Figures of many windows ``[starts[k], ends[k]]`` over one power series."""
    t, p = _clean(np.asarray(t), np.asarray(power_w))
    starts = np.asarray(starts, dtype=float)
    ends = np.asarray(ends, dtype=float)
    if np.any(ends <= starts):
        k = int(np.argmax(ends <= starts))
        raise ValueError(f"window {k} ends ({ends[k]}) at or before it starts ({starts[k]})")
    if len(t) < 2:
        return [
            WindowEnergy(float(a), float(b), math.nan, math.nan, math.nan, 0.0, len(t), 0, baseline_w, ("fewer than 2 valid samples",))
            for a, b in zip(starts, ends)
        ]
    spacing = np.diff(t)
    nominal = _nominal_from_spacing(spacing, interval_s)
    ok = spacing <= GAP_FACTOR * nominal * (1 + 1e-9)  # per interval: covered or a gap (float slack)
    cumulative = _cumulative(spacing, p)
    energy = _cumulative_at(ends, t, p, cumulative) - _cumulative_at(starts, t, p, cumulative)
    covered_cum = np.concatenate([[0.0], np.cumsum(np.where(ok, spacing, 0.0))])
    gap_cum = np.concatenate([[0], np.cumsum(~ok)])
    ca, cb = np.maximum(starts, t[0]), np.minimum(ends, t[-1])
    has_data = cb > ca
    ia = _interval(ca, t)
    ib = _interval(cb, t)
    covered = np.where(
        has_data,
        (covered_cum[ib] + (cb - t[ib]) * ok[ib]) - (covered_cum[ia] + (ca - t[ia]) * ok[ia]),
        0.0,
    )
    gaps = np.where(has_data, gap_cum[ib + 1] - gap_cum[ia], 0)
    first_inside = np.searchsorted(t, starts, side="left")
    last_inside = np.searchsorted(t, ends, side="right")  # exclusive
    # Peak: the maximum of the samples inside each window and the interpolated edge values.
    running_max = _window_max(p, first_inside, last_inside)
    edge_max = np.maximum(np.interp(ca, t, p), np.interp(cb, t, p))
    results = []
    for k in range(len(starts)):
        a, b = float(starts[k]), float(ends[k])
        warnings = []
        if a < t[0] or b > t[-1]:
            warnings.append(f"window [{a:.6f}, {b:.6f}] extends past the samples [{t[0]:.6f}, {t[-1]:.6f}]")
        if gaps[k]:
            warnings.append(f"{int(gaps[k])} gap(s) longer than {GAP_FACTOR:g} x {nominal * 1e3:.3g} ms inside the window")
        span = float(cb[k] - ca[k]) if has_data[k] else 0.0
        if has_data[k]:
            peak = float(max(running_max[k], edge_max[k]))
            mean = float(energy[k]) / span - baseline_w
        else:
            peak = mean = math.nan
            warnings.append("no samples inside the window")
        results.append(
            WindowEnergy(
                a,
                b,
                float(energy[k]) - baseline_w * span,
                peak,
                mean,
                min(1.0, float(covered[k]) / (b - a)),
                int(last_inside[k] - first_inside[k]),
                int(gaps[k]),
                baseline_w,
                tuple(warnings),
            )
        )
    return results


def energy_window(
    t: Sequence[float],
    power_w: Sequence[float],
    start: float,
    end: float,
    baseline_w: float = 0.0,
    interval_s: float | None = None,
) -> WindowEnergy:
    """Figures of one window ``[start, end]``."""
    return energy_windows(t, power_w, [start], [end], baseline_w, interval_s)[0]


def counter_energy(t: Sequence[float], energy_j: Sequence[float], start: float, end: float) -> float:
    """Energy of a window from a cumulative counter: the difference of its interpolated readings."""
    t_arr, e_arr = _clean(np.asarray(t), np.asarray(energy_j))
    if len(t_arr) < 2 or start < t_arr[0] or end > t_arr[-1]:
        raise ValueError(f"counter readings do not span the window [{start}, {end}]")
    return float(np.interp(end, t_arr, e_arr) - np.interp(start, t_arr, e_arr))


def geometric_mean(values: Iterable[float]) -> float:
    """Geometric mean of positive values (the paper reports geometric means of repeated runs)."""
    array = np.asarray(list(values), dtype=float)
    if array.size == 0 or np.any(~np.isfinite(array)) or np.any(array <= 0):
        raise ValueError("geometric mean needs finite positive values")
    return float(np.exp(np.mean(np.log(array))))
