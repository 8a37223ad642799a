"""rig.toml: the virtual default, parsing, and validation messages that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_host.rig import RigError, load_rig, parse_rig, virtual_rig

GOOD = """
[host]
scheduler = "in-process"
traces = "/tmp/edgetran-traces"

[[boards]]
name = "rpi4-01"
host = "virtual"
model = "rpi4"
batch = 1
seq_len = 64

[[boards]]
name = "nano-01"
host = "virtual"
model = "jetson-nano"

[[sensors]]
name = "rpi4-01-supply"
kind = "virtual-board"
measures = "rpi4-01"
rate_hz = 500
"""


def test_virtual_rig_is_the_default():
    rig = load_rig(None)
    assert rig == virtual_rig()
    assert rig.emulated and rig.board(None).name == "virtual-rpi4"
    assert rig.sensor_for("virtual-rpi4").kind == "virtual-board"


def test_a_rig_file_parses(tmp_path: Path):
    path = tmp_path / "rig.toml"
    path.write_text(GOOD)
    rig = load_rig(path)
    assert [b.name for b in rig.boards] == ["rpi4-01", "nano-01"]
    assert rig.board("rpi4-01").seq_len == 64
    assert rig.sensor_for("rpi4-01").rate_hz == 500
    assert rig.to_dict()["emulated"] is True
    with pytest.raises(RigError, match="no sensor measures board 'nano-01'"):
        rig.sensor_for("nano-01")
    with pytest.raises(RigError, match="no board 'x'"):
        rig.board("x")


@pytest.mark.parametrize(
    "table, message",
    [
        ({"boards": []}, "boards: the rig needs at least one"),
        ({"boards": [{"host": "virtual"}]}, "boards[0].name: missing"),
        ({"boards": [{"name": "a", "batch": 0}]}, "boards[0].batch: expected a positive integer, got 0"),
        ({"boards": [{"name": "a", "runtime": "tvm"}]}, "boards[0].runtime: 'tvm' is not a runtime"),
        ({"boards": [{"name": "a", "model": "rpi9"}]}, "boards[0].model: unknown board model 'rpi9'"),
        ({"boards": [{"name": "a", "colour": "red"}]}, "boards[0].colour: unknown key"),
        ({"boards": [{"name": "a"}, {"name": "a"}]}, "boards: names must be distinct"),
        ({"boards": [{"name": "a"}], "sensors": [{"name": "s", "kind": "ina219", "measures": "b"}]}, "sensors[0].measures: 'b' is not a board"),
        ({"boards": [{"name": "a"}], "sensors": [{"name": "s", "measures": "a"}]}, "sensors[0].kind: missing"),
        ({"boards": [{"name": "a"}], "sensors": [{"name": "s", "kind": "k", "measures": "a", "rate_hz": -1}]}, "sensors[0].rate_hz: expected a positive rate"),
        ({"boards": [{"name": "a"}], "sensors": [{"name": "s", "kind": "virtual-board", "measures": "a", "min_coverage": 1.5}]},
         "sensors[0].min_coverage: expected a share in (0, 1], got 1.5"),
        ({"boards": [{"name": "a"}], "sensors": [{"name": "s", "kind": "virtual-board", "measures": "a", "min_coverage": "most"}]},
         "sensors[0].min_coverage: expected a share in (0, 1], got 'most'"),
        ({"boards": [{"name": "a"}], "extra": {}}, "extra: unknown table"),
    ],
)
def test_validation_names_the_key(table, message):
    with pytest.raises(RigError) as caught:
        parse_rig(table)
    assert message in str(caught.value)


def test_bad_files(tmp_path: Path):
    with pytest.raises(RigError, match="file not found"):
        load_rig(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[boards]\n")
    with pytest.raises(RigError, match="not valid TOML"):
        load_rig(bad)


def test_deploy_keys_parse_and_name_the_key_when_bad():
    rig = parse_rig({"boards": [{"name": "a", "host": "pi@a.local", "ssh_port": 2222, "ssh_key": "~/.ssh/id_ed25519", "deploy_root": "/opt/edgetran"}]})
    board = rig.board("a")
    assert (board.ssh_port, board.ssh_key, board.deploy_root, board.ssh_user) == (2222, "~/.ssh/id_ed25519", "/opt/edgetran", None)
    for entry, message in [
        ({"ssh_port": 0}, "boards[0].ssh_port: expected a port number 1-65535, got 0"),
        ({"ssh_port": "22"}, "boards[0].ssh_port: expected a port number, got '22'"),
        ({"ssh_user": ""}, "boards[0].ssh_user: expected a non-empty string"),
        ({"host": "pi@a.local", "ssh_user": "root"}, "boards[0].ssh_user: 'root' contradicts the user in host 'pi@a.local'"),
        ({"deploy_root": "opt/edgetran"}, "boards[0].deploy_root: expected an absolute path or one starting with '~/'"),
    ]:
        with pytest.raises(RigError) as caught:
            parse_rig({"boards": [{"name": "a", "host": "a.local", **entry}]})
        assert message in str(caught.value)


def test_rig_show_lists_every_board_model_of_the_virtual_rig(cli):
    """#12: `rig show` names every model a virtual board can take (model = NAME), not only the boards in use."""
    import json

    from firmware_host.virtual_rig import board_models

    code, out, _ = cli("rig", "show", "--json")
    assert code == 0
    assert [m["model"] for m in json.loads(out)["board_models"]] == list(board_models())
    code, out, _ = cli("rig", "show")
    assert code == 0 and all(name in out for name in board_models()) and "EMULATED" in out
