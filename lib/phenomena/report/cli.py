"""The command line of ``python -m phenomena.report``: build the site (and its screenshot)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from phenomena.paths import output_root
from phenomena.report.browser import screenshot
from phenomena.report.rows import MissingInput
from phenomena.report.site import build, site_size


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m phenomena.report", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument(
        "--root", type=Path, default=None, help="output root to read (default: PHENOMENA_OUT or the repo)"
    )
    parser.add_argument("--out", type=Path, default=None, help="site folder (default: ROOT/build/site)")
    parser.add_argument(
        "--screenshot", type=Path, default=None, help="also write a PNG of the dashboard here"
    )
    args = parser.parse_args(argv)
    root = (args.root or output_root()).resolve()
    started = time.perf_counter()
    try:
        index = build(root, args.out.resolve() if args.out else None)
    except MissingInput as err:
        print(f"report: {err}", file=sys.stderr)
        return 2
    n_files, n_bytes = site_size(index.parent)
    print(
        f"wrote {index} ({n_files} files, {n_bytes / 2**20:.1f} MiB) in {time.perf_counter() - started:.1f} s; "
        f"open it in a browser: {index.as_uri()}"
    )
    if args.screenshot is not None and screenshot(index, args.screenshot) is not None:
        print(f"wrote {args.screenshot}")
    return 0
