"""The ``nasengine`` command. Each command group lives in ``nasengine/cli/`` and registers its
subcommands with ``register(subparsers)``; heavy imports (torch, ray, optuna) happen inside the
commands, so ``nasengine --help`` stays instant."""

from __future__ import annotations

import argparse
import importlib
import sys

from nasengine import __version__
from nasengine.errors import NasError

COMMAND_MODULES = ["search", "export", "bench", "show", "scale", "latency"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="nasengine",
                     description="Neural architecture search on Ray Tune, recorded in Optuna studies.")
    parser.add_argument("--version", action="version", version=f"nasengine {__version__}",
                        help="print the version and exit")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(f"nasengine.cli.{name}").register(subparsers)
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
