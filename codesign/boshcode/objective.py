"""The co-design objective: Eq. 1 of the EdgeTran paper, fixed maxima, user weights, constraints.

Eq. 1 (Sec. III-C2), exactly as the paper writes it::

    P = alpha * Accuracy + beta * (1 - Energy) + gamma * (1 - Peak power) + epsilon * (1 - Latency)

with ``alpha + beta + gamma + epsilon = 1`` and each hardware measure normalised by its
maximum. Defaults (Sec. IV-C): alpha 0.5, beta 0.2, gamma 0.2, epsilon 0.1. The form
``alpha * A - beta * E / E_max - ...`` differs from it by the constant
``beta + gamma + epsilon`` only (same ranking); the paper's form is kept because it puts a
valid pair in ``[0, 1]``, which P_MIN (below) relies on.

Choices:

* **One fixed maximum per measure** for the whole space and every device, so that pairs
  on different devices compare (a per-device maximum would score the A100's slowest
  model like the Raspberry Pi's slowest). The maxima are data, not code:
  ``codesign/data/boshcode_maxima.toml``, the largest latency, energy and peak power over
  every published ProTran measurement of all seven platforms (626 records; each entry
  names the device and architecture that attains it). The authors' per-device
  ``max_values.json`` are not used: they do not bound their own datasets
  (:mod:`codesign.published`). :func:`published_maxima` recomputes the file's values; a
  test keeps them equal.
* **Units are per world.** The published numbers are seconds and joules per evaluation
  *run* of the authors' rig, not per sequence (:mod:`codesign.protran.measures`), so
  these maxima serve the published world only; an evaluator measuring live (s/seq,
  J/seq) or simulating must be given maxima in its own units (:class:`Maxima`), never
  these: under them a live latency would weigh nothing.
* **Accuracy** is the GLUE score as a fraction (the published scores are such fractions,
  e.g. 0.8124) and is not divided by a maximum: it already lies in ``[0, 1]``, and
  dividing by the best score found so far would change the trade-off against hardware
  every time a better model is scored. Values outside ``[0, 1]`` are refused.
* **Beyond the maxima.** A live board may measure more than any published record. Each
  normalised hardware measure is capped at ``RATIO_CAP = 2`` in the scalar objective
  only (the Pareto front keeps raw values), so a valid pair always scores ``P >= -(1 -
  alpha) >= -1``; :class:`Score` names the measures that exceeded their maximum.
* **P_MIN = -1** (TransCODE's value, Sec. IV-C; EdgeTran uses -100). An invalid pair
  (architecture outside the design space) or one that violates a hard constraint enters
  the dataset with P_MIN. -1 is at or below every valid pair's performance (equal only
  for alpha = 0 and every measure at least twice its maximum) and a full range below
  every pair within the maxima, which is all the optimiser needs to steer away. -100
  would put the surrogate's squared-error fit at the mercy of the invalid points: one of
  them weighs as much as ten thousand valid residuals of 1, and differences of 0.01
  between valid pairs are what the search has to resolve.
* **Weights** given by the user (``accuracy=0.5,energy=0.2,peak_power=0.2,latency=0.1``;
  the paper's symbols ``alpha``, ``beta``, ``gamma``, ``epsilon`` are accepted as keys)
  must be finite, non-negative and sum to 1 (the paper's condition); keys not given are 0.
* **Hard constraints** (any subset): max latency (s), max peak power (W, e.g. a 2 W
  supply), max layers, max parameters (counted by formula, :mod:`codesign.models.params`,
  the ``BertModel``-equivalent count), allowed targets (by the target space's key,
  e.g. ``published:cpu_rpi_b1_r1``). Limits are inclusive (a pair at the limit is allowed).
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping

from codesign.architecture import Architecture, ArchitectureError
from codesign.design_space import DesignSpace, default_space
from codesign.models.params import parameter_report
from codesign.published import list_devices, load_device

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

P_MIN = -1.0  # performance given to an invalid or constraint-violating pair (see module docstring)
RATIO_CAP = 2.0  # largest normalised hardware measure the scalar objective uses (x its maximum)
WEIGHT_SUM_TOLERANCE = 1e-6  # how far from 1 the weights may sum (text input rounds)
MAXIMA_FILE = "boshcode_maxima.toml"
WEIGHT_KEYS = ("accuracy", "energy", "peak_power", "latency")
WEIGHT_ALIASES = {"alpha": "accuracy", "beta": "energy", "gamma": "peak_power", "epsilon": "latency"}
WEIGHTS_EXAMPLE = "accuracy=0.5,energy=0.2,peak_power=0.2,latency=0.1"


class ObjectiveError(ValueError):
    """Bad weights, maxima, constraints or measures."""


@dataclass(frozen=True)
class Weights:
    """alpha (accuracy), beta (energy), gamma (peak power), epsilon (latency) of Eq. 1."""

    accuracy: float = 0.5
    energy: float = 0.2
    peak_power: float = 0.2
    latency: float = 0.1

    def __post_init__(self) -> None:
        for key in WEIGHT_KEYS:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ObjectiveError(f"weights: {key}={value!r} must be a finite number >= 0")
        total = sum(getattr(self, key) for key in WEIGHT_KEYS)
        if abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
            given = ", ".join(f"{k}={getattr(self, k):g}" for k in WEIGHT_KEYS)
            raise ObjectiveError(
                f"weights: must sum to 1 (alpha + beta + gamma + epsilon = 1, Eq. 1); got {total:g} ({given})"
            )

    def to_dict(self) -> dict[str, float]:
        """The four weights by key."""
        return {key: float(getattr(self, key)) for key in WEIGHT_KEYS}


DEFAULT_WEIGHTS = Weights()  # Sec. IV-C: 0.5, 0.2, 0.2, 0.1


def parse_weights(text: str) -> Weights:
    """Parse ``accuracy=0.5,energy=0.2,...`` (keys not given are 0; they must sum to 1)."""
    if not isinstance(text, str) or not text.strip():
        raise ObjectiveError(f"weights: empty; expected key=value pairs like {WEIGHTS_EXAMPLE}")
    values: dict[str, float] = {}
    for item in text.split(","):
        item = item.strip()
        key, equals, raw = item.partition("=")
        key = key.strip().lower().replace("-", "_")
        if not equals or not key:
            raise ObjectiveError(f"weights: {item!r} is not key=value (e.g. {WEIGHTS_EXAMPLE})")
        name = WEIGHT_ALIASES.get(key, key)
        if name not in WEIGHT_KEYS:
            raise ObjectiveError(
                f"weights: unknown key {key!r} (keys: {', '.join(WEIGHT_KEYS)}; or {', '.join(WEIGHT_ALIASES)})"
            )
        if name in values:
            raise ObjectiveError(f"weights: {name!r} given twice")
        try:
            value = float(raw)
        except ValueError:
            raise ObjectiveError(f"weights: {key}={raw.strip()!r} is not a number") from None
        if not math.isfinite(value) or value < 0:
            raise ObjectiveError(f"weights: {key}={raw.strip()} must be a finite number >= 0")
        values[name] = value
    return Weights(**{key: values.get(key, 0.0) for key in WEIGHT_KEYS})


@dataclass(frozen=True)
class Maxima:
    """The fixed normalisation maxima of Eq. 1, one per hardware measure, with their origin."""

    latency_s: float
    energy_j: float
    peak_power_w: float
    source: str = ""

    def __post_init__(self) -> None:
        for key in ("latency_s", "energy_j", "peak_power_w"):
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
                raise ObjectiveError(f"maxima: {key}={value!r} must be a positive finite number")


def _maxima_from_table(table: Mapping[str, Any], where: str) -> Maxima:
    try:
        return Maxima(
            latency_s=float(table["latency_s"]["value"]),
            energy_j=float(table["energy_j"]["value"]),
            peak_power_w=float(table["peak_power_w"]["value"]),
            source=str(table.get("source", "")),
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ObjectiveError(f"{where}: expected [latency_s], [energy_j], [peak_power_w] with a value ({error})") from None


def load_maxima(path: str | Path | None = None) -> Maxima:
    """The maxima of the data file (``codesign/data/boshcode_maxima.toml`` unless ``path``)."""
    if path is None:
        source = resources.files("codesign").joinpath("data", MAXIMA_FILE)
        with resources.as_file(source) as packaged:
            return load_maxima(packaged)
    try:
        with open(path, "rb") as handle:
            table = tomllib.load(handle)
    except FileNotFoundError:
        raise ObjectiveError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as error:
        raise ObjectiveError(f"{path}: not valid TOML ({error})") from None
    return _maxima_from_table(table, str(path))


def published_maxima(root: Path | None = None) -> dict[str, dict[str, Any]]:
    """Largest latency, energy and peak power over every published measurement, with where each occurs."""
    best: dict[str, dict[str, Any]] = {}
    count = 0
    for device in list_devices(root):
        for m in load_device(device.name, root).measurements:
            count += 1
            for key, value in (("latency_s", m.latency_s), ("energy_j", m.energy_j), ("peak_power_w", m.peak_power_w)):
                if key not in best or value > best[key]["value"]:
                    best[key] = {"value": value, "device": device.name, "architecture": m.key}
    for entry in best.values():
        entry["measurements"] = count
    return best


@dataclass(frozen=True)
class Measures:
    """What one evaluation of a pair returns: accuracy (GLUE fraction) and the hardware measures."""

    accuracy: float
    latency_s: float
    energy_j: float
    peak_power_w: float

    def __post_init__(self) -> None:
        if not isinstance(self.accuracy, (int, float)) or not 0.0 <= self.accuracy <= 1.0:
            raise ObjectiveError(f"measures: accuracy {self.accuracy!r} must be a GLUE score in [0, 1]")
        for key in ("latency_s", "energy_j", "peak_power_w"):
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ObjectiveError(f"measures: {key}={value!r} must be a finite number >= 0")


def parameter_count(arch: Architecture) -> int:
    """Parameters of the architecture (``BertModel``-equivalent, by formula, no torch)."""
    return int(parameter_report(arch)["parameters"])


def _positive(value: Any, name: str, integer: bool) -> None:
    if value is None:
        return
    kind = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value) or value <= 0:
        what = "a positive integer" if integer else "a positive number"
        raise ObjectiveError(f"constraints: {name}={value!r} must be {what}")


@dataclass(frozen=True)
class Constraints:
    """Hard limits of a co-design run (None: no limit); a pair that breaks one scores P_MIN."""

    max_latency_s: float | None = None
    max_peak_power_w: float | None = None
    max_layers: int | None = None
    max_parameters: int | None = None
    allowed_targets: frozenset[str] | None = None

    def __post_init__(self) -> None:
        _positive(self.max_latency_s, "max_latency_s", integer=False)
        _positive(self.max_peak_power_w, "max_peak_power_w", integer=False)
        _positive(self.max_layers, "max_layers", integer=True)
        _positive(self.max_parameters, "max_parameters", integer=True)
        if self.allowed_targets is not None:
            allowed = frozenset(self.allowed_targets)
            if not allowed:
                raise ObjectiveError("constraints: allowed_targets is empty (no target could be chosen)")
            object.__setattr__(self, "allowed_targets", allowed)

    def design_violations(
        self, arch: Architecture, target_key: str, space: DesignSpace | None = None
    ) -> list[str]:
        """Violations known before evaluating: outside the space, layers, parameters, target."""
        found = []
        try:
            (space or default_space()).check(arch)
        except ArchitectureError as error:
            found.append(f"architecture outside the design space: {error}")
        if self.max_layers is not None and arch.layers > self.max_layers:
            found.append(f"layers {arch.layers} > max {self.max_layers}")
        if self.max_parameters is not None:
            params = parameter_count(arch)
            if params > self.max_parameters:
                found.append(f"parameters {params:,} > max {self.max_parameters:,}")
        if self.allowed_targets is not None and target_key not in self.allowed_targets:
            found.append(f"target {target_key!r} is not allowed (allowed: {', '.join(sorted(self.allowed_targets))})")
        return found

    def measure_violations(self, measures: Measures) -> list[str]:
        """Violations of the measured limits: latency and peak power."""
        found = []
        if self.max_latency_s is not None and measures.latency_s > self.max_latency_s:
            found.append(f"latency {measures.latency_s:.6g} s > max {self.max_latency_s:g} s")
        if self.max_peak_power_w is not None and measures.peak_power_w > self.max_peak_power_w:
            found.append(f"peak power {measures.peak_power_w:.6g} W > max {self.max_peak_power_w:g} W")
        return found


@dataclass(frozen=True)
class Score:
    """The performance of one evaluated pair and why it is P_MIN when it is."""

    performance: float
    violations: tuple[str, ...] = ()
    normalised: Mapping[str, float] = field(default_factory=dict)
    beyond_maxima: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        """Whether the pair is valid and meets every constraint."""
        return not self.violations


@dataclass(frozen=True)
class Objective:
    """Eq. 1 with fixed maxima, the user's weights and hard constraints."""

    weights: Weights = DEFAULT_WEIGHTS
    maxima: Maxima = field(default_factory=load_maxima)
    constraints: Constraints = Constraints()

    def normalised(self, measures: Measures) -> dict[str, float]:
        """Each hardware measure divided by its fixed maximum (uncapped), and the accuracy."""
        return {
            "accuracy": float(measures.accuracy),
            "energy": measures.energy_j / self.maxima.energy_j,
            "peak_power": measures.peak_power_w / self.maxima.peak_power_w,
            "latency": measures.latency_s / self.maxima.latency_s,
        }

    def performance(self, measures: Measures) -> float:
        """Eq. 1 of the measures, constraints aside (hardware ratios capped at RATIO_CAP)."""
        n = self.normalised(measures)
        w = self.weights
        return (
            w.accuracy * n["accuracy"]
            + w.energy * (1.0 - min(n["energy"], RATIO_CAP))
            + w.peak_power * (1.0 - min(n["peak_power"], RATIO_CAP))
            + w.latency * (1.0 - min(n["latency"], RATIO_CAP))
        )

    def score(
        self, arch: Architecture, target_key: str, measures: Measures, space: DesignSpace | None = None
    ) -> Score:
        """Eq. 1 of a measured pair, or P_MIN with the reasons when it is invalid or breaks a constraint."""
        violations = self.constraints.design_violations(arch, target_key, space)
        violations += self.constraints.measure_violations(measures)
        normalised = self.normalised(measures)
        beyond = tuple(k for k in ("energy", "peak_power", "latency") if normalised[k] > 1.0)
        performance = P_MIN if violations else self.performance(measures)
        return Score(performance, tuple(violations), normalised, beyond)

    def scores(
        self, pairs: Iterable[tuple[Architecture, str, Measures]], space: DesignSpace | None = None
    ) -> list[Score]:
        """:meth:`score` of many (architecture, target key, measures) triples."""
        return [self.score(arch, key, measures, space) for arch, key, measures in pairs]
