"""Linux cpufreq control: list policies, set governors and frequencies, restore on exit.

Reads and writes go through a :class:`SysfsAccess` object rooted at ``/`` by default.
Tests and the virtual rig use :class:`device_runners.cpufreq_emulator.EmulatedCpufreq`,
which keeps a real directory tree and applies the kernel's rules on every write
(EINVAL for a governor or speed it does not offer, min/max clamped to the hardware
limits, ``scaling_setspeed`` only under ``userspace``), so this module's code is the
same on a board and in a test: only the access object changes.

Frequencies are in kHz, as the kernel writes them. What the kernel accepted is always
read back and returned; the previous state of every touched policy is saved first and
restored by :class:`CpufreqSession` on exit, after an exception or Ctrl-C.
"""

from __future__ import annotations

import errno
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

CPUFREQ_DIR = "sys/devices/system/cpu/cpufreq"
UDEV_HINT = (
    "install the project's udev rules (`edgetran udev install`, udev/) so the `edgetran` group may write "
    "cpufreq attributes, and add the user to that group; or run as root"
)


class CpufreqError(OSError):
    """A cpufreq request that the kernel (or the permissions) refused."""


class SysfsAccess:
    """Reads and writes sysfs attributes under a root directory."""

    def __init__(self, root: str | Path = "/") -> None:
        self.root = Path(root)

    def path(self, relative: str) -> Path:
        """Absolute path of an attribute."""
        return self.root / relative

    def read(self, relative: str) -> str:
        """An attribute's text, stripped."""
        path = self.path(relative)
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            raise CpufreqError(errno.ENOENT, f"{path} does not exist") from None
        except PermissionError:
            raise CpufreqError(errno.EACCES, f"{path}: permission denied; {UDEV_HINT}") from None

    def exists(self, relative: str) -> bool:
        """Whether an attribute exists."""
        return self.path(relative).exists()

    def list(self, relative: str) -> list[str]:
        """Entries of a directory (empty when it does not exist)."""
        path = self.path(relative)
        return sorted(p.name for p in path.iterdir()) if path.is_dir() else []

    def write(self, relative: str, value: str) -> None:
        """Write an attribute, as `echo value > attribute` would."""
        path = self.path(relative)
        try:
            with open(path, "w") as handle:
                handle.write(value)
        except PermissionError:
            raise CpufreqError(errno.EACCES, f"{path}: permission denied; {UDEV_HINT}") from None
        except OSError as error:
            if error.errno == errno.EINVAL:
                raise CpufreqError(errno.EINVAL, f"{path}: the kernel refused {value!r} (invalid argument)") from None
            raise CpufreqError(error.errno, f"{path}: {error.strerror}") from None


@dataclass(frozen=True)
class PolicyState:
    """What a policy is doing now (the fields that a session saves and restores)."""

    governor: str
    min_khz: int
    max_khz: int
    setspeed_khz: int | None


@dataclass(frozen=True)
class Policy:
    """One cpufreq policy (a group of CPUs sharing a clock)."""

    name: str
    cpus: tuple[int, ...]
    governors: tuple[str, ...]
    frequencies_khz: tuple[int, ...]  # scaling_available_frequencies (may be empty: continuous range)
    hardware_min_khz: int
    hardware_max_khz: int
    state: PolicyState
    current_khz: int | None

    def to_dict(self) -> dict:
        """JSON form (for `edgetran cpufreq show --json`)."""
        data = asdict(self)
        data["cpus"] = list(self.cpus)
        data["governors"] = list(self.governors)
        data["frequencies_khz"] = list(self.frequencies_khz)
        return data


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split())


class Cpufreq:
    """The cpufreq policies of one machine (or of an emulated tree)."""

    def __init__(self, access: SysfsAccess | None = None) -> None:
        self.access = access or SysfsAccess("/")

    def _attr(self, policy: str, name: str) -> str:
        return f"{CPUFREQ_DIR}/{policy}/{name}"

    def policy_names(self) -> list[str]:
        """Policies present (policy0, policy4, ...)."""
        names = [n for n in self.access.list(CPUFREQ_DIR) if n.startswith("policy")]
        return sorted(names, key=lambda n: int(n[len("policy"):]) if n[len("policy"):].isdigit() else 0)

    def state(self, policy: str) -> PolicyState:
        """Governor, limits and (under userspace) the set speed of a policy."""
        governor = self.access.read(self._attr(policy, "scaling_governor"))
        setspeed = None
        if governor == "userspace" and self.access.exists(self._attr(policy, "scaling_setspeed")):
            text = self.access.read(self._attr(policy, "scaling_setspeed"))
            setspeed = int(text) if text.isdigit() else None
        return PolicyState(
            governor,
            int(self.access.read(self._attr(policy, "scaling_min_freq"))),
            int(self.access.read(self._attr(policy, "scaling_max_freq"))),
            setspeed,
        )

    def policy(self, name: str) -> Policy:
        """Everything about one policy."""
        if name not in self.policy_names():
            raise CpufreqError(errno.ENOENT, f"no cpufreq policy {name!r} (policies: {', '.join(self.policy_names()) or 'none'})")
        read = lambda attr: self.access.read(self._attr(name, attr))  # noqa: E731
        frequencies = _ints(read("scaling_available_frequencies")) if self.access.exists(self._attr(name, "scaling_available_frequencies")) else ()
        current = read("scaling_cur_freq") if self.access.exists(self._attr(name, "scaling_cur_freq")) else ""
        return Policy(
            name=name,
            cpus=_ints(read("affected_cpus")),
            governors=tuple(read("scaling_available_governors").split()),
            frequencies_khz=tuple(sorted(frequencies)),
            hardware_min_khz=int(read("cpuinfo_min_freq")),
            hardware_max_khz=int(read("cpuinfo_max_freq")),
            state=self.state(name),
            current_khz=int(current) if current.isdigit() else None,
        )

    def policies(self) -> list[Policy]:
        """All policies."""
        return [self.policy(name) for name in self.policy_names()]

    def set_governor(self, policy: str, governor: str) -> PolicyState:
        """Switch a policy's governor; returns what the kernel accepted."""
        info = self.policy(policy)
        if governor not in info.governors:
            raise CpufreqError(errno.EINVAL, f"{policy}: governor {governor!r} is not available (available: {', '.join(info.governors)})")
        self.access.write(self._attr(policy, "scaling_governor"), governor)
        return self.state(policy)

    def set_frequency(self, policy: str, khz: int) -> PolicyState:
        """Run a policy at ``khz``: scaling_setspeed under userspace, else clamp min = max = khz."""
        info = self.policy(policy)
        if not info.hardware_min_khz <= khz <= info.hardware_max_khz:
            raise CpufreqError(
                errno.EINVAL, f"{policy}: {khz} kHz is outside the hardware range {info.hardware_min_khz}..{info.hardware_max_khz} kHz"
            )
        if info.frequencies_khz and khz not in info.frequencies_khz:
            offered = ", ".join(str(f) for f in info.frequencies_khz)
            raise CpufreqError(errno.EINVAL, f"{policy}: {khz} kHz is not an available frequency (available: {offered})")
        if info.state.governor == "userspace":
            self.access.write(self._attr(policy, "scaling_setspeed"), str(khz))
        else:
            self.clamp(policy, khz, khz)
        return self.state(policy)

    def clamp(self, policy: str, min_khz: int, max_khz: int) -> PolicyState:
        """Limit a policy to [min, max] kHz, writing in the order the kernel accepts."""
        if min_khz > max_khz:
            raise CpufreqError(errno.EINVAL, f"{policy}: min {min_khz} kHz above max {max_khz} kHz")
        current = self.state(policy)
        # Raising: max first (so min <= max holds throughout); lowering: min first.
        if min_khz > current.max_khz:
            order = (("scaling_max_freq", max_khz), ("scaling_min_freq", min_khz))
        else:
            order = (("scaling_min_freq", min_khz), ("scaling_max_freq", max_khz))
        for attr, value in order:
            self.access.write(self._attr(policy, attr), str(value))
        return self.state(policy)

    def restore(self, policy: str, saved: PolicyState) -> PolicyState:
        """Put a policy back to a saved state."""
        self.access.write(self._attr(policy, "scaling_governor"), saved.governor)
        hardware_max = int(self.access.read(self._attr(policy, "cpuinfo_max_freq")))
        hardware_min = int(self.access.read(self._attr(policy, "cpuinfo_min_freq")))
        self.clamp(policy, hardware_min, hardware_max)  # open the range, then narrow it
        self.clamp(policy, saved.min_khz, saved.max_khz)
        if saved.governor == "userspace" and saved.setspeed_khz is not None:
            self.access.write(self._attr(policy, "scaling_setspeed"), str(saved.setspeed_khz))
        return self.state(policy)


class CpufreqSession:
    """Change policies inside a ``with`` block; their previous states come back on exit.

    Restoration runs on a normal exit, on an exception and on KeyboardInterrupt (Ctrl-C);
    it restores every touched policy even if one of them fails, then re-raises.
    """

    def __init__(self, cpufreq: Cpufreq, policies: Iterable[str] | None = None) -> None:
        self.cpufreq = cpufreq
        self.names = list(policies) if policies is not None else cpufreq.policy_names()
        self.saved: dict[str, PolicyState] = {}

    def __enter__(self) -> "CpufreqSession":
        self.saved = {name: self.cpufreq.state(name) for name in self.names}
        return self

    def set_governor(self, governor: str) -> dict[str, PolicyState]:
        """Set the governor of every policy of the session."""
        return {name: self.cpufreq.set_governor(name, governor) for name in self.names}

    def set_frequency(self, khz: int) -> dict[str, PolicyState]:
        """Run every policy of the session at ``khz``."""
        return {name: self.cpufreq.set_frequency(name, khz) for name in self.names}

    def __exit__(self, *exc: object) -> None:
        failures = []
        for name, state in self.saved.items():
            try:
                self.cpufreq.restore(name, state)
            except OSError as error:
                failures.append(f"{name}: {error}")
        if failures and exc[0] is None:
            raise CpufreqError(errno.EIO, "could not restore cpufreq state: " + "; ".join(failures))


def default_root() -> str:
    """The sysfs root: ``EDGETRAN_SYSFS_ROOT`` when set (emulated rigs), else ``/``."""
    return os.environ.get("EDGETRAN_SYSFS_ROOT", "/")
