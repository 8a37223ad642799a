"""The non-dominated set of evaluated pairs and its exact hypervolume.

The papers scalarise (Eq. 1); users want the front. Every evaluation is kept, so the
front over (accuracy: max, latency: min, energy: min, peak power: min) and its
hypervolume can be reported next to the best scalar performance.

Conventions:

* Internally every objective is **minimised** (accuracy enters as ``-accuracy``).
  ``a`` dominates ``b`` when ``a <= b`` in every objective and ``a < b`` in one; equal
  points do not dominate each other, so duplicates stay in the front together.
* **Reference point** of :func:`measures_hypervolume`: accuracy 0, and the fixed maxima
  of the objective (``codesign/data/boshcode_maxima.toml``: latency, energy and peak
  power of the largest published measurement). The measures are divided by those maxima
  first, so the hypervolume is the fraction of the unit box ``[0, 1]^4`` (accuracy,
  latency / L_max, energy / E_max, peak power / P_max) that the front dominates: unit-free,
  and comparable across runs, devices and methods because the maxima are fixed. A point no
  better than the reference in some objective adds nothing.
* **Algorithm**: exact, by dimension slicing (HSO, While et al. 2006): sort by the last
  objective; the slab between consecutive values is the slab's depth times the
  (m-1)-dimensional hypervolume of the points seen so far. The 3-d case is a sweep that
  keeps the 2-d staircase of the points seen so far and updates its area in place as
  each point is inserted (points it dominates are removed), so a 3-d volume costs
  ``O(n^2)`` at worst and a 4-d one ``O(n^3)``; slabs whose projected front did not change
  reuse the previous value. A few hundred 4-d points take well under a second here.
  The result is exact up to floating-point rounding (exact for dyadic inputs).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import Any, Sequence

import numpy as np

from codesign.boshcode.objective import Maxima, Measures

OBJECTIVES = (("accuracy", "max"), ("latency_s", "min"), ("energy_j", "min"), ("peak_power_w", "min"))


class ParetoError(ValueError):
    """Points or a reference point that a hypervolume cannot be computed from."""


def _as_matrix(points: Any, what: str = "points") -> np.ndarray:
    values = np.asarray(points, dtype=float)
    if values.ndim == 1 and values.size == 0:
        values = values.reshape(0, 0)
    if values.ndim != 2:
        raise ParetoError(f"{what}: expected an (n, m) array, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ParetoError(f"{what}: NaN or infinite values")
    return values


def non_dominated(points: Any) -> np.ndarray:
    """Indices (ascending) of the points no other point dominates (every objective minimised)."""
    values = _as_matrix(points)
    n = len(values)
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        if not keep[i]:
            continue
        others = values[keep]
        dominated = np.all(others <= values[i], axis=1) & np.any(others < values[i], axis=1)
        if dominated.any():
            keep[i] = False
            continue
        # points i dominates are dropped now (they cannot dominate anything i does not)
        beaten = np.all(values[i] <= values, axis=1) & np.any(values[i] < values, axis=1)
        keep &= ~beaten
    return np.flatnonzero(keep)


class _Staircase:
    """The 2-d non-dominated staircase of inserted points and the area it dominates up to (rx, ry)."""

    def __init__(self, rx: float, ry: float) -> None:
        self.rx, self.ry = rx, ry
        self.xs: list[float] = []
        self.ys: list[float] = []  # descending while xs ascend
        self.area = 0.0

    def _next_x(self, j: int) -> float:
        return self.xs[j] if j < len(self.xs) else self.rx

    def insert(self, x: float, y: float) -> bool:
        """Add a point (x < rx, y < ry); return whether the staircase changed."""
        xs, ys, ry = self.xs, self.ys, self.ry
        k = bisect_right(xs, x) - 1
        if k >= 0 and ys[k] <= y:
            return False  # weakly dominated
        start = bisect_left(xs, x)
        end = start
        while end < len(xs) and ys[end] >= y:
            end += 1
        left = start - 1
        old = sum((self._next_x(j + 1) - xs[j]) * (ry - ys[j]) for j in range(start, end))
        new = (self._next_x(end) - x) * (ry - y)
        if left >= 0:
            old += (self._next_x(start) - xs[left]) * (ry - ys[left])
            new += (x - xs[left]) * (ry - ys[left])
        self.area += new - old
        xs[start:end] = [x]
        ys[start:end] = [y]
        return True


def _hv2(values: np.ndarray, ref: np.ndarray) -> float:
    stairs = _Staircase(ref[0], ref[1])
    for x, y in values.tolist():
        stairs.insert(x, y)
    return stairs.area


def _hv3(values: np.ndarray, ref: np.ndarray) -> float:
    order = np.argsort(values[:, 2], kind="stable")
    pts = values[order].tolist()
    stairs = _Staircase(ref[0], ref[1])
    volume = 0.0
    for i, (x, y, z) in enumerate(pts):
        stairs.insert(x, y)
        top = pts[i + 1][2] if i + 1 < len(pts) else ref[2]
        volume += stairs.area * (top - z)
    return volume


def _hv(values: np.ndarray, ref: np.ndarray) -> float:
    n, m = values.shape
    if n == 0:
        return 0.0
    if m == 1:
        return float(ref[0] - values[:, 0].min())
    if m == 2:
        return _hv2(values, ref)
    if m == 3:
        return _hv3(values, ref)
    order = np.argsort(values[:, -1], kind="stable")
    pts = values[order]
    front = np.empty((0, m - 1))
    volume, slab = 0.0, 0.0
    for i in range(n):
        p = pts[i, :-1]
        if not np.any(np.all(front <= p, axis=1)):
            front = np.vstack([front[~np.all(p <= front, axis=1)], p])
            slab = _hv(front, ref[:-1])
        top = pts[i + 1, -1] if i + 1 < n else ref[-1]
        volume += slab * (top - pts[i, -1])
    return volume


def hypervolume(points: Any, reference: Sequence[float]) -> float:
    """Exact volume dominated by the points and bounded by the reference point (all minimised)."""
    values = _as_matrix(points)
    ref = np.asarray(reference, dtype=float)
    if values.size == 0:
        return 0.0
    if ref.shape != (values.shape[1],) or not np.all(np.isfinite(ref)):
        raise ParetoError(f"reference: expected {values.shape[1]} finite values, got {reference!r}")
    inside = values[np.all(values < ref, axis=1)]
    return _hv(inside, ref)


def measures_matrix(measures: Sequence[Measures], maxima: Maxima) -> np.ndarray:
    """``(n, 4)`` minimisation matrix: -accuracy, latency / L_max, energy / E_max, peak power / P_max."""
    rows = [
        (-m.accuracy, m.latency_s / maxima.latency_s, m.energy_j / maxima.energy_j, m.peak_power_w / maxima.peak_power_w)
        for m in measures
    ]
    return np.array(rows, dtype=float).reshape(len(rows), len(OBJECTIVES))


def reference_point() -> np.ndarray:
    """The stated reference of :func:`measures_hypervolume` in normalised minimisation form: accuracy 0, each maximum."""
    return np.array([0.0, 1.0, 1.0, 1.0])


def pareto_front(measures: Sequence[Measures], maxima: Maxima) -> list[int]:
    """Indices of the non-dominated evaluations over (accuracy max, latency, energy, peak power min)."""
    return non_dominated(measures_matrix(measures, maxima)).tolist()


def measures_hypervolume(measures: Sequence[Measures], maxima: Maxima) -> float:
    """Hypervolume of the evaluations in the normalised unit box (reference: accuracy 0 and the maxima)."""
    if not measures:
        return 0.0
    return hypervolume(measures_matrix(measures, maxima), reference_point())
