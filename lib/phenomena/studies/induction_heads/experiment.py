"""Everything the induction-heads notebook plots, computed in one call: ``compute(cfg, run) -> Results``.

Trained models and Reddy histories are cached (``run.cached``: keyed by the fields they depend on and the source of
this module and everything it imports); the analyses of the trained models take seconds and are recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from phenomena import workers
from phenomena.studies.induction_heads.config import Config
from phenomena.studies.induction_heads.copy_task import EvalSet
from phenomena.studies.induction_heads.reddy import ReddySetting, reddy_jump, reddy_settings, train_reddy
from phenomena.studies.induction_heads.scores import transition_steps
from phenomena.studies.induction_heads.training import (
    CopyRun,
    ablations,
    head_table,
    shortcut_config,
    train_copy,
)
from phenomena.train import History
from phenomena.transformer import Transformer

if TYPE_CHECKING:
    from torch import Tensor

    from phenomena.run import Run

LEVELS = (0.1, 0.5, 0.9)


@dataclass
class MainModel:
    """One draw of the main (2-layer) model and its analysis: the model, its fixed evaluation batches, the transition
    steps of its copy gain / max induction score / max previous-token score / ICL score / fresh-token loss, its final
    head table and its ablations."""

    two: CopyRun
    eval_set: EvalSet
    transitions: dict[str, dict[float, float]]
    heads: pd.DataFrame
    ablation: pd.DataFrame


@dataclass
class Results:
    """What the notebook plots: the 2-layer model, the 1-layer and fixed-offset controls, the ablation model (``spare``:
    the 2-layer model with ``spare_heads`` heads, or ``two`` itself), the fixed evaluation batches, the transition
    steps of the repeated-copy loss / max induction score / max previous-token score, the final head tables (of
    ``two`` and of ``spare``) and the ablations of each, and the Reddy runs (``reddy[group] = [(setting,
    history)]``) with the jump; ``draws``: the main model's further draws (``main_draws`` - 1 of them, draw k at
    config seed + 1000 k), each analysed as ``two`` is."""

    two: CopyRun
    one: CopyRun
    shortcut: CopyRun
    spare: CopyRun
    eval_set: EvalSet
    transitions: dict[str, dict[float, float]]
    heads: pd.DataFrame
    spare_heads: pd.DataFrame
    ablation: pd.DataFrame
    spare_ablation: pd.DataFrame
    reddy: dict[str, list[tuple[ReddySetting, History]]]
    jump: dict[str, Any]
    draws: list[MainModel] = field(default_factory=list)


def copy_run(cfg: Config, n_layers: int, run: Run) -> CopyRun:
    """The ``n_layers`` copy-task model, trained once per (copy-task config, source) and cached."""

    def fit() -> dict[str, Any]:
        model, history, ckpts = train_copy(cfg, n_layers, run.device)
        return {
            "state": {k: v.cpu() for k, v in model.state_dict().items()},
            "history": history.to_dict(),
            "checkpoints": ckpts,
        }

    stored = run.cached(f"induction-copy-{n_layers}l", fit, key=cfg.copy_fields())
    model = Transformer(cfg.model_config(n_layers)).to(run.device)
    model.load_state_dict(stored["state"])
    return CopyRun(model.eval(), History.from_dict(stored["history"]), stored["checkpoints"], cfg, n_layers)


def reddy_run(cfg: Config, s: ReddySetting, run: Run) -> History:
    """:func:`train_reddy`'s history, cached per (Reddy config fields, setting, source)."""
    key = {"cfg": cfg.reddy_fields(), "setting": s.__dict__}
    return History.from_dict(
        run.cached(f"induction-reddy-{s.tag}", lambda: train_reddy(cfg, s, run.device).to_dict(), key=key)
    )


def copy_models(cfg: Config) -> dict[str, tuple[Config, int]]:
    """The copy-task models ``compute`` trains, by role: (config, layers). The 1-layer control trains
    ``one_layer_steps`` (0: the 2-layer model's steps); the main model's further draws are ``two.k``
    (``cfg.draw_config(k)``, k < ``main_draws``); the ablation model only where ``spare_heads`` and
    ``spare_steps`` are both set (spare_steps = 0 at quick: its two rows are not evaluated, measures.py)."""
    models = {
        "two": (cfg, 2),
        **{f"two.{k}": (cfg.draw_config(k), 2) for k in range(1, cfg.main_draws)},
        "one": (cfg.replace(steps=cfg.one_layer_steps) if cfg.one_layer_steps else cfg, 1),
        "shortcut": (shortcut_config(cfg), 2),
    }
    if cfg.spare_heads and cfg.spare_steps:
        models["spare"] = (cfg.spare_config(), 2)
    return models


def ablation_model(cfg: Config, run: Run, first: CopyRun, probe: Tensor) -> tuple[CopyRun, pd.DataFrame]:
    """The ablation model and its head table: its first draw (``first``, ``cfg.spare_config()``), or, where its
    layer 1 has no induction head (score > ``ind_threshold`` on ``probe``), the first of up to ``spare_redraws``
    re-draws (``cfg.spare_config(k)``: seed + 1000 k) that has one; the last draw where none has. The selection reads
    only the head scores -- the premise of the ablation argument -- never an ablation's outcome."""
    model = first
    for draw in range(cfg.spare_redraws + 1):
        if draw:
            model = copy_run(cfg.spare_config(draw), 2, run)
        heads = head_table(model, probe, cfg.probe_len)
        if (heads[heads.layer == model.n_layers - 1].induction > cfg.ind_threshold).any():
            break
    return model, heads


def _copy_job(run: Run, cfg: Config, n_layers: int) -> None:
    """A worker's job: one copy-task model into the cache, by :func:`copy_run` (the call ``compute`` makes)."""
    copy_run(cfg, n_layers, run)


def _reddy_job(run: Run, cfg: Config, s: ReddySetting) -> None:
    """A worker's job: one Reddy run into the cache, by :func:`reddy_run` (the call ``compute`` makes)."""
    reddy_run(cfg, s, run)


def prefill(cfg: Config, run: Run) -> int:
    """Train ``compute``'s independent runs (the copy models and the Reddy runs) in worker processes, longest first,
    so that ``compute`` reads them from the cache (:func:`phenomena.workers.prefill`: nothing happens with one
    worker, off the CPU or without a cache). Each run seeds itself (``train_copy``, ``train_reddy``), so a run
    trained in a worker is the run ``compute`` would train. Returns the number of workers used."""
    jobs: list[tuple[float, workers.Job]] = [
        (c.steps * n, (_copy_job, (c, n))) for c, n in copy_models(cfg).values()
    ]
    jobs += [(s.steps, (_reddy_job, (cfg, s))) for settings in reddy_settings(cfg).values() for s in settings]
    # longest first, by a rough cost: one thread takes ~20 ms per copy step and layer and ~20 ms per Reddy step
    jobs.sort(key=lambda job: -job[0])
    return workers.prefill(run, [job for _, job in jobs])


def windowed(ev: pd.DataFrame, cfg: Config) -> pd.DataFrame:
    """The evaluations at steps <= ``cfg.transition_window`` (all of them where it is 0 or past the last step)."""
    return ev[ev["step"] <= cfg.transition_window] if cfg.transition_window else ev


def analyse_main(cfg: Config, two: CopyRun) -> MainModel:
    """The analysis of one draw of the main model (``cfg``: the draw's config): its evaluation batches, transition
    steps, head table and ablations."""
    eval_set = EvalSet.make(cfg)
    # the transition's shape (its t10 / t50 / t90 and their start and end levels) is read on the evaluations of the
    # first ``transition_window`` steps: training on past the phase change (the full tier) lets the copy loss and
    # the ICL score settle without the slow drift after the jump stretching the measured transition
    ev = windowed(two.evals(), cfg)
    steps = ev["step"].to_numpy()
    # the phase change is timed on the copy gain (first-copy minus repeated-copy loss on the probe): with bigram
    # data the repeated copy's own loss also falls in the bigram stage, which is not the phase change (issue 21)
    ev = ev.assign(probe_copy_gain=ev["probe_loss_first"] - ev["probe_loss_rep"])
    transitions = {
        name: transition_steps(steps, ev[col], LEVELS)
        for name, col in (
            ("loss", "probe_copy_gain"),
            ("induction", "probe_induction_max"),
            ("prev_token", "probe_prev_token_max"),
            ("icl_score", "icl_score"),
        )
    }
    # the first fall (bigram stage) is timed to the fresh-token loss's minimum: it rises again when the induction
    # heads mispredict chance repeats of a fresh token (the bump), so its final value is not where the fall ended
    fresh = ev["data_loss_fresh"]
    transitions["fresh_loss"] = transition_steps(steps, fresh, LEVELS, end=float(fresh.min()))
    heads = head_table(two, eval_set.probe, cfg.probe_len)
    ablation = ablations(two, eval_set.probe, cfg.probe_len, seed=cfg.seed)
    return MainModel(two, eval_set, transitions, heads, ablation)


def compute(cfg: Config, run: Run) -> Results:
    """Train (cached) and analyse everything the notebook shows."""
    models = {role: copy_run(c, n, run) for role, (c, n) in copy_models(cfg).items()}
    main = analyse_main(cfg, models["two"])
    draws = [analyse_main(cfg.draw_config(k), models[f"two.{k}"]) for k in range(1, cfg.main_draws)]
    if "spare" in models:
        spare, spare_heads = ablation_model(cfg, run, models["spare"], main.eval_set.probe)
        spare_ablation = ablations(spare, main.eval_set.probe, cfg.probe_len, seed=cfg.seed)
    else:  # the main model is the ablation model
        spare, spare_heads, spare_ablation = main.two, main.heads, main.ablation
    reddy = {
        group: [(s, reddy_run(cfg, s, run)) for s in settings]
        for group, settings in reddy_settings(cfg).items()
    }
    # rd_steps = 0 (quick): no jump run, nothing to time
    jump = reddy_jump(reddy["jump"][0][1], cfg.rd_eval_burstiness / cfg.rd_pairs) if reddy["jump"] else {}
    return Results(
        main.two,
        models["one"],
        models["shortcut"],
        spare,
        main.eval_set,
        main.transitions,
        main.heads,
        spare_heads,
        main.ablation,
        spare_ablation,
        reddy,
        jump,
        draws,
    )
