"""Shared fixtures: every test writes outputs under a temporary PHENOMENA_OUT, never into the repository."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before any Hugging Face import: tests never touch the network

import pytest
import torch


@pytest.fixture(autouse=True)
def _scratch_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PHENOMENA_OUT", str(tmp_path / "out"))
    monkeypatch.delenv("PHENOMENA_CACHE", raising=False)
    monkeypatch.delenv("PHENOMENA_NO_CACHE", raising=False)
    monkeypatch.delenv("PHENOMENA_PRESET", raising=False)  # set by `make test` for the notebooks only
    torch.set_num_threads(1)
    return tmp_path / "out"


REPO = Path(__file__).resolve().parents[1]
