"""Scores read off a model (Elhage et al. 2021; Olsson et al. 2022), batched over heads and positions.

- **Induction (prefix-matching) score** of a head, on probes [x, x] with x a random sequence of P tokens: the mean
  attention from each position i in the second copy, P <= i < 2P, to position i - P + 1 (the token after the
  previous occurrence of token i). TransformerLens / ARENA call a head an induction head above 0.3-0.4.
- **Previous-token score**: the mean attention from position i to i - 1 (i >= 1).
- **ICL score** (Olsson et al.): loss at a late token minus loss at an early token; here the mean loss over the last
  ``seq_len // 8`` target positions minus that over the first ``seq_len // 8`` of the training distribution (the
  first eighth never holds a copy; with the bigram table its tokens are predictable without copying). The loss of
  the fresh (non-copied) and the copied targets are recorded apart: the fresh tokens' fall is the bigram stage.
- **Ablations**: zeroing heads' outputs (the transformer's ``head_mask``) and measuring the repeated-copy loss.
- **Transition steps**: when a curve completes 10 / 50 / 90% of its change (the phase change's window).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from phenomena.studies.induction_heads.config import Config
from phenomena.studies.induction_heads.copy_task import EvalSet, bigram_table, repeated_probe
from phenomena.transformer import Transformer


def stripe_score(pattern: Tensor, offset: int, start: int) -> Tensor:
    """Mean attention on the stripe j = i - offset over query rows i >= start, per head.

    pattern: (B, H, T, T) -> (H,). Previous-token score: offset 1, start 1. Induction score on [x(P), x(P)]:
    offset P - 1, start P."""
    T = pattern.shape[-1]
    if not 0 <= offset <= start < T:
        raise ValueError(f"need 0 <= offset={offset} <= start={start} < T={T}")
    diag = pattern.diagonal(offset=-offset, dim1=-2, dim2=-1)  # (B, H, T - offset): rows i = offset..T-1
    return diag[..., start - offset :].mean(dim=(0, -1))


def induction_scores(patterns: Sequence[Tensor], half: int, gap: int = 0) -> Tensor:
    """(n_layers, H) induction scores of every head on [x(half), filler(gap), x(half)] probes: attention from each
    position of the second copy to the token after its previous occurrence, ``half + gap - 1`` positions back."""
    return torch.stack([stripe_score(p, half + gap - 1, half + gap) for p in patterns])


def prev_token_scores(patterns: Sequence[Tensor]) -> Tensor:
    """(n_layers, H) previous-token scores of every head."""
    return torch.stack([stripe_score(p, 1, 1) for p in patterns])


def token_losses(logits: Tensor, tokens: Tensor) -> Tensor:
    """Per-token next-token cross-entropy (B, T - 1): entry t is the loss of predicting token t + 1."""
    return F.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:], reduction="none")


def probe_losses(losses: Tensor, half: int, gap: int = 0) -> tuple[float, float]:
    """(first-copy loss, repeated-copy loss) from per-token losses (B, 2 half + gap - 1) on [x, filler, x] probes.

    The first copy (targets 1..P-1) is unpredictable (~ln V); the repeated copy counts the targets after its first
    token, P+g+1..2P+g-1, that induction can predict (target P+g, x_0 again, cannot be predicted)."""
    return float(losses[:, : half - 1].mean()), float(losses[:, half + gap :].mean())


def clean_filler(tokens: Tensor, half: int, gap: int, vocab: int, gen: torch.Generator) -> Tensor:
    """``tokens`` ([x(half), filler(gap), x(half)] probes) with each filler token redrawn uniformly from the tokens
    that x does not hold, so that the first copy of x is the only earlier match of any token of the second."""
    out = tokens.clone()
    for b in range(out.shape[0]):
        allowed = torch.tensor(sorted(set(range(vocab)) - set(out[b, :half].tolist())))
        out[b, half : half + gap] = allowed[torch.randint(0, len(allowed), (gap,), generator=gen)]
    return out


@torch.no_grad()
def copy_loss_by_offset(
    model: Transformer,
    cfg: Config,
    half: int,
    gaps: Sequence[int],
    batch: int,
    gen: torch.Generator,
    clean: bool = False,
) -> list[dict[str, float]]:
    """The repeated-copy loss / ln V of ``model`` at copy offsets ``half + g`` (g in ``gaps``), on probes [x(half),
    filler(g), x(half)] of the study's bigram chain (``repeated_probe``): one row per gap, ``{"offset", "loss"}``;
    with ``clean``, also ``"clean"``: the same probes with a filler that holds no token of x (:func:`clean_filler`),
    where the copy's source is the only earlier match. Draws per gap, in order: the probes, then the clean filler."""
    device = next(model.parameters()).device
    table, ln_v = bigram_table(cfg), float(np.log(cfg.vocab_size))

    def loss(tokens: Tensor, gap: int) -> float:
        tokens = tokens.to(device)
        return probe_losses(token_losses(model(tokens), tokens), half, gap)[1] / ln_v

    rows = []
    for gap in gaps:
        tokens = repeated_probe(batch, half, cfg.vocab_size, gen, gap=gap, table=table)
        row = {"offset": half + gap, "loss": loss(tokens, gap)}
        if clean:
            row["clean"] = loss(clean_filler(tokens, half, gap, cfg.vocab_size, gen), gap)
        rows.append(row)
    return rows


def icl_score(losses: Tensor) -> float:
    """Olsson's ICL score analogue: mean loss over the last T//8 targets minus the first T//8 targets."""
    w = max(1, (losses.shape[1] + 1) // 8)
    return float(losses[:, -w:].mean() - losses[:, :w].mean())


@torch.no_grad()
def probe_metrics(
    model: Transformer, tokens: Tensor, half: int, head_mask: Tensor | None = None, gap: int = 0
) -> dict[str, Any]:
    """Losses and per-head scores of ``model`` on [x(half), filler(gap), x(half)] probes ``tokens``."""
    device = next(model.parameters()).device
    logits, patterns = model(tokens.to(device), return_attention=True, head_mask=head_mask)
    first, rep = probe_losses(token_losses(logits, tokens.to(device)), half, gap)
    return {
        "loss_first": first,
        "loss_rep": rep,
        "induction": induction_scores(patterns, half, gap).cpu(),
        "prev_token": prev_token_scores(patterns).cpu(),
    }


def evaluate_copy(model: Transformer, ev: EvalSet, cfg: Config) -> dict[str, float]:
    """One row of the training history: probe losses, every head's scores, data loss and ICL score."""
    row: dict[str, float] = {}
    probes = (
        ("probe", ev.probe, cfg.probe_len, 0),
        ("seen", ev.seen, cfg.seen_len, 0),
        ("far", ev.far, cfg.far_len, cfg.far_gap),
    )
    for tag, tokens, half, gap in probes:
        m = probe_metrics(model, tokens, half, gap=gap)
        row[f"{tag}_loss_first"], row[f"{tag}_loss_rep"] = m["loss_first"], m["loss_rep"]
        for name in ("induction", "prev_token"):
            for (layer, head), v in np.ndenumerate(m[name].numpy()):
                row[f"{tag}_{name}_L{layer}H{head}"] = float(v)
        row[f"{tag}_induction_max"] = float(m["induction"][-1].max())
        row[f"{tag}_prev_token_max"] = float(m["prev_token"][0].max())
    device = next(model.parameters()).device
    with torch.no_grad():
        losses = token_losses(model(ev.data.to(device)), ev.data.to(device))
    row["data_loss"] = float(losses.mean())
    copied = ev.data_copied[:, 1:].to(device)  # target t + 1 is a copy
    row["data_loss_fresh"] = float(losses[~copied].mean())
    row["data_loss_copied"] = float(losses[copied].mean())
    row["icl_score"] = icl_score(losses)
    return row


def transition_steps(
    steps: Sequence[float],
    values: Sequence[float],
    levels: Sequence[float] = (0.1, 0.5, 0.9),
    *,
    start: float | None = None,
    end: float | None = None,
) -> dict[float, float]:
    """Steps at which ``values`` first completes each fraction in ``levels`` of its change from ``start`` (default:
    the first value) to ``end`` (default: the mean of the last 3 values), linearly interpolated between evaluations.
    Works for rising and falling curves; NaN for a level never reached."""
    s, v = np.asarray(steps, float), np.asarray(values, float)
    a = v[0] if start is None else start
    b = v[-3:].mean() if end is None else end
    if a == b:
        return dict.fromkeys(levels, float("nan"))
    progress = (v - a) / (b - a)
    out = {}
    for lvl in levels:
        hit = np.nonzero(progress >= lvl)[0]
        if not len(hit):
            out[lvl] = float("nan")
            continue
        i = hit[0]
        if i == 0:
            out[lvl] = float(s[0])
            continue
        p0, p1 = progress[i - 1], progress[i]
        out[lvl] = float(s[i - 1] + (lvl - p0) / (p1 - p0) * (s[i] - s[i - 1]))
    return out


def per_position_loss(model: Transformer, tokens: Tensor) -> np.ndarray:
    """Mean next-token loss at each target position 1..T-1 of ``tokens`` (B, T)."""
    device = next(model.parameters()).device
    with torch.no_grad():
        return token_losses(model(tokens.to(device)), tokens.to(device)).mean(0).cpu().numpy()


def attention_of(model: Transformer, tokens: Tensor) -> list[Tensor]:
    """Attention patterns (one (B, H, T, T) tensor per layer) of ``model`` on ``tokens``, on the CPU."""
    device = next(model.parameters()).device
    with torch.no_grad():
        _, patterns = model(tokens.to(device), return_attention=True)
    return [p.cpu() for p in patterns]
