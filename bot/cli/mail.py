"""``opsbot mail``: status, stats, list, reenable and suppress e-mail addresses; feed SES feedback by hand."""

from __future__ import annotations

import argparse
import time
from typing import Any

from bot.config import Settings
from bot.security.audit import cli_actor

ADDRESS_HELP = "the address, e.g. jane@example.com; a pasted 'Jane Doe <jane@example.com>' is fine"


def _address(args: argparse.Namespace) -> str:
    """The address words as one text: a display name pasted unquoted arrives as several words."""
    return " ".join(args.address) if isinstance(args.address, list) else str(args.address)


def _audit(
    settings: Settings, command: str, args: str, outcome: str, started: float, detail: str = ""
) -> None:
    from bot.security import audit

    audit.write_cli(
        settings,
        action=f"mail.{command}",
        args=args,
        outcome=outcome,
        started=started,
        detail=detail,
    )


def _status(args: argparse.Namespace) -> int:
    from bot.cli.output import print_json, use_colour
    from bot.core.mail.commands import status
    from bot.render.mail import status_text

    result = status(_address(args), Settings.from_env())
    if args.json:
        print_json(result.to_json())
    else:
        print(status_text(result, use_colour=use_colour()))
    return 0


def _stats(args: argparse.Namespace) -> int:
    from bot.cli.output import print_json, use_colour
    from bot.core.mail.commands import stats
    from bot.render.mail import stats_text

    result = stats(Settings.from_env(), args.since)
    if args.json:
        print_json(result.to_json())
    else:
        print(stats_text(result, use_colour=use_colour()))
    return 0


def _list(args: argparse.Namespace) -> int:
    from bot.cli.output import emit
    from bot.core.mail.commands import list_addresses
    from bot.render.mail import list_text

    page = list_addresses(
        Settings.from_env(), state=args.state, since=args.since, limit=args.limit, cursor=args.cursor
    )
    emit(page, list_text, as_json=args.json)
    return 0


def _decide(args: argparse.Namespace) -> int:
    from bot.cli.output import emit
    from bot.core.mail.commands import reenable, suppress
    from bot.errors import OpsbotError
    from bot.render.mail import action_text

    settings = Settings.from_env()
    started = time.time()
    address = _address(args)
    shown_args = address + (f" --reason {args.reason}" if getattr(args, "reason", "") else "")
    try:
        if args.mail_command == "reenable":
            result = reenable(address, settings, by=cli_actor())
        else:
            result = suppress(address, settings, by=cli_actor(), reason=args.reason or "")
    except OpsbotError as error:
        _audit(settings, args.mail_command, shown_args, "error", started, error.message)
        raise
    _audit(settings, args.mail_command, shown_args, "ok" if result.changed else "unchanged", started)
    emit(result, action_text, as_json=args.json)
    return 0


def _feed(args: argparse.Namespace) -> int:
    from bot.cli.output import feed_files
    from bot.intake.ses_feedback import SesFeedbackApp
    from bot.render.blocks import plural

    app = SesFeedbackApp(Settings.from_env())

    def summary(report: Any) -> str:
        return (
            f"{plural(report['records'], 'record')}, "
            f"{plural(report['events'], 'recipient event')}, {report['changed']} changed, "
            f"{plural(report['duplicates'], 'duplicate')}, {report['ignored']} ignored, "
            f"{report['malformed']} malformed; disabled: {', '.join(report['disabled']) or 'none'}"
        )

    return feed_files(args.files, lambda event: app.handle(event).to_json(), summary, as_json=args.json)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "mail",
        help="SES bounce/complaint state of e-mail addresses (the mailing table)",
        description="Show and change the bounce/complaint state SES feedback keeps in the mailing table.",
    )
    commands = parser.add_subparsers(dest="mail_command", metavar="SUBCOMMAND", required=True)

    status = commands.add_parser("status", help="state, why, last event, history, suppression-list status")
    status.add_argument("address", nargs="+", metavar="ADDRESS", help=ADDRESS_HELP)
    status.add_argument("--json", action="store_true", help="one JSON document on stdout")
    status.set_defaults(func=_status)

    stats = commands.add_parser("stats", help="bounce and complaint rates against SES's thresholds")
    stats.add_argument("--since", default="7d", help="how far back (7d, 36h, 2024-05-01; default 7d)")
    stats.add_argument("--json", action="store_true", help="one JSON document on stdout")
    stats.set_defaults(func=_stats)

    listing = commands.add_parser(
        "list",
        help="addresses by state (a Scan of the mailing table)",
        description="List addresses by state. The mailing table has no index by state, so this scans it "
        "with a filter: DynamoDB reads (and charges for) every entry it passes, matching or not. A page "
        "reads at most about 5,000 entries; --cursor goes on where the last one stopped.",
    )
    listing.add_argument(
        "--state", choices=["disable", "review", "enable"], default="disable", help="default: disable"
    )
    listing.add_argument("--since", help="only entries changed since (updatedAt): 1d, 36h, 2024-05-01T10:00Z")
    listing.add_argument(
        "--limit", type=int, default=100, help="addresses per page (default 100, at most 1000)"
    )
    listing.add_argument(
        "--cursor", help="go on where the previous page stopped (printed as 'more: --cursor …')"
    )
    listing.add_argument("--json", action="store_true", help="one JSON document on stdout")
    listing.set_defaults(func=_list)

    reenable = commands.add_parser("reenable", help="enable an address again (audited)")
    reenable.add_argument("address", nargs="+", metavar="ADDRESS", help=ADDRESS_HELP)
    reenable.add_argument("--json", action="store_true", help="one JSON document on stdout")
    reenable.set_defaults(func=_decide, changes=True)

    suppress = commands.add_parser("suppress", help="disable an address and keep it disabled (audited)")
    suppress.add_argument("address", nargs="+", metavar="ADDRESS", help=ADDRESS_HELP)
    suppress.add_argument(
        "--reason",
        choices=["bounce", "complaint"],
        help="reason for the SES suppression list (default: guessed)",
    )
    suppress.add_argument("--json", action="store_true", help="one JSON document on stdout")
    suppress.set_defaults(func=_decide, changes=True)

    feed = commands.add_parser(
        "feed",
        help="run SNS or SQS events (or bare SES notifications) from JSON files through the feedback handler",
    )
    feed.add_argument("files", nargs="+", metavar="FILE", help="JSON file, or - for stdin")
    feed.add_argument("--json", action="store_true", help="one JSON document on stdout")
    feed.set_defaults(func=_feed, changes=True)
