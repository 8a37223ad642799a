"""`edgetran rig check`: reaches every board and sensor, says what is missing, exits 1 if anything is."""

from __future__ import annotations

import json

from firmware_host.cli import main


def test_virtual_rig_is_complete(capsys):
    assert main(["rig", "check", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["what"] for r in rows] == ["board virtual-rpi4", "sensor virtual-rpi4-supply"]
    assert all(r["ok"] for r in rows) and "emulated" in rows[1]["detail"]


def test_unreachable_scheduler_and_daemon_are_reported(tmp_path, capsys):
    rig = tmp_path / "rig.toml"
    rig.write_text(
        '[[boards]]\nname = "pi"\nhost = "pi@pi.local"\n'
        '[[sensors]]\nname = "pi-supply"\nkind = "ina219"\nmeasures = "pi"\nruns_on = "127.0.0.1:9"\n'
    )
    assert main(["rig", "check", "--rig", str(rig), "--json"]) == 1
    rows = {r["what"]: r for r in json.loads(capsys.readouterr().out)}
    assert not rows["board pi"]["ok"] and "give a dask scheduler" in rows["board pi"]["detail"]
    assert not rows["sensor pi-supply"]["ok"] and "127.0.0.1:9" in rows["sensor pi-supply"]["detail"]
    assert main(["rig", "check", "--rig", str(rig), "--scheduler", "tcp://127.0.0.1:9", "--json"]) == 1
    rows = {r["what"]: r for r in json.loads(capsys.readouterr().out)}
    assert "cannot connect" in rows["board pi"]["detail"]
