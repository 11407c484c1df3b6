"""What the rehearsal rows read beside their measures (registered into :data:`.measures.MEASURES`): each row's
resolution, and the numbers and labels its statement and note templates name.

Resolution: every row's number is an accuracy over ``n_test`` test images or an average of such, so the smallest
change it can show is one test image of one task of one run, carried through the average (the main comparison's
means are over ``n_seeds`` runs of ``n_tasks`` tasks, the long horizon's over ``n_seeds`` runs of ``horizon_tasks``; the robustness panels have one run per
value but the main one), and divided by the denominator of a share."""

from __future__ import annotations

from typing import Any

import numpy as np

from phenomena.studies.powerlaw_rehearsal.config import Config
from phenomena.studies.powerlaw_rehearsal.measures import (
    MEASURES,
    REGULARISERS,
    SCHEDULES,
    Metrics,
    _acc,
    _best,
    _horizon,
    _horizon_best,
    _robust,
)


@MEASURES
def acc_resolution(cfg: Config, m: Metrics) -> float:
    """One test image of a mean ACC (or a difference of two): 1 / (n_seeds x n_tasks x n_test)."""
    return 1 / (cfg.n_seeds * cfg.n_tasks * cfg.n_test)


@MEASURES
def bwt_resolution(cfg: Config, m: Metrics) -> float:
    """One test image of a mean BWT (tasks 0..T-2): 1 / (n_seeds x (n_tasks - 1) x n_test)."""
    return 1 / (cfg.n_seeds * (cfg.n_tasks - 1) * cfg.n_test)


@MEASURES
def speed_resolution(cfg: Config, m: Metrics) -> float:
    """One test image of a mean learning speed (phases t >= 1): 1 / (n_seeds x (n_tasks - 1) x n_test)."""
    return 1 / (cfg.n_seeds * (cfg.n_tasks - 1) * cfg.n_test)


@MEASURES
def slope_resolution(cfg: Config, m: Metrics) -> float:
    """One test image in the phase nearest the mean phase (but not at it) of one run, through the slope's fit."""
    t = np.arange(1, cfg.n_tasks, dtype=float)
    dev = np.abs(t - t.mean())
    return float(dev[dev > 0].min() / ((t - t.mean()) ** 2).sum() / (cfg.n_seeds * cfg.n_test))


@MEASURES
def bwt_share_resolution(cfg: Config, m: Metrics) -> float | None:
    """One test image of BWT(power law) over |BWT(none)|; None where the share is undefined."""
    none = m["by_env"]["none"]["BWT"]
    return bwt_resolution(cfg, m) / abs(none) if none < -0.05 else None


@MEASURES
def forgetting_share_resolution(cfg: Config, m: Metrics) -> float | None:
    """One test image of F(power law) over F(none); None where the share is undefined."""
    none = m["by_env"]["none"]["F"]
    return bwt_resolution(cfg, m) / none if none > 0.05 else None


@MEASURES
def gain_share_resolution(cfg: Config, m: Metrics) -> float | None:
    """One test image of the subject's ACC over the best other schedule's gain; None where the share is undefined."""
    gain = _acc(m, _best(m, SCHEDULES, "other schedule")) - _acc(m, "none")
    return acc_resolution(cfg, m) / gain if gain > 0.01 else None


@MEASURES
def horizon_gain_share_resolution(cfg: Config, m: Metrics) -> float | None:
    """Long horizon (n_seeds runs of horizon_tasks tasks): one test image over the best other schedule's gain."""
    rows = _horizon(m)
    gain = rows[_horizon_best(m)]["ACC"] - rows["none"]["ACC"]
    return 1 / (cfg.n_seeds * cfg.horizon_tasks * cfg.n_test) / gain if gain > 0.01 else None


@MEASURES
def horizon_acc_resolution(cfg: Config, m: Metrics) -> float:
    """One test image of the long horizon's mean ACC (or a difference of two): 1 / (n_seeds x horizon_tasks x
    n_test)."""
    return 1 / (cfg.n_seeds * cfg.horizon_tasks * cfg.n_test)


@MEASURES
def oldest_resolution(cfg: Config, m: Metrics) -> float:
    """One test image of the oldest tasks' mean final accuracy: 1 / (n_seeds x horizon_oldest x n_test)."""
    return 1 / (cfg.n_seeds * cfg.horizon_oldest * cfg.n_test)


@MEASURES
def robust_resolution_n_tasks(cfg: Config, m: Metrics) -> float:
    """One test image of the gain at the number of tasks where it is smallest."""
    return min(_robust(cfg, m, "n_tasks").values())[1]


@MEASURES
def robust_resolution_width(cfg: Config, m: Metrics) -> float:
    """One test image of the gain at the width where it is smallest."""
    return min(_robust(cfg, m, "width").values())[1]


@MEASURES
def robust_resolution_budget(cfg: Config, m: Metrics) -> float:
    """One test image of the gain at the budget multiplier where it is smallest."""
    return min(_robust(cfg, m, "budget").values())[1]


# ------------------------------------------------------------------------------ what the statements and notes name


@MEASURES
def example_matched_speed_gain(cfg: Config, m: Metrics) -> float:
    """New-task accuracy after ff_examples new-task examples of each phase t >= 1, power law minus none."""
    return m["learning_speed"]["powerlaw"] - m["learning_speed"]["none"]


@MEASURES
def steps_per_example_growth(cfg: Config, m: Metrics) -> float:
    """Optimiser steps per new-task example, the power-law stream's last phase over its first rehearsal phase."""
    b = m["budget"]
    return (b["n_new"] + b["B_last"]) / (b["n_new"] + b["B_first"])


@MEASURES.label
def budget_metrics(cfg: Config, m: Metrics) -> dict[str, Any]:
    """The stored ``budget`` metrics (n_new, B_first, B_last, rehearsal_share): ``budget`` names the config's field."""
    return m["budget"]


def _named(m: Metrics, env: str) -> dict[str, Any]:
    return {"name": env, **m["by_env"][env]}


@MEASURES.label
def best_regulariser(cfg: Config, m: Metrics) -> dict[str, Any]:
    """The regulariser with the highest ACC: its name, ACC, BWT and FWT."""
    return _named(m, _best(m, REGULARISERS, "regulariser"))


@MEASURES.label
def best_schedule(cfg: Config, m: Metrics) -> dict[str, Any]:
    """The other schedule (uniform, exponential) with the highest ACC: its name, ACC, BWT and FWT."""
    return _named(m, _best(m, SCHEDULES, "other schedule"))


@MEASURES.label
def horizon_rows(cfg: Config, m: Metrics) -> dict[str, Any]:
    """The long-horizon panel's rows by environment ('powerlaw_pure' for the pure power law; 'best': the best other
    schedule's row)."""
    rows = _horizon(m)
    return {**rows, "best": rows[_horizon_best(m)]}


def _gains(panel: str) -> Any:
    def gains(cfg: Config, m: Metrics) -> str:
        return ", ".join(f"{v:g}: {g:+.3f}" for v, (g, _) in _robust(cfg, m, panel).items())

    gains.__name__ = f"gains_{panel}"
    return gains


for _panel in ("n_tasks", "width", "budget"):
    MEASURES.label(_gains(_panel))  # gains_<panel>: "value: gain" over the axis, for the statement
