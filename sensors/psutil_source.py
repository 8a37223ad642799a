"""Context channels from psutil: CPU utilisation, CPU frequency, a process's memory and CPU use.

Not power: provenance CONTEXT. Channels:

- ``cpu.util_pct``: busy share of all CPUs since the previous read, from
  ``psutil.cpu_times()`` differences (busy = total - idle - iowait; guest time is
  already inside user/nice and not counted twice), as psutil itself computes it;
  ``cpuN.util_pct`` per core with ``per_core=True``. This module keeps its own
  previous times, so other ``psutil.cpu_percent`` callers in the process do not
  disturb it.
- ``cpu.freq_mhz``: ``psutil.cpu_freq().current`` (the mean over CPUs on Linux),
  where the platform reports it.
- ``process.rss_bytes`` and ``process.util_pct`` (CPU time of the process over wall
  time; above 100 on several cores) with ``pid=...``.

Update interval: the kernel accounts CPU time in clock ticks (``USER_HZ``, 100 Hz on
Linux), so utilisation changes at most every 10 ms; a read's utilisation covers the
time since the previous read.
"""

from __future__ import annotations

import os
import time
from typing import Any, NamedTuple, Sequence

from sensors.base import CONTEXT, EMULATED, Clock, Sample, Sensor, SensorError, SensorInfo

KIND = "psutil"
CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100  # USER_HZ, Hz
TICK_S = 1.0 / CLOCK_TICKS_PER_S  # CPU-time accounting granularity, s
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096  # RSS granularity, bytes
FREQ_RESOLUTION_MHZ = 0.001  # cpufreq reports kHz
PERCENT = 100.0
IDLE_FIELDS = ("idle", "iowait")  # time a CPU was not busy
GUEST_FIELDS = ("guest", "guest_nice")  # already counted in user / nice on Linux


def load_psutil() -> Any:
    """The psutil module, or a SensorError naming the package."""
    try:
        import psutil
    except ImportError as exc:
        raise SensorError("psutil missing: install it (the 'runner' extra)") from exc
    return psutil


def busy_pct(before: NamedTuple, after: NamedTuple) -> float | None:
    """Busy share between two ``cpu_times`` readings, %; None when no CPU time passed."""
    fields = after._fields
    delta = {name: getattr(after, name) - getattr(before, name) for name in fields}
    total = sum(delta.values()) - sum(delta.get(name, 0.0) for name in GUEST_FIELDS)
    if total <= 0:
        return None
    idle = sum(delta.get(name, 0.0) for name in IDLE_FIELDS)
    return min(max((total - idle) / total, 0.0), 1.0) * PERCENT


def _freq_mhz(ps: Any) -> float | None:
    try:
        freq = ps.cpu_freq()
    except (NotImplementedError, OSError, AttributeError):
        return None
    return float(freq.current) if freq is not None and freq.current else None


def discover(module: Any = None) -> list[str]:
    """The context channels this machine offers ([] without psutil); per-core and process channels not listed."""
    try:
        ps = module if module is not None else load_psutil()
    except SensorError:
        return []
    channels = ["cpu.util_pct"]
    if _freq_mhz(ps) is not None:
        channels.append("cpu.freq_mhz")
    return channels


def present(module: Any = None) -> bool:
    """Whether psutil is importable (then CPU utilisation is always available)."""
    return bool(discover(module))


class PsutilSensor(Sensor):
    """CPU utilisation and frequency, optionally per core and for one process; provenance CONTEXT."""

    def __init__(
        self,
        *,
        per_core: bool = False,
        pid: int | None = None,
        name: str = "psutil",
        module: Any = None,
        emulated: bool = False,
        clock: Clock = time.monotonic,
    ) -> None:
        self.clock = clock
        self._ps = module if module is not None else load_psutil()
        ps = self._ps
        self._per_core = per_core
        self._process = None
        if pid is not None:
            try:
                self._process = ps.Process(pid)
                self._last_proc_cpu_s = self._process_cpu_s()
                self._last_proc_t = self.clock()
                self._proc_util = 0.0
            except ps.Error as exc:
                raise SensorError(f"cannot watch process {pid}: {exc}") from exc
        self._last_total = ps.cpu_times()
        self._last_cores: Sequence[Any] = ps.cpu_times(percpu=True) if per_core else ()
        self._util = {"cpu.util_pct": 0.0}
        self._has_freq = _freq_mhz(ps) is not None
        channels = ["cpu.util_pct"]
        precision = {"cpu.util_pct": PERCENT * TICK_S}  # one tick in a 1 s window
        for index in range(len(self._last_cores)):
            channels.append(f"cpu{index}.util_pct")
            precision[f"cpu{index}.util_pct"] = PERCENT * TICK_S
            self._util[f"cpu{index}.util_pct"] = 0.0
        if self._has_freq:
            channels.append("cpu.freq_mhz")
            precision["cpu.freq_mhz"] = FREQ_RESOLUTION_MHZ
        if self._process is not None:
            channels += ["process.rss_bytes", "process.util_pct"]
            precision["process.rss_bytes"] = float(PAGE_BYTES)
            precision["process.util_pct"] = PERCENT * TICK_S
        self._info = SensorInfo(
            kind=KIND,
            name=name,
            channels=tuple(channels),
            update_interval_s=TICK_S,
            precision=precision,
            provenance=EMULATED if emulated else CONTEXT,
            details={"pid": pid, "cpus": len(self._last_cores) or None, "clock_ticks_per_s": CLOCK_TICKS_PER_S},
        )

    @property
    def info(self) -> SensorInfo:
        """Utilisation / frequency / process channels; update interval one accounting tick."""
        return self._info

    def _process_cpu_s(self) -> float:
        assert self._process is not None
        times = self._process.cpu_times()
        return float(times.user + times.system)

    def read(self) -> Sample:
        """Utilisation since the previous read, the current frequency, the process's RSS and CPU share."""
        ps = self._ps
        t = self.clock()
        total = ps.cpu_times()
        busy = busy_pct(self._last_total, total)
        fresh = busy is not None
        if fresh:
            self._util["cpu.util_pct"] = busy
            self._last_total = total
            if self._per_core:
                cores = ps.cpu_times(percpu=True)
                for index, (before, after) in enumerate(zip(self._last_cores, cores)):
                    core = busy_pct(before, after)
                    if core is not None:
                        self._util[f"cpu{index}.util_pct"] = core
                self._last_cores = cores
        values: dict[str, float] = dict(self._util)
        if self._has_freq:
            freq = _freq_mhz(ps)
            if freq is not None:
                values["cpu.freq_mhz"] = freq
        if self._process is not None:
            try:
                values["process.rss_bytes"] = float(self._process.memory_info().rss)
                cpu_s = self._process_cpu_s()
            except ps.Error as exc:
                raise SensorError(f"process {self._process.pid} cannot be read: {exc}") from exc
            wall = t - self._last_proc_t
            if wall > 0:
                self._proc_util = (cpu_s - self._last_proc_cpu_s) / wall * PERCENT
                self._last_proc_cpu_s, self._last_proc_t = cpu_s, t
            values["process.util_pct"] = self._proc_util
        return Sample(t, values, fresh=fresh)
