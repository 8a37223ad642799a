"""bench/protran_bench.py runs end to end on the two smallest pools (no timing asserted); its noise estimate."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
MEASURES = {"latency_s", "energy_j", "peak_power_w"}


def _bench_module():
    spec = importlib.util.spec_from_file_location("protran_bench", BENCH / "protran_bench.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


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
    assert "gbdt" in report["recipe"] and "gpr" in report["ours"]
    devices = {d["device"]: d for d in report["devices"]}
    assert set(devices) == {"npu_ncs_b1_r1", "gpu_jetson-nano_b1_r1"}
    for device, pool in (("npu_ncs_b1_r1", 17), ("gpu_jetson-nano_b1_r1", 18)):
        row = devices[device]
        assert row["pool"] == pool and row["seeds"] == 1 and len(row["runs"]) == 1
        assert row["paper_samples"] in (21, 22) and row["held_out"] == round(0.2 * pool)
        run = row["runs"][0]
        assert 2 <= run["recipe_samples"] <= pool - row["held_out"]
        for side in ("recipe", "ours", "random"):
            assert 0 <= row[side]["within_1sigma"] <= row[side]["within_2sigma"] <= 1
            assert row[side]["mse"] > 0 and row[side]["median_relative_error"] > 0
        assert set(row["pool_5fold_mse"]) == set(row["gamma_noise"]) == set(row["pool_variance"]) == MEASURES
        # The published data measure no architecture twice: no repeat-based floor exists.
        assert row["repeated_architectures"] == 0 and row["repeat_variance"] is None
        assert all(0 <= row["gamma_noise"][m] <= 2 * row["pool_variance"][m] + 1e-12 for m in MEASURES)


def test_bench_refuses_an_unknown_device_with_exit_code_2():
    result = subprocess.run(
        [sys.executable, str(BENCH / "protran_bench.py"), "--devices", "npu_xyz_b1_r1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "unknown devices" in result.stderr


@pytest.mark.parametrize("noise", [0.0, 0.1, 0.2])
def test_gamma_test_recovers_a_known_noise_variance(noise):
    """Smooth function of 3 inputs (variance about 0.57) plus independent noise: the intercept estimates its variance.

    The estimate errs high where neighbours are far apart for the function's curvature: with
    400 rows instead of 1000 the noise-free estimate is 0.0065 instead of 0.0011.
    """
    gamma_test = _bench_module().gamma_test
    rng = np.random.default_rng(5)
    X = rng.uniform(-1, 1, size=(1000, 3))
    y = np.sin(2 * X[:, 0]) + X[:, 1] ** 2 + 0.5 * X[:, 2] + noise * rng.normal(size=1000)
    estimate = gamma_test(X, y)
    if noise == 0:
        assert estimate < 0.003
    else:
        assert 0.8 * noise**2 <= estimate <= 1.25 * noise**2, (estimate, noise**2)
