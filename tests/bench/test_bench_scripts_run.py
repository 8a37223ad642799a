"""The benchmark scripts run end to end (tiny sizes; no timing is asserted here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_space_bench_prints_every_rate():
    result = subprocess.run(
        [sys.executable, str(BENCH / "space_bench.py"), "--n", "300", "--repeats", "1", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    figures = json.loads(result.stdout)
    assert set(figures["sampling_per_s"]) == {"sobol", "lhs", "halton", "hammersly", "random"}
    for key in ("embed_per_s", "decode_per_s", "decode_many_per_s", "project_per_s"):
        assert figures[key] > 0


def test_sensor_bench_prints_every_figure():
    result = subprocess.run(
        [
            sys.executable,
            str(BENCH / "sensor_bench.py"),
            "--daemon-seconds", "0.5", "--reads", "200", "--trace-samples", "2000", "--energy-seconds", "10", "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    figures = json.loads(result.stdout)
    assert figures["read_overhead"]["fast"]["median_us"] > 0
    assert figures["daemon"]["ticks"] > 0
    assert figures["trace_write"]["append_samples_per_s"] > 0
    assert figures["energy_windows"]["one_second_windows"] == 9


def test_runner_bench_prints_overhead_and_jitter():
    result = subprocess.run(
        [sys.executable, str(BENCH / "runner_bench.py"), "--runs", "20", "--repeats", "1", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    figures = json.loads(result.stdout)
    assert "onnxruntime" in figures
    for row in figures.values():
        assert row["bare_median_ms"] > 0 and row["protocol_median_ms"] > 0
        assert row["marker_gap_median_us"] > 0


def test_profile_bench_prints_both_dispatchers():
    result = subprocess.run(
        [sys.executable, str(BENCH / "profile_bench.py"), "--models", "1", "--rounds", "1", "--runs", "4", "--idle-s", "0.2", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    figures = json.loads(result.stdout)
    for label in ("in-process", "dask"):
        row = figures["dispatch"][label]
        assert row["per_min"] > 0 and row["board_s"] > 0.2 and row["host_s"] > 0
        assert abs(row["board_s"] + row["setup_s"] + row["host_s"] - row["wall_s"]) < 1e-6
