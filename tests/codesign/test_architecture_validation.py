"""Validation of model dictionaries: each kind of bad field is named with its value."""

from __future__ import annotations

import copy

import pytest

from codesign.architecture import Architecture, ArchitectureError, Head, parse_head

BERT_TINY = {"l": 2, "o": [["sa_sdp_64", "sa_sdp_64"], ["sa_sdp_64", "sa_sdp_64"]], "h": [128, 128], "f": [[512], [512]]}


def _with(path: tuple, value) -> dict:
    model = copy.deepcopy(BERT_TINY)
    target = model
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return model


def test_bert_tiny_parses_and_round_trips(space):
    arch = space.validate(BERT_TINY)
    assert arch.layers == 2
    assert arch.heads_per_layer == (2, 2)
    assert arch.heads[0][0] == Head("sa_sdp", 64)
    assert arch.to_dict() == BERT_TINY


def test_parse_head_splits_operation_and_dimension():
    assert parse_head("c_13_32") == Head("c_13", 32)
    assert parse_head("l_dft_10").name == "l_dft_10"


@pytest.mark.parametrize(
    "model, field, fragment",
    [
        ([1, 2], "", "expected a model dictionary"),
        ({k: v for k, v in BERT_TINY.items() if k != "h"}, "h", "missing key"),
        ({**BERT_TINY, "x": 1}, "x", "unknown key"),
        (_with(("l",), "2"), "l", "'2'"),
        (_with(("l",), True), "l", "True"),
        (_with(("l",), 0), "l", "got 0"),
        (_with(("l",), 3), "o", "expected 3 entries"),
        (_with(("o",), "sa_sdp_64"), "o", "expected a list of layers of heads"),
        (_with(("o", 1), []), "o[1]", "non-empty list"),
        (_with(("o", 1, 0), "sa_xyz"), "o[1][0]", "'sa_xyz' is not a head"),
        (_with(("o", 1, 1), "attn_64"), "o[1][1]", "'attn_64' is not a head"),
        (_with(("o", 0, 1), "sa_sdp_0"), "o[0][1]", "head dimension must be positive"),
        (_with(("o", 0, 1), 64), "o[0][1]", "expected a head name string"),
        (_with(("h",), [128]), "h", "expected 2 entries"),
        (_with(("h", 1), 128.0), "h[1]", "128.0"),
        (_with(("h", 0), -128), "h[0]", "-128"),
        (_with(("f",), [[512]]), "f", "expected 2 entries"),
        (_with(("f", 1), 512), "f[1]", "expected a list of feed-forward sizes"),
        (_with(("f", 0), []), "f[0]", "non-empty list"),
        (_with(("f", 1, 0), "512"), "f[1][0]", "'512'"),
    ],
)
def test_structure_errors_name_field_and_value(model, field, fragment):
    with pytest.raises(ArchitectureError) as caught:
        Architecture.from_dict(model)
    assert caught.value.field == field
    assert fragment in str(caught.value)
    if field:
        assert str(caught.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    "model, field, fragment",
    [
        ({"l": 3, "o": BERT_TINY["o"] + BERT_TINY["o"][:1], "h": [128] * 3, "f": [[512]] * 3}, "l", "3 layers is outside"),
        (_with(("o", 1), ["sa_sdp_42"] * 3), "o[1]", "3 heads is outside the design space (allowed: 2, 4, 8, 12)"),
        (_with(("o", 0, 1), "c_7_64"), "o[0][1]", "operation 'c_7' is not in the design space"),
        (_with(("h", 1), 100), "h[1]", "hidden size 100 is outside"),
        (_with(("o", 1, 1), "sa_sdp_32"), "o[1][1]", "should be h[1] // heads = 128 // 2 = 64"),
        (_with(("f", 0), [512, 512, 512, 512]), "f[0]", "a stack of 4 feed-forward layers"),
        (_with(("f", 1, 0), 300), "f[1][0]", "feed-forward size 300 is outside"),
    ],
)
def test_design_space_errors_name_field_and_value(space, model, field, fragment):
    arch = Architecture.from_dict(model)
    with pytest.raises(ArchitectureError) as caught:
        space.check(arch)
    assert caught.value.field == field
    assert fragment in str(caught.value)
    assert not space.contains(arch)


def test_twelve_heads_in_128_wide_layer_have_dimension_10(space):
    """As in the published data: head dim = hidden // heads, summing to 120 < 128."""
    model = {"l": 2, "o": [["sa_sdp_10"] * 12, ["l_dct_64"] * 2], "h": [128, 128], "f": [[512], [256, 256]]}
    arch = space.validate(model)
    assert sum(head.dim for head in arch.heads[0]) == 120


def test_first_offending_field_is_reported(space):
    model = _with(("h", 1), 100)
    model["f"][1] = [300]
    with pytest.raises(ArchitectureError, match=r"^h\[1\]"):
        space.validate(model)
