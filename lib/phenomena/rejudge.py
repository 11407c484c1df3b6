"""Re-judge stored results when only the claims changed: ``python -m phenomena.rejudge [--study all]``.

A results record (``data/results/<study>.json``, every per-seed ``data/sweeps/<study>/<tag>/seed-<n>/results.json``)
stores the metrics its claims were judged on and ``metrics_hash``, the hash of the code those metrics depend on
(:func:`phenomena.run.study_metrics_hash`: the computation and ``summarize``, not the claims). When that hash is still
current, the record's rows are judged anew from its own metrics by the current claims table -- seconds instead of a
re-run -- and it is stamped with the current ``source_hash`` and a ``rejudged`` date. Each row keeps the
registration its run was started under, so a row whose spec changed since is shown post hoc
(:func:`phenomena.claims.is_post_hoc`) until a run started under the new spec judges it. A record whose metrics are stale is left alone and listed:
it must be re-run (``make sweep`` / ``make figures``). The sweeps' summaries are then re-aggregated.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path
from typing import Any

from phenomena import studies
from phenomena.aggregate import aggregate
from phenomena.claims import with_sweep_verdicts
from phenomena.paths import repo_root, write_json
from phenomena.run import study_metrics_hash, study_source_hash


def rejudge_record(path: Path) -> str:
    """Rewrite the claims of the record at ``path`` from its metrics if they are current; return what happened:
    ``current`` (nothing to do), ``rejudged`` or ``stale: <why>`` (left alone)."""
    record: dict[str, Any] = json.loads(path.read_text())
    study = studies.load(record["study"])
    if record.get("source_hash") == study_source_hash(record["study"]):
        return "current"
    if record.get("metrics_hash") is None or record["metrics_hash"] != study_metrics_hash(record["study"]):
        return "stale: its metrics were computed by other code; re-run it"
    config = dict(record["config"])
    preset = config.pop("preset")
    cfg = study.Config.from_preset(preset, **config)
    if json.loads(json.dumps(cfg.to_dict())) != record["config"]:
        return "stale: its config no longer builds as recorded; re-run it"
    metrics = record["metrics"]
    registered = {row["id"]: row.get("registered") for row in record["claims"]}
    record["claims"] = with_sweep_verdicts(
        [c.record() for c in study.claims(cfg, metrics, registered)], record["study"]
    )
    record["departures"] = list(study.departures(cfg, metrics))
    record["source_hash"] = study_source_hash(record["study"])
    record["rejudged"] = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    write_json(path, record)
    return "rejudged"


def records(root: Path, study: str) -> list[Path]:
    """Every stored results record of ``study`` under ``root``: the seed-0 results and every sweep seed."""
    seed0 = root / "data" / "results" / f"{study}.json"
    return ([seed0] if seed0.exists() else []) + sorted(
        (root / "data" / "sweeps" / study).glob("*/seed-*/results.json")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m phenomena.rejudge", description=__doc__.split("\n")[0])
    parser.add_argument("--study", default="all", help="all, or study names separated by commas")
    parser.add_argument("--root", type=Path, default=None, help="repository root (default: this checkout)")
    args = parser.parse_args(argv)
    root = args.root or repo_root()
    names = studies.names() if args.study == "all" else tuple(args.study.split(","))
    stale = 0
    for name in names:
        tags = set()
        for path in records(root, name):
            what = rejudge_record(path)
            stale += what.startswith("stale")
            print(f"{path.relative_to(root)}: {what}")
            if path.parent.name.startswith("seed-") and what == "rejudged":
                tags.add(path.parent.parent.name)
        for tag in sorted(tags):
            if tag in studies.load(name).Config.PRESETS:
                print(f"aggregated {aggregate(root, name, tag)}")
            else:  # a sweep with overrides: its tag carries their hash
                print(f"{name}/{tag}: re-aggregate it with `python -m phenomena aggregate --set ...`")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
