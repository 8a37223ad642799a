"""Fixtures: small real ONNX models written with the onnx helper API, saved as sha256-named artifacts."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

OPSET = 18


def _io(seq_len: int, batch: int | str) -> list:
    return [helper.make_tensor_value_info(name, TensorProto.INT64, [batch, seq_len]) for name in ("input_ids", "attention_mask", "token_type_ids")]


def tiny_classifier(seq_len: int = 16, labels: int = 2, hidden: int = 32, batch: int | str = "batch", seed: int = 0) -> onnx.ModelProto:
    """Embedding lookup, mean over the masked sequence, a dense layer with tanh, logits."""
    rng = np.random.default_rng(seed)
    vocab = 100
    inits = [
        numpy_helper.from_array(rng.normal(size=(vocab, hidden)).astype(np.float32), "embedding"),
        numpy_helper.from_array((rng.normal(size=(hidden, hidden)) / np.sqrt(hidden)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.normal(size=(hidden, labels)).astype(np.float32), "w2"),
        numpy_helper.from_array(np.array([vocab], dtype=np.int64), "vocab"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
    ]
    nodes = [
        helper.make_node("Mod", ["input_ids", "vocab"], ["ids"]),
        helper.make_node("Gather", ["embedding", "ids"], ["embedded"]),
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["mask_f", "minus1"], ["mask3"]),
        helper.make_node("Mul", ["embedded", "mask3"], ["masked"]),
        helper.make_node("ReduceMean", ["masked", "axis1"], ["pooled"], keepdims=0),
        helper.make_node("MatMul", ["pooled", "w1"], ["h1"]),
        helper.make_node("Tanh", ["h1"], ["a1"]),
        helper.make_node("MatMul", ["a1", "w2"], ["logits"]),
    ]
    inits.append(numpy_helper.from_array(np.array([-1], dtype=np.int64), "minus1"))
    graph = helper.make_graph(nodes, "tiny", _io(seq_len, batch), [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, labels])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def slow_classifier(seq_len: int = 16, size: int = 1024, rows: int = 256, repeats: int = 120) -> onnx.ModelProto:
    """A model that takes about a second per run on one thread: a chain of large matrix products."""
    rng = np.random.default_rng(1)
    weight = numpy_helper.from_array((rng.normal(size=(size, size)) / np.sqrt(size)).astype(np.float32), "w")
    ones = numpy_helper.from_array(np.ones((rows, size), dtype=np.float32), "ones")
    nodes = [
        helper.make_node("Cast", ["input_ids"], ["ids_f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["ids_f"], ["ids_mean"], keepdims=1),
        helper.make_node("Mul", ["ones", "ids_mean"], ["x0"]),  # depends on the input: nothing to constant-fold
    ]
    nodes += [helper.make_node("MatMul", [f"x{i}", "w"], [f"x{i + 1}"]) for i in range(repeats)]
    nodes.append(helper.make_node("ReduceSum", [f"x{repeats}"], ["logits"], keepdims=1))
    graph = helper.make_graph(nodes, "slow", _io(seq_len, "batch")[:1], [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)], [weight, ones])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 9
    return model


def save_artifact(model: onnx.ModelProto, folder: Path, seq_len: int, batch: int = 1, dynamic_batch: bool = True) -> Path:
    """Write ``<sha256>.onnx`` and its sidecar; return the sidecar path."""
    folder.mkdir(parents=True, exist_ok=True)
    data = model.SerializeToString()
    digest = hashlib.sha256(data).hexdigest()
    (folder / f"{digest}.onnx").write_bytes(data)
    meta = {
        "sha256": digest,
        "format": "onnx",
        "files": [f"{digest}.onnx"],
        "architecture": {"l": 2, "o": [["sa_sdp_64"] * 2] * 2, "h": [128, 128], "f": [[512], [512]]},
        "seq_len": seq_len,
        "batch": batch,
        "dynamic_batch": dynamic_batch,
        "vocab_size": 100,
        "inputs": [{"name": i.name, "dtype": "int64", "shape": ["batch", seq_len]} for i in model.graph.input],
        "outputs": [{"name": o.name} for o in model.graph.output],
        "tools": {"onnx": onnx.__version__},
        "opset": OPSET,
    }
    sidecar = folder / f"{digest}.json"
    sidecar.write_text(json.dumps(meta))
    return sidecar


SEQ_LEN = 16


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Path:
    """Sidecar path of a tiny dynamic-batch classifier artifact (seq 16)."""
    return save_artifact(tiny_classifier(SEQ_LEN), tmp_path_factory.mktemp("tiny"), SEQ_LEN)


@pytest.fixture
def make_artifact(tmp_path):
    """Write an artifact of a given kind ('tiny', 'tiny-static', 'slow') into a fresh folder."""

    def make(kind: str) -> Path:
        if kind == "tiny":
            return save_artifact(tiny_classifier(SEQ_LEN), tmp_path / kind, SEQ_LEN)
        if kind == "tiny-static":
            return save_artifact(tiny_classifier(SEQ_LEN, batch=1), tmp_path / kind, SEQ_LEN, batch=1, dynamic_batch=False)
        if kind == "slow":
            return save_artifact(slow_classifier(SEQ_LEN), tmp_path / kind, SEQ_LEN)
        raise ValueError(kind)

    return make
