"""The continuous representation: layout, scaling, round trips and the exactness of its projection."""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest

from codesign.architecture import Architecture, ArchitectureError, Head
from codesign.boshcode import representation as rep
from codesign.design_space import DesignSpace
from codesign.sampling import sample_architectures

SMALL = DesignSpace.from_mapping(
    {
        "name": "small",
        "encoder_layers": [1, 2],
        "hidden_sizes": [8, 12],
        "num_heads": [1, 2, 3],
        "feed_forward_sizes": [16, 32],
        "feed_forward_stack_depths": [1, 2],
        "operations": [{"name": "sa_sdp"}, {"name": "l_dct"}, {"name": "c_9"}],
    }
)


def _layer_choices(space: DesignSpace):
    """Every valid (heads, hidden, stack) of one layer, enumerated from the space's rules."""
    for hidden in space.hidden_sizes:
        for ops in space.attention_op_types:
            heads = tuple(Head(op, hidden // len(ops)) for op in ops)
            for stack in space.feed_forward_op_types:
                yield heads, hidden, stack


def _all_architectures(space: DesignSpace) -> list[Architecture]:
    layers = list(_layer_choices(space))
    archs = []
    for depth in space.encoder_layers:
        for combo in itertools.product(layers, repeat=depth):
            archs.append(Architecture(*(tuple(part) for part in zip(*combo))))
    return archs


@pytest.fixture(scope="module")
def small_encodings() -> np.ndarray:
    archs = _all_architectures(SMALL)
    assert len(archs) == SMALL.architecture_count()
    return rep.encode_many(archs, SMALL)


def _distance2(vector: np.ndarray, arch: Architecture, space: DesignSpace) -> float:
    return float(((rep.encode(arch, space) - vector) ** 2).sum())


def test_projection_is_the_exact_nearest_architecture_of_a_small_space_by_brute_force(small_encodings):
    rng = np.random.default_rng(7)
    uniform = rng.uniform(-0.3, 1.3, size=(200, rep.dim(SMALL)))
    near = small_encodings[rng.integers(len(small_encodings), size=200)]
    near = near + rng.normal(scale=0.2, size=near.shape)
    vectors = np.vstack([uniform, near])
    brute = np.array([((small_encodings - v) ** 2).sum(axis=1).min() for v in vectors])
    projected = rep.project_many(vectors, SMALL)
    for v, arch, best in zip(vectors, projected, brute):
        SMALL.check(arch)
        assert _distance2(v, arch, SMALL) == pytest.approx(best, abs=1e-12)


def test_a_valid_point_of_the_small_space_projects_to_itself(small_encodings):
    rng = np.random.default_rng(1)
    rows = small_encodings[rng.choice(len(small_encodings), size=300, replace=False)]
    back = rep.encode_many(rep.project_many(rows, SMALL), SMALL)
    np.testing.assert_array_equal(back, rows)


def _two_layer(heads: tuple, hidden: int, stack: tuple) -> Architecture:
    return Architecture((heads, heads), (hidden, hidden), (stack, stack))


def test_per_layer_projection_in_the_default_space_matches_enumerating_every_layer_choice(space):
    """Every (hidden size, multi-head type) pair (4 x 21,805) and every stack (258) enumerated.

    A layer's cost is the presence term plus the attention part (h, d, c) plus the
    feed-forward part (f), over disjoint coordinates, so the minimum over all
    4 x 21,805 x 258 layer choices is the sum of the two enumerated minima; the depth is
    then chosen by trying every allowed depth.
    """
    block = rep.dim(space) // space.max_layers
    k = len(space.operation_names)
    top = max(space.num_heads)
    # (h, d) codes of each (hidden size, head count), read from encode()
    hd = {}
    for hidden in space.hidden_sizes:
        for n in space.num_heads:
            v = rep.encode(_two_layer((Head("sa_sdp", hidden // n),) * n, hidden, (256,)), space)
            hd[hidden, n] = v[1:3]
    counts = np.zeros((len(space.attention_op_types), k))
    for i, ops in enumerate(space.attention_op_types):
        for op in ops:
            counts[i, space.operation_names.index(op)] += 1 / top
    sizes = [len(ops) for ops in space.attention_op_types]
    att = np.vstack([np.hstack([np.array([hd[hidden, n] for n in sizes]), counts]) for hidden in space.hidden_sizes])
    assert att.shape == (len(space.hidden_sizes) * 21805, 2 + k)
    heads = (Head("sa_sdp", 64),) * 2
    ff = np.array([rep.encode(_two_layer(heads, 128, s), space)[3 + k : block] for s in space.feed_forward_op_types])
    assert ff.shape[0] == 258
    rng = np.random.default_rng(3)
    archs = sample_architectures("sobol", 6, seed=4, space=space)
    near = rep.encode_many(archs, space) + rng.normal(scale=0.15, size=(6, rep.dim(space)))
    vectors = np.vstack([rng.uniform(-0.1, 1.1, size=(6, rep.dim(space))), near])
    for v in vectors:
        blocks = v.reshape(space.max_layers, block)
        keep = np.array(
            [
                (b[0] - 1) ** 2
                + ((att - b[1 : 3 + k]) ** 2).sum(axis=1).min()
                + ((ff - b[3 + k :]) ** 2).sum(axis=1).min()
                for b in blocks
            ]
        )
        zero = (blocks**2).sum(axis=1)
        brute = min(keep[:depth].sum() + zero[depth:].sum() for depth in space.encoder_layers)
        arch = rep.project(v, space)
        space.check(arch)
        assert _distance2(v, arch, space) == pytest.approx(brute, abs=1e-10)


def test_encoding_then_projecting_returns_the_architecture(space):
    archs = sample_architectures("sobol", 200, seed=5, space=space)
    vectors = rep.encode_many(archs, space)
    for arch, back in zip(archs, rep.project_many(vectors, space)):
        assert back.to_dict() == arch.to_dict()
    assert rep.decode(vectors[17], space).to_dict() == archs[17].to_dict()


def test_bert_base_is_encoded_on_the_documented_scales(space):
    bert = Architecture(((Head("sa_sdp", 64),) * 12,) * 12, (768,) * 12, ((3072,),) * 12)
    v = rep.encode(bert, space)
    names = rep.coordinate_names(space)
    at = dict(zip(names, v))
    assert rep.dim(space) == 156 and len(names) == 156
    assert at["p[11]"] == 1.0 and at["h[0]"] == 1.0
    assert at["c[0][sa_sdp]"] == 1.0 and at["c[0][c_13]"] == 0.0
    # log2 scale, one octave above 0 at the smallest size: (log2 v - log2 lo + 1) / (log2 hi - log2 lo + 1)
    assert at["f[0][0]"] == pytest.approx((np.log2(3072) - np.log2(256) + 1) / (np.log2(4096) - np.log2(256) + 1))
    assert at["d[3]"] == pytest.approx((np.log2(64) - np.log2(10) + 1) / (np.log2(384) - np.log2(10) + 1))
    assert at["f[0][1]"] == 0.0 and at["f[5][2]"] == 0.0
    tiny = Architecture(((Head("sa_sdp", 64),) * 2,) * 2, (128,) * 2, ((512,),) * 2)
    t = dict(zip(names, rep.encode(tiny, space)))
    assert t["h[0]"] == pytest.approx(1 / (np.log2(768) - np.log2(128) + 1))
    assert t["p[2]"] == 0.0 and t["h[2]"] == 0.0 and t["c[1][sa_sdp]"] == pytest.approx(2 / 12)


def test_every_sampled_encoding_lies_in_the_bounds(space):
    lower, upper = rep.bounds(space)
    vectors = rep.encode_many(sample_architectures("random", 300, seed=2, space=space), space)
    assert vectors.min() >= 0.0 and vectors.max() <= 1.0
    assert np.all(vectors >= lower) and np.all(vectors <= upper)
    # the extremes are reached: 768 hidden, 2 heads of 384, 12 heads of one type, 4096 wide
    assert np.isclose(vectors.max(axis=0), 1.0).sum() > 3 * space.max_layers


def test_the_layout_follows_the_operations_of_the_space():
    names = rep.coordinate_names(SMALL)
    assert rep.dim(SMALL) == 2 * (3 + 3 + 2)
    assert names[:8] == ["p[0]", "h[0]", "d[0]", "c[0][sa_sdp]", "c[0][l_dct]", "c[0][c_9]", "f[0][0]", "f[0][1]"]


def test_decode_refuses_a_vector_that_is_not_a_valid_point_naming_the_coordinate(space):
    arch = sample_architectures("sobol", 1, seed=9, space=space)[0]
    v = rep.encode(arch, space)
    v[1] += 0.05
    with pytest.raises(rep.RepresentationError, match=r"^h\[0\]: .*use project\(\)"):
        rep.decode(v, space)


def test_bad_vectors_are_refused(space):
    with pytest.raises(rep.RepresentationError, match="156 entries"):
        rep.project(np.zeros(37), space)
    with pytest.raises(rep.RepresentationError, match="NaN"):
        rep.project(np.full(156, np.nan), space)
    with pytest.raises(rep.RepresentationError, match="project_many"):
        rep.project(np.zeros((2, 156)), space)
    with pytest.raises(ArchitectureError):
        rep.encode(Architecture(((Head("sa_sdp", 64),) * 3,) * 2, (192,) * 2, ((512,),) * 2), space)


def test_the_zero_vector_projects_to_the_smallest_model(space):
    arch = rep.project(np.zeros(rep.dim(space)), space)
    assert arch.layers == min(space.encoder_layers)
    assert arch.hidden == (min(space.hidden_sizes),) * arch.layers


def test_the_representation_does_not_import_torch():
    code = "import sys, codesign.boshcode.representation; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
