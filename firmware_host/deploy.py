"""`edgetran rig deploy BOARD`: install the runner, its dask worker and the sensor daemon on a board over SSH.

What lands on the board (ROOT is the board's ``deploy_root``: ``/opt/edgetran``, or
``~/edgetran`` with ``--user``; UNITS is ``/etc/systemd/system``, or
``~/.config/systemd/user`` with ``--user``)::

    ROOT/wheels/edgetran-*.whl              the wheel of this checkout (built once per content)
    ROOT/venv/                              python3 -m venv; pip install 'WHEEL[runner]'
    ROOT/venv/edgetran-install.txt          what was installed: wheel sha256, extra, pip args
    ROOT/etc/sensor-daemon.toml             when rig sensors run on this host (see below)
    UNITS/edgetran-worker-BOARD.service     dask worker tcp://SCHEDULER --resources "board-BOARD=1"
                                            --nthreads 1 --name BOARD
    UNITS/edgetran-sensor-daemon.service    edgetran sensor daemon --config ROOT/etc/sensor-daemon.toml

**Idempotent.** One read-only probe prints the sha256 of every file the deploy would
write (and whether the venv exists, and each unit's enabled/active state); only files
whose hash differs are uploaded, pip runs only when the install record differs, and
systemd is touched only for units that changed, whose inputs (wheel, config) changed,
or that are not enabled and active. A second deploy of the same checkout runs the probe
alone and reports "up to date".

**Dry run** connects and runs that read-only probe, then prints the plan (each file
with its local and board sha256, the commands) without writing anything.

**Sensors.** A rig sensor whose ``runs_on`` names this board's host (``HOST:PORT``, the
daemon's address) goes into the daemon config; the daemon listens on all interfaces with
``allow_remote`` and the sensor's ``daemon_token`` (config file mode 0600), or on
loopback only when no token is set (a warning says the host cannot reach it). Deploy
``NAME`` may also be a sensor's name: its ``runs_on`` host then gets the daemon alone.

**Privileges.** Files are uploaded over SFTP into ``~/.cache/edgetran-deploy`` and put
in place with ``install -D``; with ``--sudo`` that, the venv, pip and ``systemctl`` run
under ``sudo -n`` (passwordless sudo; it fails at once rather than prompting). System
units run as the SSH login user (``--service-user`` to change it); ``--user`` units need
``loginctl enable-linger USER`` to run without a login session.

The wheel is built from this checkout's files (``git ls-files``, or a walk of the tree)
copied to a temporary directory, with ``SOURCE_DATE_EPOCH`` fixed so that the same
sources give the same bytes; it is cached under ``~/.cache/edgetran/wheels/<digest>``.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.resources
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import typer

from firmware_host.rig import Board, Rig, SensorSpec, load_rig

RUNNER_EXTRA = "runner"  # the board's install: no torch, no host packages
RESOURCE_PREFIX = "board-"  # dask resource tag of a board (as firmware_host dispatch asks for it)
DEFAULT_SSH_PORT = 22
DEFAULT_DAEMON_PORT = 8765  # sensors.daemon.DEFAULT_PORT
SYSTEM_ROOT = "/opt/edgetran"
USER_ROOT = "~/edgetran"
SYSTEM_UNIT_DIR = "/etc/systemd/system"
USER_UNIT_DIR = "~/.config/systemd/user"
STAGING_DIR = "~/.cache/edgetran-deploy"  # uploads land here, then `install` puts them in place
CONNECT_TIMEOUT_S = 15.0
PROBE_TIMEOUT_S = 60.0
WHEEL_EPOCH_S = 315532800  # 1980-01-01T00:00Z, the earliest zip timestamp: reproducible wheels
WHEEL_BUILD_TIMEOUT_S = 600.0
WORKER_TEMPLATE = ("device_runners", "systemd/edgetran-worker.service")
SENSOR_TEMPLATE = ("sensors", "systemd/edgetran-sensor-daemon.service")
SENSOR_UNIT = "edgetran-sensor-daemon.service"
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # unit names, resource tags, shell words
SAFE_PATH = re.compile(r"^[A-Za-z0-9/._~+-]+$")  # remote paths: no spaces, quotes or systemd '%'
SCHEDULER = re.compile(r"^(tcp|tls)://[^\s\"'%]+$")
SKIPPED_DIRS = {".git", "build", "dist", "__pycache__", ".venv", ".pytest_cache", ".hypothesis", ".mypy_cache"}
NOT_DEPLOYABLE_KINDS = {"virtual-board"}  # runs inside the host's profile, not in a daemon


class DeployError(RuntimeError):
    """A deploy that cannot go on; the message is one line naming the board and the cause."""


# -- the wheel ---------------------------------------------------------------------------


def default_source() -> Path | None:
    """This package's source checkout (an editable install), or None when installed from a wheel."""
    root = Path(__file__).resolve().parents[1]
    pyproject = root / "pyproject.toml"
    if pyproject.is_file() and 'name = "edgetran"' in pyproject.read_text(errors="replace"):
        return root
    return None


def source_files(source: Path) -> list[str]:
    """Relative paths of the checkout's files: git's tracked and unignored ones, else a walk."""
    try:
        listed = subprocess.run(
            ["git", "-C", str(source), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True, check=True, timeout=60,
        ).stdout.decode().split("\0")
        names = sorted({n for n in listed if n and (source / n).is_file()})
        if names:
            return names
    except (OSError, subprocess.SubprocessError):
        pass
    names = []
    for directory, subdirs, files in os.walk(source):
        subdirs[:] = sorted(d for d in subdirs if d not in SKIPPED_DIRS and not d.endswith(".egg-info"))
        for name in files:
            if not name.endswith((".pyc", ".pyo")):
                names.append(str((Path(directory) / name).relative_to(source)))
    return sorted(names)


def source_digest(source: Path, files: Sequence[str] | None = None) -> str:
    """sha256 over the checkout's file names and contents: the wheel cache key."""
    digest = hashlib.sha256()
    for name in files if files is not None else source_files(source):
        digest.update(name.encode() + b"\0")
        digest.update(hashlib.sha256((source / name).read_bytes()).digest())
    return digest.hexdigest()


def default_cache_dir() -> Path:
    """Where built wheels are kept: $XDG_CACHE_HOME/edgetran/wheels (~/.cache by default)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgetran" / "wheels"


def _can_build_without_isolation() -> bool:
    """Whether this interpreter has the build backend pyproject.toml asks for (offline, faster)."""
    import importlib.metadata

    try:
        version = tuple(int(part) for part in importlib.metadata.version("setuptools").split(".")[:2])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return False
    # setuptools >= 70.1 carries bdist_wheel itself; older ones need the wheel package beside them.
    return version >= (70, 1) or (version >= (68, 0) and importlib.util.find_spec("wheel") is not None)


def build_wheel(source: Path, cache_dir: Path | None = None) -> Path:
    """The edgetran wheel of a checkout, built once per content digest and cached."""
    source = Path(source).resolve()
    if not (source / "pyproject.toml").is_file():
        raise DeployError(f"{source}: no pyproject.toml (pass the edgetran checkout, or a built --wheel)")
    files = source_files(source)
    digest = source_digest(source, files)
    out = Path(cache_dir or default_cache_dir()) / digest[:32]
    cached = sorted(out.glob("edgetran-*.whl"))
    if cached:
        return cached[0]
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="edgetran-wheel-") as tmp:
        copy = Path(tmp) / "src"
        for name in files:
            target = copy / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, target)
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "--disable-pip-version-check", "-w", str(Path(tmp) / "dist"), str(copy)]
        if _can_build_without_isolation():
            command.insert(4, "--no-build-isolation")
        env = {**os.environ, "SOURCE_DATE_EPOCH": str(WHEEL_EPOCH_S)}
        built = subprocess.run(command, capture_output=True, text=True, env=env, timeout=WHEEL_BUILD_TIMEOUT_S)
        if built.returncode != 0:
            tail = (built.stderr.strip().splitlines() or ["no output"])[-1]
            raise DeployError(f"building the wheel of {source} failed: {tail}")
        (wheel,) = (Path(tmp) / "dist").glob("edgetran-*.whl")
        staging = Path(tempfile.mkdtemp(prefix=f".{digest[:32]}-", dir=out.parent))
        shutil.move(str(wheel), staging / wheel.name)
        try:
            staging.rename(out)  # atomic: a concurrent build of the same digest keeps the first
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
    cached = sorted(out.glob("edgetran-*.whl"))
    if not cached:
        raise DeployError(f"wheel cache {out}: no wheel there after the build (remove the directory and retry)")
    return cached[0]


# -- what goes on the board --------------------------------------------------------------


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
        raise DeployError(f"board {name!r}: the worker needs the dask scheduler address, --scheduler tcp://HOST:8786 (or [host] scheduler in rig.toml), got {options.scheduler!r}")
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
    )


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


def render_worker_unit(board: str, root: str, scheduler: str, user_mode: bool, service_user: str | None) -> str:
    """The dask worker unit of one board: its resource tag, one thread, the board's name."""
    command = f'{root}/venv/bin/dask worker {scheduler} --resources "{RESOURCE_PREFIX}{board}=1" --nthreads 1 --name {board}'
    edits = {"Service.ExecStart": command, "Service.WorkingDirectory": "%S/edgetran", **_mode_edits(user_mode, service_user)}
    return set_unit_keys(_template(*WORKER_TEMPLATE), edits)


def render_sensor_unit(root: str, user_mode: bool, service_user: str | None) -> str:
    """The sensor daemon unit (sensors/systemd's) pointed at this deploy's venv and config."""
    command = f"{root}/venv/bin/edgetran sensor daemon --config {root}/etc/sensor-daemon.toml"
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


def render_daemon_config(sensors: Sequence[SensorSpec], port: int, token: str | None) -> str:
    """The daemon TOML of the sensors on one host: remote with a token, loopback without."""
    rate_hz = max(s.rate_hz for s in sensors)
    lines = [
        "# Written by `edgetran rig deploy` from the rig inventory; a redeploy overwrites it.",
        "[daemon]",
        f"host = {_toml_value('0.0.0.0' if token else '127.0.0.1')}",
        f"port = {port}",
    ]
    if token:
        lines += ["allow_remote = true", f"token = {_toml_value(token)}"]
    lines += [f"rate_hz = {_toml_value(float(rate_hz))}", 'record = "traces/"  # relative to the unit\'s state directory']
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


def desired_files(target: Target, options: DeployOptions, layout: Layout, wheel: Path, service_user: str | None) -> tuple[list[RemoteFile], list[str], list[str]]:
    """Files the board should hold, the units among them, and warnings."""
    data = wheel.read_bytes()
    files = [RemoteFile(f"{layout.root}/wheels/{wheel.name}", data, 0o644, "wheel")]
    units, warnings = [], []
    if target.worker:
        unit = f"edgetran-worker-{target.name}.service"
        text = render_worker_unit(target.name, layout.root, options.scheduler, options.user_mode, service_user)
        files.append(RemoteFile(f"{layout.unit_dir}/{unit}", text.encode(), 0o644, "unit"))
        units.append(unit)
    if target.sensors:
        tokens = {getattr(s, "daemon_token", None) for s in target.sensors} - {None}
        if len(tokens) > 1:
            raise DeployError(f"sensors on {target.hostname} have different daemon_token values; one daemon serves them all")
        token = next(iter(tokens), None)
        if token is None:
            warnings.append(f"no daemon_token for the sensors on {target.hostname}: the daemon listens on loopback only, the host cannot reach it")
        config = render_daemon_config(target.sensors, target.daemon_port, token)
        owner = service_user if token and options.sudo and not options.user_mode else None
        files.append(RemoteFile(f"{layout.root}/etc/sensor-daemon.toml", config.encode(), 0o600 if token else 0o644, "config", owner))
        text = render_sensor_unit(layout.root, options.user_mode, service_user)
        files.append(RemoteFile(f"{layout.unit_dir}/{SENSOR_UNIT}", text.encode(), 0o644, "unit"))
        units.append(SENSOR_UNIT)
    files.append(RemoteFile(layout.record, install_record(files[0].sha256, wheel.name, options.pip_args).encode(), 0o644, "install-record"))
    return files, units, warnings


# -- the probe and the plan --------------------------------------------------------------


@dataclass
class BoardState:
    """What the probe found on the board."""

    hashes: dict[str, str | None]  # path -> sha256, None when absent
    venv: bool
    units: dict[str, tuple[str, str]]  # unit -> (is-enabled, is-active)


def _q(word: str) -> str:
    return shlex.quote(word)


def _systemctl(options: DeployOptions) -> list[str]:
    words = shlex.split(options.systemctl) + (["--user"] if options.user_mode else [])
    return (["sudo", "-n"] if options.sudo and not options.user_mode else []) + words


def _priv(options: DeployOptions) -> str:
    return "sudo -n " if options.sudo else ""


def probe_script(paths: Sequence[str], layout: Layout, units: Sequence[str], options: DeployOptions) -> str:
    """A read-only POSIX sh script printing each path's sha256, the venv, and each unit's state."""
    lines = [
        f"for f in {' '.join(_q(p) for p in paths)}; do",
        f'  if [ -f "$f" ]; then {_priv(options)}sha256sum "$f" 2>/dev/null || echo "? $f"; else echo "- $f"; fi',
        "done",
        f"if [ -x {_q(layout.venv_python)} ]; then echo 'venv yes'; else echo 'venv no'; fi",
    ]
    if not options.no_systemctl:
        systemctl = shlex.join(_systemctl(options))
        for unit in units:
            lines.append(f'echo "unit {unit} $({systemctl} is-enabled {unit} 2>/dev/null || true) $({systemctl} is-active {unit} 2>/dev/null || true)"')
    return "\n".join(lines)


def parse_probe(text: str, paths: Sequence[str]) -> BoardState:
    """Parse the probe's output."""
    hashes: dict[str, str | None] = {p: None for p in paths}
    venv, units = False, {}
    for line in text.splitlines():
        head, _, rest = line.partition(" ")
        if head == "venv":
            venv = rest.strip() == "yes"
        elif head == "unit":
            words = rest.split()
            units[words[0]] = (words[1] if len(words) > 1 else "unknown", words[2] if len(words) > 2 else "unknown")
        elif head in ("-", "?"):
            hashes[rest.strip()] = None if head == "-" else "unreadable"
        elif re.fullmatch(r"[0-9a-f]{64}", head):
            hashes[rest.strip().lstrip("*")] = head
    return BoardState(hashes, venv, units)


@dataclass
class Step:
    """One action of a plan: an upload (with hashes) or a command."""

    kind: str  # upload, run
    what: str  # the remote path, or the command line
    sha256: str | None = None
    board_sha256: str | None = None
    role: str | None = None


@dataclass
class Plan:
    """Files (changed or not) and the commands that bring the board up to date."""

    files: list[dict]
    steps: list[Step]
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether anything would be written or run."""
        return bool(self.steps)


def make_plan(files: Sequence[RemoteFile], units: Sequence[str], state: BoardState, layout: Layout, options: DeployOptions, python: str = "python3") -> Plan:
    """Compare wanted files with the board's hashes and list the uploads and commands needed."""
    priv = _priv(options)
    changed = {f.path for f in files if state.hashes.get(f.path) != f.sha256}
    table = [{"path": f.path, "role": f.role, "sha256": f.sha256, "board_sha256": state.hashes.get(f.path), "action": "update" if f.path in changed else "same"} for f in files]
    steps: list[Step] = []
    uploads = [f for f in files if f.path in changed and f.role != "install-record"]
    record = next(f for f in files if f.role == "install-record")
    wheel = next(f for f in files if f.role == "wheel")
    reinstall = record.path in changed or not state.venv
    if uploads or reinstall:
        steps.append(Step("run", f"mkdir -p -m 700 {_q(layout.staging)}"))  # uploads may hold a daemon token

    def put(f: RemoteFile) -> None:
        staged = f"{layout.staging}/{f.sha256}"
        steps.append(Step("upload", staged, f.sha256, state.hashes.get(f.path), f.role))
        owner = f" -o {_q(f.owner)}" if f.owner else ""
        steps.append(Step("run", f"{priv}install -D -m {f.mode:04o}{owner} {_q(staged)} {_q(f.path)}", role=f.role))

    for f in uploads:
        put(f)
    if reinstall:
        if not state.venv:
            steps.append(Step("run", f"{priv}{python} -m venv {_q(layout.root + '/venv')}"))
        pip = f"{priv}{_q(layout.venv_python)} -m pip install --disable-pip-version-check"
        extra_args = "".join(" " + _q(a) for a in options.pip_args)
        steps.append(Step("run", f"{pip}{extra_args} {_q(wheel.path + '[' + RUNNER_EXTRA + ']')}"))
        exact_args = "".join(" " + _q(a) for a in options.pip_args if a != "--no-deps")
        steps.append(Step("run", f"{pip} --no-deps --force-reinstall{exact_args} {_q(wheel.path)}"))  # the exact wheel, even at an unchanged version
        put(record)
    warnings = []
    if options.no_systemctl and (reinstall or any(f.path in changed for f in files if f.role in ("unit", "config"))):
        warnings.append(f"--no-systemctl: run `{shlex.join(_systemctl(DeployOptions(user_mode=options.user_mode, systemctl=options.systemctl)))} daemon-reload` and restart {', '.join(units)} yourself")
    if not options.no_systemctl:
        systemctl = shlex.join(_systemctl(options))
        unit_files = {f.path.rpartition("/")[2]: f for f in files if f.role == "unit"}
        config_changed = any(f.role == "config" and f.path in changed for f in files)
        if any(unit_files[u].path in changed for u in units):
            steps.append(Step("run", f"{systemctl} daemon-reload"))
        for unit in units:
            enabled, active = state.units.get(unit, ("unknown", "unknown"))
            if enabled != "enabled":
                steps.append(Step("run", f"{systemctl} enable {unit}"))
            inputs_changed = unit_files[unit].path in changed or reinstall or (unit == SENSOR_UNIT and config_changed)
            if inputs_changed or active != "active" or enabled != "enabled":
                steps.append(Step("run", f"{systemctl} restart {unit}"))
    if uploads or reinstall:
        steps.append(Step("run", f"rm -rf {_q(layout.staging)}"))
    return Plan(table, steps, warnings)


# -- SSH ---------------------------------------------------------------------------------


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
        files, units, warnings = desired_files(target, options, layout, wheel, service_user)
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


# -- the command -------------------------------------------------------------------------


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
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="dask scheduler the worker joins, tcp://HOST:8786 (default: the rig's [host] scheduler)."),
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
