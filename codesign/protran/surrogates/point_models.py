"""Point regressors (no spread of their own) that the fold ensembles wrap: DT, AdaBoost, GBDT, SVR.

Each is fitted with scikit-learn and exported as arrays (tree nodes, boosting weights,
support vectors), and predicts from those arrays with numpy only, so a saved model is
JSON numbers and loading it runs no stored code. A test checks that the numpy
predictions equal scikit-learn's.

Hyperparameters (stated, as the paper gives none beyond the model families):

* ``dt``: a CART tree with at least 2 rows per leaf (a single-row leaf memorises noise);
* ``bdt``: AdaBoost.R2 (linear loss) of depth-4 trees, 30 rounds. The authors' code
  boosts *unlimited-depth* trees, which fit the data exactly in round one, so AdaBoost
  stops there and their BDT is a single tree; depth 4 keeps boosting meaningful;
* ``gbdt``: least-squares gradient boosting, 60 depth-3 trees at learning rate 0.15
  (scikit-learn's defaults are 100 trees at 0.1; fewer, larger steps keep the active-learning
  loop fast with the same training error on these data sizes);
* ``svr``: epsilon-SVR with an RBF kernel (``gamma = 1 / (d var(z))`` on standardised
  inputs, scikit-learn's ``scale``), ``C = 10``, ``epsilon = 0.05`` on standardised targets.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from codesign.protran.surrogates.base import Standardizer, SurrogateError, to_list

DT_MIN_SAMPLES_LEAF = 2
BDT_ROUNDS = 30
BDT_DEPTH = 4
GBDT_TREES = 60
GBDT_DEPTH = 3
GBDT_LEARNING_RATE = 0.15
SVR_C = 10.0
SVR_EPSILON = 0.05  # in units of the target's standard deviation


# -- trees as arrays -------------------------------------------------------------------


def export_tree(estimator: Any) -> dict:
    """A fitted scikit-learn regression tree as arrays (children, feature, threshold, value)."""
    tree = estimator.tree_
    return {
        "left": tree.children_left.astype(np.int64),
        "right": tree.children_right.astype(np.int64),
        "feature": tree.feature.astype(np.int64),
        "threshold": tree.threshold.astype(float),
        "value": tree.value.reshape(tree.node_count, -1)[:, 0].astype(float),
    }


def tree_state(tree: Mapping[str, np.ndarray]) -> dict:
    """JSON values of an exported tree."""
    return {key: to_list(value) for key, value in tree.items()}


def tree_from_state(state: Mapping[str, Any]) -> dict:
    """Arrays of an exported tree, checked for consistent node references."""
    tree = {
        "left": np.asarray(state["left"], dtype=np.int64),
        "right": np.asarray(state["right"], dtype=np.int64),
        "feature": np.asarray(state["feature"], dtype=np.int64),
        "threshold": np.asarray(state["threshold"], dtype=float),
        "value": np.asarray(state["value"], dtype=float),
    }
    nodes = tree["left"].shape[0]
    if any(array.shape != (nodes,) for array in tree.values()) or nodes == 0:
        raise SurrogateError("tree state: arrays of different lengths")
    inner = tree["left"] >= 0
    if np.any(tree["left"][inner] >= nodes) or np.any(tree["right"][inner] >= nodes) or np.any(tree["right"][inner] < 0):
        raise SurrogateError("tree state: child index out of range")
    return tree


def predict_tree(tree: Mapping[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """Leaf values of a tree for each row (scikit-learn's float32 comparison of features)."""
    X32 = np.asarray(X, dtype=np.float32).astype(np.float64)
    rows = np.arange(X32.shape[0])
    node = np.zeros(X32.shape[0], dtype=np.int64)
    for _ in range(tree["left"].shape[0]):
        left = tree["left"][node]
        inner = left >= 0
        if not inner.any():
            break
        feature = np.where(inner, tree["feature"][node], 0)
        go_left = X32[rows, feature] <= tree["threshold"][node]
        node = np.where(inner, np.where(go_left, left, tree["right"][node]), node)
    return tree["value"][node]


# -- point models -------------------------------------------------------------------------


class PointModel:
    """A regressor with ``fit``/``predict`` and an array state (no spread)."""

    kind = ""

    def fit(self, X: np.ndarray, y: np.ndarray, seed: int) -> "PointModel":
        """Fit on all rows."""
        raise NotImplementedError

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Point predictions."""
        raise NotImplementedError

    def state(self) -> dict:
        """JSON values."""
        raise NotImplementedError

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> "PointModel":
        """Inverse of :meth:`state`."""
        raise NotImplementedError


class TreeModel(PointModel):
    """A single CART regression tree."""

    kind = "dt"

    def fit(self, X: np.ndarray, y: np.ndarray, seed: int) -> "TreeModel":
        from sklearn.tree import DecisionTreeRegressor

        estimator = DecisionTreeRegressor(min_samples_leaf=DT_MIN_SAMPLES_LEAF, random_state=seed)
        self.tree = export_tree(estimator.fit(X, y))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return predict_tree(self.tree, X)

    def state(self) -> dict:
        return {"tree": tree_state(self.tree)}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> "TreeModel":
        model = cls()
        model.tree = tree_from_state(state["tree"])
        return model


class AdaBoostModel(PointModel):
    """AdaBoost.R2 of shallow trees; predicts the weighted median of the trees."""

    kind = "bdt"

    def fit(self, X: np.ndarray, y: np.ndarray, seed: int) -> "AdaBoostModel":
        from sklearn.ensemble import AdaBoostRegressor
        from sklearn.tree import DecisionTreeRegressor

        estimator = AdaBoostRegressor(
            DecisionTreeRegressor(max_depth=BDT_DEPTH), n_estimators=BDT_ROUNDS, loss="linear", random_state=seed
        ).fit(X, y)
        count = len(estimator.estimators_)
        self.trees = [export_tree(tree) for tree in estimator.estimators_]
        self.weights = np.asarray(estimator.estimator_weights_[:count], dtype=float)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        predictions = np.array([predict_tree(tree, X) for tree in self.trees]).T  # rows x trees
        order = np.argsort(predictions, axis=1)
        cdf = np.cumsum(self.weights[order], axis=1)
        median_index = (cdf >= 0.5 * cdf[:, -1:]).argmax(axis=1)
        rows = np.arange(predictions.shape[0])
        return predictions[rows, order[rows, median_index]]

    def state(self) -> dict:
        return {"trees": [tree_state(tree) for tree in self.trees], "weights": to_list(self.weights)}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> "AdaBoostModel":
        model = cls()
        model.trees = [tree_from_state(tree) for tree in state["trees"]]
        model.weights = np.asarray(state["weights"], dtype=float)
        if model.weights.shape != (len(model.trees),) or not model.trees:
            raise SurrogateError("bdt state: one weight per tree expected")
        return model


class GradientBoostingModel(PointModel):
    """Least-squares gradient-boosted trees: a constant plus the learning rate times each tree."""

    kind = "gbdt"

    def fit(self, X: np.ndarray, y: np.ndarray, seed: int) -> "GradientBoostingModel":
        from sklearn.ensemble import GradientBoostingRegressor

        estimator = GradientBoostingRegressor(
            n_estimators=GBDT_TREES, max_depth=GBDT_DEPTH, learning_rate=GBDT_LEARNING_RATE, random_state=seed
        ).fit(X, y)
        self.init = float(np.asarray(estimator.init_.constant_).ravel()[0])
        self.learning_rate = float(estimator.learning_rate)
        self.trees = [export_tree(stage[0]) for stage in estimator.estimators_]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        total = np.full(np.asarray(X).shape[0], self.init)
        for tree in self.trees:
            total += self.learning_rate * predict_tree(tree, X)
        return total

    def state(self) -> dict:
        return {"init": self.init, "learning_rate": self.learning_rate, "trees": [tree_state(t) for t in self.trees]}

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> "GradientBoostingModel":
        model = cls()
        model.init = float(state["init"])
        model.learning_rate = float(state["learning_rate"])
        model.trees = [tree_from_state(tree) for tree in state["trees"]]
        return model


class SupportVectorModel(PointModel):
    """Epsilon-SVR with an RBF kernel on standardised inputs and targets."""

    kind = "svr"

    def fit(self, X: np.ndarray, y: np.ndarray, seed: int) -> "SupportVectorModel":
        from sklearn.svm import SVR

        self.x_scaler = Standardizer.fit(X)
        self.y_scaler = Standardizer.fit(y[:, None])
        Z = self.x_scaler.transform(X)
        t = self.y_scaler.transform(y[:, None]).ravel()
        estimator = SVR(kernel="rbf", C=SVR_C, epsilon=SVR_EPSILON, gamma="scale").fit(Z, t)
        self.gamma = float(estimator._gamma)
        self.support = np.asarray(estimator.support_vectors_, dtype=float)
        self.dual = np.asarray(estimator.dual_coef_, dtype=float).ravel()
        self.intercept = float(np.asarray(estimator.intercept_).ravel()[0])
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        Z = self.x_scaler.transform(X)
        if self.support.shape[0] == 0:
            t = np.full(Z.shape[0], self.intercept)
        else:
            sq = (Z**2).sum(1)[:, None] + (self.support**2).sum(1)[None, :] - 2 * Z @ self.support.T
            t = np.exp(-self.gamma * np.maximum(sq, 0.0)) @ self.dual + self.intercept
        return t * float(self.y_scaler.scale[0]) + float(self.y_scaler.mean[0])

    def state(self) -> dict:
        return {
            "x_scaler": self.x_scaler.state(),
            "y_scaler": self.y_scaler.state(),
            "gamma": self.gamma,
            "support_vectors": to_list(self.support),
            "dual_coef": to_list(self.dual),
            "intercept": self.intercept,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> "SupportVectorModel":
        model = cls()
        model.x_scaler = Standardizer.from_state(state["x_scaler"])
        model.y_scaler = Standardizer.from_state(state["y_scaler"])
        model.gamma = float(state["gamma"])
        model.support = np.asarray(state["support_vectors"], dtype=float).reshape(-1, model.x_scaler.mean.shape[0])
        model.dual = np.asarray(state["dual_coef"], dtype=float)
        model.intercept = float(state["intercept"])
        if model.dual.shape != (model.support.shape[0],):
            raise SurrogateError("svr state: one dual coefficient per support vector expected")
        return model


POINT_MODELS = {cls.kind: cls for cls in (TreeModel, AdaBoostModel, GradientBoostingModel, SupportVectorModel)}
