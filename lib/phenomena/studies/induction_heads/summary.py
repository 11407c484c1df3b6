"""What an induction-heads run stores: ``summarize(cfg, results) -> metrics``, the JSON-ready numbers of one run
(both copy models, the transition steps, the ablation tables of the main and the ablation model, the Reddy runs and
the fixed-offset control). The claims read them through the named measures (:mod:`.measures`); this module and the
computation it summarises are all that the stored metrics depend on (:func:`phenomena.run.study_metrics_hash`)."""

from __future__ import annotations

import math
from typing import Any

from phenomena.studies.induction_heads.config import SPARE_REDRAW_STRIDE, Config
from phenomena.studies.induction_heads.copy_task import bigram_entropy, bigram_table
from phenomena.studies.induction_heads.experiment import MainModel, Results, windowed

#: the main model's final evaluation values that the stored metrics keep (``final``)
FINAL_KEYS = (
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


def main_model_metrics(cfg: Config, main: MainModel) -> dict[str, Any]:
    """The stored metrics of one draw of the main model (``cfg``: the draw's config): its bigram entropy, start and
    final values, transition steps and the gates that say whether each transition happened, and its ablations. The
    top level of :func:`summarize` holds draw 0's; ``draws`` the further draws', under the same keys."""
    ev2 = main.two.evals()
    t_loss, t_ind, t_prev = (main.transitions[k] for k in ("loss", "induction", "prev_token"))
    last, first = ev2.iloc[-1], ev2.iloc[0]
    # the gates of the transition's timing read the same window as its t10 / t50 / t90 (experiment.windowed)
    ew = windowed(ev2, cfg)
    w_last = ew.iloc[-1]
    ind_cols = [c for c in ev2 if c.startswith("probe_induction_L")]
    table = bigram_table(cfg)
    h_bigram = bigram_entropy(table) if table is not None else math.log(cfg.vocab_size)
    t_fresh, t_icl = main.transitions["fresh_loss"], main.transitions["icl_score"]
    return {
        "draw_seed": cfg.seed,
        "bigram_entropy": h_bigram,
        "init_probe_loss_rep": float(first["probe_loss_rep"]),
        "init_induction_max_any_head": float(first[ind_cols].max()),
        "final": {k: float(last[k]) for k in FINAL_KEYS},
        "transition": main.transitions,
        # the last step of the window the transitions and their gates read (the last evaluation without a window)
        "transition_window_end": int(w_last["step"]),
        # a transition "exists" when the curve covers a real distance within the window: the repeated-copy loss falls
        # by at least half of ln V, and a head crosses the induction-head threshold; timing claims need both
        "loss_drop_exists": bool(
            first["probe_loss_rep"] - w_last["probe_loss_rep"] >= 0.5 * math.log(cfg.vocab_size)
        ),
        "heads_formed": bool(w_last["probe_induction_max"] > cfg.ind_threshold),
        "abruptness": (t_loss[0.9] - t_loss[0.1]) / t_loss[0.5],
        "abruptness_induction": (t_ind[0.9] - t_ind[0.1]) / t_ind[0.5],
        "t50_gap_induction": abs(t_loss[0.5] - t_ind[0.5]) / t_loss[0.5],
        "t50_gap_prev_token": abs(t_loss[0.5] - t_prev[0.5]) / t_loss[0.5],
        "t50_gap_icl_score": abs(t_loss[0.5] - t_icl[0.5]) / t_loss[0.5],
        # the loss's first stage: the fresh (non-copied) tokens' loss falls by at least half of ln V - H(bigram),
        # which the direct path can do without any head; the ICL score's jump must be timed apart from it
        "first_fall_exists": bool(
            h_bigram < math.log(cfg.vocab_size)
            and first["data_loss_fresh"] - ew["data_loss_fresh"].min()
            >= 0.5 * (math.log(cfg.vocab_size) - h_bigram)
        ),
        "t50_first_fall_over_icl": t_fresh[0.5] / t_icl[0.5],
        "t50_gap_icl_induction": abs(t_icl[0.5] - t_ind[0.5]) / t_ind[0.5],
        "icl_score_init": float(first["icl_score"]),
        "ablation": main.ablation.to_dict(orient="records"),
    }


def summarize(cfg: Config, results: Results) -> dict[str, Any]:
    """JSON-ready metrics of one run of the study (both copy models, the ablation table, the Reddy runs and the
    fixed-offset control; the main model's further draws under ``draws``)."""
    ev2, ev1, evs = results.two.evals(), results.one.evals(), results.shortcut.evals()
    main = MainModel(results.two, results.eval_set, results.transitions, results.heads, results.ablation)
    out: dict[str, Any] = {
        "ln_vocab": math.log(cfg.vocab_size),
        **main_model_metrics(cfg, main),
        "draws": [main_model_metrics(cfg.draw_config(k), d) for k, d in enumerate(results.draws, 1)],
        "one_layer_final": {
            k: float(ev1.iloc[-1][k])
            for k in ("probe_loss_rep", "probe_induction_max", "seen_loss_rep", "icl_score")
        },
        "shortcut_final": {
            k: float(evs.iloc[-1][k])
            for k in ("data_loss", "probe_loss_rep", "probe_induction_max", "seen_loss_rep")
        },
        "trained_offsets": [cfg.segment_min, cfg.segment_max + cfg.gap_max],
        "far_offset": cfg.far_len + cfg.far_gap,
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
        # the draw the ablations ran on (0: the first; k: the k-th declared re-draw, seed + 1000 k)
        "draw": (spare.cfg.seed - results.two.cfg.seed) // SPARE_REDRAW_STRIDE,
        "probe_loss_rep": float(last["probe_loss_rep"]),
        "far_loss_rep": float(last["far_loss_rep"]),
        "layer1_induction": [round(float(v), 4) for v in layer1.induction],
        "layer0_prev_token": [round(float(v), 4) for v in heads[heads.layer == 0].prev_token],
    }
