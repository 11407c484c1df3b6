"""The registry of studies: notebook name -> library module and display title (used by the README and benchmarks)."""

from __future__ import annotations

from typing import NamedTuple


class Study(NamedTuple):
    module: str
    title: str


STUDIES: dict[str, Study] = {
    "icl_linear_regression": Study("icl", "In-context linear regression"),
    "induction_heads": Study("induction", "Induction heads"),
    "lora_intruder_dimensions": Study("lora", "LoRA intruder dimensions"),
    "powerlaw_rehearsal": Study("rehearsal", "Power-law rehearsal"),
}
