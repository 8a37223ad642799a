"""Samplers: valid, distinct, reproducible by seed, stratified by width."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.diversity import model_category
from codesign.embedding import is_valid
from codesign.sampling import (
    METHODS,
    SamplingError,
    embeddings_from_unit,
    index_ranges,
    sample_architectures,
    sample_embeddings,
)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("stratify", [True, False])
def test_samples_are_valid_and_distinct(space, method, stratify):
    embeddings = sample_embeddings(method, 300, seed=11, space=space, stratify=stratify)
    assert embeddings.shape == (300, 37)
    assert len({row.tobytes() for row in embeddings}) == 300
    assert all(is_valid(row, space) for row in embeddings)


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_same_samples_other_seed_other_samples(space, method):
    first = sample_embeddings(method, 64, seed=5, space=space)
    again = sample_embeddings(method, 64, seed=5, space=space)
    other = sample_embeddings(method, 64, seed=6, space=space)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


@pytest.mark.parametrize("method", METHODS)
def test_stratified_samples_are_half_narrow_half_wide(space, method):
    archs = sample_architectures(method, 33, seed=2, space=space)
    narrow = sum(model_category(a).endswith("narrow") for a in archs)
    assert narrow == 16
    assert len(archs) - narrow == 17
    for arch in archs[:16]:
        assert max(arch.heads_per_layer) < 8
    for arch in archs[16:]:
        assert min(arch.heads_per_layer) >= 8


def test_unstratified_index_sampling_is_dominated_by_wide_models(space):
    """Why strata exist: 18,564 of 21,805 multi-head types have 12 heads."""
    archs = sample_architectures("sobol", 256, seed=0, space=space, stratify=False)
    wide = sum(model_category(a).endswith("wide") for a in archs)
    assert wide >= 250


def test_unit_points_map_to_the_whole_index_range(space):
    low, size = index_ranges(space)
    assert low.sum() == 0
    corners = np.array([np.zeros(37), np.nextafter(np.ones(37), 0)])
    mapped = embeddings_from_unit(corners, space)
    assert mapped[0].tolist() == [0] * 37
    assert mapped[1][0] == 5 and mapped[1][1:].tolist() == (size[1:] - 1).tolist()


def test_narrow_and_wide_ranges_split_the_multi_head_index(space):
    narrow_low, narrow_size = index_ranges(space, "narrow")
    wide_low, wide_size = index_ranges(space, "wide")
    assert narrow_low[3] == 0 and narrow_size[3] == 28 + 210
    assert wide_low[3] == 238 and wide_low[3] + wide_size[3] == 21805


def test_hammersley_first_coordinate_is_regular(space):
    """The Hammersley set's first coordinate is i / n, so depths are spread evenly."""
    embeddings = sample_embeddings("hammersly", 12, seed=0, space=space, stratify=False)
    assert sorted(embeddings[:, 0].tolist()) == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": "grid", "n": 4}, "unknown sampling method 'grid'"),
        ({"method": "lhs", "n": 0}, "positive integer"),
        ({"method": "lhs", "n": 2.5}, "positive integer"),
    ],
)
def test_bad_requests_are_refused(space, kwargs, message):
    with pytest.raises(SamplingError, match=message):
        sample_embeddings(space=space, **kwargs)


def test_more_samples_than_architectures_is_refused(tmp_path):
    from codesign.design_space import DesignSpace

    path = tmp_path / "space.toml"
    path.write_text(
        'encoder_layers = [2]\nhidden_sizes = [64]\nnum_heads = [2]\nfeed_forward_sizes = [128]\n'
        'feed_forward_stack_depths = [1]\n[[operations]]\nname = "sa_sdp"\n'
    )
    tiny = DesignSpace.from_toml(path)
    assert tiny.architecture_count() == 1
    assert len(sample_embeddings("random", 1, 0, tiny, stratify=False)) == 1
    with pytest.raises(SamplingError, match="cannot draw 2 distinct architectures from a space of 1"):
        sample_embeddings("random", 2, 0, tiny, stratify=False)
