"""Regressor comparisons on a published pool: held-out error, calibration, learning curves.

* :func:`holdout_evaluation`: K-fold over the whole pool (every architecture predicted
  once, by a surrogate fitted on the other folds): MSE of normalised measures (divided
  by the pool maximum), the share within +-10% of the measured value, and the coverage
  of ``mean +- 1/2 sigma``. Run with both feature sets, this is the held-out error with
  and without workload features, and the calibration of every regressor.
* :func:`learning_curve`: the active-learning loop of one regressor run to a budget
  without stopping at the threshold: validation MSE (and never-queried MSE) against the
  number of samples, Fig. 7 of the paper.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np

from codesign.protran.calibration import coverage, gaussian_nll, mse, within_relative
from codesign.protran.evaluators import PublishedPoolEvaluator
from codesign.protran.features import FEATURE_SETS, featurize
from codesign.protran.loop import LoopConfig, run_campaign
from codesign.protran.measures import MEASURES
from codesign.protran.surrogates import make_surrogate
from codesign.protran.surrogates.base import fold_ids, single_threaded_blas

HOLDOUT_FOLDS = 5


def pool_arrays(evaluator: PublishedPoolEvaluator, features: str) -> tuple[np.ndarray, np.ndarray]:
    """Feature matrix and measured values ``(n, 3)`` of a device's whole published pool."""
    X = featurize(evaluator.pool, features, evaluator.context)
    Y = np.array([evaluator.truth(arch).values() for arch in evaluator.pool])
    return X, Y


def out_of_fold_predictions(
    evaluator: PublishedPoolEvaluator, regressor: str, features: str, seed: int = 0, folds: int = HOLDOUT_FOLDS
) -> dict:
    """Out-of-fold predictive mean and std of every pool architecture, in measurement units."""
    X, Y = pool_arrays(evaluator, features)
    maxima = Y.max(axis=0)
    Yn = Y / maxima
    ids = fold_ids(X.shape[0], folds, seed)
    mean, std = np.empty_like(Yn), np.empty_like(Yn)
    with single_threaded_blas():
        for fold in np.unique(ids):
            held = ids == fold
            for m in range(len(MEASURES)):
                model = make_surrogate(regressor, seed + int(fold), features).fit(X[~held], Yn[~held, m])
                prediction = model.predict(X[held])
                mean[held, m], std[held, m] = prediction.mean, prediction.std
    return {"measured": Y, "mean": mean * maxima, "std": std * maxima, "maxima": maxima}


def holdout_evaluation(
    evaluator: PublishedPoolEvaluator, regressor: str, features: str, seed: int = 0, folds: int = HOLDOUT_FOLDS
) -> dict:
    """K-fold held-out error, +-10% share and calibration of one regressor on one feature set."""
    start = time.perf_counter()
    oof = out_of_fold_predictions(evaluator, regressor, features, seed, folds)
    Y, mean, std, maxima = oof["measured"], oof["mean"], oof["std"], oof["maxima"]
    out: dict = {"regressor": regressor, "features": features, "folds": folds, "architectures": int(Y.shape[0])}
    out["mse"] = {m: mse(mean[:, i] / maxima[i], Y[:, i] / maxima[i]) for i, m in enumerate(MEASURES)}
    out["within_10pct"] = {m: within_relative(mean[:, i], Y[:, i]) for i, m in enumerate(MEASURES)}
    out["coverage"] = {m: coverage(Y[:, i], mean[:, i], std[:, i]) for i, m in enumerate(MEASURES)}
    out["nll"] = {m: gaussian_nll(Y[:, i] / maxima[i], mean[:, i] / maxima[i], std[:, i] / maxima[i]) for i, m in enumerate(MEASURES)}
    out["seconds"] = time.perf_counter() - start
    return out


def feature_ablation(
    evaluator: PublishedPoolEvaluator, regressors: Sequence[str], seed: int = 0, folds: int = HOLDOUT_FOLDS
) -> list[dict]:
    """Held-out evaluation of every regressor with the embedding alone and with workload features."""
    return [holdout_evaluation(evaluator, r, f, seed, folds) for r in regressors for f in FEATURE_SETS]


def learning_curve(
    evaluator: PublishedPoolEvaluator,
    regressor: str,
    budget: int,
    features: str = "workload",
    seed: int = 0,
    threshold: float = 0.005,
    progress: Callable[[dict], None] | None = None,
) -> dict:
    """The loop of one regressor run to ``budget`` samples: validation and never-queried MSE per sample count."""
    config = LoopConfig(
        regressor=regressor, features=features, seed=seed, threshold=threshold,
        budget=min(budget, len(evaluator)), stop_at_threshold=False,
    )
    start = time.perf_counter()
    result = run_campaign(evaluator, evaluator.pool, config, truth=evaluator.truth, progress=progress)
    below = [r["samples"] for r in result.history if r["below_threshold"]]
    return {
        "regressor": regressor,
        "features": features,
        "threshold": threshold,
        "first_below_threshold": below[0] if below else None,
        "points": [
            {
                "samples": r["samples"],
                "val_mse": r["val_mse"],
                "never_queried_mse": r.get("never_queried", {}).get("mse"),
                "never_queried_within_10pct": r.get("never_queried", {}).get("within_10pct"),
            }
            for r in result.history
        ],
        "seconds": time.perf_counter() - start,
    }


def compare_regressors(
    device: str,
    regressors: Sequence[str],
    budget: int = 32,
    features: str = "workload",
    seed: int = 0,
    threshold: float = 0.005,
    curves: bool = True,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Held-out metrics (both feature sets) and, optionally, loop learning curves of several regressors."""
    evaluator = PublishedPoolEvaluator(device)
    report: dict = {"device": evaluator.device, "pool": len(evaluator), "seed": seed, "threshold": threshold, "regressors": {}}
    for regressor in regressors:
        if progress is not None:
            progress(regressor)
        entry = {"holdout": {f: holdout_evaluation(evaluator, regressor, f, seed) for f in FEATURE_SETS}}
        if curves:
            entry["curve"] = learning_curve(evaluator, regressor, budget, features, seed, threshold)
        report["regressors"][regressor] = entry
    return report
