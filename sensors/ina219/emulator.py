"""An emulated INA219 behind an SMBus-like bus, so the real driver runs unchanged in tests.

The device model follows the datasheet (see ``sensors.ina219.registers``):

* In continuous shunt+bus mode the chip converts the shunt, then the bus, over and
  over; conversion ``k`` completes at ``t_start + k * period`` where ``period`` is the
  sum of the two conversion times of the current ADC settings. Registers hold the
  result of the *last completed* conversion, so polling faster than ``period`` returns
  stale values, exactly the trap real users fall into.
* The shunt is sampled over its conversion window (the mean of the waveform at the
  ADC's samples when averaging), quantised to the ADC step, saturated at the PGA's
  full scale; the bus likewise, at the bus range.
* Current = shunt * cal / 4096 and power = current * bus / 5000 are computed by the
  "chip" in integers; a result outside 16 bits sets OVF (math overflow) and clamps.
* CNVR (bus register bit 1) is set when a conversion completes and cleared by reading
  the power register or by writing the configuration register.
* Writing the RST bit restores every register's power-on value; calibration 0 keeps
  current and power at 0.

The waveform is a function of time returning ``(bus_volts, current_amps)``; helpers
build constant, square-wave, sampled and power-driven waveforms. Faults are injected
on demand: I2C errors (EIO, timeouts) for the next N transactions or at a seeded
random rate, and a forced math overflow.

Bus time (:class:`EmulatedI2CBus`): every transaction lasts what its bytes take at the
bus clock plus a call overhead (``sensors.ina219.i2c_timing``; 100 kHz by default, as
on a Raspberry Pi). The time really passes on the chips' clock: the bus waits (sleeps,
then spins the last few tens of microseconds) against ``time.monotonic``, or, with a
simulated clock, advances it through ``advance``. A register read latches the chip's
register after its first three bytes, so conversions complete during reads exactly as
they do on hardware. ``timing=None`` gives an idealised, instantaneous bus.

Ground truth for tests and benchmarks: the chip counts the conversions it completed
(``conversions_completed``), the power-register reads that consumed a set CNVR
(``consumed``), and, with ``keep_history``, every power read's latch time, the index
and end time of the conversion it returned, and whether CNVR was set.
"""

from __future__ import annotations

import errno
import math
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from sensors.base import Clock
from sensors.ina219.registers import (
    BUS_CNVR_BIT,
    BUS_LSB_V,
    BUS_OVF_BIT,
    CONFIG_RESET_BIT,
    CONFIG_RESET_VALUE,
    CURRENT_DIVISOR,
    POWER_DIVISOR,
    REG_BUS_VOLTAGE,
    REG_CALIBRATION,
    REG_CONFIG,
    REG_CURRENT,
    REG_POWER,
    REG_SHUNT_VOLTAGE,
    REGISTERS,
    SHUNT_LSB_V,
    Config,
    to_signed16,
    to_unsigned16,
)
from sensors.ina219.i2c_timing import BITS_PER_BYTE, I2CTiming

Waveform = Callable[[float], tuple[float, float]]  # t (s) -> (bus V, current A)
I2C_M_RD = 0x0001  # read flag of an i2c_msg (linux/i2c.h)
SLEEP_SLACK_S = 60e-6  # a real-time bus wait sleeps until this long before its deadline, then spins (timer slack is 50 us)


def constant(bus_v: float, current_a: float) -> Waveform:
    """A constant supply voltage and current."""
    return lambda t: (bus_v, current_a)


def from_power(power_w: Callable[[float], float], supply_v: float = 5.1) -> Waveform:
    """A board on a fixed supply whose power follows ``power_w(t)``: current = P / V."""
    return lambda t: (supply_v, power_w(t) / supply_v)


def square_power(low_w: float, high_w: float, period_s: float, duty: float = 0.5, supply_v: float = 5.1, t0: float = 0.0) -> Waveform:
    """Power alternating between low and high: high for the first ``duty`` of each period after t0."""

    def power(t: float) -> float:
        phase = ((t - t0) % period_s) / period_s
        return high_w if phase < duty else low_w

    return from_power(power, supply_v)


def sampled_power(times_s: Sequence[float], power_w: Sequence[float], supply_v: float = 5.1) -> Waveform:
    """Power interpolated linearly from samples (a recorded trace drives the emulator)."""
    t_arr = np.asarray(times_s, dtype=float)
    p_arr = np.asarray(power_w, dtype=float)
    return from_power(lambda t: float(np.interp(t, t_arr, p_arr)), supply_v)


@dataclass(frozen=True)
class PowerRead:
    """One read of the power register, as the chip saw it (ground truth for tests)."""

    t: float  # latch time on the chip's clock, s
    conversion: int  # index of the conversion whose result was returned (-1: none yet), counted since power-on
    conversion_end_s: float  # when that conversion completed (nan when none), s
    cnvr_was_set: bool  # CNVR was set at the latch (this read consumed a conversion)


class EmulatedINA219:
    """Register-level model of one INA219 on the emulated bus."""

    def __init__(self, waveform: Waveform, shunt_ohms: float = 0.1, clock: Clock = time.monotonic, keep_history: bool = False) -> None:
        self.waveform = waveform
        self.shunt_ohms = shunt_ohms  # the resistor on the emulated board (the chip does not know it)
        self.clock = clock
        self.force_overflow = False
        self.keep_history = keep_history
        self.power_reads: list[PowerRead] = []  # filled only with keep_history (it grows without bound)
        self.consumed = 0  # power reads that found CNVR set
        self._earlier_runs = 0  # conversions completed before the last configuration write
        self._lock = threading.Lock()
        self._pointer = REG_CONFIG
        self._at: float | None = None  # the bus's latch time for the access in progress
        self._reset()

    def _now(self) -> float:
        return self.clock() if self._at is None else self._at

    @contextmanager
    def at(self, t: float) -> Iterator[None]:
        """Register accesses inside act as at time ``t`` (the bus's latch moment within a transaction)."""
        self._at = t
        try:
            yield
        finally:
            self._at = None

    def _reset(self) -> None:
        if hasattr(self, "_regs"):
            self._earlier_runs += self._completed_in_run()
        self._regs = {reg: 0 for reg in REGISTERS}
        self._regs[REG_CONFIG] = CONFIG_RESET_VALUE
        self._start_run()
        self._cnvr = False
        self._ovf = False
        self._bus_counts = 0

    def _restart(self) -> None:
        """A configuration write: count the run's conversions (old settings), then start over."""
        self._earlier_runs += self._completed_in_run()
        self._start_run()

    def _start_run(self) -> None:
        self._start = self._now()
        self._completed = -1  # index of the last conversion whose result is in the registers
        self._last_end = math.nan

    def _completed_in_run(self) -> int:
        config = self.config
        if config.mode & 0b100 == 0 or config.mode & 0b011 == 0:
            return 0
        return max(0, math.floor((self._now() - self._start) / config.conversion_period_s))

    @property
    def conversions_completed(self) -> int:
        """Conversions completed since power-on (ground truth)."""
        with self._lock:
            return self._earlier_runs + self._completed_in_run()

    # -- conversion model ------------------------------------------------------------

    @property
    def config(self) -> Config:
        """The decoded configuration register."""
        return Config.decode(self._regs[REG_CONFIG])

    def _mean_over(self, start: float, duration: float, samples: int, index: int) -> float:
        points = [start + duration * (i + 0.5) / samples for i in range(samples)]
        return sum(self.waveform(t)[index] for t in points) / samples

    def _update(self) -> None:
        """Bring the registers up to the last conversion completed by now."""
        config = self.config
        if config.mode & 0b100 == 0 or config.mode & 0b011 == 0:
            return  # power-down, triggered or ADC-off modes: no continuous conversions
        period = config.conversion_period_s
        latest = math.floor((self._now() - self._start) / period) - 1
        if latest <= self._completed:
            return
        begin = self._start + latest * period
        shunt_time = config.shunt_adc.conversion_s if config.mode & 0b001 else 0.0
        current_a = self._mean_over(begin, shunt_time, config.shunt_adc.samples, 1)
        bus_v = self._mean_over(begin + shunt_time, config.bus_adc.conversion_s, config.bus_adc.samples, 0)
        self._convert(config, bus_v, current_a)
        self._completed = latest
        self._last_end = begin + period
        self._cnvr = True

    def _convert(self, config: Config, bus_v: float, current_a: float) -> None:
        shunt_ohms = self.shunt_ohms
        shunt_v = current_a * shunt_ohms
        step = config.shunt_step_v
        shunt_v = max(-config.shunt_range_v, min(config.shunt_range_v, round(shunt_v / step) * step))
        shunt_counts = round(shunt_v / SHUNT_LSB_V)
        bus_v = max(0.0, min(float(config.bus_range_v), round(bus_v / config.bus_step_v) * config.bus_step_v))
        bus_counts = min(round(bus_v / BUS_LSB_V), 0x1FFF)
        calibration = self._regs[REG_CALIBRATION]
        current = math.trunc(shunt_counts * calibration / CURRENT_DIVISOR)
        power = math.trunc(abs(current) * bus_counts / POWER_DIVISOR)
        overflow = self.force_overflow or not -32768 <= current <= 32767 or power > 0xFFFF
        current = max(-32768, min(32767, current))
        power = min(0xFFFF, power)
        self._regs[REG_SHUNT_VOLTAGE] = to_unsigned16(shunt_counts)
        self._regs[REG_CURRENT] = to_unsigned16(current)
        self._regs[REG_POWER] = power
        self._ovf = overflow
        self._bus_counts = bus_counts

    # -- register access -----------------------------------------------------------

    def read_register(self, register: int) -> int:
        """Value the chip returns for a register read."""
        with self._lock:
            self._update()
            if register == REG_BUS_VOLTAGE:
                return self._bus_counts << 3 | (BUS_CNVR_BIT if self._cnvr else 0) | (BUS_OVF_BIT if self._ovf else 0)
            if register == REG_POWER:
                if self._cnvr:
                    self.consumed += 1
                if self.keep_history:
                    index = self._earlier_runs + self._completed if self._completed >= 0 else -1
                    self.power_reads.append(PowerRead(self._now(), index, self._last_end, self._cnvr))
                self._cnvr = False
            return self._regs[register]

    def write_register(self, register: int, value: int) -> None:
        """A register write (config, calibration; the measurement registers are read-only)."""
        with self._lock:
            self._update()
            value &= 0xFFFF
            if register == REG_CONFIG:
                if value & CONFIG_RESET_BIT:
                    self._reset()
                    return
                self._restart()
                self._regs[REG_CONFIG] = value
                self._cnvr = False
            elif register == REG_CALIBRATION:
                self._regs[REG_CALIBRATION] = value & 0xFFFE
            # writes to read-only registers are ignored, as on the chip

    # -- byte protocol -------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        """Bytes written by the master: a register pointer, optionally followed by a 16-bit value."""
        if not data:
            return  # address probe
        register = data[0]
        if register not in REGISTERS:
            raise OSError(errno.EIO, f"INA219 has no register {register:#04x}")
        self._pointer = register
        if len(data) >= 3:
            self.write_register(register, data[1] << 8 | data[2])

    def transmit(self, length: int) -> bytes:
        """Bytes read by the master from the current register pointer (MSB first, repeating)."""
        value = self.read_register(self._pointer)
        pair = bytes([value >> 8 & 0xFF, value & 0xFF])
        return (pair * (length // 2 + 1))[:length]

    def signed_current_register(self) -> int:
        """The current register as a signed number (for tests)."""
        return to_signed16(self._regs[REG_CURRENT])


class EmulatedI2CBus:
    """An SMBus-like bus (the smbus2.SMBus methods the drivers use) with emulated devices.

    ``timing`` sets the bus clock and call overhead (default: 100 kHz, a Raspberry Pi's
    default; ``None`` for an instantaneous bus). Each transaction takes that long on
    ``clock``, which must be the devices' clock: with ``advance`` (a simulated clock's ``advance(seconds)``) the bus moves
    the clock forward, else it waits in real time. One transaction at a time, as the
    kernel's adapter lock does.

    Fault injection: ``fail_next(n, kind)`` fails the next n transactions with EIO or a
    timeout; ``error_rate`` fails each transaction with that probability (seeded). A
    failed transaction takes as long as a good one.
    """

    def __init__(
        self,
        devices: dict[int, EmulatedINA219] | None = None,
        error_rate: float = 0.0,
        seed: int = 0,
        timing: I2CTiming | None = I2CTiming(),
        clock: Clock = time.monotonic,
        advance: Callable[[float], None] | None = None,
    ) -> None:
        self.devices: dict[int, EmulatedINA219] = dict(devices or {})
        self.error_rate = error_rate
        self.timing = timing
        self.clock = clock
        self.advance = advance
        self._rng = np.random.default_rng(seed)
        self._pending_failures: list[str] = []
        self._bus_lock = threading.Lock()
        self.transactions = 0
        self.failures = 0
        self.busy_s = 0.0  # modelled bus time spent in transactions, s
        self.closed = False

    def attach(self, address: int, device: EmulatedINA219) -> None:
        """Put a device on the bus at an address."""
        self.devices[address] = device

    def fail_next(self, count: int = 1, kind: str = "eio") -> None:
        """Make the next ``count`` transactions fail with 'eio' or 'timeout'."""
        if kind not in ("eio", "timeout"):
            raise ValueError(f"fault kind must be 'eio' or 'timeout', got {kind!r}")
        self._pending_failures += [kind] * count

    def _transaction(self, address: int) -> EmulatedINA219:
        if self.closed:
            raise OSError(errno.EBADF, "bus is closed")
        self.transactions += 1
        fault = self._pending_failures.pop(0) if self._pending_failures else None
        if fault is None and self.error_rate > 0 and self._rng.random() < self.error_rate:
            fault = "eio"
        if fault is not None:
            self.failures += 1
            if fault == "timeout":
                raise TimeoutError(errno.ETIMEDOUT, "I2C transaction timed out")
            raise OSError(errno.EIO, "Input/output error")
        device = self.devices.get(address)
        if device is None:
            raise OSError(errno.EREMOTEIO, f"no device acknowledged address {address:#04x}")
        return device

    # bus time ---------------------------------------------------------------------

    def _wire_s(self, nbytes: int) -> float:
        return 0.0 if self.timing is None else nbytes * BITS_PER_BYTE / self.timing.bus_clock_hz

    def _half_overhead_s(self) -> float:
        return 0.0 if self.timing is None else self.timing.ioctl_overhead_s / 2

    def _elapse_until(self, deadline: float) -> None:
        """Let time pass on the chips' clock until ``deadline``."""
        if self.timing is None:
            return
        if self.advance is not None:
            remaining = deadline - self.clock()
            if remaining > 0:
                self.advance(remaining)
            return
        while True:
            remaining = deadline - self.clock()
            if remaining <= 0:
                return
            if remaining > SLEEP_SLACK_S:
                time.sleep(remaining - SLEEP_SLACK_S)  # sleep's overshoot is absorbed by the spin below

    def _run(self, messages: Sequence[tuple[int, int, bool, Callable[[EmulatedINA219], None]]], checks: int) -> None:
        """One ioctl under the adapter lock: (address, data bytes, is_read, action) per message.

        A read acts (the chip latches) once its address byte is acknowledged; a write
        once its last data byte is in. The chip evaluates each action at that moment
        (``EmulatedINA219.at``), and the bus then waits once, until the transaction's
        end, so a caller sees the result no earlier than on hardware, and the wait can
        sleep (releasing the GIL, as smbus2's ioctl does) instead of spinning twice.
        The first ``checks`` messages each count as a transaction for fault injection
        (one per smbus call, one per i2c_msg).
        """
        with self._bus_lock:
            start = self.clock()
            t = start + self._half_overhead_s()
            error: OSError | None = None
            device: EmulatedINA219 | None = None
            for index, (address, nbytes, is_read, action) in enumerate(messages):
                t += self._wire_s(1)  # the address byte
                if error is None and (device is None or index < checks):
                    try:
                        device = self._transaction(address)
                    except OSError as failure:
                        error = failure
                if not is_read:
                    t += self._wire_s(nbytes)
                if error is None and device is not None:
                    try:
                        if self.timing is None:  # instantaneous: the chip's own clock (it may differ from the bus's)
                            action(device)
                        else:
                            with device.at(t):
                                action(device)
                    except OSError as failure:
                        error = failure
                if is_read:
                    t += self._wire_s(nbytes)
            t += self._half_overhead_s()
            self._elapse_until(t)
            self.busy_s += t - start
            if error is not None:
                raise error

    # smbus2.SMBus-compatible methods -------------------------------------------------

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int, force: bool | None = None) -> list[int]:
        """Write the register pointer, then (repeated start) read ``length`` bytes: 3 + length bytes."""
        out: list[int] = []
        self._run(
            [
                (i2c_addr, 1, False, lambda device: device.receive(bytes([register]))),
                (i2c_addr, length, True, lambda device: out.extend(device.transmit(length))),
            ],
            checks=1,
        )
        return out

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: Iterable[int], force: bool | None = None) -> None:
        """Write a register pointer followed by data bytes: 2 + len(data) bytes."""
        payload = bytes([register, *data])
        self._run([(i2c_addr, len(payload), False, lambda device: device.receive(payload))], checks=1)

    def i2c_rdwr(self, *messages: object) -> None:
        """Combined transactions of smbus2.i2c_msg objects (read buffers are filled in place)."""

        def act(message: object) -> Callable[[EmulatedINA219], None]:
            def action(device: EmulatedINA219) -> None:
                if message.flags & I2C_M_RD:  # type: ignore[attr-defined]
                    data = device.transmit(message.len)  # type: ignore[attr-defined]
                    for i, byte in enumerate(data):
                        message.buf[i] = bytes([byte])  # type: ignore[attr-defined]
                else:
                    device.receive(bytes(message))  # type: ignore[arg-type]

            return action

        plan = [(m.addr, m.len, bool(m.flags & I2C_M_RD), act(m)) for m in messages]  # type: ignore[attr-defined]
        self._run(plan, checks=len(plan))

    def close(self) -> None:
        """Close the bus."""
        self.closed = True
