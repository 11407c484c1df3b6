"""Evaluation of any run's weights: target accuracy with its head, and the forgetting probe."""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from phenomena.studies.lora_intruder_dimensions.config import Config
from phenomena.studies.lora_intruder_dimensions.data import (
    Encoded,
    TextTask,
    drop_words,
    encode,
    probe_sentences,
)
from phenomena.studies.lora_intruder_dimensions.model import Base, embed, set_weights


class Evaluator:
    """One working copy of the encoder into which any run's weights are loaded for evaluation.

    ``accuracy`` is the target-task test accuracy with a run's head. **Forgetting** is measured as the paper does --
    the rise of the model's pre-training loss on text unlike the task -- with the loss MiniLM was trained with:
    contrastive (InfoNCE) retrieval. Each probe sentence must retrieve its own word-dropped copy among the copies of
    all ``n_probe`` sentences (cosine similarity, temperature ``probe_temperature``). The main probe is ``news``
    (general English news prose); ``pydocs`` (Python reference prose, the task's own domain) is the in-domain
    contrast. Per probe: ``infonce`` (the loss), ``top1`` (retrieval accuracy) and ``drift`` (mean 1 - cos between
    the fine-tuned and the base encoder's embeddings: representational change, not forgetting). Keys of the main
    probe are bare (``infonce``), the others suffixed (``infonce_pydocs``)."""

    def __init__(self, base: Base, cfg: Config, device: torch.device) -> None:
        self.base, self.cfg, self.device = base, cfg, device
        self.encoder = copy.deepcopy(base.encoder).to(device).eval()
        self.probes: dict[str, Encoded] = {}
        for i, name in enumerate(("news", "pydocs")):
            sentences = probe_sentences(name, cfg.n_probe, cfg.seed + 7 + 10 * i)
            rng = np.random.default_rng(cfg.seed + 8 + 10 * i)
            copies = [drop_words(s, cfg.probe_drop, rng) for s in sentences]
            self.probes[name] = encode(base.tokenizer, sentences + copies, cfg.probe_length)
        self.encoded: dict[str, Encoded] = {}
        self.set(base.W0, base.b0)
        self.base_embeddings = {name: self._embed_all(enc) for name, enc in self.probes.items()}
        self.base_metrics = self.forgetting()

    def set(self, weights: dict[str, Tensor], biases: dict[str, Tensor] | None = None) -> None:
        set_weights(self.encoder, weights, biases)

    @torch.no_grad()
    def _embed_all(self, enc: Encoded, idx: np.ndarray | None = None, chunk: int = 128) -> Tensor:
        idx = np.arange(len(enc.ids)) if idx is None else idx
        order = np.argsort(enc.lengths[idx].numpy(), kind="stable")  # length-sorted chunks: little padding
        out = torch.empty(len(idx), self.base.hidden)
        for i in range(0, len(idx), chunk):
            sel = order[i : i + chunk]
            ids, mask = enc.batch(idx[sel], self.device)
            out[torch.as_tensor(sel)] = embed(
                self.encoder, ids, mask
            ).cpu()  # fp32, whatever the training precision
        return out

    def encoded_task(self, task: TextTask) -> Encoded:
        if task.name not in self.encoded:
            self.encoded[task.name] = encode(self.base.tokenizer, task.texts, self.cfg.max_length)
        return self.encoded[task.name]

    @torch.no_grad()
    def accuracy(self, task: TextTask, head: dict[str, Tensor]) -> float:
        emb = self._embed_all(self.encoded_task(task), task.test_idx)
        pred = (emb @ head["weight"].T + head["bias"]).argmax(1).numpy()
        return float((pred == task.labels[task.test_idx]).mean())

    @torch.no_grad()
    def forgetting(self, probes: tuple[str, ...] = ("news", "pydocs")) -> dict[str, float]:
        """Retrieval loss, accuracy and drift of the currently loaded weights on the given probes."""
        out = {}
        for name in probes:
            enc = self.probes[name]
            emb = self._embed_all(enc)
            n = len(emb) // 2
            z = F.normalize(emb, dim=-1)
            logits = z[:n] @ z[n:].T / self.cfg.probe_temperature
            target = torch.arange(n)
            drift = 1 - F.cosine_similarity(emb, self.base_embeddings[name], dim=-1)
            suffix = "" if name == "news" else f"_{name}"
            out |= {
                f"infonce{suffix}": float(F.cross_entropy(logits, target)),
                f"top1{suffix}": float((logits.argmax(1) == target).float().mean()),
                f"drift{suffix}": float(drift.mean()),
            }
        return out

    def evaluate(
        self,
        weights: dict[str, Tensor],
        biases: dict[str, Tensor] | None,
        tasks: dict[str, tuple[TextTask, dict[str, Tensor]]],
        probes: tuple[str, ...] = ("news", "pydocs"),
    ) -> dict[str, float]:
        """Load ``weights``/``biases``; return {acc_<key>: accuracy for each (task, head)} + the forgetting metrics
        of ``probes``."""
        self.set(weights, biases)
        out = {f"acc_{k}": self.accuracy(t, h) for k, (t, h) in tasks.items()}
        out.update(self.forgetting(probes))
        self.set(self.base.W0, self.base.b0)
        return out
