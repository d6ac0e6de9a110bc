"""The one exception type that means "the user asked for something we cannot do"."""

from __future__ import annotations


class LearnDropError(Exception):
    """A user-facing error: its message is one readable line, shown without a traceback.

    The CLI prints it on stderr and exits with code 2; the dashboard shows it with ``st.error``.
    Anything else that escapes is a bug of ours, not a user mistake.
    """
