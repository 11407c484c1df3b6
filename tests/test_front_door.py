"""Every study's front door, without Jupyter: ``Config`` -> ``compute`` -> ``summarize`` -> ``claims``, and the
command line that runs it (``python -m phenomena run``)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from phenomena import studies
from phenomena.__main__ import main, parse_sets, run_study
from phenomena.claims import EXPECTS, KINDS
from tests.conftest import REPO


def test_registry_is_the_packages_and_every_package_has_a_notebook() -> None:
    notebooks = sorted(p.stem for p in (REPO / "notebooks").glob("*.ipynb"))
    assert list(studies.names()) == notebooks
    with pytest.raises(
        ValueError, match=r"study='nope' is not allowed: expected one of \['icl_linear_regression'"
    ):
        studies.load("nope")


@pytest.mark.parametrize("name", studies.names())
def test_front_door_at_smoke(name: str, _scratch_outputs: Path) -> None:
    record = run_study(name, "smoke", 0, {}, "cpu", 1)
    assert record == json.loads((_scratch_outputs / "data" / "results" / f"{name}.json").read_text())
    assert record["study"] == name and record["preset"] == "smoke" and record["source_hash"]
    assert record["config"]["preset"] == "smoke"
    ids = [c["id"] for c in record["claims"]]
    assert len(ids) == len(set(ids)) >= 5
    for c in record["claims"]:
        assert c["kind"] in KINDS and c["expect"] in EXPECTS
        assert c["outcome"] in ("holds", "fails", "not evaluated")
        if c["outcome"] != "not evaluated":
            assert c["ours"] is not None or c["note"], f"{c['id']}: undefined without a reason"
            assert c["evidence"], f"{c['id']}: a threshold must say where it comes from"
    assert isinstance(record["departures"], list)
    study = studies.load(name)
    cfg = study.Config.from_preset("smoke")
    text = study.comparison(cfg, record["metrics"])
    assert isinstance(text, str) and re.search(r"\d", text), "the comparison is generated from the numbers"
    rejudged = [c.record() for c in study.claims(cfg, record["metrics"])]
    assert [c["id"] for c in rejudged] == ids and [c["outcome"] for c in rejudged] == [
        c["outcome"] for c in record["claims"]
    ], "the results file holds what claims() makes of its metrics"
    fig = study.seed_figure([record, {**record, "seed": 1}])  # what the sweep's aggregate draws
    assert fig.axes and all(ax.has_data() for ax in fig.axes)
    plt.close(fig)


def test_run_validates_like_the_notebook(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "induction_heads", "--preset", "smoke", "--set", "stpes=3"]) == 2
    assert "unknown config key(s) ['stpes']" in capsys.readouterr().err
    assert main(["run", "induction_heads", "--preset", "huge"]) == 2
    assert "preset='huge' is not allowed" in capsys.readouterr().err
    assert main(["run", "nope"]) == 2
    assert "study='nope' is not allowed" in capsys.readouterr().err
    with pytest.raises(ValueError, match="expected key=value"):
        parse_sets(["steps"])
    assert parse_sets(["steps=3", "ranks=[1, 4]", "model="]) == {"steps": 3, "ranks": [1, 4], "model": None}


def test_run_writes_results_and_lists(capsys: pytest.CaptureFixture[str], _scratch_outputs: Path) -> None:
    assert main(["run", "powerlaw_rehearsal", "--preset", "smoke", "--seed", "1", "--set", "n_tasks=3"]) == 0
    rec = json.loads((_scratch_outputs / "data" / "results" / "powerlaw_rehearsal.json").read_text())
    study = studies.load("powerlaw_rehearsal")
    cfg = study.Config.from_preset("smoke", seed=1, n_tasks=3)
    assert rec["seed"] == 1 and rec["config"] == json.loads(json.dumps(cfg.to_dict()))
    assert len(rec["metrics"]["per_seed"][0]) and {r["env"] for r in rec["metrics"]["per_seed"]} == set(
        cfg.environments
    )
    expected = [c.record() for c in study.claims(cfg, rec["metrics"])]
    for got, want in zip(rec["claims"], expected, strict=True):
        assert got["id"] == want["id"] and got["outcome"] == want["outcome"], got["id"]
        if isinstance(want["ours"], float) and math.isfinite(want["ours"]):
            assert got["ours"] == pytest.approx(want["ours"]), got["id"]
    capsys.readouterr()
    assert main(["list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in studies.names())
