"""The study over seeds: ACC and BWT of every environment with one point per seed (``seed_figure``)."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from phenomena.figures import PALETTE


def seed_figure(records: list[dict[str, Any]]) -> plt.Figure:
    """Per environment: each sweep seed's mean ACC and BWT over its runs (points) and their mean (bar)."""
    rows = [
        {"seed": r["seed"], "env": env, **vals}
        for r in records
        for env, vals in r["metrics"]["by_env"].items()
    ]
    table = pd.DataFrame(rows)
    envs = list(records[0]["metrics"]["by_env"])
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for ax, metric in zip(axes, ("ACC", "BWT")):
        means = table.groupby("env")[metric].mean().reindex(envs)
        ax.bar(envs, means, color=[PALETTE[e] for e in envs], alpha=0.5)
        for i, env in enumerate(envs):
            vals = table[table.env == env][metric]
            ax.plot([i] * len(vals), vals, "k.", ms=6)
        ax.set(ylabel=metric, title=f"{metric} over {len(records)} seeds (points: seeds)")
        ax.tick_params(axis="x", rotation=60)
    axes[0].set_ylim(0.5, 1.0)
    return fig
