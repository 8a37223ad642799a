"""ProTran on the published pools: the paper's recipe against ours, on one fixed held-out split.

Run: python bench/protran_bench.py [--devices all] [--seeds 1] [--threshold 0.005] [--jobs 2] [--json]

Per device and seed (codesign.protran.loop, published-pool evaluator): 20% of the pool is
held out (seeded) before anything is evaluated; then

* the **recipe** (``LoopConfig.preset("paper")``: GBDT on the 37-d embedding, stop at the
  first fit whose 5-fold validation MSE is below the threshold for every measure, the
  authors' fixed ``max_values.json`` divisors) runs until it stops or exhausts the pool:
  ``n rec`` samples;
* **ours** (``LoopConfig.preset("ours")``: GP on compact features) runs without stopping
  until it has ``n rec`` samples and its held-out MSE is at most the recipe's final one;
* ours with **random** queries (same seed and split) runs to ``n rec``.

Printed side by side: held-out MSE (divided by the whole pool's maxima, mean over the
three measures), median relative error and +-10% share at ``n rec`` samples (equal
samples), the samples each needs to reach the recipe's final held-out MSE (ours cannot
report fewer than its initial batch of 16), 1- and 2-sigma coverage, and the Spearman
rank correlation of predicted spread and absolute error. Target: ours needs at most 0.6x
the recipe's samples and has at most 0.6x its held-out MSE on every device with >= 60
models. Where the recipe exhausts the open pool, "equal samples" means both saw the
same architectures and uncertainty and random queries tie by construction.

The second table is the data floor: the GP's 5-fold MSE on the whole pool, the MSE of
predicting the pool mean, and a Gamma-test noise estimate (Stefansson, Koncar and Jones
1997; no architecture was measured twice, so no floor can be measured from repeats).

Whole run, default 1 seed, --jobs 2 on this shared 2-core machine: 233 s (under a
load of other agents); every extra seed adds about as much.
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import platform
import time

import numpy as np

from codesign.protran.comparison import holdout_evaluation
from codesign.protran.evaluators import PublishedPoolEvaluator, architecture_key
from codesign.protran.features import feature_names, featurize
from codesign.protran.loop import LoopConfig, run_campaign
from codesign.protran.measures import MEASURES
from codesign.published import list_devices

PAPER_SAMPLES = {  # EdgeTran Table II: samples for GBDT to converge
    "gpu_a100_b128_r3": 239,
    "cpu_m1-pro_b32_r1": 104,
    "gpu_m1-pro_b32_r3": 92,
    "cpu_rpi_b1_r1": 81,
    "npu_ncs_b1_r1": 21,
    "cpu_jetson-nano_b1_r1": 223,
    "gpu_jetson-nano_b1_r1": 22,
}
TARGET_MIN_POOL = 60  # the target applies to devices with at least this many published models
TARGET_RATIO = 0.6  # ours: at most 0.6x the recipe's samples and 0.6x its held-out MSE
OURS_REGRESSOR = "gpr"
FIXED_SAMPLES = 32  # evaluations after which the +-10% share is also reported
DEFAULT_FEATURES = "compact"
NOISE_FEATURES = ("log_total_gflop", "log_total_mbytes", "log_total_mparams", "total_heads")
NOISE_NEIGHBOURS = 10  # k = 1..10 nearest neighbours in the Gamma test


def gamma_test(features: np.ndarray, values: np.ndarray, neighbours: int = NOISE_NEIGHBOURS) -> float:
    """Gamma-test estimate of the noise variance of ``values`` given ``features`` (rows are samples).

    Columns are standardised; for k = 1..``neighbours`` (at most n - 1), delta_k is the mean
    squared distance of each row to its k-th nearest neighbour and gamma_k the mean of
    ``(y_nn(k) - y)^2 / 2``. The intercept of the least-squares line gamma = A + B delta
    estimates the variance of the part of ``values`` that is not a smooth function of the
    features (for noise-free smooth data A -> 0; for independent noise of variance s2,
    A -> s2). Returned clipped at zero.
    """
    X = np.asarray(features, dtype=float)
    y = np.asarray(values, dtype=float).ravel()
    n = X.shape[0]
    if n < 3 or y.shape[0] != n:
        raise ValueError(f"the Gamma test needs at least 3 rows and one value per row, got {n} and {y.shape[0]}")
    scale = X.std(axis=0)
    Z = (X - X.mean(axis=0)) / np.where(scale > 1e-12, scale, 1.0)
    distances = ((Z[:, None, :] - Z[None, :, :]) ** 2).sum(axis=-1)
    np.fill_diagonal(distances, np.inf)
    k = min(neighbours, n - 1)
    order = np.argsort(distances, axis=1, kind="stable")[:, :k]
    rows = np.arange(n)
    delta = np.array([distances[rows, order[:, j]].mean() for j in range(k)])
    gamma = np.array([0.5 * np.mean((y[order[:, j]] - y) ** 2) for j in range(k)])
    if k == 1 or np.ptp(delta) == 0:
        return float(max(gamma[0], 0.0))
    slope, intercept = np.polyfit(delta, gamma, 1)
    return float(max(intercept, 0.0))


def data_floor(device: str) -> dict:
    """Repeats, the variance of each normalised measure and its Gamma-test noise estimate."""
    evaluator = PublishedPoolEvaluator(device)
    records = evaluator.dataset.measurements
    values = np.array([[r.latency_s, r.energy_j, r.peak_power_w] for r in records], dtype=float)
    maxima = values.max(axis=0)
    groups = collections.defaultdict(list)
    for i, record in enumerate(records):
        groups[architecture_key(record.architecture)].append(i)
    repeated = [rows for rows in groups.values() if len(rows) > 1]
    repeat_variance = None
    if repeated:  # pooled within-architecture variance of the normalised measures (a measured floor)
        squares = sum(((values[rows] / maxima - (values[rows] / maxima).mean(axis=0)) ** 2).sum(axis=0) for rows in repeated)
        dof = sum(len(rows) - 1 for rows in repeated)
        repeat_variance = {m: float(squares[i] / dof) for i, m in enumerate(MEASURES)}
    pool = evaluator.pool
    Y = np.array([evaluator.truth(arch).values() for arch in pool]) / maxima
    names = feature_names("compact")
    X = featurize(pool, "compact", evaluator.context)[:, [names.index(n) for n in NOISE_FEATURES]]
    return {
        "device": device,
        "measurements": len(records),
        "architectures": len(pool),
        "repeated_architectures": len(repeated),
        "repeat_variance": repeat_variance,
        "variance": {m: float(Y[:, i].var()) for i, m in enumerate(MEASURES)},
        "gamma_noise": {m: gamma_test(X, Y[:, i]) for i, m in enumerate(MEASURES)},
    }


class _Enough(Exception):
    """Raised from a campaign's progress callback once the bench has what it needs (ends the campaign early)."""


def _held(record: dict) -> dict:
    """The bench's held-out numbers of one history record (MSEs divided by the whole pool's maxima)."""
    held = record["held_out"]
    return {
        "samples": record["samples"],
        "mse": held["mean_mse"],
        "median_relative_error": float(np.mean([held[m]["median_relative_error"] for m in MEASURES])),
        "within_10pct": float(np.mean([held[m]["within_10pct"] for m in MEASURES])),
        "within_1sigma": float(np.mean([held[m]["within_1sigma"] for m in MEASURES])),
        "within_2sigma": float(np.mean([held[m]["within_2sigma"] for m in MEASURES])),
        "spearman": [held[m]["spread_error_spearman"] for m in MEASURES],
    }


def _trace(evaluator, config: LoopConfig, until) -> list[dict]:
    """History of a campaign, ended as soon as ``until(history)`` holds (or when it stops by itself)."""
    history: list[dict] = []

    def progress(record: dict) -> None:
        history.append(record)
        if until(history):
            raise _Enough

    try:
        run_campaign(evaluator, evaluator.pool, config, truth=evaluator.truth, progress=progress)
    except _Enough:
        pass
    return history


def run_one(task: tuple) -> dict:
    """The paper's recipe and ours on one device and seed, on the same held-out split.

    * recipe: ``LoopConfig.preset("paper")`` run until it stops (first fit below the
      threshold, the authors' divisors) or the pool is exhausted: ``n_recipe`` samples;
    * ours: ``LoopConfig.preset("ours")`` (GP on compact features) run without stopping
      until it has at least ``n_recipe`` samples *and* its held-out MSE is at most the
      recipe's final one (or the pool is exhausted): its numbers at ``n_recipe`` and the
      samples it needed;
    * ours with random queries (same seed, same split) to ``n_recipe``: does the spread earn its keep?
    """
    device, seed, threshold = task[0], task[1], task[2]
    start = time.perf_counter()
    evaluator = PublishedPoolEvaluator(device)
    paper = _trace(evaluator, LoopConfig.preset("paper", seed=seed, threshold=threshold), lambda h: False)
    n_recipe, target = paper[-1]["samples"], paper[-1]["held_out"]["mean_mse"]
    paper_seconds = time.perf_counter() - start

    def reached(history: list[dict]) -> bool:
        return history[-1]["samples"] >= n_recipe and any(r["held_out"]["mean_mse"] <= target for r in history)

    ours = _trace(evaluator, LoopConfig.preset("ours", seed=seed, threshold=threshold, stop_at_threshold=False), reached)
    random = _trace(
        evaluator, LoopConfig.preset("ours", seed=seed, threshold=threshold, stop_at_threshold=False, query="random"),
        lambda h: h[-1]["samples"] >= n_recipe,
    )

    def at(history: list[dict], n: int) -> dict | None:
        row = next((r for r in history if r["samples"] == n), None)
        return _held(row) if row else None

    needed = next((r["samples"] for r in ours if r["held_out"]["mean_mse"] <= target), None)
    recipe_needed = next(r["samples"] for r in paper if r["held_out"]["mean_mse"] <= target)
    return {
        "recipe_samples_to_own_final_mse": recipe_needed,
        "device": device,
        "seed": seed,
        "held_out": paper[-1]["held_out"]["count"],
        "recipe_samples": n_recipe,
        "recipe_stop": "converged" if paper[-1]["below_threshold"] else "pool exhausted",
        "recipe": _held(paper[-1]),
        "recipe_val_r2": paper[-1]["val_r2"],
        "ours_at_recipe": at(ours, n_recipe),
        "random_at_recipe": at(random, n_recipe),
        "ours_samples_to_recipe_mse": needed,
        "recipe_seconds": paper_seconds,
        "seconds": time.perf_counter() - start,
    }


def floor_one(task: tuple[str, str, str]) -> dict:
    """5-fold MSE of the surrogate on the whole pool (the error floor of the data)."""
    device, regressor, features = task
    holdout = holdout_evaluation(PublishedPoolEvaluator(device), regressor, features)
    return {"device": device, "regressor": regressor, "mse": holdout["mse"], "within_10pct": holdout["within_10pct"]}


def summarise(device: str, runs: list[dict], floor: dict, data: dict, pool: int) -> dict:
    """Per-device means over seeds: recipe vs ours at equal samples, samples to the recipe's MSE, coverage."""

    def mean(getter) -> float | None:
        values = [getter(r) for r in runs]
        values = [v for v in values if v is not None]
        return float(np.mean(values)) if values else None

    def side(key: str) -> dict:
        return {
            k: mean(lambda r, k=k: (r[key] or {}).get(k))
            for k in ("mse", "median_relative_error", "within_10pct", "within_1sigma", "within_2sigma")
        }

    def rank(key: str) -> float | None:
        return mean(lambda r: None if not r[key] else (np.mean([v for v in r[key]["spearman"] if v is not None]) if any(v is not None for v in r[key]["spearman"]) else None))

    reached = [r["ours_samples_to_recipe_mse"] for r in runs]
    recipe = side("recipe")
    ours = side("ours_at_recipe")
    return {
        "device": device,
        "pool": pool,
        "paper_samples": PAPER_SAMPLES.get(device),
        "seeds": len(runs),
        "held_out": runs[0]["held_out"],
        "recipe_samples": mean(lambda r: r["recipe_samples"]),
        "recipe_converged": sum(r["recipe_stop"] == "converged" for r in runs),
        "recipe_samples_to_own_final_mse": mean(lambda r: r["recipe_samples_to_own_final_mse"]),
        "ours_samples_to_recipe_mse": None if None in reached else float(np.mean(reached)),
        "ours_reached": sum(v is not None for v in reached),
        "recipe": recipe,
        "ours": ours,
        "random": side("random_at_recipe"),
        "spearman": {"recipe": rank("recipe"), "ours": rank("ours_at_recipe"), "random": rank("random_at_recipe")},
        "sample_ratio": None if None in reached else float(np.mean(reached)) / mean(lambda r: r["recipe_samples"]),
        "error_ratio": None if not (recipe["mse"] and ours["mse"] is not None) else ours["mse"] / recipe["mse"],
        "pool_5fold_mse": floor["mse"],
        "pool_variance": data["variance"],
        "gamma_noise": data["gamma_noise"],
        "repeated_architectures": data["repeated_architectures"],
        "repeat_variance": data["repeat_variance"],
        "runs": runs,
    }


def run(devices: list[str], seeds: int, threshold: float, jobs: int) -> dict:
    """Every recipe-vs-ours task, floor and noise estimate, in a process pool; aggregated per device."""
    pools = {d: len(PublishedPoolEvaluator(d)) for d in devices}
    tasks = sorted(((d, s, threshold) for d in devices for s in range(seeds)), key=lambda t: -pools[t[0]])
    floors = [(d, OURS_REGRESSOR, DEFAULT_FEATURES) for d in devices]
    start = time.perf_counter()
    if jobs > 1:
        with multiprocessing.get_context("fork").Pool(jobs) as workers:
            floor_async = workers.map_async(floor_one, floors)
            data_async = workers.map_async(data_floor, devices)
            runs = workers.map(run_one, tasks, chunksize=1)
            floor_rows = floor_async.get()
            data_rows = data_async.get()
    else:
        runs = [run_one(t) for t in tasks]
        floor_rows = [floor_one(f) for f in floors]
        data_rows = [data_floor(d) for d in devices]
    floor_by = {row["device"]: row for row in floor_rows}
    data_by = {row["device"]: row for row in data_rows}
    rows = [summarise(d, [x for x in runs if x["device"] == d], floor_by[d], data_by[d], pools[d]) for d in devices]
    return {
        "recipe": "paper: gbdt on the 37-d embedding, first fit below the threshold, the authors' max_values.json divisors",
        "ours": f"{OURS_REGRESSOR} on {DEFAULT_FEATURES} features, patience {LoopConfig.patience}, running maximum",
        "threshold": threshold,
        "seeds": seeds,
        "jobs": jobs,
        "python": platform.python_version(),
        "seconds": time.perf_counter() - start,
        "devices": rows,
        "data": data_rows,
    }


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}"


def _num(value: float | None, fmt: str = ".1f") -> str:
    return "-" if value is None else format(value, fmt)


def print_table(report: dict) -> None:
    """The human-readable tables."""
    threshold = report["threshold"]
    print(f"ProTran bench: the paper's recipe vs ours, threshold {threshold:g}, {report['seeds']} seed(s), "
          f"{report['jobs']} jobs, {report['seconds']:.0f} s")
    print(f"  recipe: {report['recipe']}\n  ours:   {report['ours']}")
    header = (
        f"{'device':<22}{'pool':>5}{'test':>5}{'n rec':>7}{'conv':>5}"
        f"{'MSE rec/ours/rand':>22}{'med.rel.err % rec/ours':>24}{'+-10% rec/ours':>16}"
        f"{'n to rec. MSE rec/ours':>24}{'1sig rec/ours':>15}{'2sig rec/ours':>15}{'rho rec/ours/rand':>20}"
    )
    print(header)
    print("-" * len(header))
    for d in report["devices"]:
        r, o, x = d["recipe"], d["ours"], d["random"]
        rho = d["spearman"]
        print(
            f"{d['device']:<22}{d['pool']:>5}{d['held_out']:>5}{_num(d['recipe_samples']):>7}{d['recipe_converged']:>3}/{d['seeds']:<1}"
            f"{_num(r['mse'], '.4f') + '/' + _num(o['mse'], '.4f') + '/' + _num(x['mse'], '.4f'):>22}"
            f"{_pct(r['median_relative_error']) + '/' + _pct(o['median_relative_error']):>24}"
            f"{_pct(r['within_10pct']) + '/' + _pct(o['within_10pct']):>16}"
            f"{_num(d['recipe_samples_to_own_final_mse']) + '/' + _num(d['ours_samples_to_recipe_mse']):>24}"
            f"{_pct(r['within_1sigma']) + '/' + _pct(o['within_1sigma']):>15}"
            f"{_pct(r['within_2sigma']) + '/' + _pct(o['within_2sigma']):>15}"
            f"{_num(rho['recipe'], '.2f') + '/' + _num(rho['ours'], '.2f') + '/' + _num(rho['random'], '.2f'):>20}"
        )
    print(
        "test: held-out architectures (20%, seeded, drawn before both campaigns; never queried). n rec: samples at the recipe's stop "
        "(conv: runs that stopped below the threshold, the rest exhausted the pool).\n"
        "All error columns are on the held-out split at n rec samples (equal samples), MSEs divided by the whole pool's maxima and "
        "averaged over latency/energy/peak power; rand: ours with random instead of uncertainty queries.\n"
        "n to rec. MSE: samples each needs before its held-out MSE is at most the recipe's final one. 1sig/2sig: share of held-out "
        "values inside mean +-1/2 sigma (68/95% if calibrated). rho: Spearman rank correlation of predicted spread and absolute error."
    )
    for d in report["devices"]:
        if d["pool"] < TARGET_MIN_POOL:
            continue
        samples_ok = d["sample_ratio"] is not None and d["sample_ratio"] <= TARGET_RATIO
        error_ok = d["error_ratio"] is not None and d["error_ratio"] <= TARGET_RATIO
        verdict = "MET" if samples_ok and error_ok else "NOT met"
        print(
            f"  {d['device']}: target {verdict}: samples ratio {_num(d['sample_ratio'], '.2f')}, held-out MSE ratio "
            f"{_num(d['error_ratio'], '.2f')} (target <= {TARGET_RATIO})"
        )
    print()
    header = f"{'device':<23}{'5-fold MSE whole pool':>24}{'mean-predictor MSE':>24}{'noise est. (Gamma)':>24}{'repeats':>9}"
    print(header)
    print("-" * len(header))
    for d in report["devices"]:
        print(
            f"{d['device']:<23}{_mses(d['pool_5fold_mse']):>24}{_mses(d['pool_variance']):>24}"
            f"{_mses(d['gamma_noise']):>24}{d['repeated_architectures']:>9}"
        )
    print(
        f"5-fold MSE whole pool: {OURS_REGRESSOR} on {DEFAULT_FEATURES} features trained on 80% of the whole pool (the error floor of "
        "these data); mean-predictor MSE: the variance of the normalised measure; noise est.: Gamma-test intercept (an estimate: "
        "no architecture was measured twice)."
    )


def _mses(values: dict | None) -> str:
    return "-" if not values else "/".join(f"{values[m]:.4f}" for m in MEASURES)


def main() -> None:
    """Parse arguments, run the campaigns, print the table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", default="all", help="'all' or comma-separated published device names")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per device (0..seeds-1); 1 keeps the run near 10 min on 2 cores")
    parser.add_argument("--threshold", type=float, default=0.005, help="validation MSE threshold")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    known = [d.name for d in list_devices()]
    devices = known if args.devices == "all" else [d.strip() for d in args.devices.split(",") if d.strip()]
    unknown = [d for d in devices if d not in known]
    if unknown or args.seeds < 1 or args.jobs < 1 or args.threshold <= 0:
        parser.error(f"unknown devices {unknown} (known: {', '.join(known)})" if unknown else "--seeds and --jobs must be >= 1, --threshold > 0")
    report = run(devices, args.seeds, args.threshold, args.jobs)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print_table(report)


if __name__ == "__main__":
    main()
