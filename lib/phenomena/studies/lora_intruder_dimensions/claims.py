"""The paper's claims as checkable numbers: ``summarize(cfg, results) -> metrics``, ``claims(cfg, metrics)``,
``departures(cfg, metrics)``, ``comparison(cfg, metrics)`` and the thresholds, with the evidence each was set from.

Forgetting is the paper's: the rise of the model's own pre-training loss (here MiniLM's contrastive retrieval loss)
on text unlike the task (news prose). Embedding drift is reported as representational change and never carries a
forgetting claim; the Python-docs probe (the task's own domain) is an in-domain contrast.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from phenomena.claims import Claim, Expect, Threshold, declare_after_sweep, expectation, gpu_thresholds
from phenomena.studies.lora_intruder_dimensions.config import Config
from phenomena.studies.lora_intruder_dimensions.experiment import LEARNED_MARGIN, Results, has_learned
from phenomena.studies.lora_intruder_dimensions.intruders import DIRECTIONS

# Where each threshold comes from. _PAPER: the paper's own numbers or statements. _S0: set in this session from the
# paper and seed 0 only, before any other seed was run (the 5-seed sweep judges them). The margins of 0.05 on
# accuracy are ~2 standard errors of a difference on our 225-example test set.
_PAPER = "the paper (Shuttleworth et al.)"
_S0 = "set from the paper and seed 0 only, before other seeds"
_SMOKE = "smoke: wiring only, never enforced"
_S19 = "set in issue 19 from the paper and seed 0's calibration only, before the 5-epoch sweep"
_QUICK: dict[str, Threshold] = {
    "needs_ft": Threshold(
        0.05, "the issue's aim: fine-tuning beats the frozen encoder + head by >= 5 points"
    ),
    "acc_gap": Threshold(0.05, _S0 + " (~2 standard errors of a difference on 225 test examples)"),
    "full_max": Threshold(3.0, _PAPER + ", Fig. 4: full fine-tuning has ~0 intruders"),
    "lora_min": Threshold(0.0, _PAPER + ", Fig. 4: LoRA has intruders for r <= 16"),
    "contrast": Threshold(0.0, _PAPER + ", Fig. 4: LoRA (r <= 16) above full FT (sign); " + _S19),
    "eps_contrast": Threshold(
        0.0,
        _PAPER
        + ", Fig. 4: LoRA's curve above full FT's at every epsilon from the paper's 0.5 up (sign); "
        + _S19,
    ),
    "rank_rho": Threshold(-0.5, _S0 + " (the paper: counts fall with rank)"),
    "rho": Threshold(0.8, _PAPER + " (rho = 0.971 over its lr sweep, Fig. 7), with slack"),
    "partial": Threshold(
        0.0,
        "the paper's reading that intruders, not the update's size, go with forgetting (no paper number: "
        "sign); " + _S19,
    ),
    "forget_drop": Threshold(0.1, _PAPER + " (-19.8% to -33.2% at lambda 0.5-0.7), half the smaller effect"),
    "vs_control": Threshold(0.0, _PAPER + ", Sec. 6: the control does not reduce forgetting (sign)"),
    "control_sign": Threshold(
        0.0, _PAPER + ", Sec. 6: scaling the neighbour direction increases forgetting (sign)"
    ),
    "vs_matched": Threshold(
        0.0,
        "sign: the intervention reduces forgetting more than the same Frobenius change along the neighbouring "
        "pre-trained direction; " + _S19,
    ),
    "acc_cost": Threshold(0.03, _PAPER + " (0.0-0.6 points at lambda 0.5-0.7), with slack for our test set"),
    "seq_drop": Threshold(0.0, _PAPER + ", Fig. 9: LoRA degrades earlier tasks more than full FT (sign)"),
}
# The paper preset (RoBERTa-base, 600 test examples: one example = 0.0017) is judged against the paper's own numbers
# where it gives them; not run here (no GPU), so no seed was in view.
_PP = "paper preset, from the paper (Shuttleworth et al.), not run here"
_PAPER_PRESET: dict[str, Threshold] = {
    "needs_ft": Threshold(
        0.05, _PP + ": MNLI needs fine-tuning (a frozen RoBERTa is far below 0.87); 5 points"
    ),
    "acc_gap": Threshold(
        0.01, _PP + ", Table 1: LoRA within 0.007 of full FT on MNLI (0.8677-0.8719 vs 0.8745)"
    ),
    "full_max": Threshold(3.0, _PP + ", Fig. 4: full fine-tuning has ~0 intruders (a few at most)"),
    "lora_min": Threshold(0.0, _PP + ", Fig. 4: LoRA has intruders for r <= 16"),
    "contrast": Threshold(0.0, _PP + ", Fig. 4: LoRA (r <= 16) above full FT (sign)"),
    "eps_contrast": Threshold(0.0, _PP + ", Fig. 4: LoRA's curve above full FT's for epsilon >= 0.5 (sign)"),
    "rank_rho": Threshold(
        -0.5, _PP + ", Fig. 4: counts fall with rank (r = 64 ~ full FT); bound: a clear fall"
    ),
    "rho": Threshold(0.8, _PP + ": rho = 0.971 over its lr sweep (Fig. 7), with slack for a 6-point sweep"),
    "partial": Threshold(0.0, _PP + ": intruders, not the update's size, go with forgetting (sign)"),
    "forget_drop": Threshold(
        0.1, _PP + ": -19.8% to -33.2% at lambda 0.5-0.7 (Table 3), half the smaller effect"
    ),
    "vs_control": Threshold(0.0, _PP + ", Sec. 6: the control does not reduce forgetting (sign)"),
    "control_sign": Threshold(
        0.0, _PP + ", Sec. 6: scaling the neighbour direction increases forgetting (sign)"
    ),
    "vs_matched": Threshold(0.0, _PP + ": the direction, not the size of the edit, matters (sign)"),
    "acc_cost": Threshold(0.01, _PP + ", Table 3: 0.0 (QQP) to 0.006 (MNLI), rounded up to 0.01"),
    "seq_drop": Threshold(0.0, _PP + ", Fig. 9: LoRA degrades earlier tasks more than full FT (sign)"),
}
THRESHOLDS: dict[str, dict[str, Threshold]] = {
    "smoke": {k: Threshold(t.value, _SMOKE) for k, t in _QUICK.items()},
    "quick": _QUICK,
    "paper": _PAPER_PRESET,
}
#: why a row expects another outcome than the paper's at the quick preset. Set in issue 19 before the 5-epoch sweep
#: from seed 0's calibration only (docs/calibration/lora_intruder_dimensions.md); rows not listed expect the paper's.
_WHY = {
    "lora_more_intruders_than_full": "quick: at seed 0's 5-epoch calibration LoRA r = 4 and r = 16 at the paper's "
    "rule have 0 intruders (their lr is 4x and 16x below r = 1's under alpha x lr = 2.4e-3; the paper's 5 epochs of "
    "MNLI are ~120k steps, ours 1,301), so the minimum over r <= 16 is 0",
    "intruders_beyond_update_size": "quick: at seed 0's calibration forgetting follows ||dW|| (5 learned LoRA runs; "
    "rho(intruders, forgetting residual) 0.21): a 5-point statistic whose sign can go either way",
}


#: expected outcomes at quick set *after* the 5-seed 5-epoch sweep, each with the sweep's numbers (the row's note
#: says so): id -> (outcome, reason)
_AFTER_SWEEP: dict[str, tuple[Expect, str]] = {
    "more_intruders_more_forgetting": (
        "unclear",
        "rho 1.0, 0.5, 0.5, 1.0, 1.0 over the 3 lrs (3 of 5 pass); at seeds 1 and 2 forgetting at 4x the rule is "
        "below 2x's; rho(||dW||, forgetting) is the same on these runs at every seed, so the lr sweep cannot tell "
        "intruders from the update's size",
    ),
    "scaling_down_reduces_forgetting": (
        "fails",
        "relative drops +0.043, +0.009, +0.005, -0.002, -0.011 (0 of 5 pass; mean 0.009 [-0.016, 0.034]): the rule "
        "run has 1-4 intruders in 1-3 of its 36 matrices, so scaling them moves little of its forgetting",
    ),
    "intruder_beats_control": ("unclear", "+0.045, +0.003, -0.030, -0.053, +0.001 (3 of 5 pass)"),
    "neighbour_control_increases_forgetting": (
        "unclear",
        "control drops -0.003, +0.006, +0.036, +0.052, -0.011 (2 of 5 pass): tiny either way",
    ),
    "intruder_beats_matched_norm": ("unclear", "+0.045, +0.003, -0.033, -0.052, +0.001 (3 of 5 pass)"),
    "lora_forgets_earlier_task_more": (
        "unclear",
        "-0.018, +0.049, +0.022, +0.004, +0.098 (4 of 5 pass; mean 0.031 [-0.024, 0.086])",
    ),
}


def _expect(cfg: Config, cid: str, quick: Expect) -> Expect:
    """The row's expectation at ``cfg.preset``: ``quick`` there (reason in ``_WHY``), the paper's outcome at paper."""
    return expectation(cfg.preset, _WHY[cid], quick=quick)


def _why(cfg: Config, cid: str, note: str = "") -> str:
    """The row's note: what it observed, then (where quick expects otherwise) why."""
    parts = [note] if note else []
    if cfg.preset in ("quick", "smoke") and cid in _WHY:
        parts.append(_WHY[cid])
    return "; ".join(parts)


def spearman(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Spearman rank correlation and its two-sided p-value (scipy); NaN when either input is constant."""
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return float("nan"), float("nan")
    res = spearmanr(x, y)
    return float(res.statistic), float(res.pvalue)


def _relative_drop(at_one: float, at_lam: float) -> float:
    """(f(1) - f(lambda)) / f(1); NaN when there is nothing to reduce (f(1) <= 0)."""
    return (at_one - at_lam) / at_one if at_one > 0 else float("nan")


def beyond_size(intruders: Sequence[float], size: Sequence[float], forgetting: Sequence[float]) -> float:
    """How much intruders go with forgetting beyond the update's size: Spearman rho(intruders, the residual of
    forgetting after a least-squares line on ``size``). 0-ish when forgetting is explained by size alone; NaN with
    fewer than 4 runs or constant inputs."""
    if len(size) < 4 or len(set(size)) < 2:
        return float("nan")
    x, y = np.asarray(size, dtype=float), np.asarray(forgetting, dtype=float)
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    if np.ptp(residual) <= 1e-9 * max(1.0, float(np.ptp(y))):  # the line explains it all: nothing beyond size
        return 0.0
    return spearman(list(intruders), list(residual))[0]


def summarize(cfg: Config, res: Results) -> dict[str, Any]:
    """JSON-ready metrics from the results (the claims read these; undefined numbers are NaN, written as null)."""
    rows = res.rows
    head_acc = res.base_metrics["acc_head_only"]
    full = next(r for r in rows if r["method"] == "full")
    a2r = sorted((r for r in rows if r["family"] == "alpha=2r"), key=lambda r: r["rank"])
    hl = next(r for r in a2r if r["rank"] == cfg.headline_rank)
    lora = [r for r in rows if r["method"] == "lora"]
    sweep_names = {s.name for s in cfg.families()["lr sweep"]}
    sweep = sorted((r for r in rows if r["run"] in sweep_names), key=lambda r: r["lr"])
    learned_all = {r["run"]: has_learned(r["acc"], res) for r in rows}
    learned = {r["run"]: learned_all[r["run"]] for r in [full, *a2r]}
    low = [r for r in a2r if r["rank"] <= 16]
    compared = [full, *low]
    eps_up = [e for e in cfg.epsilons if e >= cfg.epsilon]
    out: dict[str, Any] = {
        "task": res.task,
        "base": res.base_metrics,
        "runs": rows,
        "head_acc": head_acc,
        "full_acc": full["acc"],
        "full_gain_over_head": full["acc"] - head_acc,
        "rule_gain_over_head": {r["rank"]: r["acc"] - head_acc for r in a2r},
        "learned": learned,
        "learned_all": learned_all,
        "max_acc_gap": max(abs(r["acc"] - full["acc"]) for r in a2r),
        "full_intruders": full["intruders"],
        "headline_run": hl["run"],
        "headline_intruders": hl["intruders"],
        "intruders_by_rank": {r["rank"]: r["intruders"] for r in a2r},
        "lora_minus_full_intruders": min(r["intruders"] for r in low) - full["intruders"]
        if low and all(learned_all[r["run"]] for r in compared)
        else float("nan"),
        "contrast_ranks": [r["rank"] for r in low],
        "epsilon_contrast": {e: hl[f"intruders@{e:g}"] - full[f"intruders@{e:g}"] for e in cfg.epsilons},
        "min_epsilon_contrast": min(hl[f"intruders@{e:g}"] - full[f"intruders@{e:g}"] for e in eps_up)
        if learned_all[hl["run"]] and learned_all[full["run"]]
        else float("nan"),
        "rho_rank_intruders": spearman([r["rank"] for r in a2r], [r["intruders"] for r in a2r])[0],
        "lr_sweep": [
            {
                k: r[k]
                for k in ("lr", "acc", "intruders", "forgetting", "forgetting_pydocs", "drift", "dw_rel_norm")
            }
            | {"learned": learned_all[r["run"]]}
            for r in sweep
        ],
        "lr_sweep_not_learned": [r["run"] for r in sweep if not learned_all[r["run"]]],
        "steps": res.steps,
        "n_lora_runs": len(lora),
    }
    used = [r for r in sweep if learned_all[r["run"]]]
    x = [r["intruders"] for r in used]
    for key in ("forgetting", "forgetting_pydocs", "drift", "acc"):
        out[f"rho_sweep_{key}"], out[f"p_sweep_{key}"] = spearman(x, [r[key] for r in used])
        out[f"rho_all_{key}"], _ = spearman([r["intruders"] for r in lora], [r[key] for r in lora])
    out["rho_sweep_size_forgetting"] = spearman(
        [r["dw_rel_norm"] for r in used], [r["forgetting"] for r in used]
    )[0]
    pool = [r for r in lora if learned_all[r["run"]]]
    out["beyond_size_runs"] = len(pool)
    out["rho_learned_intruders_forgetting"] = spearman(
        [r["intruders"] for r in pool], [r["forgetting"] for r in pool]
    )[0]
    out["rho_learned_size_forgetting"] = spearman(
        [r["dw_rel_norm"] for r in pool], [r["forgetting"] for r in pool]
    )[0]
    out["intruders_beyond_size"] = beyond_size(
        [r["intruders"] for r in pool], [r["dw_rel_norm"] for r in pool], [r["forgetting"] for r in pool]
    )
    out |= _intervention_metrics(cfg, res)
    out |= _sequence_metrics(res)
    out["compute_s"] = res.compute_s
    return out


def _intervention_metrics(cfg: Config, res: Results) -> dict[str, Any]:
    out: dict[str, Any] = {
        "intervened": res.intervened,
        "intervention_matrices": len(res.targets),
        "intervention": res.intervention,
        "peft_reduce_intruder_dimension": res.peft,
    }
    lam = min(cfg.lambdas, key=lambda v: abs(v - 0.75))
    out["intervention_lambda"] = lam
    if not res.intervention:
        return out
    out["intervened_learned"] = has_learned(
        next(r["acc"] for r in res.rows if r["run"] == res.intervened), res
    )
    rows = {(r["lambda"], r["direction"]): r for r in res.intervention}
    one, at, ctrl, matched = (
        rows[(1.0, DIRECTIONS["intruder"])],
        rows[(lam, DIRECTIONS["intruder"])],
        rows.get((lam, DIRECTIONS["neighbour"])),
        rows.get((lam, DIRECTIONS["matched"])),
    )
    for key in ("forgetting", "drift"):
        out[f"intervention_{key}_drop"] = _relative_drop(one[key], at[key])
        out[f"control_{key}_drop"] = _relative_drop(one[key], ctrl[key]) if ctrl else float("nan")
        out[f"matched_{key}_drop"] = _relative_drop(one[key], matched[key]) if matched else float("nan")
    out["intervention_acc_cost"] = one["acc"] - at["acc"]
    peft_at = next((r for r in res.peft if r["lambda"] == lam), None)
    out["peft_forgetting_drop"] = (
        _relative_drop(one["forgetting"], peft_at["forgetting"]) if peft_at else float("nan")
    )
    out["peft_acc_cost"] = one["acc"] - peft_at["acc"] if peft_at else float("nan")
    return out


def _sequence_metrics(res: Results) -> dict[str, Any]:
    drop = {}
    for method in dict.fromkeys(r["method"] for r in res.sequence):
        stages = [r for r in res.sequence if r["method"] == method]
        drop[method] = stages[0]["acc_a"] - stages[-1]["acc_a"]
    return {"sequence": res.sequence, "sequence_task_a_acc_drop": drop}


def _num(x: float | None) -> float:
    return float("nan") if x is None else float(x)


def _nan_note(value: float, why: str) -> str:
    return "" if not math.isnan(value) else why


def claims(cfg: Config, m: dict[str, Any]) -> list[Claim]:
    """The paper's claims as checkable numbers (thresholds in ``THRESHOLDS`` for the run's preset)."""
    th = THRESHOLDS[cfg.preset]
    eps, k, r = cfg.epsilon, cfg.top_k, cfg.headline_rank
    not_learned = [run for run, ok in m["learned"].items() if not ok]
    full_learned = m["learned"].get("full FT", False)
    ranks = sorted(m["intruders_by_rank"], key=int)
    counts = ", ".join(f"r={q}: {m['intruders_by_rank'][q]}" for q in ranks)
    contrast = _num(m["lora_minus_full_intruders"])
    eps_c = _num(m["min_epsilon_contrast"])
    eps_up = [e for e in cfg.epsilons if e >= eps]
    eps_counts = {float(e): int(c) for e, c in m["epsilon_contrast"].items()}  # JSON keys are strings
    rows = [
        Claim.above(
            id="fine_tuning_needed",
            kind="control",
            statement=f"full FT accuracy - frozen encoder + head ({m['head_acc']:.3f}); at the paper's rule "
            "LoRA gains " + ", ".join(f"r={q}: {g:+.3f}" for q, g in m["rule_gain_over_head"].items()),
            paper="MNLI needs fine-tuning (a frozen RoBERTa is far below 0.87)",
            ours=m["full_gain_over_head"],
            bound=th["needs_ft"],
        ),
        Claim.below(
            id="matched_accuracy",
            statement=f"largest |LoRA (paper's lr rule, r = {', '.join(map(str, ranks))}) - full FT| accuracy gap "
            f"(full FT {m['full_acc']:.3f}), when every run learned (>= {LEARNED_MARGIN:g} above the frozen encoder "
            "+ head)",
            paper="< 0.01 (MNLI, Table 1)",
            bound=th["acc_gap"],
            ours=m["max_acc_gap"] if not not_learned else float("nan"),
            note=f"did not learn: {', '.join(not_learned)}" if not_learned else "",
        ),
        Claim.below(
            id="full_ft_no_intruders",
            statement=f"full FT intruders (top-{k}, eps {eps:g}, all matrices), when full FT learned the task",
            paper="~0 (Fig. 4)",
            ours=m["full_intruders"] if full_learned else float("nan"),
            bound=Threshold(
                th["full_max"].value,
                th["full_max"].evidence + "; redefined in issue 17 (was: the count alone, which an unchanged "
                "model W = W0 passes with 0): counted only when full FT learned the task (the same 'learned' "
                "rule as matched_accuracy), undefined otherwise, which fails",
            ),
            note=""
            if full_learned
            else "undefined: full FT did not learn the task, so no intruders says nothing",
        ),
        Claim.above(
            id="lora_has_intruders",
            statement=f"intruders at the paper's lr rule, r = {r} ({counts})",
            paper="> 0 for r <= 16 (Fig. 4)",
            ours=m["headline_intruders"],
            bound=th["lora_min"],
        ),
        Claim.above(
            id="lora_more_intruders_than_full",
            statement=f"fewest intruders of LoRA at the paper's rule over r <= 16 "
            f"(r = {', '.join(map(str, m['contrast_ranks']))}) minus full FT's ({m['full_intruders']}), when "
            "every one of them learned",
            paper="LoRA r <= 16 has intruders, full FT almost none (Fig. 4)",
            ours=contrast,
            bound=th["contrast"],
            expect=_expect(cfg, "lora_more_intruders_than_full", "fails"),
            note=_why(
                cfg, "lora_more_intruders_than_full", _nan_note(contrast, "undefined: a run did not learn")
            ),
        ),
        Claim.above(
            id="lora_above_full_at_every_epsilon",
            statement=f"fewest intruders of LoRA r = {r} (paper's rule) minus full FT's over epsilon "
            + ", ".join(f"{e:g}" for e in eps_up)
            + " ("
            + ", ".join(f"{e:g}: {eps_counts[e]:+d}" for e in cfg.epsilons)
            + "), when both learned",
            paper="LoRA's curve above full FT's at every epsilon (Fig. 4)",
            ours=eps_c,
            bound=th["eps_contrast"],
            note=_nan_note(eps_c, "undefined: a run did not learn"),
        ),
        Claim.below(
            id="fewer_intruders_at_higher_rank",
            statement=f"Spearman rho(rank, intruders) over r = {', '.join(map(str, ranks))}, paper's rule",
            paper="fall with rank; r = 64 ~ full FT (Fig. 4)",
            ours=_num(m["rho_rank_intruders"]),
            bound=th["rank_rho"],
            note=_nan_note(_num(m["rho_rank_intruders"]), "undefined: the same count at every rank"),
        ),
    ]
    n = len(m["lr_sweep"]) - len(m["lr_sweep_not_learned"])
    rho = _num(m["rho_sweep_forgetting"])
    dropped = m["lr_sweep_not_learned"]
    rows.append(
        Claim.above(
            id="more_intruders_more_forgetting",
            statement=f"Spearman rho(intruders, forgetting on news prose) over the lr sweep at r = {r} ({n} lrs that "
            f"learned{'; excluded: ' + ', '.join(dropped) if dropped else ''}); rho(||dW||, forgetting) on the same "
            f"runs: {_num(m['rho_sweep_size_forgetting']):.2f}; all {m['n_lora_runs']} LoRA runs: "
            f"{_num(m['rho_all_forgetting']):.2f}; in-domain probe: {_num(m['rho_sweep_forgetting_pydocs']):.2f}",
            paper="0.971 (lr sweep, Fig. 7)",
            ours=rho,
            bound=th["rho"],
            note=_nan_note(rho, "undefined: intruders (or forgetting) constant over the learned runs"),
        )
    )
    beyond = _num(m["intruders_beyond_size"])
    rows.append(
        Claim.above(
            id="intruders_beyond_update_size",
            statement="Spearman rho(intruders, forgetting's residual after a line on ||dW|| / ||W0||) over the "
            f"{m['beyond_size_runs']} LoRA runs that learned; plain rho with intruders "
            f"{_num(m['rho_learned_intruders_forgetting']):.2f}, with ||dW|| {_num(m['rho_learned_size_forgetting']):.2f}",
            paper="intruders, not the update's size, go with forgetting (Sec. 5; no number)",
            ours=beyond,
            bound=th["partial"],
            expect=_expect(cfg, "intruders_beyond_update_size", "unclear"),
            note=_why(
                cfg,
                "intruders_beyond_update_size",
                _nan_note(beyond, "undefined: fewer than 4 learned runs or constant inputs"),
            ),
        )
    )
    rows += _intervention_claims(cfg, m, th)
    later = _later_task_gaps(m["sequence"])
    worst = min(later.values(), default=float("nan"))
    rows.append(
        Claim.above(
            id="sequence_learns_each_later_task",
            kind="sanity",
            statement="lowest accuracy on a later task of the sequence, LoRA minus full FT ("
            + ", ".join(f"{t}: {g:+.3f}" for t, g in later.items())
            + "): LoRA learned each task before the next",
            paper="both methods learn every task of the sequence (Fig. 9)",
            ours=worst,
            bound=Threshold(-th["acc_gap"].value, "the matched-accuracy margin: " + th["acc_gap"].evidence),
        )
    )
    drops = m["sequence_task_a_acc_drop"]
    lora_key = next(key for key in drops if key != "full FT")
    rows.append(
        Claim.above(
            id="lora_forgets_earlier_task_more",
            statement=f"accuracy lost on the target task after {', '.join(cfg.seq_tasks)} ({cfg.seq_steps} steps "
            f"each): {lora_key} minus full FT ({drops[lora_key]:+.3f} vs {drops['full FT']:+.3f})",
            paper="LoRA degrades earlier tasks faster (Fig. 9)",
            ours=drops[lora_key] - drops["full FT"],
            bound=th["seq_drop"],
        )
    )
    return declare_after_sweep(cfg.preset, rows, _AFTER_SWEEP)


def _later_task_gaps(sequence: list[dict[str, Any]]) -> dict[str, float]:
    """Per later task of the sequential panel: LoRA's accuracy on it right after training on it, minus full FT's."""
    out = {}
    for stage in sorted({r["stage"] for r in sequence if r["stage"] > 1}):
        rows = [r for r in sequence if r["stage"] == stage]
        key = f"acc_seq{stage - 1}"
        full = next(r[key] for r in rows if r["method"] == "full FT")
        lora = next(r[key] for r in rows if r["method"] != "full FT")
        out[rows[0]["trained_on"]] = lora - full
    return out


def _intervention_claims(cfg: Config, m: dict[str, Any], th: dict[str, Threshold]) -> list[Claim]:
    lam = m["intervention_lambda"]
    ids = (
        "scaling_down_reduces_forgetting",
        "intruder_beats_control",
        "neighbour_control_increases_forgetting",
        "intruder_beats_matched_norm",
        "scaling_down_small_accuracy_cost",
    )
    hl = m["headline_run"]
    if not m["intervened"]:
        none = f"undefined: the headline run at the paper's rule ({hl}) did not learn the task or has no intruder"
        why = (
            "; redefined in issue 17 (was: not evaluated when no run has an intruder): no intruder to scale is the "
            "phenomenon missing, not an input the config removed; undefined, which fails; issue 19: on the rule "
            "run (was: the lr-sweep run with the most intruders)"
        )
        keys = ("forget_drop", "vs_control", "control_sign", "vs_matched", "acc_cost")
        ths = {key: Threshold(th[key].value, th[key].evidence + why) for key in keys}
        make = (Claim.above, Claim.above, Claim.below, Claim.above, Claim.below)
        return [
            fn(id=cid, statement=f"the intervention on {hl} ({cid.replace('_', ' ')})", paper="Sec. 6, Fig. 8",
               ours=float("nan"), bound=ths[key], note=none)
            for fn, cid, key in zip(make, ids, keys)
        ]  # fmt: skip
    f_drop, c_drop = _num(m["intervention_forgetting_drop"]), _num(m["control_forgetting_drop"])
    mm_drop = _num(m["matched_forgetting_drop"])
    undefined = "undefined: the run does not forget (forgetting <= 0 at lambda = 1)"
    return [
        Claim.above(
            id=ids[0],
            statement=f"{m['intervened']}: relative forgetting drop, top intruder x {lam:g} "
            f"(drift drop {_num(m['intervention_drift_drop']):+.0%}; {m['intervention_matrices']} matrices)",
            paper="-33.2% QQP (x0.7), -19.8% MNLI (x0.5)",
            ours=f_drop,
            bound=th["forget_drop"],
            note=_nan_note(f_drop, undefined),
        ),
        Claim.above(
            id=ids[1],
            statement=f"forgetting drop: top intruder minus neighbour control, x {lam:g} "
            f"(control: {c_drop:+.0%})",
            paper="the control increases forgetting (Sec. 6)",
            ours=f_drop - c_drop,
            bound=th["vs_control"],
            note=_nan_note(f_drop - c_drop, undefined),
        ),
        Claim.below(
            id=ids[2],
            statement=f"relative forgetting drop of the neighbour control (its pre-trained direction x {lam:g})",
            paper="the control increases forgetting (Sec. 6): a drop < 0",
            ours=c_drop,
            bound=th["control_sign"],
            note=_nan_note(c_drop, undefined),
        ),
        Claim.above(
            id=ids[3],
            statement=f"forgetting drop: top intruder minus a matched-norm control (the same Frobenius change, "
            f"(1 - {lam:g}) s_intruder, along the neighbouring pre-trained direction; control: {mm_drop:+.0%})",
            paper="the intruder's direction matters, not the edit's size (Sec. 6)",
            ours=f_drop - mm_drop,
            bound=th["vs_matched"],
            note=_nan_note(f_drop - mm_drop, undefined),
        ),
        Claim.below(
            id=ids[4],
            statement=f"accuracy lost, top intruder x {lam:g}",
            paper="0.0 QQP, 0.006 MNLI (Table 3)",
            ours=m["intervention_acc_cost"],
            bound=th["acc_cost"],
        ),
    ]


def departures(cfg: Config, m: dict[str, Any]) -> list[str]:
    """Declared departures from the paper's setup, with our numbers."""
    task = m["task"]
    epochs = cfg.steps * cfg.batch_size / max(1, task["train"])
    out = [
        f"Model and task: {cfg.model or 'all-MiniLM-L6-v2'} (the paper: RoBERTa-base; MiniLM, a 6-layer BERT with "
        "22.7M parameters, is the largest model any pip package ships, so the default never downloads) fine-tuned on "
        f"'{task['task']}' ({task['examples']:,} standard-library docstrings, {len(task['classes'])} classes, "
        f"{task['test']} test examples; the paper: MNLI and five more GLUE-style tasks).",
        f"Budget: {cfg.steps:,} steps of batch {cfg.batch_size} = {epochs:.1f} epochs of the task's {task['train']:,} "
        f"training examples with {cfg.warmup_frac:.0%} warmup and linear decay (the paper: 5 epochs, 6% warmup, "
        "linear decay); 5 epochs of MNLI are ~120k steps, so at the paper's rule our updates are far smaller, most "
        "at the ranks whose lr the rule divides by r.",
        f"Full fine-tuning at the paper's lr {cfg.full_lr:g}; LoRA at the paper's rule alpha = 2r, alpha x lr = "
        f"{cfg.lr_alpha_product:g}, ranks {', '.join(map(str, cfg.ranks))} (the paper: 1-64).",
        "Forgetting is MiniLM's own training loss (contrastive sentence retrieval, InfoNCE at temperature "
        f"{cfg.probe_temperature:g}) on {cfg.n_probe} sentences of news prose (the Lee corpus shipped in gensim's "
        "test data) against their word-dropped copies; the paper measures its pre-training loss on the pre-training "
        "corpora. The Python-docs probe is an in-domain contrast only.",
        "Added controls: the forgetting correlation beside the update's size, and a matched-norm control for the "
        "intervention (the paper has neither).",
    ]
    return out


def comparison(cfg: Config, m: dict[str, Any]) -> str:
    """ "How ours compares with the paper", as Markdown generated from the metrics (no typed numbers)."""
    sweep = m["lr_sweep"]
    first = next((s for s in sweep if s["intruders"] > 0), None)
    rule = sweep[0]["lr"] if sweep else float("nan")
    lines = [
        f"* **Does the task need fine-tuning?** The frozen encoder + head scores {m['head_acc']:.3f}; full fine-tuning "
        f"{m['full_acc']:.3f} ({m['full_gain_over_head']:+.3f}); LoRA at the paper's rule "
        + ", ".join(f"r = {q}: {g:+.3f}" for q, g in m["rule_gain_over_head"].items())
        + f". Matched accuracy (gap {m['max_acc_gap']:.3f}) therefore compares models that "
        + ("all learned." if all(m["learned"].values()) else "did not all learn at this step budget."),
        f"* **Intruders at the paper's rule.** Full FT: {m['full_intruders']}; LoRA "
        + ", ".join(f"r = {q}: {c}" for q, c in m["intruders_by_rank"].items())
        + (
            f". Along the lr sweep at r = {cfg.headline_rank} they first appear at {first['lr']:.2g} "
            f"({first['lr'] / rule:.0f}x the rule's {rule:.2g}): at our {cfg.steps:,}-step scale the updates of the "
            "paper's rule are too small to create them."
            if first and first["lr"] > rule
            else "."
        ),
        f"* **Intruders vs forgetting.** Over the lr sweep's runs that learned, Spearman rho(intruders, forgetting on "
        f"news prose) = {_num(m['rho_sweep_forgetting']):.2f} (paper 0.971), rho(||dW||, forgetting) = "
        f"{_num(m['rho_sweep_size_forgetting']):.2f}; on the in-domain Python-docs probe "
        f"{_num(m['rho_sweep_forgetting_pydocs']):.2f}; with embedding drift {_num(m['rho_sweep_drift']):.2f}; with "
        f"accuracy {_num(m['rho_sweep_acc']):.2f} (paper -0.338, not significant). Beyond the update's size (the "
        f"residual of forgetting after a line on ||dW||, over the {m['beyond_size_runs']} LoRA runs that learned), "
        f"intruders correlate at {_num(m['intruders_beyond_size']):.2f}: near 0 means the update's size, not its "
        "intruders, carries the forgetting here.",
    ]
    if m["intervened"]:
        lines.append(
            f"* **The intervention** on {m['intervened']} ({m['intervention_matrices']} matrices with an intruder): "
            f"scaling the top intruder by {m['intervention_lambda']:g} changes forgetting by "
            f"{-_num(m['intervention_forgetting_drop']):+.0%} at an accuracy cost of {m['intervention_acc_cost']:+.3f}; "
            f"the neighbour control by {-_num(m['control_forgetting_drop']):+.0%}, the same-size edit of the "
            f"neighbouring direction by {-_num(m['matched_forgetting_drop']):+.0%}. peft's "
            f"`reduce_intruder_dimension` (it scales *every* intruder among the top {cfg.top_k} and refits a rank-r "
            f"adapter, so it is a different operation) changes forgetting by {-_num(m['peft_forgetting_drop']):+.0%} "
            f"at a cost of {_num(m['peft_acc_cost']):+.3f}."
        )
    drops = m["sequence_task_a_acc_drop"]
    lines.append(
        "* **Sequential fine-tuning.** Accuracy lost on the target task: "
        + ", ".join(f"{k} {v:+.3f}" for k, v in drops.items())
        + " (the paper: LoRA loses more)."
    )
    return "\n".join(lines)


THRESHOLDS["gpu"] = gpu_thresholds(THRESHOLDS["paper"])
