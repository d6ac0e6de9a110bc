"""The one exception type that means "the user asked for something we cannot do"."""

from __future__ import annotations


class LearnDropError(Exception):
    """A user-facing error: its message is one readable line, shown without a traceback.

    The CLI prints it on stderr and exits with code 2; the dashboard shows it with ``st.error``.
    Anything else that escapes is a bug of ours, not a user mistake.

    ``field`` names the setting the error is about when there is one: a ``RunConfig`` field
    (``"epochs"``, ``"lr"``, ``"dataset"``...) or a policy threshold (``"tau"``...; the policy's name is
    ``"policy"``). A form puts the message next to that field's widget without reading the message,
    so messages can be reworded freely. ``str(exc)`` stays the message alone.
    """

    def __init__(self, *args: object, field: str | None = None):
        super().__init__(*args)
        self.field = field


def first_line(exc: BaseException) -> str:
    """An exception's message as one line (its type's name when it has none, as an EOFError may not)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    """A setting that must be one of ``choices``: one line naming them, about the field ``name``."""
    if value not in choices:
        raise LearnDropError(f"unknown {name} {value!r}; choose one of: {', '.join(choices)}", field=name)
