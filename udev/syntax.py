"""A checker for udev rules files: splits rules into KEY[{attr}]OP"value" pairs and validates them.

It follows udev(7): a rule is one line (a trailing backslash continues it), made of
comma-separated pairs; match keys take ``==`` / ``!=``, assignment keys ``=``, ``+=``,
``-=``, ``:=``; some keys take an ``{argument}``; a value may carry an ``e`` (C escapes)
or ``i`` (case-insensitive match) prefix. ``udevadm verify`` (systemd >= 254) checks
more (labels, substitutions); this module is what runs everywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MATCH_OPS = frozenset({"==", "!="})
ASSIGN_OPS = frozenset({"=", "+=", "-=", ":="})

# Keys of udev(7): which operators each takes and whether it needs / allows an {argument}.
MATCH_ONLY = frozenset({"ACTION", "DEVPATH", "KERNEL", "KERNELS", "SUBSYSTEM", "SUBSYSTEMS", "DRIVER", "DRIVERS",
                        "ATTRS", "CONST", "TAGS", "TEST", "RESULT"})
ASSIGN_ONLY = frozenset({"OWNER", "GROUP", "MODE", "SECLABEL", "RUN", "LABEL", "GOTO", "OPTIONS"})
EITHER = frozenset({"NAME", "SYMLINK", "ATTR", "SYSCTL", "ENV", "TAG", "PROGRAM", "IMPORT"})
KNOWN_KEYS = MATCH_ONLY | ASSIGN_ONLY | EITHER
NEEDS_ARG = frozenset({"ATTR", "ATTRS", "SYSCTL", "ENV", "CONST", "SECLABEL", "IMPORT"})
MAY_HAVE_ARG = NEEDS_ARG | {"TEST", "RUN"}
SINGLE_VALUE = frozenset({"OWNER", "GROUP", "MODE", "NAME", "LABEL", "GOTO", "ATTR", "SYSCTL", "SECLABEL"})
RUN_TYPES = frozenset({"program", "builtin"})
IMPORT_TYPES = frozenset({"program", "builtin", "file", "db", "cmdline", "parent"})
CONST_KEYS = frozenset({"arch", "virt", "cvm"})

PAIR = re.compile(
    r'\s*(?P<key>[A-Za-z_]+)(?:\{(?P<arg>[^}]*)\})?\s*(?P<op>==|!=|\+=|-=|:=|=)\s*'
    r'(?P<prefix>[ei]?)"(?P<value>(?:[^"\\]|\\.)*)"\s*(?P<sep>,|$)'
)


class RulesSyntaxError(ValueError):
    """A rules file that udev would reject or misread."""


@dataclass(frozen=True)
class Pair:
    """One KEY[{arg}]OP"value" field of a rule."""

    key: str
    arg: str | None
    op: str
    value: str
    prefix: str = ""

    @property
    def is_match(self) -> bool:
        """Whether the pair compares (== / !=) rather than assigns."""
        return self.op in MATCH_OPS


@dataclass(frozen=True)
class Rule:
    """One logical rule line (continuations joined) and its pairs."""

    line: int  # first physical line, 1-based
    pairs: tuple[Pair, ...]


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Non-blank, non-comment rule lines with backslash continuations joined, numbered by first line."""
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not pending:
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue
            start = number
        if raw.endswith("\\"):
            pending.append(raw[:-1])
            continue
        pending.append(raw)
        out.append((start, " ".join(part.strip() for part in pending)))
        pending = []
    if pending:
        raise RulesSyntaxError(f"line {start}: the file ends inside a continued line")
    return out


def split_pairs(line: str, number: int = 0) -> tuple[Pair, ...]:
    """The KEY[{arg}]OP"value" pairs of one rule line; raises on anything else."""
    pairs: list[Pair] = []
    position = 0
    while position < len(line):
        match = PAIR.match(line, position)
        if match is None:
            raise RulesSyntaxError(f"line {number}: cannot parse {line[position:].strip()[:60]!r}")
        pairs.append(Pair(match["key"], match["arg"], match["op"], match["value"], match["prefix"]))
        position = match.end()
        if match["sep"] == "," and not line[position:].strip():
            raise RulesSyntaxError(f"line {number}: trailing comma")
    if not pairs:
        raise RulesSyntaxError(f"line {number}: empty rule")
    return tuple(pairs)


def pair_errors(pair: Pair) -> list[str]:
    """What is wrong with one pair according to udev(7) (empty when it is valid)."""
    key, op = pair.key, pair.op
    if key not in KNOWN_KEYS:
        return [f"unknown key {key!r}"]
    errors = []
    if key in NEEDS_ARG and not pair.arg:
        errors.append(f"{key} needs an {{argument}}")
    if pair.arg is not None and key not in MAY_HAVE_ARG:
        errors.append(f"{key} takes no {{argument}}")
    if key in MATCH_ONLY and op not in MATCH_OPS:
        errors.append(f"{key} is a match key: use == or !=, not {op}")
    if key in ASSIGN_ONLY and op not in ASSIGN_OPS:
        errors.append(f"{key} is an assignment key: use =, +=, -= or :=, not {op}")
    if key in SINGLE_VALUE and op in {"+=", "-="}:
        errors.append(f"{key} holds one value: use = or :=, not {op}")
    if key in {"LABEL", "GOTO"} and op != "=":
        errors.append(f"{key} takes =, not {op}")
    if key == "RUN" and pair.arg is not None and pair.arg not in RUN_TYPES:
        errors.append(f"RUN{{{pair.arg}}}: type must be one of {sorted(RUN_TYPES)}")
    if key == "IMPORT" and pair.arg not in IMPORT_TYPES:
        errors.append(f"IMPORT{{{pair.arg}}}: type must be one of {sorted(IMPORT_TYPES)}")
    if key == "CONST" and pair.arg not in CONST_KEYS:
        errors.append(f"CONST{{{pair.arg}}}: key must be one of {sorted(CONST_KEYS)}")
    if key == "MODE" and not re.fullmatch(r"0?[0-7]{3,4}", pair.value):
        errors.append(f"MODE {pair.value!r} is not an octal mode")
    if pair.prefix == "i" and op not in MATCH_OPS:
        errors.append(f"{key}: the i\"...\" prefix is for matches only")
    return errors


def parse_rules(text: str) -> list[Rule]:
    """Parse and validate a rules file; raises :class:`RulesSyntaxError` naming every problem."""
    rules: list[Rule] = []
    problems: list[str] = []
    for number, line in logical_lines(text):
        try:
            pairs = split_pairs(line, number)
        except RulesSyntaxError as error:
            problems.append(str(error))
            continue
        problems.extend(f"line {number}: {message}" for pair in pairs for message in pair_errors(pair))
        rules.append(Rule(number, pairs))
    labels = {p.value for rule in rules for p in rule.pairs if p.key == "LABEL"}
    problems.extend(
        f"line {rule.line}: GOTO {p.value!r} has no LABEL" for rule in rules for p in rule.pairs if p.key == "GOTO" and p.value not in labels
    )
    if problems:
        raise RulesSyntaxError("; ".join(problems))
    return rules
