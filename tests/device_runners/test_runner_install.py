"""The board-side install: the `runner` extra in a fresh virtual environment runs a model, without torch."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_runner_extra_installs_without_torch_and_runs_a_model(tmp_path: Path, tiny: Path):
    env_dir = tmp_path / "board-venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", f"{REPO_ROOT}[runner]"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    installed = subprocess.run([str(python), "-m", "pip", "list", "--format", "json"], capture_output=True, text=True, check=True)
    names = {item["name"].lower() for item in json.loads(installed.stdout)}
    assert "torch" not in names and "scipy" not in names and "scikit-learn" not in names
    assert {"onnxruntime", "openvino", "ai-edge-litert", "distributed", "smbus2"} <= names
    run = subprocess.run(
        [str(env_dir / "bin" / "edgetran"), "run", str(tiny), "--runs", "3", "--warmup", "1", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(run.stdout)
    assert report["runs"] == 3 and report["runtime"] == "onnxruntime"
    probe = subprocess.run([str(python), "-c", "import device_runners.protocol, sensors.daemon, sys; print('torch' in sys.modules)"], capture_output=True, text=True)
    assert probe.stdout.strip() == "False"
    assert sys.executable != str(python)
