"""The sampling daemon: fixed-rate sampling on its own thread, a ring buffer, a trace, a socket.

* **Sampling.** Ticks are scheduled at absolute times ``t0 + k / rate`` (no drift); the
  thread sleeps until shortly before a tick and spins the rest (``spin_s``). A sample is
  *on time* when it is taken within half an interval of its tick. If the thread falls
  more than one interval behind, the missed ticks are skipped and counted.
* **Scheduling.** With ``realtime_priority`` the sampling thread asks for SCHED_FIFO
  (root, CAP_SYS_NICE, or systemd's ``CPUSchedulingPolicy=fifo``), which keeps ticks on
  time when other work loads every core; without permission it keeps the default
  policy and says so in ``status``. The spin before each tick is bounded by ``spin_s``,
  so a FIFO sampler leaves the CPU to others between ticks.
* **Errors.** A read that raises is retried at once (``retries`` times); if every try
  fails, a ``gap_begin`` event is recorded and sampling goes on; the first good read
  after it records ``gap_end``. The daemon never stops on a sensor error.
* **Stale values.** Only *fresh* samples (a new conversion since the last read) are
  stored; stale reads are counted. So the trace's rate is the sensor's true update
  rate when polled faster than it converts.
* **Ring buffer.** The last ``ring_seconds`` of every sensor in memory, for window
  queries and live subscribers.
* **Trace.** With ``record_path``, every fresh sample and event goes to a trace file.
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
import math
import os
import socket
import sys
import socketserver
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from sensors.base import Clock, Sensor
from sensors.energy import energy_window
from sensors.trace.format import Event, StreamSpec, TraceWriter

DEFAULT_PORT = 8765
MAX_REQUEST_BYTES = 64 * 1024


class DaemonError(RuntimeError):
    """A daemon that cannot start as configured."""


class RingBuffer:
    """Fixed-capacity ring of (t, values) rows."""

    def __init__(self, capacity: int, channels: int) -> None:
        self.capacity = max(1, capacity)
        self.t = np.zeros(self.capacity)
        self.values = np.zeros((self.capacity, channels))
        self.count = 0  # total rows ever appended
        self._lock = threading.Lock()

    def append(self, t: float, row: Sequence[float]) -> None:
        """Add one row, overwriting the oldest when full."""
        with self._lock:
            i = self.count % self.capacity
            self.t[i] = t
            self.values[i] = row
            self.count += 1

    def snapshot(self, since: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Rows in time order (only those with t > since, when given)."""
        with self._lock:
            n = min(self.count, self.capacity)
            start = self.count - n
            idx = (np.arange(start, self.count)) % self.capacity
            t, values = self.t[idx].copy(), self.values[idx].copy()
        if since is not None:
            keep = t > since
            t, values = t[keep], values[keep]
        return t, values


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


class SamplingDaemon:
    """Samples sensors at a fixed rate and serves what it sampled."""

    def __init__(
        self,
        sensors: Sequence[Sensor],
        rate_hz: float,
        ring_seconds: float = 60.0,
        record_path: str | Path | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        token: str | None = None,
        allow_remote: bool = False,
        retries: int = 3,
        spin_s: float = 0.0002,
        realtime_priority: int | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        if not sensors:
            raise DaemonError("the daemon needs at least one sensor")
        if rate_hz <= 0 or not math.isfinite(rate_hz):
            raise DaemonError(f"sample rate must be a positive number, got {rate_hz}")
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
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._server: socketserver.ThreadingTCPServer | None = None
        self._server_thread: threading.Thread | None = None
        self._events_lock = threading.Lock()
        self._writer_lock = threading.Lock()  # the sampling thread appends and flushes while callers add events
        self.record_path = Path(record_path) if record_path else None
        self.writer: TraceWriter | None = None
        self.started_at: float | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> "SamplingDaemon":
        """Open the trace, start sampling and (if a port is set) serving."""
        # Other Python threads of this process hold the GIL for up to the switch interval
        # (5 ms by default); a sampling thread at kHz rates needs it back sooner.
        sys.setswitchinterval(min(sys.getswitchinterval(), self.interval_s / 4))
        if self.record_path is not None:
            specs = [
                StreamSpec(s.info.name, tuple(s.info.channels), s.info.to_dict(), poll_interval_s=self.interval_s) for s in self.sensors
            ]
            self.writer = TraceWriter(self.record_path, specs, header_extra={"rate_hz": self.rate_hz})
        if self.port is not None:
            self._server = _Server((self.host, self.port), _Handler, self)
            self.port = self._server.server_address[1]
            self._server_thread = threading.Thread(target=self._server.serve_forever, name="sensor-daemon-server", daemon=True)
            self._server_thread.start()
        self.started_at = self.clock()
        self._thread = threading.Thread(target=self._run, name="sensor-daemon-sampler", daemon=True)
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
        if self.writer is not None:
            self.writer.close()

    def __enter__(self) -> "SamplingDaemon":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the sampling thread is alive."""
        return self._thread is not None and self._thread.is_alive()

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
            if self.writer is not None and self.clock() - self.writer._last_flush >= self.writer.flush_interval_s:
                with self._writer_lock:
                    self.writer.flush()

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
        if self.writer is not None:
            with self._writer_lock:
                self.writer.append(name, t, row)

    # -- queries ---------------------------------------------------------------------

    def add_event(self, kind: str, label: str = "", t: float | None = None, **extra: Any) -> Event:
        """Record an event (marker, window begin/end, gap) in memory and in the trace."""
        event = Event(self.clock() if t is None else float(t), kind, label, extra)
        with self._events_lock:
            self.events.append(event)
            if self.writer is not None:
                with self._writer_lock:
                    self.writer.event(event.t, kind, label, **extra)
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
        """Energy figures of [start, end] from the ring buffer."""
        index = self.sensor_index(sensor)
        channels = self.channels[index]
        channel = channel or next((c for c in channels if c.endswith("power_w")), None)
        if channel not in channels:
            raise KeyError(f"sensor has no channel {channel!r} (channels: {', '.join(channels)})")
        t, values = self.rings[index].snapshot()
        nominal = max(self.sensors[index].info.update_interval_s, self.interval_s)  # samples arrive at the slower of the two
        result = energy_window(t, values[:, channels.index(channel)], start, end, baseline_w, nominal)
        return {"sensor": self.sensors[index].info.name, "channel": channel, **result.to_dict()}

    def status(self) -> dict:
        """Rates, counters and sensor descriptions."""
        elapsed = (self.clock() - self.started_at) if self.started_at is not None else 0.0
        return {
            "running": self.running,
            "rate_hz": self.rate_hz,
            "elapsed_s": elapsed,
            "scheduling": self.scheduling,
            "stats": {**asdict(self.stats), "on_time_fraction": self.stats.on_time_fraction},
            "sensors": [s.info.to_dict() for s in self.sensors],
            "in_gap": {s.info.name: gap for s, gap in zip(self.sensors, self._in_gap)},
            "last_error": {s.info.name: err for s, err in zip(self.sensors, self._last_error) if err},
            "record_path": str(self.record_path) if self.record_path else None,
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
