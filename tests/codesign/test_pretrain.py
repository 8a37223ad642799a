"""BERT's MLM masking and the pre-training loop on the bundled corpus."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from codesign.architecture import Architecture  # noqa: E402
from codesign.models.build import build_model  # noqa: E402
from codesign.models.config import ModelConfig  # noqa: E402
from codesign.models.pretrain import IGNORE_INDEX, TrainSettings, corpus_mlm_data, evaluation_batches, mask_rows, train_mlm  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small ops run faster on one thread, and far faster when the other core is busy (restored afterwards)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data():
    return corpus_mlm_data(24)


def test_masking_is_berts_15_percent_80_10_10(data):
    rows = np.concatenate([data.rows] * 20)
    inputs, labels = mask_rows(rows, data, np.random.default_rng(0))
    ordinary = ~np.isin(rows, data.special_ids)
    chosen = labels != IGNORE_INDEX
    assert not (chosen & ~ordinary).any()  # never [CLS], [SEP], [PAD]
    assert abs(chosen.sum() / ordinary.sum() - 0.15) < 0.005
    assert (labels[chosen] == rows[chosen]).all()
    masked = inputs[chosen] == data.mask_id
    kept = inputs[chosen] == rows[chosen]
    assert abs(masked.mean() - 0.8) < 0.01
    assert abs(kept.mean() - 0.1) < 0.01  # (random replacements that hit the same token add ~0.1%)
    assert (inputs[~chosen] == rows[~chosen]).all()
    assert not np.isin(inputs[chosen][~masked & ~kept], data.special_ids).any()


def test_evaluation_masks_are_fixed_by_seed(data):
    one, two, other = (evaluation_batches(data, 16, seed) for seed in (5, 5, 6))
    assert all((a[0] == b[0]).all() and (a[1] == b[1]).all() for a, b in zip(one, two))
    assert any((a[1] != b[1]).any() for a, b in zip(one, other))
    assert sum(len(inputs) for inputs, _ in one) == len(data.rows)


def test_training_lowers_the_pretraining_loss(data):
    arch = Architecture.from_dict({"l": 2, "o": [["sa_sdp_16", "l_dft_16"], ["c_9_16", "sa_wma_16"]], "h": [32, 32], "f": [[64], [64]]})
    model = build_model(arch, "mlm", config=ModelConfig(vocab_size=data.vocab_size, max_positions=24), seed=0)
    result = train_mlm(model, data, 60, seed=0, settings=TrainSettings(batch_size=16, learning_rate=3e-3, eval_every=20))
    assert [step for step, _ in result.eval_curve] == [0, 20, 40, 60]
    assert result.eval_curve[0][1] > np.log(data.vocab_size) - 0.2  # an untrained model is near uniform
    assert result.final_eval_loss < result.eval_curve[0][1] - 0.5
    assert not model.training


def test_target_stops_training_early(data):
    arch = Architecture.from_dict({"l": 1, "o": [["sa_sdp_16", "sa_sdp_16"]], "h": [32], "f": [[64]]})
    model = build_model(arch, "mlm", config=ModelConfig(vocab_size=data.vocab_size, max_positions=24), seed=0)
    result = train_mlm(model, data, 100, seed=0, settings=TrainSettings(batch_size=16, eval_every=5), target_loss=10.0)
    assert result.steps_to_target == 0 and result.steps == 0
