"""Precomputed matrices of the linear-transform heads (LT-DFT, LT-DCT).

TransCODE (Sec. III-B2) maps both transforms to matrix products with a stored
Vandermonde matrix (``LT_DFT := V_DFT H``), so that they run on the MAC lanes and, here,
export to every runtime as plain MatMul nodes (no FFT operator needed).

Choices:

* **Both axes, as FNet.** FNet mixes a layer with a 2-D DFT, over the sequence and over
  the features, and keeps the real part. A head here mixes its own ``N x d`` input the
  same way: ``Re(F_N H F_d) = C_N H C_d - S_N H S_d`` with ``F = C - iS``
  (``C[m, n] = cos(2 pi m n / M)``, ``S[m, n] = sin(2 pi m n / M)``). The DCT head uses
  the 2-D DCT-II the same way: ``D_N H D_d^T``.
* **Unitary scaling.** The matrices are scaled by ``1 / sqrt(size)`` (orthonormal DCT-II;
  DFT divided by ``sqrt(M)``), so a head's output keeps the scale of its input. FNet uses
  the unnormalised DFT and relies on the LayerNorm that follows; a constant factor is
  absorbed by the output projection, and unitary matrices keep float32 round-off (and so
  the export parity) independent of the sequence length.

The matrices depend only on the size, are computed once in float64 and cached as
float32 numpy arrays; each call wraps them in a tensor (never cached as a tensor: a
cache filled while torch.export traces would hold fake tensors). A model exported for a
fixed sequence length holds them as constants.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch


def dft_matrices_np(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Real and (negated) imaginary parts ``(C, S)`` of the unitary DFT matrix, float64."""
    index = np.arange(size, dtype=np.float64)
    angle = 2.0 * np.pi * np.outer(index, index) / size
    scale = 1.0 / np.sqrt(size)
    return np.cos(angle) * scale, np.sin(angle) * scale


def dct_matrix_np(size: int) -> np.ndarray:
    """The orthonormal DCT-II matrix ``D`` (``D @ x`` is the DCT of ``x``), float64."""
    n = np.arange(size, dtype=np.float64)
    k = n[:, None]
    matrix = np.cos(np.pi * (2.0 * n[None, :] + 1.0) * k / (2.0 * size)) * np.sqrt(2.0 / size)
    matrix[0] /= np.sqrt(2.0)
    return matrix


@lru_cache(maxsize=64)
def _dft_float32(size: int) -> tuple[np.ndarray, np.ndarray]:
    cos, sin = dft_matrices_np(size)
    return cos.astype(np.float32), sin.astype(np.float32)


@lru_cache(maxsize=64)
def _dct_float32(size: int) -> tuple[np.ndarray, np.ndarray]:
    matrix = dct_matrix_np(size).astype(np.float32)
    return matrix, np.ascontiguousarray(matrix.T)


def dft_matrices(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(C, S)`` of :func:`dft_matrices_np` as float32 tensors (constants when traced for export)."""
    cos, sin = _dft_float32(size)
    return torch.from_numpy(cos), torch.from_numpy(sin)


def dct_matrices(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(D, D^T)`` of :func:`dct_matrix_np` as float32 tensors (constants when traced for export)."""
    matrix, transposed = _dct_float32(size)
    return torch.from_numpy(matrix), torch.from_numpy(transposed)
