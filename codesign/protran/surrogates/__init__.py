"""Seven regressors with one interface: ``fit(X, y)``, ``predict(X) -> (mean, std)``, JSON state.

``lr`` Bayesian linear regression, ``gpr`` Gaussian process, ``svr`` support-vector
regression, ``dt`` decision tree, ``bdt`` AdaBoost trees, ``gbdt`` gradient-boosted
trees, ``nn`` heteroscedastic MLP ensemble. See :mod:`.base` for the contract.
"""

from codesign.protran.surrogates.base import Prediction, Surrogate, SurrogateError, fold_ids
from codesign.protran.surrogates.registry import (
    REGRESSORS,
    check_regressor,
    load_surrogates,
    make_surrogate,
    parse_regressors,
    save_surrogates,
    surrogate_from_state,
)

__all__ = [
    "Prediction",
    "REGRESSORS",
    "Surrogate",
    "SurrogateError",
    "check_regressor",
    "fold_ids",
    "load_surrogates",
    "make_surrogate",
    "parse_regressors",
    "save_surrogates",
    "surrogate_from_state",
]
