"""Nanosecond CPU time of a process tree, from ``/proc/<pid>/task/<tid>/schedstat``.

The first field of a task's ``schedstat`` is the time it has spent on a CPU, in
nanoseconds (``se.sum_exec_runtime``; present wherever the kernel has CONFIG_SCHED_INFO,
which every distribution kernel and Raspberry Pi OS enable). ``/proc/<pid>/schedstat``
is the *main thread only* (checked here: a process whose second thread spun 600 ms
showed 330 ms there and 930 ms in ``/proc/<pid>/stat``), so the tree's time is the sum
over every thread of every descendant (onnxruntime's intra-op pool included).
``utime``/``stime`` in ``/proc/<pid>/stat`` do cover all threads, but in clock ticks of
10 ms: the quantisation this module exists to avoid.

Descendants are found from the parent pid in ``/proc/<pid>/stat`` of every process,
classified once per pid (``/proc/<pid>/task/<tid>/children`` would be cheaper, but it
needs CONFIG_PROC_CHILDREN, which many kernels lack), so a scan costs one directory
listing of ``/proc`` plus the new pids; the tree and its threads are re-listed every
``rescan_s`` (5 ms), the known threads' counters read on every call (~10 us each), so a
new process or thread counts from at most 5 ms after it starts (its earlier time is
then counted at once). A thread or process that exits keeps the last
value seen (its time after the last read, under one read interval, is lost; a process
does not hand its threads' schedstat time to anyone readable).
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


def _task_ns(proc: str, pid: int, tid: str) -> int | None:
    try:
        with open(f"{proc}/{pid}/task/{tid}/schedstat", "rb") as handle:
            return int(handle.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class ProcessTreeCpu:
    """Cumulative CPU time in ns of every thread of ``root_pid``'s descendants (the root itself excluded)."""

    def __init__(self, root_pid: int | None = None, proc: str = "/proc", rescan_s: float = 0.005) -> None:
        self.root_pid = root_pid if root_pid is not None else os.getpid()
        self.proc = proc
        self.rescan_s = rescan_s  # how often the tree's processes and threads are re-listed
        self._threads: list[tuple[int, str]] = []
        self._refreshed = -float("inf")
        self._lock = threading.Lock()
        self._members: set[int] = set()  # descendants seen alive at the last scan
        self._others: set[int] = set()  # pids known not to descend from the root
        self._tasks: dict[tuple[int, str], int] = {}  # (pid, tid) -> last ns seen
        self._gone_ns = 0  # time of tasks that have exited since
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

    def _refresh(self) -> None:
        """Re-list the tree's processes and their threads."""
        members = self._scan()
        threads: list[tuple[int, str]] = []
        for pid in members:
            try:
                threads.extend((pid, tid) for tid in os.listdir(f"{self.proc}/{pid}/task"))
            except OSError:
                continue  # exited between the scan and now
        self._threads = threads
        self._refreshed = time.monotonic()

    def read_ns(self) -> int:
        """CPU time of the tree since this object was made, in ns."""
        with self._lock:
            if time.monotonic() - self._refreshed >= self.rescan_s:
                self._refresh()
            seen: dict[tuple[int, str], int] = {}
            for pid, tid in self._threads:
                ns = _task_ns(self.proc, pid, tid)
                if ns is not None:
                    seen[(pid, tid)] = ns
            for key, ns in self._tasks.items():
                if key not in seen or seen[key] < ns:  # exited (or its pid was reused by a new task)
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
