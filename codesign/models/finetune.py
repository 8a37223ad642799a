"""Fine-tuning of a sequence classifier on a GLUE-format task (the bundled one or a user's GLUE folder).

Cross-entropy for classification, mean squared error for regression (``num_labels == 1``,
as STS-B), AdamW with EdgeTran's betas and epsilon (Sec. IV-A2), constant learning rate
after a short warm-up. Batches are drawn from a seeded generator and dropout runs under
a forked, seeded torch generator, so a run is reproducible from its seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Tuple

import numpy as np
import torch
from torch import nn

from codesign.models.heads import SequenceClassifier

INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass
class FinetuneResult:
    """Training losses and the evaluation curve (step, metric): accuracy, or MSE for regression."""

    metric: str
    train_losses: List[float] = field(default_factory=list)
    eval_curve: List[Tuple[int, float]] = field(default_factory=list)


def _logits(model: SequenceClassifier, encoded: dict, index: np.ndarray) -> torch.Tensor:
    return model(*(torch.from_numpy(encoded[key][index]) for key in INPUT_KEYS))


def evaluate_classifier(model: SequenceClassifier, encoded: dict, batch_size: int = 128) -> float:
    """Accuracy (classification) or mean squared error (regression) over an encoded split."""
    was_training = model.training
    model.eval()
    predictions = []
    with torch.no_grad():
        for start in range(0, len(encoded["labels"]), batch_size):
            index = np.arange(start, min(start + batch_size, len(encoded["labels"])))
            predictions.append(_logits(model, encoded, index).numpy())
    model.train(was_training)
    outputs = np.concatenate(predictions)
    labels = encoded["labels"]
    if model.num_labels == 1:
        return float(np.mean((outputs[:, 0] - labels) ** 2))
    return float(np.mean(outputs.argmax(axis=1) == labels))


def finetune(
    model: SequenceClassifier,
    train: dict,
    dev: dict,
    steps: int,
    seed: int = 0,
    batch_size: int = 32,
    learning_rate: float = 1e-3,
    warmup_steps: int = 10,
    eval_every: int = 50,
) -> FinetuneResult:
    """Train on the encoded ``train`` split for ``steps`` steps, evaluating on ``dev`` every ``eval_every``."""
    regression = model.num_labels == 1
    result = FinetuneResult("mse" if regression else "accuracy")
    optimiser = torch.optim.AdamW(model.parameters(), lr=learning_rate, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: min(1.0, (step + 1) / max(1, warmup_steps)))
    rng = np.random.default_rng(seed)
    count = len(train["labels"])
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        result.eval_curve.append((0, evaluate_classifier(model, dev)))
        model.train()
        for step in range(1, steps + 1):
            index = rng.choice(count, size=min(batch_size, count), replace=False)
            logits = _logits(model, train, index)
            target = torch.from_numpy(train["labels"][index])
            if regression:
                loss = nn.functional.mse_loss(logits[:, 0], target.float())
            else:
                loss = nn.functional.cross_entropy(logits, target)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            scheduler.step()
            result.train_losses.append(float(loss.detach()))
            if step % eval_every == 0 or step == steps:
                result.eval_curve.append((step, evaluate_classifier(model, dev)))
        model.eval()
    return result
