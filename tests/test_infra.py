"""paths (atomic writes), cache, claims, figures, repro, run."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch

from phenomena import cache, claims, figures, paths, repro
from phenomena.claims import Claim, ClaimFailed
from phenomena.run import Run
from tests.test_config import Toy


def test_atomic_path_leaves_nothing_on_interrupt(tmp_path: Path) -> None:
    target = tmp_path / "a" / "result.json"
    target.parent.mkdir()
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt), paths.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert [p.name for p in target.parent.iterdir()] == ["result.json"]


def test_write_json_handles_tensors(tmp_path: Path) -> None:
    p = paths.write_json(tmp_path / "x.json", {"t": torch.tensor([1.0, 2.0]), "s": torch.tensor(3)})
    assert json.loads(p.read_text()) == {"t": [1.0, 2.0], "s": 3}


def test_outputs_follow_phenomena_out(_scratch_outputs: Path) -> None:
    assert paths.results_path("s") == _scratch_outputs / "data" / "results" / "s.json"
    assert paths.figures_dir("s") == _scratch_outputs / "figures" / "s"
    assert paths.cache_dir() == _scratch_outputs / "data" / "cache"


def test_cache_hits_and_misses_on_config() -> None:
    calls = []

    def compute() -> dict[str, torch.Tensor]:
        calls.append(1)
        return {"x": torch.arange(3)}

    a = cache.cached("t", {"k": 1}, compute)
    b = cache.cached("t", {"k": 1}, compute)
    cache.cached("t", {"k": 2}, compute)
    assert len(calls) == 2 and torch.equal(a["x"], b["x"])


def test_cache_key_depends_on_source(monkeypatch: pytest.MonkeyPatch) -> None:
    k1 = cache.cache_key("t", {"k": 1})
    monkeypatch.setattr(cache, "source_hash", lambda modules=None: "changed")
    assert cache.cache_key("t", {"k": 1}) != k1


def test_cache_interrupt_leaves_no_entry(_scratch_outputs: Path) -> None:
    def boom() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.cached("t", {"k": 3}, boom)
    assert not list(paths.cache_dir().glob("*")) if paths.cache_dir().exists() else True


def test_claims_pass_fail_and_file_shape(_scratch_outputs: Path) -> None:
    ok = Claim.below("a", "small", 0.02, 0.01, 0.05)
    bad = Claim.above("b", "big", "> 1", 0.5, 1.0)
    assert ok.passed and not bad.passed
    assert Claim.between("c", "mid", 1, 0.5, 0.0, 1.0).passed
    assert not Claim.below("n", "nan", 0, float("nan"), 1.0).passed
    path = claims.check("toy", [ok], preset="quick", seed=0, wall_time_s=1.0, metrics={"m": 1.0})
    rec = json.loads(path.read_text())
    assert set(rec) >= {"study", "preset", "seed", "wall_time_s", "claims", "metrics"}
    assert rec["claims"][0] == {
        "id": "a", "statement": "small", "paper": 0.02, "ours": 0.01, "threshold": "< 0.05", "passed": True,
    }  # fmt: skip
    with pytest.raises(ClaimFailed, match=r"1 claim\(s\) failed: \['b'\]"):
        claims.check("toy", [ok, bad], preset="quick", seed=0, wall_time_s=1.0)
    assert json.loads(path.read_text())["claims"][1]["passed"] is False  # written before raising


def test_smoke_records_but_checks_only_finiteness() -> None:
    bad = Claim.above("b", "big", 1, 0.5, 1.0)
    claims.check("toy", [bad], preset="smoke", seed=0, wall_time_s=1.0)
    with pytest.raises(ClaimFailed, match="not finite"):
        claims.check("toy", [bad], preset="smoke", seed=0, wall_time_s=1.0, metrics={"x": [float("nan")]})
    with pytest.raises(ValueError, match="unique"):
        claims.check("toy", [bad, bad], preset="smoke", seed=0, wall_time_s=1.0)


def test_savefig_writes_png_and_sidecar(_scratch_outputs: Path) -> None:
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    png = figures.savefig(fig, "toy", "curve", {"seed": 3})
    plt.close(fig)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(png.with_suffix(".json").read_text()) == {"study": "toy", "figure": "curve", "seed": 3}
    with pytest.raises(ValueError, match="figure name"):
        figures.savefig(fig, "toy", "Bad Name")


def test_seed_everything_reproduces() -> None:
    repro.seed_everything(5)
    a = torch.randn(3)
    g = repro.seed_everything(5)
    assert torch.equal(a, torch.randn(3))
    assert torch.equal(
        torch.randn(2, generator=g), torch.randn(2, generator=torch.Generator().manual_seed(5))
    )
    with pytest.raises(ValueError, match="seed"):
        repro.seed_everything(-1)


def test_device_and_threads_validation() -> None:
    assert repro.pick_device("cpu").type == "cpu"
    assert repro.pick_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ValueError, match="device must be one of"):
        repro.pick_device("tpu")
    with pytest.raises(ValueError, match="threads must be a positive int"):
        repro.set_threads(0)


def test_preset_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PHENOMENA_PRESET", raising=False)
    assert repro.preset_from_env("quick") == "quick"
    monkeypatch.setenv("PHENOMENA_PRESET", "smoke")
    assert repro.preset_from_env("quick") == "smoke"


def test_run_stamps_outputs_with_provenance(_scratch_outputs: Path) -> None:
    run = Run.start("toy", Toy.from_preset("smoke", seed=4), device="cpu", threads=1)
    fig, _ = plt.subplots()
    meta = json.loads(run.savefig(fig, "f").with_suffix(".json").read_text())
    plt.close(fig)
    assert meta["seed"] == 4 and meta["preset"] == "smoke" and meta["config"]["steps"] == 2
    assert {"git_sha", "versions", "device", "wall_time_s"} <= set(meta)
    rec = json.loads(run.check([Claim.below("a", "s", 0, 0.0, 1.0)], {"m": 1.0}).read_text())
    assert rec["peak_rss_mb"] > 0 and rec["config"]["steps"] == 2
