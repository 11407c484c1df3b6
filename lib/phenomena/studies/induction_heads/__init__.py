"""Induction heads form abruptly, and they do the in-context copying (Elhage et al. 2021; Olsson et al. 2022;
Reddy 2023).

An induction head, at a token A, attends to the token B that *followed* an earlier occurrence of A (prefix matching)
and raises B's logit (copying). In a 2-layer attention-only model it is built by K-composition: a layer-0
previous-token head writes "my previous token was A" into position j + 1, and the layer-1 head's key reads it. A
1-layer attention-only model cannot form one. Olsson et al.: the heads form in a short phase change, with the loss
drop and the ICL score; ablating them removes most in-context learning. Reddy: the same abrupt formation in an
in-context classification task, and burstiness decides between in-context and in-weights learning.

Modules: ``config``, ``copy_task`` (data and probes), ``scores`` (induction / previous-token / ICL scores, transition
steps), ``training`` (the copy models, head table, ablations), ``reddy`` (the classification task), ``experiment``
(``compute``), ``summary`` (``summarize``: what a run stores), ``measures`` (the named numbers the claims read),
``claims.toml`` (the rows, as data), ``story`` (departures and comparison prose), ``plots`` (the notebook's
panels that a tier may switch off).
"""

from pathlib import Path

from phenomena.claims import ClaimTable
from phenomena.studies.induction_heads.config import Config
from phenomena.studies.induction_heads.experiment import Results, compute, prefill
from phenomena.studies.induction_heads.measures import MEASURES
from phenomena.studies.induction_heads.seeds import seed_figure
from phenomena.studies.induction_heads.story import comparison, departures
from phenomena.studies.induction_heads.summary import summarize

#: the claims, judged: ``claims(cfg, metrics) -> list[Claim]`` (rows in claims.toml, measures in measures.py)
claims = ClaimTable.load(Path(__file__).with_name("claims.toml"), MEASURES)

TITLE = "Induction heads"
#: the figure the README shows for this study, and one sentence of what the study shows
HEADLINE_FIGURE = "phase_change"
SUMMARY = "Whether a 2-layer attention-only model forms a previous-token head and an induction head abruptly, with the loss drop, and whether ablations and a 1-layer control show the circuit is what copies (Olsson); and whether Reddy's bursty classification task makes in-context learning depend on the data."
#: the rows the README's one-liner is generated from (row id -> what it says), in the order of the story
HEADLINES = {
    "induction_head_forms": "an induction head forms",
    "previous_token_head_forms": "a previous-token head forms",
    "abrupt_loss_drop": "the loss drops abruptly",
    "heads_form_with_loss_drop": "the heads form with the loss drop",
    "one_layer_no_induction_head": "a 1-layer model forms none",
    "ablate_all_induction_heads": "ablating the induction heads removes copying",
    "other_heads_matter_little": "the other heads matter little",
    "reddy_burstiness_favours_icl": "bursty data favours in-context learning",
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
    "prefill",
    "seed_figure",
    "summarize",
]
