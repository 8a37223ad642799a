"""NN: a heteroscedastic deep ensemble in numpy (the paper's BOSHNAS role, Sec. III-B2).

Each of ``members`` small MLPs (inputs -> 32 -> 32 -> 2, tanh) outputs a mean and a log
variance and is trained on the Gaussian negative log-likelihood
``0.5 * (log s2 + (y - mu)^2 / s2)`` with Adam and a little weight decay (Lakshminarayanan
et al. 2017). The members differ by their seeded initialisation. The prediction is the
ensemble's Gaussian mixture: mean ``mean_m mu_m``; variance ``mean_m s2_m`` (aleatoric: the
noise the members learnt) plus ``var_m mu_m`` (epistemic: their disagreement).

Training, full batch: the first ``warmup`` epochs fit the means alone (squared error),
then all outputs on the NLL; a variance fitted from the start tends to swallow the
error of an untrained mean. Log variances are clipped to ``[-9, 3]`` (standardised
targets), so no member claims a noise below 1% of the target's spread.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from codesign.protran.surrogates.base import Standardizer, Surrogate, SurrogateError, to_list

HIDDEN_UNITS = 32
LOG_VARIANCE_MIN = -9.0  # standardised-target log variance floor (sigma >= 1.1% of the target std)
LOG_VARIANCE_MAX = 3.0
ADAM_BETAS = (0.9, 0.999)
ADAM_EPSILON = 1e-8
PARAMETER_NAMES = ("w1", "b1", "w2", "b2", "w3", "b3")


class HeteroscedasticEnsembleSurrogate(Surrogate):
    """An ensemble of mean-and-variance MLPs trained on the Gaussian NLL (``nn``)."""

    name = "nn"
    description = "heteroscedastic MLP deep ensemble (mean + aleatoric variance; member spread = epistemic)"
    query_by_uncertainty = True

    def __init__(
        self,
        seed: int = 0,
        members: int = 5,
        epochs: int = 400,
        warmup: int = 150,
        learning_rate: float = 0.01,
        weight_decay: float = 1e-3,
    ) -> None:
        super().__init__(seed)
        if int(members) < 2 or int(epochs) < 1 or not 0 <= int(warmup) <= int(epochs):
            raise SurrogateError("nn: need members >= 2, epochs >= 1 and 0 <= warmup <= epochs")
        self.members = int(members)
        self.epochs = int(epochs)
        self.warmup = int(warmup)
        self.learning_rate = float(learning_rate)
        self.weight_decay = float(weight_decay)

    def params(self) -> dict:
        return {
            "seed": self.seed,
            "members": self.members,
            "epochs": self.epochs,
            "warmup": self.warmup,
            "learning_rate": self.learning_rate,
            "weight_decay": self.weight_decay,
        }

    def _init_weights(self, d: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        m, h = self.members, HIDDEN_UNITS

        def glorot(fan_in: int, fan_out: int) -> np.ndarray:
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            return rng.uniform(-limit, limit, size=(m, fan_in, fan_out))

        return {
            "w1": glorot(d, h), "b1": np.zeros((m, h)),
            "w2": glorot(h, h), "b2": np.zeros((m, h)),
            "w3": glorot(h, 2), "b3": np.zeros((m, 2)),
        }

    @staticmethod
    def _forward(weights: Mapping[str, np.ndarray], Z: np.ndarray) -> tuple[np.ndarray, ...]:
        h1 = np.tanh(np.einsum("nd,mdh->mnh", Z, weights["w1"]) + weights["b1"][:, None, :])
        h2 = np.tanh(np.einsum("mnh,mhk->mnk", h1, weights["w2"]) + weights["b2"][:, None, :])
        out = np.einsum("mnk,mko->mno", h2, weights["w3"]) + weights["b3"][:, None, :]
        return h1, h2, out

    def _fit(self, X: np.ndarray, y: np.ndarray) -> None:
        self.x_scaler = Standardizer.fit(X)
        self.y_scaler = Standardizer.fit(y[:, None])
        Z = self.x_scaler.transform(X)
        t = self.y_scaler.transform(y[:, None]).ravel()
        n = Z.shape[0]
        weights = self._init_weights(Z.shape[1])
        first = {k: np.zeros_like(v) for k, v in weights.items()}
        second = {k: np.zeros_like(v) for k, v in weights.items()}
        beta1, beta2 = ADAM_BETAS
        for step in range(1, self.epochs + 1):
            h1, h2, out = self._forward(weights, Z)
            mu, raw = out[..., 0], out[..., 1]
            log_var = np.clip(raw, LOG_VARIANCE_MIN, LOG_VARIANCE_MAX)
            error = mu - t[None, :]
            grad_out = np.zeros_like(out)
            if step <= self.warmup:
                grad_out[..., 0] = error / n
            else:
                inv_var = np.exp(-log_var)
                grad_out[..., 0] = error * inv_var / n
                inside = (raw > LOG_VARIANCE_MIN) & (raw < LOG_VARIANCE_MAX)
                grad_out[..., 1] = 0.5 * (1.0 - error**2 * inv_var) / n * inside
            grads = {
                "w3": np.einsum("mnk,mno->mko", h2, grad_out),
                "b3": grad_out.sum(axis=1),
            }
            d_h2 = np.einsum("mno,mko->mnk", grad_out, weights["w3"]) * (1.0 - h2**2)
            grads["w2"] = np.einsum("mnh,mnk->mhk", h1, d_h2)
            grads["b2"] = d_h2.sum(axis=1)
            d_h1 = np.einsum("mnk,mhk->mnh", d_h2, weights["w2"]) * (1.0 - h1**2)
            grads["w1"] = np.einsum("nd,mnh->mdh", Z, d_h1)
            grads["b1"] = d_h1.sum(axis=1)
            for key in ("w1", "w2", "w3"):
                grads[key] = grads[key] + self.weight_decay * weights[key]
            for key, grad in grads.items():
                first[key] = beta1 * first[key] + (1 - beta1) * grad
                second[key] = beta2 * second[key] + (1 - beta2) * grad**2
                corrected = first[key] / (1 - beta1**step)
                scale = np.sqrt(second[key] / (1 - beta2**step)) + ADAM_EPSILON
                weights[key] = weights[key] - self.learning_rate * corrected / scale
        self.weights = weights

    def member_predictions(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each member's mean and variance, in target units: two ``(members, rows)`` arrays."""
        Z = self.x_scaler.transform(np.asarray(X, dtype=float))
        _, _, out = self._forward(self.weights, Z)
        scale = float(self.y_scaler.scale[0])
        mu = out[..., 0] * scale + float(self.y_scaler.mean[0])
        variance = np.exp(np.clip(out[..., 1], LOG_VARIANCE_MIN, LOG_VARIANCE_MAX)) * scale**2
        return mu, variance

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu, variance = self.member_predictions(X)
        mean = mu.mean(axis=0)
        total = variance.mean(axis=0) + mu.var(axis=0)
        return mean, np.sqrt(total)

    def _state(self) -> dict:
        return {
            "x_scaler": self.x_scaler.state(),
            "y_scaler": self.y_scaler.state(),
            "weights": {key: to_list(self.weights[key]) for key in PARAMETER_NAMES},
        }

    def _load(self, fitted: Mapping[str, Any]) -> None:
        self.x_scaler = Standardizer.from_state(fitted["x_scaler"])
        self.y_scaler = Standardizer.from_state(fitted["y_scaler"])
        self.weights = {key: np.asarray(fitted["weights"][key], dtype=float) for key in PARAMETER_NAMES}
        d = self.x_scaler.mean.shape[0]
        expected = {
            "w1": (self.members, d, HIDDEN_UNITS), "b1": (self.members, HIDDEN_UNITS),
            "w2": (self.members, HIDDEN_UNITS, HIDDEN_UNITS), "b2": (self.members, HIDDEN_UNITS),
            "w3": (self.members, HIDDEN_UNITS, 2), "b3": (self.members, 2),
        }
        for key, shape in expected.items():
            if self.weights[key].shape != shape:
                raise SurrogateError(f"nn state: {key} has shape {self.weights[key].shape}, expected {shape}")
