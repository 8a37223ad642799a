"""Export a model to a content-addressed artifact, checked against torch before it is kept.

``export_model`` writes the format's file(s) into a temporary folder inside ``out_dir``,
names them by the SHA-256 of their bytes, runs them with the board-side runtime
(``device_runners.runtimes``) on seeded inputs and compares the logits with torch's.
Only an export whose largest absolute difference is within ``PARITY_TOLERANCE`` is moved
into place, model files first and the JSON sidecar last (a sidecar means a complete
artifact); nothing partial is left behind either way.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict

import numpy as np
import torch

from codesign.atomic_io import write_text_atomically
from codesign.export.formats import FORMATS, opset_of, require_format, tool_versions
from codesign.export.writers import INPUT_NAMES, OUTPUT_NAMES, silenced, write_onnx, write_openvino, write_tflite
from codesign.models.heads import TaskModel
from device_runners.artifact import FORMAT_SUFFIXES, SIDECAR_SUFFIX, read_artifact, sha256_of_files
from device_runners.runtimes import SESSIONS

PARITY_TOLERANCE = 1e-4  # largest |logit_runtime - logit_torch| accepted
EXTRA_PARITY_BATCH = 3  # dynamic-batch formats are also checked at this many more rows than exported


class ExportError(RuntimeError):
    """An export that failed or did not reproduce torch's logits."""


def example_inputs(model: TaskModel, seq_len: int, batch: int, seed: int) -> Dict[str, torch.Tensor]:
    """Seeded inputs: random tokens, the last row half padding, the first row in two segments."""
    rng = np.random.default_rng(seed)
    vocab = model.config.vocab_size
    ids = rng.integers(min(5, vocab - 1), vocab, size=(batch, seq_len))
    mask = np.ones((batch, seq_len), dtype=np.int64)
    types = np.zeros((batch, seq_len), dtype=np.int64)
    if batch > 1:
        mask[-1, max(1, seq_len // 2) :] = 0
    if model.config.type_vocab_size > 1:
        types[0, seq_len // 2 :] = 1
    return {
        "input_ids": torch.from_numpy(ids.astype(np.int64)),
        "attention_mask": torch.from_numpy(mask),
        "token_type_ids": torch.from_numpy(types),
    }


def _torch_logits(model: TaskModel, inputs: Dict[str, torch.Tensor]) -> np.ndarray:
    with torch.no_grad():
        return model(*(inputs[name] for name in INPUT_NAMES)).numpy()


def parity(model: TaskModel, fmt: str, model_file: Path, seq_len: int, batches: list, seed: int) -> float:
    """Largest |runtime - torch| over seeded inputs at each batch size."""
    session = SESSIONS[fmt](str(model_file))
    worst = 0.0
    for batch in batches:
        inputs = example_inputs(model, seq_len, batch, seed + batch)
        got = session.run({name: tensor.numpy() for name, tensor in inputs.items()})
        want = _torch_logits(model, inputs)
        if got.shape != want.shape:
            raise ExportError(f"{fmt}: logits of shape {got.shape}, torch gives {want.shape}")
        worst = max(worst, float(np.max(np.abs(got - want))))
    return worst


def _write_json_atomically(path: Path, data: dict) -> None:
    write_text_atomically(path, json.dumps(data, indent=2) + "\n")


def export_model(model: TaskModel, fmt: str, seq_len: int, batch: int, out_dir: str | Path, seed: int = 0) -> dict:
    """Export, check parity, store as ``<sha256>.<ext>`` + ``<sha256>.json``; return the sidecar plus paths."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    require_format(fmt)
    if not 1 <= seq_len <= model.config.max_positions:
        raise ValueError(f"seq_len {seq_len} is outside 1..{model.config.max_positions} (the model's positions)")
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    dynamic = fmt in ("onnx", "openvino")
    example = example_inputs(model, seq_len, max(2, batch) if dynamic else batch, seed)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out_dir) as tmp_name:
        tmp = Path(tmp_name)
        onnx_file = tmp / "model.onnx"
        files = [tmp / f"model{suffix}" for suffix in FORMAT_SUFFIXES[fmt]]
        batches = [batch, batch + EXTRA_PARITY_BATCH] if dynamic else [batch]
        with silenced():
            start = time.perf_counter()
            if fmt in ("onnx", "openvino"):
                write_onnx(model, example, onnx_file)
            if fmt == "openvino":
                write_openvino(onnx_file, tmp / "model.xml")
            if fmt == "tflite":
                write_tflite(model, example, tmp / "model.tflite")
            export_seconds = time.perf_counter() - start
            max_abs_diff = parity(model, fmt, files[0], seq_len, batches, seed)
        digest = sha256_of_files(files)
        if not max_abs_diff <= PARITY_TOLERANCE:
            raise ExportError(f"{fmt} logits differ from torch by {max_abs_diff:.3g} (> {PARITY_TOLERANCE:g}); nothing kept")
        names = [f"{digest}{suffix}" for suffix in FORMAT_SUFFIXES[fmt]]
        sidecar = {
            "sha256": digest,
            "format": fmt,
            "files": names,
            "architecture": model.architecture.to_dict(),
            **model.head_settings(),
            "model_config": model.config.to_dict(),
            "seq_len": seq_len,
            "batch": batch,
            "dynamic_batch": dynamic,
            "opset": opset_of(str(onnx_file)) if fmt in ("onnx", "openvino") else None,
            "inputs": [
                {"name": name, "dtype": "int32" if fmt == "tflite" else "int64", "shape": ["batch" if dynamic else batch, seq_len]}
                for name in INPUT_NAMES
            ],
            "outputs": [{"name": OUTPUT_NAMES[0], "shape": ["batch" if dynamic else batch, *_logit_tail(model, seq_len)]}],
            "tools": tool_versions(fmt),
            "parity": {"max_abs_diff": max_abs_diff, "tolerance": PARITY_TOLERANCE, "batches": batches, "seed": seed},
            "export_seconds": export_seconds,
            "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        for source, name in zip(files, names):
            os.replace(source, out_dir / name)
        sidecar_path = out_dir / f"{digest}{SIDECAR_SUFFIX}"
        _write_json_atomically(sidecar_path, sidecar)
    read_artifact(sidecar_path).verify()
    return {"path": str(out_dir / names[0]), "sidecar": str(sidecar_path), **sidecar}


def _logit_tail(model: TaskModel, seq_len: int) -> list:
    if model.task == "mlm":
        return [seq_len, model.config.vocab_size]
    return [model.num_labels]
