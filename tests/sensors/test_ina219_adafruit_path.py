"""The Adafruit driver, through the smbus2 adapter, reads the same registers as the fast path."""

from __future__ import annotations

import pytest

from sensors.base import SensorConfigError
from sensors.ina219.adafruit_adapter import AdafruitINA219Sensor, SMBusI2C
from sensors.ina219.driver import INA219Sensor
from sensors.ina219.emulator import EmulatedI2CBus, EmulatedINA219, constant


class FakeClock:
    def __init__(self) -> None:
        self.t = 50.0

    def __call__(self) -> float:
        return self.t


def test_both_paths_report_the_same_numbers():
    clock = FakeClock()
    bus = EmulatedI2CBus({0x40: EmulatedINA219(constant(5.1, 0.84), clock=clock)}, timing=None)  # numbers, not bus time
    adafruit = AdafruitINA219Sensor(bus, rate_hz=900, clock=clock)
    clock.t += 0.01
    slow = adafruit.read()
    fast_sensor = INA219Sensor(bus, rate_hz=900, clock=clock)  # same settings rewritten
    clock.t += 0.01
    fast = fast_sensor.read()
    assert slow.fresh and fast.fresh
    for channel in ("bus_v", "power_w"):  # the registers both paths read
        assert slow.values[channel] == pytest.approx(fast.values[channel], rel=1e-9, abs=1e-12), channel
    for channel in ("shunt_v", "current_a"):  # registers there, derived from power / bus on the fast path
        assert slow.values[channel] == pytest.approx(fast.values[channel], abs=fast_sensor.info.precision[channel]), channel
    assert adafruit.info.details["calibration"] == fast_sensor.info.details["calibration"]


def test_adafruit_path_reads_power_only_after_conversion_ready():
    clock = FakeClock()
    chip = EmulatedINA219(constant(5.1, 0.84), clock=clock)
    adafruit = AdafruitINA219Sensor(EmulatedI2CBus({0x40: chip}, timing=None), rate_hz=200, clock=clock)
    clock.t += 0.01
    assert adafruit.read().fresh
    consumed = chip.consumed
    stale = adafruit.read()  # no conversion since: the power register is not read, CNVR not cleared
    assert not stale.fresh and chip.consumed == consumed


def test_adafruit_path_rate_counts_its_seven_transactions():
    bus = EmulatedI2CBus({0x40: EmulatedINA219(constant(5.1, 0.84))})  # 100 kHz
    with pytest.raises(SensorConfigError, match=r"7 register reads.*maximum 294 Hz"):
        AdafruitINA219Sensor(bus, rate_hz=1000)


def test_adapter_scan_finds_the_chips():
    bus = EmulatedI2CBus({0x40: EmulatedINA219(constant(5.0, 1.0)), 0x45: EmulatedINA219(constant(5.0, 1.0))})
    assert SMBusI2C(bus).scan() == [0x40, 0x45]


def test_adapter_lock():
    adapter = SMBusI2C(EmulatedI2CBus())
    assert adapter.try_lock()
    assert not adapter.try_lock()
    adapter.unlock()
    assert adapter.try_lock()
