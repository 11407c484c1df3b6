"""Tidy results: a figure's drawn data as a long CSV beside its PNG, a sweep summary's CSV beside its JSON, and
``phenomena.results.frame`` reading them (and the claims files) back as one DataFrame each."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import seaborn as sns

from phenomena import figures, results, studies
from phenomena.aggregate import aggregate
from tests.conftest import REPO


def test_figure_frame_has_every_point_bar_and_cell() -> None:
    fig, (a, b, c) = plt.subplots(1, 3)
    a.plot([1, 2, 3], [4, 5, 6], label="ours")
    a.set(title="curve", xlabel="k", ylabel="error")
    b.bar(["x", "y"], [3.0, 4.0], label="acc")
    sns.heatmap(np.arange(6.0).reshape(2, 3), ax=c)  # its colour bar is not data
    fig.canvas.draw()
    df = figures.figure_frame(fig)
    plt.close(fig)
    assert list(df.columns) == list(figures.FRAME_COLUMNS)
    line = df[df.kind == "line"]
    assert line[["x", "y"]].values.tolist() == [[1, 4], [2, 5], [3, 6]]
    assert set(line.series) == {"ours"} and set(line.title) == {"curve"} and set(line.xlabel) == {"k"}
    bars = df[df.kind == "bar"]
    assert bars[["x", "y"]].values.tolist() == [["x", 3.0], ["y", 4.0]]
    cells = df[df.kind == "heatmap"]
    assert len(cells) == 6 and cells.value.tolist() == [0, 1, 2, 3, 4, 5]
    assert cells[(cells.x == 2) & (cells.y == 1)].value.item() == 5
    assert set(df.panel) == {0, 1, 2}


def test_savefig_writes_the_csv_with_the_provenance_ids(_scratch_outputs: Path) -> None:
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0], label="a")
    png = figures.savefig(fig, "toy", "curve", {"preset": "smoke", "seed": 3, "git_sha": "abc"})
    plt.close(fig)
    table = pd.read_csv(png.with_suffix(".csv"))
    assert table[["study", "figure", "preset", "seed"]].drop_duplicates().values.tolist() == [
        ["toy", "curve", "smoke", 3]
    ]
    assert table[["x", "y"]].values.tolist() == [[0, 1], [1, 0]]
    assert not list(png.parent.glob(".*.tmp")), "a temporary file was left behind"
    loaded = results.frame("figures", root=_scratch_outputs)
    assert len(loaded) == 2 and set(loaded.figure) == {"curve"}


def test_claims_frame_is_one_row_per_claim_of_the_committed_results() -> None:
    df = results.frame("claims", root=REPO)
    assert set(df.study) == set(studies.names())
    for study in studies.names():
        record = json.loads((REPO / "data" / "results" / f"{study}.json").read_text())
        rows = df[df.study == study]
        assert rows.claim.tolist() == [c["id"] for c in record["claims"]]
        assert set(rows.preset) == {record["preset"]} and set(rows.seed) == {record["seed"]}
    one = results.frame("claims", study="induction_heads", root=REPO)
    assert set(one.study) == {"induction_heads"}


def test_sweep_frame_is_one_row_per_claim_and_seed() -> None:
    summary = json.loads((REPO / "data" / "sweeps" / "icl_linear_regression-full.json").read_text())
    df = results.sweep_frame(summary)
    assert len(df) == sum(len(c["seeds"]) for c in summary["claims"])
    first = summary["claims"][0]
    rows = df[df.claim == first["id"]]
    assert rows.seed.tolist() == first["seeds"] and rows.value.tolist() == first["values"]
    assert set(rows.verdict) == {first["verdict"]} and set(rows["mean"]) == {first["mean"]}
    assert rows.passed.sum() == first["n_pass"]


def test_aggregate_writes_the_csv_that_frame_reads(tmp_path: Path) -> None:
    study = "induction_heads"
    shutil.copytree(REPO / "data" / "sweeps" / study, tmp_path / "data" / "sweeps" / study)
    path = aggregate(tmp_path, study, "full")
    table = pd.read_csv(path.with_suffix(".csv"))
    expected = results.sweep_frame(json.loads(path.read_text()))
    pd.testing.assert_frame_equal(table, pd.read_csv(io.StringIO(expected.to_csv(index=False))))
    loaded = results.frame("sweeps", root=tmp_path)
    assert len(loaded) == len(expected) and set(loaded.study) == {study}


def test_frame_says_what_it_reads(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="kind must be one of claims, sweeps, figures"):
        results.frame("tables")
    empty = results.frame("sweeps", root=tmp_path)
    assert empty.empty and "claim" in empty.columns


@pytest.mark.parametrize("summary", sorted((REPO / "data" / "sweeps").glob("*.json")), ids=lambda p: p.stem)
def test_committed_sweep_csvs_match_their_summaries(summary: Path) -> None:
    """Every committed over-seeds summary has its long CSV beside it, with the same numbers."""
    table = summary.with_suffix(".csv")
    assert table.exists(), f"{table.name} is missing: run `phenomena aggregate` (or `make sweep`)"
    expected = results.sweep_frame(json.loads(summary.read_text()))
    written = pd.read_csv(io.StringIO(expected.to_csv(index=False)))
    pd.testing.assert_frame_equal(pd.read_csv(table), written)
