"""The Adafruit driver, through the smbus2 adapter, reads the same registers as the fast path."""

from __future__ import annotations

import pytest

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
    bus = EmulatedI2CBus({0x40: EmulatedINA219(constant(5.1, 0.84), clock=clock)})
    adafruit = AdafruitINA219Sensor(bus, rate_hz=900, clock=clock)
    clock.t += 0.01
    slow = adafruit.read()
    fast_sensor = INA219Sensor(bus, rate_hz=900, clock=clock)  # same settings rewritten
    clock.t += 0.01
    fast = fast_sensor.read()
    assert slow.fresh and fast.fresh
    for channel in ("bus_v", "shunt_v", "current_a", "power_w"):
        assert slow.values[channel] == pytest.approx(fast.values[channel], rel=1e-9, abs=1e-12), channel
    assert adafruit.info.details["calibration"] == fast_sensor.info.details["calibration"]


def test_adapter_scan_finds_the_chips():
    bus = EmulatedI2CBus({0x40: EmulatedINA219(constant(5.0, 1.0)), 0x45: EmulatedINA219(constant(5.0, 1.0))})
    assert SMBusI2C(bus).scan() == [0x40, 0x45]


def test_adapter_lock():
    adapter = SMBusI2C(EmulatedI2CBus())
    assert adapter.try_lock()
    assert not adapter.try_lock()
    adapter.unlock()
    assert adapter.try_lock()
