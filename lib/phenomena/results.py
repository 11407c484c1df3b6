"""Tidy results for re-plotting: the claims of every study, every sweep over seeds and every figure's data as one
long-format ``pandas.DataFrame`` each.

    from phenomena import results
    sweeps = results.frame("sweeps")  # one row per study, preset, claim and seed
    sweeps.groupby(["study", "claim"]).value.agg(["mean", "std"])

What each kind reads, under the output root (the repository, or ``PHENOMENA_OUT``):

* ``"claims"``: ``data/results/<study>.json`` (a study's seed-0 run): one row per study, preset, seed and claim.
* ``"sweeps"``: ``data/sweeps/<study>-<tag>.csv``, written beside each over-seeds summary by ``make sweep`` /
  ``phenomena aggregate`` (:func:`sweep_frame`; a summary without its CSV is read from the JSON): one row per
  study, preset, tag, claim and seed, with the claim's mean, 95% interval and verdict over the seeds repeated.
* ``"figures"``: ``figures/<study>/<name>.csv``, written beside each PNG by :func:`phenomena.figures.savefig`:
  one row per drawn point (:data:`phenomena.figures.FRAME_COLUMNS`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from phenomena.claims import passes
from phenomena.paths import output_root

KINDS = ("claims", "sweeps", "figures")
CLAIM_COLUMNS = (
    "study", "preset", "seed", "claim", "kind", "statement", "paper", "value", "ours", "threshold", "passed",
    "outcome", "expect",
)  # fmt: skip
SWEEP_COLUMNS = (
    "study", "preset", "tag", "claim", "kind", "seed", "value", "passed", "mean", "lo", "hi", "n", "n_pass",
    "verdict", "expect", "threshold", "paper", "statement",
)  # fmt: skip


def frame(kind: str = "sweeps", *, study: str | None = None, root: Path | str | None = None) -> pd.DataFrame:
    """Every ``kind`` (``"claims"``, ``"sweeps"`` or ``"figures"``) result under ``root`` as one long DataFrame,
    optionally of one ``study`` only. An empty frame (with its columns) when there is nothing to read."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    base = Path(root) if root is not None else output_root()
    parts = {"claims": _claims, "sweeps": _sweeps, "figures": _figures}[kind](base, study or "*")
    columns = {"claims": CLAIM_COLUMNS, "sweeps": SWEEP_COLUMNS, "figures": ()}[kind]
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=list(columns) or ["study", "figure"])
    return pd.concat(parts, ignore_index=True)


def number(value: Any) -> float | None:
    """A claim's number, or None where it is a text ("not evaluated: ...") or undefined."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def claim_frame(record: dict[str, Any]) -> pd.DataFrame:
    """A results record (``data/results/<study>.json``) as one row per claim."""
    rows = [
        {
            "study": record["study"],
            "preset": record.get("preset"),
            "seed": record.get("seed"),
            "claim": c["id"],
            "kind": c.get("kind", "claim"),
            "statement": c.get("statement"),
            "paper": str(c.get("paper")),
            "value": number(c.get("ours")),
            "ours": str(c.get("ours")),
            "threshold": c.get("threshold"),
            "passed": c.get("passed"),
            "outcome": c.get("outcome"),
            "expect": c.get("expect", "holds"),
        }
        for c in record["claims"]
    ]
    return pd.DataFrame(rows, columns=list(CLAIM_COLUMNS))


def sweep_frame(summary: dict[str, Any]) -> pd.DataFrame:
    """An over-seeds summary (``data/sweeps/<study>-<tag>.json``) as one row per claim and seed; ``passed`` is
    each seed's value judged against the claim's threshold (None where the value is undefined)."""
    rows = []
    for c in summary["claims"]:
        judged = c.get("op") is not None and c.get("bound") is not None
        for seed, value in zip(c["seeds"], c["values"]):
            rows.append(
                {
                    "study": summary["study"],
                    "preset": summary["preset"],
                    "tag": summary.get("tag", summary["preset"]),
                    "claim": c["id"],
                    "kind": c.get("kind", "claim"),
                    "seed": seed,
                    "value": value,
                    "passed": passes(c["op"], c["bound"], value) if judged and value is not None else None,
                    **{k: c.get(k) for k in ("mean", "lo", "hi", "n", "n_pass", "verdict", "expect")},
                    "threshold": c.get("threshold"),
                    "paper": str(c.get("paper")),
                    "statement": c.get("statement"),
                }
            )
    return pd.DataFrame(rows, columns=list(SWEEP_COLUMNS))


def _claims(root: Path, study: str) -> list[pd.DataFrame]:
    paths = sorted((root / "data" / "results").glob(f"{study}.json"))
    return [claim_frame(json.loads(p.read_text())) for p in paths]


def _sweeps(root: Path, study: str) -> list[pd.DataFrame]:
    out = []
    for summary in sorted((root / "data" / "sweeps").glob(f"{study}-*.json")):
        table = summary.with_suffix(".csv")
        if table.exists():
            out.append(pd.read_csv(table, keep_default_na=True))
        else:
            out.append(sweep_frame(json.loads(summary.read_text())))
    return out


def _figures(root: Path, study: str) -> list[pd.DataFrame]:
    paths = sorted((root / "figures").glob(f"{study}/*.csv"))
    return [pd.read_csv(p, low_memory=False) for p in paths]
