"""Running sweep tasks: one notebook process per task (logged, retried once when its kernel does not start, stopped
cleanly on Ctrl-C), on a local pool of workers or through submitit (Slurm job arrays; ``cluster="local"`` runs
real local processes)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from phenomena.paths import atomic_path
from phenomena.tasks import (
    FAILED,
    RAN,
    Options,
    Task,
    TaskResult,
    build_dir,
    expected_config,
    papermill_command,
    say,
    seed_results_path,
    task_env,
)

#: Signs that a notebook's kernel failed to *start* (e.g. two kernels picked the same ports: papermill #511).
KERNEL_START_ERRORS = (
    "Kernel died before replying to kernel_info",
    "Kernel didn't respond",
    "Address already in use",
    "ZMQError",
)


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


_LIVE: set[subprocess.Popen[bytes]] = set()


_LIVE_LOCK = threading.Lock()


_STOPPING = threading.Event()


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
