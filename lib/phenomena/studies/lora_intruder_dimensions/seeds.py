"""The study over seeds: the headline contrast at the paper's rule, and intruders and forgetting along the
learning-rate sweep, every seed (``seed_figure``)."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from phenomena.figures import count_axis


def seed_figure(records: list[dict[str, Any]]) -> plt.Figure:
    """Left: intruders of full FT and of LoRA at each rank at the paper's rule. Middle: intruders vs the learning
    rate at the headline rank. Right: forgetting on news prose vs the update's size along that sweep (marker size:
    intruders). One line per seed."""
    fig, axes = plt.subplots(1, 3, figsize=(16, 3.9))
    shades = plt.cm.viridis(np.linspace(0.1, 0.85, len(records)))
    for r, color in zip(records, shades):
        m = r["metrics"]
        ranks = sorted(m["intruders_by_rank"], key=int)
        labels = ["full FT", *(f"r={q}" for q in ranks)]
        counts = [m["full_intruders"], *(m["intruders_by_rank"][q] for q in ranks)]
        axes[0].plot(labels, counts, "o-", color=color, label=f"seed {r['seed']}")
        sweep = m["lr_sweep"]
        lrs, intr, forg = ([s[k] for s in sweep] for k in ("lr", "intruders", "forgetting"))
        axes[1].plot(lrs, intr, "o-", color=color)
        size = [s.get("dw_rel_norm", np.nan) for s in sweep]
        axes[2].plot(size, forg, ":", color=color)
        axes[2].scatter(size, forg, s=[20 + 3 * i for i in intr], color=color)
    axes[0].set(
        xlabel="run at the paper's rule (alpha = 2r, alpha x lr = 2.4e-3)",
        ylabel="intruders (eps 0.5, all matrices)",
        title="LoRA above full FT = intruders (every seed)",
    )
    count_axis(axes[0])
    axes[1].set(
        xscale="log",
        xlabel="LoRA learning rate (headline rank)",
        ylabel="intruders",
        title="Intruders grow with the learning rate",
    )
    count_axis(axes[1])
    axes[2].set(
        xlabel="update size ||dW|| / ||W0|| (lr sweep)",
        ylabel="forgetting (Δ retrieval loss, news)",
        title="Forgetting vs update size (marker: intruders)",
    )
    axes[0].legend(fontsize=8)
    return fig
