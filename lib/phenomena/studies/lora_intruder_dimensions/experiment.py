"""Everything the LoRA notebook plots, computed in one call: ``compute(cfg, run) -> Results``.

Each fine-tuning run is cached on its own (``run.cached``: keyed by the fields it depends on, the data's fingerprint
and the source of this module and everything it imports), and so is the whole evaluation, so a change of e.g.
``lambdas`` retrains nothing.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from phenomena.studies.lora_intruder_dimensions.config import Config, RunSpec, head_run, iter_runs
from phenomena.studies.lora_intruder_dimensions.data import Encoded, TextTask, build_task, encode
from phenomena.studies.lora_intruder_dimensions.evaluate import Evaluator
from phenomena.studies.lora_intruder_dimensions.finetune import FineTune, finetune
from phenomena.studies.lora_intruder_dimensions.intruders import (
    analyse,
    base_svds,
    count_intruders,
    intervene,
    intervention_targets,
    peft_reduce_intruders,
)
from phenomena.studies.lora_intruder_dimensions.model import Base, load_base

if TYPE_CHECKING:
    from phenomena.run import Run


@dataclass
class Results:
    """What the notebook plots (all on the CPU): the base model bundle, the full-FT and headline LoRA runs
    (``finetunes``), the base model's metrics (``base_metrics``), the task descriptions, one row per run
    (``rows``), per-run, per-matrix spectra (``analyses``), the intervention targets and rows, peft's variant,
    and the sequential panel."""

    base: Base
    finetunes: dict[str, FineTune]
    base_metrics: dict[str, float]
    task: dict[str, Any]
    seq_tasks: dict[str, dict[str, Any]]
    rows: list[dict[str, Any]]
    analyses: dict[str, dict[str, dict[str, Any]]]
    targets: dict[str, list[int]]
    intervention: list[dict[str, Any]]
    peft: list[dict[str, Any]]
    sequence: list[dict[str, Any]]
    compute_s: float


def _cache_cfg(cfg: Config, task: TextTask) -> dict[str, Any]:
    """The config fields a fine-tuning run depends on, plus the data's fingerprint."""
    keys = (
        "model",
        "target_modules",
        "task_dataset",
        "max_length",
        "n_test_per_class",
        "steps",
        "batch_size",
        "warmup_frac",
        "bf16",
        "head_lr",
        "seed",
    )
    return {**{k: getattr(cfg, k) for k in keys}, "data": task.fingerprint()}


def get_finetune(base: Base, task: TextTask, spec: RunSpec, cfg: Config, run: Run) -> FineTune:
    """One run on the target task, fine-tuned once per (config, data, spec, source) and cached on disk."""
    enc = encode(base.tokenizer, task.texts, cfg.max_length)
    key = {**_cache_cfg(cfg, task), "spec": asdict(spec)}
    tag = spec.method if spec.method != "lora" else f"r{spec.rank}"
    return run.cached(f"lora-ft-{tag}", lambda: finetune(base, task, enc, spec, cfg, run.device), key=key)


def get_sequence(
    base: Base, tasks: list[TextTask], spec: RunSpec, cfg: Config, run: Run, *, first: FineTune | None = None
) -> list[FineTune]:
    """Sequential fine-tuning on ``tasks`` (the first one is the target task, whose run is shared with
    :func:`get_finetune`; pass it as ``first`` when it is already in memory, so that it is not trained again
    when the cache is off): after each task the update is merged and a fresh adapter (or, for full FT, the same
    dense parameters) and a new head are trained on the next task for ``cfg.seq_steps`` steps."""
    runs = [first or get_finetune(base, tasks[0], spec, cfg, run)]
    for i, task in enumerate(tasks[1:], start=1):
        prev = runs[-1]
        start, start_bias = prev.weights(base), prev.biases(base)
        enc = encode(base.tokenizer, task.texts, cfg.max_length)
        key = {
            **_cache_cfg(cfg, task),
            "spec": asdict(spec),
            "seq_steps": cfg.seq_steps,
            "before": [t.fingerprint() for t in tasks[:i]],
        }

        def fit(
            task: TextTask = task, enc: Encoded = enc, start: Any = start, sb: Any = start_bias
        ) -> FineTune:
            return finetune(
                base, task, enc, spec, cfg, run.device, steps=cfg.seq_steps, start=start, start_bias=sb
            )

        runs.append(run.cached(f"lora-seq{i}", fit, key=key))
    return runs


def run_row(
    spec: RunSpec,
    ev: dict[str, float],
    analysis: dict[str, dict[str, Any]],
    cfg: Config,
    base_infonce: float,
    train_s: float,
) -> dict[str, Any]:
    """One row of the runs table: spec, accuracy, intruders at every epsilon, forgetting, update statistics."""
    norms = [a["dw_rel_norm"] for a in analysis.values()]
    row: dict[str, Any] = {
        "run": spec.name,
        "method": spec.method,
        "family": spec.family,
        "rank": spec.rank,
        "alpha": spec.alpha,
        "rslora": spec.rslora,
        "scale": spec.scale,
        "lr": spec.lr,
        "acc": ev["acc_a"],
        "intruders": count_intruders(analysis, cfg.epsilon),
        "forgetting": ev["infonce"] - base_infonce,
        "infonce": ev["infonce"],
        "retrieval_top1": ev["top1"],
        "drift": ev["drift"],
        "dw_rel_norm": float(np.sqrt(np.mean(np.square(norms)))) if norms else 0.0,
        "dw_erank_mean": float(np.mean([a["dw_erank"] for a in analysis.values()])) if analysis else 0.0,
        "train_s": round(train_s, 1),
    }
    for eps in cfg.epsilons:
        row[f"intruders@{eps:g}"] = count_intruders(analysis, eps)
    return row


def _slim(analysis: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        n: {**{k: v for k, v in a.items() if k != "dw_top_sv"}, "dw_top_sv": a["dw_top_sv"][:16]}
        for n, a in analysis.items()
    }


def run_study(cfg: Config, base: Base, run: Run) -> dict[str, Any]:
    """Every number of the notebook: fine-tune (cached) and evaluate every run, analyse its spectra, run the
    intervention (and peft's variant) on the headline LoRA run, and the sequential panel. Returns the fields of
    :class:`Results` but ``base``."""
    t0 = time.perf_counter()
    device = run.device
    tasks = {k: build_task(cfg, k) for k in dict.fromkeys(("a", *cfg.seq_tasks))}
    task = tasks["a"]
    ev = Evaluator(base, cfg, device)
    svd = base_svds(base)
    base_f = ev.forgetting()
    head = get_finetune(base, task, head_run(cfg), cfg, run)
    base_f["acc_head_only"] = ev.accuracy(task, head.head)
    rows, analyses, fts = [], {}, {}
    for spec in iter_runs(cfg):
        ft = get_finetune(base, task, spec, cfg, run)
        W = ft.weights(base)
        metrics = ev.evaluate(W, ft.biases(base), {"a": (task, ft.head)})
        an = analyse(svd, W, base.W0, cfg.top_k)
        rows.append(run_row(spec, metrics, an, cfg, base_f["infonce"], ft.train_s))
        analyses[spec.name] = _slim(an)
        fts[spec.name] = ft
    # the intervention on the headline run: scale its top intruders (or the neighbouring direction) by lambda
    hl = cfg.headline_run()
    ft = fts[hl.name]
    W, b = ft.weights(base), ft.biases(base)
    targets = intervention_targets(W, analyses[hl.name], cfg.epsilon)
    inter = []
    for lam in cfg.lambdas:
        for control in (False, True):
            if control and lam == 1.0:
                continue
            m = ev.evaluate(intervene(W, targets, lam, control=control), b, {"a": (task, ft.head)})
            inter.append(
                {
                    "lambda": lam,
                    "direction": "neighbour (control)" if control else "top intruder",
                    "acc": m["acc_a"],
                    "forgetting": m["infonce"] - base_f["infonce"],
                    **m,
                }
            )
    peft_rows = []
    for lam in sorted({min(cfg.lambdas, key=lambda x: abs(x - 0.75)), 0.0}):
        m = ev.evaluate(peft_reduce_intruders(base, ft, cfg, lam), b, {"a": (task, ft.head)})
        peft_rows.append(
            {"lambda": lam, "acc": m["acc_a"], "forgetting": m["infonce"] - base_f["infonce"], **m}
        )
    # sequential fine-tuning: full FT vs the headline LoRA on tasks a -> b (-> c)
    seq = []
    for spec in (cfg.full_run(), hl):
        stages = get_sequence(base, [tasks[k] for k in cfg.seq_tasks], spec, cfg, run, first=fts[spec.name])
        for i, st in enumerate(stages):
            heads = {k: (tasks[k], stages[j].head) for j, k in enumerate(cfg.seq_tasks[: i + 1])}
            Wi = st.weights(base)
            m = ev.evaluate(Wi, st.biases(base), heads)
            an = analyse(svd, Wi, base.W0, cfg.top_k)
            seq.append(
                {
                    "method": "full FT" if spec.method == "full" else f"LoRA r={spec.rank}",
                    "stage": i + 1,
                    "trained_on": cfg.seq_tasks[i],
                    "intruders": count_intruders(an, cfg.epsilon),
                    "forgetting": m["infonce"] - base_f["infonce"],
                    **m,
                }
            )
    return {
        "finetunes": {"full": fts[cfg.full_run().name], "headline": fts[hl.name]},
        "base_metrics": base_f,
        "task": task.describe(),
        "seq_tasks": {k: tasks[k].describe() for k in cfg.seq_tasks},
        "rows": rows,
        "analyses": analyses,
        "targets": {n: list(v) for n, v in targets.items()},
        "intervention": inter,
        "peft": peft_rows,
        "sequence": seq,
        "compute_s": time.perf_counter() - t0,
    }


def compute(cfg: Config, run: Run) -> Results:
    """Load the base model and return :func:`run_study`'s results, cached as a whole on the config and source
    (re-runs are instant; the fine-tuning runs are also cached one by one)."""
    base = load_base(cfg)
    return Results(base=base, **run.cached("lora-results", lambda: run_study(cfg, base, run)))
