"""Pydantic field types in words, for `kplug describe`: `list of int > 0`, `float in
[0, 1)`, `one of 'adam', 'sgd'`, `str or null`."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic.fields import FieldInfo

# annotated_types constraint class -> the operator it means.
_BOUNDS = {"Gt": ">", "Ge": ">=", "Lt": "<", "Le": "<="}


def field_type(info: FieldInfo) -> str:
    """A field's type with the constraints of its annotation and of its `Field(...)`
    (which apply to the value, not to a `None` the field also accepts)."""
    annotation, optional = info.annotation, ""
    args = typing.get_args(annotation)
    if info.metadata and type(None) in args:
        rest = tuple(a for a in args if a is not type(None))
        annotation, optional = rest[0] if len(rest) == 1 else typing.Union[rest], " or null"  # noqa: UP007 (a tuple)
    return _with_constraints(type_name(annotation), info.metadata) + optional


def type_name(annotation: Any) -> str:
    """A type annotation in words."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return _with_constraints(type_name(args[0]), args[1:])
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else type_name(a) for a in args)
    if origin in (list, tuple, set, frozenset):
        items = [a for a in args if a is not Ellipsis]
        return f"{origin.__name__} of {type_name(items[0])}" if items else origin.__name__
    if origin is dict:
        return f"mapping of {type_name(args[0])} to {type_name(args[1])}" if args else "mapping"
    if annotation is None or annotation is type(None):
        return "null"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _with_constraints(name: str, metadata: Any) -> str:
    bounds: dict[str, Any] = {}
    lengths: dict[str, int] = {}
    words = []
    for item in metadata:
        kind = type(item).__name__
        if kind in _BOUNDS:
            bounds[_BOUNDS[kind]] = getattr(item, kind.lower())
        elif kind == "MultipleOf":
            words.append(f"multiple of {item.multiple_of}")
        elif kind == "MinLen":
            lengths["at least"] = item.min_length
        elif kind == "MaxLen":
            lengths["at most"] = item.max_length
        elif getattr(item, "pattern", None):
            words.append(f"matching {item.pattern}")
    low = next(((op, bounds[op]) for op in (">", ">=") if op in bounds), None)
    high = next(((op, bounds[op]) for op in ("<", "<=") if op in bounds), None)
    if low and high:
        words.insert(0, f"in {'(' if low[0] == '>' else '['}{low[1]}, {high[1]}"
                        f"{')' if high[0] == '<' else ']'}")  # fmt: skip
    elif low or high:
        words.insert(0, f"{(low or high)[0]} {(low or high)[1]}")
    unit = "characters" if name == "str" else "items"
    if len(set(lengths.values())) == 1 and len(lengths) == 2:
        words.append(f"of exactly {lengths['at least']} {unit}")
    elif lengths == {"at least": 1}:
        words.insert(0, "non-empty")
        return " ".join(["non-empty", name, *words[1:]])
    else:
        words.extend(f"of {which} {n} {unit}" for which, n in lengths.items())
    return " ".join([name, *words])
