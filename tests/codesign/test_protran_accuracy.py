"""The GLUE accuracy surrogate and the ranking metrics of Sec. IV-A3."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.protran.accuracy import GlueSurrogate, evaluate_glue_surrogate, glue_data
from codesign.protran.calibration import best_of_groups, coverage, ndcg, random_ndcg, within_relative
from codesign.published import load_glue


def test_paper_split_trains_on_the_scored_models_among_the_first_eleven():
    data = glue_data("embedding")
    records = load_glue()
    assert data.scores.shape == (13,)
    assert int(data.paper_train.sum()) == sum(r.glue_score is not None for r in records[:11]) == 9
    assert int((~data.paper_train).sum()) == 4
    assert data.features.shape == (13, 37)
    assert glue_data("workload").features.shape[1] > 37


def test_ranking_metrics_on_known_orders():
    truth = np.array([0.70, 0.80, 0.75, 0.84])
    assert ndcg(truth, truth) == pytest.approx(1.0)
    assert ndcg(truth, -truth) < 0.7
    assert ndcg(truth, -truth) < random_ndcg(truth) < 1.0
    perfect = best_of_groups(truth, truth, 3)
    assert perfect == {"groups": 4, "accuracy": 1.0, "random": pytest.approx(1 / 3)}
    # Predicting the reverse order picks the worst of every group: never the best.
    assert best_of_groups(truth, -truth, 3)["accuracy"] == 0.0
    # Swapping only the two worst models changes no group's best.
    assert best_of_groups(truth, np.array([0.75, 0.80, 0.70, 0.84]), 3)["accuracy"] == 1.0
    assert best_of_groups(truth[:2], truth[:2], 3)["groups"] == 0


def test_coverage_and_relative_error_shares():
    measured = np.array([1.0, 2.0, 3.0, 4.0])
    assert coverage(measured, measured + [0.5, 1.5, 2.5, 0.0], np.ones(4)) == {"within_1sigma": 0.5, "within_2sigma": 0.75}
    assert within_relative([1.05, 2.5, 2.9, 4.0], measured) == 0.75


def test_glue_evaluation_reports_the_mean_baseline_honestly():
    report = evaluate_glue_surrogate("lr", "embedding", seed=0, splits=5)
    data = glue_data("embedding")
    train, test = data.scores[data.paper_train], data.scores[~data.paper_train]
    assert report["paper_split"]["mse_train_mean"] == pytest.approx(np.mean((test - train.mean()) ** 2))
    assert report["paper_split"]["best_of_3"]["groups"] == 4
    assert report["scored_models"] == 13
    loo = report["leave_one_out"]
    expected_loo_baseline = np.mean([(data.scores[i] - np.delete(data.scores, i).mean()) ** 2 for i in range(13)])
    assert loo["mse_train_mean"] == pytest.approx(expected_loo_baseline)
    assert 0 <= report["random_splits"]["best_of_3"] <= 1
    assert report["random_splits"]["splits"] == 5


def test_glue_surrogate_predicts_scores_with_a_spread():
    model = GlueSurrogate("gbdt", "workload", seed=0)
    records = load_glue()
    mean, std = model.predict([r.architecture for r in records[:3]])
    assert mean.shape == std.shape == (3,)
    assert np.all((mean > 0.5) & (mean < 1.0)) and np.all(std > 0)
