"""Damaged traces: a flipped bit in a record length, in the header, in a payload; everything else is recovered."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np

from sensors.trace.format import SYNC, StreamSpec, TraceWriter, read_trace

FIXTURES = Path(__file__).parent / "fixtures"
SPEC = StreamSpec("ina", ("power_w", "bus_v"), {"kind": "emulated-ina219", "update_interval_s": 0.001})


def write(path: Path, n: int = 1000, **options) -> Path:
    with TraceWriter(path, [SPEC], chunk_samples=100, flush_interval_s=1e9, **options) as writer:
        for i in range(n):
            writer.append("ina", i * 0.001, [float(i), 5.0])
            if i == 500:
                writer.event(i * 0.001, "marker", "half")
    return path


def record_offsets(data: bytes) -> list[int]:
    """Offsets of the records, by their sync words (the test data holds no false ones: checked)."""
    return [i for i in range(len(data)) if data[i : i + 4] == SYNC]


def sample_records(data: bytes) -> list[int]:
    """Offsets of the samples records (type 2), in order: the k-th holds samples 100k..100k+99 here."""
    return [offset for offset in record_offsets(data) if data[offset + 4] == 2]


def flip(path: Path, byte: int, bit: int) -> None:
    data = bytearray(path.read_bytes())
    data[byte] ^= 1 << bit
    path.write_bytes(bytes(data))


def test_flipped_bit_in_a_record_length_loses_only_that_record(tmp_path: Path):
    path = write(tmp_path / "len.ettrace")
    victim = sample_records(path.read_bytes())[3]  # samples 300..399
    flip(path, victim + 5 + 2, 4)  # bit 20 of the u32 length: the length now runs past the end of the file
    trace = read_trace(path)
    values = trace.stream().values["power_w"]
    assert len(values) == 900 and 350.0 not in values and 999.0 in values
    assert trace.closed_cleanly and [e.label for e in trace.events] == ["half"]
    assert trace.damage.records_lost == 1 and trace.damage.samples_lost == {"ina": 100}
    assert trace.damage.regions[0].offset == victim
    assert any("damaged record" in p and str(victim) in p for p in trace.problems)
    assert not any("truncated" in p for p in trace.problems)


def test_flipped_bit_in_a_payload_loses_that_chunk_and_says_how_many_samples(tmp_path: Path):
    path = write(tmp_path / "payload.ettrace")
    flip(path, sample_records(path.read_bytes())[2] + 60, 0)  # inside samples 200..299
    trace = read_trace(path)
    values = trace.stream().values["power_w"]
    assert len(values) == 900 and 250.0 not in values and 300.0 in values
    assert trace.damage.records_lost == 1 and trace.damage.samples_lost == {"ina": 100}
    assert "CRC" in trace.damage.regions[0].reason
    assert "ina: 100 samples lost between t=0.199000 and t=0.300000" in trace.problems  # where, in the trace's time


def test_damaged_header_is_recovered_from_the_repeated_stream_specification(tmp_path: Path):
    path = write(tmp_path / "header.ettrace", spec_every_chunks=3)
    offsets = record_offsets(path.read_bytes())
    flip(path, offsets[0] + 40, 3)  # inside the header's JSON
    trace = read_trace(path)
    stream = trace.stream("ina")
    assert stream.spec == SPEC
    assert np.array_equal(stream.values["power_w"], np.arange(1000.0))  # even the samples before the first repeat
    assert trace.damage.records_lost == 1 and trace.damage.samples_lost == {}
    assert any("header" in p for p in trace.problems)


def test_damaged_header_length_is_recovered_too_in_a_short_trace_with_default_settings(tmp_path: Path):
    path = write(tmp_path / "header_len.ettrace")  # 10 chunks, well under 256 chunks or 60 s: the first copy follows chunk 1
    flip(path, 8 + 5 + 3, 7)  # the header record's length becomes ~2 GB
    trace = read_trace(path)
    assert np.array_equal(trace.stream().values["power_w"], np.arange(1000.0))


def test_torn_record_in_the_middle_is_not_taken_for_the_end_of_the_file(tmp_path: Path):
    """A write cut short (ENOSPC) and then resumed: the records after the torn one survive."""
    path = write(tmp_path / "torn.ettrace")
    data = path.read_bytes()
    chunks = sample_records(data)
    torn = data[: chunks[1] + 100] + data[chunks[2] :]  # samples 100..199 lost most of their record
    path.write_bytes(torn)
    trace = read_trace(path)
    values = trace.stream().values["power_w"]
    assert len(values) == 900 and 150.0 not in values and 999.0 in values
    assert trace.damage.samples_lost == {"ina": 100}


def test_truncation_at_the_end_is_reported_as_truncation(tmp_path: Path):
    path = write(tmp_path / "cut.ettrace")
    data = path.read_bytes()
    path.write_bytes(data[: record_offsets(data)[-2] + 50])  # cut inside the last samples chunk
    trace = read_trace(path)
    assert any("truncated" in p for p in trace.problems)
    assert not trace.closed_cleanly and len(trace.stream().t) == 901  # the last chunk (901..999) was cut


def test_version_1_files_are_still_read(tmp_path: Path):
    path = tmp_path / "v1.ettrace"
    shutil.copy(FIXTURES / "trace_v1.ettrace", path)
    trace = read_trace(path)
    assert trace.header["version"] == 1 and trace.closed_cleanly and trace.problems == []
    assert np.array_equal(trace.stream().values["power_w"], np.arange(1000.0))
    assert [e.kind for e in trace.events] == ["window_begin", "window_end"]
    # and a flipped length bit in a version-1 file no longer drops the rest
    data = path.read_bytes()
    victim = record_offsets(data)[4]
    assert struct.unpack_from("<I", data, victim + 5)[0] < 2**20
    flip(path, victim + 5 + 2, 4)
    values = read_trace(path).stream().values["power_w"]
    assert len(values) == 900 and 999.0 in values


class FullDisk:
    """A file object whose writes fail with ENOSPC after ``budget`` bytes (the rest of a write is torn off)."""

    def __init__(self, handle, budget: int) -> None:
        self.handle, self.budget = handle, budget

    def write(self, data: bytes) -> int:
        import errno

        if len(data) > self.budget:
            self.handle.write(data[: self.budget])
            self.budget = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self.budget -= len(data)
        return self.handle.write(data)

    def __getattr__(self, name):
        return getattr(self.handle, name)


def test_a_write_that_fails_midway_loses_only_its_chunk_and_says_how_many_samples(tmp_path: Path):
    path = tmp_path / "enospc.ettrace"
    writer = TraceWriter(path, [SPEC], chunk_samples=100, flush_interval_s=1e9)
    real = writer._file
    for i in range(1000):
        if i == 300:
            writer._file = FullDisk(real, 1000)  # the chunk 300..399 is torn after 1000 bytes
        if i == 400:
            writer._file = real  # space freed again
        try:
            writer.append("ina", i * 0.001, [float(i), 5.0])
        except OSError:
            pass
    writer.close()
    trace = read_trace(path)
    values = trace.stream().values["power_w"]
    assert len(values) == 900 and 350.0 not in values and 999.0 in values
    assert trace.damage.samples_lost == {"ina": 100} and trace.damage.records_lost == 1 and trace.closed_cleanly
