"""`edgetran profile` end to end on the virtual rig: export, measure, integrate, report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from firmware_host.cli import main
from firmware_host.profile import ProfileOptions, geometric_mean, required_runs, run_profile
from firmware_host.rig import parse_rig
from sensors.trace.format import read_trace

REPO_ROOT = Path(__file__).resolve().parents[2]
BERT_TINY = REPO_ROOT / "examples" / "bert-tiny.json"


def test_window_length_rule():
    # the clock rule asks 20 x 1 ms = 20 ms, the block minimum 200 ms: a 5 ms block of 10 runs needs 480 runs (20% margin)
    assert required_runs(0.005, 10, 0.001, 0.0005) == 480
    # a 100 ms block passes the clock rule but not MIN_BLOCK_S (a 7 ms sampler stall would cost it 7% coverage)
    assert required_runs(0.1, 10, 0.0001, 0.001) == 24
    # a clock bound longer than the minimum: 20 x 20 ms = 400 ms
    assert required_runs(0.1, 10, 0.02, 0.001) == 48
    assert required_runs(0.5, 10, 0.001, 0.001) == 10
    assert geometric_mean([1.0, 4.0]) == pytest.approx(2.0)


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    traces = tmp_path_factory.mktemp("traces")
    return parse_rig(
        {
            "host": {"traces": str(traces)},
            "boards": [{"name": "vpi", "host": "virtual", "model": "rpi4", "seq_len": 32}],
            "sensors": [{"name": "vpi-supply", "kind": "virtual-board", "measures": "vpi", "rate_hz": 1000, "min_coverage": 0.5}],  # CI VMs: hypervisor steal opens 5-10 ms sampling gaps; coverage rules are tested in test_profile_coverage
        },
        "test rig",
    )


def test_profile_bert_tiny_on_the_virtual_rig(rig, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGETRAN_ARTIFACTS", str(tmp_path / "artifacts"))
    m = run_profile(BERT_TINY, rig, None, ProfileOptions(runs=30, repeats=2, idle_s=0.4, warmup=2))
    assert m["emulated"] is True and m["board"] == "vpi" and m["seq_len"] == 32
    assert m["min_coverage"] == 0.5  # the rig sensor's own minimum, as no option gave one
    assert 0 < m["latency_s_per_seq"] < 1.0
    assert m["idle_power_w"] == pytest.approx(2.7, abs=0.15)  # the board model's idle power
    assert m["peak_power_w"] > m["idle_power_w"]
    assert m["energy_j_per_seq"] > 0
    # energy above idle cannot exceed (load - idle) power for the block
    assert m["energy_j_per_seq"] <= (6.4 - 2.7) * m["latency_s_per_seq"] * 3
    assert (m["clock_offset_s"], m["clock_offset_uncertainty_s"]) == (0.0, 0.0)  # in-process runner, in-process daemon: one clock, no estimate
    trace = read_trace(m["trace"])
    assert trace.closed_cleanly
    labels = [(e.kind, e.label) for e in trace.events]
    assert ("window_begin", "repeat-0") in labels and ("window_end", "repeat-1") in labels
    assert len(m["per_repeat"]) == 2


def test_profile_cli_json_and_bad_input(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGETRAN_ARTIFACTS", str(tmp_path / "artifacts"))
    rig_file = tmp_path / "rig.toml"
    rig_file.write_text(
        f'[host]\ntraces = "{tmp_path}/traces"\n[[boards]]\nname = "vpi"\nhost = "virtual"\nseq_len = 16\n'
        '[[sensors]]\nname = "s"\nkind = "virtual-board"\nmeasures = "vpi"\nmin_coverage = 0.5\n'  # CI VMs: hypervisor steal opens 5-10 ms sampling gaps; coverage rules are tested in test_profile_coverage
    )
    db = tmp_path / "bench.db"
    for _ in range(2):
        code = main(["profile", str(BERT_TINY), "--rig", str(rig_file), "--repeats", "1", "--runs", "10", "--idle-s", "0.2", "--store", str(db), "--json"])
        out = capsys.readouterr().out
        assert code == 0
    measurement = json.loads(out)
    assert measurement["emulated"] and "clock_offset_uncertainty_s" in measurement
    assert measurement["store"]["repeat"] == 1  # the second run is a new repeat of the same key
    from firmware_host.store import MeasurementStore

    with MeasurementStore(db) as store:
        rows = store.measurements("profiles")
    assert [r.key.repeat for r in rows] == [0, 1]
    assert rows[1].latency_s_per_seq == measurement["latency_s_per_seq"] and rows[1].emulated
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"l": 2, "o": [["sa_sdp_64"]], "h": [128, 128], "f": [[512], [512]]}))
    code = main(["profile", str(bad), "--rig", str(rig_file)])
    err = capsys.readouterr().err
    assert code == 2 and "o: expected 2 entries" in err and len(err.strip().splitlines()) == 1
    code = main(["profile", str(BERT_TINY), "--board", "nope"])
    assert code == 2 and "no board 'nope'" in capsys.readouterr().err


def test_a_model_outside_the_design_space_is_measured_and_says_so(rig, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGETRAN_ARTIFACTS", str(tmp_path / "artifacts"))
    inside = json.loads(BERT_TINY.read_text())
    outside = {**inside, "h": [100, 100], "o": [["sa_sdp_50", "sa_sdp_50"], ["sa_sdp_50", "sa_sdp_50"]]}  # hidden 100: off the grid
    model = tmp_path / "hidden-100.json"
    model.write_text(json.dumps(outside))
    m = run_profile(model, rig, None, ProfileOptions(runs=10, repeats=1, idle_s=0.3, warmup=1))
    assert m["in_design_space"] is False and m["energy_j_per_seq"] > 0
    assert any("outside the FlexiBERT 2.0 design space" in w for w in m["warnings"]), m["warnings"]
    code = main(["space", "validate", str(model)])
    assert code == 2  # the space refuses what profile measured: both say so
