"""The seven head operations by name, their kernel sizes and parameter counts (torch-free).

The torch modules that compute them are in ``codesign.models.operations``; the counts
here are what those modules allocate (a test checks every operation).
"""

from __future__ import annotations

SELF_ATTENTION_OPS = ("sa_sdp", "sa_wma")
LINEAR_TRANSFORM_OPS = ("l_dft", "l_dct")
CONVOLUTION_KERNELS = {"c_5": 5, "c_9": 9, "c_13": 13}  # kernel size (tokens) of each DSC operation
OPERATIONS = SELF_ATTENTION_OPS + LINEAR_TRANSFORM_OPS + tuple(CONVOLUTION_KERNELS)


def head_parameter_count(op: str, hidden: int, dim: int) -> int:
    """Parameters of one head of ``op`` with dimension ``dim`` reading ``hidden`` features.

    SA-SDP: Q, K, V (``hidden x dim`` + bias each); SA-WMA: those and ``W_a`` (``dim x dim``);
    LT-DFT/DCT: V only; DSC-k: Q, K, V, the depthwise kernel and bias (``dim x k + dim``)
    and the span-kernel generator (``dim x k + k``).
    """
    linear = hidden * dim + dim
    if op == "sa_sdp":
        return 3 * linear
    if op == "sa_wma":
        return 3 * linear + dim * dim
    if op in LINEAR_TRANSFORM_OPS:
        return linear
    if op in CONVOLUTION_KERNELS:
        kernel = CONVOLUTION_KERNELS[op]
        return 3 * linear + dim * kernel + dim + dim * kernel + kernel
    raise ValueError(f"unknown operation {op!r} (known: {', '.join(OPERATIONS)})")
