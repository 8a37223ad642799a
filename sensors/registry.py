"""Known sensor kinds: how to build each from parameters, and which are present here.

``emulated-ina219`` is the default everywhere (energymon's dummy backend idea): the real
INA219 driver on an emulated register map whose waveform follows this machine's CPU
activity, a square wave or a constant. The same parameters with kind ``ina219`` open a
real bus (``smbus2.SMBus(bus)``) on a Pi.
"""

from __future__ import annotations

import glob
import importlib
from dataclasses import dataclass
from typing import Any, Callable

from sensors.base import CONTEXT, EMULATED, MEASURED, VENDOR, Sensor, SensorConfigError


@dataclass(frozen=True)
class SensorKind:
    """A registry entry."""

    kind: str
    description: str
    provenance: str
    present: Callable[[], bool]
    create: Callable[..., Sensor]


CPU_WAVEFORM_W = (2.7, 6.4)  # idle and all-cores supply power (W) of the 'cpu' waveform: a Raspberry Pi 4 (boards.toml rpi4)


def parse_waveform(spec: str, supply_v: float):
    """'cpu[:IDLE_W,LOAD_W]' | 'constant:W' | 'square:LOW_W,HIGH_W,PERIOD_S[,DUTY]' -> waveform for the emulator."""
    from sensors.ina219.activity import machine_activity_power
    from sensors.ina219.emulator import from_power, square_power

    name, _, args = spec.partition(":")
    try:
        numbers = [float(x) for x in args.split(",")] if args else []
    except ValueError:
        raise SensorConfigError(f"waveform {spec!r}: parameters must be numbers") from None
    if name == "cpu" and len(numbers) in (0, 2):
        idle_w, load_w = numbers or CPU_WAVEFORM_W
        try:
            return from_power(machine_activity_power(idle_w, load_w, supply_v), supply_v)
        except ValueError as error:
            raise SensorConfigError(f"waveform {spec!r}: {error}") from None
    if name == "constant" and len(numbers) == 1:
        return from_power(lambda t, w=numbers[0]: w, supply_v)
    if name == "square" and len(numbers) in (3, 4):
        return square_power(numbers[0], numbers[1], numbers[2], numbers[3] if len(numbers) == 4 else 0.5, supply_v)
    raise SensorConfigError(f"waveform {spec!r}: use 'cpu[:IDLE_W,LOAD_W]', 'constant:W' or 'square:LOW_W,HIGH_W,PERIOD_S[,DUTY]'")


def _emulated_ina219(
    rate_hz: float = 1000.0,
    waveform: str = "cpu",
    shunt_ohms: float = 0.1,
    max_expected_a: float = 3.2,
    supply_v: float = 5.1,
    error_rate: float = 0.0,
    seed: int = 0,
    address: int = 0x40,
    name: str | None = None,
    bus_clock_hz: float = 100_000.0,
) -> Sensor:
    from sensors.ina219.driver import INA219Sensor
    from sensors.ina219.emulator import EmulatedI2CBus, EmulatedINA219
    from sensors.ina219.i2c_timing import I2CTiming

    chip = EmulatedINA219(parse_waveform(waveform, supply_v), shunt_ohms=shunt_ohms)
    try:
        timing = I2CTiming(float(bus_clock_hz))  # the emulated bus takes real time per transaction (#11 item 3)
    except ValueError as error:
        raise SensorConfigError(str(error)) from None
    bus = EmulatedI2CBus({address: chip}, error_rate=error_rate, seed=seed, timing=timing)
    sensor = INA219Sensor(bus, address, shunt_ohms, max_expected_a, rate_hz, name=name or "emulated-ina219", provenance=EMULATED, kind="emulated-ina219")
    sensor.emulated_bus = bus  # type: ignore[attr-defined]
    return sensor


def _smbus(bus: int) -> Any:
    from smbus2 import SMBus

    try:
        return SMBus(bus)
    except FileNotFoundError:
        raise SensorConfigError(f"/dev/i2c-{bus} does not exist: enable I2C (raspi-config) or pick another --bus") from None
    except PermissionError:
        raise SensorConfigError(f"/dev/i2c-{bus}: permission denied; add the user to the i2c group (see udev/)") from None


def _ina219(bus: int = 1, address: int = 0x40, shunt_ohms: float = 0.1, max_expected_a: float = 3.2, rate_hz: float = 1000.0, name: str | None = None, bus_clock_hz: float | None = None) -> Sensor:
    from sensors.ina219.driver import INA219Sensor
    from sensors.ina219.i2c_timing import detect_bus_clock_hz

    clock_hz = bus_clock_hz if bus_clock_hz is not None else detect_bus_clock_hz(bus)  # None: 100 kHz, the Pi default
    return INA219Sensor(_smbus(bus), address, shunt_ohms, max_expected_a, rate_hz, name=name, bus_clock_hz=clock_hz)


def _ina219_adafruit(bus: int = 1, address: int = 0x40, shunt_ohms: float = 0.1, max_expected_a: float = 3.2, rate_hz: float = 1000.0, name: str | None = None, bus_clock_hz: float | None = None) -> Sensor:
    from sensors.ina219.adafruit_adapter import AdafruitINA219Sensor
    from sensors.ina219.i2c_timing import detect_bus_clock_hz

    clock_hz = bus_clock_hz if bus_clock_hz is not None else detect_bus_clock_hz(bus)
    return AdafruitINA219Sensor(_smbus(bus), address, shunt_ohms, max_expected_a, rate_hz, name=name, bus_clock_hz=clock_hz)


def _replay(path: str, speed: float = 1.0, loop: bool = False, stream: str | None = None) -> Sensor:
    from sensors.replay import ReplaySensor

    return ReplaySensor(path, stream=stream, speed=speed, loop=loop)


def _has_i2c() -> bool:
    return bool(glob.glob("/dev/i2c-*"))


def _vendor(module: str, cls: str) -> tuple[Callable[[], bool], Callable[..., Sensor]]:
    """present() and a constructor of a vendor-source module, imported only when used."""

    def present() -> bool:
        return bool(importlib.import_module(f"sensors.{module}").present())

    def create(**params: Any) -> Sensor:
        return getattr(importlib.import_module(f"sensors.{module}"), cls)(**params)

    return present, create


KINDS: dict[str, SensorKind] = {
    k.kind: k
    for k in (
        SensorKind("emulated-ina219", "INA219 driver on an emulated register map (default; no hardware)", EMULATED, lambda: True, _emulated_ina219),
        SensorKind("ina219", "INA219 on a Linux I2C bus (Raspberry Pi), fast smbus2 path", MEASURED, _has_i2c, _ina219),
        SensorKind("ina219-adafruit", "INA219 through adafruit-circuitpython-ina219", MEASURED, _has_i2c, _ina219_adafruit),
        SensorKind("replay", "a recorded trace played back in real time", EMULATED, lambda: True, _replay),
        SensorKind("ina3221", "Jetson INA3221 rails from hwmon/IIO sysfs (both driver layouts)", MEASURED, *_vendor("ina3221", "Ina3221Sensor")),
        SensorKind("rapl", "Intel RAPL powercap energy counters", VENDOR, *_vendor("rapl", "RaplSensor")),
        SensorKind("nvml", "NVIDIA GPUs through NVML: energy counter where supported, power", VENDOR, *_vendor("nvml", "NvmlSensor")),
        SensorKind("powermetrics", "Apple silicon CPU/GPU/ANE power from powermetrics", VENDOR, *_vendor("powermetrics", "PowermetricsSensor")),
        SensorKind("psutil", "CPU utilisation and frequency (context, not power)", CONTEXT, *_vendor("psutil_source", "PsutilSensor")),
    )
}


def register(kind: SensorKind) -> None:
    """Add a kind (vendor sources register themselves here)."""
    KINDS[kind.kind] = kind


def create_sensor(kind: str, **params: Any) -> Sensor:
    """Build a sensor of a known kind; SensorConfigError names unknown kinds and parameters."""
    entry = KINDS.get(kind)
    if entry is None:
        raise SensorConfigError(f"unknown sensor kind {kind!r} (known: {', '.join(KINDS)})")
    try:
        return entry.create(**params)
    except TypeError as error:
        raise SensorConfigError(f"sensor {kind!r}: {error}") from None


def list_kinds() -> list[dict]:
    """Every known kind with its provenance and whether it is present on this machine."""
    rows = []
    for entry in KINDS.values():
        try:
            present = bool(entry.present())
        except Exception:  # a probe must never break the listing  # noqa: BLE001
            present = False
        rows.append({"kind": entry.kind, "description": entry.description, "provenance": entry.provenance, "present": present})
    return rows

