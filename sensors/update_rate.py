"""How often a slow vendor counter produces a new value, and whether a read is a new one.

A source's data rate is its update rate, not the rate at which it is polled. For
sources without a conversion-ready bit (sysfs rails, NVML) two tools:

- ``estimate_update_interval`` polls a reading much faster than it updates and takes
  the median spacing between the moments its value changes;
- ``FreshnessTracker`` marks a read stale when nothing changed and less than one update
  interval has passed since the last change.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable, Hashable, Sequence

from sensors.base import Clock

DEFAULT_POLL_S = 0.001  # polling period of the estimator, s (1 ms resolves 10-100 ms updates)
DEFAULT_DURATION_S = 1.0  # how long the estimator polls, s
MIN_CHANGES = 4  # value changes needed before an estimate is trusted
TIME_EPS_S = 1e-9  # float slack when comparing elapsed time with an interval, s


def change_times(times: Sequence[float], values: Sequence[Hashable]) -> list[float]:
    """The times at which ``values`` differ from the value polled before."""
    out = []
    for i in range(1, len(values)):
        if values[i] != values[i - 1]:
            out.append(times[i])
    return out


def interval_from_changes(changes: Sequence[float], min_changes: int = MIN_CHANGES) -> float | None:
    """Median spacing of change times, s; None with fewer than ``min_changes`` changes.

    The median ignores the occasional update that repeats the previous value (which
    shows up as a doubled spacing) and scheduler hiccups of the polling loop.
    """
    if len(changes) < min_changes:
        return None
    gaps = [b - a for a, b in zip(changes, changes[1:]) if b > a]
    return statistics.median(gaps) if gaps else None


def estimate_update_intervals(
    reads: Sequence[Callable[[], Hashable]],
    *,
    duration_s: float = DEFAULT_DURATION_S,
    poll_s: float = DEFAULT_POLL_S,
    clock: Clock = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    min_changes: int = MIN_CHANGES,
) -> list[float | None]:
    """Poll every reading in ``reads`` together every ``poll_s`` for ``duration_s``; each one's update interval, s.

    Each entry is the median time between changes of that reading's value, or None
    when it changed fewer than ``min_changes`` times (an idle, constant reading carries
    no timing information). The resolution is ``poll_s``.
    """
    times: list[float] = []
    values: list[list[Hashable]] = [[] for _ in reads]
    start = clock()
    while True:
        now = clock()
        if now - start > duration_s:
            break
        for read, seen in zip(reads, values):
            seen.append(read())
        times.append(now)
        sleep(poll_s)
    return [interval_from_changes(change_times(times, seen), min_changes) for seen in values]


def estimate_update_interval(
    read: Callable[[], Hashable],
    *,
    duration_s: float = DEFAULT_DURATION_S,
    poll_s: float = DEFAULT_POLL_S,
    clock: Clock = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    min_changes: int = MIN_CHANGES,
) -> float | None:
    """Poll ``read`` every ``poll_s`` for ``duration_s``; the median time between value changes, s (or None)."""
    return estimate_update_intervals(
        [read], duration_s=duration_s, poll_s=poll_s, clock=clock, sleep=sleep, min_changes=min_changes
    )[0]


class FreshnessTracker:
    """Decides whether a read carries a new update of a source without a ready bit."""

    def __init__(self, update_interval_s: float) -> None:
        self.update_interval_s = update_interval_s
        self._last_values: object = None
        self._last_fresh_t: float | None = None

    def fresh(self, t: float, values: object) -> bool:
        """True when ``values`` changed, or one update interval passed since the last fresh read."""
        is_fresh = (
            self._last_fresh_t is None
            or values != self._last_values
            or t - self._last_fresh_t >= self.update_interval_s - TIME_EPS_S
        )
        if is_fresh:
            self._last_fresh_t = t
        self._last_values = values
        return is_fresh
