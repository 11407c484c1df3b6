"""paths (atomic writes), cache, claims, figures, repro, run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch

from phenomena import cache, claims, figures, locking, paths, repro
from phenomena import run as run_module
from phenomena.claims import Claim, ClaimFailed, Threshold
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


def _compute_slowly_and_count(counter: str, out: str) -> None:
    """In a fresh process: the same cache entry as the test's, computed slowly; each computation adds a line."""
    import time

    def compute() -> dict[str, int]:
        with open(counter, "a") as f:
            f.write("computed\n")
        time.sleep(1.5)
        return {"x": 7}

    run = Run.start("toy", Toy.from_preset("smoke", seed=4), device="cpu", threads=1)
    Path(out).write_text(json.dumps(run.cached("shared", compute, key={"k": 1}, module="phenomena.paths")))


def test_processes_sharing_a_cache_compute_an_entry_once(tmp_path: Path) -> None:
    """Two processes that need the same entry at once: one computes it, the other waits and reads it; no lock
    file is left beside the entry."""
    import multiprocessing

    counter = tmp_path / "counter.txt"
    ctx = multiprocessing.get_context("spawn")
    os.environ["PHENOMENA_CACHE"] = str(tmp_path / "cache")  # inherited by the spawned processes
    try:
        procs = [
            ctx.Process(target=_compute_slowly_and_count, args=(str(counter), str(tmp_path / f"out{i}.json")))
            for i in range(2)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=120)
    finally:
        del os.environ["PHENOMENA_CACHE"]
    assert [p.exitcode for p in procs] == [0, 0]
    assert counter.read_text().splitlines() == ["computed"]
    assert [json.loads((tmp_path / f"out{i}.json").read_text()) for i in range(2)] == [{"x": 7}] * 2
    assert [p.suffix for p in (tmp_path / "cache").iterdir()] == [".pt"]


def test_a_held_entry_lock_is_waited_on_only_until_its_deadline(
    _scratch_outputs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where another process holds an entry's lock past the deadline, the entry is computed here anyway."""
    import time

    monkeypatch.setattr(locking, "LOCK_WAIT_S", 0.5)
    run = Run.start("toy", Toy.from_preset("smoke", seed=4), device="cpu", threads=1)
    path = run_module.entry_path("t", {"k": 4}, "phenomena.paths")
    with locking.entry_lock(path, wait_s=0) as held:  # this process's own handle: a second open conflicts
        assert held
        started = time.monotonic()
        assert run.cached("t", lambda: 4, key={"k": 4}, module="phenomena.paths") == 4
        assert 0.4 < time.monotonic() - started < 5
    assert path.exists() and not path.with_name(path.name + ".lock").exists()


def test_the_entry_lock_is_outside_every_studys_source_hash() -> None:
    """How processes wait for each other is no part of any committed result: no study package imports the lock
    (its code would be in the study's source hash, and editing it would stale every committed sweep)."""
    from phenomena import studies

    for study in studies.names():
        closure = {f.name for f in cache.module_closure(f"phenomena.studies.{study}")}
        assert "locking.py" not in closure and "run.py" not in closure, study


def _row(id: str = "a", ours: float = 0.01, bound: float = 0.05, **kw: object) -> Claim:
    return Claim.below(id=id, statement="small", paper=0.02, ours=ours, bound=bound, **kw)


def test_claims_pass_fail_and_file_shape(_scratch_outputs: Path) -> None:
    ok = _row()
    bad = Claim.above(id="b", statement="big", paper="> 1", ours=0.5, bound=1.0)
    assert ok.passed and not bad.passed and ok.outcome == "holds" and bad.outcome == "fails"
    assert not _row(id="n", ours=float("nan"), bound=1.0).passed
    path = claims.check("toy", [ok], preset="quick", seed=0, wall_time_s=1.0, metrics={"m": 1.0})
    rec = json.loads(path.read_text())
    assert set(rec) >= {"study", "preset", "seed", "wall_time_s", "claims", "metrics", "departures"}
    assert rec["claims"][0] == {
        "id": "a", "statement": "small", "paper": 0.02, "ours": 0.01, "op": "<", "bound": 0.05,
        "threshold": "< 0.05", "passed": True, "outcome": "holds", "kind": "claim", "expect": "holds",
        "evidence": "", "note": "", "resolution": None, "metric": "", "spec_hash": "", "registered": None, "seen": "", "fail_bound": None,
        "post_hoc": True,
    }  # fmt: skip


def test_an_unexpected_outcome_is_marked_never_raised(
    _scratch_outputs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A verdict that differs from its expectation is a finding: printed with '!', written, never an error (an
    error would reward editing the expectation)."""
    good, bad = _row(), Claim.above(id="b", statement="big", paper="> 1", ours=0.5, bound=1.0)
    path = claims.check("toy", [good, bad, _row(id="c", ours=0.01, expect="fails")], preset="quick", seed=0,
                        wall_time_s=1.0)  # fmt: skip
    out = capsys.readouterr().out
    assert "! expected holds" in out and "! expected fails" in out and out.count("!") == 2
    assert json.loads(path.read_text())["claims"][1]["passed"] is False
    table = claims.markdown_table(json.loads(path.read_text())["claims"])
    assert table.count("**!**") == 2


def test_kinds_expectations_and_not_evaluated_rows() -> None:
    with pytest.raises(ValueError, match="kind='theorem' is not allowed"):
        _row(kind="theorem")
    with pytest.raises(ValueError, match="expect='maybe' is not allowed"):
        _row(expect="maybe")
    gone = Claim.not_evaluated(
        id="g", statement="needs two pools", paper="p", reason="one task pool configured"
    )
    assert gone.outcome == "not evaluated" and gone.passed is None and gone.as_expected
    assert gone.ours == "not evaluated: one task pool configured" and gone.threshold == "n/a"
    claims.check("toy", [gone, _row()], preset="quick", seed=0, wall_time_s=1.0)
    with_evidence = _row(bound=Threshold(0.05, "seed 0"))
    assert with_evidence.evidence == "seed 0" and with_evidence.bound == 0.05


def test_non_finite_values_need_a_reason() -> None:
    with pytest.raises(ClaimFailed, match="not finite"):
        claims.check("toy", [_row(ours=float("inf"))], preset="smoke", seed=0, wall_time_s=1.0)
    claims.check(
        "toy", [_row(ours=float("nan"), note="no transition")], preset="smoke", seed=0, wall_time_s=1.0
    )
    with pytest.raises(ValueError, match="unique"):
        claims.check("toy", [_row(), _row()], preset="smoke", seed=0, wall_time_s=1.0)


def test_did_not_reproduce_lists_failures_expected_failures_and_departures() -> None:
    rows = [_row(id="ok").record(), _row(id="neg", ours=0.5, expect="fails").record(),
            _row(id="san", ours=0.5, kind="sanity").record()]  # fmt: skip
    lines = claims.did_not_reproduce(rows, ["a different model"])
    assert (
        len(lines) == 3 and "`neg`" in lines[0] and "`san`" in lines[1] and lines[2].startswith("Departure")
    )
    assert "| claim | small |" in claims.markdown_table(rows)


def test_json_encoder_writes_nan_as_null(tmp_path: Path) -> None:
    p = paths.write_json(tmp_path / "x.json", {"a": float("nan"), "b": [float("inf"), 1.5], "c": (1, 2)})
    assert json.loads(p.read_text()) == {"a": None, "b": [None, 1.5], "c": [1, 2]}


def test_savefig_writes_png_and_sidecar(_scratch_outputs: Path) -> None:
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    png = figures.savefig(fig, "toy", "curve", {"seed": 3})
    plt.close(fig)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(png.with_suffix(".json").read_text()) == {"study": "toy", "figure": "curve", "seed": 3}
    with pytest.raises(ValueError, match="figure name"):
        figures.savefig(fig, "toy", "Bad Name")


def test_count_axis_reads_all_zero_counts_as_integers_from_zero() -> None:
    fig, ax = plt.subplots()
    ax.plot([1, 4, 16], [0, 0, 0])  # flat zeros: matplotlib's default axis runs around 0 with float ticks
    ax.set_yscale("symlog")
    figures.count_axis(ax)
    fig.canvas.draw()
    lo, hi = ax.get_ylim()
    ticks = [t for t in ax.get_yticks() if lo <= t <= hi]
    plt.close(fig)
    assert ax.get_yscale() == "linear" and (lo, hi) == (0, 1)
    assert ticks and all(float(t).is_integer() for t in ticks)
    with pytest.raises(ValueError, match="axis='z'"):
        figures.count_axis(ax, "z")


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
    rec = json.loads(run.check([_row()], {"m": 1.0}).read_text())
    assert rec["peak_rss_mb"] > 0 and rec["config"]["steps"] == 2
    assert rec["source_hash"] is None and rec["date"]  # "toy" is no study package
    code = cache.source_hash("phenomena.studies.induction_heads")
    assert run_module.study_source_hash("induction_heads") not in (
        None,
        code,
    )  # the claims table is in it too


def test_a_claims_table_edit_stales_the_studys_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rows are data: editing only ``claims.toml`` changes the source hash that freshness checks and
    ``phenomena.rejudge`` compare, so a record judged under the old table is re-judged, never taken as current."""
    study_dir = tmp_path / "studies" / "induction_heads"
    study_dir.mkdir(parents=True)
    toml = cache.PACKAGE_DIR / "studies" / "induction_heads" / "claims.toml"
    (study_dir / "claims.toml").write_text(toml.read_text())
    real = cache.source_hash("phenomena.studies.induction_heads")
    monkeypatch.setattr(cache, "PACKAGE_DIR", tmp_path)
    monkeypatch.setattr(cache, "source_hash", lambda module=None: real)
    before = run_module.study_source_hash("induction_heads")
    (study_dir / "claims.toml").write_text(
        toml.read_text().replace("threshold = { full = 0.4", "threshold = { full = 0.45", 1)
    )
    assert run_module.study_source_hash("induction_heads") != before


def test_cache_source_is_the_import_closure_of_the_compute_module() -> None:
    files = {
        str(p.relative_to(paths.PACKAGE_DIR))
        for p in cache.module_closure("phenomena.studies.icl_linear_regression.experiment")
    }
    assert {"transformer.py", "train.py", "config.py", "studies/icl_linear_regression/learners.py"} <= files
    # claims and notebooks' helpers do not key the cache; `run` is imported for annotations only (TYPE_CHECKING)
    assert "studies/icl_linear_regression/measures.py" not in files and "run.py" not in files
    assert "studies/induction_heads/config.py" not in files
    whole = {
        str(p.relative_to(paths.PACKAGE_DIR))
        for p in cache.module_closure("phenomena.studies.icl_linear_regression")
    }
    assert "studies/icl_linear_regression/measures.py" in whole and "claims.py" in whole


def test_cache_key_changes_when_an_imported_module_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = tmp_path / "phenomena"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "helper.py").write_text("X = 1\n")
    (pkg / "annot.py").write_text("Y = 1\n")
    (pkg / "sub" / "main.py").write_text(
        "from typing import TYPE_CHECKING\nfrom ..helper import X\nif TYPE_CHECKING:\n    from phenomena import annot\n"
    )
    monkeypatch.setattr(cache, "PACKAGE_DIR", pkg)
    cache.module_closure.cache_clear()
    try:
        names = {p.name for p in cache.module_closure("phenomena.sub.main")}
        assert names == {"__init__.py", "helper.py", "main.py"}
        k1 = cache.cache_key("t", {"a": 1}, "phenomena.sub.main")
        (pkg / "annot.py").write_text("Y = 2\n")
        assert cache.cache_key("t", {"a": 1}, "phenomena.sub.main") == k1  # annotations only
        (pkg / "helper.py").write_text("X = 2\n")
        assert cache.cache_key("t", {"a": 1}, "phenomena.sub.main") != k1
    finally:
        cache.module_closure.cache_clear()


def test_train_hooks_run_in_order_and_an_optimizer_is_reused() -> None:
    from phenomena.train import Hook, train

    events: list[tuple[str, int, bool]] = []

    class Spy(Hook):
        def after_backward(self, model: torch.nn.Module, step: int) -> None:
            events.append(("backward", step, model.weight.grad is not None))

        def after_step(self, model: torch.nn.Module, step: int) -> None:
            events.append(("step", step, True))

    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = model.weight.detach().clone()
    train(
        model,
        lambda m, s: m(torch.ones(1, 2)).pow(2).sum(),
        steps=2,
        optimizer=opt,
        hooks=[Spy()],
        progress=False,
    )
    assert events == [("backward", 0, True), ("step", 0, True), ("backward", 1, True), ("step", 1, True)]
    assert not torch.equal(before, model.weight)
    with pytest.raises(ValueError, match="lr must not be given"):
        train(model, lambda m, s: m(torch.ones(1, 2)).sum(), steps=1, lr=0.1, optimizer=opt, progress=False)
    with pytest.raises(ValueError, match="optimizer='sgd' is not allowed"):
        train(model, lambda m, s: m(torch.ones(1, 2)).sum(), steps=1, lr=0.1, optimizer="sgd", progress=False)  # type: ignore[arg-type]


# ---- phenomena.workers: both cores for one notebook ----------------------------------------------------------------


def _draw_job(run: Run, name: str) -> torch.Tensor:
    """A run that depends only on its own seed (as every study's runs must), through the cache."""
    from phenomena import cache

    def draw() -> torch.Tensor:
        gen = torch.Generator().manual_seed(run.cfg.seed * 1000 + len(name))
        return torch.randn(64, generator=gen) @ torch.randn(64, 8, generator=gen)

    return cache.cached(
        f"workers-test-{name}", {"seed": run.cfg.seed, "name": name}, draw, module="phenomena.workers"
    )


def _failing_job(run: Run, name: str) -> None:
    raise RuntimeError(f"worker job {name} failed")


def _workers_run(seed: int = 7) -> Run:
    from phenomena.run import Run
    from phenomena.studies import icl_linear_regression as icl

    return Run(
        study="icl_linear_regression",
        cfg=icl.Config.from_preset("smoke", seed=seed),
        device=torch.device("cpu"),
        threads=1,
    )


@pytest.mark.parametrize("raw", ["0", "-1", "two", "1.5"])
def test_workers_from_env_names_the_parameter(raw: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from phenomena import workers

    monkeypatch.setenv(workers.WORKERS_ENV, raw)
    with pytest.raises(ValueError, match=r"PHENOMENA_WORKERS\) = .* is not allowed: expected an int >= 1"):
        workers.workers_from_env()
    monkeypatch.delenv(workers.WORKERS_ENV)
    assert workers.workers_from_env() == (os.cpu_count() or 1)  # alone: every core
    assert workers.workers_from_env(1) == 1


def test_workers_fill_the_cache_with_what_this_process_computes(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Runs computed in two worker processes are read back from the cache equal, bit for bit, to the runs this
    process computes; one worker, the cache off or a GPU run start nothing."""
    from phenomena import workers

    run, names = _workers_run(), ["a", "bb", "ccc"]
    monkeypatch.setenv("PHENOMENA_CACHE", str(tmp_path / "seq"))
    sequential = [_draw_job(run, n) for n in names]
    monkeypatch.setenv("PHENOMENA_CACHE", str(tmp_path / "par"))
    assert workers.prefill(run, [(_draw_job, (n,)) for n in names], workers=2) == 2
    assert len(list((tmp_path / "par").glob("*.pt"))) == 3
    assert all(torch.equal(a, _draw_job(run, n)) for a, n in zip(sequential, names))
    assert workers.prefill(run, [(_draw_job, ("a",))], workers=1) == 0
    monkeypatch.setenv("PHENOMENA_NO_CACHE", "1")
    assert workers.prefill(run, [(_draw_job, (n,)) for n in names], workers=2) == 0


def test_a_workers_error_reaches_the_notebook(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from phenomena import workers

    monkeypatch.setenv("PHENOMENA_CACHE", str(tmp_path / "cache"))
    with pytest.raises(RuntimeError, match="worker job x failed"):
        workers.prefill(_workers_run(), [(_failing_job, ("x",)), (_draw_job, ("y",))], workers=2)


@pytest.mark.parametrize("failing", [0, 1])
def test_the_kernel_and_a_worker_share_jobs_and_report_either_ones_error(
    tmp_path, monkeypatch: pytest.MonkeyPatch, failing: int
) -> None:
    """LoRA's ``share_with_kernel``: this process and one worker train the jobs into the cache (the same results as
    here), and an error in either (job 0 goes to this process, job 1 to the worker) is raised here, with this
    process's random state and thread count restored."""
    import random

    from phenomena.studies.lora_intruder_dimensions.experiment import share_with_kernel

    monkeypatch.setenv("PHENOMENA_CACHE", str(tmp_path / "cache"))
    run = _workers_run()
    names = ["a", "bb", "ccc"]
    assert share_with_kernel(run, [(_draw_job, (n,)) for n in names], workers=2) == 2
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 3
    shared = [_draw_job(run, n) for n in names]  # read back from the cache they filled
    monkeypatch.setenv("PHENOMENA_CACHE", str(tmp_path / "fresh"))
    assert all(torch.equal(a, _draw_job(run, n)) for a, n in zip(shared, names))
    torch.manual_seed(123)
    random.seed(5)
    torch.set_num_threads(2)
    expected = (torch.rand(3), random.random())
    torch.manual_seed(123)
    random.seed(5)
    jobs = [(_draw_job, ("d",)), (_draw_job, ("ee",))]
    jobs[failing] = (_failing_job, ("x",))
    with pytest.raises(RuntimeError, match="worker job x failed"):
        share_with_kernel(run, jobs, workers=2)
    assert torch.equal(torch.rand(3), expected[0]) and random.random() == expected[1]
    assert torch.get_num_threads() == 2
