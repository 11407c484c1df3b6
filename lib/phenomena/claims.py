"""Claims as pre-registered data, judged by one generic judge, written to ``data/results/<study>.json``.

Measuring apart from judging: a study's ``summary`` module turns its results into the stored metrics, its
``measures`` module names the numbers the claims read (:class:`Measures`: a ratio or a min over learners is a measure
with its own name), and its ``claims.toml`` holds the rows as data (:class:`Spec`): id, kind, statement, the measure
read, comparator, threshold per preset with its evidence, the paper's value, the expectation per preset with its
reason, and the resolution of the measurement. :func:`judge` is the only code that compares a number to a threshold.

A claims table is only worth reading if every row could have come out the other way, so each row says what kind of
statement it is and what we expect of it:

- ``kind``: ``claim`` (a statement of the paper that our run could contradict), ``control`` (an experimental control
  the paper uses, e.g. a 1-layer model; its expected outcome is the statement) or ``sanity`` (true by construction,
  e.g. the loss at initialisation is ln V: asserted, shown apart, never counted as a reproduced claim);
- ``expect``: ``holds``, ``fails`` (a documented non-reproduction) or ``unclear``, per preset, with its reason;
- ``evidence``: where the threshold comes from (the paper, or which seeds were in view when it was set).

**Pre-registered by mechanism.** Each row's spec (the measure's name and definition, the comparator, the threshold
and the expectation at the run's preset) has a hash, :meth:`Spec.hash`. A run records, per row, the spec it was
started under (``registered``: hash, threshold, expectation, measure). A row judged under a spec other than the one
its record was computed under -- a threshold moved, an expectation edited, a measure redefined, a row added after the
run -- is **post hoc** (:attr:`Claim.post_hoc`), and the tables show it with the registered spec beside the current
one. Re-judging stored metrics under a new spec keeps the mark; only a run started under the spec clears it. A
verdict that differs from its expectation is shown with **!** and listed in "what did not reproduce"; it never
raises: nothing rewards editing an expectation. Prose (statement, evidence, reason, note) is not in the hash: a
sentence fix changes no verdict and marks nothing.

The results file has one shape for every study::

    {"study", "preset", "seed", "wall_time_s", "claims": [{"id", "kind", "statement", "paper", "ours", "op",
     "bound", "threshold", "passed", "outcome", "expect", "evidence", "note", "resolution", "metric", "spec_hash",
     "registered", "post_hoc"}], "departures": [str], "metrics": {...}}
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import string
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from phenomena.cache import function_slice
from phenomena.paths import repo_root, results_path, write_json

Kind = Literal["claim", "control", "sanity"]
Expect = Literal["holds", "fails", "unclear"]
Op = Literal["<", ">", "in"]
KINDS: tuple[str, ...] = ("claim", "control", "sanity")
EXPECTS: tuple[str, ...] = ("holds", "fails", "unclear")
OPS: tuple[str, ...] = ("<", ">", "in")
NOT_EVALUATED = "not evaluated"


class ClaimFailed(AssertionError):
    """Raised when a results record cannot be written honestly (an evaluated row whose number is not finite and
    which gives no reason)."""


class NotEvaluated(Exception):
    """Raised by a measure whose inputs this configuration does not produce (one task pool, no Reddy runs, ...): the
    row is kept as *not evaluated* with this reason instead of vanishing."""


@dataclass(frozen=True)
class Threshold:
    """A threshold and the evidence it was set from (the paper, or the seeds that were in view)."""

    value: float | tuple[float, float]
    evidence: str


def passes(op: str, bound: float | Sequence[float], value: float | None) -> bool:
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
    raise ValueError(f"op={op!r} is not allowed: expected one of {OPS}")


def threshold_text(op: str | None, bound: Any, fail_bound: float | None = None) -> str:
    """``< 0.35``, ``in [0.5, 2]``; with a smallest effect of interest, ``> 0, fails if CI <= 0.1``."""
    if op is None or bound is None:
        return "n/a"
    if op == "in":
        return f"in [{bound[0]:g}, {bound[1]:g}]"
    text = f"{op} {bound:g}"
    if fail_bound is not None:
        text += f", fails if CI {'<=' if op == '>' else '>='} {fail_bound:g}"
    return text


# ---------------------------------------------------------------------------------------------------------- measures


Measure = Callable[[Any, Mapping[str, Any]], float | None]


class Measures:
    """A study's named measures: functions ``(cfg, metrics) -> float`` over the stored metrics, registered by name
    with ``@MEASURES``. A claim row reads one measure by name, or a stored metric by its dotted path
    (``"final.icl_score"``). A measure raises :class:`NotEvaluated` when the configuration removed its inputs and
    returns NaN (or None) where it is undefined; it knows no thresholds."""

    def __init__(self) -> None:
        self._fns: dict[str, Measure] = {}
        self._labels: dict[str, Callable[[Any, Mapping[str, Any]], Any]] = {}

    def __call__(self, fn: Measure) -> Measure:
        if fn.__name__ in self:
            raise ValueError(f"measure {fn.__name__!r} is registered twice")
        self._fns[fn.__name__] = fn
        return fn

    def label(self, fn: Callable[[Any, Mapping[str, Any]], Any]) -> Callable[[Any, Mapping[str, Any]], Any]:
        """Register a *label* (``@MEASURES.label``): text or a record (which environment is best, with its numbers)
        that statement templates may name; never a row's metric."""
        if fn.__name__ in self:
            raise ValueError(f"label {fn.__name__!r} is registered twice")
        self._labels[fn.__name__] = fn
        return fn

    def __contains__(self, name: object) -> bool:
        return name in self._fns or name in self._labels

    def names(self) -> list[str]:
        return list(self._fns)

    def value(self, name: str, cfg: Any, metrics: Mapping[str, Any]) -> float | None:
        """The measure ``name`` (or the stored metric at that dotted path) of ``metrics``; NaN/None if undefined."""
        out = self._fns[name](cfg, metrics) if name in self._fns else lookup(metrics, name)
        if out is None or isinstance(out, bool):
            return None if out is None else float(out)
        return float(out)

    def definition(self, name: str) -> str:
        """What the spec hash records of a measure: its source with every module-level helper, constant and gate
        it uses (:func:`phenomena.cache.function_slice`), or the dotted path of a stored metric."""
        if name not in self._fns:
            return f"stored metric {name}"
        fn = self._fns[name]
        try:
            return function_slice(Path(inspect.getsourcefile(fn) or ""), fn.__name__)
        except ValueError:  # not a module-level function (defined inside another, as in a test)
            return inspect.getsource(fn)


def lookup(metrics: Mapping[str, Any], path: str) -> Any:
    """``metrics["a"]["b"]`` for ``path = "a.b"``; ``KeyError`` naming the path if absent."""
    node: Any = metrics
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(f"no stored metric {path!r} (missing {part!r})")
        node = node[part]
    return node


# -------------------------------------------------------------------------------------------------------- the specs


_SPEC_KEYS = {
    "id",
    "kind",
    "statement",
    "metric",
    "op",
    "paper",
    "threshold",
    "evidence",
    "expect",
    "reason",
    "resolution",
    "note",
    "seen",
    "fail_bound",
    "fail_evidence",
}
#: a preset a row gives no value for takes the next one's in its chain: the tiers are judged by the full tier's
#: registered thresholds and expectations unless a row says otherwise; gpu takes the paper preset's
_FALLBACK = {"smoke": "quick", "quick": "full", "gpu": "paper"}


def _at(table: Mapping[str, Any], preset: str) -> tuple[str, Any] | None:
    """``(the preset whose entry applies, the entry)`` of ``table`` at ``preset``, following :data:`_FALLBACK`."""
    while preset:
        if preset in table:
            return preset, table[preset]
        preset = _FALLBACK.get(preset, "")
    return None


@dataclass(frozen=True)
class Spec:
    """One claims row as data (a ``[[row]]`` table of a study's ``claims.toml``).

    ``threshold`` and ``evidence`` map presets to the bound (a number, or ``[lo, hi]`` for ``op = "in"``) and where
    it comes from; ``full`` (the tier the committed sweep judges) is required, ``quick`` and ``smoke`` take
    ``full``'s and ``gpu`` ``paper``'s where not given. ``expect`` maps presets to ``holds`` / ``fails`` / ``unclear``
    with the same fallback (default ``holds``; ``gpu``, never run yet, ``unclear``), and ``reason`` says why wherever
    it is not ``holds``. ``resolution``: the smallest change the measurement can show (one test example
    of accuracy, one eval interval over the timescale), a number or the name of a measure giving it.
    ``statement`` and ``note`` are templates, formatted with the config's fields and the measures."""

    id: str
    statement: str
    metric: str
    op: Op
    paper: str
    threshold: dict[str, Any]
    evidence: dict[str, str] = field(default_factory=dict)
    kind: Kind = "claim"
    expect: dict[str, Expect] = field(default_factory=dict)
    reason: str = ""
    resolution: float | str | None = None
    note: str = ""
    #: set after seeing: which judging seeds' results were in view when this row's threshold, expectation, kind or
    #: measure was set. Such a row is post hoc whatever run judges it -- re-running the computation that was seen
    #: (or one close to it) does not make its spec pre-registered
    seen: str = ""
    #: the smallest effect of interest, per preset (``<`` / ``>`` rows only; default: the threshold itself): over
    #: seeds the row ``fails`` when its whole interval lies on the failing side of this bound, i.e. it excludes every
    #: effect at least this large (e.g. half the paper's), even where it also includes the threshold. A sign claim
    #: whose true effect is nil otherwise stays ``unclear`` at any number of seeds. ``fail_evidence`` says where it
    #: comes from. Per-seed ``passed`` is unchanged (the threshold).
    fail_bound: dict[str, float] = field(default_factory=dict)
    fail_evidence: str = ""

    def __post_init__(self) -> None:
        where = f"claim {self.id!r}"
        if self.kind not in KINDS:
            raise ValueError(f"{where}: kind={self.kind!r} is not allowed: expected one of {KINDS}")
        if self.op not in OPS:
            raise ValueError(f"{where}: op={self.op!r} is not allowed: expected one of {OPS}")
        for preset, value in self.expect.items():
            if value not in EXPECTS:
                raise ValueError(
                    f"{where}: expect.{preset}={value!r} is not allowed: expected one of {EXPECTS}"
                )
            if value != "holds" and not self.reason:
                raise ValueError(f"{where}: expect.{preset}={value!r} needs a reason")
        if "full" not in self.threshold:
            raise ValueError(f"{where}: threshold needs a 'full' value (the tier the committed sweep judges)")
        if self.fail_bound:
            if self.op == "in":
                raise ValueError(f"{where}: fail_bound is allowed only with op '<' or '>', not 'in'")
            if not self.fail_evidence:
                raise ValueError(
                    f"{where}: fail_bound needs a fail_evidence (where the smallest effect comes from)"
                )
            for preset in self.fail_bound:
                fb, b = float(self.fail_bound[preset]), float(self.bound(preset))  # type: ignore[arg-type]
                if (self.op == ">" and fb < b) or (self.op == "<" and fb > b):
                    side = ">=" if self.op == ">" else "<="
                    raise ValueError(
                        f"{where}: fail_bound.{preset}={fb:g} must be {side} the threshold {b:g} (op {self.op!r}): "
                        "an effect smaller than the threshold cannot be the smallest effect of interest"
                    )

    def bound(self, preset: str) -> float | tuple[float, float]:
        _, value = _at(self.threshold, preset) or ("full", self.threshold["full"])
        return tuple(value) if isinstance(value, list) else value  # type: ignore[return-value]

    def fail_at(self, preset: str) -> float | None:
        """The smallest effect of interest at ``preset`` (following the presets' fallback), or None."""
        found = _at(self.fail_bound, preset)
        return float(found[1]) if found else None

    def evidence_at(self, preset: str) -> str:
        if preset == "smoke":
            return "smoke: wiring only; the full tier's threshold"
        source = (_at(self.threshold, preset) or ("full", None))[0]
        text = (_at(self.evidence, source) or ("", ""))[1]
        if preset == "gpu" and source != "gpu":
            return f"gpu preset (not run yet, so it expects unclear): the paper preset's threshold; {text}"
        return text if source == preset else f"the {source} tier's threshold: {text}"

    def expect_at(self, preset: str) -> Expect:
        if preset == "gpu" and "gpu" not in self.expect:
            return "unclear"
        found = _at(self.expect, preset)
        return found[1] if found else "holds"

    def hash(self, preset: str, measures: Measures) -> str:
        """The registration of this row at ``preset``: what judges it (kind, measure name and definition,
        comparator, threshold, expectation); prose is left out. The kind is in: reclassifying a claim as a control
        after seeing it fail is a change of what the table counts."""
        judged = {
            "kind": self.kind,
            "metric": self.metric,
            "definition": measures.definition(self.metric),
            "op": self.op,
            "bound": self.bound(preset),
            "expect": self.expect_at(preset),
        }
        if self.fail_at(preset) is not None:  # only where set: every other row keeps the hash it had
            judged["fail_bound"] = self.fail_at(preset)
        return hashlib.sha256(json.dumps(judged, sort_keys=True).encode()).hexdigest()[:16]

    def registration(self, preset: str, measures: Measures) -> dict[str, Any]:
        """What a run started now records for this row: the spec's hash and, readably, what it judges with."""
        return {
            "hash": self.hash(preset, measures),
            "kind": self.kind,
            "metric": self.metric,
            "threshold": threshold_text(self.op, self.bound(preset), self.fail_at(preset)),
            "expect": self.expect_at(preset),
        }


#: the judging population of a study whose ``claims.toml`` registers none: the committed full sweep's seeds
DEFAULT_SEEDS = "0-4"


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` -> [0, 1, 2, 3, 4]; ``"0,2,5"``; ``"0-2,7"``. Sorted, without repeats."""
    seeds: set[int] = set()
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError(f"seeds={text!r}: expected non-negative integers such as '0-4' or '0,2,5'")
        first, last = int(lo), int(hi) if sep else int(lo)
        if last < first:
            raise ValueError(f"seeds={text!r}: the range {part!r} is empty")
        seeds.update(range(first, last + 1))
    if not seeds:
        raise ValueError(f"seeds={text!r}: no seeds given")
    return sorted(seeds)


@dataclass(frozen=True)
class Population:
    """The judging population (``[population]`` of a ``claims.toml``): the seeds of the committed full sweep, which
    judges every row over all of them (``make sweep`` runs these when SEEDS is not given). ``why`` says when and why
    it differs from :data:`DEFAULT_SEEDS` -- a population widened after seeing a sweep is a change of every row's
    statistic, so it is data in the table, not a command-line choice."""

    seeds: str = DEFAULT_SEEDS
    why: str = ""

    def __post_init__(self) -> None:
        # a malformed list fails when the table loads, naming it
        if self.seed_list() != parse_seeds(DEFAULT_SEEDS) and not self.why:
            raise ValueError(
                f"[population] seeds={self.seeds!r} differs from the default {DEFAULT_SEEDS!r}: it needs a 'why'"
            )

    def seed_list(self) -> list[int]:
        return parse_seeds(self.seeds)


def load_population(path: Path) -> Population:
    """The ``[population]`` table of the ``claims.toml`` at ``path`` (the default when it has none); an unknown key
    raises ``ValueError`` naming it."""
    table = tomllib.loads(path.read_text()).get("population", {})
    unknown = set(table) - {"seeds", "why"}
    if unknown:
        raise ValueError(
            f"{path}: [population] has unknown key(s) {sorted(unknown)}: allowed ['seeds', 'why']"
        )
    return Population(**table)


def load_specs(path: Path) -> list[Spec]:
    """The rows of a ``claims.toml`` (``[[row]]`` tables), validated: an unknown key, a duplicate id or a bad value
    raises ``ValueError`` naming it."""
    rows = tomllib.loads(path.read_text()).get("row", [])
    specs = []
    for i, row in enumerate(rows):
        unknown = set(row) - _SPEC_KEYS
        if unknown:
            raise ValueError(
                f"{path}: row {i} ({row.get('id')}) has unknown key(s) {sorted(unknown)}: "
                f"allowed {sorted(_SPEC_KEYS)}"
            )
        specs.append(Spec(**row))
    ids = [s.id for s in specs]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{path}: claim ids must be unique, got {ids}")
    return specs


class _Context(dict):
    """The names a statement or note template may use: the config's fields, then the measures, then the stored
    metrics' top-level entries (looked up lazily)."""

    def __init__(self, cfg: Any, metrics: Mapping[str, Any], measures: Measures) -> None:
        super().__init__()
        self.cfg, self.metrics, self.measures = cfg, metrics, measures

    def __missing__(self, key: str) -> Any:
        if hasattr(self.cfg, key):
            return getattr(self.cfg, key)
        if key in self.measures._labels:
            return self.measures._labels[key](self.cfg, self.metrics)
        if key in self.measures:
            value = self.measures.value(key, self.cfg, self.metrics)
            return float("nan") if value is None else value
        return self.metrics[key]


class _Lenient(string.Formatter):
    """A formatter that writes ``n/a`` for a field whose inputs are absent (a row not evaluated) and the plain value
    where a format spec does not fit it."""

    def get_field(self, field_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
        try:
            return super().get_field(field_name, args, kwargs)
        except (KeyError, NotEvaluated, ValueError, TypeError, IndexError, ZeroDivisionError):
            return "n/a", field_name

    def format_field(self, value: Any, format_spec: str) -> str:
        try:
            return super().format_field(value, format_spec)
        except (ValueError, TypeError):
            return str(value)


def render(template: str, cfg: Any, metrics: Mapping[str, Any], measures: Measures) -> str:
    """``template`` formatted with :class:`_Context`; a field whose inputs are absent reads ``n/a``."""
    return _Lenient().vformat(template, (), _Context(cfg, metrics, measures))


@dataclass(frozen=True)
class ClaimTable:
    """A study's claims: its rows (:class:`Spec`) and the measures they read. ``table(cfg, metrics)`` judges."""

    specs: tuple[Spec, ...]
    measures: Measures
    population: Population = Population()

    @classmethod
    def load(cls, path: Path, measures: Measures) -> ClaimTable:
        """The rows of the study's ``claims.toml`` at ``path``, reading ``measures`` (a name that is no measure is a
        stored metric's dotted path: a typo fails when the row is judged, naming the path), and its population."""
        return cls(tuple(load_specs(path)), measures, load_population(path))

    def __iter__(self) -> Iterator[Spec]:
        return iter(self.specs)

    def ids(self) -> list[str]:
        return [s.id for s in self.specs]

    def registration(self, preset: str) -> dict[str, dict[str, Any]]:
        """Per row id, what a run started now at ``preset`` records as its registered spec."""
        return {s.id: s.registration(preset, self.measures) for s in self.specs}

    def __call__(
        self, cfg: Any, metrics: Mapping[str, Any], registered: Mapping[str, Any] | None = None
    ) -> list[Claim]:
        return judge(self, cfg, metrics, registered)


def judge(
    table: ClaimTable, cfg: Any, metrics: Mapping[str, Any], registered: Mapping[str, Any] | None = None
) -> list[Claim]:
    """The one judge: every row of ``table`` on ``metrics`` at ``cfg.preset``'s thresholds.

    ``registered`` maps row ids to the registrations the metrics' run was started under (``None``: a run started
    now, under the current specs). A row with no registration there was added after the run: post hoc."""
    preset = cfg.preset
    current = table.registration(preset)
    out = []
    for spec in table:
        reg = current[spec.id] if registered is None else registered.get(spec.id)
        common: dict[str, Any] = dict(
            id=spec.id,
            statement=render(spec.statement, cfg, metrics, table.measures),
            paper=spec.paper,
            kind=spec.kind,
            expect=spec.expect_at(preset),
            evidence="; ".join(x for x in (spec.evidence_at(preset), spec.fail_evidence) if x),
            metric=spec.metric,
            spec_hash=current[spec.id]["hash"],
            registered=reg,
            seen=spec.seen,
        )
        note = render(spec.note, cfg, metrics, table.measures)
        reason = spec.reason if spec.expect_at(preset) != "holds" else ""
        try:
            value = table.measures.value(spec.metric, cfg, metrics)
        except NotEvaluated as why:
            out.append(Claim.not_evaluated(reason=str(why), **common))
            continue
        resolution = spec.resolution
        if isinstance(resolution, str):
            try:
                resolution = table.measures.value(resolution, cfg, metrics)
            except NotEvaluated:
                resolution = None
        note = "; ".join(x for x in (note, reason) if x)
        if value is None or not math.isfinite(value):
            note = note or "undefined: the measure has no value for this run (a failing seed)"
        bound = spec.bound(preset)
        out.append(
            Claim(
                ours=value,
                op=spec.op,
                bound=bound,
                passed=passes(spec.op, bound, value),
                note=note,
                resolution=resolution,
                fail_bound=spec.fail_at(preset),
                **common,
            )
        )
    return out


# ---------------------------------------------------------------------------------------------------- the records


@dataclass(frozen=True)
class Claim:
    """One judged row, as :func:`judge` makes it and the results file stores it."""

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
    metric: str = ""
    #: the hash of the spec this row was judged under, and the registration its run was started under
    spec_hash: str = ""
    registered: dict[str, Any] | None = None
    #: set after seeing these judging seeds' results (:attr:`Spec.seen`): post hoc whatever run judged it
    seen: str = ""
    #: the smallest effect of interest (:attr:`Spec.fail_bound`), judged over seeds only; None: the threshold
    fail_bound: float | None = None

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
        """Holds when ``ours < bound`` (tests and hand-built rows; studies judge through :func:`judge`)."""
        return cls._make("<", ours, bound, **kw)

    @classmethod
    def above(cls, *, ours: float, bound: float | Threshold, **kw: Any) -> Claim:
        """Holds when ``ours > bound``."""
        return cls._make(">", ours, bound, **kw)

    @classmethod
    def not_evaluated(cls, *, reason: str, **kw: Any) -> Claim:
        """A row whose inputs this configuration does not produce: kept, with its reason."""
        return cls(ours=f"{NOT_EVALUATED}: {reason}", op=None, bound=None, passed=None, note=reason, **kw)

    @property
    def threshold(self) -> str:
        return threshold_text(self.op, self.bound, self.fail_bound)

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
        """Not evaluated and ``unclear`` rows are never flagged; otherwise the outcome must equal ``expect``."""
        return not self.evaluated or self.expect == "unclear" or self.outcome == self.expect

    @property
    def post_hoc(self) -> bool:
        """Judged under a spec other than the one its run was started under (or added after the run)."""
        return is_post_hoc(self.record())

    def record(self) -> dict[str, Any]:
        out = {**asdict(self), "threshold": self.threshold, "outcome": self.outcome}
        out["post_hoc"] = is_post_hoc(out)
        return out

    def row(self) -> str:
        ours = f"{self.ours:.4g}" if isinstance(self.ours, float) else str(self.ours)
        mark = {"holds": "HOLDS", "fails": "FAILS"}.get(self.outcome, "n/e")
        flag = "" if self.as_expected else f"  ! expected {self.expect}"
        flag += "  (post hoc)" if self.post_hoc else ""
        return f"{mark:<6}{self.kind:<8}{self.id:<36} ours {ours:<12} {self.threshold:<14} paper: {self.paper}{flag}"


def is_post_hoc(row: Mapping[str, Any]) -> bool:
    """Whether a stored row was judged under a spec other than its registered one (no registration: post hoc), or
    its spec was set after seeing judging seeds (``seen``). A row that carries no spec hash at all (a table row
    derived from a summary) says nothing either way: False."""
    if row.get("seen"):
        return True
    if "spec_hash" not in row:
        return bool(row.get("post_hoc_text"))
    reg = row.get("registered")
    return not reg or reg.get("hash") != row.get("spec_hash")


def post_hoc_text(row: Mapping[str, Any]) -> str:
    """``post hoc: <registered> -> <now>`` for a post-hoc row ('' otherwise): what changed after its run."""
    if not is_post_hoc(row):
        return ""
    if "spec_hash" not in row:
        return str(row.get("post_hoc_text") or f"post hoc: set after seeing {row['seen']}")
    reg = row.get("registered")
    seen = f"post hoc: set after seeing {row['seen']}" if row.get("seen") else ""
    if seen and reg and reg.get("hash") == row.get("spec_hash"):
        return seen
    if seen:
        return seen + ("; and added after its run" if not reg else "; and changed after its run")
    if not reg:
        return "post hoc: row added after its run"
    old = f"{reg.get('kind', row.get('kind'))} {reg.get('metric')} {reg.get('threshold')}, expect {reg.get('expect')}"
    new = f"{row.get('kind')} {row.get('metric')} {row.get('threshold')}, expect {row.get('expect')}"
    if old == new:
        new += " (the measure's definition changed)"
    why = f"; {reg['why']}" if reg.get("why") else ""
    return f"post hoc: {old} -> {new}{why}"


SWEEP_TIER = "full"  # the tier whose committed sweep (over each study's registered seeds) judges every row


def committed_sweep(study: str) -> dict[str, Any] | None:
    """The committed over-seeds summary of ``study`` at the full tier (``data/sweeps/<study>-full.json`` of this
    checkout), or None."""
    path = repo_root() / "data" / "sweeps" / f"{study}-{SWEEP_TIER}.json"
    return json.loads(path.read_text()) if path.exists() else None


def sweep_text(row: Mapping[str, Any]) -> str:
    """``holds, 0.14 [0.09, 0.19] (5/5 seeds)`` for one row of a sweep summary."""
    n_defined, n = row.get("n_defined", row.get("n")), row.get("n")
    if row.get("mean") is None:
        return f"{row['verdict']} ({n_defined}/{n} seeds defined)"
    spread = f" [{row['lo']:.3g}, {row['hi']:.3g}]" if row.get("lo") is not None else ""
    return f"{row['verdict']}, {row['mean']:.3g}{spread} ({n_defined}/{n} seeds)"


def with_sweep_verdicts(rows: Sequence[dict[str, Any]], study: str) -> list[dict[str, Any]]:
    """``rows`` (claim records) where every row this run did not evaluate carries ``full_sweep``: the committed
    full-tier sweep's verdict for it, to show beside (never counted as this run's outcome)."""
    summary = committed_sweep(study) if any(r["passed"] is None for r in rows) else None
    verdicts = {
        c["id"]: sweep_text(c) for c in (summary or {}).get("claims", []) if c["verdict"] != NOT_EVALUATED
    }
    return [
        {**r, "full_sweep": verdicts[r["id"]]} if r["passed"] is None and r["id"] in verdicts else dict(r)
        for r in rows
    ]


def _finite_or_explained(c: Claim) -> bool:
    return not c.evaluated or bool(c.note) or (isinstance(c.ours, float) and math.isfinite(c.ours))


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
    """Write ``data/results/<study>.json`` (atomically) and print the table; returns the path written. A row whose
    outcome differs from its expectation is printed with ``!`` and never raises (see the module docstring). An
    evaluated row whose number is not finite and which gives no reason raises :class:`ClaimFailed`."""
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
        "claims": with_sweep_verdicts([c.record() for c in claims], study),
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
    return path


def fmt_ours(ours: Any) -> str:
    return f"{ours:.3g}" if isinstance(ours, float) else ("undefined" if ours is None else str(ours))


def markdown_table(records: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of claim records (``Claim.record()`` dicts), one row each; **!** where the outcome differs
    from the expectation, *post hoc* where the row was judged under a spec other than its registered one."""
    lines = [
        "| kind | claim | paper | ours | threshold | outcome | expected |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in records:
        bang = "" if r["outcome"] in (r["expect"], NOT_EVALUATED) or r["expect"] == "unclear" else " **!**"
        hoc = " *post hoc*" if is_post_hoc(r) else ""
        outcome = r["outcome"]
        if r.get("full_sweep"):  # not run at this tier: the committed full sweep's verdict, marked as such
            outcome = f"not run here; *full sweep: {r['full_sweep']}*"
        lines.append(
            f"| {r['kind']} | {md(r['statement'])} | {md(r['paper'])} | {md(fmt_ours(r['ours']))} "
            f"| {md(r['threshold'])} | {md(outcome)}{bang} | {r['expect']}{hoc} |"
        )
    return "\n".join(lines)


def did_not_reproduce(records: Sequence[dict[str, Any]], departures: Sequence[str]) -> list[str]:
    """Bullets for "What did not reproduce": every row that fails (a failing sanity row included) or is expected to
    fail or be unclear, with its numbers and its post-hoc mark; every row not run at this tier whose committed full
    sweep fails or is unclear, with the sweep's numbers; then every declared departure from the paper."""
    out = []
    for r in records:
        hoc = f"; {post_hoc_text(r)}" if is_post_hoc(r) else ""
        where = f"(threshold {r['threshold']}; paper: {r['paper']})"
        if r["outcome"] == NOT_EVALUATED:
            swept = r.get("full_sweep", "")
            if r["kind"] != "sanity" and swept.split(",")[0].split(" ")[0] in ("fails", "unclear"):
                out.append(
                    f"`{r['id']}` ({r['kind']}, expected {r['expect']}, not run at this tier{hoc}): {r['statement']}: "
                    f"the committed full sweep {swept} {where}."
                )
            continue
        if not (r["outcome"] == "fails" or (r["kind"] != "sanity" and r["expect"] in ("fails", "unclear"))):
            continue
        why = f" {r['note']}" if r.get("note") else ""
        if r["expect"] == "unclear":
            why += (
                " It varies with the seed: over the committed seeds its interval straddles the threshold, so one run"
                " may land on either side; read its verdict from the sweep (data/sweeps/)."
            )
        out.append(
            f"`{r['id']}` ({r['kind']}, expected {r['expect']}, {r['outcome']} here{hoc}): {r['statement']} = "
            f"{fmt_ours(r['ours'])} {where}.{why}"
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
