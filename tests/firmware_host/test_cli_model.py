"""`edgetran model ...`: params, export, transfer, pretrain; the JSON contract and exit codes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest


torch = pytest.importorskip("torch")

BERT_TINY = {"l": 2, "o": [["sa_sdp_64", "sa_sdp_64"], ["sa_sdp_64", "sa_sdp_64"]], "h": [128, 128], "f": [[512], [512]]}
SMALL = {"l": 2, "o": [["sa_sdp_8", "l_dft_8"], ["c_5_8", "sa_wma_8"]], "h": [16, 16], "f": [[32], [32]]}
SMALL_CHILD = {"l": 2, "o": [["sa_sdp_8", "l_dft_4", "l_dct_4"], ["c_5_8", "sa_wma_8"]], "h": [16, 24], "f": [[32], [16, 16]]}
TINY_SIZES = ["--vocab-size", "60", "--max-positions", "16"]


def write_json(path: Path, data) -> str:
    path.write_text(json.dumps(data))
    return str(path)


def test_params_json_bert_tiny(cli, tmp_path):
    code, out, _ = cli("model", "params", write_json(tmp_path / "tiny.json", BERT_TINY), "--json")
    report = json.loads(out)
    assert code == 0
    assert report["parameters"] == 4_385_920
    assert len(report["per_layer"]) == 2 and report["per_layer"][0]["total"] == 198_272
    assert report["per_layer"][0]["heads"] == ["sa_sdp_64", "sa_sdp_64"]


def test_params_table(cli, tmp_path):
    code, out, _ = cli("model", "params", write_json(tmp_path / "m.json", SMALL), "--labels", "3")
    assert code == 0 and "parameters" in out and "classifier (3 labels)" in out


def test_export_onnx_json_contract(cli, tmp_path):
    out_dir = tmp_path / "artifacts"
    args = ["model", "export", write_json(tmp_path / "m.json", SMALL), "--format", "onnx", "--seq-len", "8", "--batch", "1"]
    code, out, err = cli(*args, "--out", str(out_dir), *TINY_SIZES, "--json")
    assert code == 0, err
    result = json.loads(out)
    path = Path(result["path"])
    assert result["format"] == "onnx" and path.parent == out_dir
    assert result["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() == path.stem
    assert result["seq_len"] == 8 and result["batch"] == 1 and result["dynamic_batch"] is True
    assert result["parity"]["max_abs_diff"] <= 1e-4
    assert json.loads(Path(result["sidecar"]).read_text())["architecture"] == SMALL
    assert sorted(p.name for p in out_dir.iterdir() if not p.name.startswith(".")) == sorted([path.name, f"{path.stem}.json"])


def test_export_is_cached_by_content_and_redone_when_the_artifact_is_gone(cli, tmp_path):
    out_dir = tmp_path / "artifacts"
    source = write_json(tmp_path / "m.json", SMALL)
    args = ["model", "export", source, "--format", "onnx", "--seq-len", "8", "--out", str(out_dir), *TINY_SIZES, "--json"]
    first = json.loads(cli(*args)[1])
    again = json.loads(cli(*args)[1])
    assert first["cached"] is False and again["cached"] is True and again["sha256"] == first["sha256"]
    assert again["created_utc"] == first["created_utc"]  # the earlier artifact, not a new export
    other_seed = json.loads(cli(*args, "--seed", "1")[1])
    assert other_seed["cached"] is False  # another setting is another request
    Path(first["path"]).unlink()  # a cached artifact whose files are gone is exported again
    redone = json.loads(cli(*args)[1])
    assert redone["cached"] is False and Path(redone["path"]).is_file() and redone["sha256"] == first["sha256"]


def test_export_of_a_missing_format_exits_2_with_the_pip_line(cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "litert_torch", None)  # as if litert-torch were not installed
    code, out, err = cli(
        "model", "export", write_json(tmp_path / "m.json", SMALL), "--format", "tflite", "--out", str(tmp_path / "o")
    )
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "litert_torch" in lines[0] and 'pip install "edgetran[tflite]"' in lines[0]
    assert not (tmp_path / "o").exists()


def test_transfer_writes_child_and_report(cli, tmp_path):
    parent = write_json(tmp_path / "parent.json", SMALL)
    child = write_json(tmp_path / "child.json", SMALL_CHILD)
    out_dir = tmp_path / "out"
    code, out, err = cli("model", "transfer", parent, child, "--mode", "rp", "--out", str(out_dir), *TINY_SIZES, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["mode"] == "rp" and summary["parameters"]["rp"] > 0 and summary["parameters"]["fresh"] > 0
    assert {row["how"] for row in summary["heads"]} == {"copied", "rp", "fresh"}
    full = json.loads(Path(summary["report"]).read_text())
    assert full["tensors"] and full["parameters"] == summary["parameters"]
    code, out, _ = cli("model", "params", summary["checkpoint"], "--json")
    assert code == 0 and json.loads(out)["per_layer"][1]["hidden"] == 24


def test_transfer_of_an_equal_child_copies_everything(cli, tmp_path):
    parent = write_json(tmp_path / "parent.json", SMALL)
    code, out, _ = cli("model", "transfer", parent, parent, "--mode", "ot", "--out", str(tmp_path), *TINY_SIZES, "--json")
    summary = json.loads(out)
    assert code == 0 and summary["transferred_fraction"] == 1.0 and summary["parameters"]["fresh"] == 0


def test_pretrain_then_transfer_from_the_checkpoint(cli, tmp_path):
    model = write_json(tmp_path / "m.json", SMALL)
    code, out, err = cli("model", "pretrain", model, "--steps", "6", "--seq-len", "16", "--batch-size", "8", "--out", str(tmp_path), "--max-positions", "16", "--threads", "1", "--json")
    assert code == 0, err
    trained = json.loads(out)
    assert trained["steps"] == 6 and [step for step, _ in trained["eval_curve"]] == [0, 6]
    code, out, err = cli("model", "transfer", trained["checkpoint"], write_json(tmp_path / "c.json", SMALL_CHILD), "--mode", "ot", "--out", str(tmp_path), "--json")
    assert code == 0, err
    assert json.loads(out)["parameters"]["ot"] > 0


@pytest.mark.parametrize(
    "make_args, fragment",
    [
        (lambda t: ["model", "params", str(t / "missing.json")], "missing.json: file not found"),
        (lambda t: ["model", "params", write_json(t / "bad.json", {**SMALL, "l": 3})], "o: expected 3 entries"),
        (lambda t: ["model", "params", write_json(t / "op.json", {**SMALL, "o": [["sa_xyz_8", "l_dft_8"], ["c_5_8", "sa_wma_8"]]})], "unknown operation 'sa_xyz'"),
        (lambda t: ["model", "export", write_json(t / "m.json", SMALL), "--format", "onnx", "--seq-len", "99", "--out", str(t / "o"), *TINY_SIZES], "seq_len 99 is outside 1..16"),
        (lambda t: ["model", "export", write_json(t / "m.json", SMALL), "--format", "png", "--out", str(t)], "'png' is not one of"),
        (lambda t: ["model", "transfer", write_json(t / "m.json", SMALL), write_json(t / "c.json", SMALL), "--mode", "xx", "--out", str(t)], "'xx' is not one of"),
        (lambda t: ["model", "transfer", write_json(t / "m.json", SMALL), str(t / "nochild.json"), "--mode", "ot", "--out", str(t)], "nochild.json: file not found"),
        (lambda t: ["model", "pretrain", write_json(t / "m.json", SMALL), "--seq-len", "600", "--out", str(t)], "--seq-len 600 exceeds the model's 512 positions"),
        (lambda t: ["model", "pretrain", str(t / "x.pt"), "--out", str(t)], "x.pt: file not found"),
    ],
)
def test_bad_input_exits_2_with_one_line(cli, tmp_path, make_args, fragment):
    code, out, err = cli(*make_args(tmp_path))
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert fragment in lines[0]
    assert "Traceback" not in err


def test_pretrain_refuses_a_checkpoint_of_another_vocabulary(cli, tmp_path):
    parent = write_json(tmp_path / "p.json", SMALL)
    code, out, _ = cli("model", "transfer", parent, parent, "--mode", "ot", "--out", str(tmp_path), *TINY_SIZES, "--json")
    checkpoint = json.loads(out)["checkpoint"]
    code, out, err = cli("model", "pretrain", checkpoint, "--out", str(tmp_path))
    assert code == 2 and "vocabulary of 60 tokens; the bundled tokenizer has 1000" in err


def test_params_of_a_model_dictionary_does_not_import_torch(tmp_path):
    path = write_json(tmp_path / "tiny.json", BERT_TINY)
    script = f"import sys; from firmware_host.cli import main; code = main(['model', 'params', {path!r}, '--json']); print('torch' in sys.modules, code)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip().splitlines()[-1] == "False 0"
