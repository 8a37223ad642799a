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
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from sensors.daemon import SamplingDaemon
from sensors.energy import energy_window, energy_windows
from sensors.ina219.adafruit_adapter import AdafruitINA219Sensor
from sensors.ina219.driver import INA219Sensor
from sensors.ina219.emulator import EmulatedI2CBus, EmulatedINA219, square_power
from sensors.registry import create_sensor
from sensors.trace.format import StreamSpec, TraceWriter

DAEMON_RATE_HZ = 2000.0
ON_TIME_TARGET = 0.99


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
    """Fast path vs Adafruit path on one emulated chip."""
    chip = EmulatedINA219(square_power(1.0, 6.0, 0.01))
    bus = EmulatedI2CBus({0x40: chip})
    adafruit = AdafruitINA219Sensor(bus, rate_hz=1000)
    fast = INA219Sensor(bus, rate_hz=1000)
    result = {"fast": per_read_us(fast, reads), "adafruit": per_read_us(adafruit, reads)}
    result["adafruit_over_fast"] = result["adafruit"]["median_us"] / result["fast"]["median_us"]
    return result


def daemon_timing(seconds: float, realtime_priority: int | None) -> dict:
    """The daemon polling an emulated INA219 at 2 kHz for ``seconds`` (recording a trace)."""
    sensor = create_sensor("emulated-ina219", rate_hz=DAEMON_RATE_HZ, waveform="square:1,6,0.2")
    with tempfile.TemporaryDirectory() as folder:
        daemon = SamplingDaemon([sensor], DAEMON_RATE_HZ, record_path=Path(folder) / "bench.ettrace", realtime_priority=realtime_priority)
        with daemon:
            time.sleep(seconds)
    stats = daemon.stats
    return {
        "scheduling": daemon.scheduling,
        "rate_hz": DAEMON_RATE_HZ,
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


def main() -> None:
    """Run every measurement and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--daemon-seconds", type=float, default=10.0)
    parser.add_argument("--reads", type=int, default=5000)
    parser.add_argument("--trace-samples", type=int, default=400000)
    parser.add_argument("--energy-seconds", type=float, default=3600.0, help="length of the 2 kHz series for windows")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = {
        "read_overhead": read_overhead(args.reads),
        "daemon": daemon_timing(args.daemon_seconds, None),
        "daemon_realtime": daemon_timing(args.daemon_seconds, 10),
        "trace_write": trace_throughput(args.trace_samples),
        "energy_windows": energy_throughput(args.energy_seconds),
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    r, w, e = results["read_overhead"], results["trace_write"], results["energy_windows"]
    print("INA219 read overhead on the emulated bus (median of 100-read blocks):")
    print(f"  fast smbus path   {r['fast']['median_us']:8.1f} us/read")
    print(f"  Adafruit path     {r['adafruit']['median_us']:8.1f} us/read   ({r['adafruit_over_fast']:.1f}x the fast path)")
    for d in (results["daemon"], results["daemon_realtime"]):
        print(f"daemon at {d['rate_hz']:.0f} Hz for {d['seconds']:.0f} s, {d['scheduling']}: {d['on_time_fraction'] * 100:.2f}% of ticks "
              f"on time (target >= {ON_TIME_TARGET * 100:.0f}%: {'met' if d['target_met'] else 'NOT met'}), {d['missed_ticks']} missed, "
              f"worst lateness {d['max_lateness_ms']:.2f} ms, {d['stored_rate_hz']:.0f} fresh samples/s stored")
    print(f"trace writes: {w['append_samples_per_s']:,.0f} samples/s per-sample, {w['block_samples_per_s']:,.0f} samples/s in blocks, "
          f"{w['bytes_per_sample']:.1f} bytes/sample (4 channels)")
    print(f"energy windows on {e['samples']:,} samples at 2 kHz: one window over all {e['one_window_s'] * 1e3:.0f} ms, "
          f"{e['one_second_windows']:,} one-second windows {e['one_second_windows_s'] * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
