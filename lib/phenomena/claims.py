"""Claims: the paper's number beside ours, with the threshold that decides, written to ``data/results/<study>.json``.

A claims table is only worth reading if every row could have come out the other way, so each row says what kind of
statement it is and what we expect of it:

- ``kind``: ``claim`` (a statement of the paper that our run could contradict), ``control`` (an experimental control
  the paper uses, e.g. a 1-layer model; its expected outcome is the statement) or ``sanity`` (true by construction,
  e.g. the loss at initialisation is ln V: asserted, shown apart, never counted as a reproduced claim);
- ``expect``: ``holds``, ``fails`` (a documented non-reproduction, kept as a regression test) or ``unclear`` (over
  seeds the interval straddles the threshold: a single run may land on either side; only the sweep judges it);
- ``evidence``: where the threshold comes from (the paper, or which seeds were in view when it was set).

A row whose inputs the configuration removed (one task pool, a single burstiness, ...) is kept as *not evaluated*
with its reason instead of vanishing. :func:`check` writes the results file (atomically) and raises
:class:`ClaimFailed` when a row's outcome differs from its expectation *in either direction* -- a claim we expected
to fail that now holds is as much a change as the reverse. At the ``smoke`` preset nothing is enforced; only that
every evaluated number is finite (or explained) is checked. ``PHENOMENA_CLAIMS=record`` records without raising
(the sweep runner judges claims over seeds instead).

The results file has one shape for every study::

    {"study", "preset", "seed", "wall_time_s", "claims": [{"id", "kind", "statement", "paper", "ours", "op",
     "bound", "threshold", "passed", "outcome", "expect", "evidence", "note"}], "departures": [str], "metrics": {...}}
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

from phenomena.paths import results_path, write_json

Kind = Literal["claim", "control", "sanity"]
Expect = Literal["holds", "fails", "unclear"]
Op = Literal["<", ">", "in"]
KINDS: tuple[str, ...] = ("claim", "control", "sanity")
EXPECTS: tuple[str, ...] = ("holds", "fails", "unclear")
NOT_EVALUATED = "not evaluated"
CLAIMS_ENV = "PHENOMENA_CLAIMS"


class ClaimFailed(AssertionError):
    """Raised when a claim's outcome differs from its expectation at an enforcing preset."""


@dataclass(frozen=True)
class Threshold:
    """A threshold and the evidence it was set from (the paper, or the seeds that were in view)."""

    value: float | tuple[float, float]
    evidence: str


def passes(op: str, bound: float | Sequence[float], value: float) -> bool:
    """Whether ``value`` satisfies ``op bound`` (``<``, ``>``, or ``in`` a closed interval); NaN never does."""
    if value is None or not math.isfinite(value):
        return False
    if op == "<":
        return value < float(bound)  # type: ignore[arg-type]
    if op == ">":
        return value > float(bound)  # type: ignore[arg-type]
    if op == "in":
        lo, hi = bound  # type: ignore[misc]
        return lo <= value <= hi
    raise ValueError(f"op={op!r} is not allowed: expected one of '<', '>', 'in'")


def threshold_text(op: str | None, bound: Any) -> str:
    if op is None:
        return "n/a"
    if op == "in":
        return f"in [{bound[0]:g}, {bound[1]:g}]"
    return f"{op} {bound:g}"


@dataclass(frozen=True)
class Claim:
    """One checked row. Build it with :meth:`below`, :meth:`above`, :meth:`between` or :meth:`not_evaluated`."""

    id: str
    statement: str
    paper: str | float
    ours: float | str | None
    op: Op | None
    bound: float | tuple[float, float] | None
    passed: bool | None  # None: not evaluated
    kind: Kind = "claim"
    expect: Expect = "holds"
    evidence: str = ""
    note: str = ""
    #: the smallest change the measurement can show (one test example of accuracy, say), for margins; None: fine
    resolution: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"claim {self.id!r}: kind={self.kind!r} is not allowed: expected one of {KINDS}")
        if self.expect not in EXPECTS:
            raise ValueError(
                f"claim {self.id!r}: expect={self.expect!r} is not allowed: expected one of {EXPECTS}"
            )

    @classmethod
    def _make(cls, op: Op, ours: float, bound: float | tuple[float, float] | Threshold, **kw: Any) -> Claim:
        if isinstance(bound, Threshold):
            kw.setdefault("evidence", bound.evidence)
            bound = bound.value
        value = float(ours)
        return cls(ours=value, op=op, bound=bound, passed=passes(op, bound, value), **kw)

    @classmethod
    def below(cls, *, ours: float, bound: float | Threshold, **kw: Any) -> Claim:
        """Holds when ``ours < bound``. Keywords: id, statement, paper, kind, expect, evidence, note, resolution."""
        return cls._make("<", ours, bound, **kw)

    @classmethod
    def above(cls, *, ours: float, bound: float | Threshold, **kw: Any) -> Claim:
        """Holds when ``ours > bound``."""
        return cls._make(">", ours, bound, **kw)

    @classmethod
    def between(cls, *, ours: float, bound: tuple[float, float] | Threshold, **kw: Any) -> Claim:
        """Holds when ``lo <= ours <= hi``."""
        return cls._make("in", ours, bound, **kw)

    @classmethod
    def not_evaluated(cls, *, reason: str, **kw: Any) -> Claim:
        """A row whose inputs this configuration does not produce: kept, with its reason, never enforced."""
        return cls(ours=f"{NOT_EVALUATED}: {reason}", op=None, bound=None, passed=None, note=reason, **kw)

    @property
    def threshold(self) -> str:
        return threshold_text(self.op, self.bound)

    @property
    def evaluated(self) -> bool:
        return self.passed is not None

    @property
    def outcome(self) -> str:
        """``holds``, ``fails`` or ``not evaluated``."""
        if self.passed is None:
            return NOT_EVALUATED
        return "holds" if self.passed else "fails"

    @property
    def as_expected(self) -> bool:
        """Not evaluated and ``unclear`` rows are never violations; otherwise the outcome must equal ``expect``."""
        return not self.evaluated or self.expect == "unclear" or self.outcome == self.expect

    def record(self) -> dict[str, Any]:
        return {**asdict(self), "threshold": self.threshold, "outcome": self.outcome}

    def row(self) -> str:
        ours = f"{self.ours:.4g}" if isinstance(self.ours, float) else str(self.ours)
        mark = {"holds": "HOLDS", "fails": "FAILS"}.get(self.outcome, "n/e")
        flag = "" if self.as_expected else f"  <-- expected {self.expect}"
        return f"{mark:<6}{self.kind:<8}{self.id:<36} ours {ours:<12} {self.threshold:<14} paper: {self.paper}{flag}"


def expectation(preset: str, reason: str = "", **declared: Expect) -> Expect:
    """What a row expects at ``preset``: its declared value there, else the paper's outcome (``holds``).

    ``declared`` maps preset names to ``holds`` / ``fails`` / ``unclear`` (e.g. ``quick="fails"`` for a documented
    non-reproduction at CPU scale). ``smoke`` takes quick's expectation (it is never enforced); a preset that has not
    been run against the paper yet (``gpu``) expects ``unclear`` unless declared, so it records rather than raises.
    A declaration other than ``holds`` needs its ``reason`` (shown in the row's note)."""
    for name, value in declared.items():
        if value not in EXPECTS:
            raise ValueError(f"expectation {name}={value!r} is not allowed: expected one of {EXPECTS}")
        if value != "holds" and not reason:
            raise ValueError(f"expectation {name}={value!r} needs a reason")
    if preset == "smoke":
        return declared.get("quick", "holds")
    if preset == "gpu":
        return declared.get("gpu", "unclear")
    return declared.get(preset, "holds")


def declare_after_sweep(
    preset: str, rows: list[Claim], declared: dict[str, tuple[Expect, str]]
) -> list[Claim]:
    """``rows`` with the quick expectations in ``declared`` (row id -> (outcome, why)): expectations that were set
    *after* a 5-seed sweep had judged the row, each with its reason (the sweep's numbers) appended to the row's
    note, so the table says so. Only at quick (and smoke, which takes quick's); other presets keep theirs."""
    if preset not in ("quick", "smoke"):
        return rows
    out = []
    for c in rows:
        if c.id in declared:
            outcome, why = declared[c.id]
            why = f"expected {outcome} at quick, set after the 5-seed sweep: {why}"
            c = replace(
                c,
                expect=expectation(preset, why, quick=outcome),
                note="; ".join(x for x in (c.note, why) if x),
            )
        out.append(c)
    return out


def gpu_thresholds(paper: dict[str, Threshold]) -> dict[str, Threshold]:
    """The ``gpu`` preset's thresholds: the paper's, marked as such. No gpu run has been seen yet, so every row
    expects ``unclear`` there (:func:`expectation`) and a gpu run records its numbers without raising."""
    why = "gpu preset (between quick and paper; not run yet, so it expects unclear): the paper preset's threshold"
    return {k: Threshold(t.value, f"{why}; {t.evidence}") for k, t in paper.items()}


def _finite_or_explained(c: Claim) -> bool:
    return not c.evaluated or bool(c.note) or (isinstance(c.ours, float) and math.isfinite(c.ours))


def enforcing(preset: str) -> bool:
    """Whether :func:`check` raises on an unexpected outcome: not at smoke, not with ``PHENOMENA_CLAIMS=record``."""
    mode = os.environ.get(CLAIMS_ENV, "enforce")
    if mode not in ("enforce", "record"):
        raise ValueError(f"{CLAIMS_ENV}={mode!r} is not allowed: expected 'enforce' or 'record'")
    return preset != "smoke" and mode == "enforce"


def check(
    study: str,
    claims: list[Claim],
    *,
    preset: str,
    seed: int,
    wall_time_s: float,
    metrics: dict[str, Any] | None = None,
    departures: Sequence[str] = (),
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``data/results/<study>.json``; raise :class:`ClaimFailed` if a row is not as expected (see module
    docstring). Returns the path written. At every preset, an evaluated row whose number is not finite and which
    gives no reason raises."""
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
        "claims": [c.record() for c in claims],
        "departures": list(departures),
        "metrics": metrics or {},
        **(extra or {}),
    }
    path = write_json(results_path(study), record)
    print("\n".join(c.row() for c in claims))
    bad = [c.id for c in claims if not _finite_or_explained(c)]
    if bad:
        raise ClaimFailed(
            f"{study}: claim value(s) not finite (NaN/inf) without a reason: {bad} -- see {path}"
        )
    unexpected = [f"{c.id} ({c.outcome}, expected {c.expect})" for c in claims if not c.as_expected]
    if unexpected and enforcing(preset):
        raise ClaimFailed(
            f"{study} ({preset}): {len(unexpected)} row(s) not as expected: {unexpected} -- see {path}"
        )
    return path


def markdown_table(records: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of claim records (``Claim.record()`` dicts), one row each."""
    lines = [
        "| kind | claim | paper | ours | threshold | outcome | expected |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in records:
        ours = r["ours"]
        ours = f"{ours:.3g}" if isinstance(ours, float) else ("undefined" if ours is None else str(ours))
        lines.append(
            f"| {r['kind']} | {md(r['statement'])} | {md(r['paper'])} | {md(ours)} | {md(r['threshold'])} "
            f"| {r['outcome']} | {r['expect']} |"
        )
    return "\n".join(lines)


def did_not_reproduce(records: Sequence[dict[str, Any]], departures: Sequence[str]) -> list[str]:
    """Bullets for "What did not reproduce": every row that fails (a failing sanity row included) or is expected to
    fail or be unclear, with its numbers, then every declared departure from the paper."""
    out = []
    for r in records:
        if not (r["outcome"] == "fails" or (r["kind"] != "sanity" and r["expect"] in ("fails", "unclear"))):
            continue
        ours = r["ours"]
        ours = f"{ours:.3g}" if isinstance(ours, float) else ("undefined" if ours is None else str(ours))
        why = f" {r['note']}" if r.get("note") else ""
        if r["expect"] == "unclear":
            why += (
                " It varies with the seed: over the committed seeds its interval straddles the threshold, so one run"
                " may land on either side and does not raise; read its verdict from the sweep (data/sweeps/)."
            )
        out.append(
            f"`{r['id']}` ({r['kind']}, expected {r['expect']}, {r['outcome']} here): {r['statement']} = {ours} "
            f"(threshold {r['threshold']}; paper: {r['paper']}).{why}"
        )
    return out + [f"Departure: {d}" for d in departures]


def did_not_reproduce_markdown(record: dict[str, Any]) -> str:
    """The "What did not reproduce" section of a results record, as Markdown bullets."""
    lines = did_not_reproduce(record["claims"], record.get("departures", []))
    return (
        "\n".join(f"* {line}" for line in lines)
        if lines
        else "Every claim came out as expected; no departures."
    )


def md(value: Any) -> str:
    """Text safe inside a Markdown table cell."""
    return str(value).replace("|", "\\|").replace("\n", " ")
