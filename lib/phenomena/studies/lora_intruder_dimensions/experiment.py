"""Everything the LoRA notebook plots, computed in one call: ``compute(cfg, run) -> Results``.

Each fine-tuning run is cached on its own (``run.cached``: keyed by the fields it depends on, the data's fingerprint
and the source of the training code, :data:`TRAINING_MODULE` and everything it imports), and so is the whole
evaluation (keyed on this module's source too), so a change of e.g. ``lambdas`` or of the analysis retrains
nothing.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import multiprocessing
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol, TypeVar

import numpy as np
import torch

from phenomena import workers as workers_lib
from phenomena.studies.lora_intruder_dimensions.config import Config, RunSpec, head_run, iter_runs
from phenomena.studies.lora_intruder_dimensions.data import Encoded, TextTask, build_task, encode
from phenomena.studies.lora_intruder_dimensions.evaluate import Evaluator
from phenomena.studies.lora_intruder_dimensions.finetune import FineTune, finetune
from phenomena.studies.lora_intruder_dimensions.intruders import (
    analyse,
    base_svds,
    count_intruders,
    intervention_rows,
    intervention_targets,
    intruder_scores,
    null_intruders,
    peft_reduce_intruders,
)
from phenomena.studies.lora_intruder_dimensions.model import Base, load_base

T = TypeVar("T")


class Run(Protocol):
    """What this module uses of :class:`phenomena.run.Run`: its config, device and cache."""

    cfg: Any
    device: torch.device

    def cached(
        self, name: str, compute: Callable[[], T], *, key: Any = None, module: str | None = None
    ) -> T: ...


@dataclass
class Results:
    """What the notebook plots (all on the CPU): the base model bundle, the full-FT, headline LoRA and intervened
    runs (``finetunes``), the base model's metrics (``base_metrics``: forgetting probes and the head-only
    accuracy), the task descriptions, one row per run (``rows``), per-run, per-matrix spectra (``analyses``),
    intruders during training of the lr-sweep runs and the ranks at the rule (``steps``), the intervention on the
    headline run at the paper's rule (``intervened``, its ``targets`` and ``intervention`` rows; empty when that run
    did not learn or has no intruder), peft's variant (``peft``) and the sequential panel (``sequence``; empty
    without ``seq_tasks``)."""

    base: Base
    finetunes: dict[str, FineTune]
    base_metrics: dict[str, float]
    task: dict[str, Any]
    seq_tasks: dict[str, dict[str, Any]]
    rows: list[dict[str, Any]]
    analyses: dict[str, dict[str, dict[str, Any]]]
    steps: list[dict[str, Any]]
    intervened: str | None
    targets: dict[str, list[int]]
    intervention: list[dict[str, Any]]
    peft: list[dict[str, Any]]
    sequence: list[dict[str, Any]]
    compute_s: float


#: A run "learned" the task if its accuracy is at least this much above the frozen encoder + trained head (the
#: issue-19 definition, set before the 5-epoch sweep from seed 0's calibration: head 0.707, LoRA r = 1 0.796, full FT
#: 0.818; ~2 standard errors of a difference on 225 test examples). It was "within 0.05 of the head or above", which
#: admitted runs at frozen-encoder accuracy. It keeps runs that did not learn out of the matched-accuracy claim, the
#: forgetting correlations and the intervention (they are listed instead).
LEARNED_MARGIN = 0.05
#: the module whose source (with its imports) keys the cache of every fine-tuning run
TRAINING_MODULE = "phenomena.studies.lora_intruder_dimensions.finetune"
#: the probes of the intervention, peft and sequence evaluations (the in-domain contrast only in the runs table)
NEWS = ("news",)


def has_learned(acc: float, res: Any) -> bool:
    """Whether a run with accuracy ``acc`` learned the task (see ``LEARNED_MARGIN``); ``res`` holds the head-only
    accuracy (``base_metrics``) and the task's chance level (``task``)."""
    base, task = (res["base_metrics"], res["task"]) if isinstance(res, dict) else (res.base_metrics, res.task)
    floor = max(base["acc_head_only"], task["chance_uniform"]) + LEARNED_MARGIN
    return bool(acc >= floor)


def _cache_cfg(cfg: Config, task: TextTask) -> dict[str, Any]:
    """The config fields a fine-tuning run depends on, plus the data's fingerprint."""
    keys = (
        "model",
        "target_modules",
        "max_length",
        "n_test_per_class",
        "steps",
        "batch_size",
        "warmup_frac",
        "precision",
        "head_lr",
        "seed",
    )
    return {**{k: getattr(cfg, k) for k in keys}, "data": task.fingerprint()}


def get_finetune(
    base: Base, task: TextTask, spec: RunSpec, cfg: Config, run: Run, snapshot_every: int = 0
) -> FineTune:
    """One run on the target task, fine-tuned once per (config, data, spec, snapshots, source) and cached."""
    enc = encode(base.tokenizer, task.texts, cfg.max_length)
    key = {**_cache_cfg(cfg, task), "spec": asdict(spec), "snapshot_every": snapshot_every}
    tag = spec.method if spec.method != "lora" else f"r{spec.rank}"
    return run.cached(
        f"lora-ft-{tag}",
        lambda: finetune(base, task, enc, spec, cfg, run.device, snapshot_every=snapshot_every),
        key=key,
        module=TRAINING_MODULE,
    )


def iter_sequence(
    base: Base, tasks: list[TextTask], spec: RunSpec, cfg: Config, run: Run, first: FineTune
) -> Iterator[FineTune]:
    """Sequential fine-tuning, one stage at a time: ``first`` (the run on the target task) then each later task of
    ``tasks`` in turn: after each task the update is merged and a fresh adapter (or, for full FT, the same dense
    parameters) and a new head are trained on the next task for ``cfg.seq_steps`` steps. Holds one finished stage
    at a time (a full-FT stage is ~80 MB at MiniLM's size: its start weights and its update)."""
    prev: FineTune | None = first
    del first  # held as prev, until the next stage has its start weights
    yield prev
    for i, task in enumerate(tasks[1:], start=1):
        assert prev is not None
        start, start_bias = prev.weights(base), prev.biases(base)
        prev = None  # the stage before is the caller's to keep
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

        prev = run.cached(f"lora-seq{i}", fit, key=key, module=TRAINING_MODULE)
        del fit, start, start_bias
        yield prev


def get_sequence(
    base: Base, tasks: list[TextTask], spec: RunSpec, cfg: Config, run: Run, first: FineTune
) -> list[FineTune]:
    """Every stage of :func:`iter_sequence` (``first``, then one per later task)."""
    return list(iter_sequence(base, tasks, spec, cfg, run, first))


def run_row(
    spec: RunSpec,
    ev: dict[str, float],
    analysis: dict[str, dict[str, Any]],
    cfg: Config,
    base: dict[str, float],
    train_s: float,
    null: dict[float, float],
) -> dict[str, Any]:
    """One row of the runs table: spec, accuracy, intruders at every epsilon and what the random-direction null of
    the same update scores there (``null``: epsilon -> mean count, :func:`intruders.null_intruders`; NaN without
    draws), forgetting on both probes (the rise of the retrieval loss over the base model's), representational
    drift, update statistics."""
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
        **forgetting_of(ev, base),
        "dw_rel_norm": float(np.sqrt(np.mean(np.square(norms)))) if norms else 0.0,
        "dw_erank_mean": float(np.mean([a["dw_erank"] for a in analysis.values()])) if analysis else 0.0,
        "train_s": round(train_s, 1),
    }
    for eps in cfg.epsilons:
        row[f"intruders@{eps:g}"] = count_intruders(analysis, eps)
        row[f"null@{eps:g}"] = null.get(eps, float("nan"))
    row["null"] = row[f"null@{cfg.epsilon:g}"]
    return row


def run_null(
    svd: dict[str, Any], W: dict[str, torch.Tensor], base_W0: dict[str, torch.Tensor], cfg: Config, i: int
) -> dict[float, float]:
    """The random-direction null of run ``i`` of :func:`iter_runs` (``cfg.null_draws`` draws, seeded by the
    config's seed and the run's index so that every run has its own draws); empty without draws."""
    if not cfg.null_draws:
        return {}
    return null_intruders(svd, W, base_W0, cfg.top_k, cfg.epsilons, cfg.null_draws, seed=1000 * cfg.seed + i)


def forgetting_of(ev: dict[str, float], base: dict[str, float]) -> dict[str, float]:
    """Forgetting (the retrieval loss's rise over the base model's) and drift on the news probe (the measure) and
    the Python-docs probe (the in-domain contrast)."""
    out = {"forgetting": ev["infonce"] - base["infonce"], "retrieval_top1": ev["top1"], "drift": ev["drift"]}
    if "infonce_pydocs" in ev:
        out |= {
            "forgetting_pydocs": ev["infonce_pydocs"] - base["infonce_pydocs"],
            "drift_pydocs": ev["drift_pydocs"],
        }
    return out


def _slim(analysis: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        n: {**{k: v for k, v in a.items() if k != "dw_top_sv"}, "dw_top_sv": a["dw_top_sv"][:16]}
        for n, a in analysis.items()
    }


def intruders_over_steps(
    fts: dict[str, FineTune], final: dict[str, int], base: Base, svd: dict[str, Any], cfg: Config
) -> list[dict[str, Any]]:
    """Intruder counts of every run that kept snapshots, at each snapshot and at the end (``final``, already
    counted) -- intruders vs steps."""
    out = []
    for name, ft in fts.items():
        out.append({"run": name, "lr": ft.spec.lr, "step": 0, "intruders": 0})  # B = 0 at init: W = W0
        for i, (step, _) in enumerate(ft.snapshots or []):
            W = ft.weights_at(base, i)
            n = sum(int((intruder_scores(svd[m], W[m], cfg.top_k) < cfg.epsilon).sum()) for m in base.modules)
            out.append({"run": name, "lr": ft.spec.lr, "step": step, "intruders": n})
        out.append({"run": name, "lr": ft.spec.lr, "step": cfg.steps, "intruders": final[name]})
    return out


def intervene_on(
    ft: FineTune, an: dict[str, dict[str, Any]], base: Base, task: TextTask, ev: Evaluator, cfg: Config
) -> tuple[dict[str, list[int]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The intervention on one run (Sec. 6): its top intruders scaled by each lambda, with the paper's neighbour
    control and a matched-norm control (:func:`intruders.intervention_rows`), and peft's
    ``reduce_intruder_dimension`` at lambda 0 and ~0.75; the rows carry accuracy, forgetting and drift."""
    W, b = ft.weights(base), ft.biases(base)
    targets = intervention_targets(W, an, cfg.epsilon)
    base_f = ev.base_metrics

    def measure(edited: dict[str, Any]) -> dict[str, Any]:
        m = ev.evaluate(edited, b, {"a": (task, ft.head)}, NEWS)
        return {"acc": m["acc_a"], **forgetting_of(m, base_f)}

    rows = intervention_rows(W, targets, cfg.lambdas, measure)
    peft_rows = []
    for lam in sorted({min(cfg.lambdas, key=lambda x: abs(x - 0.75)), 0.0} & set(cfg.lambdas)):
        m = ev.evaluate(peft_reduce_intruders(base, ft, cfg, lam), b, {"a": (task, ft.head)}, NEWS)
        peft_rows.append({"lambda": lam, "acc": m["acc_a"], **forgetting_of(m, base_f)})
    return {n: list(v) for n, v in targets.items()}, rows, peft_rows


def choose_intervened(cfg: Config, rows: list[dict[str, Any]], known: Any) -> str | None:
    """The run the intervention edits: the headline run at the paper's rule, if it learned the task and has an
    intruder (the issue-19 choice; it was the lr-sweep run with the most intruders); None otherwise."""
    name = cfg.headline_run().name
    row = next(r for r in rows if r["run"] == name)
    return name if row["intruders"] > 0 and has_learned(row["acc"], known) else None


def snapshotted(cfg: Config) -> set[str]:
    """The runs that keep factor snapshots for intruders vs steps: the lr sweep and every rank at the paper's rule
    (issue 33.3: whether the higher ranks' intruders are only late)."""
    return {s.name for family in ("lr sweep", "alpha=2r") for s in cfg.families()[family]}


#: the base model the jobs of :func:`share_with_kernel` train from, one per process (finetune copies it): a worker
#: loads its own on its first job; the kernel's is :func:`compute`'s (``train_in_parallel``'s ``base``), so that the kernel holds one
#: base, not two, while it trains (issue 32: the full tier's peak memory)
_BASES: dict[tuple[str, int, str], Base] = {}


def _job_base(model: str, seed: int, target_modules: str) -> Base:
    """The base model of the jobs of :func:`share_with_kernel` in this process, loaded on first use."""
    key = (model, seed, target_modules)
    if key not in _BASES:
        _BASES.clear()
        _BASES[key] = load_base(Config(model=model, seed=seed, target_modules=target_modules))
    return _BASES[key]


def _release_freed_memory() -> None:
    """Hand the heap pages a finished job freed back to the system (glibc's ``malloc_trim``; nothing elsewhere), so
    that a process's resident size after a job is what it still holds, not its largest job's high-water mark."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _train_job(run: Run, spec: RunSpec, snapshot_every: int) -> None:
    """A job of :func:`share_with_kernel`: fine-tune one run on the target task into the cache, through the same
    :func:`get_finetune` call as :func:`run_study`."""
    cfg = run.cfg
    base = _job_base(cfg.model, cfg.seed, cfg.target_modules)
    get_finetune(base, build_task(cfg, cfg.task), spec, cfg, run, snapshot_every)
    _release_freed_memory()


def _sequence_job(run: Run, spec: RunSpec, snapshot_every: int) -> None:
    """A job: the sequential panel of one method, after its (cached) run on the target task."""
    cfg = run.cfg
    base = _job_base(cfg.model, cfg.seed, cfg.target_modules)
    tasks = [build_task(cfg, t) for t in (cfg.task, *cfg.seq_tasks)]
    stages = iter_sequence(
        base, tasks, spec, cfg, run, get_finetune(base, tasks[0], spec, cfg, run, snapshot_every)
    )
    collections.deque(stages, maxlen=0)  # each stage into the cache, none kept here
    _release_freed_memory()


def share_with_kernel(run: Run, jobs: list[workers_lib.Job], workers: int | None = None) -> int:
    """Train ``jobs`` on ``n`` processes, this one (the notebook's kernel) and ``n - 1`` spawned workers
    (:func:`phenomena.workers.active`: ``workers``, else ``$PHENOMENA_WORKERS``, else the core count), each taking
    the next job in order as it frees up; returns ``n`` (0: nothing ran here, the sequential code trains as usual).

    Unlike :func:`phenomena.workers.prefill` the kernel trains too, so one process fewer holds torch, transformers and
    a model (~0.75 GB each: the quick tier's peak was 2.4 GB with two workers beside the kernel, issue 32). A job in
    the kernel runs as in a worker (:func:`phenomena.workers._child`: seeded with the config's seed, one thread), so
    its result is the worker's; the kernel's random state and thread count are restored afterwards. A worker's error
    is raised here; :data:`phenomena.workers.DEADLINE_S` bounds every wait."""
    n = workers_lib.active(run, len(jobs), workers)
    if not n:
        return 0
    child = replace(run, device=torch.device("cpu"), threads=1)
    todo, lock, errors = list(jobs), threading.Lock(), []
    deadline = time.monotonic() + workers_lib.DEADLINE_S
    print(
        f"fine-tuning runs: {len(jobs)} in this process and {n - 1} worker process(es) "
        f"(${workers_lib.WORKERS_ENV}={n}; 1 trains them in this process alone)"
    )

    def take() -> workers_lib.Job | None:
        with lock:
            return todo.pop(0) if todo and not errors else None

    def feed(pool: ProcessPoolExecutor) -> None:
        while (job := take()) is not None:
            fn, args = job
            try:
                left = max(1.0, deadline - time.monotonic())
                pool.submit(workers_lib._child, fn, child, tuple(args)).result(timeout=left)
            except BaseException as err:  # re-raised in the kernel below
                errors.append(err)
                return

    state = (random.getstate(), np.random.get_state(), torch.get_rng_state(), torch.get_num_threads())
    with ProcessPoolExecutor(max_workers=n - 1, mp_context=multiprocessing.get_context("spawn")) as pool:
        feeders = [threading.Thread(target=feed, args=(pool,), daemon=True) for _ in range(n - 1)]
        for t in feeders:
            t.start()
        try:
            while (job := take()) is not None:
                fn, args = job
                workers_lib._child(fn, child, tuple(args))
        except BaseException as err:
            errors.append(err)
        finally:
            _BASES.clear()  # the kernel's jobs' base (compute's, when it lent it, stays with compute)
            random.setstate(state[0])
            np.random.set_state(state[1])
            torch.set_rng_state(state[2])
            torch.set_num_threads(state[3])
        for t in feeders:
            t.join(timeout=max(1.0, deadline - time.monotonic()))
        if any(t.is_alive() for t in feeders) and not errors:
            errors.append(TimeoutError(f"fine-tuning runs did not finish within {workers_lib.DEADLINE_S} s"))
    if errors:
        raise errors[0]
    return n


def train_in_parallel(cfg: Config, run: Run, workers: int | None = None, base: Base | None = None) -> int:
    """Fill the cache with every fine-tuning run of :func:`run_study` on this process and worker processes
    (:func:`share_with_kernel`; a no-op for one worker, off the CPU or without the cache), longest first: the runs on
    the target task, the head-only reference, then the two sequential panels (if ``seq_tasks`` names any), which
    start from the full FT and headline runs, taken first (were one not cached yet, its panel would train it again:
    the same result, only slower). Every run is seeded on its own (:func:`finetune.finetune`), so a run trained
    elsewhere is the run trained here. ``base``, the caller's base model of ``cfg``, is the one the jobs in this
    process train from (each fine-tuning run copies it); without it this process loads a second. Returns the number
    of processes that trained."""
    snapped = snapshotted(cfg)
    snap = {s.name: cfg.snapshot_every if s.name in snapped else 0 for s in iter_runs(cfg)}
    specs = sorted(iter_runs(cfg), key=lambda s: s.method != "full")  # full FT (the slowest steps) first
    jobs: list[workers_lib.Job] = [(_train_job, (s, snap[s.name])) for s in specs]
    jobs.append((_train_job, (head_run(cfg), 0)))
    if cfg.seq_tasks:
        jobs += [(_sequence_job, (s, snap[s.name])) for s in (cfg.full_run(), cfg.headline_run())]
    if base is not None:
        _BASES.clear()
        _BASES[(cfg.model, cfg.seed, cfg.target_modules)] = base
    try:
        return share_with_kernel(run, jobs, workers)
    finally:
        _BASES.clear()


def run_study(cfg: Config, base: Base, run: Run) -> dict[str, Any]:
    """Every number of the notebook: fine-tune (cached) and evaluate every run, analyse its spectra, count
    intruders during the lr-sweep runs and the ranks at the rule, run the intervention (and peft's variant) on the
    headline run at the paper's rule (:func:`choose_intervened`), and the sequential panel. Returns the fields of
    :class:`Results` but ``base``."""
    t0 = time.perf_counter()
    task = build_task(cfg, cfg.task)
    later = [build_task(cfg, t) for t in cfg.seq_tasks]
    ev = Evaluator(base, cfg, run.device)
    svd = base_svds(base)
    base_f = ev.base_metrics
    head = get_finetune(base, task, head_run(cfg), cfg, run)
    base_f["acc_head_only"] = ev.accuracy(task, head.head)
    snapped = snapshotted(cfg)
    rows, analyses, fts = [], {}, {}
    for i, spec in enumerate(iter_runs(cfg)):
        ft = get_finetune(base, task, spec, cfg, run, cfg.snapshot_every if spec.name in snapped else 0)
        W = ft.weights(base)
        metrics = ev.evaluate(W, ft.biases(base), {"a": (task, ft.head)})
        an = analyse(svd, W, base.W0, cfg.top_k)
        null = run_null(svd, W, base.W0, cfg, i)
        rows.append(run_row(spec, metrics, an, cfg, base_f, ft.train_s, null))
        analyses[spec.name] = _slim(an)
        fts[spec.name] = ft
    final = {r["run"]: r["intruders"] for r in rows}
    steps = intruders_over_steps({n: fts[n] for n in snapped}, final, base, svd, cfg)
    intervened = choose_intervened(cfg, rows, {"base_metrics": base_f, "task": task.describe()})
    targets, inter, peft_rows = {}, [], []
    if intervened:
        targets, inter, peft_rows = intervene_on(fts[intervened], analyses[intervened], base, task, ev, cfg)
    # sequential fine-tuning: full FT vs the headline LoRA on the target task, then each later task (none when
    # seq_tasks is empty, the quick tier: no sequential panel)
    seq = []
    names = ["a", *(f"seq{i}" for i in range(1, len(later) + 1))]
    for spec in (cfg.full_run(), cfg.headline_run()) if later else ():
        stages = get_sequence(base, [task, *later], spec, cfg, run, fts[spec.name])
        for i, st in enumerate(stages):
            heads = {names[j]: ([task, *later][j], stages[j].head) for j in range(i + 1)}
            Wi = st.weights(base)
            m = ev.evaluate(Wi, st.biases(base), heads, NEWS)
            an = analyse(svd, Wi, base.W0, cfg.top_k)
            seq.append(
                {
                    "method": "full FT" if spec.method == "full" else f"LoRA r={spec.rank}",
                    "stage": i + 1,
                    "trained_on": [cfg.task, *cfg.seq_tasks][i],
                    "intruders": count_intruders(an, cfg.epsilon),
                    **{k: v for k, v in m.items() if k.startswith("acc_")},
                    **forgetting_of(m, base_f),
                }
            )
    return {
        "finetunes": {
            "full": fts[cfg.full_run().name],
            "headline": fts[cfg.headline_run().name],
            **({"intervened": fts[intervened]} if intervened else {}),
        },
        "base_metrics": base_f,
        "task": task.describe(),
        "seq_tasks": {t.name: t.describe() for t in later},
        "rows": rows,
        "analyses": analyses,
        "steps": steps,
        "intervened": intervened,
        "targets": targets,
        "intervention": inter,
        "peft": peft_rows,
        "sequence": seq,
        "compute_s": time.perf_counter() - t0,
    }


def compute(cfg: Config, run: Run, workers: int | None = None) -> Results:
    """Load the base model and return :func:`run_study`'s results, cached as a whole on the config and source
    (re-runs are instant; the fine-tuning runs are also cached one by one). The fine-tuning runs train first in
    worker processes (:func:`train_in_parallel`: ``workers``, else ``$PHENOMENA_WORKERS``, else the core count)."""
    base = load_base(cfg)

    def study() -> dict[str, Any]:
        train_in_parallel(cfg, run, workers, base)
        return run_study(cfg, base, run)

    return Results(base=base, **run.cached("lora-results", study))
