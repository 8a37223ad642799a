"""The three hardware measures ProTran models, and the record an evaluator returns.

Live units (the rig, the simulator): latency in seconds per sequence, energy in joules
per sequence, peak power in watts.

**The published numbers are not per-sequence values.** The authors' profiler timed whole
evaluation processes and sampled the INA219 every 4 s (issue #12's reading of their
profiler). The data agree: the Raspberry Pi's latencies fall on ~0.80 s steps (4.01,
4.81, 5.61, 6.41, ... s: 65 records, every gap between sorted values is < 0.005 s or
0.80 +- 0.005 s), BERT-Tiny-sized models take 4-5 s and the slowest 67 s; divided into the
counted work at 128 tokens (:mod:`codesign.protran.features`) the batch-1 numbers imply a
median of 0.49 GFLOP/s on the Pi, 0.74 on the Jetson Nano CPU, 0.37 on the NCS and 0.18
on the Jetson Nano GPU, 100x below these chips. So the published ``latency_s`` is read
as **seconds per evaluation run** (one whole inference process, fixed overheads
included), ``energy_j`` as **joules per evaluation run** and ``peak_power_w`` as the
highest 4-s power sample; :data:`PUBLISHED_UNIT` says so wherever they are shown. The
field names stay (one ``PerformanceMeasurement`` shape) and every JSON report carries a
``units`` block (:func:`units_note`). A constant factor leaves max-normalised errors
unchanged and a fixed overhead is an intercept the surrogates fit, so the loop is
unaffected; absolute per-sequence claims from these numbers are not safe.
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

# What the published numbers are (see the module docstring of codesign.published): the
# authors' profiler timed whole evaluation processes and sampled the INA219 every 4 s.
PUBLISHED_UNIT = {
    "latency_s": "s per evaluation run (wall time of the whole inference process, not per sequence)",
    "energy_j": "J per evaluation run (whole process, power sampled every 4 s)",
    "peak_power_w": "W (highest power sample of the run, 4 s sampling)",
}
PUBLISHED_LABELS = {
    "latency_s": "latency (s/run, published)",
    "energy_j": "energy (J/run, published)",
    "peak_power_w": "peak power (W, 4 s samples, published)",
}
PUBLISHED_NOTE = (
    "published numbers are the authors' whole-process measurements: s and J per evaluation run "
    "(INA219 sampled every 4 s), not per-sequence values; do not compare them with live s/seq"
)


def measure_labels(source: str) -> dict[str, str]:
    """Axis and column labels of the three measures for numbers of ``source`` (``published`` or live)."""
    return dict(PUBLISHED_LABELS if source == "published" else MEASURE_LABELS)


def units_note(source: str) -> dict:
    """The ``units`` block of a JSON report: what each measure's number is for ``source``."""
    if source == "published":
        return {**PUBLISHED_UNIT, "note": PUBLISHED_NOTE}
    return {"latency_s": "s per sequence", "energy_j": "J per sequence", "peak_power_w": "W"}


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
