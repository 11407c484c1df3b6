from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import pytest

from phenomena.config import StudyConfig, field


@dataclass(frozen=True)
class Toy(StudyConfig):
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {"steps": 2},
        "quick": {},
        "paper": {"steps": 99},
    }
    steps: int = field(10, positive=True)
    lr: float = field(1e-3, positive=True)
    eps: float = field(0.5, gt=0.0, le=1.0)
    sizes: tuple[int, ...] = field((1, 2), ge=0)
    kind: Literal["a", "b"] = "a"
    path: str | None = None


def test_presets_apply_and_overrides_win() -> None:
    assert Toy.from_preset("smoke").steps == 2
    assert Toy.from_preset("paper", steps=5).steps == 5
    assert Toy.from_preset("quick", seed=3).seed == 3


def test_int_becomes_float_and_list_becomes_tuple() -> None:
    cfg = Toy.from_preset("quick", lr=1, sizes=[3, 4])
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float)
    assert cfg.sizes == (3, 4)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"stpes": 3}, r"unknown config key\(s\) \['stpes'\].*allowed keys"),
        ({"steps": 0}, r"steps=0 is out of range: must be > 0"),
        ({"steps": -5}, r"steps=-5"),
        ({"steps": 2.5}, r"steps=2.5 has the wrong type: expected int"),
        ({"steps": True}, r"steps=True has the wrong type"),
        ({"lr": "fast"}, r"lr='fast' has the wrong type: expected float"),
        ({"eps": 1.5}, r"eps=1.5 is out of range: must be <= 1"),
        ({"eps": 0.0}, r"eps=0.0 is out of range: must be > 0"),
        ({"sizes": [1, -1]}, r"sizes\[1\]=-1 is out of range"),
        ({"kind": "c"}, r"kind='c' is not allowed: expected one of 'a', 'b'"),
        ({"path": 3}, r"path=3 has the wrong type: expected str or None"),
        ({"seed": -1}, r"seed=-1 is out of range"),
    ],
)
def test_bad_values_name_the_field(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Toy.from_preset("quick", **kwargs)


def test_unknown_preset_lists_the_allowed_ones() -> None:
    with pytest.raises(
        ValueError, match=r"preset='huge' is not allowed: expected one of \['paper', 'quick', 'smoke'\]"
    ):
        Toy.from_preset("huge")


def test_replace_validates_and_to_dict_roundtrips() -> None:
    cfg = Toy.from_preset("quick")
    with pytest.raises(ValueError, match="steps"):
        cfg.replace(steps=0)
    assert Toy(**cfg.to_dict()) == cfg
    assert "steps: int = 10" in Toy.describe()


def test_mutable_defaults_are_refused() -> None:
    with pytest.raises(TypeError, match="tuples"):
        field([1, 2])
