"""Task heads on the encoder: masked-language-model pre-training and sequence classification.

* :class:`MaskedLanguageModel`: BERT's MLM head, ``LayerNorm(GELU(x W_t + b_t)) E^T + b``,
  with the decoder tied to the token embeddings ``E``. The transform maps the last
  layer's width ``h_last`` to the embedding width ``h_0`` (BERT: ``h -> h``), so the
  decoder stays tied whatever the widths (the authors' modular BERT unties it when they
  differ, adding ``h_last x 30,522`` parameters).
* :class:`SequenceClassifier`: BERT's pooler (``tanh`` of a dense layer on the first
  token) and a dense layer to ``num_labels`` logits (GLUE: 1 for regression such as
  STS-B, 2 or 3 for classification).

Both take ``input_ids``, ``attention_mask``, ``token_type_ids`` (``B x N`` integers) and
return logits: ``B x N x vocab`` and ``B x num_labels``.
"""

from __future__ import annotations

import torch
from torch import nn

from codesign.architecture import Architecture
from codesign.models.config import ModelConfig
from codesign.models.encoder import Encoder

TASKS = ("classify", "mlm")


class Pooler(nn.Module):
    """``tanh(x_0 W + b)`` on the first token's hidden state."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """``B x N x h`` -> ``B x h``."""
        return torch.tanh(self.dense(hidden[:, 0]))


class TaskModel(nn.Module):
    """An encoder with a task head; subclasses set :attr:`task`."""

    task: str

    def __init__(self, arch: Architecture, config: ModelConfig) -> None:
        super().__init__()
        self.encoder = Encoder(arch, config)

    @property
    def architecture(self) -> Architecture:
        """The architecture this model was built from."""
        return self.encoder.architecture

    @property
    def config(self) -> ModelConfig:
        """The model settings (vocabulary, positions, ...)."""
        return self.encoder.config

    def head_settings(self) -> dict:
        """What, besides architecture and config, rebuilds this model (JSON types)."""
        return {"task": self.task}


class MaskedLanguageModel(TaskModel):
    """Encoder + BERT's MLM head (decoder tied to the token embeddings)."""

    task = "mlm"

    def __init__(self, arch: Architecture, config: ModelConfig) -> None:
        super().__init__(arch, config)
        last, first = arch.hidden[-1], arch.hidden[0]
        self.transform = nn.Linear(last, first)
        self.activation = nn.GELU()
        self.transform_norm = nn.LayerNorm(first, eps=config.layer_norm_eps)
        self.decoder_bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        """Token logits, ``B x N x vocab``."""
        hidden = self.encoder(input_ids, attention_mask, token_type_ids)
        hidden = self.transform_norm(self.activation(self.transform(hidden)))
        return torch.matmul(hidden, self.encoder.embeddings.word.weight.t()) + self.decoder_bias


class SequenceClassifier(TaskModel):
    """Encoder + pooler + dense layer to ``num_labels`` logits."""

    task = "classify"

    def __init__(self, arch: Architecture, config: ModelConfig, num_labels: int = 2) -> None:
        super().__init__(arch, config)
        if isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 1:
            raise ValueError(f"num_labels: expected a positive integer, got {num_labels!r}")
        self.num_labels = num_labels
        self.pooler = Pooler(arch.hidden[-1])
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(arch.hidden[-1], num_labels)

    def head_settings(self) -> dict:
        return {"task": self.task, "num_labels": self.num_labels}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        """Sequence logits, ``B x num_labels``."""
        hidden = self.encoder(input_ids, attention_mask, token_type_ids)
        return self.classifier(self.dropout(self.pooler(hidden)))
