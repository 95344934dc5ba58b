"""The ``opsbot`` command line: argparse -> core -> text or ``--json``.

Each capability has its own module here with ``add_parser(subparsers)``; the module's sub-parser sets
``func`` to a callable taking the parsed arguments and returning the exit code. Errors that carry a
sentence (``bot.errors.OpsbotError``) are printed without a traceback and set the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from bot import __version__
from bot.errors import OpsbotError

# Order is the order of `opsbot --help`.
CLI_MODULES: tuple[str, ...] = (
    "bot.cli.local",
    "bot.cli.apilogs",
    "bot.cli.device",
    "bot.cli.mail",
    "bot.cli.dns",
    "bot.cli.fanout",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="opsbot",
        description="Serverless operations from Slack or the terminal: API request logs, SES feedback, "
        "IoT device activation, Route 53 DNS mirroring and stream fan-out.",
    )
    parser.add_argument("--version", action="version", version=f"opsbot {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug detail to stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in CLI_MODULES:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except OpsbotError as error:
        print(f"opsbot: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        return 130
