"""Whether a value read from JSON (an event line, a config.json) fits a dataclass field's annotation.

JSON has numbers, strings, booleans, lists, objects and null; a field is annotated int, float, str, bool,
``list[...]``, ``tuple[...]``, ``dict[...]``, ``X | None`` or Any. An int field takes an integral float
(``3.0``), a float field an int; neither takes a bool. What is inside a list or dict is not looked at.
"""

from __future__ import annotations

import functools
import types
import typing
from typing import Any


@functools.cache
def hints(cls: type) -> dict[str, Any]:
    """A dataclass's field annotations, resolved (``from __future__ import annotations`` keeps them text)."""
    return typing.get_type_hints(cls)


def fits(value: object, hint: Any) -> bool:
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return any(fits(value, a) for a in typing.get_args(hint))
    origin = typing.get_origin(hint) or hint
    if origin is bool:
        return isinstance(value, bool)
    if origin is int:
        integral = isinstance(value, float) and value.is_integer()
        return (isinstance(value, int) and not isinstance(value, bool)) or integral
    if origin is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin in (list, tuple):
        return isinstance(value, (list, tuple))
    return isinstance(value, origin)


def describe(hint: Any) -> str:
    """The annotation in words, for a message: ``a number or null``."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return " or ".join(describe(a) for a in typing.get_args(hint))
    origin = typing.get_origin(hint) or hint
    words = {type(None): "null", bool: "true or false", int: "an integer", float: "a number", str: "a string",
             list: "a list", tuple: "a list", dict: "an object"}
    return words.get(origin, getattr(origin, "__name__", str(origin)))


__all__ = ["describe", "fits", "hints"]
