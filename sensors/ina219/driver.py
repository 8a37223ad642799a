"""INA219 driver over an SMBus-like bus (smbus2.SMBus on a Pi, the emulated bus in tests).

The fast read path used for sustained sampling reads four registers with one
``read_i2c_block_data`` each: bus voltage (with the conversion-ready and overflow
bits), shunt voltage, current and power. Reading the power register clears CNVR, so
the next read knows whether a new conversion has completed since: a sample whose
CNVR bit was clear is marked ``fresh=False`` (a stale value, the same numbers as the
previous read). Several INA219s on one bus are several drivers on one bus object.

The bus object needs ``read_i2c_block_data(addr, reg, n)`` and
``write_i2c_block_data(addr, reg, data)``; the INA219 sends the most significant byte
first. I2C failures (``OSError``: EIO, EREMOTEIO, timeouts) become ``SensorError``.
"""

from __future__ import annotations

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
    REG_CURRENT,
    REG_POWER,
    REG_SHUNT_VOLTAGE,
    SHUNT_LSB_V,
    AdcSetting,
    Calibration,
    Config,
    adc_by_label,
    choose_adc_for_rate,
    to_signed16,
)

DEFAULT_ADDRESS = 0x40
CHANNELS = ("power_w", "bus_v", "shunt_v", "current_a")


class SMBusLike(Protocol):
    """The part of smbus2.SMBus the driver uses."""

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int) -> list[int]: ...

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: list[int]) -> None: ...


@dataclass(frozen=True)
class Reading:
    """Decoded registers of one read."""

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
        """Write calibration, then configuration, and read both back."""
        self.write_register(REG_CALIBRATION, calibration.register)
        self.write_register(REG_CONFIG, config.encode())
        if self.read_register(REG_CALIBRATION) != calibration.register:
            raise SensorError(f"INA219 {self.address:#04x} did not keep calibration {calibration.register}")
        if self.read_register(REG_CONFIG) != config.encode():
            raise SensorError(f"INA219 {self.address:#04x} did not keep configuration {config.encode():#06x}")
        self.config = config
        self.calibration = calibration

    def read(self) -> Reading:
        """Bus, shunt, current and power (reading power clears the conversion-ready bit)."""
        if self.calibration is None:
            raise SensorConfigError("INA219 is not calibrated: call configure() first")
        bus = self.read_register(REG_BUS_VOLTAGE)
        shunt = to_signed16(self.read_register(REG_SHUNT_VOLTAGE))
        current = to_signed16(self.read_register(REG_CURRENT))
        power = self.read_register(REG_POWER)
        return Reading(
            bus_v=(bus >> 3) * BUS_LSB_V,
            shunt_v=shunt * SHUNT_LSB_V,
            current_a=current * self.calibration.current_lsb_a,
            power_w=power * self.calibration.power_lsb_w,
            conversion_ready=bool(bus & BUS_CNVR_BIT),
            overflow=bool(bus & BUS_OVF_BIT),
        )


def plan_config(
    rate_hz: float | None = None,
    bus_range_v: int = 32,
    pga_divisor: int = 8,
    bus_adc: str | None = None,
    shunt_adc: str | None = None,
) -> Config:
    """A continuous shunt+bus configuration; ADC settings chosen for ``rate_hz`` unless given."""
    try:
        if rate_hz is not None and (bus_adc is None or shunt_adc is None):
            auto_bus, auto_shunt = choose_adc_for_rate(rate_hz)
        else:
            auto_bus = auto_shunt = adc_by_label("12-bit")
        bus_setting: AdcSetting = adc_by_label(bus_adc) if bus_adc else auto_bus
        shunt_setting: AdcSetting = adc_by_label(shunt_adc) if shunt_adc else auto_shunt
        config = Config(bus_range_v, pga_divisor, bus_setting, shunt_setting, MODE_SHUNT_BUS_CONTINUOUS)
        config.encode()
    except ValueError as error:
        raise SensorConfigError(str(error)) from None
    if rate_hz is not None and config.conversion_period_s > 1.0 / rate_hz:
        raise SensorConfigError(
            f"ADC settings bus {bus_setting.label} + shunt {shunt_setting.label} convert every "
            f"{config.conversion_period_s * 1e3:.3f} ms, slower than the requested {rate_hz:g} Hz"
        )
    return config


class INA219Sensor(Sensor):
    """An INA219 on a supply rail as a Sensor: power, bus and shunt voltage, current."""

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
    ) -> None:
        try:
            calibration = Calibration.for_shunt(shunt_ohms, max_expected_a)
        except ValueError as error:
            raise SensorConfigError(str(error)) from None
        config = plan_config(rate_hz, bus_range_v, pga_divisor, bus_adc, shunt_adc)
        if max_expected_a * shunt_ohms > config.shunt_range_v * (1 + 1e-9):
            raise SensorConfigError(
                f"{max_expected_a} A through {shunt_ohms} ohm drops {max_expected_a * shunt_ohms:.3f} V, above the "
                f"+-{config.shunt_range_v * 1e3:.0f} mV range of PGA /{pga_divisor}"
            )
        self.device = INA219(bus, address)
        self.device.configure(config, calibration)
        self.clock = clock
        self.kind = kind
        self._info = SensorInfo(
            kind=kind,
            name=name or f"ina219@{address:#04x}",
            channels=CHANNELS,
            update_interval_s=config.conversion_period_s,
            precision={
                "power_w": calibration.power_lsb_w,
                "current_a": max(calibration.current_lsb_a, config.shunt_step_v / shunt_ohms),
                "shunt_v": config.shunt_step_v,
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
            },
        )
        self.overflows = 0

    @property
    def info(self) -> SensorInfo:
        """Channels, conversion period and LSB-based precision."""
        return self._info

    def read(self) -> Sample:
        """One sample; ``fresh`` is False when no conversion completed since the last read."""
        reading = self.device.read()
        t = self.clock()
        if reading.overflow:
            self.overflows += 1
        values: dict[str, Any] = {
            "power_w": reading.power_w,
            "bus_v": reading.bus_v,
            "shunt_v": reading.shunt_v,
            "current_a": reading.current_a,
        }
        if reading.overflow:
            values = {channel: float("nan") for channel in ("power_w", "current_a")} | {
                "bus_v": reading.bus_v,
                "shunt_v": reading.shunt_v,
            }
        return Sample(t, values, fresh=reading.conversion_ready)

    def close(self) -> None:
        """Close the bus if it has a close method."""
        close = getattr(self.device.bus, "close", None)
        if close is not None:
            close()
