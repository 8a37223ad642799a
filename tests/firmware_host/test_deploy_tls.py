"""#11 item 13: the rig's TLS for dask (a real scheduler and worker on loopback), daemon binding, --insecure.

A real ``dask scheduler`` runs the command line of ``edgetran rig scheduler`` and a real
``dask worker`` the exact command line ``rig deploy`` writes into the board's unit, with the
certificates deploy would upload; the host's client connects with the client certificate.
A peer without a certificate from the rig CA is refused by the scheduler.
"""

from __future__ import annotations

import os
import shlex
import socket
import ssl
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("cryptography", reason="the host extra's cryptography makes the rig certificates")

from firmware_host.deploy import (  # noqa: E402
    DeployOptions, Layout, client_identity, desired_files, render_daemon_config, resolve_target, scheduler_argv,
    worker_identity,
)
from firmware_host.deploy.layout import TLS_FILES, worker_command  # noqa: E402
from firmware_host.deploy.settings import DeployError  # noqa: E402
from firmware_host.deploy.tls import rig_tls_dir  # noqa: E402
from firmware_host.dispatch import InsecureScheduler, check_scheduler_address, make_dispatch  # noqa: E402
from firmware_host.rig import SensorSpec, parse_rig  # noqa: E402

BOARD = "pi-01"
START_TIMEOUT_S = 90.0  # a scheduler and a worker starting on a loaded 2-core machine


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _wait_listening(port: int, process: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"scheduler exited {process.returncode}: {process.stderr.read()[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError("scheduler did not listen in time")


@pytest.fixture()
def rig_file(tmp_path: Path) -> Path:
    rig = tmp_path / "lab" / "rig.toml"
    rig.parent.mkdir()
    rig.write_text(f'[host]\nscheduler = "tls://127.0.0.1:8786"\n\n[[boards]]\nname = "{BOARD}"\nhost = "pi@127.0.0.1"\n')
    return rig


def test_keys_are_0600_and_reused(rig_file: Path):
    folder = rig_tls_dir(rig_file)
    assert folder == rig_file.parent / "rig.tls"
    first = worker_identity(folder, BOARD, "127.0.0.1")
    client = client_identity(folder)
    assert _mode(folder) == 0o700
    for path in (first.key, client.key, folder / "ca.key"):
        assert _mode(path) == 0o600, path
    again = worker_identity(folder, BOARD, "127.0.0.1")
    assert again.key.read_bytes() == first.key.read_bytes() and again.cert.read_bytes() == first.cert.read_bytes()  # a redeploy uploads the same bytes


def test_tls_scheduler_and_deployed_worker_refuse_a_peer_without_the_rig_certificate(rig_file: Path, tmp_path: Path):
    from distributed import Client

    folder = rig_tls_dir(rig_file)
    port = _free_port()
    address = f"tls://127.0.0.1:{port}"
    # The board side, laid out as deploy lays it out: ROOT/etc/tls/{ca,worker}.pem, worker.key; ROOT/venv/bin/dask.
    root = tmp_path / "board" / "edgetran"
    (root / "etc" / "tls").mkdir(parents=True)
    (root / "venv" / "bin").mkdir(parents=True)
    (root / "venv" / "bin" / "dask").symlink_to(Path(sys.executable).parent / "dask")
    identity = worker_identity(folder, BOARD, "127.0.0.1")
    for name, source in ((TLS_FILES["ca"], identity.ca), (TLS_FILES["cert"], identity.cert), (TLS_FILES["key"], identity.key)):
        (root / "etc" / "tls" / name).write_bytes(source.read_bytes())
    os.chmod(root / "etc" / "tls" / TLS_FILES["key"], 0o600)
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    scheduler = subprocess.Popen(scheduler_argv(address, str(rig_file)), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    worker = None
    try:
        _wait_listening(port, scheduler, START_TIMEOUT_S)
        command = worker_command(BOARD, str(root), address, str(root / "etc" / "tls"))
        worker = subprocess.Popen(shlex.split(command), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=tmp_path)
        dispatch = make_dispatch(address, rig_source=str(rig_file), connect_timeout_s=30.0)  # the host's client certificate
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not dispatch.workers_of(BOARD):
                assert time.monotonic() < deadline, "the deployed worker never joined over TLS"
                time.sleep(0.3)
            assert all(w.startswith("tls://") for w in dispatch.workers_of(BOARD))
            pid, _ = dispatch.worker_process(type("B", (), {"name": BOARD})())  # a task ran on the board's worker, over TLS
            assert pid not in (os.getpid(), scheduler.pid)
        finally:
            dispatch.close()
        # A raw TLS client that trusts the rig CA but has no certificate of its own: the scheduler refuses it.
        context = ssl.create_default_context(cafile=str(identity.ca))
        context.check_hostname = False
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
                with context.wrap_socket(raw) as tls:
                    tls.sendall(b"\0" * 16)
                    assert tls.recv(1) != b"", "answered without a client certificate"
                    raise AssertionError("unreachable")
        # A client with a certificate from another rig's CA is refused too.
        stranger = client_identity(tmp_path / "other-rig.tls").security("client")
        with pytest.raises((OSError, TimeoutError)):
            Client(address, security=stranger, timeout=5, set_as_default=False)
        # Plain TCP to the TLS port gets nowhere.
        with pytest.raises((OSError, TimeoutError)):
            Client(f"tcp://127.0.0.1:{port}", timeout=5, set_as_default=False)
    finally:
        for process in (worker, scheduler):
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@pytest.mark.parametrize("address", ["tcp://10.0.0.7:8786", "tcp://bench-host:8786", "ws://192.168.1.2:8786"])
def test_plain_tcp_off_loopback_needs_insecure(address: str):
    with pytest.raises(InsecureScheduler, match="--insecure") as caught:
        check_scheduler_address(address)
    assert "\n" not in str(caught.value)
    check_scheduler_address(address, insecure=True)
    check_scheduler_address("tcp://127.0.0.1:8786")
    check_scheduler_address("tcp://localhost:8786")
    with pytest.raises(DeployError, match="--insecure"):
        scheduler_argv(address, "rig.toml")


def test_deploy_uploads_the_worker_identity_and_binds_the_daemon_to_its_interface(rig_file: Path, tmp_path: Path):
    rig = parse_rig({
        "host": {"scheduler": "tls://10.0.0.1:8786"},
        "boards": [{"name": BOARD, "host": "pi@10.0.0.21"}],
        "sensors": [{"name": "s", "kind": "ina219", "measures": BOARD, "runs_on": "10.0.0.21:8751", "daemon_token": "t0k"}],
    }, str(rig_file))
    options = DeployOptions(scheduler="tls://10.0.0.1:8786", sudo=True)
    target = resolve_target(rig, BOARD, options)
    assert target.daemon_host == "10.0.0.21"
    layout = Layout("/opt/edgetran", "/etc/systemd/system", "/home/pi/.cache/edgetran-deploy")
    wheel = tmp_path / "edgetran-0.1.0-py3-none-any.whl"
    wheel.write_bytes(b"not really a wheel")
    identity = worker_identity(rig_tls_dir(rig_file), BOARD, target.hostname)
    files, units, _ = desired_files(target, options, layout, wheel, "pi", identity)
    by_path = {f.path: f for f in files}
    key = by_path["/opt/edgetran/etc/tls/worker.key"]
    assert key.mode == 0o600 and key.owner == "pi" and key.content == identity.key.read_bytes()
    unit = by_path[f"/etc/systemd/system/edgetran-worker-{BOARD}.service"].content.decode()
    assert "dask worker tls://10.0.0.1:8786" in unit and "--tls-key /opt/edgetran/etc/tls/worker.key" in unit
    config = by_path["/opt/edgetran/etc/sensor-daemon.toml"].content.decode()
    assert 'host = "10.0.0.21"' in config and "0.0.0.0" not in config
    with pytest.raises(DeployError, match="a tls:// scheduler needs"):
        desired_files(target, options, layout, wheel, "pi", None)
    with pytest.raises(DeployError, match="--insecure"):
        resolve_target(rig, BOARD, DeployOptions(scheduler="tcp://10.0.0.1:8786"))
    assert resolve_target(rig, BOARD, DeployOptions(scheduler="tcp://10.0.0.1:8786", insecure=True)).worker
    spec = SensorSpec("s", "ina219", measures="b", runs_on="sensor-pi:8751", rate_hz=1000.0)
    assert 'host = "sensor-pi"' in render_daemon_config([spec], 8751, "t0k", "sensor-pi")


def test_every_command_taking_a_scheduler_refuses_plain_tcp_off_loopback(cli, rig_file: Path, tmp_path: Path):
    model = tmp_path / "model.json"
    model.write_text('{"l": 2, "o": [["sa_sdp_64", "sa_sdp_64"], ["sa_sdp_64", "sa_sdp_64"]], "h": [128, 128], "f": [[512], [512]]}')
    plain = "tcp://10.255.255.1:8786"
    commands = [
        ["rig", "check", "--rig", str(rig_file), "--scheduler", plain],
        ["profile", str(model), "--rig", str(rig_file), "--scheduler", plain],
        ["campaign", "run", str(model), "--name", "c", "--rig", str(rig_file), "--scheduler", plain, "--store", str(tmp_path / "db.sqlite")],
        ["rig", "deploy", BOARD, "--rig", str(rig_file), "--scheduler", plain, "--wheel", str(tmp_path / "none.whl")],
        ["rig", "scheduler", "--rig", str(rig_file), "--scheduler", plain, "--print"],
    ]
    for args in commands:
        code, out, err = cli(*args)
        assert code == 2, (args, out, err)
        assert len(err.strip().splitlines()) == 1 and "--insecure" in err and "Traceback" not in err, (args, err)
    code, out, _ = cli("rig", "scheduler", "--rig", str(rig_file), "--scheduler", plain, "--insecure", "--print")
    assert code == 0 and "--host 10.255.255.1 --port 8786 --protocol tcp" in out
    code, out, _ = cli("rig", "scheduler", "--rig", str(rig_file), "--print")
    assert code == 0 and "--host 127.0.0.1 --port 8786 --protocol tls --dashboard-address 127.0.0.1:8787 --tls-ca-file" in out
