"""AWS itself: whose credentials these are, in which region, and the state table every command audits to."""

from __future__ import annotations

from bot.aws.clients import client
from bot.aws.errors import translate
from bot.aws.wiring import TableKeys
from bot.core.ops.checks.tables import table_finding
from bot.core.ops.commands import DoctorContext
from bot.core.ops.doctor import Finding, Probe

AREA = "aws"


def identity(context: DoctorContext) -> list[Finding]:
    target = f"region {context.region}"
    try:
        who = client("sts").get_caller_identity()
    except Exception as error:
        sentence = translate(error, resource="the caller identity").message
        return [
            Finding(
                AREA,
                "identity",
                target,
                "fail",
                f"AWS did not say who these credentials are: {sentence}",
                "Check the credentials (the function's role, AWS_PROFILE or the AWS_* variables) and that the "
                "AWS endpoint is reachable (AWS_ENDPOINT_URL, a VPC's route to STS).",
            )
        ]
    account = str(who.get("Account", ""))
    found = [Finding(AREA, "identity", target, "ok", f"account {account} as {who.get('Arn', '?')}")]
    if context.account and context.account != account:
        found.append(
            Finding(
                AREA,
                "account",
                context.account,
                "fail",
                f"these credentials are for account {account}, not {context.account}",
                f"Run the doctor with credentials of account {context.account} (e.g. AWS_PROFILE=...).",
            )
        )
    return found


def state_table(context: DoctorContext) -> list[Finding]:
    """Audit records, locks and sync state have nowhere to go without it (the shared table check)."""
    return [
        table_finding(
            AREA,
            "state table",
            context.settings.state_table,
            TableKeys("pk", "sk"),
            missing_fix="Deploy the stack (it creates the table), or set OPSBOT_STATE_TABLE to the name in "
            "the stack's StateTableName output.",
            setting="OPSBOT_STATE_TABLE (the stack's StateTableName output)",
        )
    ]


def probes(context: DoctorContext) -> list[Probe]:
    return [
        Probe(AREA, "identity", f"region {context.region}", lambda: identity(context)),
        Probe(AREA, "table", context.settings.state_table, lambda: state_table(context)),
    ]
