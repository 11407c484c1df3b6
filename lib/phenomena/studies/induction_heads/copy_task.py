"""The copy task (Olsson et al. 2022) built so that neither position nor memorisation can solve it, and the probes.

Training data (:func:`copy_blocks`): fresh uniform tokens at every step, in which blocks ``[x(L), filler(g), x(L)]``
copy a random segment of random length L in [segment_min, segment_max] to a random later offset L + g,
g in [0, gap_max]. The probe [x(P), x(P)] with P = ``probe_len`` > ``segment_max`` is a segment length never seen in
training (TransformerLens / ARENA's probe).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from phenomena.studies.induction_heads.config import Config


@dataclass
class CopyBatch:
    """tokens: (B, T) ids; source: (B, T) the position each token was copied from (itself if fresh)."""

    tokens: Tensor
    source: Tensor

    @property
    def copied(self) -> Tensor:
        """(B, T) bool: the token repeats an earlier one by construction (predictable by induction from the
        second token of the copy on)."""
        return self.source < torch.arange(self.tokens.shape[1])


def copy_blocks(
    batch: int, seq_len: int, vocab: int, seg_min: int, seg_max: int, gap_max: int, gen: torch.Generator
) -> CopyBatch:
    """Fresh uniform tokens in which consecutive blocks ``[x(L), filler(g), x(L)]`` copy a random segment x of
    length L ~ U[seg_min, seg_max] to the random later offset L + g, g ~ U[0, gap_max] (the last block is cut at
    ``seq_len``). Vectorised over the batch; every random number comes from ``gen``."""
    n_blocks = seq_len // (2 * seg_min) + 1
    L = torch.randint(seg_min, seg_max + 1, (batch, n_blocks), generator=gen)
    g = torch.randint(0, gap_max + 1, (batch, n_blocks), generator=gen)
    size = 2 * L + g
    ends = size.cumsum(1)
    t = torch.arange(seq_len).expand(batch, seq_len).contiguous()
    block = torch.searchsorted(ends, t, right=True)  # (B, T) index of the block holding t
    offset = t - (ends - size).gather(1, block)
    Lb, gb = L.gather(1, block), g.gather(1, block)
    source = torch.where(offset < Lb + gb, t, t - Lb - gb)
    fresh = torch.randint(0, vocab, (batch, seq_len), generator=gen)
    return CopyBatch(fresh.gather(1, source), source)


def repeated_probe(batch: int, half: int, vocab: int, gen: torch.Generator, gap: int = 0) -> Tensor:
    """Olsson / TransformerLens probe [x, x] with x uniform random of length ``half`` (batch, 2 half); with
    ``gap`` > 0, [x, filler(gap), x] (batch, 2 half + gap): the copy sits ``half + gap`` positions after its source."""
    x = torch.randint(0, vocab, (batch, half), generator=gen)
    if not gap:
        return torch.cat([x, x], dim=1)
    filler = torch.randint(0, vocab, (batch, gap), generator=gen)
    return torch.cat([x, filler, x], dim=1)


@dataclass
class EvalSet:
    """The fixed evaluation batches: the headline probe (an unseen segment length), the seen-length probe,
    training-distribution data, and the far probe (a copy offset beyond every offset seen in training)."""

    probe: Tensor
    seen: Tensor
    data: Tensor
    far: Tensor

    @classmethod
    def make(cls, cfg: Config, seed_offset: int = 100) -> EvalSet:
        gen = torch.Generator().manual_seed(cfg.seed + seed_offset)
        probe = repeated_probe(cfg.eval_batch, cfg.probe_len, cfg.vocab_size, gen)
        seen = repeated_probe(cfg.eval_batch, cfg.seen_len, cfg.vocab_size, gen)
        data = copy_blocks(
            cfg.eval_batch, cfg.seq_len, cfg.vocab_size, cfg.segment_min, cfg.segment_max, cfg.gap_max, gen
        ).tokens
        far = repeated_probe(cfg.eval_batch, cfg.far_len, cfg.vocab_size, gen, gap=cfg.far_gap)
        return cls(probe, seen, data, far)
