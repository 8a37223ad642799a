"""An emulated cpufreq sysfs tree that answers writes the way the kernel does.

:meth:`EmulatedCpufreq.create` writes a real directory tree laid out like
``/sys/devices/system/cpu/cpufreq/policyN/`` (a Raspberry Pi 4 by default: one policy
for CPUs 0-3, 600 MHz to 1.5 GHz in 100 MHz steps, six governors). Writing through the
emulator applies the kernel's rules, so :mod:`device_runners.cpufreq` meets the same
refusals as on a board:

* ``scaling_governor``: a governor not in ``scaling_available_governors`` -> EINVAL;
* ``scaling_setspeed``: only under ``userspace`` (it reads ``<unsupported>`` otherwise);
  the target resolves to the lowest available frequency at or above it within the
  policy limits (CPUFREQ_RELATION_L);
* ``scaling_min_freq`` / ``scaling_max_freq``: non-integers -> EINVAL; values are clamped
  to ``cpuinfo_min/max_freq``; a min above the current max (or a max below the current
  min) -> EINVAL, as kernels before the frequency-QoS rework answered (newer kernels
  clamp instead; the driver writes in an order that satisfies both);
* ``scaling_cur_freq`` follows the governor: ``performance`` max, ``powersave`` min,
  ``userspace`` the set speed, the dynamic governors the max (a loaded CPU).

``read_only=True`` makes every write fail with EACCES, as for a user without the
udev rule.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from pathlib import Path

from device_runners.cpufreq import CPUFREQ_DIR, UDEV_HINT, CpufreqError, SysfsAccess

EMULATED_MARKER = ".edgetran-emulated"  # marks a root as an emulated tree, so the CLI applies kernel rules
RPI4_FREQUENCIES_KHZ = tuple(range(600000, 1500001, 100000))
LINUX_GOVERNORS = ("conservative", "ondemand", "userspace", "powersave", "performance", "schedutil")


@dataclass(frozen=True)
class PolicySpec:
    """How to lay out one emulated policy."""

    name: str = "policy0"
    cpus: tuple[int, ...] = (0, 1, 2, 3)
    frequencies_khz: tuple[int, ...] = RPI4_FREQUENCIES_KHZ
    governors: tuple[str, ...] = LINUX_GOVERNORS
    governor: str = "ondemand"
    extra: dict = field(default_factory=dict)


class EmulatedCpufreq(SysfsAccess):
    """Sysfs access to an emulated tree, enforcing the kernel's cpufreq rules on writes."""

    def __init__(self, root: str | Path, read_only: bool = False) -> None:
        super().__init__(root)
        self.read_only = read_only

    @classmethod
    def create(cls, root: str | Path, policies: list[PolicySpec] | None = None) -> "EmulatedCpufreq":
        """Write a fresh tree under ``root`` and return access to it."""
        access = cls(root)
        access.root.mkdir(parents=True, exist_ok=True)
        (access.root / EMULATED_MARKER).write_text("emulated cpufreq tree written by edgetran\n")
        for spec in policies or [PolicySpec()]:
            folder = access.path(f"{CPUFREQ_DIR}/{spec.name}")
            folder.mkdir(parents=True, exist_ok=True)
            low, high = min(spec.frequencies_khz), max(spec.frequencies_khz)
            files = {
                "affected_cpus": " ".join(map(str, spec.cpus)),
                "related_cpus": " ".join(map(str, spec.cpus)),
                "cpuinfo_min_freq": str(low),
                "cpuinfo_max_freq": str(high),
                "scaling_available_frequencies": " ".join(map(str, spec.frequencies_khz)) + " ",
                "scaling_available_governors": " ".join(spec.governors),
                "scaling_driver": "cpufreq-dt",
                "scaling_governor": spec.governor,
                "scaling_min_freq": str(low),
                "scaling_max_freq": str(high),
                "scaling_setspeed": "<unsupported>",
                "scaling_cur_freq": str(high),
                **spec.extra,
            }
            for name, text in files.items():
                (folder / name).write_text(text + "\n")
            access._settle(spec.name)
        return access

    # -- kernel rules ------------------------------------------------------------------

    def _get(self, policy: str, attr: str) -> str:
        return self.path(f"{CPUFREQ_DIR}/{policy}/{attr}").read_text().strip()

    def _put(self, policy: str, attr: str, value: str) -> None:
        self.path(f"{CPUFREQ_DIR}/{policy}/{attr}").write_text(value + "\n")

    def _resolve(self, policy: str, target: int) -> int:
        low, high = int(self._get(policy, "scaling_min_freq")), int(self._get(policy, "scaling_max_freq"))
        target = max(low, min(high, target))
        available = sorted(int(x) for x in self._get(policy, "scaling_available_frequencies").split())
        at_or_above = [f for f in available if low <= f <= high and f >= target]
        within = [f for f in available if low <= f <= high]
        return at_or_above[0] if at_or_above else (within[-1] if within else target)

    def _settle(self, policy: str) -> None:
        governor = self._get(policy, "scaling_governor")
        low, high = int(self._get(policy, "scaling_min_freq")), int(self._get(policy, "scaling_max_freq"))
        if governor == "userspace":
            speed_text = self._get(policy, "scaling_setspeed")
            speed = self._resolve(policy, int(speed_text) if speed_text.isdigit() else int(self._get(policy, "scaling_cur_freq")))
            self._put(policy, "scaling_setspeed", str(speed))
            current = speed
        else:
            self._put(policy, "scaling_setspeed", "<unsupported>")
            current = self._resolve(policy, low if governor == "powersave" else high)
        self._put(policy, "scaling_cur_freq", str(current))

    def write(self, relative: str, value: str) -> None:
        """Apply a write as the kernel would, or fail with its errno."""
        if self.read_only:
            self._denied(relative)
        parts = Path(relative).parts
        if len(parts) < 2 or not parts[-2].startswith("policy"):
            return super().write(relative, value)
        policy, attr = parts[-2], parts[-1]
        text = value.strip()
        if attr == "scaling_governor":
            if text not in self._get(policy, "scaling_available_governors").split():
                self._invalid(relative, value)
            self._put(policy, attr, text)
        elif attr == "scaling_setspeed":
            if self._get(policy, "scaling_governor") != "userspace" or not text.isdigit():
                self._invalid(relative, value)
            self._put(policy, attr, str(self._resolve(policy, int(text))))
        elif attr in ("scaling_min_freq", "scaling_max_freq"):
            if not text.isdigit():
                self._invalid(relative, value)
            hardware_low, hardware_high = int(self._get(policy, "cpuinfo_min_freq")), int(self._get(policy, "cpuinfo_max_freq"))
            khz = max(hardware_low, min(hardware_high, int(text)))
            if attr == "scaling_min_freq" and khz > int(self._get(policy, "scaling_max_freq")):
                self._invalid(relative, value)
            if attr == "scaling_max_freq" and khz < int(self._get(policy, "scaling_min_freq")):
                self._invalid(relative, value)
            self._put(policy, attr, str(khz))
        else:
            self._denied(relative)  # read-only attributes
        self._settle(policy)

    def _invalid(self, relative: str, value: str) -> None:
        raise CpufreqError(errno.EINVAL, f"{self.path(relative)}: the kernel refused {value!r} (invalid argument)")

    def _denied(self, relative: str) -> None:
        raise CpufreqError(errno.EACCES, f"{self.path(relative)}: permission denied; {UDEV_HINT}")
