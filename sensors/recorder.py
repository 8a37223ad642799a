"""The daemon's trace writer behind a guard: a write error is recorded, never raised.

A full SD card (``ENOSPC``) or a failing disk must not stop sampling (issue #11 item 2).
:class:`Recorder` wraps whatever writer the daemon records with (a
:class:`sensors.trace.format.TraceWriter`, or a rotating one with the same methods):

* the first error from ``append``/``event``/``flush`` puts it in the *failed* state: the
  error, the time and the count of samples that could not be written are kept for
  ``status``, the broken writer is closed (best effort), and ``on_failure`` is called
  (the daemon records an in-memory event and logs a warning);
* while failed, samples and events are counted as lost, not written; every
  ``retry_s`` the recorder opens a fresh writer (``open_writer(attempt)``: a new file,
  the old one keeps what reached it). On success recording resumes and the new file
  opens with a ``note`` event ``trace_resumed`` naming the lost span and count, so a
  reader sees the hole instead of a silent stop.

Choice: retrying in a new file rather than in the damaged one, because a buffered file
that raised mid-write holds a torn record; the reader resynchronises on the next sync
word either way, and a new file keeps each file's close record meaningful.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

RETRY_S = 10.0  # seconds between attempts to reopen a failed trace


class TraceSink(Protocol):
    """What the daemon needs from a trace writer (TraceWriter and the rotating writer)."""

    def append(self, stream: str, t: float, values: Sequence[float]) -> None: ...
    def append_block(self, stream: str, times: np.ndarray, values: np.ndarray) -> None: ...
    def event(self, t: float, kind: str, label: str = "", **extra: Any) -> None: ...
    def meta(self, **updates: Any) -> None: ...
    def flush(self, now: float | None = None) -> None: ...
    def close(self) -> None: ...


def describe(error: BaseException) -> str:
    """One line for an error: ``OSError [Errno 28] No space left on device``."""
    return f"{type(error).__name__}: {error}"


def _inner(writer: Any) -> Any:
    """The per-file writer inside a rotating writer (the writer itself otherwise)."""
    return getattr(writer, "_writer", None) or writer


def writer_path(writer: Any) -> Path | None:
    """The file a writer is writing now."""
    path = getattr(writer, "path", None)
    return Path(path) if path is not None else None


def writer_bytes(writer: Any) -> int:
    """Bytes a writer has handed to its current file."""
    for candidate in (writer, _inner(writer)):
        count = getattr(candidate, "bytes_written", None)
        if count is not None:
            return int(count)
    handle = getattr(writer, "_file", None)
    try:
        return int(handle.tell()) if handle is not None and not handle.closed else 0
    except (OSError, ValueError):
        return 0


class Recorder:
    """A trace writer whose failures become state, with periodic reopening."""

    def __init__(
        self,
        open_writer: Callable[[int], TraceSink],
        retry_s: float = RETRY_S,
        on_failure: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._open = open_writer
        self.retry_s = retry_s
        self.on_failure = on_failure
        self.clock = clock
        self._lock = threading.RLock()  # on_failure runs with it held
        self.attempt = 0
        self.writer: TraceSink | None = open_writer(0)  # a first open that fails is a configuration error: raised
        self.paths: list[Path] = []  # every file this recorder has written, oldest first (some may be deleted by retention)
        self._refresh_paths()
        self.samples_before = 0  # samples written by earlier writers (before a failure)
        self._accepted = 0  # samples handed to the current writer
        self.error: str | None = None
        self.failures = 0
        self.failed_at: float | None = None
        self._last_try = 0.0
        self.samples_lost = 0
        self.events_lost = 0
        self._lost_since: float | None = None
        self._lost_in_stretch = 0
        self.closed = False

    # -- state -----------------------------------------------------------------------

    @property
    def failed(self) -> bool:
        """Whether the recorder is not writing right now."""
        return self.writer is None

    def _refresh_paths(self) -> None:
        """Lock held (or not yet shared): note the writer's current file if it is new (a rotation)."""
        path = writer_path(self.writer)
        if path is not None and (not self.paths or self.paths[-1] != path):
            self.paths.append(path)

    def files(self) -> list[Path]:
        """This recording's files still on disk, oldest first."""
        with self._lock:
            if self.writer is not None:
                self._refresh_paths()
            return [p for p in self.paths if p.exists()]

    def status(self) -> dict:
        """``state`` ok / failed / closed, the error, the current file and bytes written, the files and losses."""
        files = self.files()
        with self._lock:
            current = writer_path(self.writer) if self.writer is not None else None
            on_disk = 0
            for path in files:
                try:
                    on_disk += path.stat().st_size
                except OSError:
                    pass
            return {
                "state": "closed" if self.closed else ("failed" if self.writer is None else "ok"),
                "error": self.error,
                "failures": self.failures,
                "current_file": str(current) if current is not None else None,
                "current_file_bytes": writer_bytes(self.writer) if self.writer is not None else None,
                "samples_written": self.samples_before + (int(getattr(self.writer, "samples_written", 0)) if self.writer is not None else 0),
                "files": [str(p) for p in files],
                "bytes_on_disk": on_disk,
                "samples_lost": self.samples_lost,
                "events_lost": self.events_lost,
            }

    # -- guarded writes --------------------------------------------------------------

    def _fail(self, error: BaseException, t: float) -> None:
        """Lock held: keep the error, drop the writer (samples it took but did not write are lost), tell the daemon."""
        self.error = describe(error)
        self.failures += 1
        self.failed_at = self.clock()
        self._last_try = self.failed_at
        self._lost_since = t
        self._lost_in_stretch = 0
        writer, self.writer = self.writer, None
        if writer is not None:
            written = int(getattr(writer, "samples_written", 0))
            self._lose(samples=max(0, self._accepted - written))
            self.samples_before += written
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - the file is already broken; close() still releases the descriptor
                pass
        if self.on_failure is not None:
            self.on_failure(self.error)

    def _writer_or_retry(self) -> TraceSink | None:
        """Lock held: the writer, reopened when failed and ``retry_s`` have passed."""
        if self.writer is not None:
            return self.writer
        now = self.clock()
        if now - self._last_try < self.retry_s:
            return None
        self._last_try = now
        self.attempt += 1
        writer = None
        try:
            writer = self._open(self.attempt)
            writer.event(now, "note", "trace_resumed", lost_from=self._lost_since, lost_samples=self._lost_in_stretch, error=self.error)
        except Exception as error:  # noqa: BLE001 - still failing: stay failed, try later
            self.error = describe(error)
            if writer is not None:
                try:
                    writer.close()
                except Exception:  # noqa: BLE001 - still broken; close() releases the descriptor
                    pass
            return None
        self.writer = writer
        self._accepted = 0
        self._refresh_paths()
        return writer

    def _lose(self, samples: int = 0, events: int = 0) -> None:
        self.samples_lost += samples
        self._lost_in_stretch += samples
        self.events_lost += events

    def append(self, stream: str, t: float, values: Sequence[float]) -> None:
        """Write one sample, or count it lost."""
        with self._lock:
            writer = self._writer_or_retry()
            if writer is None:
                self._lose(samples=1)
                return
            self._accepted += 1  # handed to this writer: written, or counted lost when it fails
            try:
                writer.append(stream, t, values)
            except Exception as error:  # noqa: BLE001 - a write error must never stop sampling
                self._fail(error, t)

    def event(self, t: float, kind: str, label: str = "", **extra: Any) -> None:
        """Write one event, or count it lost."""
        with self._lock:
            writer = self._writer_or_retry()
            if writer is None:
                self._lose(events=1)
                return
            try:
                writer.event(t, kind, label, **extra)
            except Exception as error:  # noqa: BLE001
                self._fail(error, t)
                self._lose(events=1)

    def meta(self, **updates: Any) -> None:
        """Record a header update (dropped while failed)."""
        with self._lock:
            if self.writer is None:
                return
            try:
                self.writer.meta(**updates)
            except Exception as error:  # noqa: BLE001
                self._fail(error, self.clock())

    def flush_if_due(self) -> None:
        """Flush when the writer's flush interval has passed (the sampling thread calls this every tick)."""
        with self._lock:
            writer = self._writer_or_retry()
            if writer is None:
                return
            self._refresh_paths()  # an append may have rotated to a new file
            last = getattr(writer, "_last_flush", None)
            interval = getattr(writer, "flush_interval_s", 0.0)
            if last is not None and time.monotonic() - last < interval:
                return
            try:
                writer.flush()
            except Exception as error:  # noqa: BLE001
                self._fail(error, self.clock())
                return
            self._refresh_paths()  # a flush may have rotated to a new file

    def flush(self) -> None:
        """Hand buffered samples to the OS now (before reading the trace back)."""
        with self._lock:
            if self.writer is None:
                return
            try:
                self.writer.flush()
            except Exception as error:  # noqa: BLE001
                self._fail(error, self.clock())

    def close(self) -> None:
        """Close the writer (a close that fails is recorded like any write error)."""
        with self._lock:
            self.closed = True
            if self.writer is None:
                return
            self._refresh_paths()
            writer, self.writer = self.writer, None
            try:
                writer.close()
            except Exception as error:  # noqa: BLE001
                self.error = describe(error)
                self.failures += 1
            self.samples_before += int(getattr(writer, "samples_written", 0))
