"""The export cache: an artifact folder remembers which export request made which artifact.

A request is named by a key (the sha256 of everything that decides the export: the model
source's content, format, shapes, head and seed); ``.export-<key>.txt`` (hidden, like the other bookkeeping of an artifact folder) in the artifact
folder holds the path of the sidecar it produced. A cached artifact is used only while
its sidecar and files are there and its hashes verify; anything else is exported again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from codesign.atomic_io import write_text_atomically


def export_key(**request: Any) -> str:
    """The sha256 naming an export request (its fields as sorted JSON)."""
    return hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()


def cached_sidecar(folder: Path, key: str) -> Path | None:
    """The sidecar an earlier export of ``key`` left in ``folder``, if it is intact; else None."""
    from device_runners.artifact import ArtifactError, read_artifact

    index = Path(folder) / f".export-{key}.txt"
    if not index.is_file():
        return None
    sidecar = Path(index.read_text().strip())
    try:
        read_artifact(sidecar).verify()
    except (ArtifactError, OSError):
        return None
    return sidecar


def remember_export(folder: Path, key: str, sidecar: str | Path) -> None:
    """Record that the export ``key`` produced ``sidecar`` (atomically)."""
    write_text_atomically(Path(folder) / f".export-{key}.txt", str(sidecar))
