"""`edgetran rig deploy BOARD`: the typer command and its report."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Optional

import typer

from firmware_host.rig import load_rig
from firmware_host.deploy.settings import CONNECT_TIMEOUT_S, DeployError
from firmware_host.deploy.wheel import build_wheel, default_source
from firmware_host.deploy.layout import DeployOptions, resolve_target
from firmware_host.deploy.ssh import DeployReport, deploy


def format_report(report: DeployReport) -> list[str]:
    """Human-readable lines of a deploy report."""
    changed = [f for f in report.files if f["action"] == "update"]
    runs = [s for s in report.steps if s["kind"] == "run"]
    if not report.changed:
        head = f"{report.target} ({report.address}): up to date, nothing changed ({len(report.files)} files match their sha256 on the board{', units enabled and active' if report.units else ''})"
    elif report.dry_run:
        head = f"{report.target} ({report.address}): dry run, would update {len(changed)} of {len(report.files)} files and run {len(runs)} commands"
    else:
        head = f"{report.target} ({report.address}): updated {len(changed)} of {len(report.files)} files, ran {len(runs)} commands"
    lines = [head]
    if report.changed or report.dry_run:
        for f in report.files:
            board = (f["board_sha256"] or "absent")[:12]
            lines.append(f"  {f['action']:<6} {f['path']}  sha256 {f['sha256'][:12]} (board: {board})")
        for step in runs:
            lines.append(f"  {'would run' if report.dry_run else 'ran'}  {step['what']}")
    lines += [f"  warning: {w}" for w in report.warnings]
    return lines


def deploy_command(
    name: str = typer.Argument(..., help="Board name from rig.toml (or a sensor's name: its host gets the daemon only)."),
    rig: Optional[Path] = typer.Option(None, "--rig", help="rig.toml (the virtual rig has nothing to deploy)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="dask scheduler the worker joins, tls://HOST:8786 (default: the rig's [host] scheduler)."),
    insecure: bool = typer.Option(False, "--insecure", help="Allow a plain tcp:// scheduler on a non-loopback address (anyone reaching it runs code on the board)."),
    tls_dir: Optional[str] = typer.Option(None, "--tls-dir", help="The rig's TLS folder (default: beside rig.toml, <rig>.tls; made on first use)."),
    user_mode: bool = typer.Option(False, "--user", help="User units (~/.config/systemd/user, systemctl --user) and root ~/edgetran."),
    sudo: bool = typer.Option(False, "--sudo", help="Run install, venv, pip and systemctl under `sudo -n` (passwordless sudo)."),
    deploy_root: Optional[str] = typer.Option(None, "--deploy-root", help="Root on the board (default: the board's deploy_root, else /opt/edgetran or ~/edgetran)."),
    unit_dir: Optional[str] = typer.Option(None, "--unit-dir", help="Where the units go (default: /etc/systemd/system, or ~/.config/systemd/user with --user)."),
    systemctl: str = typer.Option("systemctl", "--systemctl", help="The systemctl command on the board (--user is appended in user mode)."),
    no_systemctl: bool = typer.Option(False, "--no-systemctl", help="Install the units but run no systemctl (no reload, enable or restart)."),
    service_user: Optional[str] = typer.Option(None, "--service-user", help="User= of system units (default: the SSH login user)."),
    wheel: Optional[Path] = typer.Option(None, "--wheel", help="A built edgetran wheel (default: build this checkout's, cached by content)."),
    source: Optional[Path] = typer.Option(None, "--source", help="The edgetran checkout to build the wheel from (default: this one)."),
    wheel_cache: Optional[Path] = typer.Option(None, "--wheel-cache", help="Cache of built wheels (default: ~/.cache/edgetran/wheels)."),
    pip_args: str = typer.Option("", "--pip-args", help="Extra pip install arguments on the board, e.g. '--no-deps --no-index' or '--index-url URL'."),
    known_hosts: Optional[str] = typer.Option(None, "--known-hosts", help="known_hosts file that must hold the board's key (default: ~/.ssh/known_hosts)."),
    ssh_user: Optional[str] = typer.Option(None, "--ssh-user", help="SSH login (default: the board's ssh_user, the user in host, else yours)."),
    ssh_port: Optional[int] = typer.Option(None, "--ssh-port", help="SSH port (default: the board's ssh_port, else 22).", min=1, max=65535),
    ssh_key: Optional[str] = typer.Option(None, "--ssh-key", help="Private key file (default: the board's ssh_key, else ssh-agent and ~/.ssh/id_*)."),
    connect_timeout_s: float = typer.Option(CONNECT_TIMEOUT_S, "--connect-timeout", help="Seconds to wait for the SSH connection.", min=0.1),
    dry_run: bool = typer.Option(False, "--dry-run", help="Connect, read the board's hashes, print the plan; write nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Install the runner extra, the board's dask worker and its sensor daemon over SSH (idempotent)."""
    try:
        inventory = load_rig(rig)
        try:
            extra_pip = tuple(shlex.split(pip_args))
        except ValueError as error:
            raise DeployError(f"--pip-args {pip_args!r}: {error}") from None
        options = DeployOptions(
            scheduler=scheduler or (inventory.scheduler if inventory.scheduler != "in-process" else None),
            user_mode=user_mode, sudo=sudo, deploy_root=deploy_root, unit_dir=unit_dir, systemctl=systemctl,
            no_systemctl=no_systemctl, service_user=service_user, pip_args=extra_pip, known_hosts=known_hosts,
            connect_timeout_s=connect_timeout_s, ssh_user=ssh_user, ssh_port=ssh_port, ssh_key=ssh_key, dry_run=dry_run,
            insecure=insecure, tls_dir=tls_dir,
        )
        resolve_target(inventory, name, options)  # bad names fail before a wheel is built
        if wheel is not None:
            if not wheel.is_file() or not wheel.name.endswith(".whl"):
                raise DeployError(f"--wheel {wheel}: not a wheel file")
            built = wheel
        else:
            checkout = source or default_source()
            if checkout is None:
                raise DeployError("no edgetran checkout to build the wheel from: pass --wheel or --source")
            built = build_wheel(checkout, wheel_cache)
        report = deploy(inventory, name, options, built)
    except (DeployError, ValueError) as error:  # RigError is a ValueError
        raise typer.BadParameter(" ".join(str(error).split())) from None
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
        return
    for line in format_report(report):
        typer.echo(line)
