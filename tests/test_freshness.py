"""Freshness: every committed output was produced by the current source, config and pins, and its claims are what
the current claims code makes of its own metrics.

- ``data/results/<study>.json`` (seed 0, the default quick tier) and every per-seed
  ``data/sweeps/<study>/full/seed-<n>/results.json`` (the full tier):
  the study's source hash is the current one, the config is the preset's, the package versions are the pinned
  ones, and ``claims(cfg, metrics)`` re-run on the stored metrics gives the stored rows (value, outcome, kind,
  expectation, threshold);
- every figure sidecar ``figures/<study>/*.json``: its tier's config at seed 0 (quick, or full for a panel the quick
  tier does not run) and the pinned versions.

``make figures`` / ``make sweep`` regenerate what these tests find stale.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from phenomena import studies
from phenomena.run import study_source_hash

REPO = Path(__file__).resolve().parents[1]
PINS = {
    m.group(1).lower(): m.group(2)
    for m in re.finditer(r"^([A-Za-z0-9_.-]+)==([^\s#]+)", (REPO / "requirements.txt").read_text(), re.M)
}


def _versions_problems(versions: dict[str, str], where: str) -> list[str]:
    out = []
    for name, version in versions.items():
        pin = PINS.get(name.lower())
        if pin is not None and version.split("+")[0] != pin:
            out.append(f"{where}: {name} {version} but requirements.txt pins {pin}")
    return out


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float | int):
        return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9, abs=1e-12)
    if isinstance(b, float) and math.isnan(b):
        return a is None
    return a == b


def record_problems(study: str, path: Path, seed: int, preset: str = "quick") -> list[str]:
    """Why the results record at ``path`` is not what the current code would write (empty: it is)."""
    module = studies.load(study)
    rec = json.loads(path.read_text())
    where = str(path.relative_to(REPO))
    out = []
    if rec.get("source_hash") != study_source_hash(study):
        out.append(f"{where}: made by other source (source_hash differs): rerun it")
    cfg = module.Config.from_preset(preset, seed=seed)
    if rec.get("config") != json.loads(json.dumps(cfg.to_dict())):
        out.append(f"{where}: config differs from the {preset} preset at seed {seed}")
    out += _versions_problems(rec.get("versions", {}), where)
    stored = {c["id"]: c for c in rec["claims"]}
    registered = {cid: c.get("registered") for cid, c in stored.items()}
    rows = {c.id: c.record() for c in module.claims(cfg, rec["metrics"], registered)}
    if rows.keys() != stored.keys():
        out.append(f"{where}: rows {sorted(stored)} but the claims code gives {sorted(rows)}")
        return out
    for cid, new in rows.items():
        for key in ("ours", "outcome", "kind", "expect", "threshold", "spec_hash", "post_hoc"):
            if not _same(stored[cid][key], new[key]):
                out.append(
                    f"{where}: {cid}.{key} is {stored[cid][key]!r}; the claims code gives {new[key]!r}"
                )
    return out


@pytest.mark.parametrize("study", studies.names())
def test_committed_results_are_fresh(study: str) -> None:
    found = record_problems(study, REPO / "data" / "results" / f"{study}.json", 0)
    assert not found, "\n".join(found)


@pytest.mark.parametrize("study", studies.names())
def test_committed_sweep_seeds_are_fresh(study: str) -> None:
    seeds = sorted((REPO / "data" / "sweeps" / study / "full").glob("seed-*/results.json"))
    assert seeds, f"no committed full-tier sweep for {study}"
    population = studies.load(study).claims.population
    committed = sorted(int(path.parent.name.split("-")[1]) for path in seeds)
    assert committed == population.seed_list(), (
        f"data/sweeps/{study}/full holds seeds {committed}, but the study registers {population.seeds!r} "
        "([population] of its claims.toml): the committed sweep judges every row over exactly those"
    )
    found = [
        p for path in seeds for p in record_problems(study, path, int(path.parent.name.split("-")[1]), "full")
    ]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("study", studies.names())
def test_figure_sidecars_are_fresh(study: str) -> None:
    """Every figure is the seed-0 run's of a tier: the default (quick) tier's, or, for a panel the default tier does
    not run, the full tier's; its sidecar holds exactly that tier's config and the pinned versions."""
    config = studies.load(study).Config
    sidecars = [
        p for p in sorted((REPO / "figures" / study).glob("*.json")) if not p.stem.startswith("seeds_")
    ]
    assert sidecars, f"no figures for {study}"
    found = []
    for path in sidecars:
        side = json.loads(path.read_text())
        tier = side.get("preset")
        if tier not in ("quick", "full"):
            found.append(
                f"{path.name}: made at preset {tier!r}, neither the default (quick) nor the full tier"
            )
            continue
        if side.get("config") != json.loads(json.dumps(config.from_preset(tier, seed=0).to_dict())):
            found.append(f"{path.name}: config differs from the {tier} preset at seed 0")
        found += _versions_problems(side.get("versions", {}), path.name)
    assert sum(json.loads(p.read_text()).get("preset") == "quick" for p in sidecars), (
        "no figure of the default tier"
    )
    assert not found, "\n".join(found)


def test_the_freshness_check_catches_a_changed_claim() -> None:
    """A stored row whose value or expectation the claims code would not give is reported (the record is first made
    what the current claims code writes for its metrics, so the test does not depend on the committed state)."""
    study = "powerlaw_rehearsal"
    module = studies.load(study)
    rec = json.loads((REPO / "data" / "results" / f"{study}.json").read_text())
    cfg = module.Config.from_preset("quick", seed=0)
    rec["config"] = json.loads(json.dumps(cfg.to_dict()))
    rec["source_hash"] = study_source_hash(study)
    rec["claims"] = [c.record() for c in module.claims(cfg, rec["metrics"])]
    rec["claims"][0]["ours"] = 123.0
    rec["claims"][1]["expect"] = "fails" if rec["claims"][1]["expect"] != "fails" else "holds"
    path = REPO / "build" / "freshness-probe.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(rec))
    try:
        found = record_problems(study, path, 0)
    finally:
        path.unlink()
    assert any(".ours is 123.0" in f for f in found) and any(".expect is" in f for f in found), found
    assert not any("source_hash" in f or "config differs" in f for f in found), found
