"""Summaries and window energy of a trace (or a rotated set) read chunk by chunk, in bounded memory.

An hour at 2 kHz is 7.2 M samples (288 MB with four channels); reading it whole takes
well over half a gigabyte. Here a trace is read one chunk at a time
(:class:`~sensors.trace.format.TraceReader`), so memory stays at a few blocks:

* :func:`summarize` counts samples, spans, rate and spacing gaps per stream as chunks
  pass; the nominal interval is the larger of the sensor's declared update interval and
  the poll interval, or, when neither is declared, the median spacing of the stream's
  first chunk (a streaming median of all spacings would need them all).
* :func:`window_energy` (one window) and :func:`window_energies` (many, one pass over
  the file) collect the windows' samples of one power channel into blocks
  of ``block_samples`` (the last sample before the window and the first after it are
  kept for the edges) and integrates each block with :func:`sensors.energy.energy_windows`
  over the block's part of the window; each block starts at the previous block's last
  sample, so no interval is integrated twice or skipped. Energies, covered time and gaps
  add up; peaks take the maximum. With ``block_samples`` at least the window's sample
  count this is exactly ``energy_window`` on the whole arrays. The channel is integrated
  by the plan :func:`sensors.energy.energy_plan` makes from the sensor description in the
  header (its ``counters`` and ``interval_averages``): a rail with an energy counter by
  counter differences, interval averages over their own interval, else the power.

A *source* is a trace file, or a directory holding a rotated set
(:mod:`sensors.trace.rotation`): the files of one recording session (one writer, one
clock base) are read in order as one trace. A directory with several sessions needs
``session`` (the id, or a unique prefix); :func:`list_sessions` lists them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from sensors.energy import ENERGY_SUFFIX, GAP_FACTOR, POWER_SUFFIX, EnergyPlan, WindowEnergy, energy_plan, nominal_sample_interval, plan_windows
from sensors.trace.format import Chunk, Event, StreamSpec, TraceError, TraceReader
from sensors.trace.rotation import list_set

BLOCK_SAMPLES = 1 << 19  # samples integrated per energy_windows call (~8 MB of times and power)


@dataclass(frozen=True)
class Session:
    """One recording session of a rotated set: its id and files in order."""

    id: str
    stem: str
    files: tuple[Path, ...]


def list_sessions(directory: str | Path) -> list[Session]:
    """The recording sessions of the rotated set(s) in ``directory``, oldest first."""
    sessions: dict[str, tuple[str, list[Path]]] = {}
    for entry in list_set(directory):
        try:
            with TraceReader(entry.path) as reader:
                rotation = reader.header.get("rotation") or {}
        except TraceError:
            rotation = {}
        key = str(rotation.get("session") or entry.path.name)
        sessions.setdefault(key, (entry.stem, []))[1].append(entry.path)
    return [Session(key, stem, tuple(files)) for key, (stem, files) in sessions.items()]


def source_files(source: str | Path, session: str | None = None) -> list[Path]:
    """The files to read as one trace: the file itself, or one session of a rotated set."""
    path = Path(source)
    if not path.is_dir():
        if session is not None:
            raise TraceError("--session applies to a directory of rotated traces, not to one file")
        return [path]
    sessions = list_sessions(path)
    if not sessions:
        raise TraceError(f"{path}: no rotated trace files (<stem>-<UTC>Z-<seq>.ettrace) in this directory")
    if session is not None:
        chosen = [s for s in sessions if s.id.startswith(session)]
        if len(chosen) != 1:
            raise TraceError(f"{path}: {'no' if not chosen else 'more than one'} session matches {session!r} (sessions: {', '.join(s.id for s in sessions)})")
        return list(chosen[0].files)
    if len(sessions) > 1:
        raise TraceError(f"{path}: holds {len(sessions)} recording sessions with separate clocks; pick one with --session ({', '.join(s.id for s in sessions)})")
    return list(sessions[0].files)


class SourceReader:
    """Chunks and events of one or more trace files in order, with the first file's specs."""

    def __init__(self, files: list[Path]) -> None:
        self.files = files
        with TraceReader(files[0]) as first:
            self.header = dict(first.header)
            self.specs: list[StreamSpec] = first.specs
        self.problems: list[str] = []
        self.damage: list[dict] = []
        self.closed_cleanly = True
        self.events: list[Event] = []

    def items(self) -> Iterator[Chunk | list[Event]]:
        """Chunks and event lists of every file in order (events are also kept in ``events``)."""
        for path in self.files:
            with TraceReader(path) as reader:
                if [(s.name, s.channels) for s in reader.specs] != [(s.name, s.channels) for s in self.specs]:
                    raise TraceError(f"{path}: streams differ from {self.files[0].name}; not one trace")
                for item in reader.items():
                    if not isinstance(item, Chunk):
                        self.events.extend(item)
                    yield item
                self.header.update({k: v for k, v in reader.header.items() if k not in ("streams", "rotation", "created_utc", "created_monotonic_s")})
                prefix = f"{path.name}: " if len(self.files) > 1 else ""
                self.problems.extend(prefix + p for p in reader.problems)
                if reader.damage.any:
                    self.damage.append({"file": str(path), **reader.damage.to_dict()})
                self.closed_cleanly = self.closed_cleanly and reader.closed_cleanly

    def stream_index(self, name: str | None) -> int:
        """Index of a stream by name (the first when None)."""
        if name is None:
            return 0
        for index, spec in enumerate(self.specs):
            if spec.name == name:
                return index
        raise TraceError(f"trace has no stream {name!r} (streams: {', '.join(s.name for s in self.specs)})")


def declared_interval(spec: StreamSpec) -> float | None:
    """The larger of the sensor's update interval and the poll interval, if either is declared."""
    return nominal_sample_interval(spec.update_interval_s, spec.poll_interval_s)


def summarize(source: str | Path, session: str | None = None) -> dict:
    """Samples, duration, rate, channels, gaps, events and damage of a trace, read chunk by chunk.

    Two counts of holes, named the same wherever they are shown (``sensor record`` too):
    ``gaps`` are intervals between consecutive samples longer than ``GAP_FACTOR`` x the
    nominal interval (from any cause: failed reads, a stalled sampler, a full disk), and
    ``read_failures`` the stretches in which every retry of a read failed (each marked by
    a ``gap_begin`` event). One read failure usually makes one gap; a stall makes a gap
    and no read failure. (The old total added both, counting a failed read twice.)
    """
    files = source_files(source, session)
    reader = SourceReader(files)
    n = [0] * len(reader.specs)
    first = [math.nan] * len(reader.specs)
    last = [math.nan] * len(reader.specs)
    gaps = [0] * len(reader.specs)
    nominal = [declared_interval(spec) for spec in reader.specs]
    for item in reader.items():
        if not isinstance(item, Chunk) or len(item.t) == 0:
            continue
        i, t = item.stream, item.t
        if nominal[i] is None and len(t) > 1:
            nominal[i] = float(np.median(np.diff(t)))
        if n[i]:
            t = np.concatenate([[last[i]], t])
        else:
            first[i] = float(t[0])
        if nominal[i] and len(t) > 1:
            gaps[i] += int(np.sum(np.diff(t) > GAP_FACTOR * nominal[i] * (1 + 1e-9)))
        n[i] += len(item.t)
        last[i] = float(item.t[-1])
    streams = []
    for i, spec in enumerate(reader.specs):
        duration = last[i] - first[i] if n[i] > 1 else 0.0
        streams.append(
            {
                "name": spec.name,
                "samples": n[i],
                "duration_s": duration,
                "rate_hz": (n[i] - 1) / duration if duration > 0 else 0.0,
                "channels": list(spec.channels),
                "update_interval_s": spec.update_interval_s,
                "gaps": gaps[i],
                "read_failures": sum(1 for e in reader.events if e.kind == "gap_begin" and e.label == spec.name),
                "sensor_kind": spec.sensor.get("kind"),
                "provenance": spec.sensor.get("provenance"),
            }
        )
    head = streams[0]
    return {
        "samples": head["samples"],
        "duration_s": head["duration_s"],
        "rate_hz": head["rate_hz"],
        "channels": head["channels"],
        "gaps": head["gaps"],  # spacing gaps: intervals longer than GAP_FACTOR x nominal, whatever the cause
        "read_failures": sum(1 for e in reader.events if e.kind == "gap_begin"),  # stretches every retry failed (marked gap_begin)
        "events": len(reader.events),
        "streams": streams,
        "closed_cleanly": reader.closed_cleanly,
        "problems": reader.problems,
        "damage": reader.damage,
        "files": [str(f) for f in files],
        "version": reader.header.get("version"),
        "clock_offset_s": reader.header.get("clock_offset_s"),
        "clock_offset_uncertainty_s": reader.header.get("clock_offset_uncertainty_s"),
    }


class _WindowsAccumulator:
    """Adds up the figures of consecutive blocks for many windows (see the module docstring).

    Rows are (time, energy channel, power channel): the energy channel is the counter when
    the plan has one, else the power itself; rows whose energy channel is invalid are dropped.
    Rows from the last one before the earliest window start to the first one after the
    latest end are integrated, ``block_samples`` at a time.
    """

    def __init__(self, plan: EnergyPlan, starts: np.ndarray, ends: np.ndarray, interval_s: float | None, wrap_j: float | None,
                 block_samples: int) -> None:
        self.plan = plan
        self.starts, self.ends = starts, ends
        self.start, self.end = float(starts.min()), float(ends.max())
        self.interval_s = interval_s
        self.wrap_j = wrap_j
        self.block_samples = block_samples
        self.pending: list[np.ndarray] = []  # blocks of rows, 3 x n
        self.pending_n = 0
        self.bridge: np.ndarray | None = None  # last row integrated so far (or the last one before the windows)
        k = len(starts)
        self.energy = np.zeros(k)
        self.covered = np.zeros(k)
        self.gaps = np.zeros(k, dtype=np.int64)
        self.samples = np.zeros(k, dtype=np.int64)
        self.peak = np.full(k, math.nan)
        self.t_first = math.nan
        self.t_last = math.nan
        self.done = False

    def add(self, t: np.ndarray, energy_values: np.ndarray, power: np.ndarray | None) -> None:
        """Take one chunk: times, the energy channel's values and the power channel's (None without one)."""
        rows = np.vstack([t, energy_values, power if power is not None else np.full(len(t), math.nan)])
        keep = np.isfinite(rows[0]) & np.isfinite(rows[1])
        if not keep.all():
            rows = rows[:, keep]
        t = rows[0]
        if len(t) == 0 or self.done:
            return
        if math.isnan(self.t_first):
            self.t_first = float(t[0])
        self.t_last = float(t[-1])
        if t[-1] < self.start:  # wholly before the windows: only its last row matters
            self.bridge = rows[:, -1].copy()
            return
        self.samples += np.searchsorted(t, self.ends, side="right") - np.searchsorted(t, self.starts, side="left")
        lo = int(np.searchsorted(t, self.start, side="left"))
        if lo > 0 and self.pending_n == 0 and (self.bridge is None or self.bridge[0] < self.start):
            self.bridge = rows[:, lo - 1].copy()
        hi = int(np.searchsorted(t, self.end, side="right"))
        stop = min(hi + 1, len(t))  # one row past the end, for the edge
        if stop > lo:
            self.pending.append(rows[:, lo:stop])
            self.pending_n += stop - lo
        if hi < len(t):
            self.done = True
        if self.pending_n >= self.block_samples or self.done:
            self._integrate()

    def _integrate(self) -> None:
        if not self.pending_n:
            return
        parts = ([self.bridge[:, None]] if self.bridge is not None else []) + self.pending
        rows = np.concatenate(parts, axis=1)
        self.pending, self.pending_n = [], 0
        self.bridge = rows[:, -1].copy()
        t = rows[0]
        if self.interval_s is None and len(t) > 1:
            self.interval_s = float(np.median(np.diff(t)))
        if len(t) < 2:
            return
        a, b = np.maximum(self.starts, t[0]), np.minimum(self.ends, t[-1])
        inside = np.flatnonzero(b > a)
        if not len(inside):
            return
        columns = {self.plan.counter_channel or self.plan.power_channel: rows[1]}
        if self.plan.counter_channel and self.plan.power_channel:
            columns[self.plan.power_channel] = rows[2]
        results = plan_windows(self.plan, t, columns, a[inside], b[inside], 0.0, self.interval_s, self.wrap_j)
        for k, result in zip(inside.tolist(), results):
            self.energy[k] += result.energy_j
            self.covered[k] += result.coverage * (b[k] - a[k])
            self.gaps[k] += result.gaps
            self.peak[k] = np.fmax(self.peak[k], result.peak_power_w)

    def results(self, baseline_w: float) -> list[WindowEnergy]:
        """Each window's figures (the same fields, warnings and error as ``energy_windows``)."""
        self._integrate()
        have = not math.isnan(self.t_first)
        samples = f"[{self.t_first:.6f}, {self.t_last:.6f}]" if have else "[none]"
        out = []
        for k in range(len(self.starts)):
            a, b = float(self.starts[k]), float(self.ends[k])
            warnings = []
            error = None
            if not have or a < self.t_first or b > self.t_last:
                warnings.append(f"window [{a:.6f}, {b:.6f}] extends past the samples {samples}")
            gaps = int(self.gaps[k])
            if gaps:
                warnings.append(f"{gaps} gap(s) longer than {GAP_FACTOR:g} x {(self.interval_s or math.nan) * 1e3:.3g} ms inside the window")
            span = min(b, self.t_last) - max(a, self.t_first) if have else 0.0
            if span > 0:
                raw = float(self.energy[k])
                energy, peak, mean = raw - baseline_w * span, float(self.peak[k]), raw / span - baseline_w
            else:
                span = 0.0
                energy = peak = mean = math.nan
                error = f"no samples cover the window [{a:.6f}, {b:.6f}] (samples span {samples})"
                warnings.append("no samples inside the window")
            coverage = min(1.0, float(self.covered[k]) / (b - a)) if span > 0 else 0.0
            out.append(WindowEnergy(a, b, energy, peak, mean, coverage, int(self.samples[k]), gaps, baseline_w, tuple(warnings),
                                    self.plan.method, span, error))
        return out


@dataclass(frozen=True)
class WindowFigures:
    """Windows' figures with what was integrated: the stream, channel and the first sample time."""

    stream: str
    channel: str
    t0: float
    results: tuple[WindowEnergy, ...]
    problems: tuple[str, ...]

    @property
    def result(self) -> WindowEnergy:
        """The first (for :func:`window_energy`: the only) window's figures."""
        return self.results[0]


def stream_plan(spec: StreamSpec, channel: str | None) -> EnergyPlan:
    """How a stream's channel is integrated (:func:`sensors.energy.energy_plan` on the sensor the header describes)."""
    try:
        return energy_plan(spec.channels, tuple(spec.sensor.get("counters") or ()), channel, tuple(spec.sensor.get("interval_averages") or ()))
    except KeyError as error:
        message = str(error.args[0]) if error.args else str(error)
        if channel is not None and channel in spec.channels and not channel.endswith((POWER_SUFFIX, ENERGY_SUFFIX)):
            power = [c for c in spec.channels if c.endswith(POWER_SUFFIX)]
            message = f"channel {channel!r} is not a power channel (energy integrates watts; power channels: {', '.join(power) or 'none'})"
        raise TraceError(f"stream {spec.name!r}: {message}") from None


def window_energies(
    source: str | Path,
    starts: Sequence[float],
    ends: Sequence[float],
    baseline_w: float = 0.0,
    stream: str | None = None,
    channel: str | None = None,
    absolute: bool = True,
    session: str | None = None,
    block_samples: int = BLOCK_SAMPLES,
) -> WindowFigures:
    """Figures of many windows ``[starts[k], ends[k]]`` of a trace, read chunk by chunk (one pass).

    With ``absolute`` (the default here) the windows are in the trace's own time stamps;
    otherwise in seconds from the stream's first sample.
    """
    starts_a = np.asarray(starts, dtype=float).reshape(-1)
    ends_a = np.asarray(ends, dtype=float).reshape(-1)
    if len(starts_a) == 0 or starts_a.shape != ends_a.shape:
        raise TraceError(f"need as many window ends as starts (and at least one), got {len(starts_a)} and {len(ends_a)}")
    if np.any(ends_a <= starts_a):
        k = int(np.argmax(ends_a <= starts_a))
        raise TraceError(f"window {k} ends ({ends_a[k]:g}) at or before it starts ({starts_a[k]:g})")
    reader = SourceReader(source_files(source, session))
    index = reader.stream_index(stream)
    spec = reader.specs[index]
    plan = stream_plan(spec, channel)
    energy_column = spec.channels.index(plan.counter_channel or plan.power_channel)
    power_column = spec.channels.index(plan.power_channel) if plan.power_channel and plan.counter_channel else None
    wrap = spec.sensor.get("counter_wrap_j")
    accumulator: _WindowsAccumulator | None = None
    t0 = math.nan
    for item in reader.items():
        if not isinstance(item, Chunk) or item.stream != index or len(item.t) == 0:
            continue
        if accumulator is None:
            t0 = 0.0 if absolute else float(item.t[0])
            accumulator = _WindowsAccumulator(plan, starts_a + t0, ends_a + t0, declared_interval(spec), wrap, block_samples)
        accumulator.add(item.t, item.values[energy_column], item.values[power_column] if power_column is not None else None)
        if accumulator.done:  # every window is complete: the rest of the file is not read
            break
    if accumulator is None:
        raise TraceError(f"stream {spec.name!r} has no samples")
    return WindowFigures(spec.name, plan.channel, t0, tuple(accumulator.results(baseline_w)), tuple(reader.problems))


def window_energy(
    source: str | Path,
    start: float,
    end: float,
    baseline_w: float = 0.0,
    stream: str | None = None,
    channel: str | None = None,
    absolute: bool = False,
    session: str | None = None,
    block_samples: int = BLOCK_SAMPLES,
) -> WindowFigures:
    """Energy, peak and mean power and coverage of ``[start, end]`` of a trace, read chunk by chunk.

    Without ``absolute`` the window is in seconds from the stream's first sample.
    """
    if end <= start:
        raise TraceError(f"--end ({end:g}) must be after --start ({start:g})")
    return window_energies(source, [start], [end], baseline_w, stream, channel, absolute, session, block_samples)
