"""INA219 register map, configuration fields, ADC timing and calibration arithmetic.

Everything here is from the TI INA219 datasheet (SBOS448): register addresses and
reset value, the configuration register's fields (BRNG, PG, BADC, SADC, MODE), ADC
conversion times per resolution / averaging setting, the register LSBs (shunt 10 uV,
bus 4 mV with CNVR in bit 1 and OVF in bit 0), and the calibration equations::

    Current_LSB = Max_Expected_I / 2**15           (rounded up to a convenient value)
    Cal         = trunc(0.04096 / (Current_LSB * R_shunt))
    Power_LSB   = 20 * Current_LSB
    Current     = Shunt_register * Cal / 4096       (computed by the chip)
    Power       = Current_register * Bus_register / 5000

The driver and the emulator share this module, so an arithmetic mistake shows up as
a disagreement with the datasheet's worked example in the tests, not as silent
agreement between two copies.

ADC quantisation (a modelling choice, used for the precision that goes into a trace
header): the register LSB stays 10 uV / 4 mV, but the ADC step is coarser at lower
resolution and larger ranges: ``10 uV * pga_divisor * 2**(12 - bits)`` for the shunt
(12-bit at +-40 mV resolves 10 uV) and ``4 mV * (fsr / 16 V) * 2**(12 - bits)`` for
the bus. Averaging modes quantise like 12-bit samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Register addresses.
REG_CONFIG = 0x00
REG_SHUNT_VOLTAGE = 0x01
REG_BUS_VOLTAGE = 0x02
REG_POWER = 0x03
REG_CURRENT = 0x04
REG_CALIBRATION = 0x05
REGISTERS = (REG_CONFIG, REG_SHUNT_VOLTAGE, REG_BUS_VOLTAGE, REG_POWER, REG_CURRENT, REG_CALIBRATION)

CONFIG_RESET_VALUE = 0x399F  # 32 V range, /8 gain, 12-bit bus and shunt, shunt+bus continuous
CONFIG_RESET_BIT = 0x8000

SHUNT_LSB_V = 10e-6  # shunt voltage register LSB
BUS_LSB_V = 4e-3  # bus voltage register LSB (bits 15..3)
BUS_CNVR_BIT = 0x0002  # conversion ready
BUS_OVF_BIT = 0x0001  # math overflow (current or power out of range)
CALIBRATION_SCALE = 0.04096  # datasheet constant of the calibration equation
CURRENT_DIVISOR = 4096  # Current = Shunt * Cal / 4096
POWER_DIVISOR = 5000  # Power = Current * Bus / 5000
POWER_LSB_PER_CURRENT_LSB = 20
# The datasheet gives typical and maximum conversion times (12-bit: 532 typ, 586 max us): the
# chip's oscillator may convert up to ~10% slower than the typical figures the table holds.
CONVERSION_TIME_TOLERANCE = 0.10

# Bus voltage range (BRNG, bit 13): full-scale volts.
BUS_RANGES_V = {16: 0, 32: 1}

# PGA gain (PG, bits 12..11): divisor -> (code, full-scale shunt volts).
PGA = {1: (0b00, 0.040), 2: (0b01, 0.080), 4: (0b10, 0.160), 8: (0b11, 0.320)}

# Operating modes (MODE, bits 2..0).
MODE_POWER_DOWN = 0b000
MODE_SHUNT_TRIGGERED = 0b001
MODE_BUS_TRIGGERED = 0b010
MODE_SHUNT_BUS_TRIGGERED = 0b011
MODE_ADC_OFF = 0b100
MODE_SHUNT_CONTINUOUS = 0b101
MODE_BUS_CONTINUOUS = 0b110
MODE_SHUNT_BUS_CONTINUOUS = 0b111


@dataclass(frozen=True)
class AdcSetting:
    """One BADC/SADC setting: its 4-bit code, resolution, samples averaged and conversion time."""

    code: int
    bits: int
    samples: int
    conversion_s: float

    @property
    def label(self) -> str:
        """Human-readable setting, e.g. '12-bit' or '12-bit x16'."""
        return f"{self.bits}-bit" if self.samples == 1 else f"12-bit x{self.samples}"


# Datasheet table of ADC settings (codes 0X00..0X11 are single conversions; 1000 = 12-bit).
ADC_SETTINGS = (
    AdcSetting(0b0000, 9, 1, 84e-6),
    AdcSetting(0b0001, 10, 1, 148e-6),
    AdcSetting(0b0010, 11, 1, 276e-6),
    AdcSetting(0b0011, 12, 1, 532e-6),
    AdcSetting(0b1001, 12, 2, 1.06e-3),
    AdcSetting(0b1010, 12, 4, 2.13e-3),
    AdcSetting(0b1011, 12, 8, 4.26e-3),
    AdcSetting(0b1100, 12, 16, 8.51e-3),
    AdcSetting(0b1101, 12, 32, 17.02e-3),
    AdcSetting(0b1110, 12, 64, 34.05e-3),
    AdcSetting(0b1111, 12, 128, 68.10e-3),
)


def adc_setting(code: int) -> AdcSetting:
    """Decode a 4-bit BADC/SADC field (0b0100..0b0111 alias 0b0000..0b0011; 0b1000 is 12-bit)."""
    code &= 0xF
    if code & 0b1000 == 0:
        code &= 0b0011
    elif code == 0b1000:
        code = 0b0011
    return next(s for s in ADC_SETTINGS if s.code == code)


def adc_by_label(label: str) -> AdcSetting:
    """An ADC setting from '9-bit'..'12-bit' or '12-bit x2'..'12-bit x128'."""
    for setting in ADC_SETTINGS:
        if setting.label == label:
            return setting
    raise ValueError(f"unknown ADC setting {label!r} (choose from {', '.join(s.label for s in ADC_SETTINGS)})")


@dataclass(frozen=True)
class Config:
    """The configuration register's fields."""

    bus_range_v: int = 32
    pga_divisor: int = 8
    bus_adc: AdcSetting = ADC_SETTINGS[3]
    shunt_adc: AdcSetting = ADC_SETTINGS[3]
    mode: int = MODE_SHUNT_BUS_CONTINUOUS

    def encode(self) -> int:
        """The 16-bit register value."""
        if self.bus_range_v not in BUS_RANGES_V:
            raise ValueError(f"bus range must be 16 or 32 V, got {self.bus_range_v}")
        if self.pga_divisor not in PGA:
            raise ValueError(f"PGA divisor must be 1, 2, 4 or 8, got {self.pga_divisor}")
        return (
            BUS_RANGES_V[self.bus_range_v] << 13
            | PGA[self.pga_divisor][0] << 11
            | self.bus_adc.code << 7
            | self.shunt_adc.code << 3
            | (self.mode & 0b111)
        )

    @classmethod
    def decode(cls, value: int) -> "Config":
        """Fields of a 16-bit register value."""
        bus_range = 32 if value >> 13 & 1 else 16
        pga_code = value >> 11 & 0b11
        divisor = next(d for d, (code, _) in PGA.items() if code == pga_code)
        return cls(bus_range, divisor, adc_setting(value >> 7 & 0xF), adc_setting(value >> 3 & 0xF), value & 0b111)

    @property
    def shunt_range_v(self) -> float:
        """Full-scale shunt voltage of the PGA setting."""
        return PGA[self.pga_divisor][1]

    @property
    def conversion_period_s(self) -> float:
        """Time between fresh results in shunt+bus continuous mode (both conversions in turn)."""
        shunt = self.shunt_adc.conversion_s if self.mode & 0b001 else 0.0
        bus = self.bus_adc.conversion_s if self.mode & 0b010 else 0.0
        return shunt + bus

    @property
    def shunt_step_v(self) -> float:
        """ADC quantisation step of the shunt voltage (see module docstring)."""
        return SHUNT_LSB_V * self.pga_divisor * 2 ** (12 - self.shunt_adc.bits)

    @property
    def bus_step_v(self) -> float:
        """ADC quantisation step of the bus voltage (see module docstring)."""
        return BUS_LSB_V * (self.bus_range_v / 16) * 2 ** (12 - self.bus_adc.bits)


@dataclass(frozen=True)
class Calibration:
    """Calibration register value and the LSBs it implies for a shunt."""

    shunt_ohms: float
    current_lsb_a: float
    register: int

    @property
    def power_lsb_w(self) -> float:
        """Power register LSB: 20 x current LSB."""
        return POWER_LSB_PER_CURRENT_LSB * self.current_lsb_a

    @property
    def max_current_a(self) -> float:
        """Largest current the current register holds before overflow (32767 LSB)."""
        return self.current_lsb_a * 32767

    @classmethod
    def for_shunt(cls, shunt_ohms: float, max_expected_a: float, current_lsb_a: float | None = None) -> "Calibration":
        """Datasheet procedure: Current_LSB from the max expected current, then Cal."""
        if shunt_ohms <= 0:
            raise ValueError(f"shunt resistance must be positive, got {shunt_ohms} ohm")
        if max_expected_a <= 0:
            raise ValueError(f"max expected current must be positive, got {max_expected_a} A")
        minimum_lsb = max_expected_a / 32767
        if current_lsb_a is None:
            current_lsb_a = round_up_lsb(minimum_lsb)
        elif current_lsb_a < minimum_lsb:
            raise ValueError(f"current LSB {current_lsb_a} A is below the minimum {minimum_lsb:.3g} A for {max_expected_a} A")
        register = math.trunc(CALIBRATION_SCALE / (current_lsb_a * shunt_ohms))
        register &= 0xFFFE  # bit 0 (FS0) is not used and reads 0
        if not 0 < register <= 0xFFFE:
            raise ValueError(
                f"calibration {register} out of range for {shunt_ohms} ohm and LSB {current_lsb_a} A "
                "(choose a larger current LSB or shunt)"
            )
        return cls(shunt_ohms, current_lsb_a, register)


def round_up_lsb(minimum_lsb_a: float) -> float:
    """Round a current LSB up to 1, 2 or 5 x 10^k A ("a convenient value", as the datasheet advises)."""
    exponent = math.floor(math.log10(minimum_lsb_a))
    for mantissa in (1, 2, 5, 10):
        candidate = mantissa * 10.0**exponent
        if candidate >= minimum_lsb_a * (1 - 1e-12):
            return float(f"{candidate:.12g}")
    raise AssertionError("unreachable")  # pragma: no cover


def to_signed16(value: int) -> int:
    """Two's complement interpretation of a 16-bit register."""
    return value - 0x10000 if value & 0x8000 else value


def to_unsigned16(value: int) -> int:
    """16-bit two's complement encoding of a signed value."""
    return value & 0xFFFF


def slowest_period_s(period_s: float) -> float:
    """A typical shunt+bus conversion period at the datasheet's maximum conversion times."""
    return period_s * (1 + CONVERSION_TIME_TOLERANCE)


FASTEST_PERIOD_S = ADC_SETTINGS[0].conversion_s * 2  # 9-bit shunt + 9-bit bus, typical


def choose_adc_for_window(window_s: float) -> tuple[AdcSetting, AdcSetting]:
    """(bus, shunt) ADC settings whose shunt+bus conversion completes within ``window_s`` even at the datasheet's slowest.

    Among the settings that fit, prefer the best shunt setting (power follows the
    current), then the best bus setting. Raises ValueError when none fits.
    """
    rank = {s.code: i for i, s in enumerate(ADC_SETTINGS)}
    fits = [(s, b) for s in ADC_SETTINGS for b in ADC_SETTINGS if slowest_period_s(s.conversion_s + b.conversion_s) <= window_s]
    if not fits:
        raise ValueError(
            f"no ADC setting converts within {window_s * 1e6:.0f} us: shunt+bus conversions take up to "
            f"{slowest_period_s(FASTEST_PERIOD_S) * 1e6:.0f} us at 9-bit"
        )
    shunt, bus = max(fits, key=lambda pair: (rank[pair[0].code], rank[pair[1].code]))
    return bus, shunt
