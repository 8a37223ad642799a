"""`rig deploy`'s defaults (paths, timeouts, name patterns) and its error."""

from __future__ import annotations

import re


RUNNER_EXTRA = "runner"  # the board's install: no torch, no host packages
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
