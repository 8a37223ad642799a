"""INA219 register arithmetic against the datasheet (SBOS448)."""

from __future__ import annotations

import pytest

from sensors.base import SensorConfigError
from sensors.ina219.driver import plan_config

from sensors.ina219.registers import (
    ADC_SETTINGS,
    CONFIG_RESET_VALUE,
    MODE_SHUNT_BUS_CONTINUOUS,
    Calibration,
    Config,
    adc_by_label,
    adc_setting,
    choose_adc_for_window,
    slowest_period_s,
    round_up_lsb,
    to_signed16,
    to_unsigned16,
)


def test_datasheet_worked_calibration_example():
    """32 V, +-320 mV, 0.1 ohm shunt, 2 A expected: LSB 100 uA, Cal 4096, power LSB 2 mW."""
    minimum_lsb = 2.0 / 32767
    assert minimum_lsb == pytest.approx(61.035e-6, rel=1e-4)
    calibration = Calibration.for_shunt(0.1, 2.0, current_lsb_a=100e-6)
    assert calibration.register == 4096
    assert calibration.power_lsb_w == pytest.approx(2e-3)
    assert calibration.max_current_a == pytest.approx(3.2767)


@pytest.mark.parametrize(
    "shunt, max_a, lsb, register",
    [
        (0.1, 3.2, 100e-6, 4096),  # Adafruit's 32V_2A setting uses the same numbers
        (0.1, 1.0, 40e-6, 10240),  # 32V_1A
        (0.1, 0.4, 50e-6, 8192),  # 16V_400mA
    ],
)
def test_known_calibrations(shunt, max_a, lsb, register):
    assert Calibration.for_shunt(shunt, max_a, current_lsb_a=lsb).register == register


def test_lsb_rounds_up_to_a_convenient_value():
    assert round_up_lsb(61.035e-6) == pytest.approx(100e-6)
    assert round_up_lsb(97.7e-6) == pytest.approx(100e-6)
    assert round_up_lsb(1.1e-4) == pytest.approx(2e-4)
    assert round_up_lsb(3e-5) == pytest.approx(5e-5)
    assert Calibration.for_shunt(0.1, 3.2).current_lsb_a == pytest.approx(100e-6)


def test_calibration_refuses_impossible_values():
    with pytest.raises(ValueError, match="shunt resistance must be positive"):
        Calibration.for_shunt(0.0, 1.0)
    with pytest.raises(ValueError, match="below the minimum"):
        Calibration.for_shunt(0.1, 2.0, current_lsb_a=10e-6)
    with pytest.raises(ValueError, match="calibration .* out of range"):
        Calibration.for_shunt(0.0001, 0.001)


def test_reset_value_decodes_to_datasheet_defaults():
    config = Config.decode(CONFIG_RESET_VALUE)
    assert config.bus_range_v == 32
    assert config.pga_divisor == 8
    assert config.bus_adc.label == "12-bit" and config.shunt_adc.label == "12-bit"
    assert config.mode == MODE_SHUNT_BUS_CONTINUOUS
    assert config.encode() == CONFIG_RESET_VALUE
    assert config.shunt_range_v == 0.320


@pytest.mark.parametrize("bus_range", [16, 32])
@pytest.mark.parametrize("pga", [1, 2, 4, 8])
@pytest.mark.parametrize("adc", ["9-bit", "12-bit", "12-bit x128"])
def test_config_round_trip(bus_range, pga, adc):
    config = Config(bus_range, pga, adc_by_label(adc), adc_by_label("10-bit"))
    assert Config.decode(config.encode()) == config


def test_adc_codes_and_conversion_times():
    times = {s.label: s.conversion_s for s in ADC_SETTINGS}
    assert times["9-bit"] == 84e-6 and times["10-bit"] == 148e-6
    assert times["11-bit"] == 276e-6 and times["12-bit"] == 532e-6
    assert times["12-bit x2"] == 1.06e-3 and times["12-bit x128"] == 68.10e-3
    assert adc_setting(0b0111).label == "12-bit"  # 0X11
    assert adc_setting(0b1000).label == "12-bit"
    assert adc_setting(0b0100).label == "9-bit"  # 0X00


def test_twelve_bit_power_arrives_every_1_064_ms():
    """DESIGN.md: at 12 bits a fresh power value arrives about every 1.06 ms."""
    assert Config().conversion_period_s == pytest.approx(1.064e-3)


@pytest.mark.parametrize(
    "rate, bus, shunt",
    [
        (2000, "10-bit", "11-bit"),
        (900, "11-bit", "12-bit"),  # 12+12 bits (1.064 ms, 1.170 ms at the slowest) no longer fits 1.111 ms
        (5000, "9-bit", "9-bit"),
        (10, "12-bit x32", "12-bit x128"),
    ],
)
def test_rate_picks_settings_that_deliver_it_even_at_the_slowest_conversion(rate, bus, shunt):
    config = plan_config(rate, timing=None)  # an instantaneous bus: the conversion alone sets the limit
    assert (config.bus_adc.label, config.shunt_adc.label) == (bus, shunt)
    assert slowest_period_s(config.conversion_period_s) <= 1 / rate


def test_window_chooser_refuses_a_window_no_setting_fits():
    with pytest.raises(ValueError, match=r"no ADC setting converts within 150 us"):
        choose_adc_for_window(150e-6)


def test_rate_above_the_adc_maximum_is_refused_with_the_maximum():
    with pytest.raises(SensorConfigError, match=r"cannot deliver 8000 Hz.*maximum 5411 Hz"):
        plan_config(8000, timing=None)


def test_quantisation_steps():
    config = Config(16, 1, adc_by_label("12-bit"), adc_by_label("12-bit"))
    assert config.shunt_step_v == pytest.approx(10e-6)
    assert config.bus_step_v == pytest.approx(4e-3)
    coarse = Config(32, 8, adc_by_label("9-bit"), adc_by_label("9-bit"))
    assert coarse.shunt_step_v == pytest.approx(640e-6)
    assert coarse.bus_step_v == pytest.approx(64e-3)


def test_signed_conversions():
    assert to_signed16(0xFFFF) == -1 and to_signed16(0x7FFF) == 32767
    assert to_unsigned16(-32000) == 0x8300
