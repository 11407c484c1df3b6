"""One plotting style and one palette for every study, small plotting helpers, ``savefig`` with a JSON
provenance sidecar and the figure's data as a tidy CSV, and ``explore`` for interactive controls.

``savefig(fig, study, name, provenance)`` writes ``figures/<study>/<name>.png`` and ``<name>.json`` (study,
preset, config, seed, git sha, package versions, device, wall time) atomically, as pyprobml's ``savefig`` and
minGPT's ``config.json`` do: every committed figure says exactly what produced it. Beside them, ``<name>.csv``
holds what the axes draw, one row per point (:func:`figure_frame`), so a figure can be re-plotted without rerunning
the study (``phenomena.results.frame("figures")`` reads them all).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.collections import Collection, LineCollection, PathCollection, PolyCollection, QuadMesh
from matplotlib.container import BarContainer
from matplotlib.ticker import MaxNLocator

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
    "recency": "#9467bd",
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
    """Write ``fig`` to ``figures/<study>/<name>.png`` plus a ``.json`` sidecar and the drawn data as ``.csv``
    (:func:`figure_frame`, with the provenance's preset and seed on every row); return the PNG path."""
    if not _NAME.match(name):
        raise ValueError(f"figure name {name!r} must be lowercase letters, digits, '_' or '-'")
    out = figures_dir(study) / f"{name}.png"
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    meta = {"study": study, "figure": name, **(provenance or {})}
    write_json(out.with_suffix(".json"), meta)
    table = figure_frame(fig)
    ids = {"study": study, "figure": name, "preset": meta.get("preset"), "seed": meta.get("seed")}
    for i, (key, value) in enumerate(ids.items()):
        table.insert(i, key, value if not isinstance(value, list | dict) else str(value))
    with atomic_path(out.with_suffix(".csv")) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    return out


#: The columns of a figure's CSV after its identifiers (study, figure, preset, seed): which panel (axes index,
#: title, axis labels), which artist (kind, legend label or "", index on its axes), which point of it, and x, y
#: (a line's or bar's or marker's position; a cell's column and row for images and heatmaps, with ``value``).
FRAME_COLUMNS = ("panel", "title", "xlabel", "ylabel", "kind", "series", "artist", "point", "x", "y", "value")


def figure_frame(fig: plt.Figure) -> pd.DataFrame:
    """The data a figure draws, in long format (:data:`FRAME_COLUMNS`): every line and marker point, bar, band
    vertex, line segment vertex and image or heatmap cell of every data axes (colour bars are left out)."""
    rows: list[tuple[Any, ...]] = []
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    for p, ax in enumerate(panels):
        head = (p, ax.get_title() or ax.get_title("left"), ax.get_xlabel(), ax.get_ylabel())
        for a, (kind, label, points) in enumerate(_artists(ax)):
            series = "" if label.startswith("_") else label
            rows += [(*head, kind, series, a, i, x, y, v) for i, (x, y, v) in enumerate(points)]
    return pd.DataFrame(rows, columns=list(FRAME_COLUMNS))


Points = Iterator[tuple[Any, Any, float | None]]


def _artists(ax: plt.Axes) -> Iterator[tuple[str, str, Points]]:
    """(kind, label, points) for each data artist of ``ax``, in drawing order."""
    for line in ax.lines:
        xs, ys = np.atleast_1d(line.get_xdata(orig=True)), np.atleast_1d(line.get_ydata(orig=True))
        yield "line", str(line.get_label()), ((_py(x), _py(y), None) for x, y in zip(xs, ys))
    for bars in ax.containers:
        if isinstance(bars, BarContainer):
            yield "bar", str(bars.get_label()), _bars(ax, bars)
    for coll in ax.collections:
        yield from _collection(coll)
    for image in ax.images:
        yield "image", str(image.get_label()), _cells(np.asarray(image.get_array()))


def _collection(coll: Collection) -> Iterator[tuple[str, str, Points]]:
    label = str(coll.get_label())
    if isinstance(coll, QuadMesh):
        yield "heatmap", label, _cells(_mesh(coll))
    elif isinstance(coll, PathCollection):
        values = coll.get_array()
        pts = np.asarray(coll.get_offsets())
        vals = [None] * len(pts) if values is None else [float(v) for v in np.ravel(values)]
        yield "scatter", label, ((float(x), float(y), v) for (x, y), v in zip(pts, vals))
    elif isinstance(coll, LineCollection | PolyCollection):
        kind = "segments" if isinstance(coll, LineCollection) else "band"
        verts = [v for path in coll.get_paths() for v in np.asarray(path.vertices)]
        yield kind, label, ((float(x), float(y), None) for x, y in verts)


def _bars(ax: plt.Axes, bars: BarContainer) -> Points:
    """Each bar as (position, length): x the centre and y the top of a vertical bar, the reverse of a horizontal
    one. A position with a tick label (a category: pandas' and seaborn's bar plots) is given as that label."""
    horizontal = getattr(bars, "orientation", "vertical") == "horizontal"
    ticks = ax.get_yticklabels() if horizontal else ax.get_xticklabels()
    names = {round(t.get_position()[1 if horizontal else 0], 6): t.get_text() for t in ticks if _category(t)}
    for r in bars.patches:
        if horizontal:
            cy = r.get_y() + r.get_height() / 2
            yield r.get_x() + r.get_width(), names.get(round(cy, 6), cy), None
        else:
            cx = r.get_x() + r.get_width() / 2
            yield names.get(round(cx, 6), cx), r.get_y() + r.get_height(), None


def _category(tick: Any) -> bool:
    """Whether a tick label names a category (not a number, not mathtext)."""
    text = tick.get_text()
    try:
        float(text.replace("\u2212", "-"))
    except ValueError:
        return bool(text) and not text.startswith("$")
    return False


def _mesh(mesh: QuadMesh) -> np.ndarray:
    """A heatmap's values as (rows, columns)."""
    ny, nx = (n - 1 for n in mesh.get_coordinates().shape[:2])
    return np.asarray(mesh.get_array(), dtype=float).reshape(ny, nx)


def _cells(values: np.ndarray) -> Points:
    """An image's cells: (column, row, value); RGB(A) images give their first channel."""
    grid = values[..., 0] if values.ndim == 3 else values
    return ((c, r, float(grid[r, c])) for r in range(grid.shape[0]) for c in range(grid.shape[1]))


def _py(v: Any) -> Any:
    """A plain Python value for a CSV cell (categorical strings stay strings)."""
    return v.item() if isinstance(v, np.generic) else v


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


def count_axis(ax: plt.Axes, axis: str = "y") -> None:
    """Make ``axis`` ('x' or 'y') of ``ax`` an axis of counts: linear, integer ticks, starting at 0 and reaching at
    least 1 (so all-zero counts read as zeros, not as a float axis around 0)."""
    if axis not in ("x", "y"):
        raise ValueError(f"axis={axis!r}: expected 'x' or 'y'")
    target = ax.yaxis if axis == "y" else ax.xaxis
    (ax.set_yscale if axis == "y" else ax.set_xscale)("linear")
    target.set_major_locator(MaxNLocator(integer=True))
    hi = (ax.get_ylim() if axis == "y" else ax.get_xlim())[1]
    (ax.set_ylim if axis == "y" else ax.set_xlim)(0, max(hi, 1))


def pool_size_axis(ax: plt.Axes, sizes: Sequence[int]) -> np.ndarray:
    """Positions for task-pool sizes M on a log2 axis, with M = 0 (infinite) drawn one step right of the largest
    finite M and labelled '∞'. Returns the x positions in the order of ``sizes``."""
    finite = [m for m in sizes if m > 0]
    top = np.log2(max(finite)) + 2 if finite else 0.0
    xs = np.array([np.log2(m) if m > 0 else top for m in sizes], dtype=float)
    ax.set_xticks(xs, [f"$2^{{{int(np.log2(m))}}}$" if m > 0 else "∞" for m in sizes])
    return xs


def static_reason() -> str | None:
    """Why no one can move an explorer's controls in this run, or ``None`` when a live frontend runs the cell.

    Batch executors (papermill and ``jupyter nbconvert --execute`` through nbclient, nbval) send their execute requests
    with ``allow_stdin`` false, because nobody is there to answer; JupyterLab, Notebook, VS Code and the console
    send it true. That flag is the kernel's own record of who asked, so no environment variable is needed.
    ``PHENOMENA_HEADLESS=1`` still forces the static drawing."""
    if os.environ.get(HEADLESS_ENV):
        return f"{HEADLESS_ENV} is set"
    try:
        from IPython import get_ipython
    except ImportError:
        return "not in IPython"
    kernel = getattr(get_ipython(), "kernel", None)
    if kernel is None:
        return "not in a Jupyter kernel"
    parent = kernel.get_parent() or {}
    if not parent.get("content", {}).get("allow_stdin", False):
        return "run by a batch executor (papermill, nbconvert, nbval), which cannot move a control"
    try:
        import ipywidgets  # noqa: F401  # optional: only an interactive session needs it
    except ImportError:
        return "ipywidgets is not installed"
    return None


def explore(show: Callable[..., None], **controls: Any) -> None:
    """Interactive controls for ``show`` when a person can move them: a ``(min, max[, step])`` tuple is a slider
    starting at ``show``'s default, a list a drop-down (``ipywidgets.interactive``); sliders redraw when released,
    and each redraw replaces the plot. Without a live frontend (:func:`static_reason`: papermill, nbconvert, nbval,
    ``PHENOMENA_HEADLESS``, no ipywidgets) ``show`` draws its defaults once and no widget is made, so nothing can
    wait on a widget frontend that never answers (jupyter/nbclient#312)."""
    reason = static_reason()
    if reason is not None:
        show()
        return
    import ipywidgets
    from IPython.display import display

    panel = ipywidgets.interactive(show, **controls)
    for control in panel.kwargs_widgets:
        if hasattr(control, "continuous_update"):
            control.continuous_update = False  # one redraw per move, not one per pixel dragged
    display(panel)


#: what a notebook shows where its tier does not run a panel (the quick tier; `preset="full"` runs every panel)
NOT_RUN = "not run at this tier: preset='full' runs it"


def not_run(what: str) -> None:
    """Say in the notebook's output that the panel ``what`` is not run at this tier."""
    print(f"{what}: {NOT_RUN}.")


def not_run_on(ax: plt.Axes, what: str) -> None:
    """Write the not-run note in the axes ``ax`` instead of a panel."""
    ax.text(0.5, 0.5, f"{what}:\n{NOT_RUN}", ha="center", va="center", transform=ax.transAxes, fontsize=9)
    ax.set_axis_off()
