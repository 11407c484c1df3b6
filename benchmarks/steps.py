"""Training steps of every study at its quick config, timed along two code paths interleaved in one process.

- ``today``: the path before issue #18 -- torch's per-tensor (unfused) Adam/AdamW, and the precision each study
  trained in (fp32, except the LoRA study: bf16 autocast with HF's SDPA attention, forced even where bf16 is slow);
- ``new``: the study's default now -- the shared loop's fused optimiser and ``cfg.precision`` (fp32 by default;
  bf16 autocast with fp32 SDPA where requested and fast);
- ``bf16``: the new path with ``precision="bf16"``, timed only where the hardware has fast bf16.

Each benchmark builds the model and the loss of one kind of training run exactly as the study does, and counts
how many steps of that kind its preset trains (the weights of the totals).
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from phenomena.studies import icl_linear_regression as icl
from phenomena.studies import induction_heads as ih
from phenomena.studies import lora_intruder_dimensions as lora
from phenomena.studies import powerlaw_rehearsal as rh
from phenomena.studies.icl_linear_regression.learners import ICLModel
from phenomena.studies.icl_linear_regression.training import make_loss_fn
from phenomena.studies.induction_heads.copy_task import copy_blocks
from phenomena.studies.induction_heads.reddy import Classes, ReddyNet, reddy_sequences
from phenomena.studies.induction_heads.scores import token_losses
from phenomena.studies.powerlaw_rehearsal.stream import PhaseBatches, make_mlp
from phenomena.train import LossFn, make_optimizer, train
from phenomena.transformer import Transformer


@dataclass
class StepBench:
    """One kind of training run: a model, its loss, its optimiser settings, and how many such steps its preset
    trains (``preset_steps``).
    ``today_bf16``: the study trained this run under bf16 autocast before issue #18."""

    name: str
    study: str
    model: nn.Module
    loss_fn: LossFn
    optimizer: str
    lr: float
    preset_steps: int
    precision: str
    grad_clip: float | None = None
    weight_decay: float = 0.0
    today_bf16: bool = False


def icl_bench(device: torch.device, preset: str = "quick") -> StepBench:
    cfg = icl.Config.from_preset(preset)
    torch.manual_seed(0)
    model = ICLModel(cfg.model_config()).to(device)
    loss = make_loss_fn(cfg.n_points, cfg.d, torch.Generator().manual_seed(0), cfg.batch_size, device)
    steps = cfg.steps + len(cfg.td_pool_sizes) * cfg.td_steps  # the task-diversity models are the same size
    return StepBench("icl", "icl_linear_regression", model, loss, "adam", cfg.lr, steps, cfg.precision)


def hf_gpt2_bench(device: torch.device, preset: str = "quick") -> StepBench:
    """The ICL bench with Hugging Face's ``GPT2Model`` of the same size as the backbone (Garg et al.'s choice)."""
    from benchmarks.hf_gpt2 import HFGPT2

    b = icl_bench(device, preset)
    torch.manual_seed(0)
    cfg = icl.Config.from_preset(preset)
    b.model = ICLModel(cfg.model_config(), HFGPT2(cfg.model_config())).to(device)
    b.name = "icl_hf_gpt2"
    return b


def copy_bench(device: torch.device, preset: str = "quick") -> StepBench:
    cfg = ih.Config.from_preset(preset)
    torch.manual_seed(0)
    model = Transformer(cfg.model_config(2)).to(device)
    gen = torch.Generator().manual_seed(0)

    def loss(m: nn.Module, step: int) -> Tensor:
        x = copy_blocks(
            cfg.batch_size, cfg.seq_len, cfg.vocab_size, cfg.segment_min, cfg.segment_max, cfg.gap_max, gen
        ).tokens.to(device)
        return token_losses(m(x), x).mean()

    steps = 2 * cfg.steps + cfg.steps // 2  # 2-layer, 1-layer control, fixed-offset control
    return StepBench(
        "copy", "induction_heads", model, loss, "adamw", cfg.lr, steps, cfg.precision, grad_clip=cfg.grad_clip
    )


def reddy_bench(device: torch.device, preset: str = "quick") -> StepBench:
    cfg = ih.Config.from_preset(preset)
    torch.manual_seed(0)
    model = ReddyNet(cfg).to(device)
    gen = torch.Generator().manual_seed(0)
    classes = Classes.make(cfg.rd_classes, cfg.rd_labels, cfg.rd_dim, gen)

    def loss(m: nn.Module, step: int) -> Tensor:
        b = reddy_sequences(
            cfg.rd_batch, cfg.rd_pairs, cfg.rd_bursty, 1.0, cfg.rd_eps, classes.label_vectors, gen, classes
        )
        return F.cross_entropy(m(b.inputs.to(device)), b.target.to(device))

    steps = cfg.rd_steps + len(cfg.rd_burstiness) * cfg.rd_sweep_steps
    return StepBench("reddy", "induction_heads", model, loss, "adam", cfg.rd_lr, steps, cfg.precision)


def lora_bench(device: torch.device, preset: str = "quick") -> StepBench:
    from phenomena.studies.lora_intruder_dimensions.config import iter_runs
    from phenomena.studies.lora_intruder_dimensions.data import build_task, encode
    from phenomena.studies.lora_intruder_dimensions.finetune import batch_order, make_classifier
    from phenomena.studies.lora_intruder_dimensions.model import load_base

    cfg = lora.Config.from_preset(preset)
    base = load_base(cfg)
    task = build_task(cfg, cfg.task)
    enc = encode(base.tokenizer, task.texts, cfg.max_length)
    spec = cfg.headline_run()
    model = make_classifier(base, task.n_classes, spec, cfg).to(device)
    order = batch_order(len(task.train_idx), 10_000, cfg.batch_size, cfg.seed)
    train_idx, labels = torch.as_tensor(task.train_idx), torch.as_tensor(task.labels)

    def loss(m: nn.Module, step: int) -> Tensor:
        idx = train_idx[order[step % len(order)]]
        ids, mask = enc.batch(idx, device)
        return F.cross_entropy(m(ids, mask).float(), labels[idx].to(device))

    steps = len(list(iter_runs(cfg))) * cfg.steps + len(cfg.seq_tasks) * cfg.seq_steps
    return StepBench(
        "lora",
        "lora_intruder_dimensions",
        model,
        loss,
        "adam",
        spec.lr,
        steps,
        cfg.precision,
        today_bf16=True,
    )


def rehearsal_bench(device: torch.device, preset: str = "quick") -> StepBench:
    cfg = rh.Config.from_preset(preset)
    torch.manual_seed(0)
    d_in = 64 if cfg.dataset == "digits" else 784
    model = make_mlp(d_in, cfg.hidden, dropout=cfg.dropout).to(device)
    gen = torch.Generator().manual_seed(0)
    n = 2 * cfg.n_new  # a phase: the new task's samples plus about as many rehearsed ones
    batches = PhaseBatches(
        torch.rand(n, d_in, generator=gen).to(device), torch.randint(0, 10, (n,), generator=gen).to(device),
        cfg.batch_size, gen,
    )  # fmt: skip
    per_phase = cfg.epochs * batches.n_batches
    steps = len(cfg.environments) * cfg.n_seeds * cfg.n_tasks * per_phase
    return StepBench("rehearsal", "powerlaw_rehearsal", model, batches, "adam", cfg.lr, steps, cfg.precision)


BENCHES: dict[str, Callable[[torch.device, str], StepBench]] = {
    "icl": icl_bench,
    "copy": copy_bench,
    "reddy": reddy_bench,
    "lora": lora_bench,
    "rehearsal": rehearsal_bench,
}


def _forced_bf16(loss_fn: LossFn, device: torch.device) -> LossFn:
    """``loss_fn`` under bf16 autocast whatever the hardware (today's LoRA path, which had no fallback)."""

    def wrapped(m: nn.Module, step: int) -> Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            return loss_fn(m, step)

    return wrapped


def path_runner(b: StepBench, path: str, device: torch.device) -> Callable[[int], None]:
    """A function running ``n`` training steps of ``b`` along ``path`` (today | new | bf16), keeping one optimiser
    (and the model's state) across calls."""
    params = [p for p in b.model.parameters() if p.requires_grad]
    kw: dict[str, Any] = {"grad_clip": b.grad_clip, "progress": False, "log_every": 10**9}
    loss_fn = b.loss_fn
    if path == "today":  # torch's default implementation: a per-tensor loop on the CPU, foreach on CUDA
        cls = torch.optim.AdamW if b.optimizer == "adamw" else torch.optim.Adam
        opt = cls(params, lr=b.lr, weight_decay=b.weight_decay)
        if b.today_bf16:
            loss_fn = _forced_bf16(loss_fn, device)
        precision = "fp32"
    else:
        opt = make_optimizer(params, b.optimizer, lr=b.lr, weight_decay=b.weight_decay)  # type: ignore[arg-type]
        precision = "bf16" if path == "bf16" else b.precision

    def run(n: int) -> None:
        train(b.model, loss_fn, steps=n, optimizer=opt, precision=precision, **kw)  # type: ignore[arg-type]
        if device.type == "cuda":
            torch.cuda.synchronize()

    return run


def step_flops(b: StepBench, device: torch.device) -> int:
    """FLOPs of one forward + backward pass of ``b`` (torch's FLOP counter: matmuls, convolutions, attention)."""
    with FlopCounterMode(display=False) as counter:
        b.loss_fn(b.model, 0).backward()
    b.model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def time_paths(
    b: StepBench, paths: tuple[str, ...], device: torch.device, *, round_s: float = 1.0, repeats: int = 5
) -> dict[str, float]:
    """Median seconds per step of each path, the paths interleaved: ``repeats`` rounds, in each of which every path
    runs as many steps as fill about ``round_s`` seconds (at least one; measured in the warm-up)."""
    runners = {p: path_runner(b, p, device) for p in paths}
    n_steps = {}
    for p, run in runners.items():
        run(1)  # warm-up: allocator, oneDNN primitives, optimiser state
        t0 = time.perf_counter()
        run(1)
        n_steps[p] = max(1, min(50, round(round_s / max(time.perf_counter() - t0, 1e-6))))
    times: dict[str, list[float]] = {p: [] for p in paths}
    for _ in range(repeats):
        for p, run in runners.items():
            t0 = time.perf_counter()
            run(n_steps[p])
            times[p].append((time.perf_counter() - t0) / n_steps[p])
    return {p: statistics.median(v) for p, v in times.items()}


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int = 1024, repeats: int = 5) -> float:
    """GFLOP/s of an n x n x n matmul on ``device`` in ``dtype`` (the best of ``repeats``): the peak our steps are
    compared with."""
    a = torch.randn(n, n, device=device).to(dtype)
    c = torch.randn(n, n, device=device).to(dtype)
    best = math.inf
    inner = 20 if device.type == "cuda" else 3
    for _ in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(inner):
            a @ c
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, (time.perf_counter() - t0) / inner)
    return 2 * n**3 / best / 1e9
