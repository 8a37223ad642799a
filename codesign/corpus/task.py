"""The bundled GLUE-format task: short sentiment sentences, generated from a seed.

Layout of GLUE's SST-2 (``sentence<TAB>label`` with a header row; label 1 positive,
0 negative), so the same loader reads it and a real SST-2 folder. The sentences are
built from templates that need more than one word to classify: negation flips the
polarity ("was not dull" is positive) and in "X, but Y" the clause after "but" decides.
A bag-of-words guess therefore tops out well below 100%.

``python -m codesign.corpus.task`` rewrites ``data/tasks/sentiment/{train,dev}.tsv``;
a test checks the shipped files equal what the generator makes (seed 0).
"""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path
from typing import List, Tuple

import numpy as np

TASK_NAME = "sentiment"
TRAIN_SIZE = 480  # sentences
DEV_SIZE = 120
DEFAULT_SEED = 0

SUBJECTS = (
    "the film", "this book", "the meal", "our trip", "the concert", "the new phone", "that hotel",
    "the lecture", "his painting", "the garden", "the play", "her speech", "the museum", "the coffee",
    "the train ride", "this album", "the game", "the old bridge", "the lesson", "the festival",
)
POSITIVE = (
    "wonderful", "delightful", "excellent", "charming", "brilliant", "pleasant", "moving", "superb",
    "lovely", "gripping", "generous", "cheerful",
)
NEGATIVE = (
    "dreadful", "boring", "awful", "tedious", "disappointing", "clumsy", "dull", "terrible",
    "bland", "noisy", "sloppy", "gloomy",
)
OPENERS = ("", "i thought ", "everyone said ", "to be honest, ", "we agreed that ")


def _adjective(rng: np.random.Generator, positive: bool) -> str:
    words = POSITIVE if positive else NEGATIVE
    return words[int(rng.integers(len(words)))]


def make_sentence(rng: np.random.Generator) -> Tuple[str, int]:
    """One sentence and its label (1 positive, 0 negative)."""
    subject = SUBJECTS[int(rng.integers(len(SUBJECTS)))]
    opener = OPENERS[int(rng.integers(len(OPENERS)))]
    kind = int(rng.integers(4))
    polarity = bool(rng.integers(2))
    if kind == 0:
        text, label = f"{subject} was {_adjective(rng, polarity)}", polarity
    elif kind == 1:
        text, label = f"{subject} was not {_adjective(rng, polarity)}", not polarity
    elif kind == 2:
        text, label = f"{subject} was {_adjective(rng, polarity)} and {_adjective(rng, polarity)}", polarity
    else:
        other = SUBJECTS[int(rng.integers(len(SUBJECTS)))]
        text = f"{subject} was {_adjective(rng, not polarity)}, but {other} was {_adjective(rng, polarity)}"
        label = polarity
    return f"{opener}{text}.", int(label)


def generate(seed: int = DEFAULT_SEED, train_size: int = TRAIN_SIZE, dev_size: int = DEV_SIZE) -> dict:
    """``{"train": [(sentence, label), ...], "dev": [...]}``, distinct sentences, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    seen: set = set()
    rows: List[Tuple[str, int]] = []
    while len(rows) < train_size + dev_size:
        sentence, label = make_sentence(rng)
        if sentence not in seen:
            seen.add(sentence)
            rows.append((sentence, label))
    return {"train": rows[:train_size], "dev": rows[train_size:]}


def to_tsv(rows: List[Tuple[str, int]]) -> str:
    """GLUE SST-2 layout: a header, then ``sentence<TAB>label`` per line."""
    return "sentence\tlabel\n" + "".join(f"{sentence}\t{label}\n" for sentence, label in rows)


def task_dir() -> Path:
    """Folder of the shipped task files."""
    return Path(str(resources.files("codesign.corpus").joinpath("data", "tasks", TASK_NAME)))


def write_task(directory: Path, seed: int = DEFAULT_SEED) -> None:
    """Write ``train.tsv`` and ``dev.tsv`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for split, rows in generate(seed).items():
        (directory / f"{split}.tsv").write_text(to_tsv(rows), encoding="utf-8")


def main() -> None:
    """Regenerate the shipped task files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="folder (default: the package's data/tasks/sentiment)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args()
    write_task(args.out or task_dir(), args.seed)


if __name__ == "__main__":
    main()
