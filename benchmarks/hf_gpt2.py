"""Garg et al.'s architecture for the throughput comparison: a linear read-in, Hugging Face's ``GPT2Model`` (no
dropout) and a linear read-out, the same size as our transformer."""

from __future__ import annotations

from torch import Tensor, nn
from transformers import GPT2Config, GPT2Model

from phenomena.transformer import TransformerConfig


class HFGPT2(nn.Module):
    """(B, T, d_in) tokens -> (B, T, out_dim), through Hugging Face's GPT-2 backbone."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        hf_cfg = GPT2Config(
            vocab_size=1,
            bos_token_id=None,
            eos_token_id=None,
            n_positions=cfg.max_len,
            n_embd=cfg.d_model,
            n_layer=cfg.n_layers,
            n_head=cfg.n_heads,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            use_cache=False,
        )
        self.read_in = nn.Linear(int(cfg.d_in), cfg.d_model)  # type: ignore[arg-type]
        self.backbone = GPT2Model(hf_cfg)
        self.read_out = nn.Linear(cfg.d_model, cfg.out_dim)

    def forward(self, tokens: Tensor) -> Tensor:
        return self.read_out(self.backbone(inputs_embeds=self.read_in(tokens)).last_hidden_state)
