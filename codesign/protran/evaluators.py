"""Evaluators: architecture in, measurement out (the loop never knows where numbers come from).

``Evaluator`` is the protocol the active-learning loop calls. This module implements
the published-pool evaluator: the candidate pool is one device's published
architectures, and evaluating one looks its measurement up. A live-rig evaluator (the
bench host measuring on a board) and a simulator evaluator plug in the same way; the
loop never imports them (DESIGN.md: evaluators are passed in).

Device specifications on the command line: ``published:<device>`` (e.g.
``published:cpu_rpi_b1_r1``). Anything else, ``rig:<board>`` included, is refused with
:class:`RigUnavailableError` until the bench host exists.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable

from codesign.architecture import Architecture
from codesign.protran.features import WorkloadContext
from codesign.protran.measures import PerformanceMeasurement
from codesign.published import DeviceDataset, load_device

PUBLISHED_PREFIX = "published:"
RIG_PREFIX = "rig:"


class EvaluatorError(ValueError):
    """An architecture the evaluator cannot measure, or a bad device specification."""


class NotInPoolError(EvaluatorError):
    """The published-pool evaluator was asked for an architecture with no measurement."""


class RigUnavailableError(EvaluatorError):
    """A live-rig device was named, but the bench host that measures on boards does not exist yet."""


@runtime_checkable
class Evaluator(Protocol):
    """Measures architectures on one device."""

    device: str
    context: WorkloadContext

    def __call__(self, arch: Architecture) -> PerformanceMeasurement:
        """Measure one architecture (latency s/seq, energy J/seq, peak power W)."""
        ...


def architecture_key(arch: Architecture) -> str:
    """A stable identifier of an architecture: sha256 of its canonical model dictionary (32 hex)."""
    text = json.dumps(arch.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class DeviceSpec:
    """A parsed ``--device`` value."""

    kind: str
    name: str

    @property
    def text(self) -> str:
        """The specification as written: ``published:cpu_rpi_b1_r1``."""
        return f"{self.kind}:{self.name}"


def parse_device_spec(text: str) -> DeviceSpec:
    """Parse ``published:<device>``; refuse live rigs and anything else (one-line reasons)."""
    text = text.strip()
    if text.startswith(PUBLISHED_PREFIX) and text[len(PUBLISHED_PREFIX):]:
        return DeviceSpec("published", text[len(PUBLISHED_PREFIX):])
    raise RigUnavailableError(
        f"device {text!r}: live rig campaigns need the bench host (not available yet); "
        "use published:<device> for the published measurements"
    )


class PublishedPoolEvaluator:
    """Looks measurements up in one device's published dataset; its architectures are the candidate pool.

    ``calls`` counts evaluations (a resumed campaign must not repeat any); ``truth`` reads
    a measurement without counting it, for reporting error on never-queried architectures
    only; the loop never decides anything from it.
    """

    source = "published"

    def __init__(self, device: str, dataset: DeviceDataset | None = None, sequence_length: int | None = None) -> None:
        self.dataset = dataset or load_device(device)
        self.device = self.dataset.device.name
        context_args = {"batch_size": self.dataset.device.batch_size}
        if sequence_length is not None:
            context_args["sequence_length"] = sequence_length
        self.context = WorkloadContext(**context_args)
        self._by_key: dict[str, PerformanceMeasurement] = {}
        self._pool: list[Architecture] = []
        for record in self.dataset.measurements:
            key = architecture_key(record.architecture)
            if key in self._by_key:
                continue
            self._pool.append(record.architecture)
            self._by_key[key] = PerformanceMeasurement(
                record.latency_s,
                record.energy_j,
                record.peak_power_w,
                device=self.device,
                source=self.source,
                extra={"published_key": record.key, "batch_size": self.dataset.device.batch_size},
            )
        self.calls = 0

    @property
    def pool(self) -> list[Architecture]:
        """The device's published architectures, in file order (the candidate pool)."""
        return list(self._pool)

    def __len__(self) -> int:
        return len(self._pool)

    def truth(self, arch: Architecture) -> PerformanceMeasurement:
        """The published measurement without counting an evaluation (for held-out reporting)."""
        key = architecture_key(arch)
        if key not in self._by_key:
            raise NotInPoolError(f"{self.device}: no published measurement of architecture {key}")
        return self._by_key[key]

    def __call__(self, arch: Architecture) -> PerformanceMeasurement:
        """The published measurement of ``arch`` (NotInPoolError if it was never measured)."""
        measurement = self.truth(arch)
        self.calls += 1
        return measurement


def published_evaluator(spec: str | DeviceSpec) -> PublishedPoolEvaluator:
    """The evaluator of a ``published:<device>`` specification."""
    parsed = parse_device_spec(spec) if isinstance(spec, str) else spec
    return PublishedPoolEvaluator(parsed.name)


def pool_measurements(evaluator: PublishedPoolEvaluator, archs: Sequence[Architecture]) -> list[PerformanceMeasurement]:
    """Published measurements of several architectures, without counting evaluations."""
    return [evaluator.truth(arch) for arch in archs]
