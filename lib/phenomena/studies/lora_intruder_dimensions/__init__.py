"""LoRA vs full fine-tuning: intruder dimensions (Shuttleworth, Andreas, Torralba & Sharma 2024, "LoRA vs Full
Fine-tuning: An Illusion of Equivalence", arXiv 2410.21228).

At matched target accuracy, LoRA and full fine-tuning change a pre-trained model differently: the merged LoRA
matrices W = W0 + (alpha / r) B A contain **intruder dimensions** -- high-ranking singular vectors of W dissimilar to
every singular vector of W0 -- while fully fine-tuned matrices have (almost) none. More intruders go with more
forgetting of the pre-training distribution, and scaling the top intruder's singular value down reduces forgetting
at little cost in target accuracy.

Modules: ``config`` (runs and their learning rates), ``data`` (the task and the forgetting probe's text), ``model``
(the encoder and classifier), ``finetune`` (full FT, peft LoRA, head only), ``evaluate`` (accuracy and forgetting),
``intruders`` (Definition 3.1 and the intervention), ``experiment`` (``compute``), ``summary`` (``summarize``: what a
run stores), ``measures`` (the named numbers the claims read), ``templates`` (the lists and reasons their statements
and notes show), ``claims.toml`` (the rows, as data), ``story`` (departures and comparison prose).
"""

from pathlib import Path
from typing import Any

from phenomena.claims import ClaimTable
from phenomena.studies.lora_intruder_dimensions import templates  # noqa: F401  (registers the labels)
from phenomena.studies.lora_intruder_dimensions.config import Config
from phenomena.studies.lora_intruder_dimensions.experiment import Results, compute
from phenomena.studies.lora_intruder_dimensions.measures import MEASURES
from phenomena.studies.lora_intruder_dimensions.story import comparison, departures, over_seeds
from phenomena.studies.lora_intruder_dimensions.summary import summarize

#: the claims, judged: ``claims(cfg, metrics) -> list[Claim]`` (rows in claims.toml, measures in measures.py)
claims = ClaimTable.load(Path(__file__).with_name("claims.toml"), MEASURES)

TITLE = "LoRA intruder dimensions"
#: the figure the README shows for this study, and one sentence of what the study shows
HEADLINE_FIGURE = "intruders_vs_epsilon_and_rank"
SUMMARY = "Whether LoRA on MiniLM, at the paper's learning-rate rule and 5 epochs, adds 'intruder' singular vectors unlike any pre-trained one while full fine-tuning at matched accuracy adds none, tested against a random update of the same size and spectrum, full fine-tuning with an update of LoRA's size, a matched-norm edit and over ranks, and whether intruders go with forgetting (Shuttleworth et al.)."
#: the rows the README's one-liner is generated from (row id -> what it says), in the order of the story
HEADLINES = {
    "lora_has_intruders": "LoRA r = 1 adds intruder dimensions at the paper's rule",
    "full_ft_no_intruders": "full fine-tuning at matched accuracy adds none",
    "lora_more_intruders_than_full": "LoRA at every rank adds more than full fine-tuning",
    "lora_as_foreign_as_random": "LoRA's new directions are as foreign to W0 as a random update's",
    "lora_more_intruders_than_full_at_matched_size": "LoRA adds more than full fine-tuning with an update of the same size",
    "intruders_beyond_update_size": "intruders go with forgetting beyond the update's size",
    "lora_forgets_less_than_full": "LoRA forgets less than full fine-tuning at the paper's learning rates",
    "lora_forgets_less_at_matched_size": "LoRA forgets less than full fine-tuning with an update of the same size",
    "scaling_down_reduces_forgetting": "scaling the top intruder down reduces forgetting",
}


def __getattr__(name: str) -> Any:
    """``seed_figure`` loads on first use: it needs matplotlib and seaborn (~90 MB), which a worker process that
    only trains (it imports this package to unpickle its job) never does (issue 32: memory)."""
    if name == "seed_figure":
        from phenomena.studies.lora_intruder_dimensions.seeds import seed_figure

        return seed_figure
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    "over_seeds",
    "seed_figure",
    "summarize",
]
