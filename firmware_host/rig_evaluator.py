"""ProTran's live evaluator: measure architectures on a rig board (the ``rig:<board>`` device kind).

:class:`RigEvaluator` implements codesign's ``Evaluator`` protocol on top of
:func:`firmware_host.profile.run_profile`: each call writes the architecture's model
dictionary to a temporary file, and ``run_profile`` exports it (ONNX / IR / TFLite by the
board's runtime, cached by content in ``$EDGETRAN_ARTIFACTS``) and measures it with the
board's sensor. The result is a ``PerformanceMeasurement`` (latency s/seq, energy J/seq
above the idle baseline, peak power W: geometric means over the repeats) whose ``extra``
carries what the profile reported: ``emulated``, the trace path, the artifact, runs,
repeats, spreads, idle power, clock offset and its uncertainty, warnings, wall seconds.

A campaign measures many architectures, so its default profile is light
(:data:`CAMPAIGN_PROFILE`: 2 repeats of 10 timed runs after 2 warm-up runs, a 0.5 s idle
window; ``run_profile`` raises the runs when a block is too short for the clock and the
sensor). A failed measurement is retried ``retries`` times (default once: a bench
measurement can fail transiently) and every failure is kept in ``extra["failed_attempts"]``;
when the retries fail too, :class:`~codesign.protran.evaluators.EvaluatorError` stops the
campaign with one line, and its campaign file resumes it without re-measuring.

codesign never imports this module: :func:`register_rig_device_kind` registers the
``rig:`` kind with codesign's device registry, and ``firmware_host.cli.main`` does so
while the ``edgetran`` command runs.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Mapping

from codesign.architecture import Architecture
from codesign.protran.evaluators import EvaluatorError, architecture_key, device_kind, register_device_kind
from codesign.protran.features import WorkloadContext
from codesign.protran.measures import MeasurementError, PerformanceMeasurement
from firmware_host.profile import ProfileOptions, finite_or_none
from firmware_host.rig import Rig, RigError, load_rig

RIG_KIND = "rig"
CAMPAIGN_PROFILE = ProfileOptions(runs=10, warmup=2, idle_s=0.5, repeats=2)  # light: many architectures per campaign
DEFAULT_RETRIES = 1
RIG_KIND_DESCRIPTION = "a board of the bench rig (--rig RIG.toml; the virtual rig by default), measured live"


class RigEvaluator:
    """Measures architectures on one rig board (ProTran's ``Evaluator``): export, profile, summarise.

    ``calls`` counts measurements (a resumed campaign must not repeat any); ``last`` is the
    latest raw profile measurement (a dict, as ``edgetran profile --json`` prints it).
    """

    source = "rig"

    def __init__(
        self,
        board: str | None = None,
        rig: Rig | str | Path | None = None,
        options: ProfileOptions | None = None,
        retries: int = DEFAULT_RETRIES,
        on_phase: Callable[[str], None] | None = None,
        on_repeat: Callable[[int, dict], None] | None = None,
    ) -> None:
        self.rig = rig if isinstance(rig, Rig) else load_rig(rig)
        self.board = self.rig.board(board)
        self.rig.sensor_for(self.board.name)  # a board without a sensor fails here, not after an export
        self.options = options or CAMPAIGN_PROFILE
        if retries < 0:
            raise EvaluatorError(f"retries must not be negative, got {retries}")
        self.retries = retries
        self.on_phase, self.on_repeat = on_phase, on_repeat
        self.device = self.board.name
        self.context = WorkloadContext(self.options.seq_len or self.board.seq_len, self.options.batch or self.board.batch)
        self.calls = 0
        self.last: dict | None = None

    @property
    def emulated(self) -> bool:
        """Whether the board is the virtual rig's emulation."""
        return self.board.emulated

    def describe(self) -> dict:
        """Where and how this evaluator measures (plain JSON values)."""
        return {
            "board": self.board.name,
            "rig": self.rig.source,
            "emulated": self.emulated,
            "runtime": self.options.runtime or self.board.runtime,
            "batch_size": self.context.batch_size,
            "sequence_length": self.context.sequence_length,
            "profile": {"runs": self.options.runs, "warmup": self.options.warmup, "idle_s": self.options.idle_s, "repeats": self.options.repeats},
            "retries": self.retries,
        }

    def profile(self, arch: Architecture) -> dict:
        """The raw profile measurement of one architecture (one attempt, no retry)."""
        from firmware_host.profile import run_profile

        with tempfile.TemporaryDirectory(prefix="edgetran-rig-eval-") as folder:
            path = Path(folder) / f"{architecture_key(arch)}.json"
            path.write_text(json.dumps(arch.to_dict()))
            return run_profile(path, self.rig, self.board.name, self.options, on_repeat=self.on_repeat, on_phase=self.on_phase)

    def __call__(self, arch: Architecture) -> PerformanceMeasurement:
        """Export and measure ``arch`` on the board (EvaluatorError when every attempt fails)."""
        key = architecture_key(arch)
        failures: list[str] = []
        start = time.perf_counter()
        for _attempt in range(self.retries + 1):
            try:
                raw = self.profile(arch)
                measurement = self._measurement(raw, failures, time.perf_counter() - start)
            except (ValueError, RuntimeError, OSError, TimeoutError) as error:  # export, runner, sensor, window errors
                failures.append(f"{type(error).__name__}: {' '.join(str(error).split())}")
                continue
            self.calls += 1
            self.last = raw
            return measurement
        raise EvaluatorError(
            f"{self.board.name}: measuring architecture {key} failed {len(failures)} time(s); last: {failures[-1]}"
        )

    def _measurement(self, raw: dict, failures: list[str], seconds: float) -> PerformanceMeasurement:
        energy = raw["energy_j_per_seq"]
        if not (isinstance(energy, (int, float)) and math.isfinite(energy) and energy > 0):
            raise MeasurementError(
                f"energy above the idle baseline is {energy!r} J/seq (within the sensor's noise): raise --runs"
            )
        extra = {
            "emulated": bool(raw["emulated"]),
            "trace": raw.get("trace"),
            "artifact": raw.get("artifact"),
            "artifact_sha256": raw.get("artifact_sha256"),
            "board": raw.get("board"),
            "rig": raw.get("rig"),
            "runtime": raw.get("runtime"),
            "runtime_device": raw.get("device"),
            "batch_size": raw.get("batch"),
            "seq_len": raw.get("seq_len"),
            "runs": raw.get("runs"),
            "repeats": raw.get("repeats"),
            "warmup": raw.get("warmup"),
            "spread": raw.get("spread"),
            "idle_power_w": raw.get("idle_power_w"),
            "sensor": (raw.get("sensor") or {}).get("name"),
            "clock_offset_s": raw.get("clock_offset_s"),
            "clock_offset_uncertainty_s": raw.get("clock_offset_uncertainty_s"),
            "warnings": list(raw.get("warnings") or []),
            "measured_utc": raw.get("measured_utc"),
            "seconds": seconds,
            "failed_attempts": list(failures),
        }
        return PerformanceMeasurement(
            float(raw["latency_s_per_seq"]),
            float(energy),
            float(raw["peak_power_w"]),
            device=self.device,
            source=self.source,
            extra=finite_or_none(extra),
        )


def _positive_int(options: Mapping[str, Any], key: str, default: int) -> int:
    value = options.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise EvaluatorError(f"--{key}: expected a positive integer, got {value!r}")
    return value


def rig_device_factory(name: str, options: Mapping[str, Any]) -> RigEvaluator:
    """The evaluator of ``rig:<name>``; options: rig (path), runs, repeats, warmup, idle_s, seed, retries, on_phase."""
    profile = replace(
        CAMPAIGN_PROFILE,
        runs=_positive_int(options, "runs", CAMPAIGN_PROFILE.runs),
        repeats=_positive_int(options, "repeats", CAMPAIGN_PROFILE.repeats),
        warmup=int(options.get("warmup", CAMPAIGN_PROFILE.warmup)),
        idle_s=float(options.get("idle_s", CAMPAIGN_PROFILE.idle_s)),
        seed=int(options.get("seed", 0)),
    )
    try:
        return RigEvaluator(
            name,
            options.get("rig"),
            profile,
            retries=int(options.get("retries", DEFAULT_RETRIES)),
            on_phase=options.get("on_phase"),
            on_repeat=options.get("on_repeat"),
        )
    except RigError as error:
        raise EvaluatorError(str(error)) from None


def register_rig_device_kind() -> None:
    """Register ``rig:<board>`` with codesign's device registry (for the rest of the process)."""
    register_device_kind(RIG_KIND, rig_device_factory, RIG_KIND_DESCRIPTION)


def rig_device_kind():
    """A ``with`` block during which ``rig:<board>`` is registered (what the ``edgetran`` command uses)."""
    return device_kind(RIG_KIND, rig_device_factory, RIG_KIND_DESCRIPTION)
