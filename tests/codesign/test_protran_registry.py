"""The device-kind registry (live devices plug in without codesign importing them) and sampled candidate pools."""

from __future__ import annotations

import pytest

from codesign.protran import evaluators
from codesign.protran.evaluators import (
    DeviceSpec,
    EvaluatorError,
    PoolSpec,
    PublishedPoolEvaluator,
    RigUnavailableError,
    architecture_key,
    device_kind,
    make_evaluator,
    parse_device_spec,
    register_device_kind,
    registered_device_kinds,
    sample_candidate_pool,
    unregister_device_kind,
)
from codesign.protran.features import WorkloadContext, total_workload


def _lookup_factory(name: str, options: dict) -> PublishedPoolEvaluator:
    """A real evaluator behind a registered prefix: the published pool of ``name``."""
    return PublishedPoolEvaluator(name)


@pytest.fixture(autouse=True)
def clean_registry():
    before = registered_device_kinds()
    yield
    for prefix in set(registered_device_kinds()) - set(before):
        unregister_device_kind(prefix)


def test_rig_is_refused_while_nothing_registered_it():
    assert "rig" not in registered_device_kinds()
    for text in ("rig:virtual-rpi4", "rig:pi4", "pi4", "published:"):
        with pytest.raises(RigUnavailableError, match=r"live rig campaigns need the bench host \(not available yet\)"):
            parse_device_spec(text)
    with pytest.raises(RigUnavailableError):
        make_evaluator("rig:virtual-rpi4")
    assert parse_device_spec("published:cpu_rpi_b1_r1") == DeviceSpec("published", "cpu_rpi_b1_r1")


def test_a_registered_kind_builds_its_evaluator_and_rig_stays_refused():
    register_device_kind("lookup", _lookup_factory, "published data behind another prefix")
    spec = parse_device_spec(" lookup:npu_ncs_b1_r1 ")
    assert spec == DeviceSpec("lookup", "npu_ncs_b1_r1") and spec.text == "lookup:npu_ncs_b1_r1"
    evaluator = make_evaluator(spec)
    assert evaluator.device == "npu_ncs_b1_r1" and len(evaluator) == 17
    with pytest.raises(RigUnavailableError, match="nothing registered the rig: device kind"):
        parse_device_spec("rig:pi4")  # another kind being registered does not make rig: available
    with pytest.raises(EvaluatorError, match=r"expected one of published:<device>, lookup:<name>"):
        parse_device_spec("pi4")
    with pytest.raises(EvaluatorError, match="name the lookup device after the colon"):
        parse_device_spec("lookup:")
    unregister_device_kind("lookup")
    with pytest.raises(RigUnavailableError):
        parse_device_spec("lookup:npu_ncs_b1_r1")


def test_scoped_registration_restores_the_registry():
    with device_kind("rig", _lookup_factory) as kind:
        assert kind.prefix == "rig" and parse_device_spec("rig:npu_ncs_b1_r1").kind == "rig"
        assert make_evaluator("rig:npu_ncs_b1_r1").device == "npu_ncs_b1_r1"
    assert "rig" not in registered_device_kinds()
    with pytest.raises(RigUnavailableError):
        parse_device_spec("rig:npu_ncs_b1_r1")


@pytest.mark.parametrize("prefix", ["published", "Rig", "", "a b", "rig:"])
def test_bad_prefixes_are_refused(prefix):
    with pytest.raises(EvaluatorError, match="device kind prefix"):
        register_device_kind(prefix, _lookup_factory)


def test_a_factory_must_return_an_evaluator():
    register_device_kind("broken", lambda name, options: object())
    with pytest.raises(EvaluatorError, match="the factory returned object, not an Evaluator"):
        make_evaluator("broken:x")


def test_sampled_pool_is_seeded_capped_and_distinct():
    context = WorkloadContext(128, 1)
    spec = PoolSpec(size=12, max_gflop=2.0, seed=3)
    pool = sample_candidate_pool(spec, context)
    again = sample_candidate_pool(spec, context)
    assert [architecture_key(a) for a in pool] == [architecture_key(a) for a in again]
    assert len({architecture_key(a) for a in pool}) == 12
    assert all(total_workload(a, context)["total_gflop"] <= 2.0 for a in pool)
    other = sample_candidate_pool(PoolSpec(size=12, max_gflop=2.0, seed=4), context)
    assert {architecture_key(a) for a in other} != {architecture_key(a) for a in pool}
    uncapped = sample_candidate_pool(PoolSpec(size=12, max_gflop=None, seed=3), context)
    assert max(total_workload(a, context)["total_gflop"] for a in uncapped) > 2.0
    assert spec.to_dict() == {"size": 12, "max_gflop": 2.0, "sampler": "sobol", "seed": 3}


def test_pool_settings_are_checked(monkeypatch):
    for size in (1, 5000, True):
        with pytest.raises(EvaluatorError, match="pool size must be an integer from 2 to 4096"):
            PoolSpec(size=size)
    with pytest.raises(EvaluatorError, match="pool GFLOP cap must be a positive number"):
        PoolSpec(max_gflop=0)
    with pytest.raises(EvaluatorError, match="unknown pool sampler 'grid'"):
        sample_candidate_pool(PoolSpec(size=4, sampler="grid"), WorkloadContext())
    monkeypatch.setattr(evaluators, "POOL_DRAW_LIMIT", 1024)  # a smaller search, the same rule
    with pytest.raises(EvaluatorError, match=r"only 0 of 1024 sampled architectures cost at most 0.001 GFLOP/seq at 128 tokens"):
        sample_candidate_pool(PoolSpec(size=8, max_gflop=0.001), WorkloadContext(128, 1))
