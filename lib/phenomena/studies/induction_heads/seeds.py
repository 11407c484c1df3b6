"""The study over seeds: the phase change of every seed on one axis (``seed_figure``)."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from phenomena.figures import PALETTE


def seed_figure(records: list[dict[str, Any]]) -> plt.Figure:
    """Repeated-copy loss (left) and max induction score (right) through training, one line per seed."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    shades = plt.cm.viridis(np.linspace(0.1, 0.85, len(records)))
    for r, color in zip(records, shades):
        c = r["metrics"]["curves"]
        axes[0].plot(c["step"], c["probe_loss_rep"], color=color, lw=1.5, label=f"seed {r['seed']}")
        axes[1].plot(c["step"], c["probe_induction_max"], color=color, lw=1.5)
    axes[0].axhline(records[0]["metrics"]["ln_vocab"], color=PALETTE["reference"], lw=0.8)
    axes[0].set(
        xlabel="training step", ylabel="repeated-copy loss (nats)", title="The phase change, every seed"
    )
    axes[1].set(
        xlabel="training step",
        ylabel="max layer-1 induction score",
        ylim=(0, 1),
        title="Induction heads form",
    )
    axes[0].legend(fontsize=8)
    return fig
