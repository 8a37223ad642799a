"""The measurement store: one SQLite file (stdlib ``sqlite3``, WAL journal) for the bench host.

Tables: ``rigs``, ``artifacts`` (sha256, format, architecture and sidecar JSON),
``campaigns`` (name, created, config JSON, status), ``measurements``, ``traces`` (an index
of trace files: path, sha256 of the file, streams, start/end), ``failures`` and
``schema_version``.

**Resume without repeats.** A measurement is identified within its campaign by a
:class:`MeasurementKey` (architecture key, board, runtime, device, batch, repeat index);
the table holds a UNIQUE constraint on (campaign, key). Every insert is its own committed
transaction (``synchronous=FULL``), so a process killed at any point leaves each
measurement either wholly stored or absent. :meth:`MeasurementStore.pending` returns the
keys of a campaign still to measure, in the order given.

**Counting repeats under the write lock.** Ad-hoc runs (``edgetran profile --store``) are
stored as the next repeat of their key. Counting the stored repeats and inserting the new
one must be one transaction, or two processes count the same index and one measurement
is refused as a "duplicate". :meth:`~MeasurementStore.transaction` is ``BEGIN IMMEDIATE``
(the write lock is taken before the count is read, other writers wait up to
``BUSY_TIMEOUT_S``) and :meth:`~MeasurementStore.next_repeat` is ``MAX(repeat) + 1`` inside
it, so concurrent writers get unique, contiguous indices.

**Inserting a finished measurement twice** is a no-op when the values are the same
(:meth:`~MeasurementStore.add_measurement` returns ``False``): a resumed process that
re-sends the last result before it learnt it was stored does no harm. Different values
for a stored key raise :class:`DuplicateMeasurement`: a key is measured once, and a
second, different number for it is a bug in the caller, never silently kept or dropped.

**Exact values.** Numbers are stored as SQLite REAL (IEEE-754 doubles) and JSON written
with ``repr`` precision, so they read back bit for bit (one exception: SQLite stores
``-0.0`` as ``0.0``, which compares equal). Non-finite numbers are refused
(SQLite turns NaN into NULL); a missing figure (no energy without a sensor) is ``None``.

**Schema versions.** ``schema_version`` lists every version applied. A new file gets the
current schema; an older file is upgraded by the migration functions
(``{target version: function(connection)}``), in one transaction; a newer file is refused.
Version 2 is the one store: it adds ProTran / co-design campaigns (``protran_campaigns``,
``protran_evaluations``, ``protran_history``, ``protran_state``, each keyed by campaign
name) beside the measurements. A version-1 measurement store is upgraded in place; a file
of the old ProTran layout (tables ``meta``, ``evaluations``, ``history``, ``state`` and no
``schema_version``; also found inside measurement stores that ``protran run --store``
wrote into) is read as version 0 and its campaign moved into the new tables, under the
name :data:`PROTRAN_DEFAULT_CAMPAIGN`.

Exports (CSV and JSON) are written to a temporary file beside the target, fsynced, then
moved into place with ``os.replace``: a reader never sees half a file.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sqlite3
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from hashlib import sha256
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, NamedTuple

from codesign.atomic_io import atomic_path
from codesign.protran.campaign_store import MUTABLE_CONFIG_KEYS as PROTRAN_MUTABLE_CONFIG_KEYS
from codesign.protran.campaign_store import CampaignStoreError, StoredEvaluation, register_opener

SCHEMA_VERSION = 2
PROTRAN_DEFAULT_CAMPAIGN = "protran"  # the campaign name `protran run --store` uses (and legacy ProTran files get)
_LEGACY_PROTRAN_TABLES = frozenset({"meta", "evaluations", "history", "state"})
DEFAULT_DB_PATH = Path("~/.local/share/edgetran/edgetran.db")
DB_PATH_ENV = "EDGETRAN_DB"  # overrides the default path
BUSY_TIMEOUT_S = 30.0  # how long a writer waits for another connection's write lock
HASH_CHUNK_BYTES = 1 << 20
CAMPAIGN_STATUSES = ("running", "finished", "failed", "abandoned")

Migration = Callable[[sqlite3.Connection], None]

_SCHEMA = (
    "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied TEXT NOT NULL)",
    "CREATE TABLE rigs (name TEXT PRIMARY KEY, config TEXT NOT NULL, created TEXT NOT NULL)",
    "CREATE TABLE artifacts (sha256 TEXT PRIMARY KEY, format TEXT NOT NULL, architecture TEXT NOT NULL,"
    " sidecar TEXT NOT NULL, created TEXT NOT NULL)",
    "CREATE TABLE campaigns (name TEXT PRIMARY KEY, created TEXT NOT NULL, config TEXT NOT NULL,"
    f" status TEXT NOT NULL CHECK (status IN ({', '.join(repr(s) for s in CAMPAIGN_STATUSES)})))",
    "CREATE TABLE traces (path TEXT PRIMARY KEY, sha256 TEXT NOT NULL, streams TEXT NOT NULL,"
    " start_s REAL, end_s REAL, created TEXT NOT NULL)",
    "CREATE TABLE measurements ("
    " id INTEGER PRIMARY KEY,"
    " campaign TEXT NOT NULL REFERENCES campaigns(name),"
    " arch_key TEXT NOT NULL, board TEXT NOT NULL, runtime TEXT NOT NULL, device TEXT NOT NULL,"
    " batch INTEGER NOT NULL, repeat INTEGER NOT NULL,"
    " artifact_sha256 TEXT REFERENCES artifacts(sha256),"
    " runs INTEGER NOT NULL,"
    " latency_s_per_seq REAL NOT NULL, energy_j_per_seq REAL, peak_power_w REAL,"
    " latency_spread_s_per_seq REAL, energy_spread_j_per_seq REAL,"
    " sensor TEXT, trace_path TEXT,"
    " clock_offset_s REAL, clock_uncertainty_s REAL,"
    " emulated INTEGER NOT NULL CHECK (emulated IN (0, 1)),"
    " data TEXT NOT NULL, created TEXT NOT NULL,"
    " UNIQUE (campaign, arch_key, board, runtime, device, batch, repeat))",
    "CREATE TABLE failures (id INTEGER PRIMARY KEY, campaign TEXT NOT NULL REFERENCES campaigns(name),"
    " arch_key TEXT NOT NULL, board TEXT NOT NULL, runtime TEXT NOT NULL, device TEXT NOT NULL,"
    " batch INTEGER NOT NULL, repeat INTEGER NOT NULL, reason TEXT NOT NULL, created TEXT NOT NULL)",
    "CREATE INDEX failures_by_campaign ON failures (campaign)",
)

_PROTRAN_SCHEMA = (
    "CREATE TABLE protran_campaigns (name TEXT PRIMARY KEY, config TEXT NOT NULL, created TEXT NOT NULL)",
    "CREATE TABLE protran_evaluations (campaign TEXT NOT NULL REFERENCES protran_campaigns(name),"
    " position INTEGER NOT NULL, arch_key TEXT NOT NULL, architecture TEXT NOT NULL, measurement TEXT NOT NULL,"
    " reason TEXT NOT NULL, PRIMARY KEY (campaign, position), UNIQUE (campaign, arch_key))",
    "CREATE TABLE protran_history (campaign TEXT NOT NULL, samples INTEGER NOT NULL, record TEXT NOT NULL,"
    " PRIMARY KEY (campaign, samples))",
    "CREATE TABLE protran_state (campaign TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (campaign, key))",
)


def _migrate_to_v1(conn: sqlite3.Connection) -> None:
    """Version 0 (an old ProTran campaign file) to 1: add the measurement tables."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for statement in _SCHEMA:
        if statement.startswith("CREATE TABLE "):
            if statement.split()[2] in tables:
                continue
        conn.execute(statement)


def _migrate_to_v2(conn: sqlite3.Connection) -> None:
    """Version 1 to 2: the ProTran tables; an old-layout ProTran campaign in the file is moved into them."""
    for statement in _PROTRAN_SCHEMA:
        conn.execute(statement)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if not _LEGACY_PROTRAN_TABLES <= tables:
        return
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    name = PROTRAN_DEFAULT_CAMPAIGN
    rows = sum(conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("evaluations", "history", "state"))
    if "config" in meta or rows:  # a file opened by the old code but never bound keeps its rows under an empty config
        conn.execute("INSERT INTO protran_campaigns VALUES (?, ?, ?)", (name, meta.get("config", "{}"), _now()))
        conn.execute("INSERT INTO protran_evaluations SELECT ?, position, arch_key, architecture, measurement, reason FROM evaluations", (name,))
        conn.execute("INSERT INTO protran_history SELECT ?, samples, record FROM history", (name,))
        conn.execute("INSERT INTO protran_state SELECT ?, key, value FROM state", (name,))
    for table in sorted(_LEGACY_PROTRAN_TABLES):
        conn.execute(f"DROP TABLE {table}")


MIGRATIONS: dict[int, Migration] = {1: _migrate_to_v1, 2: _migrate_to_v2}


class StoreError(ValueError):
    """A store that cannot be opened or used as asked (bad path, not a database, newer schema, bad value)."""


class DuplicateMeasurement(StoreError):
    """A finished measurement stored again with different values."""


class MeasurementKey(NamedTuple):
    """What identifies one measurement within a campaign."""

    arch_key: str  # architecture (or artifact) key
    board: str
    runtime: str
    device: str
    batch: int
    repeat: int  # repeat index, 0-based


@dataclass(frozen=True)
class MeasurementRecord:
    """One finished measurement, as stored (seconds, joules, watts per sequence)."""

    campaign: str
    key: MeasurementKey
    runs: int
    latency_s_per_seq: float
    energy_j_per_seq: float | None = None
    peak_power_w: float | None = None
    # spread = max - min of the repeats' values (the range; not a standard deviation): the
    # measurement's "spread" holds that min and max, and reports draw them as error bars
    latency_spread_s_per_seq: float | None = None
    energy_spread_j_per_seq: float | None = None
    sensor: str | None = None
    trace_path: str | None = None
    clock_offset_s: float | None = None  # sensor clock = runner clock + offset
    clock_uncertainty_s: float | None = None
    emulated: bool = False
    artifact_sha256: str | None = None
    data: dict = field(default_factory=dict)  # the full measurement (run report, energy window, ...)

    def to_dict(self) -> dict:
        """Flat JSON form: the key's fields beside the values."""
        flat = asdict(self)
        flat.pop("key")
        return {"campaign": self.campaign, **self.key._asdict(), **{k: v for k, v in flat.items() if k != "campaign"}}


@dataclass(frozen=True)
class Campaign:
    """A campaign's row."""

    name: str
    created: str
    config: dict
    status: str


@dataclass(frozen=True)
class Failure:
    """A measurement that failed, and why."""

    campaign: str
    key: MeasurementKey
    reason: str
    created: str


_VALUE_COLUMNS = tuple(f.name for f in fields(MeasurementRecord) if f.name not in ("campaign", "key", "data"))
_FLOAT_COLUMNS = (
    "latency_s_per_seq",
    "energy_j_per_seq",
    "peak_power_w",
    "latency_spread_s_per_seq",
    "energy_spread_j_per_seq",
    "clock_offset_s",
    "clock_uncertainty_s",
)
_KEY_COLUMNS = MeasurementKey._fields
EXPORT_COLUMNS = ("campaign", *_KEY_COLUMNS, *_VALUE_COLUMNS, "data", "created")


def default_db_path() -> Path:
    """The store's path: $EDGETRAN_DB if set, else ~/.local/share/edgetran/edgetran.db."""
    return Path(os.environ.get(DB_PATH_ENV) or DEFAULT_DB_PATH).expanduser()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise StoreError(f"value is not storable as JSON: {error}") from None


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _check_record(record: MeasurementRecord) -> None:
    key = record.key
    if not isinstance(key, MeasurementKey):
        raise StoreError(f"measurement key must be a MeasurementKey, got {type(key).__name__}")
    for name in ("arch_key", "board", "runtime", "device"):
        if not isinstance(getattr(key, name), str) or not getattr(key, name):
            raise StoreError(f"measurement key field {name} must be a non-empty string, got {getattr(key, name)!r}")
    if int(key.batch) < 1 or int(key.repeat) < 0 or int(record.runs) < 1:
        raise StoreError(f"batch and runs must be >= 1 and repeat >= 0, got batch={key.batch} repeat={key.repeat} runs={record.runs}")
    for name in _FLOAT_COLUMNS:
        value = getattr(record, name)
        if value is None:
            if name == "latency_s_per_seq":
                raise StoreError("latency_s_per_seq is required")
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise StoreError(f"{name} must be a finite number or None, got {value!r}")


def _refuse_directory(path: Path) -> None:
    """A store path must name a file, not a directory (StoreError)."""
    if path.is_dir():
        raise StoreError(f"store path {path} is a directory; give a file path such as {path / 'edgetran.db'}")


class MeasurementStore:
    """Read and write the bench host's SQLite store (one connection; open one store per thread)."""

    def __init__(self, path: str | Path | None = None, migrations: Mapping[int, Migration] | None = None, read_only: bool = False) -> None:
        """Open (create, migrate) a store; ``read_only`` opens an existing one without changing the file.

        Read-only (``store info``, ``store campaigns``, ``store export``, ``protran
        report``): the file is opened ``mode=ro`` (``immutable`` when even its WAL index
        cannot be created, e.g. on a read-only mount) and never migrated in place; an older
        schema is copied into memory and migrated there, so reading an old store leaves it
        as it was (the choice, #12: a reader must not need write access, and migrating is a
        writer's job: the next ``run`` into it migrates it).
        """
        self.path = Path(path).expanduser() if path is not None else default_db_path()
        self.migrations = {**MIGRATIONS, **(migrations or {})}
        self.target_version = max([SCHEMA_VERSION, *self.migrations])
        self.read_only = read_only
        self._migrate_copy = False  # read-only: an older schema migrated in memory
        self.file_schema_version: int | None = None  # the file's own version when it was opened read-only and older
        self.connection = self._connect_read_only() if read_only else self._connect()
        try:
            if not read_only or self._migrate_copy:
                self._prepare()
        except BaseException:
            self.connection.close()
            raise

    # -- opening ------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        path = self.path
        _refuse_directory(path)
        parent = path.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise StoreError(f"store path {path}: {parent} exists and is not a directory") from None
        except PermissionError:
            raise StoreError(f"store path {path}: no permission to create {parent}") from None
        try:
            connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as error:
            writable = os.access(parent, os.W_OK | os.X_OK)  # sqlite's 'unable to open database file' hides which
            why = f"cannot write into {parent}" if not writable or not path.exists() else str(error)
            raise StoreError(f"cannot open store {path}: {why} ({error})") from None
        connection.row_factory = sqlite3.Row
        try:
            mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            connection.execute("PRAGMA synchronous=FULL")
            connection.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as error:
            connection.close()
            raise StoreError(f"store {path} is not an EdgeTran store (SQLite says: {error})") from None
        if mode.lower() != "wal":
            connection.close()
            raise StoreError(f"store {path}: the file system refused WAL mode (got {mode!r}); use a local disk")
        return connection

    def _connect_read_only(self) -> sqlite3.Connection:
        path = self.path
        _refuse_directory(path)
        if not path.is_file():
            raise StoreError(f"store {path}: no store there yet")
        last: Exception | None = None
        for flags in ("mode=ro", "mode=ro&immutable=1"):
            connection = sqlite3.connect(f"{path.resolve().as_uri()}?{flags}", uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            try:
                tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                break
            except sqlite3.DatabaseError as error:
                connection.close()
                last = error
        else:
            raise StoreError(f"store {path} cannot be read: {last}") from None
        connection.row_factory = sqlite3.Row
        version = 0
        if "schema_version" in tables:
            version = connection.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0
        elif not _LEGACY_PROTRAN_TABLES <= tables:
            connection.close()
            raise StoreError(f"store {path} is an SQLite file but not an EdgeTran store (tables: {', '.join(sorted(tables)) or 'none'})")
        if version > self.target_version:
            connection.close()
            raise StoreError(f"store {path} has schema version {version}, newer than this edgetran's {self.target_version}; upgrade edgetran")
        if version < self.target_version:  # migrate a copy in memory; the file stays as it is
            self._migrate_copy = True
            self.file_schema_version = version
            memory = sqlite3.connect(":memory:", isolation_level=None)
            connection.backup(memory)
            connection.close()
            memory.row_factory = sqlite3.Row
            connection = memory
        return connection

    def _prepare(self) -> None:
        try:
            self._prepare_schema()
        except sqlite3.Error as error:
            raise StoreError(f"store {self.path} cannot be written: {error}") from None

    def _prepare_schema(self) -> None:
        conn = self.connection
        conn.execute("BEGIN IMMEDIATE")
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables:
                for statement in (*_SCHEMA, *_PROTRAN_SCHEMA):
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version VALUES (?, ?)", (SCHEMA_VERSION, _now()))
                version = SCHEMA_VERSION
            elif "schema_version" not in tables and _LEGACY_PROTRAN_TABLES <= tables:
                version = 0  # an old ProTran campaign file: migrated below
            elif "schema_version" not in tables:
                raise StoreError(f"store {self.path} is an SQLite file but not an EdgeTran store (tables: {', '.join(sorted(tables))})")
            else:
                version = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0
            if version > self.target_version:
                raise StoreError(
                    f"store {self.path} has schema version {version}, newer than this edgetran's {self.target_version}; upgrade edgetran"
                )
            for target in range(version + 1, self.target_version + 1):
                if target not in self.migrations:
                    raise StoreError(f"store {self.path}: no migration from schema version {target - 1} to {target}")
                self.migrations[target](conn)
                conn.execute("INSERT INTO schema_version VALUES (?, ?)", (target, _now()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @property
    def schema_version(self) -> int:
        """The highest schema version applied to this file."""
        return int(self.connection.execute("SELECT MAX(version) FROM schema_version").fetchone()[0])

    def close(self) -> None:
        """Close the connection."""
        self.connection.close()

    def __enter__(self) -> "MeasurementStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator["MeasurementStore"]:
        """One write transaction (BEGIN IMMEDIATE: the write lock first) around the block; committed at its end, rolled back on error."""
        conn = self.connection
        if conn.in_transaction:
            raise StoreError(f"store {self.path}: a transaction is already open on this connection")
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- rigs, artifacts, traces --------------------------------------------------------

    def add_rig(self, name: str, config: Mapping[str, Any]) -> None:
        """Insert or replace a rig's description."""
        self.connection.execute(
            "INSERT INTO rigs VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET config = excluded.config", (name, _dumps(dict(config)), _now())
        )

    def rig(self, name: str) -> dict | None:
        """A rig's configuration, or None."""
        row = self.connection.execute("SELECT config FROM rigs WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else None

    def add_artifact(self, sha256_hex: str, format: str, architecture: Mapping[str, Any], sidecar: Mapping[str, Any]) -> None:
        """Record an exported artifact (its sha256 names it; the same sha256 twice is a no-op)."""
        if len(sha256_hex) != 64 or any(c not in "0123456789abcdef" for c in sha256_hex):
            raise StoreError(f"artifact sha256 must be 64 lowercase hex digits, got {sha256_hex!r}")
        self.connection.execute(
            "INSERT INTO artifacts VALUES (?, ?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING",
            (sha256_hex, format, _dumps(dict(architecture)), _dumps(dict(sidecar)), _now()),
        )

    def artifact(self, sha256_hex: str) -> dict | None:
        """An artifact's row (format, architecture, sidecar), or None."""
        row = self.connection.execute("SELECT * FROM artifacts WHERE sha256 = ?", (sha256_hex,)).fetchone()
        if row is None:
            return None
        return {"sha256": row["sha256"], "format": row["format"], "architecture": json.loads(row["architecture"]), "sidecar": json.loads(row["sidecar"])}

    def add_trace(self, path: str | Path, streams: Iterable[str], start_s: float | None = None, end_s: float | None = None) -> str:
        """Index a trace file (hashing its bytes); return its sha256."""
        path = Path(path)
        try:
            digest = file_sha256(path)
        except OSError as error:
            raise StoreError(f"cannot index trace {path}: {error.strerror or error}") from None
        self.connection.execute(
            "INSERT INTO traces VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO UPDATE SET"
            " sha256 = excluded.sha256, streams = excluded.streams, start_s = excluded.start_s, end_s = excluded.end_s",
            (str(path), digest, _dumps(list(streams)), start_s, end_s, _now()),
        )
        return digest

    def trace(self, path: str | Path) -> dict | None:
        """A trace's index row (sha256, streams, start_s, end_s), or None."""
        row = self.connection.execute("SELECT * FROM traces WHERE path = ?", (str(path),)).fetchone()
        if row is None:
            return None
        return {"path": row["path"], "sha256": row["sha256"], "streams": json.loads(row["streams"]), "start_s": row["start_s"], "end_s": row["end_s"]}

    # -- campaigns ----------------------------------------------------------------------

    def start_campaign(self, name: str, config: Mapping[str, Any]) -> Campaign:
        """Create a campaign, or resume it (status 'running') if it exists with the same config."""
        if not name:
            raise StoreError("a campaign needs a name")
        encoded = _dumps(dict(config))
        conn = self.connection
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT config FROM campaigns WHERE name = ?", (name,)).fetchone()
            if row is None:
                conn.execute("INSERT INTO campaigns VALUES (?, ?, ?, 'running')", (name, _now(), encoded))
            elif row[0] != encoded:
                old, new = json.loads(row[0]), json.loads(encoded)
                differing = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
                raise StoreError(f"campaign {name!r} exists with another configuration (differs in: {', '.join(differing)})")
            else:
                conn.execute("UPDATE campaigns SET status = 'running' WHERE name = ?", (name,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        campaign = self.campaign(name)
        assert campaign is not None
        return campaign

    def campaign(self, name: str) -> Campaign | None:
        """A campaign's row, or None."""
        row = self.connection.execute("SELECT * FROM campaigns WHERE name = ?", (name,)).fetchone()
        return Campaign(row["name"], row["created"], json.loads(row["config"]), row["status"]) if row else None

    def campaigns(self) -> list[Campaign]:
        """Every campaign, oldest first."""
        rows = self.connection.execute("SELECT * FROM campaigns ORDER BY created, name")
        return [Campaign(r["name"], r["created"], json.loads(r["config"]), r["status"]) for r in rows]

    def set_status(self, name: str, status: str) -> None:
        """Set a campaign's status (running, finished, failed, abandoned)."""
        if status not in CAMPAIGN_STATUSES:
            raise StoreError(f"campaign status must be one of {', '.join(CAMPAIGN_STATUSES)}, got {status!r}")
        if self.connection.execute("UPDATE campaigns SET status = ? WHERE name = ?", (status, name)).rowcount == 0:
            raise StoreError(f"no campaign {name!r}")

    # -- measurements -------------------------------------------------------------------

    def add_measurement(self, record: MeasurementRecord) -> bool:
        """Store a finished measurement; False if the same one was already stored (different values raise)."""
        _check_record(record)
        values = [getattr(record, c) for c in _VALUE_COLUMNS]
        values[_VALUE_COLUMNS.index("emulated")] = int(bool(record.emulated))
        key = (str(record.key.arch_key), str(record.key.board), str(record.key.runtime), str(record.key.device), int(record.key.batch), int(record.key.repeat))
        columns = ("campaign", *_KEY_COLUMNS, *_VALUE_COLUMNS, "data", "created")
        try:
            cursor = self.connection.execute(
                f"INSERT INTO measurements ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
                " ON CONFLICT (campaign, arch_key, board, runtime, device, batch, repeat) DO NOTHING",
                (record.campaign, *key, *values, _dumps(record.data), _now()),
            )
        except sqlite3.IntegrityError as error:
            raise StoreError(f"cannot store measurement {tuple(record.key)} of campaign {record.campaign!r}: {error} (start the campaign first)") from None
        if cursor.rowcount == 1:
            return True
        stored = self.measurement(record.campaign, record.key)
        if stored != _normalised(record):
            raise DuplicateMeasurement(f"campaign {record.campaign!r} already holds {tuple(record.key)} with other values")
        return False

    def measurement(self, campaign: str, key: MeasurementKey) -> MeasurementRecord | None:
        """One stored measurement, or None."""
        row = self.connection.execute(
            "SELECT * FROM measurements WHERE campaign = ? AND arch_key = ? AND board = ? AND runtime = ? AND device = ? AND batch = ? AND repeat = ?",
            (campaign, *key),
        ).fetchone()
        return _record(row) if row else None

    def measurements(self, campaign: str) -> list[MeasurementRecord]:
        """A campaign's measurements in insertion order."""
        rows = self.connection.execute("SELECT * FROM measurements WHERE campaign = ? ORDER BY id", (campaign,))
        return [_record(r) for r in rows]

    def next_repeat(self, campaign: str, prefix: Iterable[Any]) -> int:
        """The next repeat index (MAX + 1, 0 when none) of a key's first five fields; call it inside :meth:`transaction`."""
        arch_key, board, runtime, device, batch = prefix
        row = self.connection.execute(
            "SELECT MAX(repeat) FROM measurements WHERE campaign = ? AND arch_key = ? AND board = ? AND runtime = ? AND device = ? AND batch = ?",
            (campaign, str(arch_key), str(board), str(runtime), str(device), int(batch)),
        ).fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def pending(self, campaign: str, keys: Iterable[MeasurementKey], skip_failed: bool = False) -> list[MeasurementKey]:
        """The keys (in the order given) with no stored measurement (nor a failure, with skip_failed)."""
        done = {
            tuple(r)
            for r in self.connection.execute(
                "SELECT arch_key, board, runtime, device, batch, repeat FROM measurements WHERE campaign = ?", (campaign,)
            )
        }
        if skip_failed:
            done |= {
                tuple(r)
                for r in self.connection.execute("SELECT arch_key, board, runtime, device, batch, repeat FROM failures WHERE campaign = ?", (campaign,))
            }
        return [MeasurementKey(*k) for k in keys if tuple(k) not in done]

    def add_failure(self, campaign: str, key: MeasurementKey, reason: str) -> None:
        """Record that measuring a key failed, and why (one line)."""
        try:
            self.connection.execute(
                "INSERT INTO failures (campaign, arch_key, board, runtime, device, batch, repeat, reason, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (campaign, *key, " ".join(str(reason).split()), _now()),
            )
        except sqlite3.IntegrityError:
            raise StoreError(f"cannot record a failure for campaign {campaign!r}: no such campaign") from None

    def failures(self, campaign: str) -> list[Failure]:
        """A campaign's failures in order."""
        rows = self.connection.execute("SELECT * FROM failures WHERE campaign = ? ORDER BY id", (campaign,))
        return [Failure(r["campaign"], MeasurementKey(*(r[k] for k in _KEY_COLUMNS)), r["reason"], r["created"]) for r in rows]

    # -- export -------------------------------------------------------------------------

    def export(self, campaign: str, path: str | Path, format: str | None = None) -> Path:
        """Write a campaign's measurements to CSV or JSON (by suffix unless given), atomically."""
        path = Path(path).expanduser()
        format = (format or path.suffix.lstrip(".")).lower()
        if format not in ("csv", "json"):
            raise StoreError(f"export format must be csv or json, got {format or 'none'!r} (from {path.name})")
        info = self.campaign(campaign)
        if info is None:
            raise StoreError(f"no campaign {campaign!r} in {self.path}")
        if path.is_dir():
            raise StoreError(f"export path {path} is a directory")
        if not path.parent.is_dir():
            raise StoreError(f"export path {path}: directory {path.parent} does not exist")
        rows = [dict(r) for r in self.connection.execute("SELECT * FROM measurements WHERE campaign = ? ORDER BY id", (campaign,))]
        if format == "json":
            document = {
                "campaign": asdict(info),
                "measurements": [{**{c: r[c] for c in EXPORT_COLUMNS if c != "data"}, "emulated": bool(r["emulated"]), "data": json.loads(r["data"])} for r in rows],
                "failures": [{**f.key._asdict(), "reason": f.reason, "created": f.created} for f in self.failures(campaign)],
            }
            _atomic_write(path, lambda handle: json.dump(document, handle, indent=1, allow_nan=False))
        else:
            def write_csv(handle: Any) -> None:
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow(EXPORT_COLUMNS)
                for r in rows:
                    writer.writerow(["" if r[c] is None else repr(r[c]) if isinstance(r[c], float) else r[c] for c in EXPORT_COLUMNS])

            _atomic_write(path, write_csv)
        return path


    # -- ProTran / co-design campaigns --------------------------------------------------

    def summary(self) -> dict:
        """What the store holds: schema version, rigs, artifacts and traces' index, campaigns of both kinds."""
        conn = self.connection
        campaigns = [{"name": c.name, "kind": "measurement", "status": c.status, "created": c.created,
                      "measurements": conn.execute("SELECT COUNT(*) FROM measurements WHERE campaign = ?", (c.name,)).fetchone()[0],
                      "failures": conn.execute("SELECT COUNT(*) FROM failures WHERE campaign = ?", (c.name,)).fetchone()[0]}
                     for c in self.campaigns()]
        return {
            "path": str(self.path),
            "schema_version": self.file_schema_version if self.file_schema_version is not None else self.schema_version,
            **({"migrates_to": self.schema_version} if self.file_schema_version is not None else {}),  # read-only view of an older file
            "rigs": [r[0] for r in conn.execute("SELECT name FROM rigs ORDER BY name")],
            "artifacts": conn.execute("SELECT COUNT(*) FROM artifacts").fetchone()[0],
            "traces": [{"path": r["path"], "sha256": r["sha256"], "streams": json.loads(r["streams"]), "start_s": r["start_s"], "end_s": r["end_s"]}
                       for r in conn.execute("SELECT * FROM traces ORDER BY path")],
            "campaigns": campaigns + self.protran_campaigns(),
        }

    def protran_campaigns(self) -> list[dict]:
        """Every ProTran campaign: name, created, device, evaluations, fitted surrogates and loop status."""
        out = []
        for row in self.connection.execute("SELECT name, config, created FROM protran_campaigns ORDER BY created, name").fetchall():
            name = row["name"]
            count = lambda table: self.connection.execute(f"SELECT COUNT(*) FROM {table} WHERE campaign = ?", (name,)).fetchone()[0]  # noqa: E731
            status = self.connection.execute("SELECT value FROM protran_state WHERE campaign = ? AND key = 'status'", (name,)).fetchone()
            out.append({"name": name, "kind": "protran", "created": row["created"], "device": json.loads(row["config"]).get("device"),
                        "status": json.loads(status[0]) if status else "running", "evaluations": count("protran_evaluations"),
                        "history": count("protran_history")})
        return out

    def export_protran(self, campaign: str, path: str | Path, format: str | None = None) -> Path:
        """Write a ProTran campaign (config, evaluations, history, state) to JSON, or its evaluations to CSV, atomically."""
        path = Path(path).expanduser()
        format = (format or path.suffix.lstrip(".")).lower()
        if format not in ("csv", "json"):
            raise StoreError(f"export format must be csv or json, got {format or 'none'!r} (from {path.name})")
        view = ProTranCampaign(self, campaign)
        config = view.config()
        if config is None:
            raise StoreError(f"no campaign {campaign!r} in {self.path}")
        if path.is_dir():
            raise StoreError(f"export path {path} is a directory")
        if not path.parent.is_dir():
            raise StoreError(f"export path {path}: directory {path.parent} does not exist")
        evaluations = [asdict(e) for e in view.evaluations()]
        if format == "json":
            document = {"campaign": {"name": campaign, "kind": "protran", "config": config}, "evaluations": evaluations,
                        "history": view.history(), "state": view.state()}
            _atomic_write(path, lambda handle: json.dump(document, handle, indent=1, allow_nan=False))
        else:
            def write_csv(handle: Any) -> None:
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow(("campaign", "position", "arch_key", "reason", "architecture", "measurement"))
                for e in evaluations:
                    writer.writerow((campaign, e["position"], e["arch_key"], e["reason"], _dumps(e["architecture"]), _dumps(e["measurement"])))

            _atomic_write(path, write_csv)
        return path


class ProTranStoreError(StoreError, CampaignStoreError):
    """A ProTran campaign in the store that cannot be used as asked."""


class ProTranCampaign:
    """One ProTran / co-design campaign inside the store: what ``run_campaign`` reads and appends."""

    def __init__(self, store: "MeasurementStore | str | Path", name: str = PROTRAN_DEFAULT_CAMPAIGN, read_only: bool = False) -> None:
        self._owned = not isinstance(store, MeasurementStore)
        if self._owned:
            try:
                store = MeasurementStore(store, read_only=read_only)
            except ProTranStoreError:
                raise
            except StoreError as error:
                raise ProTranStoreError(str(error)) from None
        self.store: MeasurementStore = store  # type: ignore[assignment]
        self.path = self.store.path
        self.name = name
        self._db = self.store.connection

    def close(self) -> None:
        """Close the store when this view opened it."""
        if self._owned:
            self.store.close()

    def __enter__(self) -> "ProTranCampaign":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def config(self) -> dict | None:
        """The stored configuration, or None for a new campaign."""
        row = self._db.execute("SELECT config FROM protran_campaigns WHERE name = ?", (self.name,)).fetchone()
        return None if row is None else self._load(row[0], "config")

    def bind_config(self, config: Mapping[str, Any]) -> bool:
        """Store ``config`` for a new campaign, or check it against the stored one; True when resuming."""
        stored = self.config()
        wanted = json.loads(_dumps(dict(config)))
        if stored is None:
            self._db.execute("INSERT INTO protran_campaigns VALUES (?, ?, ?)", (self.name, _dumps(wanted), _now()))
            return False
        for key in sorted(set(stored) | set(wanted)):
            if key in PROTRAN_MUTABLE_CONFIG_KEYS:
                continue
            if stored.get(key) != wanted.get(key):
                raise ProTranStoreError(f"{self.path}: campaign was started with {key}={stored.get(key)!r}, not {wanted.get(key)!r}")
        if stored != wanted:
            self._db.execute("UPDATE protran_campaigns SET config = ? WHERE name = ?", (_dumps(wanted), self.name))
        return True

    def evaluations(self) -> list[StoredEvaluation]:
        """Every stored evaluation, in query order."""
        rows = self._db.execute(
            "SELECT position, arch_key, architecture, measurement, reason FROM protran_evaluations WHERE campaign = ? ORDER BY position", (self.name,)
        ).fetchall()
        out = []
        for expected, (position, key, arch, measurement, reason) in enumerate(rows):
            if position != expected:
                raise ProTranStoreError(f"{self.path}: evaluation {expected} is missing (found position {position})")
            where = f"evaluation {position}"
            out.append(StoredEvaluation(position, key, self._load(arch, where), self._load(measurement, where), reason))
        return out

    def add_evaluation(self, position: int, arch_key: str, architecture: Mapping, measurement: Mapping, reason: str) -> None:
        """Append one evaluation and commit it."""
        if self.config() is None:
            self._db.execute("INSERT OR IGNORE INTO protran_campaigns VALUES (?, '{}', ?)", (self.name, _now()))
        try:
            self._db.execute(
                "INSERT INTO protran_evaluations VALUES (?, ?, ?, ?, ?, ?)",
                (self.name, position, arch_key, json.dumps(dict(architecture)), json.dumps(dict(measurement)), reason),
            )
        except sqlite3.IntegrityError as error:
            raise ProTranStoreError(f"{self.path}: evaluation {position} of {arch_key} already stored ({error})") from None

    def history(self) -> list[dict]:
        """Stored history records in sample-count order."""
        rows = self._db.execute("SELECT samples, record FROM protran_history WHERE campaign = ? ORDER BY samples", (self.name,)).fetchall()
        return [self._load(record, f"history {samples}") for samples, record in rows]

    def add_history(self, samples: int, record: Mapping[str, Any]) -> None:
        """Store the record of the surrogate fitted on ``samples`` evaluations (replacing none)."""
        self._db.execute("INSERT OR IGNORE INTO protran_history VALUES (?, ?, ?)", (self.name, samples, json.dumps(dict(record))))

    def set_state(self, key: str, value: Any) -> None:
        """Set one loop-state value (JSON)."""
        self._db.execute("INSERT OR REPLACE INTO protran_state VALUES (?, ?, ?)", (self.name, key, json.dumps(value)))

    def state(self) -> dict:
        """All loop-state values."""
        rows = self._db.execute("SELECT key, value FROM protran_state WHERE campaign = ?", (self.name,)).fetchall()
        return {key: self._load(value, f"state {key}") for key, value in rows}

    def _load(self, text: str, where: str) -> Any:
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise ProTranStoreError(f"{self.path}: {where} is not valid JSON ({error})") from None


def check_store_writable(path: str | Path | None) -> Path:
    """Open (creating and migrating when needed) the store at ``path`` and check it takes a write; raise StoreError before any work."""
    with MeasurementStore(path) as store:  # opening takes the write lock (BEGIN IMMEDIATE): a read-only file is refused
        return store.path


def _normalised(record: MeasurementRecord) -> MeasurementRecord:
    """A record as it reads back (JSON data, plain key types) for comparison."""
    key = MeasurementKey(*(str(v) for v in record.key[:4]), int(record.key.batch), int(record.key.repeat))
    floats = {c: (None if getattr(record, c) is None else float(getattr(record, c))) for c in _FLOAT_COLUMNS}
    return MeasurementRecord(
        **{**{f.name: getattr(record, f.name) for f in fields(record)}, **floats, "key": key, "runs": int(record.runs),
           "emulated": bool(record.emulated), "data": json.loads(_dumps(record.data))}
    )


def _record(row: sqlite3.Row) -> MeasurementRecord:
    values = {c: row[c] for c in _VALUE_COLUMNS}
    values["emulated"] = bool(values["emulated"])
    return MeasurementRecord(campaign=row["campaign"], key=MeasurementKey(*(row[k] for k in _KEY_COLUMNS)), data=json.loads(row["data"]), **values)


def _atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """Write through a temporary file in the target's directory, fsync, then os.replace."""
    with ExitStack() as stack:
        try:  # the one atomic writer (codesign.atomic_io): 0666 less the umask, fsynced, renamed
            temporary = stack.enter_context(atomic_path(path))
        except OSError as error:
            raise StoreError(f"cannot write {path}: {error.strerror or error}") from None
        with open(temporary, "w", newline="", encoding="utf-8") as handle:
            write(handle)


register_opener(lambda path, name, read_only: ProTranCampaign(path, name or PROTRAN_DEFAULT_CAMPAIGN, read_only))  # ProTran's campaigns live in this store
