"""Runtime sessions for exported artifacts: ONNX Runtime, OpenVINO and the LiteRT (TFLite) interpreter.

Each session takes the model inputs as numpy arrays keyed by name (``input_ids``,
``attention_mask``, ``token_type_ids``) and returns the first output (the logits) as a
float32 array. Integer inputs are cast to what the model declares (TFLite models take
int32). OpenVINO compiles with ``INFERENCE_PRECISION_HINT = f32``: its CPU plugin
otherwise computes in bf16 where the processor supports it, which moves logits by ~1e-2.

Torch-free; each runtime is imported only when a session of its kind is opened, so a
board needs only the runtimes it uses (the ``runner`` extra installs all three).

:func:`open_runtime` is what the measurement protocol uses: a runtime chosen by name
(``onnxruntime``, ``openvino``, ``tflite``; OpenVINO also reads ``.onnx`` files), an
execution device chosen explicitly (ONNX Runtime providers ``CPU``/``CUDA``/...,
OpenVINO devices ``CPU``/``GPU``/``NPU``/``MYRIAD``), thread counts, and for OpenVINO a
precision hint (``f32`` by default, ``bf16``/``f16`` on request). A device the installed
runtime does not offer is refused with the list of those it does offer. Every session
reports its input names, dtypes and shapes, its execution device and its versions.
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from device_runners.artifact import Artifact

RUNTIME_PACKAGES = {"onnx": "onnxruntime", "openvino": "openvino", "tflite": "ai-edge-litert"}
OPENVINO_PRECISION = "f32"
OPENVINO_PRECISIONS = ("f32", "bf16", "f16")
RUNTIME_FORMATS = {"onnxruntime": ("onnx",), "openvino": ("openvino", "onnx"), "tflite": ("tflite",)}
DEFAULT_RUNTIME = {"onnx": "onnxruntime", "openvino": "openvino", "tflite": "tflite"}
ORT_PROVIDERS = {
    "CPU": "CPUExecutionProvider",
    "CUDA": "CUDAExecutionProvider",
    "TENSORRT": "TensorrtExecutionProvider",
    "COREML": "CoreMLExecutionProvider",
    "OPENVINO": "OpenVINOExecutionProvider",
}


class DeviceUnavailable(ValueError):
    """A device the installed runtime does not offer; the message lists those it does."""


class RuntimeUnavailable(RuntimeError):
    """The runtime for a format is not installed; the message names the pip line."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.pip_line = f'pip install "edgetran[runner]"  # or: pip install {RUNTIME_PACKAGES[fmt]}'
        super().__init__(f"the {fmt} runtime ({RUNTIME_PACKAGES[fmt]}) is not installed; {self.pip_line}")


class Session:
    """A loaded model: ``run(inputs) -> logits``, with its runtime, device and input specs."""

    fmt: str
    input_names: list
    runtime: str = ""
    device: str = "CPU"
    versions: dict = {}
    input_specs: list = []  # (name, numpy dtype name, shape with -1 for dynamic sizes)

    def run(self, inputs: Dict[str, np.ndarray]) -> np.ndarray:
        """Logits for one batch of inputs."""
        raise NotImplementedError


class OnnxRuntimeSession(Session):
    """ONNX Runtime on the CPU execution provider."""

    fmt = "onnx"

    def __init__(self, path: str, threads: Optional[int] = None, device: str = "CPU", inter_threads: Optional[int] = None) -> None:
        try:
            import onnxruntime
        except ImportError:
            raise RuntimeUnavailable("onnx") from None
        available = onnxruntime.get_available_providers()
        provider = ORT_PROVIDERS.get(device.upper(), device)
        if provider not in available:
            offered = ", ".join(k for k, v in ORT_PROVIDERS.items() if v in available) or ", ".join(available)
            raise DeviceUnavailable(f"onnxruntime {onnxruntime.__version__} does not offer device {device!r} (offers: {offered})")
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        if inter_threads:
            options.inter_op_num_threads = inter_threads
        self.session = onnxruntime.InferenceSession(str(path), options, providers=[provider])
        self.runtime = "onnxruntime"
        self.device = device.upper()
        self.versions = {"onnxruntime": onnxruntime.__version__, "providers": self.session.get_providers()}
        self.input_names = [item.name for item in self.session.get_inputs()]
        self._dtypes = {item.name: _onnx_dtype(item.type) for item in self.session.get_inputs()}
        self.input_specs = [
            (item.name, np.dtype(self._dtypes[item.name]).name, tuple(d if isinstance(d, int) else -1 for d in item.shape))
            for item in self.session.get_inputs()
        ]

    def run(self, inputs: Dict[str, np.ndarray]) -> np.ndarray:
        feed = {name: np.asarray(inputs[name], dtype=self._dtypes[name]) for name in self.input_names}
        return np.asarray(self.session.run(None, feed)[0], dtype=np.float32)


def _onnx_dtype(type_name: str) -> type:
    return {"tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(float)": np.float32}.get(type_name, np.int64)


class OpenVinoSession(Session):
    """OpenVINO on the CPU (or another device) with f32 inference precision."""

    fmt = "openvino"

    def __init__(self, path: str, threads: Optional[int] = None, device: str = "CPU", precision: str = OPENVINO_PRECISION) -> None:
        try:
            import openvino
        except ImportError:
            raise RuntimeUnavailable("openvino") from None
        if precision not in OPENVINO_PRECISIONS:
            raise ValueError(f"OpenVINO precision must be one of {', '.join(OPENVINO_PRECISIONS)}, got {precision!r}")
        core = openvino.Core()
        offered = core.available_devices
        if device.upper() not in offered and device.upper().split(".")[0] not in offered:
            raise DeviceUnavailable(f"openvino {openvino.__version__} does not offer device {device!r} (offers: {', '.join(offered)})")
        config = {"INFERENCE_PRECISION_HINT": precision}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        self.compiled = core.compile_model(str(path), device.upper(), config)
        self.request = self.compiled.create_infer_request()
        self.runtime = "openvino"
        self.device = device.upper()
        self.versions = {"openvino": openvino.__version__, "precision": precision}
        self.input_names = [port.get_any_name() for port in self.compiled.inputs]
        self._dtypes = {port.get_any_name(): port.get_element_type().to_dtype() for port in self.compiled.inputs}
        self.input_specs = [
            (port.get_any_name(), np.dtype(self._dtypes[port.get_any_name()]).name,
             tuple(d.get_length() if d.is_static else -1 for d in port.get_partial_shape()))
            for port in self.compiled.inputs
        ]

    def run(self, inputs: Dict[str, np.ndarray]) -> np.ndarray:
        feed = {name: np.asarray(inputs[name], dtype=self._dtypes[name]) for name in self.input_names}
        result = self.request.infer(feed)
        return np.asarray(result[self.compiled.output(0)], dtype=np.float32).copy()


class TfliteSession(Session):
    """The LiteRT interpreter (``ai-edge-litert``) through the model's default signature."""

    fmt = "tflite"

    def __init__(self, path: str, threads: Optional[int] = None, device: str = "CPU") -> None:
        Interpreter, package, version = _tflite_interpreter()
        if device.upper() != "CPU":
            raise DeviceUnavailable(f"{package} {version} runs on the CPU only (offers: CPU), asked for {device!r}")
        self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self.runtime = "tflite"
        self.device = "CPU"
        self.versions = {package: version}
        self.runner = self.interpreter.get_signature_runner()
        details = self.runner.get_input_details()
        self.input_names = list(details)
        self._dtypes = {name: details[name]["dtype"] for name in details}
        self._shapes = {name: tuple(details[name]["shape"]) for name in details}
        self._output = next(iter(self.runner.get_output_details()))
        self.input_specs = [(name, np.dtype(self._dtypes[name]).name, self._shapes[name]) for name in self.input_names]

    def run(self, inputs: Dict[str, np.ndarray]) -> np.ndarray:
        feed = {}
        for name in self.input_names:
            array = np.asarray(inputs[name], dtype=self._dtypes[name])
            if array.shape != self._shapes[name]:
                raise ValueError(f"tflite input {name}: model takes shape {self._shapes[name]}, got {array.shape} (static batch)")
            feed[name] = array
        return np.asarray(self.runner(**feed)[self._output], dtype=np.float32).copy()


def _tflite_interpreter() -> tuple[type, str, str]:
    """The LiteRT interpreter class, falling back to tflite-runtime; (class, package, version)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        from ai_edge_litert.interpreter import Interpreter

        package = "ai-edge-litert"
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]

            package = "tflite-runtime"
        except ImportError:
            raise RuntimeUnavailable("tflite") from None
    try:
        installed = version(package)
    except PackageNotFoundError:  # pragma: no cover
        installed = "unknown"
    return Interpreter, package, installed


SESSIONS = {"onnx": OnnxRuntimeSession, "openvino": OpenVinoSession, "tflite": TfliteSession}


def open_session(artifact: Artifact, threads: Optional[int] = None) -> Session:
    """A session on the artifact's model file with the runtime of its format."""
    return SESSIONS[artifact.format](str(artifact.model_path), threads)


def runtime_available(fmt: str) -> bool:
    """Whether the runtime package of ``fmt`` can be imported here."""
    from importlib.util import find_spec

    module = {"onnx": "onnxruntime", "openvino": "openvino", "tflite": "ai_edge_litert"}[fmt]
    return find_spec(module) is not None


def open_runtime(
    artifact: Artifact,
    runtime: Optional[str] = None,
    device: Optional[str] = None,
    threads: Optional[int] = None,
    precision: Optional[str] = None,
    inter_threads: Optional[int] = None,
) -> Session:
    """A session for the measurement protocol: runtime by name (default: the format's own), device explicit."""
    runtime = runtime or DEFAULT_RUNTIME[artifact.format]
    if runtime not in RUNTIME_FORMATS:
        raise ValueError(f"unknown runtime {runtime!r} (known: {', '.join(RUNTIME_FORMATS)})")
    if artifact.format not in RUNTIME_FORMATS[runtime]:
        raise ValueError(f"{runtime} cannot run a {artifact.format} artifact (it runs {', '.join(RUNTIME_FORMATS[runtime])})")
    if precision is not None and runtime != "openvino":
        raise ValueError(f"--precision applies to OpenVINO only, not {runtime}")
    device = device or "CPU"
    path = str(artifact.model_path)
    if runtime == "onnxruntime":
        return OnnxRuntimeSession(path, threads, device, inter_threads)
    if runtime == "openvino":
        return OpenVinoSession(path, threads, device, precision or OPENVINO_PRECISION)
    return TfliteSession(path, threads, device)


def runtime_devices() -> dict[str, dict]:
    """For each runtime: installed or not, its version, and the devices it offers here."""
    result: dict[str, dict] = {}
    try:
        import onnxruntime

        providers = onnxruntime.get_available_providers()
        result["onnxruntime"] = {
            "installed": True,
            "version": onnxruntime.__version__,
            "devices": [k for k, v in ORT_PROVIDERS.items() if v in providers],
            "providers": providers,
        }
    except ImportError:
        result["onnxruntime"] = {"installed": False, "pip": "pip install onnxruntime"}
    try:
        import openvino

        result["openvino"] = {"installed": True, "version": openvino.__version__, "devices": list(openvino.Core().available_devices)}
    except ImportError:
        result["openvino"] = {"installed": False, "pip": "pip install openvino"}
    try:
        _, package, installed = _tflite_interpreter()
        result["tflite"] = {"installed": True, "version": installed, "package": package, "devices": ["CPU"]}
    except RuntimeUnavailable:
        result["tflite"] = {"installed": False, "pip": "pip install ai-edge-litert"}
    return result
