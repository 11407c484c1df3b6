"""Running sweep tasks: one notebook process per task (logged, retried once when its kernel does not start, stopped
cleanly on Ctrl-C), on a local pool of workers or through submitit (Slurm job arrays; ``cluster="local"`` runs
real local processes).

No wait on a submitted job is open-ended: submitit learns a job's state only from ``sacct`` and would wait forever
for the result of a job that died outside Python (cancelled, out of memory, killed at its time limit), so
:func:`collect` polls ``sacct`` itself, reports such a job with its Slurm state and log, and gives up (cancelling
what is left) at a deadline derived from the tasks' time limit. Every published result records where it ran
(:func:`execution_record`: executor, cluster, job and array ids, node).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from phenomena.paths import atomic_path, write_json
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


def execution_record() -> dict[str, Any]:
    """Where the calling process runs: ``executor`` (``local`` pool or ``submitit``), ``cluster`` (``slurm``,
    ``local`` or None), ``job_id`` (``<array job>_<index>`` for an array task), ``array_job_id``,
    ``array_task_id``, ``node`` (the Slurm node name, else the host name) and ``host``."""
    host = socket.gethostname()
    record: dict[str, Any] = {
        "executor": "local",
        "cluster": None,
        "job_id": None,
        "array_job_id": None,
        "array_task_id": None,
        "node": host,
        "host": host,
    }
    if "SUBMITIT_FOLDER" not in os.environ:  # set by submitit in the job it runs
        return record
    import submitit

    env = submitit.JobEnvironment()
    record.update(executor="submitit", cluster=env.cluster, job_id=env.job_id)
    if env.cluster == "slurm":
        record.update(
            array_job_id=os.environ.get("SLURM_ARRAY_JOB_ID"),
            array_task_id=os.environ.get("SLURM_ARRAY_TASK_ID"),
            node=os.environ.get("SLURMD_NODENAME", host),
        )
    return record


def publish(task: Task, options: Options, result: TaskResult) -> TaskResult:
    """Check the results file the run wrote, add where it ran (``execution``: :func:`execution_record`) and
    (sweep mode) copy it atomically to its committed place."""
    written = results_written(options, task)
    if not written.exists():
        result.status, result.error = FAILED, f"the run wrote no results file at {written}"
        return result
    record = json.loads(written.read_text())
    if options.mode == "sweep":
        record["execution"] = execution_record()
        write_json(written, record)
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
    present), the Slurm ``partition``, ``gpus`` per task (default 1 with ``device="cuda"``, else 0), how many
    array tasks run at once (``array_parallelism``, default: ``jobs``), how long the tasks may wait in the queue
    in all (``queue_min``: part of the deadline, :func:`deadline_s`) and how often ``sacct`` is asked
    (``poll_s``)."""

    cluster: str | None = None
    partition: str | None = None
    gpus: int | None = None
    array_parallelism: int | None = None
    queue_min: float = 30.0
    poll_s: float = 15.0


#: Slurm's time limit of a task is ours plus this: our own timeout ends the notebook first, with a message.
SLURM_MARGIN_MIN = 5


#: Slurm states after which a job runs no more (``CANCELLED by 0`` starts with ``CANCELLED``); a PREEMPTED job
#: may be requeued, so (as for submitit) it is still waited for, up to the deadline.
FINAL_STATES = (
    "BOOT_FAIL",
    "CANCELLED",
    "COMPLETED",
    "DEADLINE",
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "REVOKED",
    "TIMEOUT",
)


def deadline_s(n_tasks: int, parallelism: int, time_limit_min: float, queue_min: float) -> float:
    """How long a sweep waits for ``n_tasks`` jobs that each run at most ``time_limit_min`` (Slurm kills them
    then), ``parallelism`` at a time: every round of tasks its time limit, plus ``queue_min`` for queueing."""
    rounds = math.ceil(max(1, n_tasks) / max(1, parallelism))
    return 60.0 * (rounds * time_limit_min + queue_min)


def _log_paths(job: Any) -> str:
    return f"{job.paths.stdout} and {job.paths.stderr}"


def _tail(path: Path, lines: int = 20) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) or f"({path} is empty)"


#: submitit's local jobs in Slurm's words (a negative return code, killed by a signal, is INTERRUPTED).
LOCAL_STATES = {"RUNNING": "RUNNING", "FINISHED": "COMPLETED", "INTERRUPTED": "CANCELLED"}


def _is_local(job: Any) -> bool:
    from submitit.local.local import LocalJob

    return isinstance(job, LocalJob)


def _state(job: Any) -> str:
    """The job's last known state in Slurm's words: from the watcher's cache (no call to the cluster), or from
    the process itself for submitit's local jobs."""
    if _is_local(job):
        return LOCAL_STATES.get(job.state, job.state)
    return str(job.watcher.get_state(job.job_id, mode="cache"))


def _job_result(task: Task, job: Any) -> TaskResult:
    """A finished job's :class:`TaskResult` from its result pickle, or a failed one carrying the Python traceback."""
    try:
        return job.result()
    except Exception as err:
        return TaskResult(task, FAILED, error=f"submitit job {job.job_id} failed: {err}")


def _died(task: Task, job: Any, state: str) -> TaskResult:
    """A job that ended (``state``) without writing its result pickle: it died outside Python."""
    return TaskResult(
        task,
        FAILED,
        error=(
            f"Slurm job {job.job_id} ended {state} without a result (it died outside Python: cancelled, out of"
            f" memory, past its time limit, or its node failed); logs: {_log_paths(job)}\n"
            f"{_tail(job.paths.stderr)}"
        ),
        log=str(job.paths.stderr),
    )


def _overdue(task: Task, job: Any, waited_s: float) -> TaskResult:
    return TaskResult(
        task,
        FAILED,
        error=(
            f"submitit job {job.job_id} gave no result within the sweep's deadline ({waited_s / 60:.1f} min: the"
            f" tasks' time limit per round of the array, plus the queueing allowance); last Slurm state"
            f" {_state(job)}; cancelled; logs: {_log_paths(job)}"
        ),
        log=str(job.paths.stderr),
    )


def collect(
    tasks: Sequence[Task],
    submitted: Sequence[Any],
    report: Callable[[TaskResult], None],
    deadline: float,
    poll_s: float = 15.0,
) -> list[TaskResult]:
    """Wait for every submitted job, in any order, until ``deadline`` seconds from now; results in task order.

    A job is finished when its result pickle exists (a Python exception in it comes back with its traceback) or
    when ``sacct``, asked every ``poll_s`` seconds for all the jobs at once, says it ended (a local job: its
    process exited); without a pickle it died outside Python and is reported with its state and logs. Jobs still
    unfinished at the deadline are cancelled and reported as such.
    """
    started = time.monotonic()
    pending = dict(enumerate(submitted))
    results: dict[int, TaskResult] = {}
    ended_at: dict[int, float] = {}
    last_poll = float("-inf")
    while pending:
        if time.monotonic() - last_poll >= poll_s and not _is_local(submitted[0]):
            submitted[0].watcher.update()  # one sacct call for every job of the array
            last_poll = time.monotonic()
        for i, job in list(pending.items()):
            state = _state(job)
            if job.paths.result_pickle.exists():
                results[i] = _job_result(tasks[i], job)
            elif state.upper().startswith(FINAL_STATES):
                # a COMPLETED job has written its pickle; give a slow file system a moment to show it
                ended_at.setdefault(i, time.monotonic())
                if not state.startswith("COMPLETED") or time.monotonic() - ended_at[i] > 15:
                    results[i] = _died(tasks[i], job, state)
            if i in results:
                del pending[i]
                report(results[i])
        if not pending:
            break
        if time.monotonic() - started > deadline:
            for i, job in pending.items():
                job.cancel(check=False)
                results[i] = _overdue(tasks[i], job, time.monotonic() - started)
                report(results[i])
            break
        time.sleep(1.0)
    return [results[i] for i in range(len(submitted))]


def run_submitit(
    tasks: Sequence[Task],
    options: Options,
    jobs: int,
    report: Callable[[TaskResult], None],
    sub: SubmititOptions,
) -> list[TaskResult]:
    """Run ``tasks`` as a submitit job array (``executor.map_array(run_task, ...)``), waiting at most
    :func:`deadline_s` for them.

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
    parallelism = sub.array_parallelism or jobs
    time_limit_min = options.timeout_min + SLURM_MARGIN_MIN
    executor.update_parameters(
        name="phenomena-sweep",
        timeout_min=time_limit_min,
        cpus_per_task=options.threads,
        gpus_per_node=gpus,
        slurm_partition=sub.partition,
        slurm_array_parallelism=parallelism,
    )
    local = executor.cluster == "local"
    batch = max(1, jobs) if local else max(1, len(tasks))
    results: list[TaskResult] = []
    for start in range(0, len(tasks), batch):
        chunk = list(tasks[start : start + batch])
        submitted = executor.map_array(run_task, chunk, [options] * len(chunk))
        say(f"[submit ] {len(chunk)} job(s) on {executor.cluster}: {', '.join(j.job_id for j in submitted)}")
        wait = deadline_s(len(chunk), len(chunk) if local else parallelism, time_limit_min, sub.queue_min)
        try:
            results.extend(collect(chunk, submitted, report, wait, 1.0 if local else sub.poll_s))
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
