"""AWS itself: whose credentials these are, in which region, the state table every command audits to, and,
when the doctor is aimed at a member account, whether each of its roles can be assumed."""

from __future__ import annotations

import functools

from bot.aws.clients import client
from bot.aws.errors import translate
from bot.aws.wiring import TableKeys
from bot.core.ops.checks.tables import table_finding
from bot.core.ops.commands import ACCOUNTS_CHECK, DoctorContext
from bot.core.ops.doctor import Finding, Probe

AREA = "aws"


def identity_target(context: DoctorContext) -> str:
    return "opsbot's own credentials" if context.member is not None else f"region {context.region}"


def identity(context: DoctorContext) -> list[Finding]:
    target = identity_target(context)
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
    if context.member is None:  # in a member account, the read role's identity is the one checked
        found += expected_account(context, account)
    return found


def expected_account(context: DoctorContext, account: str) -> list[Finding]:
    """``--expect-account``: the checks must be made in that account."""
    if not context.expect_account or context.expect_account == account:
        return []
    if context.member is not None:
        fix = (
            f"Check the roleArn of account `{context.member.label}` in OPSBOT_ACCOUNTS, or aim the doctor "
            "at another account (`--account NAME`)."
        )
    else:
        fix = f"Run the doctor with credentials of account {context.expect_account} (e.g. AWS_PROFILE=...)."
    return [
        Finding(
            AREA,
            "account",
            context.expect_account,
            "fail",
            f"these credentials are for account {account}, not {context.expect_account}",
            fix,
        )
    ]


def member_role(context: DoctorContext, kind: str, role_arn: str) -> list[Finding]:
    """One of the member account's roles, assumed as the commands assume it (the external id, in the name of
    the person who asked), and whose identity STS then says it is: the account's own check of
    ``/ops accounts``."""
    from bot.aws.accounts import probe_role
    from bot.errors import AwsError

    member = context.member
    assert member is not None
    check = f"{kind} role"
    try:
        who = probe_role(
            role_arn,
            external_id=member.external_id,
            principal=context.principal or "opsbot-doctor",
            account=member.label,
        )
    except AwsError as error:
        return [Finding(AREA, check, role_arn, "fail", error.message, error.hint or "")]
    account = str(who.get("Account", ""))
    if member.account_id and account != member.account_id:
        return [
            Finding(
                AREA,
                check,
                role_arn,
                "fail",
                f"the credentials are for account {account}, not {member.account_id}",
                f"Check the role ARN of account `{member.label}` in OPSBOT_ACCOUNTS.",
            )
        ]
    found = [Finding(AREA, check, role_arn, "ok", f"assumed as {who.get('Arn', '?')}")]
    if kind == "read":
        found += expected_account(context, account)
    return found


def accounts_configuration(context: DoctorContext) -> list[Finding]:
    """OPSBOT_ACCOUNTS, when set: every other command refuses to run while it is malformed, so the doctor
    (which runs all the same, in opsbot's own account) says what is wrong with it and where to fix it."""
    from bot.errors import ConfigError

    try:
        accounts = context.settings.accounts()
    except ConfigError as error:
        return [
            Finding(
                AREA,
                ACCOUNTS_CHECK,
                "OPSBOT_ACCOUNTS",
                "fail",
                f"{error.message} Every command but the doctor refuses to run until it is fixed.",
                "Correct the stack's Accounts parameter (OPSBOT_ACCOUNTS) and redeploy: one JSON object, an "
                'entry per account such as {"prod": {"roleArn": "arn:aws:iam::222222222222:role/'
                'opsbot-member-read", "externalId": "...", "regions": ["us-east-1"]}} (docs/accounts.md, '
                "the configuration).",
            )
        ]
    named = ", ".join(a.name + (" (default)" if a is accounts.default() else "") for a in accounts.entries)
    count = f"{len(accounts.entries)} account" + ("" if len(accounts.entries) == 1 else "s")
    return [Finding(AREA, ACCOUNTS_CHECK, "OPSBOT_ACCOUNTS", "ok", f"{count}: {named}")]


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
    # opsbot's own credentials and state table: in its own account, wherever the doctor is aimed.
    found = [
        Probe(AREA, "identity", identity_target(context), lambda: identity(context), own=True),
        Probe(AREA, "table", context.settings.state_table, lambda: state_table(context), own=True),
    ]
    if context.settings.accounts_json:
        found.append(
            Probe(AREA, ACCOUNTS_CHECK, "OPSBOT_ACCOUNTS", lambda: accounts_configuration(context), own=True)
        )
    member = context.member
    if member is not None:
        roles = [("read", member.role_arn)]
        if member.change_role_arn:
            roles.append(("change", member.change_role_arn))
        found += [
            Probe(AREA, f"{kind} role", arn, functools.partial(member_role, context, kind, arn), own=True)
            for kind, arn in roles
        ]
    return found
