"""Sweep tasks: one task = (study, preset, seed, overrides) = one papermill run of the study's notebook.

Where a task's outputs go (its build folder, the committed per-seed results, the over-seeds summary), how its config
is validated, whether its committed results are current (same config, same source hash: then a rerun skips it), and
the exact papermill command and environment it runs with. :mod:`phenomena.executors` runs tasks,
:mod:`phenomena.aggregate` summarises them over seeds and :mod:`phenomena.sweep` ties it together.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from phenomena import studies
from phenomena.paths import jsonable, normalize, repo_root, sweep_dir, tag_of
from phenomena.rejudge import rejudge_record
from phenomena.run import study_source_hash

#: Rough cost order of the studies (slowest first): pools start the longest notebooks first.
COST_ORDER = ("lora_intruder_dimensions", "icl_linear_regression", "powerlaw_rehearsal", "induction_heads")


DEVICES = ("auto", "cpu", "cuda")


EXECUTORS = ("local", "submitit")


RAN, SKIPPED, FAILED = "ran", "skipped", "failed"


Mode = Literal["sweep", "figures"]


_PRINT_LOCK = threading.Lock()


def say(message: str) -> None:
    """Print one progress line (whole lines, even from several worker threads)."""
    with _PRINT_LOCK:
        print(message, flush=True)


@dataclass(frozen=True)
class Task:
    """One notebook run: a study at a preset and seed, with config overrides."""

    study: str
    preset: str
    seed: int
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def tag(self) -> str:
        return tag_of(self.preset, self.overrides)

    @property
    def label(self) -> str:
        return f"{self.study} {self.tag} seed {self.seed}"


@dataclass
class TaskResult:
    """What became of a task: ``ran``, ``skipped`` (its committed results are current) or ``failed``."""

    task: Task
    status: str
    wall_s: float = 0.0
    peak_rss_mb: float | None = None
    error: str | None = None
    attempts: int = 0
    log: str | None = None

    def line(self) -> str:
        """The one-line summary printed for every task."""
        mem = f"{self.peak_rss_mb:6.0f} MiB" if self.peak_rss_mb is not None else "     - MiB"
        return (
            f"[{self.status:<7}] {self.task.study:<26} {self.task.tag:<16} seed {self.task.seed:<4}"
            f"{self.wall_s:8.1f} s {mem}"
        )


@dataclass(frozen=True)
class Options:
    """How tasks run: where (``root``), on which ``device``, in which ``mode``, and for at most how long."""

    root: Path
    mode: Mode = "sweep"
    device: str = "auto"
    threads: int = 1
    timeout_min: int = 240


def seed_results_path(root: Path, task: Task) -> Path:
    """Committed per-seed results: ``data/sweeps/<study>/<tag>/seed-<n>/results.json``."""
    return sweep_dir(root, task.study, task.tag) / f"seed-{task.seed}" / "results.json"


def build_dir(options: Options, task: Task) -> Path:
    """Scratch output root of a task: ``build/sweeps/<study>/<tag>/seed-<n>/`` (``build/`` in figures mode)."""
    if options.mode == "figures":
        return options.root / "build"
    return options.root / "build" / "sweeps" / task.study / task.tag / f"seed-{task.seed}"


def parse_studies(text: str) -> list[str]:
    """``"all"`` -> every study; ``"a,b"`` -> [a, b]. Unknown names raise ``ValueError`` naming the allowed ones."""
    names = (
        list(studies.names()) if text.strip() == "all" else [s.strip() for s in text.split(",") if s.strip()]
    )
    if not names:
        raise ValueError(f"study={text!r}: no study given; allowed: 'all' or {list(studies.names())}")
    for name in names:
        studies.load(name)
    return names


def check_names(tasks: Sequence[Task], device: str = "auto") -> None:
    """Raise ``ValueError`` naming the allowed values for an unknown study, preset or device (before any run)."""
    if device not in DEVICES:
        raise ValueError(f"device={device!r} is not allowed: expected one of {list(DEVICES)}")
    for task in tasks:
        presets = sorted(studies.load(task.study).Config.PRESETS)
        if task.preset not in presets:
            raise ValueError(
                f"preset={task.preset!r} is not allowed for {task.study}: expected one of {presets}"
            )


def expected_config(task: Task) -> dict[str, Any]:
    """The task's full config as the notebook will build (and record) it; ``ValueError`` for a bad override."""
    config_cls = studies.load(task.study).Config
    return jsonable(config_cls.from_preset(task.preset, seed=task.seed, **task.overrides).to_dict())


def is_current(task: Task, root: Path) -> bool:
    """Whether the task's committed results exist, for exactly its config and the study's current source; results
    whose metrics are current but whose claims code changed are re-judged in place (:mod:`phenomena.rejudge`)."""
    path = seed_results_path(root, task)
    if not path.exists():
        return False
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError:
        return False
    if record.get("config") != expected_config(task):
        return False
    if record.get("source_hash") == study_source_hash(task.study):
        return True
    return rejudge_record(path) == "rejudged"


def by_cost(tasks: Sequence[Task]) -> list[Task]:
    """``tasks`` with the slowest studies first (:data:`COST_ORDER`), then by seed."""

    def rank(task: Task) -> tuple[int, str, int]:
        order = COST_ORDER.index(task.study) if task.study in COST_ORDER else len(COST_ORDER)
        return order, task.study, task.seed

    return sorted(tasks, key=rank)


def overrides_yaml(overrides: dict[str, Any]) -> str:
    """The ``-y`` argument of papermill: ``{overrides: {...}}`` as YAML that reads back to exactly ``overrides``
    (JSON would not: YAML 1.1 reads ``1e-07`` as a string)."""
    text = yaml.safe_dump({"overrides": overrides}, default_flow_style=True, width=10**9).strip()
    if yaml.safe_load(text) != {"overrides": overrides}:
        raise ValueError(f"overrides {overrides!r} do not survive a YAML round trip")
    return text


def papermill_command(task: Task, options: Options, executed: Path) -> list[str]:
    """The papermill call that runs the task's notebook into ``executed``."""
    notebooks = repo_root() / "notebooks"
    params = {"preset": task.preset, "seed": task.seed, "device": options.device, "threads": options.threads}
    return [
        sys.executable,
        "-m",
        "papermill",
        str(notebooks / f"{task.study}.ipynb"),
        str(executed),
        "--cwd",
        str(notebooks),
        "-k",
        "python3",
        "--no-progress-bar",
        "--execution-timeout",
        str(options.timeout_min * 60),
        *(arg for name, value in params.items() for arg in ("-p", name, str(value))),
        "-y",
        overrides_yaml(normalize(task.overrides)),
    ]


def task_env(options: Options, out_root: Path) -> dict[str, str]:
    """The environment of a notebook run: outputs under ``out_root``, single-threaded, offline, headless."""
    env = dict(os.environ)
    env.pop("PHENOMENA_PRESET", None)  # it would override the task's preset
    threads = str(options.threads)
    env.update(
        PHENOMENA_OUT=str(out_root),
        PHENOMENA_THREADS=threads,
        OMP_NUM_THREADS=threads,
        MKL_NUM_THREADS=threads,
        OPENBLAS_NUM_THREADS=threads,
        PHENOMENA_HEADLESS="1",
        # notebooks here run side by side (make figures, sweeps): no worker processes unless asked for
        PHENOMENA_WORKERS=env.get("PHENOMENA_WORKERS", "1"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONHASHSEED="0",
    )
    if options.mode == "sweep":  # one cache for all seeds (seed 0 reuses `make figures`'); writes are atomic
        env.setdefault("PHENOMENA_CACHE", str(options.root / "data" / "cache"))
    return env
