"""Measurement throughput of the bench host on the virtual rig: in-process vs a local dask cluster.

Run: python bench/profile_bench.py [--models 4] [--rounds 2] [--runs 10] [--repeats 1] [--json]

``--models`` small FlexiBERT 2.0 models are exported first (export time reported
apart: a campaign exports each model once). Then the same campaign (every model on one
virtual Raspberry Pi 4, stored in a fresh SQLite store) runs ``--rounds`` times through
each dispatcher, alternating, in this one process:

* in-process: the protocol in an isolated child of this process;
* dask: a ``LocalCluster`` with one worker process offering ``board-vpi=1``
  (``--nthreads 1``), reached through :class:`firmware_host.dispatch.DaskDispatch`
  exactly as a board on the bench network is (artifact by content hash, clock offset
  estimated on the worker, results back through the scheduler).

Per measurement it reports (medians over the rounds of per-round means):

* wall: from taking the item to having it stored;
* board: the protocol's marked span on the runner's clock (idle window + timed block:
  what the board must spend whatever the host does);
* runner setup: dispatch time minus the marked span (process start, model load,
  warm-up, and for dask the task round trips and the artifact check);
* host: wall minus dispatch time (export cache lookup, sensor daemon start and stop,
  clock alignment, energy windows, the store).

and measurements per minute, with the dask / in-process ratios measured side by side.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from firmware_host.campaign import plan, run_campaign
from firmware_host.dispatch import DaskDispatch, InProcessDispatch
from firmware_host.profile import ProfileOptions, resolve_artifact
from firmware_host.rig import parse_rig

OPS = ("sa_sdp_64", "l_dft_64", "l_dct_64", "c_5_64", "sa_wma_64", "c_9_64")


def models(count: int) -> list[dict]:
    """``count`` two-layer models of hidden size 128 with different operations."""
    return [{"l": 2, "o": [[OPS[i % len(OPS)]] * 2, ["sa_sdp_64"] * 2], "h": [128, 128], "f": [[256 * (1 + i % 2)], [512]]} for i in range(count)]


class TimedDispatch:
    """A dispatcher that adds up where the time goes."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.concurrent_boards = inner.concurrent_boards
        self.run_s = 0.0
        self.marked_s = 0.0

    def run(self, board: Any, sidecar: Path, options: dict) -> Any:
        """Time the dispatch and the report's marked span."""
        start = time.perf_counter()
        report = self.inner.run(board, sidecar, options)
        self.run_s += time.perf_counter() - start
        stamps = [m.monotonic_ns for m in report.markers]
        self.marked_s += (max(stamps) - min(stamps)) / 1e9
        return report

    def clock_offset(self, board: Any, address: tuple[str, int], token: str | None = None) -> Any:
        """Forwarded."""
        return self.inner.clock_offset(board, address, token)

    def worker_process(self, board: Any) -> tuple[int, str]:
        """Forwarded."""
        return self.inner.worker_process(board)

    def close(self) -> None:
        """Nothing: the bench closes the inner dispatcher."""


def one_round(name: str, dispatch: Any, files: list[Path], rig: Any, options: ProfileOptions, db: Path) -> dict:
    """Run the campaign once; per-measurement figures in seconds."""
    timed = TimedDispatch(dispatch)
    start = time.perf_counter()
    summary = run_campaign(name, plan(files, ["vpi"]), rig, options, db, timed)
    wall = time.perf_counter() - start
    n = summary.measured
    if n != len(files) or summary.failed:
        raise RuntimeError(f"{name}: {summary}")
    return {"per_min": 60.0 * n / wall, "wall_s": wall / n, "board_s": timed.marked_s / n,
            "setup_s": (timed.run_s - timed.marked_s) / n, "host_s": (wall - timed.run_s) / n}


def main() -> None:
    """Print the throughput table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--idle-s", type=float, default=0.3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from distributed import LocalCluster

    root = Path(tempfile.mkdtemp(prefix="profile-bench-"))
    rig = parse_rig({"host": {"traces": str(root / "traces")}, "boards": [{"name": "vpi", "host": "virtual", "model": "rpi4", "seq_len": 32}],
                     "sensors": [{"name": "vpi-supply", "kind": "virtual-board", "measures": "vpi"}]}, "bench rig")
    options = ProfileOptions(runs=args.runs, warmup=1, idle_s=args.idle_s, repeats=args.repeats)
    import os

    os.environ["EDGETRAN_ARTIFACTS"] = str(root / "exports")
    files = []
    start = time.perf_counter()
    for i, model in enumerate(models(args.models)):
        files.append(root / f"model-{i}.json")
        files[-1].write_text(json.dumps(model))
        resolve_artifact(files[-1], "onnxruntime", 32, 1, options.seed)
    export_s = (time.perf_counter() - start) / args.models

    os.environ["EDGETRAN_ARTIFACT_CACHE"] = str(root / "worker-cache")  # inherited by the cluster's worker process
    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, resources={"board-vpi": 1}, dashboard_address=":0")
    dask_dispatch = DaskDispatch(cluster.scheduler_address)
    local = InProcessDispatch()
    rounds: dict[str, list[dict]] = {"in-process": [], "dask": []}
    try:
        for r in range(args.rounds):
            for label, dispatch in (("in-process", local), ("dask", dask_dispatch)):
                rounds[label].append(one_round(f"{label}-{r}", dispatch, files, rig, options, root / "bench.db"))
    finally:
        dask_dispatch.close()
        cluster.close()
    table = {label: {k: statistics.median(row[k] for row in rows) for k in rows[0]} for label, rows in rounds.items()}
    ratios = {k: table["dask"][k] / table["in-process"][k] for k in ("per_min", "wall_s", "host_s", "setup_s")}
    result = {"models": args.models, "rounds": args.rounds, "runs": args.runs, "repeats": args.repeats, "export_s_per_model": export_s,
              "dispatch": table, "dask_over_in_process": ratios}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"virtual RPi 4, {args.models} models x {args.rounds} rounds, {args.repeats} repeat(s) x {args.runs} runs, idle {args.idle_s} s; export {export_s:.2f} s/model (once)")
    print(f"{'dispatch':<11} {'meas/min':>9} {'wall s':>8} {'board s':>8} {'setup s':>8} {'host s':>8}")
    for label, row in table.items():
        print(f"{label:<11} {row['per_min']:9.1f} {row['wall_s']:8.3f} {row['board_s']:8.3f} {row['setup_s']:8.3f} {row['host_s']:8.3f}")
    print("dask / in-process: " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
