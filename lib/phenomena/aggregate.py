"""Claims over seeds: summarise a study's per-seed results into ``data/sweeps/<study>-<tag>.json`` -- per claim the
values, their mean, 95% Student-t interval and the verdict it gives (:mod:`phenomena.stats`) -- with the same in long
format beside it (``<study>-<tag>.csv``, one row per claim and seed: :func:`phenomena.results.sweep_frame`), and
draw the study's seed figure when it defines one."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from phenomena import figures, studies
from phenomena.claims import NOT_EVALUATED, SWEEP_TIER, is_post_hoc, post_hoc_text
from phenomena.paths import atomic_path, normalize, summary_path, sweep_dir, tag_of, write_json
from phenomena.results import sweep_frame
from phenomena.run import study_source_hash
from phenomena.stats import FAILS, UNCLEAR, t_interval, verdict


class AggregateError(ValueError):
    """The per-seed results of a sweep cannot be summarised together (mixed code versions or claim sets)."""


class NoResults(AggregateError):
    """There are no per-seed results to summarise."""


def seed_records(root: Path, study: str, tag: str) -> list[dict[str, Any]]:
    """The per-seed results of ``study`` at ``tag``, in seed order."""
    folders = sweep_dir(root, study, tag).glob("seed-*/results.json")
    pairs = sorted((int(p.parent.name.removeprefix("seed-")), p) for p in folders)
    records = []
    for seed, path in pairs:
        record = json.loads(path.read_text())
        if record.get("seed") != seed or record.get("study") != study:
            raise AggregateError(f"{path} holds study {record.get('study')!r} seed {record.get('seed')!r}")
        records.append(record)
    return records


def check_consistent(records: Sequence[dict[str, Any]], where: Path) -> None:
    """Raise :class:`AggregateError` unless every record has the same source hash and claim ids."""
    hashes: dict[str, list[int]] = {}
    for r in records:
        hashes.setdefault(str(r.get("source_hash")), []).append(r["seed"])
    if len(hashes) > 1:
        raise AggregateError(
            f"{where}: the seeds ran different code (source_hash -> seeds: {hashes}); rerun the sweep with "
            "these seeds so that the stale ones run again"
        )
    first = [c["id"] for c in records[0]["claims"]]
    for r in records[1:]:
        ids = [c["id"] for c in r["claims"]]
        if ids != first:
            raise AggregateError(
                f"{where}: seed {r['seed']} has claim ids {ids}, seed {records[0]['seed']} has {first}"
            )


def claim_value(row: dict[str, Any]) -> float | None:
    """A claim row's number, or None where it was not evaluated or is undefined (NaN, written as null)."""
    ours = row.get("ours")
    if row.get("passed") is None or isinstance(ours, bool) or not isinstance(ours, int | float):
        return None
    return float(ours) if math.isfinite(ours) else None


def summarize_claim(rows: Sequence[dict[str, Any]], seeds: Sequence[int]) -> dict[str, Any]:
    """One claim over the seeds: its definition, per-seed values, mean, 95% t-interval, passes and verdict.

    Every seed counts: a seed where the row ran but its number is undefined (NaN, or not evaluated at that seed
    though evaluated at others) is a failing seed. The row ``holds`` only if it is defined at every seed and the
    interval lies on the passing side; with undefined seeds it is ``fails`` when fewer than two seeds are defined
    or the interval of the defined ones does not hold, else ``unclear``. ``n_defined`` / ``n`` say how many seeds
    gave a number. The row is **post hoc** when any seed was judged under a spec other than its registered one."""
    first = rows[0]
    values = [claim_value(r) for r in rows]
    defined = [v for v in values if v is not None]
    keys = (
        "id",
        "kind",
        "statement",
        "paper",
        "op",
        "bound",
        "threshold",
        "expect",
        "evidence",
        "metric",
        "note",
        "fail_bound",
    )
    out: dict[str, Any] = {k: first.get(k) for k in keys}
    out.update(values=values, seeds=list(seeds), n=len(rows), n_defined=len(defined))
    ran = [r for r in rows if r.get("passed") is not None]
    mean = lo = hi = None
    if not ran:
        judged = NOT_EVALUATED
    else:
        if defined:
            mean, lo, hi = t_interval(defined)
        on_defined = verdict(first.get("op"), first.get("bound"), lo, hi, first.get("fail_bound"))
        if len(defined) == len(rows):
            judged = on_defined
        elif len(defined) < 2 or on_defined == FAILS:
            judged = FAILS
        else:  # failing (undefined) seeds beside an interval that holds or straddles: never holds
            judged = UNCLEAR
    n_pass = sum(r.get("passed") is True for r in rows)
    hoc = [r for r in rows if is_post_hoc(r)]
    out.update(mean=mean, lo=lo, hi=hi, n_pass=n_pass, verdict=judged)
    out.update(post_hoc=bool(hoc), post_hoc_text=post_hoc_text(hoc[0]) if hoc else "")
    out.update(margins(first.get("op"), first.get("bound"), defined, first.get("resolution")))
    return out


def margins(op: str | None, bound: Any, values: Sequence[float], resolution: float | None) -> dict[str, Any]:
    """How far the mean sits from the threshold, on the passing side (positive) or the failing one (negative): in
    the claim's own units (``margin``), in standard deviations over seeds (``margin_sd``) and in steps of the
    measurement's resolution (``margin_res``, where the row declares one). Undefined for ``in`` bounds."""
    out: dict[str, Any] = {"margin": None, "margin_sd": None, "resolution": resolution, "margin_res": None}
    if op not in ("<", ">") or bound is None or not values:
        return out
    mean = math.fsum(values) / len(values)
    margin = (float(bound) - mean) if op == "<" else (mean - float(bound))
    out["margin"] = margin
    if len(values) > 1:
        sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))
        out["margin_sd"] = margin / sd if sd > 0 else None
    if resolution:
        out["margin_res"] = margin / resolution
    return out


def summary_record(study: str, preset: str, overrides: dict[str, Any], records: list[dict]) -> dict[str, Any]:
    """The over-seeds summary of a study's per-seed results (all consistent, in seed order)."""
    seeds = [r["seed"] for r in records]
    latest = max(records, key=lambda r: str(r.get("date")))
    dates = sorted(str(r.get("date")) for r in records)
    machines = sorted({f"{r.get('platform')}, {r.get('device')}" for r in records})
    claims = [
        summarize_claim([r["claims"][i] for r in records], seeds) for i in range(len(records[0]["claims"]))
    ]
    return {
        "study": study,
        "preset": preset,
        "tag": tag_of(preset, overrides),
        "overrides": normalize(overrides),
        "seeds": seeds,
        "git_sha": latest.get("git_sha"),
        "git_dirty": any(bool(r.get("git_dirty")) for r in records),
        "source_hash": records[0].get("source_hash"),
        "dates": [dates[0], dates[-1]],
        "machine": "; ".join(machines),
        "wall_time_s": {str(r["seed"]): r.get("wall_time_s") for r in records},
        "peak_rss_mb": {str(r["seed"]): r.get("peak_rss_mb") for r in records},
        "claims": claims,
    }


@contextmanager
def outputs_under(root: Path) -> Iterator[None]:
    """Point ``phenomena.paths`` (``PHENOMENA_OUT``) at ``root`` for the duration of the block."""
    old = os.environ.get("PHENOMENA_OUT")
    os.environ["PHENOMENA_OUT"] = str(root)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PHENOMENA_OUT", None)
        else:
            os.environ["PHENOMENA_OUT"] = old


def seed_figure(root: Path, summary: dict[str, Any], records: list[dict[str, Any]]) -> Path | None:
    """If the study defines ``seed_figure(records) -> Figure | None``, save its figure as
    ``figures/<study>/seeds_<tag>.png`` under ``root``; the path, or None."""
    study = summary["study"]
    make = getattr(studies.load(study), "seed_figure", None)
    if make is None:
        return None
    with outputs_under(root):
        figures.style()
        fig = make(records)
        if fig is None:
            return None
        keys = (
            "preset",
            "tag",
            "overrides",
            "seeds",
            "git_sha",
            "git_dirty",
            "source_hash",
            "dates",
            "machine",
        )
        path = figures.savefig(fig, study, f"seeds_{summary['tag']}", {k: summary[k] for k in keys})
        plt.close(fig)
    return path


def aggregate(root: Path, study: str, preset: str, overrides: dict[str, Any] | None = None) -> Path:
    """Summarise every ``data/sweeps/<study>/<tag>/seed-*/results.json`` into ``data/sweeps/<study>-<tag>.json``
    and its long-format ``.csv`` (atomically; the same inputs give the same bytes), then draw the study's seed
    figure if it has one.

    Raises :class:`NoResults` if there are no per-seed results, :class:`AggregateError` if they mix code versions
    or claim sets.
    """
    tag = tag_of(preset, overrides)
    where = sweep_dir(root, study, tag)
    records = seed_records(root, study, tag)
    if not records:
        raise NoResults(f"no per-seed results under {where}: run the sweep first")
    check_consistent(records, where)
    summary = summary_record(study, preset, overrides or {}, records)
    path = write_json(summary_path(root, study, tag), summary)
    with atomic_path(path.with_suffix(".csv")) as tmp:
        sweep_frame(summary).to_csv(tmp, index=False)
    current = study_source_hash(study)
    if summary["source_hash"] != current:
        print(
            f"[warning] {path}: the seeds ran code other than the current source (rerun the sweep to refresh)"
        )
    population = studies.load(study).claims.population
    if tag == SWEEP_TIER and summary["seeds"] != population.seed_list():
        print(
            f"[warning] {path}: seeds {summary['seeds']} are not the study's registered population "
            f"{population.seeds!r} ([population] of its claims.toml): the committed sweep judges over exactly those"
        )
    seed_figure(root, summary, records)
    return path
