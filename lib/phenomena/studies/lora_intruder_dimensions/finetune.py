"""Fine-tuning: full fine-tuning of the adapted matrices, LoRA through peft, or the head alone, all with the same
seed, data order, step budget, schedule and head learning rate."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from torch import Tensor, nn

from phenomena.precision import effective_precision
from phenomena.studies.lora_intruder_dimensions.config import Config, RunSpec
from phenomena.studies.lora_intruder_dimensions.data import Encoded, TextTask
from phenomena.studies.lora_intruder_dimensions.model import (
    Base,
    Classifier,
    ScaledHead,
    embed,
    set_weights,
)
from phenomena.train import Hook, train


def lora_delta(A: Tensor, B: Tensor, scale: float) -> Tensor:
    """The LoRA update s * B @ A: B (out, r), A (r, in) -> (out, in)."""
    return scale * (B @ A)


@dataclass
class FineTune:
    """The result of one run, all on the CPU: the spec, the update of each adapted matrix relative to the
    weights it started from (LoRA: factors A, B and scale; full FT: dense deltas of weights and biases), the
    classifier head, the training history and its wall time."""

    spec: RunSpec
    task: str
    lora: dict[str, dict[str, Any]] | None
    delta: dict[str, Tensor] | None
    bias_delta: dict[str, Tensor]
    head: dict[str, Tensor]
    history: dict[str, Any]
    train_s: float
    start: dict[str, Tensor] | None = None  # the weights it started from, if not W0 (sequential runs)
    start_bias: dict[str, Tensor] | None = None
    snapshots: list[tuple[int, dict[str, dict[str, Any]]]] | None = None  # LoRA factors during training

    def weights_at(self, base: Base, i: int) -> dict[str, Tensor]:
        """The merged weights of snapshot ``i`` (a LoRA run trained with ``snapshot_every``)."""
        if not self.snapshots:
            raise ValueError(f"{self.spec.name} has no snapshots: fine-tune it with snapshot_every > 0")
        upd = {n: lora_delta(f["A"], f["B"], f["scale"]) for n, f in self.snapshots[i][1].items()}
        start = self.start or base.W0
        return {n: start[n] + upd[n] if n in upd else start[n] for n in base.modules}

    def update(self) -> dict[str, Tensor]:
        """dW of every adapted matrix relative to the weights this run started from."""
        if self.lora is not None:
            return {n: lora_delta(f["A"], f["B"], f["scale"]) for n, f in self.lora.items()}
        return dict(self.delta or {})

    def weights(self, base: Base) -> dict[str, Tensor]:
        """The merged fine-tuned weights W = start + dW of every adapted matrix."""
        start = self.start or base.W0
        upd = self.update()
        return {n: start[n] + upd[n] if n in upd else start[n] for n in base.modules}

    def biases(self, base: Base) -> dict[str, Tensor]:
        start = self.start_bias or base.b0
        return {n: b + self.bias_delta.get(n, 0) for n, b in start.items()}


def lora_factors(encoder: nn.Module) -> dict[str, dict[str, Any]]:
    """The trained factors of every peft LoRA layer of ``encoder``: {module name: {A (r, in), B (out, r), scale}}."""
    out = {}
    for name, m in encoder.named_modules():
        if hasattr(m, "lora_A") and "default" in getattr(m, "lora_A", {}):
            out[name.removeprefix("base_model.model.")] = {
                "A": m.lora_A["default"].weight.detach().cpu().clone(),
                "B": m.lora_B["default"].weight.detach().cpu().clone(),
                "scale": float(m.scaling["default"]),
            }
    return out


class Snapshots(Hook):
    """A training-loop hook that keeps a LoRA model's factors every ``every`` steps (intruders vs steps)."""

    def __init__(self, encoder: nn.Module, every: int, last: int) -> None:
        self.encoder, self.every, self.last = encoder, every, last
        self.taken: list[tuple[int, dict[str, dict[str, Any]]]] = []

    def after_step(self, model: nn.Module, step: int) -> None:
        if (step + 1) % self.every == 0 and step + 1 < self.last:  # the last step is the run's own result
            self.taken.append((step + 1, lora_factors(self.encoder)))


def batch_order(n_train: int, steps: int, batch_size: int, seed: int) -> Tensor:
    """Indices (steps, batch_size) into the training set: consecutive epochs of seeded permutations, identical for
    every method (the same seed, data order and step budget)."""
    gen = torch.Generator().manual_seed(seed)
    need = steps * batch_size
    perms = [torch.randperm(n_train, generator=gen) for _ in range(-(-need // n_train))]
    return torch.cat(perms)[:need].view(steps, batch_size)


def make_classifier(
    base: Base,
    n_classes: int,
    spec: RunSpec,
    cfg: Config,
    start: dict[str, Tensor] | None = None,
    start_bias: dict[str, Tensor] | None = None,
) -> Classifier:
    """A copy of the base encoder (from ``start`` weights if given), made trainable as ``spec`` says (``full``: the
    adapted matrices and their biases; ``lora``: peft factors, everything else frozen), with a fresh head."""
    encoder = copy.deepcopy(base.encoder)
    if start is not None:
        set_weights(encoder, start, start_bias)
    encoder.requires_grad_(False)
    mods = dict(encoder.named_modules())
    if spec.method == "full":
        for n in base.modules:
            mods[n].requires_grad_(True)
    elif spec.method == "lora":
        torch.manual_seed(cfg.seed)  # the initialisation of A
        lcfg = LoraConfig(
            r=spec.rank,
            lora_alpha=spec.alpha,
            use_rslora=spec.rslora,
            target_modules=cfg.target_modules,
            lora_dropout=0.0,
            bias="none",
        )
        encoder = get_peft_model(encoder, lcfg)
    else:
        raise ValueError(f"method={spec.method!r}: expected 'full', 'lora' or 'head'")
    head = ScaledHead(base.hidden, n_classes, cfg.head_lr / spec.lr, seed=cfg.seed)
    return Classifier(encoder, head)


def finetune(
    base: Base,
    task: TextTask,
    enc: Encoded,
    spec: RunSpec,
    cfg: Config,
    device: torch.device,
    *,
    steps: int | None = None,
    start: dict[str, Tensor] | None = None,
    start_bias: dict[str, Tensor] | None = None,
    snapshot_every: int = 0,
    progress: bool = True,
) -> FineTune:
    """Fine-tune a copy of the base encoder (from ``start`` weights if given) plus a fresh head on ``task``.

    - ``full``: every adapted matrix and its bias is trained (embeddings, LayerNorms and the pooler frozen, as in
      the paper's full fine-tuning);
    - ``lora``: peft ``LoraConfig(r, lora_alpha, use_rslora, target_modules)`` (A Kaiming-uniform, B = 0, no
      dropout, biases frozen), everything else frozen;
    - ``head``: only the classifier (the frozen-feature reference).

    The head is trained densely with effective lr ``cfg.head_lr`` in every run. Adam, linear warmup over
    ``warmup_frac`` of the steps then linear decay, batches from :func:`batch_order` (seeded by ``cfg.seed``).
    A LoRA run with ``snapshot_every`` > 0 also keeps its factors every that many steps.
    """
    steps = steps or cfg.steps
    if spec.method == "head":
        return _finetune_head(base, task, enc, spec, cfg, device, steps, start, start_bias, progress)
    model = make_classifier(base, task.n_classes, spec, cfg, start, start_bias).to(device)
    encoder, head = model.encoder, model.head
    if device.type == "cpu" and effective_precision(cfg.precision, device) == "bf16":
        # CPU bf16: eager attention (issue #18, MiniLM r=1 step on one AMX thread: bf16 + SDPA 163-213 ms,
        # bf16 + eager 100 ms, fp32 + SDPA 118 ms); the same function, so results agree up to rounding
        hf_model = encoder.get_base_model() if hasattr(encoder, "get_base_model") else encoder
        hf_model.set_attn_implementation("eager")
    mods = dict(encoder.named_modules())
    order = batch_order(len(task.train_idx), steps, cfg.batch_size, cfg.seed)
    train_idx = torch.as_tensor(task.train_idx)
    labels = torch.as_tensor(task.labels)

    def loss_fn(m: nn.Module, step: int) -> Tensor:
        idx = train_idx[order[step]]
        ids, mask = enc.batch(idx, device)
        return F.cross_entropy(m(ids, mask).float(), labels[idx].to(device))

    snaps = Snapshots(encoder, snapshot_every, steps) if spec.method == "lora" and snapshot_every else None
    t0 = time.perf_counter()
    history = train(
        model,
        loss_fn,
        hooks=[snaps] if snaps else [],
        steps=steps,
        lr=spec.lr,
        warmup_steps=round(cfg.warmup_frac * steps),
        schedule="linear",
        log_every=max(1, steps // 10),
        progress=progress,
        desc=f"{spec.name} [{task.name}]",
        precision=cfg.precision,
    )
    train_s = time.perf_counter() - t0
    delta, bias_delta = None, {}
    factors = lora_factors(encoder) if spec.method == "lora" else None
    if spec.method == "full":
        s0 = start or base.W0
        sb = start_bias or base.b0
        delta = {n: mods[n].weight.detach().cpu() - s0[n] for n in base.modules}
        bias_delta = {n: mods[n].bias.detach().cpu() - sb[n] for n in base.modules if n in sb}
    return FineTune(
        spec,
        task.name,
        factors,
        delta,
        bias_delta,
        head.export(),
        history.to_dict(),
        train_s,
        start,
        start_bias,
        snaps.taken if snaps else None,
    )


def _finetune_head(
    base: Base,
    task: TextTask,
    enc: Encoded,
    spec: RunSpec,
    cfg: Config,
    device: torch.device,
    steps: int,
    start: dict[str, Tensor] | None,
    start_bias: dict[str, Tensor] | None,
    progress: bool,
) -> FineTune:
    """The frozen-feature reference: the same head, optimiser, schedule and batches as :func:`finetune`, on the
    frozen encoder's embeddings (computed once, so it costs one forward pass over the training set)."""
    encoder = copy.deepcopy(base.encoder).to(device).eval()
    if start is not None:
        set_weights(encoder, start, start_bias)
    train_idx = torch.as_tensor(task.train_idx)
    with torch.no_grad():  # the frozen features in fp32, whatever the training precision
        feats = torch.cat(
            [
                embed(encoder, *enc.batch(train_idx[i : i + 256], device)).cpu()
                for i in range(0, len(train_idx), 256)
            ]
        )
    head = ScaledHead(base.hidden, task.n_classes, cfg.head_lr / spec.lr, seed=cfg.seed).to(device)
    order = batch_order(len(train_idx), steps, cfg.batch_size, cfg.seed)
    labels = torch.as_tensor(task.labels)[train_idx]

    def loss_fn(m: nn.Module, step: int) -> Tensor:
        pos = order[step]
        return F.cross_entropy(m(feats[pos].to(device)), labels[pos].to(device))

    t0 = time.perf_counter()
    history = train(
        head,
        loss_fn,
        steps=steps,
        lr=spec.lr,
        warmup_steps=round(cfg.warmup_frac * steps),
        schedule="linear",
        log_every=max(1, steps // 10),
        progress=False,
    )
    return FineTune(
        spec,
        task.name,
        None,
        {},
        {},
        head.export(),
        history.to_dict(),
        time.perf_counter() - t0,
        start,
        start_bias,
    )
