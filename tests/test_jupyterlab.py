"""The explorers, for real: in a real JupyterLab driven by headless Chromium, and in plain papermill runs.

The browser test starts JupyterLab (from the pinned ``jupyter``) on 127.0.0.1 in a scratch copy of the notebooks,
with no token, update and news checks off, every cell attached to the page (JupyterLab 4 otherwise virtualises
off-screen cells), the smoke preset and a scratch output root. For each notebook it runs all cells, waits until
the kernel is idle and every code cell has run, checks that no cell has an error output, then changes every control
of the explorer as a person does (drags a slider's handle, picks a drop-down value) and checks that the plot
redraws (the image changes) and that exactly one plot remains. Every browser request is recorded and anything not
for 127.0.0.1 is aborted and fails the test; screenshots of each explorer before and after go to
``build/jupyterlab/``. Without Chromium, playwright or JupyterLab it is skipped, loudly
(``PHENOMENA_REQUIRE_BROWSER=1``, set by CI where Chromium is installed, makes that a failure instead).

The same explorers without a frontend (plain papermill runs) are tested in ``tests/test_headless_runs.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from phenomena import figures, report, studies
from tests.conftest import REPO, smoke_cache_env

REQUIRE_BROWSER_ENV = "PHENOMENA_REQUIRE_BROWSER"
SHOTS = REPO / "build" / "jupyterlab"
#: JupyterLab user settings for the scratch server: every cell in the DOM, no news, no update checks.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}
NOTEBOOK_DEADLINE_S = 300  # a smoke notebook takes well under a minute; the deadline only catches a hang
REDRAW_DEADLINE_S = 30


def kernel_env(out: Path) -> dict[str, str]:
    """The environment of the server and its kernels: the smoke preset, a scratch output root, one thread,
    offline, this checkout's library, ``make test``'s shared smoke cache (:data:`tests.conftest.SMOKE_CACHE`); no
    PHENOMENA_HEADLESS (set by make test), so the explorers decide by themselves."""
    drop = ("MPLBACKEND", "PHENOMENA_PRESET", "PHENOMENA_CACHE", figures.HEADLESS_ENV)
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("PYTEST_")}
    env.update(
        PHENOMENA_OUT=str(out),
        PHENOMENA_PRESET="smoke",
        PHENOMENA_THREADS="1",
        OMP_NUM_THREADS="1",
        HF_HUB_OFFLINE="1",
        PYTHONHASHSEED="0",
        # the kernels import this checkout's phenomena, whatever the environment has installed
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO / "lib"), os.environ.get("PYTHONPATH")) if p),
        **smoke_cache_env(),
    )
    return env


# ---------------------------------------------------------------------------------------------------------------
# Without a frontend: an explorer never waits
# ---------------------------------------------------------------------------------------------------------------


def test_explore_draws_once_without_a_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(figures.HEADLESS_ENV, raising=False)
    calls: list[dict[str, Any]] = []
    figures.explore(lambda a=1: calls.append({"a": a}), a=(0, 5))
    assert calls == [{"a": 1}]
    assert figures.static_reason() in ("not in a Jupyter kernel", "not in IPython")
    monkeypatch.setenv(figures.HEADLESS_ENV, "1")
    assert figures.static_reason() == f"{figures.HEADLESS_ENV} is set"


# ---------------------------------------------------------------------------------------------------------------
# A real JupyterLab
# ---------------------------------------------------------------------------------------------------------------


def need_lab() -> None:
    """Skip -- loudly -- or, with PHENOMENA_REQUIRE_BROWSER=1 (CI), fail when JupyterLab cannot be driven."""
    reason = report.browser_unavailable()
    if reason is None and shutil.which("jupyter-lab", path=str(Path(sys.executable).parent)) is None:
        reason = "JupyterLab is not installed next to this Python (pip install -r requirements.txt)"
    if reason is None:
        return
    message = f"JUPYTERLAB TEST NOT RUN: {reason}. The explorers were not checked in a browser."
    if os.environ.get(REQUIRE_BROWSER_ENV) == "1":
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_server(url: str, proc: subprocess.Popen, log: Path, deadline_s: float = 120) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/status", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(
        f"JupyterLab did not answer at {url} within {deadline_s} s:\n{log.read_text()[-3000:]}"
    )


def stop(proc: subprocess.Popen) -> None:
    """Stop the server and everything it started (its kernels are in its process group)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # any kernel left behind
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """JupyterLab on 127.0.0.1 serving a scratch copy of the notebooks; its URL. Stopped afterwards, always."""
    need_lab()
    root = tmp_path_factory.mktemp("jupyterlab")
    work = root / "notebooks"
    shutil.copytree(REPO / "notebooks", work, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    settings = root / "settings"
    for name, values in LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(values))
    env = kernel_env(root / "out")
    env.update(
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(root / "workspaces"),
        JUPYTER_CONFIG_DIR=str(root / "config"),
        JUPYTER_DATA_DIR=str(root / "data"),
        JUPYTER_RUNTIME_DIR=str(root / "runtime"),
    )
    port = free_port()
    cmd = [
        str(Path(sys.executable).parent / "jupyter-lab"),
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--ServerApp.root_dir={work}",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        "--ServerApp.allow_remote_access=False",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        "--LabApp.expose_app_in_browser=True",
    ]
    if os.geteuid() == 0:  # containers and CI runners
        cmd.append("--ServerApp.allow_root=True")
    log = root / "jupyterlab.log"
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as out:
        proc = subprocess.Popen(
            cmd, env=env, cwd=work, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for_server(url, proc, log)
        yield url
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def chromium(lab: str) -> Iterator[Any]:
    with report.chromium() as browser:
        yield browser


#: The notebook panel of a path, in the page's JupyterLab (``window.jupyterapp``: ``expose_app_in_browser``).
PANEL = "path => Array.from(window.jupyterapp.shell.widgets('main')).find(w => w.context && w.context.path === path)"

OPEN_AND_RUN = """async path => {
  const app = window.jupyterapp;
  const panel = await app.commands.execute('docmanager:open', {path, factory: 'Notebook'});
  await panel.context.ready;
  await panel.sessionContext.ready;
  app.shell.activateById(panel.id);
  await new Promise(done => setTimeout(done, 200));
  if (app.shell.currentWidget !== panel) throw new Error('could not activate ' + path);
  app.commands.execute('notebook:run-all-cells');
  return panel.id;
}"""

RUN_STATE = f"""path => {{
  const panel = ({PANEL})(path);
  const cells = panel.content.widgets.filter(c => c.model.type === 'code');
  if (cells.some(c => c.model.outputs.toJSON().some(o => o.output_type === 'error'))) return 'error';
  const done = cells.every(c => c.model.executionCount !== null);
  return done && panel.sessionContext.session.kernel.status === 'idle' ? 'done' : '';
}}"""

ERRORS = f"""path => ({PANEL})(path).content.widgets.flatMap(c => c.model.type !== 'code' ? [] :
  c.model.outputs.toJSON().filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue))"""

KERNEL_STATUS = f"path => ({PANEL})(path).sessionContext.session.kernel.status"


@dataclass
class Lab:
    """One JupyterLab page with every notebook open in a tab; ``panels``: notebook path -> panel element id;
    ``requests``: every URL the page requested (WebSockets included)."""

    page: Any
    panels: dict[str, str]
    requests: list[str]


@pytest.fixture(scope="module")
def lab_page(chromium: Any, lab: str) -> Iterator[Lab]:
    """JupyterLab in one page, every notebook opened in a tab and all its cells started, so that the kernels
    compute side by side while the tests look at them one at a time. Any request not for 127.0.0.1 is aborted."""
    context = chromium.new_context(viewport={"width": 1280, "height": 1200})
    requests: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    context.route(re.compile(r"^(?!http://127\.0\.0\.1:|data:|blob:)"), lambda route: route.abort())
    page = context.new_page()
    page.on("websocket", lambda ws: requests.append(ws.url))
    page.goto(f"{lab}/lab?reset", wait_until="load")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell", timeout=120_000)
    page.evaluate("() => window.jupyterapp.restored")
    panels = {f"{s}.ipynb": page.evaluate(OPEN_AND_RUN, f"{s}.ipynb") for s in studies.names()}
    try:
        yield Lab(page, panels, requests)
    finally:
        context.close()


def wait_until_run(lab: Lab, path: str) -> None:
    """Wait until every cell of ``path`` has run and its kernel is idle; fail on any error output."""
    state = lab.page.wait_for_function(RUN_STATE, arg=path, timeout=NOTEBOOK_DEADLINE_S * 1000).json_value()
    if state == "error":
        pytest.fail(f"{path}: a cell raised in JupyterLab: {lab.page.evaluate(ERRORS, path)}")


def plot_src(cell: Any) -> list[str]:
    return cell.locator(".jp-OutputArea-output img").evaluate_all("els => els.map(e => e.src)")


def wait_for_redraw(lab: Lab, path: str, cell: Any, before: str, what: str) -> str:
    """Wait until the explorer's single plot differs from ``before`` and the kernel is idle; return its source."""
    end = time.monotonic() + REDRAW_DEADLINE_S
    while time.monotonic() < end:
        srcs = plot_src(cell)
        if len(srcs) == 1 and srcs[0] != before and lab.page.evaluate(KERNEL_STATUS, path) == "idle":
            return srcs[0]
        lab.page.wait_for_timeout(100)
    raise AssertionError(f"{what}: no single redrawn plot within {REDRAW_DEADLINE_S} s (images: {len(srcs)})")


def drag_slider(page: Any, slider: Any) -> None:
    """Drag the slider's handle, as a person does, to the far end from where it is (10% or 90% of the track)."""
    track = slider.locator(".noUi-target").bounding_box()
    handle = slider.locator(".noUi-handle").bounding_box()
    x0, y = handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2
    frac = 0.9 if x0 < track["x"] + track["width"] / 2 else 0.1
    page.mouse.move(x0, y)
    page.mouse.down()
    page.mouse.move(track["x"] + frac * track["width"], y, steps=8)
    page.mouse.up()


def pick_other_option(select: Any) -> None:
    """Pick, in the drop-down, an option other than the current one."""
    values = select.locator("option").evaluate_all("els => els.map(e => e.value)")
    current = select.input_value()
    select.select_option(next(v for v in values if v != current))


@pytest.mark.browser
@pytest.mark.parametrize("study", studies.names())
def test_explorer_in_jupyterlab(lab_page: Lab, study: str) -> None:
    started, path, page = time.monotonic(), f"{study}.ipynb", lab_page.page
    wait_until_run(lab_page, path)
    page.evaluate("id => window.jupyterapp.shell.activateById(id)", lab_page.panels[path])
    panel = page.locator(f'[id="{lab_page.panels[path]}"]')
    explorers = panel.locator(".jp-CodeCell", has=page.locator(".widget-interact"))
    assert explorers.count() >= 1, f"{study}: no explorer rendered as widgets"
    SHOTS.mkdir(parents=True, exist_ok=True)
    for e in range(explorers.count()):
        cell = explorers.nth(e)
        cell.scroll_into_view_if_needed()
        srcs = plot_src(cell)
        assert len(srcs) == 1, f"{study}: the explorer shows {len(srcs)} plots before any change"
        shown = cell.locator(".jp-Cell-outputWrapper")  # the controls and the plot
        shown.scroll_into_view_if_needed()
        shown.screenshot(path=str(SHOTS / f"{study}-{e}-before.png"))
        controls = cell.locator(".widget-interact .widget-slider, .widget-interact .widget-dropdown")
        assert controls.count() >= 2, f"{study}: an explorer should expose more than one knob"
        for c in range(controls.count()):
            control = controls.nth(c)
            name = control.locator(".widget-label").inner_text()
            if "widget-dropdown" in (control.get_attribute("class") or ""):
                pick_other_option(control.locator("select"))
            else:
                readout = control.locator(".widget-readout").inner_text()
                drag_slider(page, control)
                page.wait_for_function(
                    "([el, before]) => el.querySelector('.widget-readout').innerText !== before",
                    arg=[control.element_handle(), readout],
                    timeout=10_000,
                )
            t0 = time.monotonic()
            srcs = [wait_for_redraw(lab_page, path, cell, srcs[0], f"{study}: {name}")]
            print(f"{study}: {name} redrew in {time.monotonic() - t0:.2f} s")
        shown.scroll_into_view_if_needed()
        shown.screenshot(path=str(SHOTS / f"{study}-{e}-after.png"))
    off = [
        u
        for u in lab_page.requests
        if not u.startswith(("http://127.0.0.1:", "ws://127.0.0.1:", "data:", "blob:"))
    ]
    assert not off, f"{study}: requests outside 127.0.0.1: {off}"
    print(f"{study}: waited for the run and moved the explorer in {time.monotonic() - started:.1f} s")
