"""``opsbot alarms``: explain an alarm (the correlation its post carries), feed notifications through the
intake (as the Lambda would get them)."""

from __future__ import annotations

import argparse
from typing import Any

from bot.config import Settings


def _explain(args: argparse.Namespace) -> int:
    from bot.aws.clients import region_override
    from bot.cli.output import emit
    from bot.core.alarms.commands import explain
    from bot.render.alarms import explain_text

    settings = Settings.from_env()
    if args.region:
        with region_override(args.region):
            result = explain(settings, args.name, at=args.at or "")
    else:
        result = explain(settings, args.name, at=args.at or "")
    emit(result, explain_text, as_json=args.json)
    return 0


def _feed(args: argparse.Namespace) -> int:
    from bot.cli.output import feed_files
    from bot.intake.alarms import AlarmsApp

    app = AlarmsApp(Settings.from_env())

    def summary(report: Any) -> str:
        return (
            f"{report['alarms']} alarms, {report['malformed']} malformed, {report['posted']} posted, "
            f"{report['updated']} updated, {report['failed']} kept for later"
        )

    return feed_files(args.files, lambda event: app.handle(event).to_json(), summary, as_json=args.json)


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "alarms",
        help="CloudWatch alarms: which requests failed, and why, in an alarm's window",
        description="Explain a CloudWatch alarm with the failing requests of its window, as its post does.",
    )
    commands = parser.add_subparsers(dest="alarms_command", metavar="SUBCOMMAND", required=True)
    explain = commands.add_parser(
        "explain", help="the alarm (DescribeAlarms) and the failing requests of its window, grouped"
    )
    explain.add_argument("name", metavar="ALARM_NAME")
    explain.add_argument(
        "--at", help="end the window here instead of at the last state change (2h, 2026-12-07T02:10Z)"
    )
    explain.add_argument("--region", help="the alarm's region (default: AWS_REGION)")
    explain.add_argument("--json", action="store_true", help="one JSON document on stdout")
    explain.set_defaults(func=_explain)
    feed = commands.add_parser(
        "feed", help="run SNS, SQS or EventBridge events from JSON files through the intake"
    )
    feed.add_argument("files", nargs="+", metavar="FILE", help="JSON file, or - for stdin")
    feed.add_argument("--json", action="store_true", help="one JSON document on stdout")
    feed.set_defaults(func=_feed)
