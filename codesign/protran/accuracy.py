"""The accuracy surrogate: GLUE score from architecture (EdgeTran Sec. IV-A3, Fig. 10).

Data: the 16 fully pre-trained architectures of ``glue/dataset.json``, 13 with a GLUE
score (:func:`codesign.published.load_glue`). The paper trains on "the first 11 models"
of its 16 LHS samples and tests on the other 5. Here the first 11 records (file order)
hold 9 scores and the last 5 hold 4, so the **paper split** trains on 9 and tests on 4;
groups of three in the test set number C(4, 3) = 4 (the paper's C(5, 3) = 10).

Metrics (``codesign.protran.calibration``): test MSE of the score (next to the MSE of
predicting the training mean, which any useful surrogate must beat), best-of-group
accuracy over groups of three (random guessing: 1/3), nDCG of the predicted order (next
to the nDCG of a random order), and the +-1/2 sigma coverage. Four test models make
every one of these numbers coarse, so the same metrics are also averaged over
**repeated random 9/4 splits** of the 13 scored models (seeded), and the MSE is also
given **leave-one-out**.

**Uncertainty, plainly:** 13 scores between 0.70 and 0.84 (standard deviation about
0.04) cannot pin a function of a 37-dimensional categorical embedding or of 100-odd
workload features. Expect a surrogate whose predictive standard deviation is of the
order of the spread of the scores themselves, and rankings that beat random by a
modest margin at best; the report states the numbers. Several of the scored models
stopped pre-training early (182,500 to 872,500 steps) or ended at a high pre-training
loss (7.69); their scores are kept as published.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from codesign.architecture import Architecture
from codesign.protran.calibration import best_of_groups, coverage, mse, ndcg, random_ndcg
from codesign.protran.features import WorkloadContext, featurize
from codesign.protran.surrogates import Surrogate, make_surrogate
from codesign.protran.surrogates.base import single_threaded_blas
from codesign.published import GlueRecord, load_glue

PAPER_TRAIN_RECORDS = 11  # "the first 11 models" (file order, scored or not)
RANDOM_SPLITS = 200  # repeated random train/test splits of the scored models
GROUP_SIZE = 3  # best-of-k groups (Sec. IV-A3)
GLUE_CONTEXT = WorkloadContext(sequence_length=128, batch_size=1)  # workload features for the accuracy surrogate
# GBDT on workload features ranked best over 200 random 9/4 splits (best of 3: 0.57 against 0.33 for random
# guessing; nDCG 0.90 against 0.82), as GBDT did in the paper; no regressor beat the training mean in MSE.
DEFAULT_GLUE_REGRESSOR = "gbdt"
DEFAULT_GLUE_FEATURES = "workload"


@dataclass(frozen=True)
class GlueData:
    """Scored GLUE records, their features, and the paper's train/test split."""

    records: tuple[GlueRecord, ...]
    features: np.ndarray
    scores: np.ndarray
    paper_train: np.ndarray  # boolean mask over records


def glue_data(features: str = DEFAULT_GLUE_FEATURES, records: Sequence[GlueRecord] | None = None) -> GlueData:
    """The scored GLUE records with features and the paper's first-11 training mask."""
    all_records = list(records if records is not None else load_glue())
    scored = [(i, r) for i, r in enumerate(all_records) if r.glue_score is not None]
    rows = [r for _, r in scored]
    X = featurize([r.architecture for r in rows], features, GLUE_CONTEXT)
    y = np.array([r.glue_score for r in rows], dtype=float)
    train = np.array([i < PAPER_TRAIN_RECORDS for i, _ in scored])
    return GlueData(tuple(rows), X, y, train)


def _split_metrics(model: Surrogate, data: GlueData, train: np.ndarray) -> dict:
    model.fit(data.features[train], data.scores[train])
    prediction = model.predict(data.features[~train])
    truth = data.scores[~train]
    return {
        "train": int(train.sum()),
        "test": int((~train).sum()),
        "mse": mse(prediction.mean, truth),
        "mse_train_mean": mse(np.full(truth.shape, data.scores[train].mean()), truth),
        "best_of_3": best_of_groups(truth, prediction.mean, GROUP_SIZE),
        "ndcg": ndcg(truth, prediction.mean),
        "ndcg_random": random_ndcg(truth),
        "coverage": coverage(truth, prediction.mean, prediction.std),
        "mean_std": float(np.mean(prediction.std)),
    }


def evaluate_glue_surrogate(regressor: str, features: str = DEFAULT_GLUE_FEATURES, seed: int = 0, splits: int = RANDOM_SPLITS) -> dict:
    """Paper-split, repeated-random-split and leave-one-out metrics of one regressor on the GLUE data."""
    data = glue_data(features)
    n = data.scores.shape[0]
    with single_threaded_blas():
        paper = _split_metrics(make_surrogate(regressor, seed, features), data, data.paper_train)
        rng = np.random.default_rng(seed)
        test_size = int((~data.paper_train).sum())
        repeated = []
        for _ in range(splits):
            train = np.ones(n, dtype=bool)
            train[rng.choice(n, size=test_size, replace=False)] = False
            repeated.append(_split_metrics(make_surrogate(regressor, seed, features), data, train))
        loo_mean, loo_std = np.empty(n), np.empty(n)
        for i in range(n):
            keep = np.arange(n) != i
            model = make_surrogate(regressor, seed, features).fit(data.features[keep], data.scores[keep])
            prediction = model.predict(data.features[i : i + 1])
            loo_mean[i], loo_std[i] = prediction.mean[0], prediction.std[0]
    loo_baseline = np.array([data.scores[np.arange(n) != i].mean() for i in range(n)])
    best = [r["best_of_3"]["accuracy"] for r in repeated]
    return {
        "regressor": regressor,
        "features": features,
        "scored_models": n,
        "score_std": float(data.scores.std()),
        "paper_split": paper,
        "random_splits": {
            "splits": splits,
            "mse": float(np.mean([r["mse"] for r in repeated])),
            "mse_train_mean": float(np.mean([r["mse_train_mean"] for r in repeated])),
            "best_of_3": float(np.mean(best)),
            "best_of_3_random": 1.0 / GROUP_SIZE,
            "ndcg": float(np.mean([r["ndcg"] for r in repeated])),
            "ndcg_random": float(np.mean([r["ndcg_random"] for r in repeated])),
            "within_1sigma": float(np.mean([r["coverage"]["within_1sigma"] for r in repeated])),
            "within_2sigma": float(np.mean([r["coverage"]["within_2sigma"] for r in repeated])),
        },
        "leave_one_out": {
            "mse": mse(loo_mean, data.scores),
            "mse_train_mean": mse(loo_baseline, data.scores),
            "coverage": coverage(data.scores, loo_mean, loo_std),
            "mean_std": float(np.mean(loo_std)),
        },
    }


class GlueSurrogate:
    """A GLUE-score predictor fitted on every scored published model."""

    def __init__(self, regressor: str = DEFAULT_GLUE_REGRESSOR, features: str = DEFAULT_GLUE_FEATURES, seed: int = 0) -> None:
        self.regressor, self.features, self.seed = regressor, features, seed
        data = glue_data(features)
        with single_threaded_blas():
            self.model = make_surrogate(regressor, seed, features).fit(data.features, data.scores)
        self.training_scores = data.scores

    def predict(self, archs: Sequence[Architecture]) -> tuple[np.ndarray, np.ndarray]:
        """Predicted GLUE score and its predictive standard deviation for each architecture."""
        X = featurize(archs, self.features, GLUE_CONTEXT)
        with single_threaded_blas():
            prediction = self.model.predict(X)
        return prediction.mean, prediction.std
