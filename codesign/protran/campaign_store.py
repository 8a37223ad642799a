"""ProTran campaigns in the one EdgeTran store (``firmware_host.store``, schema version 2).

A campaign holds what it cannot recompute cheaply, so that an interrupted campaign
resumes without measuring any architecture twice: its configuration (a resume with
another configuration is refused, naming the first key that differs; only the budget may
grow), every evaluated architecture in query order and why it was queried, one history
record per fitted surrogate, and the loop's state. The tables, their migrations from the
old one-campaign file layout and the SQLite handling live in ``firmware_host.store``
(one store implementation); this module keeps the names the loop and the reports use.
Codesign does not import the host (DESIGN.md's layering): the host registers its store
here (:func:`register_opener`, done when ``firmware_host.store`` is imported, which the
``edgetran`` CLI does), and :func:`CampaignStore` opens campaigns through it.

Each evaluation is committed on its own before the loop goes on (``synchronous=FULL``).
Everything stored is parsed with ``json``; nothing is evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

MUTABLE_CONFIG_KEYS = ("budget",)
_opener: Optional[Callable[[Path, Optional[str], bool], Any]] = None  # set by the host (firmware_host.store)


class CampaignStoreError(ValueError):
    """A campaign file that cannot be used (not a campaign, another configuration, corrupt)."""


@dataclass(frozen=True)
class StoredEvaluation:
    """One evaluated architecture as stored."""

    position: int
    arch_key: str
    architecture: dict
    measurement: dict
    reason: str


def register_opener(opener: Callable[[Path, Optional[str], bool], Any]) -> None:
    """Make ``opener(path, name, read_only)`` the store :func:`CampaignStore` opens campaigns in (the host's one store)."""
    global _opener
    _opener = opener


def CampaignStore(path: str | Path, name: str | None = None, read_only: bool = False) -> Any:
    """Open the ProTran campaign ``name`` (default: the store's) in the store at ``path`` (created when new; ``read_only``: never changed)."""
    if _opener is None:
        raise CampaignStoreError("no campaign store is registered: import firmware_host.store (the edgetran CLI does)")
    path = Path(path)
    if path.exists() and path.is_dir():
        raise CampaignStoreError(f"{path}: is a directory, expected a store file")
    if not path.parent.is_dir():
        raise CampaignStoreError(f"{path}: directory {path.parent} does not exist")
    return _opener(path, name, read_only)
