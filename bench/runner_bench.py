"""Runner overhead: the latency the protocol reports vs a bare loop around the same session.

Run: python bench/runner_bench.py [--runs 300] [--repeats 5] [--json]

For each installed runtime, on the same small ONNX model (written here with the onnx
helper API; OpenVINO reads the .onnx directly) and in this one process:

* bare loop: ``perf_counter`` around ``session.run`` only, over ``--runs`` runs;
* protocol: :func:`device_runners.protocol.run_protocol` on the same artifact (which
  also timestamps two markers per run), over the same number of runs;

alternating the two ``--repeats`` times; overhead = median(protocol) / median(bare) - 1
over the medians of the repeats (target <= 2%). Marker jitter: the spread of the gap
between one run's ``run_end`` marker and the next run's ``run_begin`` marker (what the
markers cost and how steady they are), as median, p99 and standard deviation in us.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from device_runners.artifact import load_artifact
from device_runners.protocol import make_inputs, run_protocol
from device_runners.runtimes import open_runtime, runtime_devices

SEQ_LEN = 128
OVERHEAD_TARGET = 0.02


def write_model(folder: Path, hidden: int = 256, layers: int = 4) -> Path:
    """A small encoder-like ONNX model (embedding, dense layers with tanh, pooled logits) as an artifact."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    vocab = 1000
    inits = [
        numpy_helper.from_array(rng.normal(size=(vocab, hidden)).astype(np.float32), "emb"),
        numpy_helper.from_array(np.array([vocab], dtype=np.int64), "vocab"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
    ]
    nodes = [helper.make_node("Mod", ["input_ids", "vocab"], ["ids"]), helper.make_node("Gather", ["emb", "ids"], ["x0"])]
    for i in range(layers):
        inits.append(numpy_helper.from_array((rng.normal(size=(hidden, hidden)) / np.sqrt(hidden)).astype(np.float32), f"w{i}"))
        nodes += [helper.make_node("MatMul", [f"x{i}", f"w{i}"], [f"m{i}"]), helper.make_node("Tanh", [f"m{i}"], [f"x{i + 1}"])]
    inits.append(numpy_helper.from_array(rng.normal(size=(hidden, 2)).astype(np.float32), "head"))
    nodes += [helper.make_node("ReduceMean", [f"x{layers}", "axis1"], ["pooled"], keepdims=0), helper.make_node("MatMul", ["pooled", "head"], ["logits"])]
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", SEQ_LEN]) for n in ("input_ids", "attention_mask", "token_type_ids")]
    graph = helper.make_graph(nodes, "bench", inputs, [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    data = model.SerializeToString()
    digest = hashlib.sha256(data).hexdigest()
    (folder / f"{digest}.onnx").write_bytes(data)
    meta = {
        "sha256": digest, "format": "onnx", "files": [f"{digest}.onnx"], "architecture": {}, "seq_len": SEQ_LEN, "batch": 1,
        "dynamic_batch": True, "vocab_size": vocab, "inputs": [{"name": i.name} for i in inputs], "outputs": [{"name": "logits"}],
        "tools": {"onnx": onnx.__version__},
    }
    sidecar = folder / f"{digest}.json"
    sidecar.write_text(json.dumps(meta))
    return sidecar


def bare_loop(sidecar: Path, runtime: str, runs: int, threads: int) -> float:
    """Median seconds per run of a bare perf_counter loop around session.run."""
    session = open_runtime(load_artifact(sidecar), runtime, threads=threads)
    inputs = make_inputs(session.input_specs, 1, SEQ_LEN, 1000, 0)
    for _ in range(5):
        session.run(inputs)
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        session.run(inputs)
        times[i] = time.perf_counter() - start
    return float(np.median(times))


def compare(sidecar: Path, runtime: str, runs: int, repeats: int, threads: int) -> dict:
    """Protocol vs bare loop, alternating; overhead and marker jitter."""
    bare, protocol, gaps = [], [], []
    for _ in range(repeats):
        bare.append(bare_loop(sidecar, runtime, runs, threads))
        report = run_protocol(sidecar, runtime, runs=runs, warmup=5, threads=threads)
        protocol.append(report.latency_per_batch.median_s)
        ends = [m.monotonic_ns for m in report.markers if m.kind == "run_end"][:-1]
        begins = [m.monotonic_ns for m in report.markers if m.kind == "run_begin"][1:]
        gaps.extend((b - e) / 1e3 for b, e in zip(begins, ends))
    overhead = statistics.median(protocol) / statistics.median(bare) - 1
    gaps_arr = np.array(gaps)
    return {
        "bare_median_ms": statistics.median(bare) * 1e3,
        "protocol_median_ms": statistics.median(protocol) * 1e3,
        "overhead": overhead,
        "target_met": overhead <= OVERHEAD_TARGET,
        "marker_gap_median_us": float(np.median(gaps_arr)),
        "marker_gap_p99_us": float(np.percentile(gaps_arr, 99)),
        "marker_gap_std_us": float(np.std(gaps_arr)),
    }


def main() -> None:
    """Measure every installed runtime that can run ONNX and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    installed = runtime_devices()
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        sidecar = write_model(Path(folder))
        for runtime in ("onnxruntime", "openvino"):
            if installed[runtime]["installed"]:
                results[runtime] = compare(sidecar, runtime, args.runs, args.repeats, args.threads)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"runner overhead, seq {SEQ_LEN}, batch 1, {args.threads} thread(s), {args.runs} runs x {args.repeats} alternating repeats:")
    for runtime, r in results.items():
        print(
            f"  {runtime:<12} bare {r['bare_median_ms']:.4f} ms, protocol {r['protocol_median_ms']:.4f} ms: overhead {r['overhead'] * 100:+.2f}% "
            f"(target <= {OVERHEAD_TARGET * 100:.0f}%: {'met' if r['target_met'] else 'NOT met'}); marker gap median "
            f"{r['marker_gap_median_us']:.2f} us, p99 {r['marker_gap_p99_us']:.2f} us, std {r['marker_gap_std_us']:.2f} us"
        )
    print("  tflite: not measured here (the protocol's TFLite path needs a .tflite artifact; see bench/export_bench.py)")


if __name__ == "__main__":
    main()
