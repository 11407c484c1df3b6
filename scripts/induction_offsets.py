"""Where the induction study's main model copies: its repeated-copy loss at each copy offset (issue 34.2).

Trains the main model of each config seed exactly as the study does (``train_copy`` at ``--preset``, 2 layers) and
prints, per seed, the repeated-copy loss / ln V on probes [x(L), filler(g), x(L)] at copy offsets L + g, beside the
value the row ``copies_unseen_offset`` reads for that model (its own far probe, ``EvalSet.make``, at the training
run's final evaluation). Two fillers: the study's (one bigram chain with x, so the filler can repeat a token of x: a
nearer, spurious match) and a filler drawn from the tokens not in x (the copy's source is then the only match). A
model whose loss rises past the largest trained offset (``segment_max + gap_max``) while it copies at the offsets
below has learned a look-back window.
Nothing is cached or written except ``--json``. Use config seeds that do not judge (not 0-4); a draw k of seed s
is config seed s + 1000 k::

    .venv/bin/python scripts/induction_offsets.py --seeds 1005-1007,2006 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import math
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

from phenomena import repro
from phenomena.claims import parse_seeds
from phenomena.studies.induction_heads.config import Config
from phenomena.studies.induction_heads.scores import copy_loss_by_offset
from phenomena.studies.induction_heads.training import train_copy

#: the probes' random numbers: one generator per model, the same for every seed (not the study's evaluation seed)
PROBE_SEED = 777


def offsets_of(preset: str, seed: int, half: int, step: int, batch: int) -> dict[str, Any]:
    """Train the main model of config seed ``seed`` at ``preset`` and read its copy loss at every offset
    ``half + g`` (g = 0, ``step``, ... while the probe fits in ``seq_len``)."""
    repro.set_threads(1)
    cfg = Config.from_preset(preset, seed=seed)
    started = time.perf_counter()
    model, hist, _ = train_copy(cfg, 2, torch.device("cpu"), progress=False)
    model.eval()
    train_s = time.perf_counter() - started
    gen = torch.Generator().manual_seed(PROBE_SEED)
    rows = copy_loss_by_offset(
        model, cfg, half, range(0, cfg.seq_len - 2 * half + 1, step), batch, gen, clean=True
    )
    return {
        "seed": seed,
        "trained_offsets": [cfg.segment_min, cfg.segment_max + cfg.gap_max],
        "far_offset": cfg.far_len + cfg.far_gap,
        # the row's own value for this model: the far probe (EvalSet.make) at its final evaluation
        "row_value": hist.eval_frame().iloc[-1]["far_loss_rep"] / math.log(cfg.vocab_size),
        "offsets": rows,
        "train_s": round(train_s, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=parse_seeds, default=parse_seeds("1005-1007,2006"), help="config seeds")
    ap.add_argument("--preset", default="full", help="the study's preset (default full: its main model)")
    ap.add_argument(
        "--half", type=int, default=16, help="segment length L of the probes (default: far_len's 16)"
    )
    ap.add_argument("--step", type=int, default=8, help="filler lengths g = 0, step, 2 step, ...")
    ap.add_argument("--batch", type=int, default=256, help="probes per offset")
    ap.add_argument("--jobs", type=int, default=2, help="processes, one thread each")
    ap.add_argument("--json", type=Path, help="also write every value here")
    args = ap.parse_args()
    started = time.perf_counter()
    n = len(args.seeds)
    with ProcessPoolExecutor(args.jobs) as pool:
        out = list(
            pool.map(
                offsets_of, [args.preset] * n, args.seeds, [args.half] * n, [args.step] * n, [args.batch] * n
            )
        )
    offsets = [r["offset"] for r in out[0]["offsets"]]
    print(
        f"repeated-copy loss / ln V on [x({args.half}), filler(g), x({args.half})] at copy offset {args.half} + g; "
        "each cell: the study's filler / a filler without x's tokens"
    )
    print("| config seed | row's value (far probe) | " + " | ".join(f"offset {o}" for o in offsets) + " |")
    print("|---" * (len(offsets) + 2) + "|")
    for r in out:
        cells = " | ".join(f"{x['loss']:.3f} / {x['clean']:.3f}" for x in r["offsets"])
        print(f"| {r['seed']} | {r['row_value']:.3f} (offset {r['far_offset']}) | {cells} |")
    lo, hi = out[0]["trained_offsets"]
    print(f"trained offsets {lo}-{hi}; {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
