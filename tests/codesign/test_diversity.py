"""Model categories (deep/shallow x wide/narrow) and the diversity report of Figs. 4-5."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.architecture import Architecture
from codesign.diversity import CATEGORIES, category_counts, diversity_report, median_heads, model_category, pairwise_distances


def _model(heads: list[int]) -> Architecture:
    return Architecture.from_dict(
        {
            "l": len(heads),
            "o": [["sa_sdp_%d" % (256 // n)] * n for n in heads],
            "h": [256] * len(heads),
            "f": [[512]] * len(heads),
        }
    )


@pytest.mark.parametrize(
    "heads, category",
    [
        ([2, 2], "shallow_narrow"),
        ([12, 12, 12, 12, 12, 12], "shallow_wide"),
        ([4] * 8, "deep_narrow"),
        ([8] * 8, "deep_wide"),
        ([2, 4, 4, 2, 2, 2, 4], "shallow_narrow"),
        ([12, 2], "shallow_wide"),  # upper median 12
        ([4, 8], "shallow_wide"),  # upper median 8 (numpy's median would say 6: narrow)
        ([2, 4, 8, 12], "shallow_wide"),
        ([2, 2, 12, 2], "shallow_narrow"),  # median, not maximum
    ],
)
def test_category_definitions(heads, category):
    assert model_category(_model(heads)) == category


def test_categories_match_every_published_label(space, published_entries):
    for label, record in published_entries:
        arch = Architecture.from_dict(record["model_dict"])
        assert model_category(arch) == record["model_type"], label


def test_median_heads_is_upper_median():
    assert median_heads(_model([2, 4, 8, 12])) == 8


def test_category_counts_have_all_keys():
    counts = category_counts([_model([2, 2])])
    assert list(counts) == list(CATEGORIES)
    assert counts["shallow_narrow"] == 1 and sum(counts.values()) == 1


def test_pairwise_distances_scale_each_entry_by_its_bound(space):
    a = np.zeros(37, dtype=int)
    b = a.copy()
    b[3] = 21804  # full range of one multi-head index
    c = a.copy()
    c[0] = 5  # full range of the depth index
    distances = pairwise_distances(np.array([a, b, c]), space)
    assert distances.tolist() == pytest.approx([1.0, 1.0, np.sqrt(2.0)])


def test_report_shape_and_consistency(space):
    report = diversity_report(n=64, seed=4, space=space)
    assert report["n"] == 64 and report["seed"] == 4 and report["stratified"] is True
    assert set(report["methods"]) == {"sobol", "lhs", "halton", "hammersly", "random"}
    for row in report["methods"].values():
        q1, q2, q3 = row["distance_quartiles"]
        assert 0 < row["distance_min"] <= q1 <= q2 <= q3 <= row["distance_max"]
        assert sum(row["categories"].values()) == 64
        assert row["categories"]["deep_narrow"] + row["categories"]["shallow_narrow"] == 32
    assert diversity_report(n=64, seed=4, space=space) == report


def test_low_discrepancy_samplers_balance_depth_with_16_samples(space):
    """Fig. 5: Sobol and LHS give all four categories equally often (8 points stratify [0, 1) in eighths)."""
    for seed in range(5):
        report = diversity_report(n=16, seed=seed, methods=["sobol", "lhs"], space=space)
        for row in report["methods"].values():
            assert set(row["categories"].values()) == {4}
