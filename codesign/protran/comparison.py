"""Regressor comparisons on a published pool: held-out error, calibration, learning curves.

* :func:`holdout_evaluation`: K-fold over the whole pool (every architecture predicted
  once, by a surrogate fitted on the other folds): MSE of normalised measures (divided
  by the pool maximum), the share within +-10% of the measured value, and the coverage
  of ``mean +- 1/2 sigma``. Run with both feature sets, this is the held-out error with
  and without workload features, and the calibration of every regressor.
* :func:`learning_curve`: the active-learning loop of one regressor run to a budget
  without stopping at the threshold: validation MSE (with its mean-predictor MSE and
  R^2), the MSE on the fixed held-out split (drawn before the campaign, 20%) and the
  never-queried MSE against the number of samples, Fig. 7 of the paper.

:func:`compare_regressors` scores the whole pool with two feature sets, the paper's
37-d ``embedding`` and the curves' feature set (``holdout_features`` names others):
each extra set costs a third more time, and ``protran compare`` on the M1 CPU pool has
to stay under a minute on a small host. Every MSE comes with the MSE of predicting the
training mean (``mean_predictor_mse``) and ``r2 = 1 - mse / mean_predictor_mse``.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import numpy as np

from codesign.protran.calibration import coverage, gaussian_nll, mse, within_relative
from codesign.protran.evaluators import PublishedPoolEvaluator
from codesign.protran.features import FEATURE_SETS, featurize
from codesign.protran.loop import LoopConfig, LoopError, run_campaign
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
    ids = fold_ids(Y.shape[0], folds, seed)  # the same folds as out_of_fold_predictions: the mean of the other folds
    baseline = np.array([Y[ids != ids[j]].mean(axis=0) for j in range(Y.shape[0])])
    out["mean_predictor_mse"] = {m: mse(baseline[:, i] / maxima[i], Y[:, i] / maxima[i]) for i, m in enumerate(MEASURES)}
    out["r2"] = {m: 1.0 - out["mse"][m] / out["mean_predictor_mse"][m] for m in MEASURES}
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
    **settings: object,
) -> dict:
    """The loop of one regressor run to ``budget`` samples: validation, held-out and never-queried MSE per sample count.

    ``settings`` are further :class:`LoopConfig` fields (``patience``, ``normalisation``,
    ``holdout``, ``query``); ``first_below_threshold`` is where a campaign with them would
    have stopped.
    """
    holdout = float(settings.get("holdout", LoopConfig.holdout))
    open_pool = len(evaluator) - int(round(holdout * len(evaluator)))
    config = LoopConfig(
        regressor=regressor, features=features, seed=seed, threshold=threshold,
        budget=min(budget, open_pool), stop_at_threshold=False, **settings,
    )
    start = time.perf_counter()
    result = run_campaign(evaluator, evaluator.pool, config, truth=evaluator.truth, progress=progress)
    streak, stop = 0, None
    for r in result.history:
        streak = streak + 1 if r["below_threshold"] else 0
        if stop is None and streak >= config.patience:
            stop = r["samples"]
    return {
        "regressor": regressor,
        "features": features,
        "threshold": threshold,
        "patience": config.patience,
        "normalisation": config.normalisation,
        "first_below_threshold": stop,
        "points": [
            {
                "samples": r["samples"],
                "val_mse": r["val_mse"],
                "val_mean_predictor_mse": r["val_mean_predictor_mse"],
                "val_r2": r["val_r2"],
                "held_out_mse": (r.get("held_out") or {}).get("mse"),
                "held_out_r2": {m: r["held_out"][m]["r2"] for m in MEASURES} if r.get("held_out") else None,
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
    holdout_features: Sequence[str] | None = None,
    **settings: object,
) -> dict:
    """Whole-pool K-fold metrics (embedding and the curves' feature set) and, optionally, learning curves per regressor.

    ``progress`` is told each step before it starts (``"<regressor>: ..."``); the steps are
    ``len(regressors) * (len(holdout_features) + curves)``, see :func:`compare_steps`.
    """
    from codesign.protran.measures import units_note

    evaluator = PublishedPoolEvaluator(device)
    sets = list(holdout_features or compare_feature_sets(features))
    report: dict = {
        "device": evaluator.device, "pool": len(evaluator), "seed": seed, "threshold": threshold,
        "settings": {k: v for k, v in settings.items()}, "units": units_note("published"), "regressors": {},
    }
    for regressor in regressors:
        entry: dict = {"holdout": {}}
        for feature_set in sets:
            if progress is not None:
                progress(f"{regressor}: 5-fold on {feature_set}")
            entry["holdout"][feature_set] = holdout_evaluation(evaluator, regressor, feature_set, seed)
        if curves:
            if progress is not None:
                progress(f"{regressor}: learning curve to {budget}")
            try:
                entry["curve"] = learning_curve(evaluator, regressor, budget, features, seed, threshold, **settings)
            except LoopError as error:  # a tiny pool less its held-out split cannot hold the initial batch
                entry["curve_skipped"] = str(error)
        report["regressors"][regressor] = entry
    return report


def compare_feature_sets(features: str) -> list[str]:
    """The feature sets :func:`compare_regressors` scores by default: the paper's embedding and ``features``."""
    return ["embedding"] if features == "embedding" else ["embedding", features]


def compare_steps(regressors: Sequence[str], features: str, curves: bool, holdout_features: Sequence[str] | None = None) -> int:
    """How many progress steps :func:`compare_regressors` reports."""
    return len(regressors) * (len(holdout_features or compare_feature_sets(features)) + int(curves))
