from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from phenomena.studies import powerlaw_rehearsal as study
from phenomena.studies.powerlaw_rehearsal import (
    calibration,
    config,
    controls,
    data,
    experiment,
    regularisers,
    schedules,
    stream,
    summary,
)
from tests.conftest import REPO


@pytest.fixture
def cfg() -> study.Config:
    """The reference configuration: the full preset, which is the fields' defaults."""
    return study.Config.from_preset("full")


@pytest.mark.parametrize("form", ["none", "joint", "powerlaw", "recency", "uniform", "exponential"])
def test_schedule_invariants(cfg: study.Config, form: str) -> None:
    n = schedules.make_schedule(form, cfg)
    assert n.shape == (cfg.n_tasks, cfg.n_tasks)
    assert np.all(np.tril(n, -1) == 0), "a task cannot be rehearsed before it arrives"
    assert np.all(np.diag(n) == cfg.n_new)
    assert np.all(n >= 0) and np.all(n <= cfg.n_train)


def test_rehearsal_forms_share_the_budget_exactly(cfg: study.Config) -> None:
    budgets = {f: schedules.make_schedule(f, cfg).sum(0) for f in config.REHEARSAL_FORMS}
    np.testing.assert_array_equal(budgets["powerlaw"], budgets["uniform"])
    np.testing.assert_array_equal(budgets["powerlaw"], budgets["exponential"])
    for seed in range(5):  # the paper's environment, whichever tasks its draws pick
        np.testing.assert_array_equal(
            schedules.make_schedule("recency", cfg, seed=seed).sum(0), budgets["powerlaw"]
        )
    for d in (0.5, 1.0, 3.0):
        np.testing.assert_array_equal(
            schedules.make_schedule("powerlaw", cfg, exponent=d).sum(0), budgets["powerlaw"]
        )
    assert np.all(schedules.make_schedule("none", cfg).sum(0) == cfg.n_new)


def test_recency_is_seeded_and_follows_the_time_since_last_presented(cfg: study.Config) -> None:
    a, b = (schedules.make_schedule("recency", cfg, seed=s) for s in (0, 1))
    np.testing.assert_array_equal(a, schedules.make_schedule("recency", cfg, seed=0))
    assert not np.array_equal(a, b), "different seeds draw different recurrences"
    # a steep power law of the time since last presented: only tasks presented in the previous phase return
    steep = schedules.make_schedule("recency", cfg.replace(recency_exponent=60.0), seed=0)
    for t in range(2, cfg.n_tasks):
        rehearsed = np.nonzero(steep[:t, t])[0]
        assert len(rehearsed) and np.all(steep[rehearsed, t - 1] > 0), (t, rehearsed)
    # a flat one (d -> 0) spreads the draws over the past tasks; a task's draws get equal shares of the budget
    flat = schedules.make_schedule("recency", cfg.replace(recency_exponent=1e-9, recency_draws=400), seed=0)
    assert np.all(flat[:-1, -1] > 0)
    B = schedules.phase_budget(cfg, cfg.n_tasks)
    shares = a[:-1, -1][a[:-1, -1] > 0] / B[-1] * cfg.recency_draws
    np.testing.assert_allclose(shares, np.round(shares), atol=0.01)


def test_reference_powerlaw_is_the_precursor_form(cfg: study.Config) -> None:
    n = schedules.make_schedule("powerlaw", cfg)
    lags = np.arange(1, cfg.n_tasks)
    expected = cfg.n_new * (1 + lags / 10) ** -5.6  # n0 (1 + L/10)^-5.6 with n0 = n_new
    np.testing.assert_allclose(n[cfg.n_tasks - 1 - lags, -1], expected, atol=1.0)
    assert list(np.round(expected[:3] / cfg.n_new, 2)) == [0.59, 0.36, 0.23]


def test_powerlaw_counts_decrease_with_lag_and_pure_form_has_slope_minus_d() -> None:
    cfg = study.Config.from_preset(
        "full", n_new=4000, budget=1.0, offset=0.0, exponent=1.5, n_tasks=12, n_train=4000
    )
    n = schedules.make_schedule("powerlaw", cfg)
    last = n[:-1, -1][::-1]  # counts at lags 1..T-1 in the last phase
    assert np.all(np.diff(last) <= 0)
    assert schedules.loglog_slope(last) == pytest.approx(-1.5, abs=0.02)


def test_metrics_on_hand_made_matrices() -> None:
    R = np.array([[0.9, 0.1, 0.1], [0.5, 0.9, 0.2], [0.4, 0.6, 0.9]])
    b = np.array([0.1, 0.1, 0.1])
    m = stream.acc_bwt_fwt(R, b)
    assert m["ACC"] == pytest.approx((0.4 + 0.6 + 0.9) / 3)
    assert m["BWT"] == pytest.approx(((0.4 - 0.9) + (0.6 - 0.9)) / 2)
    assert m["FWT"] == pytest.approx(((0.1 - 0.1) + (0.2 - 0.1)) / 2)
    perfect = stream.acc_bwt_fwt(np.ones((4, 4)), np.zeros(4))
    assert perfect == {"ACC": 1.0, "BWT": 0.0, "FWT": 1.0}
    np.testing.assert_allclose(stream.running_average_accuracy(R), [0.9, 0.7, (0.4 + 0.6 + 0.9) / 3])
    with pytest.raises(ValueError, match="R must be"):
        stream.acc_bwt_fwt(np.ones((2, 3)), np.ones(2))


def test_max_forgetting_counts_what_bwt_nets_out() -> None:
    """Chaudhry et al.'s forgetting is -BWT when every task peaks in its own phase, and larger when a task rose
    later (rehearsal's backward transfer) and was then lost."""
    R = np.array([[0.9, 0.1, 0.1], [0.5, 0.9, 0.2], [0.4, 0.6, 0.9]])
    assert stream.max_forgetting(R) == pytest.approx(-stream.acc_bwt_fwt(R, np.zeros(3))["BWT"])
    rose = np.array([[0.8, 0.1, 0.1], [0.9, 0.9, 0.1], [0.5, 0.9, 0.9]])
    assert stream.acc_bwt_fwt(rose, np.zeros(3))["BWT"] == pytest.approx(-0.15)
    assert stream.max_forgetting(rose) == pytest.approx(((0.9 - 0.5) + (0.9 - 0.9)) / 2)
    assert stream.max_forgetting(np.ones((4, 4))) == 0.0
    R = np.random.default_rng(0).uniform(size=(5, 5))
    assert stream.max_forgetting(R) >= -stream.acc_bwt_fwt(R, np.zeros(5))["BWT"]
    with pytest.raises(ValueError, match="R must be"):
        stream.max_forgetting(np.ones((2, 3)))


def test_diagonal_fisher_matches_per_sample_loop() -> None:
    torch.manual_seed(0)
    model = stream.make_mlp(5, (4,), n_classes=3)
    x = torch.randn(6, 5)
    fisher = regularisers.diagonal_fisher(model, x, torch.Generator().manual_seed(0))
    probs = model(x).softmax(-1)
    y = torch.multinomial(probs.detach(), 1, generator=torch.Generator().manual_seed(0)).squeeze(1)
    ref = {k: torch.zeros_like(p) for k, p in model.named_parameters()}
    for i in range(6):
        model.zero_grad()
        torch.log_softmax(model(x[i : i + 1]), -1)[0, y[i]].backward()
        for k, p in model.named_parameters():
            ref[k] += p.grad**2 / 6
    for k in ref:
        torch.testing.assert_close(fisher[k], ref[k], atol=1e-6, rtol=1e-4)


def test_closed_form_fisher_matches_the_per_sample_loop() -> None:
    """fisher_method="closed_form" ((g^2)^T (a^2) per Linear layer) gives the per-sample loop's Fisher, with the same
    sampled labels (the generator is left in the same state), on a tiny MLP with dropout (off in eval mode)."""
    torch.manual_seed(0)
    model = stream.make_mlp(7, (5, 4), n_classes=3, dropout=0.5)
    model.train()
    x = torch.randn(40, 7)
    gens = [torch.Generator().manual_seed(3) for _ in range(2)]
    loop = regularisers.diagonal_fisher(model, x, gens[0], chunk=16)
    closed = regularisers.diagonal_fisher_closed_form(model, x, gens[1])
    assert list(closed) == list(loop) and model.training
    for k in loop:
        torch.testing.assert_close(closed[k], loop[k], atol=1e-7, rtol=1e-5)
    assert torch.equal(torch.rand(3, generator=gens[0]), torch.rand(3, generator=gens[1]))
    with pytest.raises(ValueError, match=r"nn\.Linear"):
        regularisers.diagonal_fisher_closed_form(nn.Sequential(nn.Conv1d(1, 1, 1)), x, gens[1])


@pytest.mark.parametrize("kind", ["ewc", "online_ewc"])
def test_closed_form_fisher_gives_the_per_sample_penalty(cfg: study.Config, kind: str) -> None:
    """Every CPU tier uses the closed form (the default); it gives the per-sample loop's penalty to float
    rounding."""
    assert cfg.fisher_method == "closed_form"
    assert study.Config.from_preset("quick").fisher_method == "closed_form"
    torch.manual_seed(0)
    model = stream.make_mlp(5, (4,), n_classes=3)
    x = torch.randn(30, 5)
    importance = {}
    for method in ("per_sample", "closed_form"):
        reg = regularisers.Regulariser(kind, cfg.replace(fisher_method=method, fisher_samples=20))
        reg.end_task(model, x, torch.Generator().manual_seed(1))
        importance[method] = reg.importance
    for k, v in importance["per_sample"].items():
        torch.testing.assert_close(importance["closed_form"][k], v, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("kind", ["ewc", "online_ewc", "si"])
def test_regularisers_penalise_moving_away_from_the_anchor(cfg: study.Config, kind: str) -> None:
    torch.manual_seed(0)
    model = stream.make_mlp(5, (4,), n_classes=3)
    reg = regularisers.Regulariser(kind, cfg)
    reg.begin_task(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(32, 5), torch.randint(0, 3, (32,))
    for _ in range(5):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        reg.after_step(model, 0)
    reg.end_task(model, x, torch.Generator().manual_seed(0))
    assert float(reg.penalty(model).detach()) == pytest.approx(0.0, abs=1e-9)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5)
    assert float(reg.penalty(model).detach()) > 0


def test_tasks_are_permutations_of_one_split(cfg: study.Config) -> None:
    small = cfg.replace(dataset="digits", n_train=1000, n_test=500, n_new=500, n_tasks=3)
    tasks = data.make_tasks(small, seed=0)
    assert tasks.x_train.shape == (1000, 64) and tasks.x_test.shape == (500, 64)
    assert torch.equal(tasks.perms[0], torch.arange(64))
    x1, y1 = tasks.train(1)
    assert torch.equal(torch.sort(x1, 1).values, torch.sort(tasks.x_train, 1).values) and torch.equal(
        y1, tasks.y_train
    )
    assert tasks.x_train.max() <= 1.0 and tasks.x_train.min() >= 0.0


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def test_idx_loader_reads_mnist_format(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("train", 30), ("t10k", 10)):
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 4, 4)))
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    x, y, source = data.load_images("idx", str(tmp_path))
    assert x.shape == (40, 16) and y.shape == (40,) and x.min() >= 0 and x.max() <= 1
    assert "idx files" in source
    with pytest.raises(ValueError, match="has no train-images-idx3-ubyte"):
        data.load_images("idx", str(tmp_path / ".."))


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"exponent": -1.0}, "exponent=-1.0 is out of range"),
        ({"budget": -0.5}, "budget=-0.5 is out of range"),
        ({"n_tasks": 1}, "n_tasks=1 is out of range"),
        ({"environments": ("none", "powerlaw", "replay")}, r"environments\[2\]=.replay. is not allowed"),
        ({"data_dir": "/no/such/folder"}, "data_dir='/no/such/folder' does not exist"),
        ({"dataset": "idx"}, "dataset='idx' needs data_dir"),
        ({"dataset": "cifar"}, "dataset='cifar' is not allowed"),
        ({"n_new": 5000}, "n_new=5000 cannot exceed n_train=4000"),
        ({"tau": 0.0}, "tau=0.0 is out of range"),
        ({"environments": ("none", "powerlaw", "none")}, "must not repeat"),
        ({"environments": ("none", "uniform")}, "must include .none. and .powerlaw."),
    ],
)
def test_config_errors(kw: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        study.Config.from_preset("quick", **kw)


def test_unknown_environment_in_run_is_refused(cfg: study.Config) -> None:
    with pytest.raises(ValueError, match="environment 'replay' is not one of"):
        stream.run_environment(cfg, "replay", 0, torch.device("cpu"))


def test_smoke_runs_learn_each_task_and_forget_without_rehearsal() -> None:
    cfg = study.Config.from_preset("smoke", n_tasks=3)
    r = stream.run_environment(cfg, "powerlaw", 0, torch.device("cpu"))
    assert r.R.shape == (3, 3) and r.b.shape == (3,) and r.ff_acc.shape == (3,)
    assert np.all((r.R >= 0) & (r.R <= 1))
    assert np.all(np.diag(r.R) > 0.5)  # every new task is learned in its phase (10 classes: chance 0.1)
    assert np.all(np.abs(r.b - 0.1) < 0.1)  # untrained: near chance
    before = np.array(
        [r.b[0], *(r.R[t - 1, t] for t in range(1, 3))]
    )  # accuracy on each task before its phase
    assert np.all(r.ff_acc > before + 0.3)  # learning speed is read after some of the phase's learning
    np.testing.assert_array_equal(np.diag(r.schedule), cfg.n_new)
    none = stream.run_environment(cfg, "none", 0, torch.device("cpu"))
    assert none.R[-1, 0] < none.R[0, 0] - 0.03  # interference: task 0 is forgotten without rehearsal
    assert r.R[-1, 0] > none.R[-1, 0]  # and rehearsal keeps more of it


def test_run_many_reuses_finished_runs_without_variation(
    cfg: study.Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    z = np.zeros((2, 2))
    done = [stream.EnvResult("powerlaw", s, z, z[0], z[0], z) for s in (0, 1)]
    calls: list[tuple[str, int, dict[str, object]]] = []

    def fake_cached_run(cfg: study.Config, job: experiment.Job, run: object) -> stream.EnvResult:
        calls.append(job)
        return stream.EnvResult(job[0], job[1], z, z[0], z[0], z)

    monkeypatch.setattr(experiment, "cached_run", fake_cached_run)
    jobs = [("powerlaw", 0, {}), ("powerlaw", 0, {"exponent": 2.0}), ("powerlaw", 2, {}), ("none", 1, {})]
    out = experiment.run_many(
        cfg, jobs, None, "test", {experiment.job_key((r.env, r.seed, {})): r for r in done}
    )  # type: ignore[arg-type]
    assert out[0] is done[0]
    assert calls == [("powerlaw", 0, {"exponent": 2.0}), ("powerlaw", 2, {}), ("none", 1, {})]


def test_merged_ewc_gradient_equals_the_sum_of_per_task_penalties(cfg: study.Config) -> None:
    torch.manual_seed(0)
    model = stream.make_mlp(5, (4,), n_classes=3)
    reg = regularisers.Regulariser("ewc", cfg)
    per_task = []
    for _ in range(3):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.3 * torch.randn_like(p))
        x = torch.randn(20, 5)
        gen = torch.Generator().manual_seed(1)  # replay end_task's draws: sample order, then sampled labels
        fisher = regularisers.diagonal_fisher(model, x[torch.randperm(20, generator=gen)], gen)
        per_task.append((fisher, {k: p.detach().clone() for k, p in model.named_parameters()}))
        reg.end_task(model, x, torch.Generator().manual_seed(1))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2)
    merged = torch.autograd.grad(reg.penalty(model), list(model.parameters()))
    explicit = sum(
        cfg.ewc_lambda / 2 * (f[k] * (p - a[k]) ** 2).sum()
        for f, a in per_task
        for k, p in model.named_parameters()
    )
    for g1, g2 in zip(merged, torch.autograd.grad(explicit, list(model.parameters()))):
        torch.testing.assert_close(g1, g2, atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("kind", ["ewc", "si"])
def test_analytic_penalty_gradient_equals_autograd(cfg: study.Config, kind: str) -> None:
    torch.manual_seed(0)
    model = stream.make_mlp(5, (4,), n_classes=3)
    reg = regularisers.Regulariser(kind, cfg)
    reg.begin_task(model)
    x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
    nn.functional.cross_entropy(model(x), y).backward()
    with torch.no_grad():
        for p in model.parameters():
            p.sub_(0.1 * p.grad)
    reg.after_step(model, 0)
    reg.end_task(model, x, torch.Generator().manual_seed(0))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    expected = torch.autograd.grad(reg.penalty(model), list(model.parameters()))
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    reg.add_penalty_grad(model)
    for p, g in zip(model.parameters(), expected):
        torch.testing.assert_close(p.grad, g)


def test_regulariser_defaults_are_the_calibration_tables_best() -> None:
    """The committed calibration table (python -m phenomena.studies.powerlaw_rehearsal.calibration) is where the
    defaults come from."""
    record = json.loads((REPO / "data" / "calibration" / "powerlaw_rehearsal.json").read_text())
    full = study.Config.from_preset("full")
    assert record["best"] == {
        "ewc_lambda": full.ewc_lambda,
        "online_ewc_lambda": full.online_ewc_lambda,
        "si_c": full.si_c,
    }
    table = pd.DataFrame(record["table"])
    assert calibration.best_values(table) == record["best"]
    assert set(table["env"]) == set(calibration.GRID)


def test_calibration_runs_the_grid() -> None:
    cfg = study.Config.from_preset("smoke", n_tasks=2)
    table = calibration.calibrate(cfg, grid={"si": ("si_c", (0.1, 10.0))})
    assert list(table["value"]) == [0.1, 10.0] and table["ACC"].between(0, 1).all()


def test_claim_rows_read_numbers_render_and_declare_a_resolution() -> None:
    """Every row judges a number (a measure or a stored metric, never a template label), says the resolution of its
    measurement, and its statement and note render on the committed metrics."""
    from phenomena.studies.powerlaw_rehearsal.readouts import MEASURES

    for spec in study.claims:
        assert spec.metric in MEASURES.names() or "." in spec.metric, spec.id  # a measure, never a label
        assert isinstance(spec.resolution, str) and spec.resolution in MEASURES.names(), spec.id
    record = json.loads(
        (REPO / "data" / "sweeps" / "powerlaw_rehearsal" / "full" / "seed-0" / "results.json").read_text()
    )
    overrides = dict(record["config"])
    cfg = study.Config.from_preset(overrides.pop("preset"), **overrides)
    for row in study.claims(cfg, record["metrics"]):
        assert "{" not in row.statement and "{" not in row.note, row.id
        assert row.evaluated and row.resolution and row.resolution > 0, row.id


#: the rows the quick tier does not run (their verdict is the committed full sweep's)
NOT_RUN_AT_QUICK = {
    "powerlaw_ewc_combines",
    "powerlaw_comparable_long_horizon",
    "recency_comparable_long_horizon",
    "recency_superior_long_horizon",
    "heavy_tail_keeps_oldest_tasks",
    "robust_to_number_of_tasks",
    "robust_to_model_width",
    "robust_to_amount_rehearsed",
}


def test_full_preset_is_the_defaults() -> None:
    """The full tier is the fields' defaults exactly (the committed 5-seed sweep ran them)."""
    assert study.Config.PRESETS["full"] == {}
    assert study.Config.from_preset("full") == study.Config(preset="full")


def test_full_preset_trains_each_distinct_job_once() -> None:
    """The full tier: two run-seeds per config seed s (s and s + 1000) for the main comparison, the exponent sweep
    (d = 1 beside the main power law) and the long horizon; the robustness panels at s, whose T = 20 none and power-law
    runs are the long horizon's at s."""
    full = study.Config.from_preset("full", seed=6)
    assert experiment.seeds_of(full) == [6, 1006] and full.sweep_exponents == (1.0, full.exponent)
    jobs, out = [], {}

    def record(cfg: study.Config, job: experiment.Job, run: object) -> stream.EnvResult:
        jobs.append(job)
        r = controls.oracle_runner(cfg, job, None)
        r.R[-1] -= 0.01 * (job[1] > 1000)  # the second run-seed ends a point lower: the average must see both
        out[experiment.job_key(job)] = r
        return r

    res = experiment.compute(full, None, runner=record)
    keys = [experiment.job_key(job) for job in jobs]
    # main comparison, the d = 1 sweep, robustness, the long horizon (less the two runs robustness shares) and the
    # facilitation runs of power law and none beyond the main comparison's two
    assert len(keys) == len(set(keys)) == 2 * 10 + 2 * 1 + 10 + (2 * 6 - 2) + 2 * (24 - 2)
    # the long horizon: one row per schedule, its ACC the mean of its two runs' ACCs
    assert len(res.horizon) == 6 and set(res.horizon["runs"]) == {2}
    for (label, job), row in zip(experiment.horizon_jobs(full), res.horizon.itertuples()):
        assert label == row.schedule and job[1] == 6
        twin = (job[0], 1006, job[2])
        accs = [out[experiment.job_key(j)].R[-1].mean() for j in (job, twin)]
        assert accs[0] - accs[1] == pytest.approx(0.01) and pytest.approx(np.mean(accs)) == row.ACC


def test_facilitation_reads_its_own_runs_and_nothing_else_does() -> None:
    """At full the facilitation trends of power law and no rehearsal read ``facilitation_runs`` (24) run-seeds per
    config seed (the main comparison's two, then s + 2000, ...); every other number reads the main comparison's
    two. Each extra run is given a steeper step-matched trend and a lower final accuracy: the trend's mean must
    see all 24, the environment's ACC none of the extra ones."""
    full = study.Config.from_preset("full", seed=3)
    assert full.facilitation_runs == 24 and study.Config.from_preset("quick").facilitation_runs == 1
    assert experiment.facilitation_seeds(full) == [3 + 1000 * i for i in range(24)]

    def tilted(cfg: study.Config, job: experiment.Job, run: object) -> stream.EnvResult:
        r = controls.oracle_runner(cfg, job, None)
        i = job[1] // 1000
        if i >= 2:
            speed = np.asarray(r.extra["ff_step_acc"]) + 0.001 * i * np.arange(len(r.ff_acc))
            r.extra["ff_step_acc"] = speed.tolist()
            r.R[-1] -= 0.3
        return r

    res = experiment.compute(full, None, runner=tilted)
    plain = experiment.compute(full, None, runner=controls.oracle_runner)
    assert {env: len(runs) for env, runs in res.facilitation_runs.items()} == {"powerlaw": 24, "none": 24}
    m, m0 = summary.summarize(full, res), summary.summarize(full, plain)
    extra = np.mean([0.001 * i if i >= 2 else 0.0 for i in range(24)])
    for env in ("powerlaw", "none"):
        assert m["facilitation_slope_steps"][env] == pytest.approx(
            m0["facilitation_slope_steps"][env] + extra
        )
        assert len(m["facilitation_slope_steps_by_run"][env]) == m["facilitation_n_runs"][env] == 24
    assert m["by_env"] == m0["by_env"] and m["horizon"] == m0["horizon"]
    assert m["facilitation_n_runs"]["uniform"] == 2  # other environments read their main runs


def test_quick_preset_runs_only_the_main_comparison() -> None:
    """The quick tier trains the main comparison and nothing else: no robustness or long-horizon job, an exponent
    sweep that is the main comparison's power-law run, every environment of full but power law + EWC, the reference
    schedule (T, network, epochs, budget) unchanged."""
    quick, full = study.Config.from_preset("quick"), study.Config.from_preset("full")
    assert experiment.robustness_jobs(quick) == [] and experiment.horizon_jobs(quick) == []
    assert set(quick.sweep_exponents) == {quick.exponent}
    assert set(full.environments) - set(quick.environments) == {"powerlaw_ewc"}
    assert quick.n_seeds == 1 and experiment.seeds_of(quick.replace(seed=5)) == [5]
    assert quick.fisher_method == full.fisher_method == "closed_form"
    same = (
        "n_tasks",
        "n_train",
        "n_test",
        "n_new",
        "hidden",
        "epochs",
        "batch_size",
        "lr",
        "exponent",
        "budget",
    )
    assert all(getattr(quick, f) == getattr(full, f) for f in same)
    jobs = []

    def record(cfg: study.Config, job: experiment.Job, run: object) -> stream.EnvResult:
        jobs.append(job)
        return controls.oracle_runner(cfg, job, None)

    experiment.compute(quick, None, runner=record)
    main = {(env, 0, json.dumps({})) for env in quick.environments}
    assert {(env, seed, json.dumps(var)) for env, seed, var in jobs} == main and len(jobs) == len(main)


def test_quick_preset_leaves_the_rows_it_does_not_run_not_evaluated() -> None:
    """At quick every row of the main comparison is judged and the others are "not evaluated" (never NaN or a
    fail): judged on the oracle learner's metrics at the quick config (no training)."""
    quick = study.Config.from_preset("quick")
    rows = {r.id: r for r in study.claims(quick, controls.oracle(quick))}
    assert rows.keys() == {spec.id for spec in study.claims}
    assert {i for i, r in rows.items() if not r.evaluated} == NOT_RUN_AT_QUICK
    for i in rows.keys() - NOT_RUN_AT_QUICK:
        assert np.isfinite(rows[i].ours), i


def test_step_matched_learning_speed_is_stored_per_phase() -> None:
    """The metrics keep each environment's step-matched new-task accuracy per phase t >= 1 and its slope: on the
    oracle, the power law learns each task 0.05 faster than the one before, no rehearsal does not."""
    cfg = controls.config()
    m = controls.oracle(cfg)
    assert m["speed_steps_by_phase"]["powerlaw"] == pytest.approx([0.55, 0.6, 0.65])
    assert m["speed_steps_by_phase"]["none"] == pytest.approx([0.5] * 3)
    assert m["facilitation_slope_steps"]["powerlaw"] == pytest.approx(0.05)
    assert m["facilitation_slope_steps"]["none"] == pytest.approx(0.0, abs=1e-12)
    rows = {r.id: r for r in study.claims(cfg, m)}
    assert rows["facilitation_trend_per_step"].ours == pytest.approx(0.05)


def test_a_run_trained_in_a_worker_process_is_the_in_process_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """phenomena.workers.prefill trains jobs in spawned processes into the cache; each run seeds its own data,
    initialisation, shuffles, schedule and Fisher samples, so the cached result has the same bits as the run
    trained here after other draws from the global random state."""
    from phenomena import workers
    from phenomena.run import Run

    monkeypatch.setenv("PHENOMENA_CACHE", str(tmp_path))
    monkeypatch.delenv("PHENOMENA_NO_CACHE", raising=False)
    cfg = study.Config.from_preset("smoke", n_tasks=3, epochs=1)
    run = Run.start("powerlaw_rehearsal", cfg, device="cpu")
    jobs = [("ewc", 1, {}), ("recency", 1, {"n_tasks": 4})]
    assert workers.prefill(run, [(experiment.prefill_job, (cfg, job)) for job in jobs], workers=2) == 2
    torch.rand(7)  # a global random state the children never saw
    for env, seed, var in jobs:
        cached = experiment.cached_run(cfg, (env, seed, var), run).to_dict()
        here = stream.run_environment(cfg, env, seed, torch.device("cpu"), **var).to_dict()
        assert cached["seconds"] != here["seconds"]  # read from the cache, not trained again
        for k in ("R", "b", "ff_acc", "schedule", "extra"):
            assert cached[k] == here[k], (env, k)


@pytest.mark.slow
def test_the_facilitation_calibration_script_runs(tmp_path: Path) -> None:
    """``scripts/calibrate_facilitation.py`` (the calibration behind ``facilitation_runs``) at the smoke preset: one
    gain per config seed and run, each equal to the study's own power-law minus no-rehearsal slope for that run."""
    import subprocess
    import sys

    out = tmp_path / "gains.json"
    argv = ["--seeds", "5-6", "--runs", "2", "--preset", "smoke", "--jobs", "1", "--json", str(out)]
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "calibrate_facilitation.py"), *argv],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    gains = json.loads(out.read_text())
    assert sorted(gains) == ["5", "6"] and all(len(g) == 2 for g in gains.values())
    assert "2 runs:" in done.stdout and "over 2 config seeds" in done.stdout
    cfg = study.Config.from_preset("smoke", seed=6)
    by = {
        env: stream.run_environment(cfg, env, 1006, torch.device("cpu")).extra["ff_step_acc"]
        for env in ("powerlaw", "none")
    }
    expected = stream.facilitation_slope(np.asarray(by["powerlaw"])) - stream.facilitation_slope(
        np.asarray(by["none"])
    )
    assert gains["6"][1] == pytest.approx(expected)
