"""The one exception type a user sees: the CLI prints its message on one line and exits 2."""


class NasError(Exception):
    """A problem with the user's input or environment, described in one line."""
