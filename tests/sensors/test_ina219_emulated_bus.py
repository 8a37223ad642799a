"""The real INA219 driver against the emulated register map: readings, staleness, overflow, I2C faults."""

from __future__ import annotations

import errno

import pytest

from sensors.base import SensorConfigError, SensorError
from sensors.ina219.driver import INA219, INA219Sensor
from sensors.ina219.emulator import EmulatedI2CBus, EmulatedINA219, constant, square_power
from sensors.ina219.registers import REG_CALIBRATION, REG_CONFIG, Calibration, Config


class FakeClock:
    """A clock the test advances by hand."""

    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def rig(waveform, shunt_ohms=0.1, address=0x40, timing=None, **sensor_kwargs):
    """A chip on a bus, instantaneous unless ``timing`` is given (register semantics; bus time: test_ina219_read_race)."""
    clock = FakeClock()
    chip = EmulatedINA219(waveform, shunt_ohms=shunt_ohms, clock=clock)
    bus = EmulatedI2CBus({address: chip}, timing=timing, clock=clock, advance=clock.advance)
    sensor = INA219Sensor(bus, address=address, shunt_ohms=shunt_ohms, clock=clock, **sensor_kwargs)
    return clock, chip, bus, sensor


def test_configuration_and_calibration_land_in_the_registers():
    clock, chip, bus, sensor = rig(constant(5.0, 1.0), rate_hz=2000)
    assert chip.read_register(REG_CALIBRATION) == 4096
    config = Config.decode(chip.read_register(REG_CONFIG))
    assert (config.bus_adc.label, config.shunt_adc.label) == ("10-bit", "11-bit")
    assert sensor.info.update_interval_s == pytest.approx(424e-6)
    assert sensor.info.details["calibration"] == 4096


@pytest.mark.parametrize("bus_range, pga, volts, amps", [(32, 8, 12.0, 2.5), (16, 4, 5.1, 1.2), (16, 2, 3.3, 0.6), (32, 1, 19.0, 0.3)])
def test_readings_match_the_waveform_within_one_step(bus_range, pga, volts, amps):
    clock, chip, bus, sensor = rig(constant(volts, amps), max_expected_a=amps * 1.2, bus_range_v=bus_range, pga_divisor=pga, rate_hz=500)
    clock.advance(0.01)
    sample = sensor.read()
    precision = sensor.info.precision
    assert sample.fresh
    assert sample.values["bus_v"] == pytest.approx(volts, abs=precision["bus_v"])
    assert sample.values["current_a"] == pytest.approx(amps, abs=precision["current_a"])
    assert sample.values["shunt_v"] == pytest.approx(amps * 0.1, abs=precision["shunt_v"])
    assert sample.values["power_w"] == pytest.approx(volts * amps, rel=0.01, abs=2 * precision["power_w"])


def test_polling_faster_than_the_conversion_rate_returns_stale_values():
    clock, chip, bus, sensor = rig(square_power(1.0, 6.0, period_s=0.004, t0=100.0), rate_hz=900)  # 12-bit: 1.064 ms
    period = sensor.info.update_interval_s
    clock.advance(period * 1.5)
    first = sensor.read()
    clock.advance(period * 0.2)
    stale = sensor.read()
    assert first.fresh and not stale.fresh
    assert stale.values == first.values
    clock.advance(period)
    assert sensor.read().fresh


def test_reading_power_clears_conversion_ready_and_writing_config_restarts():
    clock, chip, bus, sensor = rig(constant(5.0, 1.0), rate_hz=900)
    device = sensor.device
    clock.advance(0.005)
    assert device.read().conversion_ready
    assert not device.read().conversion_ready
    clock.advance(0.005)
    device.write_register(REG_CONFIG, device.config.encode())
    assert not device.read().conversion_ready  # no conversion completed since the restart
    clock.advance(device.config.conversion_period_s * 1.01)
    assert device.read().conversion_ready


def test_square_wave_is_followed_conversion_by_conversion():
    clock, chip, bus, sensor = rig(square_power(1.0, 6.0, period_s=0.02, t0=100.0, supply_v=5.0), rate_hz=500)
    values = []
    for _ in range(40):
        clock.advance(0.002)
        values.append(sensor.read().values["power_w"])
    assert min(values) == pytest.approx(1.0, abs=0.02)
    assert max(values) == pytest.approx(6.0, abs=0.05)


def test_math_overflow_sets_ovf_and_blanks_current_and_power():
    # 3 A through 0.1 ohm with a calibration for 1 A: current register overflows.
    clock = FakeClock()
    chip = EmulatedINA219(constant(5.0, 3.0), clock=clock)
    bus = EmulatedI2CBus({0x40: chip})
    device = INA219(bus)
    device.configure(Config(), Calibration.for_shunt(0.1, 1.0, current_lsb_a=40e-6))
    clock.advance(0.01)
    reading = device.read()
    assert reading.overflow and reading.conversion_ready
    assert chip.signed_current_register() == 32767  # clamped by the chip
    assert reading.current_a != reading.current_a and reading.power_w != reading.power_w  # NaN: blanked


def test_forced_overflow_is_counted_by_the_sensor():
    clock, chip, bus, sensor = rig(constant(5.0, 1.0), rate_hz=900)
    chip.force_overflow = True
    clock.advance(0.01)
    sample = sensor.read()
    assert sensor.overflows == 1
    assert sample.values["power_w"] != sample.values["power_w"]  # NaN
    assert sample.values["bus_v"] == pytest.approx(5.0, abs=0.01)


def test_shunt_beyond_the_pga_range_saturates():
    clock = FakeClock()
    chip = EmulatedINA219(constant(5.0, 1.0), clock=clock)  # 100 mV across the shunt
    device = INA219(EmulatedI2CBus({0x40: chip}))
    device.configure(Config(pga_divisor=1), Calibration.for_shunt(0.1, 0.4))  # +-40 mV range
    clock.advance(0.01)
    assert device.read().shunt_v == pytest.approx(0.040)


def test_two_chips_on_one_bus():
    clock = FakeClock()
    bus = EmulatedI2CBus()
    bus.attach(0x40, EmulatedINA219(constant(5.0, 1.0), clock=clock))
    bus.attach(0x41, EmulatedINA219(constant(12.0, 0.5), clock=clock))
    first = INA219Sensor(bus, 0x40, rate_hz=900, clock=clock)
    second = INA219Sensor(bus, 0x41, rate_hz=900, clock=clock)
    clock.advance(0.01)
    assert first.read().values["bus_v"] == pytest.approx(5.0, abs=0.01)
    assert second.read().values["bus_v"] == pytest.approx(12.0, abs=0.01)


@pytest.mark.parametrize("kind, code", [("eio", errno.EIO), ("timeout", errno.ETIMEDOUT)])
def test_i2c_errors_become_sensor_errors_and_the_next_read_recovers(kind, code):
    clock, chip, bus, sensor = rig(constant(5.0, 1.0), rate_hz=900)
    clock.advance(0.01)
    bus.fail_next(1, kind)
    with pytest.raises(SensorError) as caught:
        sensor.read()
    assert caught.value.errno == code
    assert sensor.read().values["bus_v"] == pytest.approx(5.0, abs=0.01)


def test_missing_device_is_reported():
    bus = EmulatedI2CBus()
    with pytest.raises(SensorError, match="0x44"):
        INA219Sensor(bus, address=0x44)


def test_seeded_error_rate_is_reproducible():
    def failures(seed):
        clock, chip, bus, sensor = rig(constant(5.0, 1.0), rate_hz=900)
        bus.error_rate, bus._rng = 0.1, __import__("numpy").random.default_rng(seed)
        pattern = []
        for _ in range(200):
            try:
                sensor.read()
                pattern.append(0)
            except SensorError:
                pattern.append(1)
        return pattern

    assert failures(3) == failures(3)
    assert 5 <= sum(failures(3)) <= 40  # 10% of 200-400 transactions (a stale read is one, a fresh one two)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"rate_hz": 9000}, "cannot deliver 9000 Hz"),
        ({"max_expected_a": 5.0}, r"5.0 A through 0.1 ohm drops 0.500 V"),
        ({"address": 0x20}, "0x40..0x4F"),
        ({"rate_hz": 900, "bus_adc": "12-bit", "shunt_adc": "12-bit"}, "slower than the requested 900 Hz"),
        ({"rate_hz": 2000}, r"cannot deliver 2000 Hz on 100 kHz I2C.*maximum 1030 Hz"),
        ({"rate_hz": 1000, "bus_clock_hz": 400e3}, "emulated bus runs at 100000 Hz"),
    ],
)
def test_impossible_configurations_are_refused(kwargs, message):
    bus = EmulatedI2CBus({0x40: EmulatedINA219(constant(5.0, 1.0))})
    with pytest.raises(SensorConfigError, match=message):
        INA219Sensor(bus, **kwargs)


def test_configuration_is_retried_when_a_transaction_fails():
    clock = FakeClock()
    bus = EmulatedI2CBus()
    bus.attach(0x40, EmulatedINA219(constant(5.0, 1.0), clock=clock))
    bus.fail_next(3, "eio")  # a noisy bus at start-up: the first three transactions fail
    sensor = INA219Sensor(bus, 0x40, rate_hz=900, clock=clock)
    clock.advance(0.01)
    assert sensor.read().values["bus_v"] == pytest.approx(5.0, abs=0.01)
    bus.fail_next(10_000, "eio")  # a bus that never answers: refused, saying how often it was tried
    with pytest.raises(SensorError, match="configuration tried 5 times") as caught:
        INA219Sensor(bus, 0x40, rate_hz=900, clock=clock)
    assert caught.value.errno == errno.EIO
