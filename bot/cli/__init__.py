"""The ``opsbot`` command line: argparse -> core -> text or ``--json``.

Each capability has its own module here with ``add_parser(subparsers)``; the module's sub-parser sets
``func`` to a callable taking the parsed arguments and returning the exit code, and ``changes`` (True, or a
test of the arguments) when the command changes something: with ``--account`` it then assumes the
account's change role. Errors that carry a
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
from typing import TYPE_CHECKING, NoReturn

from bot import __version__
from bot.errors import ConfigError, NotAllowedError, NotFoundError, OpsbotError, UsageError

if TYPE_CHECKING:
    from bot.aws.clients import Target

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
    # Taken off the command line before parsing (``take_global_flags``): declared here for --help only.
    parser.add_argument("--account", metavar="NAME", help="the account of OPSBOT_ACCOUNTS to work in")
    parser.add_argument("--region", metavar="REGION", help="the AWS region (within the account's regions)")
    parser.add_argument(
        "--profile", metavar="PROFILE", help="an AWS CLI profile, its credentials as they are"
    )
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
    argv, chosen = take_global_flags(parser, argv)
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
    from bot.aws.clients import use_target

    if args.command in SERVES_SLACK:
        # These run opsbot itself: each Slack request chooses its account (the command framework).
        return int(func(args) or 0)
    try:
        target = cli_target(chosen, mutating=changes(args))
    except UsageError as error:
        if args.command != "doctor":
            raise
        # As /ops doctor says it (its Subcommand's account_id_hint): the doctor's --account took an id.
        from bot.core.common.accounts import with_account_id_hint
        from bot.listeners.ops import ACCOUNT_ID_HINT

        raise with_account_id_hint(error, chosen.get("account", ""), ACCOUNT_ID_HINT) from None
    except ConfigError:
        # A malformed OPSBOT_ACCOUNTS refuses every command but the doctor, which reports it (a failing
        # check with the fix) from the environment's account, as /ops doctor does from opsbot's own.
        if args.command != "doctor" or chosen or not _accounts_malformed():
            raise
        target = None
    note = account_note(chosen, target)
    if note:
        # On stderr: stdout stays the command's own output (a pipe, a --json document) as it always was.
        print(f"opsbot: {note}", file=sys.stderr)
    with use_target(target):
        return int(func(args) or 0)


def _accounts_malformed() -> bool:
    from bot.config import Settings

    try:
        Settings.from_env().accounts()
    except ConfigError:
        return True
    return False


def account_note(chosen: dict[str, str], target: Target | None) -> str:
    """The line that says which account a command works in when ``--account`` named one other than the
    default (where commands go without it): the text of the answer alone would not say it. "" otherwise."""
    from bot.config import Settings

    if target is None or not chosen.get("account"):
        return ""
    accounts = Settings.from_env().accounts()
    entry = accounts.get(target.account)
    if entry is None or entry == accounts.default():
        return ""
    number = f" ({entry.account_id})" if entry.account_id else ""
    where = f"account {entry.name}{number}"
    return f"{where}, region {target.region}" if target.region else where


def changes(args: argparse.Namespace) -> bool:
    """Whether the command changes something (its sub-parser's ``changes`` default: True, or a test of
    its arguments such as ``dns resync --apply``): it then assumes the account's change role."""
    declared = getattr(args, "changes", False)
    return bool(declared(args) if callable(declared) else declared)


# The commands that run the bot (not a command of it): global flags do not apply to them.
SERVES_SLACK = frozenset({"serve", "demo", "console", "manifest"})


# On every command, before or after its name: `opsbot --account prod apilogs errors` and
# `opsbot apilogs errors --account prod` are the same. A command that declared one of them itself would
# keep it (none does).
GLOBAL_FLAGS = ("--account", "--region", "--profile")


def take_global_flags(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """(argv without the global flags, their values). Raises UsageError for a flag without a value."""
    current = parser
    kept: list[str] = []
    chosen: dict[str, str] = {}
    index = 0
    while index < len(argv):
        word = argv[index]
        if word == "--":
            kept += argv[index:]
            break
        name, eq, inline = word.partition("=")
        if name in GLOBAL_FLAGS and (current is parser or name not in current._option_string_actions):
            if eq:
                value = inline
            elif index + 1 < len(argv) and not argv[index + 1].startswith("-"):
                value = argv[index + 1]
                index += 1
            else:
                raise UsageError(f"{name} needs a value (see `opsbot --help`).")
            chosen[name[2:]] = value.strip()
        else:
            kept.append(word)
            child = _subparser(current, word)
            if child is not None:
                current = child
        index += 1
    return kept, chosen


def _subparser(parser: argparse.ArgumentParser, word: str) -> argparse.ArgumentParser | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and word in action.choices:
            return action.choices[word]
    return None


def cli_target(chosen: dict[str, str], *, mutating: bool = False) -> Target | None:
    """Where the CLI's AWS calls go: ``--profile`` (its credentials as they are), or ``--account`` (the
    account's role, its change role for a command that changes something, assumed with the terminal's
    credentials in the name of the person at it), else the default account of OPSBOT_ACCOUNTS, else the
    environment's credentials; ``--region`` within the account's regions."""
    from bot.aws.clients import Target, own_table
    from bot.config import Settings

    settings = Settings.from_env()
    own_table(settings.state_table)
    account_name, region, profile = (
        chosen.get("account", ""),
        chosen.get("region", ""),
        chosen.get("profile", ""),
    )
    if profile:
        if account_name:
            raise UsageError(
                "--profile uses that AWS CLI profile's credentials as they are, and --account assumes the "
                "account's role: give one of them."
            )
        from bot.core.common.accounts import is_region

        if region and not is_region(region):
            raise UsageError(f"{region!r} is not an AWS region name (like us-east-1).")
        return Target(account=f"profile {profile}", region=region, profile=profile)
    accounts = settings.accounts()
    if not accounts.configured and not account_name and not region:
        return None  # as before accounts existed
    account, where = accounts.choose(asked=account_name, region=region, own_region=settings.region)
    role_arn = account.role_for(mutating=mutating)
    principal, operator = terminal_person() if role_arn else ("", "")
    return Target(
        account=account.name,
        role_arn=role_arn,
        external_id=account.external_id,
        region=where,
        principal=principal,
        operator=operator,
    )


def terminal_person() -> tuple[str, str]:
    """(principal, identity ARN) of the person at the terminal: ``cli-<name>``, the name from the
    terminal's credentials (sts:GetCallerIdentity: an Identity Center user's session name, an IAM user's
    name), else the local login. It names them in the member account's CloudTrail (RoleSessionName
    ``opsbot-cli-<name>``, SourceIdentity ``cli-<name>``), so it says who, not which laptop."""
    from bot.aws.accounts import own_identity
    from bot.core.common.accounts import person_of
    from bot.errors import AwsError
    from bot.security.audit import cli_login

    try:
        arn = str(own_identity()["Arn"])
    except AwsError:  # no credentials: AssumeRole will say so; the login names the attempt meanwhile
        arn = ""
    name = person_of(arn) or cli_login().removeprefix("cli:")
    return f"cli-{name}", arn
