"""The SQLite measurement store: resume after SIGKILL, WAL concurrency, exact values, exports, bad paths, migrations."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from firmware_host.store import (
    EXPORT_COLUMNS,
    SCHEMA_VERSION,
    DuplicateMeasurement,
    MeasurementKey,
    MeasurementRecord,
    MeasurementStore,
    StoreError,
    default_db_path,
)

# Shared by the test and the child process it kills: keys and the values measured for them.
CAMPAIGN_CODE = '''
from firmware_host.store import MeasurementKey, MeasurementRecord

CONFIG = {"boards": ["rpi4"], "runtime": "onnxruntime", "seed": 3}
KEYS = [MeasurementKey(f"arch{i:03d}", "rpi4", "onnxruntime", "cpu", 1, r) for i in range(40) for r in range(2)]


def record_for(campaign, key):
    i = int(key.arch_key[4:])
    return MeasurementRecord(
        campaign, key, runs=20, latency_s_per_seq=0.1 + i / 3 + key.repeat * 1e-17, energy_j_per_seq=(i + 1) / 7,
        peak_power_w=5.1 + i * 0.01, latency_spread_s_per_seq=1 / (i + 3), sensor="emulated-ina219",
        trace_path=f"traces/{key.arch_key}.ettrace", clock_offset_s=-1234.5678901 + i, clock_uncertainty_s=2.5e-4,
        emulated=True, data={"report": {"latencies_s": [0.1, 0.2, i / 9]}, "key": list(key)},
    )
'''
CHILD = CAMPAIGN_CODE + '''
import sys, time
from firmware_host.store import MeasurementStore

store = MeasurementStore(sys.argv[1])
store.start_campaign("c1", CONFIG)
for key in store.pending("c1", KEYS):
    time.sleep(0.002)  # the "measurement"
    store.add_measurement(record_for("c1", key))
    print("stored", key.arch_key, key.repeat, flush=True)
store.set_status("c1", "finished")
print("finished", flush=True)
'''
SHARED: dict = {}
exec(CAMPAIGN_CODE, SHARED)
KEYS: list[MeasurementKey] = SHARED["KEYS"]
record_for = SHARED["record_for"]
CONFIG = SHARED["CONFIG"]


def key(i: int, repeat: int = 0, board: str = "rpi4") -> MeasurementKey:
    return MeasurementKey(f"arch{i:03d}", board, "onnxruntime", "cpu", 1, repeat)


@pytest.fixture
def store(tmp_path: Path):
    with MeasurementStore(tmp_path / "edgetran.db") as opened:
        opened.start_campaign("c1", CONFIG)
        yield opened


def stored_keys(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return conn.execute("SELECT arch_key, board, runtime, device, batch, repeat FROM measurements WHERE campaign = 'c1'").fetchall()


def test_campaign_killed_repeatedly_resumes_without_repeats_or_losses(tmp_path: Path):
    path = tmp_path / "edgetran.db"
    rng = random.Random(11)
    reported: set[tuple] = set()
    previous = 0
    for attempt in range(5):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True)
        lines = []
        kill_after = rng.randint(3, 12) if attempt < 4 else None
        for line in child.stdout:  # a line the kill cut short (no newline) reports nothing
            lines.append(line.split() if line.endswith("\n") else [])
            if kill_after is not None and len(lines) >= kill_after:
                time.sleep(rng.uniform(0.0, 0.003))  # kill at a random point of the next insert
                os.kill(child.pid, signal.SIGKILL)
                break
        lines += [line.split() for line in child.stdout if line.endswith("\n")]  # whatever was flushed before the kill
        code = child.wait()
        child.stdout.close()
        reported |= {(w[1], "rpi4", "onnxruntime", "cpu", 1, int(w[2])) for w in lines if len(w) == 3 and w[0] == "stored"}
        rows = stored_keys(path)
        assert len(rows) == len(set(rows)), "duplicates"
        assert reported <= set(rows), "a committed measurement was lost"
        assert len(rows) > previous  # every attempt made progress
        previous = len(rows)
        if kill_after is not None:
            assert code == -signal.SIGKILL
    assert code == 0 and lines[-1] == ["finished"]
    with MeasurementStore(path) as reopened:
        assert reopened.pending("c1", KEYS) == []
        assert reopened.campaign("c1").status == "finished"
        stored = reopened.measurements("c1")
        assert sorted(r.key for r in stored) == sorted(KEYS)
        assert all(r == record_for("c1", r.key) for r in stored)  # bit-exact values, full JSON intact


def test_pending_returns_what_is_left_in_order(store):
    keys = [key(i) for i in range(6)]
    for k in (keys[1], keys[4]):
        store.add_measurement(record_for("c1", k))
    store.add_failure("c1", keys[2], "runner timed out\nafter 30 s")
    assert store.pending("c1", keys) == [keys[0], keys[2], keys[3], keys[5]]
    assert store.pending("c1", keys, skip_failed=True) == [keys[0], keys[3], keys[5]]
    assert [(f.key, f.reason) for f in store.failures("c1")] == [(keys[2], "runner timed out after 30 s")]
    assert store.pending("other", keys) == keys


def test_same_measurement_twice_is_a_no_op_and_a_different_one_an_error(store):
    record = record_for("c1", key(5))
    assert store.add_measurement(record) is True
    assert store.add_measurement(record) is False
    changed = MeasurementRecord(**{**record.__dict__, "latency_s_per_seq": record.latency_s_per_seq * (1 + 2**-52)})
    with pytest.raises(DuplicateMeasurement, match="other values"):
        store.add_measurement(changed)
    assert len(store.measurements("c1")) == 1
    assert store.measurement("c1", key(5)) == record


def test_values_read_back_exactly(store):
    tricky = [0.1 + 0.2, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 1 / 3, 123456789.123456789, 1e16 + 2]
    for i, value in enumerate(tricky):
        record = MeasurementRecord("c1", key(i), runs=7, latency_s_per_seq=value, energy_j_per_seq=value, clock_offset_s=-value,
                                   data={"v": value, "nested": [value, {"w": value}]})
        store.add_measurement(record)
    for i, value in enumerate(tricky):
        back = store.measurement("c1", key(i))
        assert back.latency_s_per_seq.hex() == value.hex() and back.energy_j_per_seq.hex() == value.hex()
        assert back.data["nested"][1]["w"].hex() == value.hex()
    assert store.measurement("c1", key(0)).peak_power_w is None  # absent stays absent
    store.add_measurement(MeasurementRecord("c1", key(50), runs=1, latency_s_per_seq=-0.0))
    assert str(store.measurement("c1", key(50)).latency_s_per_seq) == "0.0"  # the one documented exception


@pytest.mark.parametrize("bad", [{"latency_s_per_seq": float("nan")}, {"energy_j_per_seq": float("inf")}, {"runs": 0}, {"data": {"x": object()}}])
def test_bad_values_are_refused(store, bad):
    record = MeasurementRecord(**{**record_for("c1", key(1)).__dict__, **bad})
    with pytest.raises(StoreError):
        store.add_measurement(record)
    assert store.measurements("c1") == []


def test_unknown_campaign_and_changed_config_are_refused(store):
    with pytest.raises(StoreError, match="start the campaign first"):
        store.add_measurement(record_for("nope", key(1)))
    with pytest.raises(StoreError, match="differs in: seed"):
        store.start_campaign("c1", {**CONFIG, "seed": 4})
    store.set_status("c1", "abandoned")
    assert store.start_campaign("c1", CONFIG).status == "running"  # same config: resume


def test_two_writers_in_wal_mode_neither_loses_nor_duplicates(tmp_path: Path):
    path = tmp_path / "edgetran.db"
    with MeasurementStore(path) as first:
        first.start_campaign("c1", CONFIG)
        assert first.connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    results: dict[str, list[bool]] = {}
    errors: list[BaseException] = []

    def writer(name: str, board: str) -> None:
        try:
            with MeasurementStore(path) as own:
                keys = [key(i, board=board) for i in range(150)] + [key(i, board="shared") for i in range(30)]
                results[name] = [own.add_measurement(record_for("c1", k)) for k in keys]
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n, b)) for n, b in (("a", "rpi4"), ("b", "jetson"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(results["a"][150:]) + sum(results["b"][150:]) == 30  # each shared key stored by exactly one writer
    rows = stored_keys(path)
    assert len(rows) == len(set(rows)) == 330


def test_wal_reader_keeps_its_snapshot_while_a_writer_commits(tmp_path: Path):
    path = tmp_path / "edgetran.db"
    with MeasurementStore(path) as writer, MeasurementStore(path) as reader:
        writer.start_campaign("c1", CONFIG)
        writer.add_measurement(record_for("c1", key(0)))
        reader.connection.execute("BEGIN")
        assert len(reader.measurements("c1")) == 1  # read transaction open
        writer.connection.execute("PRAGMA busy_timeout = 200")  # would fail fast if the reader blocked it
        writer.add_measurement(record_for("c1", key(1)))  # commits despite the open reader (WAL)
        assert len(reader.measurements("c1")) == 1  # the reader's snapshot
        reader.connection.execute("COMMIT")
        assert len(reader.measurements("c1")) == 2


def test_export_csv_and_json_round_trip_exactly(store, tmp_path: Path):
    records = [record_for("c1", k) for k in KEYS[:9]]
    records.append(MeasurementRecord("c1", key(99), runs=3, latency_s_per_seq=0.1 + 0.2))  # mostly None fields
    for r in records:
        store.add_measurement(r)
    store.add_failure("c1", key(50), "artifact failed its sha256 check")
    target = tmp_path / "out.csv"
    target.write_text("old contents\n")
    assert store.export("c1", target) == target
    with open(target, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(EXPORT_COLUMNS)
    for row, record in zip(rows, records, strict=True):
        for name in ("latency_s_per_seq", "energy_j_per_seq", "peak_power_w", "clock_offset_s", "clock_uncertainty_s"):
            expected = getattr(record, name)
            assert (row[name] == "") if expected is None else float(row[name]) == expected
        assert json.loads(row["data"]) == record.data and MeasurementKey(*(row[k] for k in MeasurementKey._fields[:4]), int(row["batch"]), int(row["repeat"])) == record.key
    document = json.loads(store.export("c1", tmp_path / "out.json").read_text())
    assert document["campaign"]["config"] == CONFIG
    back = [MeasurementRecord(m["campaign"], MeasurementKey(*(m[k] for k in MeasurementKey._fields)),
                              **{k: m[k] for k in EXPORT_COLUMNS if k not in ("campaign", "created", *MeasurementKey._fields)}) for m in document["measurements"]]
    assert back == records
    assert document["failures"][0]["reason"] == "artifact failed its sha256 check"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary files left


def test_bad_paths_give_clear_errors(tmp_path: Path):
    with pytest.raises(StoreError, match="is a directory"):
        MeasurementStore(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="not a directory"):
        MeasurementStore(blocker / "edgetran.db")
    text = tmp_path / "notes.db"
    text.write_text("these are not the tables you are looking for\n" * 100)
    with pytest.raises(StoreError, match="not an EdgeTran store"):
        MeasurementStore(text)
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE songs (title TEXT)")
    with pytest.raises(StoreError, match="not an EdgeTran store.*songs"):
        MeasurementStore(foreign)
    with MeasurementStore(tmp_path / "ok.db") as store:
        store.start_campaign("c1", CONFIG)
        existing = tmp_path / "keep.json"
        existing.write_text("{}")
        with pytest.raises(StoreError, match="does not exist"):
            store.export("c1", tmp_path / "missing" / "out.csv")
        with pytest.raises(StoreError, match="csv or json"):
            store.export("c1", tmp_path / "out.xlsx")
        with pytest.raises(StoreError, match="no campaign"):
            store.export("c2", existing)
        assert existing.read_text() == "{}"
        with pytest.raises(StoreError, match="cannot index trace"):
            store.add_trace(tmp_path / "absent.ettrace", ["emulated-ina219"])


def test_default_path_is_under_the_users_data_directory(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("EDGETRAN_DB", raising=False)
    assert default_db_path() == tmp_path / ".local/share/edgetran/edgetran.db"
    with MeasurementStore() as store:
        assert store.path == default_db_path() and store.path.is_file()
    monkeypatch.setenv("EDGETRAN_DB", str(tmp_path / "elsewhere.db"))
    assert default_db_path() == tmp_path / "elsewhere.db"


def test_migration_hook_upgrades_in_place_and_newer_files_are_refused(tmp_path: Path):
    path = tmp_path / "edgetran.db"
    with MeasurementStore(path) as v1:
        v1.start_campaign("c1", CONFIG)
        v1.add_measurement(record_for("c1", key(1)))
        assert v1.schema_version == SCHEMA_VERSION == 2
    with pytest.raises(StoreError, match="no migration from schema version 2 to 3"):
        MeasurementStore(path, migrations={4: lambda conn: None})

    def add_ambient(conn: sqlite3.Connection) -> None:
        conn.execute("ALTER TABLE measurements ADD COLUMN ambient_c REAL")

    with MeasurementStore(path, migrations={3: add_ambient}) as v3:
        assert v3.schema_version == 3
        assert v3.measurement("c1", key(1)) == record_for("c1", key(1))
        columns = [r[1] for r in v3.connection.execute("PRAGMA table_info(measurements)")]
        assert "ambient_c" in columns
    with pytest.raises(StoreError, match="schema version 3, newer"):
        MeasurementStore(path)


def test_rigs_artifacts_and_trace_index(store, tmp_path: Path):
    store.add_rig("bench-a", {"boards": ["rpi4", "jetson-nano"], "sensor_host": "pi-sensor:8765"})
    store.add_rig("bench-a", {"boards": ["rpi4"]})
    assert store.rig("bench-a") == {"boards": ["rpi4"]}
    sha = "ab" * 32
    arch = {"l": 2, "o": [["sa_sdp_64", "sa_sdp_64"]] * 2, "h": [128, 128], "f": [[512], [512]]}
    store.add_artifact(sha, "onnx", arch, {"seq_len": 128, "opset": 17})
    assert store.artifact(sha)["architecture"] == arch
    with pytest.raises(StoreError, match="64 lowercase hex"):
        store.add_artifact("xyz", "onnx", arch, {})
    trace = tmp_path / "run.ettrace"
    trace.write_bytes(b"\x00\x01trace bytes" * 1000)
    digest = store.add_trace(trace, ["emulated-ina219"], 10.0, 12.5)
    assert digest == hashlib.sha256(trace.read_bytes()).hexdigest()
    assert store.trace(trace) == {"path": str(trace), "sha256": digest, "streams": ["emulated-ina219"], "start_s": 10.0, "end_s": 12.5}
    record = MeasurementRecord(**{**record_for("c1", key(2)).__dict__, "artifact_sha256": sha, "trace_path": str(trace)})
    assert store.add_measurement(record)
    assert store.measurement("c1", key(2)).artifact_sha256 == sha


# A child that stores PER_CHILD ad-hoc profiles of one key through the CLI's code path
# (firmware_host.profile.store_measurement), starting at the same instant as its siblings.
PROFILE_CHILD = '''
import json, sys, time
from firmware_host.profile import store_measurement

db, sidecar, child, count, start_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
spread = {"latency_s_per_seq": {"min": 0.01, "max": 0.02}, "energy_j_per_seq": {"min": 0.1, "max": 0.2}}
while time.time() < start_at:
    pass
for i in range(count):
    measurement = {
        "artifact": sidecar, "artifact_sha256": "ab" * 32, "artifact_format": "onnx", "board": "vpi", "runtime": "onnxruntime",
        "device": "cpu", "batch": 1, "runs": 10, "latency_s_per_seq": 0.015 + child * 1e-3 + i * 1e-6, "energy_j_per_seq": 0.15,
        "peak_power_w": 5.0, "spread": spread, "sensor": {"name": "vpi-supply"}, "trace": "/nonexistent/trace.ettrace",
        "clock_offset_s": 0.0, "clock_offset_uncertainty_s": 0.0, "emulated": True, "child": child, "index": i,
    }
    print(store_measurement(db, measurement), flush=True)
'''
PROFILE_WRITERS = 6
PER_CHILD = 5


def test_concurrent_profile_stores_lose_nothing_and_number_repeats_contiguously(tmp_path: Path):
    db = tmp_path / "edgetran.db"
    sidecar = tmp_path / "model.json"
    sidecar.write_text(json.dumps({"architecture": {"l": 2}, "sha256": "ab" * 32}))
    start_at = time.time() + 1.5  # every child imported and waiting before the first store
    children = [
        subprocess.Popen([sys.executable, "-c", PROFILE_CHILD, str(db), str(sidecar), str(c), str(PER_CHILD), str(start_at)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for c in range(PROFILE_WRITERS)
    ]
    outputs = [child.communicate(timeout=120) for child in children]
    failures = [(c, err.strip().splitlines()[-1:]) for c, (child, (out, err)) in enumerate(zip(children, outputs)) if child.returncode != 0]
    assert failures == [], failures
    reported = sorted(int(line) for out, _ in outputs for line in out.split())
    total = PROFILE_WRITERS * PER_CHILD
    assert reported == list(range(total))  # every store returned a distinct index
    with MeasurementStore(db) as opened:
        stored = opened.measurements("profiles")
    assert sorted(r.key.repeat for r in stored) == list(range(total))  # no lost row, unique and contiguous indices
    assert sorted((r.data["child"], r.data["index"]) for r in stored) == [(c, i) for c in range(PROFILE_WRITERS) for i in range(PER_CHILD)]


def test_transaction_commits_rolls_back_and_refuses_nesting(store):
    assert store.next_repeat("c1", key(0)[:5]) == 0
    with store.transaction():
        store.add_measurement(record_for("c1", key(0, repeat=0)))
        assert store.next_repeat("c1", key(0)[:5]) == 1
        with pytest.raises(StoreError, match="already open"):
            with store.transaction():
                pass
    with pytest.raises(RuntimeError, match="boom"):
        with store.transaction():
            store.add_measurement(record_for("c1", key(0, repeat=1)))
            raise RuntimeError("boom")
    assert [r.key.repeat for r in store.measurements("c1")] == [0]  # the second insert was rolled back
