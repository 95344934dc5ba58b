"""The CLI's --account, --region and --profile: on every command, before or after its name."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.aws.fanout import FANOUT_TABLE_DEFINITION, register_like_cli
from bot.aws.state import create_table
from bot.cli import main
from tests.accounts.conftest import PROD_ACCOUNT, PROD_CHANGE_ROLE, PROD_ROLE, accounts_json
from tests.fanout.conftest import KINESIS_ARN


@pytest.fixture
def two_tables(aws: None, in_prod: Callable[[], Any], monkeypatch: pytest.MonkeyPatch) -> None:
    create_table("fanoutTargets", FANOUT_TABLE_DEFINITION)
    register_like_cli(
        "fanoutTargets", source_arn=KINESIS_ARN, target_id="own-t", target_type="sqs", destination="q"
    )
    with in_prod():
        create_table("fanoutTargets", FANOUT_TABLE_DEFINITION)
        register_like_cli(
            "fanoutTargets",
            source_arn=KINESIS_ARN.replace("123456789012", PROD_ACCOUNT),
            target_id="prod-t",
            target_type="sqs",
            destination="q",
        )
    monkeypatch.setenv("OPSBOT_ACCOUNTS", accounts_json())


def targets(capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    assert main(list(argv)) == 0
    document = json.loads(capsys.readouterr().out)
    return [t["id"] for source in document["sources"] for t in source["targets"]]


def test_account_before_or_after_the_command(
    two_tables: None, capsys: pytest.CaptureFixture[str], sts_calls: list[dict[str, Any]]
) -> None:
    assert targets(capsys, "fanout", "list", "--json") == ["own-t"]
    assert targets(capsys, "--account", "prod", "fanout", "list", "--json") == ["prod-t"]
    assert targets(capsys, "fanout", "list", "--json", "--account=prod", "--region", "us-east-1") == [
        "prod-t"
    ]
    # In the name of the person the terminal's credentials are (moto's: the IAM user "moto").
    assert (sts_calls[0]["RoleSessionName"], sts_calls[0]["SourceIdentity"]) == (
        "opsbot-cli-moto",
        "cli-moto",
    )
    assert sts_calls[0]["ExternalId"] == "opsbot-prod-1"


def test_a_change_from_the_terminal_assumes_the_change_role(
    two_tables: None, capsys: pytest.CaptureFixture[str], sts_calls: list[dict[str, Any]]
) -> None:
    """changeRoleArn serves commands that change something, from the terminal as from Slack."""
    assert targets(capsys, "--account", "prod", "fanout", "list", "--json") == ["prod-t"]
    assert sts_calls[-1]["RoleArn"] == PROD_ROLE
    source = KINESIS_ARN.replace("123456789012", PROD_ACCOUNT)
    assert main(["--account", "prod", "fanout", "deactivate", source, "prod-t", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    assert sts_calls[-1]["RoleArn"] == PROD_CHANGE_ROLE
    assert sts_calls[-1]["SourceIdentity"] == "cli-moto"
    # A plan reads; the same command with --apply changes.
    from bot.cli import build_parser, changes

    parser = build_parser()
    assert not changes(parser.parse_args(["dns", "resync", "corp.example.com"]))
    assert changes(parser.parse_args(["dns", "resync", "corp.example.com", "--apply"]))
    assert not changes(parser.parse_args(["fanout", "check"]))


SSO_ROLE = "AWSReservedSSO_Operators_0123456789abcdef"
SSO_IDENTITY = f"arn:aws:sts::{PROD_ACCOUNT}:assumed-role/{SSO_ROLE}/jane.doe@example.com"


@pytest.mark.parametrize(
    ("message", "says", "fix"),
    [
        (
            f"User: {SSO_IDENTITY} is not authorized to perform: sts:AssumeRole on resource: {PROD_ROLE}",
            "the role's trust policy does not name you",
            f"Add the ARN of your role `{SSO_ROLE}` to the OperatorPrincipalArns parameter of "
            "member-account.yaml in that account, or use --profile with credentials of that account.",
        ),
        (
            f"User: {SSO_IDENTITY} is not authorized to perform: sts:AssumeRole on resource: {PROD_ROLE} "
            "because no identity-based policy allows the sts:AssumeRole action",
            "are not allowed to call sts:AssumeRole on it",
            "in your own role's policy (or permission set), or use --profile",
        ),
    ],
)
def test_a_refusal_at_the_terminal_says_the_fix(
    two_tables: None, capsys: pytest.CaptureFixture[str], message: str, says: str, fix: str
) -> None:
    """member-account.yaml trusts opsbot's function roles: a person's own role is refused until it is in
    OperatorPrincipalArns. The CLI names them by their Identity Center user and says so."""
    from botocore.stub import Stubber

    from bot.aws import clients

    with clients.use_target(None):
        identity = clients.client("sts", attempts=2, connect_timeout=3, read_timeout=5)
        sts = clients.client("sts")
    with Stubber(identity) as who, Stubber(sts) as stub:
        who.add_response(
            "get_caller_identity", {"Account": PROD_ACCOUNT, "Arn": SSO_IDENTITY, "UserId": "AROA:jane"}
        )
        stub.add_client_error(
            "assume_role",
            service_error_code="AccessDenied",
            service_message=message,
            http_status_code=403,
            expected_params={
                "RoleArn": PROD_ROLE,
                "RoleSessionName": "opsbot-cli-jane.doe@example.com",
                "SourceIdentity": "cli-jane.doe@example.com",
                "ExternalId": "opsbot-prod-1",
            },
        )
        assert main(["--account", "prod", "fanout", "list"]) == 1
    # The account a command works in first (--account named another than the default), then the refusal.
    note, error = capsys.readouterr().err.split("\n", 1)
    assert note == f"opsbot: account prod ({PROD_ACCOUNT}), region us-east-1"
    assert error.startswith(f"opsbot: opsbot could not assume role `{PROD_ROLE}` for account `prod`"), error
    assert f"your credentials (`{SSO_IDENTITY}`)" in error and says in error and fix in error, error


def test_bad_account_or_region_is_a_usage_error_with_json(
    two_tables: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fanout", "list", "--json", "--account", "nope"]) == 2
    document = json.loads(capsys.readouterr().out)
    assert document["reason"] == "usage" and "`own`, `prod`, `staging`" in document["message"]
    assert main(["fanout", "list", "--json", "--account", "prod", "--region", "eu-west-1"]) == 2
    assert "not configured for region `eu-west-1`" in json.loads(capsys.readouterr().out)["message"]
    assert main(["fanout", "list", "--account"]) == 2


def test_profile_uses_its_credentials_as_they_are(
    two_tables: None,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sts_calls: list[dict[str, Any]],
) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text("[ops]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    config = tmp_path / "config"
    config.write_text("[profile ops]\nregion = us-east-1\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert targets(capsys, "--profile", "ops", "fanout", "list", "--json") == ["own-t"]
    assert sts_calls == []  # no role assumed
    assert main(["--profile", "ops", "--account", "prod", "fanout", "list"]) == 2
    assert "give one of them" in capsys.readouterr().err


def test_the_doctors_region_and_account_are_the_global_flags() -> None:
    """`opsbot doctor --region R --account NAME` means what it means on every command (docs/accounts.md);
    the account id the credentials must be in is `--expect-account`, the doctor's own."""
    from bot.cli import build_parser, take_global_flags

    argv, chosen = take_global_flags(
        build_parser(), ["doctor", "--region", "eu-west-1", "--account", "prod", "--expect-account", "1" * 12]
    )
    assert argv == ["doctor", "--expect-account", "1" * 12]
    assert chosen == {"region": "eu-west-1", "account": "prod"}
    argv, chosen = take_global_flags(build_parser(), ["--region", "eu-west-1", "doctor"])
    assert argv == ["doctor"] and chosen == {"region": "eu-west-1"}


def test_accounts_check_at_the_terminal_names_the_person_and_the_fix(
    two_tables: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """`opsbot accounts` assumes each role with the terminal's credentials, as --account does."""
    from botocore.stub import ANY, Stubber

    from bot.aws import clients

    with clients.use_target(None):
        sts = clients.client("sts", attempts=2, connect_timeout=3, read_timeout=5)
    refused = f"User: {SSO_IDENTITY} is not authorized to perform: sts:AssumeRole on resource: {PROD_ROLE}"
    identity = {"Account": PROD_ACCOUNT, "Arn": SSO_IDENTITY, "UserId": "AROA:jane"}
    with Stubber(sts) as stub:
        stub.add_response("get_caller_identity", identity)  # who is at the terminal
        stub.add_response("get_caller_identity", identity)  # the own account's entry
        for _ in range(3):  # prod's two roles, staging's one
            stub.add_client_error(
                "assume_role",
                service_error_code="AccessDenied",
                service_message=refused,
                http_status_code=403,
                expected_params={
                    "RoleArn": ANY,
                    "RoleSessionName": "opsbot-cli-jane.doe@example.com",
                    "SourceIdentity": "cli-jane.doe@example.com",
                    "ExternalId": ANY,
                    "DurationSeconds": 900,
                },
            )
        assert main(["accounts", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    failed = [a for a in report["accounts"] if a["verdict"] == "fail"]
    assert len(failed) == 3
    assert all("OperatorPrincipalArns" in a["message"] and SSO_ROLE in a["message"] for a in failed)


def test_the_audit_record_names_the_person_as_cloudtrail_does(
    two_tables: None, state_table: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a role assumed in the person's name, the audit actor is the SourceIdentity the member
    account's CloudTrail shows (``cli-<name>``), the login beside it; without, ``cli:<login>`` as before,
    and no sts:GetCallerIdentity is asked for it."""
    from bot.aws import clients
    from bot.aws.dynamo import from_item

    monkeypatch.setenv("LOGNAME", "jdoe")  # the laptop's login, not the person AWS knows ("moto")
    asked: list[str] = []

    def hook(service: str, created: Any) -> None:
        if service == "sts":
            created.meta.events.register(
                "provide-client-params.sts.GetCallerIdentity", lambda **_: asked.append("GetCallerIdentity")
            )

    remove = clients.add_client_hook(hook)
    try:
        source = KINESIS_ARN.replace("123456789012", PROD_ACCOUNT)
        assert main(["--account", "prod", "fanout", "deactivate", source, "prod-t", "--json"]) == 0
        assert len(asked) == 1  # the person's name, once, for the session and the record
        assert main(["fanout", "deactivate", KINESIS_ARN, "own-t", "--json"]) == 0
        assert len(asked) == 1  # no --account: no STS call
    finally:
        remove()
    capsys.readouterr()
    items = clients.client("dynamodb").scan(TableName="opsbot-state")["Items"]
    records = sorted(
        (from_item(i) for i in items if i["pk"]["S"].startswith("audit#")), key=lambda a: str(a["time"])
    )
    assert [(r["account"], r["user"], r.get("user_name", "")) for r in records] == [
        ("prod", "cli-moto", "cli:jdoe"),
        ("own", "cli:jdoe", ""),
    ]


def test_the_changes_by_is_the_same_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a change stores as its "by" (a re-enabled address's history, a device's owner) is cli_actor's."""
    from bot.aws.clients import Target, use_target
    from bot.security.audit import cli_actor

    monkeypatch.setenv("LOGNAME", "jdoe")
    assert cli_actor() == "cli:jdoe"
    person = Target(account="prod", role_arn=PROD_ROLE, principal="cli-jane.doe@example.com")
    with use_target(person):
        assert cli_actor() == "cli-jane.doe@example.com"
    with use_target(Target(account="own")):  # an entry without a role: nobody assumed in a name
        assert cli_actor() == "cli:jdoe"
