"""Error, calibration and ranking metrics of surrogate predictions.

* ``mse``: mean squared error (of normalised values where the caller normalised them);
* ``coverage``: the share of held-out measurements inside ``mean +- 1 sigma`` and
  ``mean +- 2 sigma``; a calibrated Gaussian predictive distribution gives 68.3% and
  95.4% (``GAUSSIAN_COVERAGE``);
* ``within_relative``: the share of predictions within +-10% of the measured value
  (nn-Meter's accuracy measure);
* ranking (EdgeTran Sec. IV-A3): ``best_of_groups`` checks, for every group of ``k``
  models, whether the model predicted best is the best one; ``ndcg`` is the normalised
  discounted cumulative gain of the predicted order with logarithmic discounts
  ``1 / log2(rank + 1)``. The paper does not say which gains it uses. Raw GLUE scores
  (0.70 to 0.84 here) make every order score above 0.99, so the gain of a model is its
  score minus the lowest true score of the set: the worst model gains nothing, and
  swapping the best and the worst costs what it should.
"""

from __future__ import annotations

import itertools
import math
from typing import Sequence

import numpy as np

GAUSSIAN_COVERAGE = {"within_1sigma": 0.6827, "within_2sigma": 0.9545}
RANDOM_PERMUTATIONS_EXACT_UP_TO = 8  # items; beyond this the random-order nDCG is estimated by sampling
RANDOM_PERMUTATION_SAMPLES = 20000


def mse(predicted: Sequence[float], measured: Sequence[float]) -> float:
    """Mean squared error."""
    predicted, measured = np.asarray(predicted, dtype=float), np.asarray(measured, dtype=float)
    return float(np.mean((predicted - measured) ** 2))


def coverage(measured: Sequence[float], mean: Sequence[float], std: Sequence[float]) -> dict[str, float]:
    """Shares of measurements inside mean +- 1 and +- 2 predictive standard deviations."""
    measured, mean, std = (np.asarray(a, dtype=float) for a in (measured, mean, std))
    distance = np.abs(measured - mean)
    return {
        "within_1sigma": float(np.mean(distance <= std)),
        "within_2sigma": float(np.mean(distance <= 2 * std)),
    }


def gaussian_nll(measured: Sequence[float], mean: Sequence[float], std: Sequence[float]) -> float:
    """Mean negative log-likelihood of the measurements under N(mean, std^2)."""
    measured, mean, std = (np.asarray(a, dtype=float) for a in (measured, mean, std))
    std = np.maximum(std, 1e-12)
    return float(np.mean(0.5 * np.log(2 * np.pi * std**2) + 0.5 * ((measured - mean) / std) ** 2))


def within_relative(predicted: Sequence[float], measured: Sequence[float], tolerance: float = 0.10) -> float:
    """Share of predictions within +-tolerance (relative) of the measured value."""
    predicted, measured = np.asarray(predicted, dtype=float), np.asarray(measured, dtype=float)
    return float(np.mean(np.abs(predicted - measured) <= tolerance * np.abs(measured)))


def dcg(gains_in_order: Sequence[float]) -> float:
    """Discounted cumulative gain of gains listed in ranked order (rank 1 first)."""
    return float(sum(g / math.log2(rank + 2) for rank, g in enumerate(gains_in_order)))


def ndcg(measured: Sequence[float], predicted: Sequence[float]) -> float:
    """nDCG of ranking by ``predicted`` (higher is better), gains = measured - min(measured)."""
    measured, predicted = np.asarray(measured, dtype=float), np.asarray(predicted, dtype=float)
    gains = measured - measured.min()
    ideal = dcg(np.sort(gains)[::-1])
    if ideal <= 0:
        return 1.0
    order = np.argsort(-predicted, kind="stable")
    return dcg(gains[order]) / ideal


def random_ndcg(measured: Sequence[float], seed: int = 0) -> float:
    """Expected nDCG of a uniformly random order (exact for small sets, sampled otherwise)."""
    measured = np.asarray(measured, dtype=float)
    n = measured.shape[0]
    if n <= RANDOM_PERMUTATIONS_EXACT_UP_TO:
        values = [ndcg(measured, -np.argsort(perm)) for perm in itertools.permutations(range(n))]
        return float(np.mean(values))
    rng = np.random.default_rng(seed)
    return float(np.mean([ndcg(measured, rng.random(n)) for _ in range(RANDOM_PERMUTATION_SAMPLES)]))


def best_of_groups(measured: Sequence[float], predicted: Sequence[float], k: int = 3) -> dict:
    """Over all k-subsets: how often the predicted best is the true best (random guessing: 1/k)."""
    measured, predicted = np.asarray(measured, dtype=float), np.asarray(predicted, dtype=float)
    groups = list(itertools.combinations(range(measured.shape[0]), k))
    if not groups:
        return {"groups": 0, "accuracy": None, "random": 1.0 / k}
    hits = sum(int(max(g, key=lambda i: predicted[i]) == max(g, key=lambda i: measured[i])) for g in groups)
    return {"groups": len(groups), "accuracy": hits / len(groups), "random": 1.0 / k}
