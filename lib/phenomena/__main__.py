"""Command line: the studies' front door without Jupyter, the sweep runner and the report site. The same commands
are the ``phenomena`` console script of an installed package (``pip install -e .``): ``phenomena run ...`` is
``python -m phenomena run ...``.

    python -m phenomena list
    python -m phenomena run <study> [--preset smoke|quick|full|gpu|paper] [--seed N] [--device auto|cpu|cuda]
                                    [--threads N] [--set key=value ...]
    python -m phenomena sweep [--study all|name[,name...]] [--seeds 0-4|0,2,5 (default: registered)] [--preset full] [--jobs N]
                              [--executor local|submitit] [--device auto|cpu|cuda] [--set key=value ...]
                              [--root DIR] [--time-min M] [--cluster local|slurm] [--partition P] [--gpus G]
                              [--array-parallelism A]
    python -m phenomena aggregate [--study all|name[,name...]] [--preset full] [--set key=value ...] [--root DIR]
    python -m phenomena figures [--study all|name[,name...]] [--preset quick] [--jobs N] [--device auto]
                                [--root DIR] [--time-min M]
    python -m phenomena report [--root DIR] [--out DIR] [--screenshot PNG]

``run`` builds the config exactly as the notebook does (an unknown key, preset or bad value is an error naming it
and the allowed values), runs ``compute``, ``summarize`` and ``claims``, writes the same results file as the
notebook (``data/results/<study>.json`` under the output root) and prints the claims table. Values in ``--set``
are YAML (``--set steps=200 --set "ranks=[1, 4]"``), as papermill's ``-y`` reads them. It makes no figures.

``sweep`` runs the notebooks over seeds (``phenomena.sweep``): per-seed results go to
``data/sweeps/<study>/<tag>/seed-<n>/results.json``, the over-seeds summary to ``data/sweeps/<study>-<tag>.json``
(``tag`` = the preset, plus a hash of the ``--set`` overrides if any); tasks whose results are current are skipped.
``aggregate`` rewrites the summaries from the per-seed results alone. ``figures`` is ``make figures``: every study
at seed 0 into ``figures/`` and ``data/results/``, longest notebooks first, ``--jobs`` at a time.
``report`` builds the offline report site (:mod:`phenomena.report.cli`, ``python -m phenomena.report``).
Exit status: 0 when everything succeeded, 1 when a task, claim or summary failed, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import yaml

from phenomena import studies, sweep, tasks
from phenomena.claims import ClaimFailed
from phenomena.paths import output_root


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


def add_run_parser(sub: argparse._SubParsersAction) -> None:
    """The ``run`` subcommand: one study headlessly."""
    run_p = sub.add_parser("run", help="run one study headlessly (no figures)")
    run_p.add_argument("study")
    run_p.add_argument("--preset", default="quick")
    run_p.add_argument("--seed", type=int, default=0)
    run_p.add_argument("--device", default="auto")
    run_p.add_argument("--threads", type=int, default=1)
    run_p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")


def add_sweep_parsers(sub: argparse._SubParsersAction) -> None:
    """The ``sweep``, ``aggregate`` and ``figures`` subcommands (see :mod:`phenomena.sweep`)."""
    jobs = os.cpu_count() or 1
    sweep_p = sub.add_parser("sweep", help="run notebooks over seeds, then summarise every claim over them")
    aggregate_p = sub.add_parser(
        "aggregate", help="rewrite the over-seeds summaries from the per-seed results"
    )
    figures_p = sub.add_parser("figures", help="run every notebook at seed 0 into figures/ and data/results/")
    for p in (sweep_p, aggregate_p, figures_p):
        p.add_argument("--study", default="all", help="all, or names separated by commas (default: all)")
        default = (
            "quick" if p is figures_p else "full"
        )  # figures: the default tier; sweeps judge the full one
        p.add_argument(
            "--preset", default=default, help=f"smoke | quick | full | gpu | paper (default: {default})"
        )
        p.add_argument(
            "--root",
            type=Path,
            default=None,
            help="output root (default: $PHENOMENA_OUT, else the repository)",
        )
    for p in (sweep_p, aggregate_p):
        p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    for p in (sweep_p, figures_p):
        p.add_argument("--jobs", type=int, default=jobs, help=f"notebooks at once (default: {jobs})")
        p.add_argument("--device", default="auto", choices=tasks.DEVICES)
        p.add_argument("--time-min", type=int, default=240, help="minutes before a notebook is stopped")
    sweep_p.add_argument(
        "--seeds",
        default=None,
        help="e.g. 0-4 or 0,2,5 (default: each study's registered judging population, [population] of its "
        "claims.toml; 0-4 where it registers none)",
    )
    sweep_p.add_argument("--executor", default="local", choices=tasks.EXECUTORS)
    sweep_p.add_argument("--cluster", default=None, choices=("local", "slurm"), help="submitit: default auto")
    sweep_p.add_argument("--partition", default=None, help="submitit on Slurm: the partition")
    sweep_p.add_argument("--gpus", type=int, default=None, help="submitit: GPUs per task (default 1 on cuda)")
    sweep_p.add_argument(
        "--array-parallelism", type=int, default=None, help="Slurm: tasks at once (default jobs)"
    )


def cmd_run(args: argparse.Namespace) -> int:
    """``run``: 0 when the results were written (a verdict that differs from its expectation is marked, not an
    error), 1 when a row's number is not finite without a reason, 2 for a bad study, preset or config."""
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


def cmd_sweep(args: argparse.Namespace) -> int:
    """``sweep``: 0 when every task ran or was current and every summary was written, else 1."""
    cluster = sweep.SubmititOptions(
        cluster=args.cluster,
        partition=args.partition,
        gpus=args.gpus,
        array_parallelism=args.array_parallelism,
    )
    outcome = sweep.sweep(
        sweep.parse_studies(args.study),
        None if args.seeds is None else sweep.parse_seeds(args.seeds),
        args.preset,
        parse_sets(args.sets),
        root=args.root,
        jobs=args.jobs,
        executor=args.executor,
        device=args.device,
        timeout_min=args.time_min,
        submitit_options=cluster,
    )
    return 0 if outcome.ok else 1


def cmd_aggregate(args: argparse.Namespace) -> int:
    """``aggregate``: a study without per-seed results is noted; 1 if a summary failed or none was written."""
    root = (args.root or output_root()).resolve()
    overrides, names = parse_sets(args.sets), sweep.parse_studies(args.study)
    written, failed = 0, 0
    for name in names:
        try:
            print(f"wrote {sweep.aggregate(root, name, args.preset, overrides)}")
            written += 1
        except sweep.NoResults as err:
            print(f"{name}: {err}")
        except sweep.AggregateError as err:
            print(f"error: {name}: {err}", file=sys.stderr)
            failed += 1
    return 1 if failed or not written else 0


def cmd_figures(args: argparse.Namespace) -> int:
    """``figures``: 0 when every notebook ran with its claims as expected, else 1."""
    outcome = sweep.make_figures(
        sweep.parse_studies(args.study),
        args.preset,
        root=args.root,
        jobs=args.jobs,
        device=args.device,
        timeout_min=args.time_min,
    )
    return 0 if outcome.ok else 1


def prog_name() -> str:
    """``phenomena`` when run as the console script, else ``python -m phenomena``."""
    return "phenomena" if Path(sys.argv[0]).name == "phenomena" else "python -m phenomena"


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's time limit, ``timeout``, ``kill``) seen as Ctrl-C, so that a sweep unwinds the same way:
    its running notebooks (each in a session of its own, out of reach of a signal to the sweep alone) are stopped and
    no more start (``executors.stop_all``), its Slurm jobs are cancelled, and nothing half-written is published."""


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["report"]:  # the report site has its own parser (python -m phenomena.report)
        from phenomena.report.cli import main as report_main

        return report_main(argv[1:])
    parser = argparse.ArgumentParser(prog=prog_name(), description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the studies")
    add_run_parser(sub)
    add_sweep_parsers(sub)
    sub.add_parser("report", help="build the offline report site (phenomena report --help)", add_help=False)
    args = parser.parse_args(argv)
    if args.command == "list":
        for name in studies.names():
            print(f"{name:<28} {studies.title(name)}")
        return 0
    if args.command == "run":
        return cmd_run(args)
    commands = {"sweep": cmd_sweep, "aggregate": cmd_aggregate, "figures": cmd_figures}
    # Python lets only the main thread set a signal handler: called from another thread, main leaves SIGTERM alone
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        return commands[args.command](args)
    except ValueError as err:  # an unknown study, preset, device or seed range: nothing ran
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Terminated:
        print("terminated (SIGTERM): the running notebooks were stopped", file=sys.stderr)
        return 128 + signal.SIGTERM
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    raise SystemExit(main())
