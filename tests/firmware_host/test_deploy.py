"""`rig deploy` against a real SSH server on loopback, a real wheel and a real venv.

The server is asyncssh's (the `host` extra): every exec request runs in ``/bin/sh`` with
HOME set to a temporary board home, SFTP writes real files, and ``systemctl`` is a small
stand-in script that keeps enabled/active state (nothing on a CI machine may start
units). pip installs the wheel with ``--no-deps --no-index``: real, but offline and quick.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import socket
import subprocess
import threading
import zipfile
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

asyncssh = pytest.importorskip("asyncssh", reason="asyncssh (the `host` extra) runs the loopback SSH server")

from firmware_host.deploy import (  # noqa: E402 - after the importorskip
    BoardState,
    DeployOptions,
    Layout,
    build_wheel,
    default_source,
    deploy_command,
    desired_files,
    make_plan,
    render_daemon_config,
    render_sensor_unit,
    render_worker_unit,
    resolve_target,
    set_unit_keys,
    source_files,
)
from firmware_host.rig import SensorSpec, parse_rig  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
FAKE_SYSTEMCTL = """#!/bin/sh
# Stand-in for systemctl: logs every call, keeps enabled/active state in files, and like
# the real one refuses units whose file is not in the unit directory.
state="$HOME/.fake-systemd"; mkdir -p "$state"
echo "$*" >> "$state/log"
[ "$1" = "--user" ] && shift
case "$1" in
  daemon-reload) ;;
  enable|restart) [ -f "{unit_dir}/$2" ] || {{ echo "Failed to $1 unit: Unit $2 not found." >&2; exit 5; }}
                  if [ "$1" = enable ]; then touch "$state/$2.enabled"; else touch "$state/$2.active"; fi ;;
  is-enabled) if [ -e "$state/$2.enabled" ]; then echo enabled; else echo disabled; exit 1; fi ;;
  is-active) if [ -e "$state/$2.active" ]; then echo active; else echo inactive; exit 3; fi ;;
  *) echo "fake systemctl: unknown command $1" >&2; exit 1 ;;
esac
"""
MUTATING = ("daemon-reload", "enable", "restart")


class LoopbackBoard:
    """A real SSH server (asyncssh) on 127.0.0.1 whose commands run in a real shell in a temp board home."""

    def __init__(self, home: Path, client_key: "asyncssh.SSHKey") -> None:
        self.home = home
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self.authorized = asyncssh.import_authorized_keys(client_key.export_public_key().decode())
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server = None
        self.port = 0

    async def _handle(self, process: "asyncssh.SSHServerProcess") -> None:
        env = {**os.environ, "HOME": str(self.home), "PATH": f"{self.home / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
        env.pop("VIRTUAL_ENV", None)
        child = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", process.command or "true",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=self.home, env=env,
        )
        out, err = await child.communicate()
        process.stdout.write(out)
        process.stderr.write(err)
        process.exit(child.returncode)

    async def _start(self) -> None:
        self.server = await asyncssh.create_server(
            asyncssh.SSHServer, "127.0.0.1", 0,
            server_host_keys=[self.host_key], authorized_client_keys=self.authorized,
            process_factory=self._handle, sftp_factory=True, encoding=None,
        )
        self.port = self.server.sockets[0].getsockname()[1]

    def start(self) -> "LoopbackBoard":
        """Serve on a free loopback port."""
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=30)
        return self

    def stop(self) -> None:
        """Close the server and its loop."""
        async def close() -> None:
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    def known_hosts_line(self) -> str:
        """The known_hosts entry of this server's host key."""
        return f"[127.0.0.1]:{self.port} {self.host_key.export_public_key().decode().strip()}\n"


@pytest.fixture(scope="module")
def wheel_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wheels")


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of this checkout's files (what `git ls-files` lists), so that edits made meanwhile don't move the wheel."""
    copy = tmp_path_factory.mktemp("checkout")
    for name in source_files(REPO_ROOT):
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, copy / name)
    return copy


@pytest.fixture(scope="module")
def wheel(snapshot: Path, wheel_cache: Path) -> Path:
    """The real wheel of this checkout, built once for the module."""
    return build_wheel(snapshot, wheel_cache)


@pytest.fixture()
def board(tmp_path: Path):
    """A loopback SSH board, the client key, known_hosts and a rig.toml naming it."""
    home = tmp_path / "board-home"
    (home / "bin").mkdir(parents=True)
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    key_file = tmp_path / "id_ed25519"
    client_key.write_private_key(key_file)
    server = LoopbackBoard(home, client_key).start()
    systemctl = home / "bin" / "systemctl"
    systemctl.write_text(FAKE_SYSTEMCTL.format(unit_dir=home / ".config/systemd/user"))
    systemctl.chmod(0o755)
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(server.known_hosts_line())
    rig = tmp_path / "rig.toml"
    rig.write_text(f"""
[host]
scheduler = "tcp://127.0.0.1:8786"

[[boards]]
name = "pi-01"
host = "tester@127.0.0.1"
ssh_port = {server.port}
ssh_key = "{key_file}"

[[sensors]]
name = "pi-01-supply"
kind = "emulated-ina219"
runs_on = "127.0.0.1:8751"
measures = "pi-01"
rate_hz = 500
params = {{ address = 0x41, shunt_ohms = 0.1 }}
""")
    yield {"home": home, "server": server, "rig": rig, "known_hosts": known_hosts, "key": key_file, "tmp": tmp_path}
    server.stop()


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("deploy")(deploy_command)
    return app


def _cli(args: list[str]):
    return CliRunner().invoke(_app(), args)


def _error(args: list[str]) -> str:
    """The one-line BadParameter message a command raises (the `edgetran` entry point exits 2 with it)."""
    command = typer.main.get_command(_app())
    with pytest.raises(typer.BadParameter) as caught:
        command.main(args=args, prog_name="deploy", standalone_mode=False)
    message = caught.value.message
    assert "\n" not in message
    return message


def _deploy(board: dict, *extra: str):
    return _cli(["pi-01", "--rig", str(board["rig"]), "--known-hosts", str(board["known_hosts"]), *extra])


def _log(home: Path) -> list[str]:
    path = home / ".fake-systemd" / "log"
    return path.read_text().splitlines() if path.exists() else []


def _mutations(lines: list[str]) -> list[str]:
    return [line.removeprefix("--user ") for line in lines if line.removeprefix("--user ").split()[0] in MUTATING]


def test_wheel_is_cached_by_content_and_ships_the_unit_templates(snapshot: Path, wheel: Path, wheel_cache: Path):
    built = wheel.stat().st_mtime_ns
    assert build_wheel(snapshot, wheel_cache) == wheel  # same sources: the cached wheel
    assert wheel.stat().st_mtime_ns == built  # not rebuilt (a build writes the wheel anew)
    assert {"pyproject.toml", "firmware_host/deploy/ssh.py", "device_runners/systemd/edgetran-worker.service"} <= set(source_files(REPO_ROOT))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"device_runners/systemd/edgetran-worker.service", "sensors/systemd/edgetran-sensor-daemon.service", "firmware_host/deploy/ssh.py"} <= names
    assert default_source() == REPO_ROOT


def test_deploy_installs_for_real_then_changes_nothing(board: dict, snapshot: Path, wheel_cache: Path):
    home: Path = board["home"]
    args = ["--user", "--systemctl", "systemctl", "--pip-args", "--no-deps --no-index", "--source", str(snapshot), "--wheel-cache", str(wheel_cache), "--json"]
    first = _deploy(board, *args)
    assert first.exit_code == 0, first.output
    report = json.loads(first.output)
    assert report["changed"] and not report["dry_run"]
    root = home / "edgetran"
    # Every file is on the board with the hash the report promised.
    for entry in report["files"]:
        path = Path(entry["path"])
        assert path.is_relative_to(home), path
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], path
    # The venv is real and holds this checkout's wheel.
    python = root / "venv" / "bin" / "python"
    probe = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m, importlib.util as u; print(m.version('edgetran'), u.find_spec('firmware_host.deploy') is not None)"],
        capture_output=True, text=True, timeout=60,
    )
    assert probe.stdout.split() == ["0.1.0", "True"], probe.stderr
    assert "edgetran-0.1.0-py3-none-any.whl[runner]" in (root / "venv" / "edgetran-install.txt").read_text()
    # The units: a user unit (no User=, default.target), the worker's exact command line.
    units = home / ".config" / "systemd" / "user"
    worker = (units / "edgetran-worker-pi-01.service").read_text()
    assert f'ExecStart={root}/venv/bin/dask worker tcp://127.0.0.1:8786 --resources "board-pi-01=1" --nthreads 1 --name pi-01\n' in worker
    assert "User=" not in worker and "WantedBy=default.target" in worker
    daemon = (units / "edgetran-sensor-daemon.service").read_text()
    assert f"ExecStart={root}/venv/bin/python -m sensors sensor daemon --config {root}/etc/sensor-daemon.toml\n" in daemon
    assert "AmbientCapabilities" not in daemon and "Group=" not in daemon
    from sensors.cli import load_daemon_config

    config = load_daemon_config(root / "etc" / "sensor-daemon.toml")
    assert config["daemon"]["port"] == 8751 and config["daemon"]["host"] == "127.0.0.1"  # no token: loopback
    assert config["sensors"] == [{"kind": "emulated-ina219", "name": "pi-01-supply", "address": 0x41, "shunt_ohms": 0.1}]
    assert any("no daemon_token" in w for w in report["warnings"])
    assert _mutations(_log(home)) == [
        "daemon-reload",
        "enable edgetran-worker-pi-01.service", "restart edgetran-worker-pi-01.service",
        "enable edgetran-sensor-daemon.service", "restart edgetran-sensor-daemon.service",
    ]
    assert not (home / ".cache" / "edgetran-deploy").exists()  # staging removed
    mtimes = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}

    # A second deploy of the same checkout reads the hashes and changes nothing.
    calls = len(_log(home))
    second = _deploy(board, *args[:-1])
    assert second.exit_code == 0, second.output
    assert "up to date, nothing changed" in second.output
    assert _mutations(_log(home)[calls:]) == []
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} == mtimes

    # A new scheduler changes the worker unit only: no pip, no daemon restart.
    third = _deploy(board, *args[:-1], "--scheduler", "tcp://127.0.0.1:8799", "--json")
    assert third.exit_code == 0, third.output
    changed = [f["path"] for f in json.loads(third.output)["files"] if f["action"] == "update"]
    assert changed == [str(units / "edgetran-worker-pi-01.service")]
    assert not any("pip" in s["what"] for s in json.loads(third.output)["steps"])
    assert _mutations(_log(home)[calls:]) == ["daemon-reload", "restart edgetran-worker-pi-01.service"]
    assert "tcp://127.0.0.1:8799" in (units / "edgetran-worker-pi-01.service").read_text()


def test_dry_run_reads_hashes_and_writes_nothing(board: dict, wheel: Path):
    root = board["tmp"] / "opt-edgetran"
    unit_dir = board["tmp"] / "etc-systemd"
    result = _deploy(board, "--wheel", str(wheel), "--deploy-root", str(root), "--unit-dir", str(unit_dir), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dry run, would update 5 of 5 files" in result.output
    assert f"would run  python3 -m venv {root}/venv" in result.output
    assert f"update {unit_dir}/edgetran-worker-pi-01.service" in result.output
    assert "systemctl enable edgetran-worker-pi-01.service" in result.output
    assert not root.exists() and not unit_dir.exists() and _log(board["home"]) == [
        "is-enabled edgetran-worker-pi-01.service", "is-active edgetran-worker-pi-01.service",
        "is-enabled edgetran-sensor-daemon.service", "is-active edgetran-sensor-daemon.service",
    ]


def test_bad_input_is_one_line_exit_2(board: dict, wheel: Path, tmp_path: Path):
    common = ["--wheel", str(wheel), "--no-systemctl"]
    pi = ["pi-01", "--rig", str(board["rig"]), *common]
    trusted = ["--known-hosts", str(board["known_hosts"])]
    assert _cli(["nope", "--rig", str(board["rig"]), *common]).exit_code == 2
    assert "no board or sensor 'nope'" in _error(["nope", "--rig", str(board["rig"]), *common])
    assert "host = 'virtual'" in _error(["virtual-rpi4", *common])
    # Nothing listens on this port: the board is unreachable.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free_port = sock.getsockname()[1]
    assert "cannot reach the board" in _error([*pi, *trusted, "--ssh-port", str(free_port), "--connect-timeout", "5"])
    other_key = tmp_path / "other_key"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(other_key)
    assert "authentication failed" in _error([*pi, *trusted, "--ssh-key", str(other_key)])
    stranger = tmp_path / "empty_known_hosts"
    stranger.write_text("")
    assert "host key not trusted" in _error([*pi, "--known-hosts", str(stranger)])
    # A command that fails on the board: its exit status and last error line, in one line.
    (tmp_path / "a-file").write_text("")
    failing = _error([*pi, *trusted, "--deploy-root", str(tmp_path / "a-file" / "edgetran")])
    assert "failed with exit 1" in failing and "Not a directory" in failing
    bare = tmp_path / "rig-no-scheduler.toml"
    bare.write_text(board["rig"].read_text().replace('scheduler = "tcp://127.0.0.1:8786"', ""))
    assert "needs the dask scheduler address" in _error(["pi-01", "--rig", str(bare), *common])
    assert "pip-args" in _error([*pi, "--pip-args", "'unclosed"])


def test_system_units_and_remote_daemon_config():
    worker = render_worker_unit("rpi4-01", "/opt/edgetran", "tcp://bench:8786", user_mode=False, service_user="pi")
    assert "User=pi\n" in worker and "WantedBy=multi-user.target" in worker and "WorkingDirectory=%S/edgetran" in worker
    daemon = render_sensor_unit("/opt/edgetran", user_mode=False, service_user="pi")
    assert "User=pi\n" in daemon and "Group=i2c" in daemon and "AmbientCapabilities=CAP_SYS_NICE" in daemon
    spec = SensorSpec("s", "ina219", measures="b", runs_on="sensor-pi:8751", rate_hz=1000.0, params={"bus": 1})
    config = render_daemon_config([spec], 8751, token="s3cret", bind_host="sensor-pi")
    assert 'host = "sensor-pi"' in config and "allow_remote = true" in config and 'token = "s3cret"' in config
    assert "0.0.0.0" not in config  # the interface runs_on names, never every interface because a token is set
    edited = set_unit_keys("[Service]\nA=1\n\n[Install]\nB=2\n", {"Service.A": None, "Service.C": "3", "Install.B": "4"})
    assert edited == "[Service]\nC=3\n\n[Install]\nB=4\n"


def test_plan_for_a_sensor_host_only(tmp_path: Path, wheel: Path):
    rig = parse_rig({
        "boards": [{"name": "nano", "host": "ubuntu@nano.local"}],
        "sensors": [{"name": "nano-supply", "kind": "ina219", "measures": "nano", "runs_on": "sensor-pi.local:8751"}],
    })
    options = DeployOptions(sudo=True)
    target = resolve_target(rig, "nano-supply", options)
    assert target.hostname == "sensor-pi.local" and not target.worker and target.root == "/opt/edgetran"
    layout = Layout("/opt/edgetran", "/etc/systemd/system", "/home/pi/.cache/edgetran-deploy")
    files, units, _ = desired_files(target, options, layout, wheel, "pi")
    assert units == ["edgetran-sensor-daemon.service"]
    present = BoardState({f.path: f.sha256 for f in files}, venv=True, units={units[0]: ("enabled", "active")})
    assert not make_plan(files, units, present, layout, options).changed
    stale = BoardState({**present.hashes, "/opt/edgetran/etc/sensor-daemon.toml": None}, venv=True, units=present.units)
    steps = [s.what for s in make_plan(files, units, stale, layout, options).steps]
    assert "sudo -n install -D -m 0644 /home/pi/.cache/edgetran-deploy/" in steps[2]
    assert steps[-2:] == ["sudo -n systemctl restart edgetran-sensor-daemon.service", "rm -rf /home/pi/.cache/edgetran-deploy"]
