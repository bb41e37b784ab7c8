"""The one exception type a user sees: the CLI prints its message on one line and exits 2."""


class NasError(Exception):
    """A problem with the user's input or environment, described in one line."""


def error_text(e: BaseException) -> str:
    """``Type: first line of the message`` (or ``Type``): how a trial's or a worker's error is shown."""
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0]}" if lines else type(e).__name__
