"""A real dask scheduler and two real dask workers on loopback, one per virtual board.

The campaign measures three models on both boards; worker B is killed (SIGKILL, nanny and
all) while it measures its second model. Finished measurements survive, B's unfinished
ones are retried once and recorded as failed, A's finish, and the campaign completes.
With B's worker back, rerunning the campaign measures only what failed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from firmware_host.campaign import plan, run_campaign
from firmware_host.cli import main
from firmware_host.dispatch import DaskDispatch
from firmware_host.profile import ProfileOptions
from firmware_host.rig import load_rig
from firmware_host.store import MeasurementStore

MODELS = [
    {"l": 2, "o": [["sa_sdp_64", "sa_sdp_64"], ["sa_sdp_64", "sa_sdp_64"]], "h": [128, 128], "f": [[512], [512]]},
    {"l": 2, "o": [["l_dft_64", "l_dft_64"], ["sa_sdp_64", "sa_sdp_64"]], "h": [128, 128], "f": [[256], [256]]},
    {"l": 2, "o": [["c_5_64", "c_5_64"], ["sa_wma_64", "sa_wma_64"]], "h": [128, 128], "f": [[512, 512], [512]]},
]
OPTIONS = ProfileOptions(runs=8, warmup=1, idle_s=0.3, repeats=1, min_coverage=0.5)  # CI VMs: hypervisor steal opens 5-10 ms sampling gaps; coverage rules are tested in test_profile_coverage
RIG = """
[host]
traces = "{traces}"

[[boards]]
name = "vb-a"
model = "rpi4"

[[boards]]
name = "vb-b"
model = "jetson-nano"

[[sensors]]
name = "vb-a-supply"
kind = "virtual-board"
measures = "vb-a"
min_coverage = 0.5

[[sensors]]
name = "vb-b-supply"
kind = "virtual-board"
measures = "vb-b"
min_coverage = 0.5
"""


def _spawn(args: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    handle = open(log, "wb")
    return subprocess.Popen([sys.executable, "-m", "dask", *args], stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=30)


class Cluster:
    """A scheduler and named board workers, each in its own process group."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.file = root / "scheduler.json"
        self.scheduler = _spawn(["scheduler", "--host", "127.0.0.1", "--port", "0", "--scheduler-file", str(self.file), "--no-dashboard"], root / "scheduler.log")
        deadline = time.monotonic() + 60
        while not (self.file.is_file() and self.file.stat().st_size):
            assert time.monotonic() < deadline, (root / "scheduler.log").read_text()
            time.sleep(0.1)
        time.sleep(0.2)
        self.address = json.loads(self.file.read_text())["address"]
        self.workers: dict[str, subprocess.Popen] = {}

    def start_worker(self, board: str) -> None:
        env = {**os.environ, "EDGETRAN_ARTIFACT_CACHE": str(self.root / f"cache-{board}")}
        self.workers[board] = _spawn(
            ["worker", self.address, "--resources", f"board-{board}=1", "--nthreads", "1", "--name", board, "--no-dashboard"],
            self.root / f"worker-{board}.log", env)

    def wait_for(self, dispatch: DaskDispatch, boards: list[str]) -> None:
        deadline = time.monotonic() + 60
        while not all(dispatch.workers_of(b) for b in boards):
            assert time.monotonic() < deadline, "workers did not register"
            time.sleep(0.2)

    def close(self) -> None:
        for worker in self.workers.values():
            _kill(worker)
        _kill(self.scheduler)


@pytest.fixture
def cluster(tmp_path: Path):
    cluster = Cluster(tmp_path)
    yield cluster
    cluster.close()


def test_killed_worker_loses_no_finished_measurement_and_resume_completes(cluster, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("EDGETRAN_ARTIFACTS", str(tmp_path / "exports"))
    (tmp_path / "rig.toml").write_text(RIG.format(traces=tmp_path / "traces"))
    rig = load_rig(tmp_path / "rig.toml")
    files = []
    for i, model in enumerate(MODELS):
        files.append(tmp_path / f"model-{i}.json")
        files[-1].write_text(json.dumps(model))
    items = plan(files, ["vb-a", "vb-b"])
    db = tmp_path / "store.db"
    cluster.start_worker("vb-a")
    cluster.start_worker("vb-b")
    dispatch = DaskDispatch(cluster.address, disconnect_grace_s=3.0, task_timeout_s=120.0)
    events: list[tuple[str, str]] = []
    reasons: list[tuple[str, str, str]] = []  # why a measurement was retried or failed: shown when an assertion fails
    try:
        cluster.wait_for(dispatch, ["vb-a", "vb-b"])
        assert main(["rig", "check", "--rig", str(tmp_path / "rig.toml"), "--scheduler", cluster.address, "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)
        assert [r["ok"] for r in rows] == [True] * 4 and "offers board-vb-b" in rows[1]["detail"]
        started_on_b = []

        def on_event(kind: str, info: dict) -> None:
            if kind == "skip":
                return
            events.append((kind, info["item"].board))
            if info.get("reason"):
                reasons.append((kind, info["item"].board, info["reason"]))
            if kind == "start" and info["item"].board == "vb-b":
                started_on_b.append(info["item"])
                if len(started_on_b) == 2:
                    time.sleep(1.0)  # B is now inside its second measurement
                    _kill(cluster.workers["vb-b"])

        summary = run_campaign("dask-kill", items, rig, OPTIONS, db, dispatch, on_event)
        assert summary.measured == 4 and len(summary.failed) == 2, (reasons, events)
        assert {f["board"] for f in summary.failed} == {"vb-b"}
        assert all("disconnected" in f["reason"] or "no dask worker" in f["reason"] for f in summary.failed), summary.failed
        assert events.count(("retry", "vb-b")) == 2, reasons  # each of B's unfinished measurements was retried once
        with MeasurementStore(db) as store:
            stored = store.measurements("dask-kill")
            assert sorted(r.key.board for r in stored) == ["vb-a", "vb-a", "vb-a", "vb-b"]
            assert all(r.emulated and r.energy_j_per_seq > 0 and r.peak_power_w > 0 for r in stored)
            assert store.campaign("dask-kill").status == "failed"
        # the artifacts travelled to the workers by content hash and were cached there
        cached_a = {p.name for p in (tmp_path / "cache-vb-a").iterdir() if not p.name.startswith(".")}
        assert cached_a == {r.artifact_sha256 for r in stored if r.key.board == "vb-a"}

        cluster.start_worker("vb-b")
        cluster.wait_for(dispatch, ["vb-b"])
        events.clear()
        resumed = run_campaign("dask-kill", items, rig, OPTIONS, db, dispatch, on_event)
    finally:
        dispatch.close()
    assert (resumed.already_done, resumed.measured, resumed.failed) == (4, 2, [])
    assert [kind for kind, board in events if kind == "start"] == ["start", "start"]
    assert {board for _, board in events} == {"vb-b"}
    with MeasurementStore(db) as store:
        stored = store.measurements("dask-kill")
        assert len(stored) == 6 and len({tuple(r.key) for r in stored}) == 6
        assert store.campaign("dask-kill").status == "finished"
        assert all(r.data["dispatch"] == "dask" for r in stored)
        # B's power followed its own worker's runner processes, not A's
        pids = {r.key.board: r.data["sensor"]["details"]["follows_pid"] for r in stored}
        assert pids["vb-a"] != pids["vb-b"]
