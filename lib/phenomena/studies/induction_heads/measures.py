"""The named measures the induction-heads claims read (:class:`phenomena.claims.Measures`), from the stored metrics
(:mod:`.summary`): losses as fractions of ln V (chance) or of the bigram entropy (the no-copy level), transition
steps (t10 / t50 / t90: where a curve completes 10 / 50 / 90% of its change) relative to a t50. Timing or comparing a
change that did not happen is undefined (NaN, a failing seed); inputs the configuration does not produce raise
:class:`NotEvaluated`. No thresholds here; the gates below say when a change happened."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from phenomena.claims import Measures, NotEvaluated
from phenomena.studies.induction_heads.config import Config

MEASURES = Measures()
Metrics = dict[str, Any]
NAN = float("nan")

#: the smallest fall of the ICL score over training that counts as a jump to time (the rows timing it are undefined
#: without one): Olsson et al.'s ~0.4 nats after the phase change, the icl_score_drops row's threshold
ICL_JUMP = 0.4
#: the specificity ratios over zeroing the induction heads (the top previous-token head) are defined only when that
#: raises the loss by more than this (nats): the ablate_top_induction_head (ablate_previous_token_head) threshold
INDUCTION_EFFECT = 0.3
PREV_TOKEN_EFFECT = 0.5


@MEASURES
def init_loss_gap(cfg: Config, m: Metrics) -> float:
    """|repeated-copy loss at initialisation - ln V| (nats)."""
    return abs(m["init_probe_loss_rep"] - m["ln_vocab"])


@MEASURES
def rep_loss_over_ln_vocab(cfg: Config, m: Metrics) -> float:
    """Repeated-copy loss on the unseen-length probe after training, as a fraction of ln V."""
    return m["final"]["probe_loss_rep"] / m["ln_vocab"]


@MEASURES
def far_loss_over_ln_vocab(cfg: Config, m: Metrics) -> float:
    """Repeated-copy loss on the far probe (copy offset beyond every trained offset), as a fraction of ln V."""
    if m["far_offset"] <= m["trained_offsets"][1]:
        raise NotEvaluated(f"far probe offset {m['far_offset']} is inside the trained offsets")
    return m["final"]["far_loss_rep"] / m["ln_vocab"]


@MEASURES
def icl_fall(cfg: Config, m: Metrics) -> float:
    """How far the ICL score fell from initialisation to the end of training (nats)."""
    return m["icl_score_init"] - m["final"]["icl_score"]


@MEASURES
def icl_jump_gate(cfg: Config, m: Metrics) -> float:
    """ICL_JUMP, the smallest fall of the ICL score that counts as a jump (for notes)."""
    return ICL_JUMP


@MEASURES
def icl_jumped(cfg: Config, m: Metrics) -> float:
    """1 if the ICL score fell by at least ICL_JUMP nats over the whole run, else 0 (the jump's timing is read on the
    transition window, :func:`.experiment.windowed`)."""
    return float(icl_fall(cfg, m) >= ICL_JUMP)


def _t50(m: Metrics, curve: str) -> float:
    """t50 of a transition curve (JSON keys are strings, a level never reached is null); NaN unless positive."""
    t = m["transition"][curve]
    value = t.get(0.5, t.get("0.5"))
    return float(value) if value is not None and float(value) > 0 else NAN


@MEASURES
def abruptness_of_gain(cfg: Config, m: Metrics) -> float:
    """(t90 - t10) / t50 of the copy gain's rise (first-copy minus repeated-copy loss); NaN if the loss did not drop."""
    return m["abruptness"] if m["loss_drop_exists"] else NAN


@MEASURES
def abruptness_of_heads(cfg: Config, m: Metrics) -> float:
    """(t90 - t10) / t50 of the max induction score's rise; NaN if no induction head formed."""
    return m["abruptness_induction"] if m["heads_formed"] else NAN


@MEASURES
def t50_gap_heads_to_gain(cfg: Config, m: Metrics) -> float:
    """|t50(copy gain) - t50(induction score)| / t50(copy gain); NaN without both a loss drop and a head."""
    return m["t50_gap_induction"] if m["loss_drop_exists"] and m["heads_formed"] else NAN


@MEASURES
def t50_gap_icl_to_gain(cfg: Config, m: Metrics) -> float:
    """|t50(copy gain) - t50(ICL score)| / t50(copy gain); NaN without both a loss drop and a head."""
    return m["t50_gap_icl_score"] if m["loss_drop_exists"] and m["heads_formed"] else NAN


@MEASURES
def first_fall_over_icl_jump(cfg: Config, m: Metrics) -> float:
    """t50(fresh-token loss) / t50(ICL score); NaN without a first fall of the fresh-token loss or an ICL jump."""
    return m["t50_first_fall_over_icl"] if m["first_fall_exists"] and icl_jumped(cfg, m) else NAN


@MEASURES
def t50_gap_icl_to_heads(cfg: Config, m: Metrics) -> float:
    """|t50(ICL score) - t50(induction score)| / t50(induction score); NaN without an ICL jump and a head."""
    return m["t50_gap_icl_induction"] if icl_jumped(cfg, m) and m["heads_formed"] else NAN


@MEASURES
def eval_interval_over_t50_gain(cfg: Config, m: Metrics) -> float:
    """The evaluation interval in units of t50(copy gain): the resolution of the timings relative to it."""
    return cfg.eval_every / _t50(m, "loss")


@MEASURES
def eval_interval_over_t50_heads(cfg: Config, m: Metrics) -> float:
    """The evaluation interval in units of t50(induction score)."""
    return cfg.eval_every / _t50(m, "induction")


@MEASURES
def eval_interval_over_t50_icl(cfg: Config, m: Metrics) -> float:
    """The evaluation interval in units of t50(ICL score)."""
    return cfg.eval_every / _t50(m, "icl_score")


@MEASURES
def one_layer_loss_over_ln_vocab(cfg: Config, m: Metrics) -> float:
    """The 1-layer control's repeated-copy loss on the unseen-length probe, as a fraction of ln V."""
    return m["one_layer_final"]["probe_loss_rep"] / m["ln_vocab"]


@MEASURES
def shortcut_loss_over_ln_vocab(cfg: Config, m: Metrics) -> float:
    """The fixed-offset control's loss on its own training data, as a fraction of ln V."""
    return m["shortcut_final"]["data_loss"] / m["ln_vocab"]


def _ablations(m: Metrics, spare: bool) -> dict[str, dict[str, Any]]:
    """The ablation table by kind: the ablation model's (``spare``, when it is a separate model) or the main one's."""
    rows = m["spare_ablation"] if spare and (m.get("ablation_model") or {}).get("separate") else m["ablation"]
    return {row["kind"]: row for row in rows}


def _ablation_model_trained(cfg: Config) -> None:
    """NotEvaluated where the configuration trains no ablation model (spare_steps = 0: the quick tier)."""
    if not cfg.spare_steps:
        raise NotEvaluated("spare_steps = 0: no ablation model at this preset (preset='full' trains it)")


def _induction_effect(abl: dict[str, dict[str, Any]]) -> bool:
    return "all_induction" in abl and abl["all_induction"]["delta_loss"] > INDUCTION_EFFECT


@MEASURES
def ablation_head_dim(cfg: Config, m: Metrics) -> float:
    """Head width of the ablation model (for statements)."""
    return m["ablation_model"]["d_model"] // m["ablation_model"]["n_heads"]


@MEASURES
def ablated_loss_over_bigram(cfg: Config, m: Metrics) -> float:
    """Ablation model, its induction heads zeroed: repeated-copy loss / bigram entropy (NaN: none or all of layer 1)."""
    _ablation_model_trained(cfg)
    row = _ablations(m, spare=True).get("all_induction")
    if row is None or row["heads"] == row["layer_heads"]:
        return NAN
    return row["loss_rep"] / m["bigram_entropy"]


@MEASURES
def other_over_induction_rise_per_head(cfg: Config, m: Metrics) -> float:
    """Ablation model, layer 1: loss rise per zeroed head, every non-induction head zeroed together / every induction
    head zeroed together (NaN unless the induction heads' own rise exceeds 0.3 nats and one other head exists)."""
    _ablation_model_trained(cfg)
    abl = _ablations(m, spare=True)
    if not _induction_effect(abl) or "other_layer_heads" not in abl:
        return NAN
    other, ind = abl["other_layer_heads"], abl["all_induction"]
    return (other["delta_loss"] / other["heads"]) / (ind["delta_loss"] / ind["heads"])


@MEASURES
def top_induction_rise(cfg: Config, m: Metrics) -> float:
    """Repeated-copy loss rise (nats) with the top layer-1 induction head zeroed."""
    return _ablations(m, spare=False)["top_induction"]["delta_loss"]


@MEASURES
def top_prev_token_rise(cfg: Config, m: Metrics) -> float:
    """Repeated-copy loss rise (nats) with the top layer-0 previous-token head zeroed."""
    return _ablations(m, spare=False)["top_prev_token"]["delta_loss"]


@MEASURES
def runner_up_over_prev_token_rise(cfg: Config, m: Metrics) -> float:
    """Loss rise, the runner-up layer-0 head zeroed / the top previous-token head zeroed (its effect gated)."""
    abl = _ablations(m, spare=False)
    if "matched_prev_token" not in abl:
        raise NotEvaluated("layer 0 has a single head")
    top = abl["top_prev_token"]["delta_loss"]
    return abl["matched_prev_token"]["delta_loss"] / top if top > PREV_TOKEN_EFFECT else NAN


@MEASURES
def idle_over_induction_rise(cfg: Config, m: Metrics) -> float:
    """Loss rise, every head scoring < 0.2 on both scores zeroed / the induction heads zeroed (effect gated)."""
    abl = _ablations(m, spare=False)
    if "idle" not in abl or not _induction_effect(abl):
        return NAN
    return abl["idle"]["delta_loss"] / abl["all_induction"]["delta_loss"]


# ---------------------------------------------------------------------------------------------------------------
# the main model's draws (main_draws, issue 34): the main-model rows that one draw per config seed left unclear read
# the median (or, for the far-offset copy, the mean) over the draws. Draw 0 is the top level of the metrics, draw k
# (config seed + 1000 k) is metrics["draws"][k - 1], with the same keys; an undefined draw (NaN) counts as a draw on
# the failing side (+inf: every row below fails high, op "<"), so a seed is undefined only when most of its draws are
# (the median) or when any is (the mean).


def _over_draws(fn: Callable[[Config, Metrics], float], cfg: Config, m: Metrics) -> list[float]:
    """``fn`` of each of the main model's draws, an undefined draw as +inf."""
    values = [fn(cfg, m)]
    for k, draw in enumerate(m.get("draws", []), 1):
        values.append(fn(cfg.draw_config(k), {**m, **draw}))
    return [math.inf if v is None or math.isnan(v) else v for v in values]


def median_over_draws(fn: Callable[[Config, Metrics], float], cfg: Config, m: Metrics) -> float:
    """The median of ``fn`` over the main model's draws, an undefined draw counting as +inf (the failing side of a
    row that must be small); NaN where the median is infinite (most draws undefined)."""
    median = float(np.median(_over_draws(fn, cfg, m)))
    return median if math.isfinite(median) else NAN


def mean_over_draws(fn: Callable[[Config, Metrics], float], cfg: Config, m: Metrics) -> float:
    """The mean of ``fn`` over the main model's draws: the expected value of one trained model at this config seed,
    for a measure whose draws split into two modes (where a median flips with one draw); NaN if any draw is
    undefined (+inf, the failing side)."""
    mean = float(np.mean(_over_draws(fn, cfg, m)))
    return mean if math.isfinite(mean) else NAN


@MEASURES
def draws_of(cfg: Config, m: Metrics) -> float:
    """How many draws of the main model the median and mean rows read (for statements)."""
    return 1 + len(m.get("draws", []))


@MEASURES
def mean_far_loss_over_ln_vocab(cfg: Config, m: Metrics) -> float:
    """:func:`far_loss_over_ln_vocab`, the mean over the main model's draws."""
    return mean_over_draws(far_loss_over_ln_vocab, cfg, m)


@MEASURES
def median_final_icl_score(cfg: Config, m: Metrics) -> float:
    """The ICL score after training (nats), the median over the main model's draws."""
    return median_over_draws(lambda c, d: d["final"]["icl_score"], cfg, m)


@MEASURES
def median_t50_gap_icl_to_gain(cfg: Config, m: Metrics) -> float:
    """:func:`t50_gap_icl_to_gain`, the median over the main model's draws."""
    return median_over_draws(t50_gap_icl_to_gain, cfg, m)


@MEASURES
def median_first_fall_over_icl_jump(cfg: Config, m: Metrics) -> float:
    """:func:`first_fall_over_icl_jump`, the median over the main model's draws."""
    return median_over_draws(first_fall_over_icl_jump, cfg, m)


@MEASURES
def median_t50_gap_icl_to_heads(cfg: Config, m: Metrics) -> float:
    """:func:`t50_gap_icl_to_heads`, the median over the main model's draws."""
    return median_over_draws(t50_gap_icl_to_heads, cfg, m)


@MEASURES
def median_runner_up_over_prev_token_rise(cfg: Config, m: Metrics) -> float:
    """:func:`runner_up_over_prev_token_rise`, the median over the main model's draws."""
    return median_over_draws(runner_up_over_prev_token_rise, cfg, m)


@MEASURES
def reddy_jump_width(cfg: Config, m: Metrics) -> float:
    """(t_hi - t_lo) / t_hi of the novel-class in-context accuracy's jump to 0.9 (1 if it never gets there)."""
    if not m["reddy"]["jump"]:
        raise NotEvaluated("rd_steps = 0: no abrupt-jump run at this preset (preset='full' runs it)")
    return m["reddy"]["jump"][0]["jump"]["width_over_time"]


@MEASURES
def rd_eval_interval_over_t_hi(cfg: Config, m: Metrics) -> float:
    """The Reddy runs' evaluation interval in units of the jump run's time to 0.9 accuracy."""
    return cfg.rd_eval_every / m["reddy"]["jump"][0]["jump"]["t_hi"]


@MEASURES
def rd_accuracy_resolution(cfg: Config, m: Metrics) -> float:
    """The smallest change of a Reddy accuracy: one of rd_eval_size items, in a mean over the last 3 evaluations."""
    return 1.0 / (3 * cfg.rd_eval_size)


def _ends(m: Metrics, group: str, var: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The Reddy runs of ``group`` with the smallest and the largest ``var``."""
    runs = sorted(m["reddy"].get(group, []), key=lambda r: r[var])
    if len(runs) < 2:
        config = "rd_burstiness" if group == "burstiness" else f"rd_sweep_{group}"
        raise NotEvaluated(f"{config} needs at least two values")
    return runs[0], runs[-1]


def _gap(m: Metrics, group: str, var: str, acc: str) -> float:
    """``acc`` of the run of ``group`` with the largest ``var`` minus that of the run with the smallest."""
    lo, hi = _ends(m, group, var)
    return hi[acc] - lo[acc]


@MEASURES
def burstiness_lo(cfg: Config, m: Metrics) -> float:
    """The smallest burstiness B of the burstiness comparison (for statements)."""
    return _ends(m, "burstiness", "B")[0]["B"]


@MEASURES
def burstiness_hi(cfg: Config, m: Metrics) -> float:
    """The largest burstiness B of the burstiness comparison (for statements)."""
    return _ends(m, "burstiness", "B")[1]["B"]


@MEASURES
def burstiness_icl_gain(cfg: Config, m: Metrics) -> float:
    """In-context accuracy (novel classes) at the largest B minus at the smallest."""
    return _gap(m, "burstiness", "B", "icl_acc")


@MEASURES
def burstiness_iwl_loss(cfg: Config, m: Metrics) -> float:
    """In-weights accuracy (training classes) at the smallest B minus at the largest."""
    return -_gap(m, "burstiness", "B", "iwl_acc")


@MEASURES
def classes_lo(cfg: Config, m: Metrics) -> float:
    """The smallest number of classes K of the K sweep (for statements)."""
    return _ends(m, "classes", "K")[0]["K"]


@MEASURES
def classes_hi(cfg: Config, m: Metrics) -> float:
    """The largest number of classes K of the K sweep (for statements)."""
    return _ends(m, "classes", "K")[1]["K"]


@MEASURES
def classes_icl_gain(cfg: Config, m: Metrics) -> float:
    """In-context accuracy at the largest K minus at the smallest."""
    return _gap(m, "classes", "K", "icl_acc")


@MEASURES
def classes_iwl_loss(cfg: Config, m: Metrics) -> float:
    """In-weights accuracy at the smallest K minus at the largest."""
    return -_gap(m, "classes", "K", "iwl_acc")


@MEASURES
def eps_lo(cfg: Config, m: Metrics) -> float:
    """The smallest within-class noise eps of the eps sweep (for statements)."""
    return _ends(m, "eps", "eps")[0]["eps"]


@MEASURES
def eps_hi(cfg: Config, m: Metrics) -> float:
    """The largest within-class noise eps of the eps sweep (for statements)."""
    return _ends(m, "eps", "eps")[1]["eps"]


@MEASURES
def eps_icl_gain(cfg: Config, m: Metrics) -> float:
    """In-context accuracy at the largest eps minus at the smallest."""
    return _gap(m, "eps", "eps", "icl_acc")


@MEASURES
def eps_iwl_loss(cfg: Config, m: Metrics) -> float:
    """In-weights accuracy at the smallest eps minus at the largest."""
    return -_gap(m, "eps", "eps", "iwl_acc")
