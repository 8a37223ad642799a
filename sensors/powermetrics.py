"""Apple silicon power from ``powermetrics`` (CPU, GPU, ANE and their sum).

``powermetrics --samplers cpu_power,gpu_power,ane_power -f plist -i 100`` writes one
XML plist per sample, the documents separated by NUL bytes (written just before the
next document, so a document is taken as complete at its ``</plist>``). Keys used,
all in the ``processor`` dictionary: ``cpu_power``, ``gpu_power``, ``ane_power``,
``combined_power`` (average power over the sample, mW) and, in newer versions,
``cpu_energy``, ``gpu_energy``, ``ane_energy`` (energy of the sample, mJ);
``elapsed_ns`` (top level) is the sample's length. ``gpu_power`` / ``gpu_energy`` are
also looked up in the ``gpu`` dictionary. Intel Macs report other keys and are not
supported.

The parser (``split_documents``, ``parse_document``, ``parse_stream``) is separate from
the process handling, so it is tested on recorded output.

Channels: ``cpu.power_w``, ``gpu.power_w``, ``ane.power_w``, ``combined.power_w``
(those the tool reports) and, where it reports energy, cumulative counters
``cpu.energy_j``, ``gpu.energy_j``, ``ane.energy_j``, ``combined.energy_j`` (the sum of
the three) built by adding each sample's energy, so no energy is lost between reads.
Timestamps: the first document's arrival on ``clock``, then advanced by each later
document's ``elapsed_ns`` (the tool's own sample spacing, not the pipe's jitter).

Privileges: powermetrics must run as root. The default command is
``sudo -n powermetrics ...``: it fails at once (with a clear error) unless the daemon
runs as root or sudoers allows it without a password, e.g. the line
``benchuser ALL=(root) NOPASSWD: /usr/bin/powermetrics``.
"""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping, Sequence

from sensors.base import EMULATED, VENDOR, Clock, Sample, Sensor, SensorConfigError, SensorError, SensorInfo

KIND = "powermetrics"
TOOL = "powermetrics"
SAMPLERS = "cpu_power,gpu_power,ane_power"
DEFAULT_INTERVAL_MS = 100  # powermetrics sample interval, ms
PLIST_END = b"</plist>"
SEPARATORS = b"\x00 \t\r\n"  # NUL between documents, whitespace around them
UNITS = ("cpu", "gpu", "ane")
COMBINED = "combined"
MW_PER_W = 1000
MJ_PER_J = 1000
NS_PER_S = 1_000_000_000
POWER_RESOLUTION_W = 1e-3  # powermetrics reports mW
ENERGY_RESOLUTION_J = 1e-3  # and whole mJ
READ_CHUNK_BYTES = 65536
STDERR_KEEP_BYTES = 4096  # tail of the tool's stderr kept for error messages
MIN_START_TIMEOUT_S = 5.0  # wait at least this long for the first document, s
STOP_TIMEOUT_S = 2.0  # grace period after SIGTERM before SIGKILL, s
MAX_PENDING = 100_000  # unread samples kept (oldest dropped; the energy counters lose nothing)


class PowermetricsFormatError(SensorError):
    """A powermetrics document without the keys this source needs."""


@dataclass(frozen=True)
class PowermetricsSample:
    """The numbers of one powermetrics document."""

    elapsed_ns: int  # the sample's length
    power_mw: Mapping[str, float]  # "cpu", "gpu", "ane", "combined": average power over the sample
    energy_mj: Mapping[str, int] = field(default_factory=dict)  # the sample's energy, where reported
    timestamp: datetime | None = None  # the tool's wall-clock time stamp
    hw_model: str | None = None


def default_command(interval_ms: int = DEFAULT_INTERVAL_MS) -> list[str]:
    """The real command: ``sudo -n powermetrics --samplers cpu_power,gpu_power,ane_power -f plist -i <ms>``."""
    return ["sudo", "-n", TOOL, "--samplers", SAMPLERS, "-f", "plist", "-i", str(int(interval_ms))]


def split_documents(buffer: bytes) -> tuple[list[bytes], bytes]:
    """The complete plist documents at the start of ``buffer``, and the incomplete rest."""
    docs = []
    while True:
        end = buffer.find(PLIST_END)
        if end < 0:
            break
        cut = end + len(PLIST_END)
        doc = buffer[:cut].strip(SEPARATORS)
        if doc:
            docs.append(doc)
        buffer = buffer[cut:]
    return docs, buffer.lstrip(SEPARATORS)


def _number(mapping: Mapping[str, Any], key: str) -> float | None:
    value = mapping.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def parse_document(doc: bytes) -> PowermetricsSample:
    """One plist document -> its elapsed time, power (mW) and energy (mJ) per unit."""
    try:
        data = plistlib.loads(doc)
    except Exception as exc:  # plistlib raises ExpatError, ValueError, InvalidFileException
        raise PowermetricsFormatError(f"not a plist document: {exc}") from exc
    if not isinstance(data, dict):
        raise PowermetricsFormatError("plist document is not a dictionary")
    processor = data.get("processor") or {}
    gpu = data.get("gpu") or {}
    elapsed = data.get("elapsed_ns")
    if not isinstance(elapsed, int) or elapsed <= 0:
        raise PowermetricsFormatError(f"document without a positive elapsed_ns: {elapsed!r}")
    power: dict[str, float] = {}
    energy: dict[str, int] = {}
    for unit in UNITS:
        watts = _number(processor, f"{unit}_power")
        if watts is None and unit == "gpu":
            watts = _number(gpu, "gpu_power")
        if watts is not None:
            power[unit] = watts
        joules = _number(processor, f"{unit}_energy")
        if joules is None and unit == "gpu":
            joules = _number(gpu, "gpu_energy")
        if joules is not None:
            energy[unit] = int(joules)
    combined = _number(processor, "combined_power")
    if combined is not None:
        power[COMBINED] = combined
    if not power:
        raise PowermetricsFormatError(
            "document has no cpu_power/gpu_power/ane_power/combined_power (Intel Mac, or samplers missing)"
        )
    if all(unit in energy for unit in UNITS):
        energy[COMBINED] = sum(energy[unit] for unit in UNITS)
    stamp = data.get("timestamp")
    model = data.get("hw_model")
    return PowermetricsSample(
        elapsed,
        power,
        energy,
        timestamp=stamp if isinstance(stamp, datetime) else None,
        hw_model=model if isinstance(model, str) else None,
    )


def parse_stream(data: bytes) -> list[PowermetricsSample]:
    """Every complete document of a recorded stream; a truncated last document is dropped."""
    docs, _rest = split_documents(data)
    return [parse_document(doc) for doc in docs]


REPLAY_SCRIPT = r"""
import sys, time
data = open(sys.argv[1], 'rb').read()
pause, hold = float(sys.argv[2]), sys.argv[3] == '1'
out = sys.stdout.buffer
end = b'</plist>'
pos = 0
while True:
    cut = data.find(end, pos)
    if cut < 0:
        break
    cut += len(end)
    half = (pos + cut) // 2
    out.write(data[pos:half]); out.flush()
    out.write(data[half:cut]); out.flush()
    pos = cut
    time.sleep(pause)
out.write(data[pos:]); out.flush()
while hold:
    time.sleep(3600)
"""


def replay_command(path: str | Path, *, pause_s: float = 0.0, hold: bool = True) -> list[str]:
    """A command that writes a recorded powermetrics stream as the tool would (for emulated rigs and tests).

    Each document is written in two flushed halves, ``pause_s`` apart from the next;
    with ``hold`` the process then stays alive, like the real tool, until closed.
    """
    return [sys.executable, "-c", REPLAY_SCRIPT, str(path), repr(float(pause_s)), "1" if hold else "0"]


def discover(which: Any = shutil.which) -> list[str]:
    """Paths of the powermetrics tool on this machine ([] off macOS)."""
    found = which(TOOL)
    return [found] if found else []


def present(which: Any = shutil.which) -> bool:
    """Whether powermetrics is installed (it still needs root to run)."""
    return bool(discover(which))


class PowermetricsSensor(Sensor):
    """Apple silicon CPU/GPU/ANE power from a running powermetrics; provenance VENDOR.

    A reader thread parses documents as they arrive; ``read`` returns the newest
    sample (``fresh=False`` when none arrived since the last read), ``drain`` every
    sample not yet returned. The tool is started at construction and stopped by
    ``close``; it must run as root (see the module docstring for sudo).
    """

    def __init__(
        self,
        *,
        interval_ms: int = DEFAULT_INTERVAL_MS,
        command: Sequence[str] | None = None,
        name: str = "powermetrics",
        start_timeout_s: float | None = None,
        emulated: bool = False,
        clock: Clock = time.monotonic,
    ) -> None:
        if interval_ms <= 0:
            raise SensorConfigError(f"interval_ms must be > 0, got {interval_ms}")
        self.clock = clock
        self.command = list(command) if command is not None else default_command(interval_ms)
        self._lock = threading.Condition()
        self._pending: list[Sample] = []  # arrived, not yet returned by read/drain
        self._latest: Sample | None = None
        self._count = 0  # documents parsed
        self._totals_mj: dict[str, int] = {}
        self._t_last: float | None = None
        self._stderr = bytearray()
        self._error: SensorError | None = None
        self._eof = False
        try:
            self._proc = subprocess.Popen(
                self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0
            )
        except FileNotFoundError as exc:
            raise SensorError(
                f"{self.command[0]} not found: powermetrics ships with macOS only (command: {' '.join(self.command)})"
            ) from exc
        except PermissionError as exc:
            raise SensorError(f"cannot execute {self.command[0]}: {exc}") from exc
        self._threads = [
            threading.Thread(target=self._read_stdout, name="powermetrics-stdout", daemon=True),
            threading.Thread(target=self._read_stderr, name="powermetrics-stderr", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        timeout = start_timeout_s if start_timeout_s is not None else max(MIN_START_TIMEOUT_S, 10 * interval_ms / 1000)
        first = self._wait_first(timeout)
        channels = [f"{unit}.power_w" for unit in (*UNITS, COMBINED) if f"{unit}.power_w" in first.values]
        counters = [f"{unit}.energy_j" for unit in (*UNITS, COMBINED) if f"{unit}.energy_j" in first.values]
        precision = {c: POWER_RESOLUTION_W for c in channels} | {c: ENERGY_RESOLUTION_J for c in counters}
        self._info = SensorInfo(
            kind=KIND,
            name=name,
            channels=tuple(channels + counters),
            update_interval_s=interval_ms / 1000,
            precision=precision,
            provenance=EMULATED if emulated else VENDOR,
            counters=tuple(counters),
            interval_averages=tuple(channels),  # each document's power is its sample's average, stamped at its end
            details={"command": list(self.command), "energy_reported": bool(counters)},
        )

    @property
    def info(self) -> SensorInfo:
        """Channels found in the first document, the sample interval, mW / mJ resolution."""
        return self._info

    # reader threads ---------------------------------------------------------------------
    def _read_stdout(self) -> None:
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        buffer = b""
        try:
            while True:
                chunk = os.read(fd, READ_CHUNK_BYTES)
                if not chunk:
                    break
                docs, buffer = split_documents(buffer + chunk)
                for doc in docs:
                    self._add(parse_document(doc))
        except SensorError as exc:
            with self._lock:
                self._error = exc
        except OSError:
            pass  # the pipe closed under us (close())
        with self._lock:
            self._eof = True
            self._lock.notify_all()

    def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        fd = self._proc.stderr.fileno()
        try:
            while True:
                chunk = os.read(fd, READ_CHUNK_BYTES)
                if not chunk:
                    break
                with self._lock:
                    self._stderr += chunk
                    del self._stderr[:-STDERR_KEEP_BYTES]
        except OSError:
            pass

    def _add(self, parsed: PowermetricsSample) -> None:
        arrived = self.clock()
        with self._lock:
            t = arrived if self._t_last is None else self._t_last + parsed.elapsed_ns / NS_PER_S
            self._t_last = t
            values: dict[str, float] = {f"{unit}.power_w": mw / MW_PER_W for unit, mw in parsed.power_mw.items()}
            for unit, mj in parsed.energy_mj.items():
                self._totals_mj[unit] = self._totals_mj.get(unit, 0) + mj
                values[f"{unit}.energy_j"] = self._totals_mj[unit] / MJ_PER_J
            sample = Sample(t, values)
            self._latest = sample
            self._count += 1
            self._pending.append(sample)
            del self._pending[:-MAX_PENDING]
            self._lock.notify_all()

    # errors -----------------------------------------------------------------------------
    def _failure(self) -> SensorError:
        self._proc.poll()
        text = self._stderr.decode(errors="replace").strip()
        code = self._proc.returncode
        if "superuser" in text or "password is required" in text or "must be run as root" in text:
            return SensorError(
                f"powermetrics needs root: {text.splitlines()[-1] if text else ''}. Run the sensor daemon as root, "
                "or allow 'sudo -n' with a sudoers line such as 'benchuser ALL=(root) NOPASSWD: /usr/bin/powermetrics'"
            )
        detail = f": {text}" if text else ""
        return SensorError(f"powermetrics ({' '.join(self.command)}) exited with status {code}{detail}")

    def _wait_first(self, timeout_s: float) -> Sample:
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self._latest is None and self._error is None and not self._eof:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._lock.wait(remaining)
            if self._latest is not None:
                return self._latest
            error, ended = self._error, self._eof
        if error is None and not ended:
            self.close()
            raise SensorError(f"no powermetrics sample within {timeout_s:.1f} s (command: {' '.join(self.command)})")
        if error is None:  # the tool ended without output: collect its status and message
            try:
                self._proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pass
            self._threads[1].join(timeout=STOP_TIMEOUT_S)
            error = self._failure()
        self.close()
        raise error

    # Sensor -----------------------------------------------------------------------------
    def read(self) -> Sample:
        """The newest sample; fresh=False when no new document arrived since the last read."""
        with self._lock:
            if self._error is not None:
                raise self._error
            if self._pending:
                self._pending.clear()
                assert self._latest is not None
                return self._latest
            ended, latest, count = self._eof, self._latest, self._count
        if ended or latest is None:
            self._proc.poll()
            raise SensorError(f"powermetrics stopped after {count} samples (status {self._proc.returncode})")
        return Sample(latest.t, latest.values, fresh=False)

    def drain(self) -> list[Sample]:
        """Every sample that arrived since the last read or drain, oldest first."""
        with self._lock:
            out, self._pending = self._pending, []
            return out

    def close(self) -> None:
        """Stop the tool (SIGTERM, then SIGKILL) and join the reader threads."""
        proc = getattr(self, "_proc", None)
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=STOP_TIMEOUT_S)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
