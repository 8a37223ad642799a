"""Sensor-room figures: INA219 read cost, daemon timing at 2 kHz, trace writes, energy windows.

Run: python bench/sensor_bench.py [--daemon-seconds 10] [--reads 5000] [--json]

1. Per-read overhead of the INA219 fast path and of the Adafruit driver path on the
   emulated bus, side by side in this process (same emulated chip, same settings).
2. The sustained rate the sampling daemon holds with the emulated INA219 polled at
   2 kHz: share of ticks sampled within half an interval (target >= 99%), stored
   rate, missed ticks, worst lateness; with the default scheduler and with the
   sampling thread on SCHED_FIFO (when permitted), side by side.
3. Trace write throughput: samples/s through the per-sample API the daemon uses and
   through the block API imports use.
4. Energy-window throughput on one hour of 2 kHz samples: one hour-long window, and
   3,600 one-second windows.
5. Memory: the resident set of the sensor daemon process at 2 kHz with its default ring,
   recording (target <= 60 MB: it runs on a Pi beside the board), started as the systemd
   unit starts it (``python -m sensors sensor daemon``) and as ``edgetran sensor daemon``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import math
import tempfile
import time
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from sensors.daemon import SamplingDaemon
from sensors.energy import energy_window, energy_windows
from sensors.ina219.adafruit_adapter import AdafruitINA219Sensor
from sensors.base import SensorConfigError
from sensors.ina219.driver import INA219, INA219Sensor, plan_config
from sensors.ina219.emulator import EmulatedI2CBus, EmulatedINA219, square_power
from sensors.ina219.i2c_timing import FAST_MODE_HZ, STANDARD_MODE_HZ, I2CTiming
from sensors.ina219.registers import (
    BUS_CNVR_BIT,
    REG_BUS_VOLTAGE,
    REG_CURRENT,
    REG_POWER,
    REG_SHUNT_VOLTAGE,
    Calibration,
)
from sensors.registry import create_sensor
from sensors.trace.format import StreamSpec, TraceWriter

DAEMON_RATE_HZ = 2000.0
DAEMON_BUS_CLOCK_HZ = FAST_MODE_HZ  # 2 kHz needs fast mode (refused at 100 kHz: maximum 1030 Hz)
ON_TIME_TARGET = 0.99
BUS_CLOCKS_HZ = (STANDARD_MODE_HZ, FAST_MODE_HZ)
BUS_RATES_HZ = (1000.0, 2000.0)
DAEMON_RSS_TARGET_MB = 60.0


def per_read_us(sensor, reads: int) -> dict:
    """Median and mean microseconds per read over ``reads`` reads, in blocks of 100."""
    blocks = []
    for _ in range(reads // 100):
        start = time.perf_counter()
        for _ in range(100):
            sensor.read()
        blocks.append((time.perf_counter() - start) / 100 * 1e6)
    return {"median_us": statistics.median(blocks), "mean_us": statistics.fmean(blocks)}


def read_overhead(reads: int) -> dict:
    """Fast path vs Adafruit path on one emulated chip (instantaneous bus: software cost only)."""
    chip = EmulatedINA219(square_power(1.0, 6.0, 0.01))
    bus = EmulatedI2CBus({0x40: chip}, timing=None)
    adafruit = AdafruitINA219Sensor(bus, rate_hz=1000)
    fast = INA219Sensor(bus, rate_hz=1000)
    result = {"fast": per_read_us(fast, reads), "adafruit": per_read_us(adafruit, reads)}
    result["adafruit_over_fast"] = result["adafruit"]["median_us"] / result["fast"]["median_us"]
    return result


class SimClock:
    """A simulated monotonic clock the emulated bus advances by each transaction's duration."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class LegacyFourRegisterRead:
    """The read order before issue #11 (bus with CNVR, shunt, current, power), stamped after the reads: the baseline."""

    def __init__(self, bus: EmulatedI2CBus, rate_hz: float, clock: SimClock) -> None:
        self.device = INA219(bus)
        self.device.configure(plan_config(rate_hz, timing=None), Calibration.for_shunt(0.1, 3.2))
        self.clock = clock

    def read(self) -> tuple[float, bool]:
        """(stamp, fresh) of one poll."""
        bus = self.device.read_register(REG_BUS_VOLTAGE)
        for register in (REG_SHUNT_VOLTAGE, REG_CURRENT, REG_POWER):
            self.device.read_register(register)
        return self.clock(), bool(bus & BUS_CNVR_BIT)


def simulate_polls(bus_clock_hz: float, rate_hz: float, order: str, seconds: float) -> dict:
    """Poll like the daemon (one read per tick, late ticks skipped) on a simulated clock; count against the chip's truth."""
    clock = SimClock()
    chip = EmulatedINA219(square_power(1.0, 6.0, 0.0137, t0=clock.t), clock=clock, keep_history=True)
    bus = EmulatedI2CBus({0x40: chip}, timing=I2CTiming(bus_clock_hz), clock=clock, advance=clock.advance)
    if order == "legacy":
        legacy = LegacyFourRegisterRead(bus, rate_hz, clock)
        read = legacy.read
        period = legacy.device.config.conversion_period_s
    else:
        try:
            sensor = INA219Sensor(bus, rate_hz=rate_hz, clock=clock)
        except SensorConfigError as refused:
            return {"refused": str(refused)}

        def read() -> tuple[float, bool]:
            sample = sensor.read()
            return sample.t, sample.fresh

        period = sensor.info.update_interval_s
    interval = 1.0 / rate_hz
    next_tick = clock() + 0.01
    end = next_tick + seconds
    completed0, consumed0 = chip.conversions_completed, chip.consumed
    polls = fresh = 0
    errors = []
    seen = len(chip.power_reads)
    while next_tick < end:
        if clock() < next_tick:
            clock.t = next_tick
        t, is_fresh = read()
        polls += 1
        new = chip.power_reads[seen:]
        seen = len(chip.power_reads)
        if is_fresh:
            fresh += 1
            if new:
                errors.append(t - new[-1].conversion_end_s)
        next_tick += interval
        behind = clock() - next_tick
        if behind > interval:
            next_tick += int(behind // interval) * interval
    completed = chip.conversions_completed - completed0
    consumed = chip.consumed - consumed0
    return {
        "conversion_period_s": period,
        "polls": polls,
        "delivered_hz": fresh / seconds,
        "stale_share": 1 - fresh / polls,
        "conversions": completed,
        "consumed": consumed,
        "discarded": consumed - fresh,
        "discarded_share": (consumed - fresh) / consumed if consumed else 0.0,
        "never_read_share": (completed - consumed) / completed if completed else 0.0,
        "stamp_error_mean_us": statistics.fmean(errors) * 1e6 if errors else math.nan,
        "stamp_error_max_us": max(abs(e) for e in errors) * 1e6 if errors else math.nan,
    }


def daemon_at_bus_clock(bus_clock_hz: float, rate_hz: float, seconds: float) -> dict:
    """The sampling daemon in real time on an emulated INA219 whose bus takes real transaction time."""
    chip = EmulatedINA219(square_power(1.0, 6.0, 0.2))
    try:
        sensor = INA219Sensor(EmulatedI2CBus({0x40: chip}, timing=I2CTiming(bus_clock_hz)), rate_hz=rate_hz, name="emulated-ina219")
    except SensorConfigError as refused:
        return {"refused": str(refused)}
    start = time.monotonic()
    with SamplingDaemon([sensor], rate_hz, realtime_priority=10) as daemon:
        time.sleep(seconds)
    elapsed = time.monotonic() - start  # start-up and stop included: the sampling thread ran about this long
    stats = daemon.stats  # counted after the sampling thread stopped, so no read straddles the counts
    return {
        "scheduling": daemon.scheduling,
        "delivered_hz": stats.fresh / elapsed,
        "stale_share": stats.stale / max(1, stats.stale + stats.fresh),
        "missed_ticks": stats.missed_ticks,
        "consumed": chip.consumed,
        "discarded": chip.consumed - stats.fresh,
    }


def bus_clock_figures(sim_seconds: float, daemon_seconds: float) -> dict:
    """Delivered rate and stale/lost shares per bus clock and rate: simulated (both orders) and the real-time daemon."""
    simulated = {
        f"{clock / 1e3:.0f}kHz_{rate:.0f}Hz_{order}": {"bus_clock_hz": clock, "rate_hz": rate, "order": order,
                                                       **simulate_polls(clock, rate, order, sim_seconds)}
        for clock in BUS_CLOCKS_HZ
        for rate in BUS_RATES_HZ
        for order in ("gated", "legacy")
    }
    daemon = {
        f"{clock / 1e3:.0f}kHz_{rate:.0f}Hz": {"bus_clock_hz": clock, "rate_hz": rate, **daemon_at_bus_clock(clock, rate, daemon_seconds)}
        for clock in BUS_CLOCKS_HZ
        for rate in BUS_RATES_HZ
    }
    return {"simulated_seconds": sim_seconds, "simulated": simulated, "daemon_seconds": daemon_seconds, "daemon": daemon}


def show_bus_clocks(b: dict) -> None:
    """Print the bus-clock figures."""
    print(f"INA219 on a timed I2C bus ({I2CTiming(STANDARD_MODE_HZ).describe()}; {I2CTiming(FAST_MODE_HZ).describe()}), "
          f"simulated clock, {b['simulated_seconds']:g} s per row:")
    print("  bus      rate   read order        delivered   stale polls  discarded (of consumed)  never read  stamp error mean / max")
    for row in b["simulated"].values():
        label = "bus, power (now)" if row["order"] == "gated" else "bus,shunt,cur,pow"
        head = f"  {row['bus_clock_hz'] / 1e3:3.0f} kHz  {row['rate_hz']:4.0f} Hz  {label:17s}"
        if "refused" in row:
            print(f"{head} refused: {row['refused'].split(': ', 1)[-1]}")
            continue
        print(f"{head} {row['delivered_hz']:7.0f} Hz   {row['stale_share'] * 100:6.1f}%     {row['discarded']:5d} "
              f"({row['discarded_share'] * 100:5.1f}%)          {row['never_read_share'] * 100:5.1f}%     "
              f"{row['stamp_error_mean_us']:+5.0f} / {row['stamp_error_max_us']:4.0f} us")
    for row in b["daemon"].values():
        head = f"  daemon in real time, {row['bus_clock_hz'] / 1e3:.0f} kHz bus, {row['rate_hz']:.0f} Hz for {b['daemon_seconds']:g} s"
        if "refused" in row:
            print(f"{head}: refused ({row['refused'].rsplit('; ', 1)[-1]})")
            continue
        print(f"{head} ({row['scheduling']}): {row['delivered_hz']:.0f} fresh samples/s, {row['stale_share'] * 100:.1f}% stale polls, "
              f"{row['missed_ticks']} missed ticks, {row['discarded']} of {row['consumed']} consumed conversions discarded")


def daemon_timing(seconds: float, realtime_priority: int | None) -> dict:
    """The daemon polling an emulated INA219 at 2 kHz for ``seconds`` (recording a trace)."""
    sensor = create_sensor("emulated-ina219", rate_hz=DAEMON_RATE_HZ, waveform="square:1,6,0.2", bus_clock_hz=DAEMON_BUS_CLOCK_HZ)
    with tempfile.TemporaryDirectory() as folder:
        daemon = SamplingDaemon([sensor], DAEMON_RATE_HZ, record_path=Path(folder) / "bench.ettrace", realtime_priority=realtime_priority)
        with daemon:
            time.sleep(seconds)
    stats = daemon.stats
    return {
        "scheduling": daemon.scheduling,
        "rate_hz": DAEMON_RATE_HZ,
        "bus_clock_hz": DAEMON_BUS_CLOCK_HZ,
        "seconds": seconds,
        "ticks": stats.ticks,
        "on_time_fraction": stats.on_time_fraction,
        "missed_ticks": stats.missed_ticks,
        "max_lateness_ms": stats.max_lateness_s * 1e3,
        "stored_rate_hz": stats.fresh / seconds,
        "stale_reads": stats.stale,
        "target_met": stats.on_time_fraction >= ON_TIME_TARGET,
    }


def trace_throughput(samples: int) -> dict:
    """Samples per second written through append() and append_block()."""
    spec = StreamSpec("bench", ("power_w", "bus_v", "shunt_v", "current_a"))
    rows = np.random.default_rng(0).random((samples, 4))
    times = np.arange(samples) / DAEMON_RATE_HZ
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        with TraceWriter(Path(folder) / "a.ettrace", [spec]) as writer:
            for t, row in zip(times.tolist(), rows.tolist()):
                writer.append("bench", t, row)
        per_sample = samples / (time.perf_counter() - start)
        start = time.perf_counter()
        with TraceWriter(Path(folder) / "b.ettrace", [spec]) as writer:
            writer.append_block("bench", times, rows)
        block = samples / (time.perf_counter() - start)
        size = (Path(folder) / "a.ettrace").stat().st_size
    return {"samples": samples, "append_samples_per_s": per_sample, "block_samples_per_s": block, "bytes_per_sample": size / samples}


def energy_throughput(seconds: float = 3600.0) -> dict:
    """One hour (by default) of 2 kHz samples: one window over all of it, and one-second windows."""
    n = int(seconds * DAEMON_RATE_HZ)
    t = np.arange(n) / DAEMON_RATE_HZ
    p = 3.0 + np.sin(t)
    start = time.perf_counter()
    whole = energy_window(t, p, 0.0, seconds - 1.0)
    one = time.perf_counter() - start
    starts = np.arange(0.0, seconds - 1.0, 1.0)
    start = time.perf_counter()
    energy_windows(t, p, starts, starts + 1.0)
    many = time.perf_counter() - start
    return {"samples": n, "one_window_s": one, "one_second_windows": len(starts), "one_second_windows_s": many, "energy_j": whole.energy_j}


def _status_kb(pid: int, key: str) -> int:
    """A ``VmRSS``/``VmHWM`` line of /proc/PID/status, in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def daemon_rss(seconds: float = 10.0) -> dict:
    """Resident memory (MB) of the daemon process at 2 kHz with its default ring, recording, after ``seconds``."""
    config = f"""[daemon]
port = 0
rate_hz = {DAEMON_RATE_HZ}
record = "traces/"

[[sensors]]
kind = "emulated-ina219"
waveform = "square:1,6,0.2"
bus_clock_hz = 400000
"""
    commands = {"python -m sensors": [sys.executable, "-m", "sensors"], "edgetran": [str(Path(sys.executable).with_name("edgetran"))]}
    result: dict = {"rate_hz": DAEMON_RATE_HZ, "seconds": seconds, "target_mb": DAEMON_RSS_TARGET_MB}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "daemon.toml"
        path.write_text(config)
        for label, program in commands.items():
            child = subprocess.Popen([*program, "sensor", "daemon", "--config", str(path)], cwd=folder, stderr=subprocess.PIPE, text=True)
            try:
                time.sleep(seconds)
                if child.poll() is not None:
                    raise RuntimeError(f"{label} sensor daemon exited: {child.stderr.read().strip()}")
                result[label] = {"rss_mb": _status_kb(child.pid, "VmRSS") / 1024, "peak_rss_mb": _status_kb(child.pid, "VmHWM") / 1024}
            finally:
                child.terminate()
                child.wait(10)
    return result


def show_daemon_rss(m: dict) -> None:
    """Print the daemon-memory figure (both ways of starting it)."""
    for label in ("python -m sensors", "edgetran"):
        print(f"daemon memory at {m['rate_hz']:.0f} Hz, default ring, recording ({label} sensor daemon): {m[label]['rss_mb']:.1f} MB resident, "
              f"peak {m[label]['peak_rss_mb']:.1f} MB (target <= {m['target_mb']:.0f} MB: {'met' if m[label]['peak_rss_mb'] <= m['target_mb'] else 'NOT met'})")


def show_read_overhead(r: dict) -> None:
    """Print the per-read overhead figure."""
    print("INA219 read overhead on an instantaneous emulated bus (software only; median of 100-read blocks):")
    print(f"  fast smbus path   {r['fast']['median_us']:8.1f} us/read")
    print(f"  Adafruit path     {r['adafruit']['median_us']:8.1f} us/read   ({r['adafruit_over_fast']:.1f}x the fast path)")


def show_daemon(d: dict) -> None:
    """Print one daemon-timing figure."""
    print(f"daemon at {d['rate_hz']:.0f} Hz ({d['bus_clock_hz'] / 1e3:.0f} kHz bus) for {d['seconds']:.0f} s, {d['scheduling']}: "
          f"{d['on_time_fraction'] * 100:.2f}% of ticks on time (target >= {ON_TIME_TARGET * 100:.0f}%: "
          f"{'met' if d['target_met'] else 'NOT met'}), {d['missed_ticks']} missed, "
          f"worst lateness {d['max_lateness_ms']:.2f} ms, {d['stored_rate_hz']:.0f} fresh samples/s stored")


def show_trace_write(w: dict) -> None:
    """Print the trace-write figure."""
    print(f"trace writes: {w['append_samples_per_s']:,.0f} samples/s per-sample, {w['block_samples_per_s']:,.0f} samples/s in blocks, "
          f"{w['bytes_per_sample']:.1f} bytes/sample (4 channels)")


def show_energy(e: dict) -> None:
    """Print the energy-window figure."""
    print(f"energy windows on {e['samples']:,} samples at 2 kHz: one window over all {e['one_window_s'] * 1e3:.0f} ms, "
          f"{e['one_second_windows']:,} one-second windows {e['one_second_windows_s'] * 1e3:.0f} ms")


TRACE_READ_RSS_TARGET_MB = 200.0
_PEAK_RSS_OF = (
    "import resource, subprocess, sys; code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
    "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def trace_read_rss(seconds: float = 3600.0) -> dict:
    """Peak RSS of `edgetran trace info` / `trace energy` (each in its own child) on a 2 kHz, 4-channel trace of ``seconds``."""
    spec = StreamSpec("ina219", ("bus_v", "shunt_v", "current_a", "power_w"), {"kind": "emulated-ina219", "update_interval_s": 1 / DAEMON_RATE_HZ})
    block = int(10 * DAEMON_RATE_HZ)  # written 10 s at a time, as a long recording grows
    n = int(seconds * DAEMON_RATE_HZ)
    result: dict = {"seconds": seconds, "samples": n, "target_mb": TRACE_READ_RSS_TARGET_MB}
    edgetran = [sys.executable, "-c", "import sys; from firmware_host.cli import main; sys.exit(main(sys.argv[1:]))"]
    with tempfile.TemporaryDirectory() as folder:
        path, tiny = Path(folder) / "hour.ettrace", Path(folder) / "tiny.ettrace"
        for target, count in ((path, n), (tiny, 10)):
            with TraceWriter(target, [spec], flush_interval_s=1e9) as writer:
                for start in range(0, count, block):
                    t = np.arange(start, min(count, start + block)) / DAEMON_RATE_HZ
                    writer.append_block("ina219", t, np.column_stack([np.full(len(t), 5.0), np.zeros(len(t)), np.full(len(t), 0.6), 3.0 + np.sin(t)]))
        result["file_mb"] = path.stat().st_size / 2**20
        commands = {
            "import_only": ["trace", "info", str(tiny)],
            "info": ["trace", "info", str(path), "--json"],
            "energy": ["trace", "energy", str(path), "--start", "0", "--end", str(seconds - 1.0), "--json"],
        }
        for name, args in commands.items():
            started = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", _PEAK_RSS_OF, *edgetran, *args], capture_output=True, text=True, check=True).stdout.split()
            result[name] = {"exit": int(out[0]), "peak_rss_mb": int(out[1]) / 1024, "seconds": time.perf_counter() - started}
    result["target_met"] = all(result[k]["exit"] == 0 and result[k]["peak_rss_mb"] <= TRACE_READ_RSS_TARGET_MB for k in ("info", "energy"))
    return result


def show_trace_read_rss(r: dict) -> None:
    """Print the trace-reading memory figures."""
    print(f"reading a {r['seconds'] / 3600:g} h 2 kHz trace ({r['samples']:,} samples, {r['file_mb']:.0f} MB) chunk by chunk, peak RSS "
          f"(target <= {r['target_mb']:.0f} MB: {'met' if r['target_met'] else 'NOT met'}): trace info {r['info']['peak_rss_mb']:.0f} MB "
          f"({r['info']['seconds']:.1f} s), trace energy over all of it {r['energy']['peak_rss_mb']:.0f} MB ({r['energy']['seconds']:.1f} s); "
          f"the CLI on a 10-sample trace {r['import_only']['peak_rss_mb']:.0f} MB")


class Figure(NamedTuple):
    """One bench figure: how to measure it from the arguments and how to print it."""

    measure: Callable[[argparse.Namespace], dict]
    show: Callable[[dict], None]


FIGURES: dict[str, Figure] = {
    "read_overhead": Figure(lambda a: read_overhead(a.reads), show_read_overhead),
    "bus_clocks": Figure(lambda a: bus_clock_figures(a.sim_seconds, a.bus_daemon_seconds), show_bus_clocks),
    "daemon": Figure(lambda a: daemon_timing(a.daemon_seconds, None), show_daemon),
    "daemon_realtime": Figure(lambda a: daemon_timing(a.daemon_seconds, 10), show_daemon),
    "trace_write": Figure(lambda a: trace_throughput(a.trace_samples), show_trace_write),
    "energy_windows": Figure(lambda a: energy_throughput(a.energy_seconds), show_energy),
    "trace_read_rss": Figure(lambda a: trace_read_rss(a.energy_seconds), show_trace_read_rss),
    "daemon_rss": Figure(lambda a: daemon_rss(a.rss_seconds), show_daemon_rss),
}


def main() -> None:
    """Run the chosen (default: every) figure and print it, or all results as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--daemon-seconds", type=float, default=10.0)
    parser.add_argument("--reads", type=int, default=5000)
    parser.add_argument("--sim-seconds", type=float, default=5.0, help="simulated seconds per bus-clock row")
    parser.add_argument("--bus-daemon-seconds", type=float, default=3.0, help="real-time daemon seconds per bus clock")
    parser.add_argument("--trace-samples", type=int, default=400000)
    parser.add_argument("--energy-seconds", type=float, default=3600.0, help="length of the 2 kHz series for windows")
    parser.add_argument("--rss-seconds", type=float, default=10.0, help="how long the daemon runs before its memory is read")
    parser.add_argument("--only", nargs="+", choices=sorted(FIGURES), help="run only these figures")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = {}
    for name in args.only or FIGURES:
        results[name] = FIGURES[name].measure(args)
        if not args.json:
            FIGURES[name].show(results[name])
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
