"""In-context learning of linear regression (Garg et al. 2022; Akyürek et al. 2022; Raventós et al. 2023).

A transformer trained only on prompts (x_1, w.x_1, ..., x_n, w.x_n) with a fresh w in every prompt learns to *do*
linear regression in context: its normalised error at each number of examples k tracks least squares (Garg Fig. 2),
its predictions are closest to least squares / ridge among known learners (Akyürek et al.'s SPD), and with a finite
pool of M pretraining tasks it behaves like the Bayes predictor of the pool (dMMSE) at small M and like ridge past a
threshold (Raventós et al.).

Modules, in the order of the paper: ``config`` (the knobs), ``data`` (prompts, task pools, OOD queries),
``learners`` (the model's read-in/read-out and every baseline incl. dMMSE), ``metrics`` (Garg's error, SPD),
``training``, ``experiment`` (``compute``), ``claims`` (``summarize``, ``claims``, ``THRESHOLDS``).
"""

from phenomena.studies.icl_linear_regression.claims import (
    THRESHOLDS,
    claims,
    comparison,
    departures,
    summarize,
)
from phenomena.studies.icl_linear_regression.config import Config
from phenomena.studies.icl_linear_regression.experiment import Results, compute
from phenomena.studies.icl_linear_regression.seeds import seed_figure

TITLE = "In-context linear regression"
#: the figure the README shows for this study, and one sentence of what the study shows
HEADLINE_FIGURE = "error_vs_k"
SUMMARY = "A transformer trained only on regression prompts does least squares in context: its error falls with the number of examples k, closest to least squares / ridge (Garg; Akyürek), and task diversity moves it from the pool's Bayes predictor to ridge (Raventós)."

__all__ = [
    "HEADLINE_FIGURE",
    "SUMMARY",
    "THRESHOLDS",
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
