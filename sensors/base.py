"""The interface every power source implements, and the sample it returns.

Following Zeus and energymon: how a rail is *read* is separated from how readings are
*integrated* (``sensors.energy``); each source states its own update interval and
precision, and whether its numbers are measured, vendor-estimated or emulated.

Channel names carry their unit as a suffix: ``power_w``, ``bus_v``, ``shunt_v``,
``current_a``, ``energy_j`` (a cumulative counter), ``util_pct``, ``freq_mhz``.
A source with several rails prefixes them: ``VDD_IN.power_w``, ``package-0.energy_j``.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, Mapping

Clock = Callable[[], float]

MEASURED = "measured"  # a physical sensor on the supply (INA219, INA3221)
VENDOR = "vendor-estimated"  # a vendor counter or model (NVML, RAPL, powermetrics)
EMULATED = "emulated"  # no hardware: an emulator or a replay of recorded data
CONTEXT = "context"  # not power: utilisation, frequency (psutil)
PROVENANCES = (MEASURED, VENDOR, EMULATED, CONTEXT)

UNIT_SUFFIXES = {"_w": "W", "_v": "V", "_a": "A", "_j": "J", "_pct": "%", "_mhz": "MHz", "_c": "degC", "_bytes": "B"}


class SensorError(OSError):
    """A sensor that could not be read (I2C error, missing file, tool failure)."""


class SensorConfigError(ValueError):
    """A sensor configuration that cannot work (e.g. a rate the ADC cannot deliver)."""


def channel_unit(channel: str) -> str:
    """The unit of a channel from its name's suffix (``power_w`` -> ``W``)."""
    for suffix, unit in UNIT_SUFFIXES.items():
        if channel.endswith(suffix):
            return unit
    return ""


@dataclass(frozen=True)
class SensorInfo:
    """What a source offers and how good its numbers are."""

    kind: str  # registry name, e.g. "ina219", "nvml"
    name: str  # this instance, e.g. "rpi4-supply"
    channels: tuple[str, ...]
    update_interval_s: float  # how often the source produces a *new* value (conversion rate)
    precision: Mapping[str, float] = field(default_factory=dict)  # channel -> resolution in its unit
    provenance: str = MEASURED
    counters: tuple[str, ...] = ()  # channels that are cumulative counters (energy_j)
    # power channels whose value is the mean over the interval *ending* at its time stamp
    # (powermetrics, a counter's difference over consecutive reads), not an instantaneous reading
    interval_averages: tuple[str, ...] = ()
    details: Mapping[str, object] = field(default_factory=dict)  # e.g. ADC settings, device names

    def to_dict(self) -> dict:
        """JSON-ready description (for trace headers and `sensor list`)."""
        return {
            "kind": self.kind,
            "name": self.name,
            "channels": list(self.channels),
            "update_interval_s": self.update_interval_s,
            "precision": dict(self.precision),
            "provenance": self.provenance,
            "counters": list(self.counters),
            "interval_averages": list(self.interval_averages),
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class Sample:
    """One reading: monotonic time in seconds and a value per channel."""

    t: float
    values: Mapping[str, float]
    fresh: bool = True  # False when the source had no new conversion since the last read


class Sensor(ABC):
    """A power (or context) source: describe yourself, read one sample, close."""

    clock: Clock = staticmethod(time.monotonic)

    @property
    @abstractmethod
    def info(self) -> SensorInfo:
        """Channels, update interval, precision and provenance."""

    @abstractmethod
    def read(self) -> Sample:
        """One timestamped sample; raises SensorError when the hardware fails."""

    def close(self) -> None:
        """Release the bus, file or library handle."""

    def __enter__(self) -> "Sensor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
