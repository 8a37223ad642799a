"""The campaign file: a small SQLite database (stdlib ``sqlite3``, WAL journal).

It holds what a campaign cannot recompute cheaply, so that an interrupted campaign
resumes without measuring any architecture twice:

* ``meta``: the campaign's configuration (device, regressor, features, seed, threshold,
  initial batch, folds, patience, sampler) and the schema version. A resume with another
  configuration is refused, naming the first key that differs; only the budget may grow;
* ``evaluations``: every evaluated architecture in query order (its key, model dictionary
  and measurement as JSON) and why it was queried (initial batch, uncertainty, random);
* ``history``: one record per fitted surrogate (sample count, validation MSE, error on
  never-queried architectures, the next query), as JSON;
* ``state``: the loop's status (running, converged, budget, exhausted).

Each evaluation is committed on its own before the loop goes on (``synchronous=FULL``):
a measurement on a board can take minutes, and losing one to a crash is worse than a
slower write. Everything stored is parsed with ``json``; nothing is evaluated.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

SCHEMA_VERSION = 1
MUTABLE_CONFIG_KEYS = ("budget",)

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS evaluations ("
    " position INTEGER PRIMARY KEY, arch_key TEXT NOT NULL UNIQUE, architecture TEXT NOT NULL,"
    " measurement TEXT NOT NULL, reason TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS history (samples INTEGER PRIMARY KEY, record TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


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


class CampaignStore:
    """Read and append the records of one campaign file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.exists() and self.path.is_dir():
            raise CampaignStoreError(f"{self.path}: is a directory, expected a campaign file")
        if not self.path.parent.is_dir():
            raise CampaignStoreError(f"{self.path}: directory {self.path.parent} does not exist")
        try:
            self._db = sqlite3.connect(str(self.path))
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            with self._db:
                for statement in _SCHEMA:
                    self._db.execute(statement)
        except sqlite3.DatabaseError as error:
            raise CampaignStoreError(f"{self.path}: not a campaign file ({error})") from None

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> "CampaignStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- configuration ----------------------------------------------------------------

    def config(self) -> dict | None:
        """The stored configuration, or None for a new file."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
        return None if row is None else self._load(row[0], "meta.config")

    def bind_config(self, config: Mapping[str, Any]) -> bool:
        """Store ``config`` in a new file, or check it against the stored one; True when resuming."""
        stored = self.config()
        wanted = json.loads(json.dumps(dict(config)))
        if stored is None:
            with self._db:
                self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                self._db.execute("INSERT INTO meta VALUES ('config', ?)", (json.dumps(wanted, sort_keys=True),))
            return False
        version = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if version is None or version[0] != str(SCHEMA_VERSION):
            raise CampaignStoreError(f"{self.path}: schema version {version and version[0]!r}, expected {SCHEMA_VERSION}")
        for key in sorted(set(stored) | set(wanted)):
            if key in MUTABLE_CONFIG_KEYS:
                continue
            if stored.get(key) != wanted.get(key):
                raise CampaignStoreError(
                    f"{self.path}: campaign was started with {key}={stored.get(key)!r}, not {wanted.get(key)!r}"
                )
        if stored != wanted:
            with self._db:
                self._db.execute("UPDATE meta SET value = ? WHERE key = 'config'", (json.dumps(wanted, sort_keys=True),))
        return True

    # -- evaluations --------------------------------------------------------------------

    def evaluations(self) -> list[StoredEvaluation]:
        """Every stored evaluation, in query order."""
        rows = self._db.execute(
            "SELECT position, arch_key, architecture, measurement, reason FROM evaluations ORDER BY position"
        ).fetchall()
        out = []
        for expected, (position, key, arch, measurement, reason) in enumerate(rows):
            if position != expected:
                raise CampaignStoreError(f"{self.path}: evaluation {expected} is missing (found position {position})")
            out.append(
                StoredEvaluation(
                    position, key, self._load(arch, f"evaluation {position}"), self._load(measurement, f"evaluation {position}"), reason
                )
            )
        return out

    def add_evaluation(self, position: int, arch_key: str, architecture: Mapping, measurement: Mapping, reason: str) -> None:
        """Append one evaluation and commit it."""
        try:
            with self._db:
                self._db.execute(
                    "INSERT INTO evaluations VALUES (?, ?, ?, ?, ?)",
                    (position, arch_key, json.dumps(dict(architecture)), json.dumps(dict(measurement)), reason),
                )
        except sqlite3.IntegrityError as error:
            raise CampaignStoreError(f"{self.path}: evaluation {position} of {arch_key} already stored ({error})") from None

    # -- history and state ----------------------------------------------------------------

    def history(self) -> list[dict]:
        """Stored history records in sample-count order."""
        rows = self._db.execute("SELECT samples, record FROM history ORDER BY samples").fetchall()
        return [self._load(record, f"history {samples}") for samples, record in rows]

    def add_history(self, samples: int, record: Mapping[str, Any]) -> None:
        """Store the record of the surrogate fitted on ``samples`` evaluations (replacing none)."""
        with self._db:
            self._db.execute("INSERT OR IGNORE INTO history VALUES (?, ?)", (samples, json.dumps(dict(record))))

    def set_state(self, key: str, value: Any) -> None:
        """Set one loop-state value (JSON)."""
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (key, json.dumps(value)))

    def state(self) -> dict:
        """All loop-state values."""
        rows = self._db.execute("SELECT key, value FROM state").fetchall()
        return {key: self._load(value, f"state {key}") for key, value in rows}

    def _load(self, text: str, where: str) -> Any:
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise CampaignStoreError(f"{self.path}: {where} is not valid JSON ({error})") from None
