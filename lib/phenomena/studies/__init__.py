"""The studies: one package per notebook, each with the same front door.

``phenomena.studies.<name>`` (``<name>`` is the notebook's file name) exports

- ``TITLE`` -- the study's display name;
- ``Config`` -- its typed configuration, with ``PRESETS`` (smoke | quick | paper);
- ``compute(cfg, run) -> Results`` -- everything the notebook plots (expensive parts cached via ``run.cached``);
- ``summarize(cfg, results) -> dict`` -- the stored metrics (JSON-ready), from the package's ``summary`` module;
- ``claims`` -- a :class:`phenomena.claims.ClaimTable`: the rows of the package's ``claims.toml`` (each with its
  threshold and expectation per preset and their evidence) over the named measures of its ``measures`` module;
  ``claims(cfg, metrics) -> list[Claim]`` judges them; ``departures(cfg, metrics) -> list[str]`` -- every
  declared departure from the paper, with its numbers; ``comparison(cfg, metrics) -> str`` -- "How ours compares",
  generated Markdown;
- ``seed_figure(records) -> Figure`` -- one figure over the per-seed results of a sweep.

The registry below is derived from the packages themselves: adding a study is adding a package (and a notebook).
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from types import ModuleType

FRONT_DOOR = (
    "TITLE",
    "Config",
    "compute",
    "summarize",
    "claims",
    "departures",
    "comparison",
    "seed_figure",
)


@cache
def names() -> tuple[str, ...]:
    """Every study, in alphabetical order (the order of the README and the report)."""
    return tuple(sorted(m.name for m in pkgutil.iter_modules(__path__) if m.ispkg))


def load(name: str) -> ModuleType:
    """The study package ``name``; a ``ValueError`` naming the allowed studies if there is none."""
    if name not in names():
        raise ValueError(f"study={name!r} is not allowed: expected one of {list(names())}")
    module = importlib.import_module(f"{__name__}.{name}")
    missing = [attr for attr in FRONT_DOOR if not hasattr(module, attr)]
    if missing:
        raise TypeError(f"study package {name!r} lacks its front door: {missing}")
    return module


def title(name: str) -> str:
    return str(load(name).TITLE)
