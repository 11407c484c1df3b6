from __future__ import annotations

import json
import math
import types

import numpy as np
import pytest
import torch

from phenomena.studies import lora_intruder_dimensions as study
from phenomena.studies.lora_intruder_dimensions import config, data, evaluate, finetune, intruders
from phenomena.studies.lora_intruder_dimensions import model as encoder_model


def _matrix(
    out: int, inp: int, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """W0 = U0 diag(S0) V0^T with known orthonormal factors and distinct singular values 10 > ... > 1."""
    gen = torch.Generator().manual_seed(seed)
    p = min(out, inp)
    U0 = torch.linalg.qr(torch.randn(out, p, generator=gen, dtype=torch.float64))[0]
    V0 = torch.linalg.qr(torch.randn(inp, p, generator=gen, dtype=torch.float64))[0]
    S0 = torch.linspace(10, 1, p, dtype=torch.float64)
    return (U0 * S0) @ V0.T, U0, S0, V0


def _intruder_indices(W0: torch.Tensor, W: torch.Tensor, k: int = 10, epsilon: float = 0.5) -> torch.Tensor:
    """Indices (by rank) of the intruders among W's top-k left singular vectors: Definition 3.1 read off
    ``intruder_scores``, with the library's epsilon check."""
    intruders.check_epsilon(epsilon)
    return torch.nonzero(intruders.intruder_scores(W0, W, k) < epsilon).flatten()


@pytest.fixture(scope="module")
def tiny() -> tuple[study.Config, encoder_model.Base, data.TextTask]:
    cfg = study.Config.from_preset("smoke")
    return cfg, encoder_model.load_base(cfg), data.build_task(cfg, cfg.task)


def _planted(U0: torch.Tensor, V0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit x spread evenly over the bottom half of W0's left singular vectors (|cos(x, u0_i)| = 1/sqrt(p/2) for
    those, 0 for the top half) and the last right singular vector y: a plant that leaves the top ones intact."""
    half = U0.shape[1] // 2
    x = U0[:, half:].sum(1) / math.sqrt(U0.shape[1] - half)
    return x, V0[:, -1]


def test_planted_direction_is_an_intruder_at_the_right_epsilon() -> None:
    n = 64
    W0, U0, S0, V0 = _matrix(n, n)
    x, y = _planted(U0, V0)
    W = W0 + 2 * S0[0] * torch.outer(x, y)  # larger than sigma_1: the new top direction
    scores = intruders.intruder_scores(W0.float(), W.float(), k=10)
    u = np.linalg.svd(W.numpy())[0][:, 0]  # independent reference: numpy's top left singular vector of W
    assert scores[0] == pytest.approx(np.abs(U0.numpy().T @ u).max(), abs=1e-4)
    assert scores[0] < 0.3  # far from every pre-trained direction
    torch.testing.assert_close(scores[1:], torch.ones(9), atol=1e-4, rtol=0)  # the others are untouched
    assert _intruder_indices(W0, W, k=10, epsilon=0.5).tolist() == [0]
    assert _intruder_indices(W0, W, k=10, epsilon=float(scores[0]) * 0.99).tolist() == []
    assert _intruder_indices(W0, W, k=10, epsilon=float(scores[0]) * 1.01).tolist() == [0]
    weak = W0 + 0.5 * float(S0[10]) * torch.outer(x, y)  # weaker than sigma_10: not among the top 10
    assert _intruder_indices(W0, weak, k=10, epsilon=0.5).numel() == 0


def test_planted_direction_outside_the_column_space_of_a_tall_matrix() -> None:
    W0, U0, _S0, V0 = _matrix(96, 32, seed=1)
    x = torch.randn(96, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    x = x - U0 @ (U0.T @ x)  # orthogonal to every left singular vector of W0
    x = x / x.norm()
    W = W0 + 9 * torch.outer(x, V0[:, -1])  # W v = 1 u0_last + 9 x: singular value ~9.06, rank 2
    scores = intruders.intruder_scores(W0.float(), W.float(), k=10)
    idx = _intruder_indices(W0, W, k=10, epsilon=0.5)
    assert idx.numel() == 1 and scores[idx[0]] == pytest.approx(1 / math.sqrt(82), abs=1e-3)


def test_unchanged_or_slightly_perturbed_matrix_has_no_intruders() -> None:
    W0 = _matrix(48, 80, seed=3)[0].float()
    for eps in (0.5, 0.9, 0.99):
        assert _intruder_indices(W0, W0, epsilon=eps).numel() == 0
    noisy = W0 + 1e-3 * torch.randn(W0.shape, generator=torch.Generator().manual_seed(0))
    assert _intruder_indices(W0, noisy, epsilon=0.9).numel() == 0


def test_similarity_of_a_matrix_with_itself_is_the_identity_pattern() -> None:
    W0 = _matrix(40, 40, seed=4)[0].float()
    sim = intruders.similarity_matrix(W0, W0, n=16)
    assert sim.shape == (16, 16)
    torch.testing.assert_close(sim, torch.eye(16), atol=1e-4, rtol=0)


def test_analysis_counts_by_layer_type_and_epsilon() -> None:
    W0 = {
        "encoder.layer.0.attention.self.query": _matrix(32, 32, 5)[0].float(),
        "encoder.layer.1.intermediate.dense": _matrix(64, 32, 6)[0].float(),
    }
    W = dict(W0)
    _, U0, _S0, V0 = _matrix(32, 32, 5)
    x, y = _planted(U0, V0)
    W["encoder.layer.0.attention.self.query"] = (
        W0["encoder.layer.0.attention.self.query"] + 20 * torch.outer(x, y).float()
    )
    svd = {n: intruders.left_svd(w) for n, w in W0.items()}
    an = intruders.analyse(svd, W, W0, k=10)
    assert intruders.count_intruders(an, 0.5) == 1
    assert intruders.intruders_by(an, 0.5, "layer") == {0: 1, 1: 0}
    assert intruders.intruders_by(an, 0.5, "type") == {"query": 1, "mlp_in": 0}
    assert an["encoder.layer.0.attention.self.query"]["dw_erank"] == pytest.approx(1.0, abs=1e-3)
    assert an["encoder.layer.1.intermediate.dense"]["dw_norm"] == 0.0
    with pytest.raises(ValueError, match=r"epsilon=1\.5 is out of range"):
        intruders.count_intruders(an, 1.5)


def test_effective_rank() -> None:
    assert intruders.effective_rank(torch.ones(7)) == pytest.approx(7.0)
    assert intruders.effective_rank(torch.tensor([3.0, 0.0, 0.0])) == pytest.approx(1.0)
    assert intruders.effective_rank(torch.zeros(4)) == 0.0
    assert 1.0 < intruders.effective_rank(torch.tensor([4.0, 1.0, 1.0])) < 3.0


def test_scale_direction_and_intervention_targets() -> None:
    W = _matrix(24, 24, seed=7)[0].float()
    svd = intruders.left_svd(W)
    S = svd[1]
    for lam in (0.0, 0.5, 2.0):
        S_new = torch.linalg.svdvals(intruders.scale_direction(W, svd, 2, lam))
        expected = torch.sort(torch.cat([S[:2], lam * S[2:3], S[3:]]), descending=True).values
        torch.testing.assert_close(S_new, expected, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(intruders.scale_direction(W, svd, 0, 1.0), W)
    an = {
        "m": {
            "scores": torch.tensor([0.9, 0.95, 0.2, 0.1, 0.8]),
            "S": torch.tensor([9.0, 8.0, 7.5, 6.0, 5.0]),
        }
    }
    # top intruder: rank 2; its non-intruder neighbour with the closest singular value: rank 1 (8.0 vs 5.0... 6.0)
    assert intruders.intervention_targets({"m": W}, an, 0.5) == {"m": (2, 1)}
    an["m"]["scores"] = torch.tensor([0.9, 0.95, 0.9, 0.9, 0.9])
    assert intruders.intervention_targets({"m": W}, an, 0.5) == {}


@pytest.mark.parametrize("rslora", [False, True])
def test_merged_lora_weights_equal_peft_merge_and_unload(
    tiny: tuple[study.Config, encoder_model.Base, data.TextTask], rslora: bool
) -> None:
    from peft import LoraConfig, get_peft_model

    cfg, base, task = tiny
    spec = config.RunSpec("lora", 2, 6.0, rslora, 5e-2, "test")
    enc = data.encode(base.tokenizer, task.texts, cfg.max_length)
    ft = finetune.finetune(base, task, enc, spec, cfg, torch.device("cpu"), steps=3, progress=False)
    assert set(ft.lora) == set(base.modules)
    assert all(f["B"].abs().sum() > 0 for f in ft.lora.values()), "B moved away from its zero init"
    expected_scale = 6.0 / (math.sqrt(2) if rslora else 2)
    assert all(f["scale"] == pytest.approx(expected_scale) for f in ft.lora.values())
    model = get_peft_model(
        encoder_model.load_encoder(cfg.model, cfg.seed),
        LoraConfig(r=2, lora_alpha=6.0, use_rslora=rslora, target_modules=cfg.target_modules),
    )
    intruders._load_lora(model, ft.lora)
    merged = dict(model.merge_and_unload().named_modules())
    ours = ft.weights(base)
    for name in base.modules:
        torch.testing.assert_close(ours[name], merged[name].weight, atol=1e-6, rtol=1e-5)
        assert not torch.allclose(ours[name], base.W0[name])


def test_full_finetune_changes_only_the_adapted_matrices(
    tiny: tuple[study.Config, encoder_model.Base, data.TextTask],
) -> None:
    cfg, base, task = tiny
    enc = data.encode(base.tokenizer, task.texts, cfg.max_length)
    ft = finetune.finetune(
        base,
        task,
        enc,
        cfg.full_run().__class__("full", 0, 0, False, 1e-2, "t"),
        cfg,
        torch.device("cpu"),
        steps=3,
        progress=False,
    )
    assert ft.lora is None and set(ft.delta) == set(base.modules)
    assert all(d.abs().sum() > 0 for d in ft.delta.values())
    W = ft.weights(base)
    torch.testing.assert_close(W[base.modules[0]] - base.W0[base.modules[0]], ft.delta[base.modules[0]])


def test_topic_task_is_clean_and_stratified() -> None:
    task = data.topic_task("a", 20, seed=0)
    assert task.n_classes == 6 and len(task.texts) > 600
    assert len(set(task.texts)) == len(task.texts), "a text never appears twice (or under two labels)"
    assert np.bincount(task.labels[task.test_idx]).tolist() == [20] * 6
    assert not set(task.train_idx) & set(task.test_idx)
    assert task.fingerprint() == data.topic_task("a", 20, seed=0).fingerprint()
    assert task.describe()["chance_uniform"] == pytest.approx(1 / 6)
    with pytest.raises(ValueError, match="task='topics-z'"):
        data.build_task(study.Config.from_preset("quick"), "topics-z")


def test_kind_task_labels_every_docstring_by_what_it_documents() -> None:
    task = data.kind_task(20, seed=0)
    assert task.classes == ["class", "function", "method"] and len(task.texts) > 1500
    assert len(set(task.texts)) == len(task.texts)
    assert np.bincount(task.labels[task.test_idx]).tolist() == [20] * 3
    docs = data.stdlib_docstrings(("json",))["json"]
    kinds = {text: kind for kind, text in docs}
    dumps = next(t for t in kinds if t.startswith("Serialize ``obj`` to a JSON formatted ``str``"))
    assert kinds[dumps] == "function" and task.labels[task.texts.index(dumps)] == task.classes.index(
        "function"
    )


@pytest.mark.parametrize("probe", ["news", "pydocs"])
def test_probe_sentences_and_word_dropout(probe: str) -> None:
    s = data.probe_sentences(probe, 16, seed=0)
    assert s == data.probe_sentences(probe, 16, seed=0) and len(set(s)) == 16
    assert s != data.probe_sentences(probe, 16, seed=1)
    assert all(8 <= len(x.split()) <= 40 and x[-1] in ".!?" for x in s)
    rng = np.random.default_rng(0)
    for sentence in s:
        copy = data.drop_words(sentence, 0.3, rng).split()
        assert 1 <= len(copy) < len(sentence.split())
        assert all(w in sentence.split() for w in copy)


def test_the_forgetting_probe_is_news_prose_not_python_docs() -> None:
    news = data.probe_sentences("news", 200, seed=0)
    docs = data.probe_sentences("pydocs", 200, seed=0)
    python_words = ("Python", "function", "object", "module", "attribute", "method")
    share = [sum(any(w in s for w in python_words) for s in sents) / len(sents) for sents in (news, docs)]
    assert (
        share[0] < 0.05 < 0.4 < share[1]
    )  # the news probe is far from the task's domain, the other is in it
    with pytest.raises(ValueError, match="probe='poems' is not allowed"):
        data.probe_sentences("poems", 4, seed=0)
    with pytest.raises(ValueError, match="n_probe=100000 is larger"):
        data.probe_sentences("news", 100_000, seed=0)


def test_batch_order_is_shared_and_covers_epochs() -> None:
    a = finetune.batch_order(10, 7, 3, seed=1)
    assert a.shape == (7, 3) and torch.equal(a, finetune.batch_order(10, 7, 3, seed=1))
    assert sorted(a.flatten()[:10].tolist()) == list(range(10))  # the first epoch is a permutation


def test_config_runs_follow_the_alpha_lr_rule() -> None:
    cfg = study.Config.from_preset("full")
    runs = cfg.lora_runs()
    assert len({(r.rank, r.scale, r.lr) for r in runs}) == len(runs)
    for r in runs:
        if r.family != "lr sweep":
            assert r.alpha * r.lr == pytest.approx(cfg.lr_alpha_product)
    r4 = [r for r in runs if r.rank == 4 and not r.rslora]
    assert len(r4) == 1 and r4[0].alpha == 8  # alpha = 2r at r = 4 *is* the fixed-alpha run: shared
    assert cfg.headline_run() in runs


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"ranks": (0, 4), "headline_rank": 4}, r"ranks\[0\]=0 is out of range"),
        ({"ranks": (-2,), "headline_rank": 1}, r"ranks\[0\]=-2 is out of range"),
        ({"epsilon": 0.0}, "epsilon=0.0 is out of range"),
        ({"epsilon": 1.5}, "epsilon=1.5 is out of range"),
        ({"epsilons": (0.5, 1.2)}, r"epsilons\[1\]=1.2 is out of range"),
        ({"epsilon": 0.55}, r"epsilon=0.55 must be one of epsilons"),
        ({"rnak": 3}, r"unknown config key\(s\) \['rnak'\]"),
        ({"headline_rank": 3}, "headline_rank=3 must be one of ranks"),
        ({"target_modules": "(("}, "target_modules='\\(\\(' is not a valid regex"),
        ({"seq_tasks": ("kinds",)}, "seq_tasks"),
        ({"seq_tasks": ("topics-q",)}, "seq_tasks"),
        ({"lr_sweep_factors": (1.0, 2.0)}, "lr_sweep_factors must not include 1.0"),
        ({"lambdas": (0.0, 0.5)}, "lambdas"),
    ],
)
def test_config_errors(kw: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        study.Config.from_preset("full", **kw)


def test_unknown_preset() -> None:
    with pytest.raises(ValueError, match="preset='huge' is not allowed"):
        study.Config.from_preset("huge")


def test_epsilon_outside_unit_interval_raises() -> None:
    W = torch.eye(4)
    for eps in (0.0, -0.1, 1.01):
        with pytest.raises(ValueError, match="epsilon="):
            _intruder_indices(W, W, epsilon=eps)


def test_unknown_model_path_names_the_field(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"model='/no/such/model'.*config\.json"):
        encoder_model.model_source("/no/such/model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="model="):
        encoder_model.load_encoder(str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="model='not a hub id!'"):
        encoder_model.model_source("not a hub id!")


def test_unreachable_hub_model_gives_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match=r"(?s)model='no-such-org/no-such-model'.*HF_HUB_OFFLINE"):
        encoder_model.load_encoder("no-such-org/no-such-model")


def test_target_modules_matching_nothing_lists_the_modules(
    tiny: tuple[study.Config, encoder_model.Base, data.TextTask],
) -> None:
    _, base, _ = tiny
    with pytest.raises(
        ValueError,
        match=r"target_modules='attn\\.c_proj' matches no.*encoder\.layer\.1\.output\.dense, pooler\.dense",
    ):
        encoder_model.adapted_modules(base.encoder, r"attn\.c_proj")
    # the default regex adapts the six matrices of every layer, not the pooler
    names = encoder_model.adapted_modules(base.encoder, config.BERT_TARGETS)
    assert len(names) == 6 * 2 and not any("pooler" in n for n in names)
    assert sorted({encoder_model.matrix_type(n) for n in names}) == sorted(encoder_model.MATRIX_TYPES)


def test_evaluator_base_model_has_zero_forgetting(
    tiny: tuple[study.Config, encoder_model.Base, data.TextTask],
) -> None:
    cfg, base, task = tiny
    ev = evaluate.Evaluator(base, cfg, torch.device("cpu"))
    f = ev.forgetting()
    assert f["drift"] == pytest.approx(0.0, abs=1e-5) and 0.0 <= f["top1"] <= 1.0 and f["infonce"] > 0
    head = {"weight": torch.zeros(task.n_classes, base.hidden), "bias": torch.arange(task.n_classes).float()}
    acc = ev.accuracy(
        task, head
    )  # always predicts the last class: exactly 1 / n_classes on a stratified test
    assert acc == pytest.approx(1 / task.n_classes)


def test_online_dataset_without_the_datasets_package_names_the_field() -> None:
    try:
        import datasets  # noqa: F401
    except ImportError:
        cfg = study.Config.from_preset("smoke", task_dataset="glue:sst2")
        with pytest.raises(ValueError, match="task_dataset='glue:sst2' needs the `datasets` package"):
            data.build_task(cfg, cfg.task)
    else:  # pragma: no cover - only where `datasets` is installed
        pytest.skip("the datasets package is installed; this checks the error without it")


def test_stdlib_task_does_not_depend_on_what_this_process_patched(monkeypatch: pytest.MonkeyPatch) -> None:
    """Third-party packages patch stdlib classes (transformers adds methods to logging.Logger): the docstrings
    are read in a clean interpreter, so such a patch must not leak into the data set."""
    import logging

    def shout_once(self: logging.Logger) -> None:
        """A method patched in by some third-party package at import time."""

    monkeypatch.setattr(logging.Logger, "shout_once", shout_once, raising=False)
    data.stdlib_docstrings.cache_clear()
    docs = [text for _, text in data.stdlib_docstrings(("logging",))["logging"]]
    assert docs and not any("patched in by some third-party" in d for d in docs)
    assert any("logger" in d.lower() for d in docs)


def test_controls_plant_one_intruder_and_the_null_none() -> None:
    """The oracle's plant is exactly one intruder per matrix by the study's own counting; its small dense update
    none; the null (W = W0) has none anywhere."""
    from phenomena.studies.lora_intruder_dimensions import controls

    W0 = controls.base_matrices()
    svd = {n: intruders.left_svd(W) for n, W in W0.items()}
    planted = {n: controls.plant(W) for n, W in W0.items()}
    assert intruders.count_intruders(intruders.analyse(svd, planted, W0, 10), 0.5) == len(W0)
    moved = {n: controls.dense(W, i) for i, (n, W) in enumerate(W0.items())}
    assert intruders.count_intruders(intruders.analyse(svd, moved, W0, 10), 0.5) == 0
    cfg = controls.config()
    res = controls.results(cfg, learned=False)
    assert all(r["intruders"] == 0 and r["forgetting"] == 0 for r in res.rows) and res.intervened is None


def test_intervention_directions_and_their_norms() -> None:
    """The intervention scales the top intruder i by lambda; the neighbour control scales direction j by lambda; the
    matched-norm control changes W along j by the intervention's own Frobenius norm |lambda - 1| s_i."""
    W = _matrix(24, 24, seed=3)[0].float()
    U, S, Vh = intruders.left_svd(W)
    targets = {"m": (2, 5)}
    lam = 0.75
    edits = {d: intruders.intervene({"m": W}, targets, lam, direction=d)["m"] for d in intruders.DIRECTIONS}
    size = {d: float((e - W).norm()) for d, e in edits.items()}
    assert size["intruder"] == pytest.approx(0.25 * float(S[2]), rel=1e-4)
    assert size["neighbour"] == pytest.approx(0.25 * float(S[5]), rel=1e-4)
    assert size["matched"] == pytest.approx(size["intruder"], rel=1e-4)
    # the matched-norm edit lies along u_j v_j^T, not along the intruder's direction
    assert float(U[:, 2] @ (edits["matched"] - W) @ Vh[2]) == pytest.approx(0.0, abs=1e-4)
    with pytest.raises(ValueError, match=r"direction='sideways' is not allowed: expected one of"):
        intruders.intervene({"m": W}, targets, lam, direction="sideways")  # type: ignore[arg-type]
    rows = intruders.intervention_rows(
        {"m": W}, targets, (0.5, 1.0), lambda w: {"size": float((w["m"] - W).norm())}
    )
    assert [(r["lambda"], r["direction"]) for r in rows] == [
        (0.5, "top intruder"), (0.5, "neighbour (control)"), (0.5, "matched norm (control)"), (1.0, "top intruder")
    ]  # fmt: skip
    assert rows[-1]["size"] == 0.0


def test_beyond_size_separates_intruders_from_update_size() -> None:
    """Forgetting that is a line in the update's size leaves nothing for intruders to explain; forgetting that
    follows the intruders beyond size gives a positive rho; too few runs are undefined."""
    from phenomena.studies.lora_intruder_dimensions.summary import beyond_size

    # no two runs' residuals tie: with evenly spaced sizes and intruders [0, 3, 1, 4, 2] three residuals are equal up
    # to rounding, and how the CPU kind rounds them decided rho (1.0 on AVX2, 0.56 on AMX)
    size = [0.1, 0.15, 0.3, 0.45, 0.5]
    intr = [0, 4, 1, 3, 2]
    assert beyond_size(intr, size, [2 * s + 0.01 for s in size]) == 0.0
    assert beyond_size(intr, size, [s + 0.05 * i for s, i in zip(size, intr)]) > 0.8
    assert math.isnan(beyond_size(intr[:3], size[:3], size[:3]))


def test_learned_means_clearly_above_the_frozen_encoder() -> None:
    from phenomena.studies.lora_intruder_dimensions.experiment import LEARNED_MARGIN, has_learned

    res = {"base_metrics": {"acc_head_only": 0.70}, "task": {"chance_uniform": 1 / 3}}
    assert has_learned(0.70 + LEARNED_MARGIN + 1e-9, res) and not has_learned(0.72, res)
    res["base_metrics"]["acc_head_only"] = 0.2  # below chance: chance + margin is the floor
    assert not has_learned(0.36, res) and has_learned(0.39, res)


def test_data_module_does_not_import_the_config() -> None:
    """No config <-> data import cycle: data.py reads what it needs through a Protocol."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(data.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(m and m.endswith("lora_intruder_dimensions.config") for m in imported)


@pytest.mark.slow
def test_two_workers_give_the_results_of_one(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs trained in worker processes (then read from the cache) equal the runs trained in this process; the jobs
    this process trains beside the worker use compute's base model, not a second one (issue 32: peak memory)."""
    from phenomena.run import Run
    from phenomena.studies.lora_intruder_dimensions import experiment

    cfg = study.Config.from_preset(
        "smoke", steps=4, seq_steps=2, ranks=(1,), fixed_alpha_ranks=(), rslora_ranks=(), lambdas=(0.0, 1.0)
    )
    loads: list[str] = []
    real_load = experiment.load_base
    monkeypatch.setattr(experiment, "load_base", lambda c: loads.append(c.model) or real_load(c))
    out = {}
    for workers in (1, 2):
        monkeypatch.setenv("PHENOMENA_OUT", str(tmp_path / f"w{workers}"))
        monkeypatch.setenv("PHENOMENA_CACHE", str(tmp_path / f"w{workers}" / "cache"))
        run = Run.start("lora_intruder_dimensions", cfg, threads=1)
        loads.clear()
        res = study.compute(cfg, run, workers=workers)
        assert loads == [cfg.model], f"{workers} worker(s): this process loaded the base {len(loads)} times"
        assert not experiment._BASES  # the kernel's jobs let go of it
        out[workers] = res
    strip = lambda rows: [{k: v for k, v in r.items() if k != "train_s"} for r in rows]  # noqa: E731
    one, two = out[1], out[2]
    assert strip(one.rows) == strip(two.rows) and one.sequence == two.sequence
    # and everything else the kernel evaluates from the runs the worker trained
    assert one.base_metrics == two.base_metrics and one.steps == two.steps and one.steps
    assert one.intervened == two.intervened and one.intervention == two.intervention and one.peft == two.peft


def test_a_sequence_job_holds_one_finished_stage_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """``iter_sequence`` lets go of each stage once the next has its start weights: while a stage trains, no
    earlier stage is alive (a full-FT stage is ~80 MB at MiniLM's size), so the job that only fills the cache holds
    one stage, not the whole sequence."""
    import gc
    import weakref

    from phenomena.studies.lora_intruder_dimensions import experiment

    class Stage:
        def __init__(self, i: int) -> None:
            self.i = i

        def weights(self, base: object) -> dict[str, int]:
            return {"w": self.i}

        def biases(self, base: object) -> dict[str, int]:
            return {}

    alive: list[weakref.ref[Stage]] = []

    class FakeRun:
        def cached(self, name: str, fn: object, key: object, module: object) -> Stage:
            gc.collect()
            assert [r() for r in alive] == [None] * len(alive), f"{name} trains beside an earlier stage"
            return Stage(int(name.removeprefix("lora-seq")))

    class FakeTask:
        texts: tuple[str, ...] = ()

        def fingerprint(self) -> str:
            return "t"

    monkeypatch.setattr(experiment, "encode", lambda *a: None)
    monkeypatch.setattr(experiment, "_cache_cfg", lambda cfg, task: {})
    cfg = study.Config.from_preset("smoke")
    base = types.SimpleNamespace(tokenizer=None)
    for stage in experiment.iter_sequence(base, [FakeTask()] * 4, cfg.full_run(), cfg, FakeRun(), Stage(0)):
        alive.append(weakref.ref(stage))
        del stage
    gc.collect()
    assert len(alive) == 4 and all(r() is None for r in alive)  # the last goes when the generator ends


def test_every_preset_runs_offline_by_default() -> None:
    """No preset needs a download: the paper's RoBERTa-base is no pip package, so every preset defaults to the
    offline MiniLM (or the weight-free tiny BERT) and the paper preset trains the paper's 5 epochs at batch 16."""
    for preset in study.Config.PRESETS:
        cfg = study.Config.from_preset(preset)
        assert cfg.model in ("", config.TINY_MODEL), preset
    cfg = study.Config.from_preset("paper")
    assert cfg.batch_size == 16 and cfg.full_lr == 1e-5
    task = data.build_task(cfg, cfg.task)
    assert cfg.steps * cfg.batch_size / len(task.train_idx) == pytest.approx(5.0, abs=0.1)
    full = study.Config.from_preset("full")  # the full tier trains the paper's 5 epochs
    task = data.build_task(full, full.task)
    assert full.steps * full.batch_size / len(task.train_idx) == pytest.approx(5.0, abs=0.01)
    quick = study.Config.from_preset("quick")  # the quick tier's declared departure keeps lr x steps
    assert quick.steps * quick.full_lr == pytest.approx(full.steps * full.full_lr, rel=0.01)


#: the rows whose runs the quick tier does not make (ranks 4 and 16, the lr sweep, the sequential panel)
NOT_RUN_AT_QUICK = {
    "lora_more_intruders_than_full",
    "fewer_intruders_at_higher_rank",
    "more_intruders_more_forgetting",
    "intruders_beyond_update_size",
    "sequence_learns_each_later_task",
    "lora_forgets_earlier_task_more",
    "size_matched_full_ft",
    "lora_more_intruders_than_full_at_matched_size",
    "lora_forgets_less_at_matched_size",
}


_TASK = {"task": "t", "examples": 10, "classes": ["a", "b"], "test": 2, "train": 8}


def test_full_is_the_defaults_and_quick_runs_only_the_headline() -> None:
    """full = the field defaults exactly (the committed sweep's computation); quick trains full FT and LoRA r = 1 only
    (and the head-only reference), 500 steps at 2.6x both of the paper's learning rates (a declared departure: lr x
    steps of the rule's 5 epochs), with no sequence and the intervention at the rows' lambda only."""
    assert study.Config.PRESETS["full"] == {}
    full, quick = study.Config.from_preset("full"), study.Config.from_preset("quick")
    assert full == study.Config(preset="full")
    assert [r.rank for r in config.iter_runs(quick)] == [
        r.rank for r in (full.full_run(), full.headline_run())
    ]
    assert quick.steps == 500 and quick.full_lr / full.full_lr == pytest.approx(
        quick.lr_alpha_product / full.lr_alpha_product
    )
    assert quick.steps * quick.full_lr == pytest.approx(full.steps * full.full_lr, rel=0.01)
    assert "Learning rates off the paper's" in " ".join(study.departures(quick, {"task": _TASK}))
    assert "the paper's rule" in " ".join(study.departures(full, {"task": _TASK}))
    assert quick.lora_runs() == [quick.headline_run()] and quick.seq_tasks == ()
    assert sorted(quick.lambdas) == [0.75, 1.0] and min(full.lambdas, key=lambda x: abs(x - 0.75)) == 0.75
    assert set(study.Config.PRESETS["quick"]) == {
        "steps", "lr_alpha_product", "full_lr", "ranks", "lr_sweep_factors", "seq_tasks", "full_matched_lr"
    }  # fmt: skip
    assert quick.matched_full_run() is None and full.matched_full_run() is not None
    assert config.head_run(quick) == config.head_run(full)


def test_rows_quick_does_not_run_are_not_evaluated() -> None:
    """At quick the rows of the runs it does not make read "not evaluated", never NaN or a failure; the others are
    judged as at full: on the oracle control's quick-shaped metrics (through the real summarize) every evaluated row
    holds, and on the committed full sweep's seed-0 metrics they give the numbers its record holds."""
    from phenomena.paths import repo_root, sweep_dir
    from phenomena.studies.lora_intruder_dimensions import controls

    quick = study.Config.from_preset("quick")
    metrics = controls.oracle(quick)
    assert metrics["sequence"] == [] and len(metrics["lr_sweep"]) == 1
    rows = study.claims(quick, metrics)
    assert {c.id for c in rows if not c.evaluated} == NOT_RUN_AT_QUICK
    assert all(c.passed for c in rows if c.evaluated), [c.id for c in rows if c.evaluated and not c.passed]
    assert "Not run at this tier" in study.comparison(quick, metrics)

    # the committed full sweep's seed 0 judged with the quick config: the same rows not evaluated, the rest as stored
    seed0 = sweep_dir(repo_root(), "lora_intruder_dimensions", "full") / "seed-0" / "results.json"
    record = json.loads(seed0.read_text())
    own = {c["id"]: c for c in record["claims"]}
    at_quick = study.claims(quick.replace(seed=record["config"]["seed"]), record["metrics"])
    assert {c.id for c in at_quick if not c.evaluated} == NOT_RUN_AT_QUICK
    for c in at_quick:
        if c.evaluated and c.id in own:  # a row added after the sweep has no stored number
            assert c.ours == pytest.approx(own[c.id]["ours"], nan_ok=True), c.id


def test_random_update_keeps_rank_norm_and_spectrum_not_directions() -> None:
    """The null's update has the update's singular values (so its rank and Frobenius norm) on other directions."""
    gen = torch.Generator().manual_seed(0)
    dW = torch.randn(40, 2, generator=gen) @ torch.randn(2, 24, generator=gen)
    null = intruders.random_update(dW, torch.Generator().manual_seed(1))
    assert torch.linalg.matrix_rank(null) == 2
    assert float(null.norm()) == pytest.approx(float(dW.norm()), rel=1e-5)
    np.testing.assert_allclose(torch.linalg.svdvals(null)[:2], torch.linalg.svdvals(dW)[:2], rtol=1e-5)
    U, U_null = torch.linalg.svd(dW)[0][:, :2], torch.linalg.svd(null)[0][:, :2]
    assert float((U.T @ U_null).abs().max()) < 0.9
    assert torch.equal(intruders.random_update(torch.zeros(5, 3), gen), torch.zeros(5, 3))


def test_null_counts_a_large_random_direction_and_not_a_small_one() -> None:
    """In 256 dimensions a random direction is far from every basis vector (max |cos| ~ sqrt(2 ln n / n) ~ 0.2),
    so a rank-1 update above sigma_1 scores one intruder per matrix in the null at eps 0.5, and one far below
    sigma_k scores none; the counts are averaged over draws."""
    n = 256
    gen = torch.Generator().manual_seed(0)
    U0 = torch.linalg.qr(torch.randn(n, n, generator=gen))[0]
    V0 = torch.linalg.qr(torch.randn(n, n, generator=gen))[0]
    W0 = {"m": (U0 * torch.linspace(10, 1, n)) @ V0.T}
    svd = {"m": intruders.left_svd(W0["m"])}
    big = {"m": W0["m"] + 30.0 * torch.outer(U0[:, 0], V0[:, 0])}  # along W0's own top direction: no intruder
    assert intruders.count_intruders(intruders.analyse(svd, big, W0, 10), 0.5) == 0
    assert intruders.null_intruders(svd, big, W0, 10, (0.5,), draws=3, seed=0) == {0.5: 1.0}
    small = {"m": W0["m"] + 0.5 * torch.outer(U0[:, 0], V0[:, 0])}
    assert intruders.null_intruders(svd, small, W0, 10, (0.5,), draws=3, seed=0) == {0.5: 0.0}


def test_the_over_seeds_paragraph_sorts_rows_by_their_sweep_verdict() -> None:
    """The notebook's "what reproduces" paragraph says each headline row under its own verdict, with its numbers,
    and says plainly when no sweep is committed."""
    from phenomena.claims import committed_sweep

    row = {"mean": 1.0, "lo": 0.5, "hi": 1.5, "n": 5, "n_defined": 5}
    fake = {
        "preset": "full",
        "seeds": [0, 1, 2, 3, 4],
        "claims": [
            {**row, "id": "lora_has_intruders", "verdict": "holds"},
            {**row, "id": "lora_more_intruders_than_full", "verdict": "fails"},
            {**row, "id": "lora_as_foreign_as_random", "verdict": "unclear", "mean": None},
            {**row, "id": "size_matched_full_ft", "verdict": "fails"},  # not a headline row: not said
        ],
    }
    text = study.over_seeds(fake)
    holds, rest = text.split("Does not reproduce:")
    fails, unclear = rest.split("Undecided at this scale:")
    assert "`lora_has_intruders`: holds, 1 [0.5, 1.5] (5/5 seeds)" in holds
    assert "`lora_more_intruders_than_full`: fails" in fails and "lora_has" not in fails
    assert "`lora_as_foreign_as_random`: unclear (5/5 seeds defined)" in unclear
    assert "size_matched_full_ft" not in text
    assert "No full-tier sweep" in study.over_seeds(None)
    committed = committed_sweep("lora_intruder_dimensions")
    if committed:  # the committed sweep's verdicts, each under its own heading
        text = study.over_seeds(committed)
        for c in committed["claims"]:
            if f"`{c['id']}`" in text:
                assert f"`{c['id']}`: {c['verdict']}" in text


@pytest.mark.parametrize("shape", [(48, 48), (96, 24), (24, 96)])
def test_top_left_singular_vectors_match_the_svd(shape: tuple[int, int]) -> None:
    """The Gram-eigenvector shortcut gives the SVD's top-k left singular vectors (up to sign) and values, for
    square, tall and wide matrices, including a low-rank update on top (a LoRA-like W)."""
    gen = torch.Generator().manual_seed(0)
    W = (
        torch.randn(*shape, generator=gen) / 10
        + 2.0
        * torch.outer(torch.randn(shape[0], generator=gen), torch.randn(shape[1], generator=gen))
        / shape[0]
    )
    U, S, _ = intruders.left_svd(W)
    Uk, Sk = intruders.top_left(W, 10)
    assert Uk.shape == (shape[0], 10) and Sk.shape == (10,)
    assert torch.allclose(Sk, S[:10], rtol=1e-4, atol=1e-5)
    assert torch.allclose((Uk * U[:, :10]).sum(0).abs(), torch.ones(10), atol=1e-4)
    # and a k beyond the smaller side is cut to it
    assert intruders.top_left(W, 1000)[0].shape[1] == min(shape)
