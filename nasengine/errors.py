"""The one exception type a user sees, and the one way an error becomes a line of text.

The CLI prints a :class:`NasError`'s message on one line and exits 2; :func:`first_line` and
:func:`error_text` are how every other error is shortened to one line (storage errors, a trial's
failure, a worker's crash); :func:`check_keys` is the one check of unknown keys, with a "did you mean".
"""

from collections.abc import Iterable
from difflib import get_close_matches


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


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the known name closest to a misspelt ``name`` (difflib's ratio of
    at least 0.6, its default), or ``""`` when none is close."""
    close = get_close_matches(str(name), [str(k) for k in known], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_keys(given: Iterable[str], known: Iterable[str], what: str = "setting", where: str = "") -> None:
    """The one unknown-key check: NasError ``WHERE: unknown WHAT(s) NAME (did you mean 'x'?), ...
    (known: a, b, ...)`` for the names of ``given`` not in ``known``; nothing when all are known."""
    known = list(known)
    unknown = sorted(str(k) for k in set(given) - set(known))
    if unknown:
        names = ", ".join(name + did_you_mean(name, known) for name in unknown)
        prefix = f"{where}: " if where else ""
        listed = ", ".join(sorted(map(str, known))) or "none"
        raise NasError(f"{prefix}unknown {what}(s) {names} (known: {listed})")
