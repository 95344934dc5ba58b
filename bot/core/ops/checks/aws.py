"""AWS itself: whose credentials these are, in which region, and the state table every command audits to."""

from __future__ import annotations

from bot.aws.clients import client
from bot.aws.errors import ACCESS_DENIED_CODES, error_code, translate
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
    table = context.settings.state_table
    try:
        described = client("dynamodb").describe_table(TableName=table)["Table"]
    except Exception as error:
        code = error_code(error)
        if code == "ResourceNotFoundException":
            return [
                Finding(
                    AREA,
                    "state table",
                    table,
                    "fail",
                    "does not exist: audit records, locks and sync state have nowhere to go",
                    "Deploy the stack (it creates the table), or set OPSBOT_STATE_TABLE to the table's name.",
                )
            ]
        if code in ACCESS_DENIED_CODES:
            return [
                Finding(
                    AREA,
                    "state table",
                    table,
                    "fail",
                    translate(error, resource=f"table {table}").message,
                    "Grant dynamodb:DescribeTable, GetItem, PutItem, UpdateItem, DeleteItem and Query on it.",
                )
            ]
        raise translate(error, resource=f"table {table}") from error
    keys = {k["AttributeName"]: k["KeyType"] for k in described.get("KeySchema", [])}
    if keys != {"pk": "HASH", "sk": "RANGE"}:
        return [
            Finding(
                AREA,
                "state table",
                table,
                "fail",
                f"its key is {', '.join(f'{n} {t}' for n, t in keys.items())}, not pk HASH + sk RANGE",
                "Point OPSBOT_STATE_TABLE at the stack's StateTable; this table belongs to something else.",
            )
        ]
    return [Finding(AREA, "state table", table, "ok", f"exists ({described.get('TableStatus', '?')})")]


def probes(context: DoctorContext) -> list[Probe]:
    return [
        Probe(AREA, "identity", f"region {context.region}", lambda: identity(context)),
        Probe(AREA, "state table", context.settings.state_table, lambda: state_table(context)),
    ]
