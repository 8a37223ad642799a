"""What `rig deploy` puts on a board: target, options, rendered units, daemon config, file layout."""

from __future__ import annotations

import hashlib
import importlib.resources
import importlib.util
import ipaddress
import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from firmware_host.rig import Board, Rig, SensorSpec
from firmware_host.deploy.settings import (
    CONNECT_TIMEOUT_S, DEFAULT_DAEMON_PORT, DEFAULT_SSH_PORT, DeployError, NOT_DEPLOYABLE_KINDS,
    RUNNER_EXTRA, SAFE_NAME, SAFE_PATH, SCHEDULER, SENSOR_TEMPLATE, SENSOR_UNIT, STAGING_DIR,
    SYSTEM_ROOT, SYSTEM_UNIT_DIR, USER_ROOT, USER_UNIT_DIR, WORKER_TEMPLATE,
)
from firmware_host.dispatch import RESOURCE_PREFIX, InsecureScheduler, check_scheduler_address, is_loopback_host
from firmware_host.deploy.tls import TLSIdentity


@dataclass(frozen=True)
class Target:
    """Where a deploy goes and what it installs there."""

    name: str
    hostname: str
    user: str | None
    port: int
    key: str | None
    root: str  # absolute or "~/..."
    worker: bool  # a board: the dask worker; a sensor host: the daemon only
    sensors: tuple[SensorSpec, ...]
    daemon_port: int = DEFAULT_DAEMON_PORT
    daemon_host: str = "127.0.0.1"  # the interface the daemon binds: its runs_on host (the address the host reaches it at)

    @property
    def address(self) -> str:
        """user@host:port as ssh would name it."""
        return f"{self.user + '@' if self.user else ''}{self.hostname}:{self.port}"


@dataclass(frozen=True)
class DeployOptions:
    """How to deploy: mode, paths, systemd, pip, SSH trust."""

    scheduler: str | None = None
    user_mode: bool = False
    sudo: bool = False
    deploy_root: str | None = None
    unit_dir: str | None = None
    systemctl: str = "systemctl"
    no_systemctl: bool = False
    service_user: str | None = None
    pip_args: tuple[str, ...] = ()
    known_hosts: str | None = None  # None: ~/.ssh/known_hosts
    connect_timeout_s: float = CONNECT_TIMEOUT_S
    ssh_user: str | None = None
    ssh_port: int | None = None
    ssh_key: str | None = None
    dry_run: bool = False
    insecure: bool = False  # allow a plain tcp:// scheduler off loopback (anyone reaching it runs code on the workers)
    tls_dir: str | None = None  # the rig's certificates (default: beside rig.toml, see firmware_host.deploy.tls)


@dataclass(frozen=True)
class RemoteFile:
    """A file the board should hold, with its content."""

    path: str  # absolute on the board
    content: bytes
    mode: int
    role: str  # wheel, config, unit, install-record
    owner: str | None = None  # with sudo: chown to the service user (secrets)

    @property
    def sha256(self) -> str:
        """Hex sha256 of the content."""
        return hashlib.sha256(self.content).hexdigest()


def _daemon_host_port(runs_on: str) -> tuple[str, int]:
    """A sensor's runs_on (HOST:PORT, or the older user@host) as (host, daemon port)."""
    host = runs_on.rpartition("@")[2]
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit() and name:
        return name.strip("[]").lower(), int(port)
    return host.strip("[]").lower(), DEFAULT_DAEMON_PORT


def resolve_target(rig: Rig, name: str, options: DeployOptions) -> Target:
    """The board (or sensor host) called ``name``, with its SSH settings and the sensors it runs."""
    board = next((b for b in rig.boards if b.name == name), None)
    sensor = next((s for s in rig.sensors if s.name == name), None)
    if board is None and sensor is None:
        known = ", ".join([b.name for b in rig.boards] + [s.name for s in rig.sensors])
        raise DeployError(f"no board or sensor {name!r} in {rig.source} (known: {known})")
    if board is not None:
        if board.host in ("virtual", "local"):
            raise DeployError(f"board {name!r} has host = {board.host!r}: deploy installs on boards reached over SSH (host = 'user@name')")
        if not SAFE_NAME.match(board.name):
            raise DeployError(f"board {name!r}: a deployed board's name may use letters, digits, '.', '_' and '-' only")
        hostname = board.host.rpartition("@")[2].strip("[]").lower()
        user_in_host = board.host.partition("@")[0] if "@" in board.host else None
    else:
        if sensor.runs_on == "local":
            raise DeployError(f"sensor {name!r} runs_on = 'local': its daemon runs inside the host, nothing to deploy")
        hostname, _ = _daemon_host_port(sensor.runs_on)
        user_in_host = sensor.runs_on.partition("@")[0] if "@" in sensor.runs_on else None
        board = next((b for b in rig.boards if b.host.rpartition("@")[2].strip("[]").lower() == hostname), None)
    ssh_board: Board | None = board
    sensors = tuple(s for s in rig.sensors if s.runs_on != "local" and _daemon_host_port(s.runs_on)[0] == hostname)
    for spec in sensors:
        if spec.kind in NOT_DEPLOYABLE_KINDS:
            raise DeployError(f"sensor {spec.name!r}: kind {spec.kind!r} runs inside the host's profile; a daemon on {hostname} cannot run it")
    ports = sorted({_daemon_host_port(s.runs_on)[1] for s in sensors})
    if len(ports) > 1:
        raise DeployError(f"sensors on {hostname} name daemon ports {ports}: one daemon per host serves them all, give them one runs_on")
    user = options.ssh_user or (ssh_board.ssh_user if ssh_board else None) or user_in_host
    port = options.ssh_port or (ssh_board.ssh_port if ssh_board else None) or DEFAULT_SSH_PORT
    key = options.ssh_key or (ssh_board.ssh_key if ssh_board else None)
    root = options.deploy_root or (ssh_board.deploy_root if ssh_board else None) or (USER_ROOT if options.user_mode else SYSTEM_ROOT)
    if not SAFE_PATH.match(root) or not (root.startswith("/") or root.startswith("~/")):
        raise DeployError(f"deploy_root {root!r}: expected an absolute path (or '~/...') without spaces, quotes or '%'")
    if sensor is None and not SCHEDULER.match(options.scheduler or ""):
        raise DeployError(f"board {name!r}: the worker needs the dask scheduler address, --scheduler tls://HOST:8786 (or [host] scheduler in rig.toml), got {options.scheduler!r}")
    if sensor is None:
        try:
            check_scheduler_address(options.scheduler, options.insecure)
        except InsecureScheduler as error:
            raise DeployError(str(error)) from None
    daemon_hosts = sorted({_bind_host(s.runs_on) for s in sensors})
    return Target(
        name=name,
        hostname=hostname,
        user=user,
        port=int(port),
        key=str(Path(key).expanduser()) if key else None,
        root=root.rstrip("/"),
        worker=sensor is None,
        sensors=sensors,
        daemon_port=ports[0] if ports else DEFAULT_DAEMON_PORT,
        daemon_host=daemon_hosts[0] if daemon_hosts else "127.0.0.1",
    )


def _bind_host(runs_on: str) -> str:
    """The interface a daemon binds: the host part of its runs_on, as the rig names it (not lowered, brackets dropped)."""
    host = runs_on.rpartition("@")[2]
    name, sep, port = host.rpartition(":")
    return (name if sep and port.isdigit() and name else host).strip("[]")


def _expand(path: str, home: str) -> str:
    if path == "~" or path.startswith("~/"):
        return home.rstrip("/") + path[1:]
    return path


def set_unit_keys(text: str, edits: dict[str, str | None]) -> str:
    """Rewrite ``Key=value`` lines of a unit; edits map "Section.Key" to a value (None drops it)."""
    lines, section, seen = [], "", set()
    out_by_section: dict[str, list[str]] = {}
    order: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            section = stripped[1:-1]
            order.append(section)
            out_by_section.setdefault(section, [])
            lines.append(("section", section, line))
            continue
        key = stripped.partition("=")[0].strip() if "=" in stripped and not stripped.startswith(("#", ";")) else None
        full = f"{section}.{key}"
        if key is not None and full in edits:
            seen.add(full)
            if edits[full] is not None:
                lines.append(("line", section, f"{key}={edits[full]}"))
            continue
        lines.append(("line", section, line))
    missing = {full: value for full, value in edits.items() if full not in seen and value is not None}
    rendered = []
    for index, (kind, sect, line) in enumerate(lines):
        rendered.append(line)
        last_of_section = index + 1 == len(lines) or lines[index + 1][0] == "section"
        if last_of_section and sect:
            extra = [f"{full.partition('.')[2]}={value}" for full, value in missing.items() if full.partition(".")[0] == sect]
            if extra:
                while rendered and not rendered[-1].strip():
                    rendered.pop()
                rendered.extend(extra + ([""] if index + 1 < len(lines) else []))
    return "\n".join(rendered) + "\n"


def _template(package: str, name: str) -> str:
    """A packaged unit template, its how-to-install-by-hand header replaced by a deploy note."""
    text = (importlib.resources.files(package) / name).read_text()
    body = text[text.index("\n[") + 1:] if not text.startswith("[") else text
    return f"# Installed by `edgetran rig deploy` from {package}/{name}; a redeploy overwrites it.\n{body}"


def _mode_edits(user_mode: bool, service_user: str | None) -> dict[str, str | None]:
    """Unit keys that differ between system units and user units."""
    if user_mode:  # a user manager cannot switch users, raise capabilities or lower nice
        return {"Service.User": None, "Service.Group": None, "Service.AmbientCapabilities": None, "Service.Nice": None, "Install.WantedBy": "default.target"}
    return {"Service.User": service_user}


TLS_FILES = {"ca": "ca.pem", "cert": "worker.pem", "key": "worker.key"}  # under ROOT/etc/tls on the board


def worker_command(board: str, root: str, scheduler: str, tls_dir: str | None = None) -> str:
    """The board's ``dask worker`` command line (with the rig's certificates under ``tls_dir`` for a tls:// scheduler)."""
    command = f'{root}/venv/bin/dask worker {scheduler} --resources "{RESOURCE_PREFIX}{board}=1" --nthreads 1 --name {board}'
    if tls_dir is not None:
        command += f" --tls-ca-file {tls_dir}/{TLS_FILES['ca']} --tls-cert {tls_dir}/{TLS_FILES['cert']} --tls-key {tls_dir}/{TLS_FILES['key']}"
    return command


def render_worker_unit(board: str, root: str, scheduler: str, user_mode: bool, service_user: str | None, tls: bool = False) -> str:
    """The dask worker unit of one board: its resource tag, one thread, the board's name (and TLS files with a tls:// scheduler)."""
    command = worker_command(board, root, scheduler, f"{root}/etc/tls" if tls else None)
    edits = {"Service.ExecStart": command, "Service.WorkingDirectory": "%S/edgetran", **_mode_edits(user_mode, service_user)}
    return set_unit_keys(_template(*WORKER_TEMPLATE), edits)


def render_sensor_unit(root: str, user_mode: bool, service_user: str | None) -> str:
    """The sensor daemon unit (sensors/systemd's) pointed at this deploy's venv and config."""
    command = f"{root}/venv/bin/python -m sensors sensor daemon --config {root}/etc/sensor-daemon.toml"  # the sensors room only: less memory
    edits = {"Service.ExecStart": command, "Service.WorkingDirectory": "%S/edgetran", **_mode_edits(user_mode, service_user)}
    return set_unit_keys(_template(*SENSOR_TEMPLATE), edits)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    raise DeployError(f"cannot write {value!r} into the daemon config (strings, numbers and booleans only)")


def render_daemon_config(sensors: Sequence[SensorSpec], port: int, token: str | None, bind_host: str = "127.0.0.1") -> str:
    """The daemon TOML of the sensors on one host: bound to ``bind_host`` (its runs_on interface) with a token, loopback without."""
    rate_hz = max(s.rate_hz for s in sensors)
    lines = [
        "# Written by `edgetran rig deploy` from the rig inventory; a redeploy overwrites it.",
        "[daemon]",
        f"host = {_toml_value(bind_host if token else '127.0.0.1')}  # the interface named by the sensor's runs_on, never all of them",
        f"port = {port}",
    ]
    if token:
        lines += ["allow_remote = true", f"token = {_toml_value(token)}"]
    lines += [f"rate_hz = {_toml_value(float(rate_hz))}", 'record = "traces/"  # relative to the unit\'s state directory']
    lines += ["rotate_mb = 256  # a rotated set: a new file at 256 MiB and at UTC midnight", "rotate_daily = true",
              "keep_mb = 2048  # the oldest files deleted beyond 2 GiB (an SD card never fills)"]
    for spec in sensors:
        lines += ["", "[[sensors]]", f"kind = {_toml_value(spec.kind)}", f"name = {_toml_value(spec.name)}"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in dict(spec.params).items() if key not in ("kind", "name")]
    return "\n".join(lines) + "\n"


def install_record(wheel_sha256: str, wheel_name: str, pip_args: Sequence[str]) -> str:
    """The venv's record of what was installed; pip runs again when it differs."""
    return f"{wheel_sha256}  {wheel_name}[{RUNNER_EXTRA}]  pip-args: {shlex.join(pip_args)}\n"


@dataclass(frozen=True)
class Layout:
    """Absolute paths on the board, once its home is known."""

    root: str
    unit_dir: str
    staging: str

    @property
    def venv_python(self) -> str:
        """The venv's interpreter."""
        return f"{self.root}/venv/bin/python"

    @property
    def record(self) -> str:
        """The install record inside the venv."""
        return f"{self.root}/venv/edgetran-install.txt"


def layout_of(target: Target, options: DeployOptions, home: str) -> Layout:
    """The board's paths: root, unit directory and upload staging, with ~ expanded to ``home``."""
    unit_dir = options.unit_dir or (USER_UNIT_DIR if options.user_mode else SYSTEM_UNIT_DIR)
    if not SAFE_PATH.match(unit_dir):
        raise DeployError(f"--unit-dir {unit_dir!r}: expected a path without spaces, quotes or '%'")
    return Layout(_expand(target.root, home), _expand(unit_dir, home).rstrip("/"), _expand(STAGING_DIR, home))


def desired_files(target: Target, options: DeployOptions, layout: Layout, wheel: Path, service_user: str | None,
                  tls: TLSIdentity | None = None) -> tuple[list[RemoteFile], list[str], list[str]]:
    """Files the board should hold, the units among them, and warnings (``tls``: the worker's identity for a tls:// scheduler)."""
    data = wheel.read_bytes()
    files = [RemoteFile(f"{layout.root}/wheels/{wheel.name}", data, 0o644, "wheel")]
    units, warnings = [], []
    secret_owner = service_user if options.sudo and not options.user_mode else None
    if target.worker:
        if str(options.scheduler).startswith("tls://") and tls is None:
            raise DeployError(f"board {target.name!r}: a tls:// scheduler needs the worker's certificate (rig TLS folder)")
        if tls is not None:
            tls_dir = f"{layout.root}/etc/tls"
            files.append(RemoteFile(f"{tls_dir}/{TLS_FILES['ca']}", tls.ca.read_bytes(), 0o644, "tls"))
            files.append(RemoteFile(f"{tls_dir}/{TLS_FILES['cert']}", tls.cert.read_bytes(), 0o644, "tls"))
            files.append(RemoteFile(f"{tls_dir}/{TLS_FILES['key']}", tls.key.read_bytes(), 0o600, "tls", secret_owner))
        unit = f"edgetran-worker-{target.name}.service"
        text = render_worker_unit(target.name, layout.root, options.scheduler, options.user_mode, service_user, tls=tls is not None)
        files.append(RemoteFile(f"{layout.unit_dir}/{unit}", text.encode(), 0o644, "unit"))
        units.append(unit)
    if target.sensors:
        tokens = {getattr(s, "daemon_token", None) for s in target.sensors} - {None}
        if len(tokens) > 1:
            raise DeployError(f"sensors on {target.hostname} have different daemon_token values; one daemon serves them all")
        token = next(iter(tokens), None)
        if token is None:
            warnings.append(f"no daemon_token for the sensors on {target.hostname}: the daemon listens on loopback only, the host cannot reach it")
        elif not is_loopback_host(target.daemon_host):
            try:
                ipaddress.ip_address(target.daemon_host)
            except ValueError:
                warnings.append(f"the daemon binds {target.daemon_host!r} as {target.hostname} resolves it; if that is 127.0.1.1 "
                                "(/etc/hosts on Raspberry Pi OS), give runs_on the board's bench-network IP address")
        config = render_daemon_config(target.sensors, target.daemon_port, token, target.daemon_host)
        owner = secret_owner if token else None
        files.append(RemoteFile(f"{layout.root}/etc/sensor-daemon.toml", config.encode(), 0o600 if token else 0o644, "config", owner))
        text = render_sensor_unit(layout.root, options.user_mode, service_user)
        files.append(RemoteFile(f"{layout.unit_dir}/{SENSOR_UNIT}", text.encode(), 0o644, "unit"))
        units.append(SENSOR_UNIT)
    files.append(RemoteFile(layout.record, install_record(files[0].sha256, wheel.name, options.pip_args).encode(), 0o644, "install-record"))
    return files, units, warnings


