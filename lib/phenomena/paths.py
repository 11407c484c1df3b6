"""Where outputs go, and how they are written (atomically).

Outputs live under an *output root* with the repository's layout (``figures/<study>/``, ``data/results/``,
``data/cache/``). By default the root is the repository that holds this package (an editable install), so
``make figures`` writes the committed outputs. Tests set ``PHENOMENA_OUT`` to a scratch folder so that they
never modify tracked files; ``PHENOMENA_CACHE`` moves only the cache.

Every write goes to a temporary file in the destination folder and is renamed into place when complete, so an
interrupted run (Ctrl-C, a crash) never leaves a half-written figure, result or cache entry.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent


def repo_root() -> Path:
    """The source repository of this package if it is an editable install, else the working directory."""
    candidate = PACKAGE_DIR.parent.parent
    if (candidate / "pyproject.toml").exists() and (candidate / "lib" / "phenomena").is_dir():
        return candidate
    return Path.cwd()


def output_root() -> Path:
    """Root under which ``figures/`` and ``data/`` are written (``PHENOMENA_OUT`` overrides)."""
    env = os.environ.get("PHENOMENA_OUT")
    return Path(env).resolve() if env else repo_root()


def figures_dir(study: str) -> Path:
    return output_root() / "figures" / study


def results_path(study: str) -> Path:
    return output_root() / "data" / "results" / f"{study}.json"


def cache_dir() -> Path:
    env = os.environ.get("PHENOMENA_CACHE")
    return Path(env).resolve() if env else output_root() / "data" / "cache"


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    On any exception, KeyboardInterrupt included, the temporary file is removed and ``path`` is untouched.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Atomically write ``obj`` as pretty JSON (see :func:`jsonable` for what is converted)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(jsonable(obj), indent=2, allow_nan=False) + "\n")
    return Path(path)


def jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON data -- the one encoder of every file the library writes.

    numpy/torch scalars and arrays become numbers and lists, paths strings, objects with ``to_dict()`` dicts,
    tuples lists, and a non-finite float (NaN, inf: "undefined", e.g. a correlation of constant inputs) ``None``.
    """
    if isinstance(obj, dict):
        return {
            str(k) if not isinstance(k, str | int | float | bool) else k: jsonable(v) for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, str | int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy / torch scalars and arrays
        return jsonable(obj.tolist())
    if hasattr(obj, "to_dict"):
        return jsonable(obj.to_dict())
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def normalize(overrides: dict[str, Any] | None) -> dict[str, Any]:
    """``overrides`` as plain JSON data (tuples become lists), keys sorted."""
    data = jsonable(dict(overrides or {}))
    return {k: data[k] for k in sorted(data)}


def tag_of(preset: str, overrides: dict[str, Any] | None) -> str:
    """``preset``, or ``<preset>-<8 hex chars>`` of a hash of the overrides' sorted JSON when there are any."""
    data = normalize(overrides)
    if not data:
        return preset
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    return f"{preset}-{digest[:8]}"


def sweep_dir(root: Path, study: str, tag: str) -> Path:
    """The committed folder of a study's sweep at ``tag``: ``data/sweeps/<study>/<tag>/``."""
    return root / "data" / "sweeps" / study / tag


def summary_path(root: Path, study: str, tag: str) -> Path:
    """The over-seeds summary: ``data/sweeps/<study>-<tag>.json``."""
    return root / "data" / "sweeps" / f"{study}-{tag}.json"
