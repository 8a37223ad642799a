"""A window query on a full ring must not stall the sampler (issue #11 item 12).

The sampler's missed ticks while window queries arrive are compared with its missed
ticks in quiet phases of the same test, interleaved, so load from other processes on
the machine weighs on both alike.
"""

from __future__ import annotations

import sys
import threading
import time

import pytest

from sensors.base import Sample, Sensor, SensorInfo
from sensors.daemon import RingBuffer, SamplingDaemon, request
from sensors.energy import energy_window

RATE_HZ = 2000.0
RING_S = 60.0  # the daemon's default ring: 120,000 rows at 2 kHz
RT = 10  # SCHED_FIFO where permitted
CHANNELS = ("power_w", "bus_v", "shunt_v", "current_a")


class SteadySensor(Sensor):
    """A fresh constant reading at every poll, at almost no cost (the daemon is under test)."""

    @property
    def info(self) -> SensorInfo:
        return SensorInfo("steady", "steady", CHANNELS, 0.0001)

    def read(self) -> Sample:
        return Sample(time.monotonic(), {"power_w": 3.0, "bus_v": 5.0, "shunt_v": 0.06, "current_a": 0.6})


def fill(ring: RingBuffer, end: float, rate_hz: float) -> None:
    """Fill a ring with rows up to ``end`` at ``rate_hz`` (what a daemon holds after a minute)."""
    n = ring.capacity
    row = [3.0, 5.0, 0.06, 0.6]
    for k in range(n):
        ring.append(end - (n - k) / rate_hz, row)


def whole_ring_window(daemon: SamplingDaemon, start: float, end: float) -> float:
    """What a window query did before: copy the whole ring (under its lock), then integrate all of it."""
    t, values = daemon.rings[0].snapshot()
    return energy_window(t, values[:, 0], start, end, 0.0, daemon.interval_s).energy_j


def test_window_queries_on_a_full_ring_do_not_stall_the_sampler():
    """Missed ticks in quiet phases, under window queries, and under whole-ring queries (the old way), interleaved.

    Both kinds of query are made the same way (from this thread, not the sampler's), so
    their difference is the query's own cost; one query also goes over the socket.
    """
    switch_before = sys.getswitchinterval()
    daemon = SamplingDaemon([SteadySensor()], RATE_HZ, ring_seconds=RING_S, port=0, realtime_priority=RT)
    fill(daemon.rings[0], time.monotonic(), RATE_HZ)
    assert daemon.rings[0].count >= RING_S * RATE_HZ  # full
    missed = {"quiet": 0, "slice": 0, "whole": 0}
    queries = 0
    with daemon:
        switch_during = sys.getswitchinterval()
        now = time.monotonic()
        answer = request(("127.0.0.1", daemon.port), {"cmd": "window", "start": now - 31.0, "end": now - 30.0})
        assert answer["ok"] and answer["samples"] >= 1999 and abs(answer["energy_j"] - 3.0) < 0.01
        time.sleep(0.3)
        for _ in range(4):
            for phase in missed:
                before = daemon.stats.missed_ticks
                phase_end = time.monotonic() + PHASE_S
                while time.monotonic() < phase_end:
                    now = time.monotonic()
                    if phase == "slice":  # called directly (another thread than the sampler's), as the socket handler does
                        assert abs(daemon.window(now - 31.0, now - 30.0)["energy_j"] - 3.0) < 0.01
                        queries += 1
                    elif phase == "whole":
                        assert abs(whole_ring_window(daemon, now - 31.0, now - 30.0) - 3.0) < 0.01
                    time.sleep(QUERY_EVERY_S)
                missed[phase] += daemon.stats.missed_ticks - before
    scheduled = 4 * PHASE_S * RATE_HZ
    print(f"missed ticks of {scheduled:.0f} per phase kind: {missed} ({queries} slice queries)")
    assert queries >= 8
    # Over the socket the old daemon (the whole ring copied under the lock) missed 140-171
    # ticks under 16 queries here, 0 in quiet phases. A query still holds the GIL for its
    # own small work, which a loaded machine stretches; so the bound is 1% of the ticks,
    # or a quarter of what whole-ring queries cost in this same run, whichever is larger.
    if missed["quiet"] > 0.01 * scheduled:  # a VM whose hypervisor steals the CPU: the noise floor is above the bound
        pytest.skip(f"the sampler missed {missed['quiet']} ticks with no query at all: this machine cannot judge a 1% bound")
    extra, extra_whole = missed["slice"] - missed["quiet"], missed["whole"] - missed["quiet"]
    assert extra <= max(0.01 * scheduled, 0.25 * extra_whole)
    assert switch_during == switch_before  # the process-wide switch interval is left alone


PHASE_S = 0.75
QUERY_EVERY_S = 0.2


def test_ring_slice_matches_a_full_copy_across_the_wrap():
    ring = RingBuffer(100, 2)
    for k in range(250):  # wrapped twice and a half
        ring.append(float(k), [k, -k])
    t_all, v_all = ring.snapshot()
    assert t_all.tolist() == [float(k) for k in range(150, 250)]
    for start, end in [(140.0, 160.0), (149.5, 150.5), (199.2, 200.7), (230.0, 300.0), (10.0, 20.0), (150.0, 249.0)]:
        t, v = ring.window(start, end)
        keep = (t_all >= start) & (t_all <= end)
        inside = (t >= start) & (t <= end)
        assert t[inside].tolist() == t_all[keep].tolist()
        assert v[inside].tolist() == v_all[keep].tolist()
        # one neighbour each side (when there is one) for interpolating the edges
        first, last = t_all[0], t_all[-1]
        if start > first:
            assert t[0] < start
        if end < last:
            assert t[-1] > end
    t, _ = ring.snapshot(since=244.0)
    assert t.tolist() == [245.0, 246.0, 247.0, 248.0, 249.0]
