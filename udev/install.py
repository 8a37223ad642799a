"""Install the shipped udev rules: copy them atomically, create the groups, reload udev.

Everything that touches the machine goes through a :class:`Host` (command runner,
effective uid, group lookup), so tests run the same code with a recording host and a
temporary rules folder. ``dry_run`` reports the same actions and changes nothing.
"""

from __future__ import annotations

import grp
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Callable, Sequence

from udev.syntax import parse_rules

DEFAULT_RULES_DIR = Path("/etc/udev/rules.d")
DEFAULT_GROUP = "edgetran"  # the group the shipped files name
CONVENTIONAL_GROUPS = ("i2c",)  # groups the rules also name (the I2C node's owner)
TRIGGER_SUBSYSTEMS = ("i2c-dev", "usb", "cpu", "hwmon", "powercap")
GROUP_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
# Where the shipped files name the bench group (comments and GOTO labels are left as they are).
GROUP_SITES = re.compile(r'(?<=chgrp )edgetran\b|(?<=g:)edgetran(?=:)|(?<=GROUP=")edgetran(?=")')

Runner = Callable[[Sequence[str]], None]


class InstallError(RuntimeError):
    """An install step that failed (a command's exit status, a file that could not be written)."""


class NotRootError(PermissionError):
    """Installing needs root."""


def run_command(argv: Sequence[str]) -> None:
    """Run a command; raise :class:`InstallError` with its first error line when it fails."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise InstallError(f"{argv[0]}: command not found (is udev installed?)") from None
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise InstallError(f"{' '.join(argv)} failed (exit {done.returncode}){': ' + detail[0] if detail else ''}")


def group_exists(name: str) -> bool:
    """Whether a group of that name exists."""
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


@dataclass
class Host:
    """The machine as the installer sees it; replace its fields in tests."""

    run: Runner = run_command
    euid: Callable[[], int] = os.geteuid
    group_exists: Callable[[str], bool] = group_exists


@dataclass
class RecordingHost(Host):
    """A host that records commands instead of running them (for tests and demos)."""

    commands: list[list[str]] = field(default_factory=list)
    uid: int = 0
    groups: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.run = lambda argv: self.commands.append(list(argv))
        self.euid = lambda: self.uid
        self.group_exists = lambda name: name in self.groups


def shipped_rules() -> dict[str, str]:
    """The rules files shipped with the package, name -> text, in udev's (lexical) order."""
    folder = resources.files("udev").joinpath("rules")
    files = sorted((entry for entry in folder.iterdir() if entry.name.endswith(".rules")), key=lambda e: e.name)
    return {entry.name: entry.read_text(encoding="utf-8") for entry in files}


def check_group(group: str) -> str:
    """The group name, or ValueError when groupadd would refuse it."""
    if not GROUP_NAME.match(group):
        raise ValueError(f"invalid group name {group!r}: use lower-case letters, digits, '_' or '-' (at most 32)")
    return group


def render(text: str, group: str = DEFAULT_GROUP) -> str:
    """A shipped rules file with the bench group replaced by ``group``."""
    return GROUP_SITES.sub(check_group(group), text)


def write_atomically(path: Path, text: str, mode: int = 0o644) -> None:
    """Write ``text`` to ``path`` through a hidden temporary file (udev reads *.rules only) and rename."""
    handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False)
    try:
        with handle:
            handle.write(text)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def trigger_command() -> list[str]:
    """The `udevadm trigger` that re-applies the rules to devices already present."""
    return ["udevadm", "trigger", "--action=change", *(f"--subsystem-match={s}" for s in TRIGGER_SUBSYSTEMS)]


def install(
    rules_dir: Path = DEFAULT_RULES_DIR,
    group: str = DEFAULT_GROUP,
    *,
    dry_run: bool = False,
    host: Host | None = None,
    echo: Callable[[str], None] = print,
) -> list[str]:
    """Install the rules into ``rules_dir`` for ``group``; returns (and echoes) the actions, one line each."""
    host = host or Host()
    check_group(group)
    rules_dir = Path(rules_dir)
    if not dry_run and host.euid() != 0:
        raise NotRootError(f"installing udev rules into {rules_dir} needs root: run it with sudo (or add --dry-run)")
    actions: list[str] = []
    if dry_run:
        echo("dry run: the actions below are not carried out")
    if not rules_dir.is_dir():
        if not dry_run:
            raise ValueError(f"{rules_dir} is not a directory (is udev installed? see --rules-dir)")
        echo(f"note: {rules_dir} does not exist on this machine (is udev installed?); these are the actions on a host that has it")

    def act(line: str, argv: Sequence[str] | None = None) -> None:
        echo(line)
        actions.append(line)
        if argv is not None and not dry_run:
            host.run(argv)

    for name in dict.fromkeys((group, *CONVENTIONAL_GROUPS)):
        if host.group_exists(name):
            echo(f"group {name} exists")
        else:
            act(f"run: groupadd --system {name}", ["groupadd", "--system", name])
    for name, text in shipped_rules().items():
        rendered = render(text, group)
        parse_rules(rendered)  # never install a file udev would misread
        target = rules_dir / name
        if target.is_file() and target.read_text(encoding="utf-8") == rendered:
            echo(f"{target} is up to date")
            continue
        act(f"write: {target} (mode 0644, atomic rename)")
        if not dry_run:
            try:
                write_atomically(target, rendered)
            except OSError as error:
                raise InstallError(f"cannot write {target}: {error.strerror or error}") from None
    act("run: udevadm control --reload-rules", ["udevadm", "control", "--reload-rules"])
    act(f"run: {' '.join(trigger_command())}", trigger_command())
    user = os.environ.get("SUDO_USER") or "$USER"
    echo(f"next: add bench users to the group (sudo usermod -aG {group} {user}) and log in again")
    return actions
