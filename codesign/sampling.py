"""Initial sampling of the design space (EdgeTran paper, Sec. III-B1, Figs. 4-5).

A sampler draws points of the unit hypercube ``[0, 1)^37`` and maps coordinate ``i``
to an integer index in its range: the index of the layer count, and per layer the
indices of the hidden size, feed-forward type and multi-head type. Entries of layers
beyond the sampled depth are set to 0, so every sample is a valid embedding.

**Width strata.** The multi-head index is dominated by 12-head combinations (18,564
of 21,805), so uniform sampling of the index space yields almost no narrow models
(0 of 256 here), while Fig. 5 shows samplers with all four categories equally often.
The authors' released sampler gets there by drawing half of the samples with every
multi-head index among the narrow combinations (fewer than 8 heads) and half among the
wide ones (8 or more), for the low-discrepancy methods; their ``random`` is not
stratified. Here every method is stratified by default (``stratify=False`` gives the
plain index-space sampler), so that methods differ only in their point sets: ``n // 2``
narrow and ``n - n // 2`` wide samples, each stratum from its own seeded engine.

Methods (``scipy.stats.qmc`` where it has them, seeded through a NumPy Generator):

* ``sobol``: scrambled Sobol' sequence (any ``n``; balance is best at powers of 2);
* ``lhs``: Latin hypercube;
* ``halton``: scrambled Halton sequence;
* ``hammersly``: the Hammersley set (spelled as in the paper): first coordinate
  ``i / n``, the others a scrambled Halton sequence in the remaining dimensions;
* ``random``: independent uniform points.

Samples never repeat: duplicate embeddings are dropped and the sampler draws more
from the same seeded engine (the Sobol'/Halton sequences continue; LHS draws a new
hypercube; Hammersley continues its Halton part with a seeded first coordinate).
"""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np

from codesign.architecture import Architecture
from codesign.design_space import DesignSpace, default_space
from codesign.embedding import decode_many, upper_bounds

METHODS = ("sobol", "lhs", "halton", "hammersly", "random")
MAX_TOP_UP_ROUNDS = 1000


class SamplingError(ValueError):
    """A sampling request that cannot be met."""


def _unit_engine(method: str, dim: int, seed: int) -> Callable[[int], np.ndarray]:
    """A function returning the next ``k`` points of the method's sequence in [0, 1)^dim."""
    from scipy.stats import qmc  # host-side dependency, imported when sampling

    rng = np.random.default_rng(seed)
    if method == "random":
        return lambda k: rng.random((k, dim))
    if method == "sobol":
        engine = qmc.Sobol(dim, scramble=True, rng=rng)
    elif method == "halton":
        engine = qmc.Halton(dim, scramble=True, rng=rng)
    elif method == "lhs":
        engine = qmc.LatinHypercube(dim, rng=rng)
    elif method == "hammersly":
        halton = qmc.Halton(dim - 1, scramble=True, rng=rng)
        first_call = [True]

        def hammersley(k: int) -> np.ndarray:
            if first_call[0]:
                first_call[0] = False
                lead = np.arange(k, dtype=float)[:, None] / k
            else:
                lead = rng.random((k, 1))
            return np.hstack([lead, halton.random(k)])

        return hammersley
    else:
        raise SamplingError(f"unknown sampling method {method!r} (choose from {', '.join(METHODS)})")

    def draw(k: int) -> np.ndarray:
        with warnings.catch_warnings():
            # Sobol' warns when k is not a power of 2; the points are still valid.
            warnings.filterwarnings("ignore", message=".*balance properties.*")
            return engine.random(k)

    return draw


def index_ranges(space: DesignSpace, stratum: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """Lowest index and number of indices per embedding entry for a stratum (all, narrow, wide)."""
    from codesign.diversity import WIDE_MIN_MEDIAN_HEADS

    low = np.zeros(space.embedding_dim, dtype=np.int64)
    size = upper_bounds(space) + 1
    if stratum != "all":
        first_wide = next(
            (i for i, ops in enumerate(space.attention_op_types) if len(ops) >= WIDE_MIN_MEDIAN_HEADS),
            len(space.attention_op_types),
        )
        attention = slice(3, None, 3)
        if stratum == "narrow":
            size[attention] = first_wide
        elif stratum == "wide":
            low[attention] = first_wide
            size[attention] -= first_wide
        else:
            raise SamplingError(f"unknown stratum {stratum!r} (all, narrow or wide)")
        if np.any(size[attention] <= 0):
            raise SamplingError(f"the design space has no {stratum} multi-head operations")
    return low, size


def embeddings_from_unit(points: np.ndarray, space: DesignSpace | None = None, stratum: str = "all") -> np.ndarray:
    """Map points of [0, 1)^dim to valid embeddings of a stratum (unused layers zeroed)."""
    space = space or default_space()
    low, size = index_ranges(space, stratum)
    offsets = np.clip(np.floor(np.asarray(points) * size).astype(np.int64), 0, size - 1)
    indices = low + offsets
    depths = np.array(space.encoder_layers)[indices[:, 0]]
    used = np.arange(space.max_layers)[None, :] < depths[:, None]
    indices[:, 1:] *= np.repeat(used, 3, axis=1)
    return indices


def _distinct(draw: Callable[[int], np.ndarray], n: int, space: DesignSpace, stratum: str, seen: set[bytes]) -> list:
    """n embeddings of the stratum not in ``seen`` (which is updated), topping up from ``draw``."""
    chosen: list[np.ndarray] = []
    need = n
    for _ in range(MAX_TOP_UP_ROUNDS):
        if need <= 0:
            return chosen
        for row in embeddings_from_unit(draw(need), space, stratum):
            key = row.tobytes()
            if key not in seen and len(chosen) < n:
                seen.add(key)
                chosen.append(row)
        need = n - len(chosen)
    if need > 0:  # pragma: no cover - only for tiny custom spaces
        raise SamplingError(f"found only {len(chosen)} distinct {stratum} architectures after {MAX_TOP_UP_ROUNDS} rounds")
    return chosen


def sample_embeddings(
    method: str, n: int, seed: int = 0, space: DesignSpace | None = None, stratify: bool = True
) -> np.ndarray:
    """``n`` distinct valid embeddings drawn by ``method``, reproducible by ``seed``."""
    space = space or default_space()
    if method not in METHODS:
        raise SamplingError(f"unknown sampling method {method!r} (choose from {', '.join(METHODS)})")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise SamplingError(f"number of samples must be a positive integer, got {n!r}")
    if n > space.architecture_count():
        raise SamplingError(f"cannot draw {n} distinct architectures from a space of {space.architecture_count()}")
    strata = [("narrow", n // 2), ("wide", n - n // 2)] if stratify else [("all", n)]
    children = np.random.SeedSequence(seed).spawn(len(strata))
    seen: set[bytes] = set()
    rows: list[np.ndarray] = []
    for (stratum, count), child in zip(strata, children):
        if count:
            engine_seed = int(child.generate_state(1)[0])
            rows += _distinct(_unit_engine(method, space.embedding_dim, engine_seed), count, space, stratum, seen)
    return np.array(rows, dtype=np.int64)


def sample_architectures(
    method: str, n: int, seed: int = 0, space: DesignSpace | None = None, stratify: bool = True
) -> list[Architecture]:
    """``n`` distinct architectures of the space drawn by ``method``."""
    space = space or default_space()
    return decode_many(sample_embeddings(method, n, seed, space, stratify), space)
