"""The surrogate interface: fit on feature rows, predict a mean and a standard deviation.

Every surrogate

* standardises its inputs (and targets where the model benefits) with statistics of the
  training rows only;
* returns a **predictive** standard deviation of a new measurement: the spread of the
  value one would measure, model uncertainty plus the noise of the measurement itself,
  so that held-out points fall inside ``mean +- 1 sigma`` about 68% of the time when it is
  calibrated;
* says through ``query_by_uncertainty`` whether that spread varies with the input in an
  informative way (an epistemic part). Regressors whose spread is a constant residual
  spread (the paper's DT and SVR "cannot model uncertainty") are queried at random by
  the active-learning loop;
* computes out-of-fold predictions when ``fit`` is given fold ids (``oof_mean_``): the
  loop's validation MSE. Some surrogates get them for free from models they fit anyway
  (the jackknife ensembles); the others refit a clone per fold;
* exports its fitted parameters as plain JSON values (:meth:`state`) and is rebuilt from
  them without running stored code (:func:`codesign.protran.surrogates.registry.load`).

Seeds: every stochastic step draws from ``numpy.random.default_rng(seed)`` or passes
``seed`` as ``random_state``; the same data, hyperparameters and seed give the same model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator, Mapping

import numpy as np

MIN_SCALE = 1e-12  # columns with a smaller spread are left unscaled (they are constant)


class SurrogateError(ValueError):
    """A surrogate used before fitting, given bad data, or rebuilt from a bad state."""


@dataclass(frozen=True)
class Prediction:
    """Predictive mean and standard deviation, one entry per input row."""

    mean: np.ndarray
    std: np.ndarray


@dataclass(frozen=True)
class Standardizer:
    """Column-wise ``(x - mean) / scale`` with statistics of the training rows."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, values: np.ndarray) -> "Standardizer":
        """Statistics of ``values`` (rows are samples); constant columns keep scale 1."""
        values = np.asarray(values, dtype=float)
        mean = values.mean(axis=0)
        scale = values.std(axis=0)
        scale = np.where(scale > MIN_SCALE, scale, 1.0)
        return cls(mean, scale)

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Standardised copy of ``values``."""
        return (np.asarray(values, dtype=float) - self.mean) / self.scale

    def state(self) -> dict:
        """Plain JSON values."""
        return {"mean": np.atleast_1d(self.mean).tolist(), "scale": np.atleast_1d(self.scale).tolist()}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> "Standardizer":
        """Inverse of :meth:`state`."""
        return cls(np.asarray(state["mean"], dtype=float), np.asarray(state["scale"], dtype=float))


def check_xy(X: Any, y: Any | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """``X`` as a finite 2-D float array and ``y`` as a matching finite 1-D array."""
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[0] == 0:
        raise SurrogateError(f"expected a non-empty 2-D feature matrix, got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise SurrogateError("features contain NaN or infinite values")
    if y is None:
        return X, None
    y = np.asarray(y, dtype=float).ravel()
    if y.shape[0] != X.shape[0]:
        raise SurrogateError(f"{X.shape[0]} feature rows but {y.shape[0]} targets")
    if not np.all(np.isfinite(y)):
        raise SurrogateError("targets contain NaN or infinite values")
    return X, y


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Limit BLAS/OpenMP to one thread inside the block.

    The surrogates multiply small matrices (at most a few hundred rows); a second BLAS
    thread only adds synchronisation, and on a busy 2-core machine it made one GP
    likelihood evaluation 20x slower (128 ms instead of 6 ms at 190 rows). Parallel work
    is done by processes instead (``bench/protran_bench.py --jobs``).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        yield
        return
    with threadpool_limits(limits=1):
        yield


def fold_ids(n: int, k: int, seed: int) -> np.ndarray:
    """Balanced fold ids 0..k-1 of ``n`` rows, shuffled reproducibly by ``seed``."""
    if n < 2:
        raise SurrogateError(f"cross-validation needs at least 2 rows, got {n}")
    k = min(k, n)
    order = np.random.default_rng(seed).permutation(n)
    ids = np.empty(n, dtype=np.int64)
    ids[order] = np.arange(n) % k
    return ids


def to_list(array: np.ndarray) -> list:
    """A numpy array as nested lists of Python numbers (JSON-ready)."""
    return np.asarray(array).tolist()


class Surrogate(ABC):
    """A regressor of one measure with a predictive standard deviation."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    query_by_uncertainty: ClassVar[bool] = True

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)
        self.oof_mean_: np.ndarray | None = None
        self.fitted_ = False
        self.warm_start: Mapping[str, Any] | None = None
        self.warm_state_: dict | None = None

    def set_warm_start(self, hint: Mapping[str, Any] | None) -> None:
        """Starting points from the previous fit of a campaign (``warm_state_`` of that fit), if the model uses any.

        ``hint["full"]`` seeds the fit on all rows, ``hint["folds"][k]`` the fit without
        fold ``k``. Fold memberships never change in a campaign, so the fold-``k`` model of
        the previous iteration never saw a row of fold ``k``: chaining it leaks nothing.
        """
        self.warm_start = None if hint is None else dict(hint)

    # -- hyperparameters ------------------------------------------------------------

    def params(self) -> dict:
        """Hyperparameters (JSON values) that rebuild an unfitted copy with ``type(self)(**params)``."""
        return {"seed": self.seed}

    def clone(self, seed: int | None = None) -> "Surrogate":
        """An unfitted copy with the same hyperparameters (and another seed if given)."""
        params = self.params()
        if seed is not None:
            params["seed"] = int(seed)
        return type(self)(**params)

    # -- fitting and prediction -----------------------------------------------------

    def fit(self, X: Any, y: Any, folds: np.ndarray | None = None) -> "Surrogate":
        """Fit on all rows; with ``folds``, also set ``oof_mean_`` (out-of-fold predictions)."""
        X, y = check_xy(X, y)
        self._fit(X, y)
        self.fitted_ = True
        self.oof_mean_ = None if folds is None else self._out_of_fold(X, y, np.asarray(folds))
        return self

    @abstractmethod
    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        """Fit on all rows (inputs already checked)."""

    def _out_of_fold(self, X: np.ndarray, y: np.ndarray, folds: np.ndarray) -> np.ndarray:
        """Predictions of each row by a clone fitted without that row's fold."""
        if folds.shape[0] != X.shape[0]:
            raise SurrogateError(f"{folds.shape[0]} fold ids for {X.shape[0]} rows")
        out = np.empty(X.shape[0])
        for fold in np.unique(folds):
            held = folds == fold
            model = self.clone(seed=self.seed + 1 + int(fold))
            model.fit(X[~held], y[~held])
            out[held] = model.predict(X[held]).mean
        return out

    def predict(self, X: Any) -> Prediction:
        """Predictive mean and standard deviation of each row."""
        if not self.fitted_:
            raise SurrogateError(f"the {self.name} surrogate is not fitted")
        X, _ = check_xy(X)
        mean, std = self._predict(X)
        return Prediction(np.asarray(mean, dtype=float), np.maximum(np.asarray(std, dtype=float), 0.0))

    @abstractmethod
    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation (inputs already checked)."""

    # -- persistence ------------------------------------------------------------------

    def state(self) -> dict:
        """Fitted parameters and hyperparameters as plain JSON values."""
        if not self.fitted_:
            raise SurrogateError(f"the {self.name} surrogate is not fitted")
        return {"regressor": self.name, "params": self.params(), "fitted": self._state()}

    @abstractmethod
    def _state(self) -> dict:
        """Fitted parameters as JSON values."""

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> "Surrogate":
        """Rebuild a fitted surrogate from :meth:`state` (numbers only; nothing is executed)."""
        model = cls(**dict(state["params"]))
        model._load(state["fitted"])
        model.fitted_ = True
        return model

    @abstractmethod
    def _load(self, fitted: Mapping[str, Any]) -> None:
        """Restore fitted parameters from JSON values."""
