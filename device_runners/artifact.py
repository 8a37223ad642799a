"""Exported model artifacts as a board sees them: content-addressed files and their sidecar.

An artifact is one model file (``<sha256>.onnx``, ``<sha256>.tflite``) or a pair
(``<sha256>.xml`` + ``<sha256>.bin`` for OpenVINO IR), named by the SHA-256 of its bytes
(of the files concatenated in that order), beside a JSON sidecar ``<sha256>.json``:

.. code-block:: json

    {"sha256": "...", "format": "onnx", "files": ["<sha>.onnx"],
     "architecture": {"l": 2, "o": [...], "h": [...], "f": [...]},
     "task": "classify", "num_labels": 2, "seq_len": 128, "batch": 1, "dynamic_batch": true,
     "opset": 18, "inputs": [{"name": "input_ids", "dtype": "int64", "shape": ["batch", 128]}, ...],
     "outputs": [{"name": "logits", "shape": ["batch", 2]}], "tools": {"torch": "2.13.0", ...},
     "parity": {"max_abs_diff": 1.2e-08, "batch": 2, "seed": 0}, "created_utc": "..."}

**Names are checked before they touch a path.** ``sha256`` must be 64 lowercase hex
digits and ``files`` exactly ``<sha256><suffix>`` for the format's suffixes, in order
(:func:`check_meta`). A sidecar travels from the host to a board's worker and names the
files the worker writes, so a ``sha256`` such as ``../../x`` or ``/etc/x`` (or a file name
with a separator) would write outside the cache; it is refused with :class:`ArtifactError`.

Torch-free: a board reads and verifies artifacts with numpy and the standard library.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

SIDECAR_SUFFIX = ".json"
FORMAT_SUFFIXES = {"onnx": (".onnx",), "openvino": (".xml", ".bin"), "tflite": (".tflite",)}
HASH_CHUNK_BYTES = 1 << 20
SHA256_HEX = re.compile(r"[0-9a-f]{64}")  # a hex digest as hashlib writes it: 64 lowercase digits


class ArtifactError(ValueError):
    """An artifact whose sidecar or files are missing, malformed or altered."""


def sha256_of_files(paths: Sequence[str | Path]) -> str:
    """SHA-256 (hex) of the files' bytes, concatenated in the given order."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(HASH_CHUNK_BYTES), b""):
                digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Artifact:
    """A verified-or-verifiable artifact: its files and its sidecar's content."""

    sidecar_path: Path
    meta: dict

    @property
    def sha256(self) -> str:
        """The content hash that names the files."""
        return self.meta["sha256"]

    @property
    def format(self) -> str:
        """``onnx``, ``openvino`` or ``tflite``."""
        return self.meta["format"]

    @property
    def files(self) -> list[Path]:
        """The model files, in hashing order (the first is the one a runtime opens)."""
        return [self.sidecar_path.parent / name for name in self.meta["files"]]

    @property
    def model_path(self) -> Path:
        """The file a runtime opens (``.onnx``, ``.xml`` or ``.tflite``)."""
        return self.files[0]

    @property
    def input_names(self) -> list[str]:
        """Names of the model inputs, in order."""
        return [item["name"] for item in self.meta["inputs"]]

    def verify(self) -> None:
        """Raise :class:`ArtifactError` unless every file exists and the bytes hash to the name."""
        for path in self.files:
            if not path.is_file():
                raise ArtifactError(f"{self.sidecar_path}: model file {path.name} is missing")
        actual = sha256_of_files(self.files)
        if actual != self.sha256:
            raise ArtifactError(f"{self.sidecar_path}: files hash to {actual[:12]}..., sidecar says {self.sha256[:12]}...")


REQUIRED_KEYS = ("sha256", "format", "files", "architecture", "seq_len", "batch", "inputs", "outputs", "tools")


def check_sha256(value: Any, where: str = "artifact") -> str:
    """The value if it is a sha256 hex digest (64 lowercase hex digits); ArtifactError otherwise."""
    if not isinstance(value, str) or not SHA256_HEX.fullmatch(value):
        raise ArtifactError(f"{where}: sha256 must be 64 lowercase hex digits, got {str(value)[:80]!r}")
    return value


def expected_files(sha256: str, format: str) -> list[str]:
    """The model file names of an artifact: ``<sha256><suffix>`` for each of its format's suffixes."""
    return [f"{sha256}{suffix}" for suffix in FORMAT_SUFFIXES[format]]


def check_meta(meta: Any, where: str = "artifact") -> dict:
    """A sidecar's content if its keys are present, its format known and its sha256 and file names valid."""
    if not isinstance(meta, dict):
        raise ArtifactError(f"{where}: sidecar must be a JSON object")
    missing = [key for key in REQUIRED_KEYS if key not in meta]
    if missing:
        raise ArtifactError(f"{where}: sidecar lacks {', '.join(missing)}")
    if meta["format"] not in FORMAT_SUFFIXES:
        raise ArtifactError(f"{where}: unknown format {meta['format']!r} (known: {', '.join(FORMAT_SUFFIXES)})")
    sha256 = check_sha256(meta["sha256"], where)
    expected = expected_files(sha256, meta["format"])
    if meta["files"] != expected:
        raise ArtifactError(f"{where}: files must be {expected} (<sha256>.<ext> for {meta['format']}), got {str(meta['files'])[:200]}")
    return meta


def read_artifact(path: str | Path) -> Artifact:
    """Read an artifact from its sidecar, its model file or its hash-named stem (not verified)."""
    path = Path(path)
    if path.is_dir():
        raise ArtifactError(f"{path}: is a directory, expected an artifact (its sidecar, model file or hash stem)")
    sidecar = path if path.suffix == SIDECAR_SUFFIX else path.with_suffix(SIDECAR_SUFFIX)
    try:
        with open(sidecar, encoding="utf-8") as handle:
            meta: Any = json.load(handle)
    except FileNotFoundError:
        if sidecar == path:
            raise ArtifactError(f"{path}: file not found") from None
        raise ArtifactError(f"{sidecar}: no sidecar (expected <sha256>.json beside the model file)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ArtifactError(f"{sidecar}: sidecar is not valid JSON ({error})") from None
    check_meta(meta, str(sidecar))
    return Artifact(sidecar, meta)


def load_artifact(path: str | Path) -> Artifact:
    """Read and verify an artifact (hash of the files against the sidecar)."""
    artifact = read_artifact(path)
    artifact.verify()
    return artifact
