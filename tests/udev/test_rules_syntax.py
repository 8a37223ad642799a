"""The shipped udev rules parse, use only udev(7) keys with the right operators, and grant what they say."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from sensors import rapl
from udev.install import render, shipped_rules
from udev.syntax import KNOWN_KEYS, RulesSyntaxError, logical_lines, parse_rules, split_pairs

# udev(7), "Rules files": every key a rule may use.
UDEV7_KEYS = {
    "ACTION", "DEVPATH", "KERNEL", "KERNELS", "NAME", "SYMLINK", "SUBSYSTEM", "SUBSYSTEMS", "DRIVER", "DRIVERS",
    "ATTR", "ATTRS", "SYSCTL", "ENV", "CONST", "TAG", "TAGS", "TEST", "PROGRAM", "RESULT", "OWNER", "GROUP",
    "MODE", "SECLABEL", "RUN", "LABEL", "GOTO", "IMPORT", "OPTIONS",
}
MATCH_ONLY = {"ACTION", "DEVPATH", "KERNEL", "KERNELS", "SUBSYSTEM", "SUBSYSTEMS", "DRIVER", "DRIVERS", "ATTRS", "CONST", "TAGS", "TEST", "RESULT"}
ASSIGN_ONLY = {"OWNER", "GROUP", "MODE", "SECLABEL", "RUN", "LABEL", "GOTO", "OPTIONS"}
RULES = shipped_rules()


def all_pairs(text: str):
    return [pair for rule in parse_rules(text) for pair in rule.pairs]


def test_three_files_ship():
    assert list(RULES) == ["60-edgetran-i2c.rules", "60-edgetran-npu.rules", "60-edgetran-power.rules"]
    for name, text in RULES.items():
        assert text.startswith("# EdgeTran bench toolkit:"), name
        assert "Install:" in text and "edgetran udev install" in text and "udevadm control --reload-rules" in text, name


def test_validator_knows_exactly_the_udev7_keys():
    assert KNOWN_KEYS == UDEV7_KEYS


@pytest.mark.parametrize("name", sorted(RULES))
def test_every_pair_uses_a_udev7_key_and_a_valid_operator(name):
    for pair in all_pairs(RULES[name]):
        assert pair.key in UDEV7_KEYS, pair
        if pair.key in MATCH_ONLY:
            assert pair.op in {"==", "!="}, pair
        elif pair.key in ASSIGN_ONLY:
            assert pair.op in {"=", "+=", "-=", ":="}, pair
        if pair.key in {"ATTR", "ATTRS", "ENV", "SYSCTL", "CONST", "SECLABEL", "IMPORT"}:
            assert pair.arg, pair


@pytest.mark.parametrize("name", sorted(RULES))
def test_every_rule_has_a_match_or_is_gated(name):
    # A rule without a match key applies to every event: only allowed between a GOTO gate and its LABEL.
    gated = False
    for rule in parse_rules(RULES[name]):
        keys = {p.key for p in rule.pairs}
        if "GOTO" in keys:
            gated = True
        if "LABEL" in keys:
            gated = False
        assert gated or "LABEL" in keys or any(p.is_match for p in rule.pairs), rule


def test_continuation_lines_are_joined():
    text = 'SUBSYSTEM=="cpu", \\\n  RUN+="/bin/true"\n# comment\n\nKERNEL=="x", MODE="0660"\n'
    assert [n for n, _ in logical_lines(text)] == [1, 5]
    assert [p.key for p in split_pairs(logical_lines(text)[0][1])] == ["SUBSYSTEM", "RUN"]


@pytest.mark.parametrize(
    "line, fragment",
    [
        ('SUBSYSTEM="usb", MODE="0660"', "SUBSYSTEM is a match key"),
        ('KERNEL=="x", GROUP=="edgetran"', "GROUP is an assignment key"),
        ('KERNEL=="x", FOO="1"', "unknown key 'FOO'"),
        ('ATTR=="x", MODE="0660"', "ATTR needs an {argument}"),
        ('KERNEL{x}=="x", MODE="0660"', "KERNEL takes no {argument}"),
        ('KERNEL=="x", MODE="rw"', "not an octal mode"),
        ('KERNEL=="x", GROUP+="a"', "GROUP holds one value"),
        ('KERNEL=="x" MODE="0660"', "cannot parse"),
        ('KERNEL=="x", MODE="0660",', "trailing comma"),
        ('KERNEL=="x", GOTO="nowhere"', "GOTO 'nowhere' has no LABEL"),
        ('KERNEL=="x", RUN{shell}+="x"', "RUN{shell}"),
    ],
)
def test_validator_rejects(line, fragment):
    with pytest.raises(RulesSyntaxError, match=fragment.replace("{", r"\{").replace("}", r"\}")):
        parse_rules(line + "\n")


def test_i2c_rules_keep_the_i2c_group_and_add_the_bench_group():
    pairs = all_pairs(RULES["60-edgetran-i2c.rules"])
    assert any(p.key == "SUBSYSTEM" and p.op == "!=" and p.value == "i2c-dev" for p in pairs)
    assert any(p.key == "GROUP" and p.value == "i2c" for p in pairs) and any(p.key == "MODE" and p.value == "0660" for p in pairs)
    assert any(p.key == "RUN" and "setfacl -m g:edgetran:rw $devnode" in p.value for p in pairs)


def test_npu_rules_cover_ncs2_and_the_booted_myriad():
    pairs = all_pairs(RULES["60-edgetran-npu.rules"])
    products = next(p for p in pairs if p.key == "ATTR" and p.arg == "idProduct").value.split("|")
    assert {"2485", "f63b"} <= set(products)
    assert any(p.key == "ATTR" and p.arg == "idVendor" and p.value == "03e7" for p in pairs)
    assert any(p.key == "GROUP" and p.value == "edgetran" for p in pairs)


def test_power_rules_open_the_attributes_the_tools_write():
    text = RULES["60-edgetran-power.rules"]
    runs = [p.value for p in all_pairs(text) if p.key == "RUN"]
    for attribute in ("scaling_governor", "scaling_setspeed", "scaling_min_freq", "scaling_max_freq"):
        assert f"/bin/chgrp edgetran /sys%p/cpufreq/{attribute}" in runs
        assert f"/bin/chmod g+w /sys%p/cpufreq/{attribute}" in runs
    assert any("update_interval" in run and "chgrp edgetran" in run for run in runs)  # hwmon
    assert rapl.RAPL_GROUP == "edgetran" and rapl.UDEV_RULE in text.splitlines()  # RAPL hint names the shipped rule


def test_render_replaces_the_group_only_where_it_is_a_group():
    for text in RULES.values():
        rendered = render(text, "bench")
        parse_rules(rendered)
        for line in rendered.splitlines():
            if not line.lstrip().startswith("#"):
                assert "edgetran" not in line.replace("edgetran_", ""), line
    assert "g:bench:rw" in render(RULES["60-edgetran-i2c.rules"], "bench")
    with pytest.raises(ValueError, match="invalid group name"):
        render(RULES["60-edgetran-npu.rules"], 'x" RUN+="/bin/sh')


def udevadm_verify_available() -> bool:
    if shutil.which("udevadm") is None:
        return False
    return subprocess.run(["udevadm", "verify", "--help"], capture_output=True).returncode == 0


@pytest.mark.skipif(not udevadm_verify_available(), reason="udevadm verify (systemd >= 254) is not available here")
def test_udevadm_verify_accepts_the_rules(tmp_path: Path):
    paths = []
    for name, text in RULES.items():
        (tmp_path / name).write_text(text)
        paths.append(str(tmp_path / name))
    done = subprocess.run(["udevadm", "verify", "--resolve-names=never", *paths], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
