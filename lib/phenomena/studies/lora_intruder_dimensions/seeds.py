"""The study over seeds: intruders and forgetting along the learning-rate sweep, every seed (``seed_figure``)."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np


def seed_figure(records: list[dict[str, Any]]) -> plt.Figure:
    """Intruders vs learning rate (left) and forgetting on news prose vs intruders (right), one line per seed."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    shades = plt.cm.viridis(np.linspace(0.1, 0.85, len(records)))
    for r, color in zip(records, shades):
        sweep = r["metrics"]["lr_sweep"]
        lrs, intr, forg = ([s[k] for s in sweep] for k in ("lr", "intruders", "forgetting"))
        axes[0].plot(lrs, intr, "o-", color=color, label=f"seed {r['seed']}")
        axes[1].plot(intr, forg, "o:", color=color)
    axes[0].set(
        xscale="log",
        xlabel="LoRA learning rate (r = headline rank)",
        ylabel="intruders",
        title="Intruders vs learning rate, every seed",
    )
    axes[1].set(
        xscale="symlog",
        yscale="symlog",
        xlabel="intruders",
        ylabel="forgetting (Δ retrieval loss, news)",
        title="Intruders vs forgetting, every seed",
    )
    axes[0].legend(fontsize=8)
    return fig
