"""Null and oracle controls: every claim row shown able to fail and able to pass, through the real claims code.

A claims table is only worth reading if each row could have come out the other way. So every study package has a
``controls`` module with two metric dictionaries built through the study's own ``summarize`` (from a ``Results``
made by the study's own evaluation code wherever it exists):

- ``null(cfg)``: the study with its learning switched off -- an untrained model or a zero predictor, no rehearsal
  and no learning, W = W0. Every row of kind ``claim`` must *fail* under it.
- ``oracle(cfg)``: a model known to have the property -- least squares as the "transformer", a hand-built
  induction circuit, planted intruders, a perfect-memory learner. Every row of kind ``claim`` must *pass* under it,
  unless the module's ``ORACLE_CANNOT`` names the row with the reason the oracle cannot exercise it.

:func:`judge` runs the study's ``claims(cfg, metrics)`` on both, at each preset's thresholds (``full`` and
``paper``), and :func:`problems` lists every row that breaks the rule. ``make controls`` (``python -m
phenomena.controls``) writes ``data/controls/<study>.json`` -- per row the null's and the oracle's value and
outcome -- which the README table shows beside ours; ``tests/test_controls.py`` recomputes them in ``make test``
and fails on any problem or on a committed file that no longer matches the code.
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
import time
from dataclasses import asdict, dataclass
from types import ModuleType
from typing import Any

from phenomena import studies
from phenomena.claims import Claim
from phenomena.paths import output_root, repo_root, write_json

#: the presets whose thresholds the controls judge (smoke is never enforced)
PRESETS: tuple[str, ...] = ("full", "paper")
CONTROLS = ("data", "controls")  # under the repository (committed) or the output root (written)


@dataclass(frozen=True)
class RowControl:
    """One claims row under both controls at one preset's thresholds."""

    id: str
    kind: str
    threshold: str
    null: float | str | None
    null_outcome: str
    oracle: float | str | None
    oracle_outcome: str
    oracle_cannot: str = ""

    @property
    def problem(self) -> str:
        """Why this row breaks the rule ('' when it does not): a claim must fail its null and pass its oracle."""
        if self.kind != "claim":
            return ""
        out = []
        if self.null_outcome != "fails":
            out.append(f"the null does not fail it ({self.null_outcome}, value {fmt(self.null)})")
        if self.oracle_outcome != "holds" and not self.oracle_cannot:
            out.append(f"the oracle does not pass it ({self.oracle_outcome}, value {fmt(self.oracle)})")
        return "; ".join(out)


def fmt(value: Any) -> str:
    """A control's value as the tables show it."""
    if isinstance(value, float):
        return "NaN" if not math.isfinite(value) else f"{value:.3g}"
    return "undefined" if value is None else str(value)


def controls_module(study: str) -> ModuleType:
    """``phenomena.studies.<study>.controls``."""
    studies.load(study)  # validates the name
    return importlib.import_module(f"phenomena.studies.{study}.controls")


def judge(
    study: ModuleType, controls: ModuleType, cfg: Any, null: dict[str, Any], oracle: dict[str, Any]
) -> list[RowControl]:
    """Every row of ``study.claims`` under the null's and the oracle's metrics, at ``cfg``'s thresholds."""
    null_rows = {c.id: c for c in study.claims(cfg, null)}
    oracle_rows = {c.id: c for c in study.claims(cfg, oracle)}
    if null_rows.keys() != oracle_rows.keys():
        raise ValueError(
            f"the null and the oracle produced different rows: {sorted(null_rows.keys() ^ oracle_rows.keys())}"
        )
    cannot: dict[str, str] = getattr(controls, "ORACLE_CANNOT", {})
    unknown = sorted(set(cannot) - set(oracle_rows))
    if unknown:
        raise ValueError(f"ORACLE_CANNOT names rows that do not exist: {unknown}")
    out = []
    for cid, n in null_rows.items():
        o: Claim = oracle_rows[cid]
        out.append(
            RowControl(
                id=cid,
                kind=n.kind,
                threshold=n.threshold if n.evaluated else o.threshold,
                null=n.ours,
                null_outcome=n.outcome,
                oracle=o.ours,
                oracle_outcome=o.outcome,
                oracle_cannot=cannot.get(cid, ""),
            )
        )
    return out


def problems(rows: list[RowControl]) -> list[str]:
    """Every claim row that its null passes or its oracle fails (without a declared reason)."""
    return [f"{r.id}: {r.problem}" for r in rows if r.problem]


def run(study_name: str) -> dict[str, Any]:
    """Both controls of one study at every preset in :data:`PRESETS`: the record ``data/controls/<study>.json``
    holds (``rows`` per preset, the controls' descriptions, and ``problems``)."""
    study = studies.load(study_name)
    controls = controls_module(study_name)
    start = time.perf_counter()
    base = controls.config()
    null, oracle = controls.null(base), controls.oracle(base)
    by_preset = {}
    found = []
    for preset in PRESETS:
        rows = judge(study, controls, base.replace(preset=preset), null, oracle)
        by_preset[preset] = [asdict(r) | {"problem": r.problem} for r in rows]
        found += [f"{preset}: {p}" for p in problems(rows)]
    return {
        "study": study_name,
        "null": controls.NULL,
        "oracle": controls.ORACLE,
        "config": base.to_dict(),
        "rows": by_preset,
        "problems": found,
        "seconds": round(time.perf_counter() - start, 1),
    }


def table(record: dict[str, Any], preset: str = "full") -> str:
    """Plain-text table: row -> threshold, null value and outcome, oracle value and outcome."""
    lines = [
        f"{record['study']} ({preset} thresholds)",
        f"  null:   {record['null']}",
        f"  oracle: {record['oracle']}",
    ]
    rows = record["rows"][preset]
    # the threshold column fits its longest entry (a fail bound makes it long), so the null value never runs into it
    tw = max([16, *(len(r["threshold"]) + 2 for r in rows)])
    lines.append(f"  {'kind':<8}{'row':<40}{'threshold':<{tw}}{'null':<22}{'oracle':<22}")
    for r in rows:
        null = f"{fmt(r['null'])[:12]} {r['null_outcome']}"
        oracle = f"{fmt(r['oracle'])[:12]} {r['oracle_outcome']}"
        mark = (
            f"  <-- {r['problem']}"
            if r["problem"]
            else (f"  (oracle: {r['oracle_cannot']})" if r["oracle_cannot"] else "")
        )
        lines.append(f"  {r['kind']:<8}{r['id']:<40}{r['threshold']:<{tw}}{null:<22}{oracle:<22}{mark}")
    return "\n".join(lines)


def committed(study_name: str) -> dict[str, Any] | None:
    """The committed ``data/controls/<study>.json``, or None."""
    import json

    path = repo_root().joinpath(*CONTROLS, f"{study_name}.json")
    return json.loads(path.read_text()) if path.exists() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m phenomena.controls", description=__doc__.split("\n")[0])
    parser.add_argument("--study", default="all", help="all, or a study name (comma-separated)")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write data/controls/")
    args = parser.parse_args(argv)
    names = studies.names() if args.study == "all" else tuple(args.study.split(","))
    bad = 0
    for name in names:
        record = run(name)
        for preset in PRESETS:
            print(table(record, preset), end="\n\n")
        if record["problems"]:
            bad += 1
            print(f"{name}: {len(record['problems'])} problem(s):\n  " + "\n  ".join(record["problems"]))
        if not args.no_write:
            write_json(output_root().joinpath(*CONTROLS, f"{name}.json"), record)
        print(f"{name}: controls in {record['seconds']} s")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
