"""Replaying a recorded trace with its original timing, optionally faster."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sensors.base import SensorError
from sensors.replay import ReplaySensor
from sensors.trace.exchange import import_any
from sensors.trace.format import Stream, StreamSpec, Trace, new_header


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def ramp_trace() -> Trace:
    spec = StreamSpec("ramp", ("power_w",), {"update_interval_s": 0.1})
    t = np.arange(0.0, 1.01, 0.1) + 50.0
    return Trace(new_header([spec]), {"ramp": Stream(spec, t, {"power_w": np.arange(11.0)})}, [])


def test_replay_follows_original_timing():
    clock = FakeClock()
    replay = ReplaySensor(ramp_trace(), clock=clock)
    assert replay.read().values["power_w"] == 0.0
    clock.t += 0.35
    sample = replay.read()
    assert sample.values["power_w"] == 3.0 and sample.fresh and sample.t == clock.t
    assert not replay.read().fresh
    clock.t += 0.7
    with pytest.raises(SensorError, match="replay of replay:ramp ended"):
        replay.read()
    assert replay.finished()


def test_faster_replay_and_loop():
    clock = FakeClock()
    replay = ReplaySensor(ramp_trace(), speed=4.0, loop=True, clock=clock)
    assert replay.info.update_interval_s == pytest.approx(0.025)
    replay.read()
    clock.t += 0.2  # 0.8 s of recording
    assert replay.read().values["power_w"] == 8.0
    clock.t += 0.3  # 2.0 s of recording: looped twice
    assert replay.read().values["power_w"] == 0.0


def test_published_a100_trace_replays(shared_published: Path):
    clock = FakeClock()
    replay = ReplaySensor(import_any(shared_published / "traces" / "a100_bert_tiny_sst2_nvidia_smi.json"), speed=10.0, clock=clock)
    seen = []
    for _ in range(400):
        sample = replay.read()
        if sample.fresh:
            seen.append(sample.values["gpu.power_w"])
        clock.t += 0.005
        if clock.t - 1000.0 > replay.duration_s / 10.0:
            break
    assert len(seen) > 90
    assert max(seen) == pytest.approx(40.61)
