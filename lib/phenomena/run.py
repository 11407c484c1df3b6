"""``Run``: one execution of a study -- its config, device and clock -- tying cache, figures and claims together.

A notebook (or ``python -m phenomena run``) starts with ``run = Run.start("icl_linear_regression", cfg,
device=device, threads=threads)``, which seeds everything, sets the thread count, picks the device and applies the
plotting style. Then ``study.compute(cfg, run)`` caches its expensive parts with ``run.cached(name, fn)`` (keyed
by the config and the source of the study's ``experiment`` module and everything it imports), and
``run.savefig(fig, name)`` / ``run.check(claims, metrics)`` stamp every output with the same provenance (config,
seed, preset, git sha, source hash, versions, device, wall time, peak memory).
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

import torch

from phenomena import cache, claims, locking, paths, repro
from phenomena.config import StudyConfig
from phenomena.precision import effective_precision

if (
    TYPE_CHECKING
):  # matplotlib, seaborn and pandas (~90 MB) load only where a figure is made: a worker process
    import matplotlib.pyplot as plt  # that unpickles a Run to train does not need them (issue 32: memory)

T = TypeVar("T")
THREADS_ENV = "PHENOMENA_THREADS"


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024**2 if sys.platform == "darwin" else 1024)


def entry_path(name: str, config: Any, module: str) -> Path | None:
    """Where :func:`phenomena.cache.cached` stores (``name``, ``config``, source of ``module``); None with the cache
    off (``$PHENOMENA_NO_CACHE``)."""
    if os.environ.get("PHENOMENA_NO_CACHE"):
        return None
    return paths.cache_dir() / f"{cache.cache_key(name, config, module)}.pt"


def compute_module(study: str) -> str:
    """The module whose source (with its imports) keys a study's cache: where its ``compute`` lives."""
    return f"phenomena.studies.{study}.experiment"


def study_source_hash(study: str) -> str | None:
    """Hash of all the code a study's results depend on: its package and every library module it imports, and the
    package's data files (its ``claims.toml``: the rows are data, and a record judged under an older table is stale;
    ``python -m phenomena.rejudge`` refreshes it). None for a name that is no study package, e.g. in tests."""
    try:
        code = cache.source_hash(f"phenomena.studies.{study}")
    except ValueError:
        return None
    data = sorted((cache.PACKAGE_DIR / "studies" / study).glob("*.toml"))
    if not data:
        return code
    h = hashlib.sha256(code.encode())
    for f in data:
        h.update(str(f.relative_to(cache.PACKAGE_DIR)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def study_metrics_hash(study: str) -> str | None:
    """Hash of the code a study's *stored metrics* depend on: its ``summary`` module (``summarize``) with everything
    it imports -- the computation included -- but not the measures, the claims table, the prose or the ``__init__``
    of the packages above it (which only re-export; the study's holds its title and one-line summary). Unlike
    :func:`study_source_hash` it does not change when only the claims change, so such a change re-judges the stored
    metrics (``python -m phenomena.rejudge``) instead of re-running the study."""
    try:
        files = cache.module_closure(f"phenomena.studies.{study}.summary")
    except ValueError:
        return None
    inits = {cache.PACKAGE_DIR / d / "__init__.py" for d in ("", "studies", f"studies/{study}")}
    h = hashlib.sha256()
    for f in sorted(set(files) - inits):
        h.update(str(f.relative_to(cache.PACKAGE_DIR)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _registration(study: str, preset: str) -> dict[str, Any] | None:
    """The registration of every claim row of ``study`` at ``preset`` as it stands now (None for a name that is no
    study package, e.g. in tests)."""
    from phenomena import studies

    if study not in studies.names():
        return None
    return studies.load(study).claims.registration(preset)


@dataclass
class Run:
    """Context of one study execution. Create it with :meth:`start`."""

    study: str
    cfg: StudyConfig
    device: torch.device
    threads: int
    precision: str = "fp32"
    started: float = field(default_factory=time.perf_counter)
    #: per claim row, the spec in force when the run started (what its record is registered under)
    registered: dict[str, Any] | None = None

    @classmethod
    def start(cls, study: str, cfg: StudyConfig, *, device: str = "auto", threads: int = 1) -> Run:
        """Seed python/numpy/torch with ``cfg.seed``, set ``threads`` (``$PHENOMENA_THREADS`` wins: the sweep and
        test runners use it to keep parallel notebooks single-threaded), resolve ``device`` and the precision it trains in (bf16 without fast bf16 hardware: fp32, with a warning),
        apply the style."""
        threads = int(os.environ.get(THREADS_ENV) or threads)
        repro.seed_everything(cfg.seed)
        repro.set_threads(threads)
        dev = repro.pick_device(device)
        precision = effective_precision(getattr(cfg, "precision", "fp32"), dev)
        registered = _registration(study, cfg.preset)
        run = cls(
            study=study, cfg=cfg, device=dev, threads=threads, precision=precision, registered=registered
        )
        from phenomena import figures

        figures.style()
        print(
            f"{study}: preset={cfg.preset} seed={cfg.seed} device={run.device} threads={threads} precision={precision}"
        )
        return run

    @property
    def elapsed(self) -> float:
        """Seconds since :meth:`start`."""
        return time.perf_counter() - self.started

    def provenance(self) -> dict[str, Any]:
        return {
            "preset": self.cfg.preset,
            "seed": self.cfg.seed,
            "config": self.cfg.to_dict(),
            "wall_time_s": round(self.elapsed, 1),
            **repro.run_metadata(self.device, self.precision),
        }

    def savefig(self, fig: plt.Figure, name: str) -> Path:
        """Save ``fig`` as ``figures/<study>/<name>.png`` with a provenance sidecar."""
        from phenomena import figures

        return figures.savefig(fig, self.study, name, self.provenance())

    def cached(self, name: str, compute: Callable[[], T], *, key: Any = None, module: str | None = None) -> T:
        """``compute()``, cached on disk by ``key`` (default: this run's whole config) and the source of ``module``
        with everything it imports (default: the study's ``experiment`` module, see :func:`compute_module`; a
        narrower module, e.g. the one that trains, keeps its cache across changes of the analysis code). A missing
        entry is computed under its lock (:func:`phenomena.locking.entry_lock`): another process that needs the same
        entry meanwhile (a second notebook on the same cache) waits for it and reads it instead of computing it."""
        config, module = self.cfg if key is None else key, module or compute_module(self.study)
        path = entry_path(name, config, module)
        if path is None or path.exists():
            return cache.cached(name, config, compute, module=module)
        with locking.entry_lock(path):
            return cache.cached(name, config, compute, module=module)

    def check(
        self,
        claim_list: list[claims.Claim],
        metrics: dict[str, Any] | None = None,
        departures: Sequence[str] = (),
    ) -> Path:
        """Write ``data/results/<study>.json`` (see :func:`claims.check`)."""
        meta = repro.run_metadata(self.device, self.precision)
        extra = {
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "config": self.cfg.to_dict(),
            "source_hash": study_source_hash(self.study),
            "metrics_hash": study_metrics_hash(self.study),
            **meta,
        }
        return claims.check(
            self.study,
            claim_list,
            preset=self.cfg.preset,
            seed=self.cfg.seed,
            wall_time_s=self.elapsed,
            metrics=metrics,
            departures=departures,
            extra=extra,
        )

    def conclude(self, study: ModuleType, results: Any) -> dict[str, Any]:
        """The end of every study run: ``summarize`` -> ``claims`` + ``departures`` -> :meth:`check`; returns the
        record written (what the notebook's generated text and the README read)."""
        metrics = study.summarize(self.cfg, results)
        rows = study.claims(self.cfg, metrics, self.registered)
        path = self.check(rows, metrics, study.departures(self.cfg, metrics))
        return json.loads(path.read_text())
