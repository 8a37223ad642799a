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
    from device_runners.cpufreq import CpufreqError

    try:
        yield
    except (CpufreqError, ValueError) as error:
        message = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise typer.BadParameter(message) from None


def _cpufreq(sysfs_root: Optional[Path]):
    from device_runners.cpufreq import Cpufreq, SysfsAccess, default_root
    from device_runners.cpufreq_emulator import EMULATED_MARKER, EmulatedCpufreq

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
