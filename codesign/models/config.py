"""Hyperparameters shared by every model built from an architecture (BERT's defaults).

The architecture (``codesign.architecture.Architecture``) fixes the layers, heads, hidden
sizes and feed-forward stacks; these settings fix everything else. The defaults are
BERT's (Devlin et al. 2019, and the Hugging Face ``BertConfig``): the 30,522-token
uncased WordPiece vocabulary, 512 positions, 2 token types, LayerNorm epsilon 1e-12,
dropout 0.1 and N(0, 0.02) initialisation, so that an all-SA-SDP architecture has exactly
BERT's parameter count.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

BERT_VOCAB_SIZE = 30522  # tokens in BERT's uncased WordPiece vocabulary
BERT_MAX_POSITIONS = 512  # positions (tokens) BERT embeds
BERT_TYPE_VOCAB_SIZE = 2  # sentence A / sentence B
MASK_ADDEND = -10000.0  # added to attention scores of padded keys (BERT's value; finite, so every runtime agrees)


@dataclass(frozen=True)
class ModelConfig:
    """Everything a model needs besides its architecture."""

    vocab_size: int = BERT_VOCAB_SIZE
    max_positions: int = BERT_MAX_POSITIONS
    type_vocab_size: int = BERT_TYPE_VOCAB_SIZE
    layer_norm_eps: float = 1e-12
    dropout: float = 0.1
    init_std: float = 0.02  # standard deviation of the normal initialisation of weights and embeddings
    pad_token_id: int = 0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "max_positions", "type_vocab_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {self.dropout!r}")
        if not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(f"pad_token_id: {self.pad_token_id} is outside the vocabulary of {self.vocab_size}")

    def to_dict(self) -> dict:
        """Plain JSON types."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelConfig":
        """Build from a mapping; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model settings: {', '.join(unknown)}")
        return cls(**dict(data))
