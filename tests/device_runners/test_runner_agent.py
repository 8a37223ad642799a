"""The runner agent: content-addressed artifact cache, and the protocol as a dask task on a real worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from device_runners.agent import ArtifactCache, ArtifactMissing, is_cached, package_artifact, run_on_worker
from device_runners.artifact import ArtifactError


def test_cache_stores_verifies_and_drops_damage(tiny: Path, tmp_path: Path):
    cache = ArtifactCache(tmp_path / "cache")
    payload = package_artifact(tiny)
    sha = payload["meta"]["sha256"]
    assert cache.get(sha) is None
    artifact = cache.put(payload["meta"], payload["files"])
    assert artifact.sha256 == sha and cache.get(sha) is not None
    model = cache.root / sha / f"{sha}.onnx"
    model.write_bytes(model.read_bytes()[:-10])  # a damaged cache entry
    assert cache.get(sha) is None and not (cache.root / sha).exists()
    with pytest.raises(ArtifactError, match="hash to"):
        cache.put(payload["meta"], {name: data[:-1] for name, data in payload["files"].items()})
    assert [p.name for p in cache.root.iterdir()] == []  # nothing half-written left behind


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")} if root.exists() else set()


def test_payload_naming_files_outside_the_cache_is_refused_and_writes_nothing(tiny: Path, tmp_path: Path):
    """A payload's sha256 and file names must not reach outside the cache (the old code wrote <outside>/escaped.json)."""
    cache_root = tmp_path / "boards" / "cache"
    outside = tmp_path / "outside"
    outside.mkdir()
    good = package_artifact(tiny)
    sha = good["meta"]["sha256"]
    model = good["files"][f"{sha}.onnx"]
    # a leading "/" makes the sidecar path absolute; the first 12 characters keep the staging folder inside the cache
    escaping = "//////////.." + str(outside / "escaped")
    bad_metas = [
        {**good["meta"], "sha256": escaping, "files": ["escaped.onnx"]},
        {**good["meta"], "sha256": "../../" + sha[6:], "files": [f"../../{sha[6:]}.onnx"]},
        {**good["meta"], "sha256": sha.upper(), "files": [f"{sha.upper()}.onnx"]},
        {**good["meta"], "files": [f"../{sha}.onnx"]},
        {**good["meta"], "files": [f"{sha}.bin"]},
    ]
    for meta in bad_metas:
        payload = {"meta": meta, "files": {name: model for name in meta["files"]}}
        with pytest.raises(ArtifactError, match="sha256 must be 64 lowercase hex digits|files must be"):
            run_on_worker(payload, {"runs": 2, "warmup": 0}, str(cache_root))
        with pytest.raises(ArtifactError, match="sha256 must be 64 lowercase hex digits|files must be"):
            ArtifactCache(cache_root).put(meta, payload["files"])
    with pytest.raises(ArtifactError, match="64 lowercase hex"):
        is_cached("../" * 3 + "etc", str(cache_root))
    assert _files_under(outside) == set() and _files_under(tmp_path / "boards") <= {cache_root}
    assert run_on_worker(good, {"runs": 2, "warmup": 0}, str(cache_root))["artifact_sha256"] == sha  # a good one still works


def test_task_runs_once_the_bytes_travelled(tiny: Path, tmp_path: Path):
    cache_root = str(tmp_path / "cache")
    options = {"runtime": "onnxruntime", "runs": 5, "warmup": 1}
    light = package_artifact(tiny, include_files=False)
    with pytest.raises(ArtifactMissing, match="not cached on this worker"):
        run_on_worker(light, options, cache_root)
    report = run_on_worker(package_artifact(tiny), options, cache_root)
    assert report["runs"] == 5 and report["host"]
    assert is_cached(light["meta"]["sha256"], cache_root)
    assert run_on_worker(light, options, cache_root)["artifact_sha256"] == light["meta"]["sha256"]


def test_task_on_a_dask_worker_with_a_board_resource(tiny: Path, tmp_path: Path):
    from distributed import Client, LocalCluster

    cache_root = str(tmp_path / "worker-cache")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, resources={"board-emulated-01": 1}, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            payload = package_artifact(tiny)
            future = client.submit(run_on_worker, payload, {"runs": 4, "warmup": 1}, cache_root, resources={"board-emulated-01": 1}, pure=False)
            report = future.result(timeout=120)
            cached = client.submit(is_cached, payload["meta"]["sha256"], cache_root, resources={"board-emulated-01": 1}, pure=False).result(timeout=60)
    assert report["runs"] == 4 and report["runtime"] == "onnxruntime"
    assert cached
