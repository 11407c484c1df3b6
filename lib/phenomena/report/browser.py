"""Headless Chromium through Playwright, for the dashboard's screenshot and the browser test (never downloads a
browser: it drives Debian's chromium)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from phenomena.paths import atomic_path

try:  # optional: only the screenshot (and the browser test) drive a browser
    from playwright.sync_api import sync_playwright
except ImportError:
    sync_playwright = None

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM_ENV = "PHENOMENA_CHROMIUM"
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")
#: Flags for a quiet, offline, throw-away Chromium (Playwright adds --headless and a fresh profile itself).
CHROMIUM_ARGS = (
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


# ---------------------------------------------------------------------------------------------------------------
# Chromium: the screenshot (and the browser test)
# ---------------------------------------------------------------------------------------------------------------


def chromium_executable() -> Path | None:
    """The Chromium to drive: ``$PHENOMENA_CHROMIUM``, else Debian's ``/usr/bin/chromium`` or one on PATH."""
    candidates = [os.environ[CHROMIUM_ENV]] if os.environ.get(CHROMIUM_ENV) else list(CHROMIUM_CANDIDATES)
    for name in candidates:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def browser_unavailable() -> str | None:
    """Why no browser can be driven here, or ``None`` if one can."""
    if sync_playwright is None:
        return "the Python package playwright is not installed (pip install -r requirements.txt)"
    if chromium_executable() is None:
        where = os.environ.get(CHROMIUM_ENV) or ", ".join(CHROMIUM_CANDIDATES)
        return f"no Chromium found (looked for {where}; on Debian/Ubuntu: apt-get install chromium)"
    return None


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless, sandbox-less, offline-minded Chromium with a fresh profile, driven by Playwright."""
    reason = browser_unavailable()
    if reason is not None:
        raise RuntimeError(f"cannot start a browser: {reason}")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(chromium_executable()),
            headless=True,
            chromium_sandbox=False,
            args=list(CHROMIUM_ARGS),
        )
        try:
            yield browser
        finally:
            browser.close()


def screenshot(page: Path, png: Path, *, width: int = 1280, height: int = 900) -> Path | None:
    """A PNG of the top of ``page`` (``width`` x ``height`` CSS pixels); ``None``, said on stderr, if no browser
    can be driven here."""
    reason = browser_unavailable()
    if reason is not None:
        print(f"report: skipping the screenshot: {reason}", file=sys.stderr)
        return None
    with chromium() as browser:
        tab = browser.new_page(viewport={"width": width, "height": height})
        tab.goto(page.resolve().as_uri(), wait_until="load")
        with atomic_path(png) as tmp:
            tab.screenshot(path=str(tmp), type="png")
    return png
