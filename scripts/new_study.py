"""Scaffold a new study: ``make new-study NAME=my_phenomenon`` (or ``python scripts/new_study.py NAME [--root DIR]``).

Writes a runnable skeleton with the front door every study has (see CONTRIBUTING.md): the package
``lib/phenomena/studies/<NAME>/`` (config, experiment, summary, measures, claims.toml, story), the notebook ``notebooks/<NAME>.ipynb`` and
``tests/test_<NAME>.py``. The toy "phenomenon" -- a linear model recovers the slope of its data -- has one claim and
one sanity row; replace it with the paper. Refuses to overwrite anything.
"""

from __future__ import annotations

import argparse
import json
import keyword
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

FILES: dict[str, str] = {
    "lib/phenomena/studies/{name}/__init__.py": '''"""{title} (replace: the paper, its claim, and what this package implements).

Modules: ``config`` (the knobs), ``experiment`` (``compute``), ``summary`` (``summarize``: what a run stores),
``measures`` (the named numbers the claims read), ``claims.toml`` (the rows, as data), ``story`` (the prose).
"""

from pathlib import Path

from phenomena.claims import ClaimTable
from phenomena.studies.{name}.config import Config
from phenomena.studies.{name}.experiment import Results, compute
from phenomena.studies.{name}.measures import MEASURES
from phenomena.studies.{name}.seeds import seed_figure
from phenomena.studies.{name}.story import comparison, departures
from phenomena.studies.{name}.summary import summarize

TITLE = "{title}"
claims = ClaimTable.load(Path(__file__).with_name("claims.toml"), MEASURES)

__all__ = ["TITLE", "Config", "Results", "claims", "comparison", "compute", "departures", "seed_figure", "summarize"]
''',
    "lib/phenomena/studies/{name}/config.py": '''"""Configuration of the {title} study: every field that determines its results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from phenomena.config import StudyConfig, field


@dataclass(frozen=True)
class Config(StudyConfig):
    """Everything that determines the study's results. See ``Config.describe()``."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {{
        "smoke": dict(steps=20), "quick": dict(steps=150), "full": dict(), "paper": dict(steps=2000)
    }}

    slope: float = field(2.0, doc="the slope of the data")
    noise: float = field(0.1, ge=0.0, doc="label-noise std")
    n_points: int = field(256, positive=True, doc="points per batch")
    steps: int = field(300, positive=True, doc="optimiser steps")
    lr: float = field(0.05, positive=True, doc="Adam learning rate")
''',
    "lib/phenomena/studies/{name}/experiment.py": '''"""Everything the notebook plots, computed in one call: ``compute(cfg, run) -> Results``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from phenomena.studies.{name}.config import Config
from phenomena.train import History, train

if TYPE_CHECKING:
    from phenomena.run import Run


@dataclass
class Results:
    """What the notebook plots: the fitted slope and the training history."""

    slope: float
    history: History


def fit(cfg: Config) -> dict[str, Any]:
    """Train a 1-d linear model on fresh noisy points y = slope x + noise."""
    torch.manual_seed(cfg.seed)
    model = nn.Linear(1, 1)
    gen = torch.Generator().manual_seed(cfg.seed + 1)

    def loss(m: nn.Module, step: int) -> Tensor:
        x = torch.randn(cfg.n_points, 1, generator=gen)
        y = cfg.slope * x + cfg.noise * torch.randn(cfg.n_points, 1, generator=gen)
        return ((m(x) - y) ** 2).mean()

    history = train(model, loss, steps=cfg.steps, lr=cfg.lr, progress=False, log_every=10)
    return {{"slope": float(model.weight.detach()), "history": history.to_dict()}}


def compute(cfg: Config, run: Run) -> Results:
    """Train (cached) and return what the notebook shows."""
    stored = run.cached("fit", lambda: fit(cfg))
    return Results(stored["slope"], History.from_dict(stored["history"]))
''',
    "lib/phenomena/studies/{name}/summary.py": '''"""What a run stores: ``summarize(cfg, results) -> metrics``."""

from __future__ import annotations

from typing import Any

from phenomena.studies.{name}.config import Config
from phenomena.studies.{name}.experiment import Results


def summarize(cfg: Config, results: Results) -> dict[str, Any]:
    """JSON-ready metrics."""
    losses = [row["loss"] for row in results.history.train]
    return {{"slope": results.slope, "first_loss": losses[0], "last_loss": losses[-1]}}
''',
    "lib/phenomena/studies/{name}/measures.py": '''"""The named numbers the claims read, from the stored metrics; no thresholds here."""

from __future__ import annotations

from typing import Any

from phenomena.claims import Measures
from phenomena.studies.{name}.config import Config

MEASURES = Measures()


@MEASURES
def slope_error(cfg: Config, m: dict[str, Any]) -> float:
    """|fitted slope - true slope|."""
    return abs(m["slope"] - cfg.slope)


@MEASURES
def loss_ratio(cfg: Config, m: dict[str, Any]) -> float:
    """Last over first training loss."""
    return m["last_loss"] / m["first_loss"]
''',
    "lib/phenomena/studies/{name}/claims.toml": """# The rows, as data: judged by phenomena.claims.judge on the measures of measures.py. Register a row's threshold
# and expectation before the run that judges it; a later change shows as post hoc.

[[row]]
id = "recovers_the_slope"
statement = "|fitted slope - true slope| (true slope {{slope:g}})"
metric = "slope_error"
op = "<"
paper = "recovers it"
threshold = {{ full = 0.1 }}
evidence = {{ full = "replace: the paper, or the seeds (not 0-4) it was calibrated on" }}

[[row]]
id = "loss_falls"
kind = "sanity"
statement = "last / first training loss"
metric = "loss_ratio"
op = "<"
paper = "falls"
threshold = {{ full = 1.0 }}
evidence = {{ full = "definition" }}
""",
    "lib/phenomena/studies/{name}/story.py": '''"""The notebook's generated prose: departures from the paper and how ours compares."""

from __future__ import annotations

from typing import Any

from phenomena.studies.{name}.config import Config


def departures(cfg: Config, m: dict[str, Any]) -> list[str]:
    """Declared departures from the paper, with our numbers."""
    return []


def comparison(cfg: Config, m: dict[str, Any]) -> str:
    """"How ours compares with the paper", as Markdown generated from the metrics (no typed numbers)."""
    return f"* **The slope.** Ours {{m['slope']:.3f}} against the true {{cfg.slope:g}}."
''',
    "lib/phenomena/studies/{name}/seeds.py": '''"""The study over seeds: one figure over the per-seed results of a sweep (``seed_figure``)."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt


def seed_figure(records: list[dict[str, Any]]) -> plt.Figure:
    """The fitted slope of every seed."""
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot([r["seed"] for r in records], [r["metrics"]["slope"] for r in records], "o")
    ax.set(xlabel="seed", ylabel="fitted slope", title=f"{{len(records)}} seeds")
    return fig
''',
    "tests/test_{name}.py": '''"""{title}: unit tests, and a null run that must fail the headline claim."""

from __future__ import annotations

from phenomena.studies import {name} as study


def test_a_null_run_fails_the_headline_claim() -> None:
    cfg = study.Config.from_preset("quick")
    rows = {{c.id: c for c in study.claims(cfg, {{"slope": 0.0, "first_loss": 1.0, "last_loss": 1.0}})}}
    assert not rows["recovers_the_slope"].passed
''',
}

NOTEBOOK = [
    (
        "markdown",
        "# {title}\n\n**Claim.** (replace: the paper's claim, with its citation.) **This notebook** (what it shows).",
    ),
    (
        "code",
        'preset = "quick"  # smoke | quick | paper\nseed = 0\ndevice = "auto"\nthreads = 1\noverrides = {{}}',
    ),
    (
        "code",
        "import matplotlib.pyplot as plt\nfrom IPython.display import Markdown\n\nfrom phenomena import repro\n"
        "from phenomena.claims import did_not_reproduce_markdown, markdown_table\nfrom phenomena.run import Run\n"
        "from phenomena.studies import {name} as study\n\npreset = repro.preset_from_env(preset)\n"
        "cfg = study.Config.from_preset(preset, seed=seed, **overrides)\n"
        'run = Run.start("{name}", cfg, device=device, threads=threads)\nresults = study.compute(cfg, run)',
    ),
    ("markdown", "### Training loss\nLook for: the loss falling to the noise floor."),
    (
        "code",
        "frame = results.history.train_frame()\nfig, ax = plt.subplots(figsize=(6, 3.5))\n"
        'ax.plot(frame["step"], frame["loss"])\nax.set(xlabel="training step", ylabel="mean squared error", yscale="log")\n'
        'run.savefig(fig, "training_loss")\nplt.show()',
    ),
    ("markdown", "## Claims"),
    ("code", 'record = run.conclude(study, results)\nMarkdown(markdown_table(record["claims"]))'),
    ("markdown", "## What did not reproduce"),
    ("code", "Markdown(did_not_reproduce_markdown(record))"),
    ("markdown", '## Try this\n* `overrides={{"noise": 1.0}}` -- noisier data.'),
]


def notebook(name: str, title: str) -> str:
    cells = []
    for i, (kind, src) in enumerate(NOTEBOOK):
        text = src.format(name=name, title=title)
        cell = {
            "cell_type": kind,
            "id": f"cell{i:04d}",
            "metadata": {"tags": ["parameters"]} if i == 1 else {},
            "source": text.splitlines(keepends=True),
        }
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        cells.append(cell)
    meta = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    return json.dumps({"cells": cells, "metadata": meta, "nbformat": 4, "nbformat_minor": 5}, indent=1) + "\n"


def scaffold(name: str, root: Path) -> list[Path]:
    """Write the skeleton of study ``name`` under ``root``; the paths written."""
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name or "") or keyword.iskeyword(name):
        raise ValueError(
            f"NAME={name!r} is not allowed: expected a lowercase Python identifier, e.g. grokking_modular"
        )
    title = name.replace("_", " ").capitalize()
    targets = {root / p.format(name=name): body.format(name=name, title=title) for p, body in FILES.items()}
    targets[root / "notebooks" / f"{name}.ipynb"] = notebook(name, title)
    existing = [str(p) for p in targets if p.exists()]
    if existing or (root / "lib" / "phenomena" / "studies" / name).exists():
        raise ValueError(f"NAME={name!r}: the study exists already ({existing or name}); choose another name")
    for path, text in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return list(targets)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name")
    parser.add_argument("--root", type=Path, default=REPO)
    args = parser.parse_args(argv)
    try:
        written = scaffold(args.name, args.root)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print("\n".join(f"wrote {p}" for p in written))
    print("next: make format; make test-fast; see CONTRIBUTING.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
