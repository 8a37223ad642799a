"""Clock alignment: skewed, drifting clocks behind asymmetric delays; a real daemon over TCP; window checks."""

from __future__ import annotations

import random
import socket
import socketserver
import threading
import time

import pytest

from sensors.clock_sync import (
    DEFAULT_ROUNDS,
    WARMUP_EXCHANGES,
    ClockSyncError,
    WindowTooShort,
    check_window,
    daemon_offset,
    measure_offset,
    offset_from_exchanges,
    shared_clock_offset,
)
from sensors.daemon import SamplingDaemon
from sensors.registry import create_sensor

OFFSET_S = 3600.123456  # remote clock ahead of ours by an hour and change
DRIFT = 150e-6  # remote clock runs 150 ppm fast


def bound_holds(estimate, true_offset_s: float, drift: float) -> bool:
    """The documented bound: |error| <= uncertainty * (1 + |drift|)."""
    return abs(estimate.offset_s - true_offset_s) <= estimate.uncertainty_s * (1 + abs(drift)) + 1e-12


class SimulatedLink:
    """A local clock and a remote clock (local * (1 + drift) + offset) joined by seeded asymmetric delays."""

    def __init__(self, seed: int, offset_s: float = OFFSET_S, drift: float = DRIFT, start_s: float = 10_000.0) -> None:
        self.rng = random.Random(seed)
        self.now = start_s
        self.offset_s, self.drift = offset_s, drift

    def local(self) -> float:
        return self.now

    def remote_at(self, local_s: float) -> float:
        return local_s * (1 + self.drift) + self.offset_s

    def true_offset(self, local_s: float) -> float:
        return self.remote_at(local_s) - local_s

    def remote_time(self) -> float:
        self.now += 0.004 + self.rng.expovariate(1 / 0.003)  # outbound: 4 ms floor + queueing
        value = self.remote_at(self.now)
        self.now += 0.0005 + self.rng.expovariate(1 / 0.0005)  # return: much faster
        return value


@pytest.mark.parametrize("seed", range(25))
def test_emulated_skewed_clock_estimate_is_within_its_uncertainty(seed):
    link = SimulatedLink(seed)
    estimate = measure_offset(link.remote_time, link.local)
    true = link.true_offset(estimate.at_local_s)
    assert estimate.exchanges == DEFAULT_ROUNDS
    assert bound_holds(estimate, true, DRIFT)
    # the asymmetry (4 ms out, 0.5 ms back) biases every exchange by ~+1.75 ms; the bound covers it
    assert 0.00225 <= estimate.uncertainty_s <= 0.004  # half the 4.5 ms floor, plus the least queueing
    assert estimate.to_local(estimate.to_remote(123.0)) == pytest.approx(123.0)


def test_minimum_delay_exchange_wins():
    exchanges = [(0.0, 105.0, 10.0), (20.0, 120.4, 20.2), (30.0, 135.0, 31.0)]
    estimate = offset_from_exchanges(exchanges)
    assert estimate.delay_s == pytest.approx(0.2)
    assert estimate.offset_s == pytest.approx(100.3)
    assert estimate.uncertainty_s == pytest.approx(0.1)
    assert estimate.at_local_s == pytest.approx(20.1)


@pytest.mark.parametrize(
    "exchanges, message",
    [([], "no exchanges"), ([(1.0, 5.0, 0.5)], "precedes"), ([(0.0, float("nan"), 1.0)], "non-finite")],
)
def test_bad_exchanges_are_refused(exchanges, message):
    with pytest.raises(ValueError, match=message):
        offset_from_exchanges(exchanges)


class DelayProxy(socketserver.ThreadingTCPServer):
    """A loopback TCP relay for one JSON line each way, with seeded random delays per direction."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, upstream: tuple[str, int], seed: int, out_s: tuple[float, float], back_s: tuple[float, float]) -> None:
        super().__init__(("127.0.0.1", 0), _RelayHandler)
        self.upstream, self.out_s, self.back_s = upstream, out_s, back_s
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.connections = 0  # client connections accepted
        self.requests = 0  # lines relayed

    def delay(self, bounds: tuple[float, float]) -> float:
        with self.lock:
            return self.rng.uniform(*bounds)


class _RelayHandler(socketserver.StreamRequestHandler):
    """Relays every JSON line of a client connection over one upstream connection (as the daemon serves them)."""

    def handle(self) -> None:
        proxy: DelayProxy = self.server  # type: ignore[assignment]
        with proxy.lock:
            proxy.connections += 1
        with socket.create_connection(proxy.upstream, timeout=5) as conn:
            upstream = conn.makefile("rb")
            while line := self.rfile.readline():
                with proxy.lock:
                    proxy.requests += 1
                time.sleep(proxy.delay(proxy.out_s))
                conn.sendall(line)
                reply = upstream.readline()
                time.sleep(proxy.delay(proxy.back_s))
                self.wfile.write(reply)
                self.wfile.flush()


def skewed_clock() -> float:
    return time.monotonic() * (1 + DRIFT) + OFFSET_S


def true_offset(local_s: float) -> float:
    return local_s * DRIFT + OFFSET_S


@pytest.fixture
def skewed_daemon():
    sensor = create_sensor("emulated-ina219", rate_hz=200, waveform="constant:3.0")
    with SamplingDaemon([sensor], 200.0, port=0, clock=skewed_clock) as daemon:
        yield daemon


def test_real_daemon_over_tcp_with_asymmetric_delays(skewed_daemon):
    proxy = DelayProxy(("127.0.0.1", skewed_daemon.port), seed=7, out_s=(0.003, 0.012), back_s=(0.0, 0.001))
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        estimate = daemon_offset(proxy.server_address[:2])
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert estimate.exchanges == DEFAULT_ROUNDS
    assert bound_holds(estimate, true_offset(estimate.at_local_s), DRIFT)
    assert 0.0015 <= estimate.uncertainty_s < 0.05  # at least half the 3 ms outbound floor
    assert (proxy.connections, proxy.requests) == (1, DEFAULT_ROUNDS + WARMUP_EXCHANGES)  # one connection, warm-up included


# On an idle machine, one warm loopback connection reads 0 +- ~10 us; a fresh connection per
# exchange read +45..120 us +- 70..170 us (the handshake and the new handler thread ride the
# outbound leg only). Min-delay over 64 exchanges keeps this robust to a loaded machine.
UNBIASED_ABS_S = 30e-6
TIGHT_UNCERTAINTY_S = 50e-6


def test_loopback_daemon_on_our_clock_reads_zero_offset():
    sensor = create_sensor("emulated-ina219", rate_hz=200, waveform="constant:3.0")
    with SamplingDaemon([sensor], 200.0, port=0) as daemon:  # the daemon's clock is ours: true offset 0
        estimate = daemon_offset(("127.0.0.1", daemon.port), rounds=64)
    assert abs(estimate.offset_s) < UNBIASED_ABS_S, estimate
    assert estimate.uncertainty_s < TIGHT_UNCERTAINTY_S, estimate


def test_real_daemon_over_loopback_directly(skewed_daemon):
    estimate = daemon_offset(("127.0.0.1", skewed_daemon.port), rounds=64)
    true = true_offset(estimate.at_local_s)
    assert bound_holds(estimate, true, DRIFT)
    assert abs(estimate.offset_s - true) < UNBIASED_ABS_S, (estimate, true)  # the hour-long skew, to microseconds
    assert estimate.uncertainty_s < TIGHT_UNCERTAINTY_S, estimate


def test_warm_up_exchanges_are_discarded():
    calls = []

    def remote() -> float:
        calls.append(len(calls))
        return 100.0 if len(calls) == 1 else 5.0  # the first (warm-up) answer is wildly off

    estimate = measure_offset(remote, iter(range(1000)).__next__, rounds=3)
    assert len(calls) == 3 + WARMUP_EXCHANGES and estimate.exchanges == 3
    assert estimate.offset_s == pytest.approx(5.0 - 2.5)  # the first kept exchange: t0 2, t2 3 (all delays tie)
    with pytest.raises(ValueError, match="warm-up"):
        measure_offset(remote, rounds=1, warmup=-1)


def test_one_clock_needs_no_estimate():
    estimate = shared_clock_offset()
    assert (estimate.offset_s, estimate.uncertainty_s, estimate.delay_s, estimate.exchanges) == (0.0, 0.0, 0.0, 0)


def test_unreachable_or_refusing_daemon_raises_clock_sync_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free_port = s.getsockname()[1]
    with pytest.raises(ClockSyncError, match="127.0.0.1"):
        daemon_offset(("127.0.0.1", free_port), rounds=1, timeout_s=1.0)
    sensor = create_sensor("emulated-ina219", rate_hz=200, waveform="constant:3.0")
    with SamplingDaemon([sensor], 200.0, port=0, token="s3cret") as daemon:
        with pytest.raises(ClockSyncError, match="unauthorized"):
            daemon_offset(("127.0.0.1", daemon.port), rounds=1)
        assert daemon_offset(("127.0.0.1", daemon.port), rounds=2, token="s3cret").uncertainty_s < 1.0


def test_window_long_enough_returns_the_minimum():
    assert check_window(0.5, offset_uncertainty_s=0.001, sample_interval_s=0.002) == pytest.approx(0.02)
    assert check_window(0.5, offset_uncertainty_s=0.0001, sample_interval_s=0.01) == pytest.approx(0.1)


@pytest.mark.parametrize(
    "duration_s, uncertainty_s, interval_s, cause",
    [(0.015, 0.001, 0.0011, "clock offset uncertainty"), (0.004, 0.0001, 0.0011, "sample intervals")],
)
def test_short_window_is_refused_with_the_repeats_that_fix_it(duration_s, uncertainty_s, interval_s, cause):
    with pytest.raises(WindowTooShort, match=cause) as info:
        check_window(duration_s, uncertainty_s, interval_s)
    error = info.value
    assert isinstance(error, ValueError)
    assert "\n" not in str(error) and f"{error.repeats}x" in str(error)
    assert error.required_s == pytest.approx(max(20 * uncertainty_s, 10 * interval_s))
    assert duration_s * error.repeats >= error.required_s > duration_s * (error.repeats - 1)
    check_window(duration_s * error.repeats, uncertainty_s, interval_s)  # the advice is enough


def test_window_check_refuses_nonsense():
    with pytest.raises(ValueError, match="duration"):
        check_window(0.0, 0.001, 0.001)
    with pytest.raises(ValueError, match="uncertainty"):
        check_window(1.0, float("nan"), 0.001)
