"""Every export format reproduces torch's logits on a model with all seven operations; artifacts are sha256-named;
the board side reads and runs them without importing torch."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxscript")

from codesign.architecture import Architecture  # noqa: E402
from codesign.export import exporter  # noqa: E402
from codesign.export.exporter import ExportError, export_model  # noqa: E402
from codesign.models.build import build_model  # noqa: E402
from codesign.models.config import ModelConfig  # noqa: E402
from device_runners.artifact import ArtifactError, load_artifact  # noqa: E402
from device_runners.runtimes import open_session  # noqa: E402

# all seven operations; mixed operations and head dimensions in each layer; a width change between layers
ALL_OPS = {
    "l": 2,
    "o": [["sa_sdp_8", "sa_wma_16", "l_dft_8", "l_dct_8"], ["c_5_8", "c_9_4", "c_13_8", "sa_sdp_4", "l_dct_8"]],
    "h": [40, 32],
    "f": [[64], [48, 32]],
}
SEQ_LEN = 12
EXPORT_BATCH = 2
PARITY_TOLERANCE = 1e-4
FORMATS = ["onnx", "openvino", "tflite"]
FORMAT_MODULES = {"onnx": "onnxruntime", "openvino": "openvino", "tflite": "litert_torch"}


@pytest.fixture(scope="module")
def model():
    return build_model(Architecture.from_dict(ALL_OPS), "classify", num_labels=3, config=ModelConfig(vocab_size=200, max_positions=SEQ_LEN), seed=11)


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    """Each format exported once (into one folder, as a bench host would keep them)."""
    out = tmp_path_factory.mktemp("artifacts")
    results = {}
    for fmt in FORMATS:
        try:
            __import__(FORMAT_MODULES[fmt])
        except ImportError:
            continue
        results[fmt] = export_model(model, fmt, SEQ_LEN, EXPORT_BATCH, out, seed=3)
    return out, results


def random_inputs(batch: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, 200, size=(batch, SEQ_LEN))
    mask = np.ones((batch, SEQ_LEN), dtype=np.int64)
    mask[0, 9:] = 0
    types = np.zeros((batch, SEQ_LEN), dtype=np.int64)
    types[-1, 6:] = 1
    return {"input_ids": ids.astype(np.int64), "attention_mask": mask, "token_type_ids": types}


def torch_logits(model, feed: dict) -> np.ndarray:
    with torch.no_grad():
        return model(*(torch.from_numpy(feed[k]) for k in ("input_ids", "attention_mask", "token_type_ids"))).numpy()


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_matches_torch(model, exported, fmt):
    out, results = exported
    if fmt not in results:
        pytest.skip(f"{FORMAT_MODULES[fmt]} not installed")
    result = results[fmt]
    artifact = load_artifact(result["sidecar"])  # verifies the sha256 of the bytes
    session = open_session(artifact)
    batches = [EXPORT_BATCH, 1, 5] if result["dynamic_batch"] else [EXPORT_BATCH]
    worst = 0.0
    for batch in batches:
        feed = random_inputs(batch, seed=100 + batch)
        got = session.run(feed)
        want = torch_logits(model, feed)
        assert got.shape == want.shape == (batch, 3)
        worst = max(worst, float(np.abs(got - want).max()))
    print(f"\n{fmt}: max |logit - torch| = {worst:.3e} over batches {batches}")
    assert worst <= PARITY_TOLERANCE
    assert result["parity"]["max_abs_diff"] <= PARITY_TOLERANCE


@pytest.mark.parametrize("fmt", FORMATS)
def test_artifact_is_named_by_sha256_with_sidecar(exported, fmt):
    out, results = exported
    if fmt not in results:
        pytest.skip(f"{FORMAT_MODULES[fmt]} not installed")
    result = results[fmt]
    digest = hashlib.sha256(b"".join((out / name).read_bytes() for name in result["files"])).hexdigest()
    assert result["sha256"] == digest
    assert [Path(name).stem for name in result["files"]] == [digest] * len(result["files"])
    sidecar = json.loads((out / f"{digest}.json").read_text())
    assert sidecar["architecture"] == ALL_OPS
    assert sidecar["seq_len"] == SEQ_LEN and sidecar["batch"] == EXPORT_BATCH
    assert [item["name"] for item in sidecar["inputs"]] == ["input_ids", "attention_mask", "token_type_ids"]
    assert sidecar["tools"]["torch"].startswith("2.13.0")
    assert sidecar["task"] == "classify" and sidecar["num_labels"] == 3
    if fmt == "tflite":
        assert sidecar["dynamic_batch"] is False and sidecar["opset"] is None
    else:
        assert sidecar["dynamic_batch"] is True and isinstance(sidecar["opset"], int) and sidecar["opset"] >= 18


def test_no_stray_files_in_artifact_folder(exported):
    out, results = exported
    expected = {name for r in results.values() for name in r["files"]} | {f"{r['sha256']}.json" for r in results.values()}
    assert {p.name for p in out.iterdir()} == expected


def test_tampered_artifact_is_refused(exported, tmp_path):
    out, results = exported
    result = results["onnx"]
    copy = tmp_path / Path(result["path"]).name
    copy.write_bytes(Path(result["path"]).read_bytes() + b"\0")
    (tmp_path / f"{result['sha256']}.json").write_text(Path(result["sidecar"]).read_text())
    with pytest.raises(ArtifactError, match="hash"):
        load_artifact(tmp_path / f"{result['sha256']}.json")


def test_board_side_runs_artifacts_without_torch(model, exported, tmp_path):
    """A subprocess with only the board-side modules loads, verifies and runs every artifact; torch never loads."""
    out, results = exported
    feed = random_inputs(EXPORT_BATCH, seed=7)
    np.savez(tmp_path / "feed.npz", **feed)
    script = f"""
import json, sys
import numpy as np
from device_runners.artifact import load_artifact
from device_runners.runtimes import open_session
feed = dict(np.load({str(tmp_path / 'feed.npz')!r}))
logits = {{}}
for sidecar in {[r['sidecar'] for r in results.values()]!r}:
    artifact = load_artifact(sidecar)
    logits[artifact.format] = open_session(artifact).run(feed).tolist()
print(json.dumps({{"torch_loaded": "torch" in sys.modules, "logits": logits}}))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["torch_loaded"] is False
    want = torch_logits(model, feed)
    assert set(report["logits"]) == set(results)
    for fmt, got in report["logits"].items():
        assert np.abs(np.asarray(got) - want).max() <= PARITY_TOLERANCE, fmt


def test_failed_parity_leaves_nothing_behind(tmp_path, monkeypatch):
    small = build_model(Architecture.from_dict({"l": 1, "o": [["sa_sdp_8"]], "h": [8], "f": [[16]]}), config=ModelConfig(vocab_size=20, max_positions=4))
    monkeypatch.setattr(exporter, "PARITY_TOLERANCE", -1.0)  # no export can pass: exercises the discard path
    with pytest.raises(ExportError, match="nothing kept"):
        export_model(small, "onnx", 4, 1, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_bad_sizes_are_refused_before_exporting(model, tmp_path):
    with pytest.raises(ValueError, match="seq_len 13 is outside 1..12"):
        export_model(model, "onnx", SEQ_LEN + 1, 1, tmp_path)
    with pytest.raises(ValueError, match="batch must be at least 1"):
        export_model(model, "onnx", SEQ_LEN, 0, tmp_path)
