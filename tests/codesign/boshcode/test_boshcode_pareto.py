"""The non-dominated set and the exact hypervolume, against independent exact computations."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest

from codesign.boshcode.objective import Maxima, Measures
from codesign.boshcode.pareto import (
    ParetoError,
    hypervolume,
    measures_hypervolume,
    measures_matrix,
    non_dominated,
    pareto_front,
    reference_point,
)


def _inclusion_exclusion(points: np.ndarray, ref: np.ndarray) -> float:
    """Volume of the union of boxes [p, ref] by inclusion-exclusion over every subset."""
    total = 0.0
    for k in range(1, len(points) + 1):
        for subset in itertools.combinations(range(len(points)), k):
            corner = points[list(subset)].max(axis=0)
            total += (-1) ** (k + 1) * np.prod(np.clip(ref - corner, 0, None))
    return total


def _brute_front(points: np.ndarray) -> list[int]:
    return [
        i
        for i, p in enumerate(points)
        if not any(np.all(q <= p) and np.any(q < p) for j, q in enumerate(points) if j != i)
    ]


@pytest.mark.parametrize("m", [2, 3, 4, 5])
def test_hypervolume_equals_inclusion_exclusion_on_small_sets(m):
    rng = np.random.default_rng(m)
    for _ in range(40):
        n = int(rng.integers(1, 9))
        points = rng.uniform(size=(n, m))
        ref = rng.uniform(0.6, 1.2, size=m)  # some points beyond the reference in some objective
        assert hypervolume(points, ref) == pytest.approx(_inclusion_exclusion(points, ref), rel=1e-12, abs=1e-15)


def test_hypervolume_of_integer_points_equals_the_count_of_dominated_cells():
    """60 4-d points on an 8^4 grid: the volume is the number of unit cells some point dominates."""
    rng = np.random.default_rng(11)
    k = 8
    points = rng.integers(0, k, size=(60, 4)).astype(float)
    cells = np.stack(np.meshgrid(*[np.arange(k)] * 4, indexing="ij"), axis=-1).reshape(-1, 4)
    count = int(np.all(points[None, :, :] <= cells[:, None, :], axis=2).any(axis=1).sum())
    assert hypervolume(points, [k] * 4) == count


def test_known_two_and_three_dimensional_values():
    assert hypervolume([[1, 3], [2, 2], [3, 1]], [4, 4]) == 6.0
    assert hypervolume([[1, 3], [2, 2], [3, 1], [2.5, 2.5]], [4, 4]) == 6.0  # a dominated point adds nothing
    assert hypervolume([[0, 0]], [2, 3]) == 6.0
    assert hypervolume([[0.5, 0.5, 0.5]], [1, 1, 1]) == 0.125
    # two unit-volume boxes overlapping in a 1 x 1 x 0.5 slab
    assert hypervolume([[0, 0, 0], [0, 0, 0.5]], [1, 1, 1]) == 1.0
    assert hypervolume([[0, 1, 0], [1, 0, 0]], [2, 2, 1]) == 3.0
    assert hypervolume([[5, 5]], [4, 4]) == 0.0  # beyond the reference
    assert hypervolume(np.empty((0, 4)), [1, 1, 1, 1]) == 0.0


def test_hypervolume_does_not_depend_on_point_order_or_duplicates():
    rng = np.random.default_rng(5)
    points = rng.dirichlet(np.ones(4), size=120)
    ref = np.ones(4)
    base = hypervolume(points, ref)
    assert hypervolume(points[rng.permutation(120)], ref) == pytest.approx(base, rel=1e-12)
    assert hypervolume(np.vstack([points, points[:30]]), ref) == pytest.approx(base, rel=1e-12)


def test_a_few_hundred_four_dimensional_points_are_computed_exactly():
    """300 mutually non-dominated points (a simplex front) against the grid count on a coarsened copy."""
    rng = np.random.default_rng(2)
    points = rng.dirichlet(np.ones(4), size=300)
    assert len(non_dominated(points)) == 300
    value = hypervolume(points, np.ones(4))
    assert 0.0 < value < 1.0
    k = 6
    coarse = np.floor(points * k)
    cells = np.stack(np.meshgrid(*[np.arange(k)] * 4, indexing="ij"), axis=-1).reshape(-1, 4)
    count = int(np.all(coarse[None, :, :] <= cells[:, None, :], axis=2).any(axis=1).sum())
    assert hypervolume(coarse, [k] * 4) == count


def test_non_dominated_matches_pairwise_comparison():
    rng = np.random.default_rng(3)
    for m in (2, 3, 4):
        points = rng.integers(0, 5, size=(40, m)).astype(float)  # many ties and duplicates
        assert non_dominated(points).tolist() == _brute_front(points)


def test_equal_points_stay_in_the_front_together():
    assert non_dominated([[1, 2], [1, 2], [2, 3]]).tolist() == [0, 1]


def test_the_front_of_measures_maximises_accuracy_and_minimises_hardware():
    maxima = Maxima(latency_s=10.0, energy_j=10.0, peak_power_w=10.0)
    measures = [
        Measures(0.80, 1.0, 1.0, 1.0),
        Measures(0.70, 1.0, 1.0, 1.0),  # dominated: less accurate, same hardware
        Measures(0.70, 0.5, 1.0, 1.0),  # on the front: faster
        Measures(0.85, 2.0, 2.0, 2.0),  # on the front: most accurate
        Measures(0.60, 0.5, 1.0, 1.5),  # dominated by the third
    ]
    assert pareto_front(measures, maxima) == [0, 2, 3]
    np.testing.assert_allclose(measures_matrix(measures[:1], maxima), [[-0.8, 0.1, 0.1, 0.1]])


def test_measures_hypervolume_is_a_fraction_of_the_unit_box_with_the_stated_reference():
    maxima = Maxima(latency_s=10.0, energy_j=20.0, peak_power_w=4.0)
    np.testing.assert_array_equal(reference_point(), [0.0, 1.0, 1.0, 1.0])
    one = [Measures(0.5, 5.0, 10.0, 2.0)]
    assert measures_hypervolume(one, maxima) == 0.5**4
    perfect = [Measures(1.0, 0.0, 0.0, 0.0)]
    assert measures_hypervolume(perfect, maxima) == 1.0
    beyond = [Measures(0.9, 11.0, 1.0, 1.0)]  # slower than the maximum: no volume
    assert measures_hypervolume(beyond, maxima) == 0.0
    assert measures_hypervolume([], maxima) == 0.0


def test_bad_points_and_references_are_refused():
    with pytest.raises(ParetoError, match="NaN"):
        hypervolume([[np.nan, 1.0]], [2, 2])
    with pytest.raises(ParetoError, match="expected 2 finite values"):
        hypervolume([[1.0, 1.0]], [2, 2, 2])
    with pytest.raises(ParetoError, match=r"expected an \(n, m\) array"):
        non_dominated([[[1.0]]])


def test_the_pareto_module_does_not_import_torch():
    code = "import sys, codesign.boshcode.pareto, codesign.boshcode.objective; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
