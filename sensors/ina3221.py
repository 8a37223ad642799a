"""Jetson INA3221 power rails from sysfs, in both driver layouts.

Layouts (file names as jetson-stats reads them and as the kernel documents them):

- ``ina3221x`` (NVIDIA's downstream IIO driver, L4T up to JetPack 4: Nano, TX1/TX2,
  Xavier): ``/sys/bus/i2c/drivers/ina3221x/<bus>-<addr>/iio:deviceN/`` with
  ``rail_name_K`` (K = 0..2), ``in_powerK_input`` (mW), ``in_voltageK_input`` (bus
  voltage, mV), ``in_currentK_input`` (mA).
- ``ina3221`` (the mainline hwmon driver, JetPack 5+: Orin): ``/sys/bus/i2c/drivers/
  ina3221/<bus>-<addr>/hwmon/hwmonN/`` with ``inK_label`` (K = 1..3), ``inK_input``
  (bus voltage, mV), ``currK_input`` (mA), ``inK_enable``; power is V * I computed
  here. ``in4..6`` (shunt voltages) and ``in7`` / ``curr4`` (sums) are not rails.
  Channels labelled ``NC`` (not connected, on Orin) and disabled channels are skipped.

Channels: ``<rail>.power_w``, ``<rail>.bus_v``, ``<rail>.current_a`` per rail, e.g.
``VDD_IN.power_w``. A rail name used by two chips gets ``@<bus>-<addr>`` appended.

Update interval: the hwmon driver's ``update_interval`` file (ms, which the driver
computes as channels x samples x (bus + shunt conversion time) and rounds to whole
ms); where it is absent (the IIO driver exposes none) the chip's power-on default
configuration (CONFIG 0x7127: 3 channels, 1 sample, 1.1 ms bus + 1.1 ms shunt
conversion) gives 6.6 ms. The L4T device tree may configure the chip otherwise; pass
``update_interval_s`` when you know better.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from sensors.base import EMULATED, MEASURED, Clock, Sample, Sensor, SensorConfigError, SensorError, SensorInfo
from sensors.sysfs import PathLike, read_int, read_text, under_root
from sensors.update_rate import FreshnessTracker

KIND = "ina3221"
LAYOUT_IIO = "ina3221x-iio"  # NVIDIA downstream IIO driver
LAYOUT_HWMON = "ina3221-hwmon"  # mainline hwmon driver
IIO_DRIVER_DIR = "/sys/bus/i2c/drivers/ina3221x"
HWMON_DRIVER_DIR = "/sys/bus/i2c/drivers/ina3221"

CONVERSION_TIMES_US = (140, 204, 332, 588, 1100, 2116, 4156, 8244)  # datasheet CT codes 0..7, us
DEFAULT_CONVERSION_US = 1100  # bus and shunt conversion time at the reset config 0x7127, us
DEFAULT_SAMPLES = 1  # averaging at the reset config
CHANNELS_PER_CHIP = 3
DEFAULT_UPDATE_INTERVAL_S = CHANNELS_PER_CHIP * DEFAULT_SAMPLES * 2 * DEFAULT_CONVERSION_US * 1e-6  # 6.6 ms
MIN_CONVERSION_US = CONVERSION_TIMES_US[0]  # what update_interval = 0 selects, us

MILLI = 1e-3  # mV -> V, mA -> A, mW -> W
NOT_CONNECTED = "NC"
I2C_DEVICE = re.compile(r"^\d+-[0-9a-fA-F]{4}$")  # e.g. "6-0040"


@dataclass(frozen=True)
class Rail:
    """One monitored supply: its label, where its files are, and in which layout."""

    name: str  # channel prefix, e.g. "VDD_IN"
    label: str  # as the driver reports it
    layout: str
    device: str  # I2C device, e.g. "6-0040"
    directory: Path  # the iio:deviceN or hwmonN folder
    index: int  # channel number in file names: 0..2 (IIO) or 1..3 (hwmon)

    @property
    def voltage_file(self) -> Path:
        """Bus voltage, mV."""
        name = f"in_voltage{self.index}_input" if self.layout == LAYOUT_IIO else f"in{self.index}_input"
        return self.directory / name

    @property
    def current_file(self) -> Path:
        """Current, mA."""
        name = f"in_current{self.index}_input" if self.layout == LAYOUT_IIO else f"curr{self.index}_input"
        return self.directory / name

    @property
    def power_file(self) -> Path | None:
        """Power, mW (IIO layout only; hwmon power is V * I)."""
        return self.directory / f"in_power{self.index}_input" if self.layout == LAYOUT_IIO else None


@dataclass(frozen=True)
class Ina3221Device:
    """One INA3221 chip found in sysfs."""

    device: str
    layout: str
    directory: Path
    rails: tuple[Rail, ...]
    update_interval_s: float
    update_interval_source: str


def _device_dirs(driver_dir: Path) -> list[Path]:
    if not driver_dir.is_dir():
        return []
    return sorted(p for p in driver_dir.iterdir() if I2C_DEVICE.match(p.name) and p.is_dir())


def _iio_device(dev: Path, folder: Path) -> Ina3221Device:
    rails = []
    for label_file in sorted(folder.glob("rail_name_*")):
        suffix = label_file.name[len("rail_name_") :]
        if not suffix.isdigit():
            continue
        label = read_text(label_file)
        if label.upper() == NOT_CONNECTED:
            continue
        rails.append(Rail(label, label, LAYOUT_IIO, dev.name, folder, int(suffix)))
    return Ina3221Device(
        dev.name, LAYOUT_IIO, folder, tuple(rails), DEFAULT_UPDATE_INTERVAL_S, "chip default (CONFIG 0x7127)"
    )


def _hwmon_update_interval(folder: Path, enabled: int) -> tuple[float, str]:
    interval_file = folder / "update_interval"
    if not interval_file.exists():
        return DEFAULT_UPDATE_INTERVAL_S, "chip default (CONFIG 0x7127)"
    ms = read_int(interval_file)
    if ms > 0:
        return ms * MILLI, f"{interval_file} ({ms} ms, rounded by the driver)"
    samples_file = folder / "samples"
    samples = read_int(samples_file) if samples_file.exists() else DEFAULT_SAMPLES
    return max(enabled, 1) * samples * 2 * MIN_CONVERSION_US * 1e-6, f"{interval_file} (0 = minimum conversion time)"


def _hwmon_device(dev: Path, folder: Path) -> Ina3221Device:
    rails = []
    enabled = 0
    for index in range(1, CHANNELS_PER_CHIP + 1):
        if not (folder / f"in{index}_input").exists():
            continue
        enable_file = folder / f"in{index}_enable"
        if enable_file.exists() and read_int(enable_file) == 0:
            continue
        enabled += 1
        label_file = folder / f"in{index}_label"
        label = read_text(label_file) if label_file.exists() else f"ch{index}@{dev.name}"
        if label.upper() == NOT_CONNECTED:
            continue
        rails.append(Rail(label, label, LAYOUT_HWMON, dev.name, folder, index))
    interval, source = _hwmon_update_interval(folder, enabled)
    return Ina3221Device(dev.name, LAYOUT_HWMON, folder, tuple(rails), interval, source)


def discover(root: PathLike = "/") -> list[Ina3221Device]:
    """All INA3221 chips under ``root`` in either driver layout (IIO first, then hwmon)."""
    devices = []
    for dev in _device_dirs(under_root(root, IIO_DRIVER_DIR)):
        for folder in sorted(dev.glob("iio:device*")):
            devices.append(_iio_device(dev, folder))
    for dev in _device_dirs(under_root(root, HWMON_DRIVER_DIR)):
        for folder in sorted((dev / "hwmon").glob("hwmon*")):
            devices.append(_hwmon_device(dev, folder))
    return devices


def present(root: PathLike = "/") -> bool:
    """Whether any INA3221 rail can be read under ``root``."""
    return any(device.rails for device in discover(root))


def _unique_rails(devices: Sequence[Ina3221Device]) -> list[Rail]:
    rails = [rail for device in devices for rail in device.rails]
    counts: dict[str, int] = {}
    for rail in rails:
        counts[rail.label] = counts.get(rail.label, 0) + 1
    return [
        Rail(f"{r.label}@{r.device}", r.label, r.layout, r.device, r.directory, r.index) if counts[r.label] > 1 else r
        for r in rails
    ]


class Ina3221Sensor(Sensor):
    """The rails of a Jetson's INA3221 monitors; provenance MEASURED (shunt monitors on the supplies)."""

    def __init__(
        self,
        root: PathLike = "/",
        *,
        rails: Sequence[str] | None = None,
        name: str = "jetson-ina3221",
        update_interval_s: float | None = None,
        emulated: bool = False,
        clock: Clock = time.monotonic,
    ) -> None:
        self.clock = clock
        devices = discover(root)
        available = _unique_rails(devices)
        if not available:
            raise SensorError(
                f"no INA3221 rails under {under_root(root, IIO_DRIVER_DIR)} or {under_root(root, HWMON_DRIVER_DIR)}"
            )
        if rails is not None:
            by_name = {r.name: r for r in available}
            missing = [r for r in rails if r not in by_name]
            if missing:
                raise SensorConfigError(f"unknown INA3221 rails {missing}; found {sorted(by_name)}")
            available = [by_name[r] for r in rails]
        self.rails: tuple[Rail, ...] = tuple(available)
        used = {(r.device, r.directory) for r in self.rails}
        chips = [d for d in devices if (d.device, d.directory) in used]
        if update_interval_s is None:
            interval = max(d.update_interval_s for d in chips)
            source = "; ".join(sorted({f"{d.device}: {d.update_interval_source}" for d in chips}))
        else:
            if update_interval_s <= 0:
                raise SensorConfigError(f"update_interval_s must be > 0, got {update_interval_s}")
            interval, source = update_interval_s, "given"
        self._freshness = FreshnessTracker(interval)
        raw = self._read_raw()
        channels: list[str] = []
        precision: dict[str, float] = {}
        for rail, (_power_uw, bus_mv, current_ma) in zip(self.rails, raw):
            channels += [f"{rail.name}.power_w", f"{rail.name}.bus_v", f"{rail.name}.current_a"]
            if rail.layout == LAYOUT_IIO:
                precision[f"{rail.name}.power_w"] = MILLI
            else:  # quantisation of V * I: 1 mA at the bus voltage plus 1 mV at the current, at open
                precision[f"{rail.name}.power_w"] = max(abs(bus_mv) + abs(current_ma), 1) * MILLI * MILLI
            precision[f"{rail.name}.bus_v"] = MILLI
            precision[f"{rail.name}.current_a"] = MILLI
        self._info = SensorInfo(
            kind=KIND,
            name=name,
            channels=tuple(channels),
            update_interval_s=interval,
            precision=precision,
            provenance=EMULATED if emulated else MEASURED,
            details={
                "root": str(root),
                "layouts": sorted({r.layout for r in self.rails}),
                "devices": sorted({r.device for r in self.rails}),
                "rail_dirs": {r.name: str(r.directory) for r in self.rails},
                "update_interval_source": source,
            },
        )

    @property
    def info(self) -> SensorInfo:
        """Rails as channels, the driver's update interval, 1 mV / 1 mA / 1 mW resolution."""
        return self._info

    def _read_raw(self) -> list[tuple[int, int, int]]:
        out = []
        for rail in self.rails:
            bus_mv = read_int(rail.voltage_file)
            current_ma = read_int(rail.current_file)
            power_file = rail.power_file
            # power in uW, an exact integer in both layouts: mW * 1000, or mV * mA
            power_uw = read_int(power_file) * 1000 if power_file is not None else bus_mv * current_ma
            out.append((power_uw, bus_mv, current_ma))
        return out

    def read(self) -> Sample:
        """One reading of every rail (mW, mV, mA converted to W, V, A)."""
        t = self.clock()
        raw = self._read_raw()
        values: dict[str, float] = {}
        for rail, (power_uw, bus_mv, current_ma) in zip(self.rails, raw):
            values[f"{rail.name}.power_w"] = power_uw / 1e6
            values[f"{rail.name}.bus_v"] = bus_mv / 1e3
            values[f"{rail.name}.current_a"] = current_ma / 1e3
        return Sample(t, values, fresh=self._freshness.fresh(t, raw))
