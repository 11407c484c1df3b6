"""Content-addressed results cache under ``data/cache/``, keyed by configuration and source code.

The key is a hash of (a) the JSON of whatever determines the result (usually the study's config) and (b) the source
of every library module the computation can run: the module that computes it and, transitively, every
``phenomena`` module it imports (found by reading the ``import`` statements, so there is no hand-written dependency
list to forget; imports under ``if TYPE_CHECKING:`` are annotations only and are skipped). Change the config or any
of that code, and the cache misses. Entries are written atomically with ``torch.save``, so an interrupted
computation never leaves a poisoned entry. Set ``PHENOMENA_NO_CACHE=1`` (or pass ``enabled=False``) to recompute.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch

from phenomena.paths import PACKAGE_DIR, atomic_path, cache_dir

T = TypeVar("T")
ROOT = "phenomena"


def _module_file(name: str) -> Path | None:
    """The source file of module ``phenomena.x.y`` (a package's ``__init__.py``), without importing it."""
    parts = name.split(".")
    if parts[0] != ROOT:
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, name: str) -> set[str]:
    """The ``phenomena`` modules imported by the module ``name`` at ``path`` (not under TYPE_CHECKING)."""
    is_pkg = path.name == "__init__.py"
    package = name if is_pkg else name.rpartition(".")[0]
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            for child in node.orelse if _is_type_checking(node) else [node.test, *node.body, *node.orelse]:
                self.visit(child)

        def visit_Import(self, node: ast.Import) -> None:
            found.update(a.name for a in node.names)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            mod = node.module or ""
            if node.level:
                mod = importlib.util.resolve_name("." * node.level + mod, package)
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)  # `from pkg import submodule`

    Visitor().visit(ast.parse(path.read_text()))
    return {m for m in found if m.split(".")[0] == ROOT}


@functools.cache
def module_closure(name: str) -> tuple[Path, ...]:
    """Source files of module ``name`` and of every ``phenomena`` module it transitively imports, sorted.

    Importing ``a.b.c`` also runs the ``__init__`` of ``a`` and ``a.b``: their own source counts, but what a package
    ``__init__`` imports only to re-export (a study's claims, say) does not, unless the module itself imports it.
    """
    if _module_file(name) is None:
        raise ValueError(f"module {name!r} is not a phenomena module with a source file")
    seen: dict[str, Path] = {}
    todo = [name]
    while todo:
        mod = todo.pop()
        path = _module_file(mod)
        if mod in seen or path is None:
            continue
        seen[mod] = path
        todo.extend(_imports(path, mod) - seen.keys())
    parents = {".".join(m.split(".")[:i]) for m in seen for i in range(1, m.count(".") + 1)}
    files = set(seen.values()) | {p for m in parents if (p := _module_file(m)) is not None}
    return tuple(sorted(files))


def source_hash(module: str | None = None) -> str:
    """SHA-256 of the source of ``module`` and its ``phenomena`` imports (default: every file of the package)."""
    files = sorted(PACKAGE_DIR.rglob("*.py")) if module is None else module_closure(module)
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(PACKAGE_DIR)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def function_slice(path: Path, name: str) -> str:
    """The source of the module-level function ``name`` in ``path`` and of every module-level function, class or
    constant it references, transitively (by name): what the function's result depends on within its module."""
    text = path.read_text()
    tree = ast.parse(text)
    defs: dict[str, ast.stmt] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            defs[node.name] = node
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name):
                    defs[t.id] = node
    if name not in defs:
        raise ValueError(f"{path} defines no {name!r}")
    seen: dict[str, ast.stmt] = {}
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen or current not in defs:
            continue
        seen[current] = defs[current]
        todo.extend(n.id for n in ast.walk(defs[current]) if isinstance(n, ast.Name) and n.id in defs)
    nodes = sorted({id(n): n for n in seen.values()}.values(), key=lambda n: n.lineno)
    return "\n".join(ast.get_source_segment(text, n) or "" for n in nodes)


def cache_key(name: str, config: Any, module: str | None = None) -> str:
    """Stable key for ``name`` + ``config`` (JSON-serialisable, or with ``to_dict()``) + the source of ``module``."""
    if hasattr(config, "to_dict"):
        config = config.to_dict()
    payload = json.dumps({"name": name, "config": config}, sort_keys=True, default=str)
    digest = hashlib.sha256((payload + source_hash(module)).encode()).hexdigest()
    return f"{name}-{digest[:20]}"


def cached(
    name: str, config: Any, compute: Callable[[], T], *, module: str | None = None, enabled: bool = True
) -> T:
    """Return ``compute()``'s result for (``name``, ``config``, source of ``module``), from disk when present.

    ``compute`` must return something ``torch.save`` can store (tensors, numbers, lists, dicts, dataclasses of
    those). Returns the stored object on a hit.
    """
    if not enabled or os.environ.get("PHENOMENA_NO_CACHE"):
        return compute()
    path = cache_dir() / f"{cache_key(name, config, module)}.pt"
    if path.exists():
        return torch.load(path, weights_only=False)
    result = compute()
    with atomic_path(path) as tmp:
        torch.save(result, tmp)
    return result
