"""The LoRA notebook's generated prose: the declared departures from the paper's setup and "how ours compares",
both written from the metrics (no typed numbers)."""

from __future__ import annotations

from typing import Any

from phenomena.studies.lora_intruder_dimensions.config import Config


def _num(x: float | None) -> float:
    return float("nan") if x is None else float(x)


PAPER_FULL_LR, PAPER_LR_ALPHA = (
    1e-5,
    2.4e-3,
)  # Shuttleworth et al.: full FT's lr and LoRA's alpha x lr (App. B.3)


def _learning_rates(cfg: Config) -> str:
    """The learning rates, said as the paper's or as a departure from it."""
    ranks = ", ".join(map(str, cfg.ranks))
    if (cfg.full_lr, cfg.lr_alpha_product) == (PAPER_FULL_LR, PAPER_LR_ALPHA):
        return (
            f"Full fine-tuning at the paper's lr {cfg.full_lr:g}; LoRA at the paper's rule alpha = 2r, alpha x lr = "
            f"{cfg.lr_alpha_product:g}, ranks {ranks} (the paper: 1-64)."
        )
    return (
        f"Learning rates off the paper's: full fine-tuning at {cfg.full_lr:g} ({cfg.full_lr / PAPER_FULL_LR:.2g}x "
        f"the paper's {PAPER_FULL_LR:g}), LoRA at alpha = 2r with alpha x lr = {cfg.lr_alpha_product:g} "
        f"({cfg.lr_alpha_product / PAPER_LR_ALPHA:.2g}x the paper's rule), ranks {ranks}: the quick tier's "
        "shorter runs keep lr x steps of the rule's 5 epochs; preset='full' trains at the paper's rates."
    )


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
        _learning_rates(cfg),
        "Forgetting is MiniLM's own training loss (contrastive sentence retrieval, InfoNCE at temperature "
        f"{cfg.probe_temperature:g}) on {cfg.n_probe} sentences of news prose (the Lee corpus shipped in gensim's "
        "test data) against their word-dropped copies; the paper measures its pre-training loss on the pre-training "
        "corpora. The Python-docs probe is an in-domain contrast only.",
        "Added controls: the forgetting correlation beside the update's size, a matched-norm control for the "
        "intervention, a random-direction null of every run's intruder count (the same rank, norm and spectrum along "
        "random directions) and, at the full tier, full fine-tuning at a larger lr whose update is as large as LoRA "
        "r = 1's (the paper has none of these).",
    ]
    return out


#: what the comparison says of a panel the quick tier does not run
NOT_RUN = 'Not run at this tier: `preset="full"` runs it (its committed 5-seed sweep judges the rows).'


def _forgetting_line(cfg: Config, m: dict[str, Any]) -> str:
    """Intruders vs forgetting over the lr sweep and beyond the update's size; at the quick tier (the rule's run
    only) the two forgetting numbers of the headline comparison."""
    sweep = m["lr_sweep"]
    if len(sweep) < 2:
        full = next(r for r in m["runs"] if r["method"] == "full")
        head = f"LoRA r = {cfg.headline_rank} at the rule {sweep[0]['forgetting']:.4f}; " if sweep else ""
        return (
            f"* **Intruders vs forgetting.** Forgetting on news prose: full FT {full['forgetting']:.4f}, {head}"
            f"the lr sweep and the other ranks that set intruders against forgetting: {NOT_RUN}"
        )
    return (
        f"* **Intruders vs forgetting.** Over the lr sweep's runs that learned, Spearman rho(intruders, forgetting on "
        f"news prose) = {_num(m['rho_sweep_forgetting']):.2f} (paper 0.971), rho(||dW||, forgetting) = "
        f"{_num(m['rho_sweep_size_forgetting']):.2f}; on the in-domain Python-docs probe "
        f"{_num(m['rho_sweep_forgetting_pydocs']):.2f}; with embedding drift {_num(m['rho_sweep_drift']):.2f}; with "
        f"accuracy {_num(m['rho_sweep_acc']):.2f} (paper -0.338, not significant). Beyond the update's size (the "
        f"residual of forgetting after a line on ||dW||, over the {m['beyond_size_runs']} LoRA runs that learned), "
        f"intruders correlate at {_num(m['intruders_beyond_size']):.2f}: near 0 means the update's size, not its "
        "intruders, carries the forgetting here."
    )


def _null_line(cfg: Config, m: dict[str, Any]) -> str:
    """The headline run against its random-direction null, and against full FT with an update of its size."""
    if "headline_null" not in m or not cfg.null_draws:
        return "* **Against a random update of the same size.** Not computed (`null_draws` = 0)."
    line = (
        f"* **Against a random update of the same size.** A random update with the headline run's rank, norm and "
        f"spectrum scores {_num(m['headline_null']):.2f} intruders at eps {cfg.epsilon:g} (LoRA: "
        f"{m['headline_intruders']}; summed over eps >= {cfg.epsilon:g}, LoRA minus its null = "
        f"{_num(m['headline_minus_null_over_epsilon']):+.1f}); full FT's null is {_num(m['full_null']):.2f}: its "
        "update is spread too thin to enter the top singular vectors in any direction."
    )
    mf = m.get("matched_full")
    if not mf:
        return line + f" Full FT at LoRA's update size: {NOT_RUN}"
    return line + (
        f" Full FT at lr {mf['lr']:.2g}, an update of ||dW|| / ||W0|| = {mf['dw_rel_norm']:.4f} "
        f"({_num(m['matched_size_ratio']):.2f}x LoRA's), reaches accuracy {mf['acc']:.3f} with {mf['intruders']} "
        f"intruders at eps {cfg.epsilon:g} (null {_num(mf['null']):.2f}) and forgets {mf['forgetting']:.4f} against "
        f"LoRA's {mf['forgetting'] - _num(m['matched_full_minus_lora_forgetting']):.4f}."
    )


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
        _null_line(cfg, m),
        _forgetting_line(cfg, m),
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
        if drops
        else f"* **Sequential fine-tuning.** {NOT_RUN}"
    )
    return "\n".join(lines)


#: the rows the over-seeds paragraph reads, with what each says when it holds
_VERDICT_ROWS = (
    ("lora_has_intruders", "LoRA r = 1 at the paper's rule has intruders at eps 0.5"),
    (
        "lora_more_intruders_than_full",
        "LoRA at every rank has more intruders than full fine-tuning at the paper's lrs",
    ),
    ("lora_as_foreign_as_random", "LoRA's intruders are as foreign to W0 as a random update's of its size"),
    (
        "lora_more_intruders_than_full_at_matched_size",
        "LoRA has more intruders than full fine-tuning with an update of the same size (summed over eps 0.5-0.9)",
    ),
    ("lora_forgets_less_than_full", "LoRA forgets less than full fine-tuning at the paper's lrs"),
    (
        "lora_forgets_less_at_matched_size",
        "LoRA forgets less than full fine-tuning with an update of the same size",
    ),
    ("intruders_beyond_update_size", "intruders go with forgetting beyond the update's size"),
    ("scaling_down_reduces_forgetting", "scaling the top intruder down reduces forgetting"),
)


def over_seeds(sweep: dict[str, Any] | None) -> str:
    """One paragraph of what reproduces and what does not, generated from the committed 5-seed full sweep (``None``:
    no sweep committed): each headline row's verdict with its mean, interval and seeds."""
    if not sweep:
        return "No full-tier sweep is committed yet: `make sweep STUDY=lora_intruder_dimensions` makes one."
    from phenomena.claims import sweep_text

    rows = {c["id"]: c for c in sweep["claims"]}
    said = {"holds": [], "fails": [], "unclear": []}
    for row_id, text in _VERDICT_ROWS:
        row = rows.get(row_id)
        if row is not None and row["verdict"] in said:
            said[row["verdict"]].append(f"{text} (`{row_id}`: {sweep_text(row)})")
    seeds = ", ".join(map(str, sweep.get("seeds", [])))
    parts = [f"**Over the committed {sweep['preset']}-tier sweep (seeds {seeds}).**"]
    for verdict, lead in (
        ("holds", "Reproduces"),
        ("fails", "Does not reproduce"),
        ("unclear", "Undecided at this scale"),
    ):
        if said[verdict]:
            parts.append(f"{lead}: " + "; ".join(said[verdict]) + ".")
    return " ".join(parts)
