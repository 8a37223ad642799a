"""The active-learning loop of ProTran (EdgeTran Fig. 6, Sec. III-B2).

1. **Initial batch**: ``initial`` (16) architectures drawn by Latin hypercube sampling
   of the design space (:mod:`codesign.sampling`, seeded). A pool-based campaign can
   only evaluate the pool's architectures, so each sampled embedding is replaced by the
   nearest not-yet-chosen pool architecture (Euclidean distance of embeddings scaled by
   their upper bounds, as in :mod:`codesign.diversity`).
2. **Fit** one surrogate per measure on the evaluated architectures.
3. **Validate** and stop when the validation MSE of every measure is below
   ``threshold`` (0.5%) for ``patience`` consecutive fits, when the budget is spent, or
   when the pool is exhausted. The paper's text stops the first time (``patience=1``);
   the authors' code waits until 10 more fits were below the threshold. The default is
   5 consecutive fits: a 5-fold estimate on 16 to 30 samples dips below the threshold by
   chance. On the M1 CPU pool, seed 1 stopped at the initial 16 samples with
   ``patience=1`` while its MSE on the 67 never-queried architectures was 0.0069 / 0.0067
   / 0.0186 (latency / energy / peak power), above the threshold for all three; with 5,
   no run stopped before 29 samples.
4. **Query** the candidate with the highest normalised predictive standard deviation
   summed over latency, energy and peak power; regressors whose spread is not
   informative (``dt``, ``svr``) query a seeded random candidate instead. Evaluate it, go to 2.

**Normalisation.** By default (``normalisation="running-max"``), before every fit each
measure is divided by its maximum over *all* evaluated architectures so far, and every
sample uses that same divisor (the paper: "we divide the latency values by the maximum
latency encountered"). ``normalisation="authors"`` (a clearly labelled option, and part of
``--preset paper``) divides by the device's ``max_values.json`` for the whole campaign,
as the authors' code did (2x the first 16 records' maximum for peak power on 6 of 7
devices). Measured against the whole-pool maximum, those divisors make MSEs 2.1-7.7x
smaller on six devices (latency/energy/peak power: RPi 6.7/6.5/3.9x, Jetson GPU
7.4/7.7/4.0x, NCS 4/4/4x, M1 CPU 3.2/2.2/3.5x, M1 GPU 2.3/2.1/3.5x, A100 2.6/2.6/2.9x);
on the Jetson Nano CPU the stored latency and energy maxima are below the pool's, so its
latency and energy MSEs are 2.5-2.9x *larger* (peak power 3.9x smaller). With them,
predicting the mean already passes the 0.5% threshold for peak power on most devices,
which is why every validation MSE is reported beside the mean predictor's and R^2.

**Held-out split.** Where the evaluator can tell the truth of any pool architecture (a
published pool), a seeded ``holdout`` share (20%) of the pool is drawn *before* the
campaign starts and is never queried; every fit scores it (``held_out`` in each history
record: MSE divided by the whole pool's maxima, so that campaigns with different
normalisations and query strategies compare; the mean predictor's MSE, R^2, median
relative error, +-10% share, 1/2-sigma coverage and the Spearman correlation of spread
and absolute error). The never-queried error (below) shrinks as uncertainty querying
removes the hard points from the set it is scored on; the held-out split does not.

**Validation MSE** (the stopping criterion), precisely: the mean over the evaluated
architectures of ``(f_{-k(i)}(x_i) - y_i / max y)^2``, where ``f_{-k}`` is the surrogate
(same regressor and hyperparameters) fitted without fold ``k`` of a ``folds``-fold
split (5) of the evaluated set. The paper takes one 80/20 split of the queried set;
with 16 to 30 samples a single 20% split validates on 3 to 6 points, so its MSE jumps
with the split. K-fold uses every evaluated point once for validation at the same 80/20
ratio. Fold membership is fixed when a sample enters (the initial batch gets a seeded
balanced assignment, later samples ``position mod K``), so the estimate moves only
because the data grew. Because queried points are the ones the surrogate was least sure
about, this error is pessimistic for the design space at large.

**Never-queried error** (reported, never used for decisions): where the evaluator can
tell the truth of architectures it was not asked to evaluate (the published pool), each
record also holds the MSE (same normalisation) and the share of predictions within
+-10% of the measured value on the candidates not yet queried: the honest
generalisation number.

**Determinism and resume.** Every stochastic step is seeded from ``(seed, samples,
measure)``: the initial batch, fold ids, surrogate seeds and random queries. The GP's
hyperparameter search starts from the previous fit's optima, which each history record
stores (``warm_start``). So the next query depends only on the evaluated architectures
and the stored history, and a campaign resumed from its store
(:mod:`codesign.protran.campaign_store`) continues exactly as an uninterrupted one,
re-evaluating nothing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from codesign.architecture import Architecture
from codesign.design_space import DesignSpace, default_space
from codesign.embedding import embed_many, upper_bounds
from codesign.protran.campaign_store import CampaignStore, CampaignStoreError
from codesign.protran.evaluators import Evaluator, architecture_key
from codesign.protran.features import check_feature_set, featurize
from codesign.protran.measures import MEASURES, PerformanceMeasurement
from codesign.protran.surrogates import Surrogate, make_surrogate
from codesign.protran.surrogates.base import fold_ids, single_threaded_blas
from codesign.protran.surrogates.registry import check_regressor
from codesign.sampling import METHODS, sample_embeddings

DEFAULT_THRESHOLD = 0.005  # validation MSE of normalised measures (0.5%, Sec. III-B2)
DEFAULT_INITIAL = 16  # LHS samples of the initial batch (Sec. III-B1)
DEFAULT_FOLDS = 5  # K of the K-fold validation (80/20 per fold)
DEFAULT_REGRESSOR = "gpr"
DEFAULT_PATIENCE = 5  # consecutive fits with every validation MSE below the threshold
WITHIN_TOLERANCE = 0.10  # +-10% relative error band of the generalisation report
WARM_START_RECHECK = 8  # every 8th sample count, warm-started fits also try their fixed starting point
SEED_TAGS = {"initial": 1, "folds": 2, "fit": 3, "query": 4, "holdout": 5}
DEFAULT_HOLDOUT = 0.2  # share of a pool held out before a campaign (scored every fit, never queried)
NORMALISATIONS = ("running-max", "authors")  # the paper's text; the authors' code (fixed max_values.json divisors)
QUERY_STRATEGIES = ("uncertainty", "random")
PRESETS = {  # --preset values: the settings each fixes (others keep their defaults)
    "paper": {  # the paper's recipe, as its text and the authors' code ran it
        "regressor": "gbdt", "features": "embedding", "patience": 1, "normalisation": "authors", "threshold": DEFAULT_THRESHOLD,
    },
    "ours": {"regressor": "gpr", "features": "compact", "patience": DEFAULT_PATIENCE, "normalisation": "running-max"},
}


class LoopError(ValueError):
    """A campaign that cannot run: bad settings, an empty pool, a store of another campaign."""


@dataclass(frozen=True)
class LoopConfig:
    """Settings of one campaign (everything that decides which architectures get evaluated)."""

    regressor: str = DEFAULT_REGRESSOR
    features: str = "workload"
    threshold: float = DEFAULT_THRESHOLD
    initial: int = DEFAULT_INITIAL
    budget: int | None = None
    seed: int = 0
    folds: int = DEFAULT_FOLDS
    patience: int = DEFAULT_PATIENCE
    sampler: str = "lhs"
    stop_at_threshold: bool = True  # False runs to the budget (learning curves, Fig. 7)
    holdout: float = DEFAULT_HOLDOUT  # pool share held out before the start (pool campaigns with a truth only)
    normalisation: str = "running-max"  # or "authors": divide by the device's max_values.json (published only)
    query: str = "uncertainty"  # or "random": seeded random queries whatever the regressor (the baseline)

    def __post_init__(self) -> None:
        check_regressor(self.regressor)
        check_feature_set(self.features)
        if not (isinstance(self.threshold, (int, float)) and self.threshold > 0):
            raise LoopError(f"threshold must be a positive number, got {self.threshold!r}")
        if self.initial < 2:
            raise LoopError(f"the initial batch needs at least 2 architectures, got {self.initial}")
        if self.budget is not None and self.budget < self.initial:
            raise LoopError(f"budget {self.budget} is smaller than the initial batch of {self.initial}")
        if self.folds < 2:
            raise LoopError(f"validation needs at least 2 folds, got {self.folds}")
        if self.patience < 1:
            raise LoopError(f"patience must be at least 1, got {self.patience}")
        if self.sampler not in METHODS:
            raise LoopError(f"unknown sampler {self.sampler!r} (choose from {', '.join(METHODS)})")
        if not (isinstance(self.holdout, (int, float)) and 0 <= self.holdout < 1):
            raise LoopError(f"holdout must be a share in [0, 1), got {self.holdout!r}")
        if self.normalisation not in NORMALISATIONS:
            raise LoopError(f"unknown normalisation {self.normalisation!r} (choose from {', '.join(NORMALISATIONS)})")
        if self.query not in QUERY_STRATEGIES:
            raise LoopError(f"unknown query strategy {self.query!r} (choose from {', '.join(QUERY_STRATEGIES)})")

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "LoopConfig":
        """The settings of a named preset (:data:`PRESETS`), with ``overrides`` on top."""
        if name not in PRESETS:
            raise LoopError(f"unknown preset {name!r} (choose from {', '.join(PRESETS)})")
        return cls(**{**PRESETS[name], **overrides})

    def to_dict(self) -> dict:
        """Plain JSON values."""
        return asdict(self)


@dataclass
class CampaignResult:
    """What a campaign found: when it stopped, its validation errors, its history and final surrogates."""

    device: str
    config: LoopConfig
    samples: int
    converged: bool
    stop_reason: str
    val_mse: dict[str, float]
    history: list[dict]
    queried: list[str]
    maxima: dict[str, float]
    surrogates: dict[str, Surrogate] = field(repr=False)
    unqueried: dict | None = None
    resumed: bool = False
    held_out: dict | None = None
    units: dict | None = None

    def to_dict(self) -> dict:
        """The JSON report (``edgetran protran run --json``)."""
        return {
            "device": self.device,
            "regressor": self.config.regressor,
            "features": self.config.features,
            "threshold": self.config.threshold,
            "seed": self.config.seed,
            "samples": self.samples,
            "converged": self.converged,
            "stop_reason": self.stop_reason,
            "val_mse": self.val_mse,
            "val_mean_predictor_mse": self.history[-1].get("val_mean_predictor_mse"),
            "val_r2": self.history[-1].get("val_r2"),
            "held_out": self.held_out,
            "never_queried": self.unqueried,
            "normalisation": self.config.normalisation,
            "normalisation_maxima": self.maxima,
            "query": self.config.query,
            "patience": self.config.patience,
            "units": self.units,
            "resumed": self.resumed,
            "queried": self.queried,
            # The GP's stored optimiser starting points are loop state, not results.
            "history": [{k: v for k, v in record.items() if k != "warm_start"} for record in self.history],
        }


def _seed(seed: int, *tags: int) -> int:
    """A 32-bit seed derived from the campaign seed and integer tags."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *tags]).generate_state(1)[0])


def initial_selection(
    candidates: Sequence[Architecture], n: int, seed: int, sampler: str = "lhs", space: DesignSpace | None = None
) -> list[int]:
    """Indices of ``n`` distinct candidates nearest to ``n`` design-space samples of ``sampler``."""
    space = space or default_space()
    if n >= len(candidates):
        return list(range(len(candidates)))
    scale = np.maximum(upper_bounds(space), 1).astype(float)
    pool = embed_many(candidates, space) / scale
    samples = sample_embeddings(sampler, n, _seed(seed, SEED_TAGS["initial"]), space) / scale
    taken = np.zeros(len(candidates), dtype=bool)
    chosen = []
    for point in samples:
        distances = ((pool - point) ** 2).sum(axis=1)
        distances[taken] = np.inf
        index = int(np.argmin(distances))
        taken[index] = True
        chosen.append(index)
    return chosen


def sample_folds(count: int, initial: int, k: int, seed: int) -> np.ndarray:
    """Fold id of each evaluated sample: seeded balanced ids for the initial batch, then position mod k."""
    first = min(count, initial)
    ids = np.empty(count, dtype=np.int64)
    ids[:first] = fold_ids(initial, k, _seed(seed, SEED_TAGS["folds"]))[:first] if initial >= 2 else 0
    ids[first:] = np.arange(first, count) % k
    return ids


def consecutive_below(records: Sequence[Mapping[str, Any]]) -> int:
    """How many of the latest records in a row have every validation MSE below the threshold."""
    streak = 0
    for record in records:
        streak = streak + 1 if record["below_threshold"] else 0
    return streak


def normalise(values: np.ndarray, fixed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each column divided by its maximum over all rows (or by ``fixed`` divisors); returns (normalised, maxima)."""
    maxima = values.max(axis=0) if fixed is None else np.asarray(fixed, dtype=float)
    return values / maxima, maxima


def holdout_split(count: int, share: float, seed: int) -> np.ndarray:
    """Sorted indices of a seeded ``share`` of ``count`` pool rows held out before a campaign (none for share 0)."""
    size = int(round(share * count))
    if share <= 0 or size == 0:
        return np.array([], dtype=np.int64)
    if count - size < 2:
        raise LoopError(f"holding out {size} of {count} architectures leaves fewer than 2 to query")
    rng = np.random.default_rng(_seed(seed, SEED_TAGS["holdout"]))
    return np.sort(rng.choice(count, size=size, replace=False))


def spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman rank correlation (average ranks for ties); None where either side is constant or too short."""
    from scipy.stats import spearmanr

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape[0] < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(spearmanr(a, b).statistic)


def prediction_scores(mean: np.ndarray, std: np.ndarray, truth: np.ndarray, divisor: float, train_mean: float) -> dict:
    """Held-out scores of one measure's predictions (all arrays in measurement units).

    ``mse`` and ``mean_predictor_mse`` divide by ``divisor`` (a fixed per-device constant, so
    MSEs of different campaigns compare); the mean predictor predicts ``train_mean`` (the
    mean of the evaluated values: what one knows without a surrogate); ``r2`` is
    ``1 - mse / mean_predictor_mse`` (negative: worse than predicting the mean).
    """
    error = mean - truth
    relative = np.abs(error) / truth
    mse_value = float(np.mean((error / divisor) ** 2))
    baseline = float(np.mean(((train_mean - truth) / divisor) ** 2))
    z = np.abs(error) / np.maximum(std, 1e-300)
    return {
        "mse": mse_value,
        "mean_predictor_mse": baseline,
        "r2": 1.0 - mse_value / baseline if baseline > 0 else None,
        "median_relative_error": float(np.median(relative)),
        "within_10pct": float(np.mean(relative <= WITHIN_TOLERANCE)),
        "within_1sigma": float(np.mean(z <= 1.0)),
        "within_2sigma": float(np.mean(z <= 2.0)),
        "spread_error_spearman": spearman(std, np.abs(error)),
    }


SurrogateFactory = Callable[[str, int, str], Surrogate]  # (regressor, seed, feature set) -> unfitted surrogate


class _Campaign:
    """The state of one running campaign (internal; see :func:`run_campaign`)."""

    def __init__(
        self,
        evaluator: Evaluator,
        candidates: Sequence[Architecture],
        config: LoopConfig,
        store: CampaignStore | None,
        truth: Callable[[Architecture], PerformanceMeasurement] | None,
        factory: SurrogateFactory,
        progress: Callable[[dict], None] | None,
    ) -> None:
        if len(candidates) < 2:
            raise LoopError(f"the candidate pool has {len(candidates)} architectures; at least 2 are needed")
        self.evaluator, self.config, self.store = evaluator, config, store
        self.truth, self.factory, self.progress = truth, factory, progress
        self.candidates = list(candidates)
        self.keys = [architecture_key(arch) for arch in self.candidates]
        if len(set(self.keys)) != len(self.keys):
            raise LoopError("the candidate pool lists an architecture twice")
        self.index_of = {key: i for i, key in enumerate(self.keys)}
        self.features = featurize(self.candidates, config.features, evaluator.context)
        # The held-out split is drawn before anything is evaluated and is never queried (pool campaigns with a truth).
        share = config.holdout if truth is not None else 0.0
        self.held = [int(i) for i in holdout_split(len(self.candidates), share, config.seed)]
        held = set(self.held)
        self.open = [i for i in range(len(self.candidates)) if i not in held]
        self.held_truth = np.array([truth(self.candidates[i]).values() for i in self.held]) if self.held else None
        # Held-out MSEs divide by the maximum of the whole pool's truth: one constant per device, whatever the campaign.
        self.pool_maxima = (
            np.array([truth(arch).values() for arch in self.candidates]).max(axis=0) if self.held else None
        )
        self.fixed_maxima = None
        if config.normalisation == "authors":
            fixed = getattr(evaluator, "authors_maxima", None)
            if fixed is None:
                raise LoopError(f"normalisation 'authors' needs the authors' max_values.json; {evaluator.device} has none")
            self.fixed_maxima = np.asarray(fixed, dtype=float)
        self.budget = min(config.budget or len(self.open), len(self.open))
        self.queried: list[int] = []
        self.values: list[np.ndarray] = []
        self.reasons: list[str] = []
        self.history: list[dict] = []
        self.resumed = False
        self.last_surrogates: dict[str, Surrogate] = {}

    # -- persistence ---------------------------------------------------------------------

    def restore(self) -> None:
        if self.store is None:
            return
        config = {**self.config.to_dict(), "device": self.evaluator.device}
        self.resumed = self.store.bind_config(config)
        for stored in self.store.evaluations():
            if stored.arch_key not in self.index_of:
                raise CampaignStoreError(
                    f"{self.store.path}: evaluation {stored.position} ({stored.arch_key}) is not in the candidate pool"
                )
            if self.index_of[stored.arch_key] in self.held:
                raise CampaignStoreError(f"{self.store.path}: evaluation {stored.position} is in this campaign's held-out split")
            measurement = PerformanceMeasurement.from_dict(stored.measurement)
            self.queried.append(self.index_of[stored.arch_key])
            self.values.append(measurement.values())
            self.reasons.append(stored.reason)
        # The record of the current sample count is recomputed (identically) by the next fit.
        self.history = [record for record in self.store.history() if record["samples"] < len(self.queried)]

    def evaluate(self, index: int, reason: str) -> None:
        arch = self.candidates[index]
        measurement = self.evaluator(arch)
        if not isinstance(measurement, PerformanceMeasurement):
            raise LoopError(f"the evaluator returned {type(measurement).__name__}, not a PerformanceMeasurement")
        if self.store is not None:
            self.store.add_evaluation(len(self.queried), self.keys[index], arch.to_dict(), measurement.to_dict(), reason)
        self.queried.append(index)
        self.values.append(measurement.values())
        self.reasons.append(reason)

    # -- one fit ---------------------------------------------------------------------------

    def fit(self) -> tuple[dict[str, Surrogate], dict]:
        n = len(self.queried)
        X = self.features[self.queried]
        Y, maxima = normalise(np.array(self.values), self.fixed_maxima)
        folds = sample_folds(n, self.config.initial, self.config.folds, self.config.seed)
        surrogates: dict[str, Surrogate] = {}
        val_mse, val_mean, val_r2 = {}, {}, {}
        warm = self.history[-1].get("warm_start", {}) if self.history else {}
        # Out-of-fold mean predictor: each row predicted by the mean of the other folds (the validation MSE's baseline).
        fold_means = {int(k): Y[folds != k].mean(axis=0) if np.any(folds != k) else Y.mean(axis=0) for k in np.unique(folds)}
        baseline = np.array([fold_means[int(k)] for k in folds])
        for m, measure in enumerate(MEASURES):
            model = self.factory(self.config.regressor, _seed(self.config.seed, SEED_TAGS["fit"], n, m), self.config.features)
            if warm.get(measure) is not None:
                model.set_warm_start({**warm[measure], "recheck": n % WARM_START_RECHECK == 0})
            previous = self.last_surrogates.get(measure)
            if previous is not None and hasattr(model, "warm_from"):
                model.warm_from(previous)  # in-memory weights of the previous fit (the nn ensemble)
            model.fit(X, Y[:, m], folds=folds)
            surrogates[measure] = model
            val_mse[measure] = float(np.mean((model.oof_mean_ - Y[:, m]) ** 2))
            val_mean[measure] = float(np.mean((baseline[:, m] - Y[:, m]) ** 2))
            val_r2[measure] = 1.0 - val_mse[measure] / val_mean[measure] if val_mean[measure] > 0 else None
        self.last_surrogates = surrogates
        record = {
            "samples": n,
            "val_mse": val_mse,
            "val_mean_predictor_mse": val_mean,
            "val_r2": val_r2,
            "below_threshold": all(v < self.config.threshold for v in val_mse.values()),
            "maxima": {measure: float(maxima[m]) for m, measure in enumerate(MEASURES)},
            "last_query": {"key": self.keys[self.queried[-1]], "reason": self.reasons[-1]},
        }
        hints = {measure: model.warm_state_ for measure, model in surrogates.items() if model.warm_state_ is not None}
        if hints:
            record["warm_start"] = hints  # starting points of the next fit (stored: a resume fits identically)
        rest = self.unqueried()
        if rest and self.truth is not None:
            record["never_queried"] = self.never_queried_errors(surrogates, rest, maxima)
        if self.held:
            record["held_out"] = self.held_out_errors(surrogates, maxima)
        return surrogates, record

    def held_out_errors(self, surrogates: Mapping[str, Surrogate], maxima: np.ndarray) -> dict:
        """Scores on the fixed held-out split (MSEs divided by the whole pool's maxima)."""
        X = self.features[self.held]
        train_mean = np.array(self.values).mean(axis=0)
        out: dict = {"count": len(self.held), "divisor": "maximum of the whole pool's measured values"}
        for m, measure in enumerate(MEASURES):
            prediction = surrogates[measure].predict(X)
            out[measure] = prediction_scores(
                prediction.mean * maxima[m], prediction.std * maxima[m], self.held_truth[:, m],
                float(self.pool_maxima[m]), float(train_mean[m]),
            )
        out["mse"] = {measure: out[measure]["mse"] for measure in MEASURES}
        out["mean_mse"] = float(np.mean(list(out["mse"].values())))  # one number per fit: the mean over measures
        return out

    def unqueried(self) -> list[int]:
        taken = set(self.queried)
        return [i for i in self.open if i not in taken]

    def never_queried_errors(self, surrogates: Mapping[str, Surrogate], rest: list[int], maxima: np.ndarray) -> dict:
        truth = np.array([self.truth(self.candidates[i]).values() for i in rest])
        X = self.features[rest]
        mse, within = {}, {}
        for m, measure in enumerate(MEASURES):
            predicted = surrogates[measure].predict(X).mean
            mse[measure] = float(np.mean((predicted - truth[:, m] / maxima[m]) ** 2))
            relative = np.abs(predicted * maxima[m] - truth[:, m]) / truth[:, m]
            within[measure] = float(np.mean(relative <= WITHIN_TOLERANCE))
        return {"count": len(rest), "mse": mse, "within_10pct": within}

    def choose(self, surrogates: Mapping[str, Surrogate], rest: list[int]) -> tuple[int, str, float | None]:
        n = len(self.queried)
        model = next(iter(surrogates.values()))
        if not model.query_by_uncertainty or self.config.query == "random":
            rng = np.random.default_rng(_seed(self.config.seed, SEED_TAGS["query"], n))
            return rest[int(rng.integers(len(rest)))], "random", None
        X = self.features[rest]
        score = np.zeros(len(rest))
        for measure in MEASURES:
            score += surrogates[measure].predict(X).std
        best = int(np.argmax(score))  # first maximum: ties go to the earliest candidate
        return rest[best], "uncertainty", float(score[best])

    # -- the loop ---------------------------------------------------------------------------

    def run(self) -> CampaignResult:
        self.restore()
        opened = [self.candidates[i] for i in self.open]
        initial = [self.open[i] for i in initial_selection(opened, self.config.initial, self.config.seed, self.config.sampler)]
        initial = initial[: self.budget]
        done = len(self.queried)
        if [self.queried[i] for i in range(min(done, len(initial)))] != initial[: min(done, len(initial))]:
            raise CampaignStoreError(f"{self.store.path if self.store else 'store'}: stored initial batch differs from this seed's")
        for index in initial[done:]:
            self.evaluate(index, "initial")
        stop_reason = ""
        while True:
            surrogates, record = self.fit()
            rest = self.unqueried()
            streak = consecutive_below([*self.history, record])
            if streak >= self.config.patience and self.config.stop_at_threshold:
                stop_reason = "converged"
            elif len(self.queried) >= self.budget:
                stop_reason = "pool exhausted" if not rest else "budget"
            if not stop_reason:
                index, reason, score = self.choose(surrogates, rest)
                record["next_query"] = {"key": self.keys[index], "reason": reason, "score": score}
            self.history.append(record)
            if self.store is not None:
                self.store.add_history(record["samples"], record)
            if self.progress is not None:
                self.progress(record)
            if stop_reason:
                break
            self.evaluate(index, reason)
        if self.store is not None:
            self.store.set_state("status", stop_reason)
        last = self.history[-1]
        return CampaignResult(
            device=self.evaluator.device,
            config=self.config,
            samples=len(self.queried),
            converged=stop_reason == "converged" or (not self.config.stop_at_threshold and streak >= self.config.patience),
            stop_reason=stop_reason,
            val_mse=last["val_mse"],
            history=self.history,
            queried=[self.keys[i] for i in self.queried],
            maxima=last["maxima"],
            surrogates=surrogates,
            unqueried=last.get("never_queried"),
            resumed=self.resumed,
            held_out=last.get("held_out"),
            units=_units(self.evaluator),
        )


def _units(evaluator: Evaluator) -> dict:
    """The ``units`` block of an evaluator's numbers (published: per evaluation run, not per sequence)."""
    from codesign.protran.measures import units_note

    return units_note(getattr(evaluator, "source", "live"))


def run_campaign(
    evaluator: Evaluator,
    candidates: Sequence[Architecture],
    config: LoopConfig | None = None,
    store: CampaignStore | None = None,
    truth: Callable[[Architecture], PerformanceMeasurement] | None = None,
    factory: SurrogateFactory = make_surrogate,
    progress: Callable[[dict], None] | None = None,
) -> CampaignResult:
    """Run (or resume, with a store) the active-learning loop over ``candidates``."""
    campaign = _Campaign(evaluator, candidates, config or LoopConfig(), store, truth, factory, progress)
    with single_threaded_blas():
        return campaign.run()


def run_published_campaign(
    device: str,
    config: LoopConfig | None = None,
    store: CampaignStore | None = None,
    progress: Callable[[dict], None] | None = None,
    evaluator: Any = None,
) -> CampaignResult:
    """A campaign over one device's published pool, reporting error on never-queried architectures."""
    from codesign.protran.evaluators import PublishedPoolEvaluator

    evaluator = evaluator or PublishedPoolEvaluator(device)
    return run_campaign(evaluator, evaluator.pool, config, store, truth=evaluator.truth, progress=progress)
