"""The ``nasengine`` command. Each command group lives in ``nasengine/commands/`` and registers its
subcommands with ``register(subparsers)``; heavy imports (torch, ray, optuna) happen inside the
commands, so ``nasengine --help`` stays instant."""

from __future__ import annotations

import argparse
import importlib
import sys

from nasengine.errors import NasError

COMMAND_MODULES = ["search", "export", "bench", "show"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nasengine", description="Neural architecture search on Ray Tune, recorded in Optuna studies.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"nasengine.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"nasengine.commands.{name}":
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args) or 0
    except NasError as e:
        print(f"nasengine: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nasengine: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
