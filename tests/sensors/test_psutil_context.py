"""psutil context channels: utilisation from cpu_times differences, frequency, a process's RSS and CPU share."""

from __future__ import annotations

import os
import time
from collections import namedtuple

import psutil
import pytest

from sensors.base import CONTEXT, SensorError
from sensors.psutil_source import PsutilSensor, busy_pct, discover, present

# psutil's Linux cpu_times fields
CpuTimes = namedtuple("CpuTimes", "user nice system idle iowait irq softirq steal guest guest_nice")
ProcTimes = namedtuple("ProcTimes", "user system children_user children_system")
Freq = namedtuple("Freq", "current min max")
Mem = namedtuple("Mem", "rss vms")


def times(**fields: float) -> CpuTimes:
    return CpuTimes(**{name: fields.get(name, 0.0) for name in CpuTimes._fields})


class FakeClock:
    def __init__(self, t: float = 20.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class FakePsutil:
    """The part of psutil the source uses, returning scripted readings."""

    class Error(Exception):
        pass

    class NoSuchProcess(Error):
        pass

    def __init__(self) -> None:
        self.total = times(user=100, system=50, idle=800, iowait=10, softirq=5, guest=20)
        self.cores = [times(idle=400), times(idle=400)]
        self.freq: Freq | None = Freq(1800.0, 600.0, 2400.0)
        self.proc_times = ProcTimes(1.0, 0.5, 0.0, 0.0)
        self.rss = 123_456_789
        self.alive = True
        fake = self

        class Process:
            def __init__(self, pid: int) -> None:
                self.pid = pid

            def cpu_times(self) -> ProcTimes:
                fake.check_alive()
                return fake.proc_times

            def memory_info(self) -> Mem:
                fake.check_alive()
                return Mem(fake.rss, 2 * fake.rss)

        self.Process = Process

    def check_alive(self) -> None:
        if not self.alive:
            raise self.NoSuchProcess("process no longer exists (pid=4242)")

    def cpu_times(self, percpu: bool = False):
        return list(self.cores) if percpu else self.total

    def cpu_freq(self) -> Freq | None:
        return self.freq


def test_busy_share_follows_psutils_formula() -> None:
    before = times(user=100, system=50, idle=800, iowait=10, softirq=5, guest=20)
    after = times(user=130, system=60, idle=850, iowait=15, softirq=10, guest=30)
    # deltas: user 30, system 10, idle 50, iowait 5, softirq 5, guest 10 (inside user)
    # total = 110 - 10 = 100; not busy = idle + iowait = 55 -> 45 %
    assert busy_pct(before, after) == pytest.approx(45.0)
    assert busy_pct(after, after) is None


def test_fake_psutil_readings_give_hand_computed_channels() -> None:
    ps, clock = FakePsutil(), FakeClock()
    sensor = PsutilSensor(per_core=True, pid=4242, module=ps, clock=clock)
    info = sensor.info
    assert info.provenance == CONTEXT and info.kind == "psutil"
    assert info.channels == (
        "cpu.util_pct", "cpu0.util_pct", "cpu1.util_pct", "cpu.freq_mhz", "process.rss_bytes", "process.util_pct",
    )  # fmt: skip
    ps.total = times(user=130, system=60, idle=850, iowait=15, softirq=10, guest=30)
    ps.cores = [times(user=20, system=5, idle=425), times(user=5, idle=445)]
    ps.freq = Freq(2400.5, 600.0, 2400.0)
    ps.proc_times = ProcTimes(1.6, 0.7, 0.0, 0.0)
    clock.t += 0.5
    sample = sensor.read()
    assert sample.fresh and sample.t == 20.5
    assert sample.values["cpu.util_pct"] == pytest.approx(45.0)
    assert sample.values["cpu0.util_pct"] == pytest.approx(50.0)  # 25 busy of 50
    assert sample.values["cpu1.util_pct"] == pytest.approx(10.0)  # 5 busy of 50
    assert sample.values["cpu.freq_mhz"] == 2400.5
    assert sample.values["process.rss_bytes"] == 123_456_789.0
    assert sample.values["process.util_pct"] == pytest.approx(160.0)  # 0.8 CPU s in 0.5 s: 1.6 cores


def test_no_new_cpu_time_is_a_stale_read_keeping_the_last_share() -> None:
    ps, clock = FakePsutil(), FakeClock()
    sensor = PsutilSensor(module=ps, clock=clock)
    ps.total = times(user=130, system=60, idle=850, iowait=15, softirq=10, guest=30)
    clock.t += 1
    assert sensor.read().values["cpu.util_pct"] == pytest.approx(45.0)
    clock.t += 0.001  # within one accounting tick: nothing changed
    stale = sensor.read()
    assert not stale.fresh and stale.values["cpu.util_pct"] == pytest.approx(45.0)
    assert sensor.info.channels == ("cpu.util_pct", "cpu.freq_mhz")


def test_platform_without_frequency_and_vanished_process() -> None:
    ps = FakePsutil()
    ps.freq = None
    assert discover(ps) == ["cpu.util_pct"] and present(ps)
    sensor = PsutilSensor(pid=4242, module=ps, clock=FakeClock())
    assert "cpu.freq_mhz" not in sensor.info.channels
    ps.alive = False
    with pytest.raises(SensorError, match="process 4242"):
        sensor.read()
    with pytest.raises(SensorError, match="cannot watch process"):
        PsutilSensor(pid=4242, module=ps)


def test_real_psutil_on_this_machine() -> None:
    sensor = PsutilSensor(per_core=True, pid=os.getpid())
    start = time.process_time()
    deadline = time.monotonic() + 2.0
    while time.process_time() - start < 0.05 and time.monotonic() < deadline:
        sum(range(10_000))  # burn CPU in this process
    sample = sensor.read()
    cores = psutil.cpu_count()
    assert len([c for c in sample.values if c.startswith("cpu") and c[3].isdigit()]) == cores
    assert 0.0 <= sample.values["cpu.util_pct"] <= 100.0
    assert 0.0 < sample.values["process.util_pct"] <= 100.0 * cores + 1.0
    assert sample.values["process.rss_bytes"] == pytest.approx(psutil.Process().memory_info().rss, rel=0.2)
    assert discover()[0] == "cpu.util_pct" and present()
