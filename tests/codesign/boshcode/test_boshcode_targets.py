"""Target spaces: the one-hot device space, and the interface a continuous space implements too."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from codesign.boshcode.targets import DeviceSpace, TargetSpace, TargetSpaceError, published_device_names
from codesign.published import published_root

PUBLISHED = sorted(p.name for p in (published_root() / "protran").iterdir() if (p / "dataset.json").is_file())


def test_the_published_space_lists_the_seven_platforms_then_the_rig_boards():
    space = DeviceSpace.published(["virtual-rpi4", "rig:virtual-jetson"])
    assert len(PUBLISHED) == 7
    assert space.devices == tuple(f"published:{p}" for p in PUBLISHED) + ("rig:virtual-rpi4", "rig:virtual-jetson")
    assert space.dim == 9 and space.enumerable and space.targets() == list(space.devices)
    assert published_device_names() == [f"published:{p}" for p in PUBLISHED]


def test_embedding_is_one_hot_in_list_order_and_projects_back():
    space = DeviceSpace.published(["virtual-rpi4"])
    for i, device in enumerate(space.targets()):
        vector = space.embed(device)
        assert vector.sum() == 1.0 and vector[i] == 1.0
        assert space.project(vector) == device
        assert space.key(device) == device


def test_projection_is_the_nearest_one_hot_vector_by_brute_force():
    space = DeviceSpace.published(["virtual-rpi4"])
    rng = np.random.default_rng(0)
    for vector in rng.normal(size=(200, space.dim)):
        nearest = min(space.targets(), key=lambda d: float(((space.embed(d) - vector) ** 2).sum()))
        assert space.project(vector) == nearest


def test_ties_go_to_the_first_device():
    space = DeviceSpace(["rig:a", "rig:b", "rig:c"])
    assert space.project([0.5, 0.5, 0.5]) == "rig:a"
    assert space.project([0.0, 0.7, 0.7]) == "rig:b"


def test_unknown_duplicate_or_unnamed_devices_are_refused():
    space = DeviceSpace(["rig:a", "published:cpu_rpi_b1_r1"])
    with pytest.raises(TargetSpaceError, match=r"unknown device 'rig:z' \(devices: rig:a, published:cpu_rpi_b1_r1\)"):
        space.embed("rig:z")
    assert not space.contains("rig:z") and space.contains("rig:a")
    with pytest.raises(TargetSpaceError, match="listed twice"):
        DeviceSpace(["rig:a", "rig:a"])
    with pytest.raises(TargetSpaceError, match="not named <kind>:<name>"):
        DeviceSpace(["rpi"])
    with pytest.raises(TargetSpaceError, match="at least one device"):
        DeviceSpace([])
    with pytest.raises(TargetSpaceError, match="expected 2 entries"):
        space.project([1.0, 0.0, 0.0])
    with pytest.raises(TargetSpaceError, match="NaN"):
        space.project([np.nan, 0.0])


def test_restrict_keeps_the_allowed_devices_in_order():
    space = DeviceSpace(["rig:a", "rig:b", "rig:c"])
    sub = space.restrict(["rig:c", "rig:a"])
    assert sub.devices == ("rig:a", "rig:c")
    with pytest.raises(TargetSpaceError, match="unknown device"):
        space.restrict(["rig:q"])


class _Grid(TargetSpace):
    """A continuous-vector target space (a box with integer-step axes), as ELECTOR's will be."""

    name = "grid"

    def __init__(self, steps: list[list[float]]) -> None:
        self.steps = [np.asarray(s, dtype=float) for s in steps]

    @property
    def dim(self) -> int:
        return len(self.steps)

    @property
    def enumerable(self) -> bool:
        return False

    def targets(self) -> list:
        return [tuple(float(s[0]) for s in self.steps)]

    def embed(self, target) -> np.ndarray:
        values = np.asarray(target, dtype=float)
        if values.shape != (self.dim,) or any(v not in s for v, s in zip(values, self.steps)):
            raise TargetSpaceError(f"grid: {target!r} is not a grid point")
        return values

    def project(self, vector):
        values = self._as_vector(vector)
        return tuple(float(s[np.argmin(np.abs(s - v))]) for s, v in zip(self.steps, values))

    def bounds(self):
        return np.array([s.min() for s in self.steps]), np.array([s.max() for s in self.steps])

    def key(self, target) -> str:
        return ",".join(f"{v:g}" for v in self.embed(target))


def test_a_continuous_vector_space_fits_the_interface():
    grid = _Grid([[1, 4], [0.5, 1.0, 2.0]])
    assert isinstance(grid, TargetSpace) and not grid.enumerable
    target = grid.project([3.1, 1.6])
    assert target == (4.0, 2.0) and grid.contains(target) and grid.key(target) == "4,2"
    np.testing.assert_array_equal(grid.embed(target), [4.0, 2.0])
    with pytest.raises(TargetSpaceError, match="expected 2 entries"):
        grid.project([1.0])


def test_an_incomplete_target_space_cannot_be_instantiated():
    class Partial(TargetSpace):
        name = "partial"

        def embed(self, target):
            return np.zeros(1)

    with pytest.raises(TypeError):
        Partial()


def test_the_target_module_does_not_import_torch():
    code = "import sys, codesign.boshcode.targets; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
