"""The seven head operations of FlexiBERT 2.0, as groups of heads that share an operation.

A layer's heads may each be a different operation with its own dimension ``d``. Heads
of one layer with the same operation and dimension are computed together as a
:class:`HeadGroup` (one batched matrix product instead of one per head, as BERT does),
which changes nothing about what each head computes or how many parameters it has.
Every head reads the layer input ``x`` (``B x N x h``) and returns ``B x N x d``; the
layer concatenates the heads and projects them back to ``h`` (``codesign.models.encoder``).

Operations (EdgeTran Sec. III-A1, TransCODE Sec. III-B2) and the choices made where the
papers leave room:

* ``sa_sdp``: scaled dot-product self-attention, ``softmax(Q K^T / sqrt(d)) V``, with
  ``Q, K, V = x W + b`` of width ``d``. TransCODE writes the scale as ``sqrt(h)``; BERT
  (and so BERT-Tiny and BERT-Base, which this space must reproduce) divides by the
  square root of the *head* dimension, so ``sqrt(d)`` is used.
* ``sa_wma``: weighted multiplicative attention, ``softmax(Q W_a K^T / sqrt(d)) V`` with
  a trainable ``W_a`` of shape ``d x d`` per head (TransCODE: ``W_a in R^{h/n x h/n}``).
  ``W_a`` starts as the identity, so an untrained WMA head computes SDP attention (the
  authors' code draws it from U(-0.1, 0.1), which starts every score near zero).
* ``l_dft`` / ``l_dct``: a linear transform over the sequence (FNet). The head projects
  ``x`` to ``d`` features (``V = x W + b``; without it a head could not choose its own
  width) and mixes them with precomputed matrices: ``Re(F_N V F_d)`` (FNet's real part of
  the 2-D DFT) or the 2-D DCT-II ``D_N V D_d^T``; see ``codesign.models.transforms``.
  Padded positions are zeroed first, so they do not leak into real tokens.
* ``c_5`` / ``c_9`` / ``c_13``: ConvBERT's span-based dynamic convolution with kernel
  ``k``. Per head: ``Q = x W_q``; the key is a depthwise-separable 1-D convolution of
  ``x`` (pointwise ``x W_k`` to ``d`` channels, then a depthwise convolution of width
  ``k`` over the sequence; ConvBERT applies the depthwise part before the pointwise one,
  over all ``h`` input channels, which costs ``h k`` instead of ``d k`` per head); the
  kernel ``softmax((Q * K_conv) W_s + b_s)`` (``W_s``: ``d x k``) is generated per token and
  applied to ``V = x W_v`` over the ``k`` neighbouring tokens (zero padding at the ends).
  The kernel is per head, from that head's features only (ConvBERT mixes all heads in
  its kernel generator; heterogeneous heads keep their parameters separate). The
  ``k``-token window is built from ``k`` shifted slices, which every runtime supports.
  Padded positions are zeroed in the key and value inputs, so no real token's output
  depends on what the padding holds (true of every operation here).

Transfer support: :meth:`HeadGroup.head_tensors` returns, for one head of the group,
views of its parameters with the *space* of every axis named (``"residual"``: the
layer's input features; ``"head"``: the head's ``d`` features; ``"head_channel"``: ``d``
features that each own their parameters, e.g. depthwise kernels; ``None``: a fixed axis).
``codesign.transfer`` maps parent to child heads through those names.
"""

from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

import torch
from torch import nn

from codesign.models.catalog import CONVOLUTION_KERNELS, LINEAR_TRANSFORM_OPS, OPERATIONS, SELF_ATTENTION_OPS
from codesign.models.transforms import dct_matrices, dft_matrices

AxisSpaces = Tuple[Optional[str], ...]
HeadTensors = Dict[str, Tuple[torch.Tensor, AxisSpaces]]

class HeadGroup(nn.Module):
    """``count`` heads of one operation, each of dimension ``dim``, reading ``hidden`` features."""

    op: str

    def __init__(self, hidden: int, dim: int, count: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.dim = dim
        self.count = count

    @property
    def width(self) -> int:
        """Output features of the group: ``count * dim``."""
        return self.count * self.dim

    def _rows(self, slot: int) -> slice:
        return slice(slot * self.dim, (slot + 1) * self.dim)

    def _split(self, projected: torch.Tensor) -> torch.Tensor:
        """``B x N x (count d)`` -> ``B x count x N x d``."""
        batch, tokens = projected.shape[0], projected.shape[1]
        return projected.view(batch, tokens, self.count, self.dim).transpose(1, 2)

    def _merge(self, heads: torch.Tensor) -> torch.Tensor:
        """``B x count x N x d`` -> ``B x N x (count d)``."""
        batch, tokens = heads.shape[0], heads.shape[2]
        return heads.transpose(1, 2).reshape(batch, tokens, self.width)

    def _linear_rows(self, name: str, slot: int) -> HeadTensors:
        layer = getattr(self, name)
        rows = self._rows(slot)
        return {
            f"{name}.weight": (layer.weight.data[rows], ("head", "residual")),
            f"{name}.bias": (layer.bias.data[rows], ("head",)),
        }

    def head_tensors(self, slot: int) -> HeadTensors:
        """Views of the parameters of head ``slot``, with the space of each axis."""
        raise NotImplementedError

    def reset_parameters_(self, std: float, generator: torch.Generator) -> None:
        """Operation-specific initialisation beyond the generic Linear/LayerNorm one."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor, score_bias: torch.Tensor) -> torch.Tensor:
        """``x``: B x N x h; ``mask``: B x N (1 token, 0 padding); ``score_bias``: B x N additive."""
        raise NotImplementedError


class SelfAttentionGroup(HeadGroup):
    """SA-SDP (``weighted=False``) or SA-WMA (``weighted=True``) heads."""

    def __init__(self, hidden: int, dim: int, count: int, weighted: bool, dropout: float) -> None:
        super().__init__(hidden, dim, count)
        self.op = "sa_wma" if weighted else "sa_sdp"
        self.query = nn.Linear(hidden, self.width)
        self.key = nn.Linear(hidden, self.width)
        self.value = nn.Linear(hidden, self.width)
        self.w_a = nn.Parameter(torch.eye(dim).repeat(count, 1, 1)) if weighted else None
        self.dropout = nn.Dropout(dropout)
        self.scale = 1.0 / math.sqrt(dim)

    def head_tensors(self, slot: int) -> HeadTensors:
        tensors = {}
        for name in ("query", "key", "value"):
            tensors.update(self._linear_rows(name, slot))
        if self.w_a is not None:
            tensors["w_a"] = (self.w_a.data[slot], ("head", "head"))
        return tensors

    def reset_parameters_(self, std: float, generator: torch.Generator) -> None:
        if self.w_a is not None:
            with torch.no_grad():
                self.w_a.copy_(torch.eye(self.dim).repeat(self.count, 1, 1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor, score_bias: torch.Tensor) -> torch.Tensor:
        query = self._split(self.query(x))
        key = self._split(self.key(x))
        value = self._split(self.value(x))
        if self.w_a is not None:
            query = torch.matmul(query, self.w_a)
        scores = torch.matmul(query, key.transpose(-1, -2)) * self.scale
        scores = scores + score_bias[:, None, None, :]
        probs = self.dropout(torch.softmax(scores, dim=-1))
        return self._merge(torch.matmul(probs, value))


class LinearTransformGroup(HeadGroup):
    """LT-DFT or LT-DCT heads: a value projection mixed by fixed transform matrices."""

    def __init__(self, hidden: int, dim: int, count: int, op: str) -> None:
        super().__init__(hidden, dim, count)
        if op not in LINEAR_TRANSFORM_OPS:
            raise ValueError(f"not a linear-transform operation: {op!r}")
        self.op = op
        self.value = nn.Linear(hidden, self.width)

    def head_tensors(self, slot: int) -> HeadTensors:
        return self._linear_rows("value", slot)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, score_bias: torch.Tensor) -> torch.Tensor:
        value = self._split(self.value(x) * mask[:, :, None])
        tokens = value.shape[2]
        if self.op == "l_dft":
            cos_n, sin_n = dft_matrices(tokens)
            cos_d, sin_d = dft_matrices(self.dim)
            mixed = torch.matmul(torch.matmul(cos_n, value), cos_d) - torch.matmul(torch.matmul(sin_n, value), sin_d)
        else:
            dct_n, _ = dct_matrices(tokens)
            _, dct_d_t = dct_matrices(self.dim)
            mixed = torch.matmul(torch.matmul(dct_n, value), dct_d_t)
        return self._merge(mixed)


class DynamicConvolutionGroup(HeadGroup):
    """DSC heads (ConvBERT's span-based dynamic convolution) with kernel ``k`` tokens."""

    def __init__(self, hidden: int, dim: int, count: int, op: str, dropout: float) -> None:
        super().__init__(hidden, dim, count)
        if op not in CONVOLUTION_KERNELS:
            raise ValueError(f"not a convolution operation: {op!r}")
        self.op = op
        self.kernel = CONVOLUTION_KERNELS[op]
        self.query = nn.Linear(hidden, self.width)
        self.key = nn.Linear(hidden, self.width)
        self.key_conv = nn.Conv1d(self.width, self.width, self.kernel, padding=self.kernel // 2, groups=self.width)
        self.value = nn.Linear(hidden, self.width)
        self.span_weight = nn.Parameter(torch.zeros(count, dim, self.kernel))
        self.span_bias = nn.Parameter(torch.zeros(count, self.kernel))
        self.dropout = nn.Dropout(dropout)

    def head_tensors(self, slot: int) -> HeadTensors:
        rows = self._rows(slot)
        tensors = {}
        for name in ("query", "key", "value"):
            tensors.update(self._linear_rows(name, slot))
        tensors["key_conv.weight"] = (self.key_conv.weight.data[rows], ("head_channel", None, None))
        tensors["key_conv.bias"] = (self.key_conv.bias.data[rows], ("head_channel",))
        tensors["span_weight"] = (self.span_weight.data[slot], ("head", None))
        tensors["span_bias"] = (self.span_bias.data[slot], (None,))
        return tensors

    def reset_parameters_(self, std: float, generator: torch.Generator) -> None:
        with torch.no_grad():
            self.key_conv.weight.normal_(0.0, std, generator=generator)
            self.key_conv.bias.zero_()
            self.span_weight.normal_(0.0, std, generator=generator)
            self.span_bias.zero_()

    def forward(self, x: torch.Tensor, mask: torch.Tensor, score_bias: torch.Tensor) -> torch.Tensor:
        batch, tokens = x.shape[0], x.shape[1]
        query = self.query(x)
        key = self.key_conv((self.key(x) * mask[:, :, None]).transpose(1, 2)).transpose(1, 2)
        value = self.value(x) * mask[:, :, None]
        gate = (query * key).view(batch, tokens, self.count, self.dim)
        logits = torch.einsum("bnhd,hdk->bnhk", gate, self.span_weight) + self.span_bias
        weights = self.dropout(torch.softmax(logits, dim=-1))  # B x N x heads x k
        half = self.kernel // 2
        padded = nn.functional.pad(value, (0, 0, half, half)).view(batch, tokens + 2 * half, self.count, self.dim)
        out = weights[:, :, :, 0:1] * padded[:, 0:tokens]
        for tap in range(1, self.kernel):
            out = out + weights[:, :, :, tap : tap + 1] * padded[:, tap : tap + tokens]
        return out.reshape(batch, tokens, self.width)


def make_head_group(op: str, hidden: int, dim: int, count: int, dropout: float) -> HeadGroup:
    """The group module of ``count`` heads of operation ``op`` and dimension ``dim``."""
    if op in SELF_ATTENTION_OPS:
        return SelfAttentionGroup(hidden, dim, count, weighted=op == "sa_wma", dropout=dropout)
    if op in LINEAR_TRANSFORM_OPS:
        return LinearTransformGroup(hidden, dim, count, op)
    if op in CONVOLUTION_KERNELS:
        return DynamicConvolutionGroup(hidden, dim, count, op, dropout)
    raise ValueError(f"unknown operation {op!r} (known: {', '.join(OPERATIONS)})")
