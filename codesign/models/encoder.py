"""The heterogeneous FlexiBERT 2.0 encoder: embeddings and encoder layers.

Layer ``j`` (hidden size ``h_j``, heads ``o_j``, feed-forward stack ``f_j``), following
BERT and the authors' modular BERT:

1. every head reads the layer input ``x`` (``h_j`` features) and returns its ``d_k``
   features (``codesign.models.operations``);
2. the heads are concatenated (``sum_k d_k`` features, which may be less than ``h_j``,
   e.g. 12 heads of a 128-wide layer give 120) and projected back to ``h_j``:
   ``a = LayerNorm(x + Dropout(concat W_o + b_o))``;
3. the feed-forward stack ``f_j = [f_1, ..., f_m]`` (1 to 3 hidden layers, GELU after
   each): ``y = LayerNorm(a + Dropout(FF(a)))`` with ``FF: h_j -> f_1 -> ... -> f_m -> h_j``;
4. if the next layer is wider or narrower (``h_{j+1} != h_j``), a linear projection
   ``h_j -> h_{j+1}`` (the authors' ``proj_head``); none between equal sizes.

The embeddings (token + position + token type, then LayerNorm and dropout) have the
first layer's width ``h_0``. The model takes ``input_ids``, ``attention_mask`` (1 for a
token, 0 for padding) and ``token_type_ids``, all ``B x N`` integers.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import nn

from codesign.architecture import Architecture, Head
from codesign.models.config import MASK_ADDEND, ModelConfig
from codesign.models.operations import HeadGroup, make_head_group


class Embeddings(nn.Module):
    """Token, position and token-type embeddings of width ``hidden``."""

    def __init__(self, hidden: int, config: ModelConfig) -> None:
        super().__init__()
        self.word = nn.Embedding(config.vocab_size, hidden)
        self.position = nn.Embedding(config.max_positions, hidden)
        self.token_type = nn.Embedding(config.type_vocab_size, hidden)
        self.norm = nn.LayerNorm(hidden, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)
        self.register_buffer("position_ids", torch.arange(config.max_positions)[None, :], persistent=False)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        """``B x N`` ids -> ``B x N x hidden``."""
        tokens = input_ids.shape[1]
        summed = self.word(input_ids) + self.position(self.position_ids[:, :tokens]) + self.token_type(token_type_ids)
        return self.dropout(self.norm(summed))


class EncoderLayer(nn.Module):
    """One heterogeneous encoder layer (heads, output projection, feed-forward stack, projection)."""

    def __init__(
        self, heads: Tuple[Head, ...], hidden: int, feed_forward: Tuple[int, ...], next_hidden: Optional[int], config: ModelConfig
    ) -> None:
        super().__init__()
        self.hidden = hidden
        self.heads = tuple(heads)
        order: List[Tuple[str, int]] = []
        for head in heads:
            if (head.op, head.dim) not in order:
                order.append((head.op, head.dim))
        counts = {key: sum(1 for head in heads if (head.op, head.dim) == key) for key in order}
        self.groups = nn.ModuleList(make_head_group(op, hidden, dim, counts[(op, dim)], config.dropout) for op, dim in order)
        # where each head of the model dictionary sits: (group index, slot in group, first output column)
        offsets, start = [], 0
        for group in self.groups:
            offsets.append(start)
            start += group.width
        seen = {key: 0 for key in order}
        placement = []
        for head in heads:
            key = (head.op, head.dim)
            index = order.index(key)
            slot = seen[key]
            seen[key] += 1
            placement.append((index, slot, offsets[index] + slot * head.dim))
        self.placement = tuple(placement)
        self.concat_width = start
        self.output = nn.Linear(self.concat_width, hidden)
        self.attention_norm = nn.LayerNorm(hidden, eps=config.layer_norm_eps)
        sizes = (hidden, *feed_forward, hidden)
        self.feed_forward = nn.ModuleList(nn.Linear(sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1))
        self.feed_forward_norm = nn.LayerNorm(hidden, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)
        self.activation = nn.GELU()
        self.projection = nn.Linear(hidden, next_hidden) if next_hidden is not None and next_hidden != hidden else None

    def head_group(self, head_index: int) -> Tuple[HeadGroup, int, slice]:
        """The group, slot and output-projection columns of head ``head_index`` (model-dictionary order)."""
        index, slot, start = self.placement[head_index]
        group = self.groups[index]
        return group, slot, slice(start, start + group.dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, score_bias: torch.Tensor) -> torch.Tensor:
        """``B x N x h_j`` -> ``B x N x h_{j+1}`` (``h_j`` for the last layer)."""
        parts = [group(x, mask, score_bias) for group in self.groups]
        concat = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
        attended = self.attention_norm(x + self.dropout(self.output(concat)))
        hidden = attended
        for linear in self.feed_forward[:-1]:
            hidden = self.activation(linear(hidden))
        out = self.feed_forward_norm(attended + self.dropout(self.feed_forward[-1](hidden)))
        if self.projection is not None:
            out = self.projection(out)
        return out


class Encoder(nn.Module):
    """Embeddings and the encoder layers of an architecture."""

    def __init__(self, arch: Architecture, config: ModelConfig) -> None:
        super().__init__()
        self.architecture = arch
        self.config = config
        self.embeddings = Embeddings(arch.hidden[0], config)
        self.layers = nn.ModuleList(
            EncoderLayer(
                arch.heads[j],
                arch.hidden[j],
                arch.feed_forward[j],
                arch.hidden[j + 1] if j + 1 < arch.layers else None,
                config,
            )
            for j in range(arch.layers)
        )

    @property
    def output_hidden(self) -> int:
        """Width of the encoder output (the last layer's hidden size)."""
        return self.architecture.hidden[-1]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        """``B x N`` ids, mask and types -> ``B x N x h_last`` hidden states."""
        mask = attention_mask.to(torch.float32)
        score_bias = (1.0 - mask) * MASK_ADDEND
        hidden = self.embeddings(input_ids, token_type_ids)
        for layer in self.layers:
            hidden = layer(hidden, mask, score_bias)
        return hidden
