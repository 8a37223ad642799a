"""Runtime sessions for exported artifacts: ONNX Runtime, OpenVINO and the LiteRT (TFLite) interpreter.

Each session takes the model inputs as numpy arrays keyed by name (``input_ids``,
``attention_mask``, ``token_type_ids``) and returns the first output (the logits) as a
float32 array. Integer inputs are cast to what the model declares (TFLite models take
int32). OpenVINO compiles with ``INFERENCE_PRECISION_HINT = f32``: its CPU plugin
otherwise computes in bf16 where the processor supports it, which moves logits by ~1e-2.

Torch-free; each runtime is imported only when a session of its kind is opened, so a
board needs only the runtimes it uses (the ``runner`` extra installs all three).
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from device_runners.artifact import Artifact

RUNTIME_PACKAGES = {"onnx": "onnxruntime", "openvino": "openvino", "tflite": "ai-edge-litert"}
OPENVINO_PRECISION = "f32"


class RuntimeUnavailable(RuntimeError):
    """The runtime for a format is not installed; the message names the pip line."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.pip_line = f'pip install "edgetran[runner]"  # or: pip install {RUNTIME_PACKAGES[fmt]}'
        super().__init__(f"the {fmt} runtime ({RUNTIME_PACKAGES[fmt]}) is not installed; {self.pip_line}")


class Session:
    """A loaded model: ``run(inputs) -> logits``."""

    fmt: str
    input_names: list

    def run(self, inputs: Dict[str, np.ndarray]) -> np.ndarray:
        """Logits for one batch of inputs."""
        raise NotImplementedError


class OnnxRuntimeSession(Session):
    """ONNX Runtime on the CPU execution provider."""

    fmt = "onnx"

    def __init__(self, path: str, threads: Optional[int] = None) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise RuntimeUnavailable("onnx") from None
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [item.name for item in self.session.get_inputs()]
        self._dtypes = {item.name: _onnx_dtype(item.type) for item in self.session.get_inputs()}

    def run(self, inputs: Dict[str, np.ndarray]) -> np.ndarray:
        feed = {name: np.asarray(inputs[name], dtype=self._dtypes[name]) for name in self.input_names}
        return np.asarray(self.session.run(None, feed)[0], dtype=np.float32)


def _onnx_dtype(type_name: str) -> type:
    return {"tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(float)": np.float32}.get(type_name, np.int64)


class OpenVinoSession(Session):
    """OpenVINO on the CPU (or another device) with f32 inference precision."""

    fmt = "openvino"

    def __init__(self, path: str, threads: Optional[int] = None, device: str = "CPU") -> None:
        try:
            import openvino
        except ImportError:
            raise RuntimeUnavailable("openvino") from None
        core = openvino.Core()
        config = {"INFERENCE_PRECISION_HINT": OPENVINO_PRECISION}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        self.compiled = core.compile_model(str(path), device, config)
        self.request = self.compiled.create_infer_request()
        self.input_names = [port.get_any_name() for port in self.compiled.inputs]
        self._dtypes = {port.get_any_name(): port.get_element_type().to_dtype() for port in self.compiled.inputs}

    def run(self, inputs: Dict[str, np.ndarray]) -> np.ndarray:
        feed = {name: np.asarray(inputs[name], dtype=self._dtypes[name]) for name in self.input_names}
        result = self.request.infer(feed)
        return np.asarray(result[self.compiled.output(0)], dtype=np.float32).copy()


class TfliteSession(Session):
    """The LiteRT interpreter (``ai-edge-litert``) through the model's default signature."""

    fmt = "tflite"

    def __init__(self, path: str, threads: Optional[int] = None) -> None:
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise RuntimeUnavailable("tflite") from None
        self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self.runner = self.interpreter.get_signature_runner()
        details = self.runner.get_input_details()
        self.input_names = list(details)
        self._dtypes = {name: details[name]["dtype"] for name in details}
        self._shapes = {name: tuple(details[name]["shape"]) for name in details}
        self._output = next(iter(self.runner.get_output_details()))

    def run(self, inputs: Dict[str, np.ndarray]) -> np.ndarray:
        feed = {}
        for name in self.input_names:
            array = np.asarray(inputs[name], dtype=self._dtypes[name])
            if array.shape != self._shapes[name]:
                raise ValueError(f"tflite input {name}: model takes shape {self._shapes[name]}, got {array.shape} (static batch)")
            feed[name] = array
        return np.asarray(self.runner(**feed)[self._output], dtype=np.float32).copy()


SESSIONS = {"onnx": OnnxRuntimeSession, "openvino": OpenVinoSession, "tflite": TfliteSession}


def open_session(artifact: Artifact, threads: Optional[int] = None) -> Session:
    """A session on the artifact's model file with the runtime of its format."""
    return SESSIONS[artifact.format](str(artifact.model_path), threads)


def runtime_available(fmt: str) -> bool:
    """Whether the runtime package of ``fmt`` can be imported here."""
    from importlib.util import find_spec

    module = {"onnx": "onnxruntime", "openvino": "openvino", "tflite": "ai_edge_litert"}[fmt]
    return find_spec(module) is not None
