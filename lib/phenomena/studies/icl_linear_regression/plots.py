"""The ICL notebook's figure helpers: the task-diversity panel, and the note it shows in its place when the tier does
not run it (the quick tier trains the main model and the 1-layer depth model only; ``preset="full"`` runs the
task pools). Nothing here computes a stored number."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from phenomena.figures import NOT_RUN, PALETTE, not_run, not_run_on, pool_size_axis  # noqa: F401 (the notebook calls plots.not_run)


def task_diversity_figure(td: pd.DataFrame) -> plt.Figure:
    """Raventós' panel from ``Results.td`` (one row per pool size M, 0 = infinite): error on new tasks against M
    beside dMMSE and ridge (left), and the SPDs to the two Bayes predictors (right)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    x = pool_size_axis(axes[0], list(td["M"]))
    axes[0].plot(
        x, td["unseen/err/transformer"], "o-", color=PALETTE["transformer"], label="transformer", lw=2
    )
    axes[0].plot(x, td["unseen/err/dmmse"], "s--", color=PALETTE["dmmse"], label="dMMSE (pool prior)")
    axes[0].axhline(
        td["unseen/err/ridge"].mean(), color=PALETTE["ridge"], ls="--", label="ridge λ=σ² (Gaussian prior)"
    )
    axes[0].set(
        xlabel="number of pretraining tasks M",
        ylabel="error on new tasks (mean over k ≥ 1)",
        title="Error on unseen tasks",
        yscale="log",
    )
    axes[0].legend(fontsize=8)
    pool_size_axis(axes[1], list(td["M"]))
    axes[1].plot(x, td["unseen/spd/ridge"], "o-", color=PALETTE["ridge"], label="SPD to ridge")
    axes[1].plot(x, td["unseen/spd/dmmse"], "s-", color=PALETTE["dmmse"], label="SPD to dMMSE")
    axes[1].set(
        xlabel="number of pretraining tasks M",
        ylabel="SPD on new tasks (mean over k ≥ 1)",
        title="Which Bayes predictor does it follow?",
        yscale="log",
    )
    axes[1].legend(fontsize=8)
    return fig
