"""adafruit-circuitpython-ina219 on any smbus2-like bus, through a small busio.I2C adapter.

Blinka's board detection fails off a Raspberry Pi, so this never imports ``board`` or
``busio``: :class:`SMBusI2C` gives the Adafruit driver the busio.I2C methods it calls
(lock, ``writeto``, ``readfrom_into``, ``writeto_then_readfrom``) on top of
``smbus2.i2c_msg`` transactions. ``BLINKA_SKIP_DEPENDENCY_CHECK=1`` is set before the
Adafruit modules are imported.

The Adafruit driver's calibration helpers assume a 0.1 ohm shunt; the sensor here
writes the same datasheet calibration as :class:`sensors.ina219.driver.INA219Sensor`
into it, so both paths report identical numbers and the benchmark compares only their
per-read cost.

Its reads follow the fast driver's rule (issue #11, item 3): ``conversion_ready`` (the bus
register) is read first and, when it is clear, nothing else, so the power read that
clears CNVR only happens for a conversion that is delivered. A fresh sample then costs
the Adafruit properties' seven transactions (bus, bus, shunt, calibration write +
current, calibration write + power), which the rate check counts: on a 100 kHz bus
this path tops out near 290 Hz. Stamps use the fast driver's conversion-end estimate.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from sensors.base import MEASURED, Clock, Sample, Sensor, SensorError, SensorInfo
from sensors.ina219.driver import CHANNELS, DEFAULT_ADDRESS, ConversionStamp, ReadPlan, bus_timing, plan_config
from sensors.ina219.registers import Calibration


ADAFRUIT_READ_PLAN = ReadPlan(7, 6, "Adafruit properties: conversion_ready, bus, shunt, calibration + current, calibration + power")


def _i2c_msg() -> Any:
    from smbus2 import i2c_msg

    return i2c_msg


class SMBusI2C:
    """The busio.I2C interface over an smbus2-like object with ``i2c_rdwr``."""

    def __init__(self, bus: Any) -> None:
        self.bus = bus
        self._lock = threading.Lock()

    def try_lock(self) -> bool:
        """Take the bus lock without blocking."""
        return self._lock.acquire(blocking=False)

    def unlock(self) -> None:
        """Release the bus lock."""
        self._lock.release()

    def writeto(self, address: int, buffer: bytes, *, start: int = 0, end: int | None = None) -> None:
        """Write bytes to a device (an empty write probes the address)."""
        self.bus.i2c_rdwr(_i2c_msg().write(address, bytes(buffer[start:end])))

    def readfrom_into(self, address: int, buffer: bytearray, *, start: int = 0, end: int | None = None) -> None:
        """Read into a buffer slice."""
        end = len(buffer) if end is None else end
        message = _i2c_msg().read(address, end - start)
        self.bus.i2c_rdwr(message)
        buffer[start:end] = bytes(message)

    def writeto_then_readfrom(
        self,
        address: int,
        buffer_out: bytes,
        buffer_in: bytearray,
        *,
        out_start: int = 0,
        out_end: int | None = None,
        in_start: int = 0,
        in_end: int | None = None,
    ) -> None:
        """A write (register pointer) and a read in one combined transaction."""
        in_end = len(buffer_in) if in_end is None else in_end
        write = _i2c_msg().write(address, bytes(buffer_out[out_start:out_end]))
        read = _i2c_msg().read(address, in_end - in_start)
        self.bus.i2c_rdwr(write, read)
        buffer_in[in_start:in_end] = bytes(read)

    def scan(self) -> list[int]:
        """Addresses that acknowledge a probe."""
        found = []
        for address in range(0x08, 0x78):
            try:
                self.writeto(address, b"")
            except OSError:
                continue
            found.append(address)
        return found


class AdafruitINA219Sensor(Sensor):
    """The same INA219 measurement through the Adafruit driver (slower, for comparison)."""

    kind = "ina219-adafruit"

    def __init__(
        self,
        bus: Any,
        address: int = DEFAULT_ADDRESS,
        shunt_ohms: float = 0.1,
        max_expected_a: float = 3.2,
        rate_hz: float | None = 1000.0,
        name: str | None = None,
        clock: Clock = time.monotonic,
        bus_clock_hz: float | None = None,
    ) -> None:
        os.environ.setdefault("BLINKA_SKIP_DEPENDENCY_CHECK", "1")
        import adafruit_ina219

        timing = bus_timing(bus, bus_clock_hz)
        config = plan_config(rate_hz, timing=timing, plan=ADAFRUIT_READ_PLAN)
        calibration = Calibration.for_shunt(shunt_ohms, max_expected_a)
        try:
            ina = adafruit_ina219.INA219(SMBusI2C(bus), address)
            ina._cal_value = calibration.register
            ina._current_lsb = calibration.current_lsb_a * 1000  # the driver reports mA
            ina._power_lsb = calibration.power_lsb_w
            ina._raw_calibration = calibration.register
            ina.bus_voltage_range = 1 if config.bus_range_v == 32 else 0
            ina.gain = {1: 0, 2: 1, 4: 2, 8: 3}[config.pga_divisor]
            ina.bus_adc_resolution = config.bus_adc.code
            ina.shunt_adc_resolution = config.shunt_adc.code
            ina.mode = config.mode
        except OSError as error:
            raise SensorError(error.errno, f"Adafruit INA219 at {address:#04x}: {error}") from error
        self.ina = ina
        self.clock = clock
        self.stamp = ConversionStamp(config, timing)
        self._last_values = {channel: float("nan") for channel in CHANNELS}
        self._info = SensorInfo(
            kind=self.kind,
            name=name or f"ina219-adafruit@{address:#04x}",
            channels=CHANNELS,
            update_interval_s=config.conversion_period_s,
            precision={"power_w": calibration.power_lsb_w, "current_a": calibration.current_lsb_a},
            provenance=MEASURED,
            details={
                "calibration": calibration.register,
                "config_register": config.encode(),
                "bus_clock_hz": None if timing is None else timing.bus_clock_hz,
                "read_plan": ADAFRUIT_READ_PLAN.description,
                "stamp_uncertainty_s": self.stamp.uncertainty_s,
            },
        )

    @property
    def info(self) -> SensorInfo:
        """Channels and calibration, as the fast driver reports them."""
        return self._info

    def read(self) -> Sample:
        """One sample through the Adafruit properties: conversion_ready first, the rest (power last) only when set."""
        try:
            start = self.clock()
            if not self.ina.conversion_ready:
                self.stamp.no_conversion(start)
                return Sample(self.clock(), self._last_values, fresh=False)
            values = {
                "bus_v": float(self.ina.bus_voltage),
                "shunt_v": float(self.ina.shunt_voltage),
                "current_a": float(self.ina.current) / 1000.0,
            }
            power_start = self.clock()
            values["power_w"] = float(self.ina.power)
            t = self.stamp.fresh(power_start, self.clock())
        except OSError as error:
            raise SensorError(error.errno, f"Adafruit INA219 read: {error}") from error
        self._last_values = values
        return Sample(t, values, fresh=True)
