"""A sampling daemon reached over its socket, with the same query surface as a local one.

The bench host computes energy windows and adds window events whether the daemon runs
in its own process (:class:`sensors.daemon.SamplingDaemon`) or on a sensor host on the
bench network (``edgetran sensor daemon`` under systemd). :class:`DaemonClient` answers
``sensors``, ``interval_s``, ``window(...)``, ``add_event(...)`` and ``status()`` through
the daemon's JSON-lines protocol, so the host's measurement code is the same for both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sensors.base import SensorInfo
from sensors.daemon import request


class DaemonUnavailable(ConnectionError):
    """The daemon could not be reached, refused a request or answered nonsense."""


@dataclass(frozen=True)
class RemoteSensor:
    """A sensor of a remote daemon: only its description travels."""

    info: SensorInfo


def _info(data: dict) -> SensorInfo:
    return SensorInfo(
        kind=str(data["kind"]),
        name=str(data["name"]),
        channels=tuple(data["channels"]),
        update_interval_s=float(data["update_interval_s"]),
        precision=dict(data.get("precision") or {}),
        provenance=str(data.get("provenance", "measured")),
        counters=tuple(data.get("counters") or ()),
        interval_averages=tuple(data.get("interval_averages") or ()),
        details=dict(data.get("details") or {}),
    )


def parse_address(text: str) -> tuple[str, int]:
    """``host:port`` -> (host, port); ValueError naming the text otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"daemon address {text!r}: expected HOST:PORT")
    return host.strip("[]"), int(port)


class DaemonClient:
    """A remote sampling daemon with a local daemon's query methods."""

    def __init__(self, address: tuple[str, int], token: str | None = None, timeout_s: float = 10.0) -> None:
        self.address = address
        self.host, self.port = address
        self.token = token
        self.timeout_s = timeout_s
        info = self.call({"cmd": "info"})
        self.rate_hz = float(info["rate_hz"])
        self.interval_s = 1.0 / self.rate_hz
        self.sensors = [RemoteSensor(_info(s)) for s in info["sensors"]]

    def call(self, message: dict) -> dict:
        """Send one request; return the answer (DaemonUnavailable on any failure)."""
        if self.token is not None:
            message = {**message, "token": self.token}
        where = f"sensor daemon at {self.host}:{self.port}"
        try:
            answer = request(self.address, message, timeout_s=self.timeout_s)
        except (OSError, ValueError) as error:
            raise DaemonUnavailable(f"{where}: {error}") from None
        if not isinstance(answer, dict) or not answer.get("ok"):
            error = answer.get("error", answer) if isinstance(answer, dict) else answer
            raise DaemonUnavailable(f"{where} refused {message.get('cmd')!r}: {error}")
        return answer

    def window(self, start: float, end: float, sensor: str | None = None, channel: str | None = None, baseline_w: float = 0.0) -> dict:
        """Energy figures of [start, end] (daemon clock): from the daemon's ring, or its recorded trace for a span older than the ring.

        The answer says ``source`` ("ring" / "trace"), ``coverage``, ``invalid_samples`` and
        ``peak_is_lower_bound``; where the daemon could not cover the window it carries an
        ``error`` (NaN energy when no sample covers it; coverage < 1 when the ring was too
        short and nothing was recorded). Refusing a low coverage is the caller's choice.
        """
        answer = self.call({"cmd": "window", "start": start, "end": end, "sensor": sensor, "channel": channel, "baseline_w": baseline_w})
        answer.pop("ok", None)
        return answer

    def add_event(self, kind: str, label: str = "", t: float | None = None, **extra: Any) -> float:
        """Record an event in the daemon's trace; return its time on the daemon's clock."""
        return float(self.call({"cmd": "marker", "kind": kind, "label": label, "t": t, "extra": extra})["t"])

    def status(self) -> dict:
        """The daemon's status: rates, counters, sampler (alive / died with error), recording (ok / failed, files), invalid samples."""
        answer = self.call({"cmd": "status"})
        answer.pop("ok", None)
        return answer
