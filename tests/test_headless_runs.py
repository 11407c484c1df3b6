"""An explorer never hangs a run without a frontend: under papermill -- without ``PHENOMENA_HEADLESS``, as a
papermill user runs it -- it draws its defaults once and makes no widget, so nothing waits on a widget frontend
(jupyter/nbclient#312). A bare explorer notebook, run three times (the hang was intermittent), and every notebook
once finish; each cell has a deadline, so a wait would fail the test rather than hang it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from phenomena import studies
from tests.conftest import REPO
from tests.test_jupyterlab import kernel_env


def explorer_notebook(path: Path) -> Path:
    """A notebook that only builds an explorer and says which way explore() went."""
    nb = nbformat.v4.new_notebook()
    nb.cells.append(
        nbformat.v4.new_code_cell(
            "from phenomena import figures\n"
            "def show(k: int = 2) -> None:\n"
            "    print('drawn', k)\n"
            "figures.explore(show, k=(0, 9))\n"
            "print('static:', figures.static_reason())"
        )
    )
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def papermill(
    source: Path, executed: Path, env: dict[str, str], timeout_s: int
) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "papermill",
        str(source),
        str(executed),
        "-k",
        "python3",
        "--no-progress-bar",
    ]
    cmd += ["--cwd", str(source.parent), "--execution-timeout", str(timeout_s), "-p", "preset", "smoke"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=4 * timeout_s)


def test_an_explorer_under_papermill_draws_its_defaults_and_makes_no_widget(tmp_path: Path) -> None:
    source = explorer_notebook(tmp_path / "explorer.ipynb")
    env = kernel_env(tmp_path / "out")
    for i in range(3):  # the hang was intermittent: repeat
        done = papermill(source, tmp_path / f"run{i}.ipynb", env, timeout_s=60)
        assert done.returncode == 0, done.stderr[-3000:]
        outputs = nbformat.read(tmp_path / f"run{i}.ipynb", as_version=4).cells[-1].outputs
        text = "".join(o.get("text", "") for o in outputs)
        assert "drawn 2" in text and "static: run by a batch executor" in text
        assert not any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)


#: the notebook run under plain papermill here. Every notebook's explorer goes through the same
#: ``figures.explore``, and every notebook already runs twice more in ``make test`` (under nbval, and headless under
#: papermill for the report's browser test), so one is enough for the no-frontend path (``make test`` was 10m58s with
#: all four here)
PLAIN_PAPERMILL = ("icl_linear_regression",)


@pytest.mark.slow
@pytest.mark.parametrize("study", PLAIN_PAPERMILL)
def test_a_notebook_finishes_under_plain_papermill(study: str, tmp_path: Path) -> None:
    """As a papermill user runs it (no PHENOMENA_HEADLESS), with its own output root; each cell has a deadline, so a
    wait on a widget frontend fails the test instead of hanging it. (The bare explorer notebook above is the
    repeated case.)"""
    assert study in studies.names()
    executed = tmp_path / f"{study}.ipynb"
    done = papermill(
        REPO / "notebooks" / f"{study}.ipynb", executed, kernel_env(tmp_path / "out"), timeout_s=300
    )
    assert done.returncode == 0, f"{study}:\n{done.stderr[-3000:]}"
    explorer = [c for c in nbformat.read(executed, as_version=4).cells if "explore(" in c.source]
    assert explorer and all(any("image/png" in o.get("data", {}) for o in c.outputs) for c in explorer), (
        f"{executed.name}: the explorer drew no plot"
    )
