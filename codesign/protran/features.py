"""Surrogate inputs: the index embedding, optionally with derived workload features.

The paper regresses on the 37-d embedding alone (Sec. III-B2). That embedding is
categorical: ``e[3 + 3j]`` indexes 21,805 multi-head combinations and ``e[2 + 3j]`` 258
feed-forward stacks, so neighbouring indices need not be similar models. The
``workload`` feature set appends what the index hides, counted by formula (no torch)
for the device's sequence length and batch:

* per encoder layer (12 slots, zero for absent layers): FLOPs, parameters, bytes moved;
* per operation type (the seven head operations, the feed-forward stacks and the
  remaining dense work: output projection, inter-layer projection, LayerNorms,
  embeddings): FLOPs, parameters, bytes moved, summed over layers;
* totals and shape summaries: FLOPs, parameters, bytes, layers, median hidden size,
  total heads.

Counting rules (stated, since runtimes differ):

* FLOPs are 2 x multiply-accumulates of the dense form of every operation, as the
  models of this project compute them (``codesign.models``): Q/K/V projections
  ``N h d`` each; scores and context ``N^2 d`` each (WMA adds ``N d^2`` for ``Q W_a``);
  DFT heads ``2 (N^2 d + N d^2)`` (real and imaginary parts of ``F_N V F_d``), DCT heads
  ``N^2 d + N d^2``; DSC heads a width-``k`` depthwise convolution, span logits and the
  weighted sum (``3 N d k``) besides their three projections; softmaxes ``5`` FLOPs per
  element; LayerNorm ``8`` per element; GELU ``8`` per element.
* Parameters follow the model builder (head weights and biases, ``W_a``, convolution
  and span parameters, output projection, feed-forward stack, LayerNorms, inter-layer
  projections; embeddings of a 30,522-token vocabulary with 512 positions).
* Bytes moved: fp32 (4 bytes) reads of every operation's inputs and writes of its
  outputs per sequence, plus its weights read once per batch (so weight traffic per
  sequence is divided by the batch size); embedding lookups read the rows of the tokens
  used, not the whole table. This is a roofline-style traffic count, not a cache
  simulation.

Units in the feature vector: GFLOP, millions of parameters, MB (10^6 bytes), per
sequence. Surrogates standardise their inputs, so the units only keep numbers readable.
The sequence length defaults to 128 tokens, the authors' ``max_seq_length`` for the
SST-2 runs that produced the published measurements.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from codesign.architecture import Architecture
from codesign.design_space import DesignSpace, default_space
from codesign.embedding import embed

FEATURE_SETS = ("embedding", "workload")
DEFAULT_SEQUENCE_LENGTH = 128  # tokens per sequence (the authors' max_seq_length for SST-2)
BYTES_PER_VALUE = 4  # fp32 activations and weights
VOCAB_SIZE = 30522  # BERT's uncased WordPiece vocabulary (tokens)
MAX_POSITIONS = 512  # position embeddings
TYPE_VOCAB_SIZE = 2  # token types
SOFTMAX_FLOPS_PER_ELEMENT = 5  # max, subtract, exp, sum, divide
LAYER_NORM_FLOPS_PER_ELEMENT = 8  # mean, variance, normalise, scale, shift
GELU_FLOPS_PER_ELEMENT = 8  # tanh approximation
GIGA = 1e9
MEGA = 1e6
OPERATION_TYPES = ("sa_sdp", "sa_wma", "l_dft", "l_dct", "c_5", "c_9", "c_13", "feed_forward", "dense_other")
CONVOLUTION_KERNELS = {"c_5": 5, "c_9": 9, "c_13": 13}  # kernel width in tokens
# Whole-model quantities that latency and energy grow with roughly linearly (the GP's linear kernel part).
LINEAR_FEATURES = ("total_gflop", "total_mparams", "total_mbytes", "layers", "median_hidden", "total_heads")


class FeatureError(ValueError):
    """A feature request that cannot be met (unknown feature set, bad sequence or batch)."""


@dataclass(frozen=True)
class WorkloadContext:
    """Sequence length (tokens) and batch size (sequences) a device runs models at."""

    sequence_length: int = DEFAULT_SEQUENCE_LENGTH
    batch_size: int = 1

    def __post_init__(self) -> None:
        for name in ("sequence_length", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise FeatureError(f"{name}: expected a positive integer, got {value!r}")


@dataclass
class _Cost:
    """FLOPs, parameters and bytes moved of one piece of work (per sequence)."""

    flops: float = 0.0
    params: float = 0.0
    bytes: float = 0.0

    def add(self, other: "_Cost") -> None:
        self.flops += other.flops
        self.params += other.params
        self.bytes += other.bytes


def _linear(tokens: int, inputs: int, outputs: int, batch: int) -> _Cost:
    """A dense layer over ``tokens`` rows: 2 N i o FLOPs, i o + o parameters."""
    params = inputs * outputs + outputs
    traffic = tokens * (inputs + outputs) + params / batch
    return _Cost(2.0 * tokens * inputs * outputs + tokens * outputs, params, BYTES_PER_VALUE * traffic)


def _elementwise(elements: int, flops_per_element: float, params: int = 0, batch: int = 1) -> _Cost:
    """Read and write every element once; parameters (LayerNorm scale and shift) read once per batch."""
    return _Cost(flops_per_element * elements, params, BYTES_PER_VALUE * (2 * elements + params / batch))


def _matmul(rows: int, inner: int, cols: int) -> _Cost:
    return _Cost(2.0 * rows * inner * cols, 0.0, BYTES_PER_VALUE * (rows * inner + inner * cols + rows * cols))


def head_cost(op: str, hidden: int, dim: int, context: WorkloadContext) -> _Cost:
    """FLOPs, parameters and bytes of one head of ``op`` (dimension ``dim``) per sequence."""
    n, b = context.sequence_length, context.batch_size
    cost = _Cost()
    if op in ("sa_sdp", "sa_wma"):
        for _ in range(3):
            cost.add(_linear(n, hidden, dim, b))
        if op == "sa_wma":
            cost.add(_matmul(n, dim, dim))
            cost.params += dim * dim
            cost.bytes += BYTES_PER_VALUE * dim * dim / b
        cost.add(_matmul(n, dim, n))
        cost.add(_elementwise(n * n, SOFTMAX_FLOPS_PER_ELEMENT))
        cost.add(_matmul(n, n, dim))
    elif op in ("l_dft", "l_dct"):
        cost.add(_linear(n, hidden, dim, b))
        parts = 2 if op == "l_dft" else 1  # real part of F_N V F_d needs cos and sin products
        for _ in range(parts):
            cost.add(_matmul(n, n, dim))
            cost.add(_matmul(n, dim, dim))
    elif op in CONVOLUTION_KERNELS:
        k = CONVOLUTION_KERNELS[op]
        for _ in range(3):
            cost.add(_linear(n, hidden, dim, b))
        conv_params = dim * k + dim
        span_params = dim * k + k
        cost.add(_Cost(2.0 * n * dim * k, conv_params, BYTES_PER_VALUE * (2 * n * dim + conv_params / b)))
        cost.add(_elementwise(n * dim, 1))  # gate Q * K
        cost.add(_Cost(2.0 * n * dim * k, span_params, BYTES_PER_VALUE * (n * dim + n * k + span_params / b)))
        cost.add(_elementwise(n * k, SOFTMAX_FLOPS_PER_ELEMENT))
        cost.add(_Cost(2.0 * n * dim * k, 0.0, BYTES_PER_VALUE * (n * k + n * dim * k + n * dim)))
    else:
        raise FeatureError(f"unknown head operation {op!r}")
    return cost


def layer_costs(arch: Architecture, j: int, context: WorkloadContext) -> dict[str, _Cost]:
    """Cost of encoder layer ``j`` by operation type (see ``OPERATION_TYPES``)."""
    n, b = context.sequence_length, context.batch_size
    hidden = arch.hidden[j]
    costs = {name: _Cost() for name in OPERATION_TYPES}
    for head in arch.heads[j]:
        costs[head.op].add(head_cost(head.op, hidden, head.dim, context))
    concat = sum(head.dim for head in arch.heads[j])
    dense = costs["dense_other"]
    dense.add(_linear(n, concat, hidden, b))
    dense.add(_elementwise(n * hidden, LAYER_NORM_FLOPS_PER_ELEMENT, 2 * hidden, b))
    dense.add(_elementwise(n * hidden, LAYER_NORM_FLOPS_PER_ELEMENT, 2 * hidden, b))
    following = arch.hidden[j + 1] if j + 1 < arch.layers else hidden
    if following != hidden:
        dense.add(_linear(n, hidden, following, b))
    sizes = (hidden, *arch.feed_forward[j], hidden)
    for i in range(len(sizes) - 1):
        costs["feed_forward"].add(_linear(n, sizes[i], sizes[i + 1], b))
    for size in arch.feed_forward[j]:
        costs["feed_forward"].add(_elementwise(n * size, GELU_FLOPS_PER_ELEMENT))
    return costs


def embedding_cost(arch: Architecture, context: WorkloadContext) -> _Cost:
    """Token, position and type embeddings plus their LayerNorm (lookups: no FLOPs)."""
    n, b = context.sequence_length, context.batch_size
    width = arch.hidden[0]
    table = (VOCAB_SIZE + MAX_POSITIONS + TYPE_VOCAB_SIZE) * width
    cost = _Cost(0.0, table + 2 * width, BYTES_PER_VALUE * (3 * n * width + 2 * width / b))
    cost.add(_elementwise(n * width, LAYER_NORM_FLOPS_PER_ELEMENT))
    return cost


def workload_names(space: DesignSpace | None = None) -> list[str]:
    """Names of the workload features, in vector order."""
    space = space or default_space()
    names = []
    for j in range(space.max_layers):
        names += [f"layer{j}_gflop", f"layer{j}_mparams", f"layer{j}_mbytes"]
    for op in OPERATION_TYPES:
        names += [f"{op}_gflop", f"{op}_mparams", f"{op}_mbytes"]
    names += ["total_gflop", "total_mparams", "total_mbytes", "layers", "median_hidden", "total_heads"]
    return names


def workload_vector(arch: Architecture, context: WorkloadContext, space: DesignSpace | None = None) -> np.ndarray:
    """The workload features of one architecture (see :func:`workload_names`)."""
    space = space or default_space()
    per_layer = np.zeros((space.max_layers, 3))
    per_op = {name: _Cost() for name in OPERATION_TYPES}
    total = _Cost()
    for j in range(arch.layers):
        layer_total = _Cost()
        for name, cost in layer_costs(arch, j, context).items():
            per_op[name].add(cost)
            layer_total.add(cost)
        if j < space.max_layers:
            per_layer[j] = (layer_total.flops / GIGA, layer_total.params / MEGA, layer_total.bytes / MEGA)
        total.add(layer_total)
    embeddings = embedding_cost(arch, context)
    per_op["dense_other"].add(embeddings)
    total.add(embeddings)
    op_rows = [(per_op[name].flops / GIGA, per_op[name].params / MEGA, per_op[name].bytes / MEGA) for name in OPERATION_TYPES]
    summary = [
        total.flops / GIGA,
        total.params / MEGA,
        total.bytes / MEGA,
        float(arch.layers),
        float(statistics.median(arch.hidden)),
        float(sum(arch.heads_per_layer)),
    ]
    return np.concatenate([per_layer.ravel(), np.array(op_rows).ravel(), summary])


def feature_names(kind: str, space: DesignSpace | None = None) -> list[str]:
    """Column names of a feature set."""
    space = space or default_space()
    check_feature_set(kind)
    names = [f"e{i}" for i in range(space.embedding_dim)]
    return names + workload_names(space) if kind == "workload" else names


def linear_feature_columns(kind: str, space: DesignSpace | None = None) -> list[int] | None:
    """Columns of the whole-model totals in a ``workload`` matrix; None (all columns) for ``embedding``."""
    if check_feature_set(kind) != "workload":
        return None
    names = feature_names(kind, space)
    return [names.index(name) for name in LINEAR_FEATURES]


def check_feature_set(kind: str) -> str:
    """Return ``kind`` if it names a feature set, else raise FeatureError."""
    if kind not in FEATURE_SETS:
        raise FeatureError(f"unknown feature set {kind!r} (choose from {', '.join(FEATURE_SETS)})")
    return kind


def featurize(
    archs: Iterable[Architecture],
    kind: str = "workload",
    context: WorkloadContext | None = None,
    space: DesignSpace | None = None,
) -> np.ndarray:
    """Feature matrix ``(n, d)`` of architectures: the embedding, plus workload features for ``workload``."""
    space = space or default_space()
    context = context or WorkloadContext()
    check_feature_set(kind)
    rows = []
    for arch in archs:
        row = embed(arch, space).astype(float)
        if kind == "workload":
            row = np.concatenate([row, workload_vector(arch, context, space)])
        rows.append(row)
    return np.array(rows, dtype=float).reshape(len(rows), len(feature_names(kind, space)))


def total_workload(arch: Architecture, context: WorkloadContext | None = None) -> dict[str, float]:
    """Total GFLOP, millions of parameters and MB moved per sequence of one architecture."""
    context = context or WorkloadContext()
    names = workload_names()
    vector = workload_vector(arch, context)
    return {name: float(vector[names.index(name)]) for name in ("total_gflop", "total_mparams", "total_mbytes")}


def median_hidden(arch: Architecture) -> float:
    """Median hidden size over the layers (the width axis of Fig. 13)."""
    return float(statistics.median(arch.hidden))
