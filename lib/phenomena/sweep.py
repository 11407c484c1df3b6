"""Sweeps: run the studies' notebooks over seeds (and config overrides), then judge every claim over the seeds.

A *task* is ``(study, preset, seed, overrides)``. It runs the study's notebook with papermill, exactly as
``make study-<name>`` does, but into its own build folder ``build/sweeps/<study>/<tag>/seed-<n>/`` (``tag`` is
the preset, plus a short hash of the overrides when there are any), single-threaded; every run records its rows
(an outcome that differs from its expectation is marked, never raised): one seed landing on the wrong side of a
threshold is what the sweep is there to weigh. The results file it writes is copied to ``data/sweeps/<study>/<tag>/seed-<n>/results.json``
(committed). A task whose committed results match its config and the study's current source hash is skipped, so a
rerun runs only what is missing or stale.

Executors: ``local`` (default) drives at most ``jobs`` notebooks at once from a thread pool; ``submitit`` submits
the same task function through submitit (Slurm when present; ``cluster="local"`` runs jobs as local processes).
At the end of a sweep, :func:`aggregate` writes ``data/sweeps/<study>-<tag>.json``: per claim, the per-seed
values, their mean, 95% Student-t interval and the verdict that interval gives (:mod:`phenomena.stats`).

``figures`` mode is ``make figures``: every study at seed 0 into the committed ``figures/`` and ``data/results/``,
claims enforced, longest notebooks first. Every path hangs off a ``root`` (default: the repository), so tests can
run everything in a scratch folder; the notebooks are always read from the repository's ``notebooks/``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from phenomena import studies
from phenomena.aggregate import AggregateError, NoResults, aggregate
from phenomena.claims import parse_seeds
from phenomena.executors import SubmititOptions, run_local, run_submitit, stop_all
from phenomena.paths import atomic_path, output_root
from phenomena.tasks import (
    EXECUTORS,
    FAILED,
    RAN,
    SKIPPED,
    Options,
    Task,
    TaskResult,
    by_cost,
    check_names,
    expected_config,
    is_current,
    normalize,
    parse_studies,
    say,
    seed_results_path,
)

__all__ = [
    "AggregateError",
    "NoResults",
    "SubmititOptions",
    "SweepOutcome",
    "aggregate",
    "make_figures",
    "parse_seeds",
    "parse_studies",
    "registered_seeds",
    "stop_all",
    "sweep",
]


@dataclass
class SweepOutcome:
    """Everything a sweep did: every task's result, the summaries written, the aggregation errors, the time."""

    results: list[TaskResult]
    summaries: list[Path] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def statuses(self) -> dict[tuple[str, str, int], str]:
        return {(r.task.study, r.task.tag, r.task.seed): r.status for r in self.results}

    @property
    def ok(self) -> bool:
        return not self.errors and all(r.status != FAILED for r in self.results)


def report_result(result: TaskResult) -> None:
    """Print a task's summary line, and a failure's text below it."""
    say(result.line())
    if result.status == FAILED:
        say("\n".join(f"    {line}" for line in str(result.error).splitlines()))


def plan(tasks: Sequence[Task], options: Options) -> tuple[list[Task], list[TaskResult]]:
    """Split tasks into those to run and the settled ones: a bad override fails its task here, without running;
    in sweep mode a task with current committed results is skipped."""
    todo, settled = [], []
    for task in tasks:
        try:
            expected_config(task)
        except ValueError as err:
            settled.append(TaskResult(task, FAILED, error=f"invalid config: {err}"))
            continue
        if options.mode == "sweep" and is_current(task, options.root):
            record = json.loads(seed_results_path(options.root, task).read_text())
            settled.append(TaskResult(task, SKIPPED, peak_rss_mb=record.get("peak_rss_mb")))
        else:
            todo.append(task)
    return todo, settled


def execute_all(
    tasks: Sequence[Task], options: Options, jobs: int, executor: str, sub: SubmititOptions | None
) -> SweepOutcome:
    """Validate, plan and run ``tasks`` (longest first) on ``executor``; print a line per task."""
    if executor not in EXECUTORS:
        raise ValueError(f"executor={executor!r} is not allowed: expected one of {list(EXECUTORS)}")
    check_names(tasks, options.device)
    started = time.perf_counter()
    todo, settled = plan(by_cost(tasks), options)
    for result in settled:
        report_result(result)
    say(f"[start  ] {len(todo)} task(s) to run, {len(settled)} settled; executor {executor}, jobs {jobs}")
    if executor == "submitit":
        ran = run_submitit(todo, options, jobs, report_result, sub or SubmititOptions())
    else:
        ran = run_local(todo, options, jobs, report_result)
    order = {(t.study, t.tag, t.seed): i for i, t in enumerate(tasks)}
    results = sorted(settled + ran, key=lambda r: order[(r.task.study, r.task.tag, r.task.seed)])
    return SweepOutcome(results=results, wall_s=time.perf_counter() - started)


def summarize_groups(outcome: SweepOutcome, root: Path) -> None:
    """Aggregate every (study, tag) of the sweep that has results; record the errors of those that cannot be."""
    groups = {(r.task.study, r.task.tag): r.task for r in outcome.results if r.status != FAILED}
    for (study, _), task in sorted(groups.items()):
        try:
            path = aggregate(root, study, task.preset, task.overrides)
        except AggregateError as err:
            outcome.errors.append(str(err))
            say(f"[error  ] aggregate {study}: {err}")
            continue
        outcome.summaries.append(path)
        say(f"[summary] {path}")


def finish(outcome: SweepOutcome, what: str) -> SweepOutcome:
    """Print the final line: counts per status and the total wall time."""
    counts = {s: sum(r.status == s for r in outcome.results) for s in (RAN, SKIPPED, FAILED)}
    say(
        f"{what}: {counts[RAN]} ran, {counts[SKIPPED]} skipped, {counts[FAILED]} failed"
        f"{', ' + str(len(outcome.errors)) + ' aggregation error(s)' if outcome.errors else ''}"
        f" in {outcome.wall_s:.1f} s"
    )
    for r in outcome.results:
        if r.status == FAILED:
            say(f"  failed: {r.task.label}" + (f" (log: {r.log})" if r.log else ""))
    return outcome


#: the tier whose seed-0 run draws the committed figures of the panels the notebooks' default tier does not run
FULL_TIER = "full"


def publish_full_figures(outcome: SweepOutcome, root: Path) -> list[Path]:
    """Copy the seed-0 figures of a plain ``full`` sweep into ``figures/<study>/``, except those the default tier
    draws (their committed sidecar says ``quick``: ``make figures`` owns them). Returns the PNGs written."""
    written: list[Path] = []
    for r in outcome.results:
        t = r.task
        if r.status != RAN or t.preset != FULL_TIER or t.seed != 0 or t.overrides:
            continue
        src = root / "build" / "sweeps" / t.study / t.tag / "seed-0" / "figures" / t.study
        dest = root / "figures" / t.study
        for png in sorted(src.glob("*.png")):
            side = dest / f"{png.stem}.json"
            if side.exists() and json.loads(side.read_text()).get("preset") != FULL_TIER:
                continue
            dest.mkdir(parents=True, exist_ok=True)
            for part in sorted(src.glob(f"{png.stem}.*")):
                with atomic_path(dest / part.name) as tmp:
                    shutil.copyfile(part, tmp)
            written.append(dest / png.name)
    if written:
        say(f"[figures] {len(written)} full-tier seed-0 figure(s) of panels the default tier does not run")
    return written


def registered_seeds(study: str) -> list[int]:
    """The seeds ``study``'s committed full sweep judges over: the ``[population]`` of its ``claims.toml``
    (:class:`phenomena.claims.Population`; 0-4 where it registers none)."""
    return studies.load(study).claims.population.seed_list()


def sweep(
    study_names: Sequence[str],
    seeds: Sequence[int] | None,
    preset: str,
    overrides: dict[str, Any] | None = None,
    *,
    root: Path | None = None,
    jobs: int | None = None,
    executor: str = "local",
    device: str = "auto",
    timeout_min: int = 240,
    submitit_options: SubmititOptions | None = None,
) -> SweepOutcome:
    """Run every study in ``study_names`` at ``preset`` with ``overrides`` for every seed in ``seeds`` (None: each
    study's registered judging population, :func:`registered_seeds`), skipping tasks whose committed results are
    current, then aggregate each study. ``outcome.ok`` is False if any task failed."""
    tasks = [
        Task(s, preset, seed, normalize(overrides))
        for s in study_names
        for seed in (registered_seeds(s) if seeds is None else seeds)
    ]
    options = Options(root=Path(root or output_root()).resolve(), device=device, timeout_min=timeout_min)
    started = time.perf_counter()
    outcome = execute_all(tasks, options, jobs or os.cpu_count() or 1, executor, submitit_options)
    summarize_groups(outcome, options.root)
    publish_full_figures(outcome, options.root)
    outcome.wall_s = time.perf_counter() - started
    return finish(outcome, "sweep")


def make_figures(
    study_names: Sequence[str],
    preset: str = "full",
    *,
    root: Path | None = None,
    jobs: int | None = None,
    device: str = "auto",
    timeout_min: int = 240,
) -> SweepOutcome:
    """``make figures``: every study at seed 0 into ``figures/`` and ``data/results/`` under ``root`` (executed
    notebooks in ``build/<study>.ipynb``), claims enforced, longest first, ``jobs`` at a time."""
    tasks = [Task(s, preset, 0) for s in study_names]
    options = Options(
        root=Path(root or output_root()).resolve(), mode="figures", device=device, timeout_min=timeout_min
    )
    outcome = execute_all(tasks, options, jobs or os.cpu_count() or 1, "local", None)
    return finish(outcome, "figures")
