"""Type checks of overrides, before pydantic's lax mode could convert them: a typo in a study
spec must not become a different experiment."""

from __future__ import annotations

import numbers
import types
import typing
from typing import Any, Literal

from pydantic import BaseModel

from .sections import SettingsError

#: what an override of a scalar setting may be: a count is no float, a number no string or flag
_SCALAR_TYPES: dict[type, tuple[type, ...]] = {bool: (bool,), int: (numbers.Integral,), float: (numbers.Real,),
                                              str: (str,)}


def _annotation_options(annotation: Any) -> tuple[Any, ...]:
    """The members of a Union (`int | None`), else the annotation alone."""
    is_union = isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union
    return typing.get_args(annotation) if is_union else (annotation,)


def check_override_types(model: type[BaseModel], overrides: dict[str, Any], prefix: str = "") -> None:
    """Refuse an override whose type is wrong for its setting, where pydantic's lax mode would
    quietly convert it (`"2"` or `true` for a number, `2.0` for a count, `1` for a choice): a
    typo in a study spec must not become a different experiment. Values inside composite
    settings (tuples, mappings) are checked too; mapping keys are not (TOML and JSON keys are
    always strings, so `-1` in a style table arrives as "-1")."""
    for name, value in overrides.items():
        field = model.model_fields.get(name)
        if field is not None:  # pydantic names unknown fields
            _check_value(field.annotation, value, f"{prefix}{name}")


def _check_value(annotation: Any, value: Any, path: str) -> None:
    """`_check_override_types` for one value of type `annotation` at `path`."""
    options = _annotation_options(annotation)
    if value is None and type(None) in options:
        return
    kinds = [option for option in options if option is not type(None)]
    if len(kinds) != 1:
        return
    (kind,) = kinds
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        if isinstance(value, dict):
            check_override_types(kind, value, f"{path}.")
        return
    if origin is dict:
        if isinstance(value, dict) and len(args) == 2:
            for key, item in value.items():
                _check_value(args[1], item, f"{path}[{key!r}]")
        return
    if origin is tuple:
        if isinstance(value, (list, tuple)):
            items = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
            for index, (item_type, item) in enumerate(zip(items, value)):
                _check_value(item_type, item, f"{path}[{index}]")  # a wrong length is pydantic's to name
        return
    if origin is Literal:
        expected, described = tuple({type(choice) for choice in args}), "one of its choices"
    else:
        expected, described = _SCALAR_TYPES.get(kind), getattr(kind, "__name__", str(kind))
    if expected is None:
        return
    if (isinstance(value, bool) and bool not in expected) or not isinstance(value, expected):
        raise SettingsError(f"{path}: expected {described}, got {type(value).__name__} {value!r}")
