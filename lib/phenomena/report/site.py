"""Building the site: the dashboard and one page per study from jinja2 templates, figure copies, atomically."""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import jinja2
import nbformat
from markupsafe import Markup, escape
from nbconvert.exporters.html import HTMLExporter
from PIL import Image

from phenomena import studies
from phenomena.paths import repo_root
from phenomena.report.notebook import has_images, make_exporter, notebook_css
from phenomena.report.rows import MAKE_FIGURES, SITE_MARKER, TEMPLATES, StudyReport, load_study

# ---------------------------------------------------------------------------------------------------------------
# The site
# ---------------------------------------------------------------------------------------------------------------


def code_spans(text: str) -> Markup:
    """``text`` escaped, with Markdown `code` spans as <code>."""
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(text))))


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES / "site"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["code_spans"] = code_spans
    env.filters["slug"] = lambda s: re.sub(r"[^a-z0-9_-]+", "-", str(s).lower())
    return env


def render_study_page(env: jinja2.Environment, exporter: HTMLExporter, report: StudyReport) -> str:
    """The study page: the executed notebook through nbconvert, with the site's header and the gallery."""
    notices = list(report.notices)
    if report.notebook is not None:
        nb = nbformat.read(report.notebook, as_version=4)
        if report.figures and not has_images(nb):
            notices.append(
                f"build/{report.name}.ipynb shows no figures: it ran with a non-inline matplotlib backend "
                f"(e.g. MPLBACKEND=Agg). Rerun `{MAKE_FIGURES}` with the inline backend; the figures are in the "
                "gallery below."
            )
    else:
        nb = nbformat.v4.new_notebook()
    resources = {
        # markdown image paths are relative to the source notebooks (papermill runs them with --cwd notebooks)
        "metadata": {"name": report.title, "path": str(repo_root() / "notebooks")},
        "phenomena": {
            "header": env.get_template("study_header.html.j2").render(study=report, notices=notices),
            "gallery": env.get_template("gallery.html.j2").render(study=report),
        },
    }
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    return body


def copy_png(src: Path, dst: Path) -> None:
    """Copy a PNG without its text chunks (matplotlib writes its URL into one): the site holds no URL at all."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(src) as image:
        image.save(dst, format="PNG", dpi=image.info.get("dpi"))


def site_size(out: Path) -> tuple[int, int]:
    """(number of files, bytes) of the site."""
    files = [p for p in out.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


@contextmanager
def fresh_site(out: Path) -> Iterator[Path]:
    """A temporary folder next to ``out`` that replaces ``out`` when the block succeeds. An existing ``out`` is
    replaced only if it is an earlier site (it holds :data:`SITE_MARKER`) or empty, never any other folder."""
    if out.exists() and any(out.iterdir()) and not (out / SITE_MARKER).exists():
        raise FileExistsError(
            f"{out} exists and is not a report site: refusing to replace it (pick another --out)"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a site is for reading
    try:
        yield tmp
        (tmp / SITE_MARKER).write_text("built by python -m phenomena.report\n")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_all(root: Path, names: Sequence[str] | None = None) -> list[StudyReport]:
    """Every study's report (all studies unless ``names``); :class:`MissingInput` names what to run."""
    names = list(studies.names() if names is None else names)
    return [load_study(root, s, studies.title(s)) for s in names]


def build(root: Path, out: Path | None = None, names: Sequence[str] | None = None) -> Path:
    """Build the site from the outputs under ``root`` into ``out`` (default ``<root>/build/site``); return its
    index.html."""
    out = out or root / "build" / "site"
    reports = load_all(root, names)
    for report in reports:
        for notice in report.notices:
            print(f"report: {report.name}: {notice}", file=sys.stderr)
    env = environment()
    exporter = make_exporter()
    with fresh_site(out) as site:
        (site / "assets").mkdir()
        shutil.copy(TEMPLATES / "static" / "site.css", site / "assets" / "site.css")
        (site / "assets" / "notebook.css").write_text(notebook_css(exporter))
        for report in reports:
            for fig in report.figures:
                copy_png(root / fig.src, site / fig.src)
            (site / report.page).write_text(render_study_page(env, exporter, report))
        (site / "index.html").write_text(env.get_template("index.html.j2").render(studies=reports))
    return out / "index.html"
