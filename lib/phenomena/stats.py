"""Statistics over seeds: the mean with its Student-t confidence interval, and the verdict that interval gives.

A claim checked on one seed says only which side of its threshold one run landed on. Over seeds, the sweep
(``phenomena.sweep``) reports, for each claim, the mean of the per-seed values and the two-sided ``level`` (95%)
Student-t interval for the mean,

    mean ± t_{(1 + level) / 2, n - 1} · s / √n,    s the sample standard deviation (ddof = 1),

and judges the claim by where the *whole interval* lies relative to the threshold (:func:`verdict`): ``holds`` if
every value in it satisfies the claim, ``fails`` if none does, ``unclear`` if it straddles the threshold. The
t interval assumes roughly normal per-seed values; with 3-10 seeds it is the usual, honest choice (a bootstrap
interval over so few values is too narrow).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from scipy import stats as scipy_stats

HOLDS, FAILS, UNCLEAR = "holds", "fails", "unclear"


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float | None, float | None]:
    """``(mean, lo, hi)``: the mean of ``values`` and its two-sided ``level`` Student-t confidence interval.

    With one value there is no interval (``lo = hi = None``): the t distribution with 0 degrees of freedom is
    undefined (its interval is unbounded), so a single run cannot bound the mean at all. With zero variance
    (every value equal) the interval collapses to the mean: ``lo = hi = mean``. Raises ``ValueError`` for no
    values, a non-finite value or a ``level`` outside (0, 1).
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level={level!r} is out of range: must be in (0, 1)")
    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("t_interval needs at least one value")
    if not all(math.isfinite(x) for x in xs):
        raise ValueError(f"t_interval needs finite values, got {xs}")
    n = len(xs)
    if all(x == xs[0] for x in xs):
        mean = xs[0]  # exactly, without the rounding of a sum
        return (mean, None, None) if n == 1 else (mean, mean, mean)
    mean = math.fsum(xs) / n
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half = float(scipy_stats.t.ppf((1.0 + level) / 2.0, df=n - 1)) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def verdict(
    op: str | None,
    bound: float | Sequence[float] | None,
    lo: float | None,
    hi: float | None,
    fail_bound: float | None = None,
) -> str:
    """``holds``, ``fails`` or ``unclear``: the claim ``value op bound`` judged on the interval ``[lo, hi]``.

    - ``<``: holds if ``hi < bound`` (all of the interval is below), fails if ``lo >= bound`` (none of it is);
    - ``>``: holds if ``lo > bound``, fails if ``hi <= bound``;
    - ``in [a, b]``: holds if ``a <= lo`` and ``hi <= b`` (inside), fails if ``hi < a`` or ``lo > b`` (disjoint);

    and ``unclear`` otherwise: the interval straddles the threshold. ``fail_bound`` (``<`` / ``>`` only; None: the
    threshold) is the smallest effect of interest: the row fails when the interval lies wholly on the failing side of
    it (``<``: ``lo >= fail_bound``; ``>``: ``hi <= fail_bound``), i.e. excludes every effect that large, even if it
    still reaches past the threshold; it can only turn ``unclear`` into ``fails``. No interval (``lo``/``hi`` None: fewer than
    two seeds, where the t interval is unbounded and so straddles every threshold) or no ``op`` is ``unclear``.
    The conditions mirror :func:`phenomena.claims.passes`: a bound that the claim excludes (``<`` is strict)
    counts against it.
    """
    if lo is None or hi is None or op is None or bound is None:
        return UNCLEAR
    if op == "<":
        b = float(bound)  # type: ignore[arg-type]
        f = b if fail_bound is None else min(b, float(fail_bound))
        return HOLDS if hi < b else FAILS if lo >= f else UNCLEAR
    if op == ">":
        b = float(bound)  # type: ignore[arg-type]
        f = b if fail_bound is None else max(b, float(fail_bound))
        return HOLDS if lo > b else FAILS if hi <= f else UNCLEAR
    if op == "in":
        a, b = (float(x) for x in bound)  # type: ignore[union-attr]
        return HOLDS if a <= lo and hi <= b else FAILS if hi < a or lo > b else UNCLEAR
    return UNCLEAR
