"""The papers' claims as checkable numbers: ``summarize(cfg, results) -> metrics``, ``claims(cfg, metrics)`` and
``departures(cfg, metrics)``; the thresholds they use, with their evidence, are in :mod:`.thresholds`."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from phenomena.claims import Claim, Expect, Threshold, declare_after_sweep, expectation
from phenomena.studies.induction_heads.config import Config
from phenomena.studies.induction_heads.copy_task import bigram_entropy, bigram_table
from phenomena.studies.induction_heads.experiment import Results
from phenomena.studies.induction_heads.thresholds import THRESHOLDS

#: the smallest fall of the ICL score that counts as a jump to time (the two-stage rows are undefined without one):
#: half of Olsson's ~0.4 nats. Set in issue 21 after seeing seed 1's fall of 0.32 nats (seed 0: 0.51); it was first
#: the icl_score threshold itself (0.4), which seed 1 missed because induction also worsens the fresh tokens late
#: in the context (chance matches), diluting the late-minus-early score
ICL_JUMP = 0.2


def summarize(cfg: Config, results: Results) -> dict[str, Any]:
    """JSON-ready metrics of one run of the study (both copy models, the ablation table, the Reddy runs and the
    fixed-offset control)."""
    ev2, ev1, evs = results.two.evals(), results.one.evals(), results.shortcut.evals()
    t_loss, t_ind, t_prev = (results.transitions[k] for k in ("loss", "induction", "prev_token"))
    last, first = ev2.iloc[-1], ev2.iloc[0]
    ind_cols = [c for c in ev2 if c.startswith("probe_induction_L")]
    final_keys = (
        "probe_loss_rep",
        "probe_loss_first",
        "probe_induction_max",
        "probe_prev_token_max",
        "seen_loss_rep",
        "seen_induction_max",
        "seen_prev_token_max",
        "far_loss_rep",
        "far_induction_max",
        "data_loss",
        "data_loss_fresh",
        "data_loss_copied",
        "icl_score",
    )
    table = bigram_table(cfg)
    h_bigram = bigram_entropy(table) if table is not None else math.log(cfg.vocab_size)
    t_fresh, t_icl = results.transitions["fresh_loss"], results.transitions["icl_score"]
    out: dict[str, Any] = {
        "ln_vocab": math.log(cfg.vocab_size),
        "bigram_entropy": h_bigram,
        "init_probe_loss_rep": float(first["probe_loss_rep"]),
        "init_induction_max_any_head": float(first[ind_cols].max()),
        "final": {k: float(last[k]) for k in final_keys},
        "one_layer_final": {
            k: float(ev1.iloc[-1][k])
            for k in ("probe_loss_rep", "probe_induction_max", "seen_loss_rep", "icl_score")
        },
        "shortcut_final": {
            k: float(evs.iloc[-1][k])
            for k in ("data_loss", "probe_loss_rep", "probe_induction_max", "seen_loss_rep")
        },
        "transition": results.transitions,
        # a transition "exists" when the curve covers a real distance: the repeated-copy loss falls by at least
        # half of ln V, and a head crosses the induction-head threshold; timing claims need both
        "loss_drop_exists": bool(
            first["probe_loss_rep"] - last["probe_loss_rep"] >= 0.5 * math.log(cfg.vocab_size)
        ),
        "heads_formed": bool(last["probe_induction_max"] > cfg.ind_threshold),
        "abruptness": (t_loss[0.9] - t_loss[0.1]) / t_loss[0.5],
        "abruptness_induction": (t_ind[0.9] - t_ind[0.1]) / t_ind[0.5],
        "t50_gap_induction": abs(t_loss[0.5] - t_ind[0.5]) / t_loss[0.5],
        "t50_gap_prev_token": abs(t_loss[0.5] - t_prev[0.5]) / t_loss[0.5],
        "t50_gap_icl_score": abs(t_loss[0.5] - t_icl[0.5]) / t_loss[0.5],
        # the loss's first stage: the fresh (non-copied) tokens' loss falls by at least half of ln V - H(bigram),
        # which the direct path can do without any head; the ICL score's jump must be timed apart from it
        "first_fall_exists": bool(
            h_bigram < math.log(cfg.vocab_size)
            and first["data_loss_fresh"] - ev2["data_loss_fresh"].min()
            >= 0.5 * (math.log(cfg.vocab_size) - h_bigram)
        ),
        # an ICL-score jump to time: it falls by at least ICL_JUMP nats over training (see ICL_JUMP)
        "icl_jump_exists": bool(first["icl_score"] - last["icl_score"] >= ICL_JUMP),
        "t50_first_fall_over_icl": t_fresh[0.5] / t_icl[0.5],
        "t50_gap_icl_induction": abs(t_icl[0.5] - t_ind[0.5]) / t_ind[0.5],
        "trained_offsets": [cfg.segment_min, cfg.segment_max + cfg.gap_max],
        "far_offset": cfg.far_len + cfg.far_gap,
        "icl_score_init": float(first["icl_score"]),
        "ablation": results.ablation.to_dict(orient="records"),
        "spare_ablation": results.spare_ablation.to_dict(orient="records"),
        "ablation_model": _ablation_model(results),
        "curves": {
            "step": ev2["step"].tolist(),
            **{
                k: ev2[k].round(4).tolist()
                for k in (
                    "probe_loss_rep",
                    "probe_induction_max",
                    "probe_prev_token_max",
                    "icl_score",
                    "data_loss",
                    "data_loss_fresh",
                    "data_loss_copied",
                )
            },
            "one_layer_probe_loss_rep": ev1["probe_loss_rep"].round(4).tolist(),
        },
    }
    chance = cfg.rd_eval_burstiness / cfg.rd_pairs
    rd: dict[str, Any] = {"chance_in_context": chance}
    for group, runs in results.reddy.items():
        rows = []
        for s, hist in runs:
            tail = hist.eval_frame().iloc[-3:]
            rows.append(
                {
                    "setting": s.tag,
                    "B": s.B,
                    "K": s.K,
                    "eps": s.eps,
                    "icl_acc": float(tail["icl_acc"].mean()),
                    "iwl_acc": float(tail["iwl_acc"].mean()) if s.K else None,
                    **({"jump": results.jump} if group == "jump" else {}),
                }
            )
        rd[group] = rows
    out["reddy"] = rd
    return out


#: quick expectations set after the 5-seed sweep of issue 21's final design (positions in layer 0 only from a
#: sinusoidal start, 4000 steps, the 6-head ablation model), with that sweep's numbers: seed 0 / 1 / 2 / 3 / 4
_AFTER_SWEEP: dict[str, tuple[Expect, str]] = {
    "copies_unseen_segment_length": (
        "unclear",
        "0.323 / 0.334 / 0.332 / 0.238 / 0.311, mean 0.308 [0.258, 0.357]: every seed below 0.35 but the interval "
        "crosses it (0.19-0.25 with positions in both layers): without positions a layer-1 head cannot tell apart the "
        "earlier occurrences of a token that repeats inside the 32-token segment",
    ),
    "copies_unseen_offset": (
        "unclear",
        "0.271 / 0.272 / 0.397 / 0.644 / 0.262 (3 of 5 below 0.35; 0.83-0.92 at every seed with positions in both "
        "layers): induction at an unseen distance now works at most seeds, not all",
    ),
    "icl_score_drops_at_phase_change": (
        "unclear",
        "0.154 / 0.009 / 0.266 / 0.061 / 0.166 (4 of 5 below 0.25)",
    ),
    "induction_ablation_is_specific": (
        "unclear",
        "evaluated at seed 0 only (-0.03: zeroing 3 non-induction layer-1 heads of the 6-head model changes nothing, "
        "zeroing its 3 induction heads removes the copying); at seeds 2-4 the 6-head model made 6, 4 and 4 of its 6 "
        "layer-1 heads induction heads (too few left to match), at seed 1 it formed none in 5,000 steps",
    ),
    "previous_token_ablation_is_specific": (
        "unclear",
        "0.252 / 0.296 / 0.318 / 0.210 / 0.211 (2 of 5 below 0.25; 0.05 with positions in both layers): the runner-up "
        "layer-0 head is a current-token head (see other_heads_matter_little)",
    ),
    "other_heads_matter_little": (
        "fails",
        "0.894 / 0.907 / 0.903 / 0.646 / 0.759 (0.04 with positions in both layers). The 'idle' heads (< 0.2 on both "
        "scores) are not idle: at seed 0 the three layer-0 heads other than the previous-token head put 0.95-0.96 of "
        "their attention on the current token, and zeroing them costs nearly as much as zeroing layer 1; replacing "
        "their outputs by their mean over the training distribution costs the same (a diagnostic outside the study), "
        "so what they carry is token-specific: most likely the current token, re-encoded for layer 1's queries "
        "(Q-composition), which the two scores do not see",
    ),
}


def _ablation_model(results: Results) -> dict[str, Any]:
    """What the ablations were run on: its size, whether it is a separate model, and its final scores."""
    spare, heads = results.spare, results.spare_heads
    last = spare.evals().iloc[-1]
    layer1 = heads[heads.layer == spare.n_layers - 1]
    return {
        "separate": spare is not results.two,
        "n_heads": spare.cfg.n_heads,
        "d_model": spare.cfg.d_model,
        "steps": spare.cfg.steps,
        "probe_loss_rep": float(last["probe_loss_rep"]),
        "far_loss_rep": float(last["far_loss_rep"]),
        "layer1_induction": [round(float(v), 4) for v in layer1.induction],
        "layer0_prev_token": [round(float(v), 4) for v in heads[heads.layer == 0].prev_token],
    }


def claims(cfg: Config, m: dict[str, Any]) -> list[Claim]:
    """The papers' claims as checkable numbers (thresholds in ``THRESHOLDS`` for the run's preset)."""
    th = THRESHOLDS[cfg.preset]
    lnv, f, one, short = m["ln_vocab"], m["final"], m["one_layer_final"], m["shortcut_final"]
    P, S = cfg.probe_len, cfg.seen_len
    lo_off, hi_off = m["trained_offsets"]
    abl = {row["kind"]: row for row in m["ablation"]}
    both = m["loss_drop_exists"] and m["heads_formed"]
    missing = "no transition to time: " + ", ".join(
        w
        for w, ok in (
            ("the loss did not drop", m["loss_drop_exists"]),
            ("no induction head", m["heads_formed"]),
        )
        if not ok
    )
    rows = [
        Claim.below(
            id="init_loss_is_chance",
            kind="sanity",
            paper="~ln V before training",
            statement=f"|repeated-copy loss at init - ln V|, [x({P}), x({P})] probe",
            ours=abs(m["init_probe_loss_rep"] - lnv),
            bound=th["init_loss"],
        ),
        Claim.below(
            id="init_no_induction_head",
            kind="sanity",
            paper="no induction heads at init",
            statement="max induction score of any head at init (uniform attention scores ~0.02)",
            ours=m["init_induction_max_any_head"],
            bound=th["init_ind"],
        ),
        Claim.above(
            id="induction_head_forms",
            statement=f"max layer-1 induction score, unseen segment length P = {P}",
            paper="> 0.4 (ARENA / TransformerLens detector)",
            ours=f["probe_induction_max"],
            bound=th["ind"],
        ),
        Claim.above(
            id="previous_token_head_forms",
            statement=f"max layer-0 previous-token score, P = {P}",
            paper="present: K-composition needs it",
            ours=f["probe_prev_token_max"],
            bound=th["prev"],
        ),
        Claim.above(
            id="seen_length_induction",
            statement=f"max layer-1 induction score, seen length P = {S}",
            paper="> 0.4",
            ours=f["seen_induction_max"],
            bound=th["ind"],
        ),
        Claim.below(
            id="copies_unseen_segment_length",
            statement=f"repeated-copy loss / ln V, segment P = {P} > segment_max = {cfg.segment_max} "
            f"(its copy offset {P} is inside the trained offsets {lo_off}-{hi_off})",
            paper="copying works for any segment (no memorised length)",
            ours=f["probe_loss_rep"] / lnv,
            bound=th["rep_loss_frac"],
        ),
    ]
    if m["far_offset"] > hi_off:
        rows.append(
            Claim.below(
                id="copies_unseen_offset",
                statement=f"repeated-copy loss / ln V at copy offset {m['far_offset']} > every trained offset "
                f"({lo_off}-{hi_off}); [x({cfg.far_len}), filler({cfg.far_gap}), x({cfg.far_len})]",
                paper="induction works at any distance (no positional shortcut)",
                ours=f["far_loss_rep"] / lnv,
                bound=Threshold(
                    th["rep_loss_frac"].value, "the unseen-length threshold, reused for this new probe"
                ),
                note=_FAR_WHY + f" (induction score {f['far_induction_max']:.2f})",
            )
        )
    else:
        rows.append(
            Claim.not_evaluated(
                id="copies_unseen_offset",
                statement="repeated-copy loss at an unseen offset",
                paper="induction works at any distance",
                reason=f"far probe offset {m['far_offset']} is inside the trained offsets",
            )
        )
    rows += [
        Claim.below(
            id="abrupt_loss_drop",
            statement="(t90 - t10) / t50 of the copy gain's rise (first-copy minus repeated-copy loss)",
            paper="a short window early in training (Olsson Fig. 1)",
            ours=m["abruptness"] if m["loss_drop_exists"] else float("nan"),
            bound=_redefined(_redefined(th["abrupt"], _ONLY_IF_IT_HAPPENED), _GAIN),
            note="" if m["loss_drop_exists"] else "undefined: the loss did not drop (no window to time)",
        ),
        Claim.below(
            id="abrupt_head_formation",
            statement="(t90 - t10) / t50 of the induction-score rise",
            paper="heads form in a phase change",
            ours=m["abruptness_induction"] if m["heads_formed"] else float("nan"),
            bound=_redefined(th["abrupt_ind"], _ONLY_IF_IT_HAPPENED),
            note="" if m["heads_formed"] else "undefined: no induction head formed (no rise to time)",
        ),
        Claim.below(
            id="heads_form_with_loss_drop",
            statement="|t50(copy gain) - t50(induction score)| / t50(copy gain)",
            paper="co-occur (Olsson argument 1)",
            bound=_redefined(th["cooccur"], _GAIN_T50),
            ours=m["t50_gap_induction"] if both else float("nan"),
            note="" if both else missing,
        ),
        Claim.below(
            id="icl_score_drops",
            statement="ICL score (late - early token loss) after training, nats",
            paper="~-0.4 nats after the phase change (Olsson Fig. 2)",
            ours=f["icl_score"],
            bound=th["icl_score"],
            expect=expectation(cfg.preset, _ICL_SCORE_UNCLEAR, quick="unclear"),
            note=_ICL_SCORE_UNCLEAR,
        ),
        Claim.below(
            id="icl_score_drops_at_phase_change",
            statement="|t50(copy gain) - t50(ICL score)| / t50(copy gain): the ICL score falls with the copy loss",
            paper="drops at the phase change (Olsson Fig. 2)",
            bound=_redefined(th["cooccur"], _GAIN_T50),
            ours=m["t50_gap_icl_score"] if both else float("nan"),
            note="" if both else missing,
        ),
        Claim.below(
            id="loss_falls_before_icl_jump",
            statement="t50(fresh-token loss) / t50(ICL score): the loss first falls (bigram statistics, no copying) "
            "well before the in-context score changes",
            paper="the loss bends before the phase change, a bump (Olsson Fig. 1, 2)",
            bound=th["two_stage"],
            ours=m["t50_first_fall_over_icl"]
            if m["first_fall_exists"] and m["icl_jump_exists"]
            else float("nan"),
            note="" if m["first_fall_exists"] and m["icl_jump_exists"] else _no_two_stages(m),
        ),
        Claim.below(
            id="icl_score_jumps_with_heads",
            statement="|t50(ICL score) - t50(induction score)| / t50(induction score)",
            paper="the ICL score jumps when the induction heads form (Olsson argument 1)",
            bound=th["cooccur"],
            ours=m["t50_gap_icl_induction"] if m["icl_jump_exists"] and m["heads_formed"] else float("nan"),
            note="" if m["icl_jump_exists"] and m["heads_formed"] else _no_two_stages(m),
        ),
        Claim.above(
            id="one_layer_no_copying",
            kind="control",
            statement="1-layer control: repeated-copy loss / ln V",
            paper="no phase change (1-layer attention-only)",
            ours=one["probe_loss_rep"] / lnv,
            bound=th["one_layer_loss"],
        ),
        Claim.below(
            id="one_layer_no_induction_head",
            kind="control",
            statement="1-layer control: max induction score",
            paper="1-layer attention-only cannot form one",
            ours=one["probe_induction_max"],
            bound=th["one_layer_ind"],
        ),
        Claim.below(
            id="fixed_offset_loss_falls",
            kind="control",
            statement="fixed-offset control: loss on its own training data / ln V",
            paper="a falling loss alone is not evidence of induction heads",
            ours=short["data_loss"] / lnv,
            bound=th["shortcut_loss"],
        ),
        Claim.below(
            id="fixed_offset_no_induction_head",
            kind="control",
            statement="fixed-offset control: max induction score, unseen length",
            paper="positional shortcut, no induction head",
            ours=short["probe_induction_max"],
            bound=th["shortcut_ind"],
        ),
    ]
    rows += _ablation_claims(cfg, m, abl, th, lnv)
    rd = m["reddy"]
    rows.append(
        Claim.below(
            id="reddy_icl_jump_abrupt",
            paper="abrupt jump after a slow phase (Reddy Fig. 1)",
            statement="Reddy task: ICL accuracy jump width / time to reach 0.9 (novel classes)",
            ours=rd["jump"][0]["jump"]["width_over_time"],
            bound=th["rd_width"],
        )
    )
    bursts = sorted(rd["burstiness"], key=lambda r: r["B"])
    if len(bursts) >= 2:
        lo_b, hi_b = bursts[0], bursts[-1]
        rows += [
            Claim.above(
                id="reddy_burstiness_favours_icl",
                statement=f"ICL accuracy, B = {hi_b['B']} minus B = {lo_b['B']}",
                paper="ICL favoured by burstiness B (Reddy Fig. 2)",
                ours=hi_b["icl_acc"] - lo_b["icl_acc"],
                bound=th["rd_gap"],
            ),
            Claim.above(
                id="reddy_low_burstiness_favours_iwl",
                statement=f"IWL accuracy, B = {lo_b['B']} minus B = {hi_b['B']}",
                paper="IWL wins when contexts are not bursty",
                ours=lo_b["iwl_acc"] - hi_b["iwl_acc"],
                bound=th["rd_gap"],
            ),
        ]
    else:
        for cid in ("reddy_burstiness_favours_icl", "reddy_low_burstiness_favours_iwl"):
            rows.append(
                Claim.not_evaluated(
                    id=cid,
                    statement="burstiness comparison",
                    paper="Reddy Fig. 2",
                    reason="rd_burstiness needs at least two values",
                )
            )
    rows += _reddy_trend_claims(rd, th, cfg)
    return declare_after_sweep(cfg.preset, rows, _AFTER_SWEEP)


def _no_two_stages(m: dict[str, Any]) -> str:
    why = [
        w
        for w, ok in (
            ("the fresh-token loss did not fall by half of ln V - H(bigram)", m["first_fall_exists"]),
            (f"the ICL score did not fall by {ICL_JUMP:g} nats", m["icl_jump_exists"]),
            ("no induction head", m["heads_formed"]),
        )
        if not ok
    ]
    return "undefined: " + ", ".join(why)


def _reddy_trend_claims(rd: dict[str, Any], th: dict[str, Threshold], cfg: Config) -> list[Claim]:
    """Reddy Fig. 2: ICL rises and IWL falls with the number of classes K and with the within-class noise eps
    (the smallest vs the largest value of each sweep)."""
    rows = []
    for group, var, name in (("classes", "K", "classes K"), ("eps", "eps", "within-class noise eps")):
        runs = sorted(rd.get(group, []), key=lambda r: r[var])
        if len(runs) < 2:
            for cid in (f"reddy_{group}_favours_icl", f"reddy_{group}_disfavours_iwl"):
                rows.append(
                    Claim.not_evaluated(
                        id=cid,
                        statement=f"{name} sweep",
                        paper="Reddy Fig. 2",
                        reason=f"rd_sweep_{group} needs at least two values",
                    )
                )
            continue
        lo, hi = runs[0], runs[-1]
        rows += [
            Claim.above(
                id=f"reddy_{group}_favours_icl",
                statement=f"ICL accuracy, {var} = {hi[var]:g} minus {var} = {lo[var]:g} (B = {lo['B']})",
                paper=f"ICL rises with {name} (Reddy Fig. 2)",
                ours=hi["icl_acc"] - lo["icl_acc"],
                bound=th["rd_trend"],
                **(
                    {
                        "expect": expectation(cfg.preset, _EPS_ICL_UNCLEAR, quick="unclear"),
                        "note": _EPS_ICL_UNCLEAR,
                    }
                    if group == "eps"
                    else {}
                ),
            ),
            Claim.above(
                id=f"reddy_{group}_disfavours_iwl",
                statement=f"IWL accuracy, {var} = {lo[var]:g} minus {var} = {hi[var]:g} (B = {lo['B']})",
                paper=f"IWL falls with {name} (Reddy Fig. 2)",
                ours=lo["iwl_acc"] - hi["iwl_acc"],
                bound=th["rd_trend"],
            ),
        ]
    return rows


_ICL_SCORE_UNCLEAR = (
    "quick, set after issue 21's 5-seed sweep: -0.49 [-0.63, -0.35], 4 of 5 seeds under -0.4 (seed 1: -0.32). With the "
    "bigram data the induction heads also copy after chance repeats of fresh tokens late in the context, which "
    "dilutes the late-minus-early score"
)
_EPS_ICL_UNCLEAR = (
    "quick, set after issue 21's 5-seed sweep: 0.503 [0.44, 0.57], 3 of 5 seeds above 0.5: at K = 256 and B = 2, "
    "within-class noise 0 -> 1 raises novel-class ICL by about half of the range, the bound's edge"
)
_FAR_WHY = (
    "issue 21: positions enter layer 0's queries and keys only (pos_layers = 1), from a sinusoidal start (pos_init), "
    "so a layer-1 head can find a copy only by matching tokens; before, with positions in both layers, layer 1 learned "
    "a look-back window of the trained offsets and this row failed at 5 of 5 seeds (0.83-0.92 of ln V). The design "
    "was calibrated at seeds 0 and 1 (docs/calibration/induction_heads.md); the threshold is unchanged"
)
_ONLY_IF_IT_HAPPENED = (
    "redefined in issue 17 (was: the window of whatever the curve did, so an untrained run's flat, noisy curve "
    "could pass): defined only when the change happened (the loss fell by >= ln V / 2, resp. a head crossed the "
    "induction threshold); otherwise undefined, which fails"
)
_GAIN = (
    "redefined in issue 21 (was: the repeated-copy loss itself): with the bigram table the repeated copy's loss also "
    "falls in the bigram stage, setting t10 early (seed-0 prototype: (t90 - t10) / t50 = 1.02 on the old curve, so "
    "this redefinition was made after seeing the old one fail on the new data); the phase change is timed on the "
    "copy gain, which the bigram stage leaves near 0"
)
_GAIN_T50 = (
    "issue 21: t50 of the copy gain (first-copy minus repeated-copy loss), not of the repeated-copy loss, whose "
    "bigram stage is not the phase change (on the old curve the seed-0 prototype gave 0.03 and 0.09)"
)
_NO_COPY_REF = (
    "redefined in issue 21 (was: / ln V): with the bigram table, what is left without copying is the bigram entropy "
    "(ln V for uniform tokens, the old definition); found when the oracle, zeroed, returned to its bigram level, "
    "0.90 of ln V (a first try, / the first-copy loss, gave the oracle 0.75: induction heads also mispredict chance "
    "repeats in the first copy); the row is not evaluated at quick, where every layer-1 head is an induction head"
)
_NO_HEAD_FAILS = (
    "redefined in issue 17 (was: not evaluated when no induction head formed): no head to zero is a failure of the "
    "claim, not a missing input; undefined, which fails"
)
_SPECIFIC_NEEDS_EFFECT = (
    "redefined in issue 17 (was: the ratio over max(rise, 1e-6), so an untrained run's ratio of two ~0 rises could "
    "pass): defined only when zeroing {den} itself raises the loss by more than the {bound!r} threshold; "
    "otherwise undefined, which fails"
)


def _redefined(t: Threshold, why: str) -> Threshold:
    """``t`` with the issue-17 redefinition of its row declared in its evidence."""
    return Threshold(t.value, f"{t.evidence}; {why}")


def _ablation_claims(
    cfg: Config, m: dict[str, Any], abl: dict[str, dict[str, Any]], th: dict[str, Threshold], lnv: float
) -> list[Claim]:
    """Olsson's argument 2, made specific: zeroing the induction heads removes the copying, zeroing as many
    non-induction heads of the same layer does not; and each half of the circuit matters. The two rows that need
    layer-1 heads to spare (``SPARE_ROWS``) are read off the ablation model (``spare_heads``) when there is one, with
    its size and layer-1 scores in the statement; the rest off the main model."""
    rows = _ablation_rows(cfg, m, abl, th)
    am = m.get("ablation_model") or {}
    if not am.get("separate"):
        return rows
    where = (
        f"[ablation model: {am['n_heads']} heads of {am['d_model'] // am['n_heads']} per layer, "
        f"{am['steps']:,} steps; layer-1 induction scores "
        + ", ".join(f"{v:.2f}" for v in am["layer1_induction"])
        + "] "
    )
    spare = {
        r.id: dataclasses.replace(r, statement=where + r.statement)
        for r in _ablation_rows(cfg, m, {row["kind"]: row for row in m["spare_ablation"]}, th)
        if r.id in SPARE_ROWS
    }
    return [spare.get(r.id, r) for r in rows]


#: the ablation rows that need layer-1 heads that are not induction heads
SPARE_ROWS = ("ablate_all_induction_heads", "induction_ablation_is_specific")


def _ablation_rows(
    cfg: Config, m: dict[str, Any], abl: dict[str, dict[str, Any]], th: dict[str, Threshold]
) -> list[Claim]:
    rows = []
    whole_layer = (
        "all_induction" in abl and abl["all_induction"]["heads"] == abl["all_induction"]["layer_heads"]
    )
    if "all_induction" not in abl:
        rows.append(
            Claim.above(
                id="ablate_all_induction_heads",
                statement="repeated-copy loss / bigram entropy (the no-copy level), the induction heads zeroed",
                paper="removes most in-context learning (Olsson argument 2)",
                ours=float("nan"),
                bound=_redefined(_redefined(th["ablate_all"], _NO_HEAD_FAILS), _NO_COPY_REF),
                note="undefined: no induction head formed, so none to zero",
            )
        )
    elif whole_layer:
        rows.append(
            Claim.not_evaluated(
                id="ablate_all_induction_heads",
                statement="induction heads zeroed",
                paper="removes most in-context learning",
                reason="every last-layer head is an induction head: zeroing them all "
                "deletes the layer, which says nothing specific",
            )
        )
    else:
        rows.append(
            Claim.above(
                id="ablate_all_induction_heads",
                statement=f"repeated-copy loss / bigram entropy (the no-copy level), {abl['all_induction']['ablation']} "
                "zeroed",
                paper="removes most in-context learning (Olsson argument 2)",
                ours=abl["all_induction"]["loss_rep"] / m["bigram_entropy"],
                bound=_redefined(th["ablate_all"], _NO_COPY_REF),
            )
        )
    ind_effect = "all_induction" in abl and abl["all_induction"]["delta_loss"] > th["ablate_top"].value
    no_ind_effect = (
        "undefined: no induction head formed"
        if "all_induction" not in abl
        else f"undefined: zeroing the induction heads raises the loss by only "
        f"{abl['all_induction']['delta_loss']:.3g} nats (<= {th['ablate_top'].value:g}): nothing to be specific about"
    )
    specific_ind = _redefined(
        th["specific"], _SPECIFIC_NEEDS_EFFECT.format(den="the induction heads", bound="ablate_top")
    )
    if "matched_non_induction" in abl or "all_induction" not in abl:
        rows.append(
            Claim.below(
                id="induction_ablation_is_specific",
                statement="loss rise: as many non-induction heads of the same layer zeroed / the induction heads zeroed",
                paper="the effect is specific to induction heads (Olsson argument 2)",
                ours=abl["matched_non_induction"]["delta_loss"] / abl["all_induction"]["delta_loss"]
                if ind_effect and "matched_non_induction" in abl
                else float("nan"),
                bound=specific_ind,
                note="" if ind_effect else no_ind_effect,
            )
        )
    else:
        rows.append(
            Claim.not_evaluated(
                id="induction_ablation_is_specific",
                statement="matched non-induction heads",
                paper="the effect is specific to induction heads",
                reason="the last layer has fewer non-induction heads than induction heads",
            )
        )
    rows += [
        Claim.above(
            id="ablate_top_induction_head",
            statement="repeated-copy loss rise, top induction head zeroed (nats)",
            paper="each induction head contributes",
            ours=abl["top_induction"]["delta_loss"],
            bound=th["ablate_top"],
        ),
        Claim.above(
            id="ablate_previous_token_head",
            statement="repeated-copy loss rise, top previous-token head zeroed",
            paper="the circuit needs its layer-0 half",
            ours=abl["top_prev_token"]["delta_loss"],
            bound=th["ablate"],
        ),
    ]
    if "matched_prev_token" in abl:
        top_prev = abl["top_prev_token"]["delta_loss"]
        prev_effect = top_prev > th["ablate"].value
        rows.append(
            Claim.below(
                id="previous_token_ablation_is_specific",
                statement="loss rise: the runner-up layer-0 head zeroed / the top previous-token head zeroed (one "
                "head each, same layer)",
                paper="the effect is specific to the circuit's heads (Olsson argument 2)",
                bound=_redefined(
                    th["specific"],
                    _SPECIFIC_NEEDS_EFFECT.format(den="the top previous-token head", bound="ablate"),
                ),
                ours=abl["matched_prev_token"]["delta_loss"] / top_prev if prev_effect else float("nan"),
                note=""
                if prev_effect
                else f"undefined: zeroing the top previous-token head raises the loss by only {top_prev:.3g} nats "
                f"(<= {th['ablate'].value:g}): nothing to be specific about",
            )
        )
    else:
        rows.append(
            Claim.not_evaluated(
                id="previous_token_ablation_is_specific",
                statement="runner-up layer-0 head zeroed",
                paper="the effect is specific to the circuit's heads",
                reason="layer 0 has a single head",
            )
        )
    if "idle" in abl:
        rows.append(
            Claim.below(
                id="other_heads_matter_little",
                statement="loss rise: heads scoring < 0.2 on both zeroed / induction heads zeroed",
                paper="the rest of the model matters little",
                bound=specific_ind,
                ours=abl["idle"]["delta_loss"] / abl["all_induction"]["delta_loss"]
                if ind_effect
                else float("nan"),
                note="" if ind_effect else no_ind_effect,
            )
        )
    else:
        rows.append(
            Claim.not_evaluated(
                id="other_heads_matter_little",
                statement="idle heads zeroed",
                paper="the rest of the model matters little",
                reason="no idle head (every head scores >= 0.2)",
            )
        )
    return rows


def departures(cfg: Config, m: dict[str, Any]) -> list[str]:
    """Declared departures from the papers' setups, with our numbers."""
    bursts = ", ".join(str(b) for b in cfg.rd_burstiness)
    table = bigram_table(cfg)
    fresh = (
        f"the fresh tokens follow a fixed random bigram table (rows ~ Dirichlet({cfg.bigram_conc:g}), entropy "
        f"{bigram_entropy(table):.2f} nats vs ln V = {math.log(cfg.vocab_size):.2f}), so the loss can first fall without any "
        "head and the probes are drawn from the same chain"
        if table is not None
        else "the fresh tokens are uniform"
    )
    pos = (
        f"positions added to the queries and keys of the first {cfg.pos_layers} layer(s) only (layer 1 matches "
        "tokens, so a look-back window cannot be learned there: the far-offset copy tests what remains)"
        if cfg.pos_layers < 2
        else "positions added to queries and keys only"
    )
    if cfg.pos_init:
        pos += f", learned from a sinusoidal start (x {cfg.pos_init:g}; Olsson et al.'s small models start random)"
    sweeps = []
    if cfg.rd_sweep_classes:
        sweeps.append(f"K in {{{', '.join(str(k) for k in cfg.rd_sweep_classes)}}} at eps = {cfg.rd_eps:g}")
    if cfg.rd_sweep_eps:
        sweeps.append(
            f"eps in {{{', '.join(f'{e:g}' for e in cfg.rd_sweep_eps)}}} at K = {cfg.rd_eps_classes or cfg.rd_classes}"
        )
    sweep = (
        f"; the K and eps sweeps ({'; '.join(sweeps)}; B = {cfg.rd_sweep_bursty}) use only the two ends of each "
        f"range, {cfg.rd_sweep_steps:,} steps each"
        if sweeps
        else ""
    )
    return [
        f"Data: a synthetic copy task (V = {cfg.vocab_size}, contexts of {cfg.seq_len} tokens, a random segment of "
        f"{cfg.segment_min}-{cfg.segment_max} tokens copied after 0-{cfg.gap_max} filler tokens, fresh sequences "
        f"every step); {fresh}. Olsson et al. train on natural-language text, where copying is one of many things "
        "learned.",
        f"Model: 2-layer attention-only, {cfg.d_model} wide, {cfg.n_heads} heads per layer, no LayerNorm, {pos}, init std {cfg.init_std:g}, "
        f"{cfg.steps:,} steps of {cfg.batch_size} sequences (Olsson et al.'s small attention-only models see "
        "billions of tokens).",
        "Phase-change timing: the probe's copy gain (first-copy minus repeated-copy loss) and the fresh tokens' loss "
        "(the bigram stage) are timed apart; Olsson et al. read one loss curve of natural text.",
        f"ICL score: mean loss over the last eighth of the context minus the first eighth ({cfg.seq_len}-token "
        "contexts; the first eighth never holds a copy, and its tokens are predictable from the bigram table alone); "
        "Olsson et al. take the loss at token 500 minus the loss at token 50.",
        f"Reddy's task at his D = {cfg.rd_dim}, L = {cfg.rd_labels}, N = {cfg.rd_pairs}, eps = {cfg.rd_eps:g}, with "
        f"short runs: {cfg.rd_steps:,} steps for the abrupt-jump run (fresh classes every sequence), "
        f"{cfg.rd_sweep_steps:,} per burstiness run (K = {cfg.rd_classes}, B in {{{bursts}}}){sweep}.",
    ]


def comparison(cfg: Config, m: dict[str, Any]) -> str:
    """ "How ours compares with the papers", as Markdown generated from the metrics (no typed numbers)."""

    def at(curve: str, level: float) -> float:  # JSON keys are strings, undefined steps null
        t = m["transition"][curve]
        value = t.get(level, t.get(str(level)))
        return float("nan") if value is None else float(value)

    t_loss = {q: at("loss", q) for q in (0.1, 0.5, 0.9)}
    t_ind = {q: at("induction", q) for q in (0.1, 0.5, 0.9)}
    f, short, lnv = m["final"], m["shortcut_final"], m["ln_vocab"]
    tokens = t_loss[0.5] * cfg.batch_size * cfg.seq_len
    lines = [
        f"* **Timing.** The repeated-copy loss is half-way down at step {t_loss[0.5]:.0f} (~{tokens / 1e6:.1f}M "
        f"training tokens) and the induction score half-way up at {t_ind[0.5]:.0f}; the loss's 10-90% window spans "
        f"steps {t_loss[0.1]:.0f}-{t_loss[0.9]:.0f}. Olsson et al.'s small attention-only models go through the phase "
        "change after billions of tokens of natural text; ours sees synthetic copy data whose fresh tokens follow a "
        "bigram table"
        + (
            f": the fresh-token loss is half-way down at step {at('fresh_loss', 0.5):.0f} and the ICL score half-way "
            f"to its jump at {at('icl_score', 0.5):.0f}."
            if "fresh_loss" in m["transition"]
            else "."
        ),
        f"* **What was learned.** Layer-1 induction score {f['probe_induction_max']:.2f} on an unseen segment "
        f"length (P = {cfg.probe_len}), {f['seen_induction_max']:.2f} on a seen one; the repeated-copy loss is "
        f"{f['probe_loss_rep'] / lnv:.2f} of ln V there. At a copy offset beyond every trained one "
        f"({m['far_offset']} > {m['trained_offsets'][1]}) it is {f['far_loss_rep'] / lnv:.2f} of ln V with an "
        f"induction score of {f['far_induction_max']:.2f}"
        + (
            ": the heads learned to look back only as far as training asked them to."
            if f["far_loss_rep"] / lnv > THRESHOLDS[cfg.preset]["rep_loss_frac"].value
            else ": it copies there too."
        ),
        f"* **The positional shortcut.** Trained with a fixed copy offset, the same model's loss on its own data falls "
        f"to {short['data_loss']:.2f} nats ({short['data_loss'] / lnv:.2f} of ln V) while its loss on the probe is "
        f"{short['probe_loss_rep']:.2f} nats and no head's induction score exceeds "
        f"{short['probe_induction_max']:.2f} (the copy task's own model: {f['probe_induction_max']:.2f}).",
    ]
    jump = m["reddy"]["jump"][0]["jump"]
    if jump["jumped"]:
        lines.append(
            f"* **Reddy's task.** In-context accuracy on novel classes jumps from the slow phase's side "
            f"({jump['lo']:.2f}) to 0.9 between steps {jump['t_lo']:.0f} and {jump['t_hi']:.0f}, a width of "
            f"{jump['width_over_time']:.0%} of the time before it."
        )
    return "\n".join(lines)
