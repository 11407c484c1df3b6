"""The labels of the LoRA claims' statement and note templates (``@MEASURES.label``, see :mod:`.measures`): the
per-rank, per-epsilon and per-task lists a format template cannot join, ``{num[key]:.2f}`` (a stored metric as a
float, NaN where null or absent, as the statements always showed it) and ``{why_undefined[measure]}`` (why a measure
has no value on this run; '' where it has one). Never a row's metric. Importing this module registers them."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from phenomena.claims import NotEvaluated
from phenomena.studies.lora_intruder_dimensions.config import Config
from phenomena.studies.lora_intruder_dimensions.measures import (
    MEASURES,
    Metrics,
    as_float,
    later_task_gaps,
    lora_method,
)


def _ranks(m: Metrics) -> list[Any]:
    return sorted(m["intruders_by_rank"], key=int)  # JSON keys are strings


@MEASURES.label
def rule_ranks(cfg: Config, m: Metrics) -> str:
    return ", ".join(map(str, _ranks(m)))


@MEASURES.label
def rule_gains(cfg: Config, m: Metrics) -> str:
    return ", ".join(f"r={q}: {g:+.3f}" for q, g in m["rule_gain_over_head"].items())


@MEASURES.label
def rule_counts(cfg: Config, m: Metrics) -> str:
    return ", ".join(f"r={q}: {m['intruders_by_rank'][q]}" for q in _ranks(m))


@MEASURES.label
def contrast_rank_list(cfg: Config, m: Metrics) -> str:
    return ", ".join(map(str, m["contrast_ranks"]))


@MEASURES.label
def epsilons_up(cfg: Config, m: Metrics) -> str:
    return ", ".join(f"{e:g}" for e in cfg.epsilons if e >= cfg.epsilon)


@MEASURES.label
def epsilon_counts(cfg: Config, m: Metrics) -> str:
    counts = {float(e): int(c) for e, c in m["epsilon_contrast"].items()}  # JSON keys are strings
    return ", ".join(f"{e:g}: {counts[e]:+d}" for e in cfg.epsilons)


@MEASURES.label
def sweep_learned(cfg: Config, m: Metrics) -> str:
    dropped = m["lr_sweep_not_learned"]
    n = len(m["lr_sweep"]) - len(dropped)
    return f"{n} lrs that learned{'; excluded: ' + ', '.join(dropped) if dropped else ''}"


@MEASURES.label
def intervened_run(cfg: Config, m: Metrics) -> str:
    return m["intervened"] or f"{m['headline_run']} (not intervened on)"


@MEASURES.label
def later_gaps(cfg: Config, m: Metrics) -> str:
    return ", ".join(f"{t}: {g:+.3f}" for t, g in later_task_gaps(m["sequence"]).items())


@MEASURES.label
def later_tasks(cfg: Config, m: Metrics) -> str:
    return ", ".join(cfg.seq_tasks)


@MEASURES.label
def seq_lora_method(cfg: Config, m: Metrics) -> str:
    if not m["sequence_task_a_acc_drop"]:
        raise NotEvaluated("no sequential panel")  # the template shows n/a
    return lora_method(m)


class _Floats:
    """``num[key]``: the stored metric ``key`` as a float, NaN where null or absent."""

    def __init__(self, m: Metrics) -> None:
        self.m = m

    def __getitem__(self, key: str) -> float:
        return as_float(self.m.get(key))


@MEASURES.label
def num(cfg: Config, m: Metrics) -> _Floats:
    return _Floats(m)


def _not_intervened(cfg: Config, m: Metrics) -> str:
    if not m["intervened"]:
        return (
            f"undefined: the headline run at the paper's rule ({m['headline_run']}) did not learn the task or has no "
            "intruder: the phenomenon missing, not an input the configuration removed"
        )
    return "undefined: the run does not forget (forgetting <= 0 at lambda = 1)"


#: why each measure can be undefined on a run (a text, or a function of the run giving one)
UNDEFINED: dict[str, str | Callable[[Config, Metrics], str]] = {
    "matched_acc_gap": lambda cfg, m: (
        "did not learn: " + ", ".join(r for r, ok in m["learned"].items() if not ok)
    ),
    "full_ft_intruders": "undefined: full FT did not learn the task, so no intruders says nothing",
    "lora_minus_full_fewest": "undefined: a run did not learn",
    "lora_minus_full_min_epsilon": "undefined: a run did not learn",
    "rank_rho": "undefined: the same count at every rank",
    "sweep_rho": "undefined: intruders (or forgetting) constant over the learned runs",
    "beyond_size_rho": "undefined: fewer than 4 learned runs or constant inputs",
    "full_minus_lora_forgetting": "undefined: full FT or the headline LoRA run did not learn the task",
    "headline_minus_null": "undefined: the headline LoRA run did not learn the task",
    "headline_minus_null_over_epsilon": "undefined: the headline LoRA run did not learn the task",
    "matched_size_ratio": "undefined: the headline LoRA run's update is zero",
    "lora_minus_matched_full": "undefined: the headline LoRA run or size-matched full FT did not learn the task",
    "matched_full_minus_lora_forgetting": (
        "undefined: the headline LoRA run or size-matched full FT did not learn the task"
    ),
    **dict.fromkeys(
        (
            "forgetting_drop",
            "control_drop",
            "drop_over_control",
            "drop_over_matched",
            "intervention_acc_cost",
        ),
        _not_intervened,
    ),
}


class _WhyUndefined:
    """``why_undefined[measure]``: why ``measure`` has no value on this run ('' where it has one)."""

    def __init__(self, cfg: Config, m: Metrics) -> None:
        self.cfg, self.m = cfg, m

    def __getitem__(self, name: str) -> str:
        try:
            value = MEASURES.value(name, self.cfg, self.m)
        except NotEvaluated:
            return ""
        if value is not None and math.isfinite(value):
            return ""
        why = UNDEFINED[name]
        return why if isinstance(why, str) else why(self.cfg, self.m)


@MEASURES.label
def why_undefined(cfg: Config, m: Metrics) -> _WhyUndefined:
    return _WhyUndefined(cfg, m)
