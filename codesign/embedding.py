"""The 37-dimensional FlexiBERT 2.0 embedding (EdgeTran paper, Sec. III-A4).

Layout, for a space of up to 12 layers (0-based indices here, 1-based in the paper):

* ``e[0]``: the number of encoder layers, as its **index** in ``encoder_layers``
  (a 10-layer model stores 4). The paper says "the number of encoder layers"; the
  authors' published embeddings store the index, and this module follows them.
* for layer ``j`` (0-based): ``e[1 + 3j]`` the hidden size's index in
  ``hidden_sizes``, ``e[2 + 3j]`` the feed-forward stack's index among the 258
  feed-forward types, ``e[3 + 3j]`` the multi-head operation's index among the 21,805
  types (head count and the multiset of head operations; see
  :mod:`codesign.design_space`).
* entries of layers the model does not have are 0.

Every head of a decoded layer has dimension ``hidden // heads`` (the embedding does
not store per-head dimensions; the published models all follow this rule).

Every entry is an integer in ``[0, upper_bounds()[i]]``. :func:`project` maps any real
vector to the nearest valid embedding in Euclidean distance, exactly: given the depth,
the nearest point of a box of integers is the per-coordinate rounding clipped to the
box, so trying each allowed depth and keeping the cheapest is exact.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np

from codesign.architecture import Architecture
from codesign.design_space import DesignSpace, default_space


class EmbeddingError(ValueError):
    """A vector that is not a valid embedding of the design space."""


def upper_bounds(space: DesignSpace | None = None) -> np.ndarray:
    """Largest valid value of every embedding entry (the lower bound is 0 everywhere)."""
    space = space or default_space()
    per_layer = [len(space.hidden_sizes) - 1, len(space.feed_forward_op_types) - 1, len(space.attention_op_types) - 1]
    return np.array([len(space.encoder_layers) - 1] + per_layer * space.max_layers, dtype=np.int64)


def embed(arch: Architecture, space: DesignSpace | None = None) -> np.ndarray:
    """Embedding of an architecture of the space (raises ArchitectureError outside it)."""
    space = space or default_space()
    space.check(arch)
    vector = np.zeros(space.embedding_dim, dtype=np.int64)
    vector[0] = space.encoder_layers.index(arch.layers)
    for j in range(arch.layers):
        base = 1 + 3 * j
        vector[base] = space.hidden_sizes.index(arch.hidden[j])
        vector[base + 1] = space.feed_forward_index(arch.feed_forward[j])
        vector[base + 2] = space.attention_index(head.op for head in arch.heads[j])
    return vector


def embed_many(archs: Iterable[Architecture], space: DesignSpace | None = None) -> np.ndarray:
    """Embeddings of many architectures as an ``(n, dim)`` integer array."""
    space = space or default_space()
    rows = [embed(arch, space) for arch in archs]
    return np.array(rows, dtype=np.int64).reshape(len(rows), space.embedding_dim)


def _as_integer_vector(vector: Any, space: DesignSpace) -> np.ndarray:
    try:
        values = np.asarray(vector, dtype=float)
    except (TypeError, ValueError):
        raise EmbeddingError(f"expected a list of {space.embedding_dim} integers, got {vector!r}") from None
    if values.ndim != 1 or values.shape[0] != space.embedding_dim:
        raise EmbeddingError(f"expected {space.embedding_dim} entries, got shape {values.shape}")
    bad = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)))
    if bad.size:
        i = int(bad[0])
        raise EmbeddingError(f"e[{i}]: expected an integer, got {values[i]!r}")
    return values.astype(np.int64)


def check_embedding(vector: Any, space: DesignSpace | None = None) -> np.ndarray:
    """Return the vector as integers, or raise EmbeddingError naming the first bad entry."""
    space = space or default_space()
    values = _as_integer_vector(vector, space)
    upper = upper_bounds(space)
    out = np.flatnonzero((values < 0) | (values > upper))
    if out.size:
        i = int(out[0])
        raise EmbeddingError(f"e[{i}]: {values[i]} is outside [0, {upper[i]}]")
    layers = space.encoder_layers[values[0]]
    tail = np.flatnonzero(values[1 + 3 * layers :])
    if tail.size:
        i = 1 + 3 * layers + int(tail[0])
        raise EmbeddingError(f"e[{i}]: {values[i]} must be 0, the model has only {layers} layers (e[0] = {values[0]})")
    return values


def is_valid(vector: Any, space: DesignSpace | None = None) -> bool:
    """Whether the vector is a valid embedding."""
    try:
        check_embedding(vector, space)
    except EmbeddingError:
        return False
    return True


def _decode_checked(values: Sequence[int], space: DesignSpace) -> Architecture:
    layers = space.encoder_layers[values[0]]
    heads, hidden, feed_forward = [], [], []
    for j in range(layers):
        base = 1 + 3 * j
        size = space.hidden_sizes[values[base]]
        heads.append(space.layer_heads(values[base + 2], size))
        hidden.append(size)
        feed_forward.append(space.feed_forward_op_types[values[base + 1]])
    return Architecture(tuple(heads), tuple(hidden), tuple(feed_forward))


def decode(vector: Any, space: DesignSpace | None = None) -> Architecture:
    """Architecture of a valid embedding (head dim = hidden // heads)."""
    space = space or default_space()
    return _decode_checked(check_embedding(vector, space).tolist(), space)


def decode_many(matrix: np.ndarray, space: DesignSpace | None = None) -> list[Architecture]:
    """Architectures of rows already known to be valid (as produced by samplers or project)."""
    space = space or default_space()
    return [_decode_checked(row, space) for row in np.asarray(matrix, dtype=np.int64).tolist()]


def project(x: Any, space: DesignSpace | None = None) -> np.ndarray:
    """Nearest valid embedding (Euclidean) of a real vector, or of each row of a matrix."""
    space = space or default_space()
    points = np.asarray(x, dtype=float)
    single = points.ndim == 1
    points = np.atleast_2d(points)
    if points.ndim != 2 or points.shape[1] != space.embedding_dim:
        raise EmbeddingError(f"expected vectors of {space.embedding_dim} entries, got shape {np.shape(x)}")
    if not np.all(np.isfinite(points)):
        raise EmbeddingError("cannot project a vector with NaN or infinite entries")
    n, max_layers = points.shape[0], space.max_layers
    upper = upper_bounds(space)
    layer_part = points[:, 1:].reshape(n, max_layers, 3)
    rounded = np.clip(np.rint(layer_part), 0, upper[1:4])
    keep_cost = ((layer_part - rounded) ** 2).sum(axis=2)  # (n, max_layers): cost of keeping layer j
    zero_cost = (layer_part**2).sum(axis=2)  # cost of zeroing layer j
    keep_prefix = np.concatenate([np.zeros((n, 1)), np.cumsum(keep_cost, axis=1)], axis=1)
    zero_suffix = np.concatenate([np.cumsum(zero_cost[:, ::-1], axis=1)[:, ::-1], np.zeros((n, 1))], axis=1)
    depths = np.array(space.encoder_layers)
    costs = (
        (points[:, :1] - np.arange(len(depths))[None, :]) ** 2
        + keep_prefix[:, depths]
        + zero_suffix[:, depths]
    )
    best = np.argmin(costs, axis=1)
    out = np.zeros((n, space.embedding_dim), dtype=np.int64)
    out[:, 0] = best
    kept = np.arange(max_layers)[None, :] < depths[best][:, None]
    out[:, 1:] = (rounded * kept[:, :, None]).reshape(n, 3 * max_layers).astype(np.int64)
    return out[0] if single else out
