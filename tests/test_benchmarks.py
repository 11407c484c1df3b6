"""The micro-benchmarks run and report every setting (timings themselves are printed by ``make bench``)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import torch

from benchmarks import micro
from phenomena import studies
from phenomena.studies import induction_heads as ih
from tests.conftest import tree_with_a_kernel

REPO = Path(__file__).resolve().parents[1]


def test_every_study_has_a_micro_benchmark() -> None:
    assert set(micro.MICRO) == set(studies.names())


def test_induction_benchmark_reports_every_setting() -> None:
    calls = []

    def fake(cfg: ih.Config, layers: int, threads: int) -> float:
        calls.append((layers, threads))
        return 1.0

    out = micro.induction_threads(timer=fake)
    assert sorted(calls) == [(1, 1), (1, 2), (2, 1), (2, 2)] and len(out) == 4


def test_copy_step_benchmark_times_the_studys_own_training_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """The benchmark times the shared training loop at the study's own settings (10 warm-up steps, then the timed
    ones) and leaves the thread count as it found it."""
    calls = []
    real = micro.train

    def counting(model: torch.nn.Module, loss: object, *, steps: int, **kw: object) -> object:
        calls.append((steps, kw["lr"], kw["optimizer"]))
        return real(model, loss, steps=steps, **kw)

    monkeypatch.setattr(micro, "train", counting)
    cfg = ih.Config.from_preset("smoke")
    before = torch.get_num_threads()
    ms = micro.copy_step_ms(cfg, n_layers=1, threads=1, steps=3)
    assert calls == [(10, cfg.lr, "adamw"), (3, cfg.lr, "adamw")]
    assert torch.get_num_threads() == before and 0 < ms < 60_000


def test_every_study_has_a_training_step_benchmark() -> None:
    from benchmarks.steps import BENCHES

    made = {make(torch.device("cpu"), "smoke").study for make in BENCHES.values()}
    assert made == set(studies.names())


@pytest.mark.parametrize("name", ["icl", "copy", "reddy", "rehearsal"])
def test_step_benchmark_times_both_paths_and_counts_flops(name: str) -> None:
    from benchmarks.steps import BENCHES, step_flops, time_paths

    b = BENCHES[name](torch.device("cpu"), "smoke")
    assert b.preset_steps > 0 and step_flops(b, torch.device("cpu")) > 0
    t = time_paths(b, ("today", "new"), torch.device("cpu"), repeats=1, round_s=0.01)
    assert set(t) == {"today", "new"} and all(v > 0 for v in t.values())


def test_bench_old_path_is_the_old_default_source(tmp_path: Path) -> None:
    """make bench's old path extracts the commit before the two tiers, with every study's notebook and library."""
    import subprocess
    import sys

    sys.path.insert(0, str(REPO / "scripts"))
    import bench

    has = subprocess.run(
        ["git", "-C", str(REPO), "cat-file", "-e", f"{bench.OLD_COMMIT}^{{commit}}"], check=False
    )
    if has.returncode:
        pytest.skip(
            f"commit {bench.OLD_COMMIT} is not in this clone (shallow): make bench prints MISSED for it"
        )
    root = bench.old_source(tmp_path)
    assert root is not None
    for nb in (REPO / "notebooks").glob("*.ipynb"):
        assert (root / "notebooks" / nb.name).exists()
        assert (root / "lib" / "phenomena" / "studies" / nb.stem / "config.py").exists()


def test_bench_memory_counts_a_grandchild_process() -> None:
    """make bench's peak memory sums the notebook's whole process tree: a grandchild holding ~200 MiB (as a worker
    process under the kernel would) shows in it, where the top process's own peak would not."""
    import subprocess
    import sys
    import time

    sys.path.insert(0, str(REPO / "scripts"))
    import bench

    hold = "b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096]); import time; time.sleep(3)"
    outer = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {hold!r}], check=True)"
    with subprocess.Popen([sys.executable, "-c", outer]) as proc:
        sampler = bench.TreeMemory(proc.pid, interval_s=0.05)
        sampler.start()
        proc.wait(timeout=60)
        time.sleep(0.1)
        sampler.stop()
    assert 200 <= sampler.peak_mb < 1000
    assert (
        200 <= sampler.peak_pss_mb <= sampler.peak_mb
    )  # the 200 MiB are the child's own: PSS counts them whole


def test_bench_same_scope_takes_out_only_added_work() -> None:
    """make bench's "same work" run (the 1.5x is judged on it where a study issue added work to ``full``) is ``full``
    with valid overrides that each change a field, and for induction trains Reddy's eps runs as long as the old path
    did (its ``rd_sweep_steps`` at the old commit: the eps runs had no steps of their own then)."""
    import importlib
    import subprocess
    import sys

    sys.path.insert(0, str(REPO / "scripts"))
    import bench

    assert bench.SAME_SCOPE
    for study, overrides in bench.SAME_SCOPE.items():
        cls = importlib.import_module(f"phenomena.studies.{study}").Config
        full, same = cls.from_preset("full"), cls.from_preset("full", **overrides)
        assert all(getattr(full, k) != getattr(same, k) for k in overrides), study
    # rehearsal: the old path ran the long horizon at the config seed alone; full runs it at each main run-seed
    from phenomena.studies.powerlaw_rehearsal import Config as RehearsalConfig
    from phenomena.studies.powerlaw_rehearsal.experiment import horizon_jobs

    full, same = (
        RehearsalConfig.from_preset("full", **kw) for kw in ({}, bench.SAME_SCOPE["powerlaw_rehearsal"])
    )
    assert {job[1] for _, job in horizon_jobs(full)} == {0, 1000}
    assert {job[1] for _, job in horizon_jobs(same)} == {0} and len(horizon_jobs(same)) == 6
    old = subprocess.run(
        [
            "git",
            "-C",
            str(REPO),
            "show",
            f"{bench.OLD_COMMIT}:lib/phenomena/studies/induction_heads/config.py",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if old.returncode:
        pytest.skip(f"commit {bench.OLD_COMMIT} is not in this clone (shallow)")
    assert "rd_eps_steps" not in old.stdout
    scope = bench.SAME_SCOPE["induction_heads"]
    for name in ("spare_heads", "spare_d_model"):  # the old path's ablation model, at the levers' fewer steps
        assert re.search(rf"{name}: int = field\(\s*(\d+)", old.stdout).group(1) == str(scope[name])
    assert re.search(r"rd_sweep_steps: int = field\(\s*(\d[\d_]*)", old.stdout).group(1) == str(
        bench.SAME_SCOPE["induction_heads"]["rd_eps_steps"]
    )
    # the main model's steps: the old path's, before issue 34 doubled them at full
    assert re.search(r"\n    steps: int = field\(\s*(\d[\d_]*)", old.stdout).group(1) == str(scope["steps"])
    # rehearsal: the old path had no facilitation runs beyond the main comparison's, nor does its same-work scope
    from phenomena.studies.powerlaw_rehearsal import Config as RehearsalConfig
    from phenomena.studies.powerlaw_rehearsal.experiment import facilitation_seeds, seeds_of

    old_rehearsal = subprocess.run(
        [
            "git",
            "-C",
            str(REPO),
            "show",
            f"{bench.OLD_COMMIT}:lib/phenomena/studies/powerlaw_rehearsal/config.py",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "facilitation_runs" not in old_rehearsal.stdout
    same = RehearsalConfig.from_preset("full", **bench.SAME_SCOPE["powerlaw_rehearsal"])
    assert facilitation_seeds(same) == seeds_of(same) and len(seeds_of(same)) == 2


@pytest.mark.slow
def test_a_terminated_bench_leaves_no_process_and_no_scratch_folder(tmp_path: Path) -> None:
    """SIGTERM to make bench while a notebook runs ends papermill, its kernel and their children (a process group
    of their own) and removes the bench's scratch folder, instead of leaving a kernel running and a folder in /tmp."""
    import os
    import signal
    import subprocess
    import sys

    import psutil

    env = {**os.environ, "TMPDIR": str(tmp_path)}
    cmd = [sys.executable, str(REPO / "scripts" / "bench.py"), "--tiers", "smoke", "--no-old", "--no-micro"]
    cmd += ["--studies", "powerlaw_rehearsal"]
    with subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL) as proc:
        tree = tree_with_a_kernel(proc)
        assert list(tmp_path.glob("phenomena-bench-*"))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    _, alive = psutil.wait_procs(tree, timeout=30)
    assert not alive, f"left running: {[p.cmdline() for p in alive]}"
    assert not list(tmp_path.glob("phenomena-bench-*"))


def test_kill_group_ends_a_process_and_its_children() -> None:
    import subprocess
    import sys

    import psutil

    sys.path.insert(0, str(REPO / "scripts"))
    import bench

    with subprocess.Popen(["bash", "-c", "sleep 300 & sleep 300"], start_new_session=True) as proc:
        time.sleep(0.3)
        tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
        assert len(tree) == 3
        bench.kill_group(proc)
    _, alive = psutil.wait_procs(tree, timeout=10)
    assert not alive
