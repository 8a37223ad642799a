"""Export formats, the packages each needs on the host, and the pip line that adds them.

* ``onnx``: ``torch.onnx.export(dynamo=True, external_data=False)`` (needs onnx and
  onnxscript), dynamic batch, fixed sequence length.
* ``openvino``: OpenVINO IR (``.xml`` + ``.bin``) converted from that ONNX file with
  ``openvino.convert_model`` and saved in f32 (``compress_to_fp16=False``; the default
  would halve the weights' precision).
* ``tflite``: ``litert-torch`` (Google's PyTorch -> LiteRT converter). It is a separate
  extra (``edgetran[tflite]``) because of its size: about 0.9 GB beside torch (JAX,
  the LiteRT converter, transformers, torchao), no TensorFlow, no conflict with the
  other pins (checked with torch 2.13.0, onnx 1.23, openvino 2026.4). Its models have a
  **static batch**: litert-torch 0.10 fails to lower this model's mask arithmetic with a
  symbolic batch dimension, so the batch given at export is the batch the model takes.
"""

from __future__ import annotations

from importlib import metadata
from importlib.util import find_spec
from typing import Optional

FORMATS = ("onnx", "openvino", "tflite")

# modules the host needs to *write* (and check) each format, and the line that installs them
HOST_MODULES = {
    "onnx": ("torch", "onnx", "onnxscript", "onnxruntime"),
    "openvino": ("torch", "onnx", "onnxscript", "openvino"),
    "tflite": ("torch", "litert_torch", "ai_edge_litert"),
}
PIP_LINES = {
    "onnx": 'pip install "edgetran[host,runner]"',
    "openvino": 'pip install "edgetran[host,runner]"',
    "tflite": 'pip install "edgetran[tflite]"  (litert-torch: ~0.9 GB beside torch)',
}
VERSIONED_PACKAGES = {
    "onnx": ("torch", "onnx", "onnxscript", "onnxruntime"),
    "openvino": ("torch", "onnx", "onnxscript", "openvino"),
    "tflite": ("torch", "litert-torch", "ai-edge-litert"),
}


class FormatUnavailable(RuntimeError):
    """A format whose host packages are not installed."""

    def __init__(self, fmt: str, missing: list[str]) -> None:
        self.fmt = fmt
        self.missing = missing
        self.pip_line = PIP_LINES[fmt]
        super().__init__(f"format {fmt} needs {', '.join(missing)}, not installed here; install with: {self.pip_line}")


def missing_modules(fmt: str) -> list[str]:
    """Host modules that ``fmt`` needs and this Python cannot import."""
    if fmt not in HOST_MODULES:
        raise ValueError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    return [name for name in HOST_MODULES[fmt] if find_spec(name) is None]


def require_format(fmt: str) -> None:
    """Raise :class:`FormatUnavailable` unless everything ``fmt`` needs is installed."""
    missing = missing_modules(fmt)
    if missing:
        raise FormatUnavailable(fmt, missing)


def tool_versions(fmt: str) -> dict:
    """Installed versions of the packages that wrote a format (for the sidecar)."""
    versions = {}
    for name in VERSIONED_PACKAGES[fmt]:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def opset_of(onnx_path: str) -> Optional[int]:
    """The default-domain opset of an ONNX file."""
    import onnx

    model = onnx.load(onnx_path, load_external_data=False)
    return next((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), None)
