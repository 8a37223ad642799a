"""The trace file: append-only, chunked, a CRC per chunk, a header and an event stream.

Layout (little-endian), after the 8-byte magic ``ETTRACE\\x01``, a sequence of records::

    sync   4 bytes  E7 7C 0A 55         (lets a reader find the next record after damage)
    type   u8       1 header, 2 samples, 3 events, 4 meta, 5 close
    length u32      payload bytes
    crc    u32      CRC-32 of type, length and payload
    payload

* **header** (JSON): format, version, creation time (UTC and monotonic), clock offset and
  its uncertainty, and the *streams*: one per sensor, with its channels, the sensor's
  own update interval and precision (``SensorInfo``) and the polling interval.
* **samples**: ``u16 stream, u32 n, u16 channels``, then ``n`` float64 times and, per
  channel in header order, ``n`` float64 values (NaN where a value is invalid).
* **events** (JSON list): ``{"t", "kind", "label", ...}``; kinds ``window_begin``,
  ``window_end``, ``marker``, ``gap_begin``, ``gap_end``, ``note``.
* **meta** (JSON): later header updates (e.g. a clock offset measured after the start).
* **close** (JSON): totals written by a clean close; a trace without it was cut short.

The writer flushes a samples record to the operating system at least every
``flush_interval_s`` (0.25 s by default) and on every event, so a process killed with
SIGKILL loses at most the samples of the last flush interval; ``fsync`` runs every
``fsync_interval_s`` and on close (power loss may lose up to that much). The reader
checks every CRC, reports and skips a damaged record by scanning for the next sync
word, and ignores a truncated last record.
"""

from __future__ import annotations

import json
import os
import struct
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

MAGIC = b"ETTRACE\x01"
SYNC = b"\xe7\x7c\x0a\x55"
RECORD_HEADER = struct.Struct("<4sBII")  # sync, type, length, crc
SAMPLES_HEADER = struct.Struct("<HIH")  # stream, n samples, n channels
TYPE_HEADER, TYPE_SAMPLES, TYPE_EVENTS, TYPE_META, TYPE_CLOSE = 1, 2, 3, 4, 5
RECORD_TYPES = (TYPE_HEADER, TYPE_SAMPLES, TYPE_EVENTS, TYPE_META, TYPE_CLOSE)
FORMAT_NAME = "edgetran-trace"
FORMAT_VERSION = 1
MAX_PAYLOAD_BYTES = 256 * 1024 * 1024
EVENT_KINDS = ("window_begin", "window_end", "marker", "gap_begin", "gap_end", "note")


class TraceError(ValueError):
    """A file that is not a trace, or a trace that cannot be used as asked."""


@dataclass(frozen=True)
class StreamSpec:
    """One sensor's stream in a trace: its name, channels and the sensor's description."""

    name: str
    channels: tuple[str, ...]
    sensor: Mapping[str, Any] = field(default_factory=dict)  # SensorInfo.to_dict()
    poll_interval_s: float | None = None

    def to_dict(self) -> dict:
        """JSON form for the header."""
        return {"name": self.name, "channels": list(self.channels), "sensor": dict(self.sensor), "poll_interval_s": self.poll_interval_s}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "StreamSpec":
        """Parse the header form."""
        return cls(str(data["name"]), tuple(data["channels"]), dict(data.get("sensor") or {}), data.get("poll_interval_s"))

    @property
    def update_interval_s(self) -> float | None:
        """The sensor's own update interval (its conversion rate), if known."""
        value = self.sensor.get("update_interval_s")
        return float(value) if value else None


@dataclass(frozen=True)
class Event:
    """A timestamped event: window begin/end, marker, gap."""

    t: float
    kind: str
    label: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON form."""
        return {"t": self.t, "kind": self.kind, "label": self.label, **dict(self.extra)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Event":
        """Parse the JSON form."""
        extra = {k: v for k, v in data.items() if k not in ("t", "kind", "label")}
        return cls(float(data["t"]), str(data["kind"]), str(data.get("label", "")), extra)


@dataclass
class Stream:
    """Samples of one stream: times and one array per channel."""

    spec: StreamSpec
    t: np.ndarray
    values: dict[str, np.ndarray]

    def channel(self, name: str) -> np.ndarray:
        """Values of one channel (TraceError naming the known channels if absent)."""
        if name not in self.values:
            raise TraceError(f"stream {self.spec.name!r} has no channel {name!r} (channels: {', '.join(self.values)})")
        return self.values[name]

    def power_channel(self) -> str:
        """The first channel measuring power (``*power_w``)."""
        for name in self.spec.channels:
            if name.endswith("power_w"):
                return name
        raise TraceError(f"stream {self.spec.name!r} has no power channel (channels: {', '.join(self.spec.channels)})")


@dataclass
class Trace:
    """A whole trace in memory: header, streams, events, and what the reader had to skip."""

    header: dict
    streams: dict[str, Stream]
    events: list[Event]
    problems: list[str] = field(default_factory=list)
    closed_cleanly: bool = False

    def stream(self, name: str | None = None) -> Stream:
        """A stream by name, or the first one."""
        if not self.streams:
            raise TraceError("trace has no streams")
        if name is None:
            return next(iter(self.streams.values()))
        if name not in self.streams:
            raise TraceError(f"trace has no stream {name!r} (streams: {', '.join(self.streams)})")
        return self.streams[name]


def _crc(record_type: int, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(struct.pack("<BI", record_type, len(payload)))) & 0xFFFFFFFF


def _record(record_type: int, payload: bytes) -> bytes:
    return RECORD_HEADER.pack(SYNC, record_type, len(payload), _crc(record_type, payload)) + payload


def _json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), allow_nan=True).encode("utf-8")


def new_header(streams: Sequence[StreamSpec], clock_offset_s: float = 0.0, clock_offset_uncertainty_s: float | None = None, **extra: Any) -> dict:
    """A header for a new trace (times are monotonic seconds of the recording host)."""
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "created_utc": datetime.now(timezone.utc).isoformat(),
        "created_monotonic_s": time.monotonic(),
        "time_base": "monotonic seconds of the recording host",
        "clock_offset_s": clock_offset_s,
        "clock_offset_uncertainty_s": clock_offset_uncertainty_s,
        "streams": [spec.to_dict() for spec in streams],
        **extra,
    }


class TraceWriter:
    """Append samples and events to a new trace file, flushing in chunks."""

    def __init__(
        self,
        path: str | Path,
        streams: Sequence[StreamSpec],
        header_extra: Mapping[str, Any] | None = None,
        flush_interval_s: float = 0.25,
        chunk_samples: int = 4096,
        fsync_interval_s: float = 5.0,
        overwrite: bool = False,
    ) -> None:
        self.path = Path(path)
        if not streams:
            raise TraceError("a trace needs at least one stream")
        self.specs = list(streams)
        self._index = {spec.name: i for i, spec in enumerate(self.specs)}
        if len(self._index) != len(self.specs):
            raise TraceError("stream names must be distinct")
        mode = "wb" if overwrite else "xb"
        try:
            self._file = open(self.path, mode)
        except FileExistsError:
            raise TraceError(f"{self.path}: already exists (refusing to overwrite a recording)") from None
        except OSError as error:
            raise TraceError(f"{self.path}: cannot create ({error.strerror})") from None
        self.flush_interval_s = flush_interval_s
        self.chunk_samples = chunk_samples
        self.fsync_interval_s = fsync_interval_s
        self._buffers: list[list[tuple[float, Sequence[float]]]] = [[] for _ in self.specs]
        self._last_flush = time.monotonic()
        self._last_fsync = self._last_flush
        self.samples_written = 0
        self.events_written = 0
        self.header = new_header(self.specs, **dict(header_extra or {}))
        self._file.write(MAGIC + _record(TYPE_HEADER, _json(self.header)))
        self._file.flush()

    @property
    def bytes_written(self) -> int:
        """Bytes of the file so far (buffered samples not included)."""
        return self._file.tell()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run."""
        return self._file.closed

    def append(self, stream: str, t: float, values: Sequence[float]) -> None:
        """Buffer one sample (values in the stream's channel order)."""
        buffer = self._buffers[self._index[stream]]
        buffer.append((t, values))
        now = time.monotonic()
        if len(buffer) >= self.chunk_samples or now - self._last_flush >= self.flush_interval_s:
            self.flush(now)

    def append_block(self, stream: str, times: np.ndarray, values: np.ndarray) -> None:
        """Write many samples at once: ``values`` has one row per sample, one column per channel."""
        index = self._index[stream]
        self.flush()
        times = np.asarray(times, dtype="<f8")
        values = np.asarray(values, dtype="<f8").reshape(len(times), -1)
        for start in range(0, len(times), self.chunk_samples):
            t_part = times[start : start + self.chunk_samples]
            v_part = values[start : start + self.chunk_samples]
            payload = SAMPLES_HEADER.pack(index, len(t_part), v_part.shape[1]) + t_part.tobytes() + v_part.T.copy().tobytes()
            self._file.write(_record(TYPE_SAMPLES, payload))
            self.samples_written += len(t_part)
        self._file.flush()

    def event(self, t: float, kind: str, label: str = "", **extra: Any) -> None:
        """Write an event (flushing buffered samples first, so order is kept)."""
        if kind not in EVENT_KINDS:
            raise TraceError(f"unknown event kind {kind!r} (one of {', '.join(EVENT_KINDS)})")
        self.flush()
        self._file.write(_record(TYPE_EVENTS, _json([Event(t, kind, label, extra).to_dict()])))
        self._file.flush()
        self.events_written += 1

    def meta(self, **updates: Any) -> None:
        """Record later header updates, e.g. a clock offset measured after the start."""
        self._file.write(_record(TYPE_META, _json(updates)))
        self._file.flush()

    def flush(self, now: float | None = None) -> None:
        """Write buffered samples as one chunk per stream and hand them to the OS."""
        wrote = False
        for index, buffer in enumerate(self._buffers):
            if not buffer:
                continue
            times = np.fromiter((row[0] for row in buffer), dtype="<f8", count=len(buffer))
            values = np.asarray([row[1] for row in buffer], dtype="<f8").reshape(len(buffer), -1)
            payload = SAMPLES_HEADER.pack(index, len(buffer), values.shape[1]) + times.tobytes() + values.T.copy().tobytes()
            self._file.write(_record(TYPE_SAMPLES, payload))
            self.samples_written += len(buffer)
            buffer.clear()
            wrote = True
        now = time.monotonic() if now is None else now
        self._last_flush = now
        if wrote:
            self._file.flush()
            if now - self._last_fsync >= self.fsync_interval_s:
                os.fsync(self._file.fileno())
                self._last_fsync = now

    def close(self) -> None:
        """Flush, write the close record with totals, fsync and close."""
        if self._file.closed:
            return
        self.flush()
        self._file.write(_record(TYPE_CLOSE, _json({"samples": self.samples_written, "events": self.events_written})))
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def __enter__(self) -> "TraceWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _decode_samples(payload: bytes, specs: list[StreamSpec]) -> tuple[int, np.ndarray, np.ndarray]:
    stream, n, channels = SAMPLES_HEADER.unpack_from(payload)
    if stream >= len(specs) or channels != len(specs[stream].channels):
        raise TraceError(f"samples chunk for unknown stream {stream} or wrong channel count {channels}")
    expected = SAMPLES_HEADER.size + 8 * n * (1 + channels)
    if len(payload) != expected:
        raise TraceError(f"samples chunk of {len(payload)} bytes, expected {expected}")
    body = np.frombuffer(payload, dtype="<f8", offset=SAMPLES_HEADER.size)
    return stream, body[:n], body[n:].reshape(channels, n)


def read_trace(path: str | Path) -> Trace:
    """Read a trace, verifying every chunk's CRC; damaged chunks are reported and skipped."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise TraceError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise TraceError(f"{path}: is a directory") from None
    if not data.startswith(MAGIC):
        raise TraceError(f"{path}: not an EdgeTran trace (bad magic; use `edgetran trace import` for CSV)")
    header: dict | None = None
    specs: list[StreamSpec] = []
    chunks: list[list[tuple[np.ndarray, np.ndarray]]] = []
    events: list[Event] = []
    problems: list[str] = []
    closed = False
    position = len(MAGIC)
    while position < len(data):
        if len(data) - position < RECORD_HEADER.size:
            problems.append(f"truncated record at byte {position} (recording was cut short)")
            break
        sync, record_type, length, crc = RECORD_HEADER.unpack_from(data, position)
        start = position + RECORD_HEADER.size
        end = start + length
        reason = None
        if sync != SYNC:
            reason = "lost sync"
        elif record_type not in RECORD_TYPES or length > MAX_PAYLOAD_BYTES:
            reason = f"bad record type {record_type} or length {length}"
        elif end > len(data):
            problems.append(f"truncated record at byte {position} (recording was cut short)")
            break
        elif _crc(record_type, data[start:end]) != crc:
            reason = "CRC mismatch"
        if reason is not None:
            resume = data.find(SYNC, position + 1)
            problems.append(f"damaged record at byte {position} ({reason}); skipped to byte {resume if resume >= 0 else len(data)}")
            if resume < 0:
                break
            position = resume
            continue
        payload = data[start:end]
        position = end
        try:
            if record_type == TYPE_HEADER:
                header = json.loads(payload)
                specs = [StreamSpec.from_dict(s) for s in header.get("streams", [])]
                chunks = [[] for _ in specs]
            elif record_type == TYPE_META and header is not None:
                header.update(json.loads(payload))
            elif record_type == TYPE_EVENTS:
                events.extend(Event.from_dict(e) for e in json.loads(payload))
            elif record_type == TYPE_SAMPLES:
                stream, times, values = _decode_samples(payload, specs)
                chunks[stream].append((times, values))
            elif record_type == TYPE_CLOSE:
                closed = True
        except (ValueError, KeyError, TypeError, struct.error) as error:
            problems.append(f"unreadable record at byte {position - length - RECORD_HEADER.size}: {error}")
    if header is None:
        raise TraceError(f"{path}: no readable header")
    streams = {}
    for spec, parts in zip(specs, chunks):
        t = np.concatenate([p[0] for p in parts]) if parts else np.empty(0)
        values = np.concatenate([p[1] for p in parts], axis=1) if parts else np.empty((len(spec.channels), 0))
        order = np.argsort(t, kind="stable")
        streams[spec.name] = Stream(spec, t[order], {c: values[i][order] for i, c in enumerate(spec.channels)})
    events.sort(key=lambda e: e.t)
    return Trace(header, streams, events, problems, closed)


def write_trace(path: str | Path, trace: Trace, overwrite: bool = False) -> None:
    """Write an in-memory trace (e.g. an import) as a trace file, atomically."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise TraceError(f"{path}: already exists (refusing to overwrite a recording)")
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        specs = [s.spec for s in trace.streams.values()]
        extra = {k: v for k, v in trace.header.items() if k not in ("format", "version", "streams", "created_utc", "created_monotonic_s", "time_base")}
        with TraceWriter(tmp, specs, header_extra=extra, overwrite=True, chunk_samples=65536, flush_interval_s=1e9) as writer:
            events = sorted(trace.events, key=lambda e: e.t)
            for stream in trace.streams.values():
                columns = np.vstack([stream.values[c] for c in stream.spec.channels]).T
                writer.append_block(stream.spec.name, stream.t, columns)
            for event in events:
                writer.event(event.t, event.kind, event.label, **dict(event.extra))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def iter_rows(stream: Stream) -> Iterable[tuple[float, list[float]]]:
    """(t, values in channel order) for each sample of a stream."""
    columns = [stream.values[c] for c in stream.spec.channels]
    for i, t in enumerate(stream.t.tolist()):
        yield t, [float(col[i]) for col in columns]
