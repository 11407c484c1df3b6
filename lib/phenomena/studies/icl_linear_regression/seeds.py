"""The study over seeds: Garg's error curve with a band over the seeds of a sweep (``seed_figure``)."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from phenomena.figures import PALETTE, line_band, mark_x


def seed_figure(records: list[dict[str, Any]]) -> plt.Figure:
    """Error vs in-context examples k: the mean over seeds and the seeds' range, transformer and baselines."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    d = records[0]["metrics"]["k_d"]
    for name in ("transformer", "ols", "ridge", "gd", "knn"):
        curves = np.array([r["metrics"]["err_by_k"][name] for r in records], dtype=float)
        ks = np.arange(curves.shape[1])
        line_band(
            ax,
            ks,
            curves.mean(0),
            curves.min(0),
            curves.max(0),
            label=name,
            color=PALETTE[name],
            lw=2.5 if name == "transformer" else 1.2,
        )
    mark_x(ax, d, "k = d")
    ax.set(
        xlabel="in-context examples k",
        ylabel="normalised squared error",
        ylim=(-0.02, 1.3),
        title=f"Error vs k over {len(records)} seeds (line: mean; band: range)",
    )
    ax.legend(fontsize=8, ncol=2)
    return fig
