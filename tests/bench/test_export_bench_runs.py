"""bench/export_bench.py runs end to end in its --tiny mode (no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_export_bench_tiny_prints_every_figure():
    result = subprocess.run(
        [sys.executable, str(BENCH / "export_bench.py"), "--tiny", "--formats", "onnx", "--threads", "1", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    report = json.loads(result.stdout)
    assert report["formats"] == ["onnx"] and report["seq_len"] == 16
    (row,) = report["rows"]
    assert row["parameters"] > 0 and row["torch_latency_ms"]["median"] > 0
    onnx = row["formats"]["onnx"]
    for key in ("export_s", "export_and_check_s", "size_mb"):
        assert onnx[key] > 0
    assert onnx["latency_ms"]["median"] > 0 and onnx["latency_ms"]["p90"] >= onnx["latency_ms"]["median"]
    assert onnx["max_abs_diff"] <= 1e-4
