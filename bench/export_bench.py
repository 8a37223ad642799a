"""Export time and runtime latency per format, for architectures from BERT-Tiny to BERT-Base.

Run: python bench/export_bench.py [--archs bert-tiny,bert-mini,hetero-256,bert-small,bert-base]
                                  [--formats onnx,openvino,tflite] [--seq-len 128] [--batch 1]
                                  [--runs 20] [--threads 2] [--tiny] [--json]

For each architecture and format, in this one process: the export time (writing the file,
then the parity check against torch, which every export runs), the artifact size, and
the runtime latency of one batch (median and 90th percentile of ``--runs`` timed runs
after ``--warmup`` untimed ones) through the board-side sessions of
``device_runners.runtimes`` (ONNX Runtime, OpenVINO with f32 precision, the LiteRT
interpreter). torch eager latency on the same inputs is the reference column. All
runtimes and torch get the same number of threads. ``--tiny`` runs a seconds-long
smoke version (BERT-Tiny-sized layers, 16 tokens, 2 runs); its numbers mean nothing.

Artifacts go to a temporary folder (``--keep DIR`` keeps them).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from codesign.architecture import Architecture
from codesign.export.exporter import example_inputs, export_model
from codesign.export.formats import FORMATS, missing_modules
from codesign.models.build import build_model
from codesign.models.config import ModelConfig
from codesign.models.params import parameter_report
from device_runners.artifact import load_artifact
from device_runners.runtimes import open_session

ARCHITECTURES = {
    "bert-tiny": {"l": 2, "o": [["sa_sdp_64"] * 2] * 2, "h": [128] * 2, "f": [[512]] * 2},
    "bert-mini": {"l": 4, "o": [["sa_sdp_64"] * 4] * 4, "h": [256] * 4, "f": [[1024]] * 4},
    # a heterogeneous model of the FlexiBERT 2.0 space: all seven operations, two widths, FF stacks
    "hetero-256": {
        "l": 4,
        "o": [
            ["sa_sdp_64", "sa_wma_64", "l_dft_64", "l_dct_64"],
            ["c_5_64", "c_9_64", "c_13_64", "sa_sdp_64"],
            ["sa_sdp_32", "sa_sdp_32", "l_dct_32", "l_dct_32", "c_9_32", "c_9_32", "sa_wma_32", "sa_wma_32"],
            ["sa_sdp_32", "sa_sdp_32", "l_dft_32", "l_dft_32", "c_13_32", "c_13_32", "sa_wma_32", "sa_wma_32"],
        ],
        "h": [256, 256, 256, 256],
        "f": [[1024], [512, 512], [1024], [2048]],
    },
    "bert-small": {"l": 4, "o": [["sa_sdp_64"] * 8] * 4, "h": [512] * 4, "f": [[2048]] * 4},
    "bert-base": {"l": 12, "o": [["sa_sdp_64"] * 12] * 12, "h": [768] * 12, "f": [[3072]] * 12},
}
TINY_ARCHITECTURE = {"l": 2, "o": [["sa_sdp_16", "l_dft_16"], ["c_5_16", "sa_wma_16"]], "h": [32, 32], "f": [[64], [64]]}


def latency_ms(run, feed: dict, runs: int, warmup: int) -> tuple[float, float]:
    """Median and 90th-percentile milliseconds of ``runs`` timed calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        run(feed)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run(feed)
        times.append((time.perf_counter() - start) * 1000.0)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(round(0.9 * (len(times) - 1))))]


def bench_architecture(name: str, model_dict: dict, formats: list, args, out_dir: Path, config: ModelConfig) -> dict:
    """Export and time one architecture in every available format."""
    arch = Architecture.from_dict(model_dict)
    model = build_model(arch, "classify", num_labels=2, config=config, seed=0)
    inputs = example_inputs(model, args.seq_len, args.batch, seed=1)
    feed = {key: tensor.numpy() for key, tensor in inputs.items()}

    def torch_run(_feed: dict) -> None:
        with torch.no_grad():
            model(inputs["input_ids"], inputs["attention_mask"], inputs["token_type_ids"])

    median, p90 = latency_ms(torch_run, feed, args.runs, args.warmup)
    row = {
        "architecture": name,
        "parameters": parameter_report(arch, config)["parameters"],
        "torch_latency_ms": {"median": median, "p90": p90},
        "formats": {},
    }
    for fmt in formats:
        missing = missing_modules(fmt)
        if missing:
            row["formats"][fmt] = {"skipped": f"not installed: {', '.join(missing)}"}
            continue
        start = time.perf_counter()
        result = export_model(model, fmt, args.seq_len, args.batch, out_dir, seed=0)
        total = time.perf_counter() - start
        artifact = load_artifact(result["sidecar"])
        session = open_session(artifact, threads=args.threads)
        median, p90 = latency_ms(session.run, feed, args.runs, args.warmup)
        row["formats"][fmt] = {
            "export_s": result["export_seconds"],
            "export_and_check_s": total,
            "size_mb": sum(p.stat().st_size for p in artifact.files) / 1e6,
            "max_abs_diff": result["parity"]["max_abs_diff"],
            "latency_ms": {"median": median, "p90": p90},
        }
        print(f"  {name} {fmt}: export {result['export_seconds']:.1f} s, median {median:.2f} ms", file=sys.stderr, flush=True)
    return row


def print_table(report: dict) -> None:
    """Side-by-side export time and latency per format."""
    formats = report["formats"]
    print(
        f"# export bench: seq_len {report['seq_len']}, batch {report['batch']}, {report['runs']} runs, "
        f"{report['threads']} threads, {report['machine']}"
    )
    header = ["architecture", "params (M)", "torch ms"] + [f"{f} export s" for f in formats] + [f"{f} ms" for f in formats]
    print(" | ".join(header))
    for row in report["rows"]:
        cells = [row["architecture"], f"{row['parameters'] / 1e6:.2f}", f"{row['torch_latency_ms']['median']:.2f}"]
        for key in ("export", "latency"):
            for fmt in formats:
                entry = row["formats"].get(fmt, {})
                if "skipped" in entry:
                    cells.append("n/a")
                elif key == "export":
                    cells.append(f"{entry['export_s']:.1f}")
                else:
                    cells.append(f"{entry['latency_ms']['median']:.2f}")
        print(" | ".join(cells))
    worst = max((e["max_abs_diff"] for r in report["rows"] for e in r["formats"].values() if "max_abs_diff" in e), default=0.0)
    print(f"largest |logit - torch| over all exports: {worst:.2e}")


def main() -> None:
    """Parse options, run, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default=",".join(ARCHITECTURES), help=f"comma-separated, from {', '.join(ARCHITECTURES)}")
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="threads for torch and every runtime")
    parser.add_argument("--tiny", action="store_true", help="smoke run: one tiny model, 16 tokens, 2 runs")
    parser.add_argument("--keep", type=Path, default=None, help="keep the artifacts in this folder")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    formats = [f for f in args.formats.split(",") if f]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        parser.error(f"unknown formats: {', '.join(unknown)}")
    if args.tiny:
        archs = {"tiny": TINY_ARCHITECTURE}
        args.seq_len, args.runs, args.warmup = 16, 2, 1
        config = ModelConfig(vocab_size=300, max_positions=16)
    else:
        names = [a for a in args.archs.split(",") if a]
        bad = [a for a in names if a not in ARCHITECTURES]
        if bad:
            parser.error(f"unknown architectures: {', '.join(bad)}")
        archs = {name: ARCHITECTURES[name] for name in names}
        config = ModelConfig()
    torch.set_num_threads(args.threads)
    report = {
        "seq_len": args.seq_len,
        "batch": args.batch,
        "runs": args.runs,
        "threads": args.threads,
        "machine": f"{platform.machine()}, {platform.processor() or platform.platform()}, Python {platform.python_version()}",
        "versions": {"torch": torch.__version__, "numpy": np.__version__},
        "formats": formats,
        "rows": [],
    }
    with tempfile.TemporaryDirectory(prefix="export-bench-") as tmp:
        out_dir = args.keep or Path(tmp)
        for name, model_dict in archs.items():
            report["rows"].append(bench_architecture(name, model_dict, formats, args, out_dir, config))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)


if __name__ == "__main__":
    main()
