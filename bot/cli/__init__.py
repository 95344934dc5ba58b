"""The ``opsbot`` command line: argparse -> core -> text or ``--json``.

Each capability has its own module here with ``add_parser(subparsers)``; the module's sub-parser sets
``func`` to a callable taking the parsed arguments and returning the exit code. Errors that carry a
sentence (``bot.errors.OpsbotError``) are printed without a traceback and set the exit code: 1 for an
error or for something not found, 2 for bad input (argparse's own errors included), 3 for configuration,
4 when not allowed. With ``--json`` stdout holds exactly one JSON document on every outcome: the command's,
or ``{"ok": false, "reason": "usage"|"not-found"|"config"|"denied"|"error", "message": ...}``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from typing import NoReturn

from bot import __version__
from bot.errors import ConfigError, NotAllowedError, NotFoundError, OpsbotError, UsageError

# Order is the order of `opsbot --help`.
CLI_MODULES: tuple[str, ...] = (
    "bot.cli.local",
    "bot.cli.apilogs",
    "bot.cli.alarms",
    "bot.cli.device",
    "bot.cli.mail",
    "bot.cli.dns",
    "bot.cli.fanout",
    "bot.cli.ops",
)


class _Parser(argparse.ArgumentParser):
    """argparse that raises its usage errors instead of exiting, so that ``main`` answers them like every
    other error (a JSON document with ``--json``, exit code 2). Sub-parsers are of the same class."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`).")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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


# The ``reason`` of the JSON document of a failure, by the kind of error (the first that matches).
_REASONS: tuple[tuple[type[OpsbotError], str], ...] = (
    (NotFoundError, "not-found"),
    (UsageError, "usage"),
    (ConfigError, "config"),
    (NotAllowedError, "denied"),
    (OpsbotError, "error"),
)


def failure_document(error: OpsbotError) -> dict[str, object]:
    """What ``--json`` prints on stdout when a command fails: ``{"ok": false, "reason", "message"}``."""
    reason = next(name for kind, name in _REASONS if isinstance(error, kind))
    return {"ok": False, "reason": reason, "message": str(error)}


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    # Known before parsing: a script that asked for JSON gets a document for bad input too.
    wants_json = "--json" in words[: words.index("--")] if "--" in words else "--json" in words
    try:
        return _run(words)
    except OpsbotError as error:
        print(f"opsbot: {error}", file=sys.stderr)
        if wants_json:
            from bot.cli.output import print_json

            print_json(failure_document(error))
        return error.exit_code
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        if wants_json:
            from bot.cli.output import print_json

            print_json({"ok": False, "reason": "interrupted", "message": "Interrupted (Ctrl-C)."})
        return 130


def _run(argv: list[str]) -> int:
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
    return int(func(args) or 0)
