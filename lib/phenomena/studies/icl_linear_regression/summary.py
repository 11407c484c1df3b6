"""What an ICL run stores: ``summarize(cfg, results) -> metrics``, the JSON-ready numbers of one run (error curves,
OOD curves, SPDs, the task-diversity and depth tables). The claims read them through the named measures
(:mod:`.measures`); this module and the computation it summarises are all that the stored metrics depend on
(:func:`phenomena.run.study_metrics_hash`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from phenomena.studies.icl_linear_regression.config import Config
from phenomena.studies.icl_linear_regression.experiment import Results


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
