"""Weight transfer (EdgeTran Sec. III-A2): identical children keep the parent's function; neighbours inherit what
they share (direct copy, OT, RP) and train to the parent's pre-training loss in fewer steps than from scratch."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from codesign.architecture import Architecture, Head  # noqa: E402
from codesign.models.build import build_model  # noqa: E402
from codesign.models.config import ModelConfig  # noqa: E402
from codesign.models.pretrain import TrainSettings, corpus_mlm_data, train_mlm  # noqa: E402
from codesign.transfer import TransferError, match_heads, transfer, transfer_weights  # noqa: E402

CONFIG = ModelConfig(vocab_size=150, max_positions=16)
PARENT = {"l": 2, "o": [["sa_sdp_16", "sa_wma_16", "l_dft_8", "l_dct_8"], ["c_5_8", "c_9_8", "c_13_16", "sa_sdp_16"]], "h": [48, 48], "f": [[96], [64, 32]]}
NEIGHBOUR = {
    "l": 3,
    "o": [["sa_sdp_32", "sa_wma_16", "l_dct_8", "c_5_8"], ["c_5_8", "c_9_16", "sa_sdp_16"], ["sa_sdp_16", "sa_sdp_16"]],
    "h": [64, 40, 32],
    "f": [[96, 48], [64], [64]],
}


def batch(seed: int = 0):
    ids = torch.randint(5, 150, (3, 10), generator=torch.Generator().manual_seed(seed))
    mask = torch.ones_like(ids)
    mask[2, 6:] = 0
    return ids, mask, torch.zeros_like(ids)


@pytest.mark.parametrize("task", ["classify", "mlm"])
@pytest.mark.parametrize("mode", ["ot", "rp"])
def test_child_equal_to_parent_keeps_its_function(task, mode):
    parent = build_model(Architecture.from_dict(PARENT), task, num_labels=3, config=CONFIG, seed=1)
    child, report = transfer(parent, Architecture.from_dict(PARENT), mode, seed=9)
    with torch.no_grad():
        torch.testing.assert_close(child(*batch()), parent(*batch()), atol=0.0, rtol=0.0)
    summary = report.to_dict()
    assert summary["parameters"]["fresh"] == 0 and summary["parameters"]["ot"] == summary["parameters"]["rp"] == 0
    assert summary["transferred_fraction"] == 1.0
    assert all(row["how"] == "copied" for row in summary["heads"]) and summary["unused_parent_parts"] == []


def test_heads_match_by_operation_then_closest_dimension():
    child = [Head("sa_sdp", 32), Head("sa_wma", 16), Head("l_dct", 8), Head("c_5", 8), Head("sa_sdp", 16)]
    parent = [Head("sa_sdp", 16), Head("sa_wma", 16), Head("l_dft", 8), Head("l_dct", 8), Head("sa_sdp", 64)]
    # exact matches first (sa_wma_16, l_dct_8, sa_sdp_16), then the closest remaining sa_sdp for sa_sdp_32
    assert match_heads(child, parent) == [4, 1, 3, None, 0]


def test_neighbour_report_says_what_moved_and_how():
    parent = build_model(Architecture.from_dict(PARENT), "mlm", config=CONFIG, seed=1)
    child, report = transfer(parent, Architecture.from_dict(NEIGHBOUR), "ot", seed=2)
    summary = report.to_dict()
    heads = {(row["layer"], row["head"]): row for row in summary["heads"]}
    assert heads[(0, 0)]["from"] == {"head": 0, "name": "sa_sdp_16"} and heads[(0, 0)]["how"] == "ot"
    assert heads[(0, 3)]["from"] is None and heads[(0, 3)]["how"] == "fresh"  # no c_5 in parent layer 0
    assert heads[(1, 0)]["from"] == {"head": 0, "name": "c_5_8"}
    assert all(heads[(2, k)]["how"] == "fresh" for k in range(2))  # a layer the parent does not have
    assert "layer 0 head 2 (l_dft_8)" in summary["unused_parent_parts"]
    counts = summary["parameters"]
    assert counts["ot"] > 0 and counts["fresh"] > 0 and counts["rp"] == 0
    assert sum(counts.values()) == sum(p.numel() for p in child.parameters())
    with torch.no_grad():
        assert torch.isfinite(child(*batch())).all()


def test_ot_clones_the_leading_block():
    parent = build_model(Architecture.from_dict(PARENT), "mlm", config=CONFIG, seed=1)
    child, _ = transfer(parent, Architecture.from_dict(NEIGHBOUR), "ot", seed=2)
    p_group, p_slot, p_cols = parent.encoder.layers[0].head_group(0)  # sa_sdp_16 reading 48 features
    c_group, c_slot, c_cols = child.encoder.layers[0].head_group(0)  # sa_sdp_32 reading 64 features
    p_query = p_group.query.weight[p_slot * 16 : (p_slot + 1) * 16]
    c_query = c_group.query.weight[c_slot * 32 : (c_slot + 1) * 32]
    torch.testing.assert_close(c_query[:16, :48], p_query, atol=0.0, rtol=0.0)
    fresh = build_model(Architecture.from_dict(NEIGHBOUR), "mlm", config=CONFIG, seed=2)
    f_group, f_slot, _ = fresh.encoder.layers[0].head_group(0)
    fresh_query = f_group.query.weight[f_slot * 32 : (f_slot + 1) * 32]
    torch.testing.assert_close(c_query[16:], fresh_query[16:], atol=0.0, rtol=0.0)  # the grown part stays fresh
    torch.testing.assert_close(child.encoder.layers[0].output.weight[:48, c_cols][:, :16], parent.encoder.layers[0].output.weight[:, p_cols])


def test_rp_projects_with_gaussian_matrices_and_is_seeded():
    parent = build_model(Architecture.from_dict(PARENT), "mlm", config=CONFIG, seed=1)
    one, report = transfer(parent, Architecture.from_dict(NEIGHBOUR), "rp", seed=3)
    same, _ = transfer(parent, Architecture.from_dict(NEIGHBOUR), "rp", seed=3)
    other, _ = transfer(parent, Architecture.from_dict(NEIGHBOUR), "rp", seed=4)
    for (name, a), b in zip(one.state_dict().items(), same.state_dict().values()):
        assert torch.equal(a, b), name
    assert not torch.equal(one.encoder.embeddings.word.weight, other.encoder.embeddings.word.weight)
    assert report.to_dict()["parameters"]["rp"] > 0
    # the residual stream of layer 0 widens 48 -> 64: embeddings are E_p P with P ~ N(0, 1/64), so E_c = E_p P exactly
    from codesign.transfer import _Spaces

    spaces = _Spaces("rp", seed=3)
    projection = spaces.vector("res0", "res0", 48, 64).matrix
    expected = parent.encoder.embeddings.word.weight.double() @ projection
    torch.testing.assert_close(one.encoder.embeddings.word.weight.double(), expected, atol=1e-6, rtol=1e-5)


def test_rp_matrix_entries_have_variance_one_over_target_dim():
    from codesign.transfer import _Spaces

    matrix = _Spaces("rp", seed=0).vector("a", "b", 400, 250).matrix.numpy()
    assert matrix.shape == (400, 250)
    assert abs(matrix.mean()) < 0.002
    assert abs(matrix.var() * 250 - 1.0) < 0.02


def test_unknown_mode_is_refused():
    parent = build_model(Architecture.from_dict(PARENT), "mlm", config=CONFIG, seed=1)
    with pytest.raises(TransferError, match="unknown transfer mode 'xx'"):
        transfer_weights(parent, build_model(Architecture.from_dict(PARENT), "mlm", config=CONFIG), "xx")


# -- the point of transfer: fewer steps to the parent's loss -----------------------------------------------

SEQ_LEN = 32
PARENT_STEPS = 400
STEP_CAP = 2 * PARENT_STEPS  # a child that has not reached the target by then counts as STEP_CAP + 1
SETTINGS = TrainSettings(batch_size=32, learning_rate=2e-3, eval_every=10)
TRAIN_PARENT = {"l": 2, "o": [["sa_sdp_32", "sa_wma_32"], ["sa_sdp_32", "c_5_32"]], "h": [64, 64], "f": [[256], [256]]}
# a neighbour: layer 0 split into four 16-wide heads (two inherit, via OT/RP, from the 32-wide ones), a new
# l_dct head, and a pruned feed-forward layer in layer 1 (256 -> 128 neurons, as GPTran's P_FF step)
TRAIN_CHILD = {"l": 2, "o": [["sa_sdp_16", "sa_wma_16", "sa_sdp_16", "l_dct_16"], ["sa_sdp_32", "c_5_32"]], "h": [64, 64], "f": [[256], [128]]}


@pytest.fixture(scope="module")
def one_thread():
    """Step counts do not depend on threads; these small ops run faster on one (restored afterwards)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained_parent(one_thread):
    data = corpus_mlm_data(SEQ_LEN)
    config = ModelConfig(vocab_size=data.vocab_size, max_positions=SEQ_LEN)
    parent = build_model(Architecture.from_dict(TRAIN_PARENT), "mlm", config=config, seed=0)
    result = train_mlm(parent, data, PARENT_STEPS, seed=0, settings=SETTINGS)
    return parent, data, result


def test_transfer_reaches_parent_loss_in_fewer_steps_than_scratch(trained_parent):
    parent, data, parent_result = trained_parent
    target = parent_result.final_eval_loss
    assert target < parent_result.eval_curve[0][1] - 1.0  # the parent learned: the target is far from untrained
    child_arch = Architecture.from_dict(TRAIN_CHILD)
    runs = {}
    scratch = build_model(child_arch, "mlm", config=parent.config, seed=1)
    runs["scratch"] = train_mlm(scratch, data, STEP_CAP, seed=0, settings=SETTINGS, target_loss=target)
    for mode in ("ot", "rp"):
        child, _ = transfer(parent, child_arch, mode, seed=1)
        runs[mode] = train_mlm(child, data, STEP_CAP, seed=0, settings=SETTINGS, target_loss=target)
    steps = {name: run.steps_to_target if run.steps_to_target is not None else STEP_CAP + 1 for name, run in runs.items()}
    print(
        f"\nparent: {PARENT_STEPS} steps to pre-training loss {target:.4f} (seed 0); steps for the child to reach it: "
        + ", ".join(f"{name} {steps[name]} (start loss {runs[name].eval_curve[0][1]:.3f})" for name in runs)
    )
    assert steps["scratch"] >= PARENT_STEPS // 2  # the target takes real training from scratch
    for mode in ("ot", "rp"):
        assert runs[mode].steps_to_target is not None
        assert runs[mode].eval_curve[0][1] < runs["scratch"].eval_curve[0][1] - 1.0  # inherited knowledge at step 0
        assert steps[mode] * 2 <= steps["scratch"]  # at most half the steps


def test_training_is_reproducible_from_its_seed(trained_parent):
    parent, data, _ = trained_parent
    runs = []
    for _ in range(2):
        child, _ = transfer(parent, Architecture.from_dict(TRAIN_CHILD), "rp", seed=5)
        runs.append(train_mlm(child, data, 12, seed=3, settings=TrainSettings(eval_every=6)))
    assert runs[0].train_losses == runs[1].train_losses
    assert runs[0].eval_curve == runs[1].eval_curve
    assert np.isfinite(runs[0].train_losses).all()
