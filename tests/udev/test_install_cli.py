"""`edgetran udev install|show`: dry run, install into a temporary folder, refusal without root."""

from __future__ import annotations

import stat

import pytest

import udev.cli
from udev.install import RecordingHost, install, shipped_rules, trigger_command


@pytest.fixture
def recording(monkeypatch) -> RecordingHost:
    host = RecordingHost(groups={"i2c"})
    monkeypatch.setattr(udev.cli, "host", lambda: host)
    return host


def test_install_writes_rules_creates_group_and_reloads(cli, recording, tmp_path):
    code, out, err = cli("udev", "install", "--rules-dir", str(tmp_path))
    assert (code, err) == (0, "")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(shipped_rules())  # no temporary files left
    for name, text in shipped_rules().items():
        assert (tmp_path / name).read_text() == text
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644
    assert recording.commands == [
        ["groupadd", "--system", "edgetran"],
        ["udevadm", "control", "--reload-rules"],
        trigger_command(),
    ]
    assert "run: groupadd --system edgetran" in out and "group i2c exists" in out
    assert f"write: {tmp_path / '60-edgetran-npu.rules'}" in out and "usermod -aG edgetran" in out


def test_install_for_another_group_and_again_is_idempotent(cli, recording, tmp_path):
    recording.groups.add("bench")
    assert cli("udev", "install", "--rules-dir", str(tmp_path), "--group", "bench")[0] == 0
    assert 'GROUP="bench"' in (tmp_path / "60-edgetran-npu.rules").read_text()
    assert "chgrp bench /sys%p/energy_uj" in (tmp_path / "60-edgetran-power.rules").read_text()
    code, out, _ = cli("udev", "install", "--rules-dir", str(tmp_path), "--group", "bench")
    assert code == 0 and out.count("is up to date") == 3 and "write:" not in out
    assert [c[0] for c in recording.commands] == ["udevadm", "udevadm"] * 2  # no groupadd: both groups exist


def test_dry_run_prints_the_same_actions_and_changes_nothing(capsys, tmp_path):
    dry = RecordingHost(uid=1000)  # a dry run needs no root
    actions = install(tmp_path, dry_run=True, host=dry, echo=lambda line: None)
    assert dry.commands == [] and list(tmp_path.iterdir()) == []
    real = RecordingHost()
    assert install(tmp_path, host=real, echo=lambda line: None) == actions
    assert [["run: " + " ".join(c)] for c in real.commands] == [[a] for a in actions if a.startswith("run: ")]


def test_cli_dry_run_on_the_real_host_touches_nothing(cli, tmp_path):
    code, out, err = cli("udev", "install", "--dry-run", "--rules-dir", str(tmp_path))
    assert (code, err) == (0, "") and list(tmp_path.iterdir()) == []
    assert out.startswith("dry run:") and "run: udevadm control --reload-rules" in out
    assert f"run: {' '.join(trigger_command())}" in out


def test_cli_dry_run_works_without_a_rules_directory(cli, tmp_path):
    missing = tmp_path / "etc" / "udev" / "rules.d"  # a machine without udev (#12)
    code, out, err = cli("udev", "install", "--dry-run", "--rules-dir", str(missing))
    assert (code, err) == (0, "") and list(tmp_path.iterdir()) == []
    assert f"{missing} does not exist on this machine" in out and f"write: {missing / '60-edgetran-npu.rules'}" in out


def test_install_without_a_rules_directory_is_refused(cli, recording, tmp_path):
    code, _, err = cli("udev", "install", "--rules-dir", str(tmp_path / "nope"))
    assert code == 2 and "is not a directory" in err and recording.commands == []


def test_non_root_install_is_refused_with_one_line(cli, monkeypatch, tmp_path):
    host = RecordingHost(uid=1000)
    monkeypatch.setattr(udev.cli, "host", lambda: host)
    code, out, err = cli("udev", "install", "--rules-dir", str(tmp_path))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "sudo" in err and host.commands == [] and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--group", "Bad Group"], "invalid group name"),
        (["--rules-dir", "/nonexistent/rules.d"], "is not a directory"),
    ],
)
def test_bad_input_exits_2(cli, recording, args, fragment):
    code, out, err = cli("udev", "install", *args)
    assert code == 2 and len(err.strip().splitlines()) == 1 and fragment in err


def test_failing_command_is_one_line_exit_1(cli, monkeypatch, tmp_path):
    from udev.install import InstallError

    def fail(argv):
        raise InstallError(f"{' '.join(argv)} failed (exit 1): Failed to send reload request")

    host = RecordingHost(groups={"edgetran", "i2c"})
    host.run = fail
    monkeypatch.setattr(udev.cli, "host", lambda: host)
    code, _, err = cli("udev", "install", "--rules-dir", str(tmp_path))
    assert code == 1 and err.strip() == "edgetran udev install: error: udevadm control --reload-rules failed (exit 1): Failed to send reload request"


def test_show_prints_every_file_or_one(cli):
    code, out, _ = cli("udev", "show")
    assert code == 0 and all(f"# ==> {name} <==" in out for name in shipped_rules())
    assert 'ATTR{idVendor}!="03e7"' in out
    code, out, _ = cli("udev", "show", "60-edgetran-i2c.rules", "--group", "bench")
    assert code == 0 and out == shipped_rules()["60-edgetran-i2c.rules"].replace("g:edgetran:", "g:bench:")
    code, _, err = cli("udev", "show", "70-nope.rules")
    assert code == 2 and "no rules file '70-nope.rules'" in err
