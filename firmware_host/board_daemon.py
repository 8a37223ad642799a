"""The sampling daemon on a board's supply: started here, or reached on a sensor host.

A rig's sensor says where its daemon runs (``runs_on``):

* ``"local"``: the host opens the sensor and runs a :class:`sensors.daemon.SamplingDaemon`
  in its own process, recording a trace under the rig's ``traces`` folder and serving
  on a loopback port (so a runner on this machine, a dask worker of a virtual board
  included, can align its clock with it). A virtual board's emulated supply follows the
  children of the process that runs its protocol (``follow_pid``).
* ``"HOST:PORT"``: a daemon already running there (``edgetran sensor daemon`` under
  systemd, recording its own trace), queried through :class:`sensors.daemon_client.DaemonClient`;
  the sensor spec's ``daemon_token`` authenticates the host.

Either way :class:`BoardDaemon` offers ``daemon`` (the query surface: ``sensors``,
``interval_s``, ``window``, ``add_event``), ``address``, ``trace`` (a path, or
``HOST:PORT:PATH`` for a trace kept on the sensor host) and ``channel``: the sensor
channel the spec's ``channel`` names, the one whose energy is integrated (through its
rail's energy counter where the sensor has one).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

LOCAL = "local"
RING_SECONDS = 900.0  # in-memory history of a local daemon: covers a long protocol run
REALTIME_PRIORITY = 10  # SCHED_FIFO priority of the sampling thread where permitted


def open_sensor(spec: Any, board: Any, follow_pid: Optional[int] = None) -> Any:
    """Open a rig sensor in this process (a virtual board's follows ``follow_pid``'s children).

    Every registered kind goes through the one factory the sensor CLI uses
    (``sensors.registry.open_sensor``): the spec's params as given, its name, and its
    rate only for kinds that convert at a chosen rate.
    """
    from firmware_host.rig import VIRTUAL_BOARD

    if spec.kind == VIRTUAL_BOARD:
        from firmware_host.virtual_rig import board_model, virtual_board_sensor

        return virtual_board_sensor(board_model(board.model or "rpi4"), spec.rate_hz, spec.name, root_pid=follow_pid)
    from sensors.registry import open_sensor as open_registered

    return open_registered(spec.kind, spec.params, name=spec.name, rate_hz=spec.rate_hz)


def energy_channel(spec: Any, info: Any) -> str:
    """The sensor channel a spec's ``channel`` names (its energy is what a profile measures); RigError if none or ambiguous."""
    from firmware_host.rig import RigError
    from sensors.energy import energy_plan

    try:
        return energy_plan(info.channels, info.counters, spec.channel, info.interval_averages).channel
    except KeyError as error:
        raise RigError(f"sensor {spec.name!r}: channel {spec.channel!r}: {error.args[0]}") from None


class BoardDaemon:
    """The daemon sampling one board's supply, for the length of a ``with`` block."""

    def __init__(self, spec: Any, board: Any, traces: str | Path, follow_pid: Optional[int] = None) -> None:
        self.spec = spec
        self.board = board
        self.sensor: Any = None
        self.local: Any = None
        if spec.runs_on == LOCAL:
            folder = Path(traces).expanduser()
            folder.mkdir(parents=True, exist_ok=True)
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
            self.trace = str(folder / f"profile-{board.name}-{stamp}.ettrace")
            self.sensor = open_sensor(spec, board, follow_pid)
            try:
                self.channel = energy_channel(spec, self.sensor.info)
            except Exception:
                self.sensor.close()
                raise
            from sensors.daemon import SamplingDaemon

            self.local = SamplingDaemon([self.sensor], spec.rate_hz, ring_seconds=RING_SECONDS, record_path=self.trace,
                                        port=0, realtime_priority=REALTIME_PRIORITY)
            self.daemon: Any = self.local
            self.token: Optional[str] = None
        else:
            from sensors.daemon_client import DaemonClient, parse_address

            self.token = spec.daemon_token
            self.daemon = DaemonClient(parse_address(spec.runs_on), token=self.token)
            if not any(s.info.name == spec.name for s in self.daemon.sensors):
                names = ", ".join(s.info.name for s in self.daemon.sensors)
                raise ValueError(f"sensor {spec.name!r}: the daemon at {spec.runs_on} has no such sensor (it has {names})")
            self.channel = energy_channel(spec, next(s.info for s in self.daemon.sensors if s.info.name == spec.name))
            record = self.daemon.status().get("record_path")
            self.trace = f"{spec.runs_on}:{record}" if record else f"{spec.runs_on}:(not recording)"

    @property
    def address(self) -> tuple[str, int]:
        """Where runners reach the daemon (for clock alignment)."""
        if self.local is not None:
            return self.local.host, self.local.port
        return self.daemon.address

    def __enter__(self) -> "BoardDaemon":
        if self.local is not None:
            self.local.start()
            time.sleep(0.2)  # a few conversions before the first marker
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sampler(self) -> dict | None:
        """The local sampler's timing figures (None for a remote daemon)."""
        if self.local is None:
            return None
        stats = self.local.stats
        return {"on_time_fraction": stats.on_time_fraction, "scheduling": self.local.scheduling, "errors": stats.errors}

    def close(self) -> None:
        """Stop a local daemon and its sensor (a remote daemon keeps running)."""
        if self.local is not None:
            self.local.stop()
            activity = getattr(self.sensor, "activity", None)
            if activity is not None:
                activity.stop()
            self.sensor.close()
            self.local = None
