"""Rotated trace sets: by size, by UTC day, retention by bytes and by count, each file a whole trace."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from sensors.trace.format import StreamSpec, TraceError, read_trace
from sensors.trace.rotation import RotatingTraceWriter, list_set, set_file_name

SPEC = StreamSpec("ina", ("power_w", "bus_v"), {"kind": "emulated-ina219", "update_interval_s": 0.001})
MIDNIGHT = datetime(2026, 12, 2, tzinfo=timezone.utc).timestamp()


class FakeWallClock:
    """A settable UTC wall clock (seconds since the epoch)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def write_samples(writer, n: int, start: int = 0, clock: FakeWallClock | None = None, dt: float = 0.001) -> None:
    for i in range(start, start + n):
        if clock is not None:
            clock.now += dt
        writer.append("ina", i * dt, [float(i), 5.0])


def test_rotates_by_size_and_every_file_is_a_complete_trace(tmp_path: Path):
    clock = FakeWallClock(MIDNIGHT - 3600)
    with RotatingTraceWriter(tmp_path, "bench", [SPEC], {"rate_hz": 1000.0}, max_bytes=20_000, keep_bytes=None, clock=clock,
                             chunk_samples=100, flush_interval_s=1e9) as writer:
        write_samples(writer, 5000, clock=clock)
    files = list_set(tmp_path, "bench")
    assert len(files) >= 5  # 5000 samples x 24 bytes over 20 kB files
    assert [f.path.name for f in files] == sorted(f.path.name for f in files)
    assert [f.sequence for f in files] == list(range(len(files)))
    values = []
    for index, entry in enumerate(files):
        trace = read_trace(entry.path)
        assert trace.closed_cleanly and trace.problems == []
        assert trace.header["rate_hz"] == 1000.0 and trace.header["rotation"]["index"] == index
        assert trace.stream("ina").spec == SPEC
        assert entry.size_bytes < 20_000 + 100 * 24 + 200  # at most one chunk past the limit
        values.append(trace.stream().values["power_w"])
    joined = np.concatenate(values)
    assert np.array_equal(joined, np.arange(5000.0))  # nothing lost or repeated at a boundary
    assert writer.samples_written == 5000
    assert len({read_trace(f.path).header["rotation"]["session"] for f in files}) == 1


def test_rotates_at_utc_midnight(tmp_path: Path):
    clock = FakeWallClock(MIDNIGHT - 1.0)
    with RotatingTraceWriter(tmp_path, "day", [SPEC], clock=clock, chunk_samples=100, flush_interval_s=1e9) as writer:
        write_samples(writer, 1500, clock=clock)  # 1.5 s: crosses midnight once
    files = list_set(tmp_path, "day")
    assert [f.started_utc.day for f in files] == [1, 2]
    assert files[1].path.name.startswith("day-20261202T0000")
    before, after = (read_trace(f.path).stream().t for f in files)
    assert len(before) + len(after) == 1500 and before[-1] < after[0]


def test_retention_by_count_deletes_the_oldest_and_keeps_the_current(tmp_path: Path):
    clock = FakeWallClock(MIDNIGHT - 3600)
    with RotatingTraceWriter(tmp_path, "keep", [SPEC], max_bytes=10_000, keep_bytes=None, keep_files=3, clock=clock,
                             chunk_samples=100, flush_interval_s=1e9) as writer:
        write_samples(writer, 5000, clock=clock)
        current = writer.path
    files = list_set(tmp_path, "keep")
    assert len(files) == 3 and files[-1].path == current
    assert [f.sequence for f in files] == [writer.files_written - 3 + i for i in range(3)]
    assert len(writer.files_deleted) == writer.files_written - 3
    assert read_trace(files[-1].path).stream().values["power_w"][-1] == 4999.0


def test_retention_by_bytes_never_deletes_the_file_being_written(tmp_path: Path):
    clock = FakeWallClock(MIDNIGHT - 3600)
    with RotatingTraceWriter(tmp_path, "tiny", [SPEC], max_bytes=10_000, keep_bytes=1, clock=clock, chunk_samples=100,
                             flush_interval_s=1e9) as writer:
        write_samples(writer, 2000, clock=clock)
        assert writer.path.exists()
        assert [f.path for f in writer.files()] == [writer.path]


def test_meta_is_carried_into_later_files_and_sequence_continues(tmp_path: Path):
    clock = FakeWallClock(MIDNIGHT - 3600)
    with RotatingTraceWriter(tmp_path, "m", [SPEC], max_bytes=5_000, clock=clock, chunk_samples=100, flush_interval_s=1e9) as writer:
        write_samples(writer, 100, clock=clock)
        writer.meta(clock_offset_s=0.0042)
        write_samples(writer, 1000, start=100, clock=clock)
        writer.event(0.5, "marker", "m")
    files = list_set(tmp_path, "m")
    assert all(read_trace(f.path).header["clock_offset_s"] == 0.0042 for f in files)
    first_run = len(files)
    with RotatingTraceWriter(tmp_path, "m", [SPEC], clock=clock) as again:
        assert again.path.name == set_file_name("m", clock.now, first_run)


def test_bad_settings_are_refused(tmp_path: Path):
    with pytest.raises(TraceError, match="stem"):
        RotatingTraceWriter(tmp_path, "a/b", [SPEC])
    with pytest.raises(TraceError, match="keep_files"):
        RotatingTraceWriter(tmp_path, "a", [SPEC], keep_files=0)
    with pytest.raises(TraceError, match="not a directory"):
        list_set(tmp_path / "missing")


def test_a_new_file_that_cannot_be_created_is_tried_again_on_the_next_write(tmp_path: Path, monkeypatch):
    import errno

    import sensors.trace.rotation as rotation

    real = rotation.TraceWriter
    failures = []

    def flaky(*args, **kwargs):
        if failures == []:
            failures.append(1)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    clock = FakeWallClock(MIDNIGHT - 3600)
    writer = RotatingTraceWriter(tmp_path, "r", [SPEC], max_bytes=5_000, clock=clock, chunk_samples=100, flush_interval_s=1e9)
    monkeypatch.setattr(rotation, "TraceWriter", flaky)
    lost = 0
    for i in range(1000):
        try:
            writer.append("ina", i * 0.001, [float(i), 5.0])
        except OSError:
            lost += 1  # the sample that filled the file was written; opening the next one failed
    writer.close()
    assert failures == [1] and lost == 1
    files = list_set(tmp_path, "r")
    total = sum(len(read_trace(f.path).stream().t) for f in files)
    assert total == 1000 and all(read_trace(f.path).closed_cleanly for f in files)
    with pytest.raises(TraceError, match="closed"):
        writer.append("ina", 2.0, [1.0, 5.0])
