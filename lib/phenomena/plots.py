"""Small plotting helpers shared by the study notebooks (figures themselves are composed in the notebooks)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np

from phenomena.figures import PALETTE


def line_band(
    ax: plt.Axes,
    x: Sequence[float] | np.ndarray,
    mean: np.ndarray,
    lo: np.ndarray | None = None,
    hi: np.ndarray | None = None,
    *,
    label: str,
    color: str | None = None,
    **kw: object,
) -> None:
    """A line with an optional shaded band (e.g. a 90% bootstrap interval)."""
    color = color or PALETTE.get(label.split(" ")[0].lower())
    (line,) = ax.plot(x, mean, label=label, color=color, **kw)
    if lo is not None and hi is not None:
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)


def mark_x(ax: plt.Axes, x: float, text: str, **kw: object) -> None:
    """A dashed vertical marker with a label at the top of the axes."""
    ax.axvline(x, color="0.4", linestyle="--", linewidth=1, **kw)
    ax.annotate(text, (x, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -12),
                textcoords="offset points", fontsize=8, color="0.3")  # fmt: skip


def pool_size_axis(ax: plt.Axes, sizes: Sequence[int]) -> np.ndarray:
    """Positions for task-pool sizes M on a log2 axis, with M = 0 (infinite) drawn one step right of the
    largest finite M and labelled '∞'. Returns the x positions in the order of ``sizes``."""
    finite = [m for m in sizes if m > 0]
    top = np.log2(max(finite)) + 2 if finite else 0.0
    xs = np.array([np.log2(m) if m > 0 else top for m in sizes], dtype=float)
    ax.set_xticks(xs, [f"$2^{{{int(np.log2(m))}}}$" if m > 0 else "∞" for m in sizes])
    return xs
