"""One micro-benchmark per study; each prints what it measured and returns the numbers."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import torch

from benchmarks.hf_gpt2 import HFGPT2
from phenomena.studies import icl_linear_regression as icl
from phenomena.studies import induction_heads as ih
from phenomena.studies import lora_intruder_dimensions as lora
from phenomena.studies import powerlaw_rehearsal as rh
from phenomena.studies.icl_linear_regression.data import sample_prompts
from phenomena.studies.icl_linear_regression.learners import LEARNERS, ICLModel, baseline_predictions
from phenomena.studies.icl_linear_regression.training import make_loss_fn
from phenomena.studies.induction_heads.copy_task import copy_blocks
from phenomena.studies.induction_heads.scores import token_losses
from phenomena.studies.lora_intruder_dimensions.config import OFFLINE_MODEL
from phenomena.studies.lora_intruder_dimensions.intruders import analyse, base_svds
from phenomena.studies.lora_intruder_dimensions.model import load_base
from phenomena.studies.powerlaw_rehearsal.stream import run_environment
from phenomena.train import train
from phenomena.transformer import Transformer


def with_threads(n: int) -> Callable[[], None]:
    """Set torch's thread count to ``n``; return a function that restores the previous count."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    return lambda: torch.set_num_threads(before)


def icl_throughput(steps: int = 200, threads: Sequence[int] = (1, 2)) -> dict[str, float]:
    """Training steps/s of our transformer vs Hugging Face's ``GPT2Model`` of the same size (Garg et al.'s choice;
    same read-in/read-out, no dropout) at the ICL quick config, at 1 and 2 threads; and the time of the batched
    closed-form baselines at the paper's evaluation size."""
    cfg = icl.Config.from_preset("quick")
    out: dict[str, float] = {}
    print(
        f"ICL training throughput, quick config: batch {cfg.batch_size}, {2 * cfg.n_points} tokens, "
        f"{cfg.n_layers} layers x {cfg.d_model} wide, {steps} steps (after 20 warm-up steps)"
    )
    for n in threads:
        restore = with_threads(n)
        for name in ("ours", "hf_gpt2"):
            torch.manual_seed(0)
            model = ICLModel(cfg.model_config(), HFGPT2(cfg.model_config()) if name == "hf_gpt2" else None)
            loss = make_loss_fn(
                cfg.n_points, cfg.d, torch.Generator().manual_seed(0), cfg.batch_size, torch.device("cpu")
            )
            train(model, loss, steps=20, lr=cfg.lr, progress=False)
            start = time.perf_counter()
            train(model, loss, steps=steps, lr=cfg.lr, progress=False)
            out[f"{name}_threads{n}"] = steps / (time.perf_counter() - start)
        restore()
        ours, hf = out[f"ours_threads{n}"], out[f"hf_gpt2_threads{n}"]
        print(
            f"  threads={n}: ours {ours:.1f} steps/s ({1000 / ours:.1f} ms/step), HF GPT2Model {hf:.1f} steps/s; "
            f"ratio ours/HF = {ours / hf:.2f}"
        )
    prompts = sample_prompts(1280, 41, 20, torch.Generator().manual_seed(0))
    start = time.perf_counter()
    for name in LEARNERS:
        baseline_predictions(prompts, name)
    out["baselines_s"] = time.perf_counter() - start
    print(
        f"  all {len(LEARNERS)} baselines for 1280 prompts x 41 prefix lengths at d = 20 (batched closed form): "
        f"{out['baselines_s']:.2f} s"
    )
    return out


def copy_step_ms(cfg: ih.Config, n_layers: int = 2, threads: int = 1, steps: int = 60) -> float:
    """Mean wall milliseconds per training step of the copy-task model (the shared training loop) on the CPU."""
    restore = with_threads(threads)
    torch.manual_seed(0)
    model = Transformer(cfg.model_config(n_layers))
    gen = torch.Generator().manual_seed(0)

    def loss(m: torch.nn.Module, step: int) -> torch.Tensor:
        x = copy_blocks(
            cfg.batch_size, cfg.seq_len, cfg.vocab_size, cfg.segment_min, cfg.segment_max, cfg.gap_max, gen
        ).tokens
        return token_losses(m(x), x).mean()

    train(model, loss, steps=10, lr=cfg.lr, optimizer="adamw", progress=False)
    start = time.perf_counter()
    train(model, loss, steps=steps, lr=cfg.lr, optimizer="adamw", progress=False)
    restore()
    return (time.perf_counter() - start) / steps * 1000


def induction_threads(
    threads: Sequence[int] = (1, 2), timer: Callable[..., float] = copy_step_ms
) -> dict[str, float]:
    """ms/step of the quick 2-layer and 1-layer copy-task models at 1 and 2 threads (the notebook's default)."""
    cfg = ih.Config.from_preset("quick")
    out: dict[str, float] = {}
    for n in threads:
        for layers in (2, 1):
            out[f"copy_{layers}l_threads{n}"] = ms = timer(cfg, layers, n)
            print(
                f"copy task, {layers}-layer, batch {cfg.batch_size} x {cfg.seq_len} tokens, threads={n}: "
                f"{ms:.1f} ms/step"
            )
    return out


def lora_analysis(model: str = "", repeats: int = 3) -> dict[str, float]:
    """Time the analysis of all adapted matrices of one model: SVD of every W0 and W, similarity, intruder scores,
    and the SVD / effective rank of every update (target: < 5 s)."""
    cfg = lora.Config.from_preset("quick", model=model)
    base = load_base(cfg)
    gen = torch.Generator().manual_seed(0)
    weights = {n: W + 1e-3 * torch.randn(W.shape, generator=gen) for n, W in base.W0.items()}
    times = {"base_svds": float("inf"), "analyse": float("inf")}
    for _ in range(repeats):
        t0 = time.perf_counter()
        svd = base_svds(base)
        t1 = time.perf_counter()
        analyse(svd, weights, base.W0, cfg.top_k)
        t2 = time.perf_counter()
        times = {"base_svds": min(times["base_svds"], t1 - t0), "analyse": min(times["analyse"], t2 - t1)}
    total = times["base_svds"] + times["analyse"]
    shapes = sorted({tuple(W.shape) for W in base.W0.values()})
    print(
        f"analysis of all {len(base.modules)} adapted matrices of {cfg.model or OFFLINE_MODEL} (shapes {shapes}), "
        f"{torch.get_num_threads()} thread(s), best of {repeats}: SVD of every W0 {times['base_svds']:.2f} s + "
        f"SVD/similarity/intruders/update spectra of W {times['analyse']:.2f} s = {total:.2f} s (target < 5 s)"
    )
    return {**times, "total": total}


def rehearsal_threads(threads: Sequence[int] = (1, 2)) -> dict[str, float]:
    """Seconds for one environment run ('none', quick config) at 1 and 2 torch threads: the measurement behind the
    notebook's ``threads`` default."""
    cfg = rh.Config.from_preset("quick")
    out = {}
    for n in threads:
        restore = with_threads(n)
        out[f"threads{n}"] = run_environment(cfg, "none", 0, torch.device("cpu")).seconds
        restore()
        print(
            f"threads={n}: one 'none' run (T={cfg.n_tasks}, {cfg.epochs} epochs/phase) {out[f'threads{n}']:.1f} s"
        )
    return out


#: study -> its micro-benchmark
MICRO: dict[str, Callable[[], object]] = {
    "icl_linear_regression": icl_throughput,
    "induction_heads": induction_threads,
    "lora_intruder_dimensions": lora_analysis,
    "powerlaw_rehearsal": rehearsal_threads,
}
