"""The seven surrogates: calibrated spread on data with known noise, JSON round trip, numpy = scikit-learn."""

from __future__ import annotations

import json

import numpy as np
import pytest

from codesign.protran.surrogates import REGRESSORS, SurrogateError, fold_ids, make_surrogate, surrogate_from_state
from codesign.protran.surrogates.base import single_threaded_blas
from codesign.protran.surrogates.fold_ensembles import GradientBoostedTreesSurrogate
from codesign.protran.surrogates.point_models import (
    BDT_DEPTH,
    BDT_ROUNDS,
    DT_MIN_SAMPLES_LEAF,
    GBDT_DEPTH,
    GBDT_LEARNING_RATE,
    GBDT_TREES,
    AdaBoostModel,
    GradientBoostingModel,
    TreeModel,
)

NOISE_STD = 0.3  # of the synthetic targets
TRAIN_ROWS = 150
TEST_ROWS = 600


def truth(X: np.ndarray) -> np.ndarray:
    """A smooth function with a linear trend and a bump (standard deviation about 1.2)."""
    return 0.8 * X[:, 0] + np.sin(1.5 * X[:, 1]) + 0.5 * X[:, 2] ** 2


@pytest.fixture(scope="module")
def synthetic():
    rng = np.random.default_rng(7)
    X = rng.uniform(-2, 2, size=(TRAIN_ROWS, 3))
    y = truth(X) + NOISE_STD * rng.normal(size=TRAIN_ROWS)
    Xt = rng.uniform(-2, 2, size=(TEST_ROWS, 3))
    yt = truth(Xt) + NOISE_STD * rng.normal(size=TEST_ROWS)
    return X, y, Xt, yt


@pytest.fixture(scope="module")
def fitted(synthetic):
    X, y, _, _ = synthetic
    with single_threaded_blas():
        return {name: make_surrogate(name, seed=3).fit(X, y) for name in REGRESSORS}


@pytest.mark.parametrize("name", list(REGRESSORS))
def test_held_out_coverage_is_calibrated_on_known_noise(fitted, synthetic, name):
    """Held-out points fall inside mean +- 1 sigma about 68% and +- 2 sigma about 95% of the time."""
    _, y, Xt, yt = synthetic
    prediction = fitted[name].predict(Xt)
    z = np.abs(yt - prediction.mean) / prediction.std
    within1, within2 = np.mean(z <= 1), np.mean(z <= 2)
    assert 0.55 <= within1 <= 0.85, (name, within1, within2)
    assert 0.85 <= within2 <= 0.995, (name, within1, within2)
    # The spread cannot be smaller than the noise on average (it includes it)...
    assert np.mean(prediction.std) >= 0.8 * NOISE_STD
    # ...and each regressor learnt something: error well below the spread of the targets.
    rmse = np.sqrt(np.mean((yt - prediction.mean) ** 2))
    assert rmse < 0.75 * np.std(yt), (name, rmse)


@pytest.mark.parametrize("name", list(REGRESSORS))
def test_spread_varies_exactly_for_the_regressors_queried_by_uncertainty(fitted, synthetic, name):
    _, _, Xt, _ = synthetic
    std = fitted[name].predict(np.vstack([Xt, [[6.0, 6.0, 6.0], [-6.0, 6.0, -6.0]]])).std
    if REGRESSORS[name].query_by_uncertainty:
        assert std.max() > 1.1 * std.min()
    else:  # dt, svr: the constant out-of-fold residual spread
        assert np.allclose(std, std[0])


@pytest.mark.parametrize("name", ["lr", "gpr", "nn"])
def test_spread_grows_away_from_the_training_data(fitted, synthetic, name):
    X, _, _, _ = synthetic
    far = np.array([[8.0, 8.0, 8.0], [-8.0, 8.0, -8.0]])
    near = fitted[name].predict(X[:50]).std
    assert fitted[name].predict(far).std.min() > 1.3 * np.median(near)


@pytest.mark.parametrize("name", list(REGRESSORS))
def test_json_state_round_trip_predicts_identically(fitted, synthetic, name):
    _, _, Xt, _ = synthetic
    text = json.dumps(fitted[name].state(), allow_nan=False)  # plain JSON numbers only
    rebuilt = surrogate_from_state(json.loads(text))
    a, b = fitted[name].predict(Xt), rebuilt.predict(Xt)
    assert np.array_equal(a.mean, b.mean) and np.array_equal(a.std, b.std)


@pytest.mark.parametrize("name", list(REGRESSORS))
def test_same_seed_same_model(synthetic, name):
    X, y, Xt, _ = synthetic
    with single_threaded_blas():
        a = make_surrogate(name, seed=11).fit(X[:60], y[:60]).predict(Xt[:20])
        b = make_surrogate(name, seed=11).fit(X[:60], y[:60]).predict(Xt[:20])
    assert np.array_equal(a.mean, b.mean) and np.array_equal(a.std, b.std)


def test_broken_states_are_refused(fitted):
    state = fitted["gbdt"].state()
    state["fitted"]["point"]["trees"][0]["left"] = [5, -1]
    with pytest.raises(SurrogateError):
        surrogate_from_state(state)
    with pytest.raises(SurrogateError, match="unknown regressor"):
        surrogate_from_state({"regressor": "pickle", "params": {}, "fitted": {}})
    with pytest.raises(SurrogateError, match="no 'regressor'"):
        surrogate_from_state({"params": {}})
    state = fitted["gpr"].state()
    state["fitted"]["log_theta"] = [0.0, 1.0]
    with pytest.raises(SurrogateError, match="inconsistent shapes"):
        surrogate_from_state(state)


def test_numpy_tree_predictions_equal_scikit_learn(synthetic):
    from sklearn.ensemble import AdaBoostRegressor, GradientBoostingRegressor
    from sklearn.tree import DecisionTreeRegressor

    X, y, Xt, _ = synthetic
    pairs = [
        (TreeModel(), DecisionTreeRegressor(min_samples_leaf=DT_MIN_SAMPLES_LEAF, random_state=5)),
        (
            AdaBoostModel(),
            AdaBoostRegressor(DecisionTreeRegressor(max_depth=BDT_DEPTH), n_estimators=BDT_ROUNDS, loss="linear", random_state=5),
        ),
        (
            GradientBoostingModel(),
            GradientBoostingRegressor(n_estimators=GBDT_TREES, max_depth=GBDT_DEPTH, learning_rate=GBDT_LEARNING_RATE, random_state=5),
        ),
    ]
    for ours, theirs in pairs:
        ours.fit(X, y, 5)
        np.testing.assert_allclose(ours.predict(Xt), theirs.fit(X, y).predict(Xt), rtol=1e-12, atol=1e-12)


def test_jackknife_variance_of_fold_models():
    """v(x) = (K - 1) / K * sum_k (f_k - mean f)^2: five members predicting 1..5 give 8."""

    class Constant:
        def __init__(self, value):
            self.value = value

        def predict(self, X):
            return np.full(len(X), float(self.value))

    model = GradientBoostedTreesSurrogate()
    model.members = [Constant(v) for v in (1, 2, 3, 4, 5)]
    assert model._jackknife_variance(np.zeros((2, 1))) == pytest.approx([8.0, 8.0])


def test_fold_ensembles_reuse_given_folds_for_out_of_fold_predictions(synthetic):
    """The out-of-fold predictions of a fold ensemble are those of its fold models (no extra fits)."""
    X, y, _, _ = synthetic
    folds = fold_ids(60, 5, seed=1)
    model = make_surrogate("dt", seed=2).fit(X[:60], y[:60], folds=folds)
    for fold in range(5):
        held = folds == fold
        member = TreeModel().fit(X[:60][~held], y[:60][~held], 2 + 1 + fold)
        np.testing.assert_array_equal(model.oof_mean_[held], member.predict(X[:60][held]))
    assert model.residual_variance == pytest.approx(np.mean((y[:60] - model.oof_mean_) ** 2))


def test_gp_out_of_fold_refits_without_the_held_out_rows(synthetic):
    """A held-out row never informs its own prediction: changing its target leaves it unchanged."""
    X, y, _, _ = synthetic
    folds = fold_ids(40, 5, seed=0)
    changed = y[:40].copy()
    changed[folds == 0] += 100.0
    with single_threaded_blas():
        a = make_surrogate("gpr", 1).fit(X[:40], y[:40], folds=folds).oof_mean_
        b = make_surrogate("gpr", 1).fit(X[:40], changed, folds=folds).oof_mean_
    # Rows of fold 0 were predicted by a model fitted on the other folds only; rows of other folds were
    # predicted by models that saw the changed targets.
    np.testing.assert_allclose(a[folds == 0], b[folds == 0], rtol=1e-6, atol=1e-6)
    assert not np.allclose(a[folds != 0], b[folds != 0])


def test_fold_ids_are_balanced_and_seeded():
    ids = fold_ids(23, 5, seed=4)
    assert sorted(np.bincount(ids).tolist()) == [4, 4, 5, 5, 5]
    assert np.array_equal(ids, fold_ids(23, 5, seed=4))
    assert not np.array_equal(ids, fold_ids(23, 5, seed=5))


def test_bad_inputs_are_named():
    model = make_surrogate("lr")
    with pytest.raises(SurrogateError, match="not fitted"):
        model.predict(np.zeros((1, 2)))
    with pytest.raises(SurrogateError, match="3 feature rows but 2 targets"):
        model.fit(np.zeros((3, 2)), [1.0, 2.0])
    with pytest.raises(SurrogateError, match="NaN"):
        model.fit(np.array([[np.nan, 1.0], [1.0, 2.0]]), [1.0, 2.0])
    with pytest.raises(SurrogateError, match="unknown regressor 'xgb'"):
        make_surrogate("xgb")


@pytest.mark.parametrize("features", ["workload", "compact"])
def test_gp_linear_kernel_part_reads_the_whole_model_totals(features):
    """With workload-derived features the GP's linear part sees the six totals only, in either feature set."""
    from codesign.protran.features import LINEAR_FEATURES, feature_names

    names = feature_names(features)
    model = make_surrogate("gpr", seed=0, features=features)
    assert [names[c] for c in model.linear_columns] == list(LINEAR_FEATURES)
    assert make_surrogate("gpr", seed=0, features="embedding").linear_columns is None


def test_nn_warm_start_trains_a_quarter_of_the_epochs_and_predicts_as_well(synthetic):
    """A campaign's next nn fit starts from the previous fit (full and per fold): 100 epochs instead of 400.

    The warm fit on one more row must predict held-out rows about as well as a cold fit
    on the same rows (within 25% in MSE), and its fold models chain from the same folds.
    """
    from codesign.protran.surrogates.neural import WARM_EPOCHS

    X, y, Xt, yt = synthetic
    folds = np.arange(41) % 5
    with single_threaded_blas():
        previous = make_surrogate("nn", seed=3).fit(X[:40], y[:40], folds=folds[:40])
        warm = make_surrogate("nn", seed=4)
        warm.warm_from(previous)
        warm.fit(X[:41], y[:41], folds=folds)
        cold = make_surrogate("nn", seed=4).fit(X[:41], y[:41], folds=folds)
    assert warm.epochs_trained_ == WARM_EPOCHS == 100 and cold.epochs_trained_ == 400
    assert all(m.epochs_trained_ == WARM_EPOCHS for m in warm.fold_models_.values()) and len(warm.fold_models_) == 5
    assert all(m.previous is None for m in warm.fold_models_.values())  # no chain of old models kept alive
    warm_mse = np.mean((warm.predict(Xt).mean - yt) ** 2)
    cold_mse = np.mean((cold.predict(Xt).mean - yt) ** 2)
    assert warm_mse <= 1.25 * cold_mse, (warm_mse, cold_mse)
