"""The calibration behind the regularisers' strengths: EWC's lambda, online EWC's lambda and SI's c.

Each baseline is run on the no-rehearsal stream of the full preset (seed 0) at every value of a small grid, and the
value with the best final ACC becomes the config's default -- so that power-law rehearsal is compared with the
strongest version of each regulariser this setup allows, not with an arbitrary one. ``python -m
phenomena.studies.powerlaw_rehearsal.calibration`` reruns the grid and writes the table to
``data/calibration/powerlaw_rehearsal.json`` (committed); a test checks that the defaults are the table's best.
"""

from __future__ import annotations

import sys
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from phenomena.paths import output_root, write_json
from phenomena.studies.powerlaw_rehearsal.config import Config
from phenomena.studies.powerlaw_rehearsal.stream import acc_bwt_fwt, run_environment

#: environment -> (config field, values tried)
GRID: dict[str, tuple[str, tuple[float, ...]]] = {
    "ewc": ("ewc_lambda", (1.0, 10.0, 100.0, 1000.0)),
    "online_ewc": ("online_ewc_lambda", (10.0, 100.0, 1000.0)),
    "si": ("si_c", (0.1, 1.0, 10.0, 100.0)),
}


def calibrate(
    cfg: Config, seed: int = 0, grid: dict[str, tuple[str, tuple[float, ...]]] = GRID
) -> pd.DataFrame:
    """One row per (environment, value): ACC, BWT and FWT of that regulariser on the stream of ``cfg``."""
    rows = []
    for env, (name, values) in grid.items():
        for value in tqdm(values, desc=env):
            r = run_environment(cfg.replace(**{name: value}), env, seed, torch.device("cpu"))
            rows.append({"env": env, "param": name, "value": value, **acc_bwt_fwt(r.R, r.b)})
    return pd.DataFrame(rows)


def best_values(table: pd.DataFrame) -> dict[str, float]:
    """The value of each parameter with the highest ACC."""
    return {param: float(g.loc[g["ACC"].idxmax(), "value"]) for param, g in table.groupby("param")}


def main() -> int:
    torch.set_num_threads(1)
    cfg, seed = Config.from_preset("full"), 0
    table = calibrate(cfg, seed)
    record: dict[str, Any] = {
        "preset": "full",
        "seed": seed,
        "grid": {k: list(v[1]) for k, v in GRID.items()},
        "table": table.to_dict(orient="records"),
        "best": best_values(table),
    }
    path = write_json(output_root() / "data" / "calibration" / "powerlaw_rehearsal.json", record)
    print(table.round(3).to_string(index=False))
    print(f"best: {record['best']} -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
