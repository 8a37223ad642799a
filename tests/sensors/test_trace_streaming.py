"""Traces read chunk by chunk: summaries and window energy equal the in-memory figures; rotated sets read as one."""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from sensors.energy import energy_window
from sensors.trace.format import StreamSpec, TraceError, TraceWriter, read_trace
from sensors.trace.rotation import RotatingTraceWriter
from sensors.trace.streaming import list_sessions, summarize, window_energy

INTERVAL_S = 0.0005
SPEC = StreamSpec("ina", ("power_w", "bus_v"), {"kind": "emulated-ina219", "update_interval_s": INTERVAL_S}, poll_interval_s=INTERVAL_S)


def series(n: int = 20_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """2 kHz times with two gaps and a few invalid (NaN) samples; a noisy square power."""
    rng = np.random.default_rng(seed)
    t = 100.0 + np.arange(n) * INTERVAL_S
    t[5000:] += 0.01  # a 10 ms gap
    t[12000:] += 0.3  # a 300 ms gap
    p = np.where((t * 7).astype(int) % 2 == 0, 1.0, 6.0) + rng.normal(0, 0.05, n)
    p[[i for i in (100, 7000, 7001) if i < n]] = np.nan
    return t, p


def write_series(path: Path, t: np.ndarray, p: np.ndarray, chunk_samples: int = 256) -> Path:
    with TraceWriter(path, [SPEC], chunk_samples=chunk_samples) as writer:
        writer.append_block("ina", t, np.column_stack([p, np.full(len(p), 5.0)]))
        writer.event(float(t[10]), "marker", "m")
    return path


@pytest.mark.parametrize("start, end", [(0.2, 9.0), (2.4, 2.6), (-1.0, 3.0), (5.9, 6.3), (0.0, 12.0)])
def test_streamed_window_equals_the_in_memory_window(tmp_path: Path, start: float, end: float):
    t, p = series()
    path = write_series(tmp_path / "a.ettrace", t, p)
    expected = energy_window(t, p, start + t[0], end + t[0], 0.5, INTERVAL_S)
    for block in (1000, 1 << 19):  # many blocks, and one
        got = window_energy(path, start, end, baseline_w=0.5, block_samples=block).result
        assert got.energy_j == pytest.approx(expected.energy_j, rel=1e-9, abs=1e-12)
        assert got.mean_power_w == pytest.approx(expected.mean_power_w, rel=1e-9)
        assert got.peak_power_w == expected.peak_power_w
        assert got.coverage == pytest.approx(expected.coverage, rel=1e-9)
        assert (got.samples, got.gaps) == (expected.samples, expected.gaps)
        assert len(got.warnings) == len(expected.warnings)


def test_window_outside_the_data_has_no_samples(tmp_path: Path):
    t, p = series(2000)
    path = write_series(tmp_path / "a.ettrace", t, p)
    result = window_energy(path, 50.0, 60.0).result
    assert result.samples == 0 and math.isnan(result.energy_j) and result.coverage == 0.0


def test_streamed_summary_equals_the_in_memory_one(tmp_path: Path):
    t, p = series()
    path = write_series(tmp_path / "a.ettrace", t, p)
    summary = summarize(path)
    trace = read_trace(path)
    stream = trace.stream()
    assert summary["samples"] == len(stream.t) == 20_000
    assert summary["duration_s"] == pytest.approx(stream.t[-1] - stream.t[0])
    assert summary["gaps"] == int(np.sum(np.diff(stream.t) > 3 * INTERVAL_S * (1 + 1e-9))) == 2
    assert summary["events"] == 1 and summary["closed_cleanly"] and summary["damage"] == []
    assert summary["version"] == 2


def test_a_non_power_channel_is_refused(tmp_path: Path):
    t, p = series(2000)
    path = write_series(tmp_path / "a.ettrace", t, p)
    with pytest.raises(TraceError, match="'bus_v' is not a power channel"):
        window_energy(path, 0.0, 0.5, channel="bus_v")


def test_a_rotated_set_reads_as_one_trace(tmp_path: Path):
    t, p = series()
    wall = [datetime(2026, 12, 1, 12, tzinfo=timezone.utc).timestamp()]
    with RotatingTraceWriter(tmp_path / "set", "rig", [SPEC], max_bytes=60_000, clock=lambda: wall[0], chunk_samples=256,
                             flush_interval_s=1e9) as writer:
        for start in range(0, len(t), 500):
            wall[0] += 0.25
            writer.append_block("ina", t[start : start + 500], np.column_stack([p[start : start + 500], np.full(500, 5.0)]))
    assert writer.files_written > 5
    whole = write_series(tmp_path / "whole.ettrace", t, p)
    sessions = list_sessions(tmp_path / "set")
    assert len(sessions) == 1 and len(sessions[0].files) == writer.files_written
    assert summarize(tmp_path / "set")["samples"] == 20_000
    got = window_energy(tmp_path / "set", 0.5, 8.0, block_samples=3000).result
    expected = window_energy(whole, 0.5, 8.0).result
    assert got.energy_j == pytest.approx(expected.energy_j, rel=1e-9) and got.samples == expected.samples


def test_a_directory_with_two_sessions_needs_one_chosen(tmp_path: Path):
    for _ in range(2):
        with RotatingTraceWriter(tmp_path, "rig", [SPEC]) as writer:
            writer.append_block("ina", np.arange(10) * INTERVAL_S, np.ones((10, 2)))
    with pytest.raises(TraceError, match="2 recording sessions"):
        summarize(tmp_path)
    first = list_sessions(tmp_path)[0]
    assert summarize(tmp_path, first.id[:6])["samples"] == 10


def test_cli_energy_refuses_nonsense_with_one_line(cli, tmp_path: Path):
    t, p = series()
    path = write_series(tmp_path / "a.ettrace", t, p)
    for args, fragment in [
        (["--start", "50", "--end", "60"], "holds no samples"),
        (["--start", "5.8", "--end", "6.6"], "below --min-coverage 95%"),  # contains the 300 ms gap
        (["--start", "0", "--end", "1", "--channel", "bus_v"], "'bus_v' is not a power channel"),
    ]:
        code, out, err = cli("trace", "energy", str(path), *args)
        assert code == 2, (args, out, err)
        assert len(err.strip().splitlines()) == 1 and fragment in err, err
    code, out, _ = cli("trace", "energy", str(path), "--start", "5.8", "--end", "6.6", "--min-coverage", "0.5", "--json")
    assert code == 0 and 0.55 < json.loads(out)["coverage"] < 0.7


def test_cli_info_lists_a_rotated_directory_and_export_prints_json(cli, tmp_path: Path):
    with RotatingTraceWriter(tmp_path / "d", "rig", [SPEC], max_bytes=20_000, chunk_samples=100) as writer:
        writer.append_block("ina", np.arange(3000) * INTERVAL_S, np.ones((3000, 2)))
    code, out, err = cli("trace", "info", str(tmp_path / "d"), "--json")
    assert code == 0, err
    listing = json.loads(out)
    assert listing["samples"] == 3000 and len(listing["sessions"]) == 1 and len(listing["files"]) == writer.files_written
    code, out, err = cli("trace", "export", str(writer.files()[0].path), "--csv", str(tmp_path / "x.csv"), "--json")
    assert code == 0, err
    assert json.loads(out)["samples_csv"] == str(tmp_path / "x.csv") and json.loads(out)["samples"] > 0


def test_a_counter_channel_and_interval_averages_stream_as_they_integrate_in_memory(tmp_path: Path):
    from sensors.energy import energy_plan, plan_windows

    rng = np.random.default_rng(3)
    n = 6000
    t = np.arange(n) * 0.001 + rng.uniform(0, 2e-4, n)
    power = 10 + 5 * np.sin(t * 3)
    counter = np.concatenate([[0.0], np.cumsum(np.diff(t) * power[1:])])
    sensor = {"kind": "rapl", "update_interval_s": 0.001, "counters": ["package.energy_j"], "interval_averages": ["package.power_w"]}
    spec = StreamSpec("rapl", ("package.power_w", "package.energy_j"), sensor)
    path = tmp_path / "rapl.ettrace"
    with TraceWriter(path, [spec], chunk_samples=128) as writer:
        writer.append_block("rapl", t, np.column_stack([power, counter]))
    for channel in ("package.power_w", "package.energy_j"):
        plan = energy_plan(spec.channels, sensor["counters"], channel, sensor["interval_averages"])
        expected = plan_windows(plan, t, {"package.power_w": power, "package.energy_j": counter}, [t[0] + 0.7], [t[0] + 4.2], 1.0, 0.001)[0]
        got = window_energy(path, 0.7, 4.2, baseline_w=1.0, channel=channel, block_samples=500).result
        assert got.energy_method == expected.energy_method == "counter"
        assert got.energy_j == pytest.approx(expected.energy_j, rel=1e-9)
        assert got.peak_power_w == pytest.approx(expected.peak_power_w)
        assert got.integrated_s == pytest.approx(expected.integrated_s) and got.coverage == pytest.approx(expected.coverage)


def test_interval_average_power_without_a_counter_streams_as_in_memory(tmp_path: Path):
    from sensors.energy import energy_plan, plan_windows

    t = np.arange(3000) * 0.1
    power = 5 + (np.arange(3000) % 7)
    sensor = {"kind": "powermetrics", "update_interval_s": 0.1, "interval_averages": ["cpu.power_w"]}
    spec = StreamSpec("pm", ("cpu.power_w",), sensor)
    path = tmp_path / "pm.ettrace"
    with TraceWriter(path, [spec], chunk_samples=64) as writer:
        writer.append_block("pm", t, power[:, None])
    plan = energy_plan(spec.channels, (), None, sensor["interval_averages"])
    expected = plan_windows(plan, t, {"cpu.power_w": power}, [12.34], [256.78], 0.0, 0.1)[0]
    got = window_energy(path, 12.34, 256.78, block_samples=300).result
    assert got.energy_method == "power_integral" and plan.interval_average
    assert got.energy_j == pytest.approx(expected.energy_j, rel=1e-9)
    assert got.peak_power_w == expected.peak_power_w and got.samples == expected.samples


def test_many_windows_in_one_pass_equal_energy_windows_in_memory(tmp_path: Path):
    from sensors.energy import energy_windows
    from sensors.trace.streaming import window_energies

    t, p = series()
    path = write_series(tmp_path / "a.ettrace", t, p)
    rng = np.random.default_rng(1)
    starts = t[0] + rng.uniform(-0.5, 10.0, 60)  # unsorted, overlapping, some past the data, one inside the 300 ms gap
    ends = starts + rng.uniform(0.001, 1.5, 60)
    starts[0], ends[0] = t[12000] - 0.2, t[12000] - 0.1
    expected = energy_windows(t, p, starts, ends, 0.25, INTERVAL_S)
    got = window_energies(path, starts, ends, baseline_w=0.25, block_samples=777).results
    for e, g in zip(expected, got):
        assert g.energy_j == pytest.approx(e.energy_j, rel=1e-9, abs=1e-12) or (math.isnan(g.energy_j) and math.isnan(e.energy_j))
        assert g.peak_power_w == pytest.approx(e.peak_power_w, nan_ok=True)
        assert (g.samples, g.gaps) == (e.samples, e.gaps)
        assert g.coverage == pytest.approx(e.coverage, rel=1e-9, abs=1e-12)
        assert g.integrated_s == pytest.approx(e.integrated_s) and (g.error is None) == (e.error is None)
