"""`rig deploy`'s read-only probe of a board and the plan that brings it up to date (idempotent by sha256)."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Sequence

from firmware_host.deploy.settings import RUNNER_EXTRA, SENSOR_UNIT
from firmware_host.deploy.layout import DeployOptions, Layout, RemoteFile


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
    if options.no_systemctl and (reinstall or any(f.path in changed for f in files if f.role in ("unit", "config", "tls"))):
        warnings.append(f"--no-systemctl: run `{shlex.join(_systemctl(DeployOptions(user_mode=options.user_mode, systemctl=options.systemctl)))} daemon-reload` and restart {', '.join(units)} yourself")
    if not options.no_systemctl:
        systemctl = shlex.join(_systemctl(options))
        unit_files = {f.path.rpartition("/")[2]: f for f in files if f.role == "unit"}
        config_changed = any(f.role == "config" and f.path in changed for f in files)
        tls_changed = any(f.role == "tls" and f.path in changed for f in files)  # the worker's certificates
        if any(unit_files[u].path in changed for u in units):
            steps.append(Step("run", f"{systemctl} daemon-reload"))
        for unit in units:
            enabled, active = state.units.get(unit, ("unknown", "unknown"))
            if enabled != "enabled":
                steps.append(Step("run", f"{systemctl} enable {unit}"))
            inputs_changed = unit_files[unit].path in changed or reinstall or (config_changed if unit == SENSOR_UNIT else tls_changed)
            if inputs_changed or active != "active" or enabled != "enabled":
                steps.append(Step("run", f"{systemctl} restart {unit}"))
    if uploads or reinstall:
        steps.append(Step("run", f"rm -rf {_q(layout.staging)}"))
    return Plan(table, steps, warnings)


