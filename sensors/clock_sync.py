"""Clock alignment: the offset between a remote clock and ours, NTP-style, with its uncertainty.

Runner markers (the board's monotonic clock) and sensor samples (the sensor daemon's
clock) come from different clocks, often on different machines. We estimate the offset
of a remote clock from a few round trips of a ``time`` query:

* ``t0``: our clock just before the query is sent;
* ``t1``: the remote clock, read somewhere while the query was being served;
* ``t2``: our clock just after the answer arrived.

Per exchange, ``offset = t1 - (t0 + t2) / 2`` and ``delay = t2 - t0``. Of all exchanges
we keep the one with the **smallest delay** (the least queueing, so the tightest bound)
and report its offset.

**Uncertainty, exactly.** If the remote read happened at our local time ``tau`` with
``t0 <= tau <= t2`` (it must: the answer cannot precede the question nor follow its own
arrival), the true offset at ``tau`` is ``t1 - tau``, so the estimate errs by
``tau - (t0 + t2) / 2``, whose magnitude is at most ``(t2 - t0) / 2``. We report
``uncertainty_s = delay_s / 2`` of the kept exchange: a hard bound, not a standard
deviation, however asymmetric the two directions of the network are. It assumes the two
clocks run at the same rate during the exchange; a relative drift ``d`` widens it to
``delay / 2 * (1 + |d|)`` (1e-4 at 100 ppm: negligible). It also ignores the resolution
of the clocks (nanoseconds for ``time.monotonic`` on Linux). The offset is that of the
instant ``at_local_s`` (the local midpoint of the kept exchange); with drifting clocks,
re-estimate around each measurement window.

**One connection, a warm-up, then the exchanges.** :func:`daemon_offset` opens *one*
TCP connection to the daemon (which serves any number of JSON-line requests on it),
sends one discarded warm-up exchange, then ``rounds`` timed ones. A fresh connection per
exchange put the handshake and the server's new handler thread on the outbound leg only:
on one machine (true offset 0) that read +77..121 us +- 113..173 us; over one warm
connection the legs are alike and the estimate is 0 +- ~12 us.

**One clock.** When the runner and the daemon read the same clock (a daemon sampling in
the host's process on ``time.monotonic`` and a runner that is a child of that process:
``CLOCK_MONOTONIC`` is one clock for the whole machine), there is nothing to estimate:
:func:`shared_clock_offset` is exactly 0 with no uncertainty and ``exchanges=0``, so
the window check is not lengthened by a bound that does not exist.

``remote = local + offset_s``: add ``offset_s`` to a local time to express it on the
remote clock (see :meth:`ClockOffset.to_remote`).

:func:`check_window` refuses a measurement window too short for the offset's uncertainty
or for the sensor's sample interval, and says how many times the runs must be repeated.
"""

from __future__ import annotations

import json
import math
import socket
import time
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

DEFAULT_ROUNDS = 16  # time queries per estimate (after the warm-up)
WARMUP_EXCHANGES = 1  # discarded first exchanges (cold caches, lazy allocation, the server thread's first wake-up)
MAX_ANSWER_BYTES = 64 * 1024  # a time answer is ~40 bytes; a longer line is not one
MIN_WINDOW_FACTOR = 20  # a window must last at least this many offset uncertainties
MIN_WINDOW_INTERVALS = 10  # ... and at least this many sensor sample intervals

Clock = Callable[[], float]  # seconds
Exchange = Callable[[], "tuple[float, float, float]"]  # one round trip: (t0 local send, t1 remote, t2 local receive)


class ClockSyncError(RuntimeError):
    """The remote clock could not be queried (refused, unreachable, malformed answer)."""


class WindowTooShort(ValueError):
    """A measurement window too short for the clock offset's uncertainty or the sample interval."""

    def __init__(self, reason: str, duration_s: float, required_s: float, repeats: int) -> None:
        super().__init__(reason)
        self.duration_s = duration_s
        self.required_s = required_s
        self.repeats = repeats  # repeat the window's runs this many times to make it long enough


@dataclass(frozen=True)
class ClockOffset:
    """An estimated clock offset (remote = local + offset_s) and its bound."""

    offset_s: float  # remote minus local, seconds
    uncertainty_s: float  # |true offset - offset_s| <= this (half the kept exchange's round trip)
    delay_s: float  # round trip of the kept exchange, seconds
    at_local_s: float  # local time (midpoint of the kept exchange) at which the offset holds
    exchanges: int  # number of exchanges considered

    def to_remote(self, local_s: float) -> float:
        """A local time expressed on the remote clock."""
        return local_s + self.offset_s

    def to_local(self, remote_s: float) -> float:
        """A remote time expressed on the local clock."""
        return remote_s - self.offset_s

    def to_dict(self) -> dict:
        """JSON form (for trace headers and the store)."""
        return asdict(self)


def offset_from_exchanges(exchanges: Sequence[tuple[float, float, float]]) -> ClockOffset:
    """The offset of the minimum-delay exchange among (t0 local send, t1 remote, t2 local receive)."""
    if not exchanges:
        raise ValueError("clock offset: no exchanges to estimate from")
    best: tuple[float, float, float] | None = None
    for t0, t1, t2 in exchanges:
        if not all(math.isfinite(v) for v in (t0, t1, t2)):
            raise ValueError(f"clock offset: non-finite time in exchange {(t0, t1, t2)}")
        if t2 < t0:
            raise ValueError(f"clock offset: receive time {t2} precedes send time {t0} (local clock not monotonic)")
        if best is None or t2 - t0 < best[2] - best[0]:
            best = (t0, t1, t2)
    assert best is not None
    t0, t1, t2 = best
    delay = t2 - t0
    return ClockOffset(offset_s=t1 - (t0 + t2) / 2, uncertainty_s=delay / 2, delay_s=delay, at_local_s=(t0 + t2) / 2, exchanges=len(exchanges))


def collect_offset(exchange: Exchange, rounds: int = DEFAULT_ROUNDS, warmup: int = WARMUP_EXCHANGES) -> ClockOffset:
    """The min-delay offset of ``rounds`` exchanges, after ``warmup`` discarded ones."""
    if rounds < 1:
        raise ValueError(f"clock offset: rounds must be at least 1, got {rounds}")
    if warmup < 0:
        raise ValueError(f"clock offset: warm-up exchanges must be at least 0, got {warmup}")
    for _ in range(warmup):
        exchange()
    return offset_from_exchanges([exchange() for _ in range(rounds)])


def measure_offset(
    remote_time: Clock, local_clock: Clock = time.monotonic, rounds: int = DEFAULT_ROUNDS, warmup: int = WARMUP_EXCHANGES
) -> ClockOffset:
    """Estimate the offset of ``remote_time`` against ``local_clock`` from ``rounds`` round trips."""

    def exchange() -> tuple[float, float, float]:
        t0 = local_clock()
        t1 = float(remote_time())
        return t0, t1, local_clock()

    return collect_offset(exchange, rounds, warmup)


def shared_clock_offset(local_clock: Clock = time.monotonic) -> ClockOffset:
    """The offset between two readers of one clock: exactly 0, no uncertainty, no exchange (``exchanges=0``)."""
    return ClockOffset(offset_s=0.0, uncertainty_s=0.0, delay_s=0.0, at_local_s=local_clock(), exchanges=0)


class DaemonTimeLink:
    """One persistent connection to a sensor daemon for ``time`` exchanges (JSON lines, one per request).

    The request's bytes are encoded before ``t0`` is read and the answer decoded after
    ``t2``, so only the socket round trip lies between the two local readings.
    """

    def __init__(self, address: tuple[str, int], token: str | None = None, timeout_s: float = 5.0, local_clock: Clock = time.monotonic) -> None:
        self.address, self.local_clock = address, local_clock
        self.where = f"sensor daemon at {address[0]}:{address[1]}"
        message: dict = {"cmd": "time"}
        if token is not None:
            message["token"] = token
        self._request = json.dumps(message).encode() + b"\n"
        try:
            self._conn = socket.create_connection(address, timeout=timeout_s)
        except OSError as error:
            raise ClockSyncError(f"{self.where}: {error}") from None
        self._conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # one small request per exchange: no coalescing
        self._reader = self._conn.makefile("rb")

    def exchange(self) -> tuple[float, float, float]:
        """One round trip: (t0 local send, t1 daemon clock, t2 local receive)."""
        try:
            t0 = self.local_clock()
            self._conn.sendall(self._request)
            reply = self._reader.readline(MAX_ANSWER_BYTES)
            t2 = self.local_clock()
        except OSError as error:
            raise ClockSyncError(f"{self.where}: {error}") from None
        if not reply:
            raise ClockSyncError(f"{self.where} closed the connection")
        try:
            answer = json.loads(reply)
        except ValueError as error:
            raise ClockSyncError(f"{self.where} sent a malformed answer: {error}") from None
        if not isinstance(answer, dict) or not answer.get("ok") or not isinstance(answer.get("t"), (int, float)):
            error = answer.get("error", answer) if isinstance(answer, dict) else answer
            raise ClockSyncError(f"{self.where} refused the time query: {error}")
        return t0, float(answer["t"]), t2

    def close(self) -> None:
        """Hang up."""
        self._reader.close()
        self._conn.close()

    def __enter__(self) -> "DaemonTimeLink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def daemon_offset(
    address: tuple[str, int],
    rounds: int = DEFAULT_ROUNDS,
    local_clock: Clock = time.monotonic,
    token: str | None = None,
    timeout_s: float = 5.0,
    warmup: int = WARMUP_EXCHANGES,
) -> ClockOffset:
    """Estimate the sensor daemon's clock offset (daemon = local + offset_s) over one connection to its socket."""
    with DaemonTimeLink(address, token, timeout_s, local_clock) as link:
        return collect_offset(link.exchange, rounds, warmup)


def check_window(
    duration_s: float,
    offset_uncertainty_s: float,
    sample_interval_s: float,
    min_factor: float = MIN_WINDOW_FACTOR,
    min_intervals: float = MIN_WINDOW_INTERVALS,
) -> float:
    """Raise WindowTooShort unless the window lasts min_factor uncertainties and min_intervals samples; return the minimum."""
    for name, value in (("offset uncertainty", offset_uncertainty_s), ("sample interval", sample_interval_s)):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"window check: {name} must be a finite non-negative number of seconds, got {value}")
    if not math.isfinite(duration_s) or duration_s <= 0:
        raise ValueError(f"window check: duration must be a positive number of seconds, got {duration_s}")
    by_clock = min_factor * offset_uncertainty_s
    by_samples = min_intervals * sample_interval_s
    required = max(by_clock, by_samples)
    if duration_s >= required:
        return required
    repeats = math.ceil(required / duration_s)
    if by_clock >= by_samples:
        why = f"{min_factor:g} x the clock offset uncertainty ({offset_uncertainty_s * 1e3:.3g} ms)"
    else:
        why = f"{min_intervals:g} sensor sample intervals ({sample_interval_s * 1e3:.3g} ms each)"
    reason = (
        f"measurement window of {duration_s * 1e3:.3g} ms is shorter than {required * 1e3:.3g} ms ({why}); "
        f"repeat the runs {repeats}x inside one window"
    )
    raise WindowTooShort(reason, duration_s, required, repeats)
