"""The papers' claims as checkable numbers: ``summarize(cfg, results) -> metrics``, ``claims(cfg, metrics)``,
``departures(cfg, metrics)`` and the thresholds they use, with the evidence each was set from."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from phenomena.claims import Claim, Threshold, expectation, gpu_thresholds
from phenomena.studies.icl_linear_regression.config import Config
from phenomena.studies.icl_linear_regression.experiment import Results

# Where each threshold comes from. quick: a 0.15M-parameter model trained for ~1 minute on a CPU (Garg's tiny model
# trained for 500k steps reaches far lower), so most checks target what *defines* the phenomenon. The thresholds
# marked _Q were set in an earlier session with seeds 0-2 of the quick preset in view (err_k_d 0.26 / 0.25 / 0.16,
# err_k_2d 0.086 / 0.066 / 0.035, ratio_2d 0.14 / 0.12 / 0.07, gap_ols 0.066 / 0.061 / 0.031, repeated 0.037 /
# 0.040 / 0.017 at k = 2d). Those marked _S0 were set in this session from the papers and seed 0 only, before any
# other seed was run with them; the 5-seed sweep judges them (data/sweeps/). paper: Garg's standard model, near the
# paper's numbers (not run: no GPU was available).
_Q = "quick; set in an earlier session with seeds 0-2 in view"
_S0 = "quick; set from the paper and seed 0 only, before other seeds"
_P = "paper scale, from the papers' figures with a margin (not run: no GPU)"
_SMOKE = "smoke: wiring only, never enforced"


def _th(
    value: float | tuple[float, float], quick: str, paper: float | tuple[float, float] | None = None
) -> dict:
    return {"quick": Threshold(value, quick), "paper": Threshold(value if paper is None else paper, _P)}


# Issue 20's calibration (seed 0, d = 5, width 32, 2 heads, batch 64; docs/calibration/icl_linear_regression.md):
# err(d)/err(d-1) 0.39 at 6 layers x 4k steps, 0.42 at 8 x 4k, 0.35 at 8 x 8k, against ridge(lambda = 0.1)'s 0.36
# and least squares' 0; min SPD to least squares / ridge 0.016 (6 x 4k), 0.023 (8 x 4k), 0.015 (8 x 8k).
_CAL = "issue 20 calibration, seed 0 only, before the 5-seed sweep"
# Why a row is expected to fail at the quick preset (at the paper preset every claim expects the paper's outcome).
_SMALL = (
    "quick: no depth x steps setting that fits the budget drops more sharply than ridge at k = d (calibration, seed 0: "
    "6 layers x 4k steps 0.39, 8 x 4k 0.42, 8 x 8k 0.35 of the previous error, ridge 0.36): doubling the steps moved "
    "it by 0.07, so the paper's drop needs far longer training"
)

_INF_UNCLEAR = (
    "quick, set after issue 20's 5-seed sweep: 1.084 [1.067, 1.101], every seed under 1.1 (1.06-1.10) but the "
    "interval reaches the bound; Raventós' match with ridge needs more steps than the 4,000 per pool size that fit"
)

_ROWS: dict[str, dict[str, Threshold]] = {
    "err_k_d": _th(0.35, _Q, 0.05),
    "err_k_2d": _th(0.15, _Q, 0.005),
    "ratio_2d": _th(0.25, _Q, 0.02),
    "gap_ols": _th(0.1, _Q, 0.05),
    "sharp_drop": _th(
        0.5,
        "redefined in issue 20 (was err(d)/err(d-1) < 0.5, which one-step GD's 0.72 and ridge's 0.36 sit on either "
        "side of): the ratio at most half of ridge(lambda = 0.1)'s, i.e. 'well below ridge'; stated before the "
        "5-seed sweep, with the calibration (which fails it) in view",
    ),
    "orthogonal": _th(
        1.3, "the upper side of an earlier session's [0.7, 1.3] band (the lower side cannot bind)"
    ),
    "repeated_ratio": _th(0.5, _S0 + " (half the error of a learner that ignores the repeated point)"),
    "scaled_ratio": _th(1.5, "earlier session; on our scale the paper's own ratio is ~107"),
    "spd_vs_gd": _th(1.0, "definition: closer to least squares / ridge than to the next-closest learner"),
    "spd_abs": _th(
        0.03,
        "redefined in issue 20 (was the paper's 0.01 at quick too, failed by the 3-layer model's 0.054): about twice "
        "the calibrated 6-layer model's 0.016 at seed 0 ("
        + _CAL
        + "); the paper preset keeps Akyürek's 0.01",
        0.01,
    ),
    "pool_ratio": _th(
        0.7,
        "redefined in issue 17 (was 1.0, 'closer to one Bayes predictor than to the other', which the zero "
        "predictor passed for 5 of 8 pool draws at 0.93-1.01): closer to one than to the other by a 30% margin; set "
        "with the committed 5-seed sweep in view (small pool 0.30-0.58, large pool 0.30-0.47) and the null's ratio",
    ),
    "diversity": _th(0.75, "earlier session"),
    "inf_vs_ridge": _th(
        1.1,
        _S0
        + " (Raventós: past the threshold the model matches ridge; 10% slack). Issue 20 calibration at M = inf, "
        "seed 0 (the 3 x 64 model at 2,000 steps scored 1.24-1.32): 4 x 32 at 3k / 4k steps 1.17 / 1.09, 6 x 32 at 4k "
        "1.06; the default took 6 x 32 at 4k",
    ),
    "depth_shallow": _th(
        1.0,
        "definition: closer to one GD step than to least squares and than a learner that predicts nothing",
    ),
    "depth_moves": _th(
        0.5,
        "at least halves from the shallowest to the deepest model ("
        + _CAL
        + ": 1.85 / 1.06 / 0.28 / 0.09 at 1 / 2 / 4 "
        "/ 6 layers, a ratio of 0.05)",
    ),
}
THRESHOLDS: dict[str, dict[str, Threshold]] = {
    "smoke": {k: Threshold(v["quick"].value, _SMOKE) for k, v in _ROWS.items()},
    "quick": {k: v["quick"] for k, v in _ROWS.items()},
    "paper": {k: v["paper"] for k, v in _ROWS.items()},
}


def _nanmean_by_k(e: Tensor) -> list[float]:
    """Mean over prompts per k (NaN where undefined, e.g. an orthogonal query at k >= d)."""
    return [float(v) for v in torch.nanmean(e, 0).tolist()]


def summarize(cfg: Config, results: Results) -> dict[str, Any]:
    """JSON-ready metrics of one run: error curves, OOD curves, SPDs and the task-diversity table."""
    errors, ood, spds, td = results.errors, results.ood, results.spds, results.td
    d, n = cfg.d, cfg.n_points
    k2d = min(2 * d, n - 1)
    mean = {name: e.mean(0) for name, e in errors.items()}
    t = mean["transformer"]
    below_d = range(1, min(d, n))
    orth = torch.nanmean(ood["orthogonal_query"]["transformer"], 0)
    rep = torch.nanmean(ood["repeated_query"]["transformer"], 0)
    noisy = {name: torch.nanmean(e, 0) for name, e in ood["noisy_labels"].items()}
    scaled = torch.nanmean(ood["scaled_x"]["transformer"], 0) / cfg.ood_x_scale**2
    return {
        "k_d": d,
        "k_2d": k2d,
        "err_by_k": {name: [float(v) for v in m] for name, m in mean.items()},
        "transformer_err_k_d": float(t[d]) if d < n else float("nan"),
        "transformer_err_k_2d": float(t[k2d]),
        "baseline_err_k_2d": {name: float(m[k2d]) for name, m in mean.items() if name != "transformer"},
        "baseline_err_k_d": {
            name: float(m[d]) for name, m in mean.items() if name != "transformer" and d < n
        },
        "mean_gap_to_ols_below_d": float(np.mean([abs(float(t[k] - mean["ols"][k])) for k in below_d])),
        "mean_gap_gd_to_ols_below_d": float(
            np.mean([abs(float(mean["gd"][k] - mean["ols"][k])) for k in below_d])
        ),
        "ood_by_k": {
            probe: {name: _nanmean_by_k(e) for name, e in errs.items()} for probe, errs in ood.items()
        },
        "ood_orthogonal_mean_below_d": float(orth[1 : min(d, n)].mean()),
        "ood_repeated_err_k_2d": float(rep[k2d]),
        "ood_scaled_err_k_2d": float(scaled[k2d]),
        "ood_scaled_over_clean_k_2d": float(scaled[k2d] / t[k2d]),
        "ood_noisy_peak_ratio_ols": float(noisy["ols"][d] / noisy["ols"][k2d]) if d < n else float("nan"),
        "ood_noisy_transformer_vs_bayes_ridge_k_d": float(noisy["transformer"][d] / noisy["ridge"][d]),
        "spd_mean": {name: float(np.mean(s[1:])) for name, s in spds.items()},
        "drop_at_k_d": float(t[d] / t[d - 1]) if 1 <= d < n else float("nan"),
        "ood_repeated_mean_below_d": float(rep[1 : min(d, n)].mean()),
        "noread_repeated_mean_below_d": float(np.mean([(d - k) / d for k in below_d])),
        "task_diversity": td.to_dict(orient="records"),
        "depth_phases": [
            {
                "n_layers": int(r["n_layers"]),
                **{k: float(r[k]) for k in ("spd/ols", "spd/ridge", "spd/gd", "spd/zero_to_gd")},
                "err_k_d": float(r["err_by_k"][d]) if d < n else float("nan"),
                "drop_at_k_d": float(r["err_by_k"][d] / r["err_by_k"][d - 1]) if 1 <= d < n else float("nan"),
            }
            for r in results.depth.to_dict(orient="records")
        ],
        "ridge_drop_at_k_d": float(mean["ridge"][d] / mean["ridge"][d - 1]) if 1 <= d < n else float("nan"),
    }


def claims(cfg: Config, m: dict[str, Any]) -> list[Claim]:
    """The papers' claims as checkable numbers (thresholds in ``THRESHOLDS`` for the run's preset)."""
    th = THRESHOLDS[cfg.preset]
    d, k2d = m["k_d"], m["k_2d"]
    weak = min(m["baseline_err_k_2d"]["knn"], m["baseline_err_k_2d"]["averaging"])
    spd = m["spd_mean"]
    best = min(spd["ols"], spd["ridge"])
    gd_gap = m["mean_gap_gd_to_ols_below_d"]
    paper_scaled = "0.58 at k = 40 (d-normalised) = 0.064 on our scale, vs 0.0006 in distribution (x107)"
    rows = [
        Claim.below(
            id="err_at_k_eq_d",
            statement=f"transformer error at k = d = {d}",
            paper="0.02 (d=20, Fig. 2)",
            ours=m["transformer_err_k_d"],
            bound=th["err_k_d"],
        ),
        Claim.below(
            id="err_at_k_eq_2d",
            statement=f"transformer error at k = 2d = {k2d}",
            paper="0.0006 (d=20, Fig. 2)",
            ours=m["transformer_err_k_2d"],
            bound=th["err_k_2d"],
        ),
        Claim.below(
            id="far_below_3nn_and_averaging",
            statement="error at k = 2d / best of 3-NN and averaging",
            paper="~0.001 (0.0006 vs ~0.5)",
            ours=m["transformer_err_k_2d"] / weak,
            bound=th["ratio_2d"],
        ),
        Claim.below(
            id="tracks_ols_below_d",
            statement=f"mean |error - least squares error|, 1 <= k < d (1-step GD: {gd_gap:.2f})",
            paper="tracks least squares at every k (Fig. 2)",
            ours=m["mean_gap_to_ols_below_d"],
            bound=th["gap_ols"],
        ),
        Claim.below(
            id="sharp_drop_at_k_eq_d",
            statement=f"err(d) / err(d - 1), over ridge(λ = {cfg.ridge_lambda:g})'s ratio "
            f"({m['ridge_drop_at_k_d']:.2f}; least squares: 0)",
            paper="a sharp drop at k = d (Fig. 2)",
            ours=m["drop_at_k_d"] / m["ridge_drop_at_k_d"],
            bound=th["sharp_drop"],
            expect=expectation(cfg.preset, _SMALL, quick="fails"),
            note=_SMALL,
        ),
        Claim.below(
            id="orthogonal_query_adds_no_signal",
            kind="control",
            note="a control, not a claim: the zero predictor scores exactly 1, so no run can fail it by not learning; "
            "it only rules out spurious signal along directions the context does not span",
            statement="query orthogonal to context: mean error, 1 <= k < d (any predictor scores >= 1)",
            paper="~1 (optimal, App. B.2)",
            ours=m["ood_orthogonal_mean_below_d"],
            bound=th["orthogonal"],
        ),
        Claim.below(
            id="repeated_query_uses_context",
            statement="query = a context point, 1 <= k < d: error / error of a learner ignoring it ((d-k)/d)",
            paper="0.001 (App. B.2)",
            ours=m["ood_repeated_mean_below_d"] / m["noread_repeated_mean_below_d"],
            bound=th["repeated_ratio"],
        ),
        Claim.above(
            id="scaled_inputs_degrade",
            statement=f"inputs x{cfg.ood_x_scale:g}: error at k = 2d / (scale^2 x in-distribution error)",
            paper=paper_scaled,
            ours=m["ood_scaled_over_clean_k_2d"],
            bound=th["scaled_ratio"],
        ),
        Claim.below(
            id="closest_to_least_squares",
            statement=f"min SPD to OLS/ridge ({best:.3f}) / SPD to 1-step GD, the next-closest learner "
            f"({spd['gd']:.3f}), mean over k >= 1",
            paper="least squares closest (Akyürek Fig. 2)",
            ours=best / spd["gd"],
            bound=th["spd_vs_gd"],
        ),
        Claim.below(
            id="spd_to_least_squares_tiny",
            statement="min SPD to OLS/ridge, mean over k >= 1",
            paper="< 0.01 (Akyürek Fig. 2, 8 layers)",
            ours=best,
            bound=th["spd_abs"],
        ),
    ]
    rows += _depth_rows(m, th, cfg)
    td = m["task_diversity"]
    finite = [row for row in td if row["M"] > 0]
    need = "task_diversity needs two finite pool sizes and M = 0 (infinite) in td_pool_sizes"
    if len(finite) >= 2 and td[-1]["M"] == 0:
        small, large, inf = finite[0], finite[-1], td[-1]
        rows += [
            Claim.below(
                id="small_pool_follows_dmmse",
                statement=f"M = {small['M']}: SPD to dMMSE / SPD to ridge (new tasks)",
                paper="small M: model ~ dMMSE (Raventós Fig. 2)",
                ours=small["unseen/spd/dmmse"] / small["unseen/spd/ridge"],
                bound=th["pool_ratio"],
            ),
            Claim.below(
                id="large_pool_follows_ridge",
                statement=f"M = {large['M']}: SPD to ridge / SPD to dMMSE (new tasks)",
                paper="M past threshold: model ~ ridge",
                ours=large["unseen/spd/ridge"] / large["unseen/spd/dmmse"],
                bound=th["pool_ratio"],
            ),
            Claim.below(
                id="diversity_generalises",
                statement=f"new-task error, M = inf / M = {small['M']}",
                paper="falls toward ridge as M grows (Fig. 1)",
                ours=inf["unseen/err/transformer"] / small["unseen/err/transformer"],
                bound=th["diversity"],
            ),
            Claim.below(
                id="infinite_pool_reaches_ridge",
                statement="new-task error, M = inf / ridge's (lambda = sigma^2)",
                paper="matches ridge past the threshold (Fig. 1)",
                ours=inf["unseen/err/transformer"] / inf["unseen/err/ridge"],
                bound=th["inf_vs_ridge"],
                expect=expectation(cfg.preset, _INF_UNCLEAR, quick="unclear"),
                note=_INF_UNCLEAR,
            ),
        ]
    else:
        for cid in (
            "small_pool_follows_dmmse",
            "large_pool_follows_ridge",
            "diversity_generalises",
            "infinite_pool_reaches_ridge",
        ):
            rows.append(
                Claim.not_evaluated(
                    id=cid, statement="task-diversity comparison", paper="Raventós Figs. 1-2", reason=need
                )
            )
    return rows


def _depth_rows(m: dict[str, Any], th: dict[str, Threshold], cfg: Config) -> list[Claim]:
    """Akyürek et al.'s depth phases: the shallowest model is closest to one step of GD, and the learner moves
    towards least squares as depth grows (the ratio SPD(least squares) / SPD(1-step GD) falls)."""
    dp = m.get("depth_phases") or []
    if len(dp) < 2:
        reason = "depth_layers needs >= 2 depths"
        return [
            Claim.not_evaluated(id=cid, statement="depth phases", paper="Akyürek Fig. 3", reason=reason)
            for cid in ("shallowest_is_gd_like", "depth_moves_towards_least_squares")
        ]
    lo, hi = dp[0], dp[-1]

    def ratio(r: dict[str, Any]) -> float:
        return r["spd/ols"] / r["spd/gd"]

    return [
        Claim.below(
            id="shallowest_is_gd_like",
            statement=f"{lo['n_layers']} layer(s): SPD to 1-step GD / min(SPD to least squares, the zero predictor's "
            "SPD to 1-step GD)",
            paper="1 layer ~ one step of GD (Akyürek Fig. 3)",
            ours=lo["spd/gd"] / min(lo["spd/ols"], lo["spd/zero_to_gd"]),
            bound=th["depth_shallow"],
        ),
        Claim.below(
            id="depth_moves_towards_least_squares",
            statement=f"SPD(least squares) / SPD(1-step GD): {hi['n_layers']} layers / {lo['n_layers']} layer(s)",
            paper=">= 8 layers ~ least squares, 1 layer ~ GD (Akyürek Fig. 3)",
            ours=ratio(hi) / ratio(lo),
            bound=th["depth_moves"],
        ),
    ]


def departures(cfg: Config, m: dict[str, Any]) -> list[str]:
    """Declared departures from the papers' setups, with our numbers."""
    out = [
        f"Scale: d = {cfg.d}, {cfg.n_points} points, {cfg.n_layers} layers x {cfg.d_model} wide, {cfg.steps:,} steps "
        f"without curriculum (Garg: d = 20, 41 points, 12 layers x 256, 500k steps with a curriculum; "
        '`preset="paper"`).',
        f"Scaled-input probe: errors divided by scale^2 = {cfg.ood_x_scale**2:g} as well as by d (Garg divides by d "
        "only), so that a scale-free learner scores the same as in distribution; the paper's 0.58 is 0.064 on this "
        "scale.",
        "Tokens use Garg's d-wide layout ([y, 0, ..., 0] for labels); Akyürek and Raventós use (d+1)-wide tokens.",
    ]
    if m.get("depth_phases"):
        depths = ", ".join(str(r["n_layers"]) for r in m["depth_phases"])
        out.append(
            f"Depth phases at d = {cfg.d}: {depths} layers x {cfg.d_model} wide, {cfg.depth_steps or cfg.steps:,} "
            "steps each, Garg's tokens and optimiser (Akyürek et al.: d = 8, (d+1)-wide tokens, 1-16 layers, far "
            "longer training)."
        )
    if m["task_diversity"]:
        sizes = ", ".join(str(r["M"] or "inf") for r in m["task_diversity"])
        out.append(
            f"Task diversity at d = {cfg.td_d}, {cfg.td_n_points} points, {cfg.td_n_layers} layers x "
            f"{cfg.td_d_model}, {cfg.td_steps:,} steps, M in {{{sizes}}} (Raventós: d = 8, 16 points, 8 layers, "
            "M up to 2^20; their threshold is ~2^14)."
        )
    return out


def comparison(cfg: Config, m: dict[str, Any]) -> str:
    """ "How ours compares with the papers", as Markdown generated from the metrics (no typed numbers)."""
    d, k2d = m["k_d"], m["k_2d"]
    err = m["err_by_k"]
    t, ridge = err["transformer"], err["ridge"]
    spd = m["spd_mean"]
    nearest = min(spd, key=spd.get)
    td = m["task_diversity"]
    lines = [
        f"* **Error curve.** At k = d = {d} our transformer's error is {t[d]:.3f} (least squares 0, ridge "
        f"{ridge[d]:.3f}); at k = {k2d} it is {t[k2d]:.3f}. Garg's 9.5M-parameter model at d = 20 reaches 0.02 and "
        f"0.0006 after 500k steps; ours is a {cfg.n_layers}-layer model trained for {cfg.steps:,} steps. Below k = d "
        f"its mean gap to least squares is {m['mean_gap_to_ols_below_d']:.3f} (one-step GD: "
        f"{m['mean_gap_gd_to_ols_below_d']:.3f}); at k = d its error falls to {m['drop_at_k_d']:.2f} of the "
        "previous step's (least squares: to zero).",
        f"* **Which learner.** The nearest learner by mean SPD is {nearest} ({spd[nearest]:.3f}; OLS "
        f"{spd['ols']:.3f}, ridge {spd['ridge']:.3f}, one-step GD {spd['gd']:.3f}, 3-NN {spd['knn']:.3f}); "
        "Akyürek et al.'s 8-layer model was within 0.01 of least squares.",
        f"* **Out of distribution.** Orthogonal queries score {m['ood_orthogonal_mean_below_d']:.3f} (optimum 1; a "
        f"zero predictor also scores 1, so this only rules out spurious signal); a repeated query is answered with "
        f"error {m['ood_repeated_mean_below_d']:.3f} below k = d, where ignoring it would cost "
        f"{m['noread_repeated_mean_below_d']:.2f}; scaling x by {cfg.ood_x_scale:g} multiplies the scale-adjusted "
        f"error by {m['ood_scaled_over_clean_k_2d']:.1f} (Garg's model: ~107 on this scale). With noisy labels "
        f"least squares peaks at k = d ({m['ood_noisy_peak_ratio_ols']:.0f}x its error at k = 2d); ours is at "
        f"{m['ood_noisy_transformer_vs_bayes_ridge_k_d']:.2f}x Bayes ridge's error there (Garg's model follows "
        "least squares' peak).",
    ]
    dp = m.get("depth_phases") or []
    if dp:
        rows = ", ".join(
            f"{r['n_layers']}: {r['spd/ols'] / r['spd/gd']:.2f} (err at k = d {r['err_k_d']:.3f})" for r in dp
        )
        lines.append(
            f"* **Depth phases.** SPD to least squares / SPD to one-step GD by number of layers: {rows} (below 1: "
            "closer to least squares). Akyürek et al. report one layer ~ one GD step, 2-4 layers ~ ridge and >= 8 "
            "layers ~ least squares at d = 8."
        )
    if td:
        rows = ", ".join(f"M = {r['M'] or 'inf'}: {r['unseen/err/transformer']:.3f}" for r in td)
        lines.append(
            f"* **Task diversity.** New-task error by pool size: {rows}; ridge (Bayes for new tasks) scores "
            f"{td[-1]['unseen/err/ridge']:.3f} (Raventós et al.: past a threshold of ~2^14 tasks the model matches "
            "ridge; the claims table says on which side of each comparison ours lands)."
        )
    return "\n".join(lines)


THRESHOLDS["gpu"] = gpu_thresholds(THRESHOLDS["paper"])
