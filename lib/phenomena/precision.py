"""Training precision: ``fp32`` or ``bf16`` (bfloat16 autocast of the forward pass), and whether the hardware makes
bf16 fast.

bf16 here means mixed precision in the sense of Micikevicius et al. 2018 with bfloat16 (Kalamkar et al. 2019):
matmuls and elementwise ops of the forward pass run under ``torch.autocast(dtype=torch.bfloat16)``; weights,
gradients, optimiser state and the loss stay fp32; evaluation runs outside autocast, so every metric is fp32.

bf16 is only worth it where the hardware has bf16 matrix units: CUDA GPUs from Ampere on, and x86 CPUs with
AVX512-BF16 or AMX. Elsewhere (e.g. an AVX2-only CPU) oneDNN emulates it and a matmul runs ~60x *slower* than in
fp32 (measured: 1024 x 1024 ``torch.mm`` on one thread of an AVX2 AMD EPYC, fp32 53 GFLOP/s, bf16 0.9 GFLOP/s).
So a request for bf16 on such hardware warns once and trains in fp32 (:func:`effective_precision`); the precision a
run actually used is what its provenance records.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from typing import Any, Literal

import torch

Precision = Literal["fp32", "bf16"]
PRECISIONS: tuple[str, ...] = ("fp32", "bf16")


@functools.cache
def fast_bf16(device_type: str) -> bool:
    """Whether ``device_type`` ('cpu', 'cuda', ...) has hardware bf16 matmuls (CPU: AVX512-BF16 or AMX tiles;
    CUDA: ``torch.cuda.is_bf16_supported()`` on compute capability >= 8)."""
    if device_type == "cpu":
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    if device_type == "cuda":
        return bool(
            torch.cuda.is_available()
            and torch.cuda.get_device_capability()[0] >= 8
            and torch.cuda.is_bf16_supported()
        )
    return False


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else ``ValueError`` naming the allowed values."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is not allowed: expected one of {PRECISIONS}")
    return precision


@functools.cache
def _warn_fallback(device_type: str) -> None:
    warnings.warn(
        f"precision='bf16' was requested but this {device_type} has no fast bf16 matmuls (CPU: no AVX512-BF16/AMX; "
        f"capability {torch.backends.cpu.get_cpu_capability()}), where bf16 runs many times slower than fp32: "
        "training in fp32 instead (pass precision='fp32' to silence this)",
        RuntimeWarning,
        stacklevel=3,
    )


def effective_precision(precision: str, device: torch.device | str) -> str:
    """The precision a run on ``device`` trains in: ``precision``, except that bf16 on hardware without fast bf16
    falls back to fp32 with a one-time warning."""
    check_precision(precision)
    device_type = torch.device(device).type
    if precision == "bf16" and not fast_bf16(device_type):
        _warn_fallback(device_type)
        return "fp32"
    return precision


def autocast(device: torch.device | str, precision: str) -> contextlib.AbstractContextManager[Any]:
    """The context the forward pass of a training step runs in: bf16 autocast on ``device`` when the *effective*
    precision is bf16, else nothing (fp32)."""
    device_type = torch.device(device).type
    if effective_precision(precision, device_type) == "bf16":
        return torch.autocast(device_type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
