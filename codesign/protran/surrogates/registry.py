"""Regressor names, construction, and saving/loading fitted surrogates as JSON.

A saved file holds numbers only (tree nodes, kernel hyperparameters, weights, scalers)
and the names of the classes to rebuild, looked up in :data:`REGRESSORS`; loading it
parses JSON and never unpickles or evaluates anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from codesign.atomic_io import write_text_atomically
from codesign.protran.surrogates.base import Surrogate, SurrogateError
from codesign.protran.surrogates.fold_ensembles import (
    BoostedTreesSurrogate,
    DecisionTreeSurrogate,
    GradientBoostedTreesSurrogate,
    SupportVectorSurrogate,
)
from codesign.protran.surrogates.gaussian_process import GaussianProcessSurrogate
from codesign.protran.surrogates.linear import BayesianLinearSurrogate
from codesign.protran.surrogates.neural import HeteroscedasticEnsembleSurrogate

REGRESSORS: dict[str, type[Surrogate]] = {
    cls.name: cls
    for cls in (
        BayesianLinearSurrogate,
        GaussianProcessSurrogate,
        SupportVectorSurrogate,
        DecisionTreeSurrogate,
        BoostedTreesSurrogate,
        GradientBoostedTreesSurrogate,
        HeteroscedasticEnsembleSurrogate,
    )
}
SAVE_FORMAT = "edgetran-protran-surrogates"
SAVE_VERSION = 1


def check_regressor(name: str) -> str:
    """Return ``name`` if it is a known regressor, else raise SurrogateError listing them."""
    if name not in REGRESSORS:
        raise SurrogateError(f"unknown regressor {name!r} (choose from {', '.join(REGRESSORS)})")
    return name


def parse_regressors(text: str) -> list[str]:
    """A comma-separated list of regressor names, checked, duplicates removed, order kept."""
    names = []
    for part in text.split(","):
        part = part.strip()
        if part and part not in names:
            names.append(check_regressor(part))
    if not names:
        raise SurrogateError("no regressor named")
    return names


def make_surrogate(name: str, seed: int = 0, features: str | None = None) -> Surrogate:
    """An unfitted surrogate of the named regressor, set up for a feature set where that matters.

    With ``workload`` features the GP's linear kernel part reads the whole-model totals
    only (FLOPs, parameters, bytes, layers, median hidden size, heads): on the published
    pools, a linear part over all 106 columns lets 16 samples be interpolated exactly
    and extrapolated wildly (held-out MSE 1.4 to 2x higher at 16 to 32 samples).
    """
    cls = REGRESSORS[check_regressor(name)]
    if cls is GaussianProcessSurrogate and features is not None:
        from codesign.protran.features import linear_feature_columns

        return cls(seed=seed, linear_columns=linear_feature_columns(features))
    return cls(seed=seed)


def surrogate_from_state(state: Mapping[str, Any]) -> Surrogate:
    """Rebuild one fitted surrogate from its :meth:`Surrogate.state`."""
    if not isinstance(state, Mapping) or "regressor" not in state:
        raise SurrogateError("not a surrogate state (no 'regressor')")
    cls = REGRESSORS[check_regressor(str(state["regressor"]))]
    try:
        return cls.from_state(state)
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, SurrogateError):
            raise
        raise SurrogateError(f"{state['regressor']} state: {error}") from None


def save_surrogates(path: str | Path, surrogates: Mapping[str, Surrogate], meta: Mapping[str, Any]) -> None:
    """Write fitted surrogates (one per measure) and metadata to a JSON file, atomically."""
    path = Path(path)
    document = {
        "format": SAVE_FORMAT,
        "version": SAVE_VERSION,
        "meta": dict(meta),
        "surrogates": {measure: model.state() for measure, model in surrogates.items()},
    }
    text = json.dumps(document, allow_nan=False)
    write_text_atomically(path, text)


def load_surrogates(path: str | Path) -> tuple[dict[str, Surrogate], dict]:
    """Read a file written by :func:`save_surrogates`: the surrogates and the metadata."""
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except FileNotFoundError:
        raise SurrogateError(f"{path}: file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise SurrogateError(f"{path}: not a JSON surrogate file ({error})") from None
    if not isinstance(document, dict) or document.get("format") != SAVE_FORMAT:
        raise SurrogateError(f"{path}: not a ProTran surrogate file (format {SAVE_FORMAT!r} expected)")
    if document.get("version") != SAVE_VERSION:
        raise SurrogateError(f"{path}: unsupported version {document.get('version')!r} (expected {SAVE_VERSION})")
    surrogates = {str(measure): surrogate_from_state(state) for measure, state in dict(document.get("surrogates", {})).items()}
    return surrogates, dict(document.get("meta") or {})
