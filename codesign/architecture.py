"""The FlexiBERT 2.0 model dictionary as a typed, validated value.

A model dictionary, as the authors publish it::

    {"l": 2,
     "o": [["sa_sdp_64", "sa_sdp_64"], ["sa_sdp_64", "sa_sdp_64"]],
     "h": [128, 128],
     "f": [[512], [512]]}

``l`` is the number of encoder layers; ``o[j]`` lists the heads of layer ``j``, each
``<type>_<subtype>_<head_dim>`` (``sa_sdp_64``, ``c_13_32``); ``h[j]`` is the layer's
hidden size; ``f[j]`` is its feed-forward stack (hidden sizes of 1..3 layers).

This module checks *structure* only (the right keys, lengths, types and positive
sizes), so that grown or pruned models outside the design space's ranges can still
be represented. Whether a model lies inside the FlexiBERT 2.0 design space (Table I)
is :meth:`codesign.design_space.DesignSpace.check`.

Head dimensions and ``h``: in every published model, each head of layer ``j`` has
dimension ``h[j] // n`` for ``n`` heads, so the heads' dimensions sum to less than
``h[j]`` when ``n`` does not divide it (12 heads in a 128-wide layer have 10 features
each, 120 in all); the layer projects the concatenated heads back to ``h[j]``. So the
structure check does not require the head dimensions to sum to ``h[j]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, NamedTuple

import numpy as np

MODEL_DICT_KEYS = ("l", "o", "h", "f")
HEAD_PATTERN = re.compile(r"^(?P<op>(?:sa|l|c)_[a-z0-9]+)_(?P<dim>[0-9]+)$")


class ArchitectureError(ValueError):
    """A model dictionary that is malformed or outside a design space.

    ``field`` names the first offending field, e.g. ``o[2][1]``; the message
    starts with it.
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}" if field else problem)
        self.field = field
        self.problem = problem


class Head(NamedTuple):
    """One attention head: its operation (``sa_sdp``, ``c_9``, ...) and dimension."""

    op: str
    dim: int

    @property
    def name(self) -> str:
        """The head as written in a model dictionary, e.g. ``sa_sdp_64``."""
        return f"{self.op}_{self.dim}"


def parse_head(text: Any, field: str = "head") -> Head:
    """Parse ``<type>_<subtype>_<head_dim>`` into a :class:`Head`."""
    if not isinstance(text, str):
        raise ArchitectureError(field, f"expected a head name string like 'sa_sdp_64', got {text!r}")
    match = HEAD_PATTERN.match(text)
    if match is None:
        raise ArchitectureError(
            field,
            f"{text!r} is not a head: expected <type>_<subtype>_<head_dim> "
            "with type sa, l or c (e.g. 'sa_sdp_64', 'l_dct_32', 'c_9_16')",
        )
    dim = int(match.group("dim"))
    if dim <= 0:
        raise ArchitectureError(field, f"head dimension must be positive, got {text!r}")
    return Head(match.group("op"), dim)


def _positive_int(value: Any, field: str, what: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ArchitectureError(field, f"expected {what} (a positive integer), got {value!r}")
    if value <= 0:
        raise ArchitectureError(field, f"expected {what} (a positive integer), got {value!r}")
    return int(value)


def _list_of(value: Any, field: str, what: str, length: int | None = None) -> list:
    if not isinstance(value, (list, tuple)):
        raise ArchitectureError(field, f"expected a list of {what}, got {type(value).__name__} {value!r}")
    if length is not None and len(value) != length:
        raise ArchitectureError(field, f"expected {length} entries (one per layer, l = {length}), got {len(value)}")
    if not value:
        raise ArchitectureError(field, f"expected a non-empty list of {what}, got []")
    return list(value)


@dataclass(frozen=True)
class Architecture:
    """A heterogeneous transformer encoder: per layer its heads, hidden size and FF stack."""

    heads: tuple[tuple[Head, ...], ...]
    hidden: tuple[int, ...]
    feed_forward: tuple[tuple[int, ...], ...]

    @property
    def layers(self) -> int:
        """Number of encoder layers (``l``)."""
        return len(self.heads)

    @property
    def heads_per_layer(self) -> tuple[int, ...]:
        """Number of heads in each layer."""
        return tuple(len(layer) for layer in self.heads)

    @classmethod
    def from_dict(cls, model: Any) -> "Architecture":
        """Validate the structure of a model dictionary and build the architecture."""
        if not isinstance(model, Mapping):
            raise ArchitectureError(
                "", f"expected a model dictionary (an object with keys l, o, h, f), got {type(model).__name__}"
            )
        for key in MODEL_DICT_KEYS:
            if key not in model:
                raise ArchitectureError(key, "missing key (a model dictionary has l, o, h, f)")
        for key in model:
            if key not in MODEL_DICT_KEYS:
                raise ArchitectureError(str(key), "unknown key (a model dictionary has l, o, h, f)")
        layers = _positive_int(model["l"], "l", "a number of layers")
        ops = _list_of(model["o"], "o", "layers of heads", layers)
        heads = []
        for j, layer in enumerate(ops):
            names = _list_of(layer, f"o[{j}]", "head names")
            heads.append(tuple(parse_head(name, f"o[{j}][{k}]") for k, name in enumerate(names)))
        hidden = _list_of(model["h"], "h", "hidden sizes", layers)
        hidden = tuple(_positive_int(size, f"h[{j}]", "a hidden size") for j, size in enumerate(hidden))
        stacks = _list_of(model["f"], "f", "feed-forward stacks", layers)
        feed_forward = []
        for j, stack in enumerate(stacks):
            sizes = _list_of(stack, f"f[{j}]", "feed-forward sizes")
            feed_forward.append(
                tuple(_positive_int(size, f"f[{j}][{k}]", "a feed-forward size") for k, size in enumerate(sizes))
            )
        return cls(tuple(heads), hidden, tuple(feed_forward))

    def to_dict(self) -> dict:
        """The model dictionary (``{"l", "o", "h", "f"}``) with plain JSON types."""
        return {
            "l": self.layers,
            "o": [[head.name for head in layer] for layer in self.heads],
            "h": list(self.hidden),
            "f": [list(stack) for stack in self.feed_forward],
        }
