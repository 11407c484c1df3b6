"""The induction-heads notebook's figure helpers for the panels a tier may switch off -- the 8-head ablation model
and Reddy's runs (the abrupt jump, burstiness, the K and eps sweeps) -- and the note a panel shows in their place
when its tier does not run them (the quick tier runs the 2-layer model and the two controls; ``preset="full"`` runs
every panel). Each ``*_figure`` returns the figure, or None after printing the note. Nothing here computes a stored
number."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from phenomena.figures import NOT_RUN, PALETTE, not_run, not_run_on  # noqa: F401 (the notebook calls plots.not_run)
from phenomena.studies.induction_heads.config import Config
from phenomena.studies.induction_heads.experiment import Results


def final_accuracies(runs: list, var: str) -> pd.DataFrame:
    """Final ICL / IWL accuracy (mean of the last 3 evaluations) of each Reddy run, by the setting's ``var``."""
    return pd.DataFrame(
        [
            {
                var: getattr(s, var),
                "ICL": h.eval_frame()["icl_acc"].iloc[-3:].mean(),
                "IWL": h.eval_frame()["iwl_acc"].iloc[-3:].mean(),
            }
            for s, h in runs
        ]
    )


def reddy_jump_figure(cfg: Config, results: Results) -> plt.Figure | None:
    """The abrupt-jump run: novel-class ICL accuracy with the jump shaded (left), Reddy's attention progress
    measures (right)."""
    if not results.reddy["jump"]:
        not_run("Reddy's abrupt-jump run")
        return None
    s_jump, h_jump = results.reddy["jump"][0]
    ev, jump = h_jump.eval_frame(), results.jump
    chance = cfg.rd_eval_burstiness / cfg.rd_pairs
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    axes[0].plot(ev["step"], ev["icl_acc"], color=PALETTE["icl"], lw=2, label="ICL accuracy, novel classes")
    axes[0].axhline(
        1 / cfg.rd_labels, color=PALETTE["reference"], ls=":", lw=1, label=f"1/L = {1 / cfg.rd_labels:.2f}"
    )
    axes[0].axhline(
        chance, color=PALETTE["other"], ls="--", lw=1, label=f"guess among labels in context = {chance:.2f}"
    )
    if jump["jumped"]:
        axes[0].axvspan(jump["t_lo"], jump["t_hi"], color=PALETTE["icl"], alpha=0.1)
    axes[0].set(
        xlabel="training step",
        ylabel="accuracy",
        ylim=(0, 1.02),
        title=f"Reddy task, K = ∞, B = {s_jump.B}, ε = {s_jump.eps:g}",
    )
    axes[0].legend(fontsize=8)
    axes[1].plot(
        ev["step"],
        ev["item_to_label_attn"],
        color=PALETTE["prev_token"],
        lw=2,
        label="layer 0: label → its item",
    )
    axes[1].plot(
        ev["step"],
        ev["query_to_label_attn"],
        color=PALETTE["induction"],
        lw=2,
        label="layer 1: query → labels of its class",
    )
    axes[1].set(
        xlabel="training step", ylabel="attention", ylim=(0, 1.02), title="Attention progress measures"
    )
    axes[1].legend(fontsize=8)
    return fig


def reddy_burstiness_figure(cfg: Config, results: Results) -> plt.Figure | None:
    """The burstiness runs: ICL and IWL accuracy through training (left) and at the end (right)."""
    runs = results.reddy["burstiness"]
    if not runs:
        not_run("Reddy's burstiness runs")
        return None
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    shades = plt.cm.viridis(np.linspace(0.1, 0.85, len(runs)))
    for (s, hist), color in zip(runs, shades):
        ev = hist.eval_frame()
        axes[0].plot(ev["step"], ev["icl_acc"], color=color, lw=2, label=f"B = {s.B}: ICL (novel classes)")
        axes[0].plot(
            ev["step"], ev["iwl_acc"], color=color, lw=2, ls="--", label=f"B = {s.B}: IWL (training classes)"
        )
    axes[0].set(
        xlabel="training step", ylabel="accuracy", ylim=(0, 1.02), title=f"K = {cfg.rd_classes} classes"
    )
    axes[0].legend(fontsize=8)
    final_accuracies(runs, "B").set_index("B").plot.bar(
        ax=axes[1], color=[PALETTE["icl"], PALETTE["iwl"]], rot=0
    )
    axes[1].set(ylabel="final accuracy", ylim=(0, 1.02), title="Burstiness B trades IWL for ICL")
    return fig


def reddy_sweeps_figure(results: Results) -> plt.Figure | None:
    """The K and eps sweeps: final ICL and IWL accuracy against the swept value, one panel per sweep."""
    sweeps = {g: runs for g, runs in results.reddy.items() if g in ("classes", "eps") and runs}
    if not sweeps:
        not_run("Reddy's K and eps sweeps")
        return None
    fig, axes = plt.subplots(1, len(sweeps), figsize=(5.5 * len(sweeps), 3.8), squeeze=False)
    for ax, (group, runs) in zip(axes[0], sweeps.items()):
        var = "K" if group == "classes" else "eps"
        finals = final_accuracies(runs, var)
        for metric, key in (("ICL", "icl"), ("IWL", "iwl")):
            ax.plot(finals[var], finals[metric], "o-", color=PALETTE[key], label=metric)
        first = runs[0][0]
        ax.set(
            xlabel="classes K" if group == "classes" else "noise ε",
            ylabel="final accuracy",
            ylim=(0, 1.02),
            xscale="log" if group == "classes" else "linear",
            title=f"B = {first.B}" + (f", eps = {first.eps:g}" if group == "classes" else f", K = {first.K}"),
        )
        ax.legend()
    return fig
