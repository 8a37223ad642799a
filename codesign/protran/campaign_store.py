"""ProTran campaigns in the one EdgeTran store (``firmware_host.store``, schema version 2).

A campaign holds what it cannot recompute cheaply, so that an interrupted campaign
resumes without measuring any architecture twice: its configuration (a resume with
another configuration is refused, naming the first key that differs; only the budget may
grow), every evaluated architecture in query order and why it was queried, one history
record per fitted surrogate, and the loop's state. The tables, their migrations from the
old one-campaign file layout and the SQLite handling live in ``firmware_host.store``
(one store implementation); this module keeps the names the loop and the reports use.

Each evaluation is committed on its own before the loop goes on (``synchronous=FULL``).
Everything stored is parsed with ``json``; nothing is evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

MUTABLE_CONFIG_KEYS = ("budget",)


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


def CampaignStore(path: str | Path, name: str | None = None) -> Any:
    """Open the ProTran campaign ``name`` (default ``protran``) in the store at ``path`` (created when new)."""
    from firmware_host.store import PROTRAN_DEFAULT_CAMPAIGN, ProTranCampaign  # the one store: the host provides it

    path = Path(path)
    if path.exists() and path.is_dir():
        raise CampaignStoreError(f"{path}: is a directory, expected a store file")
    if not path.parent.is_dir():
        raise CampaignStoreError(f"{path}: directory {path.parent} does not exist")
    return ProTranCampaign(path, name or PROTRAN_DEFAULT_CAMPAIGN)
