"""scripts/gpu_check.sh, the prepared GPU check, run on the CPU at tiny sizes (smoke preset, smoke-sized benchmark)
through the very same path, so that it is known to work before a GPU is ever seen; it writes only under its root."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def tracked_outputs_status() -> str:
    return subprocess.run(
        ["git", "status", "--porcelain", "--", "data", "figures", "README.md"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


@pytest.mark.slow
def test_gpu_check_runs_a_study_and_the_benchmark_at_tiny_sizes(tmp_path: Path) -> None:
    """One study through the script's study path (each study takes the same path; one keeps `make test` under 10
    minutes) and the benchmark of every study at smoke size."""
    before = tracked_outputs_status()
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "GPU_CHECK_PRESET": "smoke",
        "GPU_CHECK_DEVICE": "cpu",
        "GPU_CHECK_ROOT": str(tmp_path),
        "GPU_CHECK_JOBS": "1",
        "GPU_CHECK_STUDIES": "powerlaw_rehearsal",
        "GPU_CHECK_STUDIES_S": "900",
        "GPU_CHECK_BENCH_S": "600",
        "GPU_CHECK_BENCH_ARGS": "--size smoke --repeats 1 --round-s 0.05",
        "PHENOMENA_CACHE": str(tmp_path / "cache"),
    }
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "gpu_check.sh")], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    name = "powerlaw_rehearsal"
    assert (tmp_path / "data" / "sweeps" / name / "smoke" / "seed-0" / "results.json").is_file()
    assert (tmp_path / "data" / "sweeps" / f"{name}-smoke.json").is_file()
    bench = (tmp_path / "data" / "sweeps" / "bench-smoke.txt").read_text()
    assert "training steps at the smoke configs on cpu" in bench and "all studies together" in bench
    assert tracked_outputs_status() == before
