"""One small, readable GPT-style transformer shared by the studies.

Pre-LayerNorm decoder blocks as in GPT-2 (Radford et al. 2019), written to be read next to Elhage et al. 2021,
"A Mathematical Framework for Transformer Circuits":

    x_0 = embed(input) [+ pos]                                   (batch, T, d_model)
    x_{l+1/2} = x_l + sum_h  head_mask[l, h] * A^{l,h} V^{l,h}   (attention, causal)
    x_{l+1}   = x_{l+1/2} + MLP(LN(x_{l+1/2}))                    (skipped when attn_only)
    out = unembed(LN(x_L))

Options: number of layers, heads and width; attention-only mode; LayerNorm on/off; the positional-embedding kind
(``learned``, ``sinusoidal``, ``none``, or ``shortformer`` -- learned positions added only to the query/key inputs,
never to the residual stream, Press et al. 2021; ``qk_pos_layers`` limits them to the first layers); token input (``vocab_size``) or continuous input (``d_in``, a
linear read-in). ``forward(..., return_attention=True)`` also returns every layer's attention pattern
``(batch, heads, T, T)``; ``head_mask`` (``(n_layers, n_heads)``) scales each head's output, for ablations.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PosKind = Literal["learned", "sinusoidal", "shortformer", "none"]


@dataclass(frozen=True)
class TransformerConfig:
    """Architecture of :class:`Transformer`. Exactly one of ``vocab_size`` / ``d_in`` must be set."""

    n_layers: int = 2
    n_heads: int = 4
    d_model: int = 64
    d_mlp: int | None = None  # default 4 * d_model
    attn_only: bool = False
    layer_norm: bool = True
    pos: PosKind = "learned"
    max_len: int = 256
    vocab_size: int | None = None
    d_in: int | None = None
    d_out: int | None = None  # default vocab_size
    init_std: float = 0.02
    qk_pos_layers: int | None = None  # shortformer: the first this many layers get positions (None: all)

    def __post_init__(self) -> None:
        for name in ("n_layers", "n_heads", "d_model", "max_len"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} must be divisible by n_heads={self.n_heads}")
        if (self.vocab_size is None) == (self.d_in is None):
            raise ValueError("set exactly one of vocab_size (token input) or d_in (continuous input)")
        if self.vocab_size is not None and self.vocab_size < 2:
            raise ValueError(f"vocab_size must be >= 2, got {self.vocab_size}")
        if self.d_out is None and self.vocab_size is None:
            raise ValueError("d_out is required with continuous input (d_in)")
        if self.pos not in ("learned", "sinusoidal", "shortformer", "none"):
            raise ValueError(f"pos={self.pos!r}: expected learned, sinusoidal, shortformer or none")
        if self.qk_pos_layers is not None and self.qk_pos_layers < 0:
            raise ValueError(f"qk_pos_layers must be >= 0 or None, got {self.qk_pos_layers}")

    @property
    def d_head(self) -> int:
        return self.d_model // self.n_heads

    @property
    def out_dim(self) -> int:
        return self.d_out if self.d_out is not None else int(self.vocab_size)  # type: ignore[arg-type]


def sinusoidal_positions(max_len: int, d_model: int) -> Tensor:
    """The fixed sin/cos table of Vaswani et al. 2017: ``(max_len, d_model)``."""
    pos = torch.arange(max_len, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    table = torch.zeros(max_len, d_model)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: d_model // 2])
    return table


def causal_attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """softmax(q k^T / sqrt(d_head) + causal mask) v for q, k, v: (B, H, T, d_head), through SDPA.

    Under bf16 autocast on the CPU, SDPA runs in fp32 with autocast off: its bf16 backward (one tiny GEMM per
    batch x head) is many times slower at our shapes (issue #18, fwd+bwd on one thread of a Xeon with AMX, ICL's
    (64, 2, 22, 32): fp32 2.4 ms, bf16 20.6 ms, explicit softmax(QK^T)V 3.5 ms; on an AVX2 CPU, ICL 2.3 vs 6.1 ms
    and the copy task's (32, 4, 64, 16) 6.4 vs 22 ms). On CUDA, bf16 SDPA (flash attention) is the fast path and
    stays under autocast. The next linear layer casts the fp32 output back to bf16."""
    if q.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        with torch.autocast("cpu", enabled=False):
            return F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True)
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


class Attention(nn.Module):
    """Causal multi-head self-attention with optional per-head output scaling and pattern return."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.n_heads, self.d_head = cfg.n_heads, cfg.d_head
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)

    def forward(
        self,
        h: Tensor,
        qk_pos: Tensor | None = None,
        head_scale: Tensor | None = None,
        return_attention: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """h: (B, T, d_model); qk_pos: (T, d_model) added to the query/key inputs only; head_scale: (H,)."""
        B, T, D = h.shape
        qkv = self.qkv(h)
        if qk_pos is not None:  # shortformer: W_qk (h + p) = W_qk h + W_qk p
            # the same sum as cat([qkv[..., :2D] + extra, qkv[..., 2D:]]) but without slicing the (B, T, 3D)
            # activations, whose backward zero-fills and copies a full-size gradient per slice
            qkv = qkv + F.pad(qk_pos[:T] @ self.qkv.weight[: 2 * D].T, (0, D))
        q, k, v = qkv.view(B, T, 3, self.n_heads, self.d_head).permute(2, 0, 3, 1, 4)  # each (B, H, T, dh)
        pattern = None
        if return_attention:
            scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.d_head)
            causal = torch.ones(T, T, dtype=torch.bool, device=h.device).tril()
            pattern = scores.masked_fill(~causal, float("-inf")).softmax(dim=-1)  # (B, H, T, T)
            z = pattern @ v
        else:
            z = causal_attention(q, k, v)
        if head_scale is not None:
            z = z * head_scale.view(1, -1, 1, 1)
        return self.out(z.transpose(1, 2).reshape(B, T, D)), pattern


class Block(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        norm = (lambda: nn.LayerNorm(cfg.d_model)) if cfg.layer_norm else nn.Identity
        self.ln1 = norm()
        self.attn = Attention(cfg)
        self.mlp: nn.Module | None = None
        if not cfg.attn_only:
            d_mlp = cfg.d_mlp or 4 * cfg.d_model
            self.ln2 = norm()
            self.mlp = nn.Sequential(nn.Linear(cfg.d_model, d_mlp), nn.GELU(), nn.Linear(d_mlp, cfg.d_model))

    def forward(
        self, x: Tensor, qk_pos: Tensor | None, head_scale: Tensor | None, return_attention: bool
    ) -> tuple[Tensor, Tensor | None]:
        a, pattern = self.attn(self.ln1(x), qk_pos, head_scale, return_attention)
        x = x + a
        if self.mlp is not None:
            x = x + self.mlp(self.ln2(x))
        return x, pattern


class Transformer(nn.Module):
    """GPT-style decoder. ``forward(inputs)`` maps (B, T) token ids or (B, T, d_in) vectors to (B, T, out_dim)."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.vocab_size is not None:
            self.embed: nn.Module = nn.Embedding(cfg.vocab_size, cfg.d_model)
        else:
            self.embed = nn.Linear(int(cfg.d_in), cfg.d_model)  # type: ignore[arg-type]
        if cfg.pos in ("learned", "shortformer"):
            self.pos_embed = nn.Parameter(torch.zeros(cfg.max_len, cfg.d_model))
        elif cfg.pos == "sinusoidal":
            self.register_buffer(
                "pos_embed", sinusoidal_positions(cfg.max_len, cfg.d_model), persistent=False
            )
        else:
            self.pos_embed = None
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d_model) if cfg.layer_norm else nn.Identity()
        self.unembed = nn.Linear(cfg.d_model, cfg.out_dim)
        self.apply(self._init)
        for block in self.blocks:  # GPT-2: scale residual-writing projections by 1/sqrt(2 * n_layers)
            for p in (block.attn.out.weight, *([block.mlp[2].weight] if block.mlp is not None else [])):
                nn.init.normal_(p, std=cfg.init_std / math.sqrt(2 * cfg.n_layers))
        if isinstance(self.pos_embed, nn.Parameter):
            nn.init.normal_(self.pos_embed, std=cfg.init_std)

    def _init(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, std=self.cfg.init_std)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(
        self, inputs: Tensor, *, return_attention: bool = False, head_mask: Tensor | None = None
    ) -> Tensor | tuple[Tensor, list[Tensor]]:
        """inputs: (B, T) ids or (B, T, d_in); head_mask: (n_layers, n_heads) multipliers of head outputs.

        Returns (B, T, out_dim), and with ``return_attention`` also a list of n_layers patterns (B, H, T, T).
        """
        T = inputs.shape[1]
        if self.cfg.max_len < T:
            raise ValueError(f"sequence length {T} exceeds max_len={self.cfg.max_len}")
        x = self.embed(inputs)
        qk_pos = None
        if self.cfg.pos == "shortformer":
            qk_pos = self.pos_embed
        elif self.pos_embed is not None:
            x = x + self.pos_embed[:T]
        patterns: list[Tensor] = []
        n_pos = self.cfg.n_layers if self.cfg.qk_pos_layers is None else self.cfg.qk_pos_layers
        for layer, block in enumerate(self.blocks):
            scale = head_mask[layer] if head_mask is not None else None
            x, pattern = block(x, qk_pos if layer < n_pos else None, scale, return_attention)
            if pattern is not None:
                patterns.append(pattern)
        out = self.unembed(self.ln_f(x))
        return (out, patterns) if return_attention else out

    def describe(self) -> dict[str, object]:
        return {**asdict(self.cfg), "n_params": self.n_params}
