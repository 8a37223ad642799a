"""Parameter counts of an architecture, by formula (torch-free), per layer and in total.

``parameters`` counts what Hugging Face's ``BertModel`` counts: embeddings, encoder
layers and the pooler (the tanh layer on the first token). Task heads are reported
separately (``heads``): the MLM head (transform, LayerNorm and decoder bias; the decoder
weight is tied to the token embeddings) and the classifier for ``num_labels`` labels.
The model builder (``codesign.models.build``) allocates exactly these counts; a test
checks every operation against the built modules.

Reference counts (``BertModel`` of ``google/bert_uncased_L-2_H-128_A-2`` and
``bert-base-uncased``, 30,522-token vocabulary, 512 positions, 2 token types):
BERT-Tiny 4,385,920 (published as 4.4M), BERT-Base 109,482,240 (published as 110M).
"""

from __future__ import annotations

from typing import Optional

from codesign.architecture import Architecture
from codesign.models.catalog import head_parameter_count
from codesign.models.config import ModelConfig

REFERENCE_PARAMETERS = {
    # name: (model dictionary, BertModel parameter count, the rounded figure the BERT authors publish)
    "bert-tiny": (
        {"l": 2, "o": [["sa_sdp_64"] * 2] * 2, "h": [128] * 2, "f": [[512]] * 2},
        4_385_920,
        4.4e6,
    ),
    "bert-base": (
        {"l": 12, "o": [["sa_sdp_64"] * 12] * 12, "h": [768] * 12, "f": [[3072]] * 12},
        109_482_240,
        110e6,
    ),
}


def _linear(inputs: int, outputs: int) -> int:
    return inputs * outputs + outputs


def layer_parameters(arch: Architecture, j: int, config: Optional[ModelConfig] = None) -> dict:
    """Parameters of encoder layer ``j``, by part."""
    hidden = arch.hidden[j]
    heads = [head_parameter_count(head.op, hidden, head.dim) for head in arch.heads[j]]
    concat = sum(head.dim for head in arch.heads[j])
    sizes = (hidden, *arch.feed_forward[j], hidden)
    feed_forward = sum(_linear(sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1))
    following = arch.hidden[j + 1] if j + 1 < arch.layers else hidden
    projection = _linear(hidden, following) if following != hidden else 0
    norms = 2 * 2 * hidden
    row = {
        "layer": j,
        "hidden": hidden,
        "heads": [head.name for head in arch.heads[j]],
        "head_parameters": heads,
        "attention": sum(heads) + _linear(concat, hidden),
        "feed_forward": feed_forward,
        "layer_norms": norms,
        "projection": projection,
    }
    row["total"] = row["attention"] + feed_forward + norms + projection
    return row


def parameter_report(arch: Architecture, config: Optional[ModelConfig] = None, num_labels: int = 2) -> dict:
    """Total (``BertModel``-equivalent) and per-layer parameter counts, plus the task heads."""
    config = config or ModelConfig()
    first, last = arch.hidden[0], arch.hidden[-1]
    embeddings = (config.vocab_size + config.max_positions + config.type_vocab_size) * first + 2 * first
    per_layer = [layer_parameters(arch, j, config) for j in range(arch.layers)]
    pooler = _linear(last, last)
    mlm = _linear(last, first) + 2 * first + config.vocab_size
    classify = _linear(last, num_labels)
    return {
        "parameters": embeddings + sum(row["total"] for row in per_layer) + pooler,
        "embeddings": embeddings,
        "pooler": pooler,
        "per_layer": per_layer,
        "heads": {"mlm": mlm, "classify": classify, "num_labels": num_labels},
        "config": config.to_dict(),
    }


def model_parameters(model) -> int:
    """Parameters of a built model, each shared tensor counted once."""
    return sum(p.numel() for p in model.parameters())
