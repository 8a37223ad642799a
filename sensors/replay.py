"""Replay of a recorded trace as a live Sensor, with its original timing (optionally faster).

The replay starts at its first ``read()``: from then on, at wall time ``w`` it returns
the latest recorded sample whose time is at most ``t_first + speed * w``, marked
``fresh`` only when that sample is new since the previous read. With ``loop`` it starts
over after the last sample. Timestamps returned are this host's clock, so a replayed
trace drives the daemon, the live plot and the energy code exactly like a sensor.
"""

from __future__ import annotations

import time

import numpy as np

from sensors.base import EMULATED, Clock, Sample, Sensor, SensorError, SensorInfo
from sensors.trace.format import Trace, read_trace


class ReplaySensor(Sensor):
    """A trace stream played back in (scaled) real time."""

    kind = "replay"

    def __init__(self, trace: Trace | str, stream: str | None = None, speed: float = 1.0, loop: bool = False, clock: Clock = time.monotonic,
                 name: str | None = None) -> None:
        if speed <= 0:
            raise ValueError(f"replay speed must be positive, got {speed}")
        trace = read_trace(trace) if isinstance(trace, str) else trace
        data = trace.stream(stream)
        if len(data.t) == 0:
            raise ValueError(f"stream {data.spec.name!r} has no samples to replay")
        self.t = data.t - data.t[0]
        self.columns = np.vstack([data.values[c] for c in data.spec.channels]).T
        self.channels = data.spec.channels
        self.speed = speed
        self.loop = loop
        self.clock = clock
        self._start: float | None = None
        self._last_index = -1
        recorded_interval = data.spec.update_interval_s or (float(np.median(np.diff(self.t))) if len(self.t) > 1 else 1.0)
        self._info = SensorInfo(
            kind=self.kind,
            name=name or f"replay:{data.spec.name}",
            channels=self.channels,
            update_interval_s=recorded_interval / speed,
            precision=dict(data.spec.sensor.get("precision", {})),
            provenance=EMULATED,
            counters=tuple(c for c in data.spec.sensor.get("counters", ()) if c in self.channels),  # a replayed counter is still one
            interval_averages=tuple(c for c in data.spec.sensor.get("interval_averages", ()) if c in self.channels),
            details={"recorded_sensor": dict(data.spec.sensor), "speed": speed, "loop": loop},
        )

    @property
    def info(self) -> SensorInfo:
        """The recorded stream's channels, with its update interval scaled by the speed."""
        return self._info

    @property
    def duration_s(self) -> float:
        """Length of the recording."""
        return float(self.t[-1])

    def finished(self) -> bool:
        """Whether a non-looping replay has passed its last sample."""
        return not self.loop and self._start is not None and (self.clock() - self._start) * self.speed > self.t[-1]

    def read(self) -> Sample:
        """The latest recorded sample at this moment of the replay."""
        now = self.clock()
        if self._start is None:
            self._start = now
        position = (now - self._start) * self.speed
        if self.loop and self.t[-1] > 0:
            position %= self.t[-1]
        elif position > self.t[-1]:
            raise SensorError(f"replay of {self._info.name} ended after {self.t[-1]:.3f} s")
        index = int(np.searchsorted(self.t, position, side="right") - 1)
        fresh = index != self._last_index
        self._last_index = index
        return Sample(now, dict(zip(self.channels, self.columns[index].tolist())), fresh=fresh)
