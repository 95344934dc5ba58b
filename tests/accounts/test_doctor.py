"""`/ops doctor` and `opsbot doctor` aimed at an account of OPSBOT_ACCOUNTS by name, as every command is:
the member's roles assumed in the asker's name, what the commands read there checked with the read role,
opsbot's own resources still checked in its own account. Signed requests into the real Bolt app, and the
CLI, against the demo's second account (prod, 222222222222, an assumed role in moto)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from bot.aws.fanout import FANOUT_TABLE_DEFINITION, register_like_cli
from bot.aws.state import create_table
from bot.cli import main
from tests.accounts.conftest import PROD_ACCOUNT, PROD_CHANGE_ROLE, PROD_ROLE, accounts_json
from tests.fanout.conftest import KINESIS_ARN
from tests.ops.denial import denied
from tests.support.slack import ALICE, SlackHarness

PROD_KINESIS = KINESIS_ARN.replace("123456789012", PROD_ACCOUNT)


@pytest.fixture
def prod_fanout(state_table: str, in_prod: Callable[[], Any]) -> None:
    """The fan-out targets table exists in prod only (opsbot's own account has none)."""
    with in_prod():
        create_table("fanoutTargets", FANOUT_TABLE_DEFINITION)
        register_like_cli(
            "fanoutTargets", source_arn=PROD_KINESIS, target_id="prod-t", target_type="sqs", destination="q"
        )


def findings(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def doctor_in_slack(harness: SlackHarness, text: str) -> str:
    ack = harness.command("/ops", f"doctor {text}")
    assert ack.status == 200
    return findings(harness.last(ALICE).blocks)


def test_the_doctor_aimed_at_a_member_account_by_name(
    make_harness: Callable[..., SlackHarness], prod_fanout: None, sts_calls: list[dict[str, Any]]
) -> None:
    harness = make_harness(OPSBOT_ACCOUNTS=accounts_json())
    answer = doctor_in_slack(harness, "--account prod --only aws,fanout")
    # Each role assumed in the asker's name, with the account's external id (ok checks are listed by name).
    assert "ok (5): accounts, change role, identity, read role, table" in answer
    assert {(c["RoleArn"], c["SourceIdentity"], c["ExternalId"]) for c in sts_calls} == {
        (PROD_ROLE, "U0ALICE", "opsbot-prod-1"),
        (PROD_CHANGE_ROLE, "U0ALICE", "opsbot-prod-1"),
    }
    # The fan-out table was found in prod; opsbot's state table (own) was found where opsbot runs.
    assert "there is no table fanoutTargets" not in answer
    assert (
        f"account prod ({PROD_ACCOUNT}), us-east-1 (opsbot's own resources: its own account, us-east-1)"
        in answer
    )
    assert f"Account `prod` ({PROD_ACCOUNT}) · region `us-east-1`" in answer

    # The same doctor in opsbot's own account: no table there, and no role assumed.
    before = len(sts_calls)
    own = doctor_in_slack(harness, "--only aws,fanout")
    assert "there is no table fanoutTargets in this region" in own
    assert "read role" not in own and len(sts_calls) == before

    # --region within prod's regions: what the commands read is read there (no table in Singapore).
    singapore = doctor_in_slack(harness, "--account prod --region ap-southeast-1 --only fanout")
    assert "there is no table fanoutTargets in this region" in singapore
    assert "account prod (222222222222), ap-southeast-1" in singapore


def test_mail_device_and_dns_in_a_member_account(
    make_harness: Callable[..., SlackHarness], prod_fanout: None, in_prod: Callable[[], Any]
) -> None:
    """The tables the commands read are looked for in prod (the mailing table is there, the catalog is not);
    the SES and IoT wiring of the stack in prod is that stack's to check; the DNS zones are prod's."""
    from bot.aws.mailing import create_mailing_table

    with in_prod():
        create_mailing_table("mailing")
    harness = make_harness(OPSBOT_ACCOUNTS=accounts_json())
    answer = doctor_in_slack(harness, "--account prod --only mail,device,dns")
    assert "there is no table mailing" not in answer
    assert "there is no table iotCatalog in this region" in answer  # not created in prod
    assert "SES feedback in account `prod` goes to the opsbot stack deployed there" in answer
    assert "IoT registrations in account `prod` go to the opsbot stack deployed there" in answer
    assert "no DNS zone of OPSBOT_DNS_ZONES names account `prod`" in answer


def test_what_the_doctor_refuses_before_any_call(
    make_harness: Callable[..., SlackHarness], prod_fanout: None, sts_calls: list[dict[str, Any]]
) -> None:
    harness = make_harness(OPSBOT_ACCOUNTS=accounts_json())
    outside = harness.command("/ops", "doctor --account prod --region eu-west-1").text
    assert "Account `prod` is not configured for region `eu-west-1`" in outside
    by_id = harness.command("/ops", f"doctor --account {PROD_ACCOUNT}").text
    assert f"There is no account `{PROD_ACCOUNT}`" in by_id
    assert f"`prod` is the one in {PROD_ACCOUNT}" in by_id
    assert f"use `--expect-account {PROD_ACCOUNT}`" in by_id
    assert "12 digits" in harness.command("/ops", "doctor --expect-account 42").text
    assert sts_calls == []
    # Without OPSBOT_ACCOUNTS the old flag's users are pointed at the new one too.
    plain = make_harness().command("/ops", "doctor --account 123456789012").text
    assert "no accounts configured" in plain and "use `--expect-account 123456789012`" in plain


def test_expect_account_checks_the_account_the_checks_are_made_in(
    make_harness: Callable[..., SlackHarness], prod_fanout: None
) -> None:
    harness = make_harness(OPSBOT_ACCOUNTS=accounts_json())
    wrong = doctor_in_slack(harness, "--account prod --expect-account 123456789012 --only aws")
    assert "these credentials are for account 222222222222, not 123456789012" in wrong
    assert "Check the roleArn of account `prod` in OPSBOT_ACCOUNTS" in wrong
    right = doctor_in_slack(harness, f"--account prod --expect-account {PROD_ACCOUNT} --only aws")
    assert "these credentials are for account" not in right


def test_a_role_that_cannot_be_assumed_skips_the_accounts_checks_not_opsbots_own(
    make_harness: Callable[..., SlackHarness], prod_fanout: None
) -> None:
    harness = make_harness(OPSBOT_ACCOUNTS=accounts_json())
    with denied("AssumeRole"):
        answer = doctor_in_slack(harness, "--account prod --only aws,fanout")
    assert (
        "opsbot could not assume role `arn:aws:iam::222222222222:role/opsbot-read` for account `prod`"
        in answer
    )
    assert "not checked: opsbot could not assume the read role of account `prod`" in answer
    assert "there is no table" not in answer
    # opsbot's own credentials and state table: checked in its own account all the same.
    assert "also ok (3): accounts, identity, table" in answer


def test_a_permission_the_member_role_lacks_is_fixed_in_the_member_role(
    make_harness: Callable[..., SlackHarness], prod_fanout: None
) -> None:
    """DescribeTable refused everywhere: prod's fan-out table names prod's read role in its fix, opsbot's
    own state table names opsbot's role."""
    harness = make_harness(OPSBOT_ACCOUNTS=accounts_json())
    with denied("DescribeTable"):
        answer = doctor_in_slack(harness, "--account prod --only aws,fanout")
    assert (
        f"Allow it for account `prod`'s read role ({PROD_ROLE}): deploy the current member-account.yaml"
        in answer
    )
    assert "Grant dynamodb:DescribeTable on table/opsbot-state to the role opsbot runs as" in answer
    assert "Grant dynamodb:DescribeTable on table/fanoutTargets" not in answer


def cli_doctor(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_the_cli_doctor_takes_the_global_account_and_region(
    prod_fanout: None,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sts_calls: list[dict[str, Any]],
) -> None:
    monkeypatch.setenv("OPSBOT_ACCOUNTS", accounts_json())
    code, document = cli_doctor(capsys, "--account", "prod", "doctor", "--only", "aws,fanout")
    checks = {(c["check"], c["target"]): c for c in document["checks"]}
    assert checks[("read role", PROD_ROLE)]["status"] == "ok"
    assert "/opsbot-cli-" in checks[("read role", PROD_ROLE)]["detail"]
    assert checks[("table", "targets table fanoutTargets")]["status"] == "ok"
    assert checks[("table", "state table opsbot-state")]["status"] == "ok"
    assert document["scope"].startswith(f"account prod ({PROD_ACCOUNT}), us-east-1")
    assert sts_calls and all(c["RoleSessionName"].startswith("opsbot-cli-") for c in sts_calls)
    assert code == 1  # prod has no fan-out function: its hook check fails
    # After the command's name, with --expect-account: the same.
    code, document = cli_doctor(
        capsys, "doctor", "--only", "aws", "--account", "prod", "--expect-account", PROD_ACCOUNT
    )
    assert code == 0 and not [c for c in document["checks"] if c["check"] == "account"]
    # An account id given to --account: a usage error pointing at --expect-account.
    code, document = cli_doctor(capsys, "doctor", "--account", PROD_ACCOUNT)
    assert code == 2 and document["reason"] == "usage"
    assert f"--expect-account {PROD_ACCOUNT}" in document["message"]
    # Another command keeps the plain refusal (with the name of the account that id is).
    code, document = cli_doctor(capsys, "fanout", "list", "--account", PROD_ACCOUNT)
    assert code == 2 and "expect-account" not in document["message"]
    assert f"`prod` is the one in {PROD_ACCOUNT}" in document["message"]


# A copy-paste gone wrong: two entries without roleArn (only opsbot's own account may leave it out).
MALFORMED = json.dumps({"own": {}, "prod": {"regions": ["us-east-1"]}})


def test_a_malformed_configuration_is_a_failing_check_of_the_doctor_not_a_refusal(
    make_harness: Callable[..., SlackHarness], state_table: str
) -> None:
    """Every command refuses to run while OPSBOT_ACCOUNTS is malformed (nothing can be aimed anywhere);
    the doctor, the tool for finding out why, runs in opsbot's own account and reports it with the fix,
    even under a policy whose rules name accounts (which cannot be checked against the configuration)."""
    policy = {
        "rules": [{"allow": ["fanout.*"], "users": [ALICE[0]], "accounts": ["prod"]}],
        "default_read": "allow",
        "channel_accounts": {"C0PROD": "prod"},
    }
    harness = make_harness(OPSBOT_ACCOUNTS=MALFORMED, OPSBOT_POLICY=json.dumps(policy))
    refused = harness.command("/fanout", "list").text
    assert "several entries without roleArn (own, prod)" in refused
    answer = doctor_in_slack(harness, "--only aws")
    found = json.loads(answer)
    failing = next(b for b in found if "OPSBOT_ACCOUNTS has several entries without roleArn" in json.dumps(b))
    assert "Correct the stack's Accounts parameter (OPSBOT_ACCOUNTS) and redeploy" in json.dumps(failing)
    assert "ok (2): identity, table" in answer  # opsbot's own credentials and state table, as always
    # Aimed at an account, the doctor cannot go anywhere either: refused with the configuration's error.
    aimed = harness.command("/ops", "doctor --account prod").text
    assert "several entries without roleArn" in aimed


def test_the_cli_doctor_reports_a_malformed_configuration(
    state_table: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSBOT_ACCOUNTS", MALFORMED)
    code, document = cli_doctor(capsys, "doctor", "--only", "aws")
    (check,) = [c for c in document["checks"] if c["check"] == "accounts"]
    assert (check["status"], check["target"]) == ("fail", "OPSBOT_ACCOUNTS")
    assert "several entries without roleArn" in check["detail"] and "Accounts parameter" in check["fix"]
    assert code == 1
    code, document = cli_doctor(capsys, "fanout", "list")
    assert (code, document["reason"]) == (3, "config")
    code, document = cli_doctor(capsys, "--account", "prod", "doctor")
    assert (code, document["reason"]) == (3, "config")
