"""bench/protran_bench.py runs end to end on the two smallest pools (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_protran_bench_reports_every_device_asked_for():
    result = subprocess.run(
        [
            sys.executable, str(BENCH / "protran_bench.py"),
            "--devices", "npu_ncs_b1_r1,gpu_jetson-nano_b1_r1", "--seeds", "1", "--jobs", "1", "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    report = json.loads(result.stdout)
    devices = {d["device"]: d for d in report["devices"]}
    assert set(devices) == {"npu_ncs_b1_r1", "gpu_jetson-nano_b1_r1"}
    for device, pool in (("npu_ncs_b1_r1", 17), ("gpu_jetson-nano_b1_r1", 18)):
        row = devices[device]
        assert row["pool"] == pool and row["seeds"] == 1 and len(row["runs"]) == 1
        assert row["paper_samples"] in (21, 22)
        run = row["runs"][0]
        assert 16 <= run["samples"] <= pool
        assert run["converged"] == (run["stop_reason"] == "converged")
        assert set(row["pool_5fold_mse"]) == {"latency_s", "energy_j", "peak_power_w"}
