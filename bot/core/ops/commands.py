"""The doctor's entry: which probes run for the options given, where, and the run under one deadline.

Where (``aim``): the doctor is aimed like every command (``--account NAME`` and ``--region R``, chosen by
the command framework or the CLI and set with ``bot.aws.clients.use_target``). opsbot's own resources (the
state table, its topic's subscription, the Slack secret, whose credentials opsbot runs with) are always
checked in its own account and region. What the commands read in the account aimed at is checked there:

- opsbot's own account: the API stages (``AREAS_IN_REGION``) in ``--region``'s region, the rest where
  opsbot runs (its own stack's tables, rule and functions), as before accounts existed;
- a member account (an entry of ``OPSBOT_ACCOUNTS`` with a role): each role is assumed in the asker's name
  first (``aws`` area), then every area's checks run with the read role, in the account's region: the API
  stages and log groups, the mailing and catalog tables, SES identities, the IoT rule, the account's DNS
  zones and the fan-out tables and hooks. A refusal there names the member role, not opsbot's.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.config import Settings
from bot.core.common.accounts import ACCOUNT_ID, Account
from bot.core.ops.checks.slack import SlackReader
from bot.core.ops.doctor import AREAS, DoctorReport, Finding, Probe, finding_from_error, run_probes
from bot.errors import UsageError, echo, echo_all

if TYPE_CHECKING:
    from bot.aws.clients import Target

# One module per area under bot.core.ops.checks, each with ``probes(context) -> list[Probe]``; slack is
# built separately because it needs the reader the caller passes.
AREA_MODULES: dict[str, str] = {
    "aws": "bot.core.ops.checks.aws",
    "apilogs": "bot.core.ops.checks.apilogs",
    "mail": "bot.core.ops.checks.mail",
    "device": "bot.core.ops.checks.device",
    "dns": "bot.core.ops.checks.dns",
    "fanout": "bot.core.ops.checks.fanout",
}


# Areas about the account's resources in a region (read in --region's region); the others check opsbot's
# own stack, which lives in the region opsbot runs in.
AREAS_IN_REGION = ("apilogs",)


@dataclass(frozen=True)
class DoctorOptions:
    region: str = ""  # "" = the region of the target (use_target), else opsbot's own
    expect_account: str = ""  # the account id the checks must be made in ("" = any)
    all_stages: bool = False  # every API stage of the region instead of the default API's
    areas: tuple[str, ...] = ()  # () = every area
    timeout: float = 60.0


@dataclass(frozen=True)
class DoctorContext:
    """What every area's probes may use. ``region`` is resolved (never empty)."""

    settings: Settings
    region: str
    expect_account: str = ""
    all_stages: bool = False
    notes: list[str] = field(default_factory=list)
    # The member account the doctor is aimed at (None: opsbot's own) and in whose name its roles are
    # assumed (the Slack user, cli-<login>).
    member: Account | None = None
    principal: str = ""


@dataclass(frozen=True)
class Aim:
    """Where a doctor run reads: ``target`` for what the commands read in the account aimed at, ``home``
    for opsbot's own resources (None: the environment's credentials and region)."""

    target: Target | None
    home: Target | None
    region: str
    home_region: str
    member: Account | None = None

    def scope(self) -> str:
        if self.member is not None:
            number = f" ({self.member.account_id})" if self.member.account_id else ""
            return (
                f"account {self.member.label}{number}, {self.region} "
                f"(opsbot's own resources: its own account, {self.home_region})"
            )
        return (
            self.region
            if self.region == self.home_region
            else f"{self.region} (opsbot's own resources: {self.home_region})"
        )


def parse_areas(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    # "/apilogs" as the answer labels it, or "apilogs".
    words = text.replace(",", " ").split()
    wanted = tuple(dict.fromkeys(word.strip().lower().lstrip("/") for word in words if word.strip("/ ")))
    unknown = [a for a in wanted if a not in AREAS]
    if unknown:
        raise UsageError(f"Unknown area {echo_all(unknown)}: the doctor checks {', '.join(AREAS)}.")
    return wanted


def validate_options(options: DoctorOptions) -> None:
    """Bad input is refused before anything is read."""
    from bot.core.common.accounts import is_region

    if options.region and not is_region(options.region):
        raise UsageError(f"{echo(options.region)} is not an AWS region name (like us-east-1 or eu-west-2).")
    if options.expect_account and not ACCOUNT_ID.fullmatch(options.expect_account):
        raise UsageError(
            f"{echo(options.expect_account)} is not an AWS account id (12 digits): --expect-account takes the "
            "id of the account the checks must be made in."
        )
    if options.timeout <= 0:
        raise UsageError("The time limit must be a positive number of seconds.")


def home_region(settings: Settings) -> str:
    """Where opsbot's own resources are: the environment's region, or the profile's (as boto3 finds it)."""
    from bot.aws.clients import default_region

    return default_region() if not os.environ.get("AWS_REGION") else settings.region


def aim(settings: Settings, options: DoctorOptions) -> Aim:
    """Where this run reads, from the target the command framework (or the CLI) set and ``options.region``."""
    from bot.aws.clients import Target, current_target, use_target

    aimed = current_target()
    member = None
    if aimed is not None and aimed.role_arn:
        entry = settings.accounts().get(aimed.account)
        member = entry or Account(aimed.account, role_arn=aimed.role_arn, external_id=aimed.external_id)
    # opsbot's own resources: its own credentials (a terminal's --profile ones as they are) in its region.
    home = None if aimed is None or member is not None else dataclasses.replace(aimed, region="")
    with use_target(home):
        home_at = home_region(settings)
    region = options.region or (aimed.region if aimed is not None else "") or home_at
    if aimed is not None:
        target: Target | None = dataclasses.replace(aimed, region=region)
    else:
        target = None if region == home_at else Target(region=region)
    return Aim(target, home, region, home_at, member)


def probes_for(
    settings: Settings,
    options: DoctorOptions,
    *,
    slack: SlackReader | None,
    signing_secret_set: bool | None,
    where: Aim | None = None,
) -> list[Probe]:
    """Every probe of the areas asked for, each bound to where it reads (``placed``)."""
    from bot.aws.clients import use_target
    from bot.core.ops.checks import slack as slack_checks

    where = where or aim(settings, options)
    context = DoctorContext(
        settings,
        where.region,
        expect_account=options.expect_account,
        all_stages=options.all_stages,
        member=where.member,
        principal=where.target.principal if where.target is not None else "",
    )
    wanted = options.areas or AREAS
    found: list[Probe] = []
    if "slack" in wanted:
        slack_probes = slack_checks.probes(settings, slack, signing_secret_set=signing_secret_set)
        found += [dataclasses.replace(p, own=True) for p in slack_probes]
    for area, module in AREA_MODULES.items():
        if area in wanted:
            aimed = where.member is not None or area in AREAS_IN_REGION
            # Built where they read: an area may choose by account (the DNS zones of the account aimed at).
            with use_target(where.target if aimed else where.home):
                found += importlib.import_module(module).probes(context)
    return [placed(p, where) for p in found]


def in_account(probe: Probe, where: Aim) -> bool:
    """Whether ``probe`` reads in the account aimed at (and its region) rather than opsbot's own."""
    if probe.own:
        return False
    return where.member is not None or probe.area in AREAS_IN_REGION


def placed(probe: Probe, where: Aim) -> Probe:
    """``probe`` run where it reads, its findings' fixes made to fit there: each regional ``aws`` command
    names the region it was checked in, and in a member account a missing permission is the member role's."""
    from bot.aws.clients import use_target

    aimed = in_account(probe, where)
    target = where.target if aimed else where.home
    region = where.region if aimed else where.home_region
    member = where.member if aimed else None

    def run() -> Sequence[Finding]:
        try:
            with use_target(target):
                found = list(probe.run())
        except Exception as error:  # the finding is made here, so that its fix is adjusted too
            found = [finding_from_error(probe, error)]
        return [_fitted(f, region, member) for f in found]

    return dataclasses.replace(probe, run=run)


def doctor(
    settings: Settings,
    options: DoctorOptions,
    *,
    slack: SlackReader | None,
    signing_secret_set: bool | None,
) -> DoctorReport:
    """Run the read-only checks where ``aim`` says; opsbot's own resources are read where opsbot runs."""
    validate_options(options)
    where = aim(settings, options)
    probes = probes_for(settings, options, slack=slack, signing_secret_set=signing_secret_set, where=where)
    started = time.monotonic()
    # Who the credentials are, first (and, in a member account, whether each role can be assumed): when
    # AWS cannot say, every other AWS read would fail (or hang) the same way, and one finding saying why
    # reads better than a dozen repeating it.
    # The configuration's own check needs no AWS at all: it is reported whatever AWS answers.
    first_checks = {"identity", ACCOUNTS_CHECK, *ROLE_CHECKS}
    identity = [p for p in probes if p.area == "aws" and p.check in first_checks]
    first = run_probes(identity, timeout=min(IDENTITY_SECONDS, options.timeout))
    rest = [p for p in probes if p not in identity]

    def left() -> float:
        return max(0.1, options.timeout - (time.monotonic() - started))

    def skipped(dropped: list[Probe], why: str) -> list[Finding]:
        return [
            Finding(area, "AWS reads", "every check of this area", "skip", f"not checked: {why}")
            for area in sorted({p.area for p in dropped})
        ]

    if any(f.status != "ok" for f in first.findings if f.check == "identity"):
        report = run_probes([p for p in rest if p.area == "slack"], timeout=left())
        report.findings += first.findings
        report.findings += skipped(
            [p for p in rest if p.area != "slack"],
            "AWS did not answer who these credentials are (see the identity check)",
        )
        report.cut_short = first.cut_short + report.cut_short
    elif where.member is not None and any(f.status != "ok" for f in first.findings if f.check == READ_ROLE):
        # Every read in the member account would be refused the same way.
        own = [p for p in rest if not in_account(p, where)]
        report = run_probes(own, timeout=left())
        report.findings += first.findings
        report.findings += skipped(
            [p for p in rest if in_account(p, where)],
            f"opsbot could not assume the read role of account `{where.member.label}` (see the read role check)",
        )
        report.cut_short = first.cut_short + report.cut_short
    else:
        report = run_probes(rest, timeout=left())
        report.findings += first.findings
        report.cut_short = first.cut_short + report.cut_short
    report.seconds = time.monotonic() - started
    report.scope = where.scope()
    return report


# Long enough for STS from a cold container; the rest of the doctor's time is for the other checks.
IDENTITY_SECONDS = 10.0

# The regional services whose commands a fix may name; IAM, STS and Route 53 are global.
_REGIONAL_COMMAND = re.compile(
    r"\baws (apigateway|apigatewayv2|logs|ses|sesv2|sns|sqs|iot|lambda|dynamodb|events) ([a-z0-9-]+)"
)
# Fixes that send a missing permission to opsbot's own role (its stack's template): in a member account
# the permission is the member role's.
_OWN_ROLE_FIXES = (
    "the role opsbot runs as",
    "function's role in template.yaml",
    "opsbot's role (template.yaml",
    "mirror function's role",
)
# The checks of a member account's roles (bot.core.ops.checks.aws).
READ_ROLE = "read role"
ROLE_CHECKS = (READ_ROLE, "change role")
# The check of OPSBOT_ACCOUNTS itself (bot.core.ops.checks.aws).
ACCOUNTS_CHECK = "accounts"


def _fitted(finding: Finding, region: str, member: Account | None) -> Finding:
    """Every regional ``aws`` command in a fix names the region it was checked in, so that pasting it into
    a shell whose default region is another changes the right resource; in a member account, a missing
    permission is added to the member role."""
    fix = finding.fix
    if member is not None and any(phrase in fix for phrase in _OWN_ROLE_FIXES):
        fix = member_permission_fix(member)
    if member is not None:
        fix = next((member_table_fix(member, *known) for known in _OWN_TABLE_FIXES if known[0] in fix), fix)
    fix = _REGIONAL_COMMAND.sub(rf"\g<0> --region {region}", fix)
    return finding if fix == finding.fix else dataclasses.replace(finding, fix=fix)


# Fixes that send a missing table to opsbot's stack (its template parameters): opsbot's stack creates tables
# in its own account only. (what the fix names, the table's setting, member-account.yaml's parameter, who
# makes such a table in a member account)
_OWN_TABLE_FIXES = (
    ("MailingTableExists=false", "OPSBOT_MAILING_TABLE", "MailingTableName",
     "a stack of opsbot's deployed there for its SES feedback (docs/accounts.md#events-from-member-accounts)"),
    ("DeviceTableExists=false", "OPSBOT_DEVICE_TABLE", "DeviceTableName",
     "a stack of opsbot's deployed there for its IoT registrations (docs/accounts.md#events-from-member-accounts)"),
    ("FanoutTableNames (OPSBOT_FANOUT_TABLE)", "OPSBOT_FANOUT_TABLE", "FanoutTableNames",
     "the aws-lambda-fanout CLI run with that account's credentials (`./fanout deploy`)"),
)  # fmt: skip


def member_table_fix(member: Account, _: str, setting: str, parameter: str, maker: str) -> str:
    """A table missing in a member account: it is made there, under the name opsbot uses in every account
    (its ``setting``), and the member roles are granted it by that name."""
    return (
        f"Create the table in account `{member.label}` with the name {setting} gives it (opsbot uses the same "
        f"name in every account): {maker} does. Then give member-account.yaml's {parameter} parameter that "
        "name there, so that its roles may use it."
    )


def member_permission_fix(member: Account) -> str:
    return (
        f"Allow it for account `{member.label}`'s read role ({member.role_arn}): deploy the current "
        "member-account.yaml there (its read role has every read the commands make), or add the permission "
        "named above to that role."
    )
