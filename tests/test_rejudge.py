"""Re-judging stored metrics when only the claims changed (:mod:`phenomena.rejudge`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from phenomena import cache, rejudge, studies
from phenomena.run import study_metrics_hash, study_source_hash

REPO = Path(__file__).resolve().parents[1]
STUDY = "powerlaw_rehearsal"


def test_function_slice_follows_the_names_a_function_uses(tmp_path: Path) -> None:
    src = tmp_path / "m.py"
    src.write_text(
        "A = 1\nB = 2\n\ndef helper():\n    return A\n\ndef f():\n    return helper()\n\ndef g():\n    return B\n"
    )
    sliced = cache.function_slice(src, "f")
    assert "def f" in sliced and "def helper" in sliced and "A = 1" in sliced
    assert "def g" not in sliced and "B = 2" not in sliced
    with pytest.raises(ValueError, match="defines no 'nope'"):
        cache.function_slice(src, "nope")


def test_the_metrics_hash_covers_summary_and_compute_not_the_claims(tmp_path: Path) -> None:
    """The stored metrics depend on ``summary.py`` and the computation it imports, never on the measures, the rows
    (claims.toml), the prose or the package's ``__init__``."""
    package = REPO / "lib" / "phenomena" / "studies" / STUDY
    files = {
        p.name for p in cache.module_closure(f"phenomena.studies.{STUDY}.summary") if p.parent == package
    }
    assert {"summary.py", "experiment.py", "config.py"} <= files
    assert not files & {"measures.py", "readouts.py", "story.py", "claims.toml"}
    assert study_metrics_hash(STUDY) != study_source_hash(STUDY)


@pytest.mark.parametrize("study", studies.names())
def test_the_claims_layer_is_outside_every_studys_metrics_hash(study: str) -> None:
    """``phenomena/claims.py`` (the judge, the specs, the judging population) is in no study's stored-metrics closure,
    so a change there -- seeds added to a ``[population]`` -- re-judges the committed records instead of re-running
    them. Run it alone: ``pytest tests/test_rejudge.py -k claims_layer``."""
    lib = REPO / "lib" / "phenomena"
    closure = {
        p.relative_to(lib).as_posix() for p in cache.module_closure(f"phenomena.studies.{study}.summary")
    }
    assert "claims.py" not in closure and f"studies/{study}/summary.py" in closure


def _record(tmp_path: Path, metrics_hash: str | None) -> Path:
    rec = json.loads((REPO / "data" / "results" / f"{STUDY}.json").read_text())
    cfg = studies.load(STUDY).Config.from_preset("quick", seed=0)
    rec["config"] = json.loads(json.dumps(cfg.to_dict()))  # as the current config writes it
    rec["source_hash"] = "old"
    rec["metrics_hash"] = metrics_hash
    rec["claims"] = [dict(c, ours=-1.0, outcome="fails") for c in rec["claims"]]  # what old claims code wrote
    path = tmp_path / "data" / "results" / f"{STUDY}.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(rec))
    return path


def test_a_record_with_current_metrics_is_rejudged_from_them(tmp_path: Path) -> None:
    path = _record(tmp_path, study_metrics_hash(STUDY))
    assert rejudge.rejudge_record(path) == "rejudged"
    rec = json.loads(path.read_text())
    assert rec["source_hash"] == study_source_hash(STUDY) and "rejudged" in rec
    assert all(c["ours"] != -1.0 for c in rec["claims"] if isinstance(c["ours"], float))
    assert rejudge.rejudge_record(path) == "current"


def test_a_record_with_stale_metrics_is_left_alone(tmp_path: Path) -> None:
    path = _record(tmp_path, "other code")
    before = path.read_text()
    assert rejudge.rejudge_record(path).startswith("stale")
    assert path.read_text() == before
    shutil.rmtree(tmp_path / "data")
