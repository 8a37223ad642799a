"""RAPL powercap counters on a fake /sys: discovery, unwrapping, power from differences, permissions."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from sensors import rapl, sysfs
from sensors.energy import energy_windows
from sensors.base import VENDOR, SensorConfigError, SensorError
from sensors.rapl import RaplSensor, discover, present, unwrap_delta_uj
from sensors.sysfs import write_tree

FIXTURES = Path(__file__).parent / "fixtures"
PKG_MAX_UJ = 262143328850
PKG = "sys/devices/virtual/powercap/intel-rapl/intel-rapl:0"
CORE = PKG + "/intel-rapl:0:0"
PSYS = "sys/devices/virtual/powercap/intel-rapl/intel-rapl:1"


class FakeClock:
    """A clock the test advances by hand."""

    def __init__(self, t: float = 10.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def laptop(tmp_path: Path) -> Path:
    spec = json.loads((FIXTURES / "sysfs_intel_rapl_laptop.json").read_text())
    return write_tree(tmp_path, spec["files"], spec["symlinks"])


def set_uj(root: Path, zone: str, value: int) -> None:
    (root / zone / "energy_uj").write_text(f"{value}\n")


def test_zones_are_found_with_parent_labels_and_mmio_is_skipped(laptop: Path) -> None:
    zones = discover(laptop)
    assert [z.label for z in zones] == ["package-0", "package-0-core", "package-0-uncore", "psys"]
    assert [z.name for z in zones] == ["package-0", "core", "uncore", "psys"]
    assert all(z.max_energy_range_uj == PKG_MAX_UJ for z in zones)
    assert present(laptop)
    assert not present(laptop / "nothing-here")


def test_unwrap_adds_range_plus_one_below_the_previous_reading() -> None:
    assert unwrap_delta_uj(1_000, 4_500, PKG_MAX_UJ) == 3_500
    # 262143000000 -> wrap -> 1000000: (262143328850 - 262143000000) + 1 + 1000000
    assert unwrap_delta_uj(262_143_000_000, 1_000_000, PKG_MAX_UJ) == 1_328_851
    assert unwrap_delta_uj(PKG_MAX_UJ, 0, PKG_MAX_UJ) == 1


def test_energy_counter_and_power_from_consecutive_differences(laptop: Path) -> None:
    clock = FakeClock(10.0)
    sensor = RaplSensor(laptop, zones=["package-0", "psys"], clock=clock)
    info = sensor.info
    assert info.channels == ("package-0.energy_j", "package-0.power_w", "psys.energy_j", "psys.power_w")
    assert info.counters == ("package-0.energy_j", "psys.energy_j")
    assert info.provenance == VENDOR and info.update_interval_s == 0.001
    assert info.precision["package-0.energy_j"] == 1e-6
    set_uj(laptop, PKG, 81_325_014_417 + 12_500_000)  # +12.5 J
    set_uj(laptop, PSYS, 203_125_633_547 + 20_000_000)  # +20 J
    clock.t = 10.5
    s1 = sensor.read()
    assert s1.fresh
    assert s1.values["package-0.energy_j"] == 81_337.514417  # (81325014417 + 12500000) uJ
    assert s1.values["package-0.power_w"] == pytest.approx(25.0)  # 12.5 J / 0.5 s
    assert s1.values["psys.power_w"] == pytest.approx(40.0)
    set_uj(laptop, PKG, 81_325_014_417 + 12_500_000 + 3_000_000)
    set_uj(laptop, PSYS, 203_125_633_547 + 20_000_000 + 5_000_000)
    clock.t = 10.75
    s2 = sensor.read()
    assert s2.values["package-0.power_w"] == pytest.approx(12.0)  # 3 J / 0.25 s
    assert s2.values["psys.power_w"] == pytest.approx(20.0)
    assert s2.values["package-0.energy_j"] - s1.values["package-0.energy_j"] == pytest.approx(3.0)


def test_counter_wrap_keeps_the_energy_channel_increasing(laptop: Path) -> None:
    clock = FakeClock()
    set_uj(laptop, PKG, 262_143_000_000)
    sensor = RaplSensor(laptop, zones=["package-0"], clock=clock)
    set_uj(laptop, PKG, 1_000_000)  # wrapped
    clock.t += 0.1
    sample = sensor.read()
    assert sample.values["package-0.energy_j"] == pytest.approx((262_143_000_000 + 1_328_851) / 1e6, abs=1e-6)
    assert sample.values["package-0.power_w"] == pytest.approx(13.28851)  # 1.328851 J / 0.1 s
    set_uj(laptop, PKG, 3_000_000)
    clock.t += 0.1
    assert sensor.read().values["package-0.energy_j"] == pytest.approx((262_143_000_000 + 3_328_851) / 1e6)


def test_reads_faster_than_the_counter_updates_are_stale(laptop: Path) -> None:
    clock = FakeClock()
    sensor = RaplSensor(laptop, zones=["package-0-core"], clock=clock)
    clock.t += 0.0002  # 0.2 ms, counter unchanged
    first = sensor.read()
    assert not first.fresh and math.isnan(first.values["package-0-core.power_w"])
    set_uj(laptop, CORE, 40_138_592_031 + 5_000)
    clock.t += 0.0008  # 1 ms after the baseline: the power spans the whole millisecond
    second = sensor.read()
    assert second.fresh and second.values["package-0-core.power_w"] == pytest.approx(5.0)  # 5 mJ / 1 ms
    clock.t += 0.0001
    third = sensor.read()
    assert not third.fresh and third.values["package-0-core.power_w"] == pytest.approx(5.0)


def test_permission_error_names_the_file_and_the_udev_rule(laptop: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_read_raw = sysfs.read_raw

    def root_only(path: Path) -> str:
        if path.name == "energy_uj":  # what a non-root user gets on Linux >= 5.10
            raise PermissionError(13, "Permission denied", str(path))
        return real_read_raw(path)

    monkeypatch.setattr(sysfs, "read_raw", root_only)
    assert present(laptop)  # zones are visible, only the counters are closed
    with pytest.raises(SensorError) as err:
        RaplSensor(laptop)
    message = str(err.value)
    assert "intel-rapl:0/energy_uj" in message
    assert 'SUBSYSTEM=="powercap"' in message and "chmod g+r /sys%p/energy_uj" in message
    assert f"group '{rapl.RAPL_GROUP}'" in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_permission_error_from_a_real_mode_0400_file(laptop: Path) -> None:
    os.chmod(laptop / PKG / "energy_uj", 0o000)
    with pytest.raises(SensorError, match="udev"):
        RaplSensor(laptop, zones=["package-0"])


def test_unknown_zone_and_missing_powercap(laptop: Path, tmp_path: Path) -> None:
    with pytest.raises(SensorConfigError, match="dram"):
        RaplSensor(laptop, zones=["package-0-dram"])
    (tmp_path / "bare").mkdir()
    with pytest.raises(SensorError, match="no RAPL zones"):
        RaplSensor(tmp_path / "bare")


# -- #11 item 5: a window's energy is the counter difference, not integrated power ----------

RAPL_TICK_S = 1 / 1024  # the energy-status register updates about every 0.98 ms
RAPL_UNIT_J = 1 / 2**14  # a common RAPL energy unit, 61 uJ
POLL_S = 0.0005  # the daemon polling at 2 kHz


def _load_w(t: float) -> float:
    """A bursty load: 30 W for 30 ms of every 100 ms, 8 W otherwise."""
    return 30.0 if (t % 0.1) < 0.03 else 8.0


def _true_energy_j(t: float) -> float:
    periods, rest = divmod(t, 0.1)
    return periods * (0.03 * 30 + 0.07 * 8) + min(rest, 0.03) * 30 + max(0.0, rest - 0.03) * 8


def test_simulated_rapl_at_2khz_counter_is_exact_and_power_integration_aliases(laptop: Path) -> None:
    """The package counter advances in 61 uJ steps at each ~1 ms register update; the sensor is read at 2 kHz."""
    from sensors.energy import energy_plan, plan_windows

    base_uj = 81_325_014_417

    def register_uj(t: float) -> int:
        tick = math.floor(t / RAPL_TICK_S) * RAPL_TICK_S
        return base_uj + int(math.floor(_true_energy_j(tick) / RAPL_UNIT_J) * RAPL_UNIT_J * 1e6)

    clock = FakeClock(0.0)
    set_uj(laptop, PKG, register_uj(0.0))
    sensor = RaplSensor(laptop, zones=["package-0"], clock=clock)
    rows = []
    for k in range(1, 4000):
        clock.t = k * POLL_S + 0.00013
        set_uj(laptop, PKG, register_uj(clock.t))
        sample = sensor.read()
        if sample.fresh:  # the daemon keeps fresh samples only
            rows.append((sample.t, sample.values["package-0.energy_j"], sample.values["package-0.power_w"]))
    t = np.array([r[0] for r in rows])
    columns = {"package-0.energy_j": np.array([r[1] for r in rows]), "package-0.power_w": np.array([r[2] for r in rows])}
    start, end = 0.2512, 1.7337
    truth = _true_energy_j(end) - _true_energy_j(start)
    info = sensor.info
    plan = energy_plan(info.channels, info.counters, "package-0.power_w", info.interval_averages)
    assert plan.method == "counter"
    counted, = plan_windows(plan, t, columns, [start], [end], interval_s=POLL_S)
    assert counted.energy_method == "counter"
    assert counted.energy_j == pytest.approx(truth, rel=1e-4)  # exact but for one register step at the edges
    integrated, = energy_windows(t, columns["package-0.power_w"], [start], [end], interval_s=POLL_S)
    assert integrated.energy_method == "power_integral"
    assert integrated.energy_j / truth - 1 > 0.005  # polled updates alias: trapezoids over uneven reads overcount (+1.2% here)
