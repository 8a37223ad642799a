"""`edgetran profile`: one architecture (or artifact) on one board -> one Measurement.

Per repeat: the runner executes the measurement protocol (warm-up, a marked idle window,
a marked timed block of runs) while the sensor daemon samples the board's supply;
the runner's markers are mapped onto the sensor clock with the measured clock offset,
and the trace gives

* the idle baseline: mean power over the second half of [idle_begin, idle_end] (a
  board's power settles for a while after the warm-up's last run: DVFS ramps down,
  and the virtual rig's activity estimate lags by one poll);
* energy J/seq = (energy of [block_begin, block_end] - baseline x the same span) /
  (batch x runs): the daemon takes energy and baseline over one span (the window's
  part within the samples, ``integrated_s``), from the configured channel's energy
  counter where the sensor has one (RAPL, NVML, powermetrics: ``energy_method:
  "counter"``), else by integrating its power (``"power_integral"``);
* peak power W: the largest sample in the block (absolute, baseline included).

**Coverage.** A block that the sensor's samples cover less than the minimum coverage of
(``ProfileOptions.min_coverage``, ``--min-coverage``; else the rig sensor's
``min_coverage``; else 0.95) is measured again, up to ``COVERAGE_RETRIES`` times; if
it is still short the measurement is refused (:class:`MeasurementRefused`, with the
reason), never stored as if valid. A window no sample reaches has NaN energy. The idle
window only gives the baseline, a *mean* over a steady stretch, which missing samples
do not bias; it must be covered ``IDLE_MIN_COVERAGE`` (50%) or the block's minimum,
whichever is lower. The choice (#11 item 4 set 95% for both; a CI VM showed why that
is wrong for the idle window): on a host whose hypervisor steals the CPU for 5-10 ms
at a time, the idle window was refused though its mean was fine, and a refused idle
window threw away a good block.

A window shorter than 20x the clock-offset uncertainty or 10 sample intervals is not
used as is: the number of runs is raised so the block is long enough (the DESIGN's
"repeated runs lengthen it"), and the raise is reported. Over R repeats the Measurement
carries geometric means (as the paper reports) and min/max spreads, the trace path,
the sensor's and runner's metadata, the clock offset with its uncertainty, and
``"emulated": true`` on the virtual rig.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Optional

from sensors.energy import geometric_mean, nominal_sample_interval  # one geometric mean (NaN for non-positive values)

MAX_RUNS = 100_000
MIN_COVERAGE = 0.95  # a block whose samples cover less than this share of it is measured again, then refused
IDLE_MIN_COVERAGE = 0.5  # the idle window gives a mean, not an integral: half its span covered is enough (see _repeat_row)
COVERAGE_RETRIES = 2  # measurements of a repeat after the first, when its coverage is short


class ProfileError(ValueError):
    """A profile request that cannot be carried out; the message says why."""


class MeasurementRefused(ProfileError):
    """A measurement whose windows the sensor did not cover well enough, after its retry: not a number to store."""


@dataclass(frozen=True)
class ProfileOptions:
    """How to measure."""

    runs: int = 20
    warmup: int = 3
    idle_s: float = 1.0
    repeats: int = 3
    batch: Optional[int] = None  # default: the board's
    seq_len: Optional[int] = None  # default: the board's
    runtime: Optional[str] = None  # default: the board's
    threads: Optional[int] = None
    run_timeout_s: float = 120.0
    seed: int = 0
    min_coverage: Optional[float] = None  # share of the block the samples must cover, (0, 1] (None: the sensor's, else MIN_COVERAGE)

    def __post_init__(self) -> None:
        if self.min_coverage is not None and not 0 < self.min_coverage <= 1:
            raise ProfileError(f"min_coverage must be in (0, 1], got {self.min_coverage}")


def coverage_minimum(options: ProfileOptions) -> float:
    """The share of a block the sensor's samples must cover (the options', else MIN_COVERAGE)."""
    return options.min_coverage if options.min_coverage is not None else MIN_COVERAGE


def artifacts_dir() -> Path:
    """Where exported artifacts are kept (content-addressed): $EDGETRAN_ARTIFACTS or ~/.cache/edgetran/exports."""
    return Path(os.environ.get("EDGETRAN_ARTIFACTS", Path.home() / ".cache" / "edgetran" / "exports")).expanduser()


FORMAT_OF_RUNTIME = {"onnxruntime": "onnx", "openvino": "openvino", "tflite": "tflite"}


def resolve_artifact(file: str | Path, runtime: str, seq_len: int, batch: int, seed: int, folder: Path | None = None) -> Path:
    """An artifact's sidecar: FILE itself when it is one, else FILE's architecture exported (cached)."""
    path = Path(file)
    if path.is_dir():
        raise ProfileError(f"{path}: is a directory, expected a model dictionary (JSON) or an exported artifact")
    if not path.is_file():
        raise ProfileError(f"{path}: file not found")
    from device_runners.artifact import ArtifactError, read_artifact

    try:
        return read_artifact(path).sidecar_path
    except ArtifactError:
        pass
    try:
        model = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ProfileError(f"{path}: neither an artifact (no sidecar) nor a JSON model dictionary") from None
    from codesign.design_space import default_space

    arch = default_space().validate(model) if _in_space(model) else _structural(model)
    fmt = FORMAT_OF_RUNTIME[runtime]
    from codesign.export.cache import export_key

    key = export_key(arch=arch.to_dict(), fmt=fmt, seq=seq_len, batch=batch, seed=seed)
    with _EXPORT_LOCK:  # torch.export is not thread-safe; campaign lanes export one at a time
        return _export_cached(arch, fmt, seq_len, batch, seed, key, folder or artifacts_dir())


_EXPORT_LOCK = threading.Lock()


def _export_cached(arch: Any, fmt: str, seq_len: int, batch: int, seed: int, key: str, folder: Path) -> Path:
    """The cached export of ``key`` (verified), or a new one."""
    from codesign.export.cache import cached_sidecar, remember_export

    folder.mkdir(parents=True, exist_ok=True)
    cached = cached_sidecar(folder, key)
    if cached is not None:
        return cached
    from codesign.export.exporter import export_model
    from codesign.models.build import build_model
    from codesign.models.config import ModelConfig

    config = ModelConfig(max_positions=max(seq_len, 512))
    exported = export_model(build_model(arch, config=config, seed=seed), fmt, seq_len, batch, folder, seed=seed)
    remember_export(folder, key, exported["sidecar"])
    return Path(exported["sidecar"])


def _in_space(model: Any) -> bool:
    from codesign.architecture import Architecture, ArchitectureError
    from codesign.design_space import default_space

    try:
        return default_space().contains(Architecture.from_dict(model))
    except ArchitectureError:
        return False


def _structural(model: Any):
    from codesign.architecture import Architecture, ArchitectureError

    try:
        return Architecture.from_dict(model)
    except ArchitectureError as error:
        raise ProfileError(f"model dictionary: {error}") from None


MIN_BLOCK_S = 0.2  # shortest timed block measured: one sampler stall (several ms on a loaded host) costs < 5% coverage


def required_runs(block_s: float, runs: int, uncertainty_s: float, sample_interval_s: float) -> int:
    """Runs needed so the timed block passes the clock/sensor window check and lasts MIN_BLOCK_S (with a 20% margin).

    The clock rule (sensors.clock_sync's MIN_WINDOW_*) alone let a 16 ms block through at
    1 kHz; one 7 ms stall of the sampling thread then left it 54% covered, and the coverage
    minimum (0.95) refused it every time. MIN_BLOCK_S bounds the loss to a stall's share.
    """
    from sensors.clock_sync import WindowTooShort, check_window

    required_s = MIN_BLOCK_S
    try:
        check_window(block_s, uncertainty_s, sample_interval_s)
    except WindowTooShort as short:
        required_s = max(required_s, short.required_s)
    if block_s >= required_s:
        return runs
    return min(MAX_RUNS, math.ceil(runs * required_s * 1.2 / block_s))


def _window_of(report: Any, begin: str, end: str, offset_s: float) -> tuple[float, float]:
    first = next(m for m in report.markers if m.kind == begin)
    last = next(m for m in report.markers if m.kind == end)
    return first.monotonic_ns / 1e9 + offset_s, last.monotonic_ns / 1e9 + offset_s


Runner = Callable[[int, int], Any]  # (runs, seed) -> device_runners.protocol.RunReport


def protocol_options(board: Any, options: ProfileOptions, runs: int, seed: int) -> dict:
    """The keywords of device_runners.protocol.measure for one repeat on a board."""
    return {"runtime": options.runtime or board.runtime, "device": board.device, "batch": options.batch or board.batch,
            "runs": runs, "warmup": options.warmup, "idle_s": options.idle_s, "run_timeout_s": options.run_timeout_s,
            "threads": options.threads, "seed": seed}


def _repeat_row(daemon: Any, sensor_name: str, channel: str | None, report: Any, r: int, attempt: int, batch: int,
                options: ProfileOptions, clock_offset_s: float) -> tuple[dict, str | None]:
    """One repeat's figures from the daemon's windows, and why they cannot be used (None when they can).

    The baseline is the idle window's mean power; the daemon subtracts it over the same
    span it integrates the block over (``integrated_s``), so energy and baseline share one span.
    """
    b0, b1 = _window_of(report, "block_begin", "block_end", clock_offset_s)
    extra = {"attempt": attempt} if attempt else {}
    daemon.add_event("window_begin", f"repeat-{r}", t=b0, artifact=report.artifact_sha256, runs=report.runs, batch=batch, **extra)
    daemon.add_event("window_end", f"repeat-{r}", t=b1, **extra)
    baseline_w, idle = 0.0, None
    if options.idle_s > 0:
        i0, i1 = _window_of(report, "idle_begin", "idle_end", clock_offset_s)
        idle = daemon.window((i0 + i1) / 2, i1, sensor_name, channel)
        baseline_w = idle["mean_power_w"]
    block = daemon.window(b0, b1, sensor_name, channel, baseline_w if math.isfinite(baseline_w) else 0.0)
    short = None
    block_minimum = coverage_minimum(options)
    for what, window, minimum in (("block", block, block_minimum), ("idle", idle, min(block_minimum, IDLE_MIN_COVERAGE))):
        if window is None:
            continue
        if not window["coverage"] >= minimum or not math.isfinite(window["energy_j"]):
            why = window.get("error") or "; ".join(window.get("warnings", [])) or "samples missing"
            short = (f"the sensor's samples cover {window['coverage']:.1%} of the {what} window "
                     f"[{window['start_s']:.3f}, {window['end_s']:.3f}] (minimum {minimum:.0%}): {why}")
            break
    row = {
        "repeat": r,
        "latency_s_per_seq": report.latency_per_sequence.median_s,
        "energy_j_per_seq": block["energy_j"] / (batch * report.runs),
        "peak_power_w": block["peak_power_w"],
        "idle_power_w": baseline_w,
        "block_s": b1 - b0,
        "block_energy_j": block["energy_j"] + baseline_w * block.get("integrated_s", b1 - b0),  # absolute, baseline included
        "integrated_s": block.get("integrated_s", b1 - b0),
        "channel": block.get("channel", channel),
        "energy_method": block.get("energy_method", "power_integral"),
        "coverage": block["coverage"],
        "idle_coverage": idle["coverage"] if idle is not None else None,
        "samples": block["samples"],
        "runs": report.runs,
        "attempts": attempt + 1,
        "latency_stats": report.latency_per_batch.__dict__,
        "cpu_time_s": report.cpu_time_s,
        "peak_rss_bytes": report.peak_rss_bytes,
        "window_warnings": list(block["warnings"]),
    }
    return row, short


def profile_on_daemon(
    sidecar: Path,
    daemon: Any,
    sensor_name: str,
    board: Any,
    options: ProfileOptions,
    clock_offset_s: float,
    clock_uncertainty_s: float,
    on_repeat: Callable[[int, dict], None] | None = None,
    runner: Runner | None = None,
    channel: str | None = None,
) -> dict:
    """Measure one artifact on a board whose supply a running daemon samples; return the Measurement.

    ``runner(runs, seed)`` executes the protocol (default: an isolated child of this
    process); its markers are on the runner's clock, ``sensor = runner + clock_offset_s``.
    ``channel`` is the sensor channel integrated (default: its first power channel); the
    daemon uses that rail's energy counter where the sensor has one (``energy_method``).
    A repeat whose block the samples cover less than ``coverage_minimum(options)`` of
    (its idle window: see the module's **Coverage**) is measured again, then refused (:class:`MeasurementRefused`): a partly covered
    window is never stored as if it were valid.
    """
    if runner is None:
        from device_runners.protocol import measure

        def runner(runs: int, seed: int) -> Any:
            return measure(sidecar, **protocol_options(board, options, runs, seed))

    batch = options.batch or board.batch
    sensor = next(s for s in daemon.sensors if s.info.name == sensor_name)
    sample_interval = nominal_sample_interval(sensor.info.update_interval_s, daemon.interval_s)
    runs = options.runs
    repeats, warnings = [], []
    for r in range(options.repeats):
        for attempt in range(COVERAGE_RETRIES + 1):
            report = runner(runs, options.seed + r)
            needed = required_runs(report.block_s, runs, clock_uncertainty_s, sample_interval)
            if needed > runs:
                warnings.append(f"repeat {r}: a {report.block_s * 1e3:.1f} ms block is too short for the clock and sensor; runs raised {runs} -> {needed}")
                runs = needed
                report = runner(runs, options.seed + r)
            time.sleep(2 * sample_interval)  # let the sensor convert past the block's end
            row, short = _repeat_row(daemon, sensor_name, channel, report, r, attempt, batch, options, clock_offset_s)
            if short is None:
                break
            if attempt < COVERAGE_RETRIES:
                warnings.append(f"repeat {r}: {short}; measured again")
            else:
                raise MeasurementRefused(f"repeat {r}: {short}, also when measured {COVERAGE_RETRIES} more time(s): refused (not stored as a measurement)")
        if row["energy_j_per_seq"] <= 0:
            warnings.append(f"repeat {r}: energy above the idle baseline is not positive ({row['energy_j_per_seq']:.3g} J/seq): the block is within the sensor's noise")
        warnings.extend(f"repeat {r}: {w}" for w in row.pop("window_warnings"))
        repeats.append(row)
        if on_repeat is not None:
            on_repeat(r, row)
    measures = ("latency_s_per_seq", "energy_j_per_seq", "peak_power_w")
    return {
        **{m: geometric_mean([row[m] for row in repeats]) for m in measures},
        "spread": {m: {"min": min(row[m] for row in repeats), "max": max(row[m] for row in repeats)} for m in measures},
        "idle_power_w": geometric_mean([row["idle_power_w"] for row in repeats]) if options.idle_s > 0 else None,
        "batch": batch,
        "runs": runs,
        "repeats": len(repeats),
        "warmup": options.warmup,
        "seq_len": int(json.loads(Path(sidecar).read_text())["seq_len"]),
        "board": board.name,
        "runtime": report.runtime,
        "device": report.device,
        "runtime_versions": report.versions,
        "artifact_sha256": report.artifact_sha256,
        "artifact_format": report.artifact_format,
        "sensor": sensor.info.to_dict(),
        "channel": repeats[-1]["channel"],
        "energy_method": repeats[-1]["energy_method"],
        "min_coverage": coverage_minimum(options),
        "clock_offset_s": clock_offset_s,
        "clock_offset_uncertainty_s": clock_uncertainty_s,
        "emulated": bool(board.emulated or sensor.info.provenance == "emulated"),
        "per_repeat": repeats,
        "warnings": warnings,
        "measured_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def run_profile(
    file: str | Path,
    rig: Any,
    board_name: Optional[str],
    options: ProfileOptions,
    on_repeat: Callable[[int, dict], None] | None = None,
    on_phase: Callable[[str], None] | None = None,
    dispatch: Any = None,
) -> dict:
    """Profile FILE (architecture or artifact) on a rig board (runs dispatched by ``dispatch``, default in-process)."""
    from firmware_host.dispatch import InProcessDispatch

    board = rig.board(board_name)
    dispatch = dispatch or InProcessDispatch()
    phase = on_phase or (lambda text: None)
    phase("preparing the artifact")
    runtime = options.runtime or board.runtime
    sidecar = resolve_artifact(file, runtime, options.seq_len or board.seq_len, options.batch or board.batch, options.seed)
    measurement = profile_artifact(sidecar, rig, board, options, dispatch, on_repeat, phase)
    outside = outside_design_space(json.loads(sidecar.read_text()).get("architecture"))
    measurement["in_design_space"] = outside is None
    if outside is not None:
        measurement["warnings"].append(outside)
    return measurement


def outside_design_space(model: Any) -> str | None:
    """Why a model lies outside the FlexiBERT 2.0 design space (None when inside).

    The choice (#12): ``profile`` measures any structurally valid model, in the space or
    not, because grow-and-prune children (3 heads, h = 160) leave the space's grid and
    must be measurable; ``space validate`` checks membership of the grid. A measurement
    says which it was (``in_design_space``) and warns when outside, so neither command
    contradicts the other silently.
    """
    from codesign.architecture import ArchitectureError
    from codesign.design_space import default_space

    if model is None:
        return None
    try:
        default_space().validate(model)
    except ArchitectureError as error:
        return f"outside the FlexiBERT 2.0 design space ({error}): measured as a structurally valid model; `edgetran space validate` refuses it"
    return None


def profile_artifact(sidecar: Path, rig: Any, board: Any, options: ProfileOptions, dispatch: Any,
                     on_repeat: Callable[[int, dict], None] | None = None, phase: Callable[[str], None] = lambda text: None) -> dict:
    """Measure an exported artifact on a board: open its sensor's daemon, align clocks, run the repeats."""
    from firmware_host.board_daemon import BoardDaemon
    from firmware_host.dispatch import clock_offset_for

    spec = rig.sensor_for(board.name)
    if options.min_coverage is None and spec.min_coverage is not None:
        options = replace(options, min_coverage=spec.min_coverage)  # the rig sensor's own minimum
    follow_pid = None
    if board.emulated:
        pid, host = dispatch.worker_process(board)
        import socket

        if host != socket.gethostname():
            raise ProfileError(f"board {board.name!r} is virtual but its worker runs on {host}: a virtual board's worker must run on this machine")
        follow_pid = pid
    phase("sampling the supply")
    with BoardDaemon(spec, board, rig.traces, follow_pid) as link:
        clock = clock_offset_for(dispatch, board, link)  # sensor clock = runner clock + offset (0 when one clock)

        def runner(runs: int, seed: int) -> Any:
            return dispatch.run(board, sidecar, protocol_options(board, options, runs, seed))

        phase("measuring")
        measurement = profile_on_daemon(sidecar, link.daemon, spec.name, board, options, clock.offset_s, clock.uncertainty_s,
                                        on_repeat, runner, channel=link.channel)
        sampler = link.sampler()
    measurement["trace"] = link.trace
    measurement["artifact"] = str(sidecar)
    measurement["rig"] = rig.source
    measurement["dispatch"] = dispatch.name
    measurement["sampler"] = sampler
    return measurement


PROFILE_CAMPAIGN = "profiles"  # ad-hoc `edgetran profile` runs; every run is stored as a new repeat of its key


def store_measurement(db: str | Path, measurement: dict) -> int:
    """Save a profile measurement in the SQLite store (campaign 'profiles'); return its repeat index."""
    from firmware_host.store import MeasurementKey, MeasurementStore

    with MeasurementStore(db) as store:
        store.start_campaign(PROFILE_CAMPAIGN, {"kind": "ad-hoc profiles"})
        base = (measurement["artifact_sha256"], measurement["board"], measurement["runtime"], measurement["device"], measurement["batch"])
        with store.transaction():  # count and insert under one write lock: concurrent stores get distinct repeats
            repeat = store.next_repeat(PROFILE_CAMPAIGN, base)
            save_measurement(store, PROFILE_CAMPAIGN, MeasurementKey(*base, repeat), measurement)
        return repeat


def save_measurement(store: Any, campaign: str, key: Any, measurement: dict) -> bool:
    """Store a measurement with its artifact and (when it is a file here) its trace; False if already stored."""
    sidecar = json.loads(Path(measurement["artifact"]).read_text())
    store.add_artifact(measurement["artifact_sha256"], measurement["artifact_format"], sidecar.get("architecture", {}), sidecar)
    if Path(measurement["trace"]).is_file():
        store.add_trace(measurement["trace"], [measurement["sensor"]["name"]])
    return store.add_measurement(measurement_record(campaign, key, measurement))


def measurement_record(campaign: str, key: Any, measurement: dict) -> Any:
    """A profile measurement as the store's MeasurementRecord (spreads = max - min over the repeats)."""
    from firmware_host.store import MeasurementRecord

    energy = measurement["energy_j_per_seq"]
    spread = measurement["spread"]
    return MeasurementRecord(
        campaign=campaign,
        key=key,
        runs=measurement["runs"],
        latency_s_per_seq=measurement["latency_s_per_seq"],
        energy_j_per_seq=energy if math.isfinite(energy) else None,
        peak_power_w=measurement["peak_power_w"],
        latency_spread_s_per_seq=spread["latency_s_per_seq"]["max"] - spread["latency_s_per_seq"]["min"],
        energy_spread_j_per_seq=(spread["energy_j_per_seq"]["max"] - spread["energy_j_per_seq"]["min"]) if math.isfinite(energy) else None,
        sensor=measurement["sensor"]["name"],
        trace_path=measurement["trace"],
        clock_offset_s=measurement["clock_offset_s"],
        clock_uncertainty_s=measurement["clock_offset_uncertainty_s"],
        emulated=measurement["emulated"],
        artifact_sha256=measurement["artifact_sha256"],
        data=finite_or_none(measurement),
    )


def finite_or_none(value: Any) -> Any:
    """A JSON-safe copy: NaN and infinities become None, tuples lists, keys strings (stores keep strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value
