"""One plotting style and one palette for every study, small plotting helpers, and ``savefig`` with a JSON
provenance sidecar.

``savefig(fig, study, name, provenance)`` writes ``figures/<study>/<name>.png`` and ``<name>.json`` (study,
preset, config, seed, git sha, package versions, device, wall time) atomically, as pyprobml's ``savefig`` and
minGPT's ``config.json`` do: every committed figure says exactly what produced it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from phenomena.paths import atomic_path, figures_dir, write_json

HEADLESS_ENV = "PHENOMENA_HEADLESS"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")

#: The colour of every learner, model, method and environment that recurs in the figures, so a reader learns
#: each once. Notebooks take colours from here, never as hex literals.
PALETTE: dict[str, str] = {
    # learners (ICL) and the trained model
    "transformer": "#d62728",
    "ols": "#1f77b4",
    "ridge": "#17becf",
    "gd": "#9467bd",
    "knn": "#8c564b",
    "averaging": "#7f7f7f",
    "dmmse": "#ff7f0e",
    "zero": "#bbbbbb",
    # induction heads
    "two_layer": "#d62728",
    "one_layer": "#1f77b4",
    "induction": "#2ca02c",
    "prev_token": "#9467bd",
    "shortcut": "#ff7f0e",
    "other": "#7f7f7f",
    "icl": "#d62728",
    "iwl": "#1f77b4",
    # fine-tuning
    "full": "#000000",
    "lora": "#1f77b4",
    "control": "#ff7f0e",
    "peft": "#2ca02c",
    # rehearsal environments
    "none": "#7f7f7f",
    "ewc": "#8c564b",
    "online_ewc": "#e377c2",
    "si": "#bcbd22",
    "exponential": "#17becf",
    "uniform": "#1f77b4",
    "powerlaw": "#d62728",
    "powerlaw_ewc": "#ff7f0e",
    "joint": "#2ca02c",
    # references drawn on many axes
    "reference": "#999999",
}


def style() -> None:
    """Apply the collection's style: seaborn ticks, readable font sizes, constrained layout; 110 dpi on screen,
    130 dpi in the saved PNGs."""
    sns.set_theme(context="notebook", style="ticks", font_scale=0.95)
    mpl.rcParams.update(
        {
            "figure.dpi": 110,
            "savefig.dpi": 130,
            "figure.constrained_layout.use": True,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "legend.frameon": False,
            "image.cmap": "viridis",
        }
    )


def savefig(fig: plt.Figure, study: str, name: str, provenance: dict[str, Any] | None = None) -> Path:
    """Write ``fig`` to ``figures/<study>/<name>.png`` plus a ``.json`` sidecar; return the PNG path."""
    if not _NAME.match(name):
        raise ValueError(f"figure name {name!r} must be lowercase letters, digits, '_' or '-'")
    out = figures_dir(study) / f"{name}.png"
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    write_json(out.with_suffix(".json"), {"study": study, "figure": name, **(provenance or {})})
    return out


def line_band(
    ax: plt.Axes,
    x: Sequence[float] | np.ndarray,
    mean: np.ndarray,
    lo: np.ndarray | None = None,
    hi: np.ndarray | None = None,
    *,
    label: str,
    color: str | None = None,
    **kw: Any,
) -> None:
    """A line with an optional shaded band (e.g. a 90% bootstrap interval or a seed range)."""
    (line,) = ax.plot(x, mean, label=label, color=color, **kw)
    if lo is not None and hi is not None:
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)


def mark_x(ax: plt.Axes, x: float, text: str, **kw: Any) -> None:
    """A dashed vertical marker with a label at the top of the axes."""
    ax.axvline(x, color="0.4", linestyle="--", linewidth=1, **kw)
    ax.annotate(
        text,
        (x, 1.0),
        xycoords=("data", "axes fraction"),
        xytext=(3, -12),
        textcoords="offset points",
        fontsize=8,
        color="0.3",
    )


def pool_size_axis(ax: plt.Axes, sizes: Sequence[int]) -> np.ndarray:
    """Positions for task-pool sizes M on a log2 axis, with M = 0 (infinite) drawn one step right of the largest
    finite M and labelled '∞'. Returns the x positions in the order of ``sizes``."""
    finite = [m for m in sizes if m > 0]
    top = np.log2(max(finite)) + 2 if finite else 0.0
    xs = np.array([np.log2(m) if m > 0 else top for m in sizes], dtype=float)
    ax.set_xticks(xs, [f"$2^{{{int(np.log2(m))}}}$" if m > 0 else "∞" for m in sizes])
    return xs


def explore(show: Callable[..., None], **controls: Any) -> None:
    """Interactive controls for ``show`` in Jupyter (``ipywidgets.interact(show, **controls)``: a ``(min, max[, step])``
    tuple is a slider starting at ``show``'s default, a list a drop-down). Headless runs -- ``PHENOMENA_HEADLESS=1``,
    set by ``make figures``, ``make test`` and the sweeps -- and environments without ipywidgets draw the defaults
    once instead: ``interact`` would wait for a widget frontend that never answers (jupyter/nbclient#312)."""
    if os.environ.get(HEADLESS_ENV):
        show()
        return
    try:
        import ipywidgets  # optional: only an interactive session needs it
    except ImportError:
        show()
        return
    ipywidgets.interact(show, **controls)
