"""The sampling daemon under faults (issue #11 items 2, 4, 11).

* a full disk (a real 1 MiB tmpfs where this machine lets us mount one, and an injected
  file object that raises ENOSPC everywhere) must not stop sampling; writer state is in
  ``status``; recording resumes in a new file once the disk takes writes again;
* a sampler thread that dies makes ``edgetran sensor daemon`` exit non-zero;
* a window no sample covers answers NaN and an error, never 0;
* a window older than the ring is read from the trace, or answered with coverage < 1
  and an error naming the ring's length;
* overflowed (invalid) samples are counted in ``status``, noted in the trace, and make
  a window's peak a lower bound.
"""

from __future__ import annotations

import errno
import math
import re
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sensors.base import Sample, Sensor, SensorInfo
from sensors.daemon import SamplingDaemon, request, rotating_writer
from sensors.registry import create_sensor
from sensors.trace.format import StreamSpec, TraceWriter, read_trace

RT = 10  # SCHED_FIFO where permitted
CHANNELS = ("power_w", "bus_v", "shunt_v", "current_a")


class SteadySensor(Sensor):
    """A fresh 3 W reading at every poll, at almost no cost."""

    def __init__(self, name: str = "steady") -> None:
        self.name = name

    @property
    def info(self) -> SensorInfo:
        return SensorInfo("steady", self.name, CHANNELS, 0.0001)

    def read(self) -> Sample:
        return Sample(time.monotonic(), {"power_w": 3.0, "bus_v": 5.0, "shunt_v": 0.06, "current_a": 0.6})


def wait_until(condition, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def recorded_samples(path: Path) -> int:
    return sum(len(s.t) for s in read_trace(path).streams.values())


# -- a full disk ------------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A 1 MiB tmpfs with ~48 KB left free, and a filler file to delete to free it (skip if mounting is not permitted)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        stat = os.statvfs(mount)
        filler = mount / "filler"
        filler.write_bytes(b"\0" * (stat.f_bavail * stat.f_frsize - 48 * 1024))
        yield mount, filler
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_keeps_sampling_reports_the_writer_and_resumes(tiny_disk):
    mount, filler = tiny_disk
    path = mount / "d.ettrace"
    daemon = SamplingDaemon([SteadySensor()], 2000.0, record_path=path, port=0, realtime_priority=RT)
    daemon.writer_retry_s = 0.3
    with daemon:
        address = ("127.0.0.1", daemon.port)
        # 2 kHz x 40 B per sample fills 48 KB in well under 2 s
        assert wait_until(lambda: request(address, {"cmd": "status"})["recording"]["state"] == "failed", 5.0)
        status = request(address, {"cmd": "status"})
        assert "No space left on device" in status["recording"]["error"]
        assert status["running"] and not status["sampler"]["died"]
        fresh = daemon.stats.fresh
        time.sleep(0.5)
        assert daemon.stats.fresh > fresh + 500  # sampling goes on into the ring
        now = time.monotonic()
        window = request(address, {"cmd": "window", "start": now - 0.4, "end": now - 0.1})
        assert window["energy_j"] == pytest.approx(3.0 * 0.3, rel=0.02) and window["coverage"] > 0.5  # steady: exact across steal gaps
        assert [e.label for e in daemon.events if e.kind == "note"][:1] == ["trace_write_error"]
        assert daemon.stats.trace_write_errors == 1
        filler.unlink()  # the disk takes writes again
        assert wait_until(lambda: request(address, {"cmd": "status"})["recording"]["state"] == "ok", 5.0)
        time.sleep(0.3)
        status = request(address, {"cmd": "status"})
    files = [Path(p) for p in status["recording"]["files"]]
    assert files[0] == path and len(files) == 2 and files[1].name.startswith("d.part")
    assert sorted(p.name for p in mount.iterdir()) == sorted(p.name for p in files)  # no stubs of failed reopenings
    assert status["recording"]["bytes_on_disk"] > 48 * 1024 * 0.8 and status["recording"]["current_file_bytes"] > 0
    resumed = read_trace(files[1])
    assert resumed.closed_cleanly
    note = resumed.events[0]
    assert (note.kind, note.label) == ("note", "trace_resumed") and note.extra["lost_samples"] > 500
    lost = daemon.recorder.samples_lost
    kept = recorded_samples(files[0]) + recorded_samples(files[1])
    # every fresh sample is either in a file or counted as lost, except those the OS
    # buffer held when the disk filled (at most one write buffer, ~200 samples)
    assert daemon.stats.fresh - 400 <= kept + lost <= daemon.stats.fresh


class FullDiskFile:
    """A file object that accepts ``limit`` bytes and then raises ENOSPC on every write and flush."""

    def __init__(self, inner, limit: int) -> None:
        self.inner, self.limit, self.written = inner, limit, 0

    def write(self, data: bytes) -> int:
        if self.written + len(data) > self.limit:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.written += len(data)
        return self.inner.write(data)

    def flush(self) -> None:
        if self.written >= self.limit:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.inner.flush()

    def tell(self) -> int:
        return self.written

    def fileno(self) -> int:
        return self.inner.fileno()

    @property
    def closed(self) -> bool:
        return self.inner.closed

    def close(self) -> None:
        self.inner.close()


def test_injected_enospc_is_recorded_and_sampling_goes_on(tmp_path: Path):
    def open_writer(specs, extra, attempt):
        writer = TraceWriter(tmp_path / f"t{attempt}.ettrace", specs, header_extra=dict(extra))
        writer._file = FullDiskFile(writer._file, 20_000)  # every file of this "disk" fills at 20 kB
        return writer

    with SamplingDaemon([SteadySensor()], 1000.0, open_writer=open_writer, writer_retry_s=0.2, realtime_priority=RT) as daemon:
        assert wait_until(lambda: daemon.status()["recording"]["state"] == "failed", 5.0)
        time.sleep(1.0)  # retries open new files, which fill again
        fresh = daemon.stats.fresh
        time.sleep(0.3)
        assert daemon.running and daemon.stats.fresh > fresh + 150
        status = daemon.status()
    recording = status["recording"]
    assert recording["failures"] >= 2 and "ENOSPC" not in recording["error"] and "No space left" in recording["error"]
    assert recording["samples_lost"] > 0
    assert status["stats"]["trace_write_errors"] == recording["failures"]


# -- the sampler thread dies ------------------------------------------------------------


class DiesAfter(Sensor):
    """Reads fine, then returns a value that is not a number (a driver bug) after ``n`` reads."""

    def __init__(self, n: int = 300) -> None:
        self.n, self.calls = n, 0

    @property
    def info(self) -> SensorInfo:
        return SensorInfo("dies", "dies", ("power_w",), 0.001)

    def read(self) -> Sample:
        self.calls += 1
        return Sample(time.monotonic(), {"power_w": 2.0 if self.calls < self.n else "garbage"})  # type: ignore[dict-item]


def test_a_dead_sampler_is_reported():
    with SamplingDaemon([DiesAfter()], 1000.0) as daemon:
        assert daemon.sampler_died.wait(5.0)
        status = daemon.status()
    assert not status["running"] and status["sampler"]["died"]
    assert "ValueError" in status["sampler"]["error"]
    assert daemon.events[-1].label == "sampler_died"


def test_daemon_process_exits_nonzero_when_its_sampler_dies(tmp_path: Path):
    config = tmp_path / "daemon.toml"
    config.write_text('[daemon]\nport = 0\nrate_hz = 1000\n\n[[sensors]]\nkind = "dies-after"\n')
    script = textwrap.dedent(
        f"""
        import sys
        from sensors import registry
        from tests.sensors.test_daemon_faults import DiesAfter
        registry.KINDS["dies-after"] = registry.SensorKind("dies-after", "test", "emulated", lambda: True, lambda: DiesAfter())
        from firmware_host.cli import main
        sys.exit(main(["sensor", "daemon", "--config", {str(config)!r}]))
        """
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    assert "sampling thread died" in done.stderr


def test_systemd_unit_restarts_on_failure():
    unit = (Path(__file__).resolve().parents[2] / "sensors" / "systemd" / "edgetran-sensor-daemon.service").read_text()
    assert "Restart=on-failure" in unit.splitlines()


# -- windows without samples, windows older than the ring -------------------------------


def test_a_window_without_samples_is_nan_with_an_error():
    with SamplingDaemon([SteadySensor()], 1000.0, port=0) as daemon:
        time.sleep(0.3)
        address = ("127.0.0.1", daemon.port)
        now = request(address, {"cmd": "time"})["t"]
        for start, end in [(now - 100.0, now - 90.0), (now + 10.0, now + 11.0)]:
            window = request(address, {"cmd": "window", "start": start, "end": end})
            assert window["ok"] and window["coverage"] == 0.0
            assert math.isnan(window["energy_j"]) and math.isnan(window["mean_power_w"])
            assert "no samples cover the window" in window["error"]


def test_a_window_older_than_the_ring_says_the_ring_is_short():
    with SamplingDaemon([SteadySensor()], 1000.0, ring_seconds=0.5, port=0, realtime_priority=RT) as daemon:
        address = ("127.0.0.1", daemon.port)
        started = daemon.started_at
        time.sleep(1.5)
        old = request(address, {"cmd": "window", "start": started + 0.2, "end": started + 0.5})
        assert old["coverage"] == 0.0 and math.isnan(old["energy_j"])
        assert re.search(r"the ring holds only 0\.5\d* s", old["error"]), old["error"]  # the span of the samples held: 0.5 s, or 0.51 s when a tick lands late
        now = time.monotonic()
        straddling = request(address, {"cmd": "window", "start": now - 1.0, "end": now - 0.1})
        assert 0.2 < straddling["coverage"] < 0.9
        assert re.search(r"the ring holds only 0\.5\d* s", straddling["error"]), straddling["error"]


@pytest.mark.parametrize("rotated", [False, True], ids=["one-file", "rotated-set"])
def test_a_window_older_than_the_ring_is_read_from_the_trace(tmp_path: Path, rotated: bool):
    where = {"open_writer": rotating_writer(tmp_path, "r", max_bytes=8192)} if rotated else {"record_path": tmp_path / "r.ettrace"}
    with SamplingDaemon([SteadySensor()], 1000.0, ring_seconds=0.5, port=0, realtime_priority=RT, **where) as daemon:
        address = ("127.0.0.1", daemon.port)
        started = daemon.started_at
        time.sleep(1.5)
        old = request(address, {"cmd": "window", "start": started + 0.2, "end": started + 0.5})
        recent = request(address, {"cmd": "window", "start": time.monotonic() - 0.3, "end": time.monotonic() - 0.1})
    assert old["source"] == "trace" and "error" not in old
    assert old["coverage"] > 0.5 and old["energy_j"] == pytest.approx(3.0 * 0.3, rel=0.02)  # steady 3 W: exact across gaps; steal on CI VMs leaves some
    assert recent["source"] == "ring"
    if rotated:  # the window spans several files of the set (8 kB each: ~0.2 s at 1 kHz)
        assert len(daemon.recorder.paths) > 5


# -- overflows ---------------------------------------------------------------------------------


def test_overflows_are_counted_noted_and_make_the_peak_a_lower_bound(tmp_path: Path):
    path = tmp_path / "ovf.ettrace"
    sensor = create_sensor("emulated-ina219", rate_hz=500.0, waveform="constant:4.0")
    chip = sensor.emulated_bus.devices[0x40]
    with SamplingDaemon([sensor], 500.0, record_path=path, port=0, realtime_priority=RT) as daemon:
        address = ("127.0.0.1", daemon.port)
        time.sleep(0.4)
        chip.force_overflow = True
        t0 = time.monotonic()
        time.sleep(0.3)
        chip.force_overflow = False
        t1 = time.monotonic()
        time.sleep(0.3)
        clean = request(address, {"cmd": "window", "start": t1 + 0.05, "end": time.monotonic() - 0.01})
        over = request(address, {"cmd": "window", "start": t0 - 0.1, "end": t1 + 0.1})
        status = request(address, {"cmd": "status"})
        time.sleep(OVERFLOW_WAIT_S)
    counts = status["invalid_samples"]["emulated-ina219"]
    assert counts["total"] > 50 and counts["by_channel"]["power_w"] == counts["total"]
    assert status["stats"]["invalid_samples"] == counts["total"] and status["stats"]["overflow_events"] == 1
    assert over["invalid_samples"] > 50 and over["peak_is_lower_bound"] is True
    assert any("lower bound" in w for w in over["warnings"])
    assert clean["invalid_samples"] == 0 and clean["peak_is_lower_bound"] is False
    notes = [(e.label, e.extra) for e in read_trace(path).events if e.kind == "note"]
    assert [label for label, _ in notes] == ["overflow_begin", "overflow_end"]
    assert notes[1][1]["invalid_samples"] == counts["total"]


OVERFLOW_WAIT_S = 0.6  # longer than the daemon's OVERFLOW_QUIET_S, so the stretch's end is noted


def test_a_chunk_cut_short_by_a_full_disk_is_not_counted_as_written(tiny_disk):
    """A buffered file accepted a chunk and lost it at the next flush: the writer said 'written' for samples no reader finds."""
    mount, _filler = tiny_disk
    spec = StreamSpec("ina", CHANNELS, {"kind": "steady", "update_interval_s": 0.001})
    writer = TraceWriter(mount / "full.ettrace", [spec], chunk_samples=250, flush_interval_s=1e9)
    offered = 0
    with pytest.raises(OSError) as raised:
        for i in range(100_000):  # ~4 MB: far past the ~48 KB left
            writer.append("ina", i * 0.001, [3.0, 5.0, 0.06, 0.6])
            offered += 1
    assert raised.value.errno == errno.ENOSPC
    written = writer.samples_written
    try:
        writer.close()
    except OSError:
        pass
    readable = recorded_samples(mount / "full.ettrace")
    assert 0 < written < offered
    assert readable == written  # every sample the writer counted is on disk, and no more
