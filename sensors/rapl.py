"""Intel RAPL energy counters through the Linux powercap sysfs interface.

Zones: ``/sys/class/powercap/intel-rapl:N`` (a package, or ``psys``) and their
subzones ``intel-rapl:N:M`` (``core``, ``uncore``, ``dram``), each with ``name``,
``energy_uj`` (a counter in uJ) and ``max_energy_range_uj`` (the counter's range).
AMD Zen CPUs expose the same ``intel-rapl`` control type. The ``intel-rapl-mmio``
zones read the same package counter through MMIO and are skipped (double counting).

Channels per zone: ``<zone>.energy_j`` (a cumulative counter, unwrapped) and
``<zone>.power_w`` (the counter's difference over the time between two reads).
Zone labels: a top-level zone's ``name`` (``package-0``, ``psys``); a subzone's is its
parent's label and its own name (``package-0-core``, ``package-0-dram``).

Wrap-around: the counter counts from 0 up to ``max_energy_range_uj`` and starts again
at 0, so when a reading is below the previous one the increase is
``current + (max_energy_range_uj + 1) - previous``. (The true modulus is
``max_energy_range_uj`` plus one hardware energy unit, typically 15.3 or 61 uJ, which
sysfs does not expose; the error is that unit minus 1 uJ per wrap, once every few
minutes to hours.) Two wraps between reads cannot be seen: read at least once per
``max_energy_range_uj / peak power`` (about 20 minutes at 200 W).

Update interval: the RAPL energy-status registers update about every 1 ms (Intel SDM
vol. 3B, "Platform Specific Power Management Support"); ``energy_uj`` has a 1 uJ
resolution, the hardware's energy unit is coarser.

Permissions: since Linux 5.10 ``energy_uj`` is readable by root only (CVE-2020-8694,
the PLATYPUS power side channel); the error names the file and the udev rule that
gives a group read access.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from sensors.base import EMULATED, VENDOR, Clock, Sample, Sensor, SensorConfigError, SensorError, SensorInfo
from sensors.sysfs import PathLike, read_int, read_text, under_root

KIND = "rapl"
POWERCAP_DIR = "/sys/class/powercap"
ZONE_DIR = re.compile(r"^intel-rapl:(\d+)(?::(\d+))?$")  # MSR zones only, not intel-rapl-mmio
UPDATE_INTERVAL_S = 0.001  # RAPL energy status update period, s (about 1 ms)
ENERGY_RESOLUTION_J = 1e-6  # energy_uj is in uJ
UJ_PER_J = 1_000_000
RAPL_GROUP = "edgetran"  # the bench group that the project's udev rules give read access to energy_uj
UDEV_RULE = (  # as shipped in udev/rules/60-edgetran-power.rules (a test keeps the two equal)
    'SUBSYSTEM=="powercap", ACTION=="add|change", TEST=="energy_uj", '
    f'RUN+="/bin/chgrp {RAPL_GROUP} /sys%p/energy_uj", RUN+="/bin/chmod g+r /sys%p/energy_uj"'
)
PERMISSION_HINT = (
    "energy_uj is readable by root only since Linux 5.10 (CVE-2020-8694). Run as root, or install the project's "
    "udev rules (`sudo edgetran udev install`), whose powercap rule is\n"
    f"  {UDEV_RULE}\n"
    f"add the bench user to group '{RAPL_GROUP}' (usermod -aG {RAPL_GROUP} $USER) and log in again."
)


@dataclass(frozen=True)
class RaplZone:
    """One powercap zone with an energy counter."""

    label: str  # channel prefix, e.g. "package-0" or "package-0-core"
    name: str  # the zone's `name` file
    path: Path  # the zone folder (under the injected root)
    max_energy_range_uj: int

    @property
    def energy_file(self) -> Path:
        """The cumulative energy counter, uJ."""
        return self.path / "energy_uj"


def unwrap_delta_uj(previous_uj: int, current_uj: int, max_energy_range_uj: int) -> int:
    """Counter increase from ``previous_uj`` to ``current_uj``, through at most one wrap."""
    if current_uj >= previous_uj:
        return current_uj - previous_uj
    return current_uj + (max_energy_range_uj + 1) - previous_uj


def _zone_key(folder: Path) -> tuple[int, int]:
    match = ZONE_DIR.match(folder.name)
    assert match is not None
    return int(match.group(1)), int(match.group(2)) if match.group(2) is not None else -1


def discover(root: PathLike = "/") -> list[RaplZone]:
    """The RAPL zones under ``root`` with an energy counter, packages before their subzones."""
    base = under_root(root, POWERCAP_DIR)
    if not base.is_dir():
        return []
    folders = sorted((p for p in base.iterdir() if ZONE_DIR.match(p.name) and p.is_dir()), key=_zone_key)
    names = {_zone_key(f): read_text(f / "name") for f in folders if (f / "name").exists()}
    zones = []
    for folder in folders:
        key = _zone_key(folder)
        if key not in names or not (folder / "energy_uj").exists():
            continue
        parent = (key[0], -1)
        label = names[key] if key[1] < 0 else f"{names.get(parent, f'zone-{key[0]}')}-{names[key]}"
        max_range = read_int(folder / "max_energy_range_uj")
        zones.append(RaplZone(label, names[key], folder, max_range))
    return zones


def present(root: PathLike = "/") -> bool:
    """Whether any RAPL zone exists under ``root`` (readable or not)."""
    return bool(discover(root))


class RaplSensor(Sensor):
    """RAPL zones as unwrapped energy counters plus power over consecutive reads; provenance VENDOR."""

    def __init__(
        self,
        root: PathLike = "/",
        *,
        zones: Sequence[str] | None = None,
        name: str = "rapl",
        emulated: bool = False,
        clock: Clock = time.monotonic,
    ) -> None:
        self.clock = clock
        found = discover(root)
        if not found:
            where = under_root(root, POWERCAP_DIR)
            raise SensorError(f"no RAPL zones under {where} (not an Intel/AMD CPU, or no powercap support)")
        if zones is not None:
            by_label = {z.label: z for z in found}
            missing = [z for z in zones if z not in by_label]
            if missing:
                raise SensorConfigError(f"unknown RAPL zones {missing}; found {sorted(by_label)}")
            found = [by_label[z] for z in zones]
        self.zones: tuple[RaplZone, ...] = tuple(found)
        self._last_t = self.clock()
        self._last_uj = self._read_counters()
        self._total_uj = list(self._last_uj)  # unwrapped: the first reading plus every increase since
        self._power_w = [math.nan] * len(self.zones)
        channels: list[str] = []
        precision: dict[str, float] = {}
        for zone in self.zones:
            channels += [f"{zone.label}.energy_j", f"{zone.label}.power_w"]
            precision[f"{zone.label}.energy_j"] = ENERGY_RESOLUTION_J
            precision[f"{zone.label}.power_w"] = ENERGY_RESOLUTION_J / UPDATE_INTERVAL_S  # over one update
        self._info = SensorInfo(
            kind=KIND,
            name=name,
            channels=tuple(channels),
            update_interval_s=UPDATE_INTERVAL_S,
            precision=precision,
            provenance=EMULATED if emulated else VENDOR,
            counters=tuple(f"{zone.label}.energy_j" for zone in self.zones),
            interval_averages=tuple(f"{zone.label}.power_w" for zone in self.zones),  # a difference over the last interval
            details={
                "root": str(root),
                "zones": {z.label: str(z.path) for z in self.zones},
                "max_energy_range_uj": {z.label: z.max_energy_range_uj for z in self.zones},
                "wrap": "reading below the previous one: add max_energy_range_uj + 1",
            },
        )

    @property
    def info(self) -> SensorInfo:
        """Zones as energy/power channel pairs, 1 ms update interval, uJ resolution."""
        return self._info

    def _read_counters(self) -> list[int]:
        return [read_int(zone.energy_file, permission_hint=PERMISSION_HINT) for zone in self.zones]

    def read(self) -> Sample:
        """Unwrapped energy of every zone and its mean power since the last new reading."""
        t = self.clock()
        current = self._read_counters()
        deltas = [
            unwrap_delta_uj(prev, cur, zone.max_energy_range_uj)
            for prev, cur, zone in zip(self._last_uj, current, self.zones)
        ]
        fresh = any(deltas) or t - self._last_t >= UPDATE_INTERVAL_S
        dt = t - self._last_t
        if fresh and dt > 0:
            self._power_w = [delta / UJ_PER_J / dt for delta in deltas]
            self._last_t = t
        self._total_uj = [total + delta for total, delta in zip(self._total_uj, deltas)]
        self._last_uj = current
        values: dict[str, float] = {}
        for zone, total, power in zip(self.zones, self._total_uj, self._power_w):
            values[f"{zone.label}.energy_j"] = total / UJ_PER_J
            values[f"{zone.label}.power_w"] = power
        return Sample(t, values, fresh=fresh)
