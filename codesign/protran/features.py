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

The ``compact`` feature set drops the index embedding and the per-layer slots and keeps
the per-operation-type and total rows, plus **shape features** that a sum hides: the
largest layer's FLOPs, bytes and parameters and its arithmetic intensity (FLOP per
byte), the whole model's intensity, the largest, mean and smallest hidden size, the
widest and mean feed-forward width and the number of feed-forward layers, the most and
mean heads per layer, the number of dense (linear) layers a forward pass runs, the
head count of each operation type, and the logarithms of total FLOPs, bytes and
parameters. Peak power follows the most intense kernel rather than the sum of the work,
and an isotropic kernel (the GP's) weighs every column alike, so 73 index and per-layer
columns that carry little signal blur its distances. Held-out (5-fold over each whole
published pool, GP), ``compact`` against ``workload``: M1 GPU peak power 0.0055 vs
0.0098, energy 0.0014 vs 0.0019, latency 0.0020 vs 0.0027; M1 CPU peak power 0.0022 vs
0.0029; every other measure of the five pools with 60 or more models within 0.0005
(RPi and Jetson CPU peak power 0.0005 worse). On the 18-model Jetson GPU pool it is
worse (latency 0.058 vs 0.051). Fitting log targets (worse on most pools), Matern or
grouped-ARD kernels, and other sequence lengths (16 to 256 tokens) moved none of the
numbers that decide convergence by more than about 10%.

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

FEATURE_SETS = ("embedding", "workload", "compact")
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
HEAD_OPERATIONS = OPERATION_TYPES[:7]
SUMMARY_FEATURES = ("total_gflop", "total_mparams", "total_mbytes", "layers", "median_hidden", "total_heads")
# Whole-model quantities that latency and energy grow with roughly linearly (the GP's linear kernel part).
LINEAR_FEATURES = SUMMARY_FEATURES
SHAPE_FEATURES = (  # units: GFLOP, MB, millions of parameters, FLOP per byte, hidden units, counts
    "max_layer_gflop",
    "max_layer_mbytes",
    "max_layer_mparams",
    "max_layer_flop_per_byte",
    "flop_per_byte",
    "max_hidden",
    "mean_hidden",
    "min_hidden",
    "max_ff_width",
    "mean_ff_width",
    "ff_layers",
    "max_heads",
    "mean_heads",
    "linear_layers",
)
LOG_FEATURES = ("log_total_gflop", "log_total_mbytes", "log_total_mparams")


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
    return names + _operation_names() + list(SUMMARY_FEATURES)


def _operation_names() -> list[str]:
    names = []
    for op in OPERATION_TYPES:
        names += [f"{op}_gflop", f"{op}_mparams", f"{op}_mbytes"]
    return names


def shape_names() -> list[str]:
    """Names of the shape features of the ``compact`` set, in vector order."""
    return list(SHAPE_FEATURES) + [f"heads_{op}" for op in HEAD_OPERATIONS] + list(LOG_FEATURES)


def compact_names() -> list[str]:
    """Names of the ``compact`` feature set: per-operation-type rows, totals, shape features."""
    return _operation_names() + list(SUMMARY_FEATURES) + shape_names()


@dataclass
class _Workload:
    """Costs of one architecture: per layer, per operation type, and the total (per sequence)."""

    layers: list[_Cost]
    operations: dict[str, _Cost]
    total: _Cost


def _workload(arch: Architecture, context: WorkloadContext) -> _Workload:
    per_op = {name: _Cost() for name in OPERATION_TYPES}
    per_layer = []
    total = _Cost()
    for j in range(arch.layers):
        layer_total = _Cost()
        for name, cost in layer_costs(arch, j, context).items():
            per_op[name].add(cost)
            layer_total.add(cost)
        per_layer.append(layer_total)
        total.add(layer_total)
    embeddings = embedding_cost(arch, context)
    per_op["dense_other"].add(embeddings)
    total.add(embeddings)
    return _Workload(per_layer, per_op, total)


def _operation_and_summary(arch: Architecture, work: _Workload) -> np.ndarray:
    op_rows = [(work.operations[name].flops / GIGA, work.operations[name].params / MEGA, work.operations[name].bytes / MEGA) for name in OPERATION_TYPES]
    summary = [
        work.total.flops / GIGA,
        work.total.params / MEGA,
        work.total.bytes / MEGA,
        float(arch.layers),
        float(statistics.median(arch.hidden)),
        float(sum(arch.heads_per_layer)),
    ]
    return np.concatenate([np.array(op_rows).ravel(), summary])


def workload_vector(arch: Architecture, context: WorkloadContext, space: DesignSpace | None = None) -> np.ndarray:
    """The workload features of one architecture (see :func:`workload_names`)."""
    space = space or default_space()
    work = _workload(arch, context)
    per_layer = np.zeros((space.max_layers, 3))
    for j, cost in enumerate(work.layers[: space.max_layers]):
        per_layer[j] = (cost.flops / GIGA, cost.params / MEGA, cost.bytes / MEGA)
    return np.concatenate([per_layer.ravel(), _operation_and_summary(arch, work)])


def linear_layer_count(arch: Architecture) -> int:
    """Dense (linear) layers one forward pass runs: head projections, output and inter-layer projections, feed-forward."""
    count = 0
    for j in range(arch.layers):
        for head in arch.heads[j]:
            count += 1 if head.op in ("l_dft", "l_dct") else 3  # V only, or Q, K and V
        count += 1  # output projection of the concatenated heads
        if j + 1 < arch.layers and arch.hidden[j + 1] != arch.hidden[j]:
            count += 1  # inter-layer projection
        count += len(arch.feed_forward[j]) + 1
    return count


def shape_vector(arch: Architecture, context: WorkloadContext) -> np.ndarray:
    """The shape features of one architecture (see :func:`shape_names`)."""
    work = _workload(arch, context)
    return _shape(arch, work)


def _shape(arch: Architecture, work: _Workload) -> np.ndarray:
    flops = np.array([cost.flops for cost in work.layers])
    traffic = np.array([cost.bytes for cost in work.layers])
    params = np.array([cost.params for cost in work.layers])
    widths = [size for stack in arch.feed_forward for size in stack]
    heads = np.array(arch.heads_per_layer, dtype=float)
    counts = {op: 0 for op in HEAD_OPERATIONS}
    for layer in arch.heads:
        for head in layer:
            counts[head.op] += 1
    shape = [
        flops.max() / GIGA,
        traffic.max() / MEGA,
        params.max() / MEGA,
        float((flops / traffic).max()),
        work.total.flops / work.total.bytes,
        float(max(arch.hidden)),
        float(np.mean(arch.hidden)),
        float(min(arch.hidden)),
        float(max(widths)),
        float(np.mean(widths)),
        float(len(widths)),
        float(heads.max()),
        float(heads.mean()),
        float(linear_layer_count(arch)),
    ]
    logs = [np.log(work.total.flops / GIGA), np.log(work.total.bytes / MEGA), np.log(work.total.params / MEGA)]
    return np.array(shape + [float(counts[op]) for op in HEAD_OPERATIONS] + logs)


def compact_vector(arch: Architecture, context: WorkloadContext) -> np.ndarray:
    """The ``compact`` features of one architecture (see :func:`compact_names`)."""
    work = _workload(arch, context)
    return np.concatenate([_operation_and_summary(arch, work), _shape(arch, work)])


def feature_names(kind: str, space: DesignSpace | None = None) -> list[str]:
    """Column names of a feature set."""
    space = space or default_space()
    check_feature_set(kind)
    if kind == "compact":
        return compact_names()
    names = [f"e{i}" for i in range(space.embedding_dim)]
    return names + workload_names(space) if kind == "workload" else names


def linear_feature_columns(kind: str, space: DesignSpace | None = None) -> list[int] | None:
    """Columns of the whole-model totals in a ``workload`` or ``compact`` matrix; None (all columns) for ``embedding``."""
    if check_feature_set(kind) == "embedding":
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
    """Feature matrix ``(n, d)`` of architectures (see :data:`FEATURE_SETS`)."""
    space = space or default_space()
    context = context or WorkloadContext()
    check_feature_set(kind)
    rows = []
    for arch in archs:
        if kind == "compact":
            rows.append(compact_vector(arch, context))
            continue
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
