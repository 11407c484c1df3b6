"""Sweeps through a real Slurm (``make slurm-up``: a one-node cluster with accounting, so ``sacct`` answers).

The project's own smoke sweep goes to the default (Slurm) cluster as one job array through ``--executor submitit``;
its tasks must have run as Slurm jobs (their ids in each result's ``execution`` record, ``sacct`` saying COMPLETED)
and its over-seeds summary must equal the local pool's for the same seeds. A task that raises shows its traceback
and the sweep exits non-zero; in one array beside a job that completes, a job that raises, one that dies outside
Python, a cancelled one and one past the sweep's deadline are reported with their Slurm state, never waited on
(the functions those jobs run are in :mod:`tests.slurm_jobs`).

Without a reachable cluster these tests are skipped, loudly; with ``PHENOMENA_REQUIRE_SLURM=1`` (set by ``.ci/run``)
they fail instead. Every output goes under a temporary root.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from phenomena import executors, sweep, tasks
from phenomena.__main__ import main
from phenomena.tasks import FAILED, RAN, Options, Task, TaskResult
from tests.conftest import REPO
from tests.slurm_jobs import misbehave

REQUIRE_SLURM_ENV = "PHENOMENA_REQUIRE_SLURM"
FAST = "powerlaw_rehearsal"  # the quickest notebook at the smoke preset
SEEDS = (0, 1)  # two seeds: one array, one round on the two-CPU cluster


def _run(*command: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def slurm_unavailable() -> str | None:
    """Why no Slurm cluster with accounting can take jobs from here, or None when one can."""
    missing = [c for c in ("sbatch", "sinfo", "sacct", "scancel") if shutil.which(c) is None]
    if missing:
        return f"no Slurm client commands {missing} on PATH (make slurm-up installs and starts a cluster)"
    try:
        nodes = _run("sinfo", "-h", "-N", "-o", "%N %T")
        if nodes.returncode != 0:
            return f"sinfo failed ({nodes.stderr.strip()}): is slurmctld running? (make slurm-up)"
        if not any(
            line.split()[1].startswith(("idle", "mix", "alloc")) for line in nodes.stdout.splitlines()
        ):
            return f"no Slurm node is up: sinfo says {nodes.stdout.strip()!r}"
        acct = _run("sacct", "-n", "-X", "-S", "now-1minutes")
        if acct.returncode != 0:
            return f"sacct failed ({acct.stderr.strip()}): submitit needs accounting (slurmdbd) to see job states"
    except subprocess.TimeoutExpired as err:
        return f"{err.cmd[0]} did not answer within {err.timeout:.0f} s"
    return None


@pytest.fixture(scope="module")
def cluster() -> None:
    """Skip -- loudly -- or, with PHENOMENA_REQUIRE_SLURM=1 (CI), fail when no Slurm cluster is reachable."""
    reason = slurm_unavailable()
    if reason is None:
        return
    message = f"SLURM TESTS NOT RUN: {reason}. Sweeps through Slurm were not checked."
    if os.environ.get(REQUIRE_SLURM_ENV) == "1":
        pytest.fail(message)
    pytest.skip(message)


def sacct_states(job_id: str) -> dict[str, str]:
    """``sacct``'s state of every array task of ``job_id`` (allocations only, no steps)."""
    out = _run("sacct", "-n", "-X", "-P", "-j", job_id, "-o", "JobID,State").stdout
    return dict(line.split("|", 1) for line in out.splitlines() if line)


def summary_claims(root: Path) -> list[dict[str, Any]]:
    """The over-seeds summary's claim rows, without what differs between any two runs (nothing does)."""
    return json.loads((root / "data" / "sweeps" / f"{FAST}-smoke.json").read_text())["claims"]


@pytest.fixture(scope="module")
def slurm_sweep(cluster: None, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float, str]:
    """The smoke sweep over 2 seeds through `phenomena sweep --executor submitit` on the default cluster."""
    root = tmp_path_factory.mktemp("slurm-sweep")
    argv = ["sweep", "--study", FAST, "--seeds", "0-1", "--preset", "smoke", "--device", "cpu"]
    started = time.perf_counter()
    code = main([*argv, "--executor", "submitit", "--jobs", "2", "--root", str(root)])
    wall = time.perf_counter() - started
    assert code == 0, f"the Slurm sweep failed; submitit's logs: {root / 'build' / 'sweeps' / 'submitit'}"
    records = [json.loads(tasks.seed_results_path(root, Task(FAST, "smoke", s)).read_text()) for s in SEEDS]
    array = records[0]["execution"]["array_job_id"]
    print(
        f"\n[slurm  ] smoke sweep of {FAST} over seeds {SEEDS} through Slurm: {wall:.1f} s (array job {array})"
    )
    return root, wall, array


@pytest.mark.slurm
@pytest.mark.slow
def test_a_sweep_runs_as_one_slurm_job_array(slurm_sweep: tuple[Path, float, str]) -> None:
    root, _, array = slurm_sweep
    nodes = set(_run("sinfo", "-h", "-N", "-o", "%N").stdout.split())
    records = [json.loads(tasks.seed_results_path(root, Task(FAST, "smoke", s)).read_text()) for s in SEEDS]
    for execution in (record["execution"] for record in records):
        assert execution["executor"] == "submitit" and execution["cluster"] == "slurm", execution
        assert execution["array_job_id"] == array, "all tasks in one job array"
        assert execution["job_id"] == f"{array}_{execution['array_task_id']}" and execution["node"] in nodes
    ids = {record["execution"]["job_id"] for record in records}
    # a result is collected as soon as its pickle is written; Slurm may still be ending the job step then
    completed = lambda: all(sacct_states(array).get(job) == "COMPLETED" for job in ids)  # noqa: E731
    wait_until(completed, 30, f"sacct to say {sorted(ids)} COMPLETED")
    listing = ("JobID", "JobName%16", "State", "NodeList", "Start", "Elapsed", "ExitCode")
    print(_run("sacct", "-X", "-j", array, "-o", ",".join(listing)).stdout)
    assert list((root / "build" / "sweeps" / "submitit").glob(f"{array}_*_log.out"))


@pytest.mark.slurm
@pytest.mark.slow
def test_the_slurm_sweep_equals_the_local_pool(slurm_sweep: tuple[Path, float, str], tmp_path: Path) -> None:
    root, slurm_wall, _ = slurm_sweep
    started = time.perf_counter()
    local = sweep.sweep([FAST], list(SEEDS), "smoke", root=tmp_path, jobs=2, device="cpu")
    local_wall = time.perf_counter() - started
    print(
        f"\n[slurm  ] the same sweep on the local pool: {local_wall:.1f} s (through Slurm: {slurm_wall:.1f} s)"
    )
    assert local.ok, [r.error for r in local.results]
    assert summary_claims(tmp_path) == summary_claims(root)
    for seed in SEEDS:
        task = Task(FAST, "smoke", seed)
        on_slurm, on_pool = (
            json.loads(tasks.seed_results_path(r, task).read_text()) for r in (root, tmp_path)
        )
        assert on_slurm["metrics"] == on_pool["metrics"] and on_slurm["claims"] == on_pool["claims"]
        assert on_pool["execution"]["executor"] == "local" and on_pool["execution"]["job_id"] is None


@pytest.mark.slurm
@pytest.mark.slow
def test_a_task_that_raises_shows_its_traceback_and_fails_the_sweep(
    slurm_sweep: tuple[Path, float, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Seeds 0-1 are current (the Slurm sweep's results); seed 2 cannot clear its old results file (a directory
    stands there), so its task raises inside its Slurm job: the sweep prints the traceback and exits 1, and still
    summarises the seeds it has. (That the other tasks of an array complete beside a failing one is
    :func:`test_jobs_that_die_raise_or_are_cancelled_are_reported_not_waited_on`.)"""
    shutil.copytree(slurm_sweep[0] / "data", tmp_path / "data")
    executors.results_written(Options(tmp_path), Task(FAST, "smoke", 2)).mkdir(parents=True)
    argv = ["sweep", "--study", FAST, "--seeds", "0-2", "--preset", "smoke", "--device", "cpu"]
    code = main([*argv, "--executor", "submitit", "--jobs", "2", "--root", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1
    assert "Traceback (most recent call last)" in out and "IsADirectoryError" in out
    assert "0 ran, 2 skipped, 1 failed" in out and "failed: powerlaw_rehearsal smoke seed 2" in out
    assert not tasks.seed_results_path(tmp_path, Task(FAST, "smoke", 2)).exists()


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"still waiting after {timeout:.0f} s for {what}"
        time.sleep(0.5)


@pytest.mark.slurm
@pytest.mark.slow
def test_jobs_that_die_raise_or_are_cancelled_are_reported_not_waited_on(
    cluster: None, tmp_path: Path
) -> None:
    import submitit

    executor = submitit.AutoExecutor(folder=tmp_path / "submitit")
    executor.update_parameters(timeout_min=5, cpus_per_task=1, slurm_array_parallelism=5)
    assert executor.cluster == "slurm"
    jobs = [Task(FAST, "smoke", seed) for seed in range(5)]  # labels of the results; the jobs get the seeds
    submitted = executor.map_array(misbehave, [task.seed for task in jobs])
    array = submitted[0].job_id.split("_")[0]
    wait_until(lambda: sacct_states(array).get(f"{array}_0") == "RUNNING", 60, f"{array}_0 to run")
    assert _run("scancel", submitted[0].job_id).returncode == 0
    started = time.monotonic()
    results = executors.collect(jobs[:4], submitted[:4], lambda r: None, deadline=120, poll_s=2)
    assert time.monotonic() - started < 60  # nothing waited for the cancelled job
    assert [getattr(r, "status", None) for r in results[:3]] == [FAILED] * 3 and results[3] == {"seed": 3}
    assert "Traceback" in str(results[1].error) and "ValueError: seed 1 refuses" in str(results[1].error)
    for died, state in ((results[0], "CANCELLED"), (results[2], "FAILED")):
        assert f"ended {state}" in str(died.error) and "died outside Python" in str(died.error), died.error
        assert str(died.log).endswith("_log.err") and Path(str(died.log)).exists()
    # the last job sleeps past the sweep's deadline: reported with its state, and cancelled
    (overdue,) = executors.collect(jobs[4:], submitted[4:], lambda r: None, deadline=3, poll_s=1)
    assert overdue.status == FAILED and "within the sweep's deadline" in str(overdue.error)
    assert "last Slurm state" in str(overdue.error) and "cancelled" in str(overdue.error)
    wait_until(lambda: sacct_states(array).get(f"{array}_4", "").startswith("CANCELLED"), 30, "the cancel")


def test_the_deadline_follows_the_time_limit_and_the_array_rounds() -> None:
    assert executors.deadline_s(3, 3, 245, 10) == 60 * (245 + 10)
    assert executors.deadline_s(5, 2, 10, 0) == 60 * 30  # three rounds of at most 10 min
    assert executors.deadline_s(0, 0, 10, 1) == 60 * 11


def test_the_cluster_check_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(REPO / "no-such-dir"))
    assert "no Slurm client commands" in str(slurm_unavailable())


class FakeWatcher:
    """sacct as a dict: job id -> state (``update`` counts the calls)."""

    def __init__(self, states: dict[str, str]) -> None:
        self.states, self.calls = states, 0

    def update(self) -> None:
        self.calls += 1

    def get_state(self, job_id: str, mode: str = "standard") -> str:
        return self.states.get(job_id, "UNKNOWN")


class FakeJob:
    """What :func:`executors.collect` uses of a submitit job, without a cluster."""

    def __init__(self, job_id: str, folder: Path, watcher: FakeWatcher, result: Any = None) -> None:
        self.job_id, self.watcher, self._result, self.cancelled = job_id, watcher, result, False
        self.paths = type(
            "Paths",
            (),
            {
                "result_pickle": folder / f"{job_id}_result.pkl",
                "stdout": folder / f"{job_id}_log.out",
                "stderr": folder / f"{job_id}_log.err",
            },
        )()

    def result(self) -> Any:
        return self._result

    def cancel(self, check: bool = True) -> None:
        self.cancelled = True


def test_collect_without_a_cluster(tmp_path: Path) -> None:
    """A result pickle is read; a final state without one is a death outside Python; the rest is cancelled at the
    deadline: never a wait without end, whatever sacct says (here: nothing at all about job 7_3)."""
    watcher = FakeWatcher({"7_0": "COMPLETED", "7_1": "OUT_OF_MEMORY", "7_2": "RUNNING"})
    ok = TaskResult(Task(FAST, "smoke", 0), RAN)
    jobs = [FakeJob(f"7_{i}", tmp_path, watcher, ok if i == 0 else None) for i in range(4)]
    jobs[0].paths.result_pickle.write_bytes(b"")
    jobs[1].paths.stderr.write_text("slurmstepd: error: Detected 1 oom_kill event\n")
    labels = [Task(FAST, "smoke", i) for i in range(4)]
    reported: list[TaskResult] = []
    started = time.monotonic()
    results = executors.collect(labels, jobs, reported.append, deadline=2, poll_s=0.5)
    assert time.monotonic() - started < 10 and watcher.calls >= 2
    assert results[0] is ok and [r.status for r in results[1:]] == [FAILED] * 3 and len(reported) == 4
    assert "ended OUT_OF_MEMORY" in str(results[1].error) and "oom_kill" in str(results[1].error)
    assert "7_1_log.err" in str(results[1].error) and not jobs[1].cancelled
    for result, job, state in ((results[2], jobs[2], "RUNNING"), (results[3], jobs[3], "UNKNOWN")):
        assert f"last Slurm state {state}; cancelled" in str(result.error) and job.cancelled
