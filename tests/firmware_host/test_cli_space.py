"""The `edgetran space` and `edgetran published` commands: the JSON contract and exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from codesign.published import published_root

BERT_TINY = {"l": 2, "o": [["sa_sdp_64", "sa_sdp_64"], ["sa_sdp_64", "sa_sdp_64"]], "h": [128, 128], "f": [[512], [512]]}


def write_json(path: Path, data) -> str:
    path.write_text(json.dumps(data))
    return str(path)


def test_stats_json(cli):
    code, out, _ = cli("space", "stats", "--json")
    data = json.loads(out)
    assert code == 0
    assert data["feed_forward_op_types"] == 258
    assert data["attention_op_types"] == 21805
    assert data["embedding_dim"] == 37
    assert isinstance(data["architectures"], str) and int(data["architectures"]) > 10**88


@pytest.mark.parametrize("method", ["sobol", "lhs", "halton", "hammersly", "random"])
def test_sample_json_is_a_list_of_valid_model_dicts(cli, tmp_path, method):
    code, out, _ = cli("space", "sample", "--method", method, "-n", "6", "--seed", "3", "--json")
    assert code == 0
    models = json.loads(out)
    assert len(models) == 6
    code, out, _ = cli("space", "validate", write_json(tmp_path / "m.json", models), "--json")
    assert code == 0 and json.loads(out)["valid"] == 6
    code, again, _ = cli("space", "sample", "--method", method, "-n", "6", "--seed", "3", "--json")
    assert json.loads(again) == models


def test_sample_writes_out_file_and_prints_a_table(cli, tmp_path):
    target = tmp_path / "samples.json"
    code, out, _ = cli("space", "sample", "-n", "4", "--out", str(target))
    assert code == 0
    assert "category" in out
    assert len(json.loads(target.read_text())) == 4
    assert [p.name for p in tmp_path.iterdir()] == ["samples.json"]


def test_embed_and_decode_round_trip(cli, tmp_path):
    code, out, _ = cli("space", "embed", write_json(tmp_path / "tiny.json", BERT_TINY), "--json")
    vector = json.loads(out)
    assert code == 0 and len(vector) == 37 and all(isinstance(v, int) for v in vector)
    code, out, _ = cli("space", "decode", json.dumps(vector), "--json")
    assert code == 0 and json.loads(out) == BERT_TINY
    code, out, _ = cli("space", "decode", json.dumps(vector))
    assert code == 0 and "sa_sdp_64" in out


def test_embed_a_list(cli, tmp_path):
    code, out, _ = cli("space", "embed", write_json(tmp_path / "two.json", [BERT_TINY, BERT_TINY]), "--json")
    assert code == 0 and len(json.loads(out)) == 2


def test_diversity_json(cli):
    code, out, _ = cli("space", "diversity", "-n", "32", "--seed", "1", "--json")
    report = json.loads(out)
    assert code == 0
    assert set(report["methods"]) == {"sobol", "lhs", "halton", "hammersly", "random"}
    for row in report["methods"].values():
        assert len(row["distance_quartiles"]) == 3
        assert sum(row["categories"].values()) == 32


def test_validate_a_published_dataset_checks_stored_embeddings(cli):
    path = published_root() / "protran" / "cpu_rpi_b1_r1" / "dataset.json"
    code, out, _ = cli("space", "validate", str(path), "--json")
    assert code == 0
    assert json.loads(out) == {"valid": 65, "embeddings_checked": 65}


def test_validate_single_model(cli, tmp_path):
    code, out, _ = cli("space", "validate", write_json(tmp_path / "m.json", BERT_TINY))
    assert code == 0 and out.strip() == "1 valid architecture"


def test_published_list_json(cli):
    code, out, _ = cli("published", "list", "--json")
    data = json.loads(out)
    assert code == 0
    assert len(data["devices"]) == 7 and data["glue_architectures"] == 16
    rpi = next(d for d in data["devices"] if d["device"] == "cpu_rpi_b1_r1")
    assert rpi["architectures"] == 65 and rpi["batch_size"] == 1


def _bad(tmp_path: Path, name: str, data) -> str:
    return write_json(tmp_path / name, data)


@pytest.mark.parametrize(
    "make_args, fragment",
    [
        (lambda t: ["space", "validate", str(t / "missing.json")], "missing.json: file not found"),
        (lambda t: ["space", "validate", _bad(t, "l.json", {**BERT_TINY, "l": 3})], "l.json: o: expected 3 entries"),
        (
            lambda t: ["space", "validate", _bad(t, "list.json", [BERT_TINY, {**BERT_TINY, "h": [128, 100]}])],
            "list.json entry 1: h[1]: hidden size 100 is outside the design space",
        ),
        (
            lambda t: ["space", "validate", _bad(t, "ds.json", {"abc": {"model_dict": BERT_TINY, "embedding": "[1]"}})],
            "ds.json entry 'abc': stored embedding differs from the computed one at e[0]",
        ),
        (lambda t: ["space", "embed", _bad(t, "e.json", {"l": 2})], "e.json: o: missing key"),
        (lambda t: ["space", "decode", "[1, 2"], "embedding is not a JSON list"),
        (lambda t: ["space", "decode", json.dumps([9] + [0] * 36)], "e[0]: 9 is outside [0, 5]"),
        (lambda t: ["space", "sample", "--method", "grid"], "'grid' is not one of"),
        (lambda t: ["space", "sample", "-n", "0"], "Invalid value for '-n'"),
        (lambda t: ["space", "diversity", "-n", "8", "--methods", "sobol,grid"], "unknown sampling method 'grid'"),
        (lambda t: ["space", "nosuch"], "No such command 'nosuch'"),
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


def test_sample_to_missing_directory_leaves_no_file(cli, tmp_path):
    target = tmp_path / "nowhere" / "samples.json"
    code, _, err = cli("space", "sample", "-n", "2", "--out", str(target))
    assert code == 2 and "does not exist" in err
    assert not target.exists()


def test_installed_console_script_reports_exit_2_without_traceback(tmp_path):
    """The real process boundary: the `edgetran` script that `pip install` created."""
    script = shutil.which("edgetran")
    command = [script] if script else [sys.executable, "-m", "firmware_host"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**BERT_TINY, "f": [[512], [300]]}))
    result = subprocess.run([*command, "space", "validate", str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "f[1][0]: feed-forward size 300 is outside the design space" in result.stderr
    ok = subprocess.run([*command, "space", "stats", "--json"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and json.loads(ok.stdout)["attention_op_types"] == 21805


def test_help_exits_0(cli):
    code, out, _ = cli("--help")
    assert code == 0 and "space" in out
    code, out, _ = cli()
    assert code == 0 and out.count("Usage: edgetran") == 1
