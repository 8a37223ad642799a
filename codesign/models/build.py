"""Build a seeded, initialised model from an architecture."""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from codesign.architecture import Architecture
from codesign.models.config import ModelConfig
from codesign.models.heads import TASKS, MaskedLanguageModel, SequenceClassifier, TaskModel
from codesign.models.operations import HeadGroup


def initialise_(model: nn.Module, std: float, seed: int) -> None:
    """BERT's initialisation, reproducible from ``seed``: weights N(0, std), biases 0, norms 1."""
    generator = torch.Generator().manual_seed(int(seed))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear):
                module.weight.normal_(0.0, std, generator=generator)
                if module.bias is not None:
                    module.bias.zero_()
            elif isinstance(module, nn.Embedding):
                module.weight.normal_(0.0, std, generator=generator)
            elif isinstance(module, nn.LayerNorm):
                module.weight.fill_(1.0)
                module.bias.zero_()
            if isinstance(module, HeadGroup):
                module.reset_parameters_(std, generator)
        if isinstance(model, MaskedLanguageModel):
            model.decoder_bias.zero_()


def build_model(
    arch: Architecture,
    task: str = "classify",
    num_labels: int = 2,
    config: Optional[ModelConfig] = None,
    seed: int = 0,
) -> TaskModel:
    """A model for ``task`` (``classify`` or ``mlm``), initialised from ``seed``, in eval mode."""
    config = config or ModelConfig()
    if task == "classify":
        model: TaskModel = SequenceClassifier(arch, config, num_labels)
    elif task == "mlm":
        model = MaskedLanguageModel(arch, config)
    else:
        raise ValueError(f"unknown task {task!r} (known: {', '.join(TASKS)})")
    initialise_(model, config.init_std, seed)
    return model.eval()
