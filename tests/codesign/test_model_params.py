"""Parameter counts: BERT-Tiny and BERT-Base against their reference counts, every operation against the built modules."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from codesign.architecture import Architecture  # noqa: E402
from codesign.models.build import build_model  # noqa: E402
from codesign.models.config import ModelConfig  # noqa: E402
from codesign.models.params import REFERENCE_PARAMETERS, model_parameters, parameter_report  # noqa: E402


def bert_model_parameters(layers: int, hidden: int, ff: int, vocab: int = 30522, positions: int = 512, types: int = 2) -> int:
    """Hugging Face BertModel's count, written out from BERT's layout (independent of the project's formulas)."""
    embeddings = vocab * hidden + positions * hidden + types * hidden + 2 * hidden
    attention = 4 * (hidden * hidden + hidden) + 2 * hidden
    feed_forward = hidden * ff + ff + ff * hidden + hidden + 2 * hidden
    pooler = hidden * hidden + hidden
    return embeddings + layers * (attention + feed_forward) + pooler


@pytest.mark.parametrize(
    "name, layers, hidden, ff",
    [("bert-tiny", 2, 128, 512), ("bert-base", 12, 768, 3072)],
)
def test_reference_models_match_bert(name, layers, hidden, ff):
    model_dict, exact, published = REFERENCE_PARAMETERS[name]
    arch = Architecture.from_dict(model_dict)
    report = parameter_report(arch)
    assert report["parameters"] == bert_model_parameters(layers, hidden, ff) == exact
    assert abs(report["parameters"] - published) / published < 0.01
    model = build_model(arch, "classify", num_labels=2)
    pooler_and_classifier = report["pooler"] + report["heads"]["classify"]
    assert model_parameters(model) == report["parameters"] - report["pooler"] + pooler_and_classifier
    assert model_parameters(model.encoder) + model_parameters(model.pooler) == exact


def test_bert_tiny_exact_counts():
    report = parameter_report(Architecture.from_dict(REFERENCE_PARAMETERS["bert-tiny"][0]))
    assert report["parameters"] == 4_385_920
    assert report["embeddings"] == 3_972_864
    assert [row["total"] for row in report["per_layer"]] == [198_272, 198_272]


MIXED = [
    # every operation in one layer, heads of different dimensions, a hidden-size change, deep FF stacks
    {"l": 2, "o": [["sa_sdp_16", "sa_wma_8", "l_dft_24", "l_dct_16"], ["c_5_8", "c_9_16", "c_13_8", "sa_sdp_16"]], "h": [64, 48], "f": [[128], [64, 32, 96]]},
    # 12 heads in a 128-wide layer: 10 features each, 120 concatenated, projected back to 128
    {"l": 2, "o": [["sa_sdp_10"] * 12, ["l_dct_10"] * 6 + ["c_13_10"] * 6], "h": [128, 128], "f": [[256, 256], [512]]},
    {"l": 3, "o": [["sa_wma_32", "sa_wma_32"], ["c_9_64", "l_dft_64"], ["l_dct_128", "sa_sdp_128"]], "h": [64, 128, 256], "f": [[256], [512], [1024]]},
]


@pytest.mark.parametrize("model_dict", MIXED)
@pytest.mark.parametrize("task", ["classify", "mlm"])
def test_mixed_models_formula_equals_built_modules(model_dict, task):
    config = ModelConfig(vocab_size=257, max_positions=40, type_vocab_size=3)
    arch = Architecture.from_dict(model_dict)
    report = parameter_report(arch, config, num_labels=3)
    model = build_model(arch, task, num_labels=3, config=config)
    if task == "classify":
        assert model_parameters(model) == report["parameters"] + report["heads"]["classify"]
    else:
        assert model_parameters(model) == report["parameters"] - report["pooler"] + report["heads"]["mlm"]
    for j, row in enumerate(report["per_layer"]):
        assert model_parameters(model.encoder.layers[j]) == row["total"]
    assert model_parameters(model.encoder.embeddings) == report["embeddings"]


@pytest.mark.parametrize("op", ["sa_sdp", "sa_wma", "l_dft", "l_dct", "c_5", "c_9", "c_13"])
def test_each_operation_head_count(op):
    arch = Architecture.from_dict({"l": 1, "o": [[f"{op}_12", f"{op}_20"]], "h": [40], "f": [[64]]})
    report = parameter_report(arch, ModelConfig(vocab_size=50, max_positions=16))
    model = build_model(arch, "classify", config=ModelConfig(vocab_size=50, max_positions=16))
    groups = model.encoder.layers[0].groups
    assert sum(model_parameters(g) for g in groups) == sum(report["per_layer"][0]["head_parameters"])


def test_projection_only_between_different_widths():
    arch = Architecture.from_dict({"l": 3, "o": [["sa_sdp_32"] * 2] * 3, "h": [64, 64, 128], "f": [[128]] * 3})
    model = build_model(arch)
    assert model.encoder.layers[0].projection is None
    assert model.encoder.layers[1].projection.weight.shape == (128, 64)
    assert model.encoder.layers[2].projection is None
    rows = parameter_report(arch)["per_layer"]
    assert [row["projection"] for row in rows] == [0, 64 * 128 + 128, 0]
