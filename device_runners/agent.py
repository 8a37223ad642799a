"""The runner agent: the measurement protocol as a function, and as a dask.distributed task.

On a board, a dask worker is started with a resource tag naming the board
(``dask worker tcp://host:8786 --resources "board-rpi4-01=1" --nthreads 1``); the host
submits :func:`run_on_worker` with that resource so runs on one board never overlap.

Artifacts travel by content hash: the host sends the sidecar and, only when the
worker's cache does not hold it yet, the model files' bytes. :class:`ArtifactCache`
stores them under ``<cache>/<sha256>/`` (default ``~/.cache/edgetran/artifacts``), verifies
the hash before use and never trusts a partially written entry (files are written to a
temporary folder and renamed into place). A payload's ``sha256`` and file names are
checked (:func:`device_runners.artifact.check_meta`) before any path is built from them,
so a payload cannot name a file outside the cache.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional

from device_runners.artifact import Artifact, ArtifactError, check_meta, check_sha256, load_artifact
from device_runners.protocol import measure

DEFAULT_CACHE = Path(os.environ.get("EDGETRAN_ARTIFACT_CACHE", Path.home() / ".cache" / "edgetran" / "artifacts"))


class ArtifactCache:
    """Content-addressed artifact storage on a board."""

    def __init__(self, root: str | Path = DEFAULT_CACHE) -> None:
        self.root = Path(root)

    def sidecar(self, sha256: str) -> Path:
        """Where an artifact's sidecar lives in the cache (ArtifactError unless sha256 is a hex digest)."""
        check_sha256(sha256, "cached artifact")
        return self.root / sha256 / f"{sha256}.json"

    def get(self, sha256: str) -> Optional[Artifact]:
        """The cached artifact, verified; None when absent or damaged (a damaged entry is removed)."""
        path = self.sidecar(sha256)
        if not path.is_file():
            return None
        try:
            artifact = load_artifact(path)
            if artifact.sha256 != sha256:
                raise ArtifactError(f"{path}: names {artifact.sha256[:12]}, not {sha256[:12]}")
            return artifact
        except ArtifactError:
            shutil.rmtree(path.parent, ignore_errors=True)
            return None

    def put(self, meta: dict, files: dict[str, bytes]) -> Artifact:
        """Store an artifact's sidecar and files atomically, verify and return it."""
        check_meta(meta, "artifact payload")
        sha256 = meta["sha256"]
        if not isinstance(files, dict) or set(files) != set(meta["files"]):
            got = sorted(files) if isinstance(files, dict) else type(files).__name__
            raise ArtifactError(f"artifact {sha256[:12]}: got files {got}, sidecar lists {meta['files']}")
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{sha256[:12]}-", dir=self.root))
        try:
            for name in meta["files"]:  # checked names: <sha256>.<ext>
                (staging / name).write_bytes(files[name])
            (staging / f"{sha256}.json").write_text(json.dumps(meta))
            load_artifact(staging / f"{sha256}.json")  # verify before it becomes visible
            target = self.root / sha256
            try:
                os.replace(staging, target)
            except OSError:  # another task stored it first
                shutil.rmtree(staging, ignore_errors=True)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
        artifact = self.get(sha256)
        if artifact is None:
            raise ArtifactError(f"artifact {sha256[:12]} could not be stored in {self.root}")
        return artifact


def package_artifact(path: str | Path, include_files: bool = True) -> dict:
    """What the host sends: the sidecar and (optionally) the model files' bytes."""
    artifact = load_artifact(path)
    payload: dict[str, Any] = {"meta": artifact.meta}
    if include_files:
        payload["files"] = {p.name: p.read_bytes() for p in artifact.files}
    return payload


class ArtifactMissing(LookupError):
    """The worker's cache lacks an artifact and the request did not carry its files."""


def run_on_worker(payload: dict, options: dict, cache_root: Optional[str] = None) -> dict:
    """A dask task: make the artifact available in the worker's cache, measure, return the report."""
    cache = ArtifactCache(cache_root or DEFAULT_CACHE)
    meta = check_meta(payload["meta"], "artifact payload")
    artifact = cache.get(meta["sha256"])
    if artifact is None:
        if "files" not in payload:
            raise ArtifactMissing(f"artifact {meta['sha256'][:12]} is not cached on this worker; send its files")
        artifact = cache.put(meta, payload["files"])
    report = measure(artifact.sidecar_path, **options).to_dict()
    report["host"] = os.uname().nodename
    return report


def is_cached(sha256: str, cache_root: Optional[str] = None) -> bool:
    """A dask task: whether a worker already holds an artifact (so its bytes need not travel)."""
    return ArtifactCache(cache_root or DEFAULT_CACHE).get(sha256) is not None

