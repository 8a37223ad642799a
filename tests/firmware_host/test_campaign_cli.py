"""`edgetran campaign run` and `edgetran store ...` on the virtual rig, in process."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from firmware_host.cli import main
from firmware_host.store import MeasurementStore

MODELS = [
    {"l": 2, "o": [["sa_sdp_64", "sa_sdp_64"], ["sa_sdp_64", "sa_sdp_64"]], "h": [128, 128], "f": [[512], [512]]},
    {"l": 2, "o": [["l_dct_64", "l_dct_64"], ["sa_sdp_64", "sa_sdp_64"]], "h": [128, 128], "f": [[256], [256]]},
    {"l": 2, "o": [["c_9_64", "c_9_64"], ["sa_sdp_64", "sa_sdp_64"]], "h": [128, 128], "f": [[512], [512]]},
]
LIGHT = ["--repeats", "1", "--runs", "5", "--warmup", "1", "--idle-s", "0.2"]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("campaign")
    (root / "rig.toml").write_text(
        f'[host]\ntraces = "{root}/traces"\n[[boards]]\nname = "vpi"\nhost = "virtual"\nseq_len = 16\n'
        '[[sensors]]\nname = "vpi-supply"\nkind = "virtual-board"\nmeasures = "vpi"\nmin_coverage = 0.5\n'  # CI VMs: hypervisor steal opens 5-10 ms sampling gaps; coverage rules are tested in test_profile_coverage
    )
    files = []
    for i, model in enumerate(MODELS):
        files.append(root / f"model-{i}.json")
        files[-1].write_text(json.dumps(model))
    return root, files


def _count(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_campaign_killed_midway_resumes_without_repeats(bench, tmp_path, monkeypatch, capsys):
    root, files = bench
    env = {**os.environ, "EDGETRAN_ARTIFACTS": str(root / "exports")}
    monkeypatch.setenv("EDGETRAN_ARTIFACTS", str(root / "exports"))
    db = tmp_path / "bench.db"
    args = ["campaign", "run", *map(str, files), "--name", "c1", "--rig", str(root / "rig.toml"), "--store", str(db), *LIGHT]
    process = subprocess.Popen([sys.executable, "-m", "firmware_host", *args, "--json"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while _count(db) < 1:
        assert process.poll() is None, process.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    stored_before = _count(db)
    assert 1 <= stored_before < len(files)

    assert main([*args, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["already_done"] == stored_before and summary["measured"] == len(files) - stored_before
    with MeasurementStore(db) as store:
        rows = store.measurements("c1")
        assert len(rows) == len(files) and len({tuple(r.key) for r in rows}) == len(files)
        assert store.campaign("c1").status == "finished"
        assert store.rig(str(root / "rig.toml"))["boards"][0]["name"] == "vpi"  # the rig the campaign ran on

    out = tmp_path / "c1.csv"
    assert main(["store", "export", "--store", str(db), "--campaign", "c1", "--csv", str(out)]) == 0
    assert "wrote 3 measurements" in capsys.readouterr().out
    lines = out.read_text().splitlines()
    assert len(lines) == 1 + len(files) and lines[0].startswith("campaign,arch_key,board")
    assert main(["store", "campaigns", "--store", str(db), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(c["name"], c["measurements"], c["status"]) for c in listed] == [("c1", 3, "finished")]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["store", "export", "--campaign", "nope", "--csv", "{tmp}/x.csv", "--store", "{db}"], "no campaign 'nope'"),
        (["store", "export", "--campaign", "c", "--store", "{db}"], "give --csv FILE and/or --json FILE"),
        (["store", "export", "--campaign", "c", "--csv", "{tmp}/x.csv", "--store", "{tmp}/absent.db"], "no store there yet"),
        (["campaign", "run", "{tmp}/missing.json", "--name", "c", "--store", "{db}"], "missing.json: file not found"),
        (["campaign", "run", "{model}", "--name", "c", "--board", "ghost", "--store", "{db}"], "no board 'ghost'"),
        (["campaign", "run", "{model}", "--name", "c", "--scheduler", "localhost:8786", "--store", "{db}"], "expected tcp://HOST:PORT"),
        (["campaign", "run", "{model}", "--name", "c", "--scheduler", "tcp://127.0.0.1:9", "--store", "{db}"], "cannot connect"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, bench, tmp_path, capsys):
    root, files = bench
    db = tmp_path / "bench.db"
    with MeasurementStore(db) as store:
        store.start_campaign("c", {})
    argv = [a.format(tmp=tmp_path, db=db, model=files[0]) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "x.csv").exists()
