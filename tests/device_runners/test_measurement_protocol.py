"""The measurement protocol on real ONNX files: runtimes agree, markers, errors, the watchdog."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from device_runners.artifact import ArtifactError, load_artifact
from device_runners.protocol import ProtocolError, RunTimeout, make_inputs, measure
from device_runners.runtimes import DeviceUnavailable, open_runtime

SEQ = 16  # the fixtures' sequence length


def test_onnxruntime_and_openvino_give_the_same_logits(tiny: Path):
    artifact = load_artifact(tiny)
    ort = open_runtime(artifact, "onnxruntime")
    ov = open_runtime(artifact, "openvino")  # OpenVINO reads the .onnx file directly, f32 hint
    assert [spec[0] for spec in ort.input_specs] == ["input_ids", "attention_mask", "token_type_ids"]
    inputs = make_inputs(ort.input_specs, batch=3, seq_len=SEQ, vocab_size=100, seed=5)
    a, b = ort.run(inputs), ov.run(inputs)
    assert a.shape == (3, 2)
    assert np.max(np.abs(a - b)) <= 1e-4
    assert ov.versions["precision"] == "f32"


def test_measure_reports_latency_markers_and_resources(tiny: Path):
    seen = []
    report = measure(tiny, "onnxruntime", batch=4, runs=12, warmup=2, idle_s=0.05, marker_sink=seen.append)
    assert report.runs == 12 and report.batch == 4 and report.seq_len == SEQ
    kinds = [m.kind for m in report.markers]
    assert kinds[:3] == ["idle_begin", "idle_end", "block_begin"] and kinds[-1] == "block_end"
    assert kinds.count("run_begin") == kinds.count("run_end") == 12
    assert seen == report.markers
    monotonic = [m.monotonic_ns for m in report.markers]
    assert monotonic == sorted(monotonic)
    idle = (report.markers[1].monotonic_ns - report.markers[0].monotonic_ns) / 1e9
    assert 0.05 <= idle < 0.5
    lat = report.latency_per_batch
    assert 0 < lat.min_s <= lat.median_s <= lat.p90_s <= lat.max_s
    assert report.latency_per_sequence.median_s == pytest.approx(lat.median_s / 4)
    assert report.throughput_seq_per_s == pytest.approx(4 * 12 / report.block_s)
    assert report.peak_rss_bytes > 10 * 2**20 and report.cpu_time_s >= 0
    assert report.versions["onnxruntime"]
    assert json.loads(json.dumps(report.to_dict()))["runtime"] == "onnxruntime"


def test_each_run_is_bracketed_by_its_markers(tiny: Path):
    report = measure(tiny, "openvino", runs=5, warmup=1)
    begins = {m.index: m.monotonic_ns for m in report.markers if m.kind == "run_begin"}
    ends = {m.index: m.monotonic_ns for m in report.markers if m.kind == "run_end"}
    for i, latency in enumerate(report.latencies_s):
        assert latency <= (ends[i] - begins[i]) / 1e9 <= latency + 1e-3  # markers bracket the timed call


def test_sha256_mismatch_is_refused(make_artifact):
    sidecar = make_artifact("tiny")
    model = next(sidecar.parent.glob("*.onnx"))
    data = bytearray(model.read_bytes())
    data[-5] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="hash to"):
        measure(sidecar)


def test_static_batch_and_bad_counts_are_refused(make_artifact):
    sidecar = make_artifact("tiny-static")
    with pytest.raises(ProtocolError, match="static batch of 1; asked for batch 8"):
        measure(sidecar, batch=8)
    with pytest.raises(ProtocolError, match="runs >= 1"):
        measure(sidecar, runs=0)


def test_wrong_shapes_and_missing_inputs_are_errors(tiny: Path):
    session = open_runtime(load_artifact(tiny), "onnxruntime")
    good = make_inputs(session.input_specs, 1, SEQ, 100, 0)
    with pytest.raises(Exception, match="(?i)dimension|shape|index"):
        session.run({**good, "input_ids": np.ones((1, SEQ + 3), dtype=np.int64)})
    with pytest.raises(KeyError):
        session.run({"input_ids": good["input_ids"]})


def test_unknown_devices_list_what_is_offered(tiny: Path):
    artifact = load_artifact(tiny)
    with pytest.raises(DeviceUnavailable, match=r"does not offer device 'MYRIAD' \(offers: CPU"):
        open_runtime(artifact, "openvino", device="MYRIAD")
    with pytest.raises(DeviceUnavailable, match=r"does not offer device 'CUDA' \(offers: CPU"):
        open_runtime(artifact, "onnxruntime", device="CUDA")
    with pytest.raises(ValueError, match="tflite cannot run a onnx artifact"):
        open_runtime(artifact, "tflite")
    with pytest.raises(ValueError, match="precision applies to OpenVINO only"):
        open_runtime(artifact, "onnxruntime", precision="bf16")


def test_watchdog_abandons_a_run_that_is_too_slow(make_artifact):
    sidecar = make_artifact("slow")
    started = time.monotonic()
    # a run of the slow model takes 0.27-1 s on one thread, far past 0.05 s
    with pytest.raises(RunTimeout, match=r"warmup run 0 .* exceeded 0.05 s; abandoned"):
        measure(sidecar, "onnxruntime", runs=2, warmup=1, run_timeout_s=0.05, threads=1)
    assert time.monotonic() - started < 5.0


@pytest.mark.timeout(120)
def test_thousands_of_runs_do_not_fill_the_report_pipe(tiny: Path):
    """5,000 runs write ~0.8 MB of markers: past the 64 KiB pipe buffer the child blocked forever."""
    report = measure(tiny, "onnxruntime", runs=5000, warmup=1, threads=1, run_timeout_s=10.0)
    assert report.runs == 5000
    assert len(report.markers) == 2 * 5000 + 2
    assert [m.index for m in report.markers if m.kind == "run_end"] == list(range(5000))


HANGING_CHILD = """
import json, sys, time
from device_runners.protocol import ProgressBoard
request = json.loads(sys.stdin.read())
board = ProgressBoard(request["progress"])
board.set("loading")
time.sleep(3600)  # a runtime that never finishes loading
"""


@pytest.mark.timeout(60)
def test_a_child_that_hangs_while_loading_is_killed(tiny: Path):
    started = time.monotonic()
    with pytest.raises(RunTimeout, match=r"loading of .* exceeded 1 s; abandoned"):
        measure(tiny, "onnxruntime", runs=2, warmup=1, threads=1, load_timeout_s=1.0,
                runner_command=[sys.executable, "-c", HANGING_CHILD])
    assert time.monotonic() - started < 10.0


def test_a_flood_on_stderr_does_not_block_the_child(tiny: Path):
    """A runtime that logs a lot (here 1 MB) to stderr must not block on a full pipe."""
    flood = "import sys; sys.stderr.write('w' * 2**20); sys.stderr.flush()\nfrom device_runners.protocol import _child_main; sys.exit(_child_main())"
    report = measure(tiny, "onnxruntime", runs=3, warmup=1, threads=1, runner_command=[sys.executable, "-c", flood])
    assert report.runs == 3
