"""The executed notebooks as offline HTML: nbconvert's HTMLExporter with a template that loads nothing from the
network, LaTeX converted to MathML at build time, ipywidgets outputs as text."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import jinja2
import nbformat
from latex2mathml.converter import convert as latex_to_mathml
from nbconvert.exporters.html import HTMLExporter
from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath
from nbconvert.preprocessors import Preprocessor

from phenomena.report.rows import NBCONVERT_TEMPLATE, TEMPLATES, WIDGET_STATE, WIDGET_VIEW

# ---------------------------------------------------------------------------------------------------------------
# The notebook pages: nbconvert, offline
# ---------------------------------------------------------------------------------------------------------------


def tex_to_mathml(tex: str, display: str) -> str:
    """MathML for ``tex`` (``display``: inline | block), without the namespace attribute (implied in HTML); the
    TeX source itself, escaped, if latex2mathml cannot convert it."""
    try:
        mathml = latex_to_mathml(tex, display=display)
    except Exception:  # latex2mathml raises many kinds of error on TeX it does not know
        fence = "$" if display == "inline" else "$$"
        return f'<code class="tex">{html.escape(fence + tex + fence)}</code>'
    return mathml.replace(' xmlns="http://www.w3.org/1998/Math/MathML"', "")


class MathMLRenderer(IPythonRenderer):
    """nbconvert's markdown renderer, with math written as MathML instead of left for MathJax."""

    def inline_math(self, body: str) -> str:
        return tex_to_mathml(body, "inline")

    def block_math(self, body: str) -> str:
        return tex_to_mathml(body, "block")

    def latex_environment(self, name: str, body: str) -> str:
        return tex_to_mathml(f"\\begin{{{name}}}{body}\\end{{{name}}}", "block")


class OfflineHTMLExporter(HTMLExporter):
    """``HTMLExporter`` whose markdown math is MathML (see :class:`MathMLRenderer`)."""

    @jinja2.pass_context
    def markdown2html(self, context: Any, source: str) -> str:
        cell = context.get("cell", {})
        renderer = MathMLRenderer(
            escape=False,
            attachments=cell.get("attachments", {}),
            embed_images=self.embed_images,
            path=context.get("resources", {}).get("metadata", {}).get("path", ""),
            anchor_link_text=self.anchor_link_text,
            exclude_anchor_links=self.exclude_anchor_links,
            **self.lexer_options,
        )
        return MarkdownWithMath(renderer=renderer).render(source)


class WidgetsAsText(Preprocessor):
    """Replace ipywidgets outputs by text, and drop the widget state: rendering them would load a widget manager
    from a CDN. A tqdm bar becomes its final line ("steps: 100% |##########| 60/60 [00:01, 45it/s]"), anything
    else a note that it needs a running kernel."""

    def preprocess(self, nb: nbformat.NotebookNode, resources: dict[str, Any]) -> Any:
        state = nb.metadata.pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                data = output.get("data", {})
                if WIDGET_VIEW in data:
                    data["text/plain"] = widget_text(state, data.pop(WIDGET_VIEW).get("model_id", ""))
        return nb, resources


def widget_text(state: dict[str, Any], model_id: str) -> str:
    """A text rendering of widget ``model_id`` from a notebook's saved widget state."""
    model = state.get(model_id, {})
    children = [
        state.get(c.removeprefix("IPY_MODEL_"), {}) for c in model.get("state", {}).get("children", [])
    ]
    bars = [c for c in children if c.get("model_name", "").endswith("ProgressModel")]
    if not bars:
        name = model.get("model_name", "widget").removesuffix("Model")
        return f"[interactive widget ({name}): open the notebook in Jupyter to use it]"
    parts = []
    for child in children:
        s = child.get("state", {})
        if child.get("model_name", "").endswith("ProgressModel"):
            filled = round(10 * s.get("value", 0) / s["max"]) if s.get("max") else 0
            parts.append("|" + "#" * filled + " " * (10 - filled) + "|")
        else:
            parts.append(
                html.unescape(re.sub(r"<[^>]*>", "", str(s.get("value", "")))).replace("\u2007", " ")
            )
    return " ".join(p.strip() for p in parts if p.strip())


def notebook_css(exporter: HTMLExporter) -> str:
    """JupyterLab's notebook style sheet and light theme (nbconvert's ``lab`` template), without comments."""
    for folder in exporter.template_paths:
        static = Path(folder) / "static"
        if (static / "index.css").exists():
            css = (static / "index.css").read_text() + (static / "theme-light.css").read_text()
            return re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    raise FileNotFoundError(f"nbconvert's lab template has no static/index.css in {exporter.template_paths}")


def make_exporter() -> OfflineHTMLExporter:
    exporter = OfflineHTMLExporter(
        template_name=NBCONVERT_TEMPLATE,
        extra_template_basedirs=[str(TEMPLATES / "nbconvert")],
        embed_images=True,
    )
    exporter.register_preprocessor(WidgetsAsText(), enabled=True)
    return exporter


def has_images(nb: nbformat.NotebookNode) -> bool:
    return any(
        key.startswith("image/")
        for cell in nb.cells
        for output in cell.get("outputs", [])
        for key in output.get("data", {})
    )
