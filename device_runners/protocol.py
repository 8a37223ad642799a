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

Runs execute on one worker thread while the calling thread is the **watchdog**: a run
that exceeds ``run_timeout_s`` is abandoned (the worker thread is a daemon and is left
behind) and :class:`RunTimeout` is raised, instead of a hang. The watchdog only polls a
progress counter, so it adds nothing to the timed path.

A ``marker_sink`` callable receives every marker as it happens (the host forwards them
to the sensor daemon); markers are also returned in the report.
"""

from __future__ import annotations

import resource
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from device_runners.artifact import load_artifact
from device_runners.runtimes import open_runtime

WATCHDOG_POLL_S = 0.01
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


def _peak_rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB on Linux


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
) -> RunReport:
    """Load, verify, warm up, idle, time ``runs`` batches of ``batch``; report latency and resources."""
    if batch < 1 or runs < 1 or warmup < 0 or idle_s < 0 or run_timeout_s <= 0:
        raise ProtocolError(f"need batch >= 1, runs >= 1, warmup >= 0, idle >= 0 and a positive timeout; got {batch}, {runs}, {warmup}, {idle_s}, {run_timeout_s}")
    artifact = load_artifact(artifact_path)
    meta = artifact.meta
    if not meta.get("dynamic_batch", False) and batch != int(meta["batch"]):
        raise ProtocolError(f"artifact {artifact.sha256[:12]} has a static batch of {meta['batch']}; asked for batch {batch}")
    session = open_runtime(artifact, runtime, device, threads, precision)
    seq_len = int(meta["seq_len"])
    inputs = make_inputs(session.input_specs, batch, seq_len, int(meta.get("vocab_size", DEFAULT_VOCAB_SIZE)), seed)
    markers: list[Marker] = []
    sink = marker_sink or (lambda marker: None)

    def mark(kind: str, index: int = -1) -> None:
        marker = _marker(kind, index)
        markers.append(marker)
        sink(marker)

    progress = {"run": -1, "started": time.monotonic(), "phase": "warmup", "done": False, "error": None}
    latencies = np.zeros(runs)
    cpu = {"start": 0.0, "end": 0.0}

    def work() -> None:
        try:
            for i in range(warmup):
                progress["run"], progress["started"] = i, time.monotonic()
                session.run(inputs)
            if idle_s > 0:
                progress["phase"] = "idle"
                mark("idle_begin")
                time.sleep(idle_s)
                mark("idle_end")
            progress["phase"] = "timed"
            cpu["start"] = time.process_time()
            mark("block_begin")
            for i in range(runs):
                progress["run"], progress["started"] = i, time.monotonic()
                begin = time.perf_counter()
                mark("run_begin", i)
                session.run(inputs)
                mark("run_end", i)
                latencies[i] = time.perf_counter() - begin
            mark("block_end")
            cpu["end"] = time.process_time()
        except BaseException as error:  # noqa: BLE001 - handed to the calling thread
            progress["error"] = error
        finally:
            progress["done"] = True

    started_utc = datetime.now(timezone.utc).isoformat()
    worker = threading.Thread(target=work, name="runner-worker", daemon=True)
    worker.start()
    while not progress["done"]:
        worker.join(WATCHDOG_POLL_S)
        if progress["phase"] != "idle" and not progress["done"] and time.monotonic() - progress["started"] > run_timeout_s:
            raise RunTimeout(
                f"{progress['phase']} run {progress['run']} of {artifact.sha256[:12]} on {session.runtime}/{session.device} "
                f"exceeded {run_timeout_s:g} s; abandoned"
            )
    if progress["error"] is not None:
        raise progress["error"]
    block = next(m for m in markers if m.kind == "block_end").monotonic_ns - next(m for m in markers if m.kind == "block_begin").monotonic_ns
    per_batch = LatencyStats.of(latencies)
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
        latency_per_batch=per_batch,
        latency_per_sequence=LatencyStats.of(latencies / batch),
        throughput_seq_per_s=batch * runs / (block / 1e9),
        block_s=block / 1e9,
        cpu_time_s=cpu["end"] - cpu["start"],
        peak_rss_bytes=_peak_rss_bytes(),
        idle_s=idle_s,
        started_utc=started_utc,
        markers=markers,
        latencies_s=latencies.tolist(),
    )
