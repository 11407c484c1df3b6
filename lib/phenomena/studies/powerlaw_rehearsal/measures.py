"""The named measures the rehearsal claims read (:class:`phenomena.claims.Measures`): differences and gain shares of
the per-environment mean ACC / BWT over the main comparison's runs, learning-speed gaps, and the long-horizon and
robustness panels, all from the stored metrics (:mod:`.summary`). No thresholds here. Each row's resolution and the
numbers its statement names are measures as well, in :mod:`.readouts`.

The statements also name which environment is best and list a panel's gains: those are *labels*
(``@MEASURES.label``), text or records that templates may read and no row judges."""

from __future__ import annotations

from typing import Any

from phenomena.claims import Measures, NotEvaluated
from phenomena.studies.powerlaw_rehearsal.config import Config

Metrics = dict[str, Any]
REGULARISERS = ("ewc", "online_ewc", "si")
SCHEDULES = ("uniform", "exponential")  # the other rehearsal schedules at the same budget


MEASURES = Measures()


def _acc(m: Metrics, env: str) -> float:
    if env not in m["by_env"]:
        raise NotEvaluated(f"'{env}' is not among the environments")
    return m["by_env"][env]["ACC"]


def _recency(m: Metrics) -> float:
    if "recency" not in m["by_env"]:
        raise NotEvaluated("'recency' (the paper's environment) is not among the environments")
    return m["by_env"]["recency"]["ACC"]


def _best(m: Metrics, pool: tuple[str, ...], what: str) -> str:
    """The environment of ``pool`` with the highest mean ACC (the first on a tie)."""
    present = [e for e in pool if e in m["by_env"]]
    if not present:
        raise NotEvaluated(f"no {what} among the environments")
    return max(present, key=lambda e: m["by_env"][e]["ACC"])


def _share(subject: float, none: float, best: float) -> float:
    """Gain share (subject - none) / (best - none); NaN where the best other schedule gains <= 0.01."""
    return (subject - none) / (best - none) if best - none > 0.01 else float("nan")


@MEASURES
def joint_minus_none_acc(cfg: Config, m: Metrics) -> float:
    """ACC(joint training) - ACC(no rehearsal): the interference sequential training suffers."""
    if "joint" not in m["by_env"]:
        raise NotEvaluated("joint is not an environment")
    return _acc(m, "joint") - _acc(m, "none")


@MEASURES
def powerlaw_minus_none_acc(cfg: Config, m: Metrics) -> float:
    """ACC(power law) - ACC(no rehearsal)."""
    return _acc(m, "powerlaw") - _acc(m, "none")


@MEASURES
def powerlaw_bwt_share(cfg: Config, m: Metrics) -> float:
    """|BWT(power law)| / |BWT(none)|; NaN where no rehearsal forgets too little to reduce (BWT(none) >= -0.05)."""
    bwt = {e: r["BWT"] for e, r in m["by_env"].items()}
    return abs(bwt["powerlaw"]) / abs(bwt["none"]) if bwt["none"] < -0.05 else float("nan")


@MEASURES
def powerlaw_forgetting_share(cfg: Config, m: Metrics) -> float:
    """Max-based forgetting F(power law) / F(none) (Chaudhry et al. 2018: a task's best accuracy before the last
    phase minus its final one, averaged over tasks); NaN where no rehearsal forgets too little (F(none) <= 0.05)."""
    f = {e: r["F"] for e, r in m["by_env"].items()}
    return f["powerlaw"] / f["none"] if f["none"] > 0.05 else float("nan")


@MEASURES
def powerlaw_minus_best_regulariser_acc(cfg: Config, m: Metrics) -> float:
    """ACC(power law) - the best regulariser's ACC (EWC, online EWC, SI)."""
    return _acc(m, "powerlaw") - _acc(m, _best(m, REGULARISERS, "regulariser"))


@MEASURES
def powerlaw_gain_share(cfg: Config, m: Metrics) -> float:
    """Power law's ACC gain over no rehearsal as a share of the best other schedule's (uniform, exponential)."""
    best = _best(m, SCHEDULES, "other schedule")
    return _share(_acc(m, "powerlaw"), _acc(m, "none"), _acc(m, best))


@MEASURES
def recency_minus_none_acc(cfg: Config, m: Metrics) -> float:
    """ACC(recency, the paper's environment) - ACC(no rehearsal)."""
    return _recency(m) - _acc(m, "none")


@MEASURES
def recency_minus_best_regulariser_acc(cfg: Config, m: Metrics) -> float:
    """ACC(recency) - the best regulariser's ACC."""
    return _recency(m) - _acc(m, _best(m, REGULARISERS, "regulariser"))


@MEASURES
def recency_gain_share(cfg: Config, m: Metrics) -> float:
    """Recency's ACC gain over no rehearsal as a share of the best other schedule's."""
    subject = _recency(m)
    return _share(subject, _acc(m, "none"), _acc(m, _best(m, SCHEDULES, "other schedule")))


@MEASURES
def recency_minus_best_schedule_acc(cfg: Config, m: Metrics) -> float:
    """ACC(recency) - the best other schedule's ACC (uniform, exponential)."""
    subject = _recency(m)
    return subject - _acc(m, _best(m, SCHEDULES, "other schedule"))


@MEASURES
def step_matched_speed_gain(cfg: Config, m: Metrics) -> float:
    """New-task accuracy after ff_steps optimiser steps of each phase t >= 1, power law minus no rehearsal."""
    return m["learning_speed_steps"]["powerlaw"] - m["learning_speed_steps"]["none"]


@MEASURES
def facilitation_slope_gain(cfg: Config, m: Metrics) -> float:
    """Slope of new-task accuracy after ff_examples new-task examples against t >= 1, power law minus none."""
    if cfg.n_tasks < 3:
        raise NotEvaluated(f"n_tasks = {cfg.n_tasks}: a slope needs at least two phases t >= 1")
    return m["facilitation_slope"]["powerlaw"] - m["facilitation_slope"]["none"]


@MEASURES
def facilitation_slope_steps_gain(cfg: Config, m: Metrics) -> float:
    """Slope of new-task accuracy after ff_steps optimiser steps against t >= 1, power law minus none."""
    if cfg.n_tasks < 3:
        raise NotEvaluated(f"n_tasks = {cfg.n_tasks}: a slope needs at least two phases t >= 1")
    return m["facilitation_slope_steps"]["powerlaw"] - m["facilitation_slope_steps"]["none"]


@MEASURES
def powerlaw_ewc_minus_powerlaw_acc(cfg: Config, m: Metrics) -> float:
    """ACC(power law + EWC) - ACC(power law alone)."""
    if "powerlaw_ewc" not in m["by_env"]:
        raise NotEvaluated("'powerlaw_ewc' is not among the environments")
    return _acc(m, "powerlaw_ewc") - _acc(m, "powerlaw")


@MEASURES
def joint_minus_powerlaw_acc(cfg: Config, m: Metrics) -> float:
    """ACC(joint training) - ACC(power law)."""
    if "joint" not in m["by_env"]:
        raise NotEvaluated("joint is not an environment")
    return _acc(m, "joint") - _acc(m, "powerlaw")


def _horizon(m: Metrics, subject: str = "powerlaw") -> dict[str, dict[str, Any]]:
    """The long-horizon panel's rows by environment (the pure power law as 'powerlaw_pure')."""
    rows = {r["env"] + ("_pure" if r["pure"] else ""): r for r in m["horizon"]}
    if not {"powerlaw", "powerlaw_pure", "exponential", "none"} <= rows.keys():
        raise NotEvaluated("horizon_tasks = 0")
    if subject not in rows:
        raise NotEvaluated(f"no {subject} run in the long-horizon panel")
    return rows


def _horizon_best(m: Metrics) -> str:
    """The other schedule (uniform, exponential) with the highest ACC in the long-horizon panel."""
    rows = _horizon(m)
    return max((e for e in SCHEDULES if e in rows), key=lambda e: rows[e]["ACC"])


def _horizon_share(m: Metrics, subject: str) -> float:
    rows = _horizon(m, subject)
    return _share(rows[subject]["ACC"], rows["none"]["ACC"], rows[_horizon_best(m)]["ACC"])


@MEASURES
def horizon_powerlaw_gain_share(cfg: Config, m: Metrics) -> float:
    """Long horizon (``horizon_runs`` runs per config seed, default ``n_seeds``, averaged): power law's ACC gain over none as a share of the best other schedule's."""
    return _horizon_share(m, "powerlaw")


@MEASURES
def horizon_recency_gain_share(cfg: Config, m: Metrics) -> float:
    """Long horizon (``horizon_runs`` runs per config seed, default ``n_seeds``, averaged): recency's ACC gain over none as a share of the best other schedule's."""
    return _horizon_share(m, "recency")


@MEASURES
def horizon_recency_minus_best_schedule_acc(cfg: Config, m: Metrics) -> float:
    """Long horizon: ACC(recency, the paper's environment) - ACC(the best other schedule: uniform, exponential)."""
    rows = _horizon(m, "recency")
    return rows["recency"]["ACC"] - rows[_horizon_best(m)]["ACC"]


@MEASURES
def horizon_oldest_pure_minus_exponential(cfg: Config, m: Metrics) -> float:
    """Long horizon: final accuracy on the horizon_oldest oldest tasks, pure power law L^-d minus exponential."""
    rows = _horizon(m)
    return rows["powerlaw_pure"]["oldest"] - rows["exponential"]["oldest"]


def _robust(cfg: Config, m: Metrics, panel: str) -> dict[float, tuple[float, float]]:
    """Per value of a robustness axis: ACC(power law) - ACC(none) and its resolution. One seed per value but the
    main one; the budget panel has no 'none' runs, so its gain is over the main comparison's no-rehearsal ACC."""
    acc = {(r["panel"], r["value"], r["env"]): r["ACC"] for r in m["robustness"]}
    values = sorted({v for p, v, e in acc if p == panel and e == "powerlaw"})
    if len(values) < 2:
        raise NotEvaluated(f"the {panel} panel has fewer than 2 values")
    main = {"n_tasks": cfg.n_tasks, "width": cfg.hidden[0], "budget": cfg.budget}[panel]
    out = {}
    for v in values:
        runs, tasks = (
            (cfg.n_seeds, cfg.n_tasks) if v == main else (1, v if panel == "n_tasks" else cfg.n_tasks)
        )
        res = 1 / (runs * tasks * cfg.n_test)
        none = acc.get((panel, v, "none"))
        if none is None:  # the main comparison's no rehearsal: a change on the finer of the two grids
            none, res = _acc(m, "none"), min(res, 1 / (cfg.n_seeds * cfg.n_tasks * cfg.n_test))
        out[v] = (acc[(panel, v, "powerlaw")] - none, res)
    return out


@MEASURES
def robust_min_gain_n_tasks(cfg: Config, m: Metrics) -> float:
    """Smallest ACC(power law) - ACC(none) across the number-of-tasks panel."""
    return min(_robust(cfg, m, "n_tasks").values())[0]


@MEASURES
def robust_min_gain_width(cfg: Config, m: Metrics) -> float:
    """Smallest ACC(power law) - ACC(none) across the hidden-width panel."""
    return min(_robust(cfg, m, "width").values())[0]


@MEASURES
def robust_min_gain_budget(cfg: Config, m: Metrics) -> float:
    """Smallest ACC(power law) - ACC(none) across the rehearsal-budget panel."""
    return min(_robust(cfg, m, "budget").values())[0]
