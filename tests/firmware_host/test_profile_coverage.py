"""#11 item 4: one span for energy and baseline; a window the samples do not cover is measured again, then refused.

A real sampling daemon's window code over its ring, which the "runner" fills with the
samples of a constant 4 W supply at the times of its idle and block windows (the
sampling thread is not started, so a loaded machine's scheduling cannot change what is
covered). With constant power the energy above the idle
baseline is zero, whatever part of the window is covered, if (and only if) the baseline
is subtracted over the same span as the energy is integrated over.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from device_runners.protocol import LatencyStats, Marker, RunReport
from firmware_host.profile import MeasurementRefused, ProfileError, ProfileOptions, profile_on_daemon
from firmware_host.rig import Board
from sensors.daemon import SamplingDaemon
from sensors.registry import create_sensor

RATE_HZ = 1000.0
POWER_W = 4.0
RUNS = 10
BOARD = Board("bench", host="local")
IDLE_S, BLOCK_S = 0.3, 0.5


def _report(idle: tuple[float, float], block: tuple[float, float]) -> RunReport:
    stats = LatencyStats.of(np.full(RUNS, (block[1] - block[0]) / RUNS))
    markers = [Marker(kind, -1, int(round(t * 1e9)), 0) for kind, t in
               (("idle_begin", idle[0]), ("idle_end", idle[1]), ("block_begin", block[0]), ("block_end", block[1]))]
    return RunReport("0" * 64, "onnx", "onnxruntime", "CPU", {}, 1, 8, RUNS, 0, stats, stats, 1.0, block[1] - block[0], 0.0, 0,
                     idle[1] - idle[0], "", markers)


@pytest.fixture
def daemon():
    """A real daemon whose ring the test fills at known times (its sampling thread is not started: no scheduling jitter)."""
    sensor = create_sensor("emulated-ina219", rate_hz=RATE_HZ, waveform=f"constant:{POWER_W}")
    yield SamplingDaemon([sensor], RATE_HZ, ring_seconds=60.0)
    sensor.close()


@pytest.fixture
def sidecar(tmp_path: Path) -> Path:
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"seq_len": 8}))
    return path


def _feed(daemon: SamplingDaemon, t0: float, t1: float) -> None:
    """Samples of the constant supply every 1 ms over [t0, t1]."""
    channels = daemon.channels[0]
    row = [POWER_W if c == "power_w" else 5.0 if c == "bus_v" else POWER_W / 5.0 if c == "current_a" else 0.0 for c in channels]
    for t in np.arange(t0, t1 + 1e-9, 1.0 / RATE_HZ):
        daemon.rings[0].append(float(t), row)


def _runner(daemon: SamplingDaemon, uncovered_s=0.0, shift_s: float = 0.0, calls: list | None = None, blocks: tuple = (BLOCK_S,),
            idle_hole_s: float = 0.0):
    """A protocol stand-in on a clock of its own: idle then block; the last ``uncovered_s`` of the block has no samples.

    ``idle_hole_s``: that much of the idle window's second half (the baseline's span), in its middle, has no samples.
    """
    calls = calls if calls is not None else []

    def run(runs: int, seed: int) -> RunReport:
        calls.append(runs)
        i0 = 1000.0 + 10.0 * len(calls)
        i1 = b0 = i0 + IDLE_S
        b1 = b0 + blocks[(len(calls) - 1) % len(blocks)]
        missing = uncovered_s(len(calls)) if callable(uncovered_s) else uncovered_s
        if idle_hole_s:
            middle = i0 + 0.75 * IDLE_S
            _feed(daemon, i0 - 0.01, middle - idle_hole_s / 2)
            _feed(daemon, middle + idle_hole_s / 2, b1 - missing)
        else:
            _feed(daemon, i0 - 0.01, b1 - missing)
        return _report((i0, i1), (b0 + shift_s, b1 + shift_s))

    return run


def test_baseline_is_subtracted_over_the_span_the_energy_covers(daemon, sidecar) -> None:
    # The last 25 ms of the block have no samples (5% uncovered): accepted at a 90% minimum,
    # and the energy above a constant baseline is 0, not -baseline x 25 ms.
    options = ProfileOptions(runs=RUNS, repeats=1, idle_s=IDLE_S, min_coverage=0.9)
    m = profile_on_daemon(sidecar, daemon, daemon.sensors[0].info.name, BOARD, options, 0.0, 0.0, runner=_runner(daemon, 0.025))
    row = m["per_repeat"][0]
    assert row["coverage"] == pytest.approx(0.95, abs=0.003) and row["integrated_s"] == pytest.approx(BLOCK_S - 0.025, abs=0.002)
    assert row["idle_power_w"] == pytest.approx(POWER_W)
    assert row["energy_j_per_seq"] * RUNS == pytest.approx(0.0, abs=1e-9)  # old code: -POWER_W x 0.025 s = -0.1 J
    assert m["energy_method"] == "power_integral" and m["min_coverage"] == 0.9


def test_a_window_below_the_coverage_minimum_is_measured_again_then_refused(daemon, sidecar) -> None:
    calls: list = []
    options = ProfileOptions(runs=RUNS, repeats=1, idle_s=IDLE_S)  # the default minimum: 95%
    with pytest.raises(MeasurementRefused, match=r"repeat 0: the sensor's samples cover .*% of the block window .* \(minimum 95%\).*refused"):
        profile_on_daemon(sidecar, daemon, daemon.sensors[0].info.name, BOARD, options, 0.0, 0.0, runner=_runner(daemon, 0.25, calls=calls))
    assert calls == [RUNS, RUNS, RUNS]  # measured twice more (COVERAGE_RETRIES) before refusing


def test_an_idle_window_with_holes_still_gives_the_baseline(daemon, sidecar) -> None:
    """The idle window gives a mean: 40% of its baseline span missing is accepted at once (the block is judged at 95%)."""
    calls: list = []
    options = ProfileOptions(runs=RUNS, repeats=1, idle_s=IDLE_S)
    m = profile_on_daemon(sidecar, daemon, daemon.sensors[0].info.name, BOARD, options, 0.0, 0.0,
                          runner=_runner(daemon, calls=calls, idle_hole_s=0.4 * IDLE_S / 2))
    row = m["per_repeat"][0]
    assert calls == [RUNS] and row["attempts"] == 1  # old code: the idle window was held to 95% and measured again, then refused
    assert row["idle_coverage"] == pytest.approx(0.6, abs=0.02) and row["idle_power_w"] == pytest.approx(POWER_W)
    assert row["coverage"] >= 0.95 and row["energy_j_per_seq"] * RUNS == pytest.approx(0.0, abs=1e-9)


def test_an_idle_window_mostly_missing_is_refused(daemon, sidecar) -> None:
    options = ProfileOptions(runs=RUNS, repeats=1, idle_s=IDLE_S)
    with pytest.raises(MeasurementRefused, match=r"of the idle window .* \(minimum 50%\)"):
        profile_on_daemon(sidecar, daemon, daemon.sensors[0].info.name, BOARD, options, 0.0, 0.0,
                          runner=_runner(daemon, idle_hole_s=0.7 * IDLE_S / 2))


def test_a_window_no_sample_reaches_is_refused_not_zero(daemon, sidecar) -> None:
    options = ProfileOptions(runs=RUNS, repeats=1, idle_s=IDLE_S)
    with pytest.raises(MeasurementRefused, match="no samples cover the window"):
        profile_on_daemon(sidecar, daemon, daemon.sensors[0].info.name, BOARD, options, 0.0, 0.0,
                          runner=_runner(daemon, 0.0, shift_s=100.0))  # the block lies 100 s in the future


def test_a_retry_that_is_covered_is_kept_with_a_warning(daemon, sidecar) -> None:
    calls: list = []
    missing = lambda attempt: 0.25 if attempt == 1 else 0.0  # noqa: E731 - the first measurement's block is half uncovered
    options = ProfileOptions(runs=RUNS, repeats=1, idle_s=IDLE_S)
    m = profile_on_daemon(sidecar, daemon, daemon.sensors[0].info.name, BOARD, options, 0.0, 0.0, runner=_runner(daemon, missing, calls=calls))
    assert calls == [RUNS, RUNS] and m["per_repeat"][0]["attempts"] == 2  # the second measurement is covered: no third
    assert m["per_repeat"][0]["coverage"] >= 0.95
    assert any("measured again" in w for w in m["warnings"])


def test_min_coverage_is_checked() -> None:
    with pytest.raises(ProfileError, match="min_coverage must be in"):
        ProfileOptions(min_coverage=0.0)


def test_stored_spread_is_the_range_of_the_repeats(daemon, sidecar) -> None:
    """Tidy item: latency_spread_s_per_seq is max - min over the repeats, as its name and the store's doc say."""
    from firmware_host.profile import measurement_record
    from firmware_host.store import MeasurementKey

    options = ProfileOptions(runs=RUNS, repeats=3, idle_s=IDLE_S)
    m = profile_on_daemon(sidecar, daemon, daemon.sensors[0].info.name, BOARD, options, 0.0, 0.0,
                          runner=_runner(daemon, blocks=(0.5, 0.4, 0.6)))
    m.update(artifact=str(sidecar), trace="-")
    record = measurement_record("c", MeasurementKey("a", "bench", "onnxruntime", "CPU", 1, 0), m)
    assert record.latency_spread_s_per_seq == pytest.approx((0.6 - 0.4) / RUNS)
