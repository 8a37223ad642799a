"""Design-space throughput: sampling, embedding, decoding and projection rates.

Run: python bench/space_bench.py [--n 20000] [--repeats 3] [--json]

Prints, per sampling method, how many valid architectures (decoded model objects plus
their embeddings) sampling produces per second, and the rates of embed, decode (with
validation), decode_many (trusted rows) and nearest-valid projection. Each figure is
the best of --repeats runs, all measured in this one process. Target: sampling
>= 5,000 architectures/s on the 2-core CI machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from typing import Callable

import numpy as np

from codesign.design_space import default_space
from codesign.embedding import decode, decode_many, embed, project, upper_bounds
from codesign.sampling import METHODS, sample_architectures, sample_embeddings

SAMPLING_TARGET_PER_S = 5000


def best_rate(work: Callable[[], int], repeats: int) -> float:
    """Items per second of the fastest of ``repeats`` runs of ``work`` (which returns its item count)."""
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        items = work()
        elapsed = time.perf_counter() - start
        best = max(best, items / elapsed)
    return best


def run(n: int, repeats: int) -> dict:
    """Measure every rate; return them as a dict."""
    space = default_space()
    sample_architectures("lhs", 64, 0, space)  # warm caches (enumerations, scipy import)
    results: dict = {"n": n, "repeats": repeats, "python": platform.python_version(), "sampling_per_s": {}}

    for method in METHODS:

        def sample_once(method: str = method) -> int:
            embeddings = sample_embeddings(method, n, seed=1, space=space)
            archs = decode_many(embeddings, space)
            return len(archs)

        results["sampling_per_s"][method] = best_rate(sample_once, repeats)

    embeddings = sample_embeddings("random", n, seed=2, space=space)
    archs = decode_many(embeddings, space)
    results["embed_per_s"] = best_rate(lambda: len([embed(a, space) for a in archs]), repeats)
    results["decode_per_s"] = best_rate(lambda: len([decode(e, space) for e in embeddings]), repeats)
    results["decode_many_per_s"] = best_rate(lambda: len(decode_many(embeddings, space)), repeats)
    noisy = np.random.default_rng(3).uniform(0, 1, size=(n, space.embedding_dim)) * upper_bounds(space)
    results["project_per_s"] = best_rate(lambda: len(project(noisy, space)), repeats)
    slowest = min(results["sampling_per_s"].values())
    results["sampling_target_per_s"] = SAMPLING_TARGET_PER_S
    results["sampling_target_met"] = slowest >= SAMPLING_TARGET_PER_S
    return results


def main() -> None:
    """Parse arguments, run the benchmark, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="architectures per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="runs per figure (best is kept)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    results = run(args.n, args.repeats)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"design-space bench: n = {args.n}, best of {args.repeats}, Python {results['python']}")
    for method, rate in results["sampling_per_s"].items():
        print(f"  sample {method:<10} {rate:>12,.0f} architectures+embeddings/s")
    print(f"  embed              {results['embed_per_s']:>12,.0f} architectures/s")
    print(f"  decode (checked)   {results['decode_per_s']:>12,.0f} embeddings/s")
    print(f"  decode_many        {results['decode_many_per_s']:>12,.0f} embeddings/s")
    print(f"  project            {results['project_per_s']:>12,.0f} vectors/s")
    verdict = "met" if results["sampling_target_met"] else "NOT met"
    print(f"  target >= {SAMPLING_TARGET_PER_S:,}/s sampling on every method: {verdict}")


if __name__ == "__main__":
    main()
