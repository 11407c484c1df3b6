"""The copy task (Olsson et al. 2022) built so that neither position nor memorisation can solve it, and the probes.

Training data (:func:`copy_blocks`): fresh uniform tokens at every step, in which blocks ``[x(L), filler(g), x(L)]``
copy a random segment of random length L in [segment_min, segment_max] to a random later offset L + g,
g in [0, gap_max]. The probe [x(P), x(P)] with P = ``probe_len`` > ``segment_max`` is a segment length never seen in
training (TransformerLens / ARENA's probe).

Fresh tokens (the first occurrences, the filler, and every probe's random content) follow a fixed random bigram table
(:func:`bigram_table`, rows ~ Dirichlet(``bigram_conc``)) when ``bigram_conc`` > 0: structure a model can learn
without induction (the direct path alone), so the loss falls in two stages and the in-context score is not the loss
drop by construction (departure from a copy-only task; Olsson's natural text has both).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
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


def bigram_table(cfg: Config) -> Tensor | None:
    """(V, V) next-token probabilities, row a ~ Dirichlet(bigram_conc), fixed by the seed; None when
    ``bigram_conc`` = 0 (uniform tokens)."""
    if not cfg.bigram_conc:
        return None
    rng = np.random.default_rng(cfg.seed + 3)
    return torch.from_numpy(rng.dirichlet([cfg.bigram_conc] * cfg.vocab_size, size=cfg.vocab_size)).float()


def bigram_entropy(table: Tensor) -> float:
    """Entropy rate (nats) of the chain at its uniform start, the loss of a perfect bigram predictor: the mean row
    entropy weighted by the stationary distribution."""
    p = torch.full((table.shape[0],), 1.0 / table.shape[0], dtype=torch.float64)
    t = table.double()
    for _ in range(200):
        p = p @ t
    rows = -(t * t.clamp_min(1e-30).log()).sum(1)
    return float(p @ rows)


def fresh_tokens(
    batch: int, length: int, vocab: int, gen: torch.Generator, table: Tensor | None = None
) -> Tensor:
    """(batch, length) tokens: uniform, or a Markov chain with transition matrix ``table`` (V, V) from a uniform
    first token."""
    if table is None:
        return torch.randint(0, vocab, (batch, length), generator=gen)
    x = torch.empty(length, batch, dtype=torch.long)
    x[0] = torch.randint(0, vocab, (batch,), generator=gen)
    u = torch.rand(length, batch, 1, generator=gen)
    cdf = table.cumsum(1)
    for t in range(1, length):  # inverse-CDF sampling of row x[t - 1]
        x[t] = torch.searchsorted(cdf[x[t - 1]], u[t])[:, 0].clamp(max=vocab - 1)
    return x.T.contiguous()


def copy_blocks(
    batch: int,
    seq_len: int,
    vocab: int,
    seg_min: int,
    seg_max: int,
    gap_max: int,
    gen: torch.Generator,
    table: Tensor | None = None,
) -> CopyBatch:
    """Fresh uniform tokens in which consecutive blocks ``[x(L), filler(g), x(L)]`` copy a random segment x of
    length L ~ U[seg_min, seg_max] to the random later offset L + g, g ~ U[0, gap_max] (the last block is cut at
    ``seq_len``). Fresh tokens follow ``table`` (:func:`fresh_tokens`). Every random number comes from ``gen``."""
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
    fresh = fresh_tokens(batch, seq_len, vocab, gen, table)
    return CopyBatch(fresh.gather(1, source), source)


def repeated_probe(
    batch: int, half: int, vocab: int, gen: torch.Generator, gap: int = 0, table: Tensor | None = None
) -> Tensor:
    """Olsson / TransformerLens probe [x, x] with x uniform random of length ``half`` (batch, 2 half); with
    ``gap`` > 0, [x, filler(gap), x] (batch, 2 half + gap): the copy sits ``half + gap`` positions after its source.
    With ``table``, x and the filler are one bigram chain (so are the training data's fresh tokens)."""
    if not gap:
        x = fresh_tokens(batch, half, vocab, gen, table)
        return torch.cat([x, x], dim=1)
    xf = fresh_tokens(batch, half + gap, vocab, gen, table)
    return torch.cat([xf, xf[:, :half]], dim=1)


@dataclass
class EvalSet:
    """The fixed evaluation batches: the headline probe (an unseen segment length), the seen-length probe,
    training-distribution data, and the far probe (a copy offset beyond every offset seen in training)."""

    probe: Tensor
    seen: Tensor
    data: Tensor
    far: Tensor
    data_copied: Tensor  # (B, T) bool: the data token is a copy (CopyBatch.copied)

    @classmethod
    def make(cls, cfg: Config, seed_offset: int = 100) -> EvalSet:
        gen = torch.Generator().manual_seed(cfg.seed + seed_offset)
        table = bigram_table(cfg)
        probe = repeated_probe(cfg.eval_batch, cfg.probe_len, cfg.vocab_size, gen, table=table)
        seen = repeated_probe(cfg.eval_batch, cfg.seen_len, cfg.vocab_size, gen, table=table)
        data = copy_blocks(
            cfg.eval_batch,
            cfg.seq_len,
            cfg.vocab_size,
            cfg.segment_min,
            cfg.segment_max,
            cfg.gap_max,
            gen,
            table,
        )
        far = repeated_probe(cfg.eval_batch, cfg.far_len, cfg.vocab_size, gen, gap=cfg.far_gap, table=table)
        return cls(probe, seen, data.tokens, far, data.copied)
