"""``opsbot fanout``: list, check, activate and deactivate aws-lambda-fanout mappings."""

from __future__ import annotations

import argparse
import time
from typing import Any

from bot.config import Settings


def _list(args: argparse.Namespace) -> int:
    from bot.cli.output import emit
    from bot.core.fanout.commands import ListFilters, list_mappings
    from bot.render.fanout import listing_text

    listing = list_mappings(
        Settings.from_env(), ListFilters(source=args.source, type=args.type, inactive=args.inactive)
    )
    emit(listing, listing_text, as_json=args.json)
    return 0


def _check(args: argparse.Namespace) -> int:
    from bot.cli.output import emit
    from bot.core.fanout.commands import check
    from bot.render.fanout import check_text

    report = check(Settings.from_env())
    emit(report, check_text, as_json=args.json)
    return 1 if report.errors else 0


def _toggle(args: argparse.Namespace) -> int:
    """Audited like the toggle from Slack (one record, outcome changed, unchanged or error)."""
    from bot.cli.output import emit
    from bot.core.fanout.commands import set_active
    from bot.errors import OpsbotError
    from bot.render.fanout import toggle_text
    from bot.security import audit

    settings = Settings.from_env()
    started = time.time()
    typed = f"{args.source} {args.id}" + (f" --table {args.table}" if args.table else "")

    def record(outcome: str, detail: str) -> None:
        audit.write_cli(
            settings,
            action=f"fanout.{args.fanout_command}",
            args=typed,
            outcome=outcome,
            started=started,
            detail=detail,
        )

    try:
        result = set_active(
            settings, args.source, args.id, args.fanout_command == "activate", table=args.table
        )
    except OpsbotError as error:
        record("error", error.message)
        raise
    # The source may have been given by name: the detail says which table and ARN were changed.
    record(
        "changed" if result.changed else "unchanged",
        f"{result.table}: {result.source_arn} {result.target_id}",
    )
    emit(result, toggle_text, as_json=args.json)
    return 0


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "fanout",
        help="aws-lambda-fanout mappings: list, check, activate, deactivate",
        description="The targets table(s) of aws-lambda-fanout (OPSBOT_FANOUT_TABLE, default "
        "<OPSBOT_FANOUT_FUNCTION>Targets) and each table's function's event source mappings: a table "
        "xTargets belongs to function x, any other table to OPSBOT_FANOUT_FUNCTION (default fanout).",
    )
    commands = parser.add_subparsers(dest="fanout_command", metavar="SUBCOMMAND", required=True)

    listing = commands.add_parser("list", help="targets grouped by source, with each source's hook state")
    listing.add_argument(
        "source", nargs="?", metavar="SOURCE", help="a source ARN, stream name or table name"
    )
    listing.add_argument("--type", help="only targets of this type (kinesis, sqs, sns, ...)")
    listing.add_argument("--inactive", action="store_true", help="only inactive targets")
    listing.add_argument("--json", action="store_true", help='print {"sources": [...]}')
    listing.set_defaults(func=_list)

    checking = commands.add_parser(
        "check",
        help="every target the fan-out function would skip or mis-handle, with the reason",
        description="Exits 1 when a target would be skipped (error), 0 otherwise (warnings only or none).",
    )
    checking.add_argument("--json", action="store_true")
    checking.set_defaults(func=_check)

    for name, verb in (("activate", "start"), ("deactivate", "stop")):
        toggle = commands.add_parser(
            name, help=f"{verb} forwarding to one target (only if it exists, like the fanout CLI)"
        )
        toggle.add_argument("source", metavar="SOURCE", help="a source ARN, stream name or table name")
        toggle.add_argument("id", metavar="ID", help="the target id")
        toggle.add_argument("--table", help="the targets table, when several are configured")
        toggle.add_argument("--json", action="store_true")
        toggle.set_defaults(func=_toggle)
