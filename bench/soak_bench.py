"""Fault-injection soak of the measuring chain (issue #11): nothing silently lost, no hang.

Each fault runs against the real components on this machine (loopback only), bounded in
time (about 3-5 minutes in all), and prints one row:

* ``i2c-errors``: the sampling daemon at 1 kHz on an emulated INA219 whose bus fails 1%
  of transactions; every sample is expected, gaps must be marked as events, and the
  window energy of a constant 3 W load must be 3 W x its length.
* ``disk-full``: the daemon records into a 1 MiB tmpfs (an injected ENOSPC writer where
  mounting is not allowed) that fills mid-recording and is freed later; sampling must go
  on into the ring, written + lost samples must add up to what was sampled, and the
  window energy over the outage must still be right.
* ``runner-killed``: a campaign on the virtual rig whose runner process is SIGKILLed
  mid-block: the measurement is retried, and what is stored must come from covered windows.
* ``worker-killed``: a real dask scheduler and two board workers on loopback; one worker
  is SIGKILLed mid-measurement: its item is recorded as failed with its reason, the
  other board's is stored, and a rerun with the worker back measures only the failed one.
* ``trace-corrupt``: the i2c-errors trace with a flipped payload byte and a flipped bit in
  a later record's length: the reader must report both and return every other sample
  unchanged.

Per fault it prints samples kept / expected, gaps marked, measurements stored / failed
(with the reason), and whether any stored number was wrong. ``--json`` prints the rows.

    python bench/soak_bench.py [--seconds 10] [--json] [--only i2c-errors,disk-full]
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

os.environ.setdefault("BLINKA_SKIP_DEPENDENCY_CHECK", "1")

from sensors.daemon import SamplingDaemon  # noqa: E402
from sensors.registry import create_sensor  # noqa: E402
from sensors.trace.format import read_trace  # noqa: E402
from sensors.trace.records import SYNC  # noqa: E402

CONSTANT_W = 3.0  # the emulated load of the daemon faults
RATE_HZ = 1000.0
ENERGY_TOLERANCE = 0.02  # a window's energy within 2% of power x length counts as right
SMALL_MODEL = {"l": 2, "o": [["sa_sdp_64", "sa_sdp_64"], ["sa_sdp_64", "sa_sdp_64"]], "h": [128, 128], "f": [[256], [256]]}


def _row(fault: str, **fields) -> dict:
    return {"fault": fault, **fields}


def _daemon_sensor(error_rate: float, seed: int = 0):
    return create_sensor("emulated-ina219", rate_hz=RATE_HZ, waveform=f"constant:{CONSTANT_W}",
                         error_rate=error_rate, seed=seed, bus_clock_hz=400_000.0)


def _gaps(daemon: SamplingDaemon) -> int:
    return sum(1 for e in daemon.events if e.kind == "gap_begin")


def _energy_right(window: dict, length_s: float) -> bool:
    """Whether a window's energy is CONSTANT_W x its length (NaN with an error counts as honest, not wrong)."""
    energy = window.get("energy_j")
    if energy is None or not math.isfinite(energy):
        return bool(window.get("error"))
    return abs(energy - CONSTANT_W * length_s) <= ENERGY_TOLERANCE * CONSTANT_W * length_s


def fault_i2c_errors(work: Path, seconds: float) -> dict:
    """The daemon at 1 kHz with 1% failing I2C transactions, recording a trace."""
    trace = work / "i2c-errors.ettrace"
    sensor = _daemon_sensor(0.01)
    daemon = SamplingDaemon([sensor], RATE_HZ, record_path=trace, realtime_priority=10)
    with daemon:
        started = daemon.clock()
        time.sleep(seconds)
        end = daemon.clock()
        window = daemon.window(started + 0.5, end - 0.5)
    status = daemon.status()
    kept = sum(len(s.t) for s in read_trace(trace).streams.values())
    expected = status["stats"]["fresh"]  # every fresh conversion the sampler took must be in the trace
    stats = status["stats"]
    return _row("i2c-errors", samples_kept=kept, samples_expected=expected, gaps_marked=_gaps(daemon),
                stored="-", failed="-", wrong=not _energy_right(window, end - started - 1.0),
                detail=f"{stats['errors']} failed transactions retried, {stats['failed_reads']} reads failed every retry, "
                       f"{stats['ticks']} ticks: {stats['fresh']} fresh, {stats['stale']} stale, {stats['missed_ticks']} missed (counted); window {window['energy_j']:.4f} J over {end - started - 1.0:.2f} s, coverage {window['coverage']:.3f}",
                trace=str(trace))


def _mount_tiny_disk(folder: Path) -> Path | None:
    """A 1 MiB tmpfs at ``folder`` (root only); None where mounting is not permitted."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return None
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True, text=True)
    return folder if done.returncode == 0 else None


class _FillingFile:
    """A file object that raises ENOSPC between two times (for machines that cannot mount a tmpfs)."""

    def __init__(self, handle, full: Callable[[], bool]) -> None:
        self._handle, self._full = handle, full

    def write(self, data: bytes) -> int:
        if self._full():
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self._handle.write(data)

    def __getattr__(self, name: str):
        return getattr(self._handle, name)


def fault_disk_full(work: Path, seconds: float) -> dict:
    """Recording into a disk that fills mid-recording and is freed later."""
    disk = _mount_tiny_disk(work / "disk")
    how = "1 MiB tmpfs" if disk is not None else "injected ENOSPC"
    filler = None
    full = threading.Event()
    try:
        if disk is not None:
            filler = disk / "filler"
            stat = os.statvfs(disk)
            filler.write_bytes(b"\0" * max(0, stat.f_bavail * stat.f_frsize - 48 * 1024))  # ~48 KB left: ~1 s at 1 kHz
            daemon = SamplingDaemon([_daemon_sensor(0.0)], RATE_HZ, record_path=disk / "rec.ettrace", realtime_priority=10, writer_retry_s=1.0)
        else:
            from sensors.daemon import file_writer

            opener = file_writer(work / "rec.ettrace")

            def open_writer(specs, header_extra, attempt):
                writer = opener(specs, header_extra, attempt)
                writer._file = _FillingFile(writer._file, full.is_set)  # noqa: SLF001 - the injected disk
                return writer

            daemon = SamplingDaemon([_daemon_sensor(0.0)], RATE_HZ, open_writer=open_writer, realtime_priority=10, writer_retry_s=1.0)
        with daemon:
            started = daemon.clock()
            if disk is None:
                time.sleep(1.0)
                full.set()
            time.sleep(seconds / 2)  # the disk fills during this half
            during = daemon.status()["recording"]
            if filler is not None:
                filler.unlink()  # space again
            full.clear()
            time.sleep(seconds / 2)
            end = daemon.clock()
            window = daemon.window(started + 0.5, end - 0.5)
        final = daemon.status()  # after the stop: the writer's last buffered chunk is counted
        recording = final["recording"]
        written, lost = recording.get("samples_written", 0), recording.get("samples_lost", 0)
        files = [Path(f) for f in recording.get("files", [])]
        readable, torn = 0, 0
        for path in files:
            try:
                recorded = read_trace(path)
            except Exception:  # noqa: BLE001 - counted as unreadable
                continue
            readable += sum(len(s.t) for s in recorded.streams.values())
            torn += sum(recorded.damage.samples_lost.values())  # a chunk cut by ENOSPC: the reader says how many
        expected = final["stats"]["fresh"]  # every fresh sample is either written or counted as lost
        wrong = not _energy_right(window, end - started - 1.0) or written + lost != expected or readable + torn + lost != expected
        return _row("disk-full", samples_kept=readable, samples_expected=expected, gaps_marked=lost,
                    stored="-", failed="-", wrong=wrong,
                    detail=(f"{how}; during the outage the recorder said {during.get('state')!r} ({during.get('error')}); "
                            f"written {written} + lost {lost} (marked in the trace) vs {expected} sampled; read back {readable} + {torn} reported torn; {len(files)} files; "
                            f"window over the outage {window['energy_j']:.4f} J from the {window.get('source')} (coverage {window['coverage']:.3f})"),
                    )
    finally:
        if disk is not None:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def _model_file(work: Path) -> Path:
    path = work / "model.json"
    path.write_text(json.dumps(SMALL_MODEL))
    return path


def _stored_rows(db: Path, campaign: str) -> list:
    from firmware_host.store import MeasurementStore

    with MeasurementStore(db) as store:
        return store.measurements(campaign)


def _stored_wrong(rows: list, min_coverage: float) -> bool:
    """A stored measurement is wrong when its windows were under the threshold or its numbers not finite and positive."""
    for row in rows:
        data = row.data
        coverages = [w.get("coverage") for w in data.get("windows", []) if isinstance(w, dict) and "coverage" in w]
        coverage = data.get("coverage", min(coverages) if coverages else None)
        if coverage is not None and coverage < min_coverage:
            return True
        if not (math.isfinite(row.energy_j_per_seq) and row.energy_j_per_seq > 0 and row.peak_power_w > 0):
            return True
    return False


def fault_runner_killed(work: Path, seconds: float) -> dict:
    """A campaign on the virtual rig whose runner process is killed once, mid-block."""
    import psutil

    from firmware_host.campaign import plan, run_campaign
    from firmware_host.dispatch import InProcessDispatch
    from firmware_host.profile import ProfileOptions
    from firmware_host.rig import virtual_rig

    rig = virtual_rig()
    options = ProfileOptions(runs=400, warmup=2, idle_s=0.3, repeats=1)
    db = work / "runner.db"
    killed: list[str] = []
    stop = threading.Event()

    def killer() -> None:
        me = psutil.Process()
        while not stop.is_set() and not killed:
            for child in me.children(recursive=True):
                try:
                    if "device_runners.protocol" in " ".join(child.cmdline()) and time.time() - child.create_time() > 2.5:
                        child.send_signal(signal.SIGKILL)
                        killed.append(f"pid {child.pid} after {time.time() - child.create_time():.1f} s")
                        break
                except psutil.Error:
                    continue
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    events: list[tuple[str, str]] = []
    try:
        summary = run_campaign("soak-runner", plan([_model_file(work)], [rig.boards[0].name]), rig, options, db,
                               InProcessDispatch(), lambda kind, info: events.append((kind, str(info.get("reason", "")))))
    finally:
        stop.set()
        thread.join(2)
    rows = _stored_rows(db, "soak-runner")
    retries = [reason for kind, reason in events if kind == "retry"]
    return _row("runner-killed", samples_kept="-", samples_expected="-", gaps_marked="-",
                stored=len(rows), failed=len(summary.failed), wrong=_stored_wrong(rows, options.min_coverage),
                detail=f"killed {killed[0] if killed else 'nothing (the block ended first)'}; retries: {retries or 'none'}; "
                       f"failures: {[f['reason'] for f in summary.failed] or 'none'}")


def _spawn_dask(args: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dask", *args], stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(timeout=30)


def fault_worker_killed(work: Path, seconds: float) -> dict:
    """Two virtual boards on real dask workers; one worker is killed mid-measurement, then comes back."""
    from firmware_host.campaign import plan, run_campaign
    from firmware_host.dispatch import DaskDispatch
    from firmware_host.profile import ProfileOptions
    from firmware_host.rig import load_rig

    rig_file = work / "rig.toml"
    rig_file.write_text(
        f'[host]\ntraces = "{work / "traces"}"\n'
        '[[boards]]\nname = "vb-a"\nmodel = "rpi4"\n[[boards]]\nname = "vb-b"\nmodel = "rpi4"\n'
        '[[sensors]]\nname = "vb-a-supply"\nkind = "virtual-board"\nmeasures = "vb-a"\n'
        '[[sensors]]\nname = "vb-b-supply"\nkind = "virtual-board"\nmeasures = "vb-b"\n')
    rig = load_rig(rig_file)
    options = ProfileOptions(runs=200, warmup=1, idle_s=0.3, repeats=1)
    sched_file = work / "scheduler.json"
    scheduler = _spawn_dask(["scheduler", "--host", "127.0.0.1", "--port", "0", "--scheduler-file", str(sched_file), "--no-dashboard"], work / "scheduler.log")
    workers: dict[str, subprocess.Popen] = {}
    dispatch = None
    try:
        deadline = time.monotonic() + 60
        while not (sched_file.is_file() and sched_file.stat().st_size):
            if time.monotonic() > deadline:
                raise RuntimeError("the dask scheduler did not start")
            time.sleep(0.1)
        time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]

        def start_worker(board: str) -> None:
            env = {**os.environ, "EDGETRAN_ARTIFACT_CACHE": str(work / f"cache-{board}")}
            workers[board] = _spawn_dask(["worker", address, "--resources", f"board-{board}=1", "--nthreads", "1",
                                          "--name", board, "--no-dashboard"], work / f"worker-{board}.log", env)

        def wait_for(boards: list[str]) -> None:
            deadline = time.monotonic() + 90
            while not all(dispatch.workers_of(b) for b in boards):
                if time.monotonic() > deadline:
                    raise RuntimeError("the dask workers did not register")
                time.sleep(0.2)

        start_worker("vb-a")
        start_worker("vb-b")
        dispatch = DaskDispatch(address, disconnect_grace_s=3.0, task_timeout_s=120.0)
        wait_for(["vb-a", "vb-b"])
        items = plan([_model_file(work)], ["vb-a", "vb-b"])
        db = work / "dask.db"

        def on_event(kind: str, info: dict) -> None:
            if kind == "start" and info["item"].board == "vb-b" and "vb-b" in workers:
                threading.Timer(2.0, _kill_group, args=(workers.pop("vb-b"),)).start()  # inside its measurement

        first = run_campaign("soak-dask", items, rig, options, db, dispatch, on_event)
        start_worker("vb-b")
        wait_for(["vb-b"])
        second = run_campaign("soak-dask", items, rig, options, db, dispatch)
    finally:
        if dispatch is not None:
            dispatch.close()
        for process in workers.values():
            _kill_group(process)
        _kill_group(scheduler)
    rows = _stored_rows(db, "soak-dask")
    keys = {tuple(r.key) for r in rows}
    return _row("worker-killed", samples_kept="-", samples_expected="-", gaps_marked="-",
                stored=f"{first.measured}+{second.measured}", failed=len(first.failed),
                wrong=_stored_wrong(rows, options.min_coverage) or len(keys) != len(rows) or len(rows) != 2,
                detail=(f"first run: {first.measured} stored, failed {[f['reason'] for f in first.failed]}; "
                        f"rerun with the worker back: already done {second.already_done}, measured {second.measured}, failed {len(second.failed)}"))


def _record_offsets(data: bytes) -> list[int]:
    return [i for i in range(len(data) - 4) if data[i:i + 4] == SYNC]


def fault_trace_corrupt(work: Path, seconds: float, source: Path | None = None) -> dict:
    """A recorded trace with a flipped payload byte and a flipped bit in a later record's length field."""
    if source is None or not source.is_file():
        source = Path(fault_i2c_errors(work, min(seconds, 4.0))["trace"])
    original = read_trace(source)
    name = next(iter(original.streams))
    t0, p0 = original.streams[name].t, original.streams[name].values["power_w"]
    data = bytearray(source.read_bytes())
    samples = [o for o in _record_offsets(bytes(data)) if data[o + 4] == 2]  # samples records
    victims = samples[len(samples) // 3], samples[2 * len(samples) // 3]
    data[victims[0] + 60] ^= 0x01  # a payload byte
    data[victims[1] + 5 + 2] ^= 0x10  # bit 20 of the record length
    damaged = work / "corrupt.ettrace"
    damaged.write_bytes(bytes(data))
    trace = read_trace(damaged)
    t1, p1 = trace.streams[name].t, trace.streams[name].values["power_w"]
    index = np.searchsorted(t0, t1)
    same = bool(len(t1) and np.all(index < len(t0)) and np.array_equal(t0[np.minimum(index, len(t0) - 1)], t1)
                and np.array_equal(p0[np.minimum(index, len(t0) - 1)], p1))
    lost = sum(trace.damage.samples_lost.values())
    return _row("trace-corrupt", samples_kept=len(t1), samples_expected=len(t0), gaps_marked=trace.damage.records_lost,
                stored="-", failed="-", wrong=not same or len(t1) + lost != len(t0),
                detail=f"damage reported: {trace.damage.records_lost} records, {lost} samples; " + "; ".join(trace.problems[:3]))


FAULTS: dict[str, Callable[..., dict]] = {
    "i2c-errors": fault_i2c_errors,
    "disk-full": fault_disk_full,
    "runner-killed": fault_runner_killed,
    "worker-killed": fault_worker_killed,
    "trace-corrupt": fault_trace_corrupt,
}


def main(argv: list[str] | None = None) -> int:
    """Run the faults and print one row each; exit 1 when a fault lost data silently or stored a wrong number."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each daemon fault (s)")
    parser.add_argument("--only", default=",".join(FAULTS), help="comma-separated faults")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    chosen = [f.strip() for f in args.only.split(",") if f.strip()]
    unknown = [f for f in chosen if f not in FAULTS]
    if unknown:
        print(f"unknown fault(s) {', '.join(unknown)}; choose from {', '.join(FAULTS)}", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgetran-soak-") as tmp:
        work = Path(tmp)
        os.environ.setdefault("EDGETRAN_ARTIFACTS", str(Path.home() / ".cache" / "edgetran" / "exports"))
        trace = None
        for fault in chosen:
            began = time.monotonic()
            folder = work / fault
            folder.mkdir()
            try:
                if fault == "trace-corrupt":
                    row = fault_trace_corrupt(folder, args.seconds, trace)
                else:
                    row = FAULTS[fault](folder, args.seconds)
            except Exception as error:  # noqa: BLE001 - a fault that breaks the chain is a result, not a crash
                row = _row(fault, samples_kept="-", samples_expected="-", gaps_marked="-", stored="-", failed="-",
                           wrong=True, detail=f"the chain raised {type(error).__name__}: {error}")
            trace = Path(row.pop("trace")) if "trace" in row else trace
            row["seconds"] = round(time.monotonic() - began, 1)
            rows.append(row)
            if not args.json:
                print(f"{row['fault']:<14} kept/expected {row['samples_kept']}/{row['samples_expected']}  gaps/lost marked {row['gaps_marked']}  "
                      f"stored {row['stored']}  failed {row['failed']}  wrong number: {'YES' if row['wrong'] else 'no'}  ({row['seconds']} s)\n"
                      f"               {row['detail']}", flush=True)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    return 1 if any(r["wrong"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
