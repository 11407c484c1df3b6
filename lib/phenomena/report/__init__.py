"""The report: a static, fully offline site of every study's claims, notebook and figures.

``python -m phenomena.report [--root DIR] [--out DIR] [--screenshot PATH]`` reads what the last ``make figures``
(and, optionally, ``make sweep``) wrote under the output root and builds a site (default ``<root>/build/site/``)::

    index.html              the claims dashboard: per study, each row's kind, the paper's number, ours (mean
                            [lo, hi] (n) over seeds where a sweep summary exists, else the single run's number),
                            verdict or outcome, expectation, threshold and its evidence; the declared departures,
                            "what did not reproduce" and the run's provenance
    <study>.html            the executed notebook (nbconvert's ``HTMLExporter``, JupyterLab template, images
                            embedded) and its figure gallery, each figure beside its provenance sidecar
    assets/, figures/       the style sheets and copies of the figures

Inputs, and the command that makes each: ``data/results/<study>.json``, ``figures/<study>/*.png`` (+ ``.json``)
and ``build/<study>.ipynb`` (``make figures``); ``data/sweeps/<study>-<preset>.json`` (``make sweep``). A missing
results file raises :class:`MissingInput`; a missing notebook, figure folder or sweep summary is said on the page
(and on stderr), naming the command, and the page falls back to what exists.

The site never asks the network for anything: nbconvert's CDN scripts (require.js, MathJax, mermaid, the widget
manager) are left out of the template; the JupyterLab style sheet is written once, without its comments (which
hold URLs); ipywidgets outputs become text (a tqdm bar's final state), since their renderer would come from a
CDN; and LaTeX in markdown is converted to MathML when the site is built (``latex2mathml``), which browsers
render natively, so no MathJax is needed (the pip-packaged MathJax 2.7.9 is 12 MB in 608 files, nearly every one
carrying http URLs, and typesets with JavaScript after load). An expression it cannot convert stays as TeX.
"""

from phenomena.report.browser import CHROMIUM_ENV, browser_unavailable, chromium, screenshot
from phenomena.report.cli import main
from phenomena.report.rows import MissingInput, Row, fmt_number, run_row, sanity_line, summary_line
from phenomena.report.site import build

__all__ = [
    "CHROMIUM_ENV",
    "MissingInput",
    "Row",
    "browser_unavailable",
    "build",
    "chromium",
    "fmt_number",
    "main",
    "run_row",
    "sanity_line",
    "screenshot",
    "summary_line",
]
