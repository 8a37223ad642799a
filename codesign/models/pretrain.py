"""Masked-language-model training and evaluation on a token stream (BERT's MLM objective).

Masking is BERT's: 15% of the non-special tokens are chosen; of those, 80% become
``[MASK]``, 10% a random token, 10% stay; the loss is the cross-entropy on the chosen
positions. The loss that models are compared by is the *pre-training loss* on the
corpus (GPTran ranks children by it, Sec. III-D): every corpus window masked once from
a fixed seed, so two models (a child with transferred weights, the same child from
scratch) are scored on exactly the same predictions. Training draws fresh masks every
step, so this fixed set is not what the model was fitted to token for token.

The optimiser follows the EdgeTran recipe (Sec. IV-A2: AdamW, beta = (0.9, 0.98),
eps = 1e-6, weight decay 0.01) with a short linear warm-up and then a *constant*
learning rate: the number of steps a model needs to reach a loss is then a property of
the model and its start, not of a schedule tied to a planned step count.

Every stochastic step is seeded: batch order and masks from ``numpy`` generators,
dropout from a forked torch generator (the caller's global torch RNG is left alone).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from codesign.corpus.text import mlm_sequences
from codesign.corpus.tokenizer import WordPieceTokenizer, bundled_tokenizer
from codesign.models.heads import MaskedLanguageModel

MASK_PROBABILITY = 0.15
IGNORE_INDEX = -100  # label of positions that are not predicted


@dataclass(frozen=True)
class MlmData:
    """Corpus windows of token ids and what masking needs to know."""

    rows: np.ndarray
    vocab_size: int
    mask_id: int
    pad_id: int
    special_ids: Tuple[int, ...]


def corpus_mlm_data(seq_len: int, tokenizer: Optional[WordPieceTokenizer] = None, texts=None) -> MlmData:
    """``seq_len``-token windows of the bundled (or given) corpus."""
    tokenizer = tokenizer or bundled_tokenizer()
    rows = mlm_sequences(seq_len, tokenizer, texts)
    return MlmData(rows, tokenizer.vocab_size, tokenizer.mask_id, tokenizer.pad_id, tuple(sorted(tokenizer.special_ids)))


def mask_rows(rows: np.ndarray, data: MlmData, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """BERT's 80/10/10 masking of 15% of the ordinary tokens: (inputs, labels with -100 elsewhere)."""
    ordinary = ~np.isin(rows, data.special_ids)
    chosen = (rng.random(rows.shape) < MASK_PROBABILITY) & ordinary
    if not chosen.any() and ordinary.any():  # at least one prediction per batch
        flat = np.flatnonzero(ordinary)
        chosen.flat[flat[rng.integers(len(flat))]] = True
    labels = np.where(chosen, rows, IGNORE_INDEX)
    inputs = rows.copy()
    action = rng.random(rows.shape)
    inputs[chosen & (action < 0.8)] = data.mask_id
    randomise = chosen & (action >= 0.8) & (action < 0.9)
    ordinary_ids = np.setdiff1d(np.arange(data.vocab_size), data.special_ids)
    inputs[randomise] = ordinary_ids[rng.integers(len(ordinary_ids), size=int(randomise.sum()))]
    return inputs, labels


def _tensors(inputs: np.ndarray, data: MlmData) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    ids = torch.from_numpy(inputs)
    return ids, (ids != data.pad_id).long(), torch.zeros_like(ids)


def evaluation_batches(data: MlmData, batch_size: int, seed: int) -> List[Tuple[np.ndarray, np.ndarray]]:
    """Every corpus window, masked once from ``seed``, in batches: the fixed evaluation set."""
    rng = np.random.default_rng(seed)
    return [mask_rows(data.rows[i : i + batch_size], data, rng) for i in range(0, len(data.rows), batch_size)]


def mlm_loss(model: MaskedLanguageModel, inputs: np.ndarray, labels: np.ndarray, data: MlmData) -> torch.Tensor:
    """Mean cross-entropy over the masked positions of one batch."""
    logits = model(*_tensors(inputs, data))
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), torch.from_numpy(labels).reshape(-1), ignore_index=IGNORE_INDEX)


def evaluate(model: MaskedLanguageModel, batches: List[Tuple[np.ndarray, np.ndarray]], data: MlmData) -> float:
    """Mean cross-entropy per masked token over the evaluation batches (eval mode, no dropout)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for inputs, labels in batches:
            n = int((labels != IGNORE_INDEX).sum())
            total += float(mlm_loss(model, inputs, labels, data)) * n
            count += n
    model.train(was_training)
    return total / count


@dataclass(frozen=True)
class TrainSettings:
    """Optimiser and loop settings (EdgeTran's AdamW recipe; constant rate after warm-up)."""

    batch_size: int = 32
    learning_rate: float = 1e-3
    warmup_steps: int = 10
    weight_decay: float = 0.01
    betas: Tuple[float, float] = (0.9, 0.98)
    eps: float = 1e-6
    eval_every: int = 10  # steps between evaluations of the pre-training loss
    eval_batch_size: int = 64  # windows per evaluation batch (no gradients: larger batches are cheaper)
    eval_seed: int = 1234  # seed of the fixed evaluation masks


@dataclass
class TrainResult:
    """What a training run did: losses, the evaluation curve, when the target was reached."""

    steps: int
    train_losses: List[float] = field(default_factory=list)
    eval_curve: List[Tuple[int, float]] = field(default_factory=list)
    steps_to_target: Optional[int] = None

    @property
    def final_eval_loss(self) -> float:
        """The last evaluation's loss."""
        return self.eval_curve[-1][1]

    def to_dict(self) -> dict:
        """JSON types."""
        return {
            "steps": self.steps,
            "final_eval_loss": self.final_eval_loss,
            "steps_to_target": self.steps_to_target,
            "eval_curve": [[step, loss] for step, loss in self.eval_curve],
        }


def train_mlm(
    model: MaskedLanguageModel,
    data: MlmData,
    steps: int,
    seed: int = 0,
    settings: Optional[TrainSettings] = None,
    target_loss: Optional[float] = None,
) -> TrainResult:
    """Train for up to ``steps`` steps; with ``target_loss``, stop at the first evaluation at or below it."""
    settings = settings or TrainSettings()
    if steps < 0:
        raise ValueError(f"steps must be non-negative, got {steps}")
    rng = np.random.default_rng(seed)
    evaluation = evaluation_batches(data, settings.eval_batch_size, settings.eval_seed)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimiser = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings.learning_rate,
        betas=settings.betas,
        eps=settings.eps,
    )
    warmup = max(1, settings.warmup_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: min(1.0, (step + 1) / warmup))
    result = TrainResult(steps=0)

    def check(step: int) -> bool:
        loss = evaluate(model, evaluation, data)
        result.eval_curve.append((step, loss))
        if target_loss is not None and loss <= target_loss and result.steps_to_target is None:
            result.steps_to_target = step
            return True
        return False

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        if check(0):
            return result
        model.train()
        order = rng.permutation(len(data.rows))
        cursor = 0
        for step in range(1, steps + 1):
            if cursor + settings.batch_size > len(order):
                order, cursor = rng.permutation(len(data.rows)), 0
            rows = data.rows[order[cursor : cursor + settings.batch_size]]
            cursor += settings.batch_size
            inputs, labels = mask_rows(rows, data, rng)
            loss = mlm_loss(model, inputs, labels, data)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            scheduler.step()
            result.train_losses.append(float(loss.detach()))
            result.steps = step
            if step % settings.eval_every == 0 or step == steps:
                if check(step):
                    break
        model.eval()
    return result
