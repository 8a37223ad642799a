"""Nanosecond CPU time of a process tree, from each process's CPU-time clock.

For every descendant of the followed pid this reads the kernel's per-process CPU clock,
``clock_gettime(MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED))`` (what
``clock_getcpuclockid(pid)`` returns; the clock id is ``(~pid << 3) | 2``): nanoseconds
on CPU of *all* its threads, exited ones included, brought up to date for a thread
running right now; one system call (~0.5 us). The alternatives are worse:

* ``/proc/<pid>/schedstat`` (first field, ns) is the *main thread only* (checked here: a
  process whose second thread spun 600 ms showed 330 ms there and 930 ms on its CPU
  clock), ``/proc/<pid>/task/<tid>/schedstat`` loses an exited thread's time, and both
  are updated only at the scheduler's tick while a thread runs (up to 4 ms stale);
* ``utime``/``stime`` in ``/proc/<pid>/stat`` cover all threads but in 10 ms clock ticks
  (the quantisation the old virtual rig suffered from).

Descendants are found from the parent pid in ``/proc/<pid>/stat`` of every process,
classified once per pid (``/proc/<pid>/task/<tid>/children`` would be cheaper, but it
needs CONFIG_PROC_CHILDREN, which many kernels, this one included, lack); the tree is
re-listed every ``rescan_s`` (20 ms; listing ``/proc`` costs ~0.1 ms), so a new process counts from at most 20 ms after it
starts (its earlier time is then counted at once). A process that exits keeps the last
value read (its time after that read, under one read interval, is lost).
"""

from __future__ import annotations

import os
import threading
import time


def _ppid(proc: str, pid: int) -> int | None:
    try:
        with open(f"{proc}/{pid}/stat", "rb") as handle:
            text = handle.read()
    except OSError:
        return None
    return int(text.rsplit(b")", 1)[1].split()[1])  # the field after the state


def process_cpu_ns(pid: int) -> int | None:
    """CPU time of every thread of ``pid`` so far, ns (None when it is gone or not ours to read)."""
    try:
        return time.clock_gettime_ns(((~pid) << 3) | 2)  # MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)
    except OSError:
        return None


class ProcessTreeCpu:
    """Cumulative CPU time in ns of ``root_pid``'s descendants, all their threads (the root itself excluded)."""

    def __init__(self, root_pid: int | None = None, proc: str = "/proc", rescan_s: float = 0.02) -> None:
        self.root_pid = root_pid if root_pid is not None else os.getpid()
        self.proc = proc
        self.rescan_s = rescan_s  # how often the tree's processes are re-listed
        self._refreshed = -float("inf")
        self._lock = threading.Lock()
        self._members: set[int] = set()  # descendants seen alive at the last scan
        self._others: set[int] = set()  # pids known not to descend from the root
        self._tasks: dict[int, int] = {}  # pid -> last ns read
        self._gone_ns = 0  # time of processes that have exited since
        self.baseline_ns = 0
        self.baseline_ns = self.read_ns()  # work done before this object existed does not count

    def _scan(self) -> set[int]:
        """Descendants alive now (new pids classified by their parent)."""
        alive = {int(name) for name in os.listdir(self.proc) if name.isdigit()}
        self._others &= alive
        members = self._members & alive
        fresh = sorted(alive - members - self._others - {self.root_pid})
        parents = {pid: _ppid(self.proc, pid) for pid in fresh}
        changed = True
        while changed:  # a child may be listed before its parent is classified
            changed = False
            for pid in list(parents):
                if parents[pid] == self.root_pid or parents[pid] in members:
                    members.add(pid)
                    del parents[pid]
                    changed = True
        self._others |= set(parents)
        self._members = members
        return members

    def pids(self) -> list[int]:
        """The descendants alive now."""
        with self._lock:
            return sorted(self._scan())

    def read_ns(self) -> int:
        """CPU time of the tree since this object was made, in ns."""
        with self._lock:
            if time.monotonic() - self._refreshed >= self.rescan_s:
                self._scan()
                self._refreshed = time.monotonic()
            seen: dict[int, int] = {}
            for pid in self._members:
                ns = process_cpu_ns(pid)
                if ns is not None:
                    seen[pid] = ns
            for pid, ns in self._tasks.items():
                if pid not in seen or seen[pid] < ns:  # exited (or its pid was reused by a new process)
                    self._gone_ns += ns
            self._tasks = seen
            return self._gone_ns + sum(seen.values()) - self.baseline_ns


class MachineCpu:
    """Cumulative busy CPU time of the whole machine in ns, from ``/proc/stat`` (10 ms clock ticks: coarse)."""

    resolution_ns = 10_000_000  # one USER_HZ tick on every common kernel

    def __init__(self, proc: str = "/proc") -> None:
        self.proc = proc
        self._ns_per_tick = 1e9 / os.sysconf("SC_CLK_TCK")
        self.baseline_ns = 0
        self.baseline_ns = self.read_ns()

    def read_ns(self) -> int:
        """Busy time of all CPUs since this object was made, in ns (idle and iowait excluded)."""
        with open(f"{self.proc}/stat") as handle:
            fields = [int(x) for x in handle.readline().split()[1:9]]
        busy_ticks = sum(fields) - fields[3] - fields[4]
        return int(busy_ticks * self._ns_per_tick) - self.baseline_ns
