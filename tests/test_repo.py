"""Repository invariants: pins agree, notebooks are stripped and follow the shape, the README is current."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from phenomena import readme, studies
from phenomena.claims import passes, threshold_text
from tests.conftest import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_environment_yml_installs_requirements_txt() -> None:
    env = (REPO / "environment.yml").read_text()
    assert re.search(r"^\s*-\s*python=3\.11\s*$", env, re.M)
    assert re.search(r"^\s*-\s*-r requirements\.txt\s*$", env, re.M), (
        "environment.yml must pip-install requirements.txt"
    )
    assert re.search(r"^\s*-\s*-e \.\s*$", env, re.M)
    pins = [line for line in env.splitlines() if re.search(r"[a-zA-Z]==\d", line)]
    assert not pins, (
        f"environment.yml must not pin versions itself (requirements.txt is the one source): {pins}"
    )


def test_requirements_are_exact_pins_with_the_cpu_torch() -> None:
    lines = [
        ln.split("#")[0].strip()
        for ln in (REPO / "requirements.txt").read_text().splitlines()
        if ln.split("#")[0].strip()
    ]
    loose = [ln for ln in lines if "==" not in ln]
    assert not loose, f"every requirement must be pinned exactly: {loose}"
    assert "torch==2.13.0" in lines
    names = {ln.split("==")[0].lower() for ln in lines}
    needed = {"jupyter", "papermill", "torch", "transformers", "matplotlib", "seaborn", "scikit-learn", "pytest",
              "nbval", "peft"}  # fmt: skip
    assert needed <= names, f"missing required packages: {needed - names}"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_are_committed_without_outputs(nb: Path) -> None:
    cells = json.loads(nb.read_text())["cells"]
    dirty = [
        i
        for i, c in enumerate(cells)
        if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count"))
    ]
    assert not dirty, f"{nb.name}: cells {dirty} carry outputs; run nbstripout"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_cell_has_a_unique_id(nb: Path) -> None:
    """nbformat 4.5 cells carry ids (a cell without one is a warning today, an error in later nbformat)."""
    data = json.loads(nb.read_text())
    ids = [c.get("id") for c in data["cells"]]
    if (data["nbformat"], data["nbformat_minor"]) >= (4, 5):
        assert all(ids) and len(set(ids)) == len(ids), (
            f"{nb.name}: cells without an id or with a repeated one"
        )


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_shape(nb: Path) -> None:
    """A parameters cell of literals only; the config is built through Config.from_preset; claims are checked."""
    data = json.loads(nb.read_text())
    assert data["metadata"]["kernelspec"]["name"] == "python3"
    cells = data["cells"]
    params = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    src = "".join(params[0]["source"])
    for name in ("preset", "seed", "device", "threads", "overrides"):
        assert re.search(rf"^{name}\s*=", src, re.M), f"parameters cell lacks {name}"
    for line in src.splitlines():
        line = line.split("#")[0].strip()
        if line:
            assert re.fullmatch(r"\w+\s*=\s*(\"[^\"]*\"|'[^']*'|-?[\d.e+-]+|\{\}|True|False|None)", line), (
                f"parameters cell must hold literals only: {line!r}"
            )
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    for needed in (
        "Config.from_preset(",
        "study.compute(cfg, run",  # (cfg, run) or (cfg, run, workers=...)
        "run.conclude(study, results)",
        "savefig(",
    ):
        assert needed in code, f"{nb.name}: the notebook shape needs {needed}"
    assert "preset_from_env(" in code, "the preset must be overridable by PHENOMENA_PRESET (nbval)"
    assert not re.search(r"[\"']#[0-9a-fA-F]{6}[\"']", code), f"{nb.name}: colours come from figures.PALETTE"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_functions_are_short(nb: Path) -> None:
    """A function longer than ~10 lines belongs in lib/ with a test, not in a notebook."""
    for cell in json.loads(nb.read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        tree = ast.parse("".join(cell["source"]))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                length = node.end_lineno - node.lineno  # body lines, signature excluded
                assert length <= 12, f"{nb.name}: {node.name} has {length} lines"


def test_readme_table_and_gallery_are_current() -> None:
    text = (REPO / "README.md").read_text()
    assert "make figures" in text and "make test" in text
    assert readme.render(text, REPO) == text, "README is stale: run `make readme` (part of `make figures`)"
    claims = (REPO / "CLAIMS.md").read_text()
    assert readme.render_claims(claims, REPO) == claims, "CLAIMS.md is stale: run `make readme`"


def test_a_row_judged_over_the_sweep_reads_as_the_sweep_wrote_it() -> None:
    """CLAIMS.md's numbers are the full sweep's, so its statement, threshold and expectation are the sweep's too: a
    statement rendered from the default tier's config would describe other runs (one draw of the main model where
    the sweep's numbers come from seven)."""
    table = readme.results_table(REPO)
    for study in studies.names():
        sweep = json.loads((REPO / "data" / "sweeps" / f"{study}-full.json").read_text())
        for row in sweep["claims"]:
            cells = f"| {readme.md(row['statement'])} |"
            assert cells in table, f"{study} {row['id']}: CLAIMS.md does not show the sweep's statement"
            assert f"| {readme.md(row['threshold'])} |" in table


@pytest.mark.parametrize("study", studies.names())
def test_committed_results_are_consistent(study: str) -> None:
    """Every committed row: ``passed`` recomputed from ``ours``, ``op`` and ``bound``, the outcome from ``passed``.
    Whether the outcome equals the expectation is *not* tested: a difference is a finding, shown with **!**."""
    path = REPO / "data" / "results" / f"{study}.json"
    rec = json.loads(path.read_text())
    assert rec["preset"] == "quick" and rec["seed"] == 0, (
        f"{path.name}: committed results come from quick, seed 0"
    )
    for c in rec["claims"]:
        if c["passed"] is None:
            assert c["ours"].startswith("not evaluated"), c["id"]
            continue
        ours = c["ours"] if c["ours"] is not None else float("nan")
        assert c["passed"] == passes(c["op"], c["bound"], ours), (
            f"{c['id']}: passed does not follow from ours"
        )
        assert c["threshold"] == threshold_text(c["op"], c["bound"], c.get("fail_bound")), c["id"]
        assert c["outcome"] == ("holds" if c["passed"] else "fails"), c["id"]
    assert (REPO / "figures" / study).is_dir(), f"no figures/ for {study}"
