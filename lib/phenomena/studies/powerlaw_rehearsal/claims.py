"""The paper's claims as checkable numbers: ``summarize(cfg, results) -> metrics``, ``claims(cfg, metrics)``,
``departures(cfg, metrics)`` and the thresholds they use, with the evidence each was set from."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from phenomena.claims import Claim, Threshold, expectation, gpu_thresholds
from phenomena.studies.powerlaw_rehearsal.config import Config
from phenomena.studies.powerlaw_rehearsal.experiment import Results, facilitation, learning_speed
from phenomena.studies.powerlaw_rehearsal.schedules import phase_budget, predicted_load

# The paper reports "comparable or superior" without tables we could recover offline. The margins come from the
# pilot in the study notes (seeded quick runs: none 0.694, EWC 0.752, SI 0.758, power law 0.911, uniform 0.919,
# 3 seeds), set before this notebook's runs; they are the same at every preset but smoke. _S0: set in this session
# from the paper and seed 0 only, before other seeds were run with them. The 5-seed sweep judges them all.
_PILOT = "study notes' CPU pilot (3 seeds, before this notebook)"
_S0 = "set from the paper and seed 0 only, before other seeds"
_SMOKE = "smoke: wiring only, never enforced"
_REDEF = "redefined in issue 17"
_QUICK = {
    "interference": Threshold(
        0.10,
        _REDEF
        + " (was ACC(none) < 0.8, which a net that learns nothing passes at 0.1): sequential training ends at "
        "least 0.1 ACC below joint training; the pilot's gap was 0.694 vs joint ~0.93",
    ),
    "none_bwt": Threshold(-0.10, _PILOT),
    "vs_none": Threshold(0.12, _PILOT),
    "bwt_share": Threshold(
        0.25,
        _REDEF
        + " (was |BWT(power law)| < 0.05, which a net that learns nothing passes with BWT 0): the power law "
        "leaves at most a quarter of no rehearsal's forgetting; the old 0.05 over the pilot's BWT(none) ~ -0.2",
    ),
    "vs_reg": Threshold(0.05, _PILOT),
    "comparable": Threshold(
        0.8,
        _REDEF
        + " (was ACC(power law) - ACC(other) > -0.04 against each schedule alone, which identical streams "
        "pass): the power law keeps >= 80% of the best other schedule's gain over no rehearsal; the pilot's 'comparable' "
        "margin of 0.04 ACC is 18% of its best gain (uniform 0.919 - none 0.694)",
    ),
    "ff": Threshold(0.05, "earlier session (seeds 0-1 in view), for the example-matched view; kept as is"),
    "joint": Threshold(0.0, "definition: joint training (all data every phase) is the upper bound"),
    "oldest": Threshold(0.0, _S0 + " (sign: the heavy tail rehearses the oldest tasks more)"),
    "ff_trend": Threshold(
        0.0,
        "sign: the paper's qualitative claim (later tasks learned faster); row added in issue 22 with the "
        "committed 5-seed sweep in view (the slopes were already in its metrics), not tuned",
    ),
    "robust": Threshold(
        0.0,
        "sign: power law still mitigates interference (beats no rehearsal) at every value of the axis, the paper's "
        "'robust' without a number; rows added in issue 22 with the committed 5-seed sweep in view (the panels were "
        "already in its metrics), not tuned",
    ),
    "superior": Threshold(
        0.0,
        "sign: 'superior' is the interval of ACC(recency) - ACC(best other schedule) entirely above 0 (issue 22); "
        "set with the recency environment, before any run of it",
    ),
    "combine": Threshold(
        0.0,
        "sign: the combination at least as good as power law alone; row added in issue 22 with the committed "
        "5-seed sweep in view (power law + EWC was 0.018-0.028 below power law at every seed)",
    ),
}
_PAPER_WHY = "paper preset: the paper's tables could not be recovered offline, so its margins are the pilot's, as at quick"
THRESHOLDS: dict[str, dict[str, Threshold]] = {
    "smoke": {k: Threshold(t.value, _SMOKE) for k, t in _QUICK.items()},
    "quick": _QUICK,
    "paper": {k: Threshold(t.value, f"{_PAPER_WHY}: {t.evidence}") for k, t in _QUICK.items()},
}
_FF_WHY = "quick: per optimiser step, rehearsal learns the new task no faster than no rehearsal"
_COMBINE_WHY = (
    "quick: on the power-law stream a grid (docs/calibration/powerlaw_rehearsal.md, seeds 0-1) found no lambda that "
    "gains: 0.1-1 within +-0.004 of power law alone, 3 and up below it; at the adopted lambda 1 the difference is "
    "expected to be noise (expectation set from that grid, before the sweep; at lambda 10 the committed sweep had "
    "-0.018 to -0.028, a fail)"
)
_SUPERIOR_WHY = (
    "quick, set after the 5-seed sweep that first ran the recency environment: -0.028 [-0.039, -0.017], below "
    "uniform rehearsal at every seed (the row was added, with its sign threshold, before any run): at T = 10 and the "
    "same budget, letting tasks go unrehearsed for phases costs more than concentrating rehearsal on recent ones gains"
)
#: the environments' names in statements
NAMES = {
    "powerlaw": "power law (time since introduced)",
    "recency": "recency power law (time since last presented)",
}


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
        "per_seed": results.table[["env", "seed", "ACC", "BWT", "FWT"]].to_dict(orient="records"),
        "exponent_sweep": sweep.to_dict(),
        "best_exponent": float(sweep.idxmax()),
        "worst_exponent": float(sweep.idxmin()),
        "robustness": results.robust.to_dict(orient="records"),
        "horizon": results.horizon.to_dict(orient="records"),
        "facilitation_slope": facilitation(results, envs),
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


def claims(cfg: Config, m: dict[str, Any]) -> list[Claim]:
    """The paper's claims as numbers from the per-environment means (thresholds in ``THRESHOLDS``)."""
    th = THRESHOLDS[cfg.preset]
    acc = {env: row["ACC"] for env, row in m["by_env"].items()}
    bwt = {env: row["BWT"] for env, row in m["by_env"].items()}
    ex, st = m["learning_speed"], m["learning_speed_steps"]
    rows = [
        Claim.above(
            id="interference_acc",
            statement="ACC(joint training) - ACC(no rehearsal)",
            paper="catastrophic interference (sequential)",
            ours=acc["joint"] - acc["none"],
            bound=th["interference"],
        )
        if "joint" in acc
        else Claim.not_evaluated(
            id="interference_acc",
            statement="ACC(joint) - ACC(none)",
            paper="catastrophic interference (sequential)",
            reason="joint is not an environment",
        ),
        Claim.below(
            id="interference_bwt",
            statement="no rehearsal: BWT",
            paper="large forgetting",
            ours=bwt["none"],
            bound=th["none_bwt"],
        ),
        Claim.above(
            id="powerlaw_vs_none",
            statement="ACC(power-law) - ACC(none)",
            paper="mitigates interference",
            ours=acc["powerlaw"] - acc["none"],
            bound=th["vs_none"],
        ),
        _bwt_share(bwt, th),
    ]
    regs = [e for e in ("ewc", "online_ewc", "si") if e in acc]
    rows.append(
        _vs_best(
            "powerlaw_vs_regularisers",
            "power-law",
            "powerlaw",
            regs,
            "regulariser",
            acc,
            th["vs_reg"],
            "comparable or superior to EWC / SI",
        )
    )
    rows.append(
        _comparable(
            "powerlaw_comparable_to_best_schedule",
            f"T = {cfg.n_tasks}, matched budget",
            acc,
            {e: acc[e] for e in ("uniform", "exponential") if e in acc},
            th,
        )
    )
    rows += _recency_claims(cfg, acc, bwt, regs, th)
    rows.append(
        Claim.above(
            id="forward_facilitation",
            statement=f"new-task accuracy after {cfg.ff_steps} optimiser steps of each phase t >= 1 (step-matched): power "
            f"law - none (example-matched view, which gives rehearsal more steps: {ex['powerlaw'] - ex['none']:+.3f})",
            paper="forward facilitation (faster learning of later tasks)",
            ours=st["powerlaw"] - st["none"],
            bound=th["ff"],
            expect=expectation(cfg.preset, _FF_WHY, quick="fails"),
            note=_FF_WHY,
        )
    )
    fs = m["facilitation_slope"]
    rows.append(
        Claim.above(
            id="facilitation_trend",
            statement=f"slope of new-task accuracy after {cfg.ff_examples} new-task examples against the task's index "
            f"t >= 1: power law minus no rehearsal ({fs['powerlaw']:+.4f} vs {fs['none']:+.4f} per task)",
            paper="forward facilitation: later tasks are learned faster (abstract)",
            ours=fs["powerlaw"] - fs["none"],
            bound=th["ff_trend"],
        )
    )
    if "powerlaw_ewc" in acc:
        rows.append(
            Claim.above(
                id="powerlaw_ewc_combines",
                statement=f"ACC(power law + EWC, lambda {cfg.powerlaw_ewc_lambda:g} calibrated on the power-law stream) "
                "- ACC(power law)",
                paper="orthogonal to other methods, so they can be combined (abstract)",
                ours=acc["powerlaw_ewc"] - acc["powerlaw"],
                bound=th["combine"],
                expect=expectation(cfg.preset, _COMBINE_WHY, quick="unclear"),
                note=_COMBINE_WHY,
            )
        )
    else:
        rows.append(
            Claim.not_evaluated(
                id="powerlaw_ewc_combines",
                statement="power law + EWC vs power law",
                paper="orthogonal to other methods, so they can be combined (abstract)",
                reason="'powerlaw_ewc' is not among the environments",
            )
        )
    if "joint" in acc:
        rows.append(
            Claim.above(
                id="joint_upper_bound",
                kind="control",
                statement="ACC(joint) - ACC(power-law)",
                paper="joint training is the bound",
                ours=acc["joint"] - acc["powerlaw"],
                bound=th["joint"],
            )
        )
    rows += _horizon_claims(cfg, m, th)
    rows += _robust_claims(m, acc["none"], th)
    return rows


#: the robustness panels' axes: (panel, claim id, what the axis is)
ROBUST_AXES = (
    ("n_tasks", "robust_to_number_of_tasks", "number of tasks T"),
    ("width", "robust_to_model_width", "hidden width"),
    ("budget", "robust_to_amount_rehearsed", "rehearsal budget multiplier"),
)


def _robust_claims(m: dict[str, Any], acc_none: float, th: dict[str, Threshold]) -> list[Claim]:
    """One row per robustness axis: the smallest gain of power law over no rehearsal across the axis' values (the
    budget panel has no 'none' runs -- without rehearsal the budget means nothing -- so its gain is over the main
    comparison's no-rehearsal ACC, at the same T and width)."""
    acc = {(r["panel"], r["value"], r["env"]): r["ACC"] for r in m["robustness"]}
    paper = "robust to the number of tasks, model size and amount rehearsed (abstract)"
    rows = []
    for panel, cid, what in ROBUST_AXES:
        values = sorted({v for p, v, e in acc if p == panel and e == "powerlaw"})
        gains = {v: acc[(panel, v, "powerlaw")] - acc.get((panel, v, "none"), acc_none) for v in values}
        if len(values) < 2:
            rows.append(
                Claim.not_evaluated(
                    id=cid,
                    statement=f"power law vs none across {what}",
                    paper=paper,
                    reason=f"the {panel} panel has fewer than 2 values",
                )
            )
            continue
        rows.append(
            Claim.above(
                id=cid,
                statement=f"smallest ACC(power law) - ACC(none) across {what} ("
                + ", ".join(f"{v:g}: {g:+.3f}" for v, g in gains.items())
                + "; one seed per value but the main one)",
                paper=paper,
                ours=min(gains.values()),
                bound=th["robust"],
            )
        )
    return rows


def _bwt_share(bwt: dict[str, float], th: dict[str, Threshold]) -> Claim:
    """|BWT(power law)| / |BWT(none)|: the share of no rehearsal's forgetting that the power law leaves; undefined
    when there is no forgetting to reduce (BWT(none) >= -0.05)."""
    kw = dict(id="powerlaw_bwt_small", paper="little forgetting", bound=th["bwt_share"])
    statement = "|BWT(power law)| / |BWT(no rehearsal)|"
    if bwt["none"] >= -0.05:
        return Claim.below(
            statement=statement,
            ours=float("nan"),
            note=f"undefined: no rehearsal forgets nothing to reduce (BWT {bwt['none']:+.3f})",
            **kw,
        )
    return Claim.below(statement=statement, ours=abs(bwt["powerlaw"]) / abs(bwt["none"]), **kw)


def _recency_claims(
    cfg: Config, acc: dict[str, float], bwt: dict[str, float], regs: list[str], th: dict[str, Threshold]
) -> list[Claim]:
    """The abstract's first two claims in the paper's environment (``recency``): it mitigates interference, and it is
    comparable to (gain share) or superior to (difference > 0) the best non-power-law schedule and the best
    regulariser, ACC and BWT in the statements."""
    ids = (
        "recency_vs_none",
        "recency_vs_regularisers",
        "recency_comparable_to_best_schedule",
        "recency_superior_to_best_schedule",
    )
    paper = "rehearsal in a power-law environment (time since last performed) mitigates interference"
    if "recency" not in acc:
        reason = "'recency' (the paper's environment) is not among the environments"
        return [
            Claim.not_evaluated(id=i, statement="recency environment", paper=paper, reason=reason)
            for i in ids
        ]
    rec = f"ACC {acc['recency']:.3f}, BWT {bwt['recency']:+.3f}"
    rows = [
        Claim.above(
            id=ids[0],
            statement=f"the paper's environment ({NAMES['recency']}, s^-{cfg.recency_exponent:g}, "
            f"{cfg.recency_draws} presentations a phase, matched budget): ACC(recency) - ACC(none); {rec}, none "
            f"ACC {acc['none']:.3f}, BWT {bwt['none']:+.3f}",
            paper=paper,
            ours=acc["recency"] - acc["none"],
            bound=th["vs_none"],
        )
    ]
    rows.append(
        _vs_best(
            ids[1],
            "recency",
            "recency",
            regs,
            "regulariser",
            acc,
            th["vs_reg"],
            "comparable or superior to EWC / SI",
            detail=lambda e: f"; {rec}, {e} ACC {acc[e]:.3f}, BWT {bwt[e]:+.3f}",
        )
    )
    others = {e: acc[e] for e in ("uniform", "exponential") if e in acc}
    rows.append(_comparable(ids[2], f"T = {cfg.n_tasks}, matched budget", acc, others, th, subject="recency"))
    rows.append(
        _vs_best(
            ids[3],
            "recency",
            "recency",
            list(others),
            "other schedule",
            acc,
            th["superior"],
            "superior to rehearsal in non-power-law environments",
            detail=lambda e: (
                f", T = {cfg.n_tasks}, matched budget; {rec}, {e} ACC {acc[e]:.3f}, BWT {bwt[e]:+.3f}"
            ),
            expect=expectation(cfg.preset, _SUPERIOR_WHY, quick="fails"),
            note=_SUPERIOR_WHY,
        )
    )
    return rows


def _vs_best(
    cid: str,
    label: str,
    subject: str,
    pool: list[str],
    what: str,
    acc: dict[str, float],
    bound: Threshold,
    paper: str,
    detail: Callable[[str], str] | None = None,
    **kw: Any,
) -> Claim:
    """ACC(``subject``) minus the best ACC among the environments in ``pool`` (the regularisers, or other schedules),
    above ``bound``; not evaluated when the pool is empty. ``detail(best)`` is appended to the statement."""
    if not pool:
        return Claim.not_evaluated(
            id=cid, statement=f"{label} vs {what}s", paper=paper, reason=f"no {what} among the environments"
        )
    best = max(pool, key=lambda e: acc[e])
    return Claim.above(
        id=cid,
        statement=f"ACC({label}) - ACC(best {what} = {best})" + (detail(best) if detail else ""),
        paper=paper,
        ours=acc[subject] - acc[best],
        bound=bound,
        **kw,
    )


def _comparable(
    cid: str,
    where: str,
    acc: dict[str, float],
    others: dict[str, float],
    th: dict[str, Threshold],
    subject: str = "powerlaw",
) -> Claim:
    """'Comparable or superior to other schedules', against the best of them: ``subject``'s gain over no
    rehearsal as a share of the best other schedule's gain (undefined when no schedule gains anything)."""
    paper = "comparable or superior to other rehearsal schedules"
    if not others:
        return Claim.not_evaluated(
            id=cid, statement="power law vs other schedules", paper=paper, reason="no other schedule"
        )
    best = max(others, key=others.get)
    gain = others[best] - acc["none"]
    statement = (
        f"{where}: (ACC({subject}) - ACC(none)) / (ACC(best other = {best}) - ACC(none)); "
        f"ACC {NAMES[subject]} {acc[subject]:.3f}, {best} {others[best]:.3f}, none {acc['none']:.3f}"
    )
    if gain <= 0.01:
        return Claim.above(
            id=cid,
            statement=statement,
            paper=paper,
            ours=float("nan"),
            bound=th["comparable"],
            note=f"undefined: the best other schedule gains {gain:+.3f} over no rehearsal",
        )
    return Claim.above(
        id=cid,
        statement=statement,
        paper=paper,
        ours=(acc[subject] - acc["none"]) / gain,
        bound=th["comparable"],
    )


def _horizon_claims(cfg: Config, m: dict[str, Any], th: dict[str, Threshold]) -> list[Claim]:
    """At a horizon where a power law and an exponential differ: the paper's schedule vs the best other schedule,
    and the pure power law's heavy tail vs the exponential's light one on the oldest tasks."""
    rows = {r["env"] + ("_pure" if r["pure"] else ""): r for r in m["horizon"]}
    if not {"powerlaw", "powerlaw_pure", "exponential", "none"} <= rows.keys():
        reason = "horizon_tasks = 0"
        return [
            Claim.not_evaluated(
                id=i, statement="long-horizon panel", paper="comparable or superior", reason=reason
            )
            for i in (
                "powerlaw_comparable_long_horizon",
                "recency_comparable_long_horizon",
                "heavy_tail_keeps_oldest_tasks",
            )
        ]
    pl, ex = rows["powerlaw_pure"], rows["exponential"]
    T, k, d = cfg.horizon_tasks, cfg.horizon_oldest, cfg.horizon_exponent
    acc = {env: r["ACC"] for env, r in rows.items()}
    others = {e: acc[e] for e in ("uniform", "exponential") if e in acc}
    recency = (
        _comparable(
            "recency_comparable_long_horizon", f"T = {T}, one seed", acc, others, th, subject="recency"
        )
        if "recency" in acc
        else Claim.not_evaluated(
            id="recency_comparable_long_horizon",
            statement="recency at the long horizon",
            paper="comparable or superior",
            reason="no recency run in the long-horizon panel",
        )
    )
    return [
        _comparable("powerlaw_comparable_long_horizon", f"T = {T}, one seed", acc, others, th),
        recency,
        Claim.above(
            id="heavy_tail_keeps_oldest_tasks",
            statement=f"T = {T}: final accuracy on the {k} oldest tasks, pure power law L^-{d:g} - exponential",
            paper="a power law keeps rehearsing old memories (Anderson & Schooler)",
            ours=pl["oldest"] - ex["oldest"],
            bound=th["oldest"],
        ),
    ]


def departures(cfg: Config, m: dict[str, Any]) -> list[str]:
    """Declared departures from the paper's setup, with our numbers."""
    fit = m["schedule_fit"]
    out = [
        "Two power-law environments: the precursor's schedule (`powerlaw`), whose lag L is the time since a task was "
        "*introduced* (every task is rehearsed in every phase, so the time since it was last seen is always one phase), "
        f"and the paper's (`recency`): {cfg.recency_draws} presentations a phase, each to a past task drawn with "
        f"probability ~ (phases since it was last presented)^-{cfg.recency_exponent:g}, seeded; the same budget. The "
        "rows named powerlaw_* are the precursor's schedule, recency_* the paper's.",
        f"Data and scale: {m['data']}; {cfg.n_train:,} training images per task, T = {cfg.n_tasks}, MLP "
        f"{'-'.join(str(h) for h in cfg.hidden)}, {cfg.epochs} epochs per phase (the precursor: full MNIST, "
        "1000-1000 MLP with dropout, 100 epochs, batch 2048).",
        f"Budget: every rehearsal schedule spends the reference power law's B(t) = {m['budget']['B_first']:,} to "
        f"{m['budget']['B_last']:,} samples per phase against n_new = {m['budget']['n_new']:,} new ones: rehearsal "
        f"is {m['budget']['rehearsal_share']:.0%} of all samples of the power-law stream.",
    ]
    if fit:
        out.append(
            f"At T = {cfg.n_tasks} the shifted power law (1 + L/{cfg.offset:g})^-{cfg.exponent:g} is nearly an "
            f"exponential: log n(L) is linear in L with R^2 {fit['r2_log_n_vs_lag']:.3f} and in log L with R^2 "
            f"{fit['r2_log_n_vs_log_lag']:.3f}, so the main comparison barely separates power law from exponential; "
            f"the long-horizon panel (T = {cfg.horizon_tasks}, pure L^-{cfg.horizon_exponent:g}) is where they differ."
        )
    return out


def comparison(cfg: Config, m: dict[str, Any]) -> str:
    """ "How ours compares with the paper", as Markdown generated from the metrics (no typed numbers)."""
    acc = {env: row["ACC"] for env, row in m["by_env"].items()}
    bwt = {env: row["BWT"] for env, row in m["by_env"].items()}
    regs = {e: acc[e] for e in ("ewc", "online_ewc", "si") if e in acc}
    sweep = m["exponent_sweep"]
    ex, st = m["learning_speed"], m["learning_speed_steps"]
    lines = [
        f"* **Interference is real here**: without rehearsal ACC is {acc['none']:.3f} (BWT {bwt['none']:+.3f}); "
        f"power-law rehearsal reaches {acc['powerlaw']:.3f} (BWT {bwt['powerlaw']:+.3f}), spending "
        f"{m['budget']['rehearsal_share']:.0%} of all its samples on rehearsal (B(t) = {m['budget']['B_first']:,}"
        f"-{m['budget']['B_last']:,} per phase against {m['budget']['n_new']:,} new ones) -- not a small budget.",
    ]
    if regs:
        lines.append(
            "* **Regularisers** (calibrated, the best of a grid): "
            + ", ".join(f"{e} {a:.3f}" for e, a in regs.items())
            + " -- the power law beats them clearly, as the paper says."
        )
    others = [e for e in ("uniform", "exponential") if e in acc]
    if others:
        lines.append(
            "* **Other schedules at the same budget**: "
            + ", ".join(f"{e} {acc[e]:.3f}" for e in others)
            + f" vs power law {acc['powerlaw']:.3f}"
            + (
                " (above the best of them). "
                if acc["powerlaw"] > max(acc[e] for e in others)
                else " (below the best of them). "
            )
            + "The exponent sweep "
            + ", ".join(f"d = {float(d):g}: {a:.3f}" for d, a in sweep.items())
            + f" puts the steep precursor exponent d = {cfg.exponent:g} "
            + (
                "last."
                if float(m["worst_exponent"]) == cfg.exponent
                else f"not last (worst: d = {m['worst_exponent']:g})."
            )
        )
    if "recency" in acc and others:
        best = max(others, key=lambda e: acc[e])
        verdict = "above" if acc["recency"] > acc[best] else "below"
        lines.append(
            f"* **The paper's environment** (rehearsal ~ a power law of the time since a task was last presented, "
            f"drawn at random, same budget): ACC {acc['recency']:.3f} (BWT {bwt['recency']:+.3f}), {verdict} the best "
            f"other schedule ({best} {acc[best]:.3f}) and against no rehearsal {acc['none']:.3f}."
        )
    lines.append(
        f"* **Forward facilitation**: after {cfg.ff_steps} optimiser steps of a new phase, the power law's new-task "
        f"accuracy is {st['powerlaw']:.3f} against {st['none']:.3f} without rehearsal; after {cfg.ff_examples} new-task "
        f"examples it is {ex['powerlaw']:.3f} against {ex['none']:.3f}, but there the rehearsal learner has taken more "
        "steps. The paper's forward facilitation is not supported once steps are matched."
    )
    horizon = {r["schedule"]: r for r in m["horizon"]}
    if horizon:
        lines.append(
            f"* **The long horizon** (T = {cfg.horizon_tasks}, one seed): "
            + ", ".join(
                f"{name}: ACC {r['ACC']:.3f}, oldest {cfg.horizon_oldest} tasks {r['oldest']:.3f}"
                for name, r in horizon.items()
            )
            + "."
        )
        pure = next((r for r in m["horizon"] if r["pure"]), None)
        expo = next((r for r in m["horizon"] if r["env"] == "exponential"), None)
        if pure and expo:
            better = "keeps" if pure["oldest"] > expo["oldest"] else "does not keep"
            lines.append(
                f"  Against the exponential, the heavy tail {better} more of the oldest tasks "
                f"({pure['oldest']:.3f} vs {expo['oldest']:.3f})."
            )
    return "\n".join(lines)


THRESHOLDS["gpu"] = gpu_thresholds(THRESHOLDS["paper"])
