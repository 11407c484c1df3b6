from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge
from sklearn.neighbors import KNeighborsRegressor

from phenomena.studies import icl_linear_regression as study
from phenomena.studies.icl_linear_regression import controls, data, experiment, learners, metrics, training
from phenomena.train import History


@pytest.fixture
def prompts() -> data.Prompts:
    return data.sample_prompts(6, 9, 4, torch.Generator().manual_seed(0))


def test_sampler_shapes_pool_and_active_dims() -> None:
    gen = torch.Generator().manual_seed(1)
    p = data.sample_prompts(5, 7, 4, gen, d_active=2)
    assert p.xs.shape == (5, 7, 4) and p.ys.shape == (5, 7) and p.ws.shape == (5, 4)
    assert torch.all(p.xs[..., 2:] == 0) and torch.all(p.ws[:, 2:] == 0)
    torch.testing.assert_close(p.ys, torch.einsum("bnd,bd->bn", p.xs, p.ws))
    pool = torch.randn(3, 4)
    q = data.sample_prompts(50, 2, 4, gen, pool=pool)
    assert all(any(torch.equal(w, v) for v in pool) for w in q.ws)
    with pytest.raises(ValueError, match="d_active"):
        data.sample_prompts(1, 2, 4, gen, d_active=5)


def test_interleave_layout(prompts: data.Prompts) -> None:
    tokens = learners.interleave(prompts.xs, prompts.ys)
    assert tokens.shape == (6, 18, 4)
    torch.testing.assert_close(tokens[:, 0::2], prompts.xs)
    torch.testing.assert_close(tokens[:, 1::2, 0], prompts.ys)
    assert torch.all(tokens[:, 1::2, 1:] == 0)


def test_ols_matches_numpy_lstsq_min_norm_for_every_prefix(prompts: data.Prompts) -> None:
    w = learners.fit_weights(prompts.xs, prompts.ys, "ols")
    for b in range(6):
        for k in range(9):
            X, y = prompts.xs[b, :k].double().numpy(), prompts.ys[b, :k].double().numpy()
            ref = np.linalg.lstsq(X, y, rcond=None)[0] if k else np.zeros(4)
            np.testing.assert_allclose(w[b, k].numpy(), ref, atol=1e-4)


def test_ridge_matches_sklearn(prompts: data.Prompts) -> None:
    w = learners.fit_weights(prompts.xs, prompts.ys, "ridge", ridge_lambda=0.7)
    for k in (1, 3, 8):
        ref = Ridge(alpha=0.7, fit_intercept=False).fit(prompts.xs[2, :k], prompts.ys[2, :k]).coef_
        np.testing.assert_allclose(w[2, k].numpy(), ref, atol=1e-5)


def test_knn_matches_sklearn(prompts: data.Prompts) -> None:
    pred = learners.knn_predictions(prompts.xs, prompts.ys)
    assert torch.all(pred[:, 0] == 0)
    torch.testing.assert_close(pred[:, 1], prompts.ys[:, 0])  # one point: its label
    for k in (3, 5, 8):
        knn = KNeighborsRegressor(n_neighbors=3).fit(prompts.xs[0, :k], prompts.ys[0, :k])
        ref = knn.predict(prompts.xs[0, k : k + 1])[0]
        assert pred[0, k].item() == pytest.approx(ref, abs=1e-5)


def test_averaging_and_one_step_gd(prompts: data.Prompts) -> None:
    avg = learners.fit_weights(prompts.xs, prompts.ys, "averaging")
    gd = learners.fit_weights(prompts.xs, prompts.ys, "gd")
    k = 5
    ref = (prompts.xs[:, :k] * prompts.ys[:, :k, None]).mean(1)
    torch.testing.assert_close(avg[:, k], ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(gd[:, k], ref * k / (k + 4 + 1), atol=1e-5, rtol=1e-5)


def test_baselines_are_bayes_sensible_on_average() -> None:
    p = data.sample_prompts(4000, 11, 5, torch.Generator().manual_seed(3))
    err = {
        m: metrics.squared_errors(learners.baseline_predictions(p, m), p.ys, 5).mean(0)
        for m in learners.LEARNERS
    }
    assert err["ols"][0] == pytest.approx(1.0, abs=0.08)  # predicts 0 at k = 0
    assert err["ols"][5] < 1e-3 and err["ols"][10] < 1e-3  # exact from k = d on
    assert err["ols"][3] == pytest.approx(1 - 3 / 5, abs=0.05)  # min-norm: 1 - k/d below k = d
    assert err["gd"][10] < err["averaging"][10]  # the tuned step shrinks averaging's variance
    assert err["knn"][10] > 0.3


def test_dmmse_identifies_the_pool_task() -> None:
    pool = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    p = data.sample_prompts(64, 10, 4, torch.Generator().manual_seed(1), pool=pool, noise_std=0.05)
    pred = learners.dmmse_predictions(p, pool, noise_var=0.0025)
    assert ((pred[:, 6:] - p.ys[:, 6:]) ** 2).mean() < 0.01
    one = learners.dmmse_predictions(p, pool[:1], noise_var=0.25)
    torch.testing.assert_close(one, p.xs @ pool[0])


def test_predict_with_queries_equals_editing_the_prompt() -> None:
    torch.manual_seed(0)
    cfg = study.Config.from_preset("smoke")
    model = learners.ICLModel(cfg.model_config())
    p = data.sample_prompts(3, cfg.n_points, cfg.d, torch.Generator().manual_seed(0))
    q = torch.randn_like(p.xs)
    got = learners.predict_with_queries(model, p, q)
    for k in (0, 2, cfg.n_points - 1):
        xs = p.xs.clone()
        xs[:, k] = q[:, k]
        torch.testing.assert_close(got[:, k], learners.predict(model, data.Prompts(xs, p.ys, p.ws))[:, k])


def test_ood_queries() -> None:
    p = data.sample_prompts(5, 8, 4, torch.Generator().manual_seed(0))
    orth = data.orthogonal_queries(p.xs)
    for k in range(1, 4):
        assert torch.einsum("bjd,bd->bj", p.xs[:, :k], orth[:, k]).abs().max() < 1e-4
        torch.testing.assert_close(orth[:, k].norm(dim=-1), p.xs[:, k].norm(dim=-1))
    assert torch.isnan(orth[:, 4:]).all()
    rep = data.repeated_queries(p.xs, torch.Generator().manual_seed(0))
    for k in range(1, 8):
        assert all(any(torch.equal(rep[b, k], p.xs[b, j]) for j in range(k)) for b in range(5))


def test_curriculum_schedule() -> None:
    cfg = study.Config.from_preset("paper")
    assert data.curriculum_at(0, cfg) == (5, 11)
    assert data.curriculum_at(2000, cfg) == (6, 13)
    assert data.curriculum_at(10**6, cfg) == (20, 41)
    assert data.curriculum_at(0, study.Config.from_preset("quick")) == (5, 11)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"d": 0}, "d=0 is out of range"),
        ({"steps": -1}, "steps=-1 is out of range"),
        ({"batch_size": 0}, "batch_size=0"),
        ({"d": 2.5}, "d=2.5 has the wrong type"),
        ({"dims": 3}, r"unknown config key\(s\) \['dims'\]"),
        ({"d_model": 30, "n_heads": 4}, "d_model=30 must be divisible by n_heads=4"),
        ({"curriculum": True, "d": 3}, "curriculum=True"),
        ({"td_pool_sizes": (4, -1)}, r"td_pool_sizes\[1\]=-1"),
    ],
)
def test_config_errors(kw: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        study.Config.from_preset("quick", **kw)


def test_spd_and_bootstrap() -> None:
    a, b = torch.zeros(10, 3), torch.ones(10, 3) * 2
    torch.testing.assert_close(metrics.spd(a, b, d=4), torch.ones(3))
    mean, lo, hi = metrics.bootstrap_band(torch.rand(200, 3), n_boot=200)
    assert np.all(lo <= mean) and np.all(mean <= hi) and mean.shape == (3,)


def test_smoke_training_learns_something() -> None:
    cfg = study.Config.from_preset("smoke", steps=150)
    _, hist = training.train_icl(cfg, torch.device("cpu"), progress=False)
    frame = hist.eval_frame()
    assert frame["step"].iloc[-1] == 150
    assert frame["err_k_2d"].iloc[-1] < frame["err_k_2d"].iloc[0]


def test_ols_keeps_a_small_but_real_direction_of_an_ill_conditioned_prefix() -> None:
    """Two nearly parallel context points (singular values 1e6 apart): minimum-norm least squares must still
    interpolate every context point, as numpy's SVD-based lstsq does (an eigenvalue cutoff of 1e-8 on X^T X drops
    that direction and leaves an error of order 1e-2)."""
    gen = torch.Generator().manual_seed(0)
    xs = torch.randn(1, 4, 5, generator=gen, dtype=torch.float64)
    xs[0, 1] = xs[0, 0] + 1e-6 * torch.randn(5, generator=gen, dtype=torch.float64)
    w = torch.randn(1, 5, generator=gen, dtype=torch.float64)
    ys = torch.einsum("bnd,bd->bn", xs, w)
    fit = learners.fit_weights(xs, ys, "ols").double()  # w_hat for every prefix k
    for k in (2, 3):
        X, y = xs[0, :k].numpy(), ys[0, :k].numpy()
        ref = np.linalg.lstsq(X, y, rcond=None)[0]
        np.testing.assert_allclose(X @ fit[0, k].numpy(), y, atol=1e-5)  # float32 output: interpolates
        np.testing.assert_allclose(fit[0, k].numpy(), ref, rtol=1e-4, atol=1e-4)
    orth = data.orthogonal_queries(xs.float())
    assert torch.einsum("jd,d->j", xs[0, :2].float(), orth[0, 2]).abs().max() < 1e-3


#: the rows whose runs the quick tier does not make (the task-diversity panel)
NOT_RUN_AT_QUICK = {
    "small_pool_follows_dmmse",
    "large_pool_follows_ridge",
    "diversity_generalises",
    "infinite_pool_reaches_ridge",
}


def test_full_is_the_defaults_and_quick_changes_only_the_schedule_and_the_panels() -> None:
    """full = the field defaults exactly (the committed sweep's computation); quick keeps full's task, model and
    optimiser and changes only the main schedule, the learning-curve cadence and which panels run."""
    assert study.Config.PRESETS["full"] == {}
    full, quick = study.Config.from_preset("full"), study.Config.from_preset("quick")
    assert full == study.Config(preset="full")
    changed = {"steps", "warmup_steps", "eval_every", "td_pool_sizes"}
    assert set(study.Config.PRESETS["quick"]) == changed
    assert quick.replace(**{f: getattr(full, f) for f in changed}, preset="full") == full
    assert quick.td_pool_sizes == () and quick.depth_layers == (1, full.n_layers)
    assert quick.reuses_main(full.n_layers) and quick.depth_config(1).steps == quick.steps


class _RecordingRun:
    """A stand-in for :class:`phenomena.run.Run` that trains nothing: ``cached`` records the name and returns an
    untrained model's state of the right shape."""

    device = torch.device("cpu")

    def __init__(self, cfg: study.Config) -> None:
        self.cfg, self.names = cfg, []

    def cached(self, name: str, compute: object, *, key: object = None) -> object:
        self.names.append(name)
        if name == "icl-main":
            state = learners.ICLModel(self.cfg.model_config()).state_dict()
            return {"state": state, "history": History().to_dict()}
        if name.startswith("icl-td-"):
            return learners.ICLModel(self.cfg.model_config(task_diversity=True)).state_dict()
        depth = int(name.removeprefix("icl-depth-L"))
        return learners.ICLModel(self.cfg.depth_config(depth).model_config()).state_dict()


def test_quick_trains_only_the_main_model_and_the_one_layer_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """compute() at quick asks for the main model (twice: itself and the depth panel's 6 layers, one cache entry)
    and the 1-layer model; no task-pool model and no 2- or 4-layer model."""
    monkeypatch.setenv("PHENOMENA_WORKERS", "1")
    quick = study.Config.from_preset("quick", eval_prompts=64)
    run = _RecordingRun(quick)
    results = experiment.compute(quick, run)  # type: ignore[arg-type]
    assert sorted(set(run.names)) == ["icl-depth-L1", "icl-main"]
    assert results.td.empty and list(results.depth["n_layers"]) == [1, quick.n_layers]


def test_full_trains_only_what_the_rows_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """compute() at full trains the main model, the 1-layer model and the pools M = 4, 64, infinity: the figure-only
    runs (M = 16, 2 and 4 layers; issue 32.3) are left to gpu and paper, which still run them."""
    monkeypatch.setenv("PHENOMENA_WORKERS", "1")
    full = study.Config.from_preset("full", eval_prompts=64, td_eval_prompts=64)
    run = _RecordingRun(full)
    results = experiment.compute(full, run)  # type: ignore[arg-type]
    assert sorted(set(run.names)) == ["icl-depth-L1", "icl-main", "icl-td-M0", "icl-td-M4", "icl-td-M64"]
    assert list(results.td["M"]) == [4, 64, 0] and list(results.depth["n_layers"]) == [1, full.n_layers]
    assert [full.pool_steps(M) for M in full.td_pool_sizes] == [
        full.td_steps,
        full.td_steps,
        full.td_steps_infinite,
    ]
    for preset in ("gpu", "paper"):
        cfg = study.Config.from_preset(preset)
        assert len(cfg.depth_layers) > 2 and len([M for M in cfg.td_pool_sizes if M]) > 2
        assert {cfg.pool_steps(M) for M in cfg.td_pool_sizes} == {cfg.td_steps}


def test_a_run_trained_in_a_worker_equals_one_trained_here(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every training job of compute() (smoke: main, two pools, the 1- and 2-layer models) filled by two workers
    is bitwise the model this process trains: each run seeds itself, not from the global random state."""
    from phenomena import workers
    from phenomena.run import Run

    cfg = study.Config.from_preset("smoke", seed=11)
    run = Run(study="icl_linear_regression", cfg=cfg, device=torch.device("cpu"), threads=1)
    states = {}
    for where in ("here", "workers"):
        monkeypatch.setenv("PHENOMENA_CACHE", str(tmp_path / where))
        if where == "workers":
            assert workers.prefill(run, experiment.training_jobs(cfg), workers=2) == 2
        torch.manual_seed(123 if where == "here" else 456)  # a different global state must not matter
        states[where] = [
            experiment.trained_model(cfg, run)[0].state_dict(),
            *[experiment.task_diversity_model(cfg, M, run).state_dict() for M in cfg.td_pool_sizes],
            *[experiment.depth_model(cfg, L, run).state_dict() for L in cfg.depth_layers],
        ]
    n_files = len(list((tmp_path / "workers").glob("*.pt")))
    assert n_files == len(experiment.training_jobs(cfg)) == 5
    for a, b in zip(states["here"], states["workers"], strict=True):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_rows_quick_does_not_run_are_not_evaluated() -> None:
    """At quick the task-diversity rows read "not evaluated", never NaN or a failure, and every other row is judged:
    on the oracle control's quick-shaped metrics (through the real evaluate and summarize, no training) every
    evaluated claim holds, and on the null's every evaluated claim fails."""
    quick = study.Config.from_preset("quick", eval_prompts=512)
    oracle, null = controls.oracle(quick), controls.null(quick)
    assert oracle["task_diversity"] == [] and len(oracle["depth_phases"]) == 2
    for metrics_, outcome in ((oracle, True), (null, False)):
        rows = study.claims(quick, metrics_)
        assert {c.id for c in rows} == {spec.id for spec in study.claims}
        assert {c.id for c in rows if not c.evaluated} == NOT_RUN_AT_QUICK
        claims = [c for c in rows if c.evaluated and c.kind == "claim"]
        assert all(np.isfinite(c.ours) and c.passed is outcome for c in claims), [
            (c.id, c.ours) for c in claims if c.passed is not outcome
        ]
    assert "Not run at this tier" in study.comparison(quick, oracle)
    assert "is **least-squares-like**" in study.comparison(quick, oracle)
    nearer_ridge = {**oracle, "spd_mean": {**oracle["spd_mean"], "ridge": 0.0}}
    assert "is **ridge-like, not least-squares-like**" in study.comparison(quick, nearer_ridge)
    assert "is **neither least-squares- nor ridge-like**" in study.comparison(quick, null)
    assert not any("Task diversity" in line for line in study.departures(quick, oracle))
