"""Typed study configurations with named presets and validated overrides.

Every study defines a frozen dataclass that subclasses :class:`StudyConfig` and a ``PRESETS`` table
(``smoke`` | ``quick`` | ``gpu`` | ``paper``; ``gpu`` sits between quick and paper, sized for <= 2 min on one
modern GPU) of field overrides. ``Config.from_preset(preset, seed=..., **overrides)``
builds one and validates it: an unknown preset or key, a value of the wrong type, or a value outside the field's
allowed range raises ``ValueError`` naming the field and what is allowed. (papermill only *warns* about unknown
parameters, so this check is what catches a typo such as ``-y "overrides: {stpes: 10}"``.)

Field constraints are declared next to the field with :func:`field`::

    @dataclass(frozen=True)
    class Config(StudyConfig):
        d: int = field(5, positive=True, doc="input dimension")
        noise: float = field(0.0, ge=0.0, doc="label noise std")
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self, get_args, get_origin

#: smoke: seconds, wiring only; quick: the default, each paper's headline in minutes on a laptop; full: every claim
#: row (the committed 5-seed sweep's tier); gpu / paper: the paper's scale on one GPU
PRESET_NAMES = ("smoke", "quick", "full", "gpu", "paper")


def field(
    default: Any,
    *,
    positive: bool = False,
    ge: float | None = None,
    le: float | None = None,
    gt: float | None = None,
    lt: float | None = None,
    doc: str = "",
) -> Any:
    """A dataclass field with bounds checked by :meth:`StudyConfig.validate` (applied element-wise to tuples)."""
    meta = {"positive": positive, "ge": ge, "le": le, "gt": gt, "lt": lt, "doc": doc}
    if isinstance(default, list | dict | set):
        raise TypeError("use tuples for sequence defaults so configs stay hashable and immutable")
    return dataclasses.field(default=default, metadata=meta)


def _allowed_text(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_allowed_text(a) for a in get_args(tp))
    if origin is tuple:
        args = get_args(tp)
        return f"a list of {_allowed_text(args[0])}" if args else "a list"
    if tp is type(None):
        return "None"
    return getattr(tp, "__name__", str(tp))


def _coerce(name: str, value: Any, tp: Any) -> Any:
    """Return ``value`` converted to ``tp`` (int -> float, list -> tuple) or raise ValueError naming ``name``."""
    origin = get_origin(tp)
    bad = ValueError(f"{name}={value!r} has the wrong type: expected {_allowed_text(tp)}")
    if origin is Literal:
        if value not in get_args(tp):
            raise ValueError(f"{name}={value!r} is not allowed: expected {_allowed_text(tp)}")
        return value
    if origin in (types.UnionType, typing.Union):
        for arg in get_args(tp):
            try:
                return _coerce(name, value, arg)
            except ValueError:
                continue
        raise bad
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise bad
        args = get_args(tp)
        elem = args[0] if args else Any
        return tuple(_coerce(f"{name}[{i}]", v, elem) for i, v in enumerate(value))
    if tp is type(None):
        if value is not None:
            raise bad
        return None
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad
        return value
    if isinstance(tp, type) and not isinstance(value, tp):
        raise bad
    return value


def _check_bounds(name: str, value: Any, meta: typing.Mapping[str, Any]) -> None:
    if isinstance(value, tuple):
        for i, v in enumerate(value):
            _check_bounds(f"{name}[{i}]", v, meta)
        return
    if not isinstance(value, int | float) or isinstance(value, bool):
        return
    checks = [
        ("positive", meta.get("positive") and not value > 0, "must be > 0"),
        ("ge", meta.get("ge") is not None and not value >= meta["ge"], f"must be >= {meta.get('ge')}"),
        ("le", meta.get("le") is not None and not value <= meta["le"], f"must be <= {meta.get('le')}"),
        ("gt", meta.get("gt") is not None and not value > meta["gt"], f"must be > {meta.get('gt')}"),
        ("lt", meta.get("lt") is not None and not value < meta["lt"], f"must be < {meta.get('lt')}"),
    ]
    for _, failed, text in checks:
        if failed:
            raise ValueError(f"{name}={value!r} is out of range: {text}")


@dataclass(frozen=True)
class StudyConfig:
    """Base class: subclasses add typed fields, a ``PRESETS`` table and optional cross-field ``check()``."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}

    preset: Literal["smoke", "quick", "full", "gpu", "paper"] = "quick"
    seed: int = field(0, ge=0, doc="seed for data, initialisation and evaluation")
    precision: Literal["fp32", "bf16"] = field(
        "fp32",
        doc="training precision: bf16 = bfloat16 autocast of the forward pass (weights, optimiser, loss and every "
        "metric fp32); falls back to fp32, with a warning, on hardware without fast bf16 (docs/speed.md)",
    )

    @classmethod
    def from_preset(cls, preset: str = "quick", **overrides: Any) -> Self:
        """Build the config for ``preset`` with ``overrides`` applied on top, validated."""
        if preset not in cls.PRESETS:
            raise ValueError(f"preset={preset!r} is not allowed: expected one of {sorted(cls.PRESETS)}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(overrides) - set(names))
        if "preset" in overrides:
            raise ValueError("preset must be passed as the first argument, not inside overrides")
        if unknown:
            raise ValueError(f"unknown config key(s) {unknown} for {cls.__qualname__}; allowed keys: {names}")
        return cls(**{**cls.PRESETS[preset], **overrides, "preset": preset})

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = _coerce(f.name, getattr(self, f.name), hints[f.name])
            _check_bounds(f.name, value, f.metadata)
            object.__setattr__(self, f.name, value)
        self.check()

    def check(self) -> None:
        """Cross-field validation; subclasses raise ``ValueError`` naming the fields involved."""

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def describe(cls) -> str:
        """One line per field: name, type, default, doc (what ``help`` in the notebook shows)."""
        hints = typing.get_type_hints(cls)
        rows = []
        for f in dataclasses.fields(cls):
            rows.append(
                f"{f.name}: {_allowed_text(hints[f.name])} = {f.default!r}  {f.metadata.get('doc', '')}"
            )
        return "\n".join(rows)
