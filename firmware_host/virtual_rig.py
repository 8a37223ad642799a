"""The virtual rig: an emulated board whose supply power follows real work on this machine.

A board model (``firmware_host/data/boards.toml``: idle and loaded power, cores, the CPU's
operating points with their voltages, cited sources) parameterises the one
activity-to-power model, :class:`sensors.ina219.activity.ActivityPower`, which turns the
nanosecond CPU time of the runner processes into supply power; an emulated INA219 (the
real driver on the register-level emulator) measures that supply; the real sampling
daemon samples it. So `edgetran profile` runs end to end anywhere, with real latencies
and an energy that follows them (W-per-core x CPU time), and every number it produces
says ``"emulated": true``.

Activity: the runner executes in child processes of this one (the isolated protocol),
so the power follows the CPU time (``/proc/<pid>/task/<tid>/schedstat``) of every
thread of this process's *descendants*; the host's own threads (the sampler, the CLI)
do not count. When the runs are dispatched to a dask worker on this machine (a virtual
board behind ``--scheduler``), the power follows the descendants of that worker's
process instead (``root_pid``): the runner's protocol child is the worker's child.

Frequency: each virtual board has an emulated cpufreq tree (its ``cpufreq_root``, in the
sensor's details); setting a frequency there through :mod:`device_runners.cpufreq`
makes the board draw the model's power at that frequency and slows its runner to
``f / f_top`` of this machine's speed (:mod:`firmware_host.virtual_cpufreq`). A runner
finds the tree through ``EDGETRAN_SYSFS_ROOT`` (:func:`device_runners.cpufreq.default_root`).
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Callable

from sensors.ina219.activity import ActivityPower, BoardPower

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


READ_DELAY_S = 0.0  # how far in the past the board's INA219 converts (see supply_sensor)
SMOOTHING_S = 0.003  # the supply is the board's mean busy cores over 3 ms (>= 3 sample intervals at 1 kHz)


@dataclass(frozen=True)
class BoardModel(BoardPower):
    """A board's power numbers with what it is and where the numbers come from."""

    description: str = ""
    sources: str = ""


@lru_cache(maxsize=1)
def board_models() -> dict[str, BoardModel]:
    """The packaged board models by name."""
    text = resources.files("firmware_host").joinpath("data", "boards.toml").read_text()
    table = tomllib.loads(text)["boards"]
    return {
        name: BoardModel(
            name=name,
            supply_v=float(entry["supply_v"]),
            idle_w=float(entry["idle_w"]),
            load_w=float(entry["load_w"]),
            cores=int(entry["cores"]),
            frequencies_khz=tuple(int(f) for f in entry["frequencies_khz"]),
            voltages_v=tuple(float(v) for v in entry["voltages_v"]),
            load_khz=int(entry.get("load_khz", 0)),
            description=str(entry["description"]),
            sources=str(entry["sources"]),
        )
        for name, entry in table.items()
    }


def board_model(name: str) -> BoardModel:
    """A board model by name (ValueError naming the known ones)."""
    models = board_models()
    if name not in models:
        raise ValueError(f"unknown board model {name!r} (known: {', '.join(models)})")
    return models[name]


def supply_sensor(activity: ActivityPower, rate_hz: float, name: str, address: int = 0x40,
                  clock: Callable[[], float] = time.monotonic, timing: Any = None) -> Any:
    """The real INA219 driver on an emulated chip whose supply follows ``activity`` (on ``clock``, READ_DELAY_S behind).

    Each value is the board's mean busy cores over SMOOTHING_S (3 ms) centred on the
    sample's stamp (``lead_s``: from the shunt conversion's middle, when the chip asks,
    to the conversion end, where the driver stamps it): smooth at the sample scale, so
    the trapezoid over irregular samples integrates it (the sampler shares the CPUs with
    the runner and runs late just when the runner runs; point values of the raw busy
    signal read 0 busy cores in 21% of the old rig's polls), and at most 0.75 ms of
    energy lost per activity step (SMOOTHING_S / 4). The part of the window after the
    latest CPU-time reading (~1.9 ms) is extrapolated at the latest reading interval's
    rate. READ_DELAY_S = 0: a delay would let the model see that part too (tried: 10 ms,
    no better on this machine), but samples would reach the ring late, and the host
    queries a block's window as soon as the runner reports, so its end would be uncovered.

    The emulated I2C bus is instantaneous by default (``timing=None``; pass an
    ``I2CTiming`` for modelled transaction times): the virtual board's subject is its
    power, and a modelled bus makes the sampler wait through each transaction on CPUs
    it shares with the runner (measured here: with a 400 kHz bus the 100 ms blocks read
    0.87-0.98 of the CPU-time energy, instantaneous 0.98-1.05, under the same load).
    """
    from sensors.base import EMULATED
    from sensors.ina219.driver import INA219Sensor
    from sensors.ina219.emulator import EmulatedI2CBus, EmulatedINA219, from_power

    model = activity.board
    board_time = (lambda: clock() - READ_DELAY_S) if READ_DELAY_S else clock
    chip = EmulatedINA219(from_power(activity, model.supply_v), shunt_ohms=0.1, clock=board_time)
    max_a = model.power_w(model.cores, model.top_khz) / model.supply_v * 1.5
    sensor = INA219Sensor(
        EmulatedI2CBus({address: chip}, timing=timing, clock=board_time),
        address,
        shunt_ohms=0.1,
        max_expected_a=min(max_a, 3.2),
        rate_hz=rate_hz,
        name=name,
        provenance=EMULATED,
        kind="virtual-board-ina219",
        clock=board_time,
    )
    config = sensor.device.config
    activity.lead_s = config.conversion_period_s - config.shunt_adc.conversion_s / 2
    activity.window_s = SMOOTHING_S
    sensor.activity = activity  # type: ignore[attr-defined]
    sensor._info = replace(sensor.info, details={**sensor.info.details, "board_model": model.name, "read_delay_s": READ_DELAY_S,
                                                 "smoothing_s": SMOOTHING_S})
    return sensor


def virtual_board_sensor(model: BoardModel, rate_hz: float, name: str, address: int = 0x40, root_pid: int | None = None,
                         cpufreq_root: str | Path | None = None) -> Any:
    """An emulated INA219 on the board's supply, its power following the runner processes (descendants of ``root_pid``).

    The board's emulated cpufreq tree is written under ``cpufreq_root`` (default: a fresh
    temporary folder); ``sensor.activity`` is the power model, ``sensor.cpufreq`` the
    tree's access object, ``sensor.throttle`` the duty-cycle throttle; ``sensor.activity.stop()``
    stops the throttle too (every stopped process continues).
    """
    from firmware_host.virtual_cpufreq import DutyCycleThrottle, create_board_cpufreq, frequency_reader
    from sensors.ina219.cpu_time import ProcessTreeCpu

    cpufreq = create_board_cpufreq(cpufreq_root, model.frequencies_khz, model.cores)
    current_khz = frequency_reader(cpufreq)
    tree = ProcessTreeCpu(root_pid)
    activity = ActivityPower(model, tree, frequency_khz=current_khz)
    throttle = DutyCycleThrottle(tree.pids, lambda: current_khz() / model.top_khz, activity)

    def stop() -> None:
        throttle.stop()
        if cpufreq_root is None:  # the temporary tree goes with the board
            shutil.rmtree(cpufreq.root, ignore_errors=True)

    activity.stop = stop  # type: ignore[method-assign]  # owners stop the activity; the throttle goes with it
    sensor = supply_sensor(activity, rate_hz, name, address)
    sensor.cpufreq = cpufreq  # type: ignore[attr-defined]
    sensor.throttle = throttle  # type: ignore[attr-defined]
    sensor._info = replace(sensor.info, details={**sensor.info.details, "follows_pid": tree.root_pid,
                                                 "activity": "schedstat ns CPU time of the descendants' threads",
                                                 "cpufreq_root": str(cpufreq.root)})
    return sensor
