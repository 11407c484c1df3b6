"""Keep the README true: regenerate its study table and figure gallery from the committed outputs.

``python -m phenomena.readme README.md`` (run by ``make figures``) rewrites the text between the markers
``<!-- results:start -->`` / ``<!-- results:end -->`` from ``data/results/*.json`` and between
``<!-- gallery:start -->`` / ``<!-- gallery:end -->`` from ``figures/<study>/*.png``. A test checks that the
committed README equals what this module would write, so the table cannot drift from the results.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from phenomena import studies
from phenomena.paths import atomic_path, repo_root


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value).replace("|", "\\|")


def _study_order(root: Path) -> list[str]:
    return [s for s in studies.names() if (root / "data" / "results" / f"{s}.json").exists()]


def results_table(root: Path) -> str:
    """Markdown table: study | claim | paper | ours | threshold | pass | runtime (one row per claim)."""
    rows = [
        "| Study | Claim | Paper | Ours | Pass if | OK | Runtime (preset) |",
        "|---|---|---|---|---|---|---|",
    ]
    for study in _study_order(root):
        rec = json.loads((root / "data" / "results" / f"{study}.json").read_text())
        title = f"[{studies.title(study)}](notebooks/{study}.ipynb)"
        runtime = f"{rec['wall_time_s'] / 60:.1f} min ({rec['preset']})"
        for i, c in enumerate(rec["claims"]):
            first = i == 0
            rows.append(
                f"| {title if first else ''} | {_fmt(c['statement'])} | {_fmt(c['paper'])} | {_fmt(c['ours'])} "
                f"| {_fmt(c['threshold'])} | {'yes' if c['passed'] else '**no**'} | {runtime if first else ''} |"
            )
    return "\n".join(rows)


def gallery(root: Path) -> str:
    """Markdown gallery: one heading per study, its figures in a row-wrapped list of images."""
    parts = []
    for study in _study_order(root):
        pngs = sorted((root / "figures" / study).glob("*.png"))
        if not pngs:
            continue
        parts.append(f"### {studies.title(study)}\n")
        parts.extend(f'<img src="figures/{study}/{p.name}" alt="{p.stem}" width="420">' for p in pngs)
        parts.append("")
    return "\n".join(parts).rstrip()


def _replace(text: str, marker: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- {marker}:start -->).*?(<!-- {marker}:end -->)", re.S)
    if not pattern.search(text):
        raise ValueError(f"README has no <!-- {marker}:start --> ... <!-- {marker}:end --> block")
    return pattern.sub(lambda m: f"{m.group(1)}\n{body}\n{m.group(2)}", text)


def render(readme_text: str, root: Path) -> str:
    """``readme_text`` with the results table and the gallery regenerated from ``root``."""
    return _replace(_replace(readme_text, "results", results_table(root)), "gallery", gallery(root))


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else repo_root() / "README.md"
    new = render(path.read_text(), repo_root())
    if new != path.read_text():
        with atomic_path(path) as tmp:
            tmp.write_text(new)
        print(f"updated {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
