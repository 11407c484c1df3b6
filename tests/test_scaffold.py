"""make new-study: the scaffold writes a study whose front door runs and whose notebook has the common shape."""

from __future__ import annotations

import ast
import importlib
import json
import sys
from pathlib import Path

import pytest

from phenomena import studies
from phenomena.run import Run
from tests.conftest import REPO

sys.path.insert(0, str(REPO / "scripts"))
import new_study


def test_scaffold_runs_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written = new_study.scaffold("toy_slope", tmp_path)
    assert {p.name for p in written} >= {
        "__init__.py",
        "config.py",
        "experiment.py",
        "summary.py",
        "measures.py",
        "claims.toml",
        "story.py",
        "toy_slope.ipynb",
    }
    for p in written:
        if p.suffix == ".py":
            compile(p.read_text(), str(p), "exec")
    # import the scaffolded package as phenomena.studies.toy_slope and run its front door (cache off: its source
    # is outside the package folder the cache hashes)
    monkeypatch.setattr(
        studies, "__path__", [*studies.__path__, str(tmp_path / "lib" / "phenomena" / "studies")]
    )
    monkeypatch.setenv("PHENOMENA_NO_CACHE", "1")
    study = importlib.import_module("phenomena.studies.toy_slope")
    try:
        cfg = study.Config.from_preset("quick")
        run = Run.start("toy_slope", cfg, device="cpu", threads=1)
        record = run.conclude(study, study.compute(cfg, run))
        assert [c["outcome"] for c in record["claims"]] == ["holds", "holds"]
        assert all(hasattr(study, attr) for attr in studies.FRONT_DOOR)
        assert "slope" in study.comparison(cfg, record["metrics"]) and study.seed_figure([record]).axes
        test_module = (tmp_path / "tests" / "test_toy_slope.py").read_text()
        namespace: dict[str, object] = {}
        exec(compile(test_module, "test_toy_slope.py", "exec"), namespace)
        namespace["test_a_null_run_fails_the_headline_claim"]()  # type: ignore[operator]
    finally:
        for name in [m for m in sys.modules if m.startswith("phenomena.studies.toy_slope")]:
            del sys.modules[name]
    nb = json.loads((tmp_path / "notebooks" / "toy_slope.ipynb").read_text())
    assert "parameters" in nb["cells"][1]["metadata"]["tags"]
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    ast.parse(code)
    for needed in (
        "Config.from_preset(",
        "study.compute(cfg, run)",
        "run.conclude(study, results)",
        "savefig(",
    ):
        assert needed in code


def test_scaffold_refuses_bad_names_and_overwrites(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="NAME='Bad-Name' is not allowed"):
        new_study.scaffold("Bad-Name", tmp_path)
    new_study.scaffold("toy", tmp_path)
    with pytest.raises(ValueError, match="exists already"):
        new_study.scaffold("toy", tmp_path)
