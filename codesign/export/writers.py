"""Writers of the three formats: a model and example inputs in, model file(s) out.

Example inputs have at least 2 rows: torch.export specialises a dimension whose example
size is 1, which would pin the ONNX batch to 1 (the exported model still takes any batch).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Dict

import torch

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAMES = ("logits",)
MAX_BATCH = 4096  # upper bound of the symbolic batch dimension


@contextlib.contextmanager
def _quiet():
    """Silence the exporters' progress chatter at the Python level (logging, warnings, sys.stdout/err)."""
    stream = io.StringIO()
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


@contextlib.contextmanager
def silenced():
    """Also silence native libraries (absl, XNNPACK, oneDNN) that write to file descriptors 1 and 2.

    Keeps the CLI's ``--json`` output and its one-line errors clean. Falls back to the
    Python-level silencing where the descriptors cannot be duplicated.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        saved = (os.dup(1), os.dup(2))
    except OSError:
        with _quiet():
            yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            with _quiet():
                yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def write_onnx(model: torch.nn.Module, example: Dict[str, torch.Tensor], path: Path) -> None:
    """ONNX with a dynamic batch dimension (dynamo exporter, weights inside the file)."""
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    args = tuple(example[name] for name in INPUT_NAMES)
    with _quiet():
        torch.onnx.export(
            model,
            args,
            str(path),
            dynamo=True,
            external_data=False,
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            dynamic_shapes={name: {0: batch} for name in INPUT_NAMES},
            verbose=False,
        )


def write_openvino(onnx_path: Path, xml_path: Path) -> None:
    """OpenVINO IR (``.xml`` + ``.bin`` beside it) from an ONNX file, weights kept in f32."""
    import openvino

    with _quiet():
        converted = openvino.convert_model(str(onnx_path))
        openvino.save_model(converted, str(xml_path), compress_to_fp16=False)


def write_tflite(model: torch.nn.Module, example: Dict[str, torch.Tensor], path: Path) -> None:
    """A ``.tflite`` file through litert-torch, static shapes (those of ``example``)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with _quiet():
        import litert_torch

        converted = litert_torch.convert(model, sample_kwargs={name: example[name] for name in INPUT_NAMES})
        converted.export(str(path))
