"""Rehearsal environments as schedules: an upper-triangular matrix ``n[task, phase]`` of training samples.

In phase t a new task arrives with ``n_new`` samples (the diagonal) and each task first met L = t - j phases ago is
rehearsed with ``n[j, t]`` fresh samples from its training set. Every rehearsal schedule shares one per-phase budget
B(t) (that of the reference power law) and differs only in how B(t) is spread over lags:

    power law (shifted):  w(L) = (1 + L / offset)^(-d)      (the precursor project's n0 (1 + L/10)^-5.6)
    power law (pure):     w(L) = L^(-d)                     (offset = 0)
    uniform:              w(L) = 1
    exponential:          w(L) = exp(-L / tau)
    n[t - L, t] = B(t) w(L) / sum_{L'=1..t} w(L'),   B(t) = budget * sum_{L=1..t} n0 (1 + L/offset)^(-d_ref)

**In these four the lag L is the time since a task was *introduced*, not since it was last seen** (every task is
rehearsed in every phase, so the time since it was last seen is always one phase): the precursor project's design,
kept as the named variant ``powerlaw``.

**The paper's environment** (``recency``, Anderson & Schooler 1991: a memory's need-probability falls as a power law
of the time since it was last *needed*) is a seeded stochastic recurrence process. In phase t the same budget B(t)
is dealt out as ``recency_draws`` equal presentations; each goes to a past task j drawn (with replacement) with
probability proportional to s_j^(-d), s_j = t - (the last phase in which j was presented, its introduction or a
rehearsal), d = ``recency_exponent``. A task drawn becomes recent again (s_j = 1 next phase); a task passed over
grows older and ever less likely to return, with the heavy tail of a power law. The budget matches every other
schedule's exactly, phase by phase; only which tasks get it differs.
"""

from __future__ import annotations

import numpy as np

from phenomena.studies.powerlaw_rehearsal.config import REHEARSAL_FORMS, Config


def lag_weights(form: str, lags: np.ndarray, *, exponent: float, offset: float, tau: float) -> np.ndarray:
    """Relative rehearsal weight w(L) of a task last introduced L >= 1 phases ago (see module docstring)."""
    lags = np.asarray(lags, dtype=float)
    if form == "powerlaw":
        return (1 + lags / offset) ** (-exponent) if offset > 0 else lags ** (-exponent)
    if form == "uniform":
        return np.ones_like(lags)
    if form == "exponential":
        return np.exp(-lags / tau)
    raise ValueError(f"schedule form {form!r}: expected one of {REHEARSAL_FORMS}")


def recency_counts(
    B: np.ndarray, n_tasks: int, *, exponent: float, draws: int, rng: np.random.Generator
) -> np.ndarray:
    """The rehearsal part of the ``recency`` environment (see module docstring): (T, T) counts, zero diagonal.

    ``B`` (T,) is the per-phase budget; phase t's ``draws`` presentations go to past tasks drawn with probability
    proportional to (phases since each was last presented)^-``exponent``."""
    n = np.zeros((n_tasks, n_tasks), dtype=int)
    last = np.arange(n_tasks)  # the phase in which each task was last presented (its introduction, at first)
    for t in range(1, n_tasks):
        w = (t - last[:t]).astype(float) ** (-exponent)
        chosen = np.bincount(rng.choice(t, size=draws, p=w / w.sum()), minlength=t)
        n[:t, t] = _round_preserving_sum(B[t] * chosen / draws, int(B[t]))
        last[:t][n[:t, t] > 0] = t
    return n


def _round_preserving_sum(values: np.ndarray, total: int) -> np.ndarray:
    """Integers close to ``values`` summing exactly to ``total`` (largest-remainder rounding)."""
    floor = np.floor(values).astype(int)
    short = total - floor.sum()
    if short > 0:
        floor[np.argsort(-(values - floor), kind="stable")[:short]] += 1
    return floor


def phase_budget(cfg: Config, n_tasks: int, budget: float | None = None) -> np.ndarray:
    """Rehearsal samples per phase B(t), t = 0..T-1, of the reference power law (``exponent``/``offset`` as
    configured, n0 = n_new), times ``budget``. B(0) = 0."""
    mult = cfg.budget if budget is None else budget
    lags = np.arange(1, n_tasks)
    per_lag = cfg.n_new * lag_weights("powerlaw", lags, exponent=cfg.exponent, offset=cfg.offset, tau=cfg.tau)
    return np.round(mult * np.concatenate([[0.0], np.cumsum(per_lag)])).astype(int)


def make_schedule(
    form: str,
    cfg: Config,
    *,
    n_tasks: int | None = None,
    exponent: float | None = None,
    budget: float | None = None,
    offset: float | None = None,
    seed: int = 0,
) -> np.ndarray:
    """The sample-count matrix n[task, phase] (T, T) of an environment.

    ``form`` is ``none``, ``joint`` (every past task at n_new each phase: the upper bound, not budget-matched), a
    rehearsal form (``powerlaw``, ``uniform``, ``exponential``) that spreads the shared per-phase budget B(t)
    over lags, or ``recency`` (the paper's environment: :func:`recency_counts`, drawn from a generator seeded by
    ``seed``). ``exponent`` and ``offset`` override the power law's lag exponent and offset (``offset=0``: the pure
    form L^-d); the budget B(t) stays the reference one, so every variant rehearses the same number of samples.
    Raises ``ValueError`` when a phase would rehearse more samples of one task than its training set holds (the
    budget could not be matched).
    """
    T = n_tasks or cfg.n_tasks
    n = np.zeros((T, T), dtype=int)
    np.fill_diagonal(n, cfg.n_new)
    if form == "none":
        return n
    if form == "joint":
        return np.triu(np.full((T, T), cfg.n_new, dtype=int))
    B = phase_budget(cfg, T, budget)
    if form == "recency":
        rng = np.random.default_rng([seed, 2024])
        rec = recency_counts(B, T, exponent=cfg.recency_exponent, draws=cfg.recency_draws, rng=rng)
        _check_fits(rec, form, cfg, budget)
        return n + rec
    for t in range(1, T):
        lags = np.arange(1, t + 1)
        w = lag_weights(
            form,
            lags,
            exponent=cfg.exponent if exponent is None else exponent,
            offset=cfg.offset if offset is None else offset,
            tau=cfg.tau,
        )
        n[t - lags, t] = _round_preserving_sum(B[t] * w / w.sum(), int(B[t]))
    _check_fits(n - np.diag(np.diag(n)), form, cfg, budget)
    return n


def _check_fits(rehearsal: np.ndarray, form: str, cfg: Config, budget: float | None) -> None:
    """Raise when a phase would rehearse more samples of one task than its training set holds."""
    if rehearsal.max(initial=0) > cfg.n_train:
        task, phase = np.unravel_index(int(rehearsal.argmax()), rehearsal.shape)
        raise ValueError(
            f"{form} schedule, phase {phase}: {rehearsal.max()} rehearsal samples of task {task} exceed n_train="
            f"{cfg.n_train}, so the budget (budget={cfg.budget if budget is None else budget}) cannot be matched; "
            "lower budget or n_new, or raise n_train"
        )


def schedule_form(env: str) -> str:
    """Which schedule an environment trains on (regularisers train on the 'none' stream)."""
    if env in ("none", "ewc", "online_ewc", "si"):
        return "none"
    if env == "powerlaw_ewc":
        return "powerlaw"
    return env


def loglog_slope(counts: np.ndarray) -> float:
    """Least-squares slope of log n(L) against log L over the lags with n(L) > 0."""
    counts = np.asarray(counts, dtype=float)
    lags = np.arange(1, len(counts) + 1)
    keep = counts > 0
    if keep.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(lags[keep]), np.log(counts[keep]), 1)[0])


def predicted_load(schedule: np.ndarray) -> dict[str, float]:
    """Rehearsal load of a schedule: total rehearsal samples, and their share of all training samples."""
    schedule = np.asarray(schedule)
    rehearsal = schedule.sum() - np.trace(schedule)
    return {"rehearsal_samples": float(rehearsal), "share": float(rehearsal / max(1, schedule.sum()))}
