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
data), ``story`` (departures and comparison prose), ``plots`` (the panels a tier may switch off); ``calibration``
(the regularisers' grid).
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
SUMMARY = "Whether rehearsing old permuted-MNIST tasks on a power-law schedule removes catastrophic interference, against no rehearsal, EWC / SI and other rehearsal schedules at the same budget (Gandhi et al.)."
#: the rows the README's one-liner is generated from (row id -> what it says), in the order of the story
HEADLINES = {
    "interference_acc": "sequential training interferes",
    "powerlaw_vs_none": "power-law rehearsal beats no rehearsal",
    "powerlaw_vs_regularisers": "it beats EWC / SI",
    "recency_comparable_to_best_schedule": "the paper's recency environment is comparable to the best other schedule",
    "recency_superior_to_best_schedule": "and superior to it",
    "forward_facilitation": "later tasks are learned faster",
}

__all__ = [
    "HEADLINES",
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
