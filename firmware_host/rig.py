"""The rig inventory (``rig.toml``): boards, the sensors on their supplies, how to reach them.

::

    [host]
    scheduler = "in-process"           # or "tcp://bench-host:8786" (dask), see dispatch
    traces = "~/.local/share/edgetran/traces"

    [[boards]]
    name = "rpi4-01"
    host = "pi@rpi4-01.local"          # "local" runs here; "virtual" is an emulated board
    model = "rpi4"                     # board power model (virtual boards)
    runtime = "onnxruntime"
    device = "CPU"
    batch = 1
    seq_len = 128
    cpufreq_policy = "policy0"         # optional
    ssh_user = "pi"                    # optional SSH settings of `edgetran rig deploy`
    ssh_port = 22                      #   (the user may also be given as host = "pi@...")
    ssh_key = "~/.ssh/id_ed25519"
    deploy_root = "/opt/edgetran"      # where the venv, wheel and daemon config go

    [[sensors]]
    name = "rpi4-01-supply"
    kind = "ina219"                    # any `edgetran sensor list` kind, or "virtual-board"
    runs_on = "sensor-pi.local:8751"   # its daemon's address ("local": run it in this process)
    daemon_token = "..."               # the remote daemon's shared token
    measures = "rpi4-01"               # the board whose supply it is in series with
    channel = "power_w"                # the channel integrated: "power_w", or a rail's, e.g. "VDD_IN.power_w"
    rate_hz = 1000                     # the daemon's poll rate (and the ADC's, for kinds that take one)
    min_coverage = 0.95                # share of a timed block its samples must cover (default 0.95)
    params = { bus = 1, address = 0x40, shunt_ohms = 0.1 }

A sensor's ``params`` are those its kind accepts (``edgetran sensor list`` kinds, opened
through the one factory ``sensors.registry.open_sensor``; an unknown one is refused
here). Its ``channel`` is the one whose energy is measured: on a multi-rail sensor
(INA3221, RAPL zones, NVML GPUs) name the rail (``POM_5V_GPU.power_w``); a bare
``power_w`` matches only a sensor with one power channel. Where the rail has an energy
counter (``<rail>.energy_j``), windows use it.

Validation names the key and the problem (``boards[0].batch: expected a positive
integer, got 0``). With no file, :func:`virtual_rig` is the inventory: one emulated
Raspberry Pi 4 measured by an emulated INA219, all in this process.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

RUNTIMES = ("onnxruntime", "openvino", "tflite")
VIRTUAL_BOARD = "virtual-board"  # the sensor kind of a virtual board's emulated supply (firmware_host.virtual_rig)
DEFAULT_TRACES = "~/.local/share/edgetran/traces"


class RigError(ValueError):
    """A rig file that does not describe a usable rig; the message names the key."""


@dataclass(frozen=True)
class Board:
    """A board under test."""

    name: str
    host: str = "virtual"
    model: str | None = "rpi4"
    runtime: str = "onnxruntime"
    device: str = "CPU"
    batch: int = 1
    seq_len: int = 128
    cpufreq_policy: str | None = None
    ssh_user: str | None = None  # SSH login of `rig deploy` (default: the user in host, else yours)
    ssh_port: int | None = None  # SSH port (default 22)
    ssh_key: str | None = None  # private key file (default: ssh-agent and ~/.ssh/id_*)
    deploy_root: str | None = None  # absolute or "~/..." path on the board (default: by deploy mode)

    @property
    def emulated(self) -> bool:
        """Whether the board is the virtual rig's emulation."""
        return self.host == "virtual"


@dataclass(frozen=True)
class SensorSpec:
    """A power sensor and the board whose supply it measures."""

    name: str
    kind: str
    measures: str
    runs_on: str = "local"
    channel: str = "power_w"
    rate_hz: float = 1000.0
    params: Mapping[str, Any] = field(default_factory=dict)
    daemon_token: str | None = None  # shared token of a remote daemon (runs_on = "HOST:PORT")
    min_coverage: float | None = None  # share of a timed block its samples must cover (None: firmware_host.profile.MIN_COVERAGE)


@dataclass(frozen=True)
class Rig:
    """Boards, sensors and host settings."""

    boards: tuple[Board, ...]
    sensors: tuple[SensorSpec, ...]
    scheduler: str = "in-process"
    traces: str = DEFAULT_TRACES
    source: str = "virtual rig (built in)"

    def board(self, name: str | None) -> Board:
        """A board by name, or the only/first board."""
        if name is None:
            return self.boards[0]
        for board in self.boards:
            if board.name == name:
                return board
        raise RigError(f"no board {name!r} in the rig (boards: {', '.join(b.name for b in self.boards)})")

    def sensor_for(self, board: str) -> SensorSpec:
        """The sensor measuring a board's supply."""
        for sensor in self.sensors:
            if sensor.measures == board:
                return sensor
        raise RigError(f"no sensor measures board {board!r} (add a [[sensors]] table with measures = {board!r})")

    @property
    def emulated(self) -> bool:
        """Whether every board is virtual."""
        return all(b.emulated for b in self.boards)

    def to_dict(self) -> dict:
        """JSON form (`edgetran rig show --json`)."""
        return {
            "source": self.source,
            "scheduler": self.scheduler,
            "traces": self.traces,
            "emulated": self.emulated,
            "boards": [asdict(b) for b in self.boards],
            "sensors": [{**asdict(s), "params": dict(s.params)} for s in self.sensors],
        }


def virtual_rig() -> Rig:
    """The built-in default: an emulated Raspberry Pi 4 with an emulated INA219 on its supply."""
    return Rig(
        boards=(Board("virtual-rpi4", host="virtual", model="rpi4"),),
        sensors=(SensorSpec("virtual-rpi4-supply", "virtual-board", measures="virtual-rpi4", rate_hz=1000.0),),
    )


def _check(value: Any, where: str, kind: type | tuple, what: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, kind):
        raise RigError(f"{where}: expected {what}, got {value!r}")
    return value


def _positive_int(value: Any, where: str) -> int:
    if _check(value, where, int, "a positive integer") <= 0:
        raise RigError(f"{where}: expected a positive integer, got {value!r}")
    return value


def _check_ssh_keys(entry: Mapping[str, Any], where: str) -> None:
    """Validate a board's optional deploy keys (ssh_user, ssh_port, ssh_key, deploy_root)."""
    for key in ("ssh_user", "ssh_key", "deploy_root"):
        if key in entry and not _check(entry[key], f"{where}.{key}", str, "a string").strip():
            raise RigError(f"{where}.{key}: expected a non-empty string, got {entry[key]!r}")
    if "ssh_port" in entry and not 0 < _check(entry["ssh_port"], f"{where}.ssh_port", int, "a port number") < 65536:
        raise RigError(f"{where}.ssh_port: expected a port number 1-65535, got {entry['ssh_port']!r}")
    host = str(entry.get("host", ""))
    if "ssh_user" in entry and "@" in host and host.partition("@")[0] != entry["ssh_user"]:
        raise RigError(f"{where}.ssh_user: {entry['ssh_user']!r} contradicts the user in host {entry['host']!r}")
    root = entry.get("deploy_root")
    if root is not None and not (root.startswith("/") or root.startswith("~/")):
        raise RigError(f"{where}.deploy_root: expected an absolute path or one starting with '~/', got {root!r}")


def _check_kind(kind: Any, params: Mapping[str, Any], where: str) -> None:
    """The kind is a registered sensor kind (or the virtual board) and takes every given parameter."""
    _check(kind, f"{where}.kind", str, "a sensor kind")
    if kind == VIRTUAL_BOARD:
        if params:
            raise RigError(f"{where}.params: kind {VIRTUAL_BOARD!r} takes no parameters (its board's model sets its power)")
        return
    from sensors.base import SensorConfigError
    from sensors.registry import KINDS, check_params

    if kind not in KINDS:
        raise RigError(f"{where}.kind: unknown sensor kind {kind!r} (known: {VIRTUAL_BOARD}, {', '.join(KINDS)})")
    try:
        check_params(kind, params)
    except SensorConfigError as error:
        raise RigError(f"{where}.params: {error}") from None


def parse_rig(table: Mapping[str, Any], source: str = "rig.toml") -> Rig:
    """Validate a parsed rig table; RigError names the first bad key."""
    known_top = {"host", "boards", "sensors"}
    for key in table:
        if key not in known_top:
            raise RigError(f"{key}: unknown table (a rig has [host], [[boards]] and [[sensors]])")
    host = table.get("host", {})
    _check(host, "host", dict, "a table")
    boards_raw = _check(table.get("boards", []), "boards", list, "an array of [[boards]] tables")
    if not boards_raw:
        raise RigError("boards: the rig needs at least one [[boards]] table")
    boards = []
    board_fields = set(Board.__dataclass_fields__)
    for i, entry in enumerate(boards_raw):
        where = f"boards[{i}]"
        _check(entry, where, dict, "a table")
        for key in entry:
            if key not in board_fields:
                raise RigError(f"{where}.{key}: unknown key (known: {', '.join(sorted(board_fields))})")
        if "name" not in entry:
            raise RigError(f"{where}.name: missing")
        _check(entry["name"], f"{where}.name", str, "a string")
        runtime = entry.get("runtime", "onnxruntime")
        if runtime not in RUNTIMES:
            raise RigError(f"{where}.runtime: {runtime!r} is not a runtime (one of {', '.join(RUNTIMES)})")
        for key in ("batch", "seq_len"):
            if key in entry:
                _positive_int(entry[key], f"{where}.{key}")
        _check_ssh_keys(entry, where)
        if entry.get("host", "virtual") == "virtual":
            from firmware_host.virtual_rig import board_models

            model = entry.get("model", "rpi4")
            if model not in board_models():
                raise RigError(f"{where}.model: unknown board model {model!r} (known: {', '.join(board_models())})")
        boards.append(Board(**entry))
    names = [b.name for b in boards]
    if len(set(names)) != len(names):
        raise RigError(f"boards: names must be distinct, got {names}")
    sensors = []
    sensor_fields = set(SensorSpec.__dataclass_fields__)
    for i, entry in enumerate(_check(table.get("sensors", []), "sensors", list, "an array of [[sensors]] tables")):
        where = f"sensors[{i}]"
        _check(entry, where, dict, "a table")
        for key in entry:
            if key not in sensor_fields:
                raise RigError(f"{where}.{key}: unknown key (known: {', '.join(sorted(sensor_fields))})")
        for key in ("name", "kind", "measures"):
            if key not in entry:
                raise RigError(f"{where}.{key}: missing")
        if entry["measures"] not in names:
            raise RigError(f"{where}.measures: {entry['measures']!r} is not a board of this rig (boards: {', '.join(names)})")
        if "rate_hz" in entry:
            rate = _check(entry["rate_hz"], f"{where}.rate_hz", (int, float), "a rate in Hz")
            if rate <= 0:
                raise RigError(f"{where}.rate_hz: expected a positive rate, got {rate!r}")
        if "min_coverage" in entry:
            share = _check(entry["min_coverage"], f"{where}.min_coverage", (int, float), "a share in (0, 1]")
            if not 0 < share <= 1:
                raise RigError(f"{where}.min_coverage: expected a share in (0, 1], got {share!r}")
        if "params" in entry:
            _check(entry["params"], f"{where}.params", dict, "an inline table of sensor parameters")
        _check_kind(entry["kind"], entry.get("params", {}), where)
        if "channel" in entry and not _check(entry["channel"], f"{where}.channel", str, "a channel name").strip():
            raise RigError(f"{where}.channel: expected a channel name, got {entry['channel']!r}")
        if entry.get("runs_on", "local") != "local":
            from sensors.daemon_client import parse_address

            try:
                parse_address(_check(entry["runs_on"], f"{where}.runs_on", str, "'local' or a daemon address HOST:PORT"))
            except ValueError:
                raise RigError(f"{where}.runs_on: expected 'local' or a daemon address HOST:PORT, got {entry['runs_on']!r}") from None
        sensors.append(SensorSpec(**entry))
    return Rig(
        tuple(boards),
        tuple(sensors),
        scheduler=str(host.get("scheduler", "in-process")),
        traces=str(host.get("traces", DEFAULT_TRACES)),
        source=source,
    )


def load_rig(path: str | Path | None) -> Rig:
    """The rig of a TOML file, or the virtual rig when ``path`` is None."""
    if path is None:
        return virtual_rig()
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            table = tomllib.load(handle)
    except FileNotFoundError:
        raise RigError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise RigError(f"{path}: is a directory, expected a rig.toml file") from None
    except tomllib.TOMLDecodeError as error:
        raise RigError(f"{path}: not valid TOML ({error})") from None
    return parse_rig(table, str(path))
