"""Sequence classification on the bundled GLUE-format task: the classifier head learns it."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from codesign.architecture import Architecture  # noqa: E402
from codesign.corpus.glue import load_task  # noqa: E402
from codesign.corpus.tokenizer import bundled_tokenizer  # noqa: E402
from codesign.models.build import build_model  # noqa: E402
from codesign.models.config import ModelConfig  # noqa: E402
from codesign.models.finetune import evaluate_classifier, finetune  # noqa: E402

SEQ_LEN = 24
ARCH = {"l": 2, "o": [["sa_sdp_16", "sa_wma_16"], ["sa_sdp_16", "c_5_16"]], "h": [32, 32], "f": [[64], [64]]}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def encoded():
    tokenizer = bundled_tokenizer()
    return tokenizer, load_task().encode(tokenizer, SEQ_LEN), load_task(split="dev").encode(tokenizer, SEQ_LEN)


def test_classifier_learns_the_bundled_task(encoded):
    tokenizer, train, dev = encoded
    model = build_model(Architecture.from_dict(ARCH), "classify", 2, ModelConfig(vocab_size=tokenizer.vocab_size, max_positions=SEQ_LEN), seed=0)
    majority = max(np.mean(dev["labels"]), 1 - np.mean(dev["labels"]))
    result = finetune(model, train, dev, steps=300, seed=0, learning_rate=2e-3, eval_every=100)
    print(f"\ndev accuracy: {result.eval_curve} (majority class {majority:.3f})")
    assert result.metric == "accuracy"
    assert result.eval_curve[-1][1] >= majority + 0.25  # negation and "but" need more than word counts
    assert result.eval_curve[-1][1] == evaluate_classifier(model, dev)


def test_regression_head_with_one_label(encoded):
    tokenizer, train, dev = encoded
    model = build_model(Architecture.from_dict(ARCH), "classify", 1, ModelConfig(vocab_size=tokenizer.vocab_size, max_positions=SEQ_LEN), seed=0)
    as_scores = {**train, "labels": train["labels"].astype(np.float32) * 5.0}
    dev_scores = {**dev, "labels": dev["labels"].astype(np.float32) * 5.0}
    result = finetune(model, as_scores, dev_scores, steps=40, seed=0, learning_rate=2e-3, eval_every=20)
    assert result.metric == "mse"
    assert result.eval_curve[-1][1] < result.eval_curve[0][1]


def test_finetuning_is_reproducible(encoded):
    tokenizer, train, dev = encoded
    runs = []
    for _ in range(2):
        model = build_model(Architecture.from_dict(ARCH), "classify", 2, ModelConfig(vocab_size=tokenizer.vocab_size, max_positions=SEQ_LEN, dropout=0.1), seed=4)
        runs.append(finetune(model, train, dev, steps=8, seed=2, eval_every=4))
    assert runs[0].train_losses == runs[1].train_losses and runs[0].eval_curve == runs[1].eval_curve
