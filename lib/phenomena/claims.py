"""Claims: the paper's number beside ours, with a pass/fail threshold, written to ``data/results/<study>.json``.

Each notebook ends by building a list of :class:`Claim` records and calling :func:`check`, which writes the
results file (atomically) and raises :class:`ClaimFailed` if any claim fails -- so a failed claim fails the
notebook, ``make figures`` and ``make test``. At the ``smoke`` preset the claims are recorded but not enforced;
only that every number is finite is checked (smoke runs are too short to show a phenomenon).

The results file has one shape for every study::

    {"study": str, "preset": str, "seed": int, "wall_time_s": float,
     "claims": [{"id", "statement", "paper", "ours", "threshold", "passed"}], "metrics": {...}}
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from phenomena.paths import results_path, write_json


class ClaimFailed(AssertionError):
    """Raised when one or more claims fail at an enforcing preset."""


@dataclass(frozen=True)
class Claim:
    """One checked statement. ``ours`` is what we measured; ``paper`` is the paper's number or wording."""

    id: str
    statement: str
    paper: str | float
    ours: float | str
    threshold: str
    passed: bool

    @classmethod
    def below(cls, id: str, statement: str, paper: str | float, ours: float, bound: float) -> Claim:
        """Passes when ``ours < bound``."""
        ours = float(ours)
        return cls(id, statement, paper, ours, f"< {bound:g}", bool(math.isfinite(ours) and ours < bound))

    @classmethod
    def above(cls, id: str, statement: str, paper: str | float, ours: float, bound: float) -> Claim:
        """Passes when ``ours > bound``."""
        ours = float(ours)
        return cls(id, statement, paper, ours, f"> {bound:g}", bool(math.isfinite(ours) and ours > bound))

    @classmethod
    def between(cls, id: str, statement: str, paper: str | float, ours: float, lo: float, hi: float) -> Claim:
        """Passes when ``lo <= ours <= hi``."""
        ours = float(ours)
        return cls(id, statement, paper, ours, f"in [{lo:g}, {hi:g}]", bool(lo <= ours <= hi))

    def row(self) -> str:
        ours = f"{self.ours:.4g}" if isinstance(self.ours, float) else str(self.ours)
        mark = "PASS" if self.passed else "FAIL"
        return f"{mark}  {self.id:<28} ours {ours:<10} {self.threshold:<16} paper: {self.paper}"


def _finite(obj: Any) -> bool:
    if isinstance(obj, dict):
        return all(_finite(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return all(_finite(v) for v in obj)
    if isinstance(obj, float):
        return math.isfinite(obj)
    return True


def check(
    study: str,
    claims: list[Claim],
    *,
    preset: str,
    seed: int,
    wall_time_s: float,
    metrics: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``data/results/<study>.json``; raise :class:`ClaimFailed` if a claim fails (not at ``smoke``).

    Returns the path written. At every preset, a non-finite number in ``ours`` or ``metrics`` raises.
    """
    if not claims:
        raise ValueError("check() needs at least one claim")
    ids = [c.id for c in claims]
    if len(set(ids)) != len(ids):
        raise ValueError(f"claim ids must be unique, got {ids}")
    record = {
        "study": study,
        "preset": preset,
        "seed": seed,
        "wall_time_s": round(float(wall_time_s), 1),
        "claims": [asdict(c) for c in claims],
        "metrics": metrics or {},
        **(extra or {}),
    }
    path = write_json(results_path(study), record)
    print("\n".join(c.row() for c in claims))
    if not _finite([c.ours for c in claims]) or not _finite(metrics or {}):
        raise ClaimFailed(f"{study}: a claim or metric is not finite (NaN/inf) -- see {path}")
    failed = [c.id for c in claims if not c.passed]
    if failed and preset != "smoke":
        raise ClaimFailed(f"{study} ({preset}): {len(failed)} claim(s) failed: {failed} -- see {path}")
    return path
