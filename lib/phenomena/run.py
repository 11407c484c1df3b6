"""``Run``: one notebook execution -- its study, config, device and clock -- tying figures, cache and claims together.

A notebook starts with ``run = Run.start("icl_linear_regression", cfg, device=device, threads=threads)``, which
seeds everything, sets the thread count, picks the device and applies the plotting style. Afterwards
``run.savefig(fig, name)`` and ``run.check(claims, metrics)`` stamp every output with the same provenance
(config, seed, preset, git sha, versions, device, wall time, peak memory).
"""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import matplotlib.pyplot as plt
import torch

from phenomena import cache, claims, figures, repro
from phenomena.config import StudyConfig

T = TypeVar("T")


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024**2 if sys.platform == "darwin" else 1024)


@dataclass
class Run:
    """Context of one study execution. Create it with :meth:`start`."""

    study: str
    cfg: StudyConfig
    device: torch.device
    threads: int
    started: float = field(default_factory=time.perf_counter)

    @classmethod
    def start(cls, study: str, cfg: StudyConfig, *, device: str = "auto", threads: int = 1) -> Run:
        """Seed python/numpy/torch with ``cfg.seed``, set ``threads``, resolve ``device``, apply the style."""
        repro.seed_everything(cfg.seed)
        repro.set_threads(threads)
        run = cls(study=study, cfg=cfg, device=repro.pick_device(device), threads=threads)
        figures.style()
        print(f"{study}: preset={cfg.preset} seed={cfg.seed} device={run.device} threads={threads}")
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
            **repro.run_metadata(self.device),
        }

    def savefig(self, fig: plt.Figure, name: str) -> Path:
        """Save ``fig`` as ``figures/<study>/<name>.png`` with a provenance sidecar."""
        return figures.savefig(fig, self.study, name, self.provenance())

    def cached(
        self,
        name: str,
        compute: Callable[[], T],
        *,
        config: Any = None,
        modules: Iterable[ModuleType] | None = None,
    ) -> T:
        """``cache.cached`` keyed by ``config`` (default: this run's config) and the given modules' source."""
        return cache.cached(name, self.cfg if config is None else config, compute, modules=modules)

    def check(self, claim_list: list[claims.Claim], metrics: dict[str, Any] | None = None) -> Path:
        """Write ``data/results/<study>.json`` and raise if a claim fails (see :func:`claims.check`)."""
        meta = repro.run_metadata(self.device)
        extra = {"peak_rss_mb": round(peak_rss_mb(), 1), "config": self.cfg.to_dict(), **meta}
        return claims.check(
            self.study,
            claim_list,
            preset=self.cfg.preset,
            seed=self.cfg.seed,
            wall_time_s=self.elapsed,
            metrics=metrics,
            extra=extra,
        )
