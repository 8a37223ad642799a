"""The measurement protocol: the one function every caller uses to time a model on a board.

1. Load the artifact and verify its sha256 against its sidecar.
2. Open the runtime (see :mod:`device_runners.runtimes`) and build inputs of the
   artifact's sequence length for batch ``B`` (token ids drawn from a seeded generator,
   attention mask of ones, token types of zeros).
3. Warm up (``warmup`` runs, unmarked).
4. Optionally an **idle window** of ``idle_s`` seconds, marked ``idle_begin``/``idle_end``,
   so the host can subtract the board's idle power.
5. The **timed block**: ``block_begin``, then per run ``run_begin``/``run_end``, then
   ``block_end``. Each marker carries the monotonic and the wall-clock time (ns).
6. Report latency per batch and per sequence (median, mean, p90, min, max, spread),
   throughput, the process CPU time of the block and the peak RSS.

**Isolation and the watchdog.** By default the protocol runs in a child Python process
(``python -m device_runners.protocol``) while the caller is the watchdog: the child
writes its phase, run index and run start time into a small shared memory-mapped
file (no system call on the timed path), the caller polls it, and a phase that overstays its limit (loading:
``load_timeout_s``; each warm-up or timed run: ``run_timeout_s``; idle: its length plus
``run_timeout_s``; the hand-over after the block: ``DONE_GRACE_S``) gets the child killed
and :class:`RunTimeout` raised. The child's pipes are drained by threads while it runs. A native
runtime call cannot be interrupted inside a process (and an abandoned inference thread
aborts the interpreter at exit), so a process is the unit that can be abandoned
cleanly. The child also makes the peak RSS and CPU time those of the measurement
alone. ``isolate=False`` runs in the calling process without a watchdog (benchmarks).

A ``marker_sink`` callable receives every marker once the block is over (the host
forwards them to the sensor daemon); markers are also returned in the report.
"""

from __future__ import annotations

import json
import mmap
import os
import resource
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from device_runners.artifact import Artifact, ArtifactError, load_artifact
from device_runners.runtimes import DeviceUnavailable, RuntimeUnavailable, open_runtime

WATCHDOG_POLL_S = 0.01
DEFAULT_LOAD_TIMEOUT_S = 300.0  # loading + compiling a BERT-Base on a Pi takes tens of seconds
DONE_GRACE_S = 30.0  # from the "done" phase to the child's exit (report written, runtime torn down)
PROGRESS = struct.Struct("<Bxxxiq")  # phase, run index, run start (monotonic ns)
PHASES = ("loading", "warmup", "idle", "timed", "done")
DEFAULT_VOCAB_SIZE = 30522  # BERT's WordPiece vocabulary, when the sidecar does not say


class RunTimeout(TimeoutError):
    """A run exceeded its time limit and was abandoned."""


class ProtocolError(ValueError):
    """A measurement request that cannot be carried out as asked."""


@dataclass(frozen=True)
class Marker:
    """A point in the protocol, timestamped on the board's monotonic and wall clocks."""

    kind: str  # idle_begin, idle_end, block_begin, block_end, run_begin, run_end
    index: int  # run index (-1 for non-run markers)
    monotonic_ns: int
    wall_ns: int

    def to_dict(self) -> dict:
        """JSON form."""
        return asdict(self)


def _marker(kind: str, index: int = -1) -> Marker:
    return Marker(kind, index, time.monotonic_ns(), time.time_ns())


@dataclass
class LatencyStats:
    """Statistics of a latency sample, in seconds."""

    median_s: float
    mean_s: float
    p90_s: float
    min_s: float
    max_s: float
    std_s: float

    @classmethod
    def of(cls, values: np.ndarray) -> "LatencyStats":
        """Statistics of an array of durations."""
        return cls(
            float(np.median(values)),
            float(np.mean(values)),
            float(np.percentile(values, 90)),
            float(np.min(values)),
            float(np.max(values)),
            float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
        )


@dataclass
class RunReport:
    """Everything one measurement produced."""

    artifact_sha256: str
    artifact_format: str
    runtime: str
    device: str
    versions: dict
    batch: int
    seq_len: int
    runs: int
    warmup: int
    latency_per_batch: LatencyStats
    latency_per_sequence: LatencyStats
    throughput_seq_per_s: float
    block_s: float
    cpu_time_s: float
    peak_rss_bytes: int
    idle_s: float
    started_utc: str
    markers: list[Marker] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON form (the `edgetran run --json` contract)."""
        data = asdict(self)
        data["markers"] = [m.to_dict() for m in self.markers]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "RunReport":
        """Rebuild a report from its JSON form."""
        fields = dict(data)
        fields["latency_per_batch"] = LatencyStats(**data["latency_per_batch"])
        fields["latency_per_sequence"] = LatencyStats(**data["latency_per_sequence"])
        fields["markers"] = [Marker(**m) for m in data["markers"]]
        return cls(**fields)


def make_inputs(input_specs: list[tuple[str, str, tuple]], batch: int, seq_len: int, vocab_size: int, seed: int) -> dict[str, np.ndarray]:
    """Model inputs for one batch: seeded token ids, a mask of ones, token types of zeros."""
    rng = np.random.default_rng(seed)
    inputs = {}
    for name, dtype, _shape in input_specs:
        if "mask" in name:
            array = np.ones((batch, seq_len))
        elif "type" in name:
            array = np.zeros((batch, seq_len))
        else:
            array = rng.integers(1, vocab_size, size=(batch, seq_len))
        inputs[name] = array.astype(dtype)
    return inputs


def vocab_size_of(meta: dict) -> int:
    """The token-id range of an artifact: its sidecar's vocab_size (top level or model_config)."""
    size = meta.get("vocab_size") or (meta.get("model_config") or {}).get("vocab_size")
    return int(size) if size else DEFAULT_VOCAB_SIZE


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB on Linux


class ProgressBoard:
    """Phase, run index and run start of a running protocol, in a small shared file."""

    def __init__(self, path: str | Path) -> None:
        self._file = open(path, "r+b")
        self._map = mmap.mmap(self._file.fileno(), PROGRESS.size)

    @classmethod
    def create(cls) -> tuple["ProgressBoard", str]:
        """A new board in a temporary file; returns it and the file's path (for the child)."""
        fd, path = tempfile.mkstemp(prefix="edgetran-progress-")
        os.write(fd, PROGRESS.pack(0, -1, time.monotonic_ns()))
        os.close(fd)
        return cls(path), path

    def set(self, phase: str, run: int = -1) -> None:
        """Record the current phase and run (with the time it started)."""
        self._map[:] = PROGRESS.pack(PHASES.index(phase), run, time.monotonic_ns())

    def get(self) -> tuple[str, int, int]:
        """(phase, run, started monotonic ns)."""
        phase, run, started = PROGRESS.unpack(self._map[:])
        return PHASES[phase], run, started

    def close(self) -> None:
        """Unmap and close."""
        self._map.close()
        self._file.close()


def _check_request(batch: int, runs: int, warmup: int, idle_s: float, run_timeout_s: float) -> None:
    if batch < 1 or runs < 1 or warmup < 0 or idle_s < 0 or run_timeout_s <= 0:
        raise ProtocolError(
            f"need batch >= 1, runs >= 1, warmup >= 0, idle >= 0 and a positive timeout; got {batch}, {runs}, {warmup}, {idle_s}, {run_timeout_s}"
        )


def _load_for_batch(artifact_path: str | Path, batch: int) -> Artifact:
    """Load and verify an artifact, refusing a batch its static shape cannot take."""
    artifact = load_artifact(artifact_path)
    if not artifact.meta.get("dynamic_batch", False) and batch != int(artifact.meta["batch"]):
        raise ProtocolError(f"artifact {artifact.sha256[:12]} has a static batch of {artifact.meta['batch']}; asked for batch {batch}")
    return artifact


def run_protocol(
    artifact_path: str | Path,
    runtime: Optional[str] = None,
    device: Optional[str] = None,
    batch: int = 1,
    runs: int = 10,
    warmup: int = 3,
    idle_s: float = 0.0,
    threads: Optional[int] = None,
    precision: Optional[str] = None,
    seed: int = 0,
    progress: Optional[ProgressBoard] = None,
    inter_threads: Optional[int] = None,
) -> RunReport:
    """The protocol in this process (no watchdog): verify, warm up, idle, timed block, report."""
    _check_request(batch, runs, warmup, idle_s, 1.0)
    board_set = progress.set if progress is not None else (lambda phase, run=-1: None)
    artifact = _load_for_batch(artifact_path, batch)
    meta = artifact.meta
    if inter_threads is not None and (runtime or "onnxruntime") != "onnxruntime":
        raise ProtocolError("--inter-threads applies to ONNX Runtime only")
    session = open_runtime(artifact, runtime, device, threads, precision, inter_threads)
    seq_len = int(meta["seq_len"])
    inputs = make_inputs(session.input_specs, batch, seq_len, vocab_size_of(meta), seed)
    markers: list[Marker] = []
    append = markers.append
    started_utc = datetime.now(timezone.utc).isoformat()
    for i in range(warmup):
        board_set("warmup", i)
        session.run(inputs)
    if idle_s > 0:
        board_set("idle")
        append(_marker("idle_begin"))
        time.sleep(idle_s)
        append(_marker("idle_end"))
    latencies = np.zeros(runs)
    cpu_start = time.process_time()
    append(_marker("block_begin"))
    for i in range(runs):
        board_set("timed", i)
        append(_marker("run_begin", i))
        begin = time.perf_counter()
        session.run(inputs)
        latencies[i] = time.perf_counter() - begin  # the run alone: marker costs stay outside
        append(_marker("run_end", i))
    append(_marker("block_end"))
    cpu_time = time.process_time() - cpu_start
    board_set("done")
    block_s = (markers[-1].monotonic_ns - next(m for m in markers if m.kind == "block_begin").monotonic_ns) / 1e9
    return RunReport(
        artifact_sha256=artifact.sha256,
        artifact_format=artifact.format,
        runtime=session.runtime,
        device=session.device,
        versions=session.versions,
        batch=batch,
        seq_len=seq_len,
        runs=runs,
        warmup=warmup,
        latency_per_batch=LatencyStats.of(latencies),
        latency_per_sequence=LatencyStats.of(latencies / batch),
        throughput_seq_per_s=batch * runs / block_s,
        block_s=block_s,
        cpu_time_s=cpu_time,
        peak_rss_bytes=_peak_rss_bytes(),
        idle_s=idle_s,
        started_utc=started_utc,
        markers=markers,
        latencies_s=latencies.tolist(),
    )


ERROR_TYPES = {
    "ArtifactError": ArtifactError,
    "DeviceUnavailable": DeviceUnavailable,
    "ProtocolError": ProtocolError,
    "ValueError": ValueError,
}


def _raise_child_error(error: dict) -> None:
    if error["type"] == "RuntimeUnavailable":
        raise RuntimeUnavailable(error["fmt"])
    raise ERROR_TYPES.get(error["type"], ProtocolError)(error["message"])


def measure(
    artifact_path: str | Path,
    runtime: Optional[str] = None,
    device: Optional[str] = None,
    batch: int = 1,
    runs: int = 10,
    warmup: int = 3,
    idle_s: float = 0.0,
    run_timeout_s: float = 60.0,
    threads: Optional[int] = None,
    precision: Optional[str] = None,
    seed: int = 0,
    marker_sink: Optional[Callable[[Marker], None]] = None,
    isolate: bool = True,
    inter_threads: Optional[int] = None,
    load_timeout_s: float = DEFAULT_LOAD_TIMEOUT_S,
    runner_command: Optional[list[str]] = None,
) -> RunReport:
    """Load, verify, warm up, idle, time ``runs`` batches of ``batch``; report latency and resources.

    ``runner_command`` replaces the child's command line (the default runs this module);
    tests use it to start children that misbehave.
    """
    _check_request(batch, runs, warmup, idle_s, run_timeout_s)
    if load_timeout_s <= 0:
        raise ProtocolError(f"need a positive load timeout; got {load_timeout_s}")
    artifact = _load_for_batch(artifact_path, batch)  # fail fast in the caller on a bad or altered artifact
    options = {"runtime": runtime, "device": device, "batch": batch, "runs": runs, "warmup": warmup, "idle_s": idle_s,
               "threads": threads, "precision": precision, "seed": seed, "inter_threads": inter_threads}
    if not isolate:
        report = run_protocol(artifact.sidecar_path, **options)
    else:
        report = _measure_isolated(str(artifact.sidecar_path), options, run_timeout_s, load_timeout_s, runner_command)
    if marker_sink is not None:
        for marker in report.markers:
            marker_sink(marker)
    return report


def phase_limit_s(phase: str, run_timeout_s: float, load_timeout_s: float, idle_s: float) -> float:
    """How long the child may stay in one phase (or one run of it) before the watchdog kills it."""
    if phase == "loading":
        return load_timeout_s
    if phase == "idle":
        return idle_s + run_timeout_s
    if phase == "done":
        return DONE_GRACE_S
    return run_timeout_s  # warmup, timed: per run


class _PipeDrain:
    """Reads a child's pipe on a thread while it runs, so the child never blocks on a full pipe."""

    def __init__(self, stream) -> None:
        self._chunks: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for chunk in iter(lambda: stream.read(65536), ""):
            self._chunks.append(chunk)
        stream.close()

    def text(self, timeout_s: float = 5.0) -> str:
        """Everything read so far (waits up to ``timeout_s`` for the pipe to close)."""
        self._thread.join(timeout_s)
        return "".join(self._chunks)


def _measure_isolated(sidecar: str, options: dict, run_timeout_s: float, load_timeout_s: float,
                      runner_command: Optional[list[str]] = None) -> RunReport:
    """Run the protocol in a child process under the watchdog; its pipes are drained as it runs.

    The watchdog covers every phase: loading (``load_timeout_s``), each warm-up and timed
    run (``run_timeout_s``), the idle window (its length plus ``run_timeout_s``) and the
    report hand-over after ``done`` (``DONE_GRACE_S``). Both pipes are read by threads while
    the child runs: the report line (two markers per run) grows past the 64 KiB pipe
    buffer at a few hundred runs, and a child writing into a full pipe blocks forever.
    """
    board, board_path = ProgressBoard.create()
    request = json.dumps({"artifact": sidecar, "options": options, "progress": board_path})
    child = subprocess.Popen(
        runner_command or [sys.executable, "-m", "device_runners.protocol"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = _PipeDrain(child.stdout), _PipeDrain(child.stderr)
    name = Path(sidecar).stem[:12]
    try:
        try:
            child.stdin.write(request)
            child.stdin.close()
        except BrokenPipeError:
            pass  # the child died before reading its request: reported below from its exit
        while child.poll() is None:
            time.sleep(WATCHDOG_POLL_S)
            phase, run, started_ns = board.get()
            limit_s = phase_limit_s(phase, run_timeout_s, load_timeout_s, options.get("idle_s", 0.0))
            if (time.monotonic_ns() - started_ns) / 1e9 > limit_s:
                child.kill()
                child.wait()
                what = f"{phase} run {run} of {name}" if phase in ("warmup", "timed") else f"{phase} of {name}"
                raise RunTimeout(f"{what} exceeded {limit_s:g} s; abandoned (runner process killed)")
        output, errors = stdout.text(), stderr.text()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        board.close()
        os.unlink(board_path)
    lines = [line for line in output.splitlines() if line.startswith("{")]
    if not lines:
        tail = " ".join(errors.strip().splitlines()[-3:])[-500:]
        raise ProtocolError(f"runner process exited with code {child.returncode} without a report: {tail}")
    answer = json.loads(lines[-1])
    if "error" in answer:
        _raise_child_error(answer["error"])
    return RunReport.from_dict(answer["report"])


def _child_main() -> int:
    """Entry point of the isolated runner process: a JSON request on stdin, one JSON line out."""
    request = json.loads(sys.stdin.read())
    board = ProgressBoard(request["progress"])
    try:
        report = run_protocol(request["artifact"], progress=board, **request["options"])
        answer: dict = {"report": report.to_dict()}
    except Exception as error:  # noqa: BLE001 - reported to the parent as data
        answer = {"error": {"type": type(error).__name__, "message": str(error), "fmt": getattr(error, "fmt", None)}}
    finally:
        board.close()
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_child_main())
