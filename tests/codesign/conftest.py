"""Fixtures of the codesign tests: the packaged space and the published models."""

from __future__ import annotations

import json

import pytest

from codesign.design_space import DesignSpace, default_space
from codesign.published import published_root


@pytest.fixture(scope="session")
def space() -> DesignSpace:
    """The packaged FlexiBERT 2.0 design space."""
    return default_space()


def _published_entries() -> list[tuple[str, dict]]:
    entries = []
    root = published_root()
    for path in sorted(root.glob("**/dataset.json")):
        with open(path, encoding="utf-8") as handle:
            for key, value in json.load(handle).items():
                entries.append((f"{path.parent.name}/{key}", value))
    return entries


@pytest.fixture(scope="session")
def published_entries() -> list[tuple[str, dict]]:
    """Every stored (label, record) of the packaged published datasets."""
    return _published_entries()
