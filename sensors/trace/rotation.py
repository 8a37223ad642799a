"""A recording split into a *set* of trace files, rotated by size and by UTC day, with retention.

A daemon on a Pi records for weeks: one never-rotated file at 1 kHz grows ~3.5 GB/day and
fills an SD card. :class:`RotatingTraceWriter` has the methods of :class:`TraceWriter`
(``append``, ``append_block``, ``event``, ``meta``, ``flush``, ``close``, context manager)
and writes into ``directory``:

    <stem>-<YYYYMMDDTHHMMSS>Z-<seq:06d>.ettrace

* A new file starts when the current one reaches ``max_bytes`` (checked after every write,
  so a file may exceed it by at most one chunk) or, with ``rotate_daily``, when the UTC day
  of ``clock()`` changes. Each file is a complete trace (magic, header with the stream specs,
  close record), so any one file can be read alone.
* Names sort by time: the UTC start time (from ``clock``, seconds since the epoch) then a
  sequence number that continues from the highest one already in the directory for this
  stem (two files in the same second, or a wall clock stepped back, still sort in the
  order they were written, as long as the clock is not stepped back by more than the
  rotation period).
* Retention: before and after each new file (and at start) the oldest files of the set
  are deleted while the set holds more than ``keep_bytes`` bytes or more than
  ``keep_files`` files (before: so a full disk gets space back before the new file is
  created). The file being written is never deleted (so the limit can be exceeded by it
  alone). If the new file cannot be created (the disk is still full), the error
  propagates and the next write tries again.
* Every file's header carries ``rotation``: ``{"set": stem, "session": id, "sequence":
  n, "index": i}`` where ``session`` identifies one writer (one daemon run: one clock
  base) and ``index`` counts its files from 0. Later ``meta`` updates (e.g. a clock
  offset) are carried into the headers of the following files.

:func:`list_set` lists the files of a set, :mod:`sensors.trace.stream` reads them as one
trace (one session) chunk by chunk.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from sensors.trace.format import StreamSpec, TraceError, TraceWriter

DEFAULT_MAX_BYTES = 256 * 2**20  # one file at most 256 MiB (~18 min at 2 kHz, 4 channels)
DEFAULT_KEEP_BYTES = 2 * 2**30  # the set keeps at most 2 GiB
SUFFIX = ".ettrace"
_NAME = re.compile(r"^(?P<stem>.+)-(?P<stamp>\d{8}T\d{6})Z-(?P<seq>\d{6})\.ettrace$")


@dataclass(frozen=True)
class SetFile:
    """One file of a rotated set: its path, UTC start stamp, sequence number and size."""

    path: Path
    stem: str
    started_utc: datetime
    sequence: int
    size_bytes: int


def set_file_name(stem: str, wall_s: float, sequence: int) -> str:
    """The file name of a set member started at ``wall_s`` (seconds since the epoch, UTC)."""
    stamp = datetime.fromtimestamp(wall_s, timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{stem}-{stamp}Z-{sequence:06d}{SUFFIX}"


def list_set(directory: str | Path, stem: str | None = None) -> list[SetFile]:
    """Files of the rotated set(s) in ``directory`` (one stem, or all), oldest first."""
    directory = Path(directory)
    if not directory.is_dir():
        raise TraceError(f"{directory}: not a directory")
    files = []
    for entry in directory.iterdir():
        match = _NAME.match(entry.name)
        if match is None or (stem is not None and match["stem"] != stem) or not entry.is_file():
            continue
        try:
            size = entry.stat().st_size
        except FileNotFoundError:  # deleted by a writer's retention meanwhile
            continue
        started = datetime.strptime(match["stamp"], "%Y%m%dT%H%M%S").replace(tzinfo=timezone.utc)
        files.append(SetFile(entry, match["stem"], started, int(match["seq"]), size))
    files.sort(key=lambda f: (f.stem, f.started_utc, f.sequence))
    return files


def _utc_day(wall_s: float) -> str:
    return datetime.fromtimestamp(wall_s, timezone.utc).strftime("%Y-%m-%d")


class RotatingTraceWriter:
    """A :class:`TraceWriter` that starts a new file by size and by UTC day and deletes the oldest."""

    def __init__(
        self,
        directory: str | Path,
        stem: str,
        streams: Sequence[StreamSpec],
        header_extra: Mapping[str, Any] | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        rotate_daily: bool = True,
        keep_bytes: int | None = DEFAULT_KEEP_BYTES,
        keep_files: int | None = None,
        clock: Callable[[], float] = time.time,
        **writer_options: Any,
    ) -> None:
        if not stem or "/" in stem or os.sep in stem:
            raise TraceError(f"trace set stem must be a plain file name part, got {stem!r}")
        if max_bytes <= 0:
            raise TraceError(f"max_bytes must be positive, got {max_bytes}")
        if keep_files is not None and keep_files < 1:
            raise TraceError(f"keep_files must be at least 1, got {keep_files}")
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise TraceError(f"{self.directory}: cannot create directory ({error.strerror})") from None
        self.stem = stem
        self.specs = list(streams)
        self.header_extra = dict(header_extra or {})
        self.max_bytes = int(max_bytes)
        self.rotate_daily = rotate_daily
        self.keep_bytes = keep_bytes
        self.keep_files = keep_files
        self.clock = clock
        self.writer_options = writer_options
        self.session = uuid.uuid4().hex[:12]
        self.files_written = 0
        self.files_deleted: list[Path] = []
        self._finished_samples = 0
        self.events_written = 0
        self._meta: dict[str, Any] = {}
        existing = list_set(self.directory, stem)
        self._sequence = max((f.sequence for f in existing), default=-1) + 1
        self._writer: TraceWriter | None = None
        self._path = self.directory
        self._closed = False
        self._day = ""
        self._open()

    # -- TraceWriter's interface -------------------------------------------------------

    @property
    def path(self) -> Path:
        """The file being written now."""
        return self._path

    @property
    def samples_written(self) -> int:
        """Samples written to all files of this writer so far."""
        return self._finished_samples + (self._writer.samples_written if self._writer is not None else 0)

    @property
    def flush_interval_s(self) -> float:
        """The file writers' flush interval."""
        return float(self.writer_options.get("flush_interval_s", 0.25))

    @property
    def _last_flush(self) -> float:  # the daemon reads this to decide when to flush
        return self._writer._last_flush if self._writer is not None else float("-inf")

    def _current(self) -> TraceWriter:
        """The file writer; after a rotation whose new file could not be opened, try again now."""
        if self._writer is None:
            if self._closed:
                raise TraceError(f"{self.directory}/{self.stem}: the rotating writer is closed")
            self._open()
        return self._writer

    def append(self, stream: str, t: float, values: Sequence[float]) -> None:
        """Buffer one sample; rotate afterwards if the file is full or the day changed."""
        before = self._current().samples_written
        self._writer.append(stream, t, values)
        if self._writer.samples_written != before:
            self._maybe_rotate()

    def append_block(self, stream: str, times: np.ndarray, values: np.ndarray) -> None:
        """Write many samples at once (rotation happens between blocks, not inside one)."""
        self._current().append_block(stream, times, values)
        self._maybe_rotate()

    def event(self, t: float, kind: str, label: str = "", **extra: Any) -> None:
        """Write an event into the current file."""
        self._current().event(t, kind, label, **extra)
        self.events_written += 1
        self._maybe_rotate()

    def meta(self, **updates: Any) -> None:
        """Record header updates now and carry them into the headers of later files."""
        self._meta.update(updates)
        self._current().meta(**updates)

    def flush(self, now: float | None = None) -> None:
        """Write buffered samples of the current file; rotate if it is full."""
        before = self._current().samples_written
        self._writer.flush(now)
        if self._writer.samples_written != before:
            self._maybe_rotate()

    def close(self) -> None:
        """Close the current file cleanly (no new file is started)."""
        self._closed = True
        if self._writer is not None:
            self._finish_current()

    def __enter__(self) -> "RotatingTraceWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- rotation --------------------------------------------------------------------

    def files(self) -> list[SetFile]:
        """This set's files now on disk, oldest first."""
        return list_set(self.directory, self.stem)

    def rotate(self) -> Path:
        """Close the current file and start the next one now; return the new path."""
        self._finish_current()
        self._open()
        return self.path

    def _finish_current(self) -> None:
        writer, self._writer = self._writer, None
        self._finished_samples += writer.samples_written
        try:
            writer.close()
        except OSError:
            writer._file.close()  # the close record may be lost (a full disk); the file handle is not
            raise

    def _maybe_rotate(self) -> None:
        if self._writer.bytes_written >= self.max_bytes or (self.rotate_daily and _utc_day(self.clock()) != self._day):
            self.rotate()

    def _open(self) -> None:
        """Start the next file: retention first (a full disk gets space back), then the file, then retention again."""
        self._apply_retention()
        wall = self.clock()
        while True:
            path = self.directory / set_file_name(self.stem, wall, self._sequence)
            header = {
                **self.header_extra,
                **self._meta,
                "rotation": {"set": self.stem, "session": self.session, "sequence": self._sequence, "index": self.files_written},
            }
            try:
                self._writer = TraceWriter(path, self.specs, header_extra=header, **self.writer_options)
            except TraceError:
                if path.exists():  # a stray file with this name: take the next number
                    self._sequence += 1
                    continue
                raise
            break
        self._path = path
        self._sequence += 1
        self.files_written += 1
        self._day = _utc_day(wall)
        self._apply_retention()

    def _apply_retention(self) -> None:
        """Delete the oldest files while the set is over a limit; never the current file."""
        files = self.files()
        total = sum(f.size_bytes for f in files)
        current = self._writer.path if self._writer is not None else None
        for victim in files:
            over_bytes = self.keep_bytes is not None and total > self.keep_bytes
            over_files = self.keep_files is not None and len(files) > self.keep_files
            if not (over_bytes or over_files):
                break
            if victim.path == current:
                continue
            try:
                victim.path.unlink()
            except FileNotFoundError:
                pass
            self.files_deleted.append(victim.path)
            total -= victim.size_bytes
            files = [f for f in files if f.path != victim.path]
