"""`edgetran sensor daemon` (as systemd starts it: `python -m sensors`): a rotated recording with retention (issue #11 item 2).

The deployed config recorded one never-rotated file (~3.5 GB/day at 1 kHz fills an SD
card in days). A ``record`` directory now gets a rotated set: by size, by UTC day, and
the oldest files deleted beyond ``keep_mb`` / ``keep_files``.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sensors.cli import load_daemon_config, recording
from sensors.daemon import request
from sensors.trace.rotation import DEFAULT_KEEP_BYTES, DEFAULT_MAX_BYTES, list_set

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "sensors" / "systemd" / "sensor-daemon.example.toml"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def daemon_process(config: Path, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "sensors", "sensor", "daemon", "--config", str(config)], cwd=cwd,
                            stderr=subprocess.PIPE, text=True)


def wait_for(address, timeout_s: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return request(address, {"cmd": "status"})
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_a_record_directory_is_rotated_by_size_with_retention(tmp_path: Path):
    port = free_port()
    config = tmp_path / "daemon.toml"
    config.write_text(
        f'[daemon]\nport = {port}\nrate_hz = 1000\nrealtime_priority = 0\nrecord = "traces/"\n'
        "rotate_mb = 0.02\nrotate_daily = true\nkeep_mb = 0.1\n\n"  # 20 KiB files, 100 KiB kept: ~0.5 s and ~2.5 s at 1 kHz
        '[[sensors]]\nkind = "emulated-ina219"\nwaveform = "constant:3.0"\n'
    )
    child = daemon_process(config, tmp_path)
    try:
        wait_for(("127.0.0.1", port))
        time.sleep(4.0)
        status = request(("127.0.0.1", port), {"cmd": "status"})
    finally:
        child.send_signal(signal.SIGTERM)
        _, stderr = child.communicate(timeout=20)
    assert child.returncode == 0, stderr
    files = list_set(tmp_path / "traces")
    assert len(files) >= 3  # rotated
    assert sum(f.size_bytes for f in files) <= 0.1 * 2**20 + 30 * 1024  # retention: the limit plus the current file
    recording_state = status["recording"]
    assert recording_state["state"] == "ok" and recording_state["current_file"].startswith(str(tmp_path / "traces" / "edgetran-"))
    assert status["record_path"] == recording_state["current_file"]
    assert len(recording_state["files"]) >= 3


def test_rotation_keys_need_a_record_directory(tmp_path: Path):
    config = tmp_path / "daemon.toml"
    config.write_text('[daemon]\nport = 0\nrecord = "one.ettrace"\nrotate_mb = 10\n\n[[sensors]]\nkind = "emulated-ina219"\n')
    done = subprocess.run([sys.executable, "-m", "sensors", "sensor", "daemon", "--config", str(config)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "rotate_mb applies to a rotated set" in done.stderr
    config.write_text('[daemon]\nport = 0\nrecord = "traces/"\nkeep_mb = -1\n\n[[sensors]]\nkind = "emulated-ina219"\n')
    done = subprocess.run([sys.executable, "-m", "sensors", "sensor", "daemon", "--config", str(config)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "keep_mb must be a positive number" in done.stderr


def test_the_example_config_rotates_with_pi_defaults(tmp_path: Path):
    options = load_daemon_config(EXAMPLE)["daemon"]
    assert options["record"].endswith("/")
    assert options["rotate_mb"] * 2**20 == DEFAULT_MAX_BYTES and options["keep_mb"] * 2**20 == DEFAULT_KEEP_BYTES
    assert options["rotate_daily"] is True
    local = {**options, "record": str(tmp_path / "traces") + "/"}
    assert set(recording(local)) == {"open_writer"}
    single = {k: v for k, v in options.items() if k not in ("rotate_mb", "rotate_daily", "keep_mb", "keep_files")}
    assert recording({**single, "record": str(tmp_path / "one.ettrace")}) == {"record_path": tmp_path / "one.ettrace"}


@pytest.mark.parametrize("text", ["[daemon]\nring_seconds = 0\n", "[daemon]\nring_seconds = \"long\"\n"])
def test_a_bad_ring_size_is_one_line_exit_2(tmp_path: Path, text: str):
    config = tmp_path / "daemon.toml"
    config.write_text(text + '\n[[sensors]]\nkind = "emulated-ina219"\n')
    done = subprocess.run([sys.executable, "-m", "sensors", "sensor", "daemon", "--config", str(config)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0 and "ring_seconds" in done.stderr, done.stderr
