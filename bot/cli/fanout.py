"""``opsbot fanout``: list, check (--deep), activate, deactivate, health, pause and resume."""

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

    report = check(Settings.from_env(), deep=args.deep)
    emit(report, check_text, as_json=args.json)
    return 1 if report.errors else 0


def _health(args: argparse.Namespace) -> int:
    """Exits 0 when every source is healthy, 1 otherwise (falling behind, failing or paused)."""
    from bot.cli.output import emit
    from bot.core.fanout.health import HEALTHY, health
    from bot.render.fanout import health_text

    report = health(Settings.from_env(), args.source, since=args.since)
    emit(report, health_text, as_json=args.json)
    return 0 if all(s.verdict.state == HEALTHY for s in report.sources) else 1


def _pause_resume(args: argparse.Namespace) -> int:
    """Audited like the Slack command. ``pause`` names the backlog and asks first (``--yes`` skips)."""
    import sys

    from bot.cli.output import emit
    from bot.core.fanout.pause import preview_pause, set_paused
    from bot.errors import OpsbotError, UsageError
    from bot.render.fanout import pause_text
    from bot.security import audit

    settings = Settings.from_env()
    started = time.time()
    paused = args.fanout_command == "pause"
    typed = args.source + (f" --table {args.table}" if args.table else "")

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
        if paused and not getattr(args, "yes", False):
            preview = preview_pause(settings, args.source, table=args.table)
            if not preview.already_paused:
                if args.json or not sys.stdin.isatty():
                    raise UsageError(f"{preview.backlog} Add --yes to pause.")
                print(f"Pause the fan-out of {preview.hooked.source.display}? {preview.backlog}")
                if input("Pause? [y/N] ").strip().lower() not in ("y", "yes"):
                    record("cancelled", "")
                    print("Nothing changed.")
                    return 1
        result = set_paused(settings, args.source, paused, table=args.table)
    except OpsbotError as error:
        record("error", error.message)
        raise
    record("changed" if result.changed else "unchanged", f"{result.hooked.table}: {result.hooked.source.arn}")
    emit(result, pause_text, as_json=args.json)
    return 0


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
    checking.add_argument(
        "--deep",
        action="store_true",
        help="also assume each cross-account target's role (with its externalId) and describe its destination",
    )
    checking.add_argument("--json", action="store_true")
    checking.set_defaults(func=_check)

    healthy = commands.add_parser(
        "health",
        help="per hooked source: hook, iterator age, errors, throttles, stream state, verdict and why",
        description=(
            "Per source hooked to the fan-out function: a verdict (healthy, falling behind, failing, "
            "paused) with why; the hook (state, batch size, starting position); the function's iterator "
            "age, errors, throttles, duration against its timeout and concurrency; a Kinesis stream's "
            "shards and read/write throttling; the function's error lines grouped by target. Exits 0 "
            "when every source is healthy, 1 otherwise (a source falling behind, failing or paused), "
            "2 for bad input."
        ),
    )
    healthy.add_argument(
        "source", nargs="?", metavar="SOURCE", help="a source ARN, stream name or table name"
    )
    healthy.add_argument("--since", default="1h", help="the window (default 1h), e.g. 15m, 6h, 1d")
    healthy.add_argument("--json", action="store_true", help='print {"sources": [...]}')
    healthy.set_defaults(func=_health)

    for name, verb in (("pause", "stop reading"), ("resume", "resume reading")):
        hook = commands.add_parser(
            name, help=f"{verb} a source (its event source mapping, like the fanout CLI's {name})"
        )
        hook.add_argument("source", metavar="SOURCE", help="a source ARN, stream name or table name")
        hook.add_argument("--table", help="the targets table, when several are configured")
        if name == "pause":
            hook.add_argument("--yes", action="store_true", help="do not ask (the backlog is still printed)")
        hook.add_argument("--json", action="store_true")
        hook.set_defaults(func=_pause_resume, changes=True)

    for name, verb in (("activate", "start"), ("deactivate", "stop")):
        toggle = commands.add_parser(
            name, help=f"{verb} forwarding to one target (only if it exists, like the fanout CLI)"
        )
        toggle.add_argument("source", metavar="SOURCE", help="a source ARN, stream name or table name")
        toggle.add_argument("id", metavar="ID", help="the target id")
        toggle.add_argument("--table", help="the targets table, when several are configured")
        toggle.add_argument("--json", action="store_true")
        toggle.set_defaults(func=_toggle, changes=True)
