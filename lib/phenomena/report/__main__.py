"""``python -m phenomena.report``: build the site (and its screenshot); see :mod:`phenomena.report.cli`."""

import sys

from phenomena.report.cli import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
