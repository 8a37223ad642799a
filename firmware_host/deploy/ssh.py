"""`rig deploy` over SSH (asyncssh): connect, probe, upload what differs, run the plan."""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from firmware_host.rig import Rig
from firmware_host.deploy.settings import DeployError, PROBE_TIMEOUT_S
from firmware_host.deploy.layout import DeployOptions, Target, desired_files, layout_of, resolve_target
from firmware_host.deploy.plan import make_plan, parse_probe, probe_script
from firmware_host.deploy.tls import TLSIdentity, rig_tls_dir, worker_identity


def _asyncssh():
    try:
        import asyncssh
    except ImportError:
        raise DeployError("deploy needs asyncssh: pip install 'edgetran[host]'") from None
    return asyncssh


async def _connect(target: Target, options: DeployOptions):
    asyncssh = _asyncssh()

    if target.key and not Path(target.key).is_file():
        raise DeployError(f"{target.name}: ssh_key {target.key}: file not found")
    kwargs: dict[str, Any] = {"port": target.port, "connect_timeout": options.connect_timeout_s}
    if target.user:
        kwargs["username"] = target.user
    if target.key:
        kwargs["client_keys"] = [target.key]
    if options.known_hosts is not None:
        kwargs["known_hosts"] = options.known_hosts
    where = f"{target.name}: {target.address}"
    try:
        return await asyncssh.connect(target.hostname, **kwargs)
    except asyncssh.PermissionDenied:
        raise DeployError(f"{where}: authentication failed (key {target.key or 'from ssh-agent / ~/.ssh'}; set ssh_user / ssh_key in rig.toml)") from None
    except asyncssh.HostKeyNotVerifiable as error:
        known = options.known_hosts or "~/.ssh/known_hosts"
        raise DeployError(f"{where}: host key not trusted ({error.reason}); ssh to it once to accept the key, or pass --known-hosts (now {known})") from None
    except asyncssh.KeyImportError as error:
        raise DeployError(f"{where}: cannot read ssh_key {target.key}: {error}") from None
    except (OSError, asyncio.TimeoutError) as error:
        reason = str(error) or type(error).__name__
        raise DeployError(f"{where}: cannot reach the board ({reason})") from None
    except asyncssh.Error as error:
        raise DeployError(f"{where}: ssh failed ({error.reason})") from None


def _hint(stderr: str, options: DeployOptions) -> str:
    if "a password is required" in stderr or "sudo: a terminal is required" in stderr:
        return " (--sudo needs passwordless sudo for this user)"
    if "Permission denied" in stderr and not options.sudo and not options.user_mode:
        return " (use --sudo, --user, or ssh_user = 'root')"
    if "ensurepip is not available" in stderr or "No module named venv" in stderr:
        return " (install python3-venv on the board)"
    return ""


async def _run(conn, target: Target, command: str, options: DeployOptions, timeout_s: float | None = None) -> str:
    asyncssh = _asyncssh()

    try:
        result = await conn.run(command, stdin=asyncssh.DEVNULL, timeout=timeout_s)
    except asyncssh.TimeoutError:
        raise DeployError(f"{target.name}: `{command[:80]}` did not finish in {timeout_s:g} s") from None
    except asyncssh.Error as error:
        raise DeployError(f"{target.name}: `{command[:80]}` failed ({error.reason})") from None
    if result.exit_status != 0:
        stderr = str(result.stderr or "")
        last = next((line.strip() for line in reversed(stderr.splitlines()) if line.strip()), f"no error output, stdout: {str(result.stdout or '').strip()[-200:]}")
        shown = command if len(command) <= 100 else command[:97] + "..."
        raise DeployError(f"{target.name}: `{shown}` failed with exit {result.exit_status}: {last}{_hint(stderr, options)}")
    return str(result.stdout or "")


def _worker_tls(rig: Rig, target: Target, options: DeployOptions) -> TLSIdentity | None:
    """The board worker's identity signed by the rig CA (made here on first use) when its scheduler is tls://."""
    if not target.worker or not str(options.scheduler).startswith("tls://"):
        return None
    folder = Path(options.tls_dir).expanduser() if options.tls_dir else rig_tls_dir(rig.source)
    return worker_identity(folder, target.name, target.hostname)


@dataclass
class DeployReport:
    """The outcome of one deploy (or dry run)."""

    target: str
    address: str
    dry_run: bool
    changed: bool
    files: list[dict]
    steps: list[dict]
    units: list[str]
    warnings: list[str]
    wheel: str

    def to_dict(self) -> dict:
        """JSON form."""
        return asdict(self)


async def _deploy(rig: Rig, name: str, options: DeployOptions, wheel: Path) -> DeployReport:
    asyncssh = _asyncssh()
    target = resolve_target(rig, name, options)
    conn = await _connect(target, options)
    async with conn:
        identity = (await _run(conn, target, 'printf "%s\\n%s\\n" "$HOME" "$(id -un)"', options, PROBE_TIMEOUT_S)).splitlines()
        if len(identity) < 2 or not identity[0].startswith("/"):
            raise DeployError(f"{target.name}: could not read the remote home directory (got {identity!r})")
        home, login = identity[0], identity[1]
        layout = layout_of(target, options, home)
        service_user = options.service_user or login
        files, units, warnings = desired_files(target, options, layout, wheel, service_user, _worker_tls(rig, target, options))
        paths = [f.path for f in files]
        state = parse_probe(await _run(conn, target, probe_script(paths, layout, units, options), options, PROBE_TIMEOUT_S), paths)
        plan = make_plan(files, units, state, layout, options)
        if not options.dry_run and plan.changed:
            by_sha = {f.sha256: f for f in files}
            async with conn.start_sftp_client() as sftp:
                for step in plan.steps:
                    if step.kind == "upload":
                        async with sftp.open(step.what, "wb", asyncssh.SFTPAttrs(permissions=0o600)) as handle:
                            await handle.write(by_sha[step.sha256].content)
                    else:
                        await _run(conn, target, step.what, options)
    return DeployReport(
        target=target.name,
        address=target.address,
        dry_run=options.dry_run,
        changed=plan.changed,
        files=plan.files,
        steps=[asdict(s) for s in plan.steps],
        units=units,
        warnings=warnings + plan.warnings,
        wheel=str(wheel),
    )


def deploy(rig: Rig, name: str, options: DeployOptions, wheel: Path) -> DeployReport:
    """Bring one board (or sensor host) up to date over SSH; DeployError names the cause."""
    return asyncio.run(_deploy(rig, name, options, wheel))


