"""`edgetran protran ...`: the JSON contract, campaign files, saved models, reports and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codesign.protran.evaluators import PublishedPoolEvaluator
from codesign.protran.features import FEATURE_SETS
from firmware_host.cli import main

SMALL_DEVICE = "published:npu_ncs_b1_r1"  # 17 published architectures
RPI = "published:cpu_rpi_b1_r1"
BERT_TINY = {"l": 2, "o": [["sa_sdp_64", "sa_sdp_64"], ["sa_sdp_64", "sa_sdp_64"]], "h": [128, 128], "f": [[512], [512]]}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_run_json_contract(capsys):
    code, out, _ = run_cli(capsys, "protran", "run", "--device", RPI, "--regressor", "gpr", "--budget", "18", "--seed", "0", "--json")
    assert code == 0
    data = json.loads(out)
    assert {"samples", "converged", "val_mse", "history"} <= set(data)
    assert data["samples"] == 18 and data["converged"] is False and data["stop_reason"] == "budget"
    assert set(data["val_mse"]) == {"latency_s", "energy_j", "peak_power_w"}
    assert [r["samples"] for r in data["history"]] == [16, 17, 18]
    assert data["never_queried"]["count"] == 65 - 13 - 18 and data["held_out"]["count"] == 13  # 20% held out first
    assert data["units"]["latency_s"].startswith("s per evaluation run") and set(data["val_r2"]) == set(data["val_mse"])


def test_run_with_a_store_resumes_and_prints_a_table(capsys, tmp_path):
    store = tmp_path / "c.sqlite"
    code, first, _ = run_cli(capsys, "protran", "run", "--device", RPI, "--budget", "17", "--store", str(store), "--json")
    assert code == 0 and json.loads(first)["resumed"] is False
    code, again, _ = run_cli(capsys, "protran", "run", "--device", RPI, "--budget", "17", "--store", str(store), "--json")
    assert code == 0
    a, b = json.loads(first), json.loads(again)
    assert b["resumed"] is True and a["queried"] == b["queried"] and a["history"] == b["history"]
    code, out, _ = run_cli(capsys, "protran", "run", "--device", RPI, "--budget", "17", "--store", str(store))
    assert code == 0 and "17 architectures evaluated" in out and "held out before the campaign" in out
    assert "per evaluation run" in out and "val R^2" in out
    code, _, err = run_cli(capsys, "protran", "run", "--device", RPI, "--budget", "17", "--store", str(store), "--regressor", "dt")
    assert code == 2 and "started with regressor='gpr', not 'dt'" in err


def test_predict_fits_on_all_published_measurements_or_loads_a_saved_model(capsys, tmp_path):
    single = tmp_path / "one.json"
    single.write_text(json.dumps(BERT_TINY))
    several = tmp_path / "two.json"
    several.write_text(json.dumps([BERT_TINY, PublishedPoolEvaluator("cpu_rpi_b1_r1").pool[0].to_dict()]))
    saved = tmp_path / "rpi.json"
    code, out, _ = run_cli(
        capsys, "protran", "predict", str(single), "--device", RPI, "--regressor", "lr", "--save-model", str(saved), "--json"
    )
    assert code == 0
    data = json.loads(out)
    assert data["fitted_on"] == "all 65 published measurements"
    assert isinstance(data["predictions"], list) and len(data["predictions"]) == 1  # a list for one model dictionary too (#12)
    for measure in ("latency_s", "energy_j", "peak_power_w"):
        assert data["predictions"][0][measure]["mean"] > 0 and data["predictions"][0][measure]["std"] > 0
    code, out, _ = run_cli(capsys, "protran", "predict", str(several), "--device", RPI, "--model", str(saved), "--json")
    assert code == 0
    loaded = json.loads(out)
    assert len(loaded["predictions"]) == 2
    for measure in ("latency_s", "energy_j", "peak_power_w"):  # same surrogate, same numbers (to rounding)
        assert loaded["predictions"][0][measure] == pytest.approx(data["predictions"][0][measure], rel=1e-12)
    code, _, err = run_cli(capsys, "protran", "predict", str(single), "--device", SMALL_DEVICE, "--model", str(saved))
    assert code == 2 and "surrogates of device 'cpu_rpi_b1_r1', not 'npu_ncs_b1_r1'" in err
    assert json.loads(saved.read_text())["format"] == "edgetran-protran-surrogates"


def test_compare_json_holds_both_feature_sets_and_curves(capsys):
    code, out, _ = run_cli(
        capsys, "protran", "compare", "--device", SMALL_DEVICE, "--regressors", "lr,dt", "--budget", "17", "--json"
    )
    assert code == 0
    report = json.loads(out)
    assert set(report["regressors"]) == {"lr", "dt"}
    for entry in report["regressors"].values():
        assert set(entry["holdout"]) == {"embedding", "workload"}  # the paper's embedding and the curves' features
        for holdout in entry["holdout"].values():
            assert holdout["architectures"] == 17
            assert set(holdout["coverage"]["latency_s"]) == {"within_1sigma", "within_2sigma"}
            assert set(holdout["r2"]) == set(holdout["mean_predictor_mse"]) == set(holdout["mse"])
        # 3 of 17 are held out first: the 14 others cannot hold the initial batch of 16, and the report says so.
        assert "curve" not in entry and "smaller than the initial batch of 16" in entry["curve_skipped"]


def test_report_writes_figures_and_summary(capsys, tmp_path):
    out_dir = tmp_path / "report"
    code, out, err = run_cli(
        capsys, "protran", "report", "--device", SMALL_DEVICE, "--out", str(out_dir),
        "--regressor", "lr", "--curve-regressors", "lr,dt", "--budget", "17", "--glue-regressor", "lr", "--glue-splits", "3",
    )
    assert code == 0, err
    names = sorted(p.name for p in out_dir.iterdir())
    assert names == sorted([  # no Fig. 7: 17 models less the 20% held-out split cannot hold the 16 initial ones
        "fig8_predicted_vs_measured_npu_ncs_b1_r1.png",
        "fig13_depth_width_npu_ncs_b1_r1.png", "fig14_pareto.png", "summary.md", "summary.json",
    ])
    assert "Fig. 7 of npu_ncs_b1_r1: budget 14 is smaller than the initial batch of 16" in (out_dir / "summary.md").read_text()
    for name in names:
        if name.endswith(".png"):
            assert (out_dir / name).read_bytes()[:8] == PNG_MAGIC
    summary = (out_dir / "summary.md").read_text()
    assert "Table VI" in summary and "npu_ncs_b1_r1" in summary and "leave-one-out" in summary


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["protran", "run", "--device", "rig:pi4"], "no board 'pi4' in the rig (boards: virtual-rpi4)"),
        (["protran", "run", "--device", "rig:virtual-rpi4", "--rig", "missing.toml"], "--rig missing.toml: file not found"),
        (["protran", "run", "--device", "rig:"], "name the rig device after the colon"),
        (["protran", "run", "--device", RPI, "--runs", "3"], "--runs: only for live devices (rig:<board>)"),
        (["protran", "run", "--device", "rig:virtual-rpi4", "--pool-size", "5000"], "pool size must be an integer from 2 to 4096"),
        (["protran", "predict", "x.json", "--device", "rig:jetson"], "predict on rig:jetson needs --model"),
        (["protran", "compare", "--device", "rig:virtual-rpi4"], "compare needs published measurements; rig:virtual-rpi4 is a live device"),
        (["protran", "report", "--device", "jetson", "--out", "r"], "device 'jetson': expected one of published:<device>, rig:<name>"),
        (["protran", "report", "--device", "rig:virtual-rpi4", "--out", "r"], "needs --store (the campaign file"),
        (["protran", "report", "--device", "rig:virtual-rpi4", "--out", "r", "--store", "c.sqlite"], "--store c.sqlite: campaign file not found"),
        (["protran", "report", "--device", RPI, "--out", "r", "--store", "c.sqlite"], "--store: only for live devices"),
        (["protran", "run", "--device", "published:tpu_v9_b1_r1"], "unknown published device 'tpu_v9_b1_r1'"),
        (["protran", "run", "--device", RPI, "--regressor", "xgb"], "unknown regressor 'xgb'"),
        (["protran", "run", "--device", RPI, "--features", "graph"], "unknown feature set 'graph'"),
        (["protran", "run", "--device", RPI, "--budget", "8"], "budget 8 is smaller than the initial batch of 16"),
        (["protran", "compare", "--device", RPI, "--regressors", "lr,xgb"], "unknown regressor 'xgb'"),
        (["protran", "predict", "missing.json", "--device", RPI], "missing.json: file not found"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, tmp_path, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, *args)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert fragment in lines[0]
    assert list(Path(tmp_path).iterdir()) == []  # nothing written


def test_predict_rejects_architectures_outside_the_space(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([BERT_TINY, {**BERT_TINY, "h": [128, 100]}]))
    code, _, err = run_cli(capsys, "protran", "predict", str(bad), "--device", RPI, "--regressor", "lr")
    assert code == 2 and "bad.json entry 1: h[1]: hidden size 100 is outside the design space" in err


def test_report_refuses_a_directory_that_is_not_a_report(capsys, tmp_path):
    """The report replaces --out whole: a directory with other files is refused (exit 2, one line), untouched."""
    papers = tmp_path / "papers"
    papers.mkdir()
    (papers / "draft.tex").write_text("keep me")
    code, out, err = run_cli(capsys, "protran", "report", "--device", SMALL_DEVICE, "--out", str(papers))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "not empty and not a previous report" in err
    assert [p.name for p in papers.iterdir()] == ["draft.tex"] and [p.name for p in tmp_path.iterdir()] == ["papers"]


def test_report_into_a_read_only_parent_is_refused_before_the_work(capsys, tmp_path):
    import os

    if os.geteuid() == 0:
        pytest.skip("root writes into read-only directories")
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        code, _, err = run_cli(capsys, "protran", "report", "--device", SMALL_DEVICE, "--out", str(parent / "rep"))
    finally:
        parent.chmod(0o755)
    assert code == 2 and "cannot write into" in err and len(err.strip().splitlines()) == 1


def test_report_into_a_missing_parent_writes_nothing(capsys, tmp_path):
    code, _, err = run_cli(capsys, "protran", "report", "--device", SMALL_DEVICE, "--out", str(tmp_path / "a" / "b"))
    assert code == 2 and "does not exist" in err
    assert list(tmp_path.iterdir()) == []


def _test_rig(tmp_path: Path) -> Path:
    rig_file = tmp_path / "rig.toml"
    rig_file.write_text(
        f'[host]\ntraces = "{tmp_path}/traces"\n[[boards]]\nname = "vpi"\nhost = "virtual"\nseq_len = 16\n'
        '[[sensors]]\nname = "vpi-supply"\nkind = "virtual-board"\nmeasures = "vpi"\nmin_coverage = 0.5\n'  # CI VMs: hypervisor steal opens 5-10 ms sampling gaps; coverage rules are tested in test_profile_coverage
    )
    return rig_file


def test_live_campaign_on_the_virtual_rig_persists_resumes_and_reports(capsys, tmp_path, monkeypatch):
    """A very short live campaign: 3 real measurements, a resume that measures nothing, a report from the file."""
    monkeypatch.setenv("EDGETRAN_ARTIFACTS", str(tmp_path / "artifacts"))
    rig_file, store = _test_rig(tmp_path), tmp_path / "live.sqlite"
    args = [
        "protran", "run", "--device", "rig:vpi", "--rig", str(rig_file), "--store", str(store), "--budget", "3", "--initial", "2",
        "--pool-size", "6", "--pool-max-gflop", "0.1", "--runs", "5", "--repeats", "1", "--regressor", "lr", "--json",
    ]
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    first = json.loads(out)
    assert first["samples"] == 3 and first["evaluations_this_run"] == 3 and first["resumed"] is False
    assert first["stop_reason"] == "budget" and first["never_queried"] is None  # no truth for a live device
    assert first["live"]["emulated"] is True and first["live"]["board"] == "vpi" and first["live"]["sequence_length"] == 16
    assert first["live"]["pool"]["candidates"] == 6 and first["live"]["pool"]["from_store"] is False
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    again = json.loads(out)
    assert again["resumed"] is True and again["evaluations_this_run"] == 0 and again["live"]["pool"]["from_store"] is True
    assert again["queried"] == first["queried"] and again["history"] == first["history"]
    code, _, err = run_cli(capsys, *[a if a != "0.1" else "0.2" for a in args])
    assert code == 2 and "candidate pool was sampled with max_gflop=0.1, not 0.2" in err

    from codesign.protran.campaign_store import CampaignStore

    with CampaignStore(store) as campaign:
        stored = campaign.evaluations()
        pool = campaign.state()["pool"]
    assert [e.reason for e in stored] == ["initial", "initial", "uncertainty"]
    assert all(e.measurement["extra"]["emulated"] and e.measurement["source"] == "rig" for e in stored)
    assert {e.arch_key for e in stored} <= set(pool["keys"]) and len(pool["architectures"]) == 6

    out_dir = tmp_path / "report"
    code, out, err = run_cli(
        capsys, "protran", "report", "--device", "rig:vpi", "--store", str(store), "--out", str(out_dir),
        "--glue-regressor", "lr", "--glue-splits", "3", "--json",
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["kind"] == "live campaign" and summary["measured"] == 3 and summary["emulated"] is True
    assert "fig7_validation_mse_vpi.png" in summary["files"] and "campaign_measurements_vpi.png" in summary["files"]
    assert any("never-queried" in s for s in summary["skipped"]) and any("Fig. 8" in s for s in summary["skipped"])
    for name in summary["files"]:
        if name.endswith(".png"):
            assert (out_dir / name).read_bytes()[:8] == PNG_MAGIC
    assert "EMULATED" in (out_dir / "summary.md").read_text()
    code, _, err = run_cli(capsys, "protran", "report", "--device", "rig:other", "--store", str(store), "--out", str(tmp_path / "r2"))
    assert code == 2 and "a campaign of device 'vpi', not 'other'" in err and not (tmp_path / "r2").exists()
