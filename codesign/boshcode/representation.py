"""A continuous architecture representation with an exact nearest-valid projection.

The paper's 37-d embedding (:mod:`codesign.embedding`, Sec. III-A4) stores *indices*
(of one of 21,805 multi-head types, of one of 258 feed-forward stacks); a gradient along
an index has no meaning, since neighbouring indices are unrelated layers. This
representation stores the quantities themselves, so that moving along a coordinate
changes the model by a comparable, monotone amount.

Layout: ``max_layers`` blocks (12 in the default space), one per layer slot ``j``, each of
``3 + K + D`` coordinates (``K`` operations of the space, in the space's operation order;
``D`` the deepest feed-forward stack): 13 per layer and **156** in the default space.

====================  =====================================================================
coordinate            value (every coordinate lies in ``[0, 1]``)
====================  =====================================================================
``p[j]``              presence: 1 if the model has layer ``j``, else 0
``h[j]``              hidden size, ``u(h; hidden_sizes)``
``d[j]``              head dimension ``h // n`` (the rule ``DesignSpace.check`` enforces),
                      ``u(d; head dims)`` over every ``h // n`` of the space (10 .. 384)
``c[j][op]``          number of heads of operation ``op`` divided by ``max(num_heads)``
``f[j][k]``           width of feed-forward layer ``k`` of the stack, ``u(f; feed_forward_sizes)``;
                      0 where the stack has fewer than ``k + 1`` layers
====================  =====================================================================

Scaling. Sizes are placed on a **log2 scale** (an octave is the same step for 128 -> 256
as for 2048 -> 4096; cost and capacity scale multiplicatively) and mapped into ``(0, 1]``
with 0 reserved for "absent"::

    u(v; lo, hi) = (log2 v - log2 lo + 1) / (log2 hi - log2 lo + 1)

so the largest size is 1 and "absent" sits one octave below the smallest (hidden
128 -> 0.279, 768 -> 1; feed-forward 256 -> 0.2, 4096 -> 1). Head counts are linear
(``c / 12``: one more head of a type is one step of 1/12), so ``sum(c) * 12`` is the
layer's head count. A missing layer is the zero block. Every coordinate thus spans
``[0, 1]`` and the representation's metric is the plain Euclidean distance on it.

Choices:

* The head dimension is redundant (it is ``h // n``) but kept: per-head width is what
  the hardware sees (matrix shapes), so a surrogate can read it directly; the projection
  accounts for it exactly (below). ``DesignSpace.check`` requires every head of a layer
  to have dimension ``h // n``; it does **not** require ``sum of head dims == h``
  (12 heads of a 128-wide layer have 10 features each, see :mod:`codesign.architecture`),
  and nor does this module.
* The depth is not a separate coordinate: the presence bits carry it (a valid point has
  presence ``1`` on a prefix of allowed length and ``0`` after), which keeps the
  projection separable.

Exact projection (:func:`project`): the squared distance is a sum over layer slots, and
within a kept layer a sum of three independent parts, so for each allowed depth ``L`` the
nearest valid point keeps slots ``< L`` at their nearest valid layer and zeroes the rest;
trying every allowed depth and keeping the cheapest is exact. Within a layer:

* feed-forward: the nearest of the space's stacks (258 here), by enumeration;
* hidden size, head count and head mix jointly: for every head count ``n`` the nearest
  multiset of ``n`` heads is found exactly by **greedy marginal allocation**: the cost
  ``sum_k (c_k / M - x_k)^2`` is separable and convex in each integer ``c_k``, so the
  ``n`` cheapest marginal increments ``((t + 1)/M - x_k)^2 - (t/M - x_k)^2`` (strictly
  increasing in ``t``, hence always a prefix per operation) give the optimum of
  ``sum_k c_k = n`` (the classical result for separable convex resource allocation);
  then every (hidden size, head count) pair is scored with its head-dimension term
  ``(x_d - u(h // n))^2`` and the cheapest is kept.

Ties (measure zero for real inputs) go to the first candidate in the space's order: the
smaller depth, hidden size, head count, the operation earlier in the space's order, the
stack earlier among ``feed_forward_op_types``.

No torch here: the optimiser differentiates the surrogate, not this module.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Iterable

import numpy as np

from codesign.architecture import Architecture, Head
from codesign.design_space import DesignSpace, default_space

DECODE_TOLERANCE = 1e-9  # largest coordinate error decode() accepts as "this valid point"


class RepresentationError(ValueError):
    """A vector that is not (or cannot be read as) a representation of the space."""


def _log_unit(values: Iterable[int] | np.ndarray, lo: int, hi: int) -> np.ndarray:
    """``u(v; lo, hi)``: log2 scale mapped into ``(0, 1]``, 1 at ``hi``, one octave above 0 at ``lo``."""
    span = np.log2(hi) - np.log2(lo) + 1.0
    return (np.log2(np.asarray(values, dtype=float)) - np.log2(lo) + 1.0) / span


class _Layout:
    """Offsets, scaled value tables and candidate codes of one space (cached per space)."""

    def __init__(self, space: DesignSpace) -> None:
        self.space = space
        self.ops = space.operation_names
        self.k = len(self.ops)
        self.d = max(space.feed_forward_stack_depths)
        self.block = 3 + self.k + self.d
        self.layers = space.max_layers
        self.dim = self.block * self.layers
        self.heads = np.array(space.num_heads)
        self.max_heads = int(self.heads.max())
        self.hidden = np.array(space.hidden_sizes)
        dims = self.hidden[:, None] // self.heads[None, :]  # (H, N) head dimension of each pair
        if np.any(dims < 1):
            raise RepresentationError(
                f"space {space.name!r}: a hidden size smaller than a head count gives heads of dimension 0"
            )
        self.dims = dims
        self.dim_lo, self.dim_hi = int(dims.min()), int(dims.max())
        self.hidden_code = _log_unit(self.hidden, self.hidden[0], self.hidden[-1])
        self.dim_code = _log_unit(dims, self.dim_lo, self.dim_hi)  # (H, N)
        sizes = space.feed_forward_sizes
        self.ff_size_code = dict(zip(sizes, _log_unit(sizes, sizes[0], sizes[-1])))
        stacks = space.feed_forward_op_types
        self.stacks = stacks
        codes = np.zeros((len(stacks), self.d))
        for i, stack in enumerate(stacks):
            codes[i, : len(stack)] = [self.ff_size_code[s] for s in stack]
        self.stack_codes = codes
        self.op_rank = {op: i for i, op in enumerate(self.ops)}
        self.depths = np.array(space.encoder_layers)

    def names(self) -> list[str]:
        out = []
        for j in range(self.layers):
            out += [f"p[{j}]", f"h[{j}]", f"d[{j}]"]
            out += [f"c[{j}][{op}]" for op in self.ops]
            out += [f"f[{j}][{k}]" for k in range(self.d)]
        return out


@lru_cache(maxsize=8)
def _layout(space: DesignSpace) -> _Layout:
    return _Layout(space)


def dim(space: DesignSpace | None = None) -> int:
    """Number of coordinates: ``max_layers * (3 + operations + deepest stack)`` (156 here)."""
    return _layout(space or default_space()).dim


def bounds(space: DesignSpace | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Box ``(lower, upper)`` holding every valid point, for optimisers: ``[0, 1]`` in every coordinate."""
    n = dim(space)
    return np.zeros(n), np.ones(n)


def coordinate_names(space: DesignSpace | None = None) -> list[str]:
    """Name of every coordinate (``p[0]``, ``h[0]``, ``d[0]``, ``c[0][sa_sdp]``, ..., ``f[11][2]``)."""
    return _layout(space or default_space()).names()


def encode(arch: Architecture, space: DesignSpace | None = None) -> np.ndarray:
    """Representation of an architecture of the space (raises ArchitectureError outside it)."""
    space = space or default_space()
    space.check(arch)
    lay = _layout(space)
    vector = np.zeros(lay.dim)
    for j in range(arch.layers):
        base = j * lay.block
        hi = space.hidden_sizes.index(arch.hidden[j])
        ni = space.num_heads.index(len(arch.heads[j]))
        vector[base] = 1.0
        vector[base + 1] = lay.hidden_code[hi]
        vector[base + 2] = lay.dim_code[hi, ni]
        for head in arch.heads[j]:
            vector[base + 3 + lay.op_rank[head.op]] += 1.0 / lay.max_heads
        stack = arch.feed_forward[j]
        vector[base + 3 + lay.k : base + 3 + lay.k + len(stack)] = [lay.ff_size_code[s] for s in stack]
    return vector


def encode_many(archs: Iterable[Architecture], space: DesignSpace | None = None) -> np.ndarray:
    """Representations of many architectures as an ``(n, dim)`` array."""
    space = space or default_space()
    rows = [encode(arch, space) for arch in archs]
    return np.array(rows, dtype=float).reshape(len(rows), dim(space))


def _as_points(x: Any, lay: _Layout) -> np.ndarray:
    try:
        points = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise RepresentationError(f"expected vectors of {lay.dim} numbers, got {x!r}") from None
    points = np.atleast_2d(points)
    if points.ndim != 2 or points.shape[1] != lay.dim:
        raise RepresentationError(f"expected vectors of {lay.dim} entries, got shape {np.shape(x)}")
    if not np.all(np.isfinite(points)):
        raise RepresentationError("cannot project a vector with NaN or infinite entries")
    return points


def _nearest_multisets(counts: np.ndarray, lay: _Layout) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row of ``counts`` (scaled head counts, shape (R, K)): for each allowed head count n,
    the cost of the nearest multiset of n heads; also the sort order of the marginal increments.

    Returns ``cost (R, N)``, ``order (R, K*M)`` and the number of increments ``M`` per operation.
    """
    m = lay.max_heads
    steps = np.arange(m + 1) / m  # scaled values 0, 1/M, ..., 1
    # marginal[r, k, t]: cost change of the (t+1)-th head of operation k
    sq = (steps[None, None, :] - counts[:, :, None]) ** 2
    marginal = (sq[:, :, 1:] - sq[:, :, :-1]).reshape(len(counts), lay.k * m)
    order = np.argsort(marginal, axis=1, kind="stable")
    cum = np.cumsum(np.take_along_axis(marginal, order, axis=1), axis=1)
    base = (counts**2).sum(axis=1)
    cost = base[:, None] + cum[:, lay.heads - 1]
    return cost, order, m


def _project_rows(points: np.ndarray, lay: _Layout) -> list[Architecture]:
    n = len(points)
    blocks = points.reshape(n * lay.layers, lay.block)
    presence, hid, hdim = blocks[:, 0], blocks[:, 1], blocks[:, 2]
    counts = blocks[:, 3 : 3 + lay.k]
    ff = blocks[:, 3 + lay.k :]
    # feed-forward part: nearest stack by enumeration
    ff_cost_all = ((ff[:, None, :] - lay.stack_codes[None, :, :]) ** 2).sum(axis=2)
    ff_best = np.argmin(ff_cost_all, axis=1)
    ff_cost = ff_cost_all[np.arange(len(blocks)), ff_best]
    # attention part: hidden size x head count, each with its nearest multiset and head-dim term
    ms_cost, order, m = _nearest_multisets(counts, lay)
    joint = (
        (hid[:, None, None] - lay.hidden_code[None, :, None]) ** 2
        + (hdim[:, None, None] - lay.dim_code[None, :, :]) ** 2
        + ms_cost[:, None, :]
    )  # (R, H, N)
    flat = joint.reshape(len(blocks), -1)
    pair = np.argmin(flat, axis=1)
    att_cost = flat[np.arange(len(blocks)), pair]
    h_idx, n_idx = np.divmod(pair, len(lay.heads))
    keep = ((presence - 1.0) ** 2 + ff_cost + att_cost).reshape(n, lay.layers)
    zero = (blocks**2).sum(axis=1).reshape(n, lay.layers)
    keep_prefix = np.concatenate([np.zeros((n, 1)), np.cumsum(keep, axis=1)], axis=1)
    zero_suffix = np.concatenate([np.cumsum(zero[:, ::-1], axis=1)[:, ::-1], np.zeros((n, 1))], axis=1)
    costs = keep_prefix[:, lay.depths] + zero_suffix[:, lay.depths]
    depth = lay.depths[np.argmin(costs, axis=1)]
    h_idx, n_idx, ff_best = (a.reshape(n, lay.layers) for a in (h_idx, n_idx, ff_best))
    order = order.reshape(n, lay.layers, -1)
    archs = []
    for r in range(n):
        heads, hidden, stacks = [], [], []
        for j in range(int(depth[r])):
            size = int(lay.hidden[h_idx[r, j]])
            count = int(lay.heads[n_idx[r, j]])
            chosen = order[r, j, :count] // m  # operation of each chosen increment
            per_op = np.bincount(chosen, minlength=lay.k)
            head_dim = size // count
            heads.append(tuple(Head(lay.ops[k], head_dim) for k in range(lay.k) for _ in range(per_op[k])))
            hidden.append(size)
            stacks.append(lay.stacks[ff_best[r, j]])
        archs.append(Architecture(tuple(heads), tuple(hidden), tuple(stacks)))
    return archs


def project(vector: Any, space: DesignSpace | None = None) -> Architecture:
    """The exact nearest valid architecture (Euclidean, in the scaled representation) of a vector."""
    lay = _layout(space or default_space())
    points = _as_points(vector, lay)
    if points.shape[0] != 1:
        raise RepresentationError(f"project takes one vector, got {points.shape[0]} (use project_many)")
    return _project_rows(points, lay)[0]


def project_many(matrix: Any, space: DesignSpace | None = None) -> list[Architecture]:
    """:func:`project` of every row of an ``(n, dim)`` matrix."""
    lay = _layout(space or default_space())
    return _project_rows(_as_points(matrix, lay), lay)


def decode(vector: Any, space: DesignSpace | None = None) -> Architecture:
    """Architecture of a vector that represents a valid point (within 1e-9); RepresentationError otherwise."""
    space = space or default_space()
    arch = project(vector, space)
    values = np.asarray(vector, dtype=float)
    error = np.abs(encode(arch, space) - values)
    bad = np.flatnonzero(error > DECODE_TOLERANCE)
    if bad.size:
        i = int(bad[0])
        raise RepresentationError(
            f"{coordinate_names(space)[i]}: {values[i]!r} is not a valid point's value "
            f"(nearest valid architecture has {encode(arch, space)[i]!r}); use project() for arbitrary vectors"
        )
    return arch
