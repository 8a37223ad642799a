"""The trace file: append-only, chunked, CRCs per record header and payload, a header and an event stream.

The framing (sync word, type, length, sequence number, payload CRC, header CRC) is in
:mod:`sensors.trace.records`; this module gives the records their meaning. Records:

* **header** (JSON, type 1): format, version, creation time (UTC and monotonic), clock
  offset and its uncertainty, and the *streams*: one per sensor, with its channels, the
  sensor's own update interval and precision (``SensorInfo``) and the polling interval.
* **samples** (type 2): ``u16 stream, u32 n, u16 channels, u64 first`` (version 2: the
  index of the chunk's first sample in its stream, so a reader counts lost samples
  exactly), then ``n`` float64 times and, per channel in header order, ``n`` float64
  values (NaN where a value is invalid). Version 1 has no ``first``.
* **events** (JSON list, type 3): ``{"t", "kind", "label", ...}``; kinds ``window_begin``,
  ``window_end``, ``marker``, ``gap_begin``, ``gap_end``, ``note``.
* **meta** (JSON, type 4): later header updates (e.g. a clock offset measured after the start).
* **specs** (JSON, type 6, version 2): the whole current header again (meta applied),
  written after the first sample chunk and then every ``spec_every_chunks`` chunks (256)
  or ``spec_every_s`` (60 s), whichever comes first, so a trace whose header is damaged
  is still readable (a short one too): the
  reader takes the first specs record and reads every sample, those before it too.
* **close** (JSON, type 5): totals written by a clean close (per stream in version 2);
  a trace without it was cut short.

The writer flushes a samples record to the operating system at least every
``flush_interval_s`` (0.25 s by default) and on every event, so a process killed with
SIGKILL loses at most the samples of the last flush interval; ``fsync`` runs every
``fsync_interval_s`` and on close (power loss may lose up to that much).

The reader (:class:`TraceReader`) goes through a file record by record, never holding
more than one chunk: damaged records are skipped (see :mod:`sensors.trace.records`) and
reported in a :class:`Damage` (regions, records lost by sequence number, samples lost
per stream by sample index; version-1 files cannot say how many samples a damaged
record held). :func:`read_trace` collects everything into memory.
"""

from __future__ import annotations

import errno
import json
import os
import struct
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from sensors.trace.records import (
    MAGIC_V1,
    MAGIC_V2,
    MAX_PAYLOAD_BYTES,
    SYNC,
    TYPE_CLOSE,
    TYPE_EVENTS,
    TYPE_HEADER,
    TYPE_META,
    TYPE_SAMPLES,
    TYPE_SPECS,
    DamagedRegion,
    RecordScanner,
    encode_record,
)

MAGIC = MAGIC_V2
SAMPLES_HEADER_V1 = struct.Struct("<HIH")  # stream, n samples, n channels
SAMPLES_HEADER = struct.Struct("<HIHQ")  # stream, n samples, n channels, index of the first sample
FORMAT_NAME = "edgetran-trace"
FORMAT_VERSION = 2
EVENT_KINDS = ("window_begin", "window_end", "marker", "gap_begin", "gap_end", "note")
SPEC_EVERY_CHUNKS = 256  # repeat the stream specification at least every 256 sample chunks
SPEC_EVERY_S = 60.0  # ... and at least every 60 s


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
class Damage:
    """What a reader had to skip: byte regions, records lost (by sequence number), samples lost per stream."""

    regions: list[DamagedRegion] = field(default_factory=list)
    records_lost: int = 0
    samples_lost: dict[str, int] = field(default_factory=dict)
    truncated_at: int | None = None
    header_damaged: bool = False

    @property
    def any(self) -> bool:
        """Whether anything was lost or skipped."""
        return bool(self.regions or self.records_lost or self.samples_lost or self.header_damaged)

    def to_dict(self) -> dict:
        """JSON form (what `trace info --json` prints as ``damage``)."""
        return {
            "regions": [r.to_dict() for r in self.regions],
            "records_lost": self.records_lost,
            "samples_lost": dict(self.samples_lost),
            "truncated_at": self.truncated_at,
            "header_damaged": self.header_damaged,
        }


@dataclass
class Trace:
    """A whole trace in memory: header, streams, events, and what the reader had to skip."""

    header: dict
    streams: dict[str, Stream]
    events: list[Event]
    problems: list[str] = field(default_factory=list)
    closed_cleanly: bool = False
    damage: Damage = field(default_factory=Damage)

    def stream(self, name: str | None = None) -> Stream:
        """A stream by name, or the first one."""
        if not self.streams:
            raise TraceError("trace has no streams")
        if name is None:
            return next(iter(self.streams.values()))
        if name not in self.streams:
            raise TraceError(f"trace has no stream {name!r} (streams: {', '.join(self.streams)})")
        return self.streams[name]


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
        spec_every_chunks: int = SPEC_EVERY_CHUNKS,
        spec_every_s: float = SPEC_EVERY_S,
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
            # Unbuffered: every record is one write the writer sees complete or not, so a
            # chunk cut short by a full disk is never counted as written (a buffered file
            # accepted it and lost it at the next flush).
            self._file = open(self.path, mode, buffering=0)
        except FileExistsError:
            raise TraceError(f"{self.path}: already exists (refusing to overwrite a recording)") from None
        except OSError as error:
            raise TraceError(f"{self.path}: cannot create ({error.strerror})") from None
        self.flush_interval_s = flush_interval_s
        self.chunk_samples = chunk_samples
        self.fsync_interval_s = fsync_interval_s
        self.spec_every_chunks = max(1, int(spec_every_chunks))
        self.spec_every_s = spec_every_s
        self._buffers: list[list[tuple[float, Sequence[float]]]] = [[] for _ in self.specs]
        self._written = [0] * len(self.specs)  # samples written per stream (the next chunk's first index)
        self._last_flush = time.monotonic()
        self._last_fsync = self._last_flush
        self._last_spec = self._last_flush
        self._chunks_since_spec = self.spec_every_chunks - 1  # the first copy right after the first chunk: short traces have one too
        self._seq = 0
        self.samples_written = 0
        self.events_written = 0
        self.header = new_header(self.specs, **dict(header_extra or {}))
        self._put(MAGIC + self._record(TYPE_HEADER, _json(self.header)))
        self._file.flush()

    def _put(self, data: bytes) -> None:
        """Write all of ``data`` or raise: a short write (a full disk) is retried, then raises ENOSPC."""
        view = memoryview(data)
        while view:
            count = self._file.write(view)
            if not count:
                raise OSError(errno.ENOSPC, f"{self.path}: short write ({len(view)} bytes not written)")
            view = view[count:]

    def _record(self, record_type: int, payload: bytes) -> bytes:
        data = encode_record(record_type, payload, self._seq)
        self._seq += 1
        return data

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

    def _write_chunk(self, index: int, times: np.ndarray, values: np.ndarray) -> None:
        """One samples record (times ``<f8``, values one row per sample), then the specs if due."""
        payload = SAMPLES_HEADER.pack(index, len(times), values.shape[1], self._written[index]) + times.tobytes() + values.T.copy().tobytes()
        # Counted before the write: a chunk whose write fails (ENOSPC) is lost, and the
        # next chunk's first index tells a reader exactly how many samples.
        self._written[index] += len(times)
        self._put(self._record(TYPE_SAMPLES, payload))
        self.samples_written += len(times)
        self._chunks_since_spec += 1
        now = time.monotonic()
        if self._chunks_since_spec >= self.spec_every_chunks or now - self._last_spec >= self.spec_every_s:
            self._put(self._record(TYPE_SPECS, _json(self.header)))
            self._chunks_since_spec = 0
            self._last_spec = now

    def append_block(self, stream: str, times: np.ndarray, values: np.ndarray) -> None:
        """Write many samples at once: ``values`` has one row per sample, one column per channel."""
        index = self._index[stream]
        self.flush()
        times = np.asarray(times, dtype="<f8")
        values = np.asarray(values, dtype="<f8").reshape(len(times), -1)
        for start in range(0, len(times), self.chunk_samples):
            self._write_chunk(index, times[start : start + self.chunk_samples], values[start : start + self.chunk_samples])
        self._file.flush()

    def event(self, t: float, kind: str, label: str = "", **extra: Any) -> None:
        """Write an event (flushing buffered samples first, so order is kept)."""
        if kind not in EVENT_KINDS:
            raise TraceError(f"unknown event kind {kind!r} (one of {', '.join(EVENT_KINDS)})")
        self.flush()
        self._put(self._record(TYPE_EVENTS, _json([Event(t, kind, label, extra).to_dict()])))
        self._file.flush()
        self.events_written += 1

    def meta(self, **updates: Any) -> None:
        """Record later header updates, e.g. a clock offset measured after the start."""
        self.header.update(updates)  # carried by the repeated specs records too
        self._put(self._record(TYPE_META, _json(updates)))
        self._file.flush()

    def flush(self, now: float | None = None) -> None:
        """Write buffered samples as one chunk per stream and hand them to the OS.

        A write error propagates; the chunk being written is dropped (never written twice).
        """
        wrote = False
        for index, buffer in enumerate(self._buffers):
            if not buffer:
                continue
            times = np.fromiter((row[0] for row in buffer), dtype="<f8", count=len(buffer))
            values = np.asarray([row[1] for row in buffer], dtype="<f8").reshape(len(buffer), -1)
            buffer.clear()
            self._write_chunk(index, times, values)
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
        totals = {"samples": self.samples_written, "events": self.events_written, "records": self._seq + 1,
                  "streams": {spec.name: n for spec, n in zip(self.specs, self._written)}}
        self._put(self._record(TYPE_CLOSE, _json(totals)))
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def __enter__(self) -> "TraceWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class Chunk:
    """One samples record as read: stream index, times, values (channels x n), first sample index (v2)."""

    stream: int
    t: np.ndarray
    values: np.ndarray
    first: int | None


def _decode_samples(payload: bytes, specs: list[StreamSpec], version: int) -> Chunk:
    layout = SAMPLES_HEADER if version >= 2 else SAMPLES_HEADER_V1
    fields = layout.unpack_from(payload)
    stream, n, channels = fields[:3]
    first = fields[3] if version >= 2 else None
    if stream >= len(specs) or channels != len(specs[stream].channels):
        raise TraceError(f"samples chunk for unknown stream {stream} or wrong channel count {channels}")
    expected = layout.size + 8 * n * (1 + channels)
    if len(payload) != expected:
        raise TraceError(f"samples chunk of {len(payload)} bytes, expected {expected}")
    body = np.frombuffer(payload, dtype="<f8", offset=layout.size)
    return Chunk(stream, body[:n], body[n:].reshape(channels, n), first)


class TraceReader:
    """Read a trace file record by record: header first, then chunks and events, with damage accounting.

    Use as a context manager; :meth:`items` yields ``Chunk`` objects and ``Event`` lists in
    file order. ``header``, ``specs``, ``damage``, ``problems`` and ``closed_cleanly`` are
    complete once :meth:`items` is exhausted.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._handle = open(self.path, "rb")
        except FileNotFoundError:
            raise TraceError(f"{self.path}: file not found") from None
        except IsADirectoryError:
            raise TraceError(f"{self.path}: is a directory") from None
        except OSError as error:
            raise TraceError(f"{self.path}: cannot read ({error.strerror})") from None
        try:
            self._scanner = RecordScanner(self._handle, str(self.path))
        except ValueError:
            self._handle.close()
            raise TraceError(f"{self.path}: not an EdgeTran trace (bad magic; use `edgetran trace import` for CSV)") from None
        self.version = self._scanner.version
        self.damage = Damage()
        self.problems: list[str] = []
        if self._scanner.magic_damaged:
            self.problems.append("damaged magic at byte 0 (a valid record follows it: read anyway)")
        self.closed_cleanly = False
        self.close_totals: dict = {}
        self.header = self._find_header()
        self.specs = [StreamSpec.from_dict(s) for s in self.header.get("streams", [])]
        self._expected = [0] * len(self.specs)
        self._last_t = [float("nan")] * len(self.specs)

    def _find_header(self) -> dict:
        """The header record, or (when it is damaged) the first repeated specification."""
        scanner = RecordScanner(self._handle, str(self.path))
        for record in scanner.records():
            if record.type in (TYPE_HEADER, TYPE_SPECS):
                try:
                    header = json.loads(record.payload)
                except ValueError:
                    continue
                if record.type == TYPE_SPECS or record.offset != scanner.start:
                    self.damage.header_damaged = True
                    self.problems.append(f"header damaged; stream specification taken from the {'repeated specification' if record.type == TYPE_SPECS else 'header'} at byte {record.offset}")
                return header
        raise TraceError(f"{self.path}: no readable header (and no repeated stream specification)")

    def items(self) -> Iterator[Chunk | list[Event]]:
        """Chunks and event lists in file order (valid records only; damage is recorded)."""
        seq_next = 0
        reported = 0
        scanner = self._scanner
        for record in scanner.records():
            while reported < len(scanner.damaged):
                region = scanner.damaged[reported]
                self.damage.regions.append(region)
                self.problems.append(f"damaged record at byte {region.offset} ({region.reason}); skipped to byte {region.resume}")
                reported += 1
            if record.seq is not None:
                if record.seq > seq_next:
                    self.damage.records_lost += record.seq - seq_next
                seq_next = max(seq_next, record.seq + 1)
            try:
                if record.type == TYPE_META:
                    self.header.update(json.loads(record.payload))
                elif record.type == TYPE_SPECS:
                    update = json.loads(record.payload)
                    self.header.update({k: v for k, v in update.items() if k not in ("streams", "format", "version")})
                elif record.type == TYPE_EVENTS:
                    yield [Event.from_dict(e) for e in json.loads(record.payload)]
                elif record.type == TYPE_SAMPLES:
                    chunk = _decode_samples(record.payload, self.specs, self.version)
                    lost = self._count_samples(chunk.stream, chunk.first, len(chunk.t))
                    if lost and len(chunk.t):
                        before = self._last_t[chunk.stream]
                        self.problems.append(f"{self.specs[chunk.stream].name}: {lost} samples lost between t={before:.6f} and t={chunk.t[0]:.6f}")
                    if len(chunk.t):
                        self._last_t[chunk.stream] = float(chunk.t[-1])
                    yield chunk
                elif record.type == TYPE_CLOSE:
                    self.closed_cleanly = True
                    self.close_totals = json.loads(record.payload)
            except (ValueError, KeyError, TypeError, struct.error) as error:
                self.problems.append(f"unreadable record at byte {record.offset}: {error}")
        for region in scanner.damaged[reported:]:
            self.damage.regions.append(region)
            self.problems.append(f"damaged record at byte {region.offset} ({region.reason}); skipped to the end of the file")
        if scanner.truncated_at is not None:
            self.damage.truncated_at = scanner.truncated_at
            self.problems.append(f"truncated record at byte {scanner.truncated_at} (recording was cut short)")
        totals = self.close_totals.get("streams") if isinstance(self.close_totals, dict) else None
        if isinstance(totals, dict):
            for index, spec in enumerate(self.specs):
                if lost := self._count_samples(index, totals.get(spec.name), 0):
                    self.problems.append(f"{spec.name}: {lost} samples lost after t={self._last_t[index]:.6f}")
            if isinstance(self.close_totals.get("records"), int) and self.close_totals["records"] > seq_next:
                self.damage.records_lost += self.close_totals["records"] - seq_next
        elif self.version == 1:
            self.damage.records_lost = len(self.damage.regions)  # v1 has no sequence numbers: one per region

    def _count_samples(self, stream: int, first: int | None, n: int) -> int:
        """Samples missing before a chunk starting at sample ``first`` (0 when none or unknown)."""
        if not isinstance(first, int):
            return 0
        lost = max(0, first - self._expected[stream])
        if lost:
            name = self.specs[stream].name
            self.damage.samples_lost[name] = self.damage.samples_lost.get(name, 0) + lost
        self._expected[stream] = max(self._expected[stream], first + n)
        return lost

    def chunks(self, stream: int | None = None) -> Iterator[Chunk]:
        """Only the samples chunks (of one stream index, or all)."""
        for item in self.items():
            if isinstance(item, Chunk) and (stream is None or item.stream == stream):
                yield item

    def close(self) -> None:
        """Close the file."""
        self._handle.close()

    def __enter__(self) -> "TraceReader":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_trace(path: str | Path) -> Trace:
    """Read a whole trace into memory, verifying every CRC; damaged records are reported and skipped."""
    with TraceReader(path) as reader:
        chunks: list[list[Chunk]] = [[] for _ in reader.specs]
        events: list[Event] = []
        for item in reader.items():
            if isinstance(item, Chunk):
                chunks[item.stream].append(item)
            else:
                events.extend(item)
    streams = {}
    for spec, parts in zip(reader.specs, chunks):
        t = np.concatenate([p.t for p in parts]) if parts else np.empty(0)
        values = np.concatenate([p.values for p in parts], axis=1) if parts else np.empty((len(spec.channels), 0))
        order = np.argsort(t, kind="stable")
        streams[spec.name] = Stream(spec, t[order], {c: values[i][order] for i, c in enumerate(spec.channels)})
    events.sort(key=lambda e: e.t)
    return Trace(reader.header, streams, events, reader.problems, reader.closed_cleanly, reader.damage)


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
