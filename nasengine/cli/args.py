"""The shared argument types of the commands (bounded numbers with one-line errors) and the shared
scaling options of the mobile networks."""

from __future__ import annotations

import argparse
from typing import Any


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


def add_scaling_options(p: argparse.ArgumentParser) -> None:
    """``--width``, ``--depth``, ``--resolution``: the mobile networks' scaling (EfficientNet's rules)."""
    p.add_argument("--width", type=positive_float, metavar="W",
                   help="mobile networks: channel multiplier (rounded to multiples of 8, stem and head too)")
    p.add_argument("--depth", type=positive_float, metavar="D",
                   help="mobile networks: layer multiplier (each block's layers, rounded up)")
    p.add_argument("--resolution", type=positive_int, metavar="R",
                   help="input resolution (the network's image_size; training resizes the data's images to it)")


def scaling_overrides(args) -> dict[str, Any]:
    """The network settings ``--width``, ``--depth`` and ``--resolution`` ask for (None where not given)."""
    return {"width": args.width, "depth": args.depth, "image_size": args.resolution}
