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
from typing import Any, TypeVar

import matplotlib.pyplot as plt
import torch

from phenomena import cache, claims, figures, repro
from phenomena.config import StudyConfig
from phenomena.precision import effective_precision

T = TypeVar("T")
THREADS_ENV = "PHENOMENA_THREADS"


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024**2 if sys.platform == "darwin" else 1024)


def compute_module(study: str) -> str:
    """The module whose source (with its imports) keys a study's cache: where its ``compute`` lives."""
    return f"phenomena.studies.{study}.experiment"


def study_source_hash(study: str) -> str | None:
    """Hash of all the code a study's results depend on: its package and every library module it imports (None for
    a name that is no study package, e.g. in tests)."""
    try:
        return cache.source_hash(f"phenomena.studies.{study}")
    except ValueError:
        return None


def study_metrics_hash(study: str) -> str | None:
    """Hash of the code a study's *metrics* depend on: its ``experiment`` module with everything that imports, the
    other library modules its claims module imports (but not the claims machinery or its thresholds), and the
    source of ``summarize`` with the helpers it uses. Unlike :func:`study_source_hash` it does not change when only
    the claims' thresholds, expectations or rows change, so such a change re-judges the stored metrics
    (``python -m phenomena.rejudge``) instead of re-running the study."""
    claims_module = f"phenomena.studies.{study}.claims"
    path = cache._module_file(claims_module)
    if path is None:
        return None
    files = set(cache.module_closure(compute_module(study)))
    for mod in cache._imports(path, claims_module):
        if mod == "phenomena.claims" or mod.endswith(".thresholds") or cache._module_file(mod) is None:
            continue
        files |= set(cache.module_closure(mod))
    files.discard(path)
    h = hashlib.sha256()
    for f in sorted(files):
        h.update(str(f.relative_to(cache.PACKAGE_DIR)).encode())
        h.update(f.read_bytes())
    h.update(cache.function_slice(path, "summarize").encode())
    return h.hexdigest()


@dataclass
class Run:
    """Context of one study execution. Create it with :meth:`start`."""

    study: str
    cfg: StudyConfig
    device: torch.device
    threads: int
    precision: str = "fp32"
    started: float = field(default_factory=time.perf_counter)

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
        run = cls(study=study, cfg=cfg, device=dev, threads=threads, precision=precision)
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
        return figures.savefig(fig, self.study, name, self.provenance())

    def cached(self, name: str, compute: Callable[[], T], *, key: Any = None, module: str | None = None) -> T:
        """``compute()``, cached on disk by ``key`` (default: this run's whole config) and the source of ``module``
        with everything it imports (default: the study's ``experiment`` module, see :func:`compute_module`; a
        narrower module, e.g. the one that trains, keeps its cache across changes of the analysis code)."""
        return cache.cached(
            name, self.cfg if key is None else key, compute, module=module or compute_module(self.study)
        )

    def check(
        self,
        claim_list: list[claims.Claim],
        metrics: dict[str, Any] | None = None,
        departures: Sequence[str] = (),
    ) -> Path:
        """Write ``data/results/<study>.json`` and raise if a row is not as expected (see :func:`claims.check`)."""
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
        rows = study.claims(self.cfg, metrics)
        path = self.check(rows, metrics, study.departures(self.cfg, metrics))
        return json.loads(path.read_text())
