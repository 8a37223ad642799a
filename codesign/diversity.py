"""Diversity of sampled architectures (EdgeTran paper, Sec. III-B1, Figs. 4-5).

Categories: a model is *shallow* if it has strictly fewer than 8 encoder layers and
*deep* otherwise; *narrow* if the median number of attention heads over its layers is
strictly less than 8 and *wide* otherwise.

The authors' released code labels by the *maximum* head count; on every published
model the two agree, and the paper's text says median, so the median is used.
The paper does not say which median it takes when the number of layers is even (it
always is in this space). The published models carry the authors' own labels
(``model_type``); the **upper median** (``statistics.median_high``) reproduces all 642
of them, while the mean of the two middle values (``numpy.median``) disagrees on 2
(heads ``[12, 2]`` and ``[4, 8]``, labelled wide). So the upper median is used.

Distances (Fig. 4): pairwise Euclidean distances between embeddings after dividing
every entry by its upper bound, so each entry lies in [0, 1] and the multi-head index
(up to 21,804) does not drown the layer count (up to 5). The paper does not say how it
scaled its embeddings; raw indices would make the box plot a plot of multi-head
indices alone.
"""

from __future__ import annotations

import statistics
from typing import Iterable

import numpy as np

from codesign.architecture import Architecture
from codesign.design_space import DesignSpace, default_space
from codesign.embedding import decode_many, upper_bounds
from codesign.sampling import METHODS, sample_embeddings

DEEP_MIN_LAYERS = 8  # deep if l >= 8
WIDE_MIN_MEDIAN_HEADS = 8  # wide if the (upper) median head count >= 8
CATEGORIES = ("deep_wide", "deep_narrow", "shallow_wide", "shallow_narrow")


def median_heads(arch: Architecture) -> int:
    """Upper median of the number of heads over the layers."""
    return statistics.median_high(arch.heads_per_layer)


def model_category(arch: Architecture) -> str:
    """``deep_wide``, ``deep_narrow``, ``shallow_wide`` or ``shallow_narrow``."""
    depth = "deep" if arch.layers >= DEEP_MIN_LAYERS else "shallow"
    width = "wide" if median_heads(arch) >= WIDE_MIN_MEDIAN_HEADS else "narrow"
    return f"{depth}_{width}"


def category_counts(archs: Iterable[Architecture]) -> dict[str, int]:
    """How many architectures fall in each category (all four keys present)."""
    counts = dict.fromkeys(CATEGORIES, 0)
    for arch in archs:
        counts[model_category(arch)] += 1
    return counts


def pairwise_distances(embeddings: np.ndarray, space: DesignSpace | None = None) -> np.ndarray:
    """Condensed pairwise Euclidean distances of embeddings scaled to [0, 1] per entry."""
    from scipy.spatial.distance import pdist

    space = space or default_space()
    scale = np.maximum(upper_bounds(space), 1).astype(float)
    return pdist(np.asarray(embeddings, dtype=float) / scale)


def diversity_report(
    n: int = 256,
    seed: int = 0,
    methods: Iterable[str] = METHODS,
    space: DesignSpace | None = None,
    stratify: bool = True,
) -> dict:
    """Per sampling method: pairwise-distance quartiles and model-category counts of n samples."""
    space = space or default_space()
    report = {
        "n": n,
        "seed": seed,
        "stratified": stratify,
        "distance": "euclidean on embeddings scaled by their upper bounds",
        "methods": {},
    }
    for method in methods:
        embeddings = sample_embeddings(method, n, seed, space, stratify)
        distances = pairwise_distances(embeddings, space)
        q1, q2, q3 = np.percentile(distances, [25, 50, 75]) if distances.size else (0.0, 0.0, 0.0)
        report["methods"][method] = {
            "distance_quartiles": [float(q1), float(q2), float(q3)],
            "distance_min": float(distances.min()) if distances.size else 0.0,
            "distance_max": float(distances.max()) if distances.size else 0.0,
            "categories": category_counts(decode_many(embeddings, space)),
        }
    return report
