"""Every claim row can fail and can pass: its null control fails it and its oracle passes it, through the study's
real ``summarize`` -> ``claims`` code, at the quick and the paper thresholds (:mod:`phenomena.controls`). The
committed ``data/controls/<study>.json`` (the null and oracle columns of CLAIMS.md) must be what the code gives."""

from __future__ import annotations

import math

import pytest

from phenomena import controls, studies


@pytest.fixture(scope="module")
def records() -> dict[str, dict]:
    return {}


def _record(records: dict[str, dict], study: str) -> dict:
    if study not in records:
        records[study] = controls.run(study)
    return records[study]


@pytest.mark.parametrize("study", studies.names())
def test_every_claim_fails_its_null_and_passes_its_oracle(study: str, records: dict[str, dict]) -> None:
    record = _record(records, study)
    print("\n" + "\n\n".join(controls.table(record, p) for p in controls.PRESETS))
    assert record["problems"] == []
    for preset in controls.PRESETS:
        rows = record["rows"][preset]
        claims = [r for r in rows if r["kind"] == "claim"]
        assert claims, f"{study}: no claim rows at {preset}"
        assert all(r["null_outcome"] == "fails" for r in claims)
        assert all(r["oracle_outcome"] == "holds" or r["oracle_cannot"] for r in claims)


@pytest.mark.parametrize("study", studies.names())
def test_committed_controls_are_what_the_code_gives(study: str, records: dict[str, dict]) -> None:
    committed = controls.committed(study)
    assert committed is not None, f"no data/controls/{study}.json: run `make controls`"
    fresh = _record(records, study)
    for preset in controls.PRESETS:
        old = {r["id"]: r for r in committed["rows"][preset]}
        new = {r["id"]: r for r in fresh["rows"][preset]}
        assert old.keys() == new.keys(), f"{study}: rows changed; run `make controls`"
        for cid, r in new.items():
            for key in ("kind", "threshold", "null_outcome", "oracle_outcome", "oracle_cannot"):
                assert old[cid][key] == r[key], f"{study} {preset} {cid}: {key} is stale; run `make controls`"
            for key in ("null", "oracle"):
                a, b = old[cid][key], r[key]
                if isinstance(b, float) and isinstance(a, float | int) and math.isfinite(b):
                    assert a == pytest.approx(b, rel=1e-3, abs=1e-6), f"{study} {cid}: {key} is stale"
                elif isinstance(b, float) and not math.isfinite(b):
                    assert a is None or (isinstance(a, float) and not math.isfinite(a)), (
                        f"{study} {cid}: {key}"
                    )
                else:
                    assert a == b, f"{study} {cid}: {key} is stale"


def _row(kind: str, null: str, oracle: str, cannot: str = "") -> controls.RowControl:
    return controls.RowControl("r", kind, "< 1", 0.5, null, 0.1, oracle, cannot)


def test_the_rule_catches_a_row_its_null_passes_or_its_oracle_fails() -> None:
    assert _row("claim", "fails", "holds").problem == ""
    assert "null does not fail" in _row("claim", "holds", "holds").problem
    assert "null does not fail" in _row("claim", "not evaluated", "holds").problem
    assert "oracle does not pass" in _row("claim", "fails", "fails").problem
    assert _row("claim", "fails", "fails", cannot="the oracle has no training history").problem == ""
    assert _row("control", "holds", "fails").problem == ""  # controls and sanity rows are not held to it
    assert controls.problems([_row("claim", "holds", "holds"), _row("sanity", "holds", "holds")]) == [
        "r: the null does not fail it (holds, value 0.5)"
    ]


def test_the_table_keeps_a_long_threshold_apart_from_the_null_value() -> None:
    """A fail bound makes the threshold text longer than its default column: the null value must not run into it."""
    row = {
        "kind": "claim",
        "id": "x",
        "threshold": "> 0, fails if CI <= 0.01",
        "null": 0.0,
        "null_outcome": "fails",
        "oracle": 0.5,
        "oracle_outcome": "holds",
        "problem": "",
        "oracle_cannot": "",
    }
    record = {"study": "s", "null": "n", "oracle": "o", "rows": {"full": [row]}}
    line = controls.table(record, "full").splitlines()[-1]
    assert "<= 0.01 " in line and f"<= 0.01{controls.fmt(0.0)}" not in line
