"""The virtual rig: an emulated board whose supply power follows real work on this machine.

A board model (``firmware_host/data/boards.toml``: idle and loaded power, cores,
frequencies, DVFS exponent, cited sources) turns the CPU activity of the runner
processes into supply power; an emulated INA219 (the real driver on the register-level
emulator) measures that supply; the real sampling daemon samples it. So `edgetran
profile` runs end to end anywhere, with real latencies and an energy that follows them,
and every number it produces says ``"emulated": true``.

Activity: the runner executes in child processes of this one (the isolated protocol),
so the power follows the CPU time of this process's *children* (recursively), sampled
every ``poll_s``; the host's own threads (the sampler, the CLI) do not count. When the
runs are dispatched to a dask worker on this machine (a virtual board behind
``--scheduler``), the power follows the children of that worker's process instead
(``root_pid``): the runner's protocol child is the worker's child.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from typing import Any

import psutil

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class BoardModel:
    """How a board's supply power depends on busy cores and frequency."""

    name: str
    description: str
    supply_v: float
    idle_w: float
    load_w: float
    cores: int
    frequencies_khz: tuple[int, ...]
    dvfs_exponent: float
    sources: str

    @property
    def active_w_per_core(self) -> float:
        """Power of one busy core at the top frequency."""
        return (self.load_w - self.idle_w) / self.cores

    def power_w(self, busy_cores: float, freq_khz: int | None = None) -> float:
        """Supply power with ``busy_cores`` busy at ``freq_khz`` (default: the top frequency)."""
        busy = min(max(busy_cores, 0.0), float(self.cores))
        scale = (freq_khz or max(self.frequencies_khz)) / max(self.frequencies_khz)
        return self.idle_w + self.active_w_per_core * busy * scale**self.dvfs_exponent


@lru_cache(maxsize=1)
def board_models() -> dict[str, BoardModel]:
    """The packaged board models by name."""
    text = resources.files("firmware_host").joinpath("data", "boards.toml").read_text()
    table = tomllib.loads(text)["boards"]
    return {
        name: BoardModel(
            name,
            str(entry["description"]),
            float(entry["supply_v"]),
            float(entry["idle_w"]),
            float(entry["load_w"]),
            int(entry["cores"]),
            tuple(int(f) for f in entry["frequencies_khz"]),
            float(entry["dvfs_exponent"]),
            str(entry["sources"]),
        )
        for name, entry in table.items()
    }


def board_model(name: str) -> BoardModel:
    """A board model by name (ValueError naming the known ones)."""
    models = board_models()
    if name not in models:
        raise ValueError(f"unknown board model {name!r} (known: {', '.join(models)})")
    return models[name]


class ChildActivityPower:
    """Supply power of a board model driven by the CPU use of a process's children (default: this one's)."""

    def __init__(self, model: BoardModel, poll_s: float = 0.01, freq_khz: int | None = None, root_pid: int | None = None) -> None:
        self.model = model
        self.freq_khz = freq_khz
        self.poll_s = poll_s
        self._me = psutil.Process(root_pid)
        self._busy = 0.0
        self._last: tuple[float, float] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="virtual-board-activity", daemon=True)
        self._thread.start()

    def _cpu_by_child(self) -> dict[int, float]:
        times: dict[int, float] = {}
        try:
            children = self._me.children(recursive=True)
        except psutil.Error:  # the followed process is gone (a worker that died): an idle board
            return times
        for child in children:
            try:
                cpu = child.cpu_times()
            except psutil.Error:
                continue
            times[child.pid] = cpu.user + cpu.system
        return times

    def _run(self) -> None:
        seen = self._cpu_by_child()  # children that already exist start from their current CPU time
        last_t = time.monotonic()
        while not self._stop.wait(self.poll_s):
            now = time.monotonic()
            current = self._cpu_by_child()
            busy_s = sum(cpu - seen.get(pid, 0.0) for pid, cpu in current.items())  # a new child: all its CPU is recent
            seen = current
            self._busy = max(0.0, busy_s / max(now - last_t, 1e-6))
            last_t = now

    @property
    def busy_cores(self) -> float:
        """Cores the children kept busy over the last poll interval."""
        return self._busy

    def __call__(self, t: float) -> float:
        """Supply power in watts now (the waveform interface of the emulated INA219)."""
        return self.model.power_w(self._busy, self.freq_khz)

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()


def virtual_board_sensor(model: BoardModel, rate_hz: float, name: str, address: int = 0x40, root_pid: int | None = None) -> Any:
    """An emulated INA219 on the board's supply, its power following the runner processes (children of ``root_pid``)."""
    from sensors.base import EMULATED
    from sensors.ina219.driver import INA219Sensor
    from sensors.ina219.emulator import EmulatedI2CBus, EmulatedINA219, from_power

    activity = ChildActivityPower(model, root_pid=root_pid)
    max_a = model.load_w / model.supply_v * 1.5
    chip = EmulatedINA219(from_power(activity, model.supply_v), shunt_ohms=0.1)
    sensor = INA219Sensor(
        EmulatedI2CBus({address: chip}),
        address,
        shunt_ohms=0.1,
        max_expected_a=min(max_a, 3.2),
        rate_hz=rate_hz,
        name=name,
        provenance=EMULATED,
        kind="virtual-board-ina219",
    )
    sensor.activity = activity  # type: ignore[attr-defined]
    # The supply follows the activity estimate, which changes once per poll: that, not the
    # INA219's conversion time, is this sensor's true update interval (and so sets the
    # shortest measurement window the host accepts).
    sensor._info = replace(sensor.info, update_interval_s=max(sensor.info.update_interval_s, activity.poll_s),
                           details={**sensor.info.details, "board_model": model.name, "activity_poll_s": activity.poll_s,
                                                "follows_pid": activity._me.pid})
    return sensor
