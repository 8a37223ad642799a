"""A small WordPiece tokenizer the project owns: BERT's algorithm, a vocabulary trained here.

Encoding is BERT's: the *basic* step lower-cases, strips accents (Unicode NFD without
combining marks), drops control characters and splits on whitespace and around every
punctuation character; the *WordPiece* step splits each word greedily into the longest
vocabulary pieces, continuation pieces written ``##piece``, and maps a word it cannot
cover to ``[UNK]``. So a real BERT ``vocab.txt`` (e.g. the 30,522-token uncased one) loads
and encodes as BERT does for English text.

The bundled vocabulary (``codesign/corpus/data/vocab.txt``, 1,000 tokens) is trained on
the bundled corpus by byte-pair-style merges over word counts (start from characters,
repeatedly join the most frequent adjacent pair, ties broken alphabetically; every ASCII
letter, digit and punctuation mark is always a token, so English text never needs
``[UNK]``), which is
deterministic: :func:`train_vocab` rebuilds the shipped file exactly.

Limits (documented, not hidden): trained on ~34 KB of English, so rarer words split into
many pieces; no special handling of Chinese characters or other scripts (BERT puts
spaces around CJK ideographs); no cased vocabulary; characters never seen in training
become ``[UNK]``; text longer than the sequence is truncated, not strided.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Iterable, List, Sequence, Tuple

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
CONTINUATION = "##"
MAX_WORD_CHARS = 100  # longer words become [UNK], as in BERT
BUNDLED_VOCAB_SIZE = 1000
BASE_CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"  # always in the vocabulary


def _is_punctuation(char: str) -> bool:
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def basic_tokenize(text: str) -> List[str]:
    """Lower-case, strip accents and control characters, split on whitespace and punctuation."""
    text = unicodedata.normalize("NFD", text.lower())
    words: List[str] = []
    current: List[str] = []
    for char in text:
        category = unicodedata.category(char)
        if category == "Mn":
            continue
        if char.isspace():
            if current:
                words.append("".join(current))
                current = []
        elif _is_punctuation(char):
            if current:
                words.append("".join(current))
                current = []
            words.append(char)
        elif category.startswith("C"):
            continue
        else:
            current.append(char)
    if current:
        words.append("".join(current))
    return words


class WordPieceTokenizer:
    """BERT's WordPiece encoding over a given vocabulary (token -> id by line order)."""

    def __init__(self, vocab: Sequence[str]) -> None:
        self.tokens = list(vocab)
        self.ids = {token: i for i, token in enumerate(self.tokens)}
        if len(self.ids) != len(self.tokens):
            raise ValueError("vocabulary has duplicate tokens")
        missing = [token for token in SPECIAL_TOKENS if token not in self.ids]
        if missing:
            raise ValueError(f"vocabulary lacks the special tokens {', '.join(missing)}")
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = (self.ids[t] for t in SPECIAL_TOKENS)
        self.special_ids = frozenset(self.ids[t] for t in SPECIAL_TOKENS)

    @classmethod
    def from_file(cls, path: str | Path) -> "WordPieceTokenizer":
        """Load a ``vocab.txt`` (one token per line, as BERT's)."""
        with open(path, encoding="utf-8") as handle:
            return cls([line.rstrip("\n") for line in handle if line.rstrip("\n")])

    @property
    def vocab_size(self) -> int:
        """Number of tokens."""
        return len(self.tokens)

    def word_pieces(self, word: str) -> List[str]:
        """Greedy longest-match-first pieces of one basic token."""
        if len(word) > MAX_WORD_CHARS:
            return ["[UNK]"]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            found = None
            while start < end:
                piece = word[start:end] if start == 0 else CONTINUATION + word[start:end]
                if piece in self.ids:
                    found = piece
                    break
                end -= 1
            if found is None:
                return ["[UNK]"]
            pieces.append(found)
            start = end
        return pieces

    def tokenize(self, text: str) -> List[str]:
        """Text -> WordPiece tokens."""
        return [piece for word in basic_tokenize(text) for piece in self.word_pieces(word)]

    def encode(self, text: str) -> List[int]:
        """Text -> token ids (no special tokens added)."""
        return [self.ids[piece] for piece in self.tokenize(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """Token ids -> text (pieces joined, special tokens kept)."""
        out: List[str] = []
        for i in ids:
            token = self.tokens[int(i)]
            if token.startswith(CONTINUATION) and out:
                out[-1] += token[len(CONTINUATION) :]
            else:
                out.append(token)
        return " ".join(out)

    def encode_pair(self, text_a: str, text_b: str | None, seq_len: int) -> Tuple[List[int], List[int], List[int]]:
        """``[CLS] a [SEP] (b [SEP])`` padded/truncated to ``seq_len``: (ids, attention mask, token types)."""
        if seq_len < 3:
            raise ValueError(f"seq_len must be at least 3, got {seq_len}")
        a = self.encode(text_a)
        b = self.encode(text_b) if text_b is not None else []
        budget = seq_len - (3 if text_b is not None else 2)
        while len(a) + len(b) > budget:  # BERT's truncation: trim the longer one
            if len(a) >= len(b):
                a.pop()
            else:
                b.pop()
        ids = [self.cls_id, *a, self.sep_id]
        types = [0] * len(ids)
        if text_b is not None:
            ids += [*b, self.sep_id]
            types += [1] * (len(b) + 1)
        mask = [1] * len(ids)
        padding = seq_len - len(ids)
        return ids + [self.pad_id] * padding, mask + [0] * padding, types + [0] * padding


def train_vocab(texts: Iterable[str], size: int = BUNDLED_VOCAB_SIZE) -> List[str]:
    """Train a WordPiece vocabulary of at most ``size`` tokens by frequency-ordered pair merges."""
    counts = Counter(word for text in texts for word in basic_tokenize(text))
    words = {word: [word[0], *(CONTINUATION + c for c in word[1:])] for word in counts}
    base = set(BASE_CHARACTERS) | {CONTINUATION + c for c in BASE_CHARACTERS if c.isalnum()}
    alphabet = sorted(base | {symbol for symbols in words.values() for symbol in symbols})
    vocab = list(SPECIAL_TOKENS) + alphabet
    known = set(vocab)
    while len(vocab) < size:
        pairs: Counter = Counter()
        for word, symbols in words.items():
            for left, right in zip(symbols, symbols[1:]):
                pairs[(left, right)] += counts[word]
        if not pairs:
            break
        best_count = max(pairs.values())
        if best_count < 2:
            break
        left, right = min(pair for pair, count in pairs.items() if count == best_count)
        merged = left + right[len(CONTINUATION) :]
        for word, symbols in words.items():
            if len(symbols) < 2:
                continue
            joined, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and symbols[i] == left and symbols[i + 1] == right:
                    joined.append(merged)
                    i += 2
                else:
                    joined.append(symbols[i])
                    i += 1
            words[word] = joined
        if merged not in known:
            vocab.append(merged)
            known.add(merged)
    return vocab


def bundled_vocab_path() -> Path:
    """The shipped ``vocab.txt``."""
    return Path(str(resources.files("codesign.corpus").joinpath("data", "vocab.txt")))


def bundled_tokenizer() -> WordPieceTokenizer:
    """The tokenizer over the shipped vocabulary."""
    return WordPieceTokenizer.from_file(bundled_vocab_path())


def write_vocab(vocab: Sequence[str], path: str | Path) -> None:
    """One token per line."""
    Path(path).write_text("".join(f"{token}\n" for token in vocab), encoding="utf-8")
