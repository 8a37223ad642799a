"""The bundled corpus, tokenizer and GLUE-format task; loaders of the real GLUE TSV layouts."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from codesign.corpus.glue import TaskError, load_task, task_layouts
from codesign.corpus.task import generate, task_dir, to_tsv
from codesign.corpus.text import corpus_dir, corpus_files, corpus_texts, mlm_sequences
from codesign.corpus.tokenizer import (
    BUNDLED_VOCAB_SIZE,
    SPECIAL_TOKENS,
    WordPieceTokenizer,
    basic_tokenize,
    bundled_tokenizer,
    bundled_vocab_path,
    train_vocab,
)


def test_corpus_is_real_english_and_every_file_is_sourced():
    files = corpus_files()
    assert len(files) >= 8
    total = sum(len(text) for text in corpus_texts())
    assert 30_000 < total < 200_000
    sources = (corpus_dir().parent / "SOURCES.md").read_text()
    for path in files:
        assert f"`text/{path.name}`" in sources, path.name
    words = re.findall(r"[a-z]+", " ".join(corpus_texts()).lower())
    common = {"the", "and", "of", "to", "a", "in", "that", "is"}
    assert sum(w in common for w in words) / len(words) > 0.15  # function words as in any English prose


def test_shipped_vocab_is_what_training_makes():
    shipped = bundled_vocab_path().read_text(encoding="utf-8").splitlines()
    assert shipped == train_vocab(corpus_texts(), BUNDLED_VOCAB_SIZE)
    assert shipped[: len(SPECIAL_TOKENS)] == list(SPECIAL_TOKENS) and len(shipped) == BUNDLED_VOCAB_SIZE


def test_shipped_task_is_what_the_generator_makes():
    for split, rows in generate(0).items():
        assert (task_dir() / f"{split}.tsv").read_text(encoding="utf-8") == to_tsv(rows)
    sentences = [s for rows in generate(0).values() for s, _ in rows]
    assert len(set(sentences)) == len(sentences)
    assert generate(1)["train"] != generate(0)["train"]


def test_task_labels_follow_negation_and_but():
    rows = dict(generate(0)["train"] + generate(0)["dev"])
    for sentence, label in rows.items():
        clause = sentence.split(", but ")[-1]
        positive = any(f" {w}" in clause for w in ("wonderful", "delightful", "excellent", "charming", "brilliant", "pleasant", "moving", "superb", "lovely", "gripping", "generous", "cheerful"))
        assert label == int(positive != (" not " in clause)), sentence


def test_basic_tokenizer_as_bert():
    assert basic_tokenize("Héllo, World!  It's 3.5") == ["hello", ",", "world", "!", "it", "'", "s", "3", ".", "5"]


def test_wordpiece_greedy_longest_match_and_unknown():
    tok = WordPieceTokenizer([*SPECIAL_TOKENS, "un", "##aff", "##able", "aff", "##a", "u", "##n", ","])
    assert tok.tokenize("unaffable, affa") == ["un", "##aff", "##able", ",", "aff", "##a"]
    assert tok.tokenize("xyz") == ["[UNK]"]
    assert tok.decode(tok.encode("unaffable")) == "unaffable"


def test_bundled_tokenizer_covers_english_without_unknowns():
    tok = bundled_tokenizer()
    ids = tok.encode("The quick brown fox jumps over the lazy dog; zebras QUIZ 42!")
    assert tok.unk_id not in ids
    assert tok.decode(ids) == "the quick brown fox jumps over the lazy dog ; zebras quiz 42 !"
    assert tok.encode("中") == [tok.unk_id]  # a documented limit: other scripts are unknown


def test_encode_pair_layout_and_truncation():
    tok = bundled_tokenizer()
    ids, mask, types = tok.encode_pair("the sun", "the wind", 8)
    assert ids[0] == tok.cls_id and ids.count(tok.sep_id) == 2
    assert mask == [1] * 7 + [0] and types == [0, 0, 0, 0, 1, 1, 1, 0]
    ids, mask, types = tok.encode_pair("one two three four five six seven eight", None, 6)
    assert len(ids) == 6 and ids[-1] == tok.sep_id and sum(mask) == 6


def test_a_bert_style_vocab_file_loads(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(["[PAD]"] + [f"[unused{i}]" for i in range(3)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "##s", "!"]) + "\n")
    tok = WordPieceTokenizer.from_file(path)
    assert (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id) == (0, 4, 5, 6, 7)
    assert tok.encode("Hellos!") == [8, 9, 10]


def test_mlm_windows():
    tok = bundled_tokenizer()
    rows = mlm_sequences(16, tok)
    assert rows.dtype == np.int64 and rows.shape[1] == 16 and len(rows) > 500
    assert (rows[:, 0] == tok.cls_id).all()
    for row in rows[:50]:
        body = row[row != tok.pad_id]
        assert body[-1] == tok.sep_id and tok.pad_id not in body


def test_bundled_task_loads_and_encodes():
    train, dev = load_task(), load_task(split="dev")
    assert (len(train), len(dev), train.num_labels) == (480, 120, 2)
    assert set(np.unique(train.labels)) == {0, 1}
    encoded = train.encode(bundled_tokenizer(), 24)
    assert encoded["input_ids"].shape == (480, 24) and encoded["labels"].shape == (480,)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_real_glue_layouts(tmp_path):
    write(tmp_path / "SST-2" / "train.tsv", "sentence\tlabel\nhide new secretions \t0\nthe greatest musicians \t1\n")
    sst = load_task(tmp_path / "SST-2")
    assert sst.task == "sst-2" and sst.labels.tolist() == [0, 1] and sst.text_b is None
    write(tmp_path / "CoLA" / "dev.tsv", "gj04\t1\t\tOur friends won't buy this analysis.\ngj04\t0\t*\tOne more pseudo generalization.\n")
    cola = load_task(tmp_path / "CoLA", split="dev")
    assert cola.text_a == ["Our friends won't buy this analysis.", "One more pseudo generalization."] and cola.labels.tolist() == [1, 0]
    write(
        tmp_path / "MRPC" / "train.tsv",
        'Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t702876\t702977\tAmrozi said "he" did.\tHe said "so" too.\n',
    )
    mrpc = load_task(tmp_path / "MRPC")
    assert mrpc.text_a == ['Amrozi said "he" did.'] and mrpc.text_b == ['He said "so" too.'] and mrpc.labels.tolist() == [1]
    header = "index\tpromptID\tpairID\tgenre\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\tsentence2_parse\tsentence1\tsentence2\tlabel1\tgold_label\n"
    write(tmp_path / "MNLI" / "dev_matched.tsv", header + "0\t1\t1n\tgov\t(\t(\t(\t(\tA man.\tA person.\tneutral\tentailment\n")
    mnli = load_task(tmp_path / "MNLI", split="dev")
    assert mnli.labels.tolist() == [1] and mnli.num_labels == 3
    write(tmp_path / "STS-B" / "train.tsv", "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n0\tmain\tf\t2012\t1\tnone\tnone\tA plane.\tAn air plane.\t5.000\n")
    sts = load_task(tmp_path / "STS-B")
    assert sts.num_labels == 1 and sts.labels.dtype == np.float32 and sts.labels.tolist() == [5.0]


def test_bad_glue_files_name_file_and_line(tmp_path):
    write(tmp_path / "SST-2" / "train.tsv", "sentence\tlabel\ngood\t1\nbad\tmaybe\n")
    with pytest.raises(TaskError, match=r"train.tsv:3: label 'maybe' is not one of 0, 1"):
        load_task(tmp_path / "SST-2")
    with pytest.raises(TaskError, match="unknown task 'mytask'"):
        load_task(tmp_path / "mytask")
    with pytest.raises(TaskError, match="dev.tsv: file not found"):
        load_task(tmp_path / "SST-2", split="dev")
    write(tmp_path / "x" / "train.tsv", "text\tlabel\nhi\t1\n")
    with pytest.raises(TaskError, match="no column 'sentence'"):
        load_task(tmp_path / "x", task="sst-2")
    assert {"sst-2", "cola", "mrpc", "qnli", "rte", "wnli", "qqp", "mnli", "sts-b", "sentiment"} <= set(task_layouts())
