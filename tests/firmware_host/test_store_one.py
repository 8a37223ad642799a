"""One store: schema-versioned, migrated forward from the old layouts, listed and exported, checked before the work.

The old layouts are real files written by the old code: ``tests/codesign/fixtures/
live_campaign_virtual_rpi4.sqlite`` (a ProTran campaign file: ``meta``, ``evaluations``,
``history``, ``state``) and ``fixtures/v1_measurement_store_with_protran_tables.sqlite``
(a version-1 measurement store into which the old ``protran run --store`` wrote its
tables).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from codesign.protran.campaign_store import CampaignStore, CampaignStoreError
from firmware_host.cli import main
from firmware_host.store import SCHEMA_VERSION, MeasurementKey, MeasurementStore

HERE = Path(__file__).parent
LEGACY_PROTRAN = HERE.parent / "codesign" / "fixtures" / "live_campaign_virtual_rpi4.sqlite"
V1_WITH_PROTRAN = HERE / "fixtures" / "v1_measurement_store_with_protran_tables.sqlite"
RPI = "published:cpu_rpi_b1_r1"
MODEL = {"l": 2, "o": [["sa_sdp_64", "sa_sdp_64"], ["sa_sdp_64", "sa_sdp_64"]], "h": [128, 128], "f": [[512], [512]]}


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _tables(path: Path) -> set[str]:
    connection = sqlite3.connect(path)
    try:
        return {r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        connection.close()


def _legacy_rows(path: Path) -> tuple[list, list, dict, str]:
    connection = sqlite3.connect(path)
    try:
        evaluations = connection.execute("SELECT position, arch_key, architecture, measurement, reason FROM evaluations ORDER BY position").fetchall()
        history = [json.loads(r[0]) for r in connection.execute("SELECT record FROM history ORDER BY samples")]
        state = {k: json.loads(v) for k, v in connection.execute("SELECT key, value FROM state")}
        config = connection.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()[0]
        return evaluations, history, state, config
    finally:
        connection.close()


def test_an_old_protran_campaign_file_is_migrated_into_the_one_store(tmp_path):
    path = tmp_path / "campaign.sqlite"
    shutil.copy(LEGACY_PROTRAN, path)
    evaluations, history, state, config = _legacy_rows(path)
    assert len(evaluations) == 12 and "schema_version" not in _tables(path)
    with MeasurementStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION == 2
        [listed] = store.protran_campaigns()
        assert listed["name"] == "protran" and listed["evaluations"] == 12 and listed["history"] == len(history)
        assert store.campaigns() == []  # no measurement campaign was invented
    assert not {"meta", "evaluations", "history", "state"} & _tables(path)  # moved, not copied beside
    with CampaignStore(path) as campaign:
        assert campaign.config() == json.loads(config)
        assert [(e.position, e.arch_key, e.architecture, e.measurement, e.reason) for e in campaign.evaluations()] == [
            (p, k, json.loads(a), json.loads(m), r) for p, k, a, m, r in evaluations
        ]
        assert campaign.history() == history and campaign.state() == state
        assert campaign.bind_config(json.loads(config)) is True  # the migrated campaign resumes


def test_a_v1_measurement_store_with_old_protran_tables_keeps_everything(tmp_path):
    path = tmp_path / "bench.db"
    shutil.copy(V1_WITH_PROTRAN, path)
    connection = sqlite3.connect(path)
    assert connection.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == 1
    connection.close()
    with MeasurementStore(path) as store:
        assert store.schema_version == 2
        assert [c.name for c in store.campaigns()] == ["c1"] and store.rig("bench-a") == {"boards": ["rpi4"]}
        [record] = store.measurements("c1")
        assert record.key == MeasurementKey("arch-a", "rpi4", "onnxruntime", "cpu", 1, 0) and record.latency_s_per_seq == 0.0125
        assert record.data == {"note": "v1"} and [f.reason for f in store.failures("c1")] == ["board offline"]
        [protran] = store.protran_campaigns()
        assert protran["evaluations"] == 2 and protran["status"] == "budget" and protran["device"] == "cpu_rpi_b1_r1"
        versions = [r[0] for r in store.connection.execute("SELECT version FROM schema_version ORDER BY version")]
    assert versions == [1, 2]
    with CampaignStore(path) as campaign:
        assert [e.arch_key for e in campaign.evaluations()] == ["k0", "k1"] and campaign.history() == [{"samples": 2, "mse": 0.5}]


def test_store_campaigns_and_export_cover_protran_campaigns(capsys, tmp_path):
    path = tmp_path / "bench.db"
    shutil.copy(V1_WITH_PROTRAN, path)
    code, out, err = run_cli(capsys, "store", "campaigns", "--store", str(path), "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [(r["name"], r["kind"]) for r in rows] == [("c1", "measurement"), ("protran", "protran")]
    assert rows[0]["measurements"] == 1 and rows[1]["evaluations"] == 2
    exported = tmp_path / "protran.json"
    code, out, err = run_cli(capsys, "store", "export", "--store", str(path), "--campaign", "protran", "--json", str(exported), "--csv", str(tmp_path / "p.csv"))
    assert code == 0, err
    document = json.loads(exported.read_text())
    assert document["campaign"]["config"]["device"] == "cpu_rpi_b1_r1" and [e["arch_key"] for e in document["evaluations"]] == ["k0", "k1"]
    assert document["history"] == [{"samples": 2, "mse": 0.5}] and document["state"] == {"status": "budget"}
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[0].startswith("campaign,position,arch_key") and len(lines) == 3
    assert exported.stat().st_mode & 0o044 == 0o044  # colleagues can read the export
    code, out, err = run_cli(capsys, "store", "export", "--store", str(path), "--campaign", "c1", "--json", str(tmp_path / "c1.json"))
    assert code == 0 and len(json.loads((tmp_path / "c1.json").read_text())["measurements"]) == 1
    code, out, err = run_cli(capsys, "store", "info", "--store", str(path), "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["schema_version"] == 1 and info["migrates_to"] == 2  # a reader leaves the file as it was
    assert info["rigs"] == ["bench-a"] and info["traces"] == []
    assert [c["name"] for c in info["campaigns"]] == ["c1", "protran"]
    code, out, err = run_cli(capsys, "store", "info", "--store", str(path))
    assert code == 0 and "protran campaign 'protran' (budget): 2 evaluations" in out


def test_protran_run_into_a_measurement_store_is_one_store(capsys, tmp_path):
    path = tmp_path / "bench.db"
    with MeasurementStore(path) as store:
        store.start_campaign("c1", {"boards": ["rpi4"]})
    code, _, err = run_cli(capsys, "protran", "run", "--device", RPI, "--budget", "17", "--store", str(path), "--json")
    assert code == 0, err
    code, out, err = run_cli(capsys, "store", "campaigns", "--store", str(path), "--json")
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["c1"]["kind"] == "measurement" and rows["protran"]["kind"] == "protran" and rows["protran"]["evaluations"] == 17
    assert not {"meta", "evaluations", "history", "state"} & _tables(path)
    code, again, err = run_cli(capsys, "protran", "run", "--device", RPI, "--budget", "17", "--store", str(path), "--json")
    assert code == 0 and json.loads(again)["evaluations_this_run"] == 0  # resumed from the one store


def _newer(path: Path) -> Path:
    with MeasurementStore(path):
        pass
    connection = sqlite3.connect(path)
    connection.execute("INSERT INTO schema_version VALUES (?, 'later')", (SCHEMA_VERSION + 1,))
    connection.commit()
    connection.close()
    return path


def _one_line_exit_2(code: int, err: str, *needles: str) -> None:
    text = " ".join(err.split())
    assert code == 2 and "Traceback" not in err, err
    assert all(n in text for n in needles), err


def test_a_newer_store_is_refused_with_exit_2_by_every_store_command(capsys, tmp_path):
    path = _newer(tmp_path / "new.db")
    for command in (["store", "campaigns"], ["store", "export", "--campaign", "c", "--json", str(tmp_path / "x.json")],
                    ["protran", "run", "--device", RPI, "--budget", "17", "--json"]):
        code, _, err = run_cli(capsys, *command, "--store", str(path))
        _one_line_exit_2(code, err, f"schema version {SCHEMA_VERSION + 1}, newer than this edgetran's {SCHEMA_VERSION}")
    with pytest.raises(CampaignStoreError, match="newer"):
        CampaignStore(path)
    assert not (tmp_path / "x.json").exists()


@pytest.fixture
def rig_file(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGETRAN_ARTIFACTS", str(tmp_path / "artifacts"))
    rig = tmp_path / "rig.toml"
    rig.write_text(
        f'[host]\ntraces = "{tmp_path}/traces"\n[[boards]]\nname = "vpi"\nhost = "virtual"\nseq_len = 16\n'
        '[[sensors]]\nname = "s"\nkind = "virtual-board"\nmeasures = "vpi"\nmin_coverage = 0.5\n'  # CI VMs: hypervisor steal opens 5-10 ms sampling gaps; coverage rules are tested in test_profile_coverage
    )
    return rig


@pytest.mark.parametrize("case", ["newer", "directory", "not-sqlite", "under-a-file"])
def test_profile_checks_the_store_before_measuring(capsys, tmp_path, rig_file, case):
    # root writes anywhere a permission bit forbids, so 'not writable' is made real another way
    model = tmp_path / "model.json"
    model.write_text(json.dumps(MODEL))
    if case == "newer":
        store, needle = _newer(tmp_path / "p.db"), "newer than this edgetran's"
    elif case == "directory":
        store, needle = tmp_path / "p.db", "is a directory"
        store.mkdir()
    elif case == "not-sqlite":
        store, needle = tmp_path / "p.db", "not an EdgeTran store"
        store.write_bytes(b"not a database " * 200)
    else:
        (tmp_path / "afile").write_text("x")
        store, needle = tmp_path / "afile" / "p.db", "afile is not a directory"
    code, _, err = run_cli(capsys, "profile", str(model), "--rig", str(rig_file), "--repeats", "1", "--runs", "5", "--idle-s", "0.2",
                           "--store", str(store), "--json")
    _one_line_exit_2(code, err, needle)
    assert not (tmp_path / "traces").exists() and not (tmp_path / "artifacts").exists()  # nothing was exported nor measured


@pytest.mark.parametrize("command", [["protran", "run", "--device", RPI, "--budget", "17", "--json"], ["store", "campaigns"]])
def test_a_store_under_a_regular_file_names_the_file(capsys, tmp_path, command):
    (tmp_path / "afile").write_text("x")
    code, _, err = run_cli(capsys, *command, "--store", str(tmp_path / "afile" / "p.db"))
    _one_line_exit_2(code, err, "afile is not a directory")


def _file_state(path: Path) -> tuple[str, set[str]]:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest(), _tables(path)


@pytest.mark.parametrize("fixture", [LEGACY_PROTRAN, V1_WITH_PROTRAN], ids=["protran-file", "v1-store"])
def test_reading_an_old_store_leaves_the_file_as_it_was(capsys, tmp_path, fixture):
    """#12: store info / campaigns / export and protran report read an old store without migrating it in place."""
    path = tmp_path / "old.db"
    shutil.copy(fixture, path)
    before = _file_state(path)
    for args in (["store", "info", "--store", str(path), "--json"], ["store", "campaigns", "--store", str(path), "--json"],
                 ["store", "export", "--store", str(path), "--campaign", "protran", "--json", str(tmp_path / "out.json")]):
        code, out, err = run_cli(capsys, *args)
        assert code == 0, (args, err)
        assert _file_state(path) == before, args  # old code: migrated (tables renamed, schema_version added)
    assert json.loads((tmp_path / "out.json").read_text())["evaluations"]
    with CampaignStore(path, read_only=True) as campaign:
        assert campaign.evaluations() and _file_state(path) == before
    with MeasurementStore(path) as store:  # a writer migrates it
        assert store.schema_version == SCHEMA_VERSION
    assert _file_state(path) != before


def test_a_current_store_opened_read_only_refuses_writes(tmp_path):
    path = tmp_path / "bench.db"
    MeasurementStore(path).close()
    with MeasurementStore(path, read_only=True) as store:
        assert store.summary()["schema_version"] == SCHEMA_VERSION and "migrates_to" not in store.summary()
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store.start_campaign("c", {})


def test_two_protran_campaigns_share_one_store_by_name(capsys, tmp_path):
    """#12: --campaign names a ProTran campaign, so one store holds several (the CLI used to fix the name 'protran')."""
    path = tmp_path / "bench.db"
    for name, device in (("rpi", RPI), ("a100", "published:gpu_a100_b128_r3")):
        code, out, err = run_cli(capsys, "protran", "run", "--device", device, "--store", str(path), "--campaign", name, "--budget", "17", "--json")
        assert code == 0, err
    code, out, err = run_cli(capsys, "store", "campaigns", "--store", str(path), "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert set(rows) == {"rpi", "a100"} and rows["rpi"]["device"] == "cpu_rpi_b1_r1" and rows["a100"]["device"] == "gpu_a100_b128_r3"
    code, out, err = run_cli(capsys, "protran", "run", "--device", RPI, "--store", str(path), "--campaign", "rpi", "--budget", "17", "--json")
    assert code == 0 and json.loads(out)["resumed"] is True  # the named campaign resumes; the other is untouched
    code, _, err = run_cli(capsys, "protran", "report", "--device", "rig:virtual-rpi4", "--store", str(path), "--campaign", "nosuch", "--out", str(tmp_path / "r"))
    _one_line_exit_2(code, err, "no campaign 'nosuch' in this store")
    assert not (tmp_path / "r").exists()
