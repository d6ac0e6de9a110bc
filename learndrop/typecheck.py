"""Whether a value read from JSON (an event line, a config.json) fits a dataclass field's annotation.

JSON has numbers, strings, booleans, lists, objects and null; a field is annotated int, float, str, bool,
``list[...]``, ``tuple[...]``, ``dict[...]``, ``X | None`` or Any. An int field takes an integral float
(``3.0``), a float field an int; neither takes a bool. What is inside a list or dict is not looked at.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Callable
from typing import Any


@functools.cache
def hints(cls: type) -> dict[str, Any]:
    """A dataclass's field annotations, resolved (``from __future__ import annotations`` keeps them text)."""
    return typing.get_type_hints(cls)


def fits(value: object, hint: Any) -> bool:
    return checker(hint)(value)


@functools.cache
def checker(hint: Any) -> Callable[[object], bool]:
    """The test ``fits`` makes for ``hint``, worked out once per annotation (events are read by the
    thousand)."""
    if hint is Any:
        return lambda value: True
    if hint is type(None):
        return lambda value: value is None
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = typing.get_args(hint)
        if len(args) == 2 and type(None) in args:  # X | None, the common case, without a loop
            inner = checker(next(a for a in args if a is not type(None)))
            return lambda value: value is None or inner(value)
        tests = tuple(checker(a) for a in args)
        return lambda value: any(test(value) for test in tests)
    origin = typing.get_origin(hint) or hint
    if origin is bool:
        return lambda value: isinstance(value, bool)
    if origin is int:
        return lambda value: (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer())
    if origin is float:
        return lambda value: isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin in (list, tuple):
        return lambda value: isinstance(value, (list, tuple))
    return lambda value: isinstance(value, origin)


def describe(hint: Any) -> str:
    """The annotation in words, for a message: ``a number or null``."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return " or ".join(describe(a) for a in typing.get_args(hint))
    origin = typing.get_origin(hint) or hint
    words = {type(None): "null", bool: "true or false", int: "an integer", float: "a number", str: "a string",
             list: "a list", tuple: "a list", dict: "an object"}
    return words.get(origin, getattr(origin, "__name__", str(origin)))


__all__ = ["checker", "describe", "fits", "hints"]
