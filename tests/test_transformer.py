from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from phenomena.transformer import Transformer, TransformerConfig


def tiny(**kw: object) -> Transformer:
    torch.manual_seed(0)
    return Transformer(
        TransformerConfig(**{"n_layers": 2, "n_heads": 2, "d_model": 16, "vocab_size": 11, **kw})
    )


def test_shapes_and_patterns_are_causal_distributions() -> None:
    model = tiny()
    ids = torch.randint(0, 11, (3, 7))
    out, patterns = model(ids, return_attention=True)
    assert out.shape == (3, 7, 11) and len(patterns) == 2
    for p in patterns:
        assert p.shape == (3, 2, 7, 7)
        torch.testing.assert_close(p.sum(-1), torch.ones(3, 2, 7))
        assert torch.all(p.triu(1) == 0)


def test_fast_path_equals_explicit_attention() -> None:
    model = tiny(pos="shortformer")
    ids = torch.randint(0, 11, (2, 9))
    torch.testing.assert_close(model(ids), model(ids, return_attention=True)[0], atol=1e-5, rtol=1e-5)


def test_continuous_input_and_head_mask() -> None:
    torch.manual_seed(0)
    model = Transformer(TransformerConfig(n_layers=1, n_heads=2, d_model=8, d_in=3, d_out=1, attn_only=True))
    x = torch.randn(4, 5, 3)
    assert model(x).shape == (4, 5, 1)
    torch.testing.assert_close(model(x), model(x, head_mask=torch.ones(1, 2)))
    off = model(x, head_mask=torch.zeros(1, 2))
    # with every head zeroed, the output depends on each position alone: changing x_0 leaves later positions
    x2 = x.clone()
    x2[:, 0] += 1.0
    torch.testing.assert_close(off[:, 1:], model(x2, head_mask=torch.zeros(1, 2))[:, 1:])


def test_shortformer_positions_never_enter_the_residual_stream() -> None:
    model = tiny(pos="shortformer", attn_only=True, n_layers=1)
    ids = torch.randint(0, 11, (2, 6))
    with torch.no_grad():
        model.blocks[0].attn.qkv.weight[:32] = 0.0  # no query/key weights: positions can only act through Q/K
        base = model(ids)
        model.pos_embed.normal_(std=5.0)
    torch.testing.assert_close(model(ids), base)


def test_qk_pos_layers_limits_positions_to_the_first_layers() -> None:
    """With qk_pos_layers = 1, layer 1's attention is blind to positions: permuting the pos_embed rows changes
    layer 0's patterns but, with layer 0's heads zeroed, not layer 1's; with every layer (None) it does."""
    ids = torch.randint(0, 11, (2, 6))
    mask = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    for layers, changes in ((1, False), (None, True)):
        model = tiny(pos="shortformer", attn_only=True, qk_pos_layers=layers)
        _, before = model(ids, return_attention=True, head_mask=mask)
        with torch.no_grad():
            model.pos_embed.normal_(std=5.0)
        _, after = model(ids, return_attention=True, head_mask=mask)
        assert not torch.allclose(before[0], after[0])
        assert torch.allclose(before[1], after[1]) != changes


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"d_model": 10, "n_heads": 3}, "divisible"),
        ({"qk_pos_layers": -1}, "qk_pos_layers must be >= 0"),
        ({"vocab_size": None}, "exactly one"),
        ({"d_in": 3}, "exactly one"),
        ({"vocab_size": 1}, "vocab_size must be >= 2"),
        ({"pos": "rotary"}, "pos='rotary'"),
        ({"n_layers": 0}, "n_layers must be >= 1"),
    ],
)
def test_bad_configs(kw: dict[str, object], match: str) -> None:
    base = {"n_layers": 1, "n_heads": 2, "d_model": 8, "vocab_size": 5}
    with pytest.raises(ValueError, match=match):
        TransformerConfig(**{**base, **kw})


def test_too_long_input_is_refused() -> None:
    model = tiny(max_len=4)
    with pytest.raises(ValueError, match="exceeds max_len=4"):
        model(torch.zeros(1, 5, dtype=torch.long))


def test_matches_hugging_face_gpt2_with_the_same_weights() -> None:
    """Independent reference (as minGPT does): copy our weights into HF GPT2Model and compare outputs."""
    transformers = pytest.importorskip("transformers")
    cfg = TransformerConfig(n_layers=2, n_heads=4, d_model=32, d_in=5, d_out=3, max_len=12)
    torch.manual_seed(0)
    ours = Transformer(cfg).eval()
    hf_cfg = transformers.GPT2Config(
        vocab_size=1, n_positions=12, n_embd=32, n_layer=2, n_head=4, activation_function="gelu",
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, use_cache=False,
    )  # fmt: skip
    hf = transformers.GPT2Model(hf_cfg).eval()
    with torch.no_grad():
        hf.wpe.weight.copy_(ours.pos_embed)
        for blk, h in zip(ours.blocks, hf.h):
            pairs = [
                (h.ln_1, blk.ln1), (h.ln_2, blk.ln2), (h.attn.c_attn, blk.attn.qkv),
                (h.attn.c_proj, blk.attn.out), (h.mlp.c_fc, blk.mlp[0]), (h.mlp.c_proj, blk.mlp[2]),
            ]  # fmt: skip
            for dst, src in pairs:
                w = (
                    src.weight.T if not isinstance(src, nn.LayerNorm) else src.weight
                )  # HF Conv1D is (in, out)
                dst.weight.copy_(w)
                dst.bias.copy_(src.bias)
        hf.ln_f.weight.copy_(ours.ln_f.weight)
        hf.ln_f.bias.copy_(ours.ln_f.bias)
    x = torch.randn(3, 10, 5)
    with torch.no_grad():
        ref = ours.unembed(hf(inputs_embeds=ours.embed(x)).last_hidden_state)
        torch.testing.assert_close(ours(x), ref, atol=1e-5, rtol=1e-4)
    assert dataclasses.asdict(cfg)["d_out"] == 3
