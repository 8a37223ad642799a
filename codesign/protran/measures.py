"""The three hardware measures ProTran models, and the record an evaluator returns.

Units are the paper's and the published data's: latency in seconds per sequence,
energy in joules per sequence, peak power in watts (Sec. IV-B2: geometric means of
repeated runs).

The published batch-1 numbers are hard to read as single sequences: divided into the
counted work at 128 tokens (:mod:`codesign.protran.features`) they imply a median of
0.49 GFLOP/s on the Raspberry Pi, 0.74 on the Jetson Nano CPU, 0.37 on the NCS and 0.18
on the Jetson Nano GPU (the M1 and A100 at batch 32 and 128: 15, 630 and 1,100 GFLOP/s),
and the Pi's slowest model takes 67 s. They are probably totals over an evaluation set,
or include fixed overheads. A constant factor leaves max-normalised errors unchanged and
a fixed overhead is an intercept the surrogates fit, so the loop is unaffected; absolute
per-sequence claims from these devices' numbers are not safe.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import numpy as np

MEASURES = ("latency_s", "energy_j", "peak_power_w")
MEASURE_LABELS = {
    "latency_s": "latency (s/seq)",
    "energy_j": "energy (J/seq)",
    "peak_power_w": "peak power (W)",
}
MEASURE_SHORT = {"latency_s": "latency", "energy_j": "energy", "peak_power_w": "peak power"}


class MeasurementError(ValueError):
    """A measurement that is not three positive, finite numbers."""


@dataclass(frozen=True)
class PerformanceMeasurement:
    """Latency (s/seq), energy (J/seq) and peak power (W) of one architecture on one device.

    ``device`` names where it was measured; ``source`` says how (``published``,
    ``rig``, ``simulated``); ``extra`` carries what a richer evaluator adds (run count,
    spread, sensor, trace reference) as plain JSON values.
    """

    latency_s: float
    energy_j: float
    peak_power_w: float
    device: str = ""
    source: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in MEASURES:
            value = getattr(self, name)
            if not isinstance(value, (int, float, np.floating, np.integer)) or not np.isfinite(value) or value <= 0:
                raise MeasurementError(f"{name}: expected a positive finite number, got {value!r}")

    def values(self) -> np.ndarray:
        """The three measures in ``MEASURES`` order."""
        return np.array([self.latency_s, self.energy_j, self.peak_power_w], dtype=float)

    def to_dict(self) -> dict:
        """Plain JSON types."""
        data = asdict(self)
        data["extra"] = dict(self.extra)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PerformanceMeasurement":
        """Inverse of :meth:`to_dict`."""
        try:
            return cls(
                float(data["latency_s"]),
                float(data["energy_j"]),
                float(data["peak_power_w"]),
                str(data.get("device", "")),
                str(data.get("source", "")),
                dict(data.get("extra") or {}),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise MeasurementError(f"not a measurement record: {error}") from None
