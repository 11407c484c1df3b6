"""Rehearsal environments as schedules: an upper-triangular matrix ``n[task, phase]`` of training samples.

In phase t a new task arrives with ``n_new`` samples (the diagonal) and each task first met L = t - j phases ago is
rehearsed with ``n[j, t]`` fresh samples from its training set. Every rehearsal schedule shares one per-phase budget
B(t) (that of the reference power law) and differs only in how B(t) is spread over lags:

    power law (shifted):  w(L) = (1 + L / offset)^(-d)      (the precursor project's n0 (1 + L/10)^-5.6)
    power law (pure):     w(L) = L^(-d)                     (offset = 0)
    uniform:              w(L) = 1
    exponential:          w(L) = exp(-L / tau)
    n[t - L, t] = B(t) w(L) / sum_{L'=1..t} w(L'),   B(t) = budget * sum_{L=1..t} n0 (1 + L/offset)^(-d_ref)

**The lag L is the time since a task was *introduced*, not since it was last seen.** In the paper's environments a
memory's need-probability falls with the time since it was last needed (Anderson & Schooler 1991); here every task is
rehearsed in every phase, so the time since it was last seen is always one phase and carries no information. The
time since introduction is the age of the memory, which is what the schedule can vary.
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
) -> np.ndarray:
    """The sample-count matrix n[task, phase] (T, T) of an environment.

    ``form`` is ``none``, ``joint`` (every past task at n_new each phase: the upper bound, not budget-matched) or a
    rehearsal form (``powerlaw``, ``uniform``, ``exponential``) that spreads the shared per-phase budget B(t)
    over lags. ``exponent`` and ``offset`` override the power law's lag exponent and offset (``offset=0``: the pure
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
    for t in range(1, T):
        lags = np.arange(1, t + 1)
        w = lag_weights(
            form,
            lags,
            exponent=cfg.exponent if exponent is None else exponent,
            offset=cfg.offset if offset is None else offset,
            tau=cfg.tau,
        )
        counts = _round_preserving_sum(B[t] * w / w.sum(), int(B[t]))
        if counts.max() > cfg.n_train:
            raise ValueError(
                f"{form} schedule, phase {t}: {counts.max()} rehearsal samples of one task exceed n_train="
                f"{cfg.n_train}, so the budget (budget={cfg.budget if budget is None else budget}) cannot be matched;"
                " lower budget or n_new, or raise n_train"
            )
        n[t - lags, t] = counts
    return n


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
