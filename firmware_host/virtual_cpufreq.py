"""Emulated DVFS for a virtual board: its cpufreq tree sets how fast its runner runs.

A virtual board has an emulated cpufreq tree (:class:`device_runners.cpufreq_emulator.
EmulatedCpufreq`, one policy over the board's cores, the board's operating points). The
runner, or EdgeBERT's DVFS controller, sets the frequency there with the same
:mod:`device_runners.cpufreq` code that writes ``scaling_setspeed`` /
``scaling_max_freq`` on a real Pi; the board reads ``scaling_cur_freq`` back:

* **power**: the board model's active power at that frequency (``~ V^2 f`` from the
  board's V/f table, :class:`sensors.ina219.activity.BoardPower`);
* **speed**: :class:`DutyCycleThrottle` runs the board's processes (the descendants of
  the followed pid) for ``f / f_max`` of each ``cycle_s`` and stops them (SIGSTOP /
  SIGCONT) for the rest, so a fixed amount of work takes ``f_max / f`` times as long
  as at the top frequency, which runs at this machine's full speed.

Why signals: they work unprivileged on one's own children, and as root, in any
container; cgroup ``cpu.max`` needs a writable cgroup v2 hierarchy, which containers
often lack (this one has a read-only v1 tree), and it limits total CPU time rather than
each thread's speed. A real board needs none of this: its cpufreq driver changes the
clock itself. The run share is kept exact over time by error feedback (a late wake-up
shortens the next run phase). Stopped processes are continued when the frequency
returns to the top, when the throttle stops, and by the kernel (SIGHUP + SIGCONT to an
orphaned stopped process group) if this process dies.
"""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from device_runners.cpufreq import CPUFREQ_DIR
from device_runners.cpufreq_emulator import EmulatedCpufreq, PolicySpec

CYCLE_S = 0.01  # one run + stop cycle of a throttled board: short against a block, long against a signal's cost
POLICY = "policy0"


def create_board_cpufreq(root: str | Path | None, frequencies_khz: tuple[int, ...], cores: int) -> EmulatedCpufreq:
    """An emulated cpufreq tree for a board (under ``root``, or a fresh temporary folder)."""
    root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="edgetran-virtual-sysfs-"))
    return EmulatedCpufreq.create(root, [PolicySpec(POLICY, tuple(range(cores)), tuple(frequencies_khz))])


FREQUENCY_REFRESH_S = 0.005  # a frequency written to the tree takes effect within 5 ms


def frequency_reader(access: EmulatedCpufreq, policy: str = POLICY) -> Callable[[], int]:
    """A callable returning the policy's ``scaling_cur_freq`` in kHz, re-read at most every FREQUENCY_REFRESH_S."""
    path = str(access.path(f"{CPUFREQ_DIR}/{policy}/scaling_cur_freq"))
    cache = [-float("inf"), 0]

    def current_khz() -> int:
        now = time.monotonic()
        if now - cache[0] >= FREQUENCY_REFRESH_S:
            with open(path) as handle:
                cache[1] = int(handle.read())
            cache[0] = now
        return cache[1]

    return current_khz


STOP_WAIT_S = 0.05  # longest wait for SIGSTOP to take effect


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0].decode()
    except OSError:
        return "X"  # gone


def _wait_stopped(pids: list[int]) -> None:
    """Wait until every process has stopped (state T), exited, or STOP_WAIT_S passed."""
    deadline = time.monotonic() + STOP_WAIT_S
    pending = list(pids)
    while pending and time.monotonic() < deadline:
        pending = [pid for pid in pending if _state(pid) not in ("T", "t", "X", "Z")]
        if pending:
            time.sleep(0.0002)


class DutyCycleThrottle:
    """Runs a process tree at ``duty()`` of full speed by SIGSTOP / SIGCONT, telling the power model when it stops."""

    def __init__(self, pids: Callable[[], list[int]], duty: Callable[[], float], activity: object | None = None,
                 cycle_s: float = CYCLE_S) -> None:
        self.pids = pids
        self.duty = duty
        self.activity = activity  # has hold() / release(): the board stays busy while its work is stopped
        self.cycle_s = cycle_s
        self._stopped: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="virtual-board-dvfs", daemon=True)
        self._thread.start()

    def _signal(self, pids: list[int], sig: int) -> None:
        for pid in pids:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                self._stopped.discard(pid)

    def _pause(self) -> None:
        pids = self.pids()
        self._signal(pids, signal.SIGSTOP)
        self._stopped.update(pids)
        _wait_stopped(pids)  # a runnable process stops only once it gets a CPU: on a loaded machine, ms later
        if self.activity is not None:
            self.activity.hold()

    def _resume(self) -> None:
        was_stopped = bool(self._stopped)
        self._signal(sorted(self._stopped), signal.SIGCONT)
        self._stopped.clear()
        if was_stopped and self.activity is not None:
            self.activity.release()

    def _run(self) -> None:
        ran_s = total_s = 0.0  # since the duty last changed: time run and time elapsed
        last_duty = None
        try:
            while not self._stop.is_set():
                try:
                    duty = min(1.0, max(0.01, float(self.duty())))
                except (OSError, ValueError):
                    duty = last_duty or 1.0
                if duty >= 1.0:
                    self._resume()
                    last_duty = duty
                    self._stop.wait(self.cycle_s)
                    continue
                if duty != last_duty:
                    ran_s = total_s = 0.0
                    last_duty = duty
                    if self.activity is not None and not self._stopped:
                        self.activity.release()  # a run phase starts now
                start = time.monotonic()
                self._resume()
                # Error feedback: run until the share of run time catches up with the duty.
                self._stop.wait(max(0.0, duty * (total_s + self.cycle_s) - ran_s))
                self._pause()
                paused = time.monotonic()  # once every process has stopped
                ran_s += paused - start
                self._stop.wait(max(0.0, (1.0 - duty) * self.cycle_s))
                total_s += time.monotonic() - start
        finally:
            self._resume()

    def stop(self) -> None:
        """Stop throttling; every process it stopped continues."""
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._resume()
