"""The report site: its page builder on small hand-made inputs, then the real site in a real browser.

The unit tests write a tiny output root (results, a sweep summary, figures with sidecars, an executed notebook with
math, an image and a tqdm widget) and check what the builder makes of it. The browser tests run the four notebooks
at the smoke preset into a scratch root, build the site, and load it in headless Chromium through Playwright: every
study and claim row is in the rendered page, every image has loaded, no request left file://, and each notebook
shows its figures. Without Chromium or playwright they are skipped, loudly (``PHENOMENA_REQUIRE_BROWSER=1`` makes
that a failure instead).
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import nbformat
import pytest
from PIL import Image, PngImagePlugin

from phenomena import report, studies
from phenomena.report import MissingInput, Row, build, fmt_number, sanity_line, summary_line
from phenomena.report import browser as report_browser
from tests.conftest import REPO, smoke_cache_env

STUDIES = ("induction_heads", "powerlaw_rehearsal")
REQUIRE_BROWSER_ENV = "PHENOMENA_REQUIRE_BROWSER"


# ---------------------------------------------------------------------------------------------------------------
# Hand-made inputs
# ---------------------------------------------------------------------------------------------------------------


def claim(cid: str, ours: Any, outcome: str, *, kind: str = "claim", expect: str = "holds") -> dict[str, Any]:
    """A claim record as ``phenomena.claims.Claim.record()`` writes it."""
    evaluated = outcome != "not evaluated"
    return {
        "id": cid,
        "statement": f"statement of {cid}",
        "paper": "> 0.4 (Fig. 1)",
        "ours": ours if evaluated else "not evaluated: no input",
        "op": ">" if evaluated else None,
        "bound": 0.4 if evaluated else None,
        "passed": (outcome == "holds") if evaluated else None,
        "kind": kind,
        "expect": expect,
        "evidence": f"evidence for {cid}",
        "note": "" if evaluated else "no input",
        "threshold": "> 0.4" if evaluated else "n/a",
        "outcome": outcome,
        "spec_hash": "h",
        "registered": {"hash": "h"},  # judged under the spec its run started under: not post hoc
    }


def results(study: str) -> dict[str, Any]:
    return {
        "study": study,
        "preset": "smoke",
        "seed": 0,
        "wall_time_s": 12.5,
        "claims": [
            claim("init_is_chance", 0.001, "holds", kind="sanity"),
            claim("head_forms", 0.8123456, "holds"),
            claim("sharp_drop", 0.1, "fails", expect="fails"),
            claim("beats_baseline", 0.25, "fails"),
            claim("one_layer_fails", 0.9, "holds", kind="control"),
            claim("diversity", None, "not evaluated"),
            claim("undefined_corr", None, "fails"),
        ],
        "departures": ["Scale: `d = 3` instead of 20."],
        "metrics": {},
        "peak_rss_mb": 512.0,
        "config": {"preset": "smoke", "seed": 0},
        "source_hash": "abc",
        "git_sha": "0123456789abcdef",
        "git_dirty": True,
        "date": "2026-01-02T03:04:05+00:00",
        "python": "3.11.7",
        "platform": "Linux-test-x86_64",
        "device": "cpu",
        "torch_threads": 1,
        "versions": {"torch": "2.13.0"},
    }


def sweep(study: str) -> dict[str, Any]:
    """A small sweep summary in the shape ``make sweep`` writes: two of the study's claims over 5 seeds."""
    base = {c["id"]: c for c in results(study)["claims"]}
    keys = ("id", "kind", "statement", "paper", "op", "bound", "threshold", "expect", "evidence")

    def swept(cid: str, mean: float, lo: float, hi: float, n_pass: int, verdict: str) -> dict[str, Any]:
        seeds = list(range(5))
        stats = {"mean": mean, "lo": lo, "hi": hi, "n": 5, "n_pass": n_pass, "verdict": verdict}
        return {**{k: base[cid][k] for k in keys}, "values": [mean] * 5, "seeds": seeds, **stats}

    return {
        "study": study,
        "preset": "smoke",
        "overrides": {},
        "seeds": [0, 1, 2, 3, 4],
        "git_sha": "fedcba9876543210",
        "source_hash": "abc",
        "dates": ["2026-01-02T00:00:00+00:00", "2026-01-03T00:00:00+00:00"],
        "machine": "Linux-test-x86_64, cpu",
        "wall_time_s": {str(s): 10.0 for s in range(5)},
        "peak_rss_mb": {str(s): 500.0 for s in range(5)},
        "claims": [
            swept("head_forms", 0.5, 0.35, 0.65, 3, "unclear"),
            swept("beats_baseline", 0.9, 0.85, 0.95, 5, "holds"),
        ],
    }


def png_bytes(text_chunk: str | None = None) -> bytes:
    """A 4x3 PNG; ``text_chunk`` goes into a tEXt chunk, as matplotlib writes its URL."""
    info = PngImagePlugin.PngInfo()
    if text_chunk:
        info.add_text("Software", text_chunk)
    buf = io.BytesIO()
    Image.new("RGB", (4, 3), (200, 30, 30)).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def tqdm_widget_state() -> dict[str, Any]:
    def model(name: str, **state: Any) -> dict[str, Any]:
        return {"model_name": name, "model_module": "@jupyter-widgets/controls", "state": state}

    return {
        "bar": model("HBoxModel", children=["IPY_MODEL_desc", "IPY_MODEL_prog", "IPY_MODEL_stats"]),
        "desc": model("HTMLModel", value="train:\u2007100%"),
        "prog": model("FloatProgressModel", value=60.0, max=60.0),
        "stats": model("HTMLModel", value="\u200760/60\u2007[00:01&lt;00:00,\u200745.0it/s]"),
        "slider": model("VBoxModel", children=[]),
    }


def notebook(with_image: bool = True) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells.append(
        nbformat.v4.new_markdown_cell("# A study\n\n" r"The estimate $\hat w = \frac1k \sum_j x_j y_j$.")
    )
    code = nbformat.v4.new_code_cell("train()")
    code.outputs.append(
        nbformat.v4.new_output(
            "display_data",
            data={
                "application/vnd.jupyter.widget-view+json": {"model_id": "bar", "version_major": 2},
                "text/plain": "train:   0%|          | 0/60",
            },
        )
    )
    code.outputs.append(
        nbformat.v4.new_output(
            "display_data",
            data={"application/vnd.jupyter.widget-view+json": {"model_id": "slider"}, "text/plain": "VBox()"},
        )
    )
    if with_image:
        image = base64.b64encode(png_bytes()).decode()
        code.outputs.append(
            nbformat.v4.new_output("display_data", data={"image/png": image, "text/plain": "<Figure>"})
        )
    nb.cells.append(code)
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": tqdm_widget_state()}}
    return nb


def write_root(root: Path, *, with_sweep: bool = False, with_notebooks: bool = True) -> Path:
    """An output root with the layout ``make figures`` (and ``make sweep``) write."""
    for study in STUDIES:
        (root / "data" / "results").mkdir(parents=True, exist_ok=True)
        (root / "data" / "results" / f"{study}.json").write_text(json.dumps(results(study)))
        figs = root / "figures" / study
        figs.mkdir(parents=True, exist_ok=True)
        (figs / "phase_change.png").write_bytes(
            png_bytes("Matplotlib version3.11.2, https://matplotlib.org/")
        )
        (figs / "phase_change.json").write_text(
            json.dumps(
                {"study": study, "figure": "phase_change", "preset": "smoke", "seed": 0, "device": "cpu"}
            )
        )
        if with_notebooks:
            (root / "build").mkdir(exist_ok=True)
            nbformat.write(notebook(), root / "build" / f"{study}.ipynb")
    if with_sweep:
        (root / "data" / "sweeps").mkdir(parents=True)
        (root / "data" / "sweeps" / "induction_heads-smoke.json").write_text(
            json.dumps(sweep("induction_heads"))
        )
    return root


class RowParser(HTMLParser):
    """The claim rows of a built dashboard: {(study, claim id): [cell texts]}."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[tuple[str, str], list[str]] = {}
        self.study = ""
        self.current: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section" and a.get("data-study"):
            self.study = a["data-study"] or ""
        if tag == "tr" and a.get("data-claim-id"):
            self.current = self.rows.setdefault((self.study, a["data-claim-id"] or ""), [])
        if tag == "td" and self.current is not None:
            self.current.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self.current = None

    def handle_data(self, data: str) -> None:
        if self.current:
            self.current[-1] += data


def dashboard_rows(index: Path) -> dict[tuple[str, str], list[str]]:
    parser = RowParser()
    parser.feed(index.read_text())
    return {k: [re.sub(r"\s+", " ", c).strip() for c in cells] for k, cells in parser.rows.items()}


# ---------------------------------------------------------------------------------------------------------------
# Unit tests: the page builder
# ---------------------------------------------------------------------------------------------------------------


def test_dashboard_rows_and_numbers_come_from_the_results_files(tmp_path: Path) -> None:
    index = build(write_root(tmp_path / "root"), tmp_path / "site", STUDIES)
    rows = dashboard_rows(index)
    for study in STUDIES:
        record = json.loads((tmp_path / "root" / "data" / "results" / f"{study}.json").read_text())
        assert {cid for s, cid in rows if s == study} == {c["id"] for c in record["claims"]}
        for c in record["claims"]:
            kind, _, paper, ours, _null, _oracle, verdict, expect, threshold, evidence = rows[
                (study, c["id"])
            ]
            assert kind == c["kind"] and paper == c["paper"] and threshold == c["threshold"]
            assert evidence == c["evidence"] and expect == c["expect"] and verdict.startswith(c["outcome"])
            if c["outcome"] != "not evaluated":
                assert ours == fmt_number(c["ours"])
    assert rows[("induction_heads", "head_forms")][3] == "0.812"
    assert rows[("induction_heads", "undefined_corr")][3] == "undefined"
    page = index.read_text()
    assert (
        "5 claims and 1 control: 2 hold, 1 fails as expected, 2 fail (expected to hold), 1 not evaluated"
        in page
    )
    assert "1 sanity check: 1 passes" in page
    assert "Scale: <code>d = 3</code> instead of 20." in page  # the declared departure
    assert "<code>beats_baseline</code> (claim, expected holds, fails here)" in page  # what did not reproduce
    for text in (
        "0123456789",
        "(uncommitted changes)",
        "smoke",
        "2026-01-02T03:04:05+00:00",
        "Linux-test-x86_64, cpu",
    ):
        assert text in page  # provenance: git sha, preset, date, machine


def test_summary_lines_count_rows_by_verdict_and_expectation() -> None:
    def row(kind: str, verdict: str, expect: str = "holds") -> Row:
        return Row("x", kind, "", "", "", verdict, expect, "", "", "", over_seeds=False)

    rows = [
        row("claim", "holds"),
        row("claim", "holds"),
        row("claim", "fails", "fails"),
        row("claim", "unclear"),
        row("control", "holds", "fails"),
        row("sanity", "holds"),
        row("sanity", "fails"),
    ]
    assert summary_line(rows) == (
        "4 claims and 1 control: 2 hold, 1 fails as expected, 1 holds (expected to fail), 1 unclear"
    )
    assert sanity_line(rows) == "2 sanity checks: 1 passes, 1 fails"
    assert summary_line([row("sanity", "holds")]) == "no claims"
    assert [r.as_expected for r in rows[3:5]] == [True, False]


def test_a_sweep_summary_gives_mean_interval_and_verdict(tmp_path: Path) -> None:
    index = build(write_root(tmp_path / "root", with_sweep=True), tmp_path / "site", STUDIES)
    rows = dashboard_rows(index)
    assert rows[("induction_heads", "head_forms")][3:7:3] == ["0.5 [0.35, 0.65] (5/5)", "unclear"]
    assert rows[("induction_heads", "beats_baseline")][3:7:3] == ["0.9 [0.85, 0.95] (5/5)", "holds"]
    assert rows[("induction_heads", "sharp_drop")][3] == "0.1"  # not in the sweep: the single run's number
    assert rows[("powerlaw_rehearsal", "head_forms")][3] == "0.812"  # no sweep for this study
    page = index.read_text()
    assert "over 5 seeds (0-4, preset smoke)" in page and "data/sweeps/induction_heads-smoke.json" in page
    assert (
        "No sweep summary (data/sweeps/powerlaw_rehearsal-smoke.json)" in page
        and "<code>make sweep</code>" in page
    )
    assert "No sweep summary (data/sweeps/induction_heads-smoke.json)" not in page


def test_a_missing_results_file_raises_naming_the_command(tmp_path: Path) -> None:
    root = write_root(tmp_path / "root")
    (root / "data" / "results" / "powerlaw_rehearsal.json").unlink()
    with pytest.raises(MissingInput, match=r"powerlaw_rehearsal\.json is missing: run `make figures`"):
        build(root, tmp_path / "site", STUDIES)
    assert not (tmp_path / "site").exists()


def test_the_command_line_says_what_to_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert report.main(["--root", str(tmp_path / "empty"), "--out", str(tmp_path / "site")]) == 2
    assert "run `make figures`" in capsys.readouterr().err


def test_missing_notebooks_and_figures_are_said_on_the_page(tmp_path: Path) -> None:
    root = write_root(tmp_path / "root", with_notebooks=False)
    for png in (root / "figures" / "induction_heads").glob("*"):
        png.unlink()
    build(root, tmp_path / "site", STUDIES)
    page = (tmp_path / "site" / "induction_heads.html").read_text()
    assert (
        "build/induction_heads.ipynb (the executed notebook) is missing: run <code>make figures</code>"
        in page
    )
    assert "figures/induction_heads/ has no figures: run <code>make figures</code>" in page


def test_a_notebook_without_inline_figures_is_flagged(tmp_path: Path) -> None:
    root = write_root(tmp_path / "root")
    nbformat.write(notebook(with_image=False), root / "build" / "induction_heads.ipynb")
    build(root, tmp_path / "site", STUDIES)
    assert "MPLBACKEND=Agg" in (tmp_path / "site" / "induction_heads.html").read_text()
    assert "MPLBACKEND=Agg" not in (tmp_path / "site" / "powerlaw_rehearsal.html").read_text()


def test_study_pages_render_math_as_mathml_widgets_as_text_and_the_gallery(tmp_path: Path) -> None:
    build(write_root(tmp_path / "root"), tmp_path / "site", STUDIES)
    page = (tmp_path / "site" / "induction_heads.html").read_text()
    assert '<math display="inline">' in page and "<mfrac>" in page and "$" not in page
    assert "train: 100% |##########| 60/60 [00:01&lt;00:00, 45.0it/s]" in page
    assert "interactive widget (VBox)" in page and "widget-view" not in page
    assert page.count('src="data:image/png;base64,') == 1  # the notebook's figure, embedded
    assert 'src="figures/induction_heads/phase_change.png"' in page  # the gallery's copy
    assert "provenance sidecar" in page and '"figure": "phase_change"' in html.unescape(page)
    assert (tmp_path / "site" / "figures" / "induction_heads" / "phase_change.png").exists()


def test_no_url_in_any_built_file(tmp_path: Path) -> None:
    build(write_root(tmp_path / "root", with_sweep=True), tmp_path / "site", STUDIES)
    files = [p for p in (tmp_path / "site").rglob("*") if p.is_file()]
    assert {p.suffix for p in files} >= {".html", ".css", ".png"}
    with_urls = [str(p) for p in files if re.search(rb"https?://", p.read_bytes())]
    assert not with_urls, f"built files that name a URL: {with_urls}"


def test_a_rebuild_replaces_the_site_but_never_a_foreign_folder(tmp_path: Path) -> None:
    root = write_root(tmp_path / "root")
    build(root, tmp_path / "site", STUDIES)
    (tmp_path / "site" / "stale.html").write_text("old")
    build(root, tmp_path / "site", STUDIES)
    assert not (tmp_path / "site" / "stale.html").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a report site"):
        build(root, tmp_path / "mine", STUDIES)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


def test_results_files_in_the_old_format_still_render(tmp_path: Path) -> None:
    root = write_root(tmp_path / "root")
    old = results("induction_heads")
    old["claims"] = [
        {k: v for k, v in c.items() if k not in ("kind", "expect", "outcome", "op", "bound")}
        for c in old["claims"]
    ]
    (root / "data" / "results" / "induction_heads.json").write_text(json.dumps(old))
    rows = dashboard_rows(build(root, tmp_path / "site", STUDIES))
    assert (
        rows[("induction_heads", "sharp_drop")][6] == "fails ! not as expected"
    )  # "expect" defaults to holds
    assert rows[("induction_heads", "init_is_chance")][0] == "claim"  # "kind" defaults to claim


# ---------------------------------------------------------------------------------------------------------------
# Browser tests: the real site in headless Chromium
# ---------------------------------------------------------------------------------------------------------------


def need_browser() -> None:
    """Skip -- loudly -- or, with PHENOMENA_REQUIRE_BROWSER=1 (CI), fail when no browser can be driven."""
    reason = report.browser_unavailable()
    if reason is None:
        return
    message = f"BROWSER TEST NOT RUN: {reason}. The report site was not checked in a browser."
    if os.environ.get(REQUIRE_BROWSER_ENV) == "1":
        pytest.fail(message)
    pytest.skip(message)


def run_smoke_notebook(study: str, root: Path) -> None:
    """Execute ``notebooks/<study>.ipynb`` at the smoke preset with papermill, writing under ``root``."""
    # MPLBACKEND=Agg would keep the figures out of the executed notebook; with pytest's PYTEST_* variables
    # ipykernel stops capturing the kernel's own stdout/stderr.
    drop = ("MPLBACKEND", "PHENOMENA_PRESET", "PHENOMENA_CACHE")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("PYTEST_")}
    env.update(
        PHENOMENA_OUT=str(root),
        PHENOMENA_THREADS="1",
        HF_HUB_OFFLINE="1",
        PYTHONHASHSEED="0",
        PHENOMENA_HEADLESS="1",
        **smoke_cache_env(),  # make test's shared smoke cache: each study computed once across the front ends
    )
    source, executed = REPO / "notebooks" / f"{study}.ipynb", root / "build" / f"{study}.ipynb"
    options = [
        "--cwd",
        str(REPO / "notebooks"),
        "-k",
        "python3",
        "-p",
        "preset",
        "smoke",
        "--no-progress-bar",
    ]
    options += ["--execution-timeout", "120"]  # a safety net: smoke cells take seconds
    log = root / "build" / f"{study}.log"
    with log.open("w") as out:
        cmd = [sys.executable, "-m", "papermill", str(source), str(executed), *options]
        done = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=600)
    assert done.returncode == 0, f"{study} failed at smoke ({log}):\n{log.read_text()[-3000:]}"


@pytest.fixture(scope="session")
def smoke_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four notebooks run at the smoke preset (two at a time: the machine has 2 cores) into a scratch root."""
    need_browser()
    root = tmp_path_factory.mktemp("report-root")
    (root / "build").mkdir()
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(lambda s: run_smoke_notebook(s, root), studies.names()))
    return root


@pytest.fixture(scope="session")
def site(smoke_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(smoke_root, tmp_path_factory.mktemp("report") / "site").parent


@pytest.fixture(scope="module")
def browser(site: Path) -> Iterator[Any]:
    # module scope, not session: Playwright's sync API holds an event loop open in this thread while a browser is
    # up, so a session-long one here made the JupyterLab test's own browser fail ("Sync API inside the asyncio
    # loop") whenever pytest-xdist put both files on one worker
    with report.chromium() as b:
        yield b


def open_page(browser: Any, page: Path) -> tuple[Any, list[str]]:
    """``page`` loaded in a fresh context; every URL it requested is recorded (anything off file:// is also
    aborted, so a regression can never reach the network)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    context.route(re.compile(r"^(?!file:|data:)"), lambda route: route.abort())
    tab = context.new_page()
    tab.goto(page.as_uri(), wait_until="load")
    return tab, requests


def images(tab: Any, selector: str) -> list[dict[str, Any]]:
    return tab.eval_on_selector_all(
        selector,
        "els => els.map(e => ({src: e.currentSrc.slice(0, 80), done: e.complete, w: e.naturalWidth}))",
    )


def off_file(requests: list[str]) -> list[str]:
    # data: URIs (the notebook's embedded figures) are part of the page, not requests.
    return [u for u in requests if not u.startswith(("file://", "data:"))]


@pytest.mark.browser
def test_dashboard_in_a_browser(browser: Any, site: Path, smoke_root: Path) -> None:
    tab, requests = open_page(browser, site / "index.html")
    shown = tab.eval_on_selector_all("section.study", "els => els.map(e => e.dataset.study)")
    assert shown == list(studies.names())
    for study in studies.names():
        record = json.loads((smoke_root / "data" / "results" / f"{study}.json").read_text())
        dom = tab.eval_on_selector_all(
            f"section#{study} tr.claim",
            "els => els.map(e => [e.dataset.claimId, e.dataset.kind, e.dataset.verdict,"
            " e.querySelector('td.ours').innerText.trim()])",
        )
        expected = [c for c in record["claims"] if c["kind"] != "sanity"]
        expected += [c for c in record["claims"] if c["kind"] == "sanity"]
        assert [d[:3] for d in dom] == [[c["id"], c["kind"], c["outcome"]] for c in expected], study
        numbers = {
            c["id"]: fmt_number(c["ours"]) for c in record["claims"] if c["outcome"] != "not evaluated"
        }
        assert {d[0]: d[3] for d in dom if d[0] in numbers} == numbers, study
        summary = tab.inner_text(f"section#{study} p.summary")
        assert summary.startswith(report.summary_line([report.run_row(c) for c in record["claims"]])), study
    assert all(i["done"] and i["w"] > 0 for i in images(tab, "img"))
    assert not off_file(requests), f"requests outside file://: {off_file(requests)}"
    shot = tab.screenshot(path=str(site / "screenshot.png"), type="png")
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and len(shot) > 10_000
    with Image.open(site / "screenshot.png") as png:
        assert png.size == (1280, 900)
    tab.context.close()


@pytest.mark.browser
@pytest.mark.parametrize("study", studies.names())
def test_study_page_in_a_browser(browser: Any, site: Path, smoke_root: Path, study: str) -> None:
    tab, requests = open_page(browser, site / f"{study}.html")
    in_notebook = images(tab, "#notebook img")
    in_gallery = images(tab, "#figures img")
    pngs = sorted((smoke_root / "figures" / study).glob("*.png"))
    assert in_notebook, f"{study}: the notebook shows no figure"
    assert len(in_gallery) == len(pngs) > 0
    broken = [i["src"] for i in in_notebook + in_gallery if not (i["done"] and i["w"] > 0)]
    assert not broken, f"{study}: images that did not load: {broken}"
    code_cells = tab.locator("#notebook .jp-CodeCell").count()
    assert code_cells > 0
    if tab.locator("#notebook math").count():  # LaTeX became MathML, and Chromium lays it out
        assert tab.eval_on_selector("#notebook math", "e => e.getBoundingClientRect().width") > 0
    assert not off_file(requests), f"requests outside file://: {off_file(requests)}"
    tab.context.close()


def test_screenshot_is_skipped_with_a_message_without_a_browser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(report.CHROMIUM_ENV, str(tmp_path / "no-such-chromium"))
    assert report.screenshot(tmp_path / "index.html", tmp_path / "shot.png") is None
    assert "skipping the screenshot" in capsys.readouterr().err
    assert not (tmp_path / "shot.png").exists()
    monkeypatch.setattr(report_browser, "sync_playwright", None)
    assert "playwright is not installed" in (report.browser_unavailable() or "")


def test_rows_show_the_null_and_oracle_values_of_the_committed_controls() -> None:
    from phenomena.report.rows import dashboard_rows as rows_of

    record = {"preset": "quick", "claims": [{"id": "a", "kind": "claim", "ours": 0.2, "outcome": "holds"}]}
    controls = {
        "rows": {
            "quick": [
                {"id": "a", "null": 0.93, "null_outcome": "fails", "oracle": 0.01, "oracle_outcome": "holds"}
            ]
        }
    }
    (row,) = rows_of(record, None, controls)
    assert (row.null, row.oracle) == ("0.93 (fails)", "0.01 (holds)")
    assert rows_of(record, None, None)[0].null == ""
