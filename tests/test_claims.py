"""The claims layer: rows as data (claims.toml), named measures, one judge, registration and the post-hoc mark,
every seed counted."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from phenomena import aggregate, studies
from phenomena.claims import (
    ClaimTable,
    Measures,
    NotEvaluated,
    Population,
    Spec,
    is_post_hoc,
    load_population,
    load_specs,
    post_hoc_text,
)
from tests.conftest import REPO

TOML = """
[[row]]
id = "small_error"
statement = "error at k = {k}: {err:.2f}"
metric = "err"
op = "<"
paper = "0.02"
threshold = { full = 0.35, paper = 0.05 }
evidence = { full = "seeds 5-6", paper = "the paper" }

[[row]]
id = "ratio_row"
kind = "control"
statement = "ratio"
metric = "ratio"
op = ">"
paper = "x2"
threshold = { full = 1.5 }
expect = { full = "fails" }
reason = "too small a model"

[[row]]
id = "needs_pools"
statement = "pools"
metric = "pools"
op = "in"
paper = "-"
threshold = { full = [0.2, 0.8] }
"""


class Cfg:
    def __init__(self, preset: str = "quick", k: int = 5) -> None:
        self.preset, self.k = preset, k


def measures() -> Measures:
    m = Measures()

    @m
    def ratio(cfg: Any, metrics: dict[str, Any]) -> float:
        return metrics["a"] / metrics["b"]

    @m
    def pools(cfg: Any, metrics: dict[str, Any]) -> float:
        if "pool" not in metrics:
            raise NotEvaluated("no pools configured")
        return metrics["pool"]

    return m


def table(tmp_path: Path, text: str = TOML, ms: Measures | None = None) -> ClaimTable:
    path = tmp_path / "claims.toml"
    path.write_text(text)
    return ClaimTable.load(path, ms or measures())


def test_the_judge_reads_measures_and_stored_metrics(tmp_path: Path) -> None:
    t = table(tmp_path)
    rows = t(Cfg(), {"err": 0.1, "a": 1.0, "b": 2.0})
    err, ratio, pools = rows
    assert err.passed and err.statement == "error at k = 5: 0.10" and err.evidence.endswith("seeds 5-6")
    assert ratio.ours == 0.5 and ratio.outcome == "fails" and ratio.expect == "fails" and ratio.as_expected
    assert ratio.kind == "control" and "too small a model" in ratio.note
    assert pools.outcome == "not evaluated" and pools.note == "no pools configured"
    paper = t(Cfg("paper"), {"err": 0.1, "a": 4.0, "b": 2.0})
    assert (
        paper[0].bound == 0.05 and not paper[0].passed and paper[1].bound == 1.5
    )  # paper falls back to full
    assert paper[1].expect == "holds"  # expectations are per preset
    assert t(Cfg("gpu"), {"err": 0.1, "a": 1.0, "b": 2.0})[0].expect == "unclear"  # gpu never run yet
    undefined = t(Cfg(), {"err": float("nan"), "a": 1.0, "b": 2.0})[0]
    assert not undefined.passed and "undefined" in undefined.note  # a failing seed, with its reason
    assert t(Cfg(), {"err": 0.1, "a": 1.0, "b": 2.0, "pool": 0.5})[2].passed
    with pytest.raises(KeyError, match="no stored metric 'err'"):
        t(Cfg(), {"a": 1.0, "b": 2.0})


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('op = "<"', 'op = "<="'), r"op='<=' is not allowed: expected one of \('<', '>', 'in'\)"),
        (('kind = "control"', 'kind = "lemma"'), "kind='lemma' is not allowed"),
        (('reason = "too small a model"', ""), r"expect.full='fails' needs a reason"),
        (('paper = "x2"', 'paper = "x2"\ntypo = 1'), r"unknown key\(s\) \['typo'\]: allowed"),
        (('id = "ratio_row"', 'id = "small_error"'), "claim ids must be unique"),
        (
            (
                "threshold = { full = 1.5 }",
                'threshold = { full = 1.5 }\nfail_bound = { full = 1.2 }\nfail_evidence = "e"',
            ),
            r"fail_bound.full=1.2 must be >= the threshold 1.5",
        ),
        (
            ("threshold = { full = 1.5 }", "threshold = { full = 1.5 }\nfail_bound = { full = 2.0 }"),
            "needs a fail_evidence",
        ),
        (
            (
                "threshold = { full = [0.2, 0.8] }",
                'threshold = { full = [0.2, 0.8] }\nfail_bound = { full = 1.0 }\nfail_evidence = "e"',
            ),
            "fail_bound is allowed only with op '<' or '>'",
        ),
    ],
)
def test_a_bad_spec_is_refused_naming_what_is_wrong(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    path = tmp_path / "claims.toml"
    path.write_text(TOML.replace(*edit, 1))
    with pytest.raises(ValueError, match=message):
        load_specs(path)


def test_the_population_is_data_in_the_table(tmp_path: Path) -> None:
    """The judging seeds are the table's ``[population]`` (0-4 where it has none); one other than the default says
    why, and a malformed one fails when the table loads, naming it."""
    path = tmp_path / "claims.toml"
    path.write_text(TOML)
    assert load_population(path) == Population() and Population().seed_list() == [0, 1, 2, 3, 4]
    path.write_text('[population]\nseeds = "0-4,20-21"\nwhy = "widened after seeing row x unclear"\n' + TOML)
    assert load_population(path).seed_list() == [0, 1, 2, 3, 4, 20, 21]
    assert len(load_specs(path)) == 3  # the rows are read as before
    for text, message in [
        ('[population]\nseeds = "0-4,20"\n', "differs from the default '0-4': it needs a 'why'"),
        ('[population]\nseeds = "4-2"\nwhy = "w"\n', r"seeds='4-2': the range '4-2' is empty"),
        ('[population]\nseed = "0-9"\n', r"\[population\] has unknown key\(s\) \['seed'\]"),
    ]:
        path.write_text(text + TOML)
        with pytest.raises(ValueError, match=message):
            load_population(path)


def test_the_tiers_take_the_full_tiers_registration_unless_a_row_says_otherwise(tmp_path: Path) -> None:
    spec = table(
        tmp_path, TOML.replace("threshold = { full = 1.5 }", "threshold = { full = 1.5, quick = 1.2 }")
    )
    err, ratio, _ = spec.specs
    assert [err.bound(p) for p in ("smoke", "quick", "full", "gpu", "paper")] == [
        0.35,
        0.35,
        0.35,
        0.05,
        0.05,
    ]
    assert [ratio.bound(p) for p in ("smoke", "quick", "full")] == [1.2, 1.2, 1.5]
    assert [ratio.expect_at(p) for p in ("smoke", "quick", "full", "gpu", "paper")] == [
        "fails", "fails", "fails", "unclear", "holds"
    ]  # fmt: skip
    assert err.evidence_at("quick") == "the full tier's threshold: seeds 5-6"
    assert err.registration("quick", spec.measures) == err.registration("full", spec.measures)


def test_the_spec_hash_covers_what_judges_and_not_the_prose(tmp_path: Path) -> None:
    base = table(tmp_path).registration("quick")
    for edit in (
        ("full = 0.35", "full = 0.4"),  # a threshold moved
        ('metric = "err"', 'metric = "err2"'),  # another measure
        ('kind = "control"', 'kind = "claim"'),  # a control reclassified as a claim
        ('expect = { full = "fails" }', 'expect = { full = "unclear" }'),  # an expectation edited
    ):
        changed = table(tmp_path, TOML.replace(*edit, 1)).registration("quick")
        assert changed != base, edit
    for edit in (
        ('statement = "ratio"', 'statement = "the ratio, reworded"'),
        ('evidence = { full = "seeds 5-6"', 'evidence = { full = "seeds 5-7"'),
        ('reason = "too small a model"', 'reason = "the model is too small"'),
    ):
        assert table(tmp_path, TOML.replace(*edit, 1)).registration("quick") == base, edit
    redefined = Measures()

    @redefined
    def ratio(cfg: Any, metrics: dict[str, Any]) -> float:
        return metrics["b"] / metrics["a"]  # the same name, another definition

    assert table(tmp_path, ms=redefined).registration("quick")["ratio_row"] != base["ratio_row"]


def test_a_fail_bound_is_registered_judged_over_seeds_only_and_shown(tmp_path: Path) -> None:
    """A smallest effect of interest changes what judges the row (its hash, so a run under the old spec shows it
    post hoc) and the threshold text, not a single seed's pass; over seeds it turns a nil effect into a fail."""
    edit = (
        "threshold = { full = 1.5 }",
        'threshold = { full = 1.5 }\nfail_bound = { full = 3.0 }\nfail_evidence = "half the paper\'s"',
    )
    base, with_fb = table(tmp_path), table(tmp_path, TOML.replace(*edit, 1))
    assert with_fb.registration("quick")["ratio_row"] != base.registration("quick")["ratio_row"]
    assert with_fb.registration("quick")["small_error"] == base.registration("quick")["small_error"]
    row = with_fb(Cfg(), {"err": 0.1, "a": 2.0, "b": 1.0})[1]
    assert (
        row.passed is True and row.fail_bound == 3.0
    )  # a seed passes by the threshold, not the fail bound; and row.threshold == "> 1.5, fails if CI <= 3"
    assert row.evidence.endswith("half the paper's")
    old = [c.record() for c in base(Cfg(), {"err": 0.1, "a": 2.0, "b": 1.0})][1:2]
    assert is_post_hoc(
        with_fb(Cfg(), {"err": 0.1, "a": 2.0, "b": 1.0}, {"ratio_row": old[0]["registered"]})[1].record()
    )
    seeds = [
        c.record()
        for a in (1.2, 1.8, 1.4, 1.7, 1.5)
        for c in with_fb(Cfg(), {"err": 0.1, "a": a, "b": 1.0})[1:2]
    ]
    unclear = [{**r, "fail_bound": None} for r in seeds]
    assert aggregate.summarize_claim(unclear, list(range(5)))["verdict"] == "unclear"
    assert aggregate.summarize_claim(seeds, list(range(5)))["verdict"] == "fails"


def test_a_row_judged_under_a_later_spec_is_post_hoc_until_a_run_under_it(tmp_path: Path) -> None:
    metrics = {"err": 0.3, "a": 1.0, "b": 2.0}
    old = table(tmp_path)
    run = [c.record() for c in old(Cfg(), metrics)]  # a run started under the old spec
    assert not any(r["post_hoc"] for r in run)
    registered = {r["id"]: r["registered"] for r in run}
    new = table(tmp_path, TOML.replace("full = 0.35", "full = 0.25", 1))  # moved after seeing 0.3
    rejudged = [c.record() for c in new(Cfg(), metrics, registered)]
    assert [r["post_hoc"] for r in rejudged] == [True, False, False]
    assert (
        post_hoc_text(rejudged[0])
        == "post hoc: claim err < 0.35, expect holds -> claim err < 0.25, expect holds"
    )
    again = [c.record() for c in new(Cfg(), metrics, {r["id"]: r["registered"] for r in rejudged})]
    assert again[0]["post_hoc"]  # re-judging keeps the mark
    assert not new(Cfg(), metrics)[0].post_hoc  # a run started under it clears it
    added = [c.record() for c in new(Cfg(), metrics, {})]
    assert all(is_post_hoc(r) for r in added) and post_hoc_text(added[0]).endswith("added after its run")


def test_a_row_set_after_seeing_judging_seeds_stays_post_hoc_under_any_run(tmp_path: Path) -> None:
    """``seen`` (which judging seeds were in view when the row was set) marks a row post hoc even when the run that
    judges it started under its spec: re-running what was seen does not pre-register it."""
    metrics = {"err": 0.3, "a": 1.0, "b": 2.0}
    text = TOML.replace(
        'id = "small_error"\n', 'id = "small_error"\nseen = "seeds 0-2 of an earlier sweep"\n', 1
    )
    assert text != TOML
    rows = [c.record() for c in table(tmp_path, text)(Cfg(), metrics)]  # a run started under the current spec
    assert [r["post_hoc"] for r in rows] == [True, False, False]
    assert post_hoc_text(rows[0]) == "post hoc: set after seeing seeds 0-2 of an earlier sweep"
    assert table(tmp_path, text).specs[0].hash("full", measures()) == table(tmp_path).specs[0].hash(
        "full", measures()
    )  # provenance, not what judges: the spec hash is unmoved


def _seed_row(value: float | None, passed: bool | None) -> dict[str, Any]:
    return {"id": "r", "kind": "claim", "statement": "s", "paper": "p", "op": "<", "bound": 0.5, "ours": value,
            "passed": passed, "threshold": "< 0.5", "expect": "holds", "registered": {"hash": "h"},
            "spec_hash": "h"}  # fmt: skip


@pytest.mark.parametrize(
    ("values", "verdict"),
    [
        ([0.1, 0.12, 0.11, 0.1, 0.13], "holds"),
        ([0.1, 0.12, 0.11, 0.1, None], "unclear"),  # holds where defined, but one failing seed
        ([0.1, None, None, None, None], "fails"),  # one seed cannot bound the mean
        ([0.9, 0.8, 0.85, None, 0.95], "fails"),
        ([None] * 5, "fails"),
    ],
)
def test_every_seed_counts(values: list[float | None], verdict: str) -> None:
    rows = [_seed_row(v if v is not None else float("nan"), v is not None and v < 0.5) for v in values]
    out = aggregate.summarize_claim(rows, list(range(len(values))))
    assert out["verdict"] == verdict
    assert (out["n_defined"], out["n"]) == (sum(v is not None for v in values), len(values))


def test_a_post_hoc_seed_marks_the_row_over_seeds() -> None:
    rows = [_seed_row(0.1, True) for _ in range(3)]
    rows[1] = {
        **rows[1],
        "registered": {"hash": "old", "metric": "m", "threshold": "< 0.6", "expect": "holds"},
    }
    out = aggregate.summarize_claim(rows, [0, 1, 2])
    assert out["post_hoc"] and out["post_hoc_text"].startswith("post hoc: claim m < 0.6")


@pytest.mark.parametrize("name", studies.names())
def test_every_row_of_every_study_reads_a_measure_and_renders(name: str) -> None:
    """On the committed seed-0 metrics: every row's measure resolves (a typo in a metric path fails here) and its
    statement and note templates fill in."""
    study = studies.load(name)
    rec = json.loads((REPO / "data" / "results" / f"{name}.json").read_text())
    cfg = dict(rec["config"])
    cfg = study.Config.from_preset(cfg.pop("preset"), **cfg)
    for row in study.claims(cfg, rec["metrics"]):
        assert "{" not in row.statement and "{" not in row.note, (row.id, row.statement, row.note)
        if row.evaluated and isinstance(row.ours, float):
            assert row.passed == (not math.isnan(row.ours) and row.passed), row.id
    assert all(isinstance(s, Spec) for s in study.claims)


def test_no_import_cycle_in_the_library() -> None:
    """The import graph of lib/phenomena, module-level and late imports alike, has no cycle (there was one, hidden
    by late imports: aggregate -> tasks -> rejudge -> aggregate). Run it alone: `pytest tests/test_claims.py -k
    import_cycle`."""
    import ast

    root = REPO / "lib" / "phenomena"
    graph: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        mod = ".".join(("phenomena", *path.relative_to(root).with_suffix("").parts)).removesuffix(".__init__")
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("phenomena"):
                deps |= {f"{node.module}.{a.name}" for a in node.names} | {node.module}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("phenomena")}
        graph[mod] = deps
    graph = {m: {d for d in deps if d in graph and d != m} for m, deps in graph.items()}
    # a package's __init__ re-exporting its submodules is not a cycle of the code
    graph = {m: {d for d in deps if not d.startswith(m + ".")} for m, deps in graph.items()}
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                pytest.fail("import cycle: " + " -> ".join([*stack[stack.index(d) :], d]))
            if d not in state:
                visit(d, [*stack, d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


@pytest.mark.parametrize("name", studies.names())
def test_the_one_liner_is_generated_from_the_verdicts_of_real_rows(name: str) -> None:
    from phenomena.readme import one_liner

    study = studies.load(name)
    headlines = study.HEADLINES
    assert headlines and set(headlines) <= set(study.claims.ids()), set(headlines) - set(study.claims.ids())
    first, *rest = headlines
    line = one_liner(headlines, {first: "fails", **{cid: "holds" for cid in rest}})
    assert f"{headlines[first]} (fails)" in line.split("Not reproduced:")[1]
    assert one_liner(headlines, {}).startswith("None of its headline rows holds.")


def test_a_row_not_run_at_this_tier_shows_the_committed_full_sweeps_verdict(tmp_path: Path) -> None:
    """The quick tier does not run every row: such a row stays "not evaluated" (never this run's outcome) and carries
    the committed full sweep's verdict, which the tables show marked as such and "what did not reproduce" lists where
    the sweep does not hold."""
    from phenomena.claims import committed_sweep, did_not_reproduce, markdown_table, with_sweep_verdicts

    name = "icl_linear_regression"
    sweep = committed_sweep(name)
    assert sweep is not None and sweep["preset"] == "full"
    study = studies.load(name)
    rec = json.loads((REPO / "data" / "sweeps" / name / "full" / "seed-0" / "results.json").read_text())
    quick = study.Config.from_preset("quick", seed=0)
    metrics = {**rec["metrics"], "task_diversity": []}  # what the quick tier stores: no task-diversity panel
    rows = with_sweep_verdicts([c.record() for c in study.claims(quick, metrics)], name)
    by_id = {r["id"]: r for r in rows}
    swept = {c["id"]: c for c in sweep["claims"]}
    inf = by_id["infinite_pool_reaches_ridge"]
    assert inf["outcome"] == "not evaluated" and inf["full_sweep"].startswith(swept[inf["id"]]["verdict"])
    assert "full_sweep" not in by_id["err_at_k_eq_d"]  # run here: its own outcome only
    assert f"not run here; *full sweep: {swept[inf['id']]['verdict']}" in markdown_table(rows)
    listed = [line for line in did_not_reproduce(rows, []) if "not run at this tier" in line]
    failing = swept["infinite_pool_reaches_ridge"]["verdict"] in ("fails", "unclear")  # listed only then
    assert [line.split("`")[1] for line in listed] == (["infinite_pool_reaches_ridge"] if failing else [])
