"""One plotting style for every study, and ``savefig`` with a JSON provenance sidecar.

``savefig(fig, study, name, provenance)`` writes ``figures/<study>/<name>.png`` and ``<name>.json`` (study,
preset, config, seed, git sha, package versions, device, wall time) atomically, as pyprobml's ``savefig`` and
minGPT's ``config.json`` do: every committed figure says exactly what produced it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import seaborn as sns

from phenomena.paths import atomic_path, figures_dir, write_json

_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")

#: Colours of the learners and methods that recur across studies, so a reader learns them once.
PALETTE: dict[str, str] = {
    "transformer": "#d62728",
    "ols": "#1f77b4",
    "ridge": "#17becf",
    "gd": "#9467bd",
    "knn": "#8c564b",
    "averaging": "#7f7f7f",
    "dmmse": "#ff7f0e",
    "zero": "#bbbbbb",
}


def style() -> None:
    """Apply the collection's style: seaborn ticks, readable font sizes, constrained layout, 120 dpi."""
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
