"""Eq. 1, its fixed maxima, user weights, hard constraints and P_MIN."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.architecture import Architecture
from codesign.boshcode.objective import (
    DEFAULT_WEIGHTS,
    P_MIN,
    Constraints,
    Maxima,
    Measures,
    Objective,
    ObjectiveError,
    Weights,
    load_maxima,
    parameter_count,
    parse_weights,
    published_maxima,
)
from codesign.models.params import REFERENCE_PARAMETERS
from codesign.published import list_devices, load_device

TINY = Architecture.from_dict(REFERENCE_PARAMETERS["bert-tiny"][0])
BASE = Architecture.from_dict(REFERENCE_PARAMETERS["bert-base"][0])
MAXIMA = Maxima(latency_s=10.0, energy_j=20.0, peak_power_w=5.0)
RPI = "published:cpu_rpi_b1_r1"


def test_eq1_is_the_papers_convex_combination_of_accuracy_and_one_minus_each_normalised_measure():
    objective = Objective(Weights(0.5, 0.2, 0.2, 0.1), MAXIMA)
    measures = Measures(accuracy=0.8, latency_s=5.0, energy_j=5.0, peak_power_w=0.5)
    # 0.5 * 0.8 + 0.2 * (1 - 5/20) + 0.2 * (1 - 0.5/5) + 0.1 * (1 - 5/10)
    assert objective.performance(measures) == pytest.approx(0.4 + 0.15 + 0.18 + 0.05)
    best = Measures(accuracy=1.0, latency_s=0.0, energy_j=0.0, peak_power_w=0.0)
    worst = Measures(accuracy=0.0, latency_s=10.0, energy_j=20.0, peak_power_w=5.0)
    assert objective.performance(best) == pytest.approx(1.0)
    assert objective.performance(worst) == pytest.approx(0.0)


def test_the_default_weights_are_those_of_section_iv_c():
    assert DEFAULT_WEIGHTS.to_dict() == {"accuracy": 0.5, "energy": 0.2, "peak_power": 0.2, "latency": 0.1}


def test_the_maxima_file_holds_the_largest_published_measurement_of_all_seven_platforms():
    stored = load_maxima()
    recomputed = published_maxima()
    assert stored.latency_s == recomputed["latency_s"]["value"]
    assert stored.energy_j == recomputed["energy_j"]["value"]
    assert stored.peak_power_w == recomputed["peak_power_w"]["value"]
    devices = list_devices()
    assert len(devices) == 7
    everything = [m for d in devices for m in load_device(d.name).measurements]
    assert recomputed["latency_s"]["measurements"] == len(everything)
    assert max(m.latency_s for m in everything) == stored.latency_s
    assert max(m.energy_j for m in everything) == stored.energy_j
    assert max(m.peak_power_w for m in everything) == stored.peak_power_w
    assert "626 published ProTran measurements" in stored.source


def test_every_published_pair_scores_in_the_unit_interval_on_one_scale():
    objective = Objective()
    for device in list_devices():
        for m in load_device(device.name).measurements:
            measures = Measures(0.5, m.latency_s, m.energy_j, m.peak_power_w)
            normalised = objective.normalised(measures)
            assert all(0.0 <= normalised[k] <= 1.0 for k in ("latency", "energy", "peak_power"))
            assert 0.0 <= objective.performance(measures) <= 1.0


def test_the_same_measures_score_the_same_on_any_device():
    objective = Objective(maxima=MAXIMA)
    measures = Measures(0.7, 1.0, 2.0, 1.5)
    a = objective.score(TINY, RPI, measures)
    b = objective.score(TINY, "published:gpu_a100_b128_r3", measures)
    assert a.performance == b.performance and a.valid and b.valid


def test_user_weights_are_parsed_with_aliases_and_missing_keys_zero():
    assert parse_weights("accuracy=0.5,energy=0.2,peak_power=0.2,latency=0.1") == DEFAULT_WEIGHTS
    assert parse_weights(" alpha=0.6 , epsilon=0.4 ") == Weights(0.6, 0.0, 0.0, 0.4)
    assert parse_weights("accuracy=1") == Weights(1.0, 0.0, 0.0, 0.0)
    assert parse_weights("peak-power=0.5,accuracy=0.5").peak_power == 0.5


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("accuracy0.5", r"'accuracy0.5' is not key=value"),
        ("acc=0.5,energy=0.5", r"unknown key 'acc' \(keys: accuracy, energy, peak_power, latency"),
        ("energy=x,accuracy=1", r"energy='x' is not a number"),
        ("energy=-0.1,accuracy=1.1", r"energy=-0.1 must be a finite number >= 0"),
        ("latency=nan,accuracy=1", r"latency=nan must be a finite number"),
        ("energy=0.5,beta=0.5", r"'energy' given twice"),
        ("accuracy=0.5,energy=0.2", r"must sum to 1 .*got 0.7"),
    ],
)
def test_bad_weights_are_refused_naming_the_key_or_value(text, message):
    with pytest.raises(ObjectiveError, match=message):
        parse_weights(text)


def test_each_hard_constraint_turns_a_pair_into_p_min_and_says_why():
    measures = Measures(0.8, latency_s=2.0, energy_j=1.0, peak_power_w=3.0)
    cases = [
        (Constraints(max_latency_s=1.5), TINY, RPI, "latency 2 s > max 1.5 s"),
        (Constraints(max_peak_power_w=2.0), TINY, RPI, "peak power 3 W > max 2 W"),
        (Constraints(max_layers=6), BASE, RPI, "layers 12 > max 6"),
        (Constraints(max_parameters=100_000_000), BASE, RPI, "parameters 109,482,240 > max 100,000,000"),
        (
            Constraints(allowed_targets=frozenset({"rig:virtual-rpi4"})),
            TINY,
            RPI,
            "target 'published:cpu_rpi_b1_r1' is not allowed (allowed: rig:virtual-rpi4)",
        ),
    ]
    for constraints, arch, target, reason in cases:
        objective = Objective(maxima=MAXIMA, constraints=constraints)
        score = objective.score(arch, target, measures)
        assert score.performance == P_MIN and not score.valid
        assert score.violations == (reason,)
        free = Objective(maxima=MAXIMA).score(arch, target, measures)
        assert free.valid and free.performance > P_MIN


def test_limits_are_inclusive():
    constraints = Constraints(max_latency_s=2.0, max_peak_power_w=3.0, max_layers=2, max_parameters=parameter_count(TINY))
    score = Objective(maxima=MAXIMA, constraints=constraints).score(TINY, RPI, Measures(0.8, 2.0, 1.0, 3.0))
    assert score.valid


def test_an_architecture_outside_the_space_scores_p_min():
    outside = Architecture.from_dict({"l": 3, "o": [["sa_sdp_64"] * 2] * 3, "h": [128] * 3, "f": [[512]] * 3})
    score = Objective(maxima=MAXIMA).score(outside, RPI, Measures(0.8, 1.0, 1.0, 1.0))
    assert score.performance == P_MIN
    assert score.violations[0].startswith("architecture outside the design space: l: 3 layers")


def test_parameters_are_counted_like_bert():
    assert parameter_count(TINY) == REFERENCE_PARAMETERS["bert-tiny"][1]
    assert parameter_count(BASE) == REFERENCE_PARAMETERS["bert-base"][1]


def test_p_min_is_below_every_valid_pair_even_far_beyond_the_maxima():
    rng = np.random.default_rng(0)
    for _ in range(300):
        w = rng.dirichlet(np.ones(4))
        objective = Objective(Weights(*w), MAXIMA)
        ratios = rng.uniform(0, 10, size=3)
        measures = Measures(float(rng.uniform()), ratios[0] * 10.0, ratios[1] * 20.0, ratios[2] * 5.0)
        score = objective.score(TINY, RPI, measures)
        assert score.valid and score.performance >= P_MIN
        assert set(score.beyond_maxima) == {k for k, r in zip(("latency", "energy", "peak_power"), ratios) if r > 1}


def test_bad_measures_constraints_and_maxima_are_refused(tmp_path):
    with pytest.raises(ObjectiveError, match=r"accuracy 81.2 must be a GLUE score in \[0, 1\]"):
        Measures(81.2, 1.0, 1.0, 1.0)
    with pytest.raises(ObjectiveError, match="latency_s=-1.0"):
        Measures(0.5, -1.0, 1.0, 1.0)
    with pytest.raises(ObjectiveError, match="max_layers=2.5 must be a positive integer"):
        Constraints(max_layers=2.5)
    with pytest.raises(ObjectiveError, match="max_peak_power_w=0 must be a positive number"):
        Constraints(max_peak_power_w=0)
    with pytest.raises(ObjectiveError, match="allowed_targets is empty"):
        Constraints(allowed_targets=frozenset())
    with pytest.raises(ObjectiveError, match="energy_j=0.0 must be a positive"):
        Maxima(1.0, 0.0, 1.0)
    bad = tmp_path / "m.toml"
    bad.write_text("[latency_s]\nvalue = 1.0\n")
    with pytest.raises(ObjectiveError, match=r"expected \[latency_s\], \[energy_j\], \[peak_power_w\]"):
        load_maxima(bad)
    with pytest.raises(ObjectiveError, match="file not found"):
        load_maxima(tmp_path / "missing.toml")
