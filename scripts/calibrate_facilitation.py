"""Calibrate how many runs the rehearsal study's facilitation trends need (issue 34.4).

Trains power law and no rehearsal at run seeds s + 1000 i (i < ``--runs``) for each config seed s, exactly as the
study's ``facilitation_runs`` does, and prints per config seed the mean step-matched facilitation gain (power law's
slope minus no rehearsal's) over the first 2, 12 and ``--runs`` runs, with the 95% t interval over the config seeds
and the verdict the row ``facilitation_trend_per_step`` would get at ``full`` (its registered threshold and fail
bound, read from the study's claims.toml).
Nothing is cached or written except ``--json``. Use config seeds that do not judge (not 0-4)::

    .venv/bin/python scripts/calibrate_facilitation.py --seeds 5-9 --runs 24 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

import phenomena.studies.powerlaw_rehearsal as study
from phenomena import repro
from phenomena.claims import load_specs, parse_seeds
from phenomena.stats import t_interval, verdict
from phenomena.studies.powerlaw_rehearsal.config import Config
from phenomena.studies.powerlaw_rehearsal.experiment import FACILITATION_ENVS, RUN_SEED_STRIDE
from phenomena.studies.powerlaw_rehearsal.stream import facilitation_slope, run_environment

#: the row the calibration is for, as registered (its comparator, threshold and fail bound at ``full``)
ROW = next(
    s
    for s in load_specs(Path(study.__file__).with_name("claims.toml"))
    if s.id == "facilitation_trend_per_step"
)


def gain(preset: str, config_seed: int, i: int) -> float:
    """The step-matched facilitation gain of run i of ``config_seed``: power law's slope minus no rehearsal's."""
    repro.set_threads(1)
    cfg = Config.from_preset(preset, seed=config_seed)
    seed = config_seed + RUN_SEED_STRIDE * i
    slopes = [
        facilitation_slope(
            np.asarray(run_environment(cfg, env, seed, torch.device("cpu")).extra["ff_step_acc"])
        )
        for env in FACILITATION_ENVS
    ]
    return slopes[0] - slopes[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=parse_seeds, default=parse_seeds("5-9"), help="config seeds, e.g. 5-9")
    ap.add_argument("--runs", type=int, default=24, help="run seeds per config seed")
    ap.add_argument("--preset", default="full", help="the study's preset (default full)")
    ap.add_argument("--jobs", type=int, default=2, help="processes, one thread each")
    ap.add_argument("--json", type=Path, help="also write every run's gain here")
    args = ap.parse_args()
    started = time.perf_counter()
    pairs = [(s, i) for s in args.seeds for i in range(args.runs)]
    with ProcessPoolExecutor(args.jobs) as pool:
        values = list(pool.map(gain, [args.preset] * len(pairs), *zip(*pairs)))
    gains = {s: values[k * args.runs : (k + 1) * args.runs] for k, s in enumerate(args.seeds)}
    counts = sorted({n for n in (2, 12, args.runs) if n <= args.runs})
    print("| config seed | " + " | ".join(f"mean of {n}" for n in counts) + " |")
    print("|---" * (len(counts) + 1) + "|")
    for s, g in gains.items():
        print(f"| {s} | " + " | ".join(f"{np.mean(g[:n]):+.4f}" for n in counts) + " |")
    for n in counts:
        means = [float(np.mean(g[:n])) for g in gains.values()]
        mean, lo, hi = t_interval(means)
        v = verdict(ROW.op, ROW.bound("full"), lo, hi, ROW.fail_at("full"))
        where = f"[{lo:+.4f}, {hi:+.4f}]" if lo is not None and hi is not None else "(no interval)"
        print(f"{n} runs: {mean:+.4f} {where} over {len(means)} config seeds -> {v}")
    print(
        f"single-run gain: mean {np.mean(values):+.4f}, sd {np.std(values, ddof=1):.4f} over {len(values)} runs"
    )
    print(f"{time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({str(s): g for s, g in gains.items()}, indent=1))


if __name__ == "__main__":
    main()
