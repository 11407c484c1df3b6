"""The dashboard's data: one row per claim (the single run's, or over seeds where a sweep summary exists), the
per-study summary lines and provenance, and the loading of every input with the command that makes it."""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phenomena.claims import NOT_EVALUATED, did_not_reproduce, post_hoc_text, threshold_text

TEMPLATES = Path(__file__).resolve().parent / "templates"
NBCONVERT_TEMPLATE = "phenomena_study"
SITE_MARKER = ".phenomena-site"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
MAKE_FIGURES = "make figures"
MAKE_SWEEP = "make sweep"


class MissingInput(FileNotFoundError):
    """An input of the report does not exist; the message names the command that makes it."""


# ---------------------------------------------------------------------------------------------------------------
# The dashboard's data: rows, summaries, provenance
# ---------------------------------------------------------------------------------------------------------------

#: How a row's verdict compares with its expectation, in the order of the summary line: (singular, plural).
STATUS_WORDS: dict[str, tuple[str, str]] = {
    "holds": ("holds", "hold"),
    "fails as expected": ("fails as expected", "fail as expected"),
    "fails (expected to hold)": ("fails (expected to hold)", "fail (expected to hold)"),
    "holds (expected to fail)": ("holds (expected to fail)", "hold (expected to fail)"),
    "unclear": ("unclear", "unclear"),
    NOT_EVALUATED: (NOT_EVALUATED, NOT_EVALUATED),
}
SANITY_WORDS: dict[str, tuple[str, str]] = {
    "holds": ("passes", "pass"),
    "fails": ("fails", "fail"),
    "unclear": ("unclear", "unclear"),
    NOT_EVALUATED: (NOT_EVALUATED, NOT_EVALUATED),
}


def fmt_number(value: Any) -> str:
    """A number as the dashboard shows it: 3 significant digits; ``None`` (a non-finite result) is "undefined"."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "undefined"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return f"{value:.3g}"
    return str(value)


def fmt_interval(mean: Any, lo: Any, hi: Any, n: Any, n_defined: Any = None) -> str:
    """``mean [lo, hi] (defined/n)``, the sweep's 95% t-interval over the seeds that gave a number, out of all ``n``
    (without the interval when fewer than 2 did)."""
    count = f"{n if n_defined is None else n_defined}/{n}"
    if lo is None or hi is None:
        return f"{fmt_number(mean)} ({count})"
    return f"{fmt_number(mean)} [{fmt_number(lo)}, {fmt_number(hi)}] ({count})"


def counted(n: int, words: tuple[str, str]) -> str:
    """``"1 holds"`` / ``"7 hold"``."""
    return f"{n} {words[0] if n == 1 else words[1]}"


@dataclass(frozen=True)
class Row:
    """One row of the dashboard: a claim, control or sanity check, from the sweep summary or the single run."""

    id: str
    kind: str
    statement: str
    paper: str
    ours: str
    verdict: str  # holds | fails | unclear | not evaluated
    expect: str
    threshold: str
    evidence: str
    note: str
    over_seeds: bool
    null: str = ""  # the row under the study's null control and its oracle (data/controls/), "" where none
    oracle: str = ""
    post_hoc: str = ""  # "post hoc: registered -> now" where the row was judged under a later spec

    @property
    def status(self) -> str:
        """The verdict against the expectation: a key of :data:`STATUS_WORDS`."""
        if self.verdict == NOT_EVALUATED:
            return NOT_EVALUATED
        if self.verdict == "unclear" or self.expect == "unclear":
            return "unclear"
        if self.verdict == self.expect:
            return "holds" if self.verdict == "holds" else "fails as expected"
        return "fails (expected to hold)" if self.verdict == "fails" else "holds (expected to fail)"

    @property
    def as_expected(self) -> bool:
        return self.status in ("holds", "fails as expected", "unclear", NOT_EVALUATED)

    def record(self) -> dict[str, Any]:
        """The row as a claims record, the shape :func:`phenomena.claims.did_not_reproduce` reads."""
        return {
            "id": self.id,
            "kind": self.kind,
            "statement": self.statement,
            "paper": self.paper,
            "ours": self.ours,
            "threshold": self.threshold,
            "outcome": self.verdict,
            "expect": self.expect,
            "note": self.note,
            "post_hoc_text": self.post_hoc,
        }


def outcome_of(claim: dict[str, Any]) -> str:
    """A single run's outcome; results files from before ``outcome`` existed have only ``passed``."""
    if claim.get("outcome"):
        return str(claim["outcome"])
    passed = claim.get("passed")
    return NOT_EVALUATED if passed is None else ("holds" if passed else "fails")


def _row(claim: dict[str, Any], ours: str, verdict: str, note: str, over_seeds: bool) -> Row:
    """The fields every row takes from its claim record, single run or sweep summary alike."""
    hoc = claim.get("post_hoc_text", "") if over_seeds else post_hoc_text(claim)
    return Row(
        post_hoc=str(hoc),
        id=str(claim["id"]),
        kind=str(claim.get("kind", "claim")),
        statement=str(claim.get("statement", "")),
        paper=fmt_number(claim.get("paper")),
        ours=ours,
        verdict=verdict,
        expect=str(claim.get("expect", "holds")),
        threshold=str(claim.get("threshold") or threshold_text(claim.get("op"), claim.get("bound"))),
        evidence=str(claim.get("evidence", "")),
        note=note,
        over_seeds=over_seeds,
    )


def run_row(claim: dict[str, Any]) -> Row:
    """A row from one claim record of ``data/results/<study>.json``."""
    verdict = outcome_of(claim)
    ours = fmt_number(claim.get("ours"))
    if verdict == NOT_EVALUATED and claim.get("note") and ours.startswith(NOT_EVALUATED):
        ours = "\u2014"  # the reason is the row's note
    return _row(claim, ours, verdict, str(claim.get("note", "")), over_seeds=False)


def sweep_row(claim: dict[str, Any], single: dict[str, Any] | None) -> Row:
    """A row from one claim of ``data/sweeps/<study>-<preset>.json`` (the note comes from the single run)."""
    verdict = str(claim.get("verdict", NOT_EVALUATED))
    if verdict == NOT_EVALUATED:
        ours = "\u2014"
    else:
        ours = fmt_interval(
            claim.get("mean"), claim.get("lo"), claim.get("hi"), claim.get("n"), claim.get("n_defined")
        )
    return _row(claim, ours, verdict, str((single or {}).get("note", "")), over_seeds=True)


def dashboard_rows(
    record: dict[str, Any], sweep: dict[str, Any] | None, controls: dict[str, Any] | None = None
) -> list[Row]:
    """Every row of a study, in the results file's order: from the sweep summary where it has the claim, else
    from the single run; claims only in the sweep summary come last. ``controls`` (``data/controls/<study>.json``)
    adds each row's value under the null control and the oracle."""
    single = {c["id"]: c for c in record["claims"]}
    swept = {c["id"]: c for c in (sweep or {}).get("claims", [])}
    rows = [sweep_row(swept[i], c) if i in swept else run_row(c) for i, c in single.items()]
    rows += [sweep_row(c, None) for i, c in swept.items() if i not in single]
    preset = str(record.get("preset", "quick"))
    judged = (controls or {}).get("rows", {})
    by_id = {
        r["id"]: r for r in judged.get(preset) or judged.get("full", [])
    }  # the tiers share full's thresholds
    return [
        dataclasses.replace(
            row,
            null=f"{fmt_number(by_id[row.id]['null'])} ({by_id[row.id]['null_outcome']})",
            oracle=f"{fmt_number(by_id[row.id]['oracle'])} ({by_id[row.id]['oracle_outcome']})",
        )
        if row.id in by_id
        else row
        for row in rows
    ]


def summary_line(rows: Sequence[Row]) -> str:
    """E.g. ``"7 claims and 2 controls: 5 hold, 1 fails as expected, 1 unclear, 2 not evaluated"``."""
    kinds = Counter(r.kind for r in rows if r.kind != "sanity")
    if not kinds:
        return "no claims"
    what = " and ".join(counted(kinds[k], (k, f"{k}s")) for k in ("claim", "control") if kinds[k])
    statuses = Counter(r.status for r in rows if r.kind != "sanity")
    parts = [counted(statuses[s], words) for s, words in STATUS_WORDS.items() if statuses[s]]
    return f"{what}: {', '.join(parts)}"


def sanity_line(rows: Sequence[Row]) -> str:
    """E.g. ``"2 sanity checks: 1 passes, 1 fails"`` (kept apart: never counted as reproduced)."""
    checks = [r for r in rows if r.kind == "sanity"]
    if not checks:
        return ""
    verdicts = Counter(r.verdict for r in checks)
    parts = [counted(verdicts[v], words) for v, words in SANITY_WORDS.items() if verdicts[v]]
    return f"{counted(len(checks), ('sanity check', 'sanity checks'))}: {', '.join(parts)}"


def seeds_text(seeds: Sequence[int]) -> str:
    """``[0, 1, 2, 3, 7]`` -> ``"0-3, 7"``."""
    runs: list[list[int]] = []
    for s in sorted(seeds):
        if runs and s == runs[-1][-1] + 1:
            runs[-1].append(s)
        else:
            runs.append([s])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def sha_text(sha: Any, dirty: Any) -> str:
    if not sha:
        return "unknown"
    return f"{str(sha)[:10]}{' (uncommitted changes)' if dirty else ''}"


def machine_text(obj: Any) -> str:
    """The machine a run used: its platform and device (a dict of them, or a sweep's string)."""
    if isinstance(obj, dict):
        return ", ".join(str(obj[k]) for k in ("platform", "device") if obj.get(k)) or "unknown"
    return str(obj) if obj else "unknown"


def run_provenance(record: dict[str, Any]) -> list[tuple[str, str]]:
    """The single run's provenance, as (label, text) pairs."""
    versions = record.get("versions") or {}
    items = [
        ("git sha", sha_text(record.get("git_sha"), record.get("git_dirty"))),
        ("preset", str(record.get("preset", "unknown"))),
        ("seed", str(record.get("seed", "unknown"))),
        ("date", str(record.get("date", "unknown"))),
        ("machine", machine_text(record)),
        ("wall time", f"{record['wall_time_s']:.1f} s" if "wall_time_s" in record else "unknown"),
        ("peak memory", f"{record['peak_rss_mb']:.0f} MiB" if record.get("peak_rss_mb") else "unknown"),
        ("python", str(record.get("python", "unknown"))),
        ("torch threads", str(record.get("torch_threads", "unknown"))),
        ("versions", ", ".join(f"{k} {v}" for k, v in versions.items()) or "unknown"),
    ]
    return items


def sweep_provenance(sweep: dict[str, Any]) -> list[tuple[str, str]]:
    """The sweep's provenance, as (label, text) pairs."""
    dates = sweep.get("dates") or []
    walls = sweep.get("wall_time_s") or {}
    return [
        ("git sha", sha_text(sweep.get("git_sha"), sweep.get("git_dirty"))),
        ("preset", str(sweep.get("preset", "unknown"))),
        ("seeds", seeds_text(sweep.get("seeds", []))),
        ("overrides", json.dumps(sweep.get("overrides") or {})),
        ("dates", " to ".join(str(d) for d in dates) or "unknown"),
        ("machine", machine_text(sweep.get("machine"))),
        ("wall time", f"{sum(walls.values()):.0f} s over {len(walls)} seeds" if walls else "unknown"),
    ]


@dataclass(frozen=True)
class Figure:
    """One figure of a study's gallery: its PNG (relative to the site) and its provenance sidecar."""

    name: str
    src: str
    sidecar: dict[str, Any] | None

    @property
    def provenance(self) -> list[tuple[str, str]]:
        if self.sidecar is None:
            return []
        s = self.sidecar
        return [
            ("preset", str(s.get("preset", "unknown"))),
            ("seed", str(s.get("seed", "unknown"))),
            ("git sha", sha_text(s.get("git_sha"), s.get("git_dirty"))),
            ("date", str(s.get("date", "unknown"))),
            ("machine", machine_text(s)),
            ("wall time", f"{s['wall_time_s']:.1f} s" if "wall_time_s" in s else "unknown"),
        ]

    @property
    def sidecar_json(self) -> str:
        return json.dumps(self.sidecar, indent=2)


@dataclass
class StudyReport:
    """Everything the site shows of one study, read from the output root."""

    name: str
    title: str
    record: dict[str, Any]
    sweep: dict[str, Any] | None
    sweep_path: str
    rows: list[Row]
    figures: list[Figure]
    notebook: Path | None
    notices: list[str] = field(default_factory=list)

    @property
    def page(self) -> str:
        return f"{self.name}.html"

    @property
    def claim_rows(self) -> list[Row]:
        return [r for r in self.rows if r.kind != "sanity"]

    @property
    def sanity_rows(self) -> list[Row]:
        return [r for r in self.rows if r.kind == "sanity"]

    @property
    def summary(self) -> str:
        return summary_line(self.rows)

    @property
    def sanity_summary(self) -> str:
        return sanity_line(self.rows)

    @property
    def departures(self) -> list[str]:
        return [str(d) for d in self.record.get("departures", [])]

    @property
    def did_not_reproduce(self) -> list[str]:
        """The rows that did not reproduce (departures are listed apart)."""
        return did_not_reproduce([r.record() for r in self.rows], [])

    @property
    def source(self) -> str:
        """Where the dashboard's numbers come from."""
        if self.sweep is None:
            return (
                f"single run (seed {self.record.get('seed', '?')}, preset {self.record.get('preset', '?')})"
            )
        seeds = self.sweep.get("seeds", [])
        return (
            f"over {len(seeds)} seeds ({seeds_text(seeds)}, preset {self.sweep.get('preset', '?')}): "
            "mean [95% t-interval] (n)"
        )

    @property
    def run_provenance(self) -> list[tuple[str, str]]:
        return run_provenance(self.record)

    @property
    def sweep_provenance(self) -> list[tuple[str, str]]:
        return sweep_provenance(self.sweep) if self.sweep is not None else []


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def find_sweep(root: Path, study: str, preset: str) -> Path | None:
    """The sweep summary of ``study``: at the single run's preset if there is one, else the full tier's (the
    committed sweep that judges every row), else the most recent."""
    for tier in (preset, "full"):
        exact = root / "data" / "sweeps" / f"{study}-{tier}.json"
        if exact.exists():
            return exact
    latest: list[tuple[str, Path]] = []
    for path in sorted((root / "data" / "sweeps").glob(f"{study}-*.json")):
        summary = read_json(path)
        if summary.get("study") == study:
            latest.append((str((summary.get("dates") or [""])[-1]), path))
    return max(latest)[1] if latest else None


def load_study(root: Path, study: str, title: str) -> StudyReport:
    """Read one study's inputs under ``root``; raise :class:`MissingInput` without a results file."""
    results = root / "data" / "results" / f"{study}.json"
    if not results.exists():
        raise MissingInput(
            f"{results} is missing: run `{MAKE_FIGURES}` (or `make study-{study}`) first; it writes the results, "
            f"the figures and the executed notebook that the report shows"
        )
    record = read_json(results)
    notices = []
    preset = str(record.get("preset", "quick"))
    sweep_path = find_sweep(root, study, preset)
    sweep = read_json(sweep_path) if sweep_path else None
    if sweep is None:
        notices.append(
            f"No sweep summary (data/sweeps/{study}-{preset}.json): the numbers are one run's. "
            f"Run `{MAKE_SWEEP}` for means and 95% intervals over seeds."
        )
    elif sweep.get("preset") != preset:
        notices.append(
            f"The sweep summary is at preset {sweep.get('preset')!r}, the single run (departures, notebook, "
            f"figures) at preset {preset!r}."
        )
    if (
        sweep is not None
        and sweep.get("source_hash")
        and sweep.get("source_hash") != record.get("source_hash")
    ):
        notices.append(
            "The sweep and the single run ran different code (their source hashes differ): "
            f"rerun `{MAKE_SWEEP}` or `{MAKE_FIGURES}`."
        )
    controls_path = root / "data" / "controls" / f"{study}.json"
    controls = read_json(controls_path) if controls_path.exists() else None
    pngs = sorted((root / "figures" / study).glob("*.png"))
    if not pngs:
        notices.append(f"figures/{study}/ has no figures: run `{MAKE_FIGURES}`.")
    figures = [
        Figure(
            name=p.stem,
            src=f"figures/{study}/{p.name}",
            sidecar=read_json(p.with_suffix(".json")) if p.with_suffix(".json").exists() else None,
        )
        for p in pngs
    ]
    notebook = root / "build" / f"{study}.ipynb"
    if not notebook.exists():
        notices.append(f"build/{study}.ipynb (the executed notebook) is missing: run `{MAKE_FIGURES}`.")
    return StudyReport(
        name=study,
        title=title,
        record=record,
        sweep=sweep,
        sweep_path=str(sweep_path.relative_to(root)) if sweep_path else "",
        rows=dashboard_rows(record, sweep, controls),
        figures=figures,
        notebook=notebook if notebook.exists() else None,
        notices=notices,
    )
