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
    assert math.isnan(geometric_mean([1.0, 0.0]))


# -- #11 items 4 and 5: honest empty windows, one span, counters, interval averages ----------


def test_window_that_no_sample_reaches_is_nan_with_an_error_not_zero():
    t = np.linspace(0.0, 1.0, 101)
    after, = energy_windows(t, np.full_like(t, 2.0), [5.0], [6.0])
    assert math.isnan(after.energy_j) and math.isnan(after.mean_power_w) and math.isnan(after.peak_power_w)
    assert after.coverage == 0.0 and "no samples cover" in after.error
    assert after.to_dict()["error"] == after.error
    ok = energy_window(t, np.full_like(t, 2.0), 0.2, 0.4)
    assert ok.error is None and "error" not in ok.to_dict()


def test_energy_and_baseline_share_one_span():
    t = np.linspace(0.0, 1.0, 101)
    result = energy_window(t, np.full_like(t, 3.0), 0.5, 2.0, baseline_w=1.0)
    assert result.integrated_s == pytest.approx(0.5)
    assert result.energy_j == pytest.approx((3.0 - 1.0) * result.integrated_s)  # not 3 x 0.5 - 1 x 1.5


def test_counter_windows_use_the_interpolated_difference_and_say_so():
    t = np.array([0.0, 1.0, 2.0, 3.0])
    e = np.array([10.0, 12.0, 15.0, 15.5])
    p = np.array([99.0, 99.0, 99.0, 99.0])  # a power channel that disagrees: only the peak comes from it
    result = energy_window(t, p, 0.5, 2.5, counter_j=e)
    assert result.energy_method == "counter"
    assert result.energy_j == pytest.approx(15.25 - 11.0)
    assert result.peak_power_w == 99.0 and result.coverage == pytest.approx(1.0)
    assert energy_window(t, p, 0.5, 2.5).energy_method == "power_integral"


def test_counter_wrap_adds_the_modulus_and_a_reset_is_a_gap():
    t = np.arange(0.0, 5.0, 1.0)
    wrapped = np.array([90.0, 95.0, 0.0, 5.0, 10.0])  # modulus 100: 5 J per second throughout
    result = energy_window(t, None, 0.0, 4.0, counter_j=wrapped, counter_wrap_j=100.0)
    assert result.energy_j == pytest.approx(20.0) and result.gaps == 0
    reset = energy_window(t, None, 0.0, 4.0, counter_j=wrapped)
    assert reset.energy_j == pytest.approx(15.0) and reset.gaps == 1
    assert reset.coverage == pytest.approx(0.75) and any("backwards" in w for w in reset.warnings)


def test_interval_averages_are_piecewise_constant_over_the_preceding_interval():
    # powermetrics at 100 ms: 1 W over (0, 0.1], 3 W over (0.1, 0.2], 5 W over (0.2, 0.3]
    t = np.array([0.0, 0.1, 0.2, 0.3])
    p = np.array([7.0, 1.0, 3.0, 5.0])  # the first value covers time before the data: not used
    whole = energy_window(t, p, 0.0, 0.3, interval_s=0.1, interval_average=True)
    assert whole.energy_j == pytest.approx(0.1 + 0.3 + 0.5)
    part = energy_window(t, p, 0.15, 0.25, interval_s=0.1, interval_average=True)
    assert part.energy_j == pytest.approx(0.05 * 3 + 0.05 * 5)
    assert part.peak_power_w == 5.0  # the interval (0.2, 0.3] overlaps the window
    assert energy_window(t, p, 0.15, 0.25, interval_s=0.1).energy_j == pytest.approx(0.05 * 2.5 + 0.05 * 3.5)  # trapezoid differs


def test_energy_plan_prefers_the_rails_counter_and_refuses_an_ambiguous_rail():
    from sensors.energy import energy_plan, resolve_channel

    rapl = ("package-0.energy_j", "package-0.power_w", "psys.energy_j", "psys.power_w")
    plan = energy_plan(rapl, ("package-0.energy_j", "psys.energy_j"), "psys.power_w", ("psys.power_w",))
    assert (plan.method, plan.counter_channel, plan.power_channel, plan.interval_average) == ("counter", "psys.energy_j", "psys.power_w", True)
    assert energy_plan(("power_w", "bus_v"), (), "power_w").method == "power_integral"
    rails = ("VDD_IN.power_w", "VDD_CPU.power_w", "VDD_IN.bus_v")
    assert resolve_channel(rails, "VDD_CPU.power_w") == "VDD_CPU.power_w"
    with pytest.raises(KeyError, match="ambiguous"):
        resolve_channel(rails, "power_w")
    with pytest.raises(KeyError, match="neither power"):
        energy_plan(rails, (), "VDD_IN.bus_v")


def test_nominal_sample_interval_is_the_slower_of_update_and_poll():
    from sensors.energy import nominal_sample_interval

    assert nominal_sample_interval(0.1, 0.001) == 0.1
    assert nominal_sample_interval(0.0005, 0.001) == 0.001
    assert nominal_sample_interval(None, None) is None


def test_geometric_mean_is_nan_for_non_positive_values():
    assert math.isnan(geometric_mean([1.0, -2.0])) and math.isnan(geometric_mean([]))
