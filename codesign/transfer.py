"""Weight transfer from a trained parent to a neighbouring child (EdgeTran Sec. III-A2, Fig. 3).

FlexiBERT 2.0 transfers at the level of attention heads: heads that are alike in the two
models are copied *directly*; where dimensions differ, the parent's weights are carried
over by **ordered transfer** (OT: clone the leading part of each weight matrix) or by
**random projection** (RP: project the weight matrix to the new dimension with a random
Gaussian matrix of entries drawn from N(0, 1/n_c), n_c the target dimension, after the
Johnson-Lindenstrauss lemma). Feed-forward layers are transferred the same way; every
block the parent does not have (a new head, layer or feed-forward layer) keeps its fresh
random initialisation (GPTran, Sec. III-D).

How it is done here (choices the paper leaves open):

* **Spaces.** Every axis of every weight lives in a feature space: the residual stream of
  layer ``j`` (width ``h_j``), a head's ``d`` features, a feed-forward hidden layer. A
  child space is paired with the parent's space it descends from (layer ``j`` with layer
  ``j``; head with matched head; feed-forward layer ``i`` with layer ``i``, and the stacks'
  last layers with each other). Where the two widths are equal the space maps by
  identity (a direct copy). Where they differ, OT keeps the leading coordinates, and RP
  draws **one** projection matrix ``P`` (``n_p x n_c``, entries N(0, 1/n_c)) per pair of
  spaces and uses it on every axis in that space (``W_c = P_out^T W_p P_in``), so that
  the layers of the child stay consistent with each other (``P P^T ~ I``).
* **Heads.** In each layer, a child head is matched first to an unused parent head with
  the same operation and dimension, then to one with the same operation and the closest
  dimension; otherwise it is new. The columns of the output projection follow the heads.
* **Elementwise parameters** (LayerNorm gains and biases, depthwise-convolution kernels,
  one per channel) are not vectors of their space, so both modes copy their leading part
  (projecting a gain of ones would give random signs).
* **Between layers.** A parent with equal widths in layers ``j`` and ``j+1`` has no
  projection there; it acts as the identity, which is what a child's new projection
  starts from (mapped into the child's spaces), so the residual stream stays connected.
* **Heads of the task.** The pooler/classifier and the MLM transform are transferred
  like any layer when parent and child have the same task (the classifier only with the
  same number of labels); the vocabulary and positions are indices, never projected.

Where child and parent are equal every space maps by identity: the child is a copy and
computes the parent's function exactly (a test checks it, for both modes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from codesign.architecture import Architecture, Head
from codesign.models.build import build_model
from codesign.models.heads import MaskedLanguageModel, SequenceClassifier, TaskModel

MODES = ("ot", "rp")
METHODS = ("copied", "ot", "rp", "fresh")


class TransferError(ValueError):
    """Weight transfer asked for something it cannot do."""


@dataclass(frozen=True)
class AxisMap:
    """How one axis goes from parent to child: ``identity``, ``ordered`` or ``project`` (with ``matrix``)."""

    kind: str
    parent: int
    child: int
    matrix: Optional[torch.Tensor] = None


@dataclass
class TransferReport:
    """What was transferred, how, and what was initialised fresh."""

    mode: str
    seed: int
    tensors: List[dict] = field(default_factory=list)
    heads: List[dict] = field(default_factory=list)
    unused: List[str] = field(default_factory=list)
    parameters: Dict[str, int] = field(default_factory=lambda: {m: 0 for m in METHODS})

    def to_dict(self) -> dict:
        """JSON types."""
        total = sum(self.parameters.values())
        return {
            "mode": self.mode,
            "seed": self.seed,
            "parameters": dict(self.parameters),
            "parameters_total": total,
            "transferred_fraction": (total - self.parameters["fresh"]) / total if total else 0.0,
            "heads": self.heads,
            "tensors": self.tensors,
            "unused_parent_parts": self.unused,
        }


class _Spaces:
    """Pairs of parent/child feature spaces and their axis maps (one RP matrix per pair)."""

    def __init__(self, mode: str, seed: int) -> None:
        self.mode = mode
        self.rng = np.random.default_rng(seed)
        self.maps: Dict[Tuple[str, str], AxisMap] = {}

    def vector(self, parent_space: str, child_space: str, n_parent: int, n_child: int) -> AxisMap:
        """The map of a space whose coordinates are a vector (projectable in RP mode)."""
        key = (parent_space, child_space)
        found = self.maps.get(key)
        if found is not None:
            if (found.parent, found.child) != (n_parent, n_child):
                raise TransferError(f"space {key} has sizes {found.parent}->{found.child}, asked {n_parent}->{n_child}")
            return found
        if n_parent == n_child:
            made = AxisMap("identity", n_parent, n_child)
        elif self.mode == "ot":
            made = AxisMap("ordered", n_parent, n_child)
        else:
            draws = self.rng.normal(0.0, np.sqrt(1.0 / n_child), size=(n_parent, n_child))
            made = AxisMap("project", n_parent, n_child, torch.from_numpy(draws))
        self.maps[key] = made
        return made

    @staticmethod
    def elementwise(n_parent: int, n_child: int) -> AxisMap:
        """An axis of per-coordinate parameters or indices: identity or leading part, never projected."""
        return AxisMap("identity" if n_parent == n_child else "ordered", n_parent, n_child)


class _Transfer:
    """One transfer run: walks the child, writes what the parent provides, records it."""

    def __init__(self, parent: TaskModel, child: TaskModel, mode: str, seed: int) -> None:
        if mode not in MODES:
            raise TransferError(f"unknown transfer mode {mode!r} (known: {', '.join(MODES)})")
        self.parent, self.child = parent, child
        self.spaces = _Spaces(mode, seed)
        self.report = TransferReport(mode, seed)
        self.written = 0

    # -- tensors -----------------------------------------------------------------------

    def copy(self, name: str, source: str, parent: torch.Tensor, child: torch.Tensor, axes: Sequence[AxisMap]) -> None:
        """Write ``parent`` into ``child`` through the axis maps; record how."""
        if len(axes) != parent.dim() or parent.dim() != child.dim():
            raise TransferError(f"{name}: {len(axes)} axis maps for tensors of rank {parent.dim()} and {child.dim()}")
        value = parent.detach().to(torch.float64)
        for axis, axis_map in enumerate(axes):
            if axis_map.kind == "project":
                value = torch.movedim(torch.tensordot(value, axis_map.matrix, dims=([axis], [0])), -1, axis)
        block = tuple(slice(0, min(value.shape[a], child.shape[a])) for a in range(child.dim()))
        with torch.no_grad():
            child[block] = value[block].to(child.dtype)
        kinds = {axis_map.kind for axis_map in axes}
        how = "rp" if "project" in kinds else "ot" if "ordered" in kinds else "copied"
        count = int(np.prod([b.stop for b in block])) if block else 1
        self.report.parameters[how] += count
        self.written += count
        self.report.tensors.append(
            {"tensor": name, "from": source, "how": how, "parent_shape": list(parent.shape), "child_shape": list(child.shape)}
        )

    def linear(
        self, name: str, source: str, parent: torch.nn.Linear, child: torch.nn.Linear, out_map: AxisMap, in_map: AxisMap
    ) -> None:
        """A dense layer (weight ``out x in``, bias ``out``)."""
        self.copy(f"{name}.weight", f"{source}.weight", parent.weight.data, child.weight.data, (out_map, in_map))
        self.copy(f"{name}.bias", f"{source}.bias", parent.bias.data, child.bias.data, (out_map,))

    def norm(self, name: str, source: str, parent: torch.nn.LayerNorm, child: torch.nn.LayerNorm) -> None:
        """A LayerNorm: elementwise gain and bias."""
        axis = self.spaces.elementwise(parent.weight.shape[0], child.weight.shape[0])
        self.copy(f"{name}.weight", f"{source}.weight", parent.weight.data, child.weight.data, (axis,))
        self.copy(f"{name}.bias", f"{source}.bias", parent.bias.data, child.bias.data, (axis,))

    # -- spaces --------------------------------------------------------------------------

    def residual(self, j_parent: int, j_child: int) -> AxisMap:
        """The residual stream of parent layer ``j_parent`` paired with child layer ``j_child``."""
        arch_p, arch_c = self.parent.architecture, self.child.architecture
        return self.spaces.vector(f"res{j_parent}", f"res{j_child}", arch_p.hidden[j_parent], arch_c.hidden[j_child])

    # -- the walk ------------------------------------------------------------------------

    def run(self) -> TransferReport:
        """Transfer everything the parent provides; the rest of the child stays fresh."""
        arch_p, arch_c = self.parent.architecture, self.child.architecture
        self.embeddings()
        for j in range(arch_c.layers):
            if j < arch_p.layers:
                self.layer(j)
            else:
                self.report.heads.extend(
                    {"layer": j, "head": k, "child": head.name, "from": None, "how": "fresh"}
                    for k, head in enumerate(arch_c.heads[j])
                )
        self.report.unused.extend(f"layer {j}" for j in range(arch_c.layers, arch_p.layers))
        self.task_head()
        total = sum(p.numel() for p in self.child.parameters())
        self.report.parameters["fresh"] = total - self.written
        return self.report

    def embeddings(self) -> None:
        """Token, position and type embeddings (indices ordered, features in the layer-0 space)."""
        parent, child = self.parent.encoder.embeddings, self.child.encoder.embeddings
        features = self.residual(0, 0)
        for name in ("word", "position", "token_type"):
            p, c = getattr(parent, name).weight.data, getattr(child, name).weight.data
            rows = self.spaces.elementwise(p.shape[0], c.shape[0])
            self.copy(f"encoder.embeddings.{name}.weight", f"encoder.embeddings.{name}.weight", p, c, (rows, features))
        self.norm("encoder.embeddings.norm", "encoder.embeddings.norm", parent.norm, child.norm)

    def layer(self, j: int) -> None:
        """Heads, output projection, feed-forward stack and inter-layer projection of layer ``j``."""
        arch_p, arch_c = self.parent.architecture, self.child.architecture
        p_layer, c_layer = self.parent.encoder.layers[j], self.child.encoder.layers[j]
        prefix = f"encoder.layers.{j}"
        res = self.residual(j, j)
        matches = match_heads(arch_c.heads[j], arch_p.heads[j])
        for k, (head, source) in enumerate(zip(arch_c.heads[j], matches)):
            if source is None:
                self.report.heads.append({"layer": j, "head": k, "child": head.name, "from": None, "how": "fresh"})
                continue
            before = dict(self.report.parameters)
            self.head(j, k, source, res)
            moved = {m: self.report.parameters[m] - before[m] for m in METHODS}
            how = "rp" if moved["rp"] else "ot" if moved["ot"] else "copied"
            self.report.heads.append(
                {"layer": j, "head": k, "child": head.name, "from": {"head": source, "name": arch_p.heads[j][source].name}, "how": how}
            )
        self.report.unused.extend(
            f"layer {j} head {k} ({head.name})" for k, head in enumerate(arch_p.heads[j]) if k not in matches
        )
        self.copy(f"{prefix}.output.bias", f"{prefix}.output.bias", p_layer.output.bias.data, c_layer.output.bias.data, (res,))
        self.norm(f"{prefix}.attention_norm", f"{prefix}.attention_norm", p_layer.attention_norm, c_layer.attention_norm)
        self.feed_forward(j, res)
        self.norm(f"{prefix}.feed_forward_norm", f"{prefix}.feed_forward_norm", p_layer.feed_forward_norm, c_layer.feed_forward_norm)
        self.projection(j)

    def head(self, j: int, k: int, source: int, res: AxisMap) -> None:
        """Child head ``k`` of layer ``j`` from parent head ``source``, and its output-projection columns."""
        p_layer, c_layer = self.parent.encoder.layers[j], self.child.encoder.layers[j]
        p_group, p_slot, p_cols = p_layer.head_group(source)
        c_group, c_slot, c_cols = c_layer.head_group(k)
        head_space = self.spaces.vector(f"head{j}.{source}", f"head{j}.{k}", p_group.dim, c_group.dim)
        p_tensors, c_tensors = p_group.head_tensors(p_slot), c_group.head_tensors(c_slot)
        where = f"encoder.layers.{j}"
        for name, (c_tensor, spaces) in c_tensors.items():
            p_tensor, _ = p_tensors[name]
            axes = []
            for axis, space in enumerate(spaces):
                if space == "residual":
                    axes.append(res)
                elif space == "head":
                    axes.append(head_space)
                elif space == "head_channel":
                    axes.append(self.spaces.elementwise(p_tensor.shape[axis], c_tensor.shape[axis]))
                else:
                    if p_tensor.shape[axis] != c_tensor.shape[axis]:
                        raise TransferError(f"{where} head {k} {name}: fixed axis {axis} differs")
                    axes.append(AxisMap("identity", p_tensor.shape[axis], c_tensor.shape[axis]))
            self.copy(f"{where}.head{k}.{name}", f"{where}.head{source}.{name}", p_tensor, c_tensor, axes)
        self.copy(
            f"{where}.output.weight[:, head{k}]",
            f"{where}.output.weight[:, head{source}]",
            p_layer.output.weight.data[:, p_cols],
            c_layer.output.weight.data[:, c_cols],
            (res, head_space),
        )

    def feed_forward(self, j: int, res: AxisMap) -> None:
        """Feed-forward layers paired by position; the stacks' output layers with each other."""
        p_stack, c_stack = self.parent.encoder.layers[j].feed_forward, self.child.encoder.layers[j].feed_forward
        p_depth, c_depth = len(p_stack) - 1, len(c_stack) - 1  # hidden layers of each stack
        prefix = f"encoder.layers.{j}.feed_forward"

        def space(i: int) -> AxisMap:
            return self.spaces.vector(f"ff{j}.{i}", f"ff{j}.{i}", p_stack[i].out_features, c_stack[i].out_features)

        for i in range(min(p_depth, c_depth)):
            in_map = res if i == 0 else space(i - 1)
            self.linear(f"{prefix}.{i}", f"{prefix}.{i}", p_stack[i], c_stack[i], space(i), in_map)
        last_in = self.spaces.vector(
            f"ff{j}.{p_depth - 1}", f"ff{j}.{c_depth - 1}", p_stack[-1].in_features, c_stack[-1].in_features
        )
        self.linear(f"{prefix}.{c_depth}", f"{prefix}.{p_depth}", p_stack[-1], c_stack[-1], res, last_in)
        self.report.unused.extend(f"{prefix}.{i}" for i in range(min(p_depth, c_depth), p_depth))

    def projection(self, j: int) -> None:
        """The child's projection from layer ``j`` to ``j + 1`` (the parent's, or the identity it implies)."""
        arch_p = self.parent.architecture
        p_layer, c_layer = self.parent.encoder.layers[j], self.child.encoder.layers[j]
        name = f"encoder.layers.{j}.projection"
        if c_layer.projection is None:
            if p_layer.projection is not None:
                self.report.unused.append(name)
            return
        if j + 1 >= arch_p.layers:
            return  # the parent ends here: the child's projection into its new layer stays fresh
        out_map, in_map = self.residual(j + 1, j + 1), self.residual(j, j)
        if p_layer.projection is not None:
            self.linear(name, name, p_layer.projection, c_layer.projection, out_map, in_map)
            return
        identity = torch.eye(arch_p.hidden[j], dtype=torch.float64)
        self.copy(f"{name}.weight", "identity (parent has equal widths)", identity, c_layer.projection.weight.data, (out_map, in_map))
        self.copy(f"{name}.bias", "zero (parent has equal widths)", torch.zeros(arch_p.hidden[j]), c_layer.projection.bias.data, (out_map,))

    def task_head(self) -> None:
        """Pooler and classifier, or the MLM transform and decoder bias, when the tasks agree."""
        parent, child = self.parent, self.child
        last = self.residual(parent.architecture.layers - 1, child.architecture.layers - 1)
        if isinstance(parent, SequenceClassifier) and isinstance(child, SequenceClassifier):
            self.linear("pooler.dense", "pooler.dense", parent.pooler.dense, child.pooler.dense, last, last)
            if parent.num_labels == child.num_labels:
                labels = AxisMap("identity", parent.num_labels, child.num_labels)
                self.linear("classifier", "classifier", parent.classifier, child.classifier, labels, last)
            else:
                self.report.unused.append("classifier (different number of labels)")
        elif isinstance(parent, MaskedLanguageModel) and isinstance(child, MaskedLanguageModel):
            first = self.residual(0, 0)
            self.linear("transform", "transform", parent.transform, child.transform, first, last)
            self.norm("transform_norm", "transform_norm", parent.transform_norm, child.transform_norm)
            vocab = self.spaces.elementwise(parent.decoder_bias.shape[0], child.decoder_bias.shape[0])
            self.copy("decoder_bias", "decoder_bias", parent.decoder_bias.data, child.decoder_bias.data, (vocab,))
        else:
            self.report.unused.append(f"{parent.task} head (the child's task is {child.task})")


def match_heads(child: Sequence[Head], parent: Sequence[Head]) -> List[Optional[int]]:
    """For each child head, the parent head it descends from (same op; same dim first, then closest), or None."""
    matches: List[Optional[int]] = [None] * len(child)
    used: set = set()
    for k, head in enumerate(child):
        for i, candidate in enumerate(parent):
            if i not in used and candidate == head:
                matches[k] = i
                used.add(i)
                break
    for k, head in enumerate(child):
        if matches[k] is not None:
            continue
        options = [(abs(candidate.dim - head.dim), i) for i, candidate in enumerate(parent) if i not in used and candidate.op == head.op]
        if options:
            _, i = min(options)
            matches[k] = i
            used.add(i)
    return matches


def transfer_weights(parent: TaskModel, child: TaskModel, mode: str, seed: int = 0) -> TransferReport:
    """Overwrite ``child`` (freshly initialised) with what it inherits from ``parent``; report it."""
    return _Transfer(parent, child, mode, seed).run()


def transfer(
    parent: TaskModel, child_arch: Architecture, mode: str, seed: int = 0, task: Optional[str] = None, num_labels: Optional[int] = None
) -> tuple[TaskModel, TransferReport]:
    """Build ``child_arch`` (fresh weights from ``seed``, parent's settings) and transfer into it."""
    task = task or parent.task
    labels = num_labels if num_labels is not None else getattr(parent, "num_labels", 2)
    child = build_model(child_arch, task, labels, parent.config, seed=seed)
    report = transfer_weights(parent, child, mode, seed)
    return child, report
