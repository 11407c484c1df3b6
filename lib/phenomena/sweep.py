"""Sweeps: run the studies' notebooks over seeds (and config overrides), then judge every claim over the seeds.

A *task* is ``(study, preset, seed, overrides)``. It runs the study's notebook with papermill, exactly as
``make study-<name>`` does, but into its own build folder ``build/sweeps/<study>/<tag>/seed-<n>/`` (``tag`` is
the preset, plus a short hash of the overrides when there are any), single-threaded, with claims *recorded* rather
than enforced (``PHENOMENA_CLAIMS=record``): one seed landing on the wrong side of a threshold is what the sweep is
there to weigh. The results file it writes is copied to ``data/sweeps/<study>/<tag>/seed-<n>/results.json``
(committed). A task whose committed results match its config and the study's current source hash is skipped, so a
rerun runs only what is missing or stale.

Executors: ``local`` (default) drives at most ``jobs`` notebooks at once from a thread pool; ``submitit`` submits
the same task function through submitit (Slurm when present; ``cluster="local"`` runs jobs as local processes).
At the end of a sweep, :func:`aggregate` writes ``data/sweeps/<study>-<tag>.json``: per claim, the per-seed
values, their mean, 95% Student-t interval and the verdict that interval gives (:mod:`phenomena.stats`).

``figures`` mode is ``make figures``: every study at seed 0 into the committed ``figures/`` and ``data/results/``,
claims enforced, longest notebooks first. Every path hangs off a ``root`` (default: the repository), so tests can
run everything in a scratch folder; the notebooks are always read from the repository's ``notebooks/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import matplotlib.pyplot as plt
import yaml

from phenomena import figures, studies
from phenomena.claims import NOT_EVALUATED
from phenomena.paths import atomic_path, jsonable, output_root, repo_root, write_json
from phenomena.run import study_source_hash
from phenomena.stats import t_interval, verdict

#: Rough cost order of the studies (slowest first): pools start the longest notebooks first.
COST_ORDER = ("lora_intruder_dimensions", "icl_linear_regression", "powerlaw_rehearsal", "induction_heads")
DEVICES = ("auto", "cpu", "cuda")
EXECUTORS = ("local", "submitit")
#: Signs that a notebook's kernel failed to *start* (e.g. two kernels picked the same ports: papermill #511).
KERNEL_START_ERRORS = (
    "Kernel died before replying to kernel_info",
    "Kernel didn't respond",
    "Address already in use",
    "ZMQError",
)
RAN, SKIPPED, FAILED = "ran", "skipped", "failed"
Mode = Literal["sweep", "figures"]
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_PRINT_LOCK = threading.Lock()
_LIVE: set[subprocess.Popen[bytes]] = set()
_LIVE_LOCK = threading.Lock()
_STOPPING = threading.Event()


def say(message: str) -> None:
    """Print one progress line (whole lines, even from several worker threads)."""
    with _PRINT_LOCK:
        print(message, flush=True)


# --------------------------------------------------------------------------------------------------- tasks


def normalize(overrides: dict[str, Any] | None) -> dict[str, Any]:
    """``overrides`` as plain JSON data (tuples become lists), keys sorted."""
    data = jsonable(dict(overrides or {}))
    return {k: data[k] for k in sorted(data)}


def tag_of(preset: str, overrides: dict[str, Any] | None) -> str:
    """``preset``, or ``<preset>-<8 hex chars>`` of a hash of the overrides' sorted JSON when there are any."""
    data = normalize(overrides)
    if not data:
        return preset
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    return f"{preset}-{digest[:8]}"


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


def sweep_dir(root: Path, study: str, tag: str) -> Path:
    """The committed folder of a study's sweep at ``tag``: ``data/sweeps/<study>/<tag>/``."""
    return root / "data" / "sweeps" / study / tag


def seed_results_path(root: Path, task: Task) -> Path:
    """Committed per-seed results: ``data/sweeps/<study>/<tag>/seed-<n>/results.json``."""
    return sweep_dir(root, task.study, task.tag) / f"seed-{task.seed}" / "results.json"


def summary_path(root: Path, study: str, tag: str) -> Path:
    """The over-seeds summary: ``data/sweeps/<study>-<tag>.json``."""
    return root / "data" / "sweeps" / f"{study}-{tag}.json"


def build_dir(options: Options, task: Task) -> Path:
    """Scratch output root of a task: ``build/sweeps/<study>/<tag>/seed-<n>/`` (``build/`` in figures mode)."""
    if options.mode == "figures":
        return options.root / "build"
    return options.root / "build" / "sweeps" / task.study / task.tag / f"seed-{task.seed}"


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` -> [0, 1, 2, 3, 4]; ``"0,2,5"``; ``"0-2,7"``. Sorted, without repeats."""
    seeds: set[int] = set()
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        lo, sep, hi = part.partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise ValueError(f"seeds={text!r}: expected non-negative integers such as '0-4' or '0,2,5'")
        first, last = int(lo), int(hi) if sep else int(lo)
        if last < first:
            raise ValueError(f"seeds={text!r}: the range {part!r} is empty")
        seeds.update(range(first, last + 1))
    if not seeds:
        raise ValueError(f"seeds={text!r}: no seeds given")
    return sorted(seeds)


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
    """Whether the task's committed results exist, for exactly its config and the study's current source."""
    path = seed_results_path(root, task)
    if not path.exists():
        return False
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError:
        return False
    return record.get("config") == expected_config(task) and record.get("source_hash") == study_source_hash(
        task.study
    )


def by_cost(tasks: Sequence[Task]) -> list[Task]:
    """``tasks`` with the slowest studies first (:data:`COST_ORDER`), then by seed."""

    def rank(task: Task) -> tuple[int, str, int]:
        order = COST_ORDER.index(task.study) if task.study in COST_ORDER else len(COST_ORDER)
        return order, task.study, task.seed

    return sorted(tasks, key=rank)


# ----------------------------------------------------------------------------------------- running a task


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
        MPLBACKEND="Agg",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONHASHSEED="0",
    )
    if options.mode == "sweep":  # one cache for all seeds (seed 0 reuses `make figures`'); writes are atomic
        env.setdefault("PHENOMENA_CACHE", str(options.root / "data" / "cache"))
        env["PHENOMENA_CLAIMS"] = "record"
    else:
        env.pop("PHENOMENA_CLAIMS", None)  # claims enforced: an unexpected outcome fails `make figures`
    return env


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Interrupt a notebook run's process group (papermill shuts its kernel down), then kill what is left."""
    for sig, grace in ((signal.SIGINT, 15.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def stop_all() -> None:
    """Stop every notebook run this process started and is still waiting for, and start no more (on Ctrl-C)."""
    _STOPPING.set()
    with _LIVE_LOCK:
        live = list(_LIVE)
    for proc in live:
        _stop(proc)


def run_logged(command: list[str], env: dict[str, str], log: Path, timeout_s: float) -> int:
    """Run ``command`` with stdout+stderr to ``log``; its exit code (124 on timeout, 130 once interrupted).

    It runs in its own session, so Ctrl-C in the terminal reaches only the sweep, which stops it (:func:`stop_all`).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        with _LIVE_LOCK:
            if _STOPPING.is_set():
                out.write(b"[sweep] not started: the sweep was interrupted\n")
                return 130
            proc = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
            _LIVE.add(proc)
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _stop(proc)
            out.write(f"\n[sweep] killed: still running after {timeout_s / 60:.0f} min\n".encode())
            return 124
        except BaseException:  # Ctrl-C, or submitit cancelling the job: never orphan the notebook
            _stop(proc)
            raise
        finally:
            with _LIVE_LOCK:
                _LIVE.discard(proc)


def failure_text(log_text: str, max_lines: int = 40) -> str:
    """The useful end of a failed run's log: papermill's cell exception when there is one, else the last lines."""
    lines = _ANSI.sub("", log_text).rstrip().splitlines()
    start = next((i for i, line in enumerate(lines) if "PapermillExecutionError" in line), None)
    if start is not None:
        lines = lines[start:]
    return "\n".join(lines[-max_lines:]) or "(empty log)"


def is_kernel_start_failure(log_text: str) -> bool:
    """Whether a failed run's log says the kernel never started (worth one retry)."""
    return any(sign in log_text for sign in KERNEL_START_ERRORS)


def results_written(options: Options, task: Task) -> Path:
    """Where the notebook writes its results file (under its output root)."""
    out_root = options.root if options.mode == "figures" else build_dir(options, task)
    return out_root / "data" / "results" / f"{task.study}.json"


def execute(task: Task, options: Options, runner: Callable[..., int] = run_logged) -> TaskResult:
    """Run the task's notebook (retrying once after a kernel start failure); the failure text if it failed."""
    out_dir = build_dir(options, task)
    figures_mode = options.mode == "figures"
    executed = out_dir / f"{task.study}.ipynb"
    log = out_dir / (f"{task.study}.log" if figures_mode else "log.txt")
    env = task_env(options, options.root if figures_mode else out_dir)
    results_written(options, task).unlink(missing_ok=True)  # never mistake an old results file for this run's
    command = papermill_command(task, options, executed)
    started = time.perf_counter()
    for attempt in (1, 2):
        code = runner(command, env, log, options.timeout_min * 60.0)
        text = log.read_text(errors="replace") if log.exists() else ""
        if code == 0 or attempt == 2 or not is_kernel_start_failure(text):
            break
        say(f"[retry  ] {task.label}: the kernel did not start; trying once more")
        shutil.copyfile(log, log.with_name(f"{log.stem}.attempt1{log.suffix}"))
    wall = time.perf_counter() - started
    if code != 0:
        error = f"papermill exited with {code}; log: {log}\n{failure_text(text)}"
        return TaskResult(task, FAILED, wall, error=error, attempts=attempt, log=str(log))
    return TaskResult(task, RAN, wall, attempts=attempt, log=str(log))


def publish(task: Task, options: Options, result: TaskResult) -> TaskResult:
    """Check the results file the run wrote and (sweep mode) copy it atomically to its committed place."""
    written = results_written(options, task)
    if not written.exists():
        result.status, result.error = FAILED, f"the run wrote no results file at {written}"
        return result
    record = json.loads(written.read_text())
    result.peak_rss_mb = record.get("peak_rss_mb")
    if record.get("config") != expected_config(task):
        result.status = FAILED
        result.error = (
            f"{written} holds config {record.get('config')}, not the task's {expected_config(task)}"
        )
        return result
    if options.mode == "sweep":
        with atomic_path(seed_results_path(options.root, task)) as tmp:
            shutil.copyfile(written, tmp)
    return result


def run_task(task: Task, options: Options) -> TaskResult:
    """Run one task and publish its results; never raises (an error is a ``failed`` result with its text).

    This is also the function the submitit executor ships to its jobs, so it must stay importable at top level.
    """
    try:
        result = execute(task, options)
        return publish(task, options, result) if result.status == RAN else result
    except Exception:
        return TaskResult(task, FAILED, error=traceback.format_exc())


# ------------------------------------------------------------------------------------------------- executors


def run_local(
    tasks: Sequence[Task], options: Options, jobs: int, report: Callable[[TaskResult], None]
) -> list[TaskResult]:
    """Run ``tasks`` on a pool of ``jobs`` workers, each driving one notebook process; results in task order."""
    results: dict[int, TaskResult] = {}
    _STOPPING.clear()
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="sweep") as pool:
        futures = {pool.submit(run_task, task, options): i for i, task in enumerate(tasks)}
        try:
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                report(results[futures[future]])
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            stop_all()
            raise
    return [results[i] for i in range(len(tasks))]


@dataclass(frozen=True)
class SubmititOptions:
    """Where submitit sends the tasks: ``cluster`` ``local`` | ``slurm`` | None (submitit picks: Slurm when
    present), the Slurm ``partition``, ``gpus`` per task (default 1 with ``device="cuda"``, else 0) and how many
    array tasks run at once (``array_parallelism``, default: ``jobs``)."""

    cluster: str | None = None
    partition: str | None = None
    gpus: int | None = None
    array_parallelism: int | None = None


def _job_result(task: Task, job: Any) -> TaskResult:
    """A submitit job's :class:`TaskResult`, or a failed one carrying the job's error (its stderr tail)."""
    try:
        return job.result()
    except Exception as err:
        return TaskResult(task, FAILED, error=f"submitit job {job.job_id} failed: {err}")


def run_submitit(
    tasks: Sequence[Task],
    options: Options,
    jobs: int,
    report: Callable[[TaskResult], None],
    sub: SubmititOptions,
) -> list[TaskResult]:
    """Run ``tasks`` as a submitit job array (``executor.map_array(run_task, ...)``).

    submitit's local cluster starts every submitted job at once, so there the tasks go in batches of ``jobs``;
    on Slurm they go as one array, at most ``array_parallelism`` running at a time.
    """
    try:  # an optional backend, imported here: the local pool and `phenomena run` never need it
        import submitit
    except ImportError as err:
        raise ValueError(
            "executor='submitit' needs the submitit package: pip install submitit==1.5.4"
        ) from err

    executor = submitit.AutoExecutor(
        folder=options.root / "build" / "sweeps" / "submitit", cluster=sub.cluster
    )
    gpus = sub.gpus if sub.gpus is not None else int(options.device == "cuda")
    executor.update_parameters(
        name="phenomena-sweep",
        timeout_min=options.timeout_min + 5,  # our own timeout ends the notebook first, with a message
        cpus_per_task=options.threads,
        gpus_per_node=gpus,
        slurm_partition=sub.partition,
        slurm_array_parallelism=sub.array_parallelism or jobs,
    )
    local = executor.cluster == "local"
    batch = max(1, jobs) if local else max(1, len(tasks))
    results: list[TaskResult] = []
    for start in range(0, len(tasks), batch):
        chunk = list(tasks[start : start + batch])
        submitted = executor.map_array(run_task, chunk, [options] * len(chunk))
        say(f"[submit ] {len(chunk)} job(s) on {executor.cluster}: {', '.join(j.job_id for j in submitted)}")
        try:
            for task, job in zip(chunk, submitted):
                results.append(_job_result(task, job))
                report(results[-1])
        except KeyboardInterrupt:
            _interrupt_jobs(submitted, local)
            raise
    return results


def _interrupt_jobs(submitted: Sequence[Any], local: bool) -> None:
    """On Ctrl-C: cancel local jobs (processes of this machine); leave cluster jobs running."""
    if local:
        for job in submitted:
            job.cancel(check=False)
        return
    say(
        "[stop   ] the cluster jobs keep running; rerun the same sweep to collect them (finished ones are skipped)"
    )


# ---------------------------------------------------------------------------------------------- aggregate


class AggregateError(ValueError):
    """The per-seed results of a sweep cannot be summarised together (mixed code versions or claim sets)."""


class NoResults(AggregateError):
    """There are no per-seed results to summarise."""


def seed_records(root: Path, study: str, tag: str) -> list[dict[str, Any]]:
    """The per-seed results of ``study`` at ``tag``, in seed order."""
    folders = sweep_dir(root, study, tag).glob("seed-*/results.json")
    pairs = sorted((int(p.parent.name.removeprefix("seed-")), p) for p in folders)
    records = []
    for seed, path in pairs:
        record = json.loads(path.read_text())
        if record.get("seed") != seed or record.get("study") != study:
            raise AggregateError(f"{path} holds study {record.get('study')!r} seed {record.get('seed')!r}")
        records.append(record)
    return records


def check_consistent(records: Sequence[dict[str, Any]], where: Path) -> None:
    """Raise :class:`AggregateError` unless every record has the same source hash and claim ids."""
    hashes: dict[str, list[int]] = {}
    for r in records:
        hashes.setdefault(str(r.get("source_hash")), []).append(r["seed"])
    if len(hashes) > 1:
        raise AggregateError(
            f"{where}: the seeds ran different code (source_hash -> seeds: {hashes}); rerun the sweep with "
            "these seeds so that the stale ones run again"
        )
    first = [c["id"] for c in records[0]["claims"]]
    for r in records[1:]:
        ids = [c["id"] for c in r["claims"]]
        if ids != first:
            raise AggregateError(
                f"{where}: seed {r['seed']} has claim ids {ids}, seed {records[0]['seed']} has {first}"
            )


def claim_value(row: dict[str, Any]) -> float | None:
    """A claim row's number, or None where it was not evaluated or is undefined (NaN, written as null)."""
    ours = row.get("ours")
    if row.get("passed") is None or isinstance(ours, bool) or not isinstance(ours, int | float):
        return None
    return float(ours)


def summarize_claim(rows: Sequence[dict[str, Any]], seeds: Sequence[int]) -> dict[str, Any]:
    """One claim over the seeds: its definition, per-seed values, mean, 95% t-interval, passes and verdict."""
    first = rows[0]
    values = [claim_value(r) for r in rows]
    evaluated = [v for v in values if v is not None]
    keys = ("id", "kind", "statement", "paper", "op", "bound", "threshold", "expect", "evidence")
    out: dict[str, Any] = {k: first.get(k) for k in keys}
    out.update(values=values, seeds=list(seeds), n=len(evaluated))
    if evaluated:
        mean, lo, hi = t_interval(evaluated)
        judged = verdict(first.get("op"), first.get("bound"), lo, hi)
    else:
        mean, lo, hi, judged = None, None, None, NOT_EVALUATED
    n_pass = sum(r.get("passed") is True for r in rows)
    out.update(mean=mean, lo=lo, hi=hi, n_pass=n_pass, verdict=judged)
    return out


def summary_record(study: str, preset: str, overrides: dict[str, Any], records: list[dict]) -> dict[str, Any]:
    """The over-seeds summary of a study's per-seed results (all consistent, in seed order)."""
    seeds = [r["seed"] for r in records]
    latest = max(records, key=lambda r: str(r.get("date")))
    dates = sorted(str(r.get("date")) for r in records)
    machines = sorted({f"{r.get('platform')}, {r.get('device')}" for r in records})
    claims = [
        summarize_claim([r["claims"][i] for r in records], seeds) for i in range(len(records[0]["claims"]))
    ]
    return {
        "study": study,
        "preset": preset,
        "tag": tag_of(preset, overrides),
        "overrides": normalize(overrides),
        "seeds": seeds,
        "git_sha": latest.get("git_sha"),
        "git_dirty": any(bool(r.get("git_dirty")) for r in records),
        "source_hash": records[0].get("source_hash"),
        "dates": [dates[0], dates[-1]],
        "machine": "; ".join(machines),
        "wall_time_s": {str(r["seed"]): r.get("wall_time_s") for r in records},
        "peak_rss_mb": {str(r["seed"]): r.get("peak_rss_mb") for r in records},
        "claims": claims,
    }


@contextmanager
def outputs_under(root: Path) -> Iterator[None]:
    """Point ``phenomena.paths`` (``PHENOMENA_OUT``) at ``root`` for the duration of the block."""
    old = os.environ.get("PHENOMENA_OUT")
    os.environ["PHENOMENA_OUT"] = str(root)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PHENOMENA_OUT", None)
        else:
            os.environ["PHENOMENA_OUT"] = old


def seed_figure(root: Path, summary: dict[str, Any], records: list[dict[str, Any]]) -> Path | None:
    """If the study defines ``seed_figure(records) -> Figure | None``, save its figure as
    ``figures/<study>/seeds_<tag>.png`` under ``root``; the path, or None."""
    study = summary["study"]
    make = getattr(studies.load(study), "seed_figure", None)
    if make is None:
        return None
    with outputs_under(root):
        figures.style()
        fig = make(records)
        if fig is None:
            return None
        keys = (
            "preset",
            "tag",
            "overrides",
            "seeds",
            "git_sha",
            "git_dirty",
            "source_hash",
            "dates",
            "machine",
        )
        path = figures.savefig(fig, study, f"seeds_{summary['tag']}", {k: summary[k] for k in keys})
        plt.close(fig)
    return path


def aggregate(root: Path, study: str, preset: str, overrides: dict[str, Any] | None = None) -> Path:
    """Summarise every ``data/sweeps/<study>/<tag>/seed-*/results.json`` into ``data/sweeps/<study>-<tag>.json``
    (atomically; the same inputs give the same bytes), then draw the study's seed figure if it has one.

    Raises :class:`NoResults` if there are no per-seed results, :class:`AggregateError` if they mix code versions
    or claim sets.
    """
    tag = tag_of(preset, overrides)
    where = sweep_dir(root, study, tag)
    records = seed_records(root, study, tag)
    if not records:
        raise NoResults(f"no per-seed results under {where}: run the sweep first")
    check_consistent(records, where)
    summary = summary_record(study, preset, overrides or {}, records)
    path = write_json(summary_path(root, study, tag), summary)
    current = study_source_hash(study)
    if summary["source_hash"] != current:
        say(
            f"[warning] {path}: the seeds ran code other than the current source (rerun the sweep to refresh)"
        )
    seed_figure(root, summary, records)
    return path


# ----------------------------------------------------------------------------------------- entry points


@dataclass
class SweepOutcome:
    """Everything a sweep did: every task's result, the summaries written, the aggregation errors, the time."""

    results: list[TaskResult]
    summaries: list[Path] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def statuses(self) -> dict[tuple[str, str, int], str]:
        return {(r.task.study, r.task.tag, r.task.seed): r.status for r in self.results}

    @property
    def ok(self) -> bool:
        return not self.errors and all(r.status != FAILED for r in self.results)


def report_result(result: TaskResult) -> None:
    """Print a task's summary line, and a failure's text below it."""
    say(result.line())
    if result.status == FAILED:
        say("\n".join(f"    {line}" for line in str(result.error).splitlines()))


def plan(tasks: Sequence[Task], options: Options) -> tuple[list[Task], list[TaskResult]]:
    """Split tasks into those to run and the settled ones: a bad override fails its task here, without running;
    in sweep mode a task with current committed results is skipped."""
    todo, settled = [], []
    for task in tasks:
        try:
            expected_config(task)
        except ValueError as err:
            settled.append(TaskResult(task, FAILED, error=f"invalid config: {err}"))
            continue
        if options.mode == "sweep" and is_current(task, options.root):
            record = json.loads(seed_results_path(options.root, task).read_text())
            settled.append(TaskResult(task, SKIPPED, peak_rss_mb=record.get("peak_rss_mb")))
        else:
            todo.append(task)
    return todo, settled


def execute_all(
    tasks: Sequence[Task], options: Options, jobs: int, executor: str, sub: SubmititOptions | None
) -> SweepOutcome:
    """Validate, plan and run ``tasks`` (longest first) on ``executor``; print a line per task."""
    if executor not in EXECUTORS:
        raise ValueError(f"executor={executor!r} is not allowed: expected one of {list(EXECUTORS)}")
    check_names(tasks, options.device)
    started = time.perf_counter()
    todo, settled = plan(by_cost(tasks), options)
    for result in settled:
        report_result(result)
    say(f"[start  ] {len(todo)} task(s) to run, {len(settled)} settled; executor {executor}, jobs {jobs}")
    if executor == "submitit":
        ran = run_submitit(todo, options, jobs, report_result, sub or SubmititOptions())
    else:
        ran = run_local(todo, options, jobs, report_result)
    order = {(t.study, t.tag, t.seed): i for i, t in enumerate(tasks)}
    results = sorted(settled + ran, key=lambda r: order[(r.task.study, r.task.tag, r.task.seed)])
    return SweepOutcome(results=results, wall_s=time.perf_counter() - started)


def summarize_groups(outcome: SweepOutcome, root: Path) -> None:
    """Aggregate every (study, tag) of the sweep that has results; record the errors of those that cannot be."""
    groups = {(r.task.study, r.task.tag): r.task for r in outcome.results if r.status != FAILED}
    for (study, _), task in sorted(groups.items()):
        try:
            path = aggregate(root, study, task.preset, task.overrides)
        except AggregateError as err:
            outcome.errors.append(str(err))
            say(f"[error  ] aggregate {study}: {err}")
            continue
        outcome.summaries.append(path)
        say(f"[summary] {path}")


def finish(outcome: SweepOutcome, what: str) -> SweepOutcome:
    """Print the final line: counts per status and the total wall time."""
    counts = {s: sum(r.status == s for r in outcome.results) for s in (RAN, SKIPPED, FAILED)}
    say(
        f"{what}: {counts[RAN]} ran, {counts[SKIPPED]} skipped, {counts[FAILED]} failed"
        f"{', ' + str(len(outcome.errors)) + ' aggregation error(s)' if outcome.errors else ''}"
        f" in {outcome.wall_s:.1f} s"
    )
    for r in outcome.results:
        if r.status == FAILED:
            say(f"  failed: {r.task.label}" + (f" (log: {r.log})" if r.log else ""))
    return outcome


def sweep(
    study_names: Sequence[str],
    seeds: Sequence[int],
    preset: str,
    overrides: dict[str, Any] | None = None,
    *,
    root: Path | None = None,
    jobs: int | None = None,
    executor: str = "local",
    device: str = "auto",
    timeout_min: int = 240,
    submitit_options: SubmititOptions | None = None,
) -> SweepOutcome:
    """Run every study in ``study_names`` at ``preset`` with ``overrides`` for every seed, skipping tasks whose
    committed results are current, then aggregate each study. ``outcome.ok`` is False if any task failed."""
    tasks = [Task(s, preset, seed, normalize(overrides)) for s in study_names for seed in seeds]
    options = Options(root=Path(root or output_root()).resolve(), device=device, timeout_min=timeout_min)
    started = time.perf_counter()
    outcome = execute_all(tasks, options, jobs or os.cpu_count() or 1, executor, submitit_options)
    summarize_groups(outcome, options.root)
    outcome.wall_s = time.perf_counter() - started
    return finish(outcome, "sweep")


def make_figures(
    study_names: Sequence[str],
    preset: str = "quick",
    *,
    root: Path | None = None,
    jobs: int | None = None,
    device: str = "auto",
    timeout_min: int = 240,
) -> SweepOutcome:
    """``make figures``: every study at seed 0 into ``figures/`` and ``data/results/`` under ``root`` (executed
    notebooks in ``build/<study>.ipynb``), claims enforced, longest first, ``jobs`` at a time."""
    tasks = [Task(s, preset, 0) for s in study_names]
    options = Options(
        root=Path(root or output_root()).resolve(), mode="figures", device=device, timeout_min=timeout_min
    )
    outcome = execute_all(tasks, options, jobs or os.cpu_count() or 1, "local", None)
    return finish(outcome, "figures")
