"""The active-learning loop on tiny fake evaluators whose answers are known."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from codesign.protran.evaluators import NotInPoolError, PublishedPoolEvaluator, RigUnavailableError, parse_device_spec
from codesign.protran.features import WorkloadContext, total_workload
from codesign.protran.loop import LoopConfig, LoopError, consecutive_below, initial_selection, run_campaign, sample_folds
from codesign.protran.measures import PerformanceMeasurement
from codesign.protran.surrogates import make_surrogate
from codesign.protran.surrogates.base import Surrogate
from codesign.sampling import sample_architectures

POOL_SIZE = 40


def _noise(arch, scale: float) -> float:
    """Deterministic pseudo-noise in [-scale, scale] from the architecture."""
    digest = hashlib.sha256(repr(arch.to_dict()).encode()).digest()
    return scale * (int.from_bytes(digest[:4], "little") / 2**32 * 2 - 1)


class FakeEvaluator:
    """Known answers: latency and energy linear in GFLOP, peak power linear in layers (+ optional noise)."""

    device = "fake_board_b1_r1"
    context = WorkloadContext(128, 1)

    def __init__(self, power_noise: float = 0.0) -> None:
        self.power_noise = power_noise
        self.calls: list[str] = []

    def values(self, arch) -> tuple[float, float, float]:
        gflop = total_workload(arch, self.context)["total_gflop"]
        return 0.5 + 0.2 * gflop, 1.0 + 3.0 * gflop, 4.0 + 0.1 * arch.layers + _noise(arch, self.power_noise)

    def __call__(self, arch) -> PerformanceMeasurement:
        self.calls.append(repr(arch.to_dict()))
        return PerformanceMeasurement(*self.values(arch), device=self.device, source="fake")

    def truth(self, arch) -> PerformanceMeasurement:
        return PerformanceMeasurement(*self.values(arch), device=self.device, source="fake")


@pytest.fixture(scope="module")
def pool():
    return sample_architectures("lhs", POOL_SIZE, seed=21)


def test_linear_answers_converge_on_the_initial_batch(pool):
    evaluator = FakeEvaluator()
    config = LoopConfig(regressor="gpr", threshold=0.005, initial=8, seed=0, patience=1)
    result = run_campaign(evaluator, pool, config, truth=evaluator.truth)
    assert result.converged and result.stop_reason == "converged"
    assert result.samples == 8 and len(evaluator.calls) == 8
    assert all(v < 2e-3 for v in result.val_mse.values())
    held = round(0.2 * POOL_SIZE)  # the default held-out split, drawn before the campaign
    assert result.unqueried["count"] == POOL_SIZE - held - 8 and result.held_out["count"] == held
    assert all(share >= 0.8 for share in result.unqueried["within_10pct"].values())


def test_patience_counts_consecutive_fits_below_the_threshold(pool):
    evaluator = FakeEvaluator()
    result = run_campaign(evaluator, pool, LoopConfig(regressor="gpr", initial=8, seed=0, patience=3))
    assert result.converged and result.samples == 10 and len(evaluator.calls) == 10
    assert [r["below_threshold"] for r in result.history] == [True, True, True]
    below = [{"below_threshold": b} for b in (True, True, False, True, True)]
    assert consecutive_below(below) == 2
    assert consecutive_below(below[:2]) == 2 and consecutive_below(below[:3]) == 0 and consecutive_below([]) == 0


def test_every_measure_must_be_below_the_threshold(pool):
    """Latency and energy are learnt exactly; noisy peak power keeps the loop going to the budget."""
    evaluator = FakeEvaluator(power_noise=1.5)
    config = LoopConfig(regressor="gpr", threshold=0.005, initial=8, budget=14, seed=0)
    result = run_campaign(evaluator, pool, config)
    assert not result.converged and result.stop_reason == "budget"
    assert result.samples == 14 and len(evaluator.calls) == 14
    for record in result.history:
        assert record["val_mse"]["latency_s"] < 0.005 and record["val_mse"]["energy_j"] < 0.005
        assert record["val_mse"]["peak_power_w"] > 0.005
        assert record["below_threshold"] is False
    assert [r["samples"] for r in result.history] == list(range(8, 15))


class ZeroSurrogate(Surrogate):
    """Predicts 0 with spread = the first feature (the layer index): its errors and queries are known."""

    name = "zero"
    fits: list = []

    def _fit(self, X, y):
        ZeroSurrogate.fits.append(np.array(y))

    def _predict(self, X):
        return np.zeros(len(X)), 1.0 + X[:, 0]

    def _state(self):
        return {}

    def _load(self, fitted):
        pass


def zero_factory(name, seed, features):
    return ZeroSurrogate(seed)


def test_targets_are_normalised_by_the_maximum_over_all_samples_every_fit(pool):
    """Every fit sees targets divided by the running maximum, first batch included; validation MSE follows."""
    ZeroSurrogate.fits = []
    evaluator = FakeEvaluator()
    config = LoopConfig(regressor="lr", threshold=0.005, initial=6, budget=16, seed=3)
    result = run_campaign(evaluator, pool, config, factory=zero_factory)
    raw = np.array([evaluator.values(arch) for arch in [next(a for a in pool if repr(a.to_dict()) == c) for c in evaluator.calls]])
    fits_per_record = 3  # one full fit per measure (the out-of-fold clones of ZeroSurrogate append too)
    full_fits = [y for y in ZeroSurrogate.fits if len(y) in {r["samples"] for r in result.history}]
    assert len(result.history) == 11
    grew = False
    for record in result.history:
        n = record["samples"]
        maxima = raw[:n].max(axis=0)
        assert [record["maxima"][m] for m in ("latency_s", "energy_j", "peak_power_w")] == pytest.approx(maxima)
        seen = [y for y in full_fits if len(y) == n][:fits_per_record]
        for m, y in enumerate(seen):
            np.testing.assert_allclose(y, raw[:n, m] / maxima[m])  # every sample, same divisor
            assert y.max() == pytest.approx(1.0)
        expected = np.mean((raw[:n] / maxima) ** 2, axis=0)  # zero predictions: MSE = mean of squares
        assert [record["val_mse"][m] for m in ("latency_s", "energy_j", "peak_power_w")] == pytest.approx(expected)
        grew = grew or np.any(maxima > raw[:6].max(axis=0))
    assert grew, "the test pool should raise a maximum after the first batch"


def test_uncertainty_query_takes_the_largest_summed_spread(pool):
    evaluator = FakeEvaluator()
    config = LoopConfig(regressor="lr", threshold=1e-12, initial=6, budget=9, seed=1)
    result = run_campaign(evaluator, pool, config, factory=zero_factory)
    # ZeroSurrogate's spread is 1 + e[0] (the layer index), so the first deepest unqueried model wins.
    from codesign.protran.evaluators import architecture_key

    keys = [architecture_key(a) for a in pool]
    for record in result.history[:-1]:
        queried = set(result.queried[: record["samples"]])
        depth = {k: a.layers for k, a in zip(keys, pool)}
        remaining = [k for k in keys if k not in queried]
        deepest = max(depth[k] for k in remaining)
        first = next(k for k in remaining if depth[k] == deepest)
        assert record["next_query"] == {"key": first, "reason": "uncertainty", "score": pytest.approx(3 * (1 + (deepest // 2 - 1)))}


def test_regressors_without_uncertainty_query_at_random_reproducibly(pool):
    config = LoopConfig(regressor="dt", threshold=1e-12, initial=6, budget=10, seed=4)
    first = run_campaign(FakeEvaluator(), pool, config)
    again = run_campaign(FakeEvaluator(), pool, config)
    other = run_campaign(FakeEvaluator(), pool, LoopConfig(regressor="dt", threshold=1e-12, initial=6, budget=10, seed=5))
    assert {r["next_query"]["reason"] for r in first.history[:-1]} == {"random"}
    assert first.queried == again.queried
    assert first.queried != other.queried


def test_published_pool_runs_are_reproducible_by_seed():
    evaluator = PublishedPoolEvaluator("cpu_rpi_b1_r1")
    config = LoopConfig(regressor="gpr", budget=20, seed=7)
    a = run_campaign(evaluator, evaluator.pool, config, truth=evaluator.truth)
    b = run_campaign(PublishedPoolEvaluator("cpu_rpi_b1_r1"), evaluator.pool, config, truth=evaluator.truth)
    c = run_campaign(evaluator, evaluator.pool, LoopConfig(regressor="gpr", budget=20, seed=8), truth=evaluator.truth)
    assert a.queried == b.queried and a.history == b.history
    assert a.queried[:16] != c.queried[:16]
    assert a.samples == 20 and len(set(a.queried)) == 20
    assert {r["next_query"]["reason"] for r in a.history[:-1]} == {"uncertainty"}
    assert a.history[-1]["never_queried"]["count"] == 65 - 13 - 20  # 13 held out (20% of 65)


def test_initial_selection_is_distinct_seeded_and_spread(pool):
    chosen = initial_selection(pool, 16, seed=2)
    assert len(chosen) == 16 == len(set(chosen))
    assert chosen == initial_selection(pool, 16, seed=2)
    assert chosen != initial_selection(pool, 16, seed=3)
    assert len({pool[i].layers for i in chosen}) >= 4  # LHS covers the depths
    assert initial_selection(pool[:5], 16, seed=2) == [0, 1, 2, 3, 4]


def test_fold_membership_is_fixed_when_a_sample_enters():
    first = sample_folds(16, 16, 5, seed=0)
    later = sample_folds(30, 16, 5, seed=0)
    assert np.array_equal(later[:16], first)
    assert later[16:].tolist() == [i % 5 for i in range(16, 30)]
    assert sorted(np.bincount(first).tolist()) == [3, 3, 3, 3, 4]


def test_bad_settings_are_refused(pool):
    with pytest.raises(LoopError, match="budget 4 is smaller than the initial batch of 16"):
        LoopConfig(budget=4)
    with pytest.raises(LoopError, match="threshold must be a positive number"):
        LoopConfig(threshold=0)
    with pytest.raises(LoopError, match="at least 2 are needed"):
        run_campaign(FakeEvaluator(), pool[:1], LoopConfig())
    with pytest.raises(LoopError, match="lists an architecture twice"):
        run_campaign(FakeEvaluator(), [pool[0], pool[0], pool[1]], LoopConfig(initial=2))


def test_published_evaluator_and_device_specifications():
    evaluator = PublishedPoolEvaluator("npu_ncs_b1_r1")
    assert len(evaluator) == 17 and evaluator.context.batch_size == 1
    evaluator.truth(evaluator.pool[0])
    assert evaluator.calls == 0
    evaluator(evaluator.pool[0])
    assert evaluator.calls == 1
    with pytest.raises(NotInPoolError, match="no published measurement"):
        evaluator(sample_architectures("lhs", 1, seed=0)[0])
    assert parse_device_spec("published:cpu_rpi_b1_r1").name == "cpu_rpi_b1_r1"
    for text in ("rig:pi4", "pi4", "published:"):
        with pytest.raises(RigUnavailableError, match=r"live rig campaigns need the bench host \(not available yet\)"):
            parse_device_spec(text)


def test_real_surrogates_are_the_default_factory(pool):
    """The default factory builds registry surrogates (GP with its linear part on the workload totals)."""
    model = make_surrogate("gpr", 0, "workload")
    assert model.linear_columns is not None and len(model.linear_columns) == 6
    assert make_surrogate("gpr", 0, "embedding").linear_columns is None


def test_a_held_out_split_is_drawn_before_the_campaign_and_never_queried(pool):
    """The split depends on the seed only, is scored every fit (held_out in history) and is never evaluated."""
    from codesign.protran.evaluators import architecture_key
    from codesign.protran.loop import holdout_split

    evaluator = FakeEvaluator(power_noise=0.5)
    config = LoopConfig(regressor="lr", threshold=1e-12, initial=6, budget=20, seed=3)
    result = run_campaign(evaluator, pool, config, truth=evaluator.truth)
    held = holdout_split(POOL_SIZE, 0.2, 3)
    assert len(held) == 8 and list(held) == list(holdout_split(POOL_SIZE, 0.2, 3))
    held_keys = {architecture_key(pool[i]) for i in held}
    assert not held_keys & set(result.queried)
    assert all(r["held_out"]["count"] == 8 for r in result.history) and len(result.history) == 15
    scores = result.held_out["peak_power_w"]
    assert scores["mse"] > 0 and scores["mean_predictor_mse"] > 0
    assert scores["r2"] == pytest.approx(1 - scores["mse"] / scores["mean_predictor_mse"])
    # Without a truth (a live rig) nothing can be held out: the whole pool is open.
    live = run_campaign(FakeEvaluator(), pool, LoopConfig(regressor="lr", threshold=1e-12, initial=6, budget=8, seed=3))
    assert live.held_out is None
    # holdout=0 opens the whole pool to a published campaign too.
    whole = run_campaign(evaluator, pool, LoopConfig(regressor="lr", initial=6, budget=8, seed=3, holdout=0.0), truth=evaluator.truth)
    assert whole.held_out is None and whole.unqueried["count"] == POOL_SIZE - 8


def test_every_validation_mse_comes_with_the_mean_predictor_and_r2(pool):
    """A constant measure has nothing to explain; linear answers are explained almost fully (R^2 near 1)."""
    evaluator = FakeEvaluator(power_noise=1.5)
    result = run_campaign(evaluator, pool, LoopConfig(regressor="lr", threshold=1e-12, initial=8, budget=10, seed=0))
    for record in result.history:
        assert set(record["val_mean_predictor_mse"]) == set(record["val_r2"]) == set(record["val_mse"])
    last = result.history[-1]
    assert last["val_r2"]["latency_s"] > 0.9 and last["val_r2"]["energy_j"] > 0.9
    assert last["val_r2"]["peak_power_w"] < 0.5  # noise of 1.5 W on a 0.1 W/layer trend
    data = result.to_dict()
    assert data["val_r2"] == last["val_r2"] and data["val_mean_predictor_mse"] == last["val_mean_predictor_mse"]


def test_the_paper_preset_and_the_authors_normalisation():
    """GBDT on the 37-d embedding, first-below stopping, divisors from max_values.json (fixed for the whole campaign)."""
    config = LoopConfig.preset("paper", budget=18)
    assert (config.regressor, config.features, config.patience, config.normalisation) == ("gbdt", "embedding", 1, "authors")
    evaluator = PublishedPoolEvaluator("npu_ncs_b1_r1")
    result = run_campaign(evaluator, evaluator.pool, config, truth=evaluator.truth)
    assert all(r["maxima"] == dict(zip(("latency_s", "energy_j", "peak_power_w"), evaluator.authors_maxima)) for r in result.history)
    assert result.units["latency_s"].startswith("s per evaluation run")
    with pytest.raises(LoopError, match="max_values.json"):
        run_campaign(FakeEvaluator(), sample_architectures("lhs", 12, seed=1), LoopConfig(normalisation="authors", initial=4))
    with pytest.raises(LoopError, match="unknown preset"):
        LoopConfig.preset("fastest")


def test_random_querying_ignores_the_spread(pool):
    """query='random' draws seeded random candidates even for a regressor with an informative spread."""
    evaluator = FakeEvaluator(power_noise=0.5)
    config = LoopConfig(regressor="gpr", threshold=1e-12, initial=6, budget=9, seed=2, query="random")
    result = run_campaign(evaluator, pool, config, truth=evaluator.truth)
    assert [r["next_query"]["reason"] for r in result.history[:-1]] == ["random"] * 3
