"""The CLI contract on ordinary mistakes (#12): every `edgetran` command, given an unwritable
output, a directory where a file is expected, a missing input file or an unknown choice,
exits 2 with one line naming the problem, prints no traceback and leaves no file behind.

``CASES`` lists the bad inputs of every command; :func:`test_every_command_has_cases`
walks the typer app itself, so a new command without a row here fails the suite.

"Unwritable" is an output *under a regular file* (``afile/out.json``): that is refused for
root too (the suite runs as root in CI, where a 0555 directory is writable).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
import typer

from firmware_host.cli import app

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL = str(REPO_ROOT / "examples" / "bert-tiny.json")

# command path -> [(what is wrong, arguments)]; {ro}: an output under a regular file,
# {dir}: an existing directory, {missing}: a file that does not exist, {model}: a valid
# model dictionary, {trace}: a valid trace file, {rodir}: an existing directory nobody can
# create files in (/proc, refused for root too).
CASES: dict[str, list[tuple[str, list[str]]]] = {
    "run": [("missing file", ["{missing}"]), ("directory for a file", ["{dir}"]), ("unknown runtime", ["{model}", "--runtime", "foo"])],
    "profile": [("missing file", ["{missing}"]), ("directory for a file", ["{dir}"]), ("unknown runtime", ["{model}", "--runtime", "foo"]),
                ("missing rig", ["{model}", "--rig", "{missing}"]), ("unwritable store", ["{model}", "--store", "{rodir}/p.db"]),
                ("directory for a store", ["{model}", "--store", "{dir}"])],
    "space stats": [("unknown option", ["--bogus"])],
    "space sample": [("unwritable output", ["-n", "2", "--out", "{ro}"]), ("unwritable directory", ["-n", "2", "--out", "{rodir}/s.json"]), ("directory for a file", ["-n", "2", "--out", "{dir}"]),
                     ("unknown method", ["--method", "foo"])],
    "space embed": [("missing file", ["{missing}"]), ("directory for a file", ["{dir}"])],
    "space decode": [("not a vector", ["[1, 2"])],
    "space diversity": [("unknown option", ["--bogus"])],
    "space validate": [("missing file", ["{missing}"]), ("directory for a file", ["{dir}"])],
    "published list": [("unknown option", ["--bogus"])],
    "model params": [("missing file", ["{missing}"]), ("directory for a file", ["{dir}"])],
    "model export": [("missing file", ["{missing}", "-f", "onnx", "--out", "{dir}"]), ("unwritable output", ["{model}", "-f", "onnx", "--out", "{ro}"]),
                     ("unwritable directory", ["{model}", "-f", "onnx", "--out", "{rodir}/exports"]), ("unknown format", ["{model}", "--out", "{dir}", "-f", "foo"])],
    "model transfer": [("missing file", ["{missing}", "{model}", "--mode", "ot", "--out", "{dir}"]),
                       ("unwritable output", ["{model}", "{model}", "--mode", "ot", "--out", "{ro}"]),
                       ("unknown mode", ["{model}", "{model}", "--mode", "foo", "--out", "{dir}"])],
    "model pretrain": [("missing file", ["{missing}", "--out", "{dir}"]), ("unwritable output", ["{model}", "--out", "{ro}"])],
    "protran run": [("unknown device", ["--device", "published:foo"]), ("unwritable save-model", ["--device", "published:cpu_rpi_b1_r1", "--save-model", "{ro}"])],
    "protran compare": [("unknown device", ["--device", "published:foo"])],
    "protran predict": [("missing file", ["{missing}", "--device", "published:cpu_rpi_b1_r1"]),
                        ("directory for a file", ["{dir}", "--device", "published:cpu_rpi_b1_r1"]),
                        ("unknown device", ["{model}", "--device", "published:foo"])],
    "protran report": [("unwritable output", ["--device", "published:cpu_rpi_b1_r1", "--out", "{ro}"]),
                       ("unwritable directory", ["--device", "published:cpu_rpi_b1_r1", "--out", "{rodir}/rep"]),
                       ("unknown regressor", ["--device", "published:cpu_rpi_b1_r1", "--out", "{dir}/rep", "--regressor", "foo"])],
    "sensor list": [("unknown option", ["--bogus"])],
    "sensor record": [("unwritable output", ["--out", "{ro}", "--duration", "0.2"]), ("unwritable directory", ["--out", "{rodir}/r.trace", "--duration", "0.2"]), ("directory for a file", ["--out", "{dir}", "--duration", "0.2"]),
                      ("unknown sensor", ["--out", "{dir}/r.trace", "--sensor", "foo"]),
                      ("unknown parameter", ["--out", "{dir}/r.trace", "--param", "foo=bar"])],
    "sensor live": [("missing replay", ["--replay", "{missing}", "--duration", "0.1"]), ("unknown sensor", ["--sensor", "foo", "--duration", "0.1"])],
    "sensor daemon": [("missing config", ["--config", "{missing}"]), ("directory for a file", ["--config", "{dir}"])],
    "trace info": [("missing file", ["{missing}"])],  # a directory is valid here (rotated traces)
    "trace import": [("missing file", ["{missing}", "--out", "{dir}/t.trace"]), ("unwritable output", ["{csv}", "--out", "{ro}"]), ("unwritable directory", ["{csv}", "--out", "{rodir}/t.trace"]),
                     ("directory for a file", ["{csv}", "--out", "{dir}"])],
    "trace export": [("missing file", ["{missing}", "--csv", "{dir}/x.csv"]), ("unwritable output", ["{trace}", "--csv", "{ro}"]),
                     ("unwritable directory", ["{trace}", "--csv", "{rodir}/x.csv"]),
                     ("directory for a file", ["{trace}", "--csv", "{dir}"]), ("unknown stream", ["{trace}", "--csv", "{dir}/x.csv", "--stream", "foo"])],
    "trace energy": [("missing file", ["{missing}", "--start", "0", "--end", "1"]), ("unknown channel", ["{trace}", "--start", "0", "--end", "0.5", "--channel", "foo"])],
    "cpufreq show": [("missing sysfs root", ["--sysfs-root", "{missing}"])],
    "cpufreq set": [("missing sysfs root", ["--sysfs-root", "{missing}", "--governor", "performance"])],
    "udev install": [("missing rules dir", ["--rules-dir", "{missing}"])],
    "udev show": [("unknown rule", ["foo"])],
    "rig show": [("missing rig", ["--rig", "{missing}"]), ("directory for a file", ["--rig", "{dir}"])],
    "rig check": [("missing rig", ["--rig", "{missing}"])],
    "rig deploy": [("missing rig", ["board", "--rig", "{missing}"])],
    "rig scheduler": [("missing rig", ["--rig", "{missing}"])],
    "campaign run": [("missing file", ["{missing}", "--name", "c"]), ("directory for a file", ["{dir}", "--name", "c"])],
    "store campaigns": [("missing store", ["--store", "{missing}"])],
    "store info": [("missing store", ["--store", "{missing}"]), ("directory for a file", ["--store", "{dir}"])],
    "store export": [("missing store", ["--store", "{missing}", "--campaign", "c", "--csv", "{dir}/x.csv"])],
}


def command_paths() -> set[str]:
    """Every leaf command of the `edgetran` app, as 'group command'."""
    found: set[str] = set()

    def walk(command, prefix: list[str]) -> None:
        subs = getattr(command, "commands", None)
        if subs is None:
            found.add(" ".join(prefix))
            return
        for name, sub in subs.items():
            walk(sub, [*prefix, name])

    walk(typer.main.get_command(app), [])
    return found


def test_every_command_has_cases():
    assert command_paths() == set(CASES), "every `edgetran` command needs bad-input rows in CASES"


@pytest.fixture
def places(tmp_path: Path) -> dict[str, str]:
    """The paths of a case: an output under a regular file, a directory, a missing file, a valid trace."""
    afile = tmp_path / "afile"
    afile.write_text("a regular file\n")
    work = tmp_path / "work"
    work.mkdir()
    samples = tmp_path / "samples.csv"
    with open(samples, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["t_s", "power_w"])
        for i in range(200):
            writer.writerow([i * 0.005, 2.0])
    trace = tmp_path / "ok.trace"
    from sensors.trace.exchange import import_any
    from sensors.trace.format import write_trace

    write_trace(trace, import_any(samples, None))
    return {"ro": str(afile / "out.json"), "dir": str(work), "missing": str(tmp_path / "missing.json"), "model": MODEL,
            "trace": str(trace), "csv": str(samples), "rodir": "/proc"}


# What the one line must say, by the kind of mistake (the case's label up to its first space).
NAMES_THE_PROBLEM = {
    "missing": r"not found|does not exist|no store there|not a directory",
    "directory": r"is a directory",
    "unwritable": r"cannot write|cannot create|is not a directory",
    "unknown": r"'?(foo|bogus)'?",
    "not": r"not a JSON list",
}


def tree(root: Path) -> set[str]:
    """Every path under ``root``."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


ROWS = [(command, what, args) for command, rows in CASES.items() for what, args in rows]


@pytest.mark.parametrize(("command", "what", "args"), ROWS, ids=[f"{c}: {w}" for c, w, _ in ROWS])
def test_bad_input_is_one_line_exit_2_and_no_file(cli, places, tmp_path, monkeypatch, command, what, args):
    monkeypatch.setenv("EDGETRAN_ARTIFACTS", str(tmp_path / "artifacts"))
    before = tree(tmp_path)
    argv = [*command.split(), *(a.format(**places) for a in args)]
    code, out, err = cli(*argv)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (argv, out, err)
    assert "Traceback" not in out + err
    assert len(lines) == 1, err
    assert lines[0].startswith(f"edgetran {command}: error: "), lines
    assert re.search(NAMES_THE_PROBLEM[what.split()[0]], lines[0], re.IGNORECASE), f"{what}: {lines[0]}"
    assert tree(tmp_path) - before <= {"artifacts"}, f"left behind: {sorted(tree(tmp_path) - before)}"


def help_pages() -> list[list[str]]:
    """The argv of every command's --help."""
    return [[*path.split(), "--help"] for path in sorted(command_paths())]


def test_flags_are_shown_as_flags_in_help(cli):
    """#12: `--json` (and every other flag) is shown without a value placeholder such as <bool>."""
    for argv in help_pages():
        code, out, _ = cli(*argv)
        assert code == 0, argv
        for line in out.splitlines():
            if ("--json" in line or "--help" in line) and "FILE" not in line.upper():
                assert "<bool>" not in line and "BOOLEAN" not in line, (argv, line)


def test_the_ina219_error_names_options_that_exist():
    """#12: a missing I2C bus suggests `--param bus=N`, not a `--bus` option that no command has."""
    from sensors.base import SensorConfigError
    from sensors.registry import _smbus

    pytest.importorskip("smbus2")
    with pytest.raises(SensorConfigError) as caught:
        _smbus(987)
    assert "--param bus=" in str(caught.value) and "--bus" not in str(caught.value).replace("--param bus", "")


@pytest.mark.parametrize("command", ["record", "live"])
def test_an_unknown_sensor_parameter_lists_the_valid_keys(cli, tmp_path, command):
    """#12: `--param foo=bar` names the parameter and lists what the kind accepts (no internal function name)."""
    extra = ["--out", str(tmp_path / "r.ettrace")] if command == "record" else ["--duration", "0.1"]
    code, _, err = cli("sensor", command, "--param", "foo=bar", *extra)
    assert code == 2 and "takes no parameter 'foo'" in err and "accepts: rate_hz, waveform" in err
    assert "_emulated_ina219" not in err and "()" not in err and list(tmp_path.iterdir()) == []
