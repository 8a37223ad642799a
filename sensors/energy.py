"""Energy windows over sensor samples: counter differences or power integrals, peaks, coverage, gaps.

Energy of a window is always an integral or a difference between two readings, never
a sample times a duration (Zeus). Three ways, one per kind of reading:

* **counter** (RAPL ``energy_uj``, NVML total energy, powermetrics' summed sample
  energies): ``counter(t1) - counter(t0)``, each interpolated linearly between the
  neighbouring readings. A reading below the previous one is a wrap: with the
  counter's modulus (``counter_wrap_j``) the modulus is added; without one it is a
  reset, whose interval counts as a gap (no energy, uncovered, warned).
* **instantaneous power** (INA219, INA3221, NVML power on older GPUs): trapezoidal
  integration, the power at the window's edges interpolated linearly.
* **interval-average power** (powermetrics, RAPL's power channel): each value is the
  mean power over the interval *ending* at its time stamp, so the power is taken as
  piecewise constant over the preceding interval (the integral is then the same as
  that of the counter the values came from).

A sensor that declares an energy counter for a channel (``SensorInfo.counters``) is
integrated through it (:func:`energy_plan`); every window says which method it used
(``energy_method``: ``"counter"`` or ``"power_integral"``). A simulated RAPL polled at
2 kHz integrates to +2% from aliasing of its 1 ms updates; the counter is exact.

**One span.** Energy is integrated over the part of the window that lies within the
samples (``integrated_s``), and the baseline is subtracted over that same span. A
window only partly inside the samples has coverage below 1 and a warning; callers
that store numbers refuse low coverage (``firmware_host.profile``'s ``min_coverage``).

**Coverage** is the fraction of the window that lies between samples no further apart
than ``3 x`` the nominal interval (the sensor's update interval, or the median
spacing). A longer gap is still bridged linearly for the energy, but it counts as
uncovered and produces a warning; so does a window extending past the data. A window
that no sample reaches (outside the samples, or fewer than two valid ones) has NaN
energy and power and an ``error``, never 0. Invalid samples (NaN: an overflow) are
dropped before integrating.

Many windows at once (:func:`energy_windows`) use one cumulative sum and
``searchsorted``, so an hour of 2 kHz samples is a few numpy passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional, Sequence

import numpy as np

GAP_FACTOR = 3.0  # a spacing above 3 nominal intervals is a gap
COUNTER = "counter"  # energy_method: difference of interpolated counter readings
POWER_INTEGRAL = "power_integral"  # energy_method: integral of power samples
POWER_SUFFIX = "power_w"
ENERGY_SUFFIX = "energy_j"


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
    energy_method: str = POWER_INTEGRAL
    integrated_s: float = 0.0  # the span energy and baseline were taken over (the window within the samples)
    error: Optional[str] = None  # why the figures are NaN (no sample reaches the window)

    @property
    def duration_s(self) -> float:
        """Window length."""
        return self.end_s - self.start_s

    def to_dict(self) -> dict:
        """JSON-ready figures (the CLI contract of `trace energy`; ``error`` only when set)."""
        out = {
            "start_s": self.start_s,
            "end_s": self.end_s,
            "duration_s": self.duration_s,
            "energy_j": self.energy_j,
            "energy_method": self.energy_method,
            "peak_power_w": self.peak_power_w,
            "mean_power_w": self.mean_power_w,
            "baseline_w": self.baseline_w,
            "integrated_s": self.integrated_s,
            "coverage": self.coverage,
            "samples": self.samples,
            "gaps": self.gaps,
            "warnings": list(self.warnings),
        }
        if self.error is not None:
            out["error"] = self.error
        return out


def nominal_sample_interval(update_interval_s: float | None, poll_interval_s: float | None) -> float | None:
    """Spacing of stored samples of a polled source: the slower of its update and poll intervals (None if neither is known)."""
    return max(update_interval_s or 0.0, poll_interval_s or 0.0) or None


def _clean(t: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(t, dtype=float)
    v = np.asarray(v, dtype=float)
    if t.shape != v.shape or t.ndim != 1:
        raise ValueError(f"times and values must be 1-D arrays of equal length, got {t.shape} and {v.shape}")
    keep = np.isfinite(t) & np.isfinite(v)
    if keep.all():
        return t, v
    return t[keep], v[keep]


def nominal_interval(t: np.ndarray, declared_s: float | None = None) -> float:
    """The sensor's declared update interval if given, else the median sample spacing."""
    return _nominal_from_spacing(np.diff(np.asarray(t, dtype=float)), declared_s)


def _nominal_from_spacing(spacing: np.ndarray, declared_s: float | None) -> float:
    if declared_s:
        return float(declared_s)
    return float(np.median(spacing)) if len(spacing) else math.inf


def _interval(x: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Index i of the interval [t[i], t[i+1]] holding each x (x within [t0, t_last])."""
    return np.clip(np.searchsorted(t, x, side="right") - 1, 0, len(t) - 2)


@dataclass(frozen=True)
class _Series:
    """A reading series prepared for integration: per-interval energy and which intervals are covered."""

    t: np.ndarray
    v: np.ndarray
    increments: np.ndarray  # energy of each interval [t[i], t[i+1]], J
    ok: np.ndarray  # interval covered (not a gap, not a counter reset)
    kind: str  # "trapezoid" (instantaneous power) or "linear" (counter, interval averages)
    resets: int = 0

    def cumulative_at(self, x: np.ndarray) -> np.ndarray:
        """Energy from t[0] to x (x clipped into [t0, t_last])."""
        t, v = self.t, self.v
        x = np.clip(x, t[0], t[-1])
        i = _interval(x, t)
        cumulative = np.concatenate([[0.0], np.cumsum(self.increments)])
        if self.kind == "trapezoid":
            partial = (x - t[i]) * (v[i] + np.interp(x, t, v)) / 2
        else:
            spacing = t[i + 1] - t[i]
            partial = np.divide(self.increments[i] * (x - t[i]), spacing, out=np.zeros_like(x), where=spacing > 0)
        return cumulative[i] + partial


def _power_series(t: np.ndarray, p: np.ndarray, ok: np.ndarray, interval_average: bool) -> _Series:
    spacing = np.diff(t)
    if interval_average:
        return _Series(t, p, spacing * p[1:], ok, "linear")
    return _Series(t, p, spacing * (p[1:] + p[:-1]) * 0.5, ok, "trapezoid")


def _counter_series(t: np.ndarray, e: np.ndarray, ok: np.ndarray, wrap_j: float | None) -> _Series:
    steps = np.diff(e)
    down = steps < 0
    resets = 0
    if down.any():
        if wrap_j:
            steps = np.where(down, steps + wrap_j, steps)
        else:
            resets = int(down.sum())
            steps = np.where(down, 0.0, steps)
            ok = ok & ~down
    return _Series(t, e, steps, ok, "linear", resets)


def _window_max(p: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Max of p[lo:hi] per window (-inf for an empty window)."""
    return np.array([p[a:b].max() if b > a else -np.inf for a, b in zip(lo.tolist(), hi.tolist())])


def _peaks(t: np.ndarray, p: np.ndarray, starts: np.ndarray, ends: np.ndarray, interval_average: bool) -> np.ndarray:
    """Peak power per window: samples inside and the edges (interval averages: every interval overlapping it)."""
    if len(t) == 0:
        return np.full(len(starts), math.nan)
    if interval_average:  # value k covers (t[k-1], t[k]]: from the first stamp after the start to the first at/after the end
        lo = np.searchsorted(t, starts, side="right")
        hi = np.minimum(np.searchsorted(t, ends, side="left") + 1, len(t))
        peak = _window_max(p, lo, hi)
        return np.where(np.isfinite(peak), peak, math.nan)
    lo = np.searchsorted(t, starts, side="left")
    hi = np.searchsorted(t, ends, side="right")
    inside = _window_max(p, lo, hi)
    ca, cb = np.clip(starts, t[0], t[-1]), np.clip(ends, t[0], t[-1])
    edges = np.maximum(np.interp(ca, t, p), np.interp(cb, t, p))
    reach = (ends >= t[0]) & (starts <= t[-1])
    return np.where(reach, np.maximum(inside, edges), math.nan)


def energy_windows(
    t: Sequence[float],
    power_w: Sequence[float] | None,
    starts: Sequence[float],
    ends: Sequence[float],
    baseline_w: float = 0.0,
    interval_s: float | None = None,
    *,
    counter_j: Sequence[float] | None = None,
    counter_wrap_j: float | None = None,
    interval_average: bool = False,
) -> list[WindowEnergy]:
    """Figures of many windows ``[starts[k], ends[k]]``: from ``counter_j`` when given, else from ``power_w``.

    ``power_w`` (the same times) gives the peak power; ``interval_average`` says its
    values are means over the interval ending at each stamp (see the module docstring).
    """
    starts = np.asarray(starts, dtype=float)
    ends = np.asarray(ends, dtype=float)
    if np.any(ends <= starts):
        k = int(np.argmax(ends <= starts))
        raise ValueError(f"window {k} ends ({ends[k]}) at or before it starts ({starts[k]})")
    if power_w is None and counter_j is None:
        raise ValueError("energy_windows needs power samples or counter readings")
    t_all = np.asarray(t, dtype=float)
    tp, p = _clean(t_all, np.asarray(power_w)) if power_w is not None else (np.empty(0), np.empty(0))
    method = COUNTER if counter_j is not None else POWER_INTEGRAL
    te, e = _clean(t_all, np.asarray(counter_j)) if counter_j is not None else (tp, p)
    if len(te) < 2:
        reason = f"fewer than 2 valid {'counter readings' if method == COUNTER else 'samples'}"
        return [
            WindowEnergy(float(a), float(b), math.nan, math.nan, math.nan, 0.0, len(te), 0, baseline_w, (reason,), method, 0.0,
                         f"no samples cover the window [{a:.6f}, {b:.6f}]: {reason}")
            for a, b in zip(starts, ends)
        ]
    spacing = np.diff(te)
    nominal = _nominal_from_spacing(spacing, interval_s)
    ok = spacing <= GAP_FACTOR * nominal * (1 + 1e-9)  # per interval: covered or a gap (float slack)
    if method == COUNTER:
        series = _counter_series(te, e, ok, counter_wrap_j)
    else:
        series = _power_series(te, e, ok, interval_average)
    ok = series.ok
    energy = series.cumulative_at(ends) - series.cumulative_at(starts)
    covered_cum = np.concatenate([[0.0], np.cumsum(np.where(ok, spacing, 0.0))])
    gap_cum = np.concatenate([[0], np.cumsum(~ok)])
    ca, cb = np.maximum(starts, te[0]), np.minimum(ends, te[-1])
    has_data = cb > ca
    ia = _interval(ca, te)
    ib = _interval(cb, te)
    covered = np.where(
        has_data,
        (covered_cum[ib] + (cb - te[ib]) * ok[ib]) - (covered_cum[ia] + (ca - te[ia]) * ok[ia]),
        0.0,
    )
    gaps = np.where(has_data, gap_cum[ib + 1] - gap_cum[ia], 0)
    inside = np.searchsorted(te, ends, side="right") - np.searchsorted(te, starts, side="left")
    peaks = _peaks(tp, p, starts, ends, interval_average) if len(tp) else np.full(len(starts), math.nan)
    results = []
    for k in range(len(starts)):
        a, b = float(starts[k]), float(ends[k])
        warnings = []
        error = None
        if a < te[0] or b > te[-1]:
            warnings.append(f"window [{a:.6f}, {b:.6f}] extends past the samples [{te[0]:.6f}, {te[-1]:.6f}]")
        if gaps[k]:
            warnings.append(f"{int(gaps[k])} gap(s) longer than {GAP_FACTOR:g} x {nominal * 1e3:.3g} ms inside the window")
        if series.resets and gaps[k]:
            warnings.append("the energy counter went backwards (a reset, no wrap modulus known): that interval is left out")
        span = float(cb[k] - ca[k]) if has_data[k] else 0.0
        if has_data[k]:
            value = float(energy[k]) - baseline_w * span
            peak = float(peaks[k])
            mean = float(energy[k]) / span - baseline_w
        else:
            value = peak = mean = math.nan
            error = f"no samples cover the window [{a:.6f}, {b:.6f}] (samples span [{te[0]:.6f}, {te[-1]:.6f}])"
            warnings.append("no samples inside the window")
        results.append(
            WindowEnergy(
                a, b, value, peak, mean, min(1.0, float(covered[k]) / (b - a)), int(inside[k]), int(gaps[k]),
                baseline_w, tuple(warnings), method, span, error,
            )
        )
    return results


def energy_window(
    t: Sequence[float],
    power_w: Sequence[float] | None,
    start: float,
    end: float,
    baseline_w: float = 0.0,
    interval_s: float | None = None,
    **kwargs: object,
) -> WindowEnergy:
    """Figures of one window ``[start, end]`` (keywords as :func:`energy_windows`)."""
    return energy_windows(t, power_w, [start], [end], baseline_w, interval_s, **kwargs)[0]  # type: ignore[arg-type]


def counter_energy(t: Sequence[float], energy_j: Sequence[float], start: float, end: float) -> float:
    """Energy of a window from a cumulative counter: the difference of its interpolated readings."""
    t_arr, e_arr = _clean(np.asarray(t), np.asarray(energy_j))
    if len(t_arr) < 2 or start < t_arr[0] or end > t_arr[-1]:
        raise ValueError(f"counter readings do not span the window [{start}, {end}]")
    return float(np.interp(end, t_arr, e_arr) - np.interp(start, t_arr, e_arr))


# -- which channel, and how ------------------------------------------------------------


@dataclass(frozen=True)
class EnergyPlan:
    """How the energy of a sensor's configured channel is obtained."""

    channel: str  # the configured channel, resolved to one of the sensor's channels
    power_channel: Optional[str]  # gives peak and mean power (None for a bare counter)
    counter_channel: Optional[str]  # a cumulative energy counter of the same rail, if the sensor has one
    interval_average: bool = False  # the power channel holds means over the interval ending at each stamp

    @property
    def method(self) -> str:
        """``counter`` when a counter exists, else ``power_integral``."""
        return COUNTER if self.counter_channel else POWER_INTEGRAL

    @property
    def channels(self) -> tuple[str, ...]:
        """The channels a window needs."""
        return tuple(c for c in (self.power_channel, self.counter_channel) if c)


def resolve_channel(channels: Sequence[str], channel: str | None) -> str:
    """A configured channel name -> one of ``channels``.

    ``None`` is the first power channel. An exact name is itself. A name without a rail
    prefix (the rig default ``power_w``) matches ``<rail>.power_w`` only when exactly one
    rail has it: with several rails (an INA3221's three) the choice is refused, because
    silently integrating the first rail is how the wrong supply gets measured.
    """
    if channel is None:
        for name in channels:
            if name.endswith(POWER_SUFFIX):
                return name
        raise KeyError(f"sensor has no power channel (channels: {', '.join(channels)})")
    if channel in channels:
        return channel
    matches = [c for c in channels if c.endswith("." + channel)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise KeyError(f"channel {channel!r} is ambiguous: the sensor has {', '.join(matches)}; name one")
    raise KeyError(f"sensor has no channel {channel!r} (channels: {', '.join(channels)})")


def energy_plan(
    channels: Sequence[str], counters: Sequence[str], channel: str | None, interval_averages: Sequence[str] = ()
) -> EnergyPlan:
    """How to integrate ``channel`` of a sensor: its rail's energy counter where one is declared, else its power."""
    name = resolve_channel(channels, channel)
    rail = name.rsplit(".", 1)[0] + "." if "." in name else ""
    if name.endswith(ENERGY_SUFFIX):
        if name not in counters:
            raise KeyError(f"channel {name!r} is not a cumulative counter of this sensor (counters: {', '.join(counters) or 'none'})")
        power = rail + POWER_SUFFIX if rail + POWER_SUFFIX in channels else None
        return EnergyPlan(name, power, name, power in interval_averages if power else False)
    if not name.endswith(POWER_SUFFIX):
        raise KeyError(f"channel {name!r} is neither power (*power_w) nor an energy counter (*energy_j)")
    counter = rail + ENERGY_SUFFIX
    return EnergyPlan(name, name, counter if counter in counters else None, name in interval_averages)


def plan_windows(
    plan: EnergyPlan,
    t: Sequence[float],
    columns: Mapping[str, Sequence[float]],
    starts: Sequence[float],
    ends: Sequence[float],
    baseline_w: float = 0.0,
    interval_s: float | None = None,
    counter_wrap_j: float | None = None,
) -> list[WindowEnergy]:
    """Windows of a sensor's channel by its plan (``columns``: channel -> values at ``t``)."""
    power = columns[plan.power_channel] if plan.power_channel else None
    counter = columns[plan.counter_channel] if plan.counter_channel else None
    return energy_windows(t, power, starts, ends, baseline_w, interval_s, counter_j=counter, counter_wrap_j=counter_wrap_j,
                          interval_average=plan.interval_average)


def geometric_mean(values: Iterable[float]) -> float:
    """Geometric mean of repeated results (the paper reports them); NaN when there are none or any is not finite and positive.

    NaN rather than an exception: an energy within the sensor's noise (<= 0 above the
    idle baseline) is a legitimate result whose mean is not a number, and it must reach
    the stored measurement as "none", not abort the campaign.
    """
    array = np.asarray(list(values), dtype=float)
    if array.size == 0 or np.any(~np.isfinite(array)) or np.any(array <= 0):
        return math.nan
    return float(np.exp(np.mean(np.log(array))))
