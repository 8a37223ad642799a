"""Trace files: round trip, SIGKILL mid-recording, corrupted chunks, CSV and nvidia-smi exchange."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from sensors.trace.exchange import events_path, export_csv, import_any, import_csv, import_nvidia_smi_json
from sensors.trace.format import MAGIC, SYNC, StreamSpec, TraceError, TraceWriter, read_trace, write_trace

SPEC = StreamSpec("ina", ("power_w", "bus_v"), {"kind": "emulated-ina219", "update_interval_s": 0.0005})


def test_round_trip_of_samples_events_and_meta(tmp_path: Path):
    path = tmp_path / "a.ettrace"
    with TraceWriter(path, [SPEC, StreamSpec("cpu", ("util_pct",))], flush_interval_s=1e9, chunk_samples=100) as writer:
        for i in range(1000):
            writer.append("ina", i * 0.0005, [2.0 + i, 5.0])
            if i % 10 == 0:
                writer.append("cpu", i * 0.0005, [float(i % 100)])
        writer.event(0.1, "window_begin", "run-1", batch=1)
        writer.event(0.2, "window_end", "run-1")
        writer.meta(clock_offset_s=0.0123, clock_offset_uncertainty_s=0.0004)
    trace = read_trace(path)
    assert trace.closed_cleanly and trace.problems == []
    ina = trace.stream("ina")
    assert len(ina.t) == 1000 and ina.values["power_w"][999] == 1001.0
    assert np.all(ina.values["bus_v"] == 5.0)
    assert len(trace.stream("cpu").t) == 100
    assert [(e.kind, e.label) for e in trace.events] == [("window_begin", "run-1"), ("window_end", "run-1")]
    assert trace.events[0].extra == {"batch": 1}
    assert trace.header["clock_offset_s"] == 0.0123
    assert trace.header["streams"][0]["sensor"]["update_interval_s"] == 0.0005


def test_refuses_to_overwrite_a_recording(tmp_path: Path):
    path = tmp_path / "a.ettrace"
    TraceWriter(path, [SPEC]).close()
    with pytest.raises(TraceError, match="already exists"):
        TraceWriter(path, [SPEC])


RECORDER = textwrap.dedent(
    """
    import sys, time
    from sensors.trace.format import StreamSpec, TraceWriter
    writer = TraceWriter(sys.argv[1], [StreamSpec("ina", ("power_w",))], flush_interval_s=0.25)
    print("started", flush=True)
    i = 0
    start = time.monotonic()
    while True:
        writer.append("ina", time.monotonic(), [float(i)])
        i += 1
        if i % 100 == 0:
            with open(sys.argv[2], "w") as f:
                f.write(str(time.monotonic()))
        time.sleep(0.0005)
    """
)


def test_sigkill_mid_recording_loses_at_most_the_last_second(tmp_path: Path):
    path = tmp_path / "killed.ettrace"
    progress = tmp_path / "progress"
    process = subprocess.Popen([sys.executable, "-c", RECORDER, str(path), str(progress)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "started"
    time.sleep(2.0)
    os.kill(process.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    process.wait()
    trace = read_trace(path)
    assert not trace.closed_cleanly
    stream = trace.stream()
    assert len(stream.t) > 500
    assert killed_at - stream.t[-1] < 1.0  # at most the last second is lost
    assert np.all(np.diff(stream.values["power_w"]) == 1.0)  # nothing garbled in between


def test_truncated_tail_is_reported_not_fatal(tmp_path: Path):
    path = tmp_path / "t.ettrace"
    with TraceWriter(path, [SPEC], chunk_samples=50) as writer:
        for i in range(500):
            writer.append("ina", i * 0.001, [1.0, 5.0])
    data = path.read_bytes()
    path.write_bytes(data[:-30])
    trace = read_trace(path)
    assert any("truncated" in p for p in trace.problems)
    assert len(trace.stream().t) == 500  # the close record was cut, all samples survive


def test_corrupted_chunk_is_detected_reported_and_skipped(tmp_path: Path):
    path = tmp_path / "c.ettrace"
    with TraceWriter(path, [SPEC], chunk_samples=100, flush_interval_s=1e9) as writer:
        for i in range(1000):
            writer.append("ina", i * 0.001, [float(i), 5.0])
    data = bytearray(path.read_bytes())
    chunks = [i for i in range(len(data)) if data[i : i + 4] == SYNC and data[i + 4] == 2]  # samples records
    victim = chunks[2]  # samples 200..299
    data[victim + 40] ^= 0xFF
    path.write_bytes(bytes(data))
    trace = read_trace(path)
    assert len(trace.problems) == 2 and "CRC mismatch" in trace.problems[0]
    assert trace.problems[1] == "ina: 100 samples lost between t=0.199000 and t=0.300000"
    values = trace.stream().values["power_w"]
    assert len(values) == 900
    assert 250.0 not in values and 350.0 in values


def test_not_a_trace_is_refused(tmp_path: Path):
    bad = tmp_path / "x.csv"
    bad.write_text("t_s,power_w\n")
    with pytest.raises(TraceError, match="not an EdgeTran trace"):
        read_trace(bad)
    with pytest.raises(TraceError, match="file not found"):
        read_trace(tmp_path / "missing")


def test_csv_export_import_round_trip(tmp_path: Path):
    path = tmp_path / "a.ettrace"
    with TraceWriter(path, [SPEC]) as writer:
        for i in range(100):
            writer.append("ina", 10.0 + i * 0.01, [1.0 + 0.1 * i, 5.0])
        writer.event(10.2, "marker", "hello")
    samples, events = export_csv(read_trace(path), tmp_path / "out.csv")
    assert samples.read_text().splitlines()[0] == "t_s,power_w,bus_v"
    assert events == events_path(samples) and events.read_text().splitlines()[1].endswith(",marker,hello")
    back = import_csv(samples, events)
    assert np.array_equal(back.stream().values["power_w"], read_trace(path).stream().values["power_w"])
    assert back.events[0].label == "hello"
    write_trace(tmp_path / "back.ettrace", back)
    assert len(read_trace(tmp_path / "back.ettrace").stream().t) == 100


@pytest.mark.parametrize(
    "text, message",
    [
        ("time,power_w\n1,2\n", "first column must be t_s"),
        ("t_s,bus_v\n1,2\n", "needs a power_w column"),
        ("t_s,power_w\n1,2\n2\n", "expected 2 columns"),
        ("t_s,power_w\n1,abc\n", "'abc' is not a number"),
        ("t_s,power_w\n2,1\n1,1\n", "t_s must not decrease"),
    ],
)
def test_bad_csv_is_named(tmp_path: Path, text: str, message: str):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(TraceError, match=message):
        import_csv(path)


def test_published_a100_trace_imports(shared_published: Path, tmp_path: Path):
    source = shared_published / "traces" / "a100_bert_tiny_sst2_nvidia_smi.json"
    trace = import_any(source)
    stream = trace.stream()
    assert stream.spec.channels == ("gpu.power_w",)
    assert len(stream.t) == 105
    assert stream.t[-1] == pytest.approx(14.850998163223267)
    assert stream.values["gpu.power_w"].max() == pytest.approx(40.61)
    assert stream.spec.update_interval_s == pytest.approx(0.1408, abs=1e-3)
    write_trace(tmp_path / "a100.ettrace", trace)
    assert np.array_equal(read_trace(tmp_path / "a100.ettrace").stream().values["gpu.power_w"], stream.values["gpu.power_w"])


def test_nvidia_smi_json_errors(tmp_path: Path):
    path = tmp_path / "x.json"
    path.write_text('[{"time": 0}]')
    with pytest.raises(TraceError, match="expected a JSON list"):
        import_nvidia_smi_json(path)


def test_magic_is_first(tmp_path: Path):
    path = tmp_path / "m.ettrace"
    TraceWriter(path, [SPEC]).close()
    assert path.read_bytes().startswith(MAGIC)


def test_export_to_a_read_only_directory_or_a_directory_is_one_trace_error(tmp_path: Path):
    path = tmp_path / "a.ettrace"
    with TraceWriter(path, [SPEC]) as writer:
        writer.append("ina", 0.0, [1.0, 5.0])
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o555)
    try:
        if not os.access(read_only, os.W_OK):  # root may write it anyway
            with pytest.raises(TraceError, match="cannot write"):
                export_csv(read_trace(path), read_only / "x.csv")
    finally:
        read_only.chmod(0o755)
    with pytest.raises(TraceError, match="is a directory"):
        export_csv(read_trace(path), tmp_path)
    with pytest.raises(TraceError, match="cannot write"):  # an OS error root also gets: a name too long
        export_csv(read_trace(path), tmp_path / ("x" * 300 + ".csv"))


def test_export_from_the_file_chunk_by_chunk_equals_the_in_memory_export(tmp_path: Path):
    from sensors.trace.exchange import export_csv_file

    path = tmp_path / "a.ettrace"
    with TraceWriter(path, [SPEC, StreamSpec("cpu", ("util_pct",))], chunk_samples=64) as writer:
        for i in range(1000):
            writer.append("ina", 10.0 + i * 0.001, [1.0 + 0.1 * i, float("nan") if i == 7 else 5.0])
            if i % 100 == 0:
                writer.append("cpu", 10.0 + i * 0.001, [float(i)])
                writer.event(10.0 + i * 0.001, "marker", f"m{i}")
    memory = export_csv(read_trace(path), tmp_path / "memory.csv")
    written = export_csv_file(path, tmp_path / "streamed.csv")
    assert (tmp_path / "streamed.csv").read_text() == memory[0].read_text()
    assert Path(written["events_csv"]).read_text() == memory[1].read_text()
    assert (written["samples"], written["events"], written["stream"]) == (1000, 10, "ina")
    export_csv_file(path, tmp_path / "cpu.csv", stream="cpu")
    assert len((tmp_path / "cpu.csv").read_text().splitlines()) == 11
    with pytest.raises(TraceError, match="no stream 'gpu'"):
        export_csv_file(path, tmp_path / "x.csv", stream="gpu")
