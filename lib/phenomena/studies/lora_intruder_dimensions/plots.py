"""The LoRA notebook's figure helpers: which panels a configuration has the runs for, and the note a panel shows in
their place when its tier does not run them (the quick tier trains full FT and LoRA r = 1 at the paper's rule only;
``preset="full"`` runs every panel). Nothing here computes a stored number."""

from __future__ import annotations

from phenomena.figures import NOT_RUN, not_run, not_run_on  # noqa: F401 (the notebook calls plots.not_run)
from phenomena.studies.lora_intruder_dimensions.config import Config


def has_ranks(cfg: Config) -> bool:
    """Whether the paper's rule is run at more than one rank (the intruders-vs-rank panel)."""
    return len(cfg.ranks) > 1


def has_lr_sweep(cfg: Config) -> bool:
    """Whether the headline rank is run at more than the rule's own lr (the intruders-vs-lr panel)."""
    return len(cfg.families()["lr sweep"]) > 1


def has_forgetting_panel(cfg: Config) -> bool:
    """Whether there are several LoRA runs to set intruders against forgetting (Fig. 7's panels)."""
    return len(cfg.lora_runs()) > 1


def has_sequence(cfg: Config) -> bool:
    """Whether the sequential panel (Fig. 9) is run."""
    return bool(cfg.seq_tasks)


def rule_text(cfg: Config) -> str:
    """Where the LoRA runs' learning rate sits: "at the paper's rule", or its multiple of it (the quick tier)."""
    from phenomena.studies.lora_intruder_dimensions.story import PAPER_LR_ALPHA

    factor = cfg.lr_alpha_product / PAPER_LR_ALPHA
    return "at the paper's rule" if factor == 1 else f"at {factor:.2g}x the paper's rule"
