"""The named measures the LoRA intruder-dimensions claims read (:class:`phenomena.claims.Measures`): gated counts,
contrasts, the forgetting comparison and the intervention's drops, computed from the stored metrics (:mod:`.summary`),
and the resolution of the discrete ones. No thresholds here.

Undefined numbers are NaN in a fresh run and null once written; every measure reads either as NaN (a failing seed).
A measure raises :class:`NotEvaluated` only where the configuration gives it too few runs to compute it.

The labels the statement and note templates name (``@MEASURES.label``: per-rank, per-epsilon and per-task lists, the
reason a measure is undefined) are in :mod:`.templates`.
"""

from __future__ import annotations

from typing import Any

from phenomena.claims import Measures, NotEvaluated
from phenomena.studies.lora_intruder_dimensions.config import Config
from phenomena.studies.lora_intruder_dimensions.data import TASK_MODULES
from phenomena.studies.lora_intruder_dimensions.experiment import LEARNED_MARGIN

Metrics = dict[str, Any]
NAN = float("nan")


MEASURES = Measures()


def as_float(x: float | None) -> float:
    """A stored number as a float: NaN where null (an undefined number written to JSON)."""
    return NAN if x is None else float(x)


# ------------------------------------------------------------------------------------------------------ resolutions


@MEASURES
def one_test_example(cfg: Config, m: Metrics) -> float:
    """One example of the target task's test set, in accuracy: 1 / N."""
    return 1 / m["task"]["test"]


@MEASURES
def one_later_test_example(cfg: Config, m: Metrics) -> float:
    """One example of the smallest later task's test set, in accuracy (a topic task holds n_test_per_class test
    examples per class unless a class has fewer than twice that, so this is the finest it can be)."""
    _needs_sequence(cfg)
    return 1 / min(len(TASK_MODULES[t.removeprefix("topics-")]) * cfg.n_test_per_class for t in cfg.seq_tasks)


# -------------------------------------------------------------------------------------------- accuracy and intruders


@MEASURES
def learned_margin(cfg: Config, m: Metrics) -> float:
    """How far above the frozen encoder + head (or chance) a run's accuracy must be for it to have learned."""
    return LEARNED_MARGIN


@MEASURES
def matched_acc_gap(cfg: Config, m: Metrics) -> float:
    """Largest |LoRA (paper's rule, every rank) - full FT| accuracy gap; NaN unless every one of them learned."""
    return m["max_acc_gap"] if all(m["learned"].values()) else NAN


@MEASURES
def full_ft_intruders(cfg: Config, m: Metrics) -> float:
    """Full FT's intruder count; NaN unless full FT learned the task (an unchanged W = W0 has none either)."""
    return m["full_intruders"] if m["learned"].get("full FT", False) else NAN


@MEASURES
def lora_minus_full_fewest(cfg: Config, m: Metrics) -> float:
    """Fewest intruders of LoRA at the paper's rule over r <= 16 minus full FT's; NaN unless all of them learned."""
    if sum(r <= 16 for r in cfg.ranks) < 2:
        raise NotEvaluated("a minimum over ranks r <= 16 needs >= 2 of them at the paper's rule")
    return as_float(m["lora_minus_full_intruders"])


@MEASURES
def lora_minus_full_min_epsilon(cfg: Config, m: Metrics) -> float:
    """Headline LoRA run's intruders minus full FT's, fewest over epsilon >= cfg.epsilon; NaN unless both learned."""
    return as_float(m["min_epsilon_contrast"])


@MEASURES
def rank_rho(cfg: Config, m: Metrics) -> float:
    """Spearman rho(rank, intruders) at the paper's rule; NaN when every rank has the same count."""
    if len(cfg.ranks) < 3:
        raise NotEvaluated("a rank correlation needs >= 3 ranks at the paper's rule")
    return as_float(m["rho_rank_intruders"])


# -------------------------------------------------------------------------------------------------------- forgetting


@MEASURES
def sweep_rho(cfg: Config, m: Metrics) -> float:
    """Spearman rho(intruders, news-prose forgetting) over the lr sweep's runs that learned; NaN with fewer than 3
    of them or a constant input."""
    if len(cfg.families()["lr sweep"]) < 3:
        raise NotEvaluated("a correlation over the lr sweep needs >= 3 learning rates")
    return as_float(m["rho_sweep_forgetting"])


@MEASURES
def beyond_size_rho(cfg: Config, m: Metrics) -> float:
    """Spearman rho(intruders, forgetting's residual after a line on ||dW|| / ||W0||) over the LoRA runs that learned;
    NaN with fewer than 4 of them or a constant input."""
    if len(cfg.lora_runs()) < 4:
        raise NotEvaluated("the correlation beyond the update's size needs >= 4 LoRA runs")
    return as_float(m["intruders_beyond_size"])


def _forgetting(m: Metrics, run: str) -> float:
    return as_float(next(r["forgetting"] for r in m["runs"] if r["run"] == run))


@MEASURES
def full_forgetting(cfg: Config, m: Metrics) -> float:
    """Full FT's forgetting on news prose (the rise of the base model's retrieval loss)."""
    return _forgetting(m, "full FT")


@MEASURES
def headline_forgetting(cfg: Config, m: Metrics) -> float:
    """The headline LoRA run's (paper's lr rule, r = headline_rank) forgetting on news prose."""
    return _forgetting(m, m["headline_run"])


@MEASURES
def full_minus_lora_forgetting(cfg: Config, m: Metrics) -> float:
    """Full FT's news-prose forgetting minus the headline LoRA run's (paper's rule); NaN unless both learned."""
    if not (m["learned_all"]["full FT"] and m["learned_all"][m["headline_run"]]):
        return NAN
    return _forgetting(m, "full FT") - _forgetting(m, m["headline_run"])


# ------------------------------------------------------------------------------------------------- the intervention
# NaN when the headline run was not intervened on (it did not learn or has no intruder: the phenomenon missing, not
# an input the configuration removed) or does not forget (forgetting <= 0 at lambda = 1).


@MEASURES
def forgetting_drop(cfg: Config, m: Metrics) -> float:
    """Relative drop of news-prose forgetting, top intruder of each matrix scaled by intervention_lambda."""
    return as_float(m.get("intervention_forgetting_drop"))


@MEASURES
def control_drop(cfg: Config, m: Metrics) -> float:
    """Relative forgetting drop of the neighbour control (the nearest pre-trained direction scaled instead)."""
    return as_float(m.get("control_forgetting_drop"))


@MEASURES
def drop_over_control(cfg: Config, m: Metrics) -> float:
    """Forgetting drop of the intervention minus the neighbour control's."""
    return as_float(m.get("intervention_forgetting_drop")) - as_float(m.get("control_forgetting_drop"))


@MEASURES
def drop_over_matched(cfg: Config, m: Metrics) -> float:
    """Forgetting drop of the intervention minus the matched-norm control's (the same Frobenius change along the
    neighbouring pre-trained direction)."""
    return as_float(m.get("intervention_forgetting_drop")) - as_float(m.get("matched_forgetting_drop"))


@MEASURES
def intervention_acc_cost(cfg: Config, m: Metrics) -> float:
    """Target accuracy lost by the intervention (lambda = 1 minus intervention_lambda)."""
    return as_float(m.get("intervention_acc_cost"))


# ------------------------------------------------------------------------------------------------ the sequence panel


def _needs_sequence(cfg: Config) -> None:
    """Raise :class:`NotEvaluated` where the configuration has no sequential panel (no ``seq_tasks``)."""
    if not cfg.seq_tasks:
        raise NotEvaluated("the sequential panel needs >= 1 later task (seq_tasks is empty)")


def later_task_gaps(sequence: list[dict[str, Any]]) -> dict[str, float]:
    """Per later task of the sequential panel: LoRA's accuracy on it right after training on it, minus full FT's."""
    out = {}
    for stage in sorted({r["stage"] for r in sequence if r["stage"] > 1}):
        rows = [r for r in sequence if r["stage"] == stage]
        key = f"acc_seq{stage - 1}"
        full = next(r[key] for r in rows if r["method"] == "full FT")
        lora = next(r[key] for r in rows if r["method"] != "full FT")
        out[rows[0]["trained_on"]] = lora - full
    return out


@MEASURES
def worst_later_task_gap(cfg: Config, m: Metrics) -> float:
    """Lowest accuracy on a later task of the sequence right after training on it, LoRA minus full FT."""
    _needs_sequence(cfg)
    return min(later_task_gaps(m["sequence"]).values(), default=NAN)


def lora_method(m: Metrics) -> str:
    return next(key for key in m["sequence_task_a_acc_drop"] if key != "full FT")


@MEASURES
def seq_lora_drop(cfg: Config, m: Metrics) -> float:
    """Target-task accuracy LoRA lost over the later tasks of the sequence."""
    _needs_sequence(cfg)
    return m["sequence_task_a_acc_drop"][lora_method(m)]


@MEASURES
def seq_full_drop(cfg: Config, m: Metrics) -> float:
    """Target-task accuracy full FT lost over the later tasks of the sequence."""
    _needs_sequence(cfg)
    return m["sequence_task_a_acc_drop"]["full FT"]


@MEASURES
def seq_drop_lora_minus_full(cfg: Config, m: Metrics) -> float:
    """Target-task accuracy lost over the sequence, LoRA minus full FT."""
    _needs_sequence(cfg)
    drops = m["sequence_task_a_acc_drop"]
    return drops[lora_method(m)] - drops["full FT"]


# ---------------------------------------------------------------------- the random-direction null and size held equal


def _needs_null(cfg: Config) -> None:
    if not cfg.null_draws:
        raise NotEvaluated("the random-direction null needs null_draws >= 1")


def _needs_matched(cfg: Config) -> None:
    if not cfg.full_matched_lr:
        raise NotEvaluated("size held equal needs the full FT run at full_matched_lr (0: none)")


@MEASURES
def headline_minus_null(cfg: Config, m: Metrics) -> float:
    """The headline run's intruders at epsilon minus what a random update of its rank, norm and spectrum scores
    (mean over null_draws draws); NaN unless it learned."""
    _needs_null(cfg)
    return as_float(m.get("headline_minus_null"))


@MEASURES
def headline_minus_null_over_epsilon(cfg: Config, m: Metrics) -> float:
    """The same, summed over every epsilon of the sweep from cfg.epsilon up (the area between the two curves)."""
    _needs_null(cfg)
    return as_float(m.get("headline_minus_null_over_epsilon"))


@MEASURES
def matched_size_ratio(cfg: Config, m: Metrics) -> float:
    """||dW|| / ||W0|| of full FT at full_matched_lr over the headline LoRA run's."""
    _needs_matched(cfg)
    return as_float(m.get("matched_size_ratio"))


@MEASURES
def lora_minus_matched_full(cfg: Config, m: Metrics) -> float:
    """Headline LoRA intruders minus size-matched full FT's, summed over epsilon from cfg.epsilon up; NaN unless both
    learned."""
    _needs_matched(cfg)
    return as_float(m.get("lora_minus_matched_full_over_epsilon"))


@MEASURES
def matched_full_minus_lora_forgetting(cfg: Config, m: Metrics) -> float:
    """News-prose forgetting of size-matched full FT minus the headline LoRA run's; NaN unless both learned."""
    _needs_matched(cfg)
    return as_float(m.get("matched_full_minus_lora_forgetting"))
