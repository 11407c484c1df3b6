"""Content-addressed results cache under ``data/cache/``.

The key is a hash of (a) the JSON of the config that determines the result and (b) the source code of the library
modules the computation depends on: change either, and the cache misses. Entries are written atomically with
``torch.save``, so an interrupted computation never leaves a poisoned entry. Set ``PHENOMENA_NO_CACHE=1`` (or pass
``enabled=False``) to recompute everything.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import torch

from phenomena.paths import PACKAGE_DIR, atomic_path, cache_dir

T = TypeVar("T")


def source_hash(modules: Iterable[ModuleType] | None = None) -> str:
    """SHA-256 of the given modules' source files (default: every ``.py`` file of the package)."""
    if modules is None:
        files = sorted(PACKAGE_DIR.rglob("*.py"))
    else:
        files = sorted({Path(m.__file__).resolve() for m in modules if getattr(m, "__file__", None)})
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def cache_key(name: str, config: Any, modules: Iterable[ModuleType] | None = None) -> str:
    """Stable key for ``name`` + ``config`` (anything JSON-serialisable, or with ``to_dict()``) + source."""
    if hasattr(config, "to_dict"):
        config = config.to_dict()
    payload = json.dumps({"name": name, "config": config}, sort_keys=True, default=str)
    digest = hashlib.sha256((payload + source_hash(modules)).encode()).hexdigest()
    return f"{name}-{digest[:20]}"


def cached(
    name: str,
    config: Any,
    compute: Callable[[], T],
    *,
    modules: Iterable[ModuleType] | None = None,
    enabled: bool = True,
) -> T:
    """Return ``compute()``'s result for (``name``, ``config``, library source), from disk when present.

    ``compute`` must return something ``torch.save`` can store (tensors, numbers, lists, dicts, dataclasses of
    those). Returns the stored object on a hit.
    """
    if not enabled or os.environ.get("PHENOMENA_NO_CACHE"):
        return compute()
    path = cache_dir() / f"{cache_key(name, config, modules)}.pt"
    if path.exists():
        return torch.load(path, weights_only=False)
    result = compute()
    with atomic_path(path) as tmp:
        torch.save(result, tmp)
    return result
