"""The shared argument types of the commands: bounded numbers with one-line errors."""

from __future__ import annotations

import argparse


def _number(convert: type, kind: str, lowest: float, allow_lowest: bool):
    """An argparse type: ``convert`` the text and require it above ``lowest`` (or equal, if allowed)."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
        if value < lowest or (value == lowest and not allow_lowest):
            bound = "must not be negative" if allow_lowest else "must be positive"
            raise argparse.ArgumentTypeError(f"{bound}, got {value}")
        return value

    return parse


positive_int = _number(int, "an integer", 0, False)
nonnegative_int = _number(int, "an integer", 0, True)
positive_float = _number(float, "a number", 0.0, False)
nonnegative_float = _number(float, "a number", 0.0, True)
