"""Jetson INA3221 rails against fake /sys trees of both driver layouts (IIO ina3221x, hwmon ina3221)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sensors import ina3221
from sensors.base import EMULATED, MEASURED, SensorConfigError, SensorError
from sensors.ina3221 import LAYOUT_HWMON, LAYOUT_IIO, Ina3221Sensor, discover, present
from sensors.sysfs import write_tree

FIXTURES = Path(__file__).parent / "fixtures"
NANO_IIO = "sys/devices/7000c400.i2c/i2c-6/6-0040/iio:device0"
ORIN_HWMON_40 = "sys/devices/platform/bus@0/c240000.i2c/i2c-1/1-0040/hwmon/hwmon3"
ORIN_HWMON_41 = "sys/devices/platform/bus@0/c240000.i2c/i2c-1/1-0041/hwmon/hwmon4"


class FakeClock:
    """A clock the test advances by hand."""

    def __init__(self, t: float = 50.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def build(root: Path, fixture: str) -> Path:
    spec = json.loads((FIXTURES / fixture).read_text())
    return write_tree(root, spec["files"], spec.get("symlinks"))


@pytest.fixture
def nano(tmp_path: Path) -> Path:
    return build(tmp_path, "sysfs_jetson_nano_ina3221x.json")


@pytest.fixture
def orin(tmp_path: Path) -> Path:
    return build(tmp_path, "sysfs_jetson_agx_orin_ina3221_hwmon.json")


def test_iio_layout_is_discovered_through_the_driver_symlink(nano: Path) -> None:
    devices = discover(nano)
    assert [(d.device, d.layout) for d in devices] == [("6-0040", LAYOUT_IIO)]
    rails = devices[0].rails
    assert [(r.name, r.index) for r in rails] == [("POM_5V_IN", 0), ("POM_5V_GPU", 1), ("POM_5V_CPU", 2)]
    assert rails[0].power_file.name == "in_power0_input"
    assert rails[0].voltage_file.name == "in_voltage0_input"
    assert rails[0].current_file.name == "in_current0_input"
    assert devices[0].update_interval_s == pytest.approx(0.0066)  # 3 ch x 1 sample x (1.1 + 1.1) ms
    assert present(nano)


def test_iio_rails_read_the_drivers_mw_mv_ma_exactly(nano: Path) -> None:
    sensor = Ina3221Sensor(nano, clock=FakeClock())
    info = sensor.info
    assert info.kind == "ina3221" and info.provenance == MEASURED
    assert info.channels[:3] == ("POM_5V_IN.power_w", "POM_5V_IN.bus_v", "POM_5V_IN.current_a")
    assert len(info.channels) == 9
    assert info.precision["POM_5V_IN.power_w"] == 0.001
    assert info.precision["POM_5V_GPU.current_a"] == 0.001
    sample = sensor.read()
    assert sample.t == 50.0
    # the driver's in_power (6248 mW) is used as is, not 5.072 V x 1.232 A = 6.248704 W
    assert sample.values["POM_5V_IN.power_w"] == 6.248
    assert sample.values["POM_5V_IN.bus_v"] == 5.072
    assert sample.values["POM_5V_IN.current_a"] == 1.232
    assert sample.values["POM_5V_GPU.power_w"] == 0.4
    assert sample.values["POM_5V_CPU.bus_v"] == 5.064
    assert sample.values["POM_5V_CPU.current_a"] == 0.395


def test_hwmon_layout_skips_not_connected_and_sum_channels(orin: Path) -> None:
    devices = discover(orin)
    assert [(d.device, d.layout) for d in devices] == [("1-0040", LAYOUT_HWMON), ("1-0041", LAYOUT_HWMON)]
    assert [r.name for r in devices[0].rails] == ["VDD_GPU_SOC", "VDD_CPU_CV", "VIN_SYS_5V0"]
    assert [(r.name, r.index) for r in devices[1].rails] == [("VDDQ_VDD2_1V8AO", 2)]
    assert devices[1].rails[0].voltage_file.name == "in2_input"
    assert devices[1].rails[0].current_file.name == "curr2_input"
    assert devices[1].rails[0].power_file is None
    # update_interval files: 7 ms and 14 ms
    assert devices[0].update_interval_s == pytest.approx(0.007)
    assert devices[1].update_interval_s == pytest.approx(0.014)


def test_hwmon_power_is_bus_voltage_times_current(orin: Path) -> None:
    sensor = Ina3221Sensor(orin, clock=FakeClock())
    assert sensor.info.update_interval_s == pytest.approx(0.014)  # the slowest chip in use
    values = sensor.read().values
    # 19104 mV x 154 mA = 2 942 016 uW
    assert values["VDD_GPU_SOC.power_w"] == 2.942016
    assert values["VDD_GPU_SOC.bus_v"] == 19.104
    assert values["VDD_GPU_SOC.current_a"] == 0.154
    assert values["VDD_CPU_CV.power_w"] == 0.802368  # 19104 x 42
    assert values["VIN_SYS_5V0.power_w"] == 3.623368  # 4984 x 727
    assert values["VDDQ_VDD2_1V8AO.power_w"] == 0.504192  # 4992 x 101
    assert not any(name.startswith("NC") or "sum" in name for name in values)
    # quantisation of V x I at open: 1 mA x 19.104 V + 1 mV x 0.154 A
    assert sensor.info.precision["VDD_GPU_SOC.power_w"] == pytest.approx(0.019258)


def test_rail_selection_and_unknown_rail(orin: Path) -> None:
    sensor = Ina3221Sensor(orin, rails=["VIN_SYS_5V0"], clock=FakeClock())
    assert sensor.info.channels == ("VIN_SYS_5V0.power_w", "VIN_SYS_5V0.bus_v", "VIN_SYS_5V0.current_a")
    assert sensor.info.update_interval_s == pytest.approx(0.007)  # only chip 1-0040 in use
    with pytest.raises(SensorConfigError, match="VDD_NOPE"):
        Ina3221Sensor(orin, rails=["VDD_NOPE"])


def test_disabled_unlabelled_and_duplicate_channels(orin: Path) -> None:
    chip41 = orin / ORIN_HWMON_41
    (chip41 / "in1_label").unlink()  # an enabled channel without a label gets a generated name
    (chip41 / "in3_label").write_text("VDD_CPU_CV\n")  # the same label on two chips
    (chip41 / "in2_enable").write_text("0\n")  # a disabled channel is not a rail
    (chip41 / "update_interval").write_text("0\n")  # 0 ms = minimum conversion (140 us)
    names = [r.name for r in discover(orin)[1].rails]
    assert names == ["ch1@1-0041", "VDD_CPU_CV"]
    # two enabled channels x 2 samples x (140 + 140) us
    assert discover(orin)[1].update_interval_s == pytest.approx(2 * 2 * 280e-6)
    sensor = Ina3221Sensor(orin, clock=FakeClock())
    assert "VDD_CPU_CV@1-0040.power_w" in sensor.info.channels
    assert "VDD_CPU_CV@1-0041.power_w" in sensor.info.channels


def test_staleness_follows_value_changes_and_the_update_interval(nano: Path) -> None:
    clock = FakeClock()
    sensor = Ina3221Sensor(nano, clock=clock)
    assert sensor.read().fresh
    clock.t += 0.001  # 1 ms later, nothing changed: no new conversion yet
    assert not sensor.read().fresh
    (nano / NANO_IIO / "in_power0_input").write_text("7000\n")
    clock.t += 0.001
    sample = sensor.read()
    assert sample.fresh and sample.values["POM_5V_IN.power_w"] == 7.0
    clock.t += 0.0066  # a whole update interval: a constant value is still a new conversion
    assert sensor.read().fresh


def test_missing_files_give_sensor_errors_naming_them(nano: Path, tmp_path: Path) -> None:
    sensor = Ina3221Sensor(nano, clock=FakeClock())
    (nano / NANO_IIO / "in_current1_input").unlink()
    with pytest.raises(SensorError, match="in_current1_input"):
        sensor.read()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not present(empty) and discover(empty) == []
    with pytest.raises(SensorError, match="no INA3221 rails"):
        Ina3221Sensor(empty)


def test_emulated_flag_and_interval_override(nano: Path) -> None:
    sensor = Ina3221Sensor(nano, emulated=True, update_interval_s=0.43, clock=FakeClock())
    assert sensor.info.provenance == EMULATED
    assert sensor.info.update_interval_s == 0.43
    assert sensor.info.details["update_interval_source"] == "given"
    assert ina3221.KIND == sensor.info.kind
