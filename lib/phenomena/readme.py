"""Keep the README true: regenerate its study summary, claims table, "what did not reproduce" and gallery from
committed outputs.

``python -m phenomena.readme README.md`` (run by ``make figures`` and ``make sweep``) rewrites the text between the
README's markers ``<!-- glance:start/end -->`` (one line per study: its headline figure, what it shows, how many claims
hold / fail / are unclear over seeds, its runtime), ``<!-- reproduce:start/end -->`` (every claim that fails, is
expected to fail, or is unclear over seeds, with its numbers, and every declared departure) and
``<!-- gallery:start/end -->`` (``figures/<study>/*.png``), and the block ``<!-- results:start/end -->`` of
``CLAIMS.md`` beside it (one row per claim: the paper's number, ours as ``mean [lo, hi] (n)`` over the seeds of the
committed full-tier sweep ``data/sweeps/<study>-full.json`` where one exists, else the seed-0 run of
``data/results/<study>.json``, the null and oracle controls' values from ``data/controls/<study>.json``, the verdict
and the expectation). A test checks that the committed files equal what this module writes, so they cannot drift
from the results.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path
from typing import Any

from phenomena import studies
from phenomena.claims import did_not_reproduce, md, post_hoc_text
from phenomena.paths import atomic_path, repo_root

SWEEP_PRESET = "full"  # the tier the committed sweep (each study's registered seeds) judges


def number(value: Any) -> str:
    """A claim's number for a table cell (``undefined`` for None/NaN, text as is)."""
    if isinstance(value, bool) or value is None:
        return "undefined" if value is None else str(value)
    if isinstance(value, int | float):
        return f"{value:.3g}"
    return str(value)


def interval(c: dict[str, Any]) -> str:
    """``mean [lo, hi] (defined/n)`` of a sweep row: the interval over the seeds that gave a number, and how many
    did out of all; ``undefined at every seed`` where it ran but never gave one, ``not evaluated`` where it never
    ran."""
    n_defined, n = c.get("n_defined", c["n"]), c["n"]
    if not n_defined:
        return "not evaluated" if c["verdict"] == "not evaluated" else f"undefined at every seed (0/{n})"
    if c["lo"] is None:
        return f"{number(c['mean'])} ({n_defined}/{n})"
    return f"{number(c['mean'])} [{number(c['lo'])}, {number(c['hi'])}] ({n_defined}/{n})"


def bang(verdict: str, expect: str) -> str:
    """`` **!**`` where a verdict differs from its registered expectation (never for ``unclear`` expectations or rows
    not evaluated)."""
    first = verdict.split()[0]
    return "" if first in (expect, "not", "undefined") or expect == "unclear" else " **!**"


def post_hoc_cell(row: dict[str, Any]) -> str:
    """`` *post hoc* (old -> new)`` for a row judged under a spec other than the one its runs were started under."""
    text = row.get("post_hoc_text") or (post_hoc_text(row) if "registered" in row else "")
    return f" *{md(text)}*" if text else ""


def _load(root: Path, study: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    record = json.loads((root / "data" / "results" / f"{study}.json").read_text())
    path = root / "data" / "sweeps" / f"{study}-{SWEEP_PRESET}.json"
    return record, json.loads(path.read_text()) if path.exists() else None


def _study_order(root: Path) -> list[str]:
    return [s for s in studies.names() if (root / "data" / "results" / f"{s}.json").exists()]


def _controls(root: Path, study: str) -> dict[str, dict[str, Any]]:
    """The committed null/oracle values of a study's rows at the full tier's thresholds (empty if none committed)."""
    path = root / "data" / "controls" / f"{study}.json"
    if not path.exists():
        return {}
    return {r["id"]: r for r in json.loads(path.read_text())["rows"][SWEEP_PRESET]}


def _control_cell(row: dict[str, Any] | None, which: str) -> str:
    if row is None:
        return "n/a"
    value = row[which]
    text = "NaN" if isinstance(value, float) and value != value else number(value)
    return f"{text} ({row[f'{which}_outcome']})"


def results_table(root: Path) -> str:
    """One row per claim: kind, statement, the paper's number, ours (over seeds where a sweep exists), the null and
    oracle controls' values, verdict (the interval's over seeds; else the seed-0 outcome), the expectation and the
    threshold."""
    rows = [
        "| Study | Kind | Claim | Paper | Ours | Null | Oracle | Threshold | Margin | Verdict | Expected |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for study in _study_order(root):
        record, sweep = _load(root, study)
        controls = _controls(root, study)
        over = {c["id"]: c for c in sweep["claims"]} if sweep else {}
        for i, c in enumerate(record["claims"]):
            title = f"[{studies.title(study)}](notebooks/{study}.ipynb)" if i == 0 else ""
            s = over.get(c["id"])
            ours = interval(s) if s else number(c["ours"])
            judged = s["verdict"] if s else f"{c['outcome']} (seed 0)"
            ctl = controls.get(c["id"])
            # judged over the sweep: the statement, threshold and expectation as the sweep's tier wrote them (its
            # config, e.g. seven draws of the main model where the default tier trains one, or runs the default
            # tier lacks), so that the row describes the runs its numbers come from
            judge = s if s and s.get("statement") else c
            rows.append(
                f"| {title} | {c['kind']} | {md(judge['statement'])} | {md(c['paper'])} | {md(ours)} "
                f"| {md(_control_cell(ctl, 'null'))} | {md(_control_cell(ctl, 'oracle'))} "
                f"| {md(judge['threshold'])} | {margin_text(s)} | {judged}{bang(judged, judge['expect'])} "
                f"| {judge['expect']}{post_hoc_cell(s or c)} |"
            )
    return "\n".join(rows)


def margin_text(row: dict[str, Any] | None) -> str:
    """The mean's distance from the threshold over seeds, in standard deviations (and in steps of the measurement's
    resolution where the row declares one); positive on the passing side."""
    if not row or row.get("margin_sd") is None:
        return ""
    text = f"{row['margin_sd']:+.1f} sd"
    if row.get("margin_res") is not None:
        text += f", {row['margin_res']:+.1f} x {number(row['resolution'])}"
    return text


def _runtime(record: dict[str, Any], sweep: dict[str, Any] | None) -> float:
    """Minutes of one full-tier run: the median over the sweep's runs (a seed served from the cache takes seconds)."""
    walls = [w for w in (sweep or {}).get("wall_time_s", {}).values() if w is not None]
    return (statistics.median(walls) if walls else record["wall_time_s"]) / 60


def one_liner(headlines: dict[str, str], verdicts: dict[str, str]) -> str:
    """What reproduces, generated from the verdicts of a study's headline rows (``HEADLINES``: row id -> what the
    row says, in a few words), so that it never says more than the table: the rows that hold, then the others with
    their verdicts."""
    shown = [text for cid, text in headlines.items() if verdicts.get(cid) == "holds"]
    other = [
        f"{text} ({verdicts.get(cid, 'not run')})"
        for cid, text in headlines.items()
        if verdicts.get(cid) != "holds"
    ]
    out = ("Reproduces: " + "; ".join(shown) + ".") if shown else "None of its headline rows holds."
    return out + (" Not reproduced: " + "; ".join(other) + "." if other else "")


def glance(root: Path) -> str:
    """One line per study: headline figure, what it tests, what reproduces (generated from the verdicts over seeds),
    the claim verdicts counted, runtime."""
    rows = [
        "| Study | Headline figure | What it tests | What reproduces (verdicts over seeds) "
        "| Claims: holds / fails / unclear | One run: default / full |",
        "|---|---|---|---|---|---|",
    ]
    for study in _study_order(root):
        record, sweep = _load(root, study)
        module = studies.load(study)
        judged = {c["id"]: c["verdict"] if sweep else c["outcome"] for c in (sweep or record)["claims"]}
        kinds = {c["id"]: c["kind"] for c in (sweep or record)["claims"]}
        verdicts = [v for cid, v in judged.items() if kinds[cid] == "claim"]
        counts = " / ".join(str(verdicts.count(v)) for v in ("holds", "fails", "unclear"))
        rest = len(verdicts) - sum(verdicts.count(v) for v in ("holds", "fails", "unclear"))
        counts += f" ({rest} not evaluated)" if rest else ""
        seeds = f"{len(sweep['seeds'])} seeds" if sweep else "seed 0"
        fig = f"figures/{study}/{getattr(module, 'HEADLINE_FIGURE', 'seeds_quick')}.png"
        rows.append(
            f'| [{module.TITLE}](notebooks/{study}.ipynb) | <img src="{fig}" width="260"> '
            f"| {md(getattr(module, 'SUMMARY', ''))} | {md(one_liner(getattr(module, 'HEADLINES', {}), judged))} "
            f"| {counts} ({seeds}) | {record['wall_time_s'] / 60:.1f} / {_runtime(record, sweep):.1f} min |"
        )
    return "\n".join(rows)


def provenance(root: Path) -> str:
    """One line per study: where its numbers come from (seeds, preset, git sha, runtime)."""
    lines = []
    for study in _study_order(root):
        record, sweep = _load(root, study)
        if sweep:
            seeds = f"seeds {sweep['seeds'][0]}-{sweep['seeds'][-1]}" if len(sweep["seeds"]) > 1 else "seed 0"
            src = f"{len(sweep['seeds'])} {SWEEP_PRESET} runs ({seeds}, git {str(sweep['git_sha'])[:10]})"
            runtime = f"{_runtime(record, sweep):.1f} min (median over the sweep's runs, two at a time)"
        else:
            src = f"one {record['preset']} run (seed {record['seed']}, git {str(record.get('git_sha'))[:10]})"
            runtime = f"{record['wall_time_s'] / 60:.1f} min"
        lines.append(f"* {studies.title(study)}: {src}; one run takes {runtime} on a 2-core CPU.")
    return "\n".join(lines)


def not_reproduced(root: Path) -> str:
    """Per study: every row (but sanity rows) whose verdict over seeds is not ``holds`` or whose expectation is not,
    with its numbers, its **!** where the verdict differs from the registered expectation and its post-hoc mark;
    then every declared departure. Without a sweep, the seed-0 run's rows."""
    parts = []
    for study in _study_order(root):
        record, sweep = _load(root, study)
        if sweep:
            lines = [
                f"`{s['id']}` ({s['kind']}) over {s['n']} seeds: {s['verdict']}{bang(s['verdict'], s['expect'])}"
                f" (expected {s['expect']}{post_hoc_cell(s)}), {interval(s)} (threshold {s['threshold']}): "
                f"{s['statement']}." + (f" {s['note']}" if s.get("note") else "")
                for s in sweep["claims"]
                if s["kind"] != "sanity" and (s["verdict"] != "holds" or s["expect"] != "holds")
            ]
        else:
            lines = [line for line in did_not_reproduce(record["claims"], []) if "(sanity" not in line]
        lines += [f"Departure: {d}" for d in record.get("departures", [])]
        if lines:
            parts.append(f"**{studies.title(study)}**\n\n" + "\n".join(f"* {md_line(x)}" for x in lines))
    return "\n\n".join(parts) if parts else "Every claim came out as the paper states."


def md_line(text: str) -> str:
    return text.replace("\n", " ")


def gallery(root: Path) -> str:
    """Markdown gallery: one heading per study, its figures in a row-wrapped list of images."""
    parts = []
    for study in _study_order(root):
        pngs = sorted((root / "figures" / study).glob("*.png"))
        if not pngs:
            continue
        parts.append(f"### {studies.title(study)}\n")
        parts.extend(f'<img src="figures/{study}/{p.name}" alt="{p.stem}" width="420">' for p in pngs)
        parts.append("")
    return "\n".join(parts).rstrip()


def _replace(text: str, marker: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- {marker}:start -->).*?(<!-- {marker}:end -->)", re.S)
    if not pattern.search(text):
        raise ValueError(f"README has no <!-- {marker}:start --> ... <!-- {marker}:end --> block")
    return pattern.sub(lambda m: f"{m.group(1)}\n{body}\n{m.group(2)}", text)


def render(readme_text: str, root: Path) -> str:
    """``readme_text`` with every generated block regenerated from ``root``."""
    text = _replace(readme_text, "glance", glance(root))
    text = _replace(text, "reproduce", not_reproduced(root))
    return _replace(text, "gallery", gallery(root))


def render_claims(claims_text: str, root: Path) -> str:
    """``CLAIMS.md`` with its claims table regenerated from ``root``."""
    return _replace(claims_text, "results", results_table(root) + "\n\n" + provenance(root))


def _rewrite(path: Path, new: str) -> None:
    if new != path.read_text():
        with atomic_path(path) as tmp:
            tmp.write_text(new)
        print(f"updated {path}")


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else repo_root() / "README.md"
    _rewrite(path, render(path.read_text(), repo_root()))
    claims_path = path.with_name("CLAIMS.md")
    _rewrite(claims_path, render_claims(claims_path.read_text(), repo_root()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
