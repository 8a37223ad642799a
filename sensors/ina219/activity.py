"""The one activity-to-power model: a board's supply power from the CPU time of its work.

:class:`BoardPower` holds a board's numbers (idle and all-cores power, cores, the V/f
table of its CPU); the numbers come from the caller (the virtual rig reads them from
``firmware_host/data/boards.toml``), none are built in here. Per busy core the active
power is dynamic power, ``C V^2 f``, scaled so that all cores busy at ``load_khz``
draw ``load_w``::

    P = idle_w + busy_cores * (load_w - idle_w) / cores * V(f)^2 f / (V(f_load)^2 f_load)

:class:`ActivityPower` drives it from a cumulative CPU-time source (ns): the process
tree of the runner (:class:`sensors.ina219.cpu_time.ProcessTreeCpu`) or the whole
machine (:class:`sensors.ina219.cpu_time.MachineCpu`). It keeps a history of
``(time, CPU ns, frequency)`` readings, taken when asked (at most every ``min_poll_s``),
and answers the emulated INA219's question "power at time t" with the board's mean busy
cores over ``window_s`` centred on ``t + lead_s`` (cumulative CPU time interpolated
linearly between readings). The integral of the answers is ``idle x T + W-per-core x
CPU time`` except at activity steps: energy follows CPU time, with no 10 ms tick
quantisation.

**Lag.** None on average: the window is centred on the time asked for (``lead_s``
moves it from when the chip samples to when its driver stamps the sample). The part of
the window after the latest reading (``window_s / 2 + lead_s``, ~1.9 ms on the virtual
rig) is extrapolated at the latest interval's rate, so an activity step is smeared over
``window_s`` (3 ms on the virtual rig: SMOOTHING_S / 4 = 0.75 ms of energy per step pair
at most). A source with a coarse resolution (``min_poll_s`` > 0, e.g. ``/proc/stat``
ticks) is read at most every ``min_poll_s``; its values then lag by up to that.

**Duty-cycled work** (the virtual rig's emulated DVFS stops the runner for part of each
cycle so it runs at f / f_max of this machine's speed): a board at a lower frequency is
busy all the time its work would run, so while the work is stopped (between
:meth:`ActivityPower.hold` and :meth:`ActivityPower.release`) the board keeps the busy
cores of the run phase before it. Over one cycle the board's busy-core time is then
``host CPU time / duty``: a block stretched by ``1 / duty`` draws the board's active
power at f for its whole length, without ripple.
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from sensors.base import Clock


class CpuTimeSource(Protocol):
    """Anything with a cumulative CPU time in ns."""

    def read_ns(self) -> int:
        """CPU time so far, ns."""
        ...


@dataclass(frozen=True)
class BoardPower:
    """A board's supply power as a function of busy cores and CPU frequency."""

    name: str
    supply_v: float
    idle_w: float
    load_w: float  # whole board, every core busy at load_khz
    cores: int
    frequencies_khz: tuple[int, ...]  # the CPU's operating points, ascending
    voltages_v: tuple[float, ...]  # core voltage at each operating point
    load_khz: int = 0  # frequency at which load_w was measured (0: the top frequency)

    def __post_init__(self) -> None:
        if len(self.frequencies_khz) != len(self.voltages_v) or not self.frequencies_khz:
            raise ValueError(f"board {self.name!r}: one voltage per frequency needed "
                             f"({len(self.frequencies_khz)} frequencies, {len(self.voltages_v)} voltages)")
        if list(self.frequencies_khz) != sorted(self.frequencies_khz) or min(self.frequencies_khz) <= 0:
            raise ValueError(f"board {self.name!r}: frequencies must be positive and ascending")
        if min(self.voltages_v) <= 0 or self.cores < 1 or self.load_w < self.idle_w:
            raise ValueError(f"board {self.name!r}: voltages and cores must be positive and load_w >= idle_w")

    @classmethod
    def flat(cls, name: str, supply_v: float, idle_w: float, load_w: float, cores: int) -> "BoardPower":
        """A board without DVFS information (one operating point)."""
        return cls(name, supply_v, idle_w, load_w, cores, (1,), (1.0,))

    @property
    def top_khz(self) -> int:
        """The highest operating point."""
        return self.frequencies_khz[-1]

    def voltage_v(self, khz: float) -> float:
        """Core voltage at ``khz`` (linear between operating points, clamped at the ends)."""
        return float(np.interp(khz, self.frequencies_khz, self.voltages_v))

    def active_w_per_core(self, khz: float | None = None) -> float:
        """Power of one busy core at ``khz`` (default: the top frequency), ~ V^2 f."""
        khz = khz or self.top_khz
        load_khz = self.load_khz or self.top_khz
        scale = self.voltage_v(khz) ** 2 * khz / (self.voltage_v(load_khz) ** 2 * load_khz)
        return (self.load_w - self.idle_w) / self.cores * scale

    def power_w(self, busy_cores: float, khz: float | None = None) -> float:
        """Supply power with ``busy_cores`` busy (capped at the board's cores) at ``khz``."""
        busy = min(max(busy_cores, 0.0), float(self.cores))
        return self.idle_w + self.active_w_per_core(khz) * busy


class ActivityPower:
    """Supply power of a board that follows a CPU-time source, answered for any recent time t."""

    PRUNE_EVERY = 4096  # readings between history trims

    def __init__(
        self,
        board: BoardPower,
        cpu: CpuTimeSource,
        frequency_khz: Callable[[], int] | None = None,
        min_poll_s: float = 0.0005,
        window_s: float = 0.001,
        lead_s: float = 0.0,
        history_s: float = 10.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self.board = board
        self.cpu = cpu
        self.frequency_khz = frequency_khz or (lambda: board.top_khz)
        self.min_poll_s = min_poll_s
        self.window_s = window_s
        self.lead_s = lead_s  # answer for t + lead_s: from when the chip samples to when its driver stamps the sample
        self.history_s = history_s
        self.clock = clock
        self._lock = threading.RLock()
        self._t: list[float] = []
        self._ns: list[int] = []
        self._khz: list[int] = []
        self._held: list[float | None] = []  # busy cores held over the interval after reading i (work stopped)
        self._board_ns: list[float] = []  # cumulative busy-core time of the board (held intervals at their held value)
        self._run_start = 0  # reading at which the current run phase began
        self._stopped = False
        self.poll()

    # -- readings ----------------------------------------------------------------------

    def poll(self) -> None:
        """Take a reading now."""
        with self._lock:
            try:
                khz = int(self.frequency_khz())
            except (OSError, ValueError):
                khz = self._khz[-1] if self._khz else self.board.top_khz
            ns = self.cpu.read_ns()
            now = self.clock()
            ns = max(ns, self._ns[-1]) if self._ns else ns
            if self._t:
                held = self._held[-1]
                self._board_ns.append(self._board_ns[-1] + (held * (now - self._t[-1]) * 1e9 if held is not None else ns - self._ns[-1]))
            else:
                self._board_ns.append(0.0)
            self._t.append(now)
            self._ns.append(ns)
            self._khz.append(khz)
            self._held.append(self._held[-1] if self._stopped and self._held else None)
            if len(self._t) % self.PRUNE_EVERY == 0:
                self._prune()

    def _prune(self) -> None:
        cut = bisect.bisect_left(self._t, self._t[-1] - self.history_s)
        cut = min(cut, len(self._t) - 2)
        if self._stopped or self._held[-1] is not None or self._run_start > 0:
            cut = min(cut, self._run_start)  # keep the current run phase: hold() averages over it
        if cut > 0:
            for series in (self._t, self._ns, self._khz, self._held, self._board_ns):
                del series[:cut]
            self._run_start -= cut

    def hold(self) -> None:
        """The work was just stopped: keep the busy cores of its last run phase until :meth:`release`."""
        with self._lock:
            self.poll()
            start = self._run_start
            span = self._t[-1] - self._t[start]
            busy = (self._ns[-1] - self._ns[start]) / 1e9 / span if span > 0 else 0.0
            self._held[-1] = busy
            self._stopped = True

    def release(self) -> None:
        """The work was just resumed: a new run phase starts."""
        with self._lock:
            self._stopped = False
            self.poll()
            self._held[-1] = None
            self._run_start = len(self._t) - 1

    # -- answers -----------------------------------------------------------------------

    def _board_ns_at(self, x: float) -> float:
        """Cumulative busy-core ns of the board at x (linear inside a reading interval)."""
        t, b = self._t, self._board_ns
        if x <= t[0]:
            return b[0]
        if x >= t[-1]:  # past the last reading: the last interval's rate goes on
            if len(t) < 2:
                return b[-1]
            return b[-1] + (b[-1] - b[-2]) / (t[-1] - t[-2]) * (x - t[-1]) if t[-1] > t[-2] else b[-1]
        i = bisect.bisect_left(t, x)
        return b[i - 1] + (b[i] - b[i - 1]) * (x - t[i - 1]) / (t[i] - t[i - 1])

    def _busy_over(self, start: float, end: float) -> float:
        """Mean busy cores of the board over [start, end], capped at its cores."""
        if self._t[-1] < end and self.clock() - self._t[-1] >= self.min_poll_s:
            self.poll()
        busy = (self._board_ns_at(end) - self._board_ns_at(start)) / 1e9 / (end - start)
        return min(max(busy, 0.0), float(self.board.cores))

    def _khz_at(self, t: float) -> int:
        return self._khz[min(bisect.bisect_left(self._t, t), len(self._t) - 1)]

    def busy_cores(self, t: float | None = None) -> float:
        """Board cores busy around time t (default: now): the mean over ``window_s`` centred on t."""
        with self._lock:
            t = self.clock() if t is None else t
            half = max(self.window_s, 1e-4) / 2
            return self._busy_over(t - half, t + half)

    def __call__(self, t: float) -> float:
        """Supply power in watts at time t (the waveform interface of the emulated INA219): the mean over ``window_s`` centred on ``t + lead_s``."""
        with self._lock:
            if self.clock() - self._t[-1] >= self.min_poll_s:
                self.poll()  # readings stay a sampler interval apart, whatever t is asked
            centre, half = t + self.lead_s, max(self.window_s, 1e-4) / 2
            busy = self._busy_over(centre - half, centre + half)
            khz = self._khz_at(centre)
        return self.board.power_w(busy, khz)

    def stop(self) -> None:
        """Nothing runs in the background; kept so owners can stop every activity source alike."""


def machine_activity_power(idle_w: float, load_w: float, supply_v: float) -> ActivityPower:
    """Power that follows this whole machine's CPU use (``/proc/stat``, 10 ms ticks: read every 50 ms)."""
    from sensors.ina219.cpu_time import MachineCpu

    board = BoardPower.flat("this-machine", supply_v, idle_w, load_w, os.cpu_count() or 1)
    return ActivityPower(board, MachineCpu(), min_poll_s=0.05, window_s=0.05)
