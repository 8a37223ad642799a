"""Workload features: FLOPs, parameters and bytes moved, per layer and per operation type; the compact set."""

from __future__ import annotations

import numpy as np
import pytest

from codesign.architecture import Architecture
from codesign.protran.features import (
    FeatureError,
    WorkloadContext,
    compact_names,
    feature_names,
    featurize,
    linear_feature_columns,
    linear_layer_count,
    shape_names,
    total_workload,
    workload_names,
)

BERT_TINY = Architecture.from_dict({"l": 2, "o": [["sa_sdp_64"] * 2] * 2, "h": [128] * 2, "f": [[512]] * 2})
BERT_BASE = Architecture.from_dict({"l": 12, "o": [["sa_sdp_64"] * 12] * 12, "h": [768] * 12, "f": [[3072]] * 12})
POOLER = {128: 128 * 128 + 128, 768: 768 * 768 + 768}  # BertModel counts a pooler; the features do not


def test_parameters_match_bert_without_its_pooler():
    """BertModel: BERT-Tiny 4,385,920 and BERT-Base 109,482,240 parameters, pooler included."""
    assert total_workload(BERT_TINY)["total_mparams"] * 1e6 == pytest.approx(4_385_920 - POOLER[128])
    assert total_workload(BERT_BASE)["total_mparams"] * 1e6 == pytest.approx(109_482_240 - POOLER[768])


def test_bert_base_flops_at_128_tokens():
    """Dense matmuls of BERT-Base at 128 tokens: 2 x (4 h^2 + 2 h f) N + 2 x 2 N^2 h per layer = 21.7 GFLOP."""
    n, h, f, layers = 128, 768, 3072, 12
    matmuls = layers * (2 * n * (4 * h * h + 2 * h * f) + 2 * 2 * n * n * h)
    total = total_workload(BERT_BASE)["total_gflop"] * 1e9
    assert matmuls <= total <= 1.03 * matmuls  # the rest: softmax, LayerNorm, GELU, biases


def test_batch_divides_weight_traffic_only():
    one, many = WorkloadContext(128, 1), WorkloadContext(128, 128)
    a, b = total_workload(BERT_BASE, one), total_workload(BERT_BASE, many)
    assert a["total_gflop"] == b["total_gflop"] and a["total_mparams"] == b["total_mparams"]
    table = (30522 + 512 + 2) * 768  # embedding lookups read the rows they use, not the table
    weights_mb = 4 * (a["total_mparams"] * 1e6 - table) / 1e6  # fp32, read once per batch
    assert a["total_mbytes"] - b["total_mbytes"] == pytest.approx(weights_mb * (1 - 1 / 128), rel=1e-9)
    longer = total_workload(BERT_BASE, WorkloadContext(256, 1))
    assert longer["total_gflop"] > 2 * a["total_gflop"]  # quadratic attention terms


def test_feature_columns_by_layer_and_operation():
    names = feature_names("workload")
    assert len(feature_names("embedding")) == 37 and len(names) == 37 + len(workload_names()) == 37 + 36 + 27 + 6
    dct_only = Architecture.from_dict({"l": 2, "o": [["l_dct_64"] * 2, ["c_9_32"] * 4], "h": [128, 128], "f": [[256], [256]]})
    row = dict(zip(names, featurize([dct_only], "workload")[0]))
    assert row["l_dct_gflop"] > 0 and row["c_9_gflop"] > 0
    for op in ("sa_sdp", "sa_wma", "l_dft", "c_5", "c_13"):
        assert row[f"{op}_gflop"] == row[f"{op}_mparams"] == row[f"{op}_mbytes"] == 0
    assert row["layer0_gflop"] > 0 and row["layer1_gflop"] > 0 and row["layer2_gflop"] == 0
    assert row["layers"] == 2 and row["median_hidden"] == 128 and row["total_heads"] == 6
    per_layer = sum(row[f"layer{j}_gflop"] for j in range(12))
    per_op = sum(row[f"{op}_gflop"] for op in ("l_dct", "c_9", "feed_forward", "dense_other"))
    embedding_norm = 8 * 128 * 128 / 1e9  # the embeddings' LayerNorm (lookups cost no FLOPs)
    assert per_op == pytest.approx(per_layer + embedding_norm)
    assert row["total_gflop"] == pytest.approx(per_op)
    columns = linear_feature_columns("workload")
    assert [names[c] for c in columns] == ["total_gflop", "total_mparams", "total_mbytes", "layers", "median_hidden", "total_heads"]
    assert linear_feature_columns("embedding") is None


def test_embedding_features_are_the_embedding_and_bad_requests_are_named():
    X = featurize([BERT_TINY, BERT_BASE], "embedding")
    assert X.shape == (2, 37) and X[1, 0] == 5  # 12 layers is index 5
    with pytest.raises(FeatureError, match="unknown feature set 'graph'"):
        featurize([BERT_TINY], "graph")
    with pytest.raises(FeatureError, match="batch_size: expected a positive integer"):
        WorkloadContext(128, 0)
    assert np.all(np.isfinite(featurize([BERT_TINY, BERT_BASE], "workload")))


def test_compact_features_are_operation_rows_totals_and_shape():
    """``compact``: no index embedding, no per-layer slots; the shared columns equal ``workload``'s."""
    names = feature_names("compact")
    assert names == compact_names() and len(names) == 27 + 6 + len(shape_names()) == 57
    assert not any(name.startswith("e") and name[1:].isdigit() for name in names)
    assert not any(name.startswith("layer") and name[5:6].isdigit() for name in names)
    arch = Architecture.from_dict(
        {"l": 2, "o": [["l_dct_64"] * 2, ["c_9_32"] * 4], "h": [128, 128], "f": [[256], [256, 512]]}
    )
    context = WorkloadContext(128, 4)
    compact = dict(zip(names, featurize([arch], "compact", context)[0]))
    workload = dict(zip(feature_names("workload"), featurize([arch], "workload", context)[0]))
    for name in names[:33]:
        assert compact[name] == workload[name], name
    assert compact["max_layer_gflop"] == pytest.approx(max(workload["layer0_gflop"], workload["layer1_gflop"]))
    assert compact["max_layer_mbytes"] == pytest.approx(max(workload["layer0_mbytes"], workload["layer1_mbytes"]))
    assert compact["flop_per_byte"] == pytest.approx(compact["total_gflop"] * 1e9 / (compact["total_mbytes"] * 1e6))
    assert compact["max_hidden"] == compact["min_hidden"] == compact["mean_hidden"] == 128
    assert compact["max_ff_width"] == 512 and compact["mean_ff_width"] == pytest.approx((256 + 256 + 512) / 3)
    assert compact["ff_layers"] == 3 and compact["max_heads"] == 4 and compact["mean_heads"] == 3
    assert compact["heads_l_dct"] == 2 and compact["heads_c_9"] == 4 and compact["heads_sa_sdp"] == 0
    # DCT heads project V only (1 linear each), DSC heads Q, K, V (3 each); plus an output projection
    # per layer and a feed-forward stack of len(f) + 1 linears; equal hidden sizes: no inter-layer projection.
    assert linear_layer_count(arch) == (2 * 1 + 1 + 2) + (4 * 3 + 1 + 3) == 21
    assert compact["log_total_gflop"] == pytest.approx(np.log(compact["total_gflop"]))
    assert compact["log_total_mparams"] == pytest.approx(np.log(compact["total_mparams"]))
    columns = linear_feature_columns("compact")
    assert [names[c] for c in columns] == ["total_gflop", "total_mparams", "total_mbytes", "layers", "median_hidden", "total_heads"]


def test_inter_layer_projection_counts_as_a_linear_layer():
    arch = Architecture.from_dict({"l": 2, "o": [["sa_sdp_64"] * 2, ["sa_sdp_64"] * 4], "h": [128, 256], "f": [[512], [512]]})
    assert linear_layer_count(arch) == (2 * 3 + 1 + 1 + 2) + (4 * 3 + 1 + 2)


def test_compact_features_lower_the_m1_gpu_peak_power_error():
    """The case that motivated ``compact``: 5-fold GP error of the M1 GPU's peak power over the whole pool."""
    from codesign.protran.comparison import holdout_evaluation
    from codesign.protran.evaluators import PublishedPoolEvaluator

    evaluator = PublishedPoolEvaluator("gpu_m1-pro_b32_r3")
    workload = holdout_evaluation(evaluator, "gpr", "workload")["mse"]
    compact = holdout_evaluation(evaluator, "gpr", "compact")["mse"]
    assert compact["peak_power_w"] < 0.7 * workload["peak_power_w"]
    assert compact["energy_j"] < workload["energy_j"] and compact["latency_s"] < workload["latency_s"]
