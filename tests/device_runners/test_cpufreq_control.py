"""cpufreq control on an emulated tree that answers like the kernel: set, read back, restore."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from device_runners.cpufreq import Cpufreq, CpufreqError, CpufreqSession
from device_runners.cpufreq_emulator import EmulatedCpufreq, PolicySpec


@pytest.fixture
def rpi4(tmp_path: Path) -> Cpufreq:
    return Cpufreq(EmulatedCpufreq.create(tmp_path / "sys-root"))


@pytest.fixture
def big_little(tmp_path: Path) -> Cpufreq:
    return Cpufreq(
        EmulatedCpufreq.create(
            tmp_path / "sys-root",
            [
                PolicySpec("policy0", (0, 1, 2, 3), (408000, 600000, 1008000, 1416000), governor="schedutil"),
                PolicySpec("policy4", (4, 5), (408000, 1200000, 1800000), governor="schedutil"),
            ],
        )
    )


def test_lists_policies_governors_and_frequencies(big_little: Cpufreq):
    policies = big_little.policies()
    assert [p.name for p in policies] == ["policy0", "policy4"]
    little = policies[0]
    assert little.cpus == (0, 1, 2, 3)
    assert little.frequencies_khz == (408000, 600000, 1008000, 1416000)
    assert "userspace" in little.governors and little.state.governor == "schedutil"
    assert (little.hardware_min_khz, little.hardware_max_khz) == (408000, 1416000)


def test_userspace_governor_takes_setspeed(rpi4: Cpufreq):
    rpi4.set_governor("policy0", "userspace")
    state = rpi4.set_frequency("policy0", 900000)
    assert state.governor == "userspace" and state.setspeed_khz == 900000
    assert rpi4.policy("policy0").current_khz == 900000


def test_other_governors_are_clamped_with_min_and_max(rpi4: Cpufreq):
    state = rpi4.set_frequency("policy0", 1200000)  # ondemand: clamp min = max
    assert (state.min_khz, state.max_khz) == (1200000, 1200000)
    assert rpi4.policy("policy0").current_khz == 1200000
    state = rpi4.set_frequency("policy0", 700000)  # lowering: min is written first
    assert (state.min_khz, state.max_khz) == (700000, 700000)


def test_refused_requests_name_the_reason(rpi4: Cpufreq):
    with pytest.raises(CpufreqError, match="governor 'turbo' is not available"):
        rpi4.set_governor("policy0", "turbo")
    with pytest.raises(CpufreqError, match="outside the hardware range 600000..1500000"):
        rpi4.set_frequency("policy0", 2000000)
    with pytest.raises(CpufreqError, match="not an available frequency"):
        rpi4.set_frequency("policy0", 650000)
    with pytest.raises(CpufreqError, match="no cpufreq policy 'policy9'"):
        rpi4.policy("policy9")


def test_the_emulated_kernel_refuses_what_the_real_one_refuses(rpi4: Cpufreq):
    access = rpi4.access
    with pytest.raises(CpufreqError) as caught:
        access.write("sys/devices/system/cpu/cpufreq/policy0/scaling_setspeed", "900000")  # not under userspace
    assert caught.value.errno == errno.EINVAL
    access.write("sys/devices/system/cpu/cpufreq/policy0/scaling_max_freq", "800000")
    with pytest.raises(CpufreqError, match="invalid argument"):
        access.write("sys/devices/system/cpu/cpufreq/policy0/scaling_min_freq", "1000000")  # above max
    access.write("sys/devices/system/cpu/cpufreq/policy0/scaling_max_freq", "9999999")  # clamped to the hardware
    assert rpi4.state("policy0").max_khz == 1500000


def test_session_restores_on_exit(rpi4: Cpufreq):
    before = rpi4.state("policy0")
    with CpufreqSession(rpi4) as session:
        session.set_governor("userspace")
        session.set_frequency(600000)
        assert rpi4.state("policy0").setspeed_khz == 600000
    assert rpi4.state("policy0") == before


def test_session_restores_after_an_exception_and_ctrl_c(rpi4: Cpufreq):
    rpi4.clamp("policy0", 700000, 1300000)
    before = rpi4.state("policy0")
    with pytest.raises(RuntimeError, match="benchmark crashed"):
        with CpufreqSession(rpi4) as session:
            session.set_governor("performance")
            session.set_frequency(1500000)
            raise RuntimeError("benchmark crashed")
    assert rpi4.state("policy0") == before
    with pytest.raises(KeyboardInterrupt):
        with CpufreqSession(rpi4) as session:
            session.set_governor("powersave")
            raise KeyboardInterrupt
    assert rpi4.state("policy0") == before


def test_userspace_setspeed_is_restored(rpi4: Cpufreq):
    rpi4.set_governor("policy0", "userspace")
    rpi4.set_frequency("policy0", 1100000)
    before = rpi4.state("policy0")
    with CpufreqSession(rpi4) as session:
        session.set_governor("performance")
    assert rpi4.state("policy0") == before and before.setspeed_khz == 1100000


def test_permission_errors_say_which_udev_rule_fixes_them(tmp_path: Path):
    EmulatedCpufreq.create(tmp_path / "root")
    locked = Cpufreq(EmulatedCpufreq(tmp_path / "root", read_only=True))
    with pytest.raises(CpufreqError) as caught:
        locked.set_governor("policy0", "performance")
    assert caught.value.errno == errno.EACCES
    assert "udev" in str(caught.value) and "edgetran" in str(caught.value)


def test_no_cpufreq_tree_means_no_policies(tmp_path: Path):
    assert Cpufreq(EmulatedCpufreq(tmp_path)).policies() == []
