"""LoRA vs full fine-tuning: intruder dimensions (Shuttleworth, Andreas, Torralba & Sharma 2024, "LoRA vs Full
Fine-tuning: An Illusion of Equivalence", arXiv 2410.21228).

At matched target accuracy, LoRA and full fine-tuning change a pre-trained model differently: the merged LoRA
matrices W = W0 + (alpha / r) B A contain **intruder dimensions** -- high-ranking singular vectors of W dissimilar to
every singular vector of W0 -- while fully fine-tuned matrices have (almost) none. More intruders go with more
forgetting of the pre-training distribution, and scaling the top intruder's singular value down reduces forgetting
at little cost in target accuracy.

Modules: ``config`` (runs and their learning rates), ``data`` (the task and the forgetting probe's text), ``model``
(the encoder and classifier), ``finetune`` (full FT, peft LoRA, head only), ``evaluate`` (accuracy and forgetting),
``intruders`` (Definition 3.1 and the intervention), ``experiment`` (``compute``), ``claims``.
"""

from phenomena.studies.lora_intruder_dimensions.claims import (
    THRESHOLDS,
    claims,
    comparison,
    departures,
    summarize,
)
from phenomena.studies.lora_intruder_dimensions.config import Config
from phenomena.studies.lora_intruder_dimensions.experiment import Results, compute
from phenomena.studies.lora_intruder_dimensions.seeds import seed_figure

TITLE = "LoRA intruder dimensions"
#: the figure the README shows for this study, and one sentence of what the study shows
HEADLINE_FIGURE = "intruders_vs_epsilon_and_rank"
SUMMARY = "At the paper's learning-rate rule and 5 epochs, LoRA on MiniLM adds 'intruder' singular vectors unlike any pre-trained one and full fine-tuning at matched accuracy adds none; tested against the update's size, a matched-norm edit and over ranks (Shuttleworth et al.)."

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
