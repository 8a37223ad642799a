"""Spread for point regressors from K-fold refits: grouped jackknife plus out-of-fold residuals.

A point regressor (tree, boosted trees, SVR) is fitted on all rows (the mean predictor)
and on each of K fold-complements. The fold models give two things:

* **out-of-fold residuals** ``r_i = y_i - f_{-k(i)}(x_i)``: the loop's validation error
  comes from them at no extra cost, and their mean square is the error a new
  measurement sees (noise plus model error);
* for the boosted ensembles (``bdt``, ``gbdt``), an **epistemic spread**: the grouped
  (delete-a-fold) jackknife variance of the full-data prediction,
  ``v(x) = (K - 1) / K * sum_k (f_k(x) - mean_k f_k(x))^2``, the standard jackknife
  estimate of the estimator's sampling variance (Efron & Stein 1981), in the spirit of
  CV+ prediction intervals (Barber et al. 2021). The predictive variance of a new
  measurement is ``v(x) + s2`` with ``s2 = max(mean r_i^2 - mean_i v(x_i), 0)``: the part
  of the out-of-fold error the jackknife does not already explain (Heskes 1997 splits
  bootstrap variance and residual noise the same way).

This is a spread of whole estimators fitted on different data, not the spread of
boosting stages (stages fit residuals of each other, so their spread is no predictive
variance; the authors' code used it).

``dt`` and ``svr`` keep the paper's status: "cannot model uncertainty". Their spread is
the constant out-of-fold RMSE (honest for calibration, useless for ranking), so the loop
queries them at random.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from codesign.protran.surrogates.base import Surrogate, SurrogateError, fold_ids, to_list
from codesign.protran.surrogates.point_models import POINT_MODELS, PointModel

DEFAULT_FOLDS = 5


class FoldEnsembleSurrogate(Surrogate):
    """A point regressor, its K fold refits and their residual spread."""

    point_kind = ""
    epistemic = False

    def __init__(self, seed: int = 0, folds: int = DEFAULT_FOLDS) -> None:
        super().__init__(seed)
        if int(folds) < 2:
            raise SurrogateError(f"{self.name}: at least 2 folds needed, got {folds}")
        self.folds = int(folds)

    def params(self) -> dict:
        return {"seed": self.seed, "folds": self.folds}

    def _new_point(self) -> PointModel:
        return POINT_MODELS[self.point_kind]()

    def fit(self, X: Any, y: Any, folds: np.ndarray | None = None) -> "FoldEnsembleSurrogate":
        """Fit the full model and the fold models; ``oof_mean_`` is always set (on the given folds if any)."""
        super().fit(X, y, folds=None)
        X, y = np.asarray(X, dtype=float), np.asarray(y, dtype=float).ravel()
        ids = np.asarray(folds) if folds is not None else fold_ids(X.shape[0], self.folds, self.seed)
        if ids.shape[0] != X.shape[0]:
            raise SurrogateError(f"{ids.shape[0]} fold ids for {X.shape[0]} rows")
        oof = np.empty(X.shape[0])
        members = []
        for fold in np.unique(ids):
            held = ids == fold
            if held.all():  # a single fold: nothing to train on
                raise SurrogateError(f"{self.name}: need at least 2 folds of rows")
            member = self._new_point().fit(X[~held], y[~held], self.seed + 1 + int(fold))
            oof[held] = member.predict(X[held])
            members.append(member)
        self.oof_mean_ = oof
        residual_ms = float(np.mean((y - oof) ** 2))
        if self.epistemic:
            self.members = members
            jack_at_train = self._jackknife_variance(X)
            self.residual_variance = max(residual_ms - float(np.mean(jack_at_train)), 0.0)
        else:
            self.members = []
            self.residual_variance = residual_ms
        return self

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        self.point = self._new_point().fit(X, y, self.seed)

    def _jackknife_variance(self, X: np.ndarray) -> np.ndarray:
        predictions = np.array([member.predict(X) for member in self.members])
        k = predictions.shape[0]
        return (k - 1) / k * ((predictions - predictions.mean(axis=0)) ** 2).sum(axis=0)

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean = self.point.predict(X)
        variance = np.full(X.shape[0], self.residual_variance)
        if self.epistemic:
            variance = variance + self._jackknife_variance(X)
        return mean, np.sqrt(variance)

    def _state(self) -> dict:
        return {
            "point": self.point.state(),
            "members": [member.state() for member in self.members],
            "residual_variance": self.residual_variance,
            "oof_mean": None if self.oof_mean_ is None else to_list(self.oof_mean_),
        }

    def _load(self, fitted: Mapping[str, Any]) -> None:
        cls = POINT_MODELS[self.point_kind]
        self.point = cls.from_state(fitted["point"])
        self.members = [cls.from_state(member) for member in fitted["members"]]
        if self.epistemic and len(self.members) < 2:
            raise SurrogateError(f"{self.name} state: the jackknife needs at least 2 fold models")
        self.residual_variance = float(fitted["residual_variance"])
        if not np.isfinite(self.residual_variance) or self.residual_variance < 0:
            raise SurrogateError(f"{self.name} state: residual variance must be a non-negative number")


class DecisionTreeSurrogate(FoldEnsembleSurrogate):
    """DT: one CART tree; constant out-of-fold spread (queried at random)."""

    name = "dt"
    description = "decision tree; constant out-of-fold residual spread (no epistemic part: random queries)"
    point_kind = "dt"
    epistemic = False
    query_by_uncertainty = False


class SupportVectorSurrogate(FoldEnsembleSurrogate):
    """SVR: RBF support-vector regression; constant out-of-fold spread (queried at random)."""

    name = "svr"
    description = "RBF support-vector regression; constant out-of-fold residual spread (random queries)"
    point_kind = "svr"
    epistemic = False
    query_by_uncertainty = False


class BoostedTreesSurrogate(FoldEnsembleSurrogate):
    """BDT: AdaBoost.R2 trees; jackknife spread over fold refits plus residual noise."""

    name = "bdt"
    description = "AdaBoost.R2 trees; grouped-jackknife spread of fold refits + out-of-fold residual noise"
    point_kind = "bdt"
    epistemic = True
    query_by_uncertainty = True


class GradientBoostedTreesSurrogate(FoldEnsembleSurrogate):
    """GBDT: gradient-boosted trees; jackknife spread over fold refits plus residual noise."""

    name = "gbdt"
    description = "gradient-boosted trees; grouped-jackknife spread of fold refits + out-of-fold residual noise"
    point_kind = "gbdt"
    epistemic = True
    query_by_uncertainty = True
