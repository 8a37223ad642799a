"""`edgetran rig scheduler`: the rig's dask scheduler, bound to the bench interface, TLS with the rig's certificates.

The scheduler listens on the host named by the rig's scheduler address (``[host]
scheduler = "tls://10.0.0.1:8786"``: the bench network interface), never on every
interface: ``dask scheduler --host 10.0.0.1 --port 8786 --protocol tls --tls-ca-file ...``.
Its dashboard binds the same host. A ``tcp://`` address is accepted for loopback, and for
another host only with ``--insecure`` (:func:`firmware_host.dispatch.check_scheduler_address`).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Optional

import typer

from firmware_host.deploy.settings import DeployError
from firmware_host.deploy.tls import rig_tls_dir, scheduler_identity
from firmware_host.dispatch import InsecureScheduler, check_scheduler_address

DEFAULT_SCHEDULER_PORT = 8786
DASHBOARD_PORT = 8787


def scheduler_argv(address: str, rig_source: str, tls_dir: str | None = None, insecure: bool = False, dask: str = "dask") -> list[str]:
    """The ``dask scheduler`` command line serving ``address`` on its host only (TLS for tls://)."""
    try:
        scheme, host, port = check_scheduler_address(address, insecure)
    except InsecureScheduler as error:
        raise DeployError(str(error)) from None
    if scheme not in ("tcp", "tls"):
        raise DeployError(f"--scheduler {address}: rig scheduler serves tcp:// or tls:// only")
    if host in ("", "0.0.0.0", "::"):
        raise DeployError(f"--scheduler {address}: name the bench network address to bind (e.g. tls://10.0.0.1:8786), not every interface")
    port = port or DEFAULT_SCHEDULER_PORT
    bracketed = f"[{host}]" if ":" in host else host
    argv = [dask, "scheduler", "--host", host, "--port", str(port), "--protocol", scheme, "--dashboard-address", f"{bracketed}:{DASHBOARD_PORT}"]
    if scheme == "tls":
        identity = scheduler_identity(Path(tls_dir).expanduser() if tls_dir else rig_tls_dir(rig_source), host)
        argv += ["--tls-ca-file", str(identity.ca), "--tls-cert", str(identity.cert), "--tls-key", str(identity.key)]
    return argv


def scheduler_command(
    rig: Optional[Path] = typer.Option(None, "--rig", help="rig.toml (its [host] scheduler names the address to serve; the certificates live beside it)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Address to serve, tls://HOST:8786 (default: the rig's [host] scheduler)."),
    tls_dir: Optional[str] = typer.Option(None, "--tls-dir", help="The rig's TLS folder (default: beside rig.toml, <rig>.tls)."),
    insecure: bool = typer.Option(False, "--insecure", help="Allow plain tcp:// on a non-loopback address (anyone reaching it runs code on the workers)."),
    print_only: bool = typer.Option(False, "--print", help="Print the command line instead of running it."),
) -> None:
    """Run the rig's dask scheduler on the bench interface, with the rig's TLS certificates."""
    from firmware_host.rig import load_rig

    try:
        inventory = load_rig(rig)
        address = scheduler or inventory.scheduler
        if address in ("", "in-process"):
            raise DeployError("no scheduler address: pass --scheduler tls://HOST:8786 or set [host] scheduler in rig.toml")
        argv = scheduler_argv(address, inventory.source, tls_dir, insecure)
    except (DeployError, ValueError) as error:
        raise typer.BadParameter(" ".join(str(error).split())) from None
    if print_only:
        typer.echo(" ".join(argv))
        return
    executable = shutil.which(argv[0])
    if executable is None:
        raise typer.BadParameter("the dask command is not on PATH: pip install 'dask[distributed]'")
    os.execv(executable, argv)
