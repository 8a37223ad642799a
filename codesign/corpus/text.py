"""The bundled English corpus (``codesign/corpus/data/text/*.txt``) and MLM sequences cut from it.

See ``codesign/corpus/data/SOURCES.md`` for what each file is (public domain, or written
for this project). About 34 KB, about 8,000 tokens with the bundled vocabulary: enough
to train and compare tiny models in seconds, far too little to pre-train a useful one.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import List, Optional

import numpy as np

from codesign.corpus.tokenizer import WordPieceTokenizer, bundled_tokenizer


def corpus_dir() -> Path:
    """Folder of the bundled text files."""
    return Path(str(resources.files("codesign.corpus").joinpath("data", "text")))


def corpus_files() -> List[Path]:
    """The bundled text files, sorted by name."""
    return sorted(corpus_dir().glob("*.txt"))


def corpus_texts(directory: Optional[str | Path] = None) -> List[str]:
    """The text of every ``*.txt`` file of ``directory`` (default: the bundled corpus), sorted by name."""
    files = corpus_files() if directory is None else sorted(Path(directory).glob("*.txt"))
    if not files:
        raise FileNotFoundError(f"{directory}: no .txt files")
    return [path.read_text(encoding="utf-8") for path in files]


def mlm_sequences(
    seq_len: int, tokenizer: Optional[WordPieceTokenizer] = None, texts: Optional[List[str]] = None
) -> np.ndarray:
    """Non-overlapping ``[CLS] ... [SEP]`` windows of ``seq_len`` tokens over each text (int64, rows = sequences).

    A text's last, shorter window is padded with ``[PAD]``; windows never cross texts.
    """
    tokenizer = tokenizer or bundled_tokenizer()
    texts = corpus_texts() if texts is None else texts
    body = seq_len - 2
    if body < 1:
        raise ValueError(f"seq_len must be at least 3, got {seq_len}")
    rows = []
    for text in texts:
        ids = tokenizer.encode(text)
        for start in range(0, len(ids), body):
            piece = [tokenizer.cls_id, *ids[start : start + body], tokenizer.sep_id]
            rows.append(piece + [tokenizer.pad_id] * (seq_len - len(piece)))
    return np.asarray(rows, dtype=np.int64)
