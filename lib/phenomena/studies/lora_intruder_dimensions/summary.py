"""What a LoRA intruder-dimensions run stores: ``summarize(cfg, results) -> metrics``, the JSON-ready numbers of one
run (per-run accuracy, intruder counts and forgetting, the contrasts and rank correlations over runs, the
intervention's relative drops and the sequential panel). The claims read them through the named measures
(:mod:`.measures`); this module and the computation it summarises are all that the stored metrics depend on
(:func:`phenomena.run.study_metrics_hash`).

Forgetting is the paper's: the rise of the model's own pre-training loss (here MiniLM's contrastive retrieval loss)
on text unlike the task (news prose). Embedding drift is reported as representational change and never carries a
forgetting claim; the Python-docs probe (the task's own domain) is an in-domain contrast.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from phenomena.studies.lora_intruder_dimensions.config import MATCHED_FAMILY, Config
from phenomena.studies.lora_intruder_dimensions.experiment import Results, has_learned
from phenomena.studies.lora_intruder_dimensions.intruders import DIRECTIONS


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
    out |= _null_metrics(cfg, rows, hl, full, learned_all)
    out |= _intervention_metrics(cfg, res)
    out |= _sequence_metrics(res)
    out["compute_s"] = res.compute_s
    return out


def _above(a: dict[str, Any], b: dict[str, Any], prefix_b: str, eps: Sequence[float]) -> float:
    """Run ``a``'s intruders minus ``b``'s ``prefix_b`` counts (its intruders or its null), summed over ``eps``."""
    return float(sum(a[f"intruders@{e:g}"] - b[f"{prefix_b}@{e:g}"] for e in eps))


def _null_metrics(
    cfg: Config,
    rows: list[dict[str, Any]],
    hl: dict[str, Any],
    full: dict[str, Any],
    learned: dict[str, bool],
) -> dict[str, Any]:
    """The headline run against the random-direction null of its own update (at the paper's epsilon and summed
    over epsilon from it up), and against full fine-tuning at a matched update size (the ``full_matched_lr`` run,
    if any): counts, size ratio and forgetting. NaN where a run did not learn."""
    nan = float("nan")
    eps_up = [e for e in cfg.epsilons if e >= cfg.epsilon]
    ok = learned[hl["run"]]
    out: dict[str, Any] = {
        "headline_null": hl["null"],
        "full_null": full["null"],
        "null_by_epsilon": {e: {r["run"]: r[f"null@{e:g}"] for r in rows} for e in cfg.epsilons},
        "headline_minus_null": hl["intruders"] - hl["null"] if ok else nan,
        "headline_minus_null_over_epsilon": _above(hl, hl, "null", eps_up) if ok else nan,
    }
    matched = next((r for r in rows if r["family"] == MATCHED_FAMILY), None)
    if matched is None:
        return out
    both = ok and learned[matched["run"]]
    keys = ("run", "lr", "acc", "intruders", "null", "forgetting", "forgetting_pydocs", "dw_rel_norm")
    return out | {
        "matched_full": {k: matched[k] for k in keys} | {"learned": learned[matched["run"]]},
        "matched_size_ratio": matched["dw_rel_norm"] / hl["dw_rel_norm"] if hl["dw_rel_norm"] else nan,
        "lora_minus_matched_full": hl["intruders"] - matched["intruders"] if both else nan,
        "lora_minus_matched_full_over_epsilon": _above(hl, matched, "intruders", eps_up) if both else nan,
        "matched_full_minus_lora_forgetting": matched["forgetting"] - hl["forgetting"] if both else nan,
    }


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
