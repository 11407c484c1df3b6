"""Shared fixtures: every test writes outputs under a temporary PHENOMENA_OUT, never into the repository."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before any Hugging Face import: tests never touch the network

import pytest
import torch

#: the cache folder ``make test`` gives the notebooks it runs at the smoke preset (``$PHENOMENA_CACHE``, read
#: before the fixture below unsets it for each test): nbval's runs and the front ends' (the report's papermill runs,
#: the JupyterLab kernels, the plain papermill run) share it, so each study's smoke results are computed once and
#: the other runs wait for them and read them (:func:`phenomena.locking.entry_lock`). None (pytest run by hand): each
#: front end computes under its own scratch output root.
SMOKE_CACHE: str | None = os.environ.get("PHENOMENA_CACHE") or None


def smoke_cache_env() -> dict[str, str]:
    """``{"PHENOMENA_CACHE": SMOKE_CACHE}`` for a notebook run at the smoke preset, or {} without one."""
    return {"PHENOMENA_CACHE": SMOKE_CACHE} if SMOKE_CACHE else {}


@pytest.fixture(autouse=True)
def _scratch_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PHENOMENA_OUT", str(tmp_path / "out"))
    monkeypatch.delenv("PHENOMENA_CACHE", raising=False)
    monkeypatch.delenv("PHENOMENA_NO_CACHE", raising=False)
    monkeypatch.delenv("PHENOMENA_PRESET", raising=False)  # set by `make test` for the notebooks only
    torch.set_num_threads(1)
    return tmp_path / "out"


REPO = Path(__file__).resolve().parents[1]


#: the test files that take longest in ``make test`` (fixture set-up included; measured with ``--durations`` on a
#: 2-core machine), longest first. ``make test`` runs them first: pytest-xdist gives each worker whole files
#: (``--dist loadfile``) in collection order (``--no-loadscope-reorder``; its default order, by number of tests, put
#: these few-test files last, where one of them left the other worker idle at the end). Files not named keep their
#: order after these.
SLOWEST_FILES = (
    "tests/test_slurm.py",
    "tests/test_sweep.py",
    "tests/test_report.py",
    "tests/test_jupyterlab.py",
    "tests/test_headless_runs.py",
    "tests/test_gpu_check.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Start the slowest files first (:data:`SLOWEST_FILES`); the order within a file is kept (a stable sort)."""
    rank = {name: i for i, name in enumerate(SLOWEST_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


def tree_with_a_kernel(proc: subprocess.Popen[Any], deadline_s: float = 90.0) -> list[Any]:
    """The processes below ``proc`` (psutil) once a Jupyter kernel is among them and has had 2 s to get into the
    notebook's first cells; fails if ``proc`` ends, or no kernel starts, within ``deadline_s``."""
    import psutil

    deadline, tree = time.monotonic() + deadline_s, []
    while time.monotonic() < deadline and proc.poll() is None and not _has_kernel(tree):
        time.sleep(0.2)
        tree = psutil.Process(proc.pid).children(recursive=True)
    assert proc.poll() is None and _has_kernel(tree), "the kernel never started"
    time.sleep(2)
    return psutil.Process(proc.pid).children(recursive=True)


def _has_kernel(procs: list[Any]) -> bool:
    """Whether one of ``procs`` still running is an ipykernel."""
    import psutil

    for p in procs:
        with contextlib.suppress(psutil.Error):
            if "ipykernel" in " ".join(p.cmdline()):
                return True
    return False
