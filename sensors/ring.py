"""The sampling daemon's in-memory history: a fixed-capacity ring of (t, values) rows.

The sampling thread appends one row per fresh sample under a short lock; readers take
only the rows they need. A window query binary-searches the time column (the ring is
two sorted runs: oldest..end of the array, then start of the array..newest) and copies
just that slice under the lock, so a query on a full ring of 120,000 rows holds the lock
for microseconds, not for a copy of the whole ring (issue #11 item 12).

Times are assumed non-decreasing in append order (one sensor's sample stamps); a
slightly out-of-order stamp only shifts a slice edge by that sample.
"""

from __future__ import annotations

import threading
from typing import Sequence

import numpy as np


class RingBuffer:
    """Fixed-capacity ring of (t, values) rows."""

    def __init__(self, capacity: int, channels: int) -> None:
        self.capacity = max(1, capacity)
        # Allocated and written up front (np.zeros alone maps pages lazily): the daemon's
        # memory is its steady-state size from the start, and the sampling thread takes
        # no page faults while the ring fills.
        self.t = np.empty(self.capacity)
        self.t.fill(0.0)
        self.values = np.empty((self.capacity, channels))
        self.values.fill(0.0)
        self.count = 0  # total rows ever appended
        self._lock = threading.Lock()

    def append(self, t: float, row: Sequence[float]) -> None:
        """Add one row, overwriting the oldest when full."""
        with self._lock:
            i = self.count % self.capacity
            self.t[i] = t
            self.values[i] = row
            self.count += 1

    @property
    def wrapped(self) -> bool:
        """Whether rows have been overwritten (the ring no longer holds everything appended)."""
        return self.count > self.capacity

    def span(self) -> tuple[float, float] | None:
        """Times of the oldest and the newest row held (None when empty)."""
        with self._lock:
            n = min(self.count, self.capacity)
            if n == 0:
                return None
            head = self.count % self.capacity if self.wrapped else 0
            return float(self.t[head]), float(self.t[(self.count - 1) % self.capacity])

    def _runs(self) -> tuple[int, np.ndarray, np.ndarray]:
        """Rows held, and the two sorted runs of the time column (views, oldest first); lock held."""
        if not self.wrapped:
            n = self.count
            return n, self.t[:n], self.t[:0]
        head = self.count % self.capacity
        return self.capacity, self.t[head:], self.t[:head]

    def _locate(self, x: float, side: str) -> int:
        """Logical index (0 = oldest) where ``x`` would be inserted; lock held."""
        _, older, newer = self._runs()
        i = int(np.searchsorted(older, x, side=side))
        if i < len(older) or len(newer) == 0:
            return i
        return len(older) + int(np.searchsorted(newer, x, side=side))

    def _copy(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """Copy of logical rows [lo, hi); lock held."""
        n = min(self.count, self.capacity)
        lo, hi = max(0, lo), min(n, hi)
        if hi <= lo:
            return np.empty(0), np.empty((0, self.values.shape[1]))
        head = self.count % self.capacity if self.wrapped else 0
        a, b = (head + lo) % self.capacity, (head + hi) % self.capacity or self.capacity
        if a < b:
            return self.t[a:b].copy(), self.values[a:b].copy()
        return np.concatenate([self.t[a:], self.t[:b]]), np.concatenate([self.values[a:], self.values[:b]])

    def window(self, start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
        """Rows with start <= t <= end, plus one neighbour on each side (for interpolating the edges)."""
        with self._lock:
            lo = self._locate(start, "left") - 1
            hi = self._locate(end, "right") + 1
            return self._copy(lo, hi)

    def snapshot(self, since: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Rows in time order (only those with t > since, when given)."""
        with self._lock:
            lo = 0 if since is None else self._locate(since, "right")
            return self._copy(lo, self.count)
