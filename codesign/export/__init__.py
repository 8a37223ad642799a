"""Export of models to ONNX, OpenVINO IR and TFLite as sha256-named artifacts with a JSON sidecar.

Host side (needs torch). Reading and running artifacts is board side and torch-free:
``device_runners.artifact`` and ``device_runners.runtimes``.
"""
