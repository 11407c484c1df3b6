"""Everything the rehearsal notebook plots, computed in one call: ``compute(cfg, run) -> Results``.

Every environment run is cached on its own (``run.cached``: keyed by the config, environment, seed and variation
and the source of this module and everything it imports).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from phenomena import workers
from phenomena.studies.powerlaw_rehearsal.config import REHEARSAL_FORMS, Config
from phenomena.studies.powerlaw_rehearsal.schedules import make_schedule
from phenomena.studies.powerlaw_rehearsal.stream import (
    EnvResult,
    acc_bwt_fwt,
    facilitation_slope,
    run_environment,
    summary_table,
)

if TYPE_CHECKING:
    from phenomena.run import Run

Job = tuple[str, int, dict[str, Any]]  # (environment, seed, variation)
#: how one job becomes a result: (cfg, job, run) -> EnvResult; the default trains it (:func:`cached_run`), the
#: controls pass learners whose outcome is known (:mod:`.controls`)
Runner = Callable[["Config", Job, "Run | None"], "EnvResult"]


@dataclass
class Results:
    """What the notebook plots: the schedules of every environment form, the main comparison's runs (``runs``,
    one per environment and seed) with their per-run ``table`` and per-environment ``by_env`` (mean, std), the
    exponent sweep at matched budget (``sweep``: one row per exponent and seed), the robustness panels (``robust``:
    one row per panel, value and environment) and the long-horizon panel (``horizon``: one row per schedule, with
    its ACC, the mean final accuracy of the oldest ``horizon_oldest`` tasks and the final accuracy of every task)."""

    seeds: list[int]
    schedules: dict[str, np.ndarray]
    runs: list[EnvResult]
    table: pd.DataFrame
    by_env: pd.DataFrame
    sweep: pd.DataFrame
    robust: pd.DataFrame
    horizon: pd.DataFrame
    #: the runs the facilitation trends read, per environment (power law and no rehearsal: the main comparison's runs
    #: and the further run-seeds of :func:`facilitation_seeds`); an environment not here reads its main runs
    facilitation_runs: dict[str, list[EnvResult]] = field(default_factory=dict)

    def of(self, env: str) -> list[EnvResult]:
        return [r for r in self.runs if r.env == env]

    def for_facilitation(self, env: str) -> list[EnvResult]:
        """The runs of ``env`` that its facilitation trend reads: its facilitation runs if it has any, else its
        main runs."""
        return self.facilitation_runs.get(env) or self.of(env)


#: the run seeds of config seed s are s, s + 1000, s + 2000, ...: far apart, so that runs of different config seeds
#: (< 1000) never share a seed, and the first run of every config seed is the same whatever ``n_seeds`` is
RUN_SEED_STRIDE = 1000


def seeds_of(cfg: Config) -> list[int]:
    """The run seeds of the main comparison and the long horizon: ``cfg.seed + RUN_SEED_STRIDE * i`` for
    i < ``n_seeds`` (the sweep's per-seed results stay independent; n_seeds = 1: the config seed itself)."""
    return run_seeds(cfg, cfg.n_seeds)


def run_seeds(cfg: Config, n: int) -> list[int]:
    """The first ``n`` run seeds of config seed s: s, s + :data:`RUN_SEED_STRIDE`, s + 2 :data:`RUN_SEED_STRIDE`, ..."""
    return [cfg.seed + RUN_SEED_STRIDE * i for i in range(n)]


#: the environments whose facilitation trends the claims compare (``facilitation_slope_gain`` and its per-step twin)
FACILITATION_ENVS = ("powerlaw", "none")


def facilitation_seeds(cfg: Config) -> list[int]:
    """The run seeds at which the facilitation trends of :data:`FACILITATION_ENVS` are read: the main comparison's
    (:func:`seeds_of`) followed by further ones on the same stride, ``max(n_seeds, facilitation_runs)`` in all."""
    return run_seeds(cfg, max(cfg.n_seeds, cfg.facilitation_runs))


def facilitation_jobs(cfg: Config) -> list[Job]:
    """The (environment, seed, variation) jobs of the facilitation runs; the first ``n_seeds`` per environment are
    main-comparison jobs (trained once, reused)."""
    return [
        (env, s, {}) for env in FACILITATION_ENVS if env in cfg.environments for s in facilitation_seeds(cfg)
    ]


def job_key(job: Job) -> str:
    """A job's identity: environment, seed and variation (JSON, sorted)."""
    env, seed, var = job
    return json.dumps([env, seed, var], sort_keys=True, default=list)


def run_many(
    cfg: Config,
    jobs: list[Job],
    run: Run | None,
    desc: str,
    done: dict[str, EnvResult] | None = None,
    runner: Runner | None = None,
) -> list[EnvResult]:
    """Run (environment, seed, variation) jobs with one progress bar, each through ``runner`` (default: trained
    and cached by :func:`cached_run`). A job already in ``done`` (a dict from :func:`job_key` to results of the same
    ``cfg``, updated in place) reuses that result, which matters when the cache is off."""
    done = {} if done is None else done
    runner = runner or cached_run
    out = []
    for job in tqdm(jobs, desc=desc, disable=run is None):
        key = job_key(job)
        if key not in done:
            done[key] = runner(cfg, job, run)
        out.append(done[key])
    return out


def cached_run(cfg: Config, job: Job, run: Run) -> EnvResult:
    """One environment run, cached on (config, environment, seed, variation, source)."""
    env, seed, var = job
    key = {"cfg": cfg.to_dict(), "env": env, "seed": seed, **var}
    stored = run.cached(
        f"rehearsal-{env}", lambda: run_environment(cfg, env, seed, run.device, **var).to_dict(), key=key
    )
    return EnvResult.from_dict(stored)


def prefill_job(run: Run, cfg: Config, job: Job) -> None:
    """:func:`cached_run` in the argument order of :func:`phenomena.workers.prefill` (run first): a worker trains
    and caches the job, the sequential code of :func:`compute` reads it back. Every run seeds its own data,
    initialisation, shuffles and schedule from its seed, so where it trains does not change its result."""
    cached_run(cfg, job, run)


def _cost(job: Job, cfg: Config) -> tuple[int, int]:
    """A rough size of a job, to start the longest ones first: its number of tasks, then its widest layer."""
    _, _, var = job
    return var.get("n_tasks", cfg.n_tasks), max(var.get("hidden", cfg.hidden))


def robustness_jobs(cfg: Config) -> list[tuple[str, float, Job]]:
    """(panel, value, job) of the robustness panels: power law and none for each task count and width; power law
    alone for each budget (without rehearsal the budget means nothing). One seed: the first of the main ones."""
    variants = (
        [("n_tasks", v, {"n_tasks": v}) for v in cfg.robust_tasks]
        + [("width", v, {"hidden": (v,) * len(cfg.hidden)}) for v in cfg.robust_widths]
        + [("budget", v, {"budget": v}) for v in cfg.robust_budgets]
    )
    seed = seeds_of(cfg)[0]
    return [
        (panel, value, (env, seed, var))
        for panel, value, var in variants
        for env in ("none", "powerlaw")
        if not (env == "none" and panel == "budget")
    ]


def horizon_jobs(cfg: Config) -> list[tuple[str, Job]]:
    """(label, job) of the long-horizon panel: T = ``horizon_tasks`` phases at each run seed of the main comparison
    (:func:`seeds_of`; its first ``horizon_runs`` when that is set), at the reference budget: no rehearsal, the shifted power law, the pure power law L^-d
    (``horizon_exponent``: a heavy tail), an exponential (a light tail) and uniform rehearsal."""
    if not cfg.horizon_tasks:
        return []
    T = {"n_tasks": cfg.horizon_tasks}
    pure = {**T, "offset": 0.0, "exponent": cfg.horizon_exponent}
    return [
        (label, (env, seed, var))
        for seed in seeds_of(cfg)[: cfg.horizon_runs or None]
        for label, env, var in (
            ("none", "none", T),
            (f"power law (1 + L/{cfg.offset:g})^-{cfg.exponent:g}", "powerlaw", T),
            (f"pure power law L^-{cfg.horizon_exponent:g}", "powerlaw", pure),
            (f"recency s^-{cfg.recency_exponent:g} (the paper's)", "recency", T),
            (f"exponential e^(-L/{cfg.tau:g})", "exponential", T),
            ("uniform", "uniform", T),
        )
    ]


def horizon_table(cfg: Config, jobs: list[tuple[str, Job]], runs: list[EnvResult]) -> pd.DataFrame:
    """One row per horizon schedule, averaged over its run seeds: ACC, the oldest tasks' mean final accuracy, the
    final accuracy per task, and how many runs the means are over."""
    k = cfg.horizon_oldest
    by_label: dict[str, list[tuple[Job, EnvResult]]] = {}
    for (label, job), r in zip(jobs, runs):
        by_label.setdefault(label, []).append((job, r))
    rows = []
    for label, pairs in by_label.items():
        job = pairs[0][0]
        finals = np.mean([r.R[-1] for _, r in pairs], axis=0)
        rows.append(
            {
                "schedule": label,
                "env": job[0],
                "pure": "offset" in job[2],
                "ACC": float(finals.mean()),
                "oldest": float(finals[:k].mean()),
                "final": finals.tolist(),
                "runs": len(pairs),
            }
        )
    return pd.DataFrame(rows)


def compute(cfg: Config, run: Run | None, runner: Runner | None = None) -> Results:
    """Run (cached) every environment over the seeds, the exponent sweep, the robustness panels and the long
    horizon. With the default runner, the distinct jobs are first trained in worker processes where
    :func:`phenomena.workers.prefill` starts any (longest first), then read back from the cache in order. ``runner``
    replaces the training of each job (the null and oracle controls); ``run`` may then be None."""
    seeds = seeds_of(cfg)
    schedules = {f: make_schedule(f, cfg, seed=seeds[0]) for f in (*REHEARSAL_FORMS, "none", "joint")}
    schedules["powerlaw (pure)"] = make_schedule("powerlaw", cfg, offset=0.0)
    main_jobs = [(env, s, {}) for env in cfg.environments for s in seeds]
    sweep_jobs = [
        ("powerlaw", s, {} if d == cfg.exponent else {"exponent": d})
        for d in cfg.sweep_exponents
        for s in seeds
    ]  # d = cfg.exponent: the main run, reused
    jobs = robustness_jobs(cfg)
    long = horizon_jobs(cfg)
    fac_jobs = facilitation_jobs(cfg)
    if runner is None and run is not None:
        every = main_jobs + sweep_jobs + [job for _, _, job in jobs] + [job for _, job in long] + fac_jobs
        unique = list({job_key(job): job for job in every}.values())
        unique.sort(key=lambda job: _cost(job, cfg), reverse=True)
        workers.prefill(run, [(prefill_job, (cfg, job)) for job in unique], what="environment runs")
    done: dict[str, EnvResult] = {}
    runs = run_many(cfg, main_jobs, run, "environments", done, runner)
    table = summary_table(runs)
    by_env = (
        table.groupby("env")[["ACC", "BWT", "FWT", "F"]].agg(["mean", "std"]).reindex(list(cfg.environments))
    )
    swept = run_many(cfg, sweep_jobs, run, "exponent sweep", done, runner)
    exps = [d for d in cfg.sweep_exponents for _ in seeds]
    sweep = pd.DataFrame(
        [{"exponent": d, "seed": r.seed, **acc_bwt_fwt(r.R, r.b)} for d, r in zip(exps, swept)]
    )
    robust_runs = run_many(cfg, [job for _, _, job in jobs], run, "robustness", done, runner)
    rows = [
        {"panel": p, "value": v, "env": r.env, "ACC": acc_bwt_fwt(r.R, r.b)["ACC"]}
        for (p, v, _), r in zip(jobs, robust_runs)
    ]
    main = [("n_tasks", cfg.n_tasks), ("width", cfg.hidden[0]), ("budget", cfg.budget)]
    rows += [
        {"panel": p, "value": v, "env": e, "ACC": by_env.loc[e, ("ACC", "mean")]}
        for p, v in main
        for e in ("none", "powerlaw")
        if not (p == "budget" and e == "none")
    ]
    robust = pd.DataFrame(rows).sort_values(["panel", "env", "value"])
    horizon = horizon_table(
        cfg, long, run_many(cfg, [job for _, job in long], run, "long horizon", done, runner)
    )
    fac: dict[str, list[EnvResult]] = {}
    for job, r in zip(fac_jobs, run_many(cfg, fac_jobs, run, "facilitation runs", done, runner)):
        fac.setdefault(job[0], []).append(r)
    return Results(seeds, schedules, runs, table, by_env, sweep, robust, horizon, fac)


def _speeds(r: EnvResult, key: str) -> np.ndarray:
    """A run's new-task accuracy in every phase (T,), after ``ff_examples`` new-task examples (``key="example"``)
    or after ``ff_steps`` optimiser steps (``key="step"``)."""
    return np.asarray(r.ff_acc if key == "example" else r.extra["ff_step_acc"], dtype=float)


def speed_by_phase(results: Results, envs: list[str], key: str = "step") -> dict[str, list[float]]:
    """Per environment, new-task accuracy in each phase t >= 1 (mean over the main comparison's runs), read per
    ``key`` as in :func:`_speeds`."""
    return {env: np.mean([_speeds(r, key)[1:] for r in results.of(env)], axis=0).tolist() for env in envs}


def learning_speed(results: Results, envs: list[str], key: str = "example") -> dict[str, float]:
    """Mean new-task accuracy over phases t >= 1 per environment, read after ``ff_examples`` new-task examples
    (``key="example"``) or after ``ff_steps`` optimiser steps (``key="step"``)."""
    return {env: float(np.mean([_speeds(r, key)[1:] for r in results.of(env)])) for env in envs}


def facilitation_by_run(results: Results, envs: list[str], key: str = "example") -> dict[str, list[float]]:
    """Per environment, the slope of learning speed (read per ``key``) against phase t >= 1 of each of its
    facilitation runs (:meth:`Results.for_facilitation`; positive: later tasks are learned faster)."""
    return {env: [facilitation_slope(_speeds(r, key)) for r in results.for_facilitation(env)] for env in envs}


def facilitation(results: Results, envs: list[str], key: str = "example") -> dict[str, float]:
    """Per environment, the mean of :func:`facilitation_by_run`."""
    return {env: float(np.mean(v)) for env, v in facilitation_by_run(results, envs, key).items()}
