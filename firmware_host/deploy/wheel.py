"""The wheel `rig deploy` installs: built from this checkout's files, reproducibly, cached by content."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from firmware_host.deploy.settings import DeployError, SKIPPED_DIRS, WHEEL_BUILD_TIMEOUT_S, WHEEL_EPOCH_S


def default_source() -> Path | None:
    """This package's source checkout (an editable install), or None when installed from a wheel."""
    root = Path(__file__).resolve().parents[2]  # firmware_host/deploy/wheel.py -> the checkout
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and 'name = "edgetran"' in pyproject.read_text(errors="replace"):
        return root
    return None


def source_files(source: Path) -> list[str]:
    """Relative paths of the checkout's files: git's tracked and unignored ones, else a walk."""
    try:
        listed = subprocess.run(
            ["git", "-C", str(source), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True, check=True, timeout=60,
        ).stdout.decode().split("\0")
        names = sorted({n for n in listed if n and (source / n).is_file()})
        if names:
            return names
    except (OSError, subprocess.SubprocessError):
        pass
    names = []
    for directory, subdirs, files in os.walk(source):
        subdirs[:] = sorted(d for d in subdirs if d not in SKIPPED_DIRS and not d.endswith(".egg-info"))
        for name in files:
            if not name.endswith((".pyc", ".pyo")):
                names.append(str((Path(directory) / name).relative_to(source)))
    return sorted(names)


def source_digest(source: Path, files: Sequence[str] | None = None) -> str:
    """sha256 over the checkout's file names and contents: the wheel cache key."""
    digest = hashlib.sha256()
    for name in files if files is not None else source_files(source):
        digest.update(name.encode() + b"\0")
        digest.update(hashlib.sha256((source / name).read_bytes()).digest())
    return digest.hexdigest()


def default_cache_dir() -> Path:
    """Where built wheels are kept: $XDG_CACHE_HOME/edgetran/wheels (~/.cache by default)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgetran" / "wheels"


def _can_build_without_isolation() -> bool:
    """Whether this interpreter has the build backend pyproject.toml asks for (offline, faster)."""
    import importlib.metadata

    try:
        version = tuple(int(part) for part in importlib.metadata.version("setuptools").split(".")[:2])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return False
    # setuptools >= 70.1 carries bdist_wheel itself; older ones need the wheel package beside them.
    return version >= (70, 1) or (version >= (68, 0) and importlib.util.find_spec("wheel") is not None)


def build_wheel(source: Path, cache_dir: Path | None = None) -> Path:
    """The edgetran wheel of a checkout, built once per content digest and cached."""
    source = Path(source).resolve()
    if not (source / "pyproject.toml").is_file():
        raise DeployError(f"{source}: no pyproject.toml (pass the edgetran checkout, or a built --wheel)")
    files = source_files(source)
    digest = source_digest(source, files)
    out = Path(cache_dir or default_cache_dir()) / digest[:32]
    cached = sorted(out.glob("edgetran-*.whl"))
    if cached:
        return cached[0]
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgetran-wheel-") as tmp:
        copy = Path(tmp) / "src"
        for name in files:
            target = copy / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, target)
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "--disable-pip-version-check", "-w", str(Path(tmp) / "dist"), str(copy)]
        if _can_build_without_isolation():
            command.insert(4, "--no-build-isolation")
        env = {**os.environ, "SOURCE_DATE_EPOCH": str(WHEEL_EPOCH_S)}
        built = subprocess.run(command, capture_output=True, text=True, env=env, timeout=WHEEL_BUILD_TIMEOUT_S)
        if built.returncode != 0:
            tail = (built.stderr.strip().splitlines() or ["no output"])[-1]
            raise DeployError(f"building the wheel of {source} failed: {tail}")
        (wheel,) = (Path(tmp) / "dist").glob("edgetran-*.whl")
        staging = Path(tempfile.mkdtemp(prefix=f".{digest[:32]}-", dir=out.parent))
        shutil.move(str(wheel), staging / wheel.name)
        try:
            staging.rename(out)  # atomic: a concurrent build of the same digest keeps the first
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
    cached = sorted(out.glob("edgetran-*.whl"))
    if not cached:
        raise DeployError(f"wheel cache {out}: no wheel there after the build (remove the directory and retry)")
    return cached[0]


