"""The one exception type a user sees, and the one way an error becomes a line of text.

The CLI prints a :class:`NasError`'s message on one line and exits 2; :func:`first_line` and
:func:`error_text` are how every other error is shortened to one line (storage errors, a trial's
failure, a worker's crash)."""


class NasError(Exception):
    """A problem with the user's input or environment, described in one line."""


def first_line(e: BaseException | str) -> str:
    """The first non-blank line of an error's message; an exception without one gives its type's name."""
    for line in str(e).splitlines():
        if line.strip():
            return line.strip()
    return type(e).__name__ if isinstance(e, BaseException) else ""


def error_text(e: BaseException) -> str:
    """``Type: first line of the message`` (or ``Type``): how a trial's or a worker's error is shown."""
    line = first_line(e)
    return type(e).__name__ if line == type(e).__name__ else f"{type(e).__name__}: {line}"
