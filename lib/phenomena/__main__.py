"""Command line: the studies' front door without Jupyter.

    python -m phenomena list
    python -m phenomena run <study> [--preset smoke|quick|paper] [--seed N] [--device auto|cpu|cuda]
                                    [--threads N] [--set key=value ...]

``run`` builds the config exactly as the notebook does (an unknown key, preset or bad value is an error naming it
and the allowed values), runs ``compute``, ``summarize`` and ``claims``, writes the same results file as the
notebook (``data/results/<study>.json`` under the output root) and prints the claims table. Values in ``--set``
are YAML (``--set steps=200 --set "ranks=[1, 4]"``), as papermill's ``-y`` reads them. It makes no figures.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

from phenomena import studies
from phenomena.claims import ClaimFailed


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``["a=1", "b=[1, 2]"]`` -> ``{"a": 1, "b": [1, 2]}`` (values read as YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set {item!r}: expected key=value")
        out[key.strip()] = yaml.safe_load(value)
    return out


def run_study(
    name: str, preset: str, seed: int, overrides: dict[str, Any], device: str, threads: int
) -> dict:
    """Run one study headlessly; return the results record it wrote."""
    from phenomena.run import Run

    study = studies.load(name)
    cfg = study.Config.from_preset(preset, seed=seed, **overrides)
    run = Run.start(name, cfg, device=device, threads=threads)
    return run.conclude(study, study.compute(cfg, run))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m phenomena", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the studies")
    run_p = sub.add_parser("run", help="run one study headlessly (no figures)")
    run_p.add_argument("study")
    run_p.add_argument("--preset", default="quick")
    run_p.add_argument("--seed", type=int, default=0)
    run_p.add_argument("--device", default="auto")
    run_p.add_argument("--threads", type=int, default=1)
    run_p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    if args.command == "list":
        for name in studies.names():
            print(f"{name:<28} {studies.title(name)}")
        return 0
    try:
        record = run_study(
            args.study, args.preset, args.seed, parse_sets(args.sets), args.device, args.threads
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ClaimFailed as err:
        print(f"claims: {err}", file=sys.stderr)
        return 1
    print(f"wrote data/results/{record['study']}.json ({record['wall_time_s']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
