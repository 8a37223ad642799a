"""The sampling daemon: fixed-rate sampling on its own thread, a ring buffer, a trace, a socket.

* **Sampling.** Ticks are scheduled at absolute times ``t0 + k / rate`` (no drift); the
  thread sleeps until shortly before a tick and spins the rest (``spin_s``). A sample is
  *on time* when it is taken within half an interval of its tick. If the thread falls
  more than one interval behind, the missed ticks are skipped and counted.
* **Scheduling.** With ``realtime_priority`` the sampling thread asks for SCHED_FIFO
  (root, CAP_SYS_NICE, or systemd's ``CPUSchedulingPolicy=fifo``), which keeps ticks on
  time when other work loads every core; without permission it keeps the default
  policy and says so in ``status``. The spin before each tick is bounded by ``spin_s``,
  so a FIFO sampler leaves the CPU to others between ticks. The process-wide
  ``sys.setswitchinterval`` is left alone (it belongs to whatever process hosts the
  daemon); instead, no request holds the GIL or a ring lock for long (see ``window``).
* **Errors.** A read that raises is retried at once (``retries`` times); if every try
  fails, a ``gap_begin`` event is recorded and sampling goes on; the first good read
  after it records ``gap_end``. The daemon never stops on a sensor error.
* **Stale values.** Only *fresh* samples (a new conversion since the last read) are
  stored; stale reads are counted. So the trace's rate is the sensor's true update
  rate when polled faster than it converts.
* **Invalid samples.** A fresh sample with a non-finite value (the INA219 driver writes
  NaN power and current when the chip flags a math overflow) is stored as it is and
  counted per sensor; the first of a stretch logs a warning and records a ``note``
  event ``overflow_begin``; ``overflow_end`` (with the stretch's count) follows once
  ``OVERFLOW_QUIET_S`` pass without one. A window over invalid samples reports their
  count and ``peak_is_lower_bound``.
* **Ring buffer.** The last ``ring_seconds`` of every sensor in memory, for window
  queries and live subscribers (:mod:`sensors.ring`).
* **Trace.** With ``record_path`` (one file) or ``open_writer`` (e.g. a rotating
  writer), every fresh sample and event goes to a trace through
  :class:`sensors.recorder.Recorder`: a write error (a full disk) is recorded as an
  event and in ``status["recording"]``, sampling goes on into the ring, and recording
  resumes in a new file when the disk takes writes again.
* **Sampler death.** If the sampling thread ever ends on an exception, ``status`` says
  so, ``sampler_died`` is set, and ``edgetran sensor daemon`` exits non-zero so that
  systemd (``Restart=on-failure``) restarts it.
* **Windows.** ``window`` copies only the rows of the requested span from the ring. A
  span older than the ring (the ring has wrapped past it) is read from the recorded
  trace when recording; otherwise the answer has coverage < 1 and an ``error`` saying
  how many seconds the ring holds. A window that no sample covers answers NaN energy
  and power with an ``error``, never 0.
* **Socket.** JSON lines over TCP, on loopback unless ``allow_remote`` (which requires a
  shared ``token``). Requests: ``status``, ``info``, ``time`` (the daemon's clock, for
  clock-offset estimation), ``window`` (energy of [start, end]), ``marker``,
  ``samples`` (since a time) and ``subscribe`` (a batch every ``period_s`` until the
  client hangs up). Every request may carry ``token``; with a token set, requests
  without the right one are refused.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import math
import os
import socket
import socketserver
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from sensors.base import Clock, Sensor
from sensors.energy import energy_plan, nominal_sample_interval, plan_windows
from sensors.recorder import Recorder, TraceSink, describe
from sensors.ring import RingBuffer
from sensors.trace.format import EVENT_KINDS, Chunk, Event, StreamSpec, TraceError, TraceReader, TraceWriter
from sensors.trace.rotation import DEFAULT_KEEP_BYTES, DEFAULT_MAX_BYTES, RotatingTraceWriter

__all__ = ["DEFAULT_PORT", "DaemonError", "RingBuffer", "SamplerStats", "SamplingDaemon", "is_loopback", "request"]

DEFAULT_PORT = 8765
DEFAULT_RING_S = 60.0  # seconds of history in memory: 4.8 MB per 4-channel sensor at 2 kHz
MAX_REQUEST_BYTES = 64 * 1024
OVERFLOW_QUIET_S = 0.5  # an overflow stretch ends after this long without an invalid sample
RING_SLACK_S = 1e-6  # float slack when comparing a window edge with the ring's oldest row

log = logging.getLogger("sensors.daemon")

# open_writer(specs, header_extra, attempt) -> a writer; attempt 0 at start, 1, 2, ... after failures
WriterFactory = Callable[[Sequence[StreamSpec], Mapping[str, Any], int], TraceSink]


class DaemonError(RuntimeError):
    """A daemon that cannot start as configured."""


@dataclass
class SamplerStats:
    """Counters of the sampling thread."""

    ticks: int = 0
    on_time: int = 0
    missed_ticks: int = 0
    max_lateness_s: float = 0.0
    fresh: int = 0
    stale: int = 0
    errors: int = 0
    failed_reads: int = 0
    gaps: int = 0
    invalid_samples: int = 0  # fresh samples with a non-finite value (an INA219 math overflow)
    overflow_events: int = 0  # stretches of invalid samples (overflow_begin events)
    trace_write_errors: int = 0

    @property
    def on_time_fraction(self) -> float:
        """Share of scheduled ticks sampled within half an interval."""
        scheduled = self.ticks + self.missed_ticks
        return self.on_time / scheduled if scheduled else 1.0


def is_loopback(host: str) -> bool:
    """Whether a bind address is loopback only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def file_writer(path: str | Path) -> WriterFactory:
    """A writer factory for one trace file; a reopen after a failure writes ``<stem>.partN<suffix>``."""
    path = Path(path)

    def open_writer(specs: Sequence[StreamSpec], header_extra: Mapping[str, Any], attempt: int) -> TraceSink:
        if attempt == 0:
            return TraceWriter(path, specs, header_extra=dict(header_extra))  # an existing file: TraceError
        part = attempt
        while (target := path.with_name(f"{path.stem}.part{part}{path.suffix}")).exists():
            part += 1
        try:
            return TraceWriter(target, specs, header_extra=dict(header_extra))
        except OSError:
            target.unlink(missing_ok=True)  # created just now by this attempt (the disk is still full): leave no stub
            raise

    return open_writer


def rotating_writer(
    directory: str | Path,
    stem: str = "edgetran",
    max_bytes: int = DEFAULT_MAX_BYTES,
    rotate_daily: bool = True,
    keep_bytes: int | None = DEFAULT_KEEP_BYTES,
    keep_files: int | None = None,
) -> WriterFactory:
    """A writer factory for a rotated set in ``directory`` (by size and UTC day, with retention).

    A reopen after a failure starts a new writer (a new session of the same set); its
    retention runs at once, so a set over ``keep_bytes`` frees space before writing.
    """

    def open_writer(specs: Sequence[StreamSpec], header_extra: Mapping[str, Any], attempt: int) -> TraceSink:
        return RotatingTraceWriter(directory, stem, specs, header_extra=dict(header_extra), max_bytes=max_bytes,
                                   rotate_daily=rotate_daily, keep_bytes=keep_bytes, keep_files=keep_files)

    return open_writer


def recorded_rows(paths: Sequence[Path], stream: str, channel: str, start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
    """(t, values) of one channel of a stream from recorded trace files, around [start, end].

    Read chunk by chunk (:class:`sensors.trace.format.TraceReader`): memory holds the
    window's samples, not the files. Files that cannot be read (deleted by retention,
    damaged beyond use) are skipped; the window's coverage then shows what is missing.
    One neighbour beyond each edge is kept, for interpolating the edges.
    """
    times: list[np.ndarray] = []
    values: list[np.ndarray] = []
    before: tuple[float, float] | None = None  # the last sample before the window
    firsts = [first_sample_time(path, stream) for path in paths]
    # files in time order: skip those followed by a file that starts before the window
    # (a 2 GiB set is 8 files of 256 MiB; only the ones holding the window are read through)
    skip = 0
    for k in range(len(paths) - 1):
        following = next((f for f in firsts[k + 1:] if f is not None), None)
        if following is not None and following <= start:
            skip = k + 1
    for path in paths[skip:]:
        try:
            with TraceReader(path) as reader:
                names = [spec.name for spec in reader.specs]
                if stream not in names or channel not in reader.specs[names.index(stream)].channels:
                    continue
                index = names.index(stream)
                column = reader.specs[index].channels.index(channel)
                for item in reader.items():
                    if not isinstance(item, Chunk) or item.stream != index or len(item.t) == 0:
                        continue
                    t, v = item.t, item.values[column]
                    if t[-1] < start:
                        before = (float(t[-1]), float(v[-1]))
                        continue
                    lo = int(np.searchsorted(t, start, side="left"))
                    if lo > 0:
                        before = (float(t[lo - 1]), float(v[lo - 1]))
                    hi = int(np.searchsorted(t, end, side="right"))
                    times.append(t[lo:hi + 1].copy())
                    values.append(v[lo:hi + 1].copy())
                    if hi < len(t):  # the first sample after the window is in: done with this file
                        break
        except (TraceError, OSError):
            continue
    if before is not None:
        times.insert(0, np.array([before[0]]))
        values.insert(0, np.array([before[1]]))
    if not times:
        return np.empty(0), np.empty(0)
    t, v = np.concatenate(times), np.concatenate(values)
    order = np.argsort(t, kind="stable")
    return t[order], v[order]


def first_sample_time(path: Path, stream: str) -> float | None:
    """Time of a stream's first sample in a trace file (None if it has none or cannot be read); reads only up to it."""
    try:
        with TraceReader(path) as reader:
            names = [spec.name for spec in reader.specs]
            if stream not in names:
                return None
            index = names.index(stream)
            for item in reader.items():
                if isinstance(item, Chunk) and item.stream == index and len(item.t):
                    return float(item.t[0])
    except (TraceError, OSError):
        return None
    return None


def merged(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Two (t, values) series as one, in time order, each time once (the ring and the trace overlap)."""
    t = np.concatenate([a[0], b[0]])
    v = np.concatenate([a[1], b[1]])
    t, first = np.unique(t, return_index=True)
    return t, v[first]


@dataclass
class _OverflowState:
    """One sensor's invalid-sample bookkeeping."""

    total: int = 0
    in_stretch: bool = False
    stretch_count: int = 0
    stretch_first_t: float = 0.0
    last_t: float = 0.0
    by_channel: dict[str, int] = field(default_factory=dict)


class SamplingDaemon:
    """Samples sensors at a fixed rate and serves what it sampled."""

    def __init__(
        self,
        sensors: Sequence[Sensor],
        rate_hz: float,
        ring_seconds: float = DEFAULT_RING_S,
        record_path: str | Path | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        token: str | None = None,
        allow_remote: bool = False,
        retries: int = 3,
        spin_s: float = 0.0002,
        realtime_priority: int | None = None,
        clock: Clock = time.monotonic,
        open_writer: WriterFactory | None = None,
        writer_retry_s: float = 10.0,
    ) -> None:
        if not sensors:
            raise DaemonError("the daemon needs at least one sensor")
        if rate_hz <= 0 or not math.isfinite(rate_hz):
            raise DaemonError(f"sample rate must be a positive number, got {rate_hz}")
        if ring_seconds <= 0 or not math.isfinite(ring_seconds):
            raise DaemonError(f"ring_seconds must be a positive number, got {ring_seconds}")
        if record_path is not None and open_writer is not None:
            raise DaemonError("record to one file (record_path) or through open_writer, not both")
        if port is not None and not is_loopback(host):
            if not allow_remote:
                raise DaemonError(f"refusing to listen on {host}: not loopback (pass allow_remote and a token)")
            if not token:
                raise DaemonError(f"listening on {host} needs a shared token")
        names = [s.info.name for s in sensors]
        if len(set(names)) != len(names):
            raise DaemonError(f"sensor names must be distinct, got {names}")
        self.sensors = list(sensors)
        self.rate_hz = rate_hz
        self.interval_s = 1.0 / rate_hz
        self.ring_seconds = ring_seconds
        self.retries = retries
        self.spin_s = spin_s
        self.realtime_priority = realtime_priority
        self.scheduling = "SCHED_OTHER"
        self.clock = clock
        self.host, self.port, self.token = host, port, token
        self.channels = [tuple(s.info.channels) for s in sensors]
        capacity = int(math.ceil(ring_seconds * rate_hz)) + 1
        self.rings = [RingBuffer(capacity, len(ch)) for ch in self.channels]
        self.stats = SamplerStats()
        self.events: list[Event] = []
        self._in_gap = [False] * len(sensors)
        self._last_error = [""] * len(sensors)
        self._overflow = [_OverflowState() for _ in sensors]
        self._stop = threading.Event()
        self.sampler_died = threading.Event()  # set when the sampling thread ended on an exception
        self.sampler_error: str | None = None
        self._thread: threading.Thread | None = None
        self._server: socketserver.ThreadingTCPServer | None = None
        self._server_thread: threading.Thread | None = None
        self._events_lock = threading.Lock()
        self.record_path = Path(record_path) if record_path else None
        self._open_writer = open_writer or (file_writer(self.record_path) if self.record_path is not None else None)
        self.writer_retry_s = writer_retry_s
        self.recorder: Recorder | None = None
        self.started_at: float | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> "SamplingDaemon":
        """Open the trace, start sampling and (if a port is set) serving."""
        if self._open_writer is not None:
            specs = [
                StreamSpec(s.info.name, tuple(s.info.channels), s.info.to_dict(), poll_interval_s=self.interval_s) for s in self.sensors
            ]
            extra = {"rate_hz": self.rate_hz}
            factory = self._open_writer
            self.recorder = Recorder(lambda attempt: factory(specs, extra, attempt), self.writer_retry_s, self._writer_failed, self.clock)
        if self.port is not None:
            self._server = _Server((self.host, self.port), _Handler, self)
            self.port = self._server.server_address[1]
            self._server_thread = threading.Thread(target=self._server.serve_forever, name="sensor-daemon-server", daemon=True)
            self._server_thread.start()
        self.started_at = self.clock()
        self._thread = threading.Thread(target=self._run_guarded, name="sensor-daemon-sampler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop sampling and serving; close the trace cleanly."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self.recorder is not None:
            for index, state in enumerate(self._overflow):
                if state.in_stretch:
                    self._end_overflow(index)
            self.recorder.close()

    def __enter__(self) -> "SamplingDaemon":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the sampling thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def writer(self) -> TraceSink | None:
        """The trace writer in use (None when not recording or while failed)."""
        return self.recorder.writer if self.recorder is not None else None

    # -- sampling --------------------------------------------------------------------

    def _set_realtime(self) -> None:
        """Ask for SCHED_FIFO for the sampling thread; keep the default policy if not permitted."""
        if self.realtime_priority is None:
            return
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(self.realtime_priority))  # 0: this thread
            self.scheduling = f"SCHED_FIFO {self.realtime_priority}"
        except (PermissionError, AttributeError, OSError) as error:
            self.scheduling = f"SCHED_OTHER (SCHED_FIFO refused: {getattr(error, 'strerror', None) or error})"

    def _run_guarded(self) -> None:
        """The sampling thread: any exception ending it is recorded and signalled, never silent."""
        try:
            self._run()
        except BaseException as error:  # noqa: BLE001 - whatever ends the sampler must be visible
            self.sampler_error = describe(error)
            log.error("sensor daemon: the sampling thread died: %s", self.sampler_error)
            self.sampler_died.set()
            try:
                self.add_event("note", "sampler_died", error=self.sampler_error)
            except Exception:  # noqa: BLE001 - the event is best effort; status and sampler_died carry it
                pass

    def _run(self) -> None:
        self._set_realtime()
        interval = self.interval_s
        next_tick = self.clock()
        while not self._stop.is_set():
            remaining = next_tick - self.clock()
            if remaining > self.spin_s:
                time.sleep(remaining - self.spin_s)
            while self.clock() < next_tick:
                pass
            lateness = self.clock() - next_tick
            stats = self.stats
            stats.ticks += 1
            if lateness <= interval / 2:
                stats.on_time += 1
            stats.max_lateness_s = max(stats.max_lateness_s, lateness)
            for index, sensor in enumerate(self.sensors):
                self._sample(index, sensor)
            next_tick += interval
            behind = self.clock() - next_tick
            if behind > interval:
                skipped = int(behind // interval)
                stats.missed_ticks += skipped
                next_tick += skipped * interval
            if self.recorder is not None:
                self.recorder.flush_if_due()

    def _sample(self, index: int, sensor: Sensor) -> None:
        sample = None
        for _ in range(self.retries + 1):
            try:
                sample = sensor.read()
                break
            except Exception as error:  # noqa: BLE001 - a sensor failure must never stop the daemon
                self.stats.errors += 1
                self._last_error[index] = f"{type(error).__name__}: {error}"
        name = sensor.info.name
        if sample is None:
            self.stats.failed_reads += 1
            if not self._in_gap[index]:
                self._in_gap[index] = True
                self.stats.gaps += 1
                self.add_event("gap_begin", name, error=self._last_error[index])
            return
        if self._in_gap[index]:
            self._in_gap[index] = False
            self.add_event("gap_end", name)
        if not sample.fresh:
            self.stats.stale += 1
            return
        self.stats.fresh += 1
        row = [float(sample.values.get(c, math.nan)) for c in self.channels[index]]
        t = sample.t
        if self.clock is not time.monotonic:  # sensors stamp with time.monotonic: put their samples on the daemon's clock
            t += self.clock() - time.monotonic()
        self.rings[index].append(t, row)
        self._check_invalid(index, t, row)
        if self.recorder is not None:
            self.recorder.append(name, t, row)

    def _check_invalid(self, index: int, t: float, row: Sequence[float]) -> None:
        """Count a non-finite (overflowed) sample; open or close an overflow stretch."""
        state = self._overflow[index]
        bad = [c for c, v in zip(self.channels[index], row) if not math.isfinite(v)]
        if not bad:
            if state.in_stretch and t - state.last_t > OVERFLOW_QUIET_S:
                self._end_overflow(index)
            return
        self.stats.invalid_samples += 1
        state.total += 1
        state.last_t = t
        for channel in bad:
            state.by_channel[channel] = state.by_channel.get(channel, 0) + 1
        if state.in_stretch:
            state.stretch_count += 1
            return
        state.in_stretch, state.stretch_count, state.stretch_first_t = True, 1, t
        self.stats.overflow_events += 1
        name = self.sensors[index].info.name
        log.warning("sensor %s: invalid (overflowed) sample at t=%.6f: %s not finite; "
                    "power above the calibrated range is not measured", name, t, ", ".join(bad))
        self.add_event("note", "overflow_begin", t=t, sensor=name, channels=bad)

    def _end_overflow(self, index: int) -> None:
        state = self._overflow[index]
        state.in_stretch = False
        name = self.sensors[index].info.name
        self.add_event("note", "overflow_end", t=state.last_t, sensor=name, invalid_samples=state.stretch_count,
                       since=state.stretch_first_t)

    def _writer_failed(self, error: str) -> None:
        """Recorder callback (its lock held): keep the event in memory and warn."""
        self.stats.trace_write_errors += 1
        log.warning("sensor daemon: trace write failed (%s); sampling goes on into the ring, retrying every %g s",
                    error, self.writer_retry_s)
        with self._events_lock:
            self.events.append(Event(self.clock(), "note", "trace_write_error", {"error": error}))

    # -- queries ---------------------------------------------------------------------

    def add_event(self, kind: str, label: str = "", t: float | None = None, **extra: Any) -> Event:
        """Record an event (marker, window begin/end, gap, note) in memory and in the trace."""
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown event kind {kind!r} (one of {', '.join(EVENT_KINDS)})")
        event = Event(self.clock() if t is None else float(t), kind, label, extra)
        with self._events_lock:
            self.events.append(event)
        if self.recorder is not None:
            self.recorder.event(event.t, kind, label, **extra)
        return event

    def sensor_index(self, name: str | None) -> int:
        """Index of a sensor by name (the first when None)."""
        if name is None:
            return 0
        for i, sensor in enumerate(self.sensors):
            if sensor.info.name == name:
                return i
        raise KeyError(f"no sensor {name!r} (sensors: {', '.join(s.info.name for s in self.sensors)})")

    def samples(self, sensor: str | None = None, since: float | None = None) -> dict:
        """Buffered samples of one sensor, as JSON-ready lists."""
        index = self.sensor_index(sensor)
        t, values = self.rings[index].snapshot(since)
        return {
            "sensor": self.sensors[index].info.name,
            "t": t.tolist(),
            "values": {c: values[:, i].tolist() for i, c in enumerate(self.channels[index])},
        }

    def window(self, start: float, end: float, sensor: str | None = None, channel: str | None = None, baseline_w: float = 0.0) -> dict:
        """Energy figures of [start, end]: from the ring, or from the recorded trace when older than the ring."""
        index = self.sensor_index(sensor)
        channels = self.channels[index]
        info = self.sensors[index].info
        plan = energy_plan(channels, info.counters, channel, info.interval_averages)  # the rail's counter where it has one
        channel = plan.channel
        if not end > start:
            raise ValueError(f"window end ({end}) must be after its start ({start})")
        ring = self.rings[index]
        name = self.sensors[index].info.name
        span = ring.span()
        error = None
        source = "ring"
        older = ring.wrapped and span is not None and start < span[0] - RING_SLACK_S
        t, values = ring.window(start, end)
        columns = {c: values[:, channels.index(c)] for c in plan.channels}
        if older and self.recorder is not None:
            self.recorder.flush()  # the newest samples reach the file before it is read
            # the trace for the part before the ring; the ring too, for what a failed recorder missed
            rows = {c: merged(recorded_rows(self.recorder.files(), name, c, start, end), (t, v)) for c, v in columns.items()}
            t = rows[plan.channels[0]][0]
            columns = {c: v for c, (_, v) in rows.items()}
            source = "trace"
        else:
            if older:
                held = span[1] - span[0]
                error = (f"the ring holds only {held:.3g} s ([{span[0]:.3f}, {span[1]:.3f}]) and the daemon is not recording: "
                         f"the window starts {span[0] - start:.1f} s before it (raise ring_seconds or record a trace)")
        p = columns[plan.power_channel or plan.counter_channel]
        nominal = nominal_sample_interval(info.update_interval_s, self.interval_s)
        result = plan_windows(plan, t, columns, [start], [end], baseline_w, nominal)[0].to_dict()
        inside = (t >= start) & (t <= end)
        invalid = int(np.count_nonzero(~np.isfinite(p[inside])))
        result["invalid_samples"] = invalid
        result["peak_is_lower_bound"] = invalid > 0
        if invalid:
            result["warnings"].append(f"{invalid} invalid (overflowed) sample(s) in the window: left out; the peak power is a lower bound")
        if not result["coverage"] > 0:
            for key in ("energy_j", "peak_power_w", "mean_power_w"):
                result[key] = math.nan
            if error is None:
                where = f"the {source} holds [{t[0]:.3f}, {t[-1]:.3f}]" if len(t) else f"the {source} holds no samples of it"
                error = f"no samples cover the window [{start:.6f}, {end:.6f}] ({where})"
        answer = {"sensor": name, "channel": channel, "source": source, **result}
        if error is not None:
            answer["error"] = error
        return answer

    def status(self) -> dict:
        """Rates, counters, sampler and recorder state, and sensor descriptions."""
        elapsed = (self.clock() - self.started_at) if self.started_at is not None else 0.0
        spans = {s.info.name: ring.span() for s, ring in zip(self.sensors, self.rings)}
        recording = self.recorder.status() if self.recorder is not None else {"state": "off"}
        return {
            "running": self.running,
            "sampler": {"alive": self.running, "died": self.sampler_died.is_set(), "error": self.sampler_error},
            "rate_hz": self.rate_hz,
            "elapsed_s": elapsed,
            "scheduling": self.scheduling,
            "stats": {**asdict(self.stats), "on_time_fraction": self.stats.on_time_fraction},
            "sensors": [s.info.to_dict() for s in self.sensors],
            "in_gap": {s.info.name: gap for s, gap in zip(self.sensors, self._in_gap)},
            "last_error": {s.info.name: err for s, err in zip(self.sensors, self._last_error) if err},
            "invalid_samples": {s.info.name: {"total": o.total, "by_channel": dict(o.by_channel), "in_overflow": o.in_stretch}
                                for s, o in zip(self.sensors, self._overflow)},
            "ring": {"seconds": self.ring_seconds, "capacity": self.rings[0].capacity,
                     "held": {name: (list(span) if span else None) for name, span in spans.items()}},
            "record_path": recording.get("current_file") or (recording.get("files") or [None])[-1],
            "recording": recording,
            "address": [self.host, self.port] if self.port is not None else None,
        }


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, daemon: SamplingDaemon) -> None:
        self.sampling_daemon = daemon
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.address_family = family
        try:
            super().__init__(address, handler)
        except OSError as error:
            raise DaemonError(f"cannot listen on {address[0]}:{address[1]}: {error.strerror}") from None


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        daemon: SamplingDaemon = self.server.sampling_daemon  # type: ignore[attr-defined]
        while True:
            line = self.rfile.readline(MAX_REQUEST_BYTES)
            if not line:
                return
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("a request is a JSON object")
            except ValueError as error:
                self._send({"ok": False, "error": f"bad request: {error}"})
                continue
            if daemon.token and not hmac.compare_digest(str(request.get("token", "")), daemon.token):
                self._send({"ok": False, "error": "unauthorized: wrong or missing token"})
                return
            if request.get("cmd") == "subscribe":
                self._subscribe(daemon, request)
                return
            self._send(self._answer(daemon, request))

    def _answer(self, daemon: SamplingDaemon, request: dict) -> dict:
        cmd = request.get("cmd")
        try:
            if cmd == "status":
                return {"ok": True, **daemon.status()}
            if cmd == "time":
                return {"ok": True, "t": daemon.clock()}
            if cmd == "info":
                return {"ok": True, "sensors": [s.info.to_dict() for s in daemon.sensors], "rate_hz": daemon.rate_hz}
            if cmd == "marker":
                kind = request.get("kind", "marker")
                event = daemon.add_event(kind, str(request.get("label", "")), request.get("t"), **dict(request.get("extra") or {}))
                return {"ok": True, "t": event.t}
            if cmd == "samples":
                return {"ok": True, **daemon.samples(request.get("sensor"), request.get("since"))}
            if cmd == "window":
                return {
                    "ok": True,
                    **daemon.window(
                        float(request["start"]),
                        float(request["end"]),
                        request.get("sensor"),
                        request.get("channel"),
                        float(request.get("baseline_w", 0.0)),
                    ),
                }
        except (KeyError, ValueError, TypeError) as error:
            return {"ok": False, "error": str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)}
        return {"ok": False, "error": f"unknown command {cmd!r}"}

    def _subscribe(self, daemon: SamplingDaemon, request: dict) -> None:
        period = max(0.02, float(request.get("period_s", 0.1)))
        since = daemon.clock()
        try:
            daemon.sensor_index(request.get("sensor"))
        except KeyError as error:
            self._send({"ok": False, "error": str(error.args[0])})
            return
        while daemon.running or not daemon._stop.is_set():
            time.sleep(period)
            batch = daemon.samples(request.get("sensor"), since)
            if batch["t"]:
                since = batch["t"][-1]
            try:
                self._send({"ok": True, **batch})
            except OSError:
                return
            if daemon._stop.is_set():
                return

    def _send(self, message: dict) -> None:
        self.wfile.write(json.dumps(message, allow_nan=True).encode() + b"\n")
        self.wfile.flush()


def request(address: tuple[str, int], message: dict, timeout_s: float = 5.0) -> dict:
    """Send one request to a daemon and return its answer."""
    with socket.create_connection(address, timeout=timeout_s) as conn:
        conn.sendall(json.dumps(message).encode() + b"\n")
        reply = conn.makefile("rb").readline()
    if not reply:
        raise ConnectionError(f"daemon at {address[0]}:{address[1]} closed the connection")
    return json.loads(reply)
