"""``opsbot doctor``: the read-only checks of ``/ops doctor``, from a terminal (no Slack time limit)."""

from __future__ import annotations

import argparse
from typing import Any

from bot.config import Settings


def _doctor(args: argparse.Namespace) -> int:
    from bot.cli.output import print_json, use_colour
    from bot.core.ops.commands import DoctorOptions, doctor, parse_areas
    from bot.render.ops import doctor_text

    settings = Settings.from_env()
    # --account and --region are the CLI's global flags (bot.cli.cli_target): the target says where to read.
    options = DoctorOptions(
        expect_account=args.expect_account or "",
        all_stages=args.all,
        areas=parse_areas(args.only),
        timeout=args.timeout,
    )
    reader, signing_secret_set = _slack(settings)
    report = doctor(settings, options, slack=reader, signing_secret_set=signing_secret_set)
    if args.json:
        print_json(report.to_json())
    else:
        print(doctor_text(report, colour=use_colour()))
    return 1 if report.failed else 0


def _slack(settings: Settings) -> tuple[Any, bool | None]:
    """The Slack reader when a token is configured here (environment or secret), and whether a signing
    secret is. A secret that cannot be read leaves Slack unchecked, saying why, rather than failing the run."""
    from bot.errors import OpsbotError
    from bot.slack_secrets import SlackSecrets
    from bot.slack_web import SlackWebReader, web_client

    if not (settings.slack_bot_token or settings.slack_secret_id):
        return None, (True if settings.slack_signing_secret else None)
    try:
        secrets = SlackSecrets(settings)
        token, signing = secrets.bot_token(), secrets.signing_secret()
    except OpsbotError as error:
        return _Unreadable(
            f"the Slack secret {settings.slack_secret_id} could not be read here: {error.message}"
        ), None
    return (SlackWebReader(web_client(settings)) if token else None), bool(signing)


class _Unreadable:
    """A SlackReader whose every question ends in why the secret could not be read (a skip, not a verdict
    on the deployment's token)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def auth(self) -> Any:
        from bot.core.ops.checks.slack import SlackSecretUnreadable

        raise SlackSecretUnreadable(self.reason)

    def channel(self, channel_id: str) -> Any:
        return self.auth()


def _accounts(args: argparse.Namespace) -> int:
    from bot.aws.clients import use_target
    from bot.cli import terminal_person
    from bot.cli.output import print_json
    from bot.core.ops.accounts import check_accounts
    from bot.render.ops import accounts_text

    settings = Settings.from_env()
    with use_target(None):  # each role is checked from the terminal's own credentials
        principal, operator = terminal_person()
        report = check_accounts(settings, principal=principal, operator=operator)
    if args.json:
        print_json(report.to_json())
    else:
        print(accounts_text(report))
    return 1 if report.failed else 0


def add_parser(subparsers: Any) -> None:
    accounts = subparsers.add_parser(
        "accounts",
        help="list the AWS accounts of OPSBOT_ACCOUNTS and check that each role can be assumed",
        description="One sts:AssumeRole and sts:GetCallerIdentity per role, with a verdict each. Exit code 1 "
        "when any fails.",
    )
    accounts.add_argument("--json", action="store_true", help="one JSON document on stdout")
    accounts.set_defaults(func=_accounts)

    parser = subparsers.add_parser(
        "doctor",
        help="check the wiring every command depends on, with the fix for what is missing (read-only)",
        description="Read-only checks of Slack, AWS and each capability's wiring: each check says ok, warn, "
        "fail or skip, what it found and the exact fix. Exit code 1 when any check fails. `opsbot --account "
        "NAME --region R doctor` checks an account of OPSBOT_ACCOUNTS (its roles, and what the commands read "
        "there) and a region.",
    )
    # --account NAME and --region R are opsbot's global flags: the account of OPSBOT_ACCOUNTS and the region
    # whose resources are checked (opsbot's own stay where it runs).
    parser.add_argument(
        "--expect-account", metavar="ID", help="fail unless the checks are made in this AWS account id"
    )
    parser.add_argument(
        "--all", action="store_true", help="every API stage of the region, not only the default"
    )
    parser.add_argument(
        "--only", metavar="AREAS", help="comma-separated areas: slack,aws,apilogs,mail,device,dns,fanout"
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds before unfinished checks are cut short"
    )
    parser.add_argument("--json", action="store_true", help="one JSON document: checks and summary")
    parser.set_defaults(func=_doctor)
