"""Reddy's in-context classification task (Reddy 2023, "The mechanistic basis of data dependence and abrupt learning
in an in-context classification task").

Items are Gaussian clusters x = (mu_k + eps eta) / sqrt(1 + eps^2) in D dimensions, class k has label k mod L; a
sequence holds N item-label pairs and a query item; in a bursty sequence (probability p_B) the N items come from N / B
classes, B copies each, and the query's class is among them. ICL is measured on novel classes, in-weights learning
(IWL) on training classes in non-bursty sequences. Network: two single-head attention-only layers (the shared
transformer) and an MLP classifier on the query token.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from phenomena.studies.induction_heads.config import Config
from phenomena.train import History, train
from phenomena.transformer import Transformer, TransformerConfig


@dataclass(frozen=True)
class ReddySetting:
    """One training run of the classification task: burstiness B, classes K (0 = fresh every sequence), noise
    eps, fraction of bursty sequences p_B, steps and lr."""

    B: int
    K: int
    eps: float
    steps: int
    lr: float
    p_B: float = 1.0

    @property
    def tag(self) -> str:
        return f"B{self.B}-K{self.K or 'inf'}-eps{self.eps:g}-pB{self.p_B:g}"


@dataclass
class Classes:
    """Class means (K, D), label vectors (L, D) and the label of each class (K,) = k mod L."""

    means: Tensor
    label_vectors: Tensor
    labels: Tensor

    @classmethod
    def make(cls, K: int, L: int, D: int, gen: torch.Generator) -> Classes:
        if K % L:
            raise ValueError(f"K={K} must be a multiple of L={L}")
        return cls(
            torch.randn(K, D, generator=gen) / math.sqrt(D),
            torch.randn(L, D, generator=gen) / math.sqrt(D),
            torch.arange(K) % L,
        )


@dataclass
class ReddyBatch:
    """inputs: (B, 2N+1, D + 2N+1) items, labels, query, each with a one-hot position; target: (B,) query label;
    context_labels: (B, N) label of each context pair."""

    inputs: Tensor
    target: Tensor
    context_labels: Tensor


def reddy_sequences(
    batch: int,
    n_pairs: int,
    bursty: int,
    p_bursty: float,
    eps: float,
    label_vectors: Tensor,
    gen: torch.Generator,
    classes: Classes | None = None,
) -> ReddyBatch:
    """Reddy's sequences. Bursty (probability ``p_bursty``): N / B classes drawn, each appearing B times in random
    order, the query drawn from them. Otherwise N classes and the query class drawn independently (only in-weights
    knowledge helps). ``classes=None`` draws fresh class means and random labels for every sequence (novel classes:
    K = infinity), else classes come from ``classes`` (uniformly). Items are (mu + eps eta / sqrt(D)) / sqrt(1+eps^2)."""
    L, D = label_vectors.shape
    n_cls = n_pairs // bursty
    order = torch.argsort(torch.rand(batch, n_pairs, generator=gen), dim=1)
    slot = torch.arange(n_cls).repeat(bursty)[order]  # (B, N) which of the N/B classes each pair shows
    q_slot = torch.randint(0, n_cls, (batch, 1), generator=gen)
    if classes is None:
        means = torch.randn(batch, n_cls, D, generator=gen) / math.sqrt(D)
        labs = torch.randint(0, L, (batch, n_cls), generator=gen)
        ctx_means = means.gather(1, slot.unsqueeze(-1).expand(-1, -1, D))
        ctx_labels = labs.gather(1, slot)
        q_mean = means.gather(1, q_slot.unsqueeze(-1).expand(-1, -1, D))[:, 0]
        target = labs.gather(1, q_slot)[:, 0]
    else:
        K = classes.means.shape[0]
        chosen = torch.randint(0, K, (batch, n_cls), generator=gen)
        ctx = chosen.gather(1, slot)
        q = chosen.gather(1, q_slot)[:, 0]
        iid = torch.rand(batch, generator=gen) >= p_bursty
        ctx = torch.where(iid[:, None], torch.randint(0, K, (batch, n_pairs), generator=gen), ctx)
        q = torch.where(iid, torch.randint(0, K, (batch,), generator=gen), q)
        ctx_means, ctx_labels = classes.means[ctx], classes.labels[ctx]
        q_mean, target = classes.means[q], classes.labels[q]
    scale = 1 / math.sqrt(1 + eps**2)
    items = scale * (ctx_means + eps * torch.randn(batch, n_pairs, D, generator=gen) / math.sqrt(D))
    query = scale * (q_mean + eps * torch.randn(batch, D, generator=gen) / math.sqrt(D))
    T = 2 * n_pairs + 1
    content = torch.zeros(batch, T, D)
    content[:, 0:-1:2] = items
    content[:, 1:-1:2] = label_vectors[ctx_labels]
    content[:, -1] = query
    positions = torch.eye(T).expand(batch, T, T)
    return ReddyBatch(torch.cat([content, positions], dim=-1), target, ctx_labels)


class ReddyNet(nn.Module):
    """Two single-head attention-only layers (the shared transformer, positions given as one-hot inputs) and a
    2-hidden-layer ReLU MLP classifier on the query token."""

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        T = 2 * cfg.rd_pairs + 1
        self.tf = Transformer(
            TransformerConfig(
                n_layers=2,
                n_heads=1,
                d_model=cfg.rd_d_model,
                d_in=cfg.rd_dim + T,
                d_out=cfg.rd_hidden,
                attn_only=True,
                layer_norm=False,
                pos="none",
                max_len=T,
                init_std=cfg.rd_init_std,
            )
        )
        h = cfg.rd_hidden
        self.classifier = nn.Sequential(nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, cfg.rd_labels))

    def forward(self, x: Tensor, *, return_attention: bool = False) -> Tensor | tuple[Tensor, list[Tensor]]:
        """x: (B, 2N+1, D+2N+1) -> label logits (B, L) [and the two attention patterns (B, 1, T, T)]."""
        if return_attention:
            h, patterns = self.tf(x, return_attention=True)
            return self.classifier(h[:, -1]), patterns
        return self.classifier(self.tf(x)[:, -1])


def reddy_progress(patterns: Sequence[Tensor], batch: ReddyBatch) -> dict[str, float]:
    """Reddy's attention progress measures: layer 0, each label token's attention to its own item (the
    previous-token step); layer 1, the query's total attention to the label tokens carrying its label."""
    a0, a1 = patterns[0][:, 0], patterns[1][:, 0]
    n = batch.context_labels.shape[1]
    lab = torch.arange(1, 2 * n, 2, device=a0.device)
    item_to_label = a0[:, lab, lab - 1].mean()
    match = (batch.context_labels == batch.target[:, None]).to(a1.dtype)
    query_to_label = (a1[:, -1, lab] * match).sum(1).mean()
    return {"item_to_label_attn": float(item_to_label), "query_to_label_attn": float(query_to_label)}


def train_reddy(cfg: Config, s: ReddySetting, device: torch.device, *, progress: bool = True) -> History:
    """Train :class:`ReddyNet` under setting ``s``; evaluate every ``rd_eval_every`` steps the ICL accuracy on novel
    classes (bursty with ``rd_eval_burstiness``), the IWL accuracy on training classes (non-bursty; NaN for K = inf),
    the progress measures and the loss."""
    torch.manual_seed(cfg.seed)
    net = ReddyNet(cfg).to(device)
    gen_cls = torch.Generator().manual_seed(cfg.seed + 7)
    classes = Classes.make(max(s.K, cfg.rd_labels), cfg.rd_labels, cfg.rd_dim, gen_cls)
    train_classes = classes if s.K else None
    gen = torch.Generator().manual_seed(cfg.seed + 8)
    ge = torch.Generator().manual_seed(cfg.seed + 9)
    N, lv = cfg.rd_pairs, classes.label_vectors
    icl_set = reddy_sequences(cfg.rd_eval_size, N, cfg.rd_eval_burstiness, 1.0, s.eps, lv, ge)
    iwl_set = reddy_sequences(cfg.rd_eval_size, N, s.B, 0.0, s.eps, lv, ge, classes) if s.K else None

    def loss_fn(m: nn.Module, step: int) -> Tensor:
        b = reddy_sequences(cfg.rd_batch, N, s.B, s.p_B, s.eps, lv, gen, train_classes)
        return F.cross_entropy(m(b.inputs.to(device)), b.target.to(device))

    def evaluate(m: nn.Module, step: int) -> dict[str, float]:
        logits, patterns = m(icl_set.inputs.to(device), return_attention=True)
        row = {
            "icl_acc": float((logits.argmax(-1).cpu() == icl_set.target).float().mean()),
            "icl_loss": float(F.cross_entropy(logits.cpu(), icl_set.target)),
            **reddy_progress([p.cpu() for p in patterns], icl_set),
        }
        row["iwl_acc"] = (
            float((m(iwl_set.inputs.to(device)).argmax(-1).cpu() == iwl_set.target).float().mean())
            if iwl_set is not None
            else float("nan")
        )
        return row

    return train(
        net,
        loss_fn,
        steps=s.steps,
        lr=s.lr,
        optimizer="adam",
        evaluate=evaluate,
        eval_every=cfg.rd_eval_every,
        progress=progress,
        desc=f"Reddy {s.tag}",
        precision=cfg.precision,
    )


def reddy_settings(cfg: Config) -> dict[str, list[ReddySetting]]:
    """The runs of the go-beyond section: the abrupt-jump run, the burstiness comparison and the K and eps sweeps
    (B = rd_sweep_bursty; the K sweep at eps = rd_eps, the eps sweep at K = rd_eps_classes or rd_classes, for
    rd_eps_steps or rd_sweep_steps steps). A group
    is empty where the configuration switches it off (rd_steps = 0; no B, K or eps values)."""
    sweep = {"steps": cfg.rd_sweep_steps, "lr": cfg.rd_sweep_lr}
    jump = [ReddySetting(cfg.rd_bursty, cfg.rd_jump_classes, cfg.rd_eps, cfg.rd_steps, cfg.rd_lr)]
    return {
        "jump": jump if cfg.rd_steps else [],
        "burstiness": [ReddySetting(b, cfg.rd_classes, cfg.rd_eps, **sweep) for b in cfg.rd_burstiness],
        "classes": [ReddySetting(cfg.rd_sweep_bursty, k, cfg.rd_eps, **sweep) for k in cfg.rd_sweep_classes],
        "eps": [
            ReddySetting(
                cfg.rd_sweep_bursty,
                cfg.rd_eps_classes or cfg.rd_classes,
                e,
                cfg.rd_eps_steps or cfg.rd_sweep_steps,
                cfg.rd_sweep_lr,
            )
            for e in cfg.rd_sweep_eps
        ],
    }


def reddy_jump(history: History, chance_in_context: float) -> dict[str, float]:
    """Where and how fast the ICL accuracy jumps: ``t_lo``, the last time the accuracy is at or below ``lo`` (midway
    between the in-context guessing level and 1, i.e. still on the slow phase's side) before it first reaches 0.9
    at ``t_hi``, and the jump width relative to the time before it, (t_hi - t_lo) / t_hi. Both crossings are
    interpolated linearly between evaluations; a curve that starts above ``lo`` has t_lo = its first step."""
    ev = history.eval_frame()
    s, acc = ev["step"].to_numpy(float), ev["icl_acc"].to_numpy(float)
    lo = (chance_in_context + 1) / 2
    hi_idx = np.nonzero(acc >= 0.9)[0]
    if not len(hi_idx):  # never reached 0.9: no jump; width_over_time takes its largest possible value, 1
        return {"t_lo": float(s[-1]), "t_hi": float(s[-1]), "width_over_time": 1.0, "lo": lo, "jumped": False}

    def crossing(level: float, i: int) -> float:
        """The step where the segment from evaluation i to i + 1 crosses ``level``."""
        return float(s[i] + (level - acc[i]) / (acc[i + 1] - acc[i]) * (s[i + 1] - s[i]))

    first_hi = int(hi_idx[0])
    t_hi = float(s[0]) if first_hi == 0 else crossing(0.9, first_hi - 1)
    below = np.nonzero(acc[:first_hi] <= lo)[0]
    t_lo = float(s[0]) if not len(below) else crossing(lo, int(below[-1]))
    return {
        "t_lo": t_lo,
        "t_hi": t_hi,
        "width_over_time": (t_hi - t_lo) / t_hi if t_hi > 0 else 1.0,
        "lo": lo,
        "jumped": True,
    }
