"""In-context learning of linear regression (Garg et al. 2022; Akyürek et al. 2022; Raventós et al. 2023).

A transformer trained only on prompts (x_1, w.x_1, ..., x_n, w.x_n) with a fresh w in every prompt learns to *do*
linear regression in context: its normalised error at each number of examples k tracks least squares (Garg Fig. 2),
its predictions are closest to least squares / ridge among known learners (Akyürek et al.'s SPD), and with a finite
pool of M pretraining tasks it behaves like the Bayes predictor of the pool (dMMSE) at small M and like ridge past a
threshold (Raventós et al.).

Modules, in the order of the paper: ``config`` (the knobs), ``data`` (prompts, task pools, OOD queries),
``learners`` (the model's read-in/read-out and every baseline incl. dMMSE), ``metrics`` (Garg's error, SPD),
``training``, ``experiment`` (``compute``), ``summary`` (``summarize``: what a run stores), ``measures`` (the named
numbers the claims read), ``claims.toml`` (the rows, as data), ``story`` (departures and comparison prose).
"""

from pathlib import Path

from phenomena.claims import ClaimTable
from phenomena.studies.icl_linear_regression.config import Config
from phenomena.studies.icl_linear_regression.experiment import Results, compute
from phenomena.studies.icl_linear_regression.measures import MEASURES
from phenomena.studies.icl_linear_regression.seeds import seed_figure
from phenomena.studies.icl_linear_regression.story import comparison, departures
from phenomena.studies.icl_linear_regression.summary import summarize

#: the claims, judged: ``claims(cfg, metrics) -> list[Claim]`` (rows in claims.toml, measures in measures.py)
claims = ClaimTable.load(Path(__file__).with_name("claims.toml"), MEASURES)

TITLE = "In-context linear regression"
#: the figure the README shows for this study, and one sentence of what the study shows
HEADLINE_FIGURE = "error_vs_k"
SUMMARY = "Whether a transformer trained only on regression prompts learns regression in context: its error against the number of examples k beside least squares, ridge and one GD step (Garg; Akyürek), and how task diversity moves it from the pool's Bayes predictor to ridge (Raventós)."
#: the rows the README's one-liner is generated from (row id -> what it says), in the order of the story
HEADLINES = {
    "err_at_k_eq_2d": "error falls with the number of examples k",
    "tracks_ols_below_d": "tracks least squares below k = d",
    "sharp_drop_at_k_eq_d": "a sharp drop at k = d",
    "spd_to_least_squares_tiny": "predictions within Akyürek's SPD 0.01 of least squares",
    "small_pool_follows_dmmse": "a small task pool gives the pool's Bayes predictor",
    "infinite_pool_reaches_ridge": "an unbounded pool matches ridge",
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
