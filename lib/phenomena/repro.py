"""Reproducibility: seeds, device and thread choice, and the metadata every output carries.

Habits borrowed from HF ``set_seed`` and minGPT ``set_seed``: one call seeds python, numpy and torch; data
generators then take explicit ``torch.Generator`` / ``numpy.random.Generator`` objects derived from the seed, so
a study's data stream does not depend on how many random numbers the model's initialisation consumed.
"""

from __future__ import annotations

import datetime
import os
import platform
import random
import subprocess
import sys
from importlib import metadata
from typing import Any

import numpy as np
import torch

from phenomena.paths import repo_root

PRESET_ENV = "PHENOMENA_PRESET"
_OUTPUTS = ("figures", "data/results", "README.md")  # written by `make figures`, not code
_VERSIONED = ("torch", "numpy", "scipy", "pandas", "matplotlib", "scikit-learn", "transformers", "peft")


def seed_everything(seed: int) -> torch.Generator:
    """Seed python, numpy and torch (CPU and CUDA); return a fresh ``torch.Generator`` seeded with ``seed``."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def pick_device(device: str = "auto") -> torch.device:
    """Resolve ``device``: ``"auto"`` picks CUDA, then Apple MPS, then CPU; ``"cpu"``/``"cuda"``/``"mps"`` force one."""
    allowed = ("auto", "cpu", "cuda", "mps")
    name = device.split(":")[0] if isinstance(device, str) else None
    if name not in allowed:
        raise ValueError(f"device must be one of {allowed} (optionally 'cuda:N'), got {device!r}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but torch sees no CUDA GPU; use device='auto' or 'cpu'")
    return torch.device(device)


def set_threads(n: int) -> int:
    """Set torch's intra-op thread count (``n >= 1``); return it.

    Small models on a few shared cores run several times faster on one thread than on many, because the
    per-op work is too small to amortise synchronisation; each study's default was measured (see its notebook).
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"threads must be a positive int, got {n!r}")
    torch.set_num_threads(n)
    return n


def preset_from_env(preset: str) -> str:
    """Return ``$PHENOMENA_PRESET`` if set, else ``preset``.

    nbval cannot inject notebook parameters, so the test targets choose the preset through this variable.
    """
    return os.environ.get(PRESET_ENV) or preset


def git_info() -> dict[str, Any]:
    """Commit sha and dirty flag (uncommitted changes outside the generated outputs) of the repository, or
    ``None`` values outside a git checkout."""
    root = repo_root()
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        code_only = ["--", ".", *(f":!{p}" for p in _OUTPUTS)]  # outputs are rewritten by the run itself
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", *code_only],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout
        return {"git_sha": sha, "git_dirty": bool(status.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"git_sha": None, "git_dirty": None}


def package_versions(names: tuple[str, ...] = _VERSIONED) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def run_metadata(device: torch.device | str | None = None, precision: str | None = None) -> dict[str, Any]:
    """Provenance for a figure or result: git sha (+dirty), versions, python, platform, device, the precision the
    run trained in (the effective one: :func:`phenomena.precision.effective_precision`), threads."""
    return {
        **git_info(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": str(device) if device is not None else None,
        "precision": precision,
        "torch_threads": torch.get_num_threads(),
        "versions": package_versions(),
    }
