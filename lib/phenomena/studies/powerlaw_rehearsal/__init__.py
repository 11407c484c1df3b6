"""Power-law rehearsal against catastrophic interference (Gandhi, Shah, Marupudi & Varma 2024, arXiv 2401.10393).

Claim (v1 abstract): in a domain-incremental permuted-MNIST stream, rehearsing each earlier task with a frequency
that falls as a **power law of the time since it was learned** -- as the need-probability of memories does in
natural environments (Anderson & Schooler 1991) -- mitigates catastrophic interference, performing comparably or
better than regularisation methods (EWC, SI) and than rehearsal on other schedules, with forward facilitation and
robustness to the number of tasks, model size and the amount rehearsed.

Modules: ``config``, ``data`` (permuted tasks), ``schedules`` (environments as sample-count matrices),
``regularisers`` (EWC, online EWC, SI as training-loop hooks), ``stream`` (the phase loop, ACC/BWT/FWT),
``experiment`` (``compute``), ``summary`` (``summarize``: what a run stores), ``measures`` (the named numbers the
claims read) with ``readouts`` (each row's resolution and what its statement names), ``claims.toml`` (the rows, as
data), ``story`` (departures and comparison prose); ``calibration`` (the regularisers' grid).
"""

from pathlib import Path

from phenomena.claims import ClaimTable
from phenomena.studies.powerlaw_rehearsal.config import Config
from phenomena.studies.powerlaw_rehearsal.experiment import Results, compute
from phenomena.studies.powerlaw_rehearsal.readouts import MEASURES  # the row measures, with the readouts
from phenomena.studies.powerlaw_rehearsal.seeds import seed_figure
from phenomena.studies.powerlaw_rehearsal.story import comparison, departures
from phenomena.studies.powerlaw_rehearsal.summary import summarize

#: the claims, judged: ``claims(cfg, metrics) -> list[Claim]`` (rows in claims.toml, measures in measures.py)
claims = ClaimTable.load(Path(__file__).with_name("claims.toml"), MEASURES)

TITLE = "Power-law rehearsal"
#: the figure the README shows for this study, and one sentence of what the study shows
HEADLINE_FIGURE = "main_comparison"
SUMMARY = "Permuted-MNIST tasks in sequence: rehearsing old tasks on a power-law schedule removes most catastrophic interference, against no rehearsal, EWC / SI and other schedules at the same budget (Gandhi et al.)."

__all__ = [
    "HEADLINE_FIGURE",
    "SUMMARY",
    "TITLE",
    "Config",
    "Results",
    "claims",
    "comparison",
    "compute",
    "departures",
    "seed_figure",
    "summarize",
]
