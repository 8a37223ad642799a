"""`edgetran run ARTIFACT ...` and `edgetran run devices`: the CLI contract and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest



def test_devices_json(cli):
    code, out, _ = cli("run", "devices", "--json")
    devices = json.loads(out)
    assert code == 0
    assert set(devices) == {"onnxruntime", "openvino", "tflite"}
    assert devices["onnxruntime"]["installed"] and "CPU" in devices["onnxruntime"]["devices"]


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_run_json_contract(cli, tiny: Path, runtime: str):
    threads = ["--threads", "1"] + (["--inter-threads", "1"] if runtime == "onnxruntime" else [])
    code, out, _ = cli("run", str(tiny), "--runtime", runtime, "--batch", "2", "--runs", "6", "--warmup", "1", "--idle-s", "0.02", *threads, "--json")
    report = json.loads(out)
    assert code == 0
    assert report["runtime"] == runtime and report["device"] == "CPU" and report["batch"] == 2
    assert set(report["latency_per_batch"]) == {"median_s", "mean_s", "p90_s", "min_s", "max_s", "std_s"}
    assert [m["kind"] for m in report["markers"]].count("run_end") == 6
    assert report["versions"][runtime]


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--runtime", "tensorflow"], "unknown runtime 'tensorflow'"),
        (["--runtime", "openvino", "--device", "NPU"], "does not offer device 'NPU'"),
        (["--runtime", "openvino", "--precision", "int4"], "precision must be one of f32, bf16, f16"),
        (["--runtime", "tflite"], "tflite cannot run a onnx artifact"),
        (["--runtime", "openvino", "--inter-threads", "2"], "--inter-threads applies to ONNX Runtime only"),
    ],
)
def test_bad_requests_exit_2_with_one_line(cli, tiny: Path, extra, fragment):
    code, out, err = cli("run", str(tiny), *extra)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and fragment in err


def test_missing_artifact_and_slow_model(cli, tmp_path: Path, make_artifact):
    code, _, err = cli("run", str(tmp_path / "nothing.json"))
    assert code == 2 and "nothing.json: file not found" in err  # #12: names the real problem
    code, _, err = cli("run", str(make_artifact("slow")), "--timeout-s", "0.2", "--threads", "1")
    assert code == 2 and "exceeded 0.2 s; abandoned" in err
