"""INA219 driver over an SMBus-like bus (smbus2.SMBus on a Pi, the emulated bus in tests).

Read order (issue #11, item 3). Each register is its own I2C transaction, and a
conversion may complete between any two of them; reading the power register clears
the conversion-ready bit (CNVR, bus register bit 1). The old order (bus with CNVR,
shunt, current, power) lost conversions: one completing after the bus read was
cleared by the power read and the sample was marked stale (31% of conversions at
1 kHz on a 400 kHz bus). The sampling path now reads **at most two registers**:

1. the bus voltage register alone: CNVR, OVF and the bus voltage. With CNVR clear
   nothing else is read, so a conversion completing later keeps its flag for the next
   poll: the read is stale and costs one transaction;
2. with CNVR set, the power register (this clears CNVR). Power is the chip's own
   product of one conversion's current and bus voltage, so it is self-consistent even
   when a newer conversion completed between the two reads (then its power, not the
   older one's, is delivered: nothing read is thrown away).

Current and shunt voltage are derived: ``current = power / bus``, ``shunt = current x
R_shunt``. This keeps a fresh sample at two transactions, the only order that delivers
1 kHz on the Pi's default 100 kHz bus (two reads of 485 us), at a cost: the power
register is unsigned (reverse current reads positive) and its LSB is 20 current LSBs,
so the derived current resolves ``power_lsb / bus_v`` (0.4 mA at 5 V for a 3.2 A
range; the header's precision is stated at ``DERIVED_PRECISION_BUS_V``).

Rate feasibility (``plan_config``) includes the reads: at ``R`` Hz both reads must fit
in a poll period, and a conversion at the datasheet's slowest must complete between
the power read of one poll and the bus read of the next (``1/R - one read``), so every
poll finds a fresh result. A rate that cannot meet both is refused with the maximum.

Time stamps (``INA219Sensor.read``): a sample is stamped at the estimated end of the
conversion whose power it carries. That conversion is the latest to complete before
the power register was latched, so it ended in ``(latch - slowest period, latch]``,
and after the previous power read (it set CNVR again), and after any bus read that saw
CNVR clear since. With the latch bounded by the reads' start and end times and the
bus clock (the chip latches after three bytes, before the last two), the stamp is the
midpoint of that interval and its half-width, about ``(slowest period + call
overhead) / 2``, is stated in the sensor's details as ``stamp_uncertainty_s``.

Several INA219s on one bus are several drivers on one bus object. The bus object needs
``read_i2c_block_data(addr, reg, n)`` and ``write_i2c_block_data(addr, reg, data)``; the
INA219 sends the most significant byte first. I2C failures (``OSError``: EIO,
EREMOTEIO, timeouts) become ``SensorError``. The bus clock is a setting
(``bus_clock_hz``, 100 kHz by default as on a Pi); an emulated bus states its own.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Protocol

from sensors.base import MEASURED, Clock, Sample, Sensor, SensorConfigError, SensorError, SensorInfo
from sensors.ina219.registers import (
    BUS_CNVR_BIT,
    BUS_LSB_V,
    BUS_OVF_BIT,
    CONFIG_RESET_BIT,
    MODE_SHUNT_BUS_CONTINUOUS,
    REG_BUS_VOLTAGE,
    REG_CALIBRATION,
    REG_CONFIG,
    FASTEST_PERIOD_S,
    REG_POWER,
    AdcSetting,
    Calibration,
    Config,
    adc_by_label,
    choose_adc_for_window,
    slowest_period_s,
)
from sensors.ina219.i2c_timing import (
    FAST_MODE_HZ,
    READ_DATA_BYTES,
    READ_LATCH_BYTES,
    STANDARD_MODE_HZ,
    I2CTiming,
)

DEFAULT_ADDRESS = 0x40
CONFIGURE_ATTEMPTS = 5  # tries of the (idempotent) configuration sequence on a bus that fails transactions
CHANNELS = ("power_w", "bus_v", "shunt_v", "current_a")
DERIVED_PRECISION_BUS_V = 5.0  # bus voltage at which the derived current's resolution is stated (the rig's 5 V boards)
_NAN = float("nan")


@dataclass(frozen=True)
class ReadPlan:
    """How a driver reads one fresh sample: transactions, and how many separate the CNVR gate from the power read."""

    reads_per_sample: int  # register transactions per fresh sample
    gate_to_power: int  # transactions from the bus-register read (CNVR seen) to the power read
    description: str


FAST_READ_PLAN = ReadPlan(2, 1, "bus voltage with CNVR, then power")


def bus_timing(bus: object, bus_clock_hz: float | None = None) -> I2CTiming | None:
    """The bus's timing: an emulated bus states its own; a real one runs at ``bus_clock_hz`` (100 kHz default)."""
    if bus_clock_hz is not None:
        try:
            bus_clock_hz = float(bus_clock_hz)
        except (TypeError, ValueError):
            raise SensorConfigError(f"bus_clock_hz must be a number of Hz, got {bus_clock_hz!r}") from None
    if hasattr(bus, "timing"):
        timing = getattr(bus, "timing")
        if bus_clock_hz is not None and (timing is None or timing.bus_clock_hz != bus_clock_hz):
            stated = "instantaneous" if timing is None else f"at {timing.bus_clock_hz:g} Hz"
            raise SensorConfigError(f"the emulated bus runs {stated}, not at bus_clock_hz={bus_clock_hz:g}")
        return timing
    try:
        return I2CTiming(STANDARD_MODE_HZ if bus_clock_hz is None else bus_clock_hz)
    except ValueError as error:
        raise SensorConfigError(str(error)) from None


class SMBusLike(Protocol):
    """The part of smbus2.SMBus the driver uses."""

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]: ...

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: list[int]) -> None: ...


@dataclass(frozen=True)
class Reading:
    """One read: bus voltage and power from the registers, current and shunt voltage derived (NaN when not read)."""

    bus_v: float
    shunt_v: float
    current_a: float
    power_w: float
    conversion_ready: bool
    overflow: bool


class INA219:
    """Register-level access to one INA219: configure, calibrate, read."""

    def __init__(self, bus: SMBusLike, address: int = DEFAULT_ADDRESS) -> None:
        if not 0x40 <= address <= 0x4F:
            raise SensorConfigError(f"INA219 address must be 0x40..0x4F, got {address:#04x}")
        self.bus = bus
        self.address = address
        self.config = Config()
        self.calibration: Calibration | None = None

    def read_register(self, register: int) -> int:
        """Unsigned 16-bit value of a register (MSB first on the wire)."""
        try:
            high, low = self.bus.read_i2c_block_data(self.address, register, 2)
        except OSError as error:
            raise SensorError(error.errno, f"I2C read of INA219 {self.address:#04x} register {register:#04x}: {error}") from error
        return high << 8 | low

    def write_register(self, register: int, value: int) -> None:
        """Write a 16-bit register."""
        try:
            self.bus.write_i2c_block_data(self.address, register, [value >> 8 & 0xFF, value & 0xFF])
        except OSError as error:
            raise SensorError(error.errno, f"I2C write of INA219 {self.address:#04x} register {register:#04x}: {error}") from error

    def reset(self) -> None:
        """Software reset: all registers back to their power-on values."""
        self.write_register(REG_CONFIG, CONFIG_RESET_BIT)
        self.config = Config()
        self.calibration = None

    def configure(self, config: Config, calibration: Calibration) -> None:
        """Write calibration, then configuration, and read both back; a failed transaction is retried.

        The writes are idempotent, so a transaction that fails on a noisy bus (EIO, a
        timeout) is retried with the whole sequence, up to ``CONFIGURE_ATTEMPTS`` times, as
        the sampling daemon retries reads: one bad transaction must not stop a recording
        before it starts.
        """
        for attempt in range(1, CONFIGURE_ATTEMPTS + 1):
            try:
                self.write_register(REG_CALIBRATION, calibration.register)
                self.write_register(REG_CONFIG, config.encode())
                if self.read_register(REG_CALIBRATION) != calibration.register:
                    raise SensorError(f"INA219 {self.address:#04x} did not keep calibration {calibration.register}")
                if self.read_register(REG_CONFIG) != config.encode():
                    raise SensorError(f"INA219 {self.address:#04x} did not keep configuration {config.encode():#06x}")
                break
            except SensorError as error:
                if attempt == CONFIGURE_ATTEMPTS:
                    message = f"{error.strerror or error} (configuration tried {attempt} times)"
                    raise (SensorError(error.errno, message) if error.errno is not None else SensorError(message)) from error
        self.config = config
        self.calibration = calibration

    def read_bus(self) -> tuple[float, bool, bool]:
        """Bus voltage register: (bus volts, conversion ready, math overflow); leaves CNVR as it is."""
        bus = self.read_register(REG_BUS_VOLTAGE)
        return (bus >> 3) * BUS_LSB_V, bool(bus & BUS_CNVR_BIT), bool(bus & BUS_OVF_BIT)

    def read_power(self) -> float:
        """Power register in watts (reading it clears the conversion-ready bit)."""
        if self.calibration is None:
            raise SensorConfigError("INA219 is not calibrated: call configure() first")
        return self.read_register(REG_POWER) * self.calibration.power_lsb_w

    def read(self) -> Reading:
        """One race-free read: the bus register, then the power register only when CNVR is set (see module docstring)."""
        if self.calibration is None:
            raise SensorConfigError("INA219 is not calibrated: call configure() first")
        bus_v, ready, overflow = self.read_bus()
        if not ready:
            return Reading(bus_v, _NAN, _NAN, _NAN, conversion_ready=False, overflow=overflow)
        return derive(bus_v, self.read_power(), self.calibration.shunt_ohms, overflow)


def derive(bus_v: float, power_w: float, shunt_ohms: float, overflow: bool) -> Reading:
    """A fresh reading from bus voltage and power: current = power / bus, shunt = current x R (NaN on overflow)."""
    if overflow:
        return Reading(bus_v, _NAN, _NAN, _NAN, conversion_ready=True, overflow=True)
    current_a = power_w / bus_v if bus_v > 0 else _NAN
    return Reading(bus_v, current_a * shunt_ohms, current_a, power_w, conversion_ready=True, overflow=False)


def max_rate_hz(timing: I2CTiming | None, plan: ReadPlan = FAST_READ_PLAN) -> float:
    """Highest poll rate at which every poll finds a fresh conversion and the reads fit, Hz."""
    read_s = 0.0 if timing is None else timing.register_read_s
    return 1.0 / max(plan.reads_per_sample * read_s, plan.gate_to_power * read_s + slowest_period_s(FASTEST_PERIOD_S))


def plan_config(
    rate_hz: float | None = None,
    bus_range_v: int = 32,
    pga_divisor: int = 8,
    bus_adc: str | None = None,
    shunt_adc: str | None = None,
    timing: I2CTiming | None = None,
    plan: ReadPlan = FAST_READ_PLAN,
) -> Config:
    """A continuous shunt+bus configuration; ADC settings chosen for ``rate_hz`` and the bus's read time unless given.

    At ``rate_hz`` the plan's reads must fit in one poll period, and a conversion (at
    the datasheet's slowest) must complete between a poll's power read and the next
    poll's bus read, so that every poll is fresh. Refused, naming the maximum, otherwise.
    """
    where = "an instantaneous bus" if timing is None else timing.describe()
    read_s = 0.0 if timing is None else timing.register_read_s
    if rate_hz is not None:
        if not rate_hz > 0:
            raise SensorConfigError(f"sample rate must be positive, got {rate_hz} Hz")
        maximum = max_rate_hz(timing, plan)
        if rate_hz > maximum:
            hint = " (a 400 kHz bus: dtparam=i2c_arm_baudrate=400000 on a Pi)" if timing is not None and timing.bus_clock_hz < FAST_MODE_HZ else ""
            raise SensorConfigError(
                f"the INA219 cannot deliver {rate_hz:g} Hz on {where}: a fresh sample takes {plan.reads_per_sample} register "
                f"reads ({plan.description}) and a shunt+bus conversion of up to "
                f"{slowest_period_s(FASTEST_PERIOD_S) * 1e6:.0f} us must fit between polls; maximum {math.floor(maximum)} Hz{hint}"
            )
    window_s = None if rate_hz is None else 1.0 / rate_hz - plan.gate_to_power * read_s
    try:
        if window_s is not None and (bus_adc is None or shunt_adc is None):
            auto_bus, auto_shunt = choose_adc_for_window(window_s)
        else:
            auto_bus = auto_shunt = adc_by_label("12-bit")
        bus_setting: AdcSetting = adc_by_label(bus_adc) if bus_adc else auto_bus
        shunt_setting: AdcSetting = adc_by_label(shunt_adc) if shunt_adc else auto_shunt
        config = Config(bus_range_v, pga_divisor, bus_setting, shunt_setting, MODE_SHUNT_BUS_CONTINUOUS)
        config.encode()
    except ValueError as error:
        raise SensorConfigError(str(error)) from None
    if window_s is not None and slowest_period_s(config.conversion_period_s) > window_s:
        raise SensorConfigError(
            f"ADC settings bus {bus_setting.label} + shunt {shunt_setting.label} convert every "
            f"{config.conversion_period_s * 1e3:.3f} ms ({slowest_period_s(config.conversion_period_s) * 1e3:.3f} ms at the "
            f"datasheet's slowest), longer than the {window_s * 1e3:.3f} ms between polls' reads on {where}: "
            f"slower than the requested {rate_hz:g} Hz"
        )
    return config


class ConversionStamp:
    """Estimates each fresh sample's conversion end from the times around its reads (see module docstring)."""

    def __init__(self, config: Config, timing: I2CTiming | None) -> None:
        self.slowest_period_s = slowest_period_s(config.conversion_period_s)
        self.latch_after_s = 0.0 if timing is None else timing.wire_s(READ_LATCH_BYTES)  # earliest latch after a read starts
        self.latch_before_s = 0.0 if timing is None else timing.wire_s(READ_DATA_BYTES)  # latest latch before a read ends
        overhead = 0.0 if timing is None else timing.ioctl_overhead_s
        self.uncertainty_s = (self.slowest_period_s + overhead) / 2  # steady-state half-width
        self._after = -math.inf  # the next delivered conversion ends after this

    def no_conversion(self, bus_read_start: float) -> None:
        """A bus read saw CNVR clear: no conversion completed before its latch."""
        self._after = max(self._after, bus_read_start + self.latch_after_s)

    def fresh(self, power_read_start: float, power_read_end: float) -> float:
        """Stamp of the conversion a power read returned: the midpoint of the interval it must have ended in."""
        upper = power_read_end - self.latch_before_s
        lower = max(self._after, power_read_start + self.latch_after_s - self.slowest_period_s)
        self._after = power_read_start + self.latch_after_s  # the power read cleared CNVR at its latch
        return (lower + max(lower, upper)) / 2


class INA219Sensor(Sensor):
    """An INA219 on a supply rail as a Sensor: power, bus voltage, and (derived) current and shunt voltage."""

    kind = "ina219"

    def __init__(
        self,
        bus: SMBusLike,
        address: int = DEFAULT_ADDRESS,
        shunt_ohms: float = 0.1,
        max_expected_a: float = 3.2,
        rate_hz: float | None = 1000.0,
        bus_range_v: int = 32,
        pga_divisor: int = 8,
        bus_adc: str | None = None,
        shunt_adc: str | None = None,
        name: str | None = None,
        clock: Clock = time.monotonic,
        provenance: str = MEASURED,
        kind: str = "ina219",
        bus_clock_hz: float | None = None,
    ) -> None:
        try:
            calibration = Calibration.for_shunt(shunt_ohms, max_expected_a)
        except ValueError as error:
            raise SensorConfigError(str(error)) from None
        timing = bus_timing(bus, bus_clock_hz)
        config = plan_config(rate_hz, bus_range_v, pga_divisor, bus_adc, shunt_adc, timing=timing)
        if max_expected_a * shunt_ohms > config.shunt_range_v * (1 + 1e-9):
            raise SensorConfigError(
                f"{max_expected_a} A through {shunt_ohms} ohm drops {max_expected_a * shunt_ohms:.3f} V, above the "
                f"+-{config.shunt_range_v * 1e3:.0f} mV range of PGA /{pga_divisor}"
            )
        self.device = INA219(bus, address)
        self.device.configure(config, calibration)
        self.clock = clock
        self.kind = kind
        self.timing = timing
        self.stamp = ConversionStamp(config, timing)
        current_precision = max(
            calibration.current_lsb_a, config.shunt_step_v / shunt_ohms, calibration.power_lsb_w / DERIVED_PRECISION_BUS_V
        )
        self._info = SensorInfo(
            kind=kind,
            name=name or f"ina219@{address:#04x}",
            channels=CHANNELS,
            update_interval_s=config.conversion_period_s,
            precision={
                "power_w": calibration.power_lsb_w,
                "current_a": current_precision,
                "shunt_v": current_precision * shunt_ohms,
                "bus_v": config.bus_step_v,
            },
            provenance=provenance,
            details={
                "address": address,
                "shunt_ohms": shunt_ohms,
                "calibration": calibration.register,
                "current_lsb_a": calibration.current_lsb_a,
                "power_lsb_w": calibration.power_lsb_w,
                "config_register": config.encode(),
                "bus_range_v": config.bus_range_v,
                "pga_divisor": config.pga_divisor,
                "bus_adc": config.bus_adc.label,
                "shunt_adc": config.shunt_adc.label,
                "bus_clock_hz": None if timing is None else timing.bus_clock_hz,
                "register_read_s": 0.0 if timing is None else timing.register_read_s,
                "max_rate_hz": max_rate_hz(timing),
                "read_plan": f"{FAST_READ_PLAN.description}; current = power / bus, shunt = current x R",
                "precision_at_bus_v": DERIVED_PRECISION_BUS_V,
                "stamp": "conversion end, midpoint of the interval bounded by the reads",
                "stamp_uncertainty_s": self.stamp.uncertainty_s,
            },
        )
        self.overflows = 0
        self._last_values: dict[str, float] = {channel: _NAN for channel in CHANNELS}

    @property
    def info(self) -> SensorInfo:
        """Channels, conversion period, LSB-based precision, bus timing and stamp uncertainty."""
        return self._info

    def read(self) -> Sample:
        """One sample; ``fresh`` is False (the previous values) when no conversion completed since the last one."""
        device = self.device
        bus_start = self.clock()
        bus_v, ready, overflow = device.read_bus()
        if not ready:
            self.stamp.no_conversion(bus_start)
            return Sample(self.clock(), self._last_values, fresh=False)
        power_start = self.clock()
        power_w = device.read_power()
        t = self.stamp.fresh(power_start, self.clock())
        reading = derive(bus_v, power_w, device.calibration.shunt_ohms, overflow)  # type: ignore[union-attr]
        if reading.overflow:
            self.overflows += 1
        values: dict[str, Any] = {
            "power_w": reading.power_w,
            "bus_v": reading.bus_v,
            "shunt_v": reading.shunt_v,
            "current_a": reading.current_a,
        }
        self._last_values = values
        return Sample(t, values, fresh=True)

    def close(self) -> None:
        """Close the bus if it has a close method."""
        close = getattr(self.device.bus, "close", None)
        if close is not None:
            close()
