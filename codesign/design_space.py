"""The FlexiBERT 2.0 design space: ranges (from data), operation enumerations, counts.

The ranges live in ``codesign/data/design_space.toml`` (Table I of the EdgeTran paper,
the same ranges as the authors' ``design_space.yaml``). From them this module derives:

* the **feed-forward operation types**: every stack of 1, 2 or 3 layers over the six
  feed-forward sizes, ordered by depth and then lexicographically by size index
  (``itertools.product``): 6 + 6^2 + 6^3 = **258**;
* the **multi-head operation types**: for each number of heads ``n`` in the order of
  ``num_heads``, every multiset of ``n`` operations (combinations with replacement,
  in the operation order of the data file): **21,805**;
* the exact number of architectures.

Choices where the paper is inconsistent (checked against the published data):

* Head counts. Sec. IV-A1 writes ``n_A = {2, 4, 6, 8, 10, 12}``, which would give
  28 + 210 + 924 + 3003 + 8008 + 18564 = 30,737 multi-head types, not the 21,805 the
  same sentence states. Table I's ``{2, 4, 8, 12}`` gives 28 + 210 + 3003 + 18564 =
  21,805, and every published embedding indexes that enumeration; so heads are
  ``{2, 4, 8, 12}``.
* Kernel sizes. This copy of Table I lists DSC kernels ``{5, 9}``, but the text
  (seven operations, DSC-13), Table IV, the authors' ``design_space.yaml`` and the
  published models (``c_13_*`` heads) all include 13; so there are 7 operations.
* The architecture count. The paper writes ``sum_{i in n_A} 258^i 4^i 21805^i`` and
  quotes 1.7e88 (1.69e88 in Sec. III-A1). The sum is over the numbers of *layers*
  (a layer independently picks one of 4 hidden sizes, 258 feed-forward types and
  21,805 multi-head types), which gives the exact integer of
  :meth:`DesignSpace.architecture_count`, 1.6859e88 (the paper rounds it to 1.69e88 and 1.7e88).
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources
from math import comb
from pathlib import Path
from typing import Any, Iterable, Mapping

from codesign.architecture import Architecture, ArchitectureError, Head

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

DEFAULT_SPACE_FILE = "design_space.toml"


class DesignSpaceError(ValueError):
    """A design-space file that does not describe a usable space."""


@dataclass(frozen=True)
class Operation:
    """An attention operation of the space (``sa_sdp``, ``c_13``, ...)."""

    name: str
    family: str
    detail: str


def _allowed(values: Iterable[Any]) -> str:
    return ", ".join(str(v) for v in values)


def _int_list(table: Mapping[str, Any], key: str) -> tuple[int, ...]:
    values = table.get(key)
    if not isinstance(values, list) or not values:
        raise DesignSpaceError(f"{key}: expected a non-empty list of positive integers")
    if any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in values):
        raise DesignSpaceError(f"{key}: expected positive integers, got {values!r}")
    if len(set(values)) != len(values) or list(values) != sorted(values):
        raise DesignSpaceError(f"{key}: values must be distinct and ascending, got {values!r}")
    return tuple(values)


@dataclass(frozen=True)
class DesignSpace:
    """Ranges of a FlexiBERT-style design space and the enumerations the embedding uses."""

    name: str
    encoder_layers: tuple[int, ...]
    hidden_sizes: tuple[int, ...]
    num_heads: tuple[int, ...]
    feed_forward_sizes: tuple[int, ...]
    feed_forward_stack_depths: tuple[int, ...]
    operations: tuple[Operation, ...]

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any]) -> "DesignSpace":
        """Build a space from the parsed TOML table, checking every range."""
        ops = table.get("operations")
        if not isinstance(ops, list) or not ops:
            raise DesignSpaceError("operations: expected a non-empty array of [[operations]] tables")
        operations = []
        for i, op in enumerate(ops):
            name = op.get("name") if isinstance(op, Mapping) else None
            if not isinstance(name, str) or not name:
                raise DesignSpaceError(f"operations[{i}]: missing name")
            operations.append(Operation(name, str(op.get("family", "")), str(op.get("detail", ""))))
        if len({op.name for op in operations}) != len(operations):
            raise DesignSpaceError("operations: names must be distinct")
        return cls(
            name=str(table.get("name", "unnamed")),
            encoder_layers=_int_list(table, "encoder_layers"),
            hidden_sizes=_int_list(table, "hidden_sizes"),
            num_heads=_int_list(table, "num_heads"),
            feed_forward_sizes=_int_list(table, "feed_forward_sizes"),
            feed_forward_stack_depths=_int_list(table, "feed_forward_stack_depths"),
            operations=tuple(operations),
        )

    @classmethod
    def from_toml(cls, path: str | Path) -> "DesignSpace":
        """Load a space from a TOML file laid out like the packaged one."""
        try:
            with open(path, "rb") as handle:
                table = tomllib.load(handle)
        except tomllib.TOMLDecodeError as error:
            raise DesignSpaceError(f"{path}: not valid TOML ({error})") from None
        return cls.from_mapping(table)

    # -- enumerations --------------------------------------------------------------

    @cached_property
    def operation_names(self) -> tuple[str, ...]:
        """Operation names in embedding order."""
        return tuple(op.name for op in self.operations)

    @cached_property
    def feed_forward_op_types(self) -> tuple[tuple[int, ...], ...]:
        """Every feed-forward stack, in embedding-index order."""
        return tuple(
            stack
            for depth in self.feed_forward_stack_depths
            for stack in itertools.product(self.feed_forward_sizes, repeat=depth)
        )

    @cached_property
    def attention_op_types(self) -> tuple[tuple[str, ...], ...]:
        """Every multi-head operation (a sorted multiset of head operations), in index order."""
        return tuple(
            combo
            for n in self.num_heads
            for combo in itertools.combinations_with_replacement(self.operation_names, n)
        )

    @cached_property
    def _feed_forward_index(self) -> dict[tuple[int, ...], int]:
        return {stack: i for i, stack in enumerate(self.feed_forward_op_types)}

    @cached_property
    def _attention_index(self) -> dict[tuple[str, ...], int]:
        return {combo: i for i, combo in enumerate(self.attention_op_types)}

    @cached_property
    def _operation_rank(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.operation_names)}

    def feed_forward_index(self, stack: Iterable[int]) -> int:
        """Index of a feed-forward stack among :attr:`feed_forward_op_types`."""
        return self._feed_forward_index[tuple(stack)]

    def attention_index(self, ops: Iterable[str]) -> int:
        """Index of a multiset of head operations (any order) among :attr:`attention_op_types`."""
        rank = self._operation_rank
        return self._attention_index[tuple(sorted(ops, key=rank.__getitem__))]

    def layer_heads(self, attention_index: int, hidden: int) -> tuple[Head, ...]:
        """Heads of a layer with the given multi-head type and hidden size (dim = hidden // heads)."""
        ops = self.attention_op_types[attention_index]
        dim = hidden // len(ops)
        interned = self._heads_by_dim.get(dim)
        if interned is None:
            interned = self._heads_by_dim[dim] = {op: Head(op, dim) for op in self.operation_names}
        return tuple(map(interned.__getitem__, ops))

    @cached_property
    def _heads_by_dim(self) -> dict[int, dict[str, Head]]:
        return {}

    # -- counts --------------------------------------------------------------------

    @property
    def max_layers(self) -> int:
        """The deepest model of the space."""
        return max(self.encoder_layers)

    @property
    def embedding_dim(self) -> int:
        """1 (layers) + 3 per layer (hidden, feed-forward, multi-head index) = 37 here."""
        return 1 + 3 * self.max_layers

    def feed_forward_op_count(self) -> int:
        """Number of feed-forward operation types, by formula (258 here)."""
        return sum(len(self.feed_forward_sizes) ** d for d in self.feed_forward_stack_depths)

    def attention_op_count(self) -> int:
        """Number of multi-head operation types, by formula (21,805 here)."""
        k = len(self.operations)
        return sum(comb(k + n - 1, n) for n in self.num_heads)

    def layer_choices(self) -> int:
        """Distinct encoder layers: hidden sizes x feed-forward types x multi-head types."""
        return len(self.hidden_sizes) * self.feed_forward_op_count() * self.attention_op_count()

    def architecture_count(self) -> int:
        """Exact number of architectures: the sum over depths l of layer_choices()^l."""
        per_layer = self.layer_choices()
        return sum(per_layer**depth for depth in self.encoder_layers)

    # -- membership ----------------------------------------------------------------

    def check(self, arch: Architecture) -> None:
        """Raise :class:`ArchitectureError` naming the first field outside this space."""
        if arch.layers not in self.encoder_layers:
            raise ArchitectureError(
                "l", f"{arch.layers} layers is outside the design space (allowed: {_allowed(self.encoder_layers)})"
            )
        known = self._operation_rank
        for j in range(arch.layers):
            heads = arch.heads[j]
            if len(heads) not in self.num_heads:
                raise ArchitectureError(
                    f"o[{j}]", f"{len(heads)} heads is outside the design space (allowed: {_allowed(self.num_heads)})"
                )
            for k, head in enumerate(heads):
                if head.op not in known:
                    raise ArchitectureError(
                        f"o[{j}][{k}]",
                        f"operation {head.op!r} is not in the design space (allowed: {_allowed(self.operation_names)})",
                    )
            hidden = arch.hidden[j]
            if hidden not in self.hidden_sizes:
                raise ArchitectureError(
                    f"h[{j}]", f"hidden size {hidden} is outside the design space (allowed: {_allowed(self.hidden_sizes)})"
                )
            expected = hidden // len(heads)
            for k, head in enumerate(heads):
                if head.dim != expected:
                    raise ArchitectureError(
                        f"o[{j}][{k}]",
                        f"head dimension {head.dim} of {head.name!r} should be h[{j}] // heads = "
                        f"{hidden} // {len(heads)} = {expected}",
                    )
            stack = arch.feed_forward[j]
            if len(stack) not in self.feed_forward_stack_depths:
                raise ArchitectureError(
                    f"f[{j}]",
                    f"a stack of {len(stack)} feed-forward layers is outside the design space "
                    f"(allowed depths: {_allowed(self.feed_forward_stack_depths)})",
                )
            for k, size in enumerate(stack):
                if size not in self.feed_forward_sizes:
                    raise ArchitectureError(
                        f"f[{j}][{k}]",
                        f"feed-forward size {size} is outside the design space "
                        f"(allowed: {_allowed(self.feed_forward_sizes)})",
                    )

    def contains(self, arch: Architecture) -> bool:
        """Whether the architecture lies inside this space."""
        try:
            self.check(arch)
        except ArchitectureError:
            return False
        return True

    def validate(self, model: Any) -> Architecture:
        """Parse a model dictionary and check it lies in this space; raise ArchitectureError if not."""
        arch = Architecture.from_dict(model)
        self.check(arch)
        return arch

    def summary(self) -> dict:
        """The counts the CLI reports (`edgetran space stats`)."""
        count = self.architecture_count()
        return {
            "name": self.name,
            "feed_forward_op_types": self.feed_forward_op_count(),
            "attention_op_types": self.attention_op_count(),
            "architectures": str(count),
            "architectures_approx": f"{count:.4e}",
            "embedding_dim": self.embedding_dim,
        }


@lru_cache(maxsize=1)
def default_space() -> DesignSpace:
    """The packaged FlexiBERT 2.0 space (Table I)."""
    source = resources.files("codesign").joinpath("data", DEFAULT_SPACE_FILE)
    with resources.as_file(source) as path:
        return DesignSpace.from_toml(path)
