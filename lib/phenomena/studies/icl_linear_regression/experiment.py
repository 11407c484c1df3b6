"""Everything the ICL notebook plots, computed in one call: ``compute(cfg, run) -> Results``.

Training is cached (``run.cached``: keyed by the config and the source of this module and everything it imports);
the evaluations -- the five baselines in closed form, Garg's out-of-distribution probes, Akyürek's SPDs and the
task-diversity comparison -- take seconds and are recomputed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from phenomena.studies.icl_linear_regression.config import Config
from phenomena.studies.icl_linear_regression.data import (
    Prompts,
    orthogonal_queries,
    repeated_queries,
    sample_prompts,
    task_pool,
)
from phenomena.studies.icl_linear_regression.learners import (
    ICLModel,
    baseline_predictions,
    dmmse_predictions,
    learner_predictions,
    predict,
)
from phenomena.studies.icl_linear_regression.metrics import bootstrap_band, spd, squared_errors
from phenomena.studies.icl_linear_regression.training import train_icl, train_task_diversity
from phenomena.train import History
from phenomena.workers import Job, prefill

if TYPE_CHECKING:
    from phenomena.run import Run


@dataclass
class Results:
    """What the notebook plots. ``errors``/``ood`` hold per-prompt errors (B, n) per learner; ``bands`` (mean, lo,
    hi) per learner over k; ``spds`` (n,) per learner; ``td`` one row per task-pool size M (means over k >= 1);
    ``depth`` one row per depth of Akyürek's depth-phase panel (mean SPDs over k >= 1, errors by k)."""

    model: ICLModel
    history: History
    errors: dict[str, Tensor]
    bands: dict[str, tuple[np.ndarray, ...]]
    ood: dict[str, dict[str, Tensor]]
    spds: dict[str, np.ndarray]
    td: pd.DataFrame
    depth: pd.DataFrame

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def ood_probes(model: ICLModel, cfg: Config, n_prompts: int, seed: int) -> dict[str, dict[str, Tensor]]:
    """Garg et al.'s out-of-distribution probes, each as {learner: per-prompt errors (B, n)} against the probe's
    own targets:

    - ``noisy_labels``: y + N(0, ood_noise_std^2) in context and target (least squares peaks at k = d);
      ridge uses the Bayes penalty lambda = sigma^2.
    - ``scaled_x``: every x scaled by ``ood_x_scale``.
    - ``orthogonal_query``: query orthogonal to all context points (k < d; the optimum is ~1).
    - ``repeated_query``: query equal to one context point (the optimum is 0).
    """
    gen = torch.Generator().manual_seed(seed)
    d, n = cfg.d, cfg.n_points
    out: dict[str, dict[str, Tensor]] = {}
    noisy = sample_prompts(n_prompts, n, d, gen, noise_std=cfg.ood_noise_std)
    lam = max(cfg.ood_noise_std**2, 1e-3)
    preds = learner_predictions(model, noisy, ridge_lambda=lam)
    out["noisy_labels"] = {k: squared_errors(v, noisy.ys, d) for k, v in preds.items()}
    scaled = sample_prompts(n_prompts, n, d, gen, x_scale=cfg.ood_x_scale)
    preds = learner_predictions(model, scaled, ridge_lambda=cfg.ridge_lambda)
    out["scaled_x"] = {k: squared_errors(v, scaled.ys, d) for k, v in preds.items()}
    clean = sample_prompts(n_prompts, n, d, gen)
    for name, queries in (
        ("orthogonal_query", orthogonal_queries(clean.xs)),
        ("repeated_query", repeated_queries(clean.xs, gen)),
    ):
        valid = ~torch.isnan(queries).any(-1)  # (B, n)
        safe = torch.where(valid.unsqueeze(-1), queries, torch.zeros_like(queries))
        target = torch.einsum("bnd,bd->bn", safe, clean.ws)
        preds = learner_predictions(model, clean, queries=safe, ridge_lambda=cfg.ridge_lambda)
        out[name] = {k: torch.where(valid, squared_errors(v, target, d), torch.nan) for k, v in preds.items()}
    return out


def task_diversity_eval(model: ICLModel, cfg: Config, M: int, n_prompts: int, seed: int) -> dict[str, Any]:
    """Compare a pool-M pretrained model with ridge (lambda = sigma^2, Bayes for the Gaussian prior) and dMMSE
    (Bayes for the uniform prior on the pool) on *unseen* tasks w ~ N(0, I) and on the pretraining pool.

    Returns per-k mean errors (n,) and SPDs, each normalised by d, for both task distributions. For M = 0
    (infinite diversity) the dMMSE entries are NaN."""
    d, n, var = cfg.td_d, cfg.td_n_points, cfg.td_noise_var
    pool = task_pool(M, d, cfg.seed)
    gen = torch.Generator().manual_seed(seed)
    result: dict[str, Any] = {"M": M}
    for split in ("unseen", "pool"):
        if split == "pool" and pool is None:
            continue
        p = sample_prompts(
            n_prompts, n, d, gen, noise_std=math.sqrt(var), pool=pool if split == "pool" else None
        )
        preds = {
            "transformer": predict(model, p),
            "ridge": baseline_predictions(p, "ridge", ridge_lambda=max(var, 1e-6)),
        }
        if pool is not None:
            preds["dmmse"] = dmmse_predictions(p, pool, var)
        for name, pred in preds.items():
            result[f"{split}/err/{name}"] = squared_errors(pred, p.ys, d).mean(0)
        for ref in ("ridge", "dmmse"):
            result[f"{split}/spd/{ref}"] = (
                spd(preds["transformer"], preds[ref], d) if ref in preds else torch.full((n,), torch.nan)
            )
    return result


def _state(model: torch.nn.Module) -> dict[str, Tensor]:
    return {k: v.cpu() for k, v in model.state_dict().items()}


def trained_model(cfg: Config, run: Run) -> tuple[ICLModel, History]:
    """The main model and its history, trained once per (config, source) and cached."""

    def fit() -> dict[str, Any]:
        model, history = train_icl(cfg, run.device)
        return {"state": _state(model), "history": history.to_dict()}

    stored = run.cached("icl-main", fit)
    model = ICLModel(cfg.model_config()).to(run.device)
    model.load_state_dict(stored["state"])
    return model.eval(), History.from_dict(stored["history"])


def task_diversity_model(cfg: Config, M: int, run: Run) -> ICLModel:
    """A model pretrained on a pool of M tasks (0 = infinite), cached like :func:`trained_model`."""
    state = run.cached(
        f"icl-td-M{M}",
        lambda: _state(train_task_diversity(cfg, M, run.device)),
        key={"cfg": cfg.to_dict(), "M": M},
    )
    model = ICLModel(cfg.model_config(task_diversity=True)).to(run.device)
    model.load_state_dict(state)
    return model.eval()


def depth_model(cfg: Config, n_layers: int, run: Run) -> ICLModel:
    """The depth panel's model with ``n_layers`` layers (:meth:`Config.depth_config`), cached like
    :func:`trained_model`; the main model itself where :meth:`Config.reuses_main` says so."""
    if cfg.reuses_main(n_layers):
        return trained_model(cfg, run)[0]
    sub = cfg.depth_config(n_layers)
    state = run.cached(
        f"icl-depth-L{n_layers}",
        lambda: _state(train_icl(sub, run.device)[0]),
        key={"cfg": sub.to_dict()},
    )
    model = ICLModel(sub.model_config()).to(run.device)
    model.load_state_dict(state)
    return model.eval()


def depth_eval(cfg: Config, models: dict[int, ICLModel], eval_set: Prompts) -> pd.DataFrame:
    """Akyürek's depth phases: per depth, the SPD (mean over k >= 1) of the model to least squares, ridge and
    one-step GD on the main evaluation prompts, its error by k and its error ratio at k = d."""
    base = {
        name: baseline_predictions(eval_set, name, ridge_lambda=cfg.ridge_lambda)
        for name in ("ols", "ridge", "gd")
    }
    rows = []
    for L, model in models.items():
        pred = predict(model, eval_set)
        err = squared_errors(pred, eval_set.ys, cfg.d).mean(0)
        row: dict[str, Any] = {"n_layers": L}
        for name, ref in base.items():
            row[f"spd/{name}"] = float(spd(pred, ref, cfg.d)[1:].mean())
        row["spd/zero_to_gd"] = float(spd(torch.zeros_like(base["gd"]), base["gd"], cfg.d)[1:].mean())
        row["err_by_k"] = [float(v) for v in err]
        rows.append(row)
    return pd.DataFrame(rows)


def evaluate(
    cfg: Config,
    model: ICLModel,
    history: History,
    td_models: dict[int, ICLModel],
    depth_models: dict[int, ICLModel] | None = None,
) -> Results:
    """Every evaluation of the notebook for a trained main model, one model per task-pool size and one per depth
    of the depth-phase panel (seconds)."""
    eval_set = sample_prompts(
        cfg.eval_prompts, cfg.n_points, cfg.d, torch.Generator().manual_seed(cfg.seed + 100)
    )
    preds = learner_predictions(model, eval_set, ridge_lambda=cfg.ridge_lambda)
    errors = {name: squared_errors(p, eval_set.ys, cfg.d) for name, p in preds.items()}
    bands = {name: bootstrap_band(e, seed=cfg.seed) for name, e in errors.items()}
    ood = ood_probes(model, cfg, n_prompts=cfg.eval_prompts, seed=cfg.seed + 200)
    spds = {
        name: spd(preds["transformer"], p, cfg.d).numpy()
        for name, p in preds.items()
        if name != "transformer"
    }
    td_rows = []
    for M, td_model in td_models.items():
        r = task_diversity_eval(td_model, cfg, M, cfg.td_eval_prompts, seed=cfg.seed + 300)
        td_rows.append({key: (float(v[1:].mean()) if torch.is_tensor(v) else v) for key, v in r.items()})
    depth = depth_eval(cfg, depth_models or {}, eval_set)
    return Results(model, history, errors, bands, ood, spds, pd.DataFrame(td_rows), depth)


def _fill_main(run: Run, cfg: Config) -> None:
    trained_model(cfg, run)


def _fill_pool(run: Run, cfg: Config, M: int) -> None:
    task_diversity_model(cfg, M, run)


def _fill_depth(run: Run, cfg: Config, n_layers: int) -> None:
    depth_model(cfg, n_layers, run)


def training_jobs(cfg: Config) -> list[Job]:
    """Every independent training run of :func:`compute` as a :func:`phenomena.workers.prefill` job, roughly longest
    first: the main model, the pools by steps, the depth models deepest first (each run seeds itself from the
    config, so a run trained in a worker equals the one trained here)."""
    return [
        (_fill_main, (cfg,)),
        *[(_fill_pool, (cfg, M)) for M in sorted(cfg.td_pool_sizes, key=cfg.pool_steps, reverse=True)],
        *[(_fill_depth, (cfg, L)) for L in reversed(cfg.depth_layers) if not cfg.reuses_main(L)],
    ]


def compute(cfg: Config, run: Run) -> Results:
    """Train (cached) the main model, one model per task-pool size and one per depth of the depth-phase panel -- in
    worker processes where :func:`phenomena.workers.prefill` starts them, else here, one after another -- and
    evaluate everything the notebook shows."""
    prefill(run, training_jobs(cfg))
    model, history = trained_model(cfg, run)
    return evaluate(
        cfg,
        model,
        history,
        {M: task_diversity_model(cfg, M, run) for M in cfg.td_pool_sizes},
        {L: depth_model(cfg, L, run) for L in cfg.depth_layers},
    )
