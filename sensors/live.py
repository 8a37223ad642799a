"""Live terminal plots of a running daemon's power channels (plotext inside rich.live).

Each refresh (``refresh_hz``, 8 by default) draws the last ``window_s`` seconds of every
``*power_w`` channel of every sensor, with a readout table of current, peak and mean
power over the window, the sample rate actually stored, the on-time share and errors.
The plot is downsampled to at most ``max_points`` per channel (min/max pairs per
column would be better for spikes; the maximum of each bucket is kept so peaks show).
"""

from __future__ import annotations

import math
import time

import numpy as np
import plotext as plt
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from sensors.daemon import SamplingDaemon


def _downsample_max(t: np.ndarray, y: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Keep at most ``max_points``: the maximum of each equal-count bucket (peaks stay visible)."""
    if len(t) <= max_points:
        return t, y
    edges = np.linspace(0, len(t), max_points + 1).astype(int)
    idx = np.array([a + int(np.argmax(y[a:b])) for a, b in zip(edges[:-1], edges[1:]) if b > a])
    return t[idx], y[idx]


def render(daemon: SamplingDaemon, window_s: float = 10.0, width: int = 100, height: int = 20, max_points: int = 400) -> Group:
    """One frame: the power plot and the readout table."""
    now = daemon.clock()
    plt.clf()
    plt.theme("clear")
    plt.plotsize(width, height)
    plt.title(f"power, last {window_s:g} s")
    plt.xlabel("seconds ago")
    table = Table(expand=False)
    for column in ("sensor/channel", "now W", "peak W", "mean W", "stored Hz", "provenance"):
        table.add_column(column, justify="right")
    plotted = False
    for index, sensor in enumerate(daemon.sensors):
        t, values = daemon.rings[index].snapshot(now - window_s)
        for c, channel in enumerate(daemon.channels[index]):
            if not channel.endswith("power_w"):
                continue
            y = values[:, c]
            finite = np.isfinite(y)
            label = f"{sensor.info.name}/{channel}"
            if finite.sum() >= 2:
                tx, ty = _downsample_max(t[finite] - now, y[finite], max_points)
                plt.plot(tx.tolist(), ty.tolist(), label=label)
                plotted = True
                energy = float(np.trapezoid(y[finite], t[finite]))
                span = float(t[finite][-1] - t[finite][0])
                mean = energy / span if span > 0 else math.nan
                rate = (finite.sum() - 1) / span if span > 0 else 0.0
                table.add_row(label, f"{y[finite][-1]:.3f}", f"{y[finite].max():.3f}", f"{mean:.3f}", f"{rate:.0f}", sensor.info.provenance)
            else:
                table.add_row(label, "-", "-", "-", "0", sensor.info.provenance)
    if plotted:
        plt.xlim(-window_s, 0)
    stats = daemon.stats
    footer = Text(
        f"on time {stats.on_time_fraction * 100:.2f}%   fresh {stats.fresh}   stale {stats.stale}   "
        f"errors {stats.errors}   gaps {stats.gaps}   (Ctrl-C to stop)"
    )
    return Group(Text.from_ansi(plt.build()), table, footer)


def run_live(daemon: SamplingDaemon, duration_s: float | None = None, window_s: float = 10.0, refresh_hz: float = 8.0, console: Console | None = None) -> int:
    """Show the live view until ``duration_s`` passes or Ctrl-C; return the number of frames drawn."""
    console = console or Console()
    width = max(40, min(console.width - 2, 160))
    height = max(10, min(console.height - 12, 30)) if console.height else 20
    frames = 0
    start = time.monotonic()
    period = 1.0 / refresh_hz
    with Live(render(daemon, window_s, width, height), console=console, auto_refresh=False, transient=False) as live:
        try:
            while duration_s is None or time.monotonic() - start < duration_s:
                frame_start = time.monotonic()
                live.update(render(daemon, window_s, width, height), refresh=True)
                frames += 1
                time.sleep(max(0.0, period - (time.monotonic() - frame_start)))
        except KeyboardInterrupt:
            pass
    return frames
