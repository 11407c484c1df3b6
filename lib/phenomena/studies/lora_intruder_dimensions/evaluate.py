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
from phenomena.studies.lora_intruder_dimensions.model import Base, autocast, embed, set_weights


class Evaluator:
    """One working copy of the encoder into which any run's weights are loaded for evaluation.

    ``accuracy`` is the target-task test accuracy with a run's head. The forgetting probe measures the encoder's
    pre-training skill, sentence retrieval: each probe sentence must retrieve its own word-dropped copy among the
    copies of all ``n_probe`` sentences (cosine similarity). ``infonce`` is the mean cross-entropy of that
    retrieval at temperature ``probe_temperature``; ``top1`` its accuracy; ``drift`` the mean 1 - cos between the
    embeddings of the fine-tuned and the base encoder. Forgetting = infonce - the base model's infonce."""

    def __init__(self, base: Base, cfg: Config, device: torch.device) -> None:
        self.base, self.cfg, self.device = base, cfg, device
        self.encoder = copy.deepcopy(base.encoder).to(device).eval()
        sentences = probe_sentences(cfg.n_probe, cfg.seed + 7)
        rng = np.random.default_rng(cfg.seed + 8)
        copies = [drop_words(s, cfg.probe_drop, rng) for s in sentences]
        self.probe = encode(base.tokenizer, sentences + copies, max(cfg.max_length, 32))
        self.encoded: dict[str, Encoded] = {}
        self.set(base.W0, base.b0)
        self.base_embeddings = self._embed_all(self.probe)

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
            with autocast(self.device, self.cfg.bf16):
                out[torch.as_tensor(sel)] = embed(self.encoder, ids, mask).float().cpu()
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
    def forgetting(self) -> dict[str, float]:
        emb = self._embed_all(self.probe)
        n = len(emb) // 2
        z = F.normalize(emb, dim=-1)
        logits = z[:n] @ z[n:].T / self.cfg.probe_temperature
        target = torch.arange(n)
        drift = 1 - F.cosine_similarity(emb, self.base_embeddings, dim=-1)
        return {
            "infonce": float(F.cross_entropy(logits, target)),
            "top1": float((logits.argmax(1) == target).float().mean()),
            "drift": float(drift.mean()),
        }

    def evaluate(
        self,
        weights: dict[str, Tensor],
        biases: dict[str, Tensor] | None,
        tasks: dict[str, tuple[TextTask, dict[str, Tensor]]],
    ) -> dict[str, float]:
        """Load ``weights``/``biases``; return {acc_<key>: accuracy for each (task, head)} + forgetting metrics."""
        self.set(weights, biases)
        out = {f"acc_{k}": self.accuracy(t, h) for k, (t, h) in tasks.items()}
        out.update(self.forgetting())
        self.set(self.base.W0, self.base.b0)
        return out
