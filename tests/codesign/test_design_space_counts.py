"""Counts of the FlexiBERT 2.0 design space (EdgeTran Sec. III-A, IV-A1, Table I)."""

from __future__ import annotations

from math import comb
from pathlib import Path

import pytest

from codesign.design_space import DesignSpace, DesignSpaceError, default_space


def test_feed_forward_operation_types_are_258(space):
    assert space.feed_forward_op_count() == 258
    assert len(space.feed_forward_op_types) == 258
    assert len(set(space.feed_forward_op_types)) == 258


def test_multi_head_operation_types_are_21805(space):
    assert space.attention_op_count() == 21805
    assert len(space.attention_op_types) == 21805
    assert len(set(space.attention_op_types)) == 21805


def test_text_head_counts_would_contradict_21805():
    """Sec. IV-A1's n_A = {2,4,6,8,10,12} gives 30,737, Table I's {2,4,8,12} gives 21,805."""
    assert sum(comb(7 + i - 1, i) for i in (2, 4, 6, 8, 10, 12)) == 30737
    assert sum(comb(7 + i - 1, i) for i in (2, 4, 8, 12)) == 21805


def test_architecture_count_is_exact_integer(space):
    per_layer = 4 * 258 * 21805
    expected = sum(per_layer**l for l in (2, 4, 6, 8, 10, 12))
    assert space.architecture_count() == expected
    assert isinstance(space.architecture_count(), int)
    # The paper quotes 1.69e88 (Sec. III-A1) and 1.7e88 (Sec. IV-A1).
    assert f"{space.architecture_count():.2e}" == "1.69e+88"


def test_embedding_has_37_dimensions(space):
    assert space.embedding_dim == 37


def test_enumeration_orders(space):
    assert space.feed_forward_op_types[0] == (256,)
    assert space.feed_forward_op_types[6] == (256, 256)
    assert space.feed_forward_op_types[-1] == (4096, 4096, 4096)
    assert space.attention_op_types[0] == ("sa_sdp", "sa_sdp")
    assert space.attention_op_types[27] == ("c_13", "c_13")
    assert space.attention_op_types[28] == ("sa_sdp",) * 4
    assert space.attention_op_types[-1] == ("c_13",) * 12


def test_packaged_ranges_equal_authors_yaml(space):
    """The TOML table and the authors' design_space.yaml describe the same ranges."""
    import yaml

    from codesign.published import published_root

    with open(published_root() / "design_space.yaml", encoding="utf-8") as handle:
        authors = yaml.safe_load(handle)
    assert list(space.encoder_layers) == authors["encoder_layers"]
    assert list(space.hidden_sizes) == authors["hidden_size"]
    assert list(space.num_heads) == authors["num_heads"]
    assert list(space.feed_forward_sizes) == authors["feed-forward_hidden"]
    assert list(space.feed_forward_stack_depths) == authors["number_of_feed-forward_stacks"]
    ops = [f"{t}_{p}" for t in authors["operation_types"] for p in authors["operation_parameters"][t]]
    assert list(space.operation_names) == ops


def test_summary_reports_contract_keys(space):
    summary = space.summary()
    assert summary["feed_forward_op_types"] == 258
    assert summary["attention_op_types"] == 21805
    assert summary["architectures"] == str(space.architecture_count())
    assert summary["embedding_dim"] == 37


TINY_SPACE = {
    "name": '"tiny"',
    "encoder_layers": "[2]",
    "hidden_sizes": "[64]",
    "num_heads": "[2]",
    "feed_forward_sizes": "[128, 256]",
    "feed_forward_stack_depths": "[1]",
}
TINY_OPERATIONS = '[[operations]]\nname = "sa_sdp"\n[[operations]]\nname = "l_dft"\n'


def _space_file(tmp_path: Path, **overrides: str) -> Path:
    keys = {**TINY_SPACE, **overrides}
    path = tmp_path / "space.toml"
    path.write_text("".join(f"{k} = {v}\n" for k, v in keys.items()) + TINY_OPERATIONS)
    return path


def test_custom_space_file_changes_the_counts(tmp_path: Path):
    path = _space_file(tmp_path)
    small = DesignSpace.from_toml(path)
    assert small.attention_op_count() == 3  # {sdp,sdp}, {sdp,dft}, {dft,dft}
    assert small.feed_forward_op_count() == 2
    assert small.architecture_count() == (1 * 2 * 3) ** 2
    assert small.embedding_dim == 7


@pytest.mark.parametrize(
    "value, message",
    [
        ("[2, 2]", "encoder_layers: values must be distinct"),
        ("[]", "encoder_layers: expected a non-empty list"),
        ("[4, 2]", "encoder_layers: values must be distinct and ascending"),
        ("[0, 2]", "encoder_layers: expected positive integers"),
        ("[", "not valid TOML"),
    ],
)
def test_bad_space_file_is_named(tmp_path: Path, value: str, message: str):
    with pytest.raises(DesignSpaceError, match=message):
        DesignSpace.from_toml(_space_file(tmp_path, encoder_layers=value))


def test_space_file_without_operations_is_refused(tmp_path: Path):
    path = tmp_path / "space.toml"
    path.write_text("".join(f"{k} = {v}\n" for k, v in TINY_SPACE.items()))
    with pytest.raises(DesignSpaceError, match="operations: expected a non-empty array"):
        DesignSpace.from_toml(path)


def test_default_space_is_cached():
    assert default_space() is default_space()
