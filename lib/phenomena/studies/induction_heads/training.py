"""Training the copy-task models: a 2-layer attention-only transformer, the 1-layer control and the fixed-offset
(positional shortcut) control, with their histories and checkpoints; and the analyses of a trained model that need
it whole (the head table and the ablations)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from phenomena.studies.induction_heads.config import Config
from phenomena.studies.induction_heads.copy_task import EvalSet, bigram_table, copy_blocks
from phenomena.studies.induction_heads.scores import evaluate_copy, probe_metrics, token_losses
from phenomena.train import History, train
from phenomena.transformer import Transformer, sinusoidal_positions


def initial_model(cfg: Config, n_layers: int, device: torch.device) -> Transformer:
    """The untrained ``n_layers`` copy-task model: the shared transformer's init, with the learned positions set to
    ``pos_init`` x a sinusoidal table when ``pos_init`` > 0 (see the config field)."""
    model = Transformer(cfg.model_config(n_layers))
    if cfg.pos_init:
        with torch.no_grad():
            model.pos_embed.copy_(cfg.pos_init * sinusoidal_positions(cfg.seq_len, cfg.d_model))
    return model.to(device)


def train_copy(
    cfg: Config, n_layers: int, device: torch.device, *, progress: bool = True
) -> tuple[Transformer, History, list[tuple[int, dict[str, Tensor]]]]:
    """Train a ``n_layers`` attention-only model on fresh :func:`copy_blocks` data. Returns the model, its history
    (``eval_every`` rows of :func:`evaluate_copy`) and checkpoints [(step, state_dict)] every ``checkpoint_every``."""
    torch.manual_seed(cfg.seed)
    model = initial_model(cfg, n_layers, device)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    ev = EvalSet.make(cfg)
    table = bigram_table(cfg)
    checkpoints: list[tuple[int, dict[str, Tensor]]] = []

    def loss_fn(m: nn.Module, step: int) -> Tensor:
        x = copy_blocks(
            cfg.batch_size,
            cfg.seq_len,
            cfg.vocab_size,
            cfg.segment_min,
            cfg.segment_max,
            cfg.gap_max,
            gen,
            table,
        ).tokens.to(device)
        return token_losses(m(x), x).mean()

    def evaluate(m: nn.Module, step: int) -> dict[str, float]:
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            checkpoints.append((step, {k: v.detach().cpu().clone() for k, v in m.state_dict().items()}))
        return evaluate_copy(m, ev, cfg)  # type: ignore[arg-type]

    history = train(
        model,
        loss_fn,
        steps=cfg.steps,
        lr=cfg.lr,
        warmup_steps=cfg.warmup_steps,
        optimizer="adamw",
        weight_decay=cfg.weight_decay,
        grad_clip=cfg.grad_clip,
        evaluate=evaluate,
        eval_every=cfg.eval_every,
        progress=progress,
        desc=f"{n_layers}-layer copy",
        precision=cfg.precision,
    )
    return model, history, checkpoints


@dataclass
class CopyRun:
    """A trained copy-task model with its history and checkpoints (see :func:`get_copy_run`)."""

    model: Transformer
    history: History
    checkpoints: list[tuple[int, dict[str, Tensor]]]
    cfg: Config
    n_layers: int

    def evals(self) -> pd.DataFrame:
        return self.history.eval_frame()

    def at(self, index: int) -> Transformer:
        """A copy of the model at checkpoint ``index`` (on the CPU, eval mode)."""
        m = Transformer(self.cfg.model_config(self.n_layers))
        m.load_state_dict(self.checkpoints[index][1])
        return m.eval()


def shortcut_config(cfg: Config) -> Config:
    """The fixed-offset control: every segment has length ``segment_max`` and is copied right after itself
    (``gap_max = 0``), so a fixed positional rule predicts every copy. Trained for a quarter of the steps: its loss is
    flat from ~600 steps (seed 5: 0.586 / 0.571 / 0.566 of ln V at 400 / 1,000 / 2,000 steps, induction score 0.02
    throughout)."""
    return cfg.replace(segment_min=cfg.segment_max, gap_max=0, steps=max(1, cfg.steps // 4))


def head_table(run: CopyRun, probe: Tensor, half: int) -> pd.DataFrame:
    """One row per head: induction and previous-token scores on ``probe`` (final model)."""
    m = probe_metrics(run.model, probe, half)
    rows = []
    for layer in range(run.n_layers):
        for head in range(run.cfg.n_heads):
            rows.append(
                {
                    "layer": layer,
                    "head": head,
                    "induction": float(m["induction"][layer, head]),
                    "prev_token": float(m["prev_token"][layer, head]),
                }
            )
    return pd.DataFrame(rows)


def ablations(run: CopyRun, probe: Tensor, half: int, seed: int = 0) -> pd.DataFrame:
    """Zero heads (``head_mask``) and measure the repeated-copy loss and induction score on ``probe``.

    Rows (``kind``): ``none``; ``top_induction`` (last layer); ``top_prev_token`` (layer 0); ``random`` (a seeded
    head among the others); ``all_induction`` (every last-layer head above the induction threshold);
    ``matched_non_induction`` (as many last-layer heads *below* the threshold, the lowest-scoring ones: the same
    number of heads removed from the same layer, so a difference is specific to induction heads; absent when the
    layer has too few non-induction heads); ``other_layer_heads`` (every last-layer head below the threshold, where
    there are induction heads and at least one other: the specificity row compares the two per zeroed head);
    ``matched_prev_token`` (the layer-0 head with the second-highest
    previous-token score: one head of the same layer as the top previous-token head); ``idle`` (every head scoring
    < 0.2 on both scores). ``layer_heads`` is the number of heads in the last layer, so a reader can see when "all
    induction heads" is the whole layer."""
    cfg, model = run.cfg, run.model
    heads = head_table(run, probe, half)
    L, H = run.n_layers, cfg.n_heads
    last = heads[heads.layer == L - 1]
    top_ind = last.loc[last.induction.idxmax()]
    first = heads[heads.layer == 0].sort_values("prev_token", ascending=False)
    top_prev = first.iloc[0]
    others = heads.drop(index=[int(top_ind.name), int(top_prev.name)])
    rng = np.random.default_rng(seed)
    inductive = last[last.induction > cfg.ind_threshold]
    non_inductive = last[last.induction <= cfg.ind_threshold].sort_values("induction")
    idle = heads[(heads.induction < 0.2) & (heads.prev_token < 0.2)]

    def pairs(rows: pd.DataFrame) -> list[tuple[int, int]]:
        return [(int(r.layer), int(r.head)) for r in rows.itertuples()]

    def name(r: Any) -> str:
        return f"L{int(r['layer'])}H{int(r['head'])}"

    groups = [
        ("none", "none", []),
        ("top_induction", f"top induction head {name(top_ind)}", pairs(heads.loc[[top_ind.name]])),
        ("top_prev_token", f"top previous-token head {name(top_prev)}", pairs(heads.loc[[top_prev.name]])),
    ]
    if len(others):
        rand = others.iloc[[int(rng.integers(len(others)))]]
        groups.append(("random", f"random other head {name(rand.iloc[0])}", pairs(rand)))
    if len(inductive):
        label = f"all {len(inductive)} of {len(last)} layer-{L - 1} induction heads (score > {cfg.ind_threshold:g})"
        groups.append(("all_induction", label, pairs(inductive)))
    if len(inductive) and len(non_inductive) >= len(inductive):
        matched = non_inductive.iloc[: len(inductive)]
        groups.append(
            ("matched_non_induction", f"{len(matched)} layer-{L - 1} non-induction heads", pairs(matched))
        )
    if len(inductive) and len(non_inductive):
        label = f"all {len(non_inductive)} other layer-{L - 1} heads"
        groups.append(("other_layer_heads", label, pairs(non_inductive)))
    if len(first) > 1:
        runner_up = first.iloc[[1]]
        groups.append(
            ("matched_prev_token", f"runner-up layer-0 head {name(runner_up.iloc[0])}", pairs(runner_up))
        )
    if len(idle):
        groups.append(("idle", f"all {len(idle)} heads scoring < 0.2 on both", pairs(idle)))
    rows = []
    device = next(model.parameters()).device
    for kind, label, zeroed in groups:
        mask = torch.ones(L, H, device=device)
        for layer, head in zeroed:
            mask[layer, head] = 0.0
        m = probe_metrics(model, probe, half, head_mask=mask)
        rows.append(
            {
                "kind": kind,
                "ablation": label,
                "heads": len(zeroed),
                "layer_heads": len(last),
                "loss_rep": m["loss_rep"],
                "induction_max": float(m["induction"][-1].max()),
            }
        )
    df = pd.DataFrame(rows)
    df["delta_loss"] = df["loss_rep"] - df["loss_rep"].iloc[0]
    return df
