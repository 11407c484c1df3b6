"""stats: the Student-t interval against scipy and by hand, and the verdict of an interval for every op and edge."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from phenomena.claims import passes
from phenomena.stats import t_interval, verdict


@pytest.mark.parametrize(
    "values",
    [
        [1.0, 2.0],
        [0.51, 0.49, 0.55, 0.47, 0.52],
        [-3.0, 10.0, 2.5],
        list(np.linspace(-1, 1, 10)),
        [1e-4, 3e-4],
    ],
)
@pytest.mark.parametrize("level", [0.95, 0.9])
def test_interval_matches_scipy(values: list[float], level: float) -> None:
    mean, lo, hi = t_interval(values, level)
    ref_lo, ref_hi = scipy_stats.t.interval(
        level, len(values) - 1, loc=np.mean(values), scale=scipy_stats.sem(values)
    )
    assert mean == pytest.approx(np.mean(values), rel=1e-12, abs=1e-15)
    assert (lo, hi) == (pytest.approx(ref_lo, rel=1e-10), pytest.approx(ref_hi, rel=1e-10))


def test_interval_by_hand() -> None:
    # [1, 2, 3]: mean 2, s = 1, half-width t * s / sqrt(3). With 2 degrees of freedom the t quantile has a
    # closed form: t_p = (2p - 1) sqrt(2 / (4 p (1 - p))), so t_0.975 = 0.95 sqrt(2 / 0.0975) = 4.3027...
    t_975 = 0.95 * math.sqrt(2 / 0.0975)
    half = t_975 / math.sqrt(3)
    assert t_interval([1.0, 2.0, 3.0]) == pytest.approx((2.0, 2.0 - half, 2.0 + half), rel=1e-12)


def test_one_value_has_no_interval() -> None:
    assert t_interval([0.7]) == (0.7, None, None)


def test_zero_variance_collapses_to_the_mean() -> None:
    assert t_interval([0.1, 0.1, 0.1]) == (0.1, 0.1, 0.1)  # exactly 0.1, not 0.1 + rounding


@pytest.mark.parametrize(
    ("values", "level"), [([], 0.95), ([1.0, float("nan")], 0.95), ([1.0, math.inf], 0.95), ([1.0, 2.0], 1.0)]
)
def test_interval_rejects_bad_input(values: list[float], level: float) -> None:
    with pytest.raises(ValueError):
        t_interval(values, level)


@pytest.mark.parametrize(
    ("op", "bound", "lo", "hi", "expected"),
    [
        ("<", 1.0, 0.2, 0.9, "holds"),
        ("<", 1.0, 0.2, 1.0, "unclear"),  # hi on the bound: "< 1" is not established
        ("<", 1.0, 0.9, 1.5, "unclear"),
        ("<", 1.0, 1.0, 1.5, "fails"),  # lo on the bound: nothing in the interval is < 1
        ("<", 1.0, 1.2, 1.5, "fails"),
        (">", 1.0, 1.1, 2.0, "holds"),
        (">", 1.0, 1.0, 2.0, "unclear"),  # lo on the bound
        (">", 1.0, 0.5, 1.5, "unclear"),
        (">", 1.0, 0.5, 1.0, "fails"),  # hi on the bound
        (">", 1.0, 0.5, 0.9, "fails"),
        ("in", (0.0, 1.0), 0.2, 0.8, "holds"),
        ("in", [0.0, 1.0], 0.0, 1.0, "holds"),  # closed interval; a list as in the JSON files
        ("in", (0.0, 1.0), -0.1, 0.5, "unclear"),
        ("in", (0.0, 1.0), 0.5, 1.1, "unclear"),
        ("in", (0.0, 1.0), -1.0, 2.0, "unclear"),
        ("in", (0.0, 1.0), 1.0, 2.0, "unclear"),  # touches b: still overlaps
        ("in", (0.0, 1.0), -2.0, 0.0, "unclear"),  # touches a
        ("in", (0.0, 1.0), 1.01, 2.0, "fails"),
        ("in", (0.0, 1.0), -2.0, -0.01, "fails"),
        ("<", 1.0, None, None, "unclear"),  # one seed: no interval
        (None, None, 0.1, 0.2, "unclear"),  # not evaluated
        ("~", 1.0, 0.1, 0.2, "unclear"),
    ],
)
def test_verdict(op: str | None, bound: object, lo: float | None, hi: float | None, expected: str) -> None:
    assert verdict(op, bound, lo, hi) == expected


@pytest.mark.parametrize(
    ("op", "lo", "hi", "fail_bound", "expected"),
    [
        (">", -0.05, 0.04, None, "unclear"),  # a nil effect straddles a sign threshold at any number of seeds
        (">", -0.05, 0.04, 0.1, "fails"),  # ... but excludes every effect >= 0.1 (half the paper's, say)
        (">", -0.05, 0.1, 0.1, "fails"),  # hi on the fail bound: no effect > 0.1 in the interval
        (">", -0.05, 0.15, 0.1, "unclear"),  # still reaches an effect of interest
        (">", 0.02, 0.06, 0.1, "holds"),  # a real effect, smaller than the paper's: the sign claim holds
        ("<", -0.02, 0.05, -0.1, "fails"),
        ("<", -0.15, 0.05, -0.1, "unclear"),
        ("<", -0.08, -0.01, -0.1, "holds"),
        (">", 0.5, 2.0, -5.0, "holds"),  # a fail bound on the passing side is ignored (the spec refuses it)
    ],
)
def test_a_smallest_effect_of_interest_decides_a_nil_effect(
    op: str, lo: float, hi: float, fail_bound: float | None, expected: str
) -> None:
    assert verdict(op, 0.0, lo, hi, fail_bound) == expected


finite = st.floats(-1e6, 1e6, allow_nan=False)


@given(op=st.sampled_from(["<", ">"]), bound=finite, value=finite)
def test_point_interval_verdict_agrees_with_passes(op: str, bound: float, value: float) -> None:
    """A zero-width interval [v, v] holds exactly when the single value passes, and fails otherwise."""
    assert verdict(op, bound, value, value) == ("holds" if passes(op, bound, value) else "fails")


@given(a=finite, width=st.floats(0, 1e3), value=finite)
def test_point_interval_verdict_agrees_with_passes_in(a: float, width: float, value: float) -> None:
    bound = (a, a + width)
    assert verdict("in", bound, value, value) == ("holds" if passes("in", bound, value) else "fails")


@given(st.lists(finite, min_size=2, max_size=12))
def test_interval_brackets_the_mean(values: list[float]) -> None:
    mean, lo, hi = t_interval(values)
    assert lo is not None and hi is not None
    assert lo <= mean <= hi
    assert min(values) - 1e-6 <= mean <= max(values) + 1e-6
