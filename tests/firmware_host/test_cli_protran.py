"""`edgetran protran ...`: the JSON contract, campaign files, saved models, reports and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codesign.protran.evaluators import PublishedPoolEvaluator
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
    assert data["never_queried"]["count"] == 65 - 18


def test_run_with_a_store_resumes_and_prints_a_table(capsys, tmp_path):
    store = tmp_path / "c.sqlite"
    code, first, _ = run_cli(capsys, "protran", "run", "--device", RPI, "--budget", "17", "--store", str(store), "--json")
    assert code == 0 and json.loads(first)["resumed"] is False
    code, again, _ = run_cli(capsys, "protran", "run", "--device", RPI, "--budget", "17", "--store", str(store), "--json")
    assert code == 0
    a, b = json.loads(first), json.loads(again)
    assert b["resumed"] is True and a["queried"] == b["queried"] and a["history"] == b["history"]
    code, out, _ = run_cli(capsys, "protran", "run", "--device", RPI, "--budget", "17", "--store", str(store))
    assert code == 0 and "17 architectures evaluated" in out and "never-queried" in out
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
    for measure in ("latency_s", "energy_j", "peak_power_w"):
        assert data["predictions"][measure]["mean"] > 0 and data["predictions"][measure]["std"] > 0
    code, out, _ = run_cli(capsys, "protran", "predict", str(several), "--device", RPI, "--model", str(saved), "--json")
    assert code == 0
    loaded = json.loads(out)
    assert len(loaded["predictions"]) == 2
    for measure in ("latency_s", "energy_j", "peak_power_w"):  # same surrogate, same numbers (to rounding)
        assert loaded["predictions"][0][measure] == pytest.approx(data["predictions"][measure], rel=1e-12)
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
        assert set(entry["holdout"]) == {"embedding", "workload"}
        for holdout in entry["holdout"].values():
            assert holdout["architectures"] == 17
            assert set(holdout["coverage"]["latency_s"]) == {"within_1sigma", "within_2sigma"}
        assert [p["samples"] for p in entry["curve"]["points"]] == [16, 17]


def test_report_writes_figures_and_summary(capsys, tmp_path):
    out_dir = tmp_path / "report"
    code, out, err = run_cli(
        capsys, "protran", "report", "--device", SMALL_DEVICE, "--out", str(out_dir),
        "--regressor", "lr", "--curve-regressors", "lr,dt", "--budget", "17", "--glue-regressor", "lr", "--glue-splits", "3",
    )
    assert code == 0, err
    names = sorted(p.name for p in out_dir.iterdir())
    assert names == sorted([
        "fig7_validation_mse_npu_ncs_b1_r1.png", "fig8_predicted_vs_measured_npu_ncs_b1_r1.png",
        "fig13_contours_npu_ncs_b1_r1.png", "fig14_pareto.png", "summary.md", "summary.json",
    ])
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
        (["protran", "run", "--device", "rig:virtual-rpi4", "--pool-size", "8", "--pool-max-gflop", "0.0001"],
         "only 0 of 16384 sampled architectures cost at most 0.0001 GFLOP/seq"),
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


def test_report_into_a_missing_parent_writes_nothing(capsys, tmp_path):
    code, _, err = run_cli(capsys, "protran", "report", "--device", SMALL_DEVICE, "--out", str(tmp_path / "a" / "b"))
    assert code == 2 and "does not exist" in err
    assert list(tmp_path.iterdir()) == []
