"""powermetrics plist streams: the parser on recorded output, the sensor on a real streaming subprocess."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from sensors.base import EMULATED, VENDOR, SensorError
from sensors.powermetrics import (
    PowermetricsFormatError,
    PowermetricsSensor,
    default_command,
    discover,
    parse_document,
    parse_stream,
    present,
    replay_command,
    split_documents,
)

FIXTURES = Path(__file__).parent / "fixtures"
M1_STREAM = FIXTURES / "powermetrics_m1_100ms.plist-stream"  # 5 documents + a truncated 6th
POWER_ONLY = FIXTURES / "powermetrics_power_only_1s.plist-stream"  # an older tool: no *_energy keys

ELAPSED_NS = [102_345_125, 100_871_542, 101_112_250, 99_904_333, 100_250_000]
CPU_MJ = [123, 456, 1210, 1187, 310]
GPU_MJ = [31, 212, 655, 640, 45]
ANE_MJ = [0, 15, 87, 90, 2]


class FixedClock:
    """Monotonic time that stands still (the sensor's timestamps then come from elapsed_ns only)."""

    def __init__(self, t: float = 500.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def collect(sensor: PowermetricsSensor, n: int, timeout_s: float = 10.0) -> list:
    samples: list = []
    deadline = time.monotonic() + timeout_s
    while len(samples) < n and time.monotonic() < deadline:
        samples += sensor.drain()
        time.sleep(0.005)
    return samples


def test_stream_splits_at_plist_ends_and_keeps_the_truncated_rest() -> None:
    data = M1_STREAM.read_bytes()
    docs, rest = split_documents(data)
    assert len(docs) == 5
    assert all(d.startswith(b"<?xml") and d.endswith(b"</plist>") for d in docs)
    assert b"\x00" not in b"".join(docs)
    assert rest.startswith(b"<?xml") and b"</plist>" not in rest  # the document cut off mid-write


def test_feeding_the_stream_in_small_chunks_gives_the_same_documents() -> None:
    data = M1_STREAM.read_bytes()
    docs, buffer = [], b""
    for i in range(0, len(data), 777):
        found, buffer = split_documents(buffer + data[i : i + 777])
        docs += found
    assert docs == split_documents(data)[0]


def test_recorded_documents_parse_to_mw_and_mj() -> None:
    samples = parse_stream(M1_STREAM.read_bytes())
    assert len(samples) == 5  # the truncated sixth is dropped
    assert [s.elapsed_ns for s in samples] == ELAPSED_NS
    first = samples[0]
    assert first.power_mw == {"cpu": 1201.8159, "gpu": 302.8967, "ane": 0.0, "combined": 1504.7126}
    assert first.energy_mj == {"cpu": 123, "gpu": 31, "ane": 0, "combined": 154}
    assert first.hw_model == "MacBookPro17,1"
    assert first.timestamp is not None and first.timestamp.isoformat().startswith("2023-04-01T13:18:36")
    for s, cpu, gpu, ane in zip(samples, CPU_MJ, GPU_MJ, ANE_MJ):
        assert s.energy_mj == {"cpu": cpu, "gpu": gpu, "ane": ane, "combined": cpu + gpu + ane}
        # the tool's power is the sample's energy over its length (mJ / s = mW)
        assert s.power_mw["cpu"] == pytest.approx(cpu / (s.elapsed_ns / 1e9), abs=1e-3)


def test_older_output_without_energy_keys() -> None:
    samples = parse_stream(POWER_ONLY.read_bytes())
    assert len(samples) == 3
    assert samples[1].energy_mj == {}
    assert samples[1].power_mw == {"cpu": 1499.1958, "gpu": 304.4306, "ane": 43.9179, "combined": 1847.5443}


def test_bad_documents_are_format_errors() -> None:
    with pytest.raises(PowermetricsFormatError, match="not a plist"):
        parse_document(b"<?xml version='1.0'?><plist><dict><key>x</key></plist>")
    no_power = (
        b'<?xml version="1.0"?><plist version="1.0"><dict><key>elapsed_ns</key><integer>5</integer></dict></plist>'
    )
    with pytest.raises(PowermetricsFormatError, match="cpu_power"):
        parse_document(no_power)
    no_elapsed = b'<?xml version="1.0"?><plist version="1.0"><dict><key>processor</key><dict/></dict></plist>'
    with pytest.raises(PowermetricsFormatError, match="elapsed_ns"):
        parse_document(no_elapsed)


def test_sensor_streams_a_replayed_tool_and_accumulates_energy() -> None:
    sensor = PowermetricsSensor(command=replay_command(M1_STREAM, pause_s=0.01), emulated=True, clock=FixedClock())
    try:
        info = sensor.info
        assert info.kind == "powermetrics" and info.provenance == EMULATED
        assert info.channels == (
            "cpu.power_w", "gpu.power_w", "ane.power_w", "combined.power_w",
            "cpu.energy_j", "gpu.energy_j", "ane.energy_j", "combined.energy_j",
        )  # fmt: skip
        assert info.counters == ("cpu.energy_j", "gpu.energy_j", "ane.energy_j", "combined.energy_j")
        assert info.update_interval_s == 0.1
        samples = collect(sensor, 5)
        assert len(samples) == 5
        # t: first arrival (500.0), then + each later document's elapsed_ns
        expected_t = [500.0]
        for elapsed in ELAPSED_NS[1:]:
            expected_t.append(expected_t[-1] + elapsed / 1e9)
        assert [s.t for s in samples] == pytest.approx(expected_t, abs=1e-12)
        assert samples[2].values["cpu.power_w"] == pytest.approx(11.9668982)
        assert samples[2].values["combined.power_w"] == pytest.approx(19.3052771)
        # counters: running sums of the per-sample mJ
        assert [s.values["cpu.energy_j"] for s in samples] == pytest.approx([0.123, 0.579, 1.789, 2.976, 3.286])
        assert samples[-1].values["combined.energy_j"] == pytest.approx((3286 + 1583 + 194) / 1000)
        stale = sensor.read()  # nothing new: the tool is alive but has not written again
        assert not stale.fresh and stale.values == samples[-1].values
    finally:
        sensor.close()
    assert sensor._proc.poll() is not None  # the tool was stopped


def test_sensor_without_energy_keys_has_power_channels_only() -> None:
    sensor = PowermetricsSensor(command=replay_command(POWER_ONLY), interval_ms=1000, clock=FixedClock())
    try:
        assert sensor.info.counters == ()
        assert sensor.info.channels == ("cpu.power_w", "gpu.power_w", "ane.power_w", "combined.power_w")
        assert sensor.info.provenance == VENDOR
        assert [s.values["gpu.power_w"] for s in collect(sensor, 3)] == pytest.approx([0.1195074, 0.3044306, 0.0981212])
    finally:
        sensor.close()


def test_a_tool_that_ends_is_an_error_once_its_samples_are_read() -> None:
    sensor = PowermetricsSensor(command=replay_command(POWER_ONLY, hold=False), interval_ms=1000, clock=FixedClock())
    try:
        assert len(collect(sensor, 3)) == 3
        deadline = time.monotonic() + 5
        with pytest.raises(SensorError, match="stopped after 3 samples"):
            while time.monotonic() < deadline:
                sensor.read()
                time.sleep(0.01)
    finally:
        sensor.close()


def test_missing_tool_non_root_and_silent_tool_are_clear_errors() -> None:
    with pytest.raises(SensorError, match="not found: powermetrics ships with macOS"):
        PowermetricsSensor(command=["/nonexistent/bin/powermetrics", "-f", "plist"])
    message = "powermetrics must be invoked as the superuser"
    not_root = [sys.executable, "-c", f"import sys; sys.stderr.write('{message}\\n'); sys.exit(1)"]
    with pytest.raises(SensorError, match="needs root.*NOPASSWD"):
        PowermetricsSensor(command=not_root)
    sudo_n = [sys.executable, "-c", "import sys; sys.stderr.write('sudo: a password is required\\n'); sys.exit(1)"]
    with pytest.raises(SensorError, match="needs root"):
        PowermetricsSensor(command=sudo_n)
    crashed = [sys.executable, "-c", "import sys; sys.stderr.write('boom\\n'); sys.exit(3)"]
    with pytest.raises(SensorError, match="exited with status 3: boom"):
        PowermetricsSensor(command=crashed)
    silent = [sys.executable, "-c", "import time; time.sleep(30)"]
    started = time.monotonic()
    with pytest.raises(SensorError, match="no powermetrics sample within 0.3 s"):
        PowermetricsSensor(command=silent, start_timeout_s=0.3)
    assert time.monotonic() - started < 5  # the silent tool was stopped, not waited for


def test_default_command_and_presence() -> None:
    assert default_command(250) == [
        "sudo", "-n", "powermetrics", "--samplers", "cpu_power,gpu_power,ane_power", "-f", "plist", "-i", "250",
    ]  # fmt: skip
    assert discover(lambda name: None) == [] and not present(lambda name: None)
    assert discover(lambda name: f"/usr/bin/{name}") == ["/usr/bin/powermetrics"]


def test_interval_averages_integrate_over_the_preceding_interval_and_counters_win() -> None:
    """#11 item 5: power-only output integrates each document's average over its own sample; energy keys use the counter."""
    from sensors.energy import energy_plan, plan_windows

    sensor = PowermetricsSensor(command=replay_command(POWER_ONLY), interval_ms=1000, clock=FixedClock())
    try:
        info = sensor.info
        samples = collect(sensor, 3)
    finally:
        sensor.close()
    assert info.interval_averages == ("cpu.power_w", "gpu.power_w", "ane.power_w", "combined.power_w")
    plan = energy_plan(info.channels, info.counters, "cpu.power_w", info.interval_averages)
    assert (plan.method, plan.interval_average) == ("power_integral", True)
    t = [s.t for s in samples]
    columns = {"cpu.power_w": [s.values["cpu.power_w"] for s in samples]}
    window, = plan_windows(plan, t, columns, [t[0]], [t[2]], interval_s=info.update_interval_s)
    # document k is the average over (t[k-1], t[k]]: the first one's power lies before the window
    expected = sum(columns["cpu.power_w"][k] * (t[k] - t[k - 1]) for k in (1, 2))
    assert window.energy_j == pytest.approx(expected, rel=1e-12)

    sensor = PowermetricsSensor(command=replay_command(M1_STREAM), emulated=True, clock=FixedClock())
    try:
        info = sensor.info
        samples = collect(sensor, 5)
    finally:
        sensor.close()
    plan = energy_plan(info.channels, info.counters, "cpu.power_w", info.interval_averages)
    assert plan.method == "counter" and plan.counter_channel == "cpu.energy_j"
    t = [s.t for s in samples]
    columns = {c: [s.values[c] for s in samples] for c in plan.channels}
    window, = plan_windows(plan, t, columns, [t[0]], [t[4]], interval_s=info.update_interval_s)
    assert window.energy_method == "counter"
    assert window.energy_j == pytest.approx(sum(CPU_MJ[1:]) / 1000, rel=1e-12)  # the energies of documents 2..5
