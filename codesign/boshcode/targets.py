"""Target spaces: what a transformer is co-designed *with* (an edge device, an accelerator).

BOSHCODE (EdgeTran Sec. III-C) searches pairs ``(x_TXF, x_ED)``: a transformer embedding
and a 7-d one-hot device encoding; TransCODE (Sec. III-C) runs the same optimiser with
the ELECTOR accelerator embedding as ``x_ACC``. The optimiser knows a target space only
through :class:`TargetSpace`:

* ``name``, ``dim``: what it is and how many coordinates its embedding has;
* ``embed(target)``: the target's vector; ``project(vector)``: the target whose embedding
  is nearest (Euclidean), so a gradient step in embedding space lands on a valid target;
* ``bounds()``: a box that holds every embedding (for optimisers);
* ``key(target)``: a stable string naming the target (store keys, ``allowed devices``);
* ``targets()``: the targets the space can list, and ``enumerable``: whether that list
  is the whole space. A finite space (devices) lists everything, so the optimiser can
  optimise the architecture per target and take the best (exact, no relaxation of the
  one-hot). A continuous or huge space (accelerator configurations) lists the designs it
  knows (reference points, starts) and is searched through ``project``.

:class:`DeviceSpace` is the one-hot space over named devices. Names follow the device
specifications of :mod:`codesign.protran.evaluators`: ``published:<platform>`` for the
seven platforms the authors measured (directories of ``codesign/data/published/protran``,
e.g. ``published:cpu_rpi_b1_r1``) and ``rig:<board>`` for live rig boards
(``rig:virtual-rpi4``). The order of the list is the order of the one-hot coordinates.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Hashable, Sequence

import numpy as np

from codesign.protran.evaluators import PUBLISHED_PREFIX, RIG_PREFIX
from codesign.published import list_devices


class TargetSpaceError(ValueError):
    """A target or target vector that the space does not hold."""


class TargetSpace(ABC):
    """A space of co-design targets with a vector embedding and an exact projection onto it."""

    name: str

    @property
    @abstractmethod
    def dim(self) -> int:
        """Number of coordinates of a target's embedding."""

    @property
    @abstractmethod
    def enumerable(self) -> bool:
        """Whether :meth:`targets` lists every target of the space."""

    @abstractmethod
    def targets(self) -> list:
        """The targets the space lists (all of them when :attr:`enumerable`)."""

    @abstractmethod
    def embed(self, target: Any) -> np.ndarray:
        """Embedding of a target (raises TargetSpaceError for a target outside the space)."""

    @abstractmethod
    def project(self, vector: Any) -> Any:
        """The target whose embedding is nearest to ``vector`` (Euclidean)."""

    @abstractmethod
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Box ``(lower, upper)`` holding every target's embedding."""

    @abstractmethod
    def key(self, target: Any) -> str:
        """A stable string that names the target (for stores and constraint lists)."""

    def contains(self, target: Any) -> bool:
        """Whether ``target`` is a target of this space."""
        try:
            self.embed(target)
        except TargetSpaceError:
            return False
        return True

    def _as_vector(self, vector: Any) -> np.ndarray:
        """``vector`` as a finite float array of :attr:`dim` entries, or TargetSpaceError."""
        try:
            values = np.asarray(vector, dtype=float)
        except (TypeError, ValueError):
            raise TargetSpaceError(f"{self.name}: expected a vector of {self.dim} numbers, got {vector!r}") from None
        if values.shape != (self.dim,):
            raise TargetSpaceError(f"{self.name}: expected {self.dim} entries, got shape {values.shape}")
        if not np.all(np.isfinite(values)):
            raise TargetSpaceError(f"{self.name}: cannot project a vector with NaN or infinite entries")
        return values


def published_device_names() -> list[str]:
    """``published:<platform>`` for every platform with published measurements (seven), sorted."""
    return [PUBLISHED_PREFIX + device.name for device in list_devices()]


class DeviceSpace(TargetSpace):
    """One-hot encoding over a list of named devices (``published:...``, ``rig:...``).

    ``project`` is the nearest one-hot vector: ``||v - e_i||^2 = ||v||^2 - 2 v_i + 1``, so
    it is the device of the largest coordinate (ties: the first in the list).
    """

    def __init__(self, devices: Sequence[str], name: str = "devices") -> None:
        names = [str(d).strip() for d in devices]
        if not names:
            raise TargetSpaceError(f"{name}: a device space needs at least one device")
        bad = [d for d in names if not d.partition(":")[2] or not d.partition(":")[1]]
        if bad:
            raise TargetSpaceError(
                f"{name}: device {bad[0]!r} is not named <kind>:<name> "
                f"(e.g. {PUBLISHED_PREFIX}cpu_rpi_b1_r1, {RIG_PREFIX}virtual-rpi4)"
            )
        duplicate = next((d for i, d in enumerate(names) if d in names[:i]), None)
        if duplicate is not None:
            raise TargetSpaceError(f"{name}: device {duplicate!r} is listed twice")
        self.name = name
        self._devices = tuple(names)
        self._index = {d: i for i, d in enumerate(names)}

    @classmethod
    def published(cls, boards: Sequence[str] = ()) -> "DeviceSpace":
        """The seven published platforms, then the live rig boards named in ``boards`` (``rig:`` optional)."""
        rig = [b if b.startswith(RIG_PREFIX) else RIG_PREFIX + b for b in boards]
        return cls(published_device_names() + rig, name="published+rig" if rig else "published")

    @property
    def devices(self) -> tuple[str, ...]:
        """Device names in one-hot order."""
        return self._devices

    @property
    def dim(self) -> int:
        """One coordinate per device."""
        return len(self._devices)

    @property
    def enumerable(self) -> bool:
        """A device list is finite: every target is listed."""
        return True

    def targets(self) -> list[str]:
        """Every device, in one-hot order."""
        return list(self._devices)

    def index(self, device: str) -> int:
        """One-hot position of a device."""
        try:
            return self._index[device]
        except (KeyError, TypeError):
            raise TargetSpaceError(
                f"{self.name}: unknown device {device!r} (devices: {', '.join(self._devices)})"
            ) from None

    def embed(self, target: str) -> np.ndarray:
        """The one-hot vector of a device."""
        vector = np.zeros(self.dim)
        vector[self.index(target)] = 1.0
        return vector

    def project(self, vector: Any) -> str:
        """The device whose one-hot vector is nearest: the largest coordinate (first on ties)."""
        return self._devices[int(np.argmax(self._as_vector(vector)))]

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """The unit box."""
        return np.zeros(self.dim), np.ones(self.dim)

    def key(self, target: str) -> str:
        """The device name itself."""
        self.index(target)
        return target

    def restrict(self, allowed: Sequence[Hashable]) -> "DeviceSpace":
        """The sub-space of the allowed devices (in this space's order)."""
        allowed_set = set(allowed)
        for device in allowed_set:
            self.index(device)  # type: ignore[arg-type]
        return DeviceSpace([d for d in self._devices if d in allowed_set], name=f"{self.name}[allowed]")
