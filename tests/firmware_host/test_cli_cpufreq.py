"""`edgetran cpufreq show|set` on an emulated tree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from device_runners.cpufreq_emulator import EmulatedCpufreq


@pytest.fixture
def root(tmp_path: Path) -> str:
    EmulatedCpufreq.create(tmp_path / "root")
    return str(tmp_path / "root")


def test_show_json(cli, root):
    code, out, _ = cli("cpufreq", "show", "--sysfs-root", root, "--json")
    (policy,) = json.loads(out)
    assert code == 0
    assert policy["name"] == "policy0" and policy["state"]["governor"] == "ondemand"
    assert policy["frequencies_khz"][0] == 600000


def test_set_governor_and_frequency_reads_back(cli, root):
    code, out, _ = cli("cpufreq", "set", "--governor", "userspace", "--freq", "1000000", "--sysfs-root", root, "--json")
    assert code == 0
    assert json.loads(out)["policy0"] == {"governor": "userspace", "min_khz": 600000, "max_khz": 1500000, "setspeed_khz": 1000000}
    code, out, _ = cli("cpufreq", "show", "--sysfs-root", root, "--json")
    assert json.loads(out)[0]["current_khz"] == 1000000


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--governor", "turbo"], "governor 'turbo' is not available"),
        (["--freq", "650000"], "not an available frequency"),
        ([], "give --governor, --freq or both"),
        (["--governor", "performance", "--policy", "policy7"], "no cpufreq policy 'policy7'"),
    ],
)
def test_bad_requests_exit_2_with_one_line(cli, root, args, fragment):
    code, out, err = cli("cpufreq", "set", *args, "--sysfs-root", root)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and fragment in err
