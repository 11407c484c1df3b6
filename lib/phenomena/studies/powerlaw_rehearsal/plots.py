"""The rehearsal notebook's figure helpers for the panels a tier may switch off -- the exponent sweep, the
robustness panels and the long horizon -- and the note a panel shows in their place when its tier does not run
them (the quick tier runs the main comparison only; ``preset="full"`` runs every panel). Each ``*_figure``
returns the figure, or None after printing the note. Nothing here computes a stored number."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from phenomena.figures import NOT_RUN, PALETTE, not_run, not_run_on  # noqa: F401 (the notebook calls plots.not_run)
from phenomena.studies.powerlaw_rehearsal.config import Config
from phenomena.studies.powerlaw_rehearsal.experiment import Results

ROBUST_NAMES = {
    "n_tasks": "number of tasks T",
    "width": "hidden width",
    "budget": "rehearsal budget (x reference)",
}


def has_sweep(cfg: Config) -> bool:
    """Whether the exponent sweep has more than one exponent (one is the main comparison's power law)."""
    return len(set(cfg.sweep_exponents)) > 1


def robust_panels(cfg: Config) -> list[str]:
    """The robustness axes the config runs (an axis needs a value beside the main comparison's)."""
    values = {"n_tasks": cfg.robust_tasks, "width": cfg.robust_widths, "budget": cfg.robust_budgets}
    return [p for p, v in values.items() if v]


def has_horizon(cfg: Config) -> bool:
    """Whether the long-horizon panel is run (``horizon_tasks`` > 0)."""
    return bool(cfg.horizon_tasks)


def exponent_sweep_figure(cfg: Config, results: Results) -> plt.Figure | None:
    """ACC against the power-law exponent at a matched budget (mean and seed range), with uniform, exponential and
    joint as lines."""
    if not has_sweep(cfg):
        not_run("The exponent sweep")
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    stats = results.sweep.groupby("exponent")["ACC"].agg(["mean", "min", "max"])
    ax.errorbar(
        stats.index,
        stats["mean"],
        yerr=[stats["mean"] - stats["min"], stats["max"] - stats["mean"]],
        fmt="o-",
        color=PALETTE["powerlaw"],
        capsize=3,
        label=f"power law, matched budget ({len(results.seeds)} seeds)",
    )
    for env in ("uniform", "exponential", "joint"):
        if env in results.by_env.index:
            ax.axhline(results.by_env.loc[env, ("ACC", "mean")], ls="--", color=PALETTE[env], label=env)
    none = results.by_env.loc["none", ("ACC", "mean")]
    ax.set(
        xscale="log",
        xlabel="power-law exponent d (log scale)",
        ylabel="ACC",
        title=f"Exponent sweep (T = {cfg.n_tasks}, same budget; none: {none:.2f})",
    )
    ax.legend(fontsize=8)
    return fig


def robustness_figure(cfg: Config, results: Results) -> plt.Figure | None:
    """ACC of power law and none along each robustness axis the config runs (the main comparison's value
    included)."""
    panels = robust_panels(cfg)
    if not panels:
        not_run("The robustness panels")
        return None
    robust = results.robust
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False)
    for ax, p in zip(axes[0], panels):
        for env, g in robust[robust["panel"] == p].groupby("env"):
            ax.plot(g["value"], g["ACC"], "o-", color=PALETTE[env], label=env)
        name = ROBUST_NAMES[p]
        ax.set(
            xlabel=name, ylabel="ACC", xscale="log" if p != "n_tasks" else "linear", title=f"ACC vs {name}"
        )
        ax.legend(fontsize=8)
    return fig


def horizon_figure(cfg: Config, results: Results) -> plt.Figure | None:
    """The long horizon: every task's final accuracy per schedule (left) and the oldest tasks' mean against ACC
    (right)."""
    horizon = results.horizon
    if not has_horizon(cfg) or not len(horizon):
        not_run("The long horizon")
        return None
    fig, axes = plt.subplots(1, 2, figsize=(13, 4))
    for _, r in horizon.iterrows():
        color = PALETTE[r["env"]] if not r["pure"] else PALETTE["powerlaw_ewc"]
        axes[0].plot(np.arange(len(r["final"])), r["final"], ".-", color=color, label=r["schedule"])
    axes[0].axvspan(-0.5, cfg.horizon_oldest - 0.5, color=PALETTE["reference"], alpha=0.15)
    axes[0].set(
        xlabel="task (0 = the oldest)",
        ylabel="final test accuracy",
        title=f"T = {cfg.horizon_tasks}: final accuracy of every task (shaded: the oldest {cfg.horizon_oldest})",
    )
    axes[0].legend(fontsize=8)
    axes[1].barh(horizon["schedule"], horizon["oldest"], color=PALETTE["reference"], label="oldest tasks")
    axes[1].plot(horizon["ACC"], horizon["schedule"], "kD", label="ACC, all tasks")
    axes[1].set(xlabel="accuracy", title="The oldest tasks vs all tasks")
    axes[1].legend(fontsize=8)
    return fig
