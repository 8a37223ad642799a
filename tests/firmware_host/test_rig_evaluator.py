"""RigEvaluator: ProTran's Evaluator measuring for real on the virtual rig, and the rig: device kind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codesign.architecture import Architecture
from codesign.protran.evaluators import (
    Evaluator,
    EvaluatorError,
    RigUnavailableError,
    make_evaluator,
    parse_device_spec,
    registered_device_kinds,
)
from codesign.protran.measures import PerformanceMeasurement
from firmware_host.profile import ProfileOptions
from firmware_host.rig import parse_rig
from firmware_host.rig_evaluator import CAMPAIGN_PROFILE, RigEvaluator, rig_device_kind
from sensors.trace.format import read_trace

REPO_ROOT = Path(__file__).resolve().parents[2]
BERT_TINY = Architecture.from_dict(json.loads((REPO_ROOT / "examples" / "bert-tiny.json").read_text()))


@pytest.fixture
def rig(tmp_path):
    return parse_rig(
        {
            "host": {"traces": str(tmp_path / "traces")},
            "boards": [{"name": "vpi", "host": "virtual", "model": "rpi4", "seq_len": 16}],
            "sensors": [{"name": "vpi-supply", "kind": "virtual-board", "measures": "vpi", "rate_hz": 1000, "min_coverage": 0.5}],  # CI VMs: hypervisor steal opens 5-10 ms sampling gaps; coverage rules are tested in test_profile_coverage
        },
        "test rig",
    )


def test_the_host_registers_rig_and_codesign_builds_a_rig_evaluator():
    with pytest.raises(RigUnavailableError):
        parse_device_spec("rig:virtual-rpi4")
    with rig_device_kind():
        spec = parse_device_spec("rig:virtual-rpi4")
        assert (spec.kind, spec.name) == ("rig", "virtual-rpi4")
        evaluator = make_evaluator(spec, {"seed": 3, "runs": 4, "repeats": 1})
        assert isinstance(evaluator, RigEvaluator) and isinstance(evaluator, Evaluator)
        assert evaluator.device == "virtual-rpi4" and evaluator.emulated
        assert (evaluator.context.sequence_length, evaluator.context.batch_size) == (128, 1)  # the board's
        assert (evaluator.options.runs, evaluator.options.repeats, evaluator.options.seed) == (4, 1, 3)
        assert evaluator.options.idle_s == CAMPAIGN_PROFILE.idle_s
        with pytest.raises(EvaluatorError, match="no board 'pi4' in the rig"):
            make_evaluator("rig:pi4")
        with pytest.raises(EvaluatorError, match="--runs: expected a positive integer, got 0"):
            make_evaluator("rig:virtual-rpi4", {"runs": 0})
    assert "rig" not in registered_device_kinds()


def test_measures_one_tiny_architecture_on_the_virtual_rig(rig, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGETRAN_ARTIFACTS", str(tmp_path / "artifacts"))
    phases = []
    evaluator = RigEvaluator("vpi", rig, ProfileOptions(runs=5, warmup=1, idle_s=0.3, repeats=1, seed=0), on_phase=phases.append)
    assert evaluator.context.sequence_length == 16
    measurement = evaluator(BERT_TINY)
    assert isinstance(measurement, PerformanceMeasurement)
    assert evaluator.calls == 1 and measurement.device == "vpi" and measurement.source == "rig"
    assert 0 < measurement.latency_s < 1.0 and measurement.energy_j > 0
    extra = measurement.extra
    assert extra["emulated"] is True and extra["seq_len"] == 16 and extra["batch_size"] == 1 and extra["repeats"] == 1
    assert extra["runs"] >= 5 and extra["failed_attempts"] == [] and extra["seconds"] > 0
    assert measurement.peak_power_w > extra["idle_power_w"] > 0
    assert read_trace(extra["trace"]).closed_cleanly
    assert json.loads(Path(extra["artifact"]).read_text())["architecture"] == BERT_TINY.to_dict()
    assert "preparing the artifact" in phases
    # what the loop stores must survive JSON and come back equal
    assert PerformanceMeasurement.from_dict(json.loads(json.dumps(measurement.to_dict()))) == measurement
    assert evaluator.describe()["profile"] == {"runs": 5, "warmup": 1, "idle_s": 0.3, "repeats": 1}
