"""The named measures the ICL claims read (:class:`phenomena.claims.Measures`): ratios and minima over learners
computed from the stored metrics (:mod:`.summary`). Garg's error is the squared error divided by d; SPD is
Akyürek et al.'s squared prediction difference between two learners, averaged over k >= 1. No thresholds here."""

from __future__ import annotations

from typing import Any

from phenomena.claims import Measures, NotEvaluated
from phenomena.studies.icl_linear_regression.config import Config

MEASURES = Measures()
Metrics = dict[str, Any]


@MEASURES
def err_2d_over_best_weak(cfg: Config, m: Metrics) -> float:
    """Error at k = 2d over the better of the 3-nearest-neighbour and averaging learners' (Garg's weak baselines)."""
    weak = m["baseline_err_k_2d"]
    return m["transformer_err_k_2d"] / min(weak["knn"], weak["averaging"])


@MEASURES
def drop_over_ridge_drop(cfg: Config, m: Metrics) -> float:
    """err(d) / err(d - 1) over ridge's same ratio: below 1, the model drops at k = d more sharply than ridge
    (least squares drops to 0)."""
    return m["drop_at_k_d"] / m["ridge_drop_at_k_d"]


@MEASURES
def repeated_over_noread(cfg: Config, m: Metrics) -> float:
    """Error on a query equal to a context point, 1 <= k < d, over a learner that ignores it ((d - k) / d)."""
    return m["ood_repeated_mean_below_d"] / m["noread_repeated_mean_below_d"]


@MEASURES
def best_spd_ols_ridge(cfg: Config, m: Metrics) -> float:
    """The smaller of the SPDs to least squares and to ridge (lambda = ridge_lambda)."""
    return min(m["spd_mean"]["ols"], m["spd_mean"]["ridge"])


@MEASURES
def best_spd_over_gd(cfg: Config, m: Metrics) -> float:
    """min(SPD to least squares, SPD to ridge) / SPD to one step of GD, the next-closest learner."""
    spd = m["spd_mean"]
    return min(spd["ols"], spd["ridge"]) / spd["gd"]


def _depths(m: Metrics) -> tuple[dict[str, Any], dict[str, Any]]:
    dp = m.get("depth_phases") or []
    if len(dp) < 2:
        raise NotEvaluated("depth_layers needs >= 2 depths")
    return dp[0], dp[-1]


@MEASURES
def shallow_layers(cfg: Config, m: Metrics) -> float:
    """The shallowest depth of the depth-phase panel."""
    return _depths(m)[0]["n_layers"]


@MEASURES
def deep_layers(cfg: Config, m: Metrics) -> float:
    """The deepest depth of the depth-phase panel."""
    return _depths(m)[1]["n_layers"]


@MEASURES
def shallow_spd_gd_ratio(cfg: Config, m: Metrics) -> float:
    """Shallowest model: SPD to one GD step / min(SPD to least squares, the zero predictor's SPD to one GD step)."""
    lo = _depths(m)[0]
    return lo["spd/gd"] / min(lo["spd/ols"], lo["spd/zero_to_gd"])


@MEASURES
def depth_ls_over_gd_change(cfg: Config, m: Metrics) -> float:
    """SPD(least squares) / SPD(one GD step) of the deepest model over the same ratio of the shallowest."""
    lo, hi = _depths(m)
    return (hi["spd/ols"] / hi["spd/gd"]) / (lo["spd/ols"] / lo["spd/gd"])


def _pools(m: Metrics) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    td = m["task_diversity"]
    finite = [row for row in td if row["M"] > 0]
    if len(finite) < 2 or not td or td[-1]["M"] != 0:
        raise NotEvaluated("task_diversity needs two finite pool sizes and M = 0 (infinite) in td_pool_sizes")
    return finite[0], finite[-1], td[-1]


@MEASURES
def small_pool(cfg: Config, m: Metrics) -> float:
    """The smallest finite task-pool size M."""
    return _pools(m)[0]["M"]


@MEASURES
def large_pool(cfg: Config, m: Metrics) -> float:
    """The largest finite task-pool size M."""
    return _pools(m)[1]["M"]


@MEASURES
def small_pool_dmmse_over_ridge_seen(cfg: Config, m: Metrics) -> float:
    """Smallest pool, on the pool's own tasks (Raventós' split for small M): SPD to dMMSE / SPD to ridge."""
    small = _pools(m)[0]
    return small["pool/spd/dmmse"] / small["pool/spd/ridge"]


@MEASURES
def large_pool_ridge_over_dmmse_unseen(cfg: Config, m: Metrics) -> float:
    """Largest finite pool, on new tasks: SPD to ridge / SPD to dMMSE."""
    large = _pools(m)[1]
    return large["unseen/spd/ridge"] / large["unseen/spd/dmmse"]


@MEASURES
def infinite_over_small_pool_err(cfg: Config, m: Metrics) -> float:
    """New-task error of the M = infinity model over the smallest pool's."""
    small, _, inf = _pools(m)
    return inf["unseen/err/transformer"] / small["unseen/err/transformer"]


@MEASURES
def infinite_pool_over_ridge_err(cfg: Config, m: Metrics) -> float:
    """New-task error of the M = infinity model over ridge's (lambda = sigma^2, the Bayes predictor there)."""
    inf = _pools(m)[2]
    return inf["unseen/err/transformer"] / inf["unseen/err/ridge"]
