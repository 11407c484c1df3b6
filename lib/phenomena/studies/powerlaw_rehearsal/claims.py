"""The paper's claims as checkable numbers: ``summarize(cfg, results) -> metrics``, ``claims(cfg, metrics)``,
``departures(cfg, metrics)`` and the thresholds they use, with the evidence each was set from."""

from __future__ import annotations

from typing import Any

from phenomena.claims import Claim, Threshold
from phenomena.studies.powerlaw_rehearsal.config import Config
from phenomena.studies.powerlaw_rehearsal.experiment import Results, facilitation, learning_speed

# The paper reports "comparable or superior" without tables we could recover offline. The margins come from the
# pilot in the study notes (seeded quick runs: none 0.694, EWC 0.752, SI 0.758, power law 0.911, uniform 0.919,
# 3 seeds), set before this notebook's runs; they are the same at every preset but smoke.
_PILOT = "study notes' CPU pilot (3 seeds, before this notebook)"
_SMOKE = "smoke: wiring only, not enforced"
_QUICK = {
    "none_acc": Threshold(0.80, _PILOT),
    "none_bwt": Threshold(-0.10, _PILOT),
    "vs_none": Threshold(0.12, _PILOT),
    "bwt_small": Threshold(0.05, _PILOT),
    "vs_reg": Threshold(0.05, _PILOT),
    "vs_uniform": Threshold(0.04, _PILOT),
    "ff": Threshold(0.05, "set with seeds 0-1 in view (earlier session)"),
    "joint": Threshold(-0.01, "earlier session"),
}
THRESHOLDS: dict[str, dict[str, Threshold]] = {
    "smoke": {k: Threshold(t.value, _SMOKE) for k, t in _QUICK.items()},
    "quick": _QUICK,
    "paper": _QUICK,
}


def summarize(cfg: Config, results: Results) -> dict[str, Any]:
    """JSON-ready metrics: per-environment means and standard deviations over seeds, the exponent sweep, the
    robustness panels, learning speeds and facilitation slopes."""
    envs = list(cfg.environments)
    means = results.by_env.xs("mean", axis=1, level=1)
    stds = results.by_env.xs("std", axis=1, level=1).fillna(0)
    sweep = results.sweep.groupby("exponent")["ACC"].mean()
    return {
        "by_env": {env: {k: float(v) for k, v in row.items()} for env, row in means.iterrows()},
        "by_env_std": {env: {k: float(v) for k, v in row.items()} for env, row in stds.iterrows()},
        "exponent_sweep": sweep.to_dict(),
        "robustness": results.robust.to_dict(orient="records"),
        "best_exponent": float(sweep.idxmax()),
        "facilitation_slope": facilitation(results, envs),
        "learning_speed": learning_speed(results, envs),
        "data": results.runs[0].extra.get("source", ""),
    }


def claims(cfg: Config, m: dict[str, Any]) -> list[Claim]:
    """The paper's claims as numbers from the per-environment means (thresholds in ``THRESHOLDS``)."""
    th = THRESHOLDS[cfg.preset]
    acc = {env: row["ACC"] for env, row in m["by_env"].items()}
    bwt = {env: row["BWT"] for env, row in m["by_env"].items()}
    speed = m["learning_speed"]
    rows = [
        Claim.below(
            id="interference_acc",
            statement="no rehearsal: ACC",
            paper="catastrophic interference (sequential)",
            ours=acc["none"],
            bound=th["none_acc"],
        ),
        Claim.below(
            id="interference_bwt",
            statement="no rehearsal: BWT",
            paper="large forgetting",
            ours=bwt["none"],
            bound=th["none_bwt"],
        ),
        Claim.above(
            id="powerlaw_vs_none",
            statement="ACC(power-law) - ACC(none)",
            paper="mitigates interference",
            ours=acc["powerlaw"] - acc["none"],
            bound=th["vs_none"],
        ),
        Claim.below(
            id="powerlaw_bwt_small",
            statement="|BWT(power-law)|",
            paper="little forgetting",
            ours=abs(bwt["powerlaw"]),
            bound=th["bwt_small"],
        ),
    ]
    regs = [e for e in ("ewc", "online_ewc", "si") if e in acc]
    if regs:
        best = max(regs, key=lambda e: acc[e])
        rows.append(
            Claim.above(
                id="powerlaw_vs_regularisers",
                statement=f"ACC(power-law) - ACC(best regulariser = {best})",
                paper="comparable or superior to EWC / SI",
                ours=acc["powerlaw"] - acc[best],
                bound=th["vs_reg"],
            )
        )
    if "uniform" in acc:
        rows.append(
            Claim.below(
                id="powerlaw_vs_uniform",
                statement="|ACC(power-law) - ACC(uniform)| at matched budget",
                paper="comparable or superior to other rehearsal",
                ours=abs(acc["powerlaw"] - acc["uniform"]),
                bound=th["vs_uniform"],
            )
        )
    rows.append(
        Claim.above(
            id="forward_facilitation",
            statement="new-task accuracy after ff_examples examples, t >= 1: power-law - none",
            paper="forward facilitation (faster learning of later tasks)",
            ours=speed["powerlaw"] - speed["none"],
            bound=th["ff"],
        )
    )
    if "joint" in acc:
        rows.append(
            Claim.above(
                id="joint_upper_bound",
                statement="ACC(joint) - ACC(power-law)",
                paper="joint training is the bound",
                ours=acc["joint"] - acc["powerlaw"],
                bound=th["joint"],
            )
        )
    return rows


def departures(cfg: Config, m: dict[str, Any]) -> list[str]:
    """Declared departures from the paper's setup, with our numbers."""
    return []
