"""Every installed runtime gives the same logits on artifacts exported from one real model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from device_runners.artifact import load_artifact
from device_runners.protocol import make_inputs, measure
from device_runners.runtimes import open_runtime, runtime_devices

torch = pytest.importorskip("torch")  # the exports are made on the host side

MIXED = {"l": 2, "o": [["sa_sdp_32", "l_dft_32", "c_9_32", "sa_wma_32"], ["l_dct_64", "c_5_64"]], "h": [128, 128], "f": [[256], [256, 256]]}
SEQ = 16


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Path]:
    from codesign.architecture import Architecture
    from codesign.export.exporter import export_model
    from codesign.export.formats import missing_modules
    from codesign.models.build import build_model

    from codesign.models.config import ModelConfig

    # a small vocabulary, as models trained on the bundled corpus have: token ids must respect it
    model = build_model(Architecture.from_dict(MIXED), config=ModelConfig(vocab_size=500, max_positions=64), seed=0)
    folder = tmp_path_factory.mktemp("artifacts")
    out = {}
    for fmt in ("onnx", "openvino", "tflite"):
        if not missing_modules(fmt):
            out[fmt] = Path(export_model(model, fmt, SEQ, 1, folder, seed=0)["sidecar"])
    return out


def test_all_runtimes_agree_on_the_logits(exported):
    sessions = {}
    for fmt, sidecar in exported.items():
        artifact = load_artifact(sidecar)
        sessions[f"{fmt}/default"] = open_runtime(artifact)
        if fmt == "onnx" and runtime_devices()["openvino"]["installed"]:
            sessions["onnx/openvino"] = open_runtime(artifact, "openvino")
    assert {"onnx/default", "openvino/default"} <= set(sessions)
    reference = sessions["onnx/default"]
    inputs = make_inputs(reference.input_specs, 1, SEQ, 500, seed=3)
    expected = reference.run(inputs)
    for name, session in sessions.items():
        assert np.max(np.abs(session.run(inputs) - expected)) <= 1e-4, name


@pytest.mark.parametrize("fmt", ["onnx", "openvino", "tflite"])
def test_protocol_runs_every_format(exported, fmt):
    if fmt not in exported:
        pytest.skip(f"{fmt} export tools not installed")
    report = measure(exported[fmt], runs=3, warmup=1)
    assert report.artifact_format == fmt and report.runs == 3
    assert report.latency_per_batch.median_s > 0
