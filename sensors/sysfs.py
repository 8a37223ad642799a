"""Reading sysfs attribute files under an injectable root, and writing fake trees.

Every sysfs-backed source (INA3221 rails, RAPL powercap zones) reads through these
functions, so a read error always names the file, and a test, an emulated rig or a
container that mounts the host's ``/sys`` elsewhere only changes the root directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Union

from sensors.base import SensorError

PathLike = Union[str, "os.PathLike[str]"]


def under_root(root: PathLike, absolute: str) -> Path:
    """The path ``absolute`` (e.g. ``/sys/class/powercap``) inside ``root``."""
    return Path(root) / absolute.lstrip("/")


def read_raw(path: Path) -> str:
    """The text of one attribute file; OS errors propagate unchanged."""
    with open(path, encoding="ascii", errors="replace") as handle:
        return handle.read()


def read_text(path: Path, *, permission_hint: str = "") -> str:
    """The stripped text of one attribute file; any failure is a SensorError naming it."""
    try:
        return read_raw(path).strip()
    except PermissionError as exc:
        hint = f" {permission_hint}" if permission_hint else ""
        raise SensorError(f"permission denied reading {path}.{hint}") from exc
    except OSError as exc:
        raise SensorError(f"cannot read {path}: {exc.strerror or exc}") from exc


def read_int(path: Path, *, permission_hint: str = "") -> int:
    """An integer attribute (the first word: some drivers append units, e.g. ``"32760 ma"``)."""
    text = read_text(path, permission_hint=permission_hint)
    word = text.split()[0] if text else ""
    try:
        return int(word)
    except ValueError as exc:
        raise SensorError(f"{path} does not hold an integer: {text!r}") from exc


def write_tree(root: PathLike, files: Mapping[str, str], symlinks: Mapping[str, str] | None = None) -> Path:
    """Write a fake sysfs tree: ``files`` maps relative paths to contents, ``symlinks`` link -> target.

    Used by tests and emulated rigs; a symlink target is relative to the link's folder,
    as the kernel's ``/sys/bus/i2c/drivers/*/<dev>`` links are.
    """
    base = Path(root)
    for relative, content in files.items():
        path = base / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="ascii")
    for link, target in (symlinks or {}).items():
        path = base / link
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.exists():
            path.unlink()
        path.symlink_to(target)
    return base
