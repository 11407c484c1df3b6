from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch

from phenomena.paths import repo_root
from phenomena.run import Run
from phenomena.studies import induction_heads as study
from phenomena.studies.induction_heads import copy_task, experiment, measures, reddy, scores, training
from phenomena.train import History
from phenomena.transformer import Transformer, TransformerConfig

# ---------------------------------------------------------------------------------------------------------------
# Scorers on hand-built attention patterns


def test_perfect_stripes_score_one() -> None:
    P, T = 5, 10
    induction = torch.zeros(2, 3, T, T)
    for i in range(T):
        induction[:, :, i, i - P + 1 if i >= P else 0] = 1.0
    torch.testing.assert_close(scores.stripe_score(induction, P - 1, P), torch.ones(3))
    prev = torch.zeros(1, 2, T, T)
    prev[:, :, 0, 0] = 1.0
    prev[:, :, torch.arange(1, T), torch.arange(T - 1)] = 1.0
    torch.testing.assert_close(scores.prev_token_scores([prev]), torch.ones(1, 2))
    assert scores.stripe_score(prev, P - 1, P).max() == 0  # a previous-token head is no induction head


def test_uniform_causal_attention_scores_its_expectation() -> None:
    """Row i of uniform causal attention puts 1/(i+1) on every j <= i; the score is the mean of that over rows."""
    P = 6
    T = 2 * P
    uniform = torch.ones(T, T).tril()
    uniform = (uniform / uniform.sum(-1, keepdim=True)).expand(4, 2, T, T)
    expected_ind = sum(1 / (i + 1) for i in range(P, T)) / P
    expected_prev = sum(1 / (i + 1) for i in range(1, T)) / (T - 1)
    torch.testing.assert_close(scores.induction_scores([uniform], P), torch.full((1, 2), expected_ind))
    torch.testing.assert_close(scores.prev_token_scores([uniform]), torch.full((1, 2), expected_prev))


def test_stripe_score_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="offset"):
        scores.stripe_score(torch.zeros(1, 1, 4, 4), 3, 2)
    with pytest.raises(ValueError, match="offset"):
        scores.stripe_score(torch.zeros(1, 1, 4, 4), 1, 4)


def test_probe_losses_and_icl_score_select_the_right_targets() -> None:
    P = 4
    losses = torch.arange(2 * P - 1, dtype=torch.float32).expand(3, -1)  # loss of target t + 1 at column t
    first, rep = scores.probe_losses(losses, P)
    assert first == pytest.approx(np.mean(range(P - 1)))  # targets 1..P-1
    assert rep == pytest.approx(np.mean(range(P, 2 * P - 1)))  # targets P+1..2P-1 (target P is unpredictable)
    flat = torch.ones(2, 15)
    assert scores.icl_score(flat) == 0
    ramp = torch.cat([torch.full((2, 8), 4.0), torch.full((2, 7), 1.0)], dim=1)
    assert scores.icl_score(ramp) == pytest.approx(-3.0)


# ---------------------------------------------------------------------------------------------------------------
# Generators


@pytest.mark.parametrize(("seg", "gap"), [((2, 4), 0), ((3, 6), 5), ((8, 24), 16)])
def test_copy_blocks_invariants(seg: tuple[int, int], gap: int) -> None:
    B, T, V = 64, 64, 20
    batch = copy_task.copy_blocks(B, T, V, seg[0], seg[1], gap, torch.Generator().manual_seed(0))
    x, src = batch.tokens, batch.source
    assert x.shape == src.shape == (B, T) and x.min() >= 0 and x.max() < V
    assert torch.all(src <= torch.arange(T))
    torch.testing.assert_close(x, x.gather(1, src))  # every copy equals its source
    dist = torch.arange(T) - src
    copied = batch.copied
    assert torch.all(dist[copied] >= seg[0]) and torch.all(dist[copied] <= seg[1] + gap)
    # copies come in contiguous runs: inside a run the distance is constant and the source advances by one
    same_run = copied[:, 1:] & copied[:, :-1] & (dist[:, 1:] == dist[:, :-1])
    assert torch.all((src[:, 1:] - src[:, :-1])[same_run] == 1)
    assert not copied[:, : seg[0]].any()  # nothing to copy before the first segment is complete
    frac = copied.float().mean().item()
    assert 0.2 < frac < 0.5  # L / (2L + g) for the block sizes above
    again = copy_task.copy_blocks(B, T, V, seg[0], seg[1], gap, torch.Generator().manual_seed(0))
    assert torch.equal(again.tokens, x)


def test_copy_offsets_are_not_a_function_of_position() -> None:
    """The copy distance varies at every position, so no fixed positional rule can predict the copies."""
    batch = copy_task.copy_blocks(2000, 64, 64, 8, 24, 16, torch.Generator().manual_seed(1))
    dist = torch.arange(64) - batch.source
    for t in (30, 45, 63):
        d = dist[:, t][batch.copied[:, t]]
        assert len(d.unique()) >= 15


def test_bigram_chain_follows_its_table() -> None:
    """Fresh tokens from the bigram table: empirical transition frequencies match the table (an independent count),
    the table is fixed by the seed, and 0 concentration means uniform tokens (no table)."""
    cfg = study.Config.from_preset("quick", vocab_size=8, bigram_conc=0.5)
    table = copy_task.bigram_table(cfg)
    assert table.shape == (8, 8) and torch.allclose(table.sum(1), torch.ones(8))
    assert torch.equal(table, copy_task.bigram_table(cfg))
    assert copy_task.bigram_table(cfg.replace(bigram_conc=0.0)) is None
    x = copy_task.fresh_tokens(4000, 40, 8, torch.Generator().manual_seed(0), table)
    counts = torch.zeros(8, 8)
    counts.index_put_(
        (x[:, :-1].reshape(-1), x[:, 1:].reshape(-1)), torch.ones(x[:, 1:].numel()), accumulate=True
    )
    freq = counts / counts.sum(1, keepdim=True)
    assert (freq - table).abs().max() < 0.03
    assert copy_task.bigram_entropy(table) < math.log(8)
    uniform = torch.full((8, 8), 1 / 8)
    assert copy_task.bigram_entropy(uniform) == pytest.approx(math.log(8))
    batch = copy_task.copy_blocks(64, 64, 8, 8, 24, 16, torch.Generator().manual_seed(0), table)
    torch.testing.assert_close(batch.tokens, batch.tokens.gather(1, batch.source))


def test_repeated_probe() -> None:
    x = copy_task.repeated_probe(5, 7, 11, torch.Generator().manual_seed(0))
    assert x.shape == (5, 14)
    assert torch.equal(x[:, :7], x[:, 7:])


def test_reddy_sequences_invariants() -> None:
    gen = torch.Generator().manual_seed(0)
    N, L, D, K = 8, 4, 15, 12
    classes = reddy.Classes.make(K, L, D, gen)
    assert torch.equal(classes.labels, torch.arange(K) % L)
    b = reddy.reddy_sequences(200, N, 2, 1.0, 0.1, classes.label_vectors, gen, classes)
    T = 2 * N + 1
    assert (
        b.inputs.shape == (200, T, D + T) and b.target.shape == (200,) and b.context_labels.shape == (200, N)
    )
    torch.testing.assert_close(b.inputs[..., D:], torch.eye(T).expand(200, T, T))  # one-hot positions
    torch.testing.assert_close(b.inputs[:, 1:-1:2, :D], classes.label_vectors[b.context_labels])
    assert torch.all(
        (b.context_labels == b.target[:, None]).sum(1) >= 2
    )  # bursty: query class appears B times
    norms = b.inputs[:, 0:-1:2, :D].norm(dim=-1)
    assert 0.5 < norms.mean() < 1.5
    fresh = reddy.reddy_sequences(50, N, 4, 1.0, 0.0, classes.label_vectors, gen)
    assert torch.all((fresh.context_labels == fresh.target[:, None]).sum(1) >= 4)
    items = fresh.inputs[:, 0:-1:2, :D]
    query = fresh.inputs[:, -1, :D]
    matches = (items - query[:, None]).norm(dim=-1) < 1e-6  # eps = 0: the query equals its class's items
    assert torch.all(matches.sum(1) == 4)
    iid = reddy.reddy_sequences(400, N, 2, 0.0, 0.1, classes.label_vectors, gen, classes)
    hit = (iid.context_labels == iid.target[:, None]).any(1).float().mean()
    assert 0.6 < hit < 0.98  # non-bursty: the query's label is in context only by chance (1 - (3/4)^8 ~ 0.9)
    with pytest.raises(ValueError, match="multiple"):
        reddy.Classes.make(10, 4, D, gen)


def test_reddy_progress_measures_on_hand_built_patterns() -> None:
    N, T = 4, 9
    labels = torch.tensor([[0, 1, 0, 2]])
    batch = reddy.ReddyBatch(torch.zeros(1, T, 3), torch.tensor([0]), labels)
    a0 = torch.zeros(1, 1, T, T)
    a0[0, 0, torch.arange(T), torch.arange(T)] = 1.0
    lab = torch.arange(1, 2 * N, 2)
    a0[0, 0, lab, lab] = 0.0
    a0[0, 0, lab, lab - 1] = 1.0  # every label attends to its own item
    a1 = torch.zeros(1, 1, T, T)
    a1[0, 0, -1, lab] = 0.25  # the query spreads over the four labels; two carry its label
    out = reddy.reddy_progress([a0, a1], batch)
    assert out["item_to_label_attn"] == pytest.approx(1.0)
    assert out["query_to_label_attn"] == pytest.approx(0.5)


# ---------------------------------------------------------------------------------------------------------------
# A hand-constructed 2-layer induction circuit (Elhage et al.'s K-composition), weights set by hand


def hand_built_induction_model(V: int = 8, T: int = 16, sharp: float = 30.0) -> Transformer:
    """Residual layout: [token one-hot A | previous-token one-hot B | (positions, Q/K only) C | output U].

    Layer 0: query at i = position i - 1, key at j = position j -> attends to i - 1; copies token (A) into B.
    Layer 1: query = token (A), key = previous token (B) -> attends to the j whose previous token matches;
    copies token j into U, which the unembedding reads. Position 0 is masked out of layer 1's keys."""
    d = 3 * V + T
    A, Bs, C, U = 0, V, 2 * V, 2 * V + T
    cfg = TransformerConfig(n_layers=2, n_heads=1, d_model=d, vocab_size=V, attn_only=True, layer_norm=False,
                            pos="shortformer", max_len=T)  # fmt: skip
    model = Transformer(cfg)
    beta = sharp * math.sqrt(d)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.embed.weight[torch.arange(V), A + torch.arange(V)] = 1.0
        model.pos_embed[torch.arange(T), C + torch.arange(T)] = 1.0
        w0, w1 = model.blocks[0].attn.qkv.weight, model.blocks[1].attn.qkv.weight
        w0[torch.arange(T - 1), C + torch.arange(1, T)] = beta  # q_i = beta e_{i-1}
        w0[d + torch.arange(T), C + torch.arange(T)] = 1.0  # k_j = e_j
        w0[2 * d + torch.arange(V), A + torch.arange(V)] = 1.0  # v_j = token j
        model.blocks[0].attn.out.weight[Bs + torch.arange(V), torch.arange(V)] = 1.0
        w1[torch.arange(V), A + torch.arange(V)] = beta  # q_i = beta token i
        w1[d + torch.arange(V), Bs + torch.arange(V)] = 1.0  # k_j = previous token of j
        model.blocks[1].attn.qkv.bias[V] = beta  # a constant query component ...
        w1[d + V, C] = -1.0  # ... against a key flag at position 0 only: layer 1 ignores position 0
        w1[2 * d + torch.arange(V), A + torch.arange(V)] = 1.0
        model.blocks[1].attn.out.weight[U + torch.arange(V), torch.arange(V)] = 20.0
        model.unembed.weight[torch.arange(V), U + torch.arange(V)] = 1.0
    return model.eval()


def test_hand_built_circuit_is_an_induction_head_and_copies() -> None:
    V, P = 8, 8
    model = hand_built_induction_model(V, 2 * P)
    probe = torch.stack([torch.randperm(V, generator=torch.Generator().manual_seed(s)) for s in range(16)])
    probe = torch.cat([probe, probe], 1)
    m = scores.probe_metrics(model, probe, P)
    assert m["prev_token"][0, 0] > 0.99 and m["induction"][0, 0] < 0.01
    assert m["induction"][1, 0] > 0.99 and m["prev_token"][1, 0] < 0.2  # uniform where nothing matches
    assert m["loss_rep"] < 0.01 and m["loss_first"] > 1.0
    no_copy = scores.probe_metrics(model, probe, P, head_mask=torch.tensor([[1.0], [0.0]]))
    assert no_copy["loss_rep"] == pytest.approx(math.log(V), abs=1e-5)  # nothing writes to the output
    no_prev = scores.probe_metrics(model, probe, P, head_mask=torch.tensor([[0.0], [1.0]]))
    assert no_prev["loss_rep"] > 1.5 and no_prev["induction"][1, 0] < 0.3  # K-composition broken


def test_ablation_table_on_the_hand_built_circuit() -> None:
    V, P = 8, 8
    model = hand_built_induction_model(V, 2 * P)
    cfg = study.Config.from_preset("smoke", n_heads=1, d_model=16)
    run = training.CopyRun(model, History(), [], cfg, n_layers=2)
    probe = torch.stack([torch.randperm(V, generator=torch.Generator().manual_seed(s)) for s in range(8)])
    table = training.ablations(run, torch.cat([probe, probe], 1), P).set_index("kind")
    assert list(table.index) == ["none", "top_induction", "top_prev_token", "all_induction"]
    assert table.loc["none", "delta_loss"] == 0
    assert table.loc["top_induction", "loss_rep"] == pytest.approx(math.log(V), abs=1e-5)
    assert table.loc["top_prev_token", "delta_loss"] > 1.5


# ---------------------------------------------------------------------------------------------------------------
# Transition detection, config validation, wiring


def test_transition_steps_on_a_logistic_curve() -> None:
    steps = np.arange(0, 5001, 50)
    falling = 4.0 - 3.0 / (1 + np.exp(-(steps - 2000) / 100))
    t = scores.transition_steps(steps, falling, end=1.0, start=4.0)
    assert t[0.5] == pytest.approx(2000, abs=5)
    assert t[0.1] == pytest.approx(2000 - 100 * math.log(9), abs=10)
    assert t[0.9] == pytest.approx(2000 + 100 * math.log(9), abs=10)
    rising = scores.transition_steps(steps, 1 - falling)  # default start/end: first value, mean of the last 3
    assert rising[0.5] == pytest.approx(2000, abs=10)
    assert math.isnan(scores.transition_steps(steps, np.ones_like(steps, dtype=float))[0.5])


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"segment_max": 40}, "segment_max=40 is too long for the context"),
        ({"probe_len": 40}, "probe_len=40"),
        ({"segment_min": 30, "segment_max": 20}, "segment_min=30 must be <= segment_max=20"),
        ({"vocab_size": 1}, "vocab_size=1 is out of range"),
        ({"rd_classes": 100}, "rd_classes=100 must be a multiple of rd_labels=32"),
        ({"rd_sweep_classes": (64, 70)}, "rd_sweep_classes=70"),
        ({"rd_burstiness": (1, 3)}, "rd_burstiness=3 must divide rd_pairs=8"),
        ({"rd_bursty": 8}, "rd_bursty=8"),
        ({"d_model": 30}, "d_model=30 must be divisible by n_heads=4"),
        ({"stpes": 10}, r"unknown config key\(s\) \['stpes'\]"),
        ({"lr": -1.0}, "lr=-1.0 is out of range"),
    ],
)
def test_config_errors_name_the_field(kw: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        study.Config.from_preset("quick", **kw)


def test_presets_build_and_unknown_preset_is_refused() -> None:
    for name in ("smoke", "quick", "full", "gpu", "paper"):
        cfg = study.Config.from_preset(name)
        Transformer(cfg.model_config())
        assert set(reddy.reddy_settings(cfg)) == {"jump", "burstiness", "classes", "eps"}
    with pytest.raises(ValueError, match="preset='fast'"):
        study.Config.from_preset("fast")
    quick = study.Config.from_preset("quick")
    assert quick.probe_len > quick.segment_max  # the headline probe is an unseen segment length
    assert "rd_steps" not in quick.copy_fields() and "steps" not in quick.reddy_fields()


def test_ablation_model_init_is_scaled_to_its_width() -> None:
    """The ablation model's init std defaults to init_std x sqrt(d_model / spare_d_model), so its initial attention
    logits have the main model's scale (at a fixed std they grow with the width, and wide models formed no heads at
    some seeds); an explicit spare_init_std wins, and the spare config keeps the copy task's fields."""
    full = study.Config.from_preset("full")
    spare = full.spare_config()
    assert (spare.n_heads, spare.d_model, spare.steps) == (
        full.spare_heads,
        full.spare_d_model,
        full.spare_steps,
    )
    assert spare.d_model // spare.n_heads == full.d_model // full.n_heads  # heads as wide as the main model's
    assert spare.init_std == pytest.approx(full.init_std * math.sqrt(full.d_model / full.spare_d_model))
    assert spare.init_std < full.init_std
    assert full.replace(spare_init_std=0.03).spare_config().init_std == 0.03
    changed = {"n_heads", "d_model", "init_std", "steps", "eval_every"}
    a, b = spare.copy_fields(), full.copy_fields()
    assert {k for k in a if a[k] != b[k]} == changed and spare.eval_every == full.spare_steps


def test_ablation_model_is_redrawn_only_where_layer_1_formed_no_induction_head(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The declared re-draw (issue 34.2): where the first draw's layer 1 has no head above ind_threshold, the next
    draw (seed + 1000 k, nothing else changed) is trained, up to spare_redraws; the selection reads the head scores
    only -- an ablation is never computed to choose -- and a draw with a head stops the search."""
    import pandas as pd

    cfg = study.Config.from_preset("full", seed=3)
    drawn = {0: cfg.spare_config(0).seed, 1: cfg.spare_config(1).seed, 2: cfg.spare_config(2).seed}
    assert drawn == {0: 3, 1: 1003, 2: 2003}
    a, b = cfg.spare_config(0).copy_fields(), cfg.spare_config(1).copy_fields()
    assert {k for k in a if a[k] != b[k]} == {"seed"}

    class Fake:
        def __init__(self, seed: int) -> None:
            self.cfg, self.n_layers = cfg.spare_config().replace(seed=seed), 2

    scores_by_seed = {3: 0.1, 1003: 0.1, 2003: 0.6}
    trained: list[int] = []

    def fake_run(c: study.Config, n: int, run: object) -> Fake:
        trained.append(c.seed)
        return Fake(c.seed)

    def fake_heads(model: Fake, probe: object, half: int) -> pd.DataFrame:
        s = scores_by_seed[model.cfg.seed]
        return pd.DataFrame({"layer": [0, 1, 1], "head": [0, 0, 1], "induction": [0.9, s, 0.05]})

    def no_ablations(*args: object, **kw: object) -> None:
        raise AssertionError("the selection must not look at an ablation")

    monkeypatch.setattr(experiment, "copy_run", fake_run)
    monkeypatch.setattr(experiment, "head_table", fake_heads)
    monkeypatch.setattr(experiment, "ablations", no_ablations)
    chosen, heads = experiment.ablation_model(cfg, None, Fake(3), None)  # type: ignore[arg-type]
    assert chosen.cfg.seed == 2003 and trained == [1003, 2003]  # layer 0's 0.9 does not count
    assert heads.induction.tolist() == [0.9, 0.6, 0.05]  # the chosen draw's own head table
    trained.clear()
    scores_by_seed[3] = 0.5
    assert experiment.ablation_model(cfg, None, Fake(3), None)[0].cfg.seed == 3 and trained == []  # type: ignore[arg-type]
    scores_by_seed.update({3: 0.1, 2003: 0.1})
    assert (
        experiment.ablation_model(cfg, None, Fake(3), None)[0].cfg.seed == 2003
    )  # none formed: the last draw  # type: ignore[arg-type]
    assert experiment.ablation_model(cfg.replace(spare_redraws=0), None, Fake(3), None)[0].cfg.seed == 3  # type: ignore[arg-type]


def test_smoke_compute_checkpoints_cache_and_controls(tmp_path: object) -> None:
    """The front door at smoke: checkpoints at the evaluation steps, the cache serving an identical run, the
    fixed-offset control built as documented, an ablation table with the baseline row first."""
    cfg = study.Config.from_preset("smoke")
    run = Run.start("induction_heads", cfg, device="cpu", threads=1)
    res = study.compute(cfg, run)
    ev = res.two.evals()
    assert list(ev["step"]) == [0, 20, 40, 60]
    assert [s for s, _ in res.two.checkpoints] == [0, 20, 40, 60]
    torch.testing.assert_close(
        res.two.at(-1).state_dict()["unembed.weight"], res.two.model.state_dict()["unembed.weight"]
    )
    again = experiment.copy_run(cfg, 2, run)  # cached: identical
    assert again.evals().equals(ev)
    assert res.shortcut.cfg.gap_max == 0 and res.shortcut.cfg.segment_min == res.shortcut.cfg.segment_max
    assert res.ablation["kind"].iloc[0] == "none" and res.ablation["delta_loss"].iloc[0] == 0
    metrics = study.summarize(cfg, res)
    assert metrics["ln_vocab"] == pytest.approx(math.log(cfg.vocab_size))
    assert metrics["init_probe_loss_rep"] == pytest.approx(math.log(cfg.vocab_size), abs=0.05)
    assert metrics["transition_window_end"] == 60  # smoke's 60 steps are inside the default window
    # a window of 40 steps: the same cached runs, the transition and its gates read on the evaluations at 0-40 only
    short = cfg.replace(transition_window=40)
    res40 = study.compute(short, run)
    assert res40.two.evals().equals(ev)  # the window is read after training: the run is the cached one
    win = ev[ev["step"] <= 40].assign(probe_copy_gain=lambda e: e["probe_loss_first"] - e["probe_loss_rep"])
    assert res40.transitions["induction"] == scores.transition_steps(
        win["step"], win["probe_induction_max"], experiment.LEVELS
    )
    m40 = study.summarize(short, res40)
    assert m40["transition_window_end"] == 40
    assert m40["heads_formed"] == bool(win["probe_induction_max"].iloc[-1] > cfg.ind_threshold)
    assert m40["final"] == metrics["final"]  # the end-of-training numbers read the whole run


def test_short_training_learns_something() -> None:
    cfg = study.Config.from_preset(
        "smoke", steps=300, batch_size=32, lr=3e-3, eval_every=300, checkpoint_every=300
    )
    _, hist, ckpts = training.train_copy(cfg, 2, torch.device("cpu"), progress=False)
    ev = hist.eval_frame()
    assert ev["data_loss"].iloc[-1] < ev["data_loss"].iloc[0] - 0.05
    assert ev["data_loss"].iloc[0] == pytest.approx(math.log(cfg.vocab_size), abs=0.05)
    assert [s for s, _ in ckpts] == [0, 300]


def test_probe_with_a_gap_scores_the_shifted_stripe() -> None:
    L, g = 3, 4
    tokens = copy_task.repeated_probe(5, L, 50, torch.Generator().manual_seed(0), gap=g)
    assert tokens.shape == (5, 2 * L + g) and torch.equal(tokens[:, :L], tokens[:, L + g :])
    T = 2 * L + g
    pattern = torch.zeros(1, 1, T, T)
    for i in range(T):
        pattern[0, 0, i, i - (L + g) + 1 if i >= L + g else 0] = 1.0
    assert scores.induction_scores([pattern], L, gap=g).item() == pytest.approx(1.0)
    assert scores.induction_scores([pattern], L + g // 2, gap=0).item() < 0.5  # the gap-free stripe misses it
    losses = torch.arange(T - 1, dtype=torch.float32).expand(2, -1)
    first, rep = scores.probe_losses(losses, L, g)
    assert first == pytest.approx(np.mean(range(L - 1))) and rep == pytest.approx(
        np.mean(range(L + g, T - 1))
    )


def test_reddy_jump_is_timed_from_the_last_step_below_lo() -> None:
    """A curve that crosses lo, dips back below it and then jumps: the jump starts at the *last* crossing."""
    acc = [0.1, 0.3, 0.7, 0.5, 0.6, 0.95, 1.0]  # chance 0.25 -> lo = 0.625
    hist = History(evals=[{"step": 100.0 * i, "icl_acc": a} for i, a in enumerate(acc)])
    jump = reddy.reddy_jump(hist, 0.25)
    assert jump["lo"] == pytest.approx(0.625)
    assert jump["t_lo"] == pytest.approx(400 + (0.625 - 0.6) / (0.95 - 0.6) * 100)
    assert jump["t_hi"] == pytest.approx(400 + (0.9 - 0.6) / (0.95 - 0.6) * 100)
    assert jump["width_over_time"] == pytest.approx((jump["t_hi"] - jump["t_lo"]) / jump["t_hi"])
    flat = reddy.reddy_jump(History(evals=[{"step": float(i), "icl_acc": 0.3} for i in range(5)]), 0.25)
    assert not flat["jumped"] and flat["width_over_time"] == 1.0


# ---------------------------------------------------------------------------------------------------------------
# The controls' stand-ins (the null/oracle tables themselves are checked by tests/test_controls.py)


def test_controls_circuit_copies_at_full_strength_and_is_at_chance_at_zero() -> None:
    from phenomena.studies.induction_heads import controls

    cfg = controls.config()
    P = cfg.probe_len
    probe = copy_task.repeated_probe(8, P, cfg.vocab_size, torch.Generator().manual_seed(0))
    full = scores.probe_metrics(controls.induction_circuit(cfg, 1.0), probe, P)
    assert full["induction"][1, 0] > 0.7 and full["prev_token"][0, 0] > 0.99
    assert (
        full["induction"][1, 1:].max() < 0.1 and full["prev_token"][0, 1:].max() < 0.1
    )  # the other heads idle
    assert full["loss_rep"] < 0.25 * math.log(cfg.vocab_size)
    off = scores.probe_metrics(controls.induction_circuit(cfg, 0.0), probe, P)
    assert off["loss_rep"] == pytest.approx(math.log(cfg.vocab_size), abs=1e-5)
    short = training.shortcut_config(cfg)
    sc = scores.probe_metrics(controls.positional_shortcut(short), probe, P)
    assert sc["induction"].max() < 0.1


def test_controls_reddy_learners() -> None:
    from phenomena.studies.induction_heads import controls

    gen = torch.Generator().manual_seed(0)
    N, L, D, K = 8, 4, 15, 32
    classes = reddy.Classes.make(K, L, D, gen)
    bursty = reddy.reddy_sequences(200, N, 2, 1.0, 0.0, classes.label_vectors, gen)  # novel classes
    assert torch.equal(controls.in_context(bursty, D), bursty.target)
    iid = reddy.reddy_sequences(200, N, 1, 0.0, 0.0, classes.label_vectors, gen, classes)  # training classes
    assert torch.equal(controls.in_weights(iid, classes, D), iid.target)


# ---------------------------------------------------------------------------------------------------------------
# The claims (rows in claims.toml, measures in measures.py) on the committed seed-0 metrics


def _committed_metrics(seed: int = 0) -> tuple[study.Config, dict]:
    """A committed full-sweep seed's config (the full tier's: the field defaults) and metrics."""
    record = json.loads(
        (
            repo_root() / "data" / "sweeps" / "induction_heads" / "full" / f"seed-{seed}" / "results.json"
        ).read_text()
    )
    kw = dict(record["config"])
    kw.pop("preset")
    return study.Config.from_preset("full", **kw), copy.deepcopy(record["metrics"])


def test_measure_gates_are_the_rows_thresholds() -> None:
    """The specificity ratios are defined only past the single-head ablation rows' thresholds, at every preset."""
    specs = {s.id: s for s in study.claims}
    for preset in ("smoke", "quick", "full", "paper", "gpu"):
        assert specs["ablate_top_induction_head"].bound(preset) == measures.INDUCTION_EFFECT
        assert specs["ablate_previous_token_head"].bound(preset) == measures.PREV_TOKEN_EFFECT
    assert -specs["icl_score_drops"].bound("full") == measures.ICL_JUMP  # Olsson's ~0.4 nats


def test_specificity_compares_the_loss_rise_per_zeroed_head() -> None:
    """induction_ablation_is_specific: (rise with every other layer-1 head zeroed / their number) over (rise with
    every induction head zeroed / their number) on the ablation model; undefined where layer 1 has no other head or
    the induction heads' own rise is under the single-head threshold."""
    cfg, m = _committed_metrics(0)

    def row(kind: str, heads: int, delta: float) -> dict[str, object]:
        return {"kind": kind, "ablation": kind, "heads": heads, "layer_heads": 8, "loss_rep": 1.0 + delta,
                "induction_max": 0.0, "delta_loss": delta}  # fmt: skip

    m["ablation_model"] = {**m["ablation_model"], "separate": True}
    m["spare_ablation"] = [
        row("none", 0, 0.0),
        row("all_induction", 6, 3.0),
        row("other_layer_heads", 2, 0.1),
    ]
    value = measures.MEASURES.value("other_over_induction_rise_per_head", cfg, m)
    assert value == pytest.approx((0.1 / 2) / (3.0 / 6))
    m["spare_ablation"] = m["spare_ablation"][:2]  # every layer-1 head an induction head: nothing to compare
    assert math.isnan(measures.MEASURES.value("other_over_induction_rise_per_head", cfg, m))
    m["spare_ablation"] = [
        row("none", 0, 0.0),
        row("all_induction", 6, 0.2),
        row("other_layer_heads", 2, 0.0),
    ]
    assert math.isnan(
        measures.MEASURES.value("other_over_induction_rise_per_head", cfg, m)
    )  # no induction effect


def test_what_the_run_did_not_do_is_undefined_and_fails() -> None:
    """A change that did not happen (an ICL fall under 0.4 nats, a layer of induction heads only) makes the rows that
    need it undefined, i.e. failing seeds, not 'not evaluated'; a configuration without the inputs does not."""
    gated = ("loss_falls_before_icl_jump", "icl_score_jumps_with_heads", "ablate_all_induction_heads")
    for seed in range(5):  # a committed seed where the gated rows are defined (the 6-head model formed heads)
        cfg, m = _committed_metrics(seed)
        rows = {c.id: c for c in study.claims(cfg, m)}
        if all(rows[cid].evaluated and math.isfinite(rows[cid].ours) for cid in gated):
            break
    else:
        pytest.fail(f"no committed full-sweep seed defines all of {gated}")
    # a fall of 0.39 nats over training in one draw of the main model: under the 0.4-nat gate, no jump to time;
    # the gated rows read the median over the draws (main_draws), so one undefined draw of several does not make
    # them undefined, and every draw does
    assert len(m["draws"]) == cfg.main_draws - 1 >= 2
    m["final"]["icl_score"] = m["icl_score_init"] - 0.39
    rows = {c.id: c for c in study.claims(cfg, m)}
    assert all(math.isfinite(rows[cid].ours) for cid in gated[:2])
    for draw in m["draws"]:
        draw["final"]["icl_score"] = draw["icl_score_init"] - 0.39
    m["spare_ablation"] = [
        {**r, "heads": r["layer_heads"]} if r["kind"] == "all_induction" else r for r in m["spare_ablation"]
    ]
    rows = {c.id: c for c in study.claims(cfg, m)}
    for cid in gated:
        assert rows[cid].evaluated and not rows[cid].passed and math.isnan(rows[cid].ours), cid
    m["reddy"]["classes"] = m["reddy"]["classes"][:1]
    rows = {c.id: c for c in study.claims(cfg, m)}
    assert not any(rows[f"reddy_classes_{x}"].evaluated for x in ("favours_icl", "disfavours_iwl"))


def test_every_discrete_row_has_a_resolution() -> None:
    cfg, m = _committed_metrics()
    rows = {c.id: c for c in study.claims(cfg, m)}
    t50 = m["transition"]["loss"]["0.5"]
    assert rows["abrupt_loss_drop"].resolution == pytest.approx(cfg.eval_every / t50)
    assert rows["reddy_burstiness_favours_icl"].resolution == pytest.approx(1 / (3 * cfg.rd_eval_size))
    discrete = [
        c for c in rows.values() if "t50" in c.statement or "(t90" in c.statement or "accuracy" in c.statement
    ]
    assert len(discrete) == 13 and all(c.resolution for c in discrete)


# ---------------------------------------------------------------------------------------------------------------
# The tiers: quick runs the headline (the 2-layer model and its two controls), full every row


class _Planned(Exception):
    """Raised once compute has asked for every copy-task run (what the test wants to see), before any analysis."""


def _planned_copy_runs(cfg: study.Config, monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    """The copy-task runs ``compute`` asks for at ``cfg``, as (layers, steps, heads), without training any."""
    asked: list[tuple[int, int, int]] = []

    def copy_run(c: study.Config, n_layers: int, run: object) -> object:
        asked.append((n_layers, c.steps, c.n_heads))
        return object()

    class _EvalSet:
        @staticmethod
        def make(c: study.Config) -> None:
            raise _Planned

    monkeypatch.setattr(experiment, "copy_run", copy_run)
    monkeypatch.setattr(experiment, "EvalSet", _EvalSet)
    with pytest.raises(_Planned):
        experiment.compute(cfg, None)  # type: ignore[arg-type]
    return asked


def test_quick_tier_runs_the_headline_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """full is the field defaults exactly; quick trains full's 2-layer model (its first draw) to 7,000 steps (margin
    for late phase changes), its phase change read on full's first 4,000, and two controls (2,000 steps, and 1,750:
    the fixed-offset one trains a quarter of the main model's steps), and no ablation model or Reddy run."""
    assert study.Config.PRESETS["full"] == {}
    full, quick = study.Config.from_preset("full"), study.Config.from_preset("quick")
    assert full.to_dict() == {**study.Config().to_dict(), "preset": "full"}
    # the main model's seven draws, the 1-layer and fixed-offset controls, the ablation model
    assert _planned_copy_runs(full, monkeypatch) == [
        *[(2, 8000, 4)] * 7,
        (1, 2000, 4),
        (2, 2000, 4),
        (2, 6000, 8),
    ]
    assert full.main_draws == 7 and quick.main_draws == 1
    assert (quick.steps, quick.transition_window, full.transition_window) == (7000, 4000, 4000)
    assert _planned_copy_runs(quick, monkeypatch) == [(2, 7000, 4), (1, 2000, 4), (2, 1750, 4)]
    assert sum(len(v) for v in reddy.reddy_settings(full).values()) == 7  # the jump, 2 B, 2 K, 2 eps
    assert reddy.reddy_settings(quick) == {"jump": [], "burstiness": [], "classes": [], "eps": []}
    # the three copy-task runs are full's, evaluated as often: the copy task, the models, their optimisation
    assert {k: v for k, v in quick.copy_fields().items() if k != "steps"} == {
        k: v for k, v in full.copy_fields().items() if k != "steps"
    }
    assert full.checkpoint_every % full.eval_every == 0


#: the rows the quick tier does not run: the two read off the ablation model, the seven Reddy rows
NOT_RUN_AT_QUICK = {
    "ablate_all_induction_heads": "spare_steps = 0",
    "induction_ablation_is_specific": "spare_steps = 0",
    "reddy_icl_jump_abrupt": "rd_steps = 0",
    "reddy_burstiness_favours_icl": "rd_burstiness",
    "reddy_low_burstiness_favours_iwl": "rd_burstiness",
    "reddy_classes_favours_icl": "rd_sweep_classes",
    "reddy_classes_disfavours_iwl": "rd_sweep_classes",
    "reddy_eps_favours_icl": "rd_sweep_eps",
    "reddy_eps_disfavours_iwl": "rd_sweep_eps",
}


def test_rows_the_quick_tier_does_not_run_are_not_evaluated() -> None:
    """The committed seed-0 metrics as the quick tier's summarize stores them (no Reddy run; the ablation model is
    the main one), judged at quick: exactly the rows of the runs quick switches off are not evaluated, each saying
    which config value removed it; every other row is judged on a number. The full config judges them all."""
    full, m = _committed_metrics()
    quick = study.Config.from_preset("quick", seed=full.seed)
    m["reddy"] = {
        "chance_in_context": m["reddy"]["chance_in_context"],
        **{g: [] for g in reddy.reddy_settings(quick)},
    }
    m["spare_ablation"] = m["ablation"]
    m["ablation_model"] = {
        **m["ablation_model"],
        "separate": False,
        "n_heads": quick.n_heads,
        "steps": quick.steps,
    }
    rows = {c.id: c for c in study.claims(quick, m)}
    assert {cid for cid, c in rows.items() if not c.evaluated} == set(NOT_RUN_AT_QUICK)
    for cid, why in NOT_RUN_AT_QUICK.items():
        assert rows[cid].outcome == "not evaluated" and why in rows[cid].note, cid
    assert all(math.isfinite(c.ours) for c in rows.values() if c.evaluated)
    assert all(c.evaluated for c in study.claims(full, _committed_metrics()[1]))


def test_runs_trained_in_workers_are_the_runs_compute_trains(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``prefill`` trains every copy model and Reddy run of the smoke tier in two worker processes; ``compute`` then
    finds each in the cache (no training of its own) equal, bit for bit, to what it trains in this process (each run
    seeds itself: nothing depends on the global random state a previous run left)."""
    from phenomena import workers

    # one draw of the ablation model: compute trains a re-draw (spare_redraws) where the first draw formed no head --
    # as the smoke tier's 60 steps do not -- and no worker caches a re-draw before the first draw is scored
    cfg = study.Config.from_preset("smoke", seed=5, spare_redraws=0)
    run = Run(study="induction_heads", cfg=cfg, device=torch.device("cpu"), threads=1)
    monkeypatch.setenv("PHENOMENA_CACHE", str(tmp_path / "here"))
    here = experiment.compute(cfg, run)
    monkeypatch.setenv("PHENOMENA_CACHE", str(tmp_path / "workers"))
    monkeypatch.setenv(workers.WORKERS_ENV, "2")
    n_runs = len(experiment.copy_models(cfg)) + sum(len(v) for v in reddy.reddy_settings(cfg).values())
    assert experiment.prefill(cfg, run) == 2
    assert len(list((tmp_path / "workers").glob("*.pt"))) == n_runs == 12

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("compute trained a run the workers had cached")

    monkeypatch.setattr(experiment, "train_copy", no_training)
    monkeypatch.setattr(experiment, "train_reddy", no_training)
    there = experiment.compute(cfg, run)
    for role in ("two", "one", "shortcut", "spare"):
        a, b = getattr(here, role), getattr(there, role)
        assert a.history.to_dict() == b.history.to_dict(), role
        assert all(torch.equal(a.model.state_dict()[k], v) for k, v in b.model.state_dict().items()), role
    for group, runs in here.reddy.items():
        for (_, a), (_, b) in zip(
            runs, there.reddy[group], strict=True
        ):  # frames: NaN (IWL at K = inf) equals NaN
            assert a.eval_frame().equals(b.eval_frame()) and a.train_frame().equals(b.train_frame()), group


def test_copy_data_stays_in_the_vocabulary_where_a_draw_is_exactly_zero() -> None:
    """Full tier, seed 2: the batch at step 638 draws u = 0 exactly for a bigram step (a flat sampler over the rows'
    CDFs laid end to end returned token -1 there and crashed the sweep); every token stays in [0, V)."""
    cfg = study.Config.from_preset("full", seed=2)
    gen, table = torch.Generator().manual_seed(cfg.seed + 1), copy_task.bigram_table(cfg)
    for _ in range(640):
        x = copy_task.copy_blocks(
            cfg.batch_size,
            cfg.seq_len,
            cfg.vocab_size,
            cfg.segment_min,
            cfg.segment_max,
            cfg.gap_max,
            gen,
            table,
        ).tokens
        assert int(x.min()) >= 0 and int(x.max()) < cfg.vocab_size


def test_the_median_and_mean_rows_count_an_undefined_draw_on_the_failing_side() -> None:
    """``median_over_draws`` / ``mean_over_draws``: a measure over draw 0 (the top level) and ``draws``; an undefined
    draw counts as +inf (every such row must be small), so one undefined draw of three moves the median up and two
    make the seed undefined, and one makes the mean undefined; one draw is the measure itself."""
    cfg = study.Config.from_preset("full")
    icl = measures.median_final_icl_score

    def m(*values: float) -> dict:
        first, *rest = values
        return {"final": {"icl_score": first}, "draws": [{"final": {"icl_score": v}} for v in rest]}

    assert icl(cfg, m(-0.5)) == -0.5
    assert icl(cfg, m(-0.5, -0.9, -0.1)) == -0.5
    assert icl(cfg, m(-0.5, math.nan, -0.1)) == -0.1  # not the median of the two defined (-0.3)
    assert math.isnan(icl(cfg, m(math.nan, math.nan, -0.1)))
    assert measures.draws_of(cfg, m(-0.5, -0.9, -0.1)) == 3
    # draw k's measure reads draw k's keys and the shared ones (ln V, the offsets) of the top level
    shared = {"ln_vocab": 2.0, "far_offset": 48, "trained_offsets": [8, 40]}
    far = {"final": {"far_loss_rep": 0.2}}
    draws = {**shared, **far, "draws": [{"final": {"far_loss_rep": 1.0}}, {"final": {"far_loss_rep": 0.4}}]}
    assert measures.mean_far_loss_over_ln_vocab(cfg, draws) == pytest.approx((0.1 + 0.5 + 0.2) / 3)
    assert measures.mean_far_loss_over_ln_vocab(cfg, {**shared, **far}) == pytest.approx(0.1)
    assert measures.median_over_draws(measures.far_loss_over_ln_vocab, cfg, draws) == pytest.approx(0.2)
    draws["draws"][1]["final"]["far_loss_rep"] = math.nan
    assert math.isnan(measures.mean_far_loss_over_ln_vocab(cfg, draws))


def test_draw_k_is_the_main_model_of_config_seed_plus_1000_k(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A further draw of the main model is exactly the main model of config seed + 1000 k, analysed the same way
    (training, data, bigram table, probes, ablations): what the seeds-5-9 calibration of ``main_draws`` ran."""
    from phenomena.studies.induction_heads.summary import summarize

    monkeypatch.setenv("PHENOMENA_CACHE", str(tmp_path))
    cfg = study.Config.from_preset("smoke", seed=5, main_draws=2)
    run = Run(study="induction_heads", cfg=cfg, device=torch.device("cpu"), threads=1)
    drawn = summarize(cfg, experiment.compute(cfg, run))["draws"]
    alone_cfg = cfg.replace(seed=1005, main_draws=1)
    alone = summarize(alone_cfg, experiment.compute(alone_cfg, run))
    assert len(drawn) == 1 and alone["draws"] == [] and drawn[0]["draw_seed"] == 1005
    assert json.dumps(drawn[0], sort_keys=True) == json.dumps({k: alone[k] for k in drawn[0]}, sort_keys=True)


def test_the_offsets_script_reads_the_rows_far_probe_and_a_filler_without_spurious_matches(tmp_path) -> None:
    """``scripts/induction_offsets.py`` (the window diagnostic behind ``copies_unseen_offset``'s calibration) at the
    smoke preset: its row value is the study's own far-probe loss of the same model, its clean filler holds no token
    of x, and it reads one loss per offset that fits the context."""
    import subprocess
    import sys

    script = repo_root() / "scripts" / "induction_offsets.py"
    out = tmp_path / "offsets.json"
    argv = ["--seeds", "5", "--preset", "smoke", "--half", "3", "--step", "2", "--batch", "8", "--jobs", "1"]
    done = subprocess.run(
        [sys.executable, str(script), *argv, "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (r,) = json.loads(out.read_text())
    cfg = study.Config.from_preset("smoke", seed=5)
    assert [x["offset"] for x in r["offsets"]] == list(range(3, cfg.seq_len - 3 + 1, 2))
    _, hist, _ = training.train_copy(cfg, 2, torch.device("cpu"), progress=False)
    far = hist.eval_frame().iloc[-1]["far_loss_rep"] / math.log(cfg.vocab_size)
    assert r["row_value"] == pytest.approx(far, rel=1e-5)
    assert "| 5 |" in done.stdout

    from phenomena.studies.induction_heads.scores import clean_filler

    gen = torch.Generator().manual_seed(0)
    probes = copy_task.repeated_probe(32, 5, 12, gen, gap=7)
    clean = clean_filler(probes, 5, 7, 12, gen)
    assert torch.equal(clean[:, :5], probes[:, :5]) and torch.equal(clean[:, 12:], probes[:, 12:])
    for row in clean:
        assert not set(row[5:12].tolist()) & set(row[:5].tolist())
