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

Without a browser: an explorer under papermill -- no ``PHENOMENA_HEADLESS``, as a papermill user runs it -- draws
its defaults once and makes no widget, so nothing waits on a widget frontend (jupyter/nbclient#312); every
notebook, run so twice, finishes.
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
from pathlib import Path
from typing import Any

import nbformat
import pytest

from phenomena import figures, report, studies
from tests.conftest import REPO

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
    offline, this checkout's library; no PHENOMENA_HEADLESS (set by make test), so the explorers decide by
    themselves."""
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


@pytest.mark.slow
@pytest.mark.parametrize("study", studies.names())
def test_every_notebook_finishes_under_plain_papermill_repeatedly(study: str, tmp_path: Path) -> None:
    """As a papermill user runs it (no PHENOMENA_HEADLESS), twice; each cell has a deadline, so a wait on a widget
    frontend fails the test instead of hanging it."""
    env = kernel_env(tmp_path / "out")
    for i in range(2):
        executed = tmp_path / f"{study}-{i}.ipynb"
        done = papermill(REPO / "notebooks" / f"{study}.ipynb", executed, env, timeout_s=300)
        assert done.returncode == 0, f"{study} run {i}:\n{done.stderr[-3000:]}"
        explorer = [c for c in nbformat.read(executed, as_version=4).cells if "explore(" in c.source]
        assert explorer and all(any("image/png" in o.get("data", {}) for o in c.outputs) for c in explorer), (
            f"{study}: the explorer drew no plot"
        )


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


def open_notebook(browser: Any, lab: str, study: str) -> tuple[Any, list[str]]:
    """``study``'s notebook in a fresh context; every URL requested (WebSockets included) is recorded, and any
    request not for 127.0.0.1 is aborted."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    requests: list[str] = []
    context.on("request", lambda r: requests.append(r.url))
    context.route(re.compile(r"^(?!http://127\.0\.0\.1:|data:|blob:)"), lambda route: route.abort())
    page = context.new_page()
    page.on("websocket", lambda ws: requests.append(ws.url))
    page.goto(f"{lab}/lab/tree/{study}.ipynb?reset", wait_until="load")
    page.wait_for_function(
        "() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
        " return w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel"
        " && w.sessionContext.session.kernel.status === 'idle'; }",
        timeout=120_000,
    )
    return page, requests


RUN_STATE = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const cells = panel.content.widgets.filter(c => c.model.type === 'code');
  const errors = cells.filter(c => c.model.outputs.toJSON().some(o => o.output_type === 'error'));
  if (errors.length) return 'error';
  const done = cells.every(c => c.model.executionCount !== null);
  return done && panel.sessionContext.session.kernel.status === 'idle' ? 'done' : '';
}"""


def run_all(page: Any, study: str) -> None:
    """Run every cell; wait until all have run and the kernel is idle; fail on any error output."""
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    state = page.wait_for_function(RUN_STATE, timeout=NOTEBOOK_DEADLINE_S * 1000).json_value()
    if state == "error":
        errors = page.evaluate(
            "() => window.jupyterapp.shell.currentWidget.content.widgets.flatMap(c => c.model.type !== 'code' ? []"
            " : c.model.outputs.toJSON().filter(o => o.output_type === 'error')"
            ".map(o => o.ename + ': ' + o.evalue))"
        )
        pytest.fail(f"{study}: a cell raised in JupyterLab: {errors}")


def plot_src(cell: Any) -> list[str]:
    return cell.locator(".jp-OutputArea-output img").evaluate_all("els => els.map(e => e.src)")


def wait_for_redraw(page: Any, cell: Any, before: str, what: str) -> str:
    """Wait until the explorer's single plot differs from ``before``; return its source."""
    end = time.monotonic() + REDRAW_DEADLINE_S
    while time.monotonic() < end:
        srcs = plot_src(cell)
        busy = page.evaluate(
            "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status"
        )
        if len(srcs) == 1 and srcs[0] != before and busy == "idle":
            return srcs[0]
        page.wait_for_timeout(100)
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
def test_explorer_in_jupyterlab(chromium: Any, lab: str, study: str) -> None:
    started = time.monotonic()
    page, requests = open_notebook(chromium, lab, study)
    run_all(page, study)
    explorers = page.locator(".jp-CodeCell", has=page.locator(".widget-interact"))
    assert explorers.count() >= 1, f"{study}: no explorer rendered as widgets"
    SHOTS.mkdir(parents=True, exist_ok=True)
    for e in range(explorers.count()):
        cell = explorers.nth(e)
        cell.scroll_into_view_if_needed()
        srcs = plot_src(cell)
        assert len(srcs) == 1, f"{study}: the explorer shows {len(srcs)} plots before any change"
        cell.screenshot(path=str(SHOTS / f"{study}-{e}-before.png"))
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
            srcs = [wait_for_redraw(page, cell, srcs[0], f"{study}: {name}")]
            print(f"{study}: {name} redrew in {time.monotonic() - t0:.2f} s")
        cell.screenshot(path=str(SHOTS / f"{study}-{e}-after.png"))
    off = [
        u for u in requests if not u.startswith(("http://127.0.0.1:", "ws://127.0.0.1:", "data:", "blob:"))
    ]
    assert not off, f"{study}: requests outside 127.0.0.1: {off}"
    page.context.close()
    print(f"{study}: JupyterLab run and explorer in {time.monotonic() - started:.1f} s")
