"""GLUE-format TSV tasks: the bundled sentiment task, or a GLUE task folder of the user's.

Column layouts live in ``codesign/corpus/data/glue_tasks.toml`` (SST-2, CoLA, MRPC,
QNLI, RTE, WNLI, QQP, MNLI, STS-B and the bundled ``sentiment``). A folder is read as
GLUE distributes it: ``train.tsv`` and ``dev.tsv`` (``dev_matched.tsv`` for MNLI),
tab-separated, no quoting. The task is named explicitly or taken from the folder name
(``SST-2`` -> ``sst-2``). Test splits carry no labels and are not read.
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, List, Mapping, Optional

import numpy as np

from codesign.corpus.task import TASK_NAME, task_dir
from codesign.corpus.tokenizer import WordPieceTokenizer

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

SPLITS = ("train", "dev")
csv.field_size_limit(1 << 24)  # some GLUE rows (QQP, MNLI) are long


class TaskError(ValueError):
    """A task folder or file that does not match its declared layout."""


@dataclass(frozen=True)
class TaskLayout:
    """How one task's TSV files are laid out."""

    name: str
    header: bool
    text_a: Any
    text_b: Any
    label: Any
    labels: tuple
    dev: str

    @property
    def num_labels(self) -> int:
        """Classifier outputs: the number of labels, or 1 for regression."""
        return len(self.labels) or 1


@lru_cache(maxsize=1)
def task_layouts() -> Mapping[str, TaskLayout]:
    """Every task layout of the packaged TOML file."""
    source = resources.files("codesign.corpus").joinpath("data", "glue_tasks.toml")
    table = tomllib.loads(source.read_text(encoding="utf-8"))
    return {
        name: TaskLayout(
            name, bool(spec["header"]), spec["text_a"], spec.get("text_b"), spec["label"], tuple(spec["labels"]), spec.get("dev", "dev.tsv")
        )
        for name, spec in table.items()
    }


@dataclass(frozen=True)
class TaskData:
    """One split of a task: texts, optional second texts, integer (or float) labels."""

    task: str
    split: str
    text_a: List[str]
    text_b: Optional[List[str]]
    labels: np.ndarray
    num_labels: int

    def __len__(self) -> int:
        return len(self.text_a)

    def encode(self, tokenizer: WordPieceTokenizer, seq_len: int) -> dict:
        """``input_ids``, ``attention_mask``, ``token_type_ids`` (int64 arrays) and ``labels``."""
        rows = [
            tokenizer.encode_pair(a, self.text_b[i] if self.text_b is not None else None, seq_len)
            for i, a in enumerate(self.text_a)
        ]
        ids, mask, types = (np.asarray([row[k] for row in rows], dtype=np.int64) for k in range(3))
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types, "labels": self.labels}


def _column(layout: TaskLayout, header: Optional[List[str]], key: Any, path: Path) -> int:
    if isinstance(key, int):
        return key
    if header is None or key not in header:
        raise TaskError(f"{path}: no column {key!r} in the header (task {layout.name})")
    return header.index(key)


def load_task(directory: Optional[str | Path] = None, split: str = "train", task: Optional[str] = None) -> TaskData:
    """A split of the task in ``directory`` (default: the bundled sentiment task)."""
    if split not in SPLITS:
        raise TaskError(f"unknown split {split!r} (known: {', '.join(SPLITS)})")
    folder = Path(directory) if directory is not None else task_dir()
    name = (task or (TASK_NAME if directory is None else folder.name)).lower()
    layouts = task_layouts()
    if name not in layouts:
        raise TaskError(f"unknown task {name!r} for {folder} (known: {', '.join(layouts)}); name it with task=")
    layout = layouts[name]
    path = folder / ("train.tsv" if split == "train" else layout.dev)
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    except FileNotFoundError:
        raise TaskError(f"{path}: file not found") from None
    header = rows.pop(0) if layout.header and rows else None
    a_col = _column(layout, header, layout.text_a, path)
    b_col = _column(layout, header, layout.text_b, path) if layout.text_b is not None else None
    y_col = _column(layout, header, layout.label, path)
    index = {value: i for i, value in enumerate(layout.labels)}
    text_a, text_b, labels = [], [] if b_col is not None else None, []
    for line, row in enumerate(rows, start=2 if header else 1):
        if not row:
            continue
        if max(a_col, y_col, b_col or 0) >= len(row):
            raise TaskError(f"{path}:{line}: expected at least {max(a_col, y_col, b_col or 0) + 1} columns, got {len(row)}")
        value = row[y_col].strip()
        if layout.labels:
            if value not in index:
                raise TaskError(f"{path}:{line}: label {value!r} is not one of {', '.join(layout.labels)}")
            labels.append(index[value])
        else:
            try:
                labels.append(float(value))
            except ValueError:
                raise TaskError(f"{path}:{line}: regression label {value!r} is not a number") from None
        text_a.append(row[a_col])
        if text_b is not None:
            text_b.append(row[b_col])
    dtype = np.int64 if layout.labels else np.float32
    return TaskData(name, split, text_a, text_b, np.asarray(labels, dtype=dtype), layout.num_labels)
