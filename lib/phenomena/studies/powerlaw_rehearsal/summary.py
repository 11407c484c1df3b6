"""What a rehearsal run stores: ``summarize(cfg, results) -> metrics``, the JSON-ready numbers of one run
(per-environment means and standard deviations of ACC / BWT / FWT and max-based forgetting F over the main
comparison's seeds, the exponent sweep, the robustness and long-horizon panels, learning speeds, step-matched learning
speed per phase, example- and step-matched facilitation slopes and the step-matched slope of every facilitation
run, the schedule's shape and budget). The claims read them through the named measures (:mod:`.measures`); this
module and the computation it summarises are all that the stored metrics depend on
(:func:`phenomena.run.study_metrics_hash`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from phenomena.studies.powerlaw_rehearsal.config import Config
from phenomena.studies.powerlaw_rehearsal.experiment import (
    Results,
    facilitation,
    facilitation_by_run,
    learning_speed,
    speed_by_phase,
)
from phenomena.studies.powerlaw_rehearsal.schedules import phase_budget, predicted_load


def _fit_r2(x: np.ndarray, y: np.ndarray) -> float:
    """R^2 of the least-squares line y ~ x."""
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (slope * x + intercept)
    return float(1 - resid.var() / y.var())


def summarize(cfg: Config, results: Results) -> dict[str, Any]:
    """JSON-ready metrics: per-environment means and standard deviations over seeds, the exponent sweep, the
    robustness and long-horizon panels, learning speeds, and what the schedule and its budget look like."""
    envs = list(cfg.environments)
    means = results.by_env.xs("mean", axis=1, level=1)
    stds = results.by_env.xs("std", axis=1, level=1).fillna(0)
    sweep = results.sweep.groupby("exponent")["ACC"].mean()
    pl = results.schedules["powerlaw"]
    counts = pl[:-1, -1][::-1].astype(float)  # the last phase's rehearsal by lag 1..T-1
    lags = np.arange(1, len(counts) + 1, dtype=float)
    budget = phase_budget(cfg, cfg.n_tasks)
    return {
        "by_env": {env: {k: float(v) for k, v in row.items()} for env, row in means.iterrows()},
        "by_env_std": {env: {k: float(v) for k, v in row.items()} for env, row in stds.iterrows()},
        "per_seed": results.table[["env", "seed", "ACC", "BWT", "FWT", "F"]].to_dict(orient="records"),
        "exponent_sweep": sweep.to_dict(),
        "best_exponent": float(sweep.idxmax()),
        "worst_exponent": float(sweep.idxmin()),
        "robustness": results.robust.to_dict(orient="records"),
        "horizon": results.horizon.to_dict(orient="records"),
        "facilitation_slope": facilitation(results, envs),
        "facilitation_slope_steps": facilitation(results, envs, "step"),
        "facilitation_n_runs": {env: len(results.for_facilitation(env)) for env in envs},
        "facilitation_slope_steps_by_run": facilitation_by_run(
            results, list(results.facilitation_runs), "step"
        ),
        "speed_steps_by_phase": speed_by_phase(results, envs, "step"),
        "learning_speed": learning_speed(results, envs, "example"),
        "learning_speed_steps": learning_speed(results, envs, "step"),
        "schedule_fit": {
            "r2_log_n_vs_lag": _fit_r2(lags, np.log(counts)),
            "r2_log_n_vs_log_lag": _fit_r2(np.log(lags), np.log(counts)),
        }
        if len(counts) > 2
        else {},
        "budget": {
            "n_new": cfg.n_new,
            "B_first": int(budget[1]),
            "B_last": int(budget[-1]),
            "rehearsal_share": predicted_load(pl)["share"],
        },
        "data": results.runs[0].extra.get("source", ""),
    }
