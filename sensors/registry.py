"""Known sensor kinds: how to build each from parameters, and which are present here.

``emulated-ina219`` is the default everywhere (energymon's dummy backend idea): the real
INA219 driver on an emulated register map whose waveform follows this machine's CPU
activity, a square wave or a constant. The same parameters with kind ``ina219`` open a
real bus (``smbus2.SMBus(bus)``) on a Pi.

**One factory.** :func:`open_sensor` is what every caller uses (``edgetran sensor ...``,
the daemon's config, the bench host's ``rig.toml`` sensors): each kind's constructor
here declares, by its keyword parameters, what the kind accepts
(:meth:`SensorKind.parameters`). A rate (``rate_hz``) goes only to kinds that convert
at a rate chosen by us (the INA219 family); the other kinds update at their own pace
(RAPL ~1 ms, NVML 10-100 ms, powermetrics its ``interval_ms``, sysfs rails the
driver's), and the rate is then only how often the daemon polls them. Parameters are
plain values (strings, numbers, lists) so a ``[[sensors]]`` table can carry them:
NVML and powermetrics take ``replay`` (a recorded NVML JSON / plist stream) in place of
the library or the tool, which is how they open without the hardware.
"""

from __future__ import annotations

import glob
import importlib
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from sensors.base import CONTEXT, EMULATED, MEASURED, VENDOR, Sensor, SensorConfigError


@dataclass(frozen=True)
class SensorKind:
    """A registry entry."""

    kind: str
    description: str
    provenance: str
    present: Callable[[], bool]
    create: Callable[..., Sensor]

    def parameters(self) -> tuple[str, ...]:
        """The keyword parameters this kind accepts (its constructor's signature is the declaration)."""
        return tuple(p.name for p in inspect.signature(self.create).parameters.values() if p.kind is not p.VAR_KEYWORD)

    def takes_rate(self) -> bool:
        """Whether the kind converts at a rate we choose (``rate_hz``)."""
        return "rate_hz" in self.parameters()


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
        raise SensorConfigError(f"/dev/i2c-{bus} does not exist: enable I2C (raspi-config) or pick another bus (--param bus=N; rig.toml: bus = N)") from None
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


def _replay(path: str, speed: float = 1.0, loop: bool = False, stream: str | None = None, name: str | None = None) -> Sensor:
    from sensors.replay import ReplaySensor

    return ReplaySensor(str(path), stream=stream, speed=speed, loop=loop, name=name)


def _ina3221(root: str = "/", rails: Sequence[str] | None = None, update_interval_s: float | None = None,
             emulated: bool = False, name: str = "jetson-ina3221") -> Sensor:
    from sensors.ina3221 import Ina3221Sensor

    return Ina3221Sensor(root, rails=rails, name=name, update_interval_s=update_interval_s, emulated=emulated)


def _rapl(root: str = "/", zones: Sequence[str] | None = None, emulated: bool = False, name: str = "rapl") -> Sensor:
    from sensors.rapl import RaplSensor

    return RaplSensor(root, zones=zones, name=name, emulated=emulated)


def _nvml(indices: Sequence[int] | None = None, replay: str | None = None, update_interval_s: float | None = None,
          detect_interval: bool = False, name: str = "nvml") -> Sensor:
    """NVML through pynvml, or (``replay``) a recorded readings file through the same calls."""
    from sensors.nvml import NvmlSensor

    module = None
    if replay is not None:
        from sensors.nvml_replay import ReplayNvml

        try:
            module = ReplayNvml.from_file(replay)
        except (OSError, ValueError) as error:
            raise SensorConfigError(f"nvml replay {replay}: {error}") from None
    return NvmlSensor(indices, module=module, name=name, update_interval_s=update_interval_s, detect_interval=detect_interval)


def _powermetrics(interval_ms: int = 100, replay: str | None = None, command: Sequence[str] | None = None,
                  name: str = "powermetrics") -> Sensor:
    """powermetrics (``sudo -n``), a given command, or (``replay``) a recorded plist stream played by a child process."""
    from sensors.powermetrics import PowermetricsSensor, replay_command

    if replay is not None and command is not None:
        raise SensorConfigError("powermetrics: give replay or command, not both")
    if replay is not None:
        command = replay_command(replay)
    return PowermetricsSensor(interval_ms=int(interval_ms), command=command, name=name, emulated=replay is not None)


def _psutil(per_core: bool = False, pid: int | None = None, name: str = "psutil") -> Sensor:
    from sensors.psutil_source import PsutilSensor

    return PsutilSensor(per_core=per_core, pid=pid, name=name)


def _has_i2c() -> bool:
    return bool(glob.glob("/dev/i2c-*"))


def _present(module: str) -> Callable[[], bool]:
    """present() of a vendor-source module, imported only when asked."""

    def present() -> bool:
        return bool(importlib.import_module(f"sensors.{module}").present())

    return present


KINDS: dict[str, SensorKind] = {
    k.kind: k
    for k in (
        SensorKind("emulated-ina219", "INA219 driver on an emulated register map (default; no hardware)", EMULATED, lambda: True, _emulated_ina219),
        SensorKind("ina219", "INA219 on a Linux I2C bus (Raspberry Pi), fast smbus2 path", MEASURED, _has_i2c, _ina219),
        SensorKind("ina219-adafruit", "INA219 through adafruit-circuitpython-ina219", MEASURED, _has_i2c, _ina219_adafruit),
        SensorKind("replay", "a recorded trace played back in real time", EMULATED, lambda: True, _replay),
        SensorKind("ina3221", "Jetson INA3221 rails from hwmon/IIO sysfs (both driver layouts)", MEASURED, _present("ina3221"), _ina3221),
        SensorKind("rapl", "Intel RAPL powercap energy counters", VENDOR, _present("rapl"), _rapl),
        SensorKind("nvml", "NVIDIA GPUs through NVML: energy counter where supported, power", VENDOR, _present("nvml"), _nvml),
        SensorKind("powermetrics", "Apple silicon CPU/GPU/ANE power from powermetrics", VENDOR, _present("powermetrics"), _powermetrics),
        SensorKind("psutil", "CPU utilisation and frequency (context, not power)", CONTEXT, _present("psutil_source"), _psutil),
    )
}


def register(kind: SensorKind) -> None:
    """Add a kind (vendor sources register themselves here)."""
    KINDS[kind.kind] = kind


def kind_entry(kind: str) -> SensorKind:
    """The registry entry of a kind; SensorConfigError lists the known kinds."""
    entry = KINDS.get(kind)
    if entry is None:
        raise SensorConfigError(f"unknown sensor kind {kind!r} (known: {', '.join(KINDS)})")
    return entry


def check_params(kind: str, params: Mapping[str, Any]) -> None:
    """SensorConfigError naming a parameter the kind does not accept (and those it does)."""
    accepted = kind_entry(kind).parameters()
    unknown = [key for key in params if key not in accepted]
    if unknown:
        raise SensorConfigError(f"sensor {kind!r} takes no parameter {', '.join(map(repr, unknown))} (it accepts: {', '.join(accepted)})")


def create_sensor(kind: str, **params: Any) -> Sensor:
    """Build a sensor of a known kind from exactly its parameters; SensorConfigError names unknown kinds and parameters."""
    entry = kind_entry(kind)
    check_params(kind, params)
    try:
        return entry.create(**params)
    except TypeError as error:
        raise SensorConfigError(f"sensor {kind!r}: {error}") from None


def open_sensor(kind: str, params: Mapping[str, Any] | None = None, *, name: str | None = None, rate_hz: float | None = None) -> Sensor:
    """The one sensor factory: ``params`` as given, plus the instance name and the rate where the kind takes them.

    ``rate_hz`` is passed only to kinds that convert at a chosen rate (:meth:`SensorKind.takes_rate`);
    for the others it is the daemon's polling rate and nothing here. ``name`` is the
    instance's name (a rig sensor's ``name``); giving it in ``params`` as well is refused.
    """
    params = dict(params or {})
    entry = kind_entry(kind)
    accepted = entry.parameters()
    if name is not None:
        if "name" in params:
            raise SensorConfigError(f"sensor {name!r}: give its name once (not also as a parameter)")
        if "name" in accepted:
            params["name"] = name
    if rate_hz is not None and entry.takes_rate() and "rate_hz" not in params:
        params["rate_hz"] = rate_hz
    return create_sensor(kind, **params)


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

