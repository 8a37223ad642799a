"""`edgetran cpufreq ...` (and, with the runner, `edgetran run ...`): what a board executes.

Bad input is raised as ``typer.BadParameter`` (one line, exit 2 at the entry point).
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.console import Console
from rich.table import Table

cpufreq_app = typer.Typer(help="Linux cpufreq: show policies, set governors and frequencies.", no_args_is_help=True)


@contextmanager
def input_errors() -> Iterator[None]:
    """Turn the runner room's errors into one-line usage errors."""
    from device_runners.cpufreq import CpufreqError  # artifact, protocol and device errors are ValueErrors

    try:
        yield
    except (CpufreqError, ValueError, RuntimeError, TimeoutError) as error:
        message = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise typer.BadParameter(" ".join(message.split())) from None


def _cpufreq(sysfs_root: Optional[Path]):
    from device_runners.cpufreq import Cpufreq, SysfsAccess, default_root
    from device_runners.cpufreq_emulator import EMULATED_MARKER, EmulatedCpufreq

    if sysfs_root is not None and not Path(sysfs_root).is_dir():
        raise typer.BadParameter(f"--sysfs-root {sysfs_root}: not a directory")
    root = Path(sysfs_root) if sysfs_root is not None else Path(default_root())
    if root != Path("/") and (root / EMULATED_MARKER).exists():
        return Cpufreq(EmulatedCpufreq(root))
    return Cpufreq(SysfsAccess(root))


@cpufreq_app.command("show")
def show(
    sysfs_root: Optional[Path] = typer.Option(None, "--sysfs-root", help="Root of the sysfs tree (default / or $EDGETRAN_SYSFS_ROOT)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Policies, governors, available frequencies and the current state."""
    with input_errors():
        policies = _cpufreq(sysfs_root).policies()
    if as_json:
        typer.echo(json.dumps([p.to_dict() for p in policies], indent=2))
        return
    if not policies:
        typer.echo("no cpufreq policies (no cpufreq driver, or a container without /sys/devices/system/cpu/cpufreq)")
        return
    table = Table(title="cpufreq policies")
    for column in ("policy", "cpus", "governor", "min kHz", "max kHz", "current kHz", "available governors"):
        table.add_column(column)
    for p in policies:
        table.add_row(
            p.name,
            ",".join(map(str, p.cpus)),
            p.state.governor,
            str(p.state.min_khz),
            str(p.state.max_khz),
            str(p.current_khz or "-"),
            " ".join(p.governors),
        )
    Console().print(table)


@cpufreq_app.command("set")
def set_command(
    governor: Optional[str] = typer.Option(None, "--governor", help="Governor to set (e.g. userspace, performance)."),
    freq: Optional[int] = typer.Option(None, "--freq", help="Frequency in kHz (setspeed under userspace, else min = max)."),
    policy: list[str] = typer.Option([], "--policy", help="Policy to change (repeatable; default: all)."),
    sysfs_root: Optional[Path] = typer.Option(None, "--sysfs-root", help="Root of the sysfs tree (default / or $EDGETRAN_SYSFS_ROOT)."),
    as_json: bool = typer.Option(False, "--json", help="Print what the kernel accepted as JSON."),
) -> None:
    """Set a governor and/or a frequency; prints what the kernel accepted (not restored afterwards)."""
    if governor is None and freq is None:
        raise typer.BadParameter("give --governor, --freq or both")
    with input_errors():
        cpufreq = _cpufreq(sysfs_root)
        names = policy or cpufreq.policy_names()
        if not names:
            raise ValueError("no cpufreq policies to set")
        accepted = {}
        for name in names:
            if governor is not None:
                accepted[name] = cpufreq.set_governor(name, governor)
            if freq is not None:
                accepted[name] = cpufreq.set_frequency(name, freq)
    result = {name: state.__dict__ for name, state in accepted.items()}
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        for name, state in result.items():
            typer.echo(f"{name}: governor {state['governor']}, {state['min_khz']}..{state['max_khz']} kHz"
                       + (f", setspeed {state['setspeed_khz']} kHz" if state["setspeed_khz"] else ""))


def run_command(
    artifact: str = typer.Argument(..., help="Artifact (sidecar, model file or hash stem), or 'devices' to list runtimes and devices."),
    runtime: Optional[str] = typer.Option(None, "--runtime", help="onnxruntime, openvino or tflite (default: the artifact's own)."),
    device: Optional[str] = typer.Option(None, "--device", help="Execution device (CPU, CUDA, GPU, NPU, MYRIAD...)."),
    batch: int = typer.Option(1, "--batch", help="Sequences per run.", min=1),
    runs: int = typer.Option(10, "--runs", help="Timed runs.", min=1),
    warmup: int = typer.Option(3, "--warmup", help="Untimed warm-up runs.", min=0),
    idle_s: float = typer.Option(0.0, "--idle-s", help="Marked idle window before the runs, seconds.", min=0.0),
    threads: Optional[int] = typer.Option(None, "--threads", help="Intra-op threads.", min=1),
    inter_threads: Optional[int] = typer.Option(None, "--inter-threads", help="Inter-op threads (ONNX Runtime).", min=1),
    precision: Optional[str] = typer.Option(None, "--precision", help="OpenVINO inference precision: f32 (default), bf16, f16."),
    timeout_s: float = typer.Option(60.0, "--timeout-s", help="Watchdog limit per run, seconds."),
    seed: int = typer.Option(0, "--seed", help="Seed of the input token ids."),
    as_json: bool = typer.Option(False, "--json", help="Print the full report (statistics, markers, versions) as JSON."),
) -> None:
    """Time an exported model on this board: warm-up, marked timed runs, latency statistics."""
    if artifact == "devices" and not Path(artifact).exists():
        from device_runners.runtimes import runtime_devices

        devices = runtime_devices()
        if as_json:
            typer.echo(json.dumps(devices, indent=2))
            return
        for name, info in devices.items():
            if info["installed"]:
                typer.echo(f"{name} {info['version']}: {', '.join(info['devices'])}")
            else:
                typer.echo(f"{name}: not installed ({info['pip']})")
        return
    from device_runners.protocol import measure
    from device_runners.runtimes import RUNTIME_FORMATS

    if runtime is not None and runtime not in RUNTIME_FORMATS:
        raise typer.BadParameter(f"unknown runtime {runtime!r} (known: {', '.join(RUNTIME_FORMATS)})")
    with input_errors():
        report = measure(artifact, runtime, device, batch, runs, warmup, idle_s, timeout_s, threads, precision, seed, inter_threads=inter_threads)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    lat = report.latency_per_batch
    typer.echo(
        f"{report.runtime} {report.versions.get(report.runtime, '')} on {report.device}: batch {report.batch} x seq {report.seq_len}, "
        f"{report.runs} runs: median {lat.median_s * 1e3:.3f} ms/batch (p90 {lat.p90_s * 1e3:.3f}, min {lat.min_s * 1e3:.3f}), "
        f"{report.latency_per_sequence.median_s * 1e3:.3f} ms/seq, {report.throughput_seq_per_s:.1f} seq/s, "
        f"CPU {report.cpu_time_s:.3f} s, peak RSS {report.peak_rss_bytes / 2**20:.0f} MiB"
    )
