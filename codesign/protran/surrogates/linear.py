"""LR: Bayesian linear regression with evidence-maximised priors (MacKay 1992).

The paper's LR has no uncertainty and is queried at random. A Bayesian linear model
costs the same and has a real posterior: with weight prior ``N(0, 1/alpha)`` and noise
precision ``beta`` (both set by maximising the marginal likelihood, as scikit-learn's
``BayesianRidge`` does), the predictive variance of a new measurement at ``x`` is
``1/beta + x^T S x + 1/(n beta)`` (``S`` the weight posterior covariance, the last term
the uncertainty of the fitted intercept, i.e. the target mean). The spread grows away
from the training rows, so the loop queries LR by uncertainty too.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from codesign.protran.surrogates.base import Standardizer, Surrogate, to_list

EVIDENCE_ITERATIONS = 300  # fixed-point updates of alpha and beta
EVIDENCE_TOLERANCE = 1e-8  # relative change of alpha and beta that stops the updates
PRECISION_FLOOR = 1e-10  # keeps alpha and beta positive


class BayesianLinearSurrogate(Surrogate):
    """Linear regression with a Gaussian posterior over the weights (``lr``)."""

    name = "lr"
    description = "Bayesian linear regression (evidence-maximised ridge); posterior predictive spread"
    query_by_uncertainty = True

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        self.x_scaler = Standardizer.fit(X)
        Z = self.x_scaler.transform(X)
        n = Z.shape[0]
        self.y_mean = float(y.mean())
        t = y - self.y_mean
        _, s, vt = np.linalg.svd(Z, full_matrices=False)
        eig = s**2
        proj = vt @ (Z.T @ t)  # coordinates of Z^T t in the right singular basis
        var_t = max(float(t.var()), PRECISION_FLOOR)
        alpha, beta = 1.0, 1.0 / var_t
        for _ in range(EVIDENCE_ITERATIONS):
            weights_coords = beta * proj / (alpha + beta * eig)
            w = vt.T @ weights_coords
            gamma = float(np.sum(beta * eig / (alpha + beta * eig)))
            residual = float(np.sum((t - Z @ w) ** 2))
            new_alpha = max(gamma / max(float(w @ w), PRECISION_FLOOR), PRECISION_FLOOR)
            new_beta = max((n - gamma) / max(residual, PRECISION_FLOOR * n), PRECISION_FLOOR)
            done = abs(new_alpha - alpha) <= EVIDENCE_TOLERANCE * alpha and abs(new_beta - beta) <= EVIDENCE_TOLERANCE * beta
            alpha, beta = new_alpha, new_beta
            if done:
                break
        weights_coords = beta * proj / (alpha + beta * eig)
        self.coef = vt.T @ weights_coords
        # Posterior covariance (alpha I + beta Z^T Z)^-1, exact on the span of Z and 1/alpha off it.
        inv = 1.0 / (alpha + beta * eig)
        self.covariance = (vt.T * (inv - 1.0 / alpha)) @ vt + np.eye(Z.shape[1]) / alpha
        self.alpha, self.beta, self.n_train = float(alpha), float(beta), int(n)

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        Z = self.x_scaler.transform(X)
        mean = Z @ self.coef + self.y_mean
        variance = 1.0 / self.beta + np.einsum("ij,jk,ik->i", Z, self.covariance, Z) + 1.0 / (self.n_train * self.beta)
        return mean, np.sqrt(variance)

    def _state(self) -> dict:
        return {
            "x_scaler": self.x_scaler.state(),
            "y_mean": self.y_mean,
            "coef": to_list(self.coef),
            "covariance": to_list(self.covariance),
            "alpha": self.alpha,
            "beta": self.beta,
            "n_train": self.n_train,
        }

    def _load(self, fitted: Mapping[str, Any]) -> None:
        self.x_scaler = Standardizer.from_state(fitted["x_scaler"])
        self.y_mean = float(fitted["y_mean"])
        self.coef = np.asarray(fitted["coef"], dtype=float)
        self.covariance = np.asarray(fitted["covariance"], dtype=float)
        self.alpha, self.beta, self.n_train = float(fitted["alpha"]), float(fitted["beta"]), int(fitted["n_train"])
