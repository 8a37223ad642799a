"""Energy windows against analytic integrals: square waves, ramps, irregular sampling, gaps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sensors.energy import counter_energy, energy_window, energy_windows, geometric_mean


def test_square_wave_energy_peak_and_mean():
    t = np.linspace(0.0, 10.0, 20001)  # 2 kHz
    p = np.where((t % 2.0) < 1.0, 5.0, 1.0)
    result = energy_window(t, p, 0.0, 10.0)
    # 5 high and 5 low seconds; each edge is bridged linearly over one 0.5 ms step.
    assert result.energy_j == pytest.approx(30.0, abs=5 * 4 * 0.0005)
    assert result.peak_power_w == 5.0
    assert result.mean_power_w == pytest.approx(3.0, abs=1e-3)
    assert result.coverage == pytest.approx(1.0)
    assert result.warnings == ()


def test_ramp_is_integrated_exactly_with_interpolated_edges():
    t = np.arange(0.0, 10.0, 0.1)
    p = 2.0 * t
    result = energy_window(t, p, 1.234, 3.456)  # edges between samples
    assert result.energy_j == pytest.approx(3.456**2 - 1.234**2, rel=1e-12)
    assert result.peak_power_w == pytest.approx(2 * 3.456)


def test_irregular_sampling_of_a_quadratic_converges():
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0.0, 1.0, 20000))
    t = np.concatenate([[0.0], t, [1.0]])
    p = 3.0 * t**2
    assert energy_window(t, p, 0.0, 1.0, interval_s=1e-3).energy_j == pytest.approx(1.0, rel=1e-5)


def test_baseline_is_subtracted_over_the_covered_time():
    t = np.linspace(0.0, 4.0, 401)
    p = np.full_like(t, 3.0)
    result = energy_window(t, p, 1.0, 3.0, baseline_w=2.0)
    assert result.energy_j == pytest.approx(2.0)
    assert result.mean_power_w == pytest.approx(1.0)


def test_gap_longer_than_three_intervals_is_bridged_warned_and_uncovered():
    t = np.concatenate([np.arange(0.0, 1.0, 0.01), np.arange(1.5, 2.0, 0.01)])
    p = np.full_like(t, 2.0)
    result = energy_window(t, p, 0.0, 1.99)
    assert result.gaps == 1
    assert any("gap" in w for w in result.warnings)
    gap = 1.5 - 0.99
    assert result.coverage == pytest.approx((1.99 - gap) / 1.99, rel=1e-9)
    assert result.energy_j == pytest.approx(2.0 * 1.99)


def test_spacing_of_three_intervals_is_not_a_gap():
    t = np.array([0.0, 0.01, 0.02, 0.05, 0.06])
    result = energy_window(t, np.ones(5), 0.0, 0.06, interval_s=0.01)
    assert result.gaps == 0 and result.coverage == pytest.approx(1.0)


def test_window_past_the_data_is_partially_covered():
    t = np.linspace(0.0, 1.0, 101)
    result = energy_window(t, np.ones_like(t), 0.5, 2.0)
    assert result.coverage == pytest.approx(0.5 / 1.5)
    assert result.energy_j == pytest.approx(0.5)
    assert "extends past" in result.warnings[0]


def test_nan_samples_are_dropped():
    t = np.linspace(0.0, 1.0, 11)
    p = np.ones_like(t)
    p[5] = math.nan
    assert energy_window(t, p, 0.0, 1.0).energy_j == pytest.approx(1.0)


def test_many_windows_equal_single_windows():
    rng = np.random.default_rng(1)
    t = np.cumsum(rng.uniform(0.0005, 0.0015, 5000))
    p = 2 + np.sin(t * 7)
    starts = rng.uniform(t[0], t[-1] - 0.5, 50)
    ends = starts + rng.uniform(0.001, 0.5, 50)
    many = energy_windows(t, p, starts, ends)
    for a, b, r in zip(starts, ends, many):
        one = energy_window(t, p, a, b)
        assert r.energy_j == pytest.approx(one.energy_j)
        assert r.peak_power_w == one.peak_power_w
        # against an independent fine-grained integral of the same interpolant
        grid = np.linspace(a, b, 20001)
        assert r.energy_j == pytest.approx(np.trapezoid(np.interp(grid, t, p), grid), rel=1e-5)


def test_window_inside_one_interval():
    t = np.array([0.0, 1.0])
    p = np.array([0.0, 2.0])
    result = energy_window(t, p, 0.25, 0.75, interval_s=1.0)
    assert result.energy_j == pytest.approx(0.5)
    assert result.samples == 0 and result.coverage == pytest.approx(1.0)
    assert result.peak_power_w == pytest.approx(1.5)


def test_bad_window_is_refused():
    with pytest.raises(ValueError, match="ends .* at or before it starts"):
        energy_window([0, 1], [1, 1], 1.0, 1.0)


def test_counter_difference():
    t = np.array([0.0, 1.0, 2.0, 3.0])
    e = np.array([10.0, 12.0, 15.0, 15.5])
    assert counter_energy(t, e, 0.5, 2.5) == pytest.approx(15.25 - 11.0)
    with pytest.raises(ValueError, match="do not span"):
        counter_energy(t, e, -1.0, 2.0)


def test_geometric_mean():
    assert geometric_mean([1.0, 4.0, 16.0]) == pytest.approx(4.0)
    with pytest.raises(ValueError):
        geometric_mean([1.0, 0.0])
