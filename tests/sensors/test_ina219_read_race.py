"""Issue #11 item 3: the INA219 read order on a bus whose transactions take real time.

The emulated bus charges each transaction its bytes x 9 / bus clock + a call overhead on
a simulated clock, so conversions complete during reads as on a Pi. A poll loop like the
daemon's (one read per tick, late ticks skipped) drives the real driver; the emulated
chip's counts are the ground truth: conversions it completed, power reads that consumed
a set CNVR, and the end time of the conversion each power read returned.
"""

from __future__ import annotations

import math
import time

import pytest

from sensors.base import SensorConfigError
from sensors.ina219.driver import INA219Sensor
from sensors.ina219.emulator import EmulatedI2CBus, EmulatedINA219, square_power
from sensors.ina219.i2c_timing import FAST_MODE_HZ, STANDARD_MODE_HZ, I2CTiming

DATASHEET_SLOW = 1.1  # the datasheet's maximum conversion times are about 10% above typical
FASTEST_PAIR_S = 2 * 84e-6  # 9-bit shunt + 9-bit bus conversion, typical


class SimClock:
    """A simulated monotonic clock: the bus advances it by each transaction's duration."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def timed_rig(bus_clock_hz: float, rate_hz: float, keep_history: bool = False):
    clock = SimClock()
    chip = EmulatedINA219(square_power(1.0, 6.0, period_s=0.0137, t0=1000.0), clock=clock, keep_history=keep_history)
    bus = EmulatedI2CBus({0x40: chip}, timing=I2CTiming(bus_clock_hz), clock=clock, advance=clock.advance)
    sensor = INA219Sensor(bus, rate_hz=rate_hz, clock=clock)
    return clock, chip, bus, sensor


def poll(clock: SimClock, sensor, rate_hz: float, seconds: float, on_read=None) -> list:
    """Read once per tick for ``seconds`` of simulated time, as the sampling daemon does."""
    interval = 1.0 / rate_hz
    next_tick = clock() + 0.01  # let the first conversions complete
    end = next_tick + seconds
    samples = []
    while next_tick < end:
        if clock() < next_tick:
            clock.t = next_tick
        sample = sensor.read()
        samples.append(sample)
        if on_read is not None:
            on_read(sample)
        next_tick += interval
        behind = clock() - next_tick
        if behind > interval:
            next_tick += int(behind // interval) * interval
    return samples


@pytest.mark.parametrize("bus_clock_hz", [STANDARD_MODE_HZ, FAST_MODE_HZ])
def test_no_fresh_conversion_is_discarded_and_the_rate_is_delivered_at_1khz(bus_clock_hz):
    clock, chip, bus, sensor = timed_rig(bus_clock_hz, 1000.0)
    consumed_before = chip.consumed
    samples = poll(clock, sensor, 1000.0, seconds=2.0)
    fresh = sum(s.fresh for s in samples)
    consumed = chip.consumed - consumed_before
    # every power read that cleared a set CNVR handed its conversion to a fresh sample
    assert consumed - fresh == 0, f"{consumed - fresh} of {consumed} consumed conversions discarded as stale"
    assert fresh >= 0.99 * 2000, f"{fresh} fresh samples in 2 s at 1 kHz"
    assert chip.conversions_completed >= fresh


def max_rate_hz(timing: I2CTiming) -> float:
    """Two register reads per fresh sample; a conversion must fit between the power read and the next bus read."""
    t_read = timing.register_read_s
    return 1.0 / max(2 * t_read, t_read + FASTEST_PAIR_S * DATASHEET_SLOW)


def test_2khz_is_refused_on_a_100khz_bus_naming_the_maximum():
    timing = I2CTiming(STANDARD_MODE_HZ)
    bus = EmulatedI2CBus({0x40: EmulatedINA219(square_power(1, 6, 0.01))}, timing=timing)
    with pytest.raises(SensorConfigError, match=r"2000 Hz.*100 kHz") as refused:
        INA219Sensor(bus, rate_hz=2000)
    maximum = math.floor(max_rate_hz(timing))
    assert f"maximum {maximum} Hz" in str(refused.value)
    INA219Sensor(bus, rate_hz=maximum)  # the maximum named works
    with pytest.raises(SensorConfigError):
        INA219Sensor(bus, rate_hz=maximum + 2)


def test_2khz_on_a_400khz_bus_is_delivered_without_discards():
    clock, chip, bus, sensor = timed_rig(FAST_MODE_HZ, 2000.0)
    before = chip.consumed
    samples = poll(clock, sensor, 2000.0, seconds=1.0)
    fresh = sum(s.fresh for s in samples)
    assert chip.consumed - before == fresh
    assert fresh >= 0.99 * 2000


@pytest.mark.parametrize("bus_clock_hz", [STANDARD_MODE_HZ, FAST_MODE_HZ])
def test_samples_are_stamped_at_their_conversion_end(bus_clock_hz):
    clock, chip, bus, sensor = timed_rig(bus_clock_hz, 1000.0, keep_history=True)
    period = sensor.info.update_interval_s
    read_s = I2CTiming(bus_clock_hz).register_read_s
    bound = (period * DATASHEET_SLOW + read_s) / 2  # half the interval the reads bound the end to
    errors = []
    seen = [len(chip.power_reads)]

    def check(sample):
        new = chip.power_reads[seen[0]:]
        seen[0] = len(chip.power_reads)
        if sample.fresh and new:
            errors.append(sample.t - new[-1].conversion_end_s)

    poll(clock, sensor, 1000.0, seconds=1.0, on_read=check)
    assert errors
    worst = max(abs(e) for e in errors)
    assert worst <= bound + 1e-9, f"worst stamp error {worst * 1e6:.0f} us, bound {bound * 1e6:.0f} us"
    mean = sum(errors) / len(errors)
    assert abs(mean) < 0.15 * period, f"stamps biased by {mean * 1e6:.0f} us (conversion period {period * 1e6:.0f} us)"
    assert len(errors) > 900


def test_a_register_read_takes_its_bus_time_and_conversions_progress_during_it():
    clock = SimClock()
    chip = EmulatedINA219(square_power(1, 6, 0.01), clock=clock)
    timing = I2CTiming(STANDARD_MODE_HZ)
    bus = EmulatedI2CBus({0x40: chip}, timing=timing, clock=clock, advance=clock.advance)
    assert timing.register_read_s == pytest.approx(5 * 9 / 100e3 + 35e-6)  # addr+W, reg, addr+R, 2 data bytes
    start = clock()
    completed = chip.conversions_completed
    for _ in range(10):
        bus.read_i2c_block_data(0x40, 0x02, 2)
    assert clock() - start == pytest.approx(10 * timing.register_read_s)
    assert chip.conversions_completed - completed == math.floor(10 * timing.register_read_s / chip.config.conversion_period_s) or \
        chip.conversions_completed - completed == math.ceil(10 * timing.register_read_s / chip.config.conversion_period_s)


def test_the_real_time_bus_waits_for_each_transaction():
    chip = EmulatedINA219(square_power(1, 6, 0.01))
    timing = I2CTiming(FAST_MODE_HZ)
    bus = EmulatedI2CBus({0x40: chip}, timing=timing)
    start = time.monotonic()
    for _ in range(50):
        bus.read_i2c_block_data(0x40, 0x02, 2)
    assert time.monotonic() - start >= 50 * timing.register_read_s
    assert bus.busy_s == pytest.approx(50 * timing.register_read_s)


def test_bus_clock_is_read_from_the_device_tree(tmp_path):
    from sensors.ina219.i2c_timing import detect_bus_clock_hz

    node = tmp_path / "bus/i2c/devices/i2c-1/of_node"
    node.mkdir(parents=True)
    (node / "clock-frequency").write_bytes((400000).to_bytes(4, "big"))
    assert detect_bus_clock_hz(1, str(tmp_path)) == 400000.0
    assert detect_bus_clock_hz(3, str(tmp_path)) is None  # no device-tree node: the caller assumes 100 kHz


def test_a_real_bus_without_a_stated_clock_is_planned_at_100khz():
    class PlainBus:  # an smbus2-like object: no timing attribute
        def __init__(self) -> None:
            self.emulated = EmulatedI2CBus({0x40: EmulatedINA219(square_power(1, 6, 0.01))}, timing=None)

        def read_i2c_block_data(self, addr, reg, n):
            return self.emulated.read_i2c_block_data(addr, reg, n)

        def write_i2c_block_data(self, addr, reg, data):
            self.emulated.write_i2c_block_data(addr, reg, data)

    with pytest.raises(SensorConfigError, match="100 kHz"):
        INA219Sensor(PlainBus(), rate_hz=2000)
    assert INA219Sensor(PlainBus(), rate_hz=2000, bus_clock_hz=400e3).info.details["bus_clock_hz"] == 400e3


def test_the_daemon_in_real_time_discards_no_conversion():
    from sensors.daemon import SamplingDaemon

    chip = EmulatedINA219(square_power(1, 6, 0.01))
    sensor = INA219Sensor(EmulatedI2CBus({0x40: chip}, timing=I2CTiming(FAST_MODE_HZ)), rate_hz=1000.0)
    with SamplingDaemon([sensor], 1000.0, realtime_priority=10) as daemon:
        time.sleep(0.5)
    # counted after the sampling thread stopped: every consumed conversion became a stored sample, however loaded the machine
    assert daemon.stats.fresh > 100
    assert chip.consumed == daemon.stats.fresh
