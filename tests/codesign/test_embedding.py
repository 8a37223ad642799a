"""The 37-dimensional embedding: published equality, round trips, decode checks, projection."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codesign.architecture import Architecture
from codesign.embedding import (
    EmbeddingError,
    check_embedding,
    decode,
    embed,
    embed_many,
    is_valid,
    project,
    upper_bounds,
)
from codesign.sampling import METHODS, sample_embeddings

BERT_TINY = {"l": 2, "o": [["sa_sdp_64", "sa_sdp_64"], ["sa_sdp_64", "sa_sdp_64"]], "h": [128, 128], "f": [[512], [512]]}


def test_every_stored_published_embedding_is_reproduced(space, published_entries):
    """Pins the enumeration order of feed-forward and multi-head operations."""
    checked = 0
    for label, record in published_entries:
        if "embedding" not in record:
            continue
        stored = json.loads(record["embedding"]) if isinstance(record["embedding"], str) else record["embedding"]
        arch = space.validate(record["model_dict"])
        assert embed(arch, space).tolist() == stored, label
        checked += 1
    assert checked == 642  # 626 ProTran measurements + 16 GLUE records


def test_published_models_round_trip_exactly(space, published_entries):
    for label, record in published_entries:
        arch = space.validate(record["model_dict"])
        assert decode(embed(arch, space), space).to_dict() == record["model_dict"], label


@pytest.mark.parametrize("method", METHODS)
def test_sampled_embeddings_round_trip(space, method):
    embeddings = sample_embeddings(method, 200, seed=3, space=space)
    for row in embeddings:
        arch = decode(row, space)
        assert np.array_equal(embed(arch, space), row)


def test_bert_tiny_embedding(space):
    vector = embed(Architecture.from_dict(BERT_TINY), space)
    ff_512 = space.feed_forward_op_types.index((512,))
    assert vector.tolist()[:7] == [0, 0, ff_512, 0, 0, ff_512, 0]
    assert not vector[7:].any()


def test_head_order_within_a_layer_does_not_change_the_embedding(space):
    model = {"l": 2, "o": [["c_5_64", "sa_sdp_64"], ["sa_sdp_64", "sa_sdp_64"]], "h": [128, 128], "f": [[512], [512]]}
    shuffled = Architecture.from_dict(model)
    canonical = decode(embed(shuffled, space), space)
    assert canonical.to_dict()["o"][0] == ["sa_sdp_64", "c_5_64"]
    assert np.array_equal(embed(canonical, space), embed(shuffled, space))


def test_embed_many_stacks_rows(space):
    arch = Architecture.from_dict(BERT_TINY)
    assert embed_many([arch, arch], space).shape == (2, 37)
    assert embed_many([], space).shape == (0, 37)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda v: v[:36], "expected 37 entries"),
        (lambda v: v + [0], "expected 37 entries"),
        (lambda v: [0.5] + v[1:], r"e\[0\]: expected an integer"),
        (lambda v: [6] + v[1:], r"e\[0\]: 6 is outside \[0, 5\]"),
        (lambda v: v[:1] + [4] + v[2:], r"e\[1\]: 4 is outside \[0, 3\]"),
        (lambda v: v[:2] + [258] + v[3:], r"e\[2\]: 258 is outside \[0, 257\]"),
        (lambda v: v[:3] + [21805] + v[4:], r"e\[3\]: 21805 is outside \[0, 21804\]"),
        (lambda v: v[:3] + [-1] + v[4:], r"e\[3\]: -1 is outside"),
        (lambda v: v[:8] + [3] + v[9:], r"e\[8\]: 3 must be 0, the model has only 2 layers"),
        (lambda v: v[:5] + [float("nan")] + v[6:], r"e\[5\]: expected an integer"),
    ],
)
def test_decode_names_the_bad_entry(space, mutate, message):
    vector = embed(Architecture.from_dict(BERT_TINY), space).tolist()
    with pytest.raises(EmbeddingError, match=message):
        decode(mutate(vector), space)
    assert not is_valid(mutate(vector), space)


def test_decode_accepts_integral_floats(space):
    vector = embed(Architecture.from_dict(BERT_TINY), space).astype(float)
    assert decode(vector, space).to_dict() == BERT_TINY


def _brute_force_nearest(x: np.ndarray, space) -> float:
    """Smallest squared distance from x to a valid embedding, by trying every depth."""
    upper = upper_bounds(space)
    best = np.inf
    for k, depth in enumerate(space.encoder_layers):
        candidate = np.zeros_like(x)
        candidate[0] = k
        used = 1 + 3 * depth
        candidate[1:used] = np.clip(np.rint(x[1:used]), 0, upper[1:used])
        best = min(best, float(((x - candidate) ** 2).sum()))
    return best


def test_project_returns_valid_nearest_embeddings(space):
    rng = np.random.default_rng(7)
    upper = upper_bounds(space)
    points = rng.uniform(-0.2, 1.2, size=(300, 37)) * upper
    projected = project(points, space)
    assert projected.shape == (300, 37)
    for x, p in zip(points, projected):
        assert is_valid(p, space)
        assert float(((x - p) ** 2).sum()) == pytest.approx(_brute_force_nearest(x, space))


def test_project_is_identity_on_valid_embeddings_and_undoes_small_noise(space):
    embeddings = sample_embeddings("random", 100, seed=1, space=space)
    assert np.array_equal(project(embeddings, space), embeddings)
    noise = np.random.default_rng(2).uniform(-0.3, 0.3, size=embeddings.shape)
    assert np.array_equal(project(embeddings + noise, space), embeddings)


def test_project_single_vector_and_bad_input(space):
    assert project(np.full(37, 1e6), space).shape == (37,)
    with pytest.raises(EmbeddingError, match="NaN or infinite"):
        project(np.full(37, np.nan), space)
    with pytest.raises(EmbeddingError, match="37 entries"):
        project(np.zeros(5), space)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1e5, 1e5, allow_nan=False), min_size=37, max_size=37))
def test_projection_is_always_valid_and_idempotent(space, values):
    p = project(np.array(values), space)
    assert is_valid(p, space)
    assert np.array_equal(project(p, space), p)
    assert np.array_equal(check_embedding(p, space), p)
