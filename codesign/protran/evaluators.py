"""Evaluators: architecture in, measurement out (the loop never knows where numbers come from).

``Evaluator`` is the protocol the active-learning loop calls. This module implements
the published-pool evaluator: the candidate pool is one device's published
architectures, and evaluating one looks its measurement up. Live evaluators (the bench
host measuring on a board, a simulator) plug in through a **device-kind registry**:
the room that owns them calls :func:`register_device_kind` with a prefix and a factory,
and ``--device <prefix>:<name>`` then builds one. codesign never imports them
(DESIGN.md: evaluators are passed in); the bench host registers ``rig:`` when its CLI
runs (``firmware_host.cli.main``).

Device specifications: ``published:<device>`` (e.g. ``published:cpu_rpi_b1_r1``) always;
``<prefix>:<name>`` for a registered kind (``rig:virtual-rpi4``). ``rig:<board>`` with
nothing registered is refused with :class:`RigUnavailableError`.

**Candidate pools of live devices.** The loop is pool-based. A published device's pool
is its published architectures; a live device has none, so its pool is sampled from the
design space (:func:`sample_candidate_pool`, seeded, recorded in the campaign file):
``sampler`` points (Sobol' by default, stratified narrow/wide as in
:mod:`codesign.sampling`) drawn in rounds (512 first, then at least twice as many, enough
for the share that fitted so far, up to ``POOL_DRAW_LIMIT``) until at least ``size`` of
them cost at most ``max_gflop`` GFLOP per sequence at the
device's sequence length and batch (the workload count of
:mod:`codesign.protran.features`); ``size`` of those are then chosen by a seeded
permutation and kept in draw order. The cap keeps every candidate small enough to export
and profile in seconds on a small host (2 GFLOP/seq at 128 tokens: 2- and 4-layer
models, 5 to 31 M parameters, ~3% of the space's samples); ``max_gflop=None`` samples the
whole space.
"""

from __future__ import annotations

import hashlib
import json
import re
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterator, Mapping, Protocol, Sequence, runtime_checkable

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
    """A live-rig device was named, but no bench host registered the ``rig:`` device kind."""


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


DeviceFactory = Callable[[str, Mapping[str, Any]], "Evaluator"]  # (name after the prefix, options) -> evaluator
_PREFIX_PATTERN = re.compile(r"^[a-z][a-z0-9_-]*$")


@dataclass(frozen=True)
class DeviceKind:
    """A registered live device kind: ``--device <prefix>:<name>`` builds ``factory(name, options)``.

    ``options`` are the command line's generic settings (``seed``, ``rig``, ``runs``,
    ``repeats``, ``on_phase``: whatever the kind documents); a factory ignores keys it
    does not know and raises :class:`EvaluatorError` for bad values.
    """

    prefix: str
    factory: DeviceFactory
    description: str = ""


_DEVICE_KINDS: dict[str, DeviceKind] = {}


def register_device_kind(prefix: str, factory: DeviceFactory, description: str = "") -> DeviceKind:
    """Register (or replace) the factory of ``<prefix>:<name>`` devices; return the registration."""
    if not isinstance(prefix, str) or not _PREFIX_PATTERN.match(prefix) or prefix == PUBLISHED_PREFIX[:-1]:
        raise EvaluatorError(f"device kind prefix {prefix!r}: expected lower-case letters, digits, '-' or '_', not 'published'")
    if not callable(factory):
        raise EvaluatorError(f"device kind {prefix!r}: the factory is not callable")
    kind = DeviceKind(prefix, factory, description)
    _DEVICE_KINDS[prefix] = kind
    return kind


def unregister_device_kind(prefix: str) -> None:
    """Remove a registered device kind (nothing happens if it was not registered)."""
    _DEVICE_KINDS.pop(prefix, None)


def registered_device_kinds() -> dict[str, DeviceKind]:
    """The registered device kinds by prefix (a copy)."""
    return dict(_DEVICE_KINDS)


@contextmanager
def device_kind(prefix: str, factory: DeviceFactory, description: str = "") -> Iterator[DeviceKind]:
    """Register a device kind for the duration of a ``with`` block, then restore what was there."""
    previous = _DEVICE_KINDS.get(prefix)
    kind = register_device_kind(prefix, factory, description)
    try:
        yield kind
    finally:
        if previous is None:
            _DEVICE_KINDS.pop(prefix, None)
        else:
            _DEVICE_KINDS[prefix] = previous


def _known_forms() -> str:
    return ", ".join(["published:<device>", *(f"{prefix}:<name>" for prefix in sorted(_DEVICE_KINDS))])


def parse_device_spec(text: str) -> DeviceSpec:
    """Parse ``published:<device>`` or ``<registered prefix>:<name>``; refuse anything else (one-line reasons)."""
    text = text.strip()
    if text.startswith(PUBLISHED_PREFIX) and text[len(PUBLISHED_PREFIX):]:
        return DeviceSpec("published", text[len(PUBLISHED_PREFIX):])
    prefix, colon, name = text.partition(":")
    if colon and prefix in _DEVICE_KINDS:
        if not name.strip():
            raise EvaluatorError(f"device {text!r}: name the {prefix} device after the colon ({prefix}:<name>)")
        return DeviceSpec(prefix, name.strip())
    if not _DEVICE_KINDS or (colon and prefix == RIG_PREFIX[:-1]):
        raise RigUnavailableError(
            f"device {text!r}: live rig campaigns need the bench host (not available yet); nothing registered "
            "the rig: device kind (the edgetran command does); use published:<device> for the published measurements"
        )
    raise EvaluatorError(f"device {text!r}: expected one of {_known_forms()}")


def is_live(spec: DeviceSpec) -> bool:
    """Whether a device is measured on demand (a registered kind), not looked up in published data."""
    return spec.kind != "published"


def make_evaluator(spec: str | DeviceSpec, options: Mapping[str, Any] | None = None) -> "Evaluator":
    """The evaluator of a device specification: the published pool, or a registered kind's factory."""
    parsed = parse_device_spec(spec) if isinstance(spec, str) else spec
    if parsed.kind == "published":
        return PublishedPoolEvaluator(parsed.name)
    kind = _DEVICE_KINDS.get(parsed.kind)
    if kind is None:
        raise RigUnavailableError(f"device {parsed.text!r}: the {parsed.kind}: device kind is no longer registered")
    evaluator = kind.factory(parsed.name, dict(options or {}))
    if not isinstance(evaluator, Evaluator):
        raise EvaluatorError(f"device {parsed.text!r}: the factory returned {type(evaluator).__name__}, not an Evaluator")
    return evaluator


# -- candidate pools of live devices ----------------------------------------------------------

DEFAULT_POOL_SIZE = 64  # candidates of a live campaign (only the queried ones are measured)
DEFAULT_POOL_MAX_GFLOP = 2.0  # GFLOP per sequence at the device's sequence length and batch
DEFAULT_POOL_SAMPLER = "sobol"
POOL_FIRST_DRAW = 512  # design-space samples of the first round; each further round doubles
POOL_DRAW_LIMIT = 16384  # the most samples drawn before giving up on the cap
MAX_POOL_SIZE = 4096  # candidates of one pool at most (the loop featurizes and predicts all of them every fit)


@dataclass(frozen=True)
class PoolSpec:
    """How a live campaign's candidate pool is sampled (stored in the campaign file)."""

    size: int = DEFAULT_POOL_SIZE
    max_gflop: float | None = DEFAULT_POOL_MAX_GFLOP
    sampler: str = DEFAULT_POOL_SAMPLER
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or not 2 <= self.size <= MAX_POOL_SIZE:
            raise EvaluatorError(f"pool size must be an integer from 2 to {MAX_POOL_SIZE}, got {self.size!r}")
        if self.max_gflop is not None and not (isinstance(self.max_gflop, (int, float)) and self.max_gflop > 0):
            raise EvaluatorError(f"pool GFLOP cap must be a positive number, got {self.max_gflop!r}")

    def to_dict(self) -> dict:
        """Plain JSON values."""
        return asdict(self)


def sample_candidate_pool(spec: PoolSpec, context: WorkloadContext, space: Any = None) -> list[Architecture]:
    """``spec.size`` distinct sampled architectures within the GFLOP cap at ``context`` (seeded, reproducible)."""
    import numpy as np

    from codesign.protran.features import total_workload
    from codesign.sampling import METHODS, sample_architectures

    if spec.sampler not in METHODS:
        raise EvaluatorError(f"unknown pool sampler {spec.sampler!r} (choose from {', '.join(METHODS)})")
    draw = min(max(POOL_FIRST_DRAW, 2 * spec.size), POOL_DRAW_LIMIT)
    while True:
        drawn = sample_architectures(spec.sampler, draw, spec.seed, space)
        if spec.max_gflop is None:
            fitting = list(range(len(drawn)))
        else:
            fitting = [i for i, arch in enumerate(drawn) if total_workload(arch, context)["total_gflop"] <= spec.max_gflop]
        if len(fitting) >= spec.size:
            break
        if draw >= POOL_DRAW_LIMIT:
            raise EvaluatorError(
                f"only {len(fitting)} of {draw} sampled architectures cost at most {spec.max_gflop:g} GFLOP/seq at "
                f"{context.sequence_length} tokens, batch {context.batch_size}; ask for a smaller pool or a higher cap"
            )
        # next round: at least double, enough for the share that fitted so far with a 50% margin
        wanted = POOL_DRAW_LIMIT if not fitting else int(np.ceil(1.5 * spec.size * draw / len(fitting)))
        draw = min(max(2 * draw, wanted), POOL_DRAW_LIMIT)
    rng = np.random.default_rng(np.random.SeedSequence([int(spec.seed) & 0xFFFFFFFF, 5]))
    chosen = sorted(rng.choice(len(fitting), size=spec.size, replace=False).tolist())
    return [drawn[fitting[i]] for i in chosen]


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

    @property
    def authors_maxima(self) -> tuple[float, float, float]:
        """The divisors of the authors' code (their ``max_values.json``: 2x the first batch's maxima), latency/energy/peak."""
        return (self.dataset.max_latency_s, self.dataset.max_energy_j, self.dataset.max_peak_power_w)

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
    if parsed.kind != "published":
        raise EvaluatorError(f"device {parsed.text!r} is not a published device")
    return PublishedPoolEvaluator(parsed.name)


def pool_measurements(evaluator: PublishedPoolEvaluator, archs: Sequence[Architecture]) -> list[PerformanceMeasurement]:
    """Published measurements of several architectures, without counting evaluations."""
    return [evaluator.truth(arch) for arch in archs]
