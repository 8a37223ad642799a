"""Waveforms for the emulated INA219 that follow real activity on this machine.

:class:`CpuActivityPower` polls this machine's CPU utilisation (psutil) on a background
thread and maps it to a board's supply power, ``idle_w + (load_w - idle_w) * u``, so an
emulated INA219 shows real work as power. The default numbers are a Raspberry Pi 4
Model B on a 5.1 V supply: about 2.7 W idle and 6.4 W with all four cores loaded
(RasPi.TV and Jeff Geerling's Pi 4 power measurements, 2019); the virtual rig supplies
per-board models.
"""

from __future__ import annotations

import threading

import psutil

RPI4_IDLE_W = 2.7
RPI4_LOAD_W = 6.4
RPI4_SUPPLY_V = 5.1


class CpuActivityPower:
    """Supply power that follows this machine's CPU utilisation, polled every ``poll_s``."""

    def __init__(self, idle_w: float = RPI4_IDLE_W, load_w: float = RPI4_LOAD_W, poll_s: float = 0.05, pid: int | None = None) -> None:
        self.idle_w = idle_w
        self.load_w = load_w
        self.poll_s = poll_s
        self._process = psutil.Process(pid) if pid is not None else None
        self._cores = psutil.cpu_count() or 1
        self._utilisation = 0.0
        self._stop = threading.Event()
        self._sample()
        self._thread = threading.Thread(target=self._run, name="cpu-activity-power", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        if self._process is not None:
            share = self._process.cpu_percent(interval=None) / (100.0 * self._cores)
        else:
            share = psutil.cpu_percent(interval=None) / 100.0
        self._utilisation = min(1.0, max(0.0, share))

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self._sample()
            except psutil.Error:  # the watched process ended: the board idles
                self._utilisation = 0.0

    @property
    def utilisation(self) -> float:
        """Latest utilisation in [0, 1]."""
        return self._utilisation

    def __call__(self, t: float) -> float:
        """Power in watts at time t (the latest utilisation; t is accepted for the waveform API)."""
        return self.idle_w + (self.load_w - self.idle_w) * self._utilisation

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
