"""`edgetran sensor ...` and `edgetran trace ...`: sources, the daemon, recording, traces, energy.

Bad input is raised as ``typer.BadParameter`` (one line, exit 2 at the entry point).
"""

from __future__ import annotations

import json
import logging
import math
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

log = logging.getLogger(__name__)

sensor_app = typer.Typer(help="Power sensors: list them, record, watch live, run the sampling daemon.", no_args_is_help=True)
trace_app = typer.Typer(help="Recorded traces: info, CSV/JSON import and export, energy of a window.", no_args_is_help=True)

DEFAULT_RATE_HZ = 1000.0
DEFAULT_REALTIME_PRIORITY = 10  # SCHED_FIFO priority asked for the sampling thread (kept default if refused)


@contextmanager
def input_errors() -> Iterator[None]:
    """Turn the sensors room's input errors into one-line usage errors."""
    from sensors.base import SensorConfigError, SensorError
    from sensors.daemon import DaemonError
    from sensors.trace.format import TraceError

    try:
        yield
    except (SensorConfigError, SensorError, DaemonError, TraceError, ValueError, KeyError) as error:
        message = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
        raise typer.BadParameter(message) from None


def check_output(path: Path) -> Path:
    """Refuse (exit 2) an output file that cannot be written, before any work is done."""
    from codesign.atomic_io import OutputPathError, check_output_file

    try:
        return check_output_file(path)
    except OutputPathError as error:
        raise typer.BadParameter(str(error)) from None


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs to typed parameters (int, hex int, float, bool, or string)."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"--param needs key=value, got {pair!r}")
        value: Any = text
        lowered = text.lower()
        if lowered in ("true", "false"):
            value = lowered == "true"
        else:
            for convert in (lambda s: int(s, 0), float):
                try:
                    value = convert(text)
                    break
                except ValueError:
                    continue
        params[key.replace("-", "_")] = value
    return params


def build_sensor(kind: str, params: dict[str, Any], rate_hz: float | None):
    """Create a sensor through the one factory (the rate goes to kinds that take one)."""
    from sensors.registry import open_sensor

    with input_errors():
        return open_sensor(kind, params, rate_hz=rate_hz)


@sensor_app.command("list")
def list_sensors(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Known sensor kinds and which are present on this machine."""
    from sensors.registry import list_kinds

    rows = list_kinds()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="Sensor kinds")
    for column in ("kind", "present", "provenance", "description"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["kind"], "yes" if row["present"] else "no", row["provenance"], row["description"])
    Console().print(table)


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: Any) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


@sensor_app.command("record")
def record(
    sensor: str = typer.Option("emulated-ina219", "--sensor", help="Sensor kind (see `sensor list`)."),
    duration: float = typer.Option(3.0, "--duration", help="Seconds to record.", min=0.01),
    rate: float = typer.Option(DEFAULT_RATE_HZ, "--rate", help="Polling rate in Hz."),
    out: Path = typer.Option(..., "--out", help="Trace file to create (never overwritten)."),
    param: list[str] = typer.Option([], "--param", help="Sensor parameter key=value (repeatable)."),
    realtime: bool = typer.Option(True, "--realtime/--no-realtime", help="Ask for SCHED_FIFO for the sampling thread."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Record a sensor to a trace file for a fixed duration, with a progress bar."""
    from sensors.daemon import SamplingDaemon

    if out.exists() and not out.is_dir():
        raise typer.BadParameter(f"{out}: already exists (refusing to overwrite a recording)")
    check_output(out)
    source = build_sensor(sensor, parse_params(param), rate)
    with input_errors():
        daemon = SamplingDaemon(
            [source], rate, ring_seconds=1.0, record_path=out, realtime_priority=DEFAULT_REALTIME_PRIORITY if realtime else None
        )
        daemon.start()
    stop = threading.Event()
    _stop_on_signals(stop)
    started = time.monotonic()
    interrupted = False
    try:
        with Progress(TextColumn("recording {task.description}"), BarColumn(), TimeRemainingColumn(), disable=as_json, transient=True) as progress:
            task = progress.add_task(str(out), total=duration)
            while not stop.is_set() and (elapsed := time.monotonic() - started) < duration:
                progress.update(task, completed=elapsed)
                time.sleep(0.05)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        daemon.stop()
        source.close()
    stats = daemon.stats
    elapsed = time.monotonic() - started
    from sensors.trace.streaming import summarize

    try:
        written = summarize(out)  # the holes counted as `trace info` counts them, from the file just closed
    except (OSError, ValueError) as error:  # the recording is kept whatever this says
        written = {"gaps": None}
        log.warning("could not read back %s to count its gaps: %s", out, error)
    summary = {
        "path": str(out),
        "sensor": source.info.to_dict(),
        "duration_s": elapsed,
        "poll_rate_hz": rate,
        "samples": stats.fresh,
        "stored_rate_hz": stats.fresh / elapsed if elapsed > 0 else 0.0,
        "on_time_fraction": stats.on_time_fraction,
        "stale_reads": stats.stale,
        "errors": stats.errors,
        "gaps": written["gaps"],  # spacing gaps (intervals > 3 x nominal), as in `trace info`
        "read_failures": stats.gaps,  # stretches where every retry failed (gap_begin events)
        "scheduling": daemon.scheduling,
        "interrupted": interrupted,
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        typer.echo(
            f"recorded {stats.fresh} samples in {elapsed:.2f} s to {out} ({summary['stored_rate_hz']:.0f} Hz stored, "
            f"{stats.on_time_fraction * 100:.2f}% of ticks on time ({daemon.scheduling}), {stats.errors} errors, {written['gaps']} gaps, {stats.gaps} read failures; "
            f"{source.info.provenance}, update interval {source.info.update_interval_s * 1e3:.3f} ms)"
        )
    if interrupted:  # Ctrl-C: the trace so far is complete and closed; say so and exit 130 like any interrupted command
        typer.echo(
            f"edgetran sensor record: interrupted after {elapsed:.2f} of {duration:g} s: kept {stats.fresh} samples in {out} "
            f"(a complete, closed trace; record again with a new --out for the rest)",
            err=True,
        )
        raise typer.Exit(130)


@sensor_app.command("live")
def live(
    sensor: str = typer.Option("emulated-ina219", "--sensor", help="Sensor kind (see `sensor list`)."),
    replay: Optional[Path] = typer.Option(None, "--replay", help="Replay this trace instead of a sensor."),
    speed: float = typer.Option(1.0, "--speed", help="Replay speed factor.", min=0.01),
    rate: float = typer.Option(200.0, "--rate", help="Polling rate in Hz."),
    window: float = typer.Option(10.0, "--window", help="Seconds shown.", min=0.5),
    duration: Optional[float] = typer.Option(None, "--duration", help="Stop after this many seconds (default: Ctrl-C)."),
    refresh: float = typer.Option(8.0, "--refresh", help="Screen updates per second.", min=1.0),
    param: list[str] = typer.Option([], "--param", help="Sensor parameter key=value (repeatable)."),
) -> None:
    """Rolling power plot per channel in the terminal, with current/peak/mean readouts."""
    from sensors.daemon import SamplingDaemon
    from sensors.live import run_live

    if replay is not None:
        source = build_sensor("replay", {"path": str(replay), "speed": speed, "loop": True}, None)
    else:
        source = build_sensor(sensor, parse_params(param), rate)
    with input_errors():
        daemon = SamplingDaemon([source], rate, ring_seconds=window * 1.5)
    daemon.start()
    try:
        run_live(daemon, duration, window, refresh)
    finally:
        daemon.stop()
        source.close()


def load_daemon_config(path: Path) -> dict:
    """Parse and check a daemon TOML file ([daemon] table and [[sensors]] array)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        with open(path, "rb") as handle:
            table = tomllib.load(handle)
    except FileNotFoundError:
        raise typer.BadParameter(f"{path}: file not found") from None
    except IsADirectoryError:
        raise typer.BadParameter(f"{path}: is a directory, expected a daemon TOML file") from None
    except tomllib.TOMLDecodeError as error:
        raise typer.BadParameter(f"{path}: not valid TOML ({error})") from None
    daemon = table.get("daemon", {})
    sensors = table.get("sensors", [])
    if not isinstance(sensors, list) or not sensors:
        raise typer.BadParameter(f"{path}: needs at least one [[sensors]] table")
    for i, entry in enumerate(sensors):
        if not isinstance(entry, dict) or "kind" not in entry:
            raise typer.BadParameter(f"{path}: sensors[{i}] needs a kind")
    known = {"host", "port", "token", "token_file", "allow_remote", "rate_hz", "ring_seconds", "record", "realtime_priority", *RECORDING_KEYS}
    unknown = sorted(set(daemon) - known)
    if unknown:
        raise typer.BadParameter(f"{path}: unknown [daemon] key {unknown[0]!r} (known: {', '.join(sorted(known))})")
    return {"daemon": daemon, "sensors": sensors}


RECORDING_KEYS = ("record_stem", "rotate_mb", "rotate_daily", "keep_mb", "keep_files")
MB = 2**20  # rotate_mb and keep_mb are MiB


def option_number(options: dict, key: str, default: float, zero_ok: bool = False) -> float:
    """A positive (or, with ``zero_ok``, non-negative) number from the [daemon] table; one-line error otherwise."""
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (value == 0 and not zero_ok):
        raise typer.BadParameter(f"[daemon] {key} must be a {'non-negative' if zero_ok else 'positive'} number, got {value!r}")
    return float(value)


def recording(options: dict) -> dict:
    """The daemon's recording from its [daemon] table: ``record_path`` or ``open_writer`` (or nothing).

    ``record`` naming a directory (an existing one, or a path ending in ``/``) records a
    rotated set there (:mod:`sensors.trace.rotation`): a new file every ``rotate_mb``
    (256 MiB: ~18 min at 2 kHz) and at each UTC midnight (``rotate_daily``), the oldest
    files deleted while the set holds more than ``keep_mb`` (2048 MiB) or ``keep_files``
    files (0: no file-count limit). ``record`` naming a file records that one file,
    never rotated (for a bounded recording); the rotation keys then are refused.
    """
    from sensors.daemon import rotating_writer
    from sensors.trace.rotation import DEFAULT_KEEP_BYTES, DEFAULT_MAX_BYTES

    target = options.get("record")
    given = [key for key in RECORDING_KEYS if key in options]
    if not target:
        if given:
            raise typer.BadParameter(f"[daemon] {given[0]} needs record = a directory")
        return {}
    path = Path(str(target))
    if not (str(target).endswith("/") or path.is_dir()):
        if given:
            raise typer.BadParameter(f"[daemon] {given[0]} applies to a rotated set: make record a directory (end it with '/')")
        return {"record_path": path.absolute()}  # absolute: status names it for hosts that keep a trace reference

    rotate_daily = options.get("rotate_daily", True)
    if not isinstance(rotate_daily, bool):
        raise typer.BadParameter(f"[daemon] rotate_daily must be true or false, got {rotate_daily!r}")
    max_bytes = max(1, int(option_number(options, "rotate_mb", DEFAULT_MAX_BYTES / MB) * MB))
    keep_bytes = max(1, int(option_number(options, "keep_mb", DEFAULT_KEEP_BYTES / MB) * MB))
    keep_files = int(option_number(options, "keep_files", 0, zero_ok=True)) or None
    stem = str(options.get("record_stem", "edgetran"))
    with input_errors():
        path.mkdir(parents=True, exist_ok=True)
        factory = rotating_writer(path.resolve(), stem, max_bytes, rotate_daily, keep_bytes, keep_files)
    return {"open_writer": factory}


@sensor_app.command("daemon")
def daemon_command(config: Path = typer.Option(..., "--config", help="Daemon TOML file (see sensors/systemd/).")) -> None:
    """Run the sampling daemon as a service (what the Pi's systemd unit starts)."""
    from sensors.daemon import DEFAULT_PORT, DEFAULT_RING_S, SamplingDaemon

    settings = load_daemon_config(config)
    options = settings["daemon"]
    rate = float(options.get("rate_hz", DEFAULT_RATE_HZ))
    token = options.get("token")
    if options.get("token_file"):
        try:
            token = Path(options["token_file"]).read_text().strip()
        except OSError as error:
            raise typer.BadParameter(f"token_file {options['token_file']}: {error.strerror}") from None
    sensors = []
    for entry in settings["sensors"]:
        params = {k: v for k, v in entry.items() if k != "kind"}
        sensors.append(build_sensor(entry["kind"], params, rate))
    recording_args = recording(options)
    with input_errors():
        daemon = SamplingDaemon(
            sensors,
            rate,
            ring_seconds=option_number(options, "ring_seconds", DEFAULT_RING_S),
            **recording_args,
            host=str(options.get("host", "127.0.0.1")),
            port=int(options.get("port", DEFAULT_PORT)),
            token=token,
            allow_remote=bool(options.get("allow_remote", False)),
            realtime_priority=int(options.get("realtime_priority", DEFAULT_REALTIME_PRIORITY)) or None,
        )
        daemon.start()
    stop = threading.Event()
    _stop_on_signals(stop)
    typer.echo(f"edgetran sensor daemon: {len(sensors)} sensor(s) at {rate:g} Hz on {daemon.host}:{daemon.port}"
               + (f", recording to {options['record']}" if options.get("record") else ""), err=True)
    sys.stderr.flush()
    try:
        while not stop.is_set() and not daemon.sampler_died.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        daemon.stop()
        for sensor in sensors:
            sensor.close()
    if daemon.sampler_died.is_set():  # exit non-zero: systemd's Restart=on-failure starts a fresh daemon
        typer.echo(f"edgetran sensor daemon: the sampling thread died ({daemon.sampler_error}); exiting with status 1", err=True)
        raise typer.Exit(code=1)


# -- traces ---------------------------------------------------------------------------


DEFAULT_MIN_COVERAGE = 0.95  # `trace energy` refuses a window less covered than this (a setting: --min-coverage)


def _summary(path: Path, session: Optional[str] = None) -> dict:
    """A trace's (or one rotated session's) summary, read chunk by chunk."""
    from sensors.trace.streaming import summarize

    with input_errors():
        return summarize(path, session)


def _print_summary(summary: dict) -> None:
    for stream in summary["streams"]:
        typer.echo(
            f"{stream['name']}: {stream['samples']} samples over {stream['duration_s']:.3f} s "
            f"({stream['rate_hz']:.1f} Hz), channels {', '.join(stream['channels'])}, {stream['gaps']} gaps, {stream['read_failures']} read failures"
        )
    typer.echo(f"{summary['events']} events; {'closed cleanly' if summary['closed_cleanly'] else 'not closed cleanly'}")
    for damage in summary["damage"]:
        lost = ", ".join(f"{n} samples of {name}" for name, n in damage["samples_lost"].items()) or "no samples"
        typer.echo(f"damage{' in ' + damage['file'] if len(summary['files']) > 1 else ''}: {len(damage['regions'])} region(s), "
                   f"{damage['records_lost']} record(s) and {lost} lost")
    for problem in summary["problems"]:
        typer.echo(f"problem: {problem}")


@trace_app.command("info")
def info(
    path: Path = typer.Argument(..., help="Trace file, or a directory of rotated traces (lists its sessions and files)."),
    session: Optional[str] = typer.Option(None, "--session", help="Only this recording session of a directory (id or prefix)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Samples, duration, rate, channels, gaps, events and damage of a trace, read chunk by chunk."""
    from sensors.trace.streaming import list_sessions

    if not path.is_dir():
        summary = _summary(path, session)
        if as_json:
            typer.echo(json.dumps(summary, indent=2))
        else:
            _print_summary(summary)
        return
    with input_errors():
        sessions = [s for s in list_sessions(path) if session is None or s.id.startswith(session)]
    if not sessions:
        raise typer.BadParameter(f"{path}: no rotated trace files" + (f" of session {session!r}" if session else ""))
    listing = [{"session": s.id, "stem": s.stem, **_summary(path, s.id)} for s in sessions]
    if as_json:
        typer.echo(json.dumps({**listing[-1], "sessions": listing}, indent=2))
        return
    for entry in listing:
        typer.echo(f"session {entry['session']} ({entry['stem']}): {len(entry['files'])} file(s)")
        for name in entry["files"]:
            typer.echo(f"  {Path(name).name}")
        _print_summary(entry)


@trace_app.command("import")
def import_command(
    source: Path = typer.Argument(..., help="CSV (t_s,power_w[,...]) or a JSON nvidia-smi power log."),
    out: Path = typer.Option(..., "--out", help="Trace file to create."),
    events: Optional[Path] = typer.Option(None, "--events", help="Events CSV (t_s,event,label)."),
    as_json: bool = typer.Option(False, "--json", help="Print the new trace's info as JSON."),
) -> None:
    """Import samples (and events) into a trace file."""
    from sensors.trace.exchange import import_any
    from sensors.trace.format import write_trace

    check_output(out)
    with input_errors():
        trace = import_any(source, events)
        write_trace(out, trace)
    summary = _summary(out)
    typer.echo(json.dumps(summary, indent=2) if as_json else f"imported {summary['samples']} samples into {out}")


@trace_app.command("export")
def export_command(
    path: Path = typer.Argument(..., help="Trace file."),
    csv_path: Path = typer.Option(..., "--csv", help="Samples CSV to write (events go to *.events.csv)."),
    stream: Optional[str] = typer.Option(None, "--stream", help="Stream to export (default: the first)."),
    as_json: bool = typer.Option(False, "--json", help="Print the written files and counts as JSON."),
) -> None:
    """Export one stream's samples and the events as CSV (read chunk by chunk)."""
    from sensors.trace.exchange import export_csv_file

    with input_errors():
        written = export_csv_file(path, csv_path, stream)
    if as_json:
        typer.echo(json.dumps(written, indent=2))
        return
    typer.echo(f"wrote {written['samples']} samples to {written['samples_csv']} and {written['events']} events to {written['events_csv']}")
    for problem in written["problems"]:
        typer.echo(f"problem: {problem}")


@trace_app.command("energy")
def energy_command(
    path: Path = typer.Argument(..., help="Trace file, or a directory of rotated traces (one session)."),
    start: float = typer.Option(..., "--start", help="Window start, seconds from the stream's first sample."),
    end: float = typer.Option(..., "--end", help="Window end, seconds from the stream's first sample."),
    baseline_w: float = typer.Option(0.0, "--baseline-w", help="Idle power to subtract, W."),
    stream: Optional[str] = typer.Option(None, "--stream", help="Stream (default: the first)."),
    channel: Optional[str] = typer.Option(None, "--channel", help="Power channel, *power_w (default: the first)."),
    absolute: bool = typer.Option(False, "--absolute", help="--start/--end are the trace's own timestamps."),
    session: Optional[str] = typer.Option(None, "--session", help="Recording session of a directory (id or prefix)."),
    min_coverage: float = typer.Option(DEFAULT_MIN_COVERAGE, "--min-coverage", min=0.0, max=1.0,
                                       help="Refuse a window whose sampled share is below this."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Energy, peak and mean power and coverage of a window of a trace, read chunk by chunk.

    Refused (exit 2): a window outside the data, coverage below --min-coverage, a channel
    that is not power.
    """
    from sensors.trace.streaming import window_energy

    if end <= start:
        raise typer.BadParameter(f"--end ({end:g}) must be after --start ({start:g})")
    with input_errors():
        figures_of = window_energy(path, start, end, baseline_w, stream, channel, absolute, session)
    result = figures_of.result
    where = "" if absolute else " (seconds from the first sample)"
    if result.samples == 0 and not math.isfinite(result.energy_j):
        raise typer.BadParameter(f"window [{start:g}, {end:g}] s{where} holds no samples of the trace")
    if result.coverage < min_coverage:
        raise typer.BadParameter(
            f"window [{start:g}, {end:g}] s{where} is {result.coverage * 100:.1f}% covered by samples, below --min-coverage "
            f"{min_coverage * 100:g}% ({'; '.join(result.warnings) or 'sparse samples'})"
        )
    figures = {"stream": figures_of.stream, "channel": figures_of.channel, **result.to_dict(), "problems": list(figures_of.problems)}
    if not absolute:
        figures["start_s"], figures["end_s"] = start, end
    if as_json:
        typer.echo(json.dumps(figures, indent=2))
        return
    typer.echo(
        f"{figures['energy_j']:.6g} J over {result.duration_s:.6g} s: peak {figures['peak_power_w']:.4g} W, "
        f"mean {figures['mean_power_w']:.4g} W, coverage {figures['coverage'] * 100:.2f}%"
    )
    for warning in figures["warnings"]:
        typer.echo(f"warning: {warning}")
