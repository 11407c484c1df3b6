"""Null and oracle controls of the induction-heads study (see :mod:`phenomena.controls`), through the study's own
``compute`` -> ``summarize`` -> ``claims``.

Both go through :func:`experiment.compute` unchanged (transition steps, head table, ablations, Reddy jump); only what
its ``run.cached`` calls return differs:

- null: the real training code run for two optimiser steps (inside the lr warmup: learning switched off), for the
  2-layer model, both controls and every Reddy run;
- oracle: models known to have each property, evaluated by the study's own evaluation code:
  * the 2-layer model is a hand-built K-composition circuit (a previous-token head in layer 0, an induction head in
    layer 1, the other heads of each layer zero: uniform attention, no output), and its "training history" is a
    trajectory of checkpoints whose attention sharpness and output scale follow a sharp logistic step (1% of the
    steps wide) from zero (uniform attention, uniform logits: the loss is ln V) to the full circuit, each evaluated
    by :func:`scores.evaluate_copy` -- so the heads, the loss drop and the ICL score change together, abruptly;
    its direct path learns the bigram table (log P(next | token)) in an earlier logistic step (``BIGRAM_CENTRE``),
    so the fresh-token loss falls first, without any head;
  * the main model's further draws (``main_draws``: two here) are the same circuit and trajectory (a hand-built
    model has one draw; each draw's head scores and ablations are read on its own probes);
  * the 1-layer control is a 1-layer model with zero weights (it cannot copy); the fixed-offset control is a
    hand-built positional rule (attend ``segment_max - 1`` back at the positions where the fixed layout puts a copy);
  * Reddy's runs are ideal learners evaluated on the study's own evaluation sequences (:func:`reddy.reddy_sequences`
    with ``train_reddy``'s seeds): the in-context learner reads the label of the context item nearest the query, the
    in-weights learner the label of the nearest training-class mean. The B = min run, the K = min run and the
    eps = min run are the in-weights learner, every other run the in-context learner (Reddy's findings, planted), and the abrupt-jump run switches from guessing
    among the in-context labels to the in-context learner in a sharp logistic step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from phenomena.studies.induction_heads.config import Config
from phenomena.studies.induction_heads.copy_task import EvalSet, bigram_table
from phenomena.studies.induction_heads.experiment import compute
from phenomena.studies.induction_heads.reddy import (
    Classes,
    ReddyBatch,
    ReddySetting,
    reddy_sequences,
    reddy_settings,
)
from phenomena.studies.induction_heads.scores import evaluate_copy
from phenomena.studies.induction_heads.summary import summarize
from phenomena.studies.induction_heads.training import shortcut_config
from phenomena.train import History
from phenomena.transformer import Transformer

NULL = (
    "the real training code stopped after 2 optimiser steps (inside the warmup) for every model and Reddy run"
)
ORACLE = (
    "a hand-built K-composition circuit whose checkpoints sharpen in a logistic step, after its direct path learns "
    "the bigram table in an earlier one (evaluated by the study's evaluate_copy); a zero-weight 1-layer model; a "
    "hand-built positional shortcut; Reddy's ideal in-context (nearest context item) and in-weights (nearest "
    "training class) learners on the study's evaluation sequences"
)
ORACLE_CANNOT: dict[str, str] = {}

#: the oracle's trajectories: length, where the step is and how wide (logistic scale); checkpoints every EVERY
#: steps, and every FINE steps within +-10 WIDTH of the step (where the curves move)
STEPS, EVERY, FINE, CENTRE, WIDTH = 3000, 250, 25, 1500, 15.0
#: the centre of the earlier logistic step in which the circuit's direct path learns the bigram table
BIGRAM_CENTRE = 500
RD_STEPS, RD_EVERY, RD_CENTRE = 3500, 100, 2300
#: the circuit's output logit scale: confident on a real copy (on the probes chance repeats of a token within the
#: segment, not the scale, limit the loss: ~0.2 ln V from 7 up), not ruinous on a chance match (V = 64)
OUT_SCALE = 9.0


def config() -> Config:
    """The full tier's task (V = 64, T = 64) at the hand-built circuit's width (3V + T = 256 residual dimensions, at
    least max(T, V + 1) per head: d_model = 288 with 4 heads, not 8, whose 36-wide heads cannot hold the circuit),
    two training steps for the null, smaller evaluation sets (16 sequences per probe, 256 per Reddy set)."""
    return Config.from_preset(
        "full",
        d_model=288,
        n_heads=4,
        steps=2,
        main_draws=2,  # the median and mean rows read two draws of the main model here (full: 7)
        one_layer_steps=0,  # 0: the 2-layer model's steps (the full tier trains its 1-layer control 2,000)
        spare_heads=4,  # the ablation model: the oracle answers with the same circuit, the null trains 3 steps
        spare_d_model=288,
        spare_steps=3,
        eval_every=1,
        checkpoint_every=1,
        eval_batch=16,
        rd_steps=2,
        rd_sweep_steps=2,
        rd_eps_steps=0,
        rd_eval_every=1,
        rd_eval_size=256,
    )


class _Run:
    """What :func:`experiment.compute` needs of a :class:`phenomena.run.Run`: a device and ``cached``, here
    answering from ``answer(name, key, compute)`` instead of the disk cache."""

    device = torch.device("cpu")

    def __init__(self, answer: Callable[[str, Any, Callable[[], Any]], Any]) -> None:
        self.answer = answer

    def cached(self, name: str, fn: Callable[[], Any], *, key: Any = None) -> Any:
        return self.answer(name, key, fn)


def null(cfg: Config) -> dict[str, Any]:
    """Metrics of the study's own training code stopped after ``cfg.steps`` (2) steps."""
    torch.set_num_threads(1)
    return summarize(cfg, compute(cfg, _Run(lambda name, key, fn: fn())))


# ---------------------------------------------------------------------------------------------------------------
# the oracle's copy models


def _step(t: float, centre: float) -> float:
    return float(1.0 / (1.0 + math.exp(-(t - centre) / WIDTH)))


def _blank(cfg: Config, n_layers: int) -> Transformer:
    model = Transformer(cfg.model_config(n_layers))
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    return model.eval()


def induction_circuit(
    cfg: Config, alpha: float = 1.0, sharp: float = 30.0, gamma: float = 0.0
) -> Transformer:
    """Elhage et al.'s K-composition by hand in head 0 of each layer (the other heads zero), at strength ``alpha``
    (0: uniform attention and zero output, loss ln V; 1: the circuit). Residual layout: [token one-hot A |
    previous-token one-hot B | positions C (queries and keys only) | output U]. Layer 0 head 0 attends i -> i - 1 and
    copies the token into B; layer 1 head 0's query (the token, A) matches keys reading B, so it attends to the
    position after the previous occurrence of the current token and writes that token into U, which the unembedding
    reads; a key flag keeps it off position 0 (when layer 1 sees positions, ``pos_layers`` >= 2). With ``gamma`` > 0
    and a bigram table (``bigram_conc`` > 0), the direct path (unembedding of A) adds gamma log P(next | token): at
    gamma = 1 a perfect bigram predictor without any head."""
    V, T, D, dh = cfg.vocab_size, cfg.seq_len, cfg.d_model, cfg.d_model // cfg.n_heads
    A, Bs, C, U = 0, V, 2 * V, 2 * V + T
    if 3 * V + T > D or dh < max(T, V + 1):
        raise ValueError(f"d_model={D} is too narrow for the hand-built circuit (V={V}, T={T})")
    model = _blank(cfg, 2)
    beta = alpha * sharp * math.sqrt(dh)
    v, t = torch.arange(V), torch.arange(T)
    with torch.no_grad():
        model.embed.weight[v, A + v] = 1.0
        model.pos_embed[t, C + t] = 1.0
        w0, w1 = model.blocks[0].attn.qkv.weight, model.blocks[1].attn.qkv.weight
        w0[torch.arange(T - 1), C + torch.arange(1, T)] = beta  # q_i = beta e_{i-1}
        w0[D + t, C + t] = 1.0  # k_j = e_j
        w0[2 * D + v, A + v] = 1.0  # v_j = token j
        model.blocks[0].attn.out.weight[Bs + v, v] = 1.0
        w1[v, A + v] = beta  # q_i = beta token i
        w1[D + v, Bs + v] = 1.0  # k_j = previous token of j
        model.blocks[1].attn.qkv.bias[V] = beta  # a constant query component ...
        w1[D + V, C] = -1.0  # ... against a key flag at position 0 only
        w1[2 * D + v, A + v] = 1.0
        model.blocks[1].attn.out.weight[U + v, v] = alpha * OUT_SCALE
        model.unembed.weight[v, U + v] = 1.0
        table = bigram_table(cfg)
        if gamma and table is not None:
            model.unembed.weight[:, A : A + V] = gamma * table.clamp_min(1e-4).log().T
    return model


def positional_shortcut(cfg: Config, sharp: float = 30.0) -> Transformer:
    """The fixed-offset control's rule by hand (``cfg`` is :func:`training.shortcut_config`'s): every block is
    [x(L), x(L)] with L = segment_max, so at a position i whose next token is a copy, layer 0 head 0 attends to
    i - (L - 1) and writes that token to the output; elsewhere its query is zero (uniform attention, a near-uniform
    prediction). No head matches tokens: a positional shortcut, no induction head."""
    V, T, D, L = cfg.vocab_size, cfg.seq_len, cfg.d_model, cfg.segment_max
    dh = D // cfg.n_heads
    A, C, U = 0, 2 * V, 2 * V + T
    model = _blank(cfg, 2)
    v, t = torch.arange(V), torch.arange(T)
    with torch.no_grad():
        model.embed.weight[v, A + v] = 1.0
        model.pos_embed[t, C + t] = 1.0
        w0 = model.blocks[0].attn.qkv.weight
        for i in range(L - 1, T):
            if (i + 1) % (2 * L) >= L:  # the next token is a copy of the one L positions back
                w0[i - (L - 1), C + i] = sharp * math.sqrt(dh)
        w0[D + t, C + t] = 1.0
        w0[2 * D + v, A + v] = 1.0
        model.blocks[0].attn.out.weight[U + v, v] = OUT_SCALE
        model.unembed.weight[v, U + v] = 1.0
    return model.eval()


def _copy_store(cfg: Config, models: Callable[[float], Transformer], steps: list[int]) -> dict[str, Any]:
    """What :func:`experiment.copy_run` caches: the final state, the history of ``evaluate_copy`` at every step
    (``models(step)`` is the checkpoint there) and the checkpoints."""
    ev = EvalSet.make(cfg)
    hist, ckpts = History(), []
    for s in steps:
        m = models(s)
        hist.evals.append({"step": s, **evaluate_copy(m, ev, cfg)})
        ckpts.append((s, {k: x.clone() for k, x in m.state_dict().items()}))
    return {"state": ckpts[-1][1], "history": hist.to_dict(), "checkpoints": [ckpts[0], ckpts[-1]]}


# ---------------------------------------------------------------------------------------------------------------
# the oracle's Reddy learners


def in_context(batch: ReddyBatch, D: int) -> Tensor:
    """The label of the context item nearest the query (an ideal in-context learner)."""
    items, query = batch.inputs[:, 0:-1:2, :D], batch.inputs[:, -1, :D]
    nearest = ((items - query[:, None]) ** 2).sum(-1).argmin(1)
    return batch.context_labels.gather(1, nearest[:, None])[:, 0]


def in_weights(batch: ReddyBatch, classes: Classes, D: int) -> Tensor:
    """The label of the training class whose mean is nearest the query (an ideal in-weights learner)."""
    query = batch.inputs[:, -1, :D]
    return classes.labels[torch.cdist(query, classes.means).argmin(1)]


def reddy_oracle_history(cfg: Config, s: ReddySetting, kind: str) -> History:
    """``train_reddy``'s evaluation sets (same seeds) scored by an ideal learner at every evaluation step:
    ``kind`` 'icl' (in-context learner), 'iwl' (in-weights learner) or 'jump' (guessing among the labels in context,
    then the in-context learner, switching per sequence with probability following a sharp logistic step)."""
    N, L, D = cfg.rd_pairs, cfg.rd_labels, cfg.rd_dim
    classes = Classes.make(max(s.K, L), L, D, torch.Generator().manual_seed(cfg.seed + 7))
    ge = torch.Generator().manual_seed(cfg.seed + 9)
    icl_set = reddy_sequences(
        cfg.rd_eval_size, N, cfg.rd_eval_burstiness, 1.0, s.eps, classes.label_vectors, ge
    )
    iwl_set = (
        reddy_sequences(cfg.rd_eval_size, N, s.B, 0.0, s.eps, classes.label_vectors, ge, classes)
        if s.K
        else None
    )

    def acc(pred: Tensor, batch: ReddyBatch) -> float:
        return float((pred == batch.target).float().mean())

    rng = np.random.default_rng(cfg.seed)
    steps = range(0, RD_STEPS + 1, RD_EVERY) if kind == "jump" else (0, 1, 2, 3)
    hist = History()
    for step in steps:
        if kind == "jump":
            guess = icl_set.context_labels[
                torch.arange(cfg.rd_eval_size), rng.integers(0, N, cfg.rd_eval_size)
            ]
            use = torch.from_numpy(rng.random(cfg.rd_eval_size) < _step(step, RD_CENTRE))
            pred = torch.where(use, in_context(icl_set, D), guess)
            iwl = float("nan")
        elif kind == "icl":
            pred = in_context(icl_set, D)
            iwl = acc(in_context(iwl_set, D), iwl_set) if iwl_set is not None else float("nan")
        else:
            pred = in_weights(icl_set, classes, D)
            iwl = acc(in_weights(iwl_set, classes, D), iwl_set) if iwl_set is not None else float("nan")
        hist.evals.append({"step": float(step), "icl_acc": acc(pred, icl_set), "iwl_acc": iwl})
    return hist


def oracle(cfg: Config) -> dict[str, Any]:
    """Metrics of the models known to have each property (see the module docstring), through ``compute``."""
    torch.set_num_threads(1)
    short = shortcut_config(cfg)
    steps = sorted(
        {
            *range(0, STEPS + 1, EVERY),
            *(
                t
                for c in (BIGRAM_CENTRE, CENTRE)
                for t in range(c - int(10 * WIDTH), c + int(10 * WIDTH) + 1, FINE)
            ),
        }
    )
    two = _copy_store(
        cfg, lambda s: induction_circuit(cfg, _step(s, CENTRE), gamma=_step(s, BIGRAM_CENTRE)), steps
    )
    one = _copy_store(cfg, lambda s: _blank(cfg, 1), [0, STEPS])
    shortcut = _copy_store(short, lambda s: positional_shortcut(short), [0, STEPS])
    # the planted Reddy findings: the least bursty run, the fewest classes and the least noise learn in weights,
    # every other run in context (a setting in two sweeps takes the first kind given)
    kinds: dict[str, str] = {}
    for group, var in (("burstiness", "B"), ("classes", "K"), ("eps", "eps")):
        settings = reddy_settings(cfg)[group]
        low = min((getattr(x, var) for x in settings), default=None)
        for x in settings:
            few = len({getattr(y, var) for y in settings}) > 1 and getattr(x, var) == low
            kinds.setdefault(x.tag, "iwl" if few else "icl")

    def answer(name: str, key: Any, fn: Callable[[], Any]) -> Any:
        if name == "induction-copy-1l":
            return one
        if (
            name == "induction-copy-2l"
        ):  # the main model, each of its draws and the ablation model: the circuit
            return shortcut if key == short.copy_fields() else two
        s = ReddySetting(**key["setting"])
        if (s.K, s.steps, s.lr) == (cfg.rd_jump_classes, cfg.rd_steps, cfg.rd_lr):
            kind = "jump"
        else:
            kind = kinds[s.tag]
        return reddy_oracle_history(cfg, s, kind).to_dict()

    return summarize(cfg, compute(cfg, _Run(answer)))
