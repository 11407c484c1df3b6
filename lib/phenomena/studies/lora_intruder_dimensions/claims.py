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

from scipy.stats import spearmanr

from phenomena.claims import Claim, Expect, Threshold, expectation, gpu_thresholds
from phenomena.studies.lora_intruder_dimensions.config import Config
from phenomena.studies.lora_intruder_dimensions.experiment import Results, has_learned

# Where each threshold comes from. _PAPER: the paper's own numbers or statements. _S0: set in this session from the
# paper and seed 0 only, before any other seed was run (the 5-seed sweep judges them). The margins of 0.05 on
# accuracy are ~2 standard errors of a difference on our 225-example test set.
_PAPER = "the paper (Shuttleworth et al.)"
_S0 = "set from the paper and seed 0 only, before other seeds"
_SMOKE = "smoke: wiring only, never enforced"
_QUICK: dict[str, Threshold] = {
    "needs_ft": Threshold(
        0.05, "the issue's aim: fine-tuning beats the frozen encoder + head by >= 5 points"
    ),
    "acc_gap": Threshold(0.05, _S0 + " (~2 standard errors of a difference on 225 test examples)"),
    "learned": Threshold(
        0.05, _S0 + " (a run 'learned' if within 0.05 of the frozen encoder + head or above)"
    ),
    "full_max": Threshold(3.0, _PAPER + ", Fig. 4: full fine-tuning has ~0 intruders"),
    "lora_min": Threshold(0.0, _PAPER + ", Fig. 4: LoRA has intruders for r <= 16"),
    "rank_rho": Threshold(-0.5, _S0 + " (the paper: counts fall with rank)"),
    "rho": Threshold(0.8, _PAPER + " (rho = 0.971 over its lr sweep, Fig. 7), with slack"),
    "forget_drop": Threshold(0.1, _PAPER + " (-19.8% to -33.2% at lambda 0.5-0.7), half the smaller effect"),
    "vs_control": Threshold(0.0, _PAPER + ", Sec. 6: the control does not reduce forgetting (sign)"),
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
    "learned": Threshold(0.05, _PP + ": the quick margin (no paper number; only decides which runs count)"),
    "full_max": Threshold(3.0, _PP + ", Fig. 4: full fine-tuning has ~0 intruders (a few at most)"),
    "lora_min": Threshold(0.0, _PP + ", Fig. 4: LoRA has intruders for r <= 16"),
    "rank_rho": Threshold(
        -0.5, _PP + ", Fig. 4: counts fall with rank (r = 64 ~ full FT); bound: a clear fall"
    ),
    "rho": Threshold(0.8, _PP + ": rho = 0.971 over its lr sweep (Fig. 7), with slack for a 6-point sweep"),
    "forget_drop": Threshold(
        0.1, _PP + ": -19.8% to -33.2% at lambda 0.5-0.7 (Table 3), half the smaller effect"
    ),
    "vs_control": Threshold(0.0, _PP + ", Sec. 6: the control does not reduce forgetting (sign)"),
    "acc_cost": Threshold(0.01, _PP + ", Table 3: 0.0 (QQP) to 0.006 (MNLI), rounded up to 0.01"),
    "seq_drop": Threshold(0.0, _PP + ", Fig. 9: LoRA degrades earlier tasks more than full FT (sign)"),
}
THRESHOLDS: dict[str, dict[str, Threshold]] = {
    "smoke": {k: Threshold(t.value, _SMOKE) for k, t in _QUICK.items()},
    "quick": _QUICK,
    "paper": _PAPER_PRESET,
}
#: why a row expects another outcome than the paper's at the quick preset (5-seed sweep, seeds 0-4)
_WHY = {
    "matched_accuracy": "quick: at the paper's rule LoRA gains little over the frozen encoder within our 200-step "
    "budget (5-seed gap 0.117 [0.080, 0.154], 0 of 5 pass; bf16 sweep before: 0.116 [0.079, 0.154])",
    "lora_has_intruders": "quick: none at the paper's rule within our step budget (0 at 5 of 5 seeds): see the lr "
    "sweep",
    "fewer_intruders_at_higher_rank": "quick: undefined at every seed (no intruder at any rank at the paper's rule)",
    "more_intruders_more_forgetting": "quick: varies with the seed (5 seeds: 0.756 [0.564, 0.948], 2 of 5 pass, the "
    "same ranks in the fp32 and the earlier bf16 sweep): the sweep's verdict is unclear",
    "intruder_beats_control": "quick: holds at 5 of 5 seeds of the fp32 sweep (0.44 [0.04, 0.84]); it varied with "
    "the seed in the earlier bf16 sweep (0.47 [-0.10, 1.04], 4 of 5), so expected unclear there",
    "scaling_down_small_accuracy_cost": "quick: the bound 0.03 sits within about one test example (0.0044 of a "
    "225-example test set) of the 5-seed interval (fp32 [-0.044, 0.026]; bf16 before [-0.019, 0.029]): a single "
    "seed may land on either side (not retuned)",
    "lora_forgets_earlier_task_more": "quick: at the paper's rule LoRA barely moved on the first task, so it had "
    "little to lose (5 seeds: -0.069 [-0.115, -0.023], 0 of 5 pass)",
}


def _expect(cfg: Config, cid: str, quick: Expect) -> Expect:
    """The row's expectation at ``cfg.preset``: ``quick`` there (reason in ``_WHY``), the paper's outcome at paper."""
    return expectation(cfg.preset, _WHY[cid], quick=quick)


def _why(cfg: Config, cid: str, note: str = "") -> str:
    """The row's note: what it observed, then (where quick expects otherwise) why."""
    parts = [note] if note else []
    if cfg.preset in ("quick", "smoke"):
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
    learned = {r["run"]: has_learned(r["acc"], res) for r in [full, *a2r]}
    out: dict[str, Any] = {
        "task": res.task,
        "base": res.base_metrics,
        "runs": rows,
        "head_acc": head_acc,
        "full_acc": full["acc"],
        "full_gain_over_head": full["acc"] - head_acc,
        "rule_gain_over_head": {r["rank"]: r["acc"] - head_acc for r in a2r},
        "learned": learned,
        "max_acc_gap": max(abs(r["acc"] - full["acc"]) for r in a2r),
        "full_intruders": full["intruders"],
        "headline_run": hl["run"],
        "headline_intruders": hl["intruders"],
        "intruders_by_rank": {r["rank"]: r["intruders"] for r in a2r},
        "rho_rank_intruders": spearman([r["rank"] for r in a2r], [r["intruders"] for r in a2r])[0],
        "lr_sweep": [
            {k: r[k] for k in ("lr", "acc", "intruders", "forgetting", "forgetting_pydocs", "drift")}
            for r in sweep
        ],
        "steps": res.steps,
        "n_lora_runs": len(lora),
    }
    x = [r["intruders"] for r in sweep]
    for key in ("forgetting", "forgetting_pydocs", "drift", "acc"):
        out[f"rho_sweep_{key}"], out[f"p_sweep_{key}"] = spearman(x, [r[key] for r in sweep])
        out[f"rho_all_{key}"], _ = spearman([r["intruders"] for r in lora], [r[key] for r in lora])
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
    one, at, ctrl = (
        rows[(1.0, "top intruder")],
        rows[(lam, "top intruder")],
        rows.get((lam, "neighbour (control)")),
    )
    for key in ("forgetting", "drift"):
        out[f"intervention_{key}_drop"] = _relative_drop(one[key], at[key])
        out[f"control_{key}_drop"] = _relative_drop(one[key], ctrl[key]) if ctrl else float("nan")
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


def claims(cfg: Config, m: dict[str, Any]) -> list[Claim]:
    """The paper's claims as checkable numbers (thresholds in ``THRESHOLDS`` for the run's preset)."""
    th = THRESHOLDS[cfg.preset]
    eps, k, r = cfg.epsilon, cfg.top_k, cfg.headline_rank
    not_learned = [run for run, ok in m["learned"].items() if not ok]
    full_learned = m["learned"].get("full FT", False)
    ranks = sorted(m["intruders_by_rank"], key=int)
    counts = ", ".join(f"r={q}: {m['intruders_by_rank'][q]}" for q in ranks)
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
            statement="largest |LoRA (paper's lr rule, every rank) - full FT| accuracy "
            "gap, when every run learned",
            paper="< 0.01 (MNLI, Table 1)",
            bound=th["acc_gap"],
            expect=_expect(cfg, "matched_accuracy", "fails"),
            ours=m["max_acc_gap"] if not not_learned else float("nan"),
            note=_why(
                cfg, "matched_accuracy", f"did not learn: {', '.join(not_learned)}" if not_learned else ""
            ),
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
            expect=_expect(cfg, "lora_has_intruders", "fails"),
            note=_why(cfg, "lora_has_intruders"),
        ),
        Claim.below(
            id="fewer_intruders_at_higher_rank",
            statement=f"Spearman rho(rank, intruders) over r = {', '.join(map(str, ranks))}, paper's rule",
            paper="fall with rank; r = 64 ~ full FT (Fig. 4)",
            ours=_num(m["rho_rank_intruders"]),
            bound=th["rank_rho"],
            expect=_expect(cfg, "fewer_intruders_at_higher_rank", "fails"),
            note=_why(
                cfg,
                "fewer_intruders_at_higher_rank",
                ""
                if m["rho_rank_intruders"] is not None and not math.isnan(_num(m["rho_rank_intruders"]))
                else "undefined: the same count at every rank",
            ),
        ),
    ]
    n = len(m["lr_sweep"])
    rho = _num(m["rho_sweep_forgetting"])
    rows.append(
        Claim.above(
            id="more_intruders_more_forgetting",
            statement=f"Spearman rho(intruders, forgetting on news prose) over the lr sweep at r = {r} ({n} lrs); all "
            f"{m['n_lora_runs']} LoRA runs: {_num(m['rho_all_forgetting']):.2f}; in-domain probe: "
            f"{_num(m['rho_sweep_forgetting_pydocs']):.2f}",
            paper="0.971 (lr sweep, Fig. 7)",
            ours=rho,
            bound=th["rho"],
            expect=_expect(cfg, "more_intruders_more_forgetting", "unclear"),
            note=_why(
                cfg,
                "more_intruders_more_forgetting",
                "" if not math.isnan(rho) else "undefined: intruders (or forgetting) constant over the sweep",
            ),
        )
    )
    rows += _intervention_claims(cfg, m, th)
    drops = m["sequence_task_a_acc_drop"]
    lora_key = next(key for key in drops if key != "full FT")
    rows.append(
        Claim.above(
            id="lora_forgets_earlier_task_more",
            statement=f"accuracy lost on the target task after {', '.join(cfg.seq_tasks)}: {lora_key} minus full FT "
            f"({drops[lora_key]:+.3f} vs {drops['full FT']:+.3f})",
            paper="LoRA degrades earlier tasks faster (Fig. 9)",
            ours=drops[lora_key] - drops["full FT"],
            bound=th["seq_drop"],
            expect=_expect(cfg, "lora_forgets_earlier_task_more", "fails"),
            note=_why(cfg, "lora_forgets_earlier_task_more"),
        )
    )
    return rows


def _intervention_claims(cfg: Config, m: dict[str, Any], th: dict[str, Threshold]) -> list[Claim]:
    lam = m["intervention_lambda"]
    ids = ("scaling_down_reduces_forgetting", "intruder_beats_control", "scaling_down_small_accuracy_cost")
    if not m["intervened"]:
        none = "undefined: no lr-sweep run that learned the task has an intruder to scale"
        why = (
            "; redefined in issue 17 (was: not evaluated when no run has an intruder): no intruder to scale is the "
            "phenomenon missing, not an input the config removed; undefined, which fails"
        )
        th = {
            key: Threshold(th[key].value, th[key].evidence + why)
            for key in ("forget_drop", "vs_control", "acc_cost")
        }
        return [
            Claim.above(
                id=ids[0], statement="the intervention's forgetting drop", paper="Sec. 6, Fig. 8",
                ours=float("nan"), bound=th["forget_drop"], note=none,
            ),
            Claim.above(
                id=ids[1], statement="the intervention minus its control", paper="Sec. 6",
                ours=float("nan"), bound=th["vs_control"], expect=_expect(cfg, ids[1], "holds"),
                note=_why(cfg, ids[1], none),
            ),
            Claim.below(
                id=ids[2], statement="the intervention's accuracy cost", paper="Table 3",
                ours=float("nan"), bound=th["acc_cost"], expect=_expect(cfg, ids[2], "unclear"),
                note=_why(cfg, ids[2], none),
            ),
        ]  # fmt: skip
    f_drop, c_drop = _num(m["intervention_forgetting_drop"]), _num(m["control_forgetting_drop"])
    undefined = "undefined: the run does not forget (forgetting <= 0 at lambda = 1)"
    return [
        Claim.above(
            id=ids[0],
            statement=f"{m['intervened']}: relative forgetting drop, top intruder x {lam:g} "
            f"(drift drop {_num(m['intervention_drift_drop']):+.0%})",
            paper="-33.2% QQP (x0.7), -19.8% MNLI (x0.5)",
            ours=f_drop,
            bound=th["forget_drop"],
            note="" if not math.isnan(f_drop) else undefined,
        ),
        Claim.above(
            id=ids[1],
            statement=f"forgetting drop: top intruder minus neighbour control, x {lam:g} "
            f"(control: {c_drop:+.0%})",
            paper="the control increases forgetting (Sec. 6)",
            ours=f_drop - c_drop,
            bound=th["vs_control"],
            expect=_expect(cfg, ids[1], "holds"),
            note=_why(cfg, ids[1], "" if not math.isnan(f_drop - c_drop) else undefined),
        ),
        Claim.below(
            id=ids[2],
            statement=f"accuracy lost, top intruder x {lam:g}",
            paper="0.0 QQP, 0.006 MNLI (Table 3)",
            ours=m["intervention_acc_cost"] if m["intervened_learned"] else float("nan"),
            bound=th["acc_cost"],
            expect=_expect(cfg, ids[2], "unclear"),
            note=_why(
                cfg,
                ids[2],
                "" if m["intervened_learned"] else "the intervened run did not learn: no accuracy to lose",
            ),
        ),
    ]


def departures(cfg: Config, m: dict[str, Any]) -> list[str]:
    """Declared departures from the paper's setup, with our numbers."""
    task = m["task"]
    out = [
        f"Model and task: all-MiniLM-L6-v2 (6-layer BERT, 22.7M parameters; the paper: RoBERTa-base) fine-tuned on "
        f"'{task['task']}' ({task['examples']:,} standard-library docstrings, {len(task['classes'])} classes, "
        f"{task['test']} test examples; the paper: MNLI and five more GLUE-style tasks), {cfg.steps} steps of batch "
        f"{cfg.batch_size} (the paper: 5 epochs).",
        f"Full fine-tuning at lr {cfg.full_lr:g} (the paper: 1e-5, which at our step budget gains "
        "less over the frozen encoder; see the try-this list); LoRA at the paper's rule alpha = 2r, "
        f"alpha x lr = {cfg.lr_alpha_product:g}.",
        "Forgetting is MiniLM's own training loss (contrastive sentence retrieval, InfoNCE at temperature "
        f"{cfg.probe_temperature:g}) on {cfg.n_probe} sentences of news prose (the Lee corpus shipped in gensim's "
        "test data) against their word-dropped copies; the paper measures its pre-training loss on the pre-training "
        "corpora. The Python-docs probe is an in-domain contrast only.",
    ]
    if m["intervened"]:
        out.append(
            f"The intervention is run on {m['intervened']}, the lr-sweep run with the most intruders (the "
            "paper's runs have intruders at its own rule)."
        )
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
            f"({first['lr'] / rule:.0f}x the rule's {rule:.2g}): at our 200-step scale the updates of the paper's rule "
            "are too small to create them."
            if first and first["lr"] > rule
            else "."
        ),
        f"* **Intruders vs forgetting.** Over the lr sweep, Spearman rho(intruders, forgetting on news prose) = "
        f"{_num(m['rho_sweep_forgetting']):.2f} (paper 0.971); on the in-domain Python-docs probe "
        f"{_num(m['rho_sweep_forgetting_pydocs']):.2f}; with embedding drift {_num(m['rho_sweep_drift']):.2f} (drift "
        "follows the size of the update, so it is reported, not claimed); with accuracy "
        f"{_num(m['rho_sweep_acc']):.2f} (paper -0.338, not significant).",
    ]
    if m["intervened"]:
        lines.append(
            f"* **The intervention** on {m['intervened']} ({m['intervention_matrices']} matrices with an intruder): "
            f"scaling the top intruder by {m['intervention_lambda']:g} changes forgetting by "
            f"{-_num(m['intervention_forgetting_drop']):+.0%} at an accuracy cost of {m['intervention_acc_cost']:+.3f}; "
            f"the neighbour control by {-_num(m['control_forgetting_drop']):+.0%}. peft's "
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
