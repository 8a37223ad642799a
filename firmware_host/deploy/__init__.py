"""`edgetran rig deploy BOARD`: install the runner, its dask worker and the sensor daemon on a board over SSH.

What lands on the board (ROOT is the board's ``deploy_root``: ``/opt/edgetran``, or
``~/edgetran`` with ``--user``; UNITS is ``/etc/systemd/system``, or
``~/.config/systemd/user`` with ``--user``)::

    ROOT/wheels/edgetran-*.whl              the wheel of this checkout (built once per content)
    ROOT/venv/                              python3 -m venv; pip install 'WHEEL[runner]'
    ROOT/venv/edgetran-install.txt          what was installed: wheel sha256, extra, pip args
    ROOT/etc/sensor-daemon.toml             when rig sensors run on this host (see below)
    ROOT/etc/tls/ca.pem worker.pem worker.key  the rig CA and this board's identity (key 0600), tls:// only
    UNITS/edgetran-worker-BOARD.service     dask worker tls://SCHEDULER --resources "board-BOARD=1"
                                            --nthreads 1 --name BOARD --tls-ca-file ... --tls-cert ... --tls-key ...
    UNITS/edgetran-sensor-daemon.service    edgetran sensor daemon --config ROOT/etc/sensor-daemon.toml

**Idempotent.** One read-only probe prints the sha256 of every file the deploy would
write (and whether the venv exists, and each unit's enabled/active state); only files
whose hash differs are uploaded, pip runs only when the install record differs, and
systemd is touched only for units that changed, whose inputs (wheel, config) changed,
or that are not enabled and active. A second deploy of the same checkout runs the probe
alone and reports "up to date".

**Dry run** connects and runs that read-only probe, then prints the plan (each file
with its local and board sha256, the commands) without writing anything.

**Who may send work.** A dask worker runs any pickled task that reaches it. With a
``tls://`` scheduler, deploy makes the rig's CA and this board's worker certificate on the
host (:mod:`firmware_host.deploy.tls`, beside rig.toml), uploads them, and the worker unit
uses them; ``edgetran rig scheduler`` runs the scheduler on the bench interface with its
own certificate, and the host's commands connect with the client certificate. A plain
``tcp://`` scheduler is accepted on loopback, elsewhere only with ``--insecure``.

**Sensors.** A rig sensor whose ``runs_on`` names this board's host (``HOST:PORT``, the
daemon's address) goes into the daemon config; the daemon binds that ``HOST`` (the
interface the host reaches it at, never all interfaces) with ``allow_remote`` and the
sensor's ``daemon_token`` (config file mode 0600), or loopback only when no token is set
(a warning says the host cannot reach it). Deploy
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

from firmware_host.deploy.settings import DeployError
from firmware_host.deploy.wheel import (
    build_wheel, default_cache_dir, default_source, source_digest, source_files,
)
from firmware_host.deploy.layout import (
    DeployOptions, Layout, RemoteFile, Target, desired_files, install_record, layout_of,
    render_daemon_config, render_sensor_unit, render_worker_unit, resolve_target, set_unit_keys,
)
from firmware_host.deploy.plan import BoardState, Plan, Step, make_plan, parse_probe, probe_script
from firmware_host.deploy.ssh import DeployReport, deploy
from firmware_host.deploy.command import deploy_command, format_report
from firmware_host.deploy.scheduler import scheduler_argv, scheduler_command
from firmware_host.deploy.tls import TLSIdentity, client_identity, rig_tls_dir, scheduler_identity, worker_identity

__all__ = [
    "BoardState",
    "DeployError",
    "DeployOptions",
    "DeployReport",
    "Layout",
    "Plan",
    "RemoteFile",
    "Step",
    "TLSIdentity",
    "Target",
    "build_wheel",
    "client_identity",
    "default_cache_dir",
    "default_source",
    "deploy",
    "deploy_command",
    "desired_files",
    "format_report",
    "install_record",
    "layout_of",
    "make_plan",
    "parse_probe",
    "probe_script",
    "render_daemon_config",
    "render_sensor_unit",
    "render_worker_unit",
    "resolve_target",
    "rig_tls_dir",
    "scheduler_argv",
    "scheduler_command",
    "scheduler_identity",
    "set_unit_keys",
    "source_digest",
    "source_files",
    "worker_identity",
]
