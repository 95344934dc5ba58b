"""Assumed-role credentials: per (account, person), cached until five minutes before expiry, one
AssumeRole per (account, person) even under concurrency; the refusals as sentences with the fix."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bot.aws import clients
from bot.aws.clients import Target, use_target
from bot.errors import AwsError
from tests.accounts.conftest import OWN_ACCOUNT, PROD_ACCOUNT, PROD_ROLE


def prod(user: str, region: str = "us-east-1") -> Target:
    return Target(account="prod", role_arn=PROD_ROLE, external_id="ext-1", region=region, principal=user)


def whoami() -> dict[str, Any]:
    return clients.client("sts").get_caller_identity()  # type: ignore[no-any-return]


def test_calls_go_to_the_member_account_in_the_callers_name(
    aws: None, sts_calls: list[dict[str, Any]]
) -> None:
    assert whoami()["Account"] == OWN_ACCOUNT
    with use_target(prod("U0ALICE")):
        identity = whoami()
    assert identity["Account"] == PROD_ACCOUNT
    assert "assumed-role/opsbot-read/opsbot-U0ALICE" in identity["Arn"]
    assert sts_calls == [
        {
            "RoleArn": PROD_ROLE,
            "RoleSessionName": "opsbot-U0ALICE",
            "SourceIdentity": "U0ALICE",
            "ExternalId": "ext-1",
        }
    ]
    # Resources made with the assumed credentials live in the member account only.
    with use_target(prod("U0ALICE")):
        clients.client("s3").create_bucket(Bucket="prod-only")
    assert "prod-only" not in [b["Name"] for b in clients.client("s3").list_buckets()["Buckets"]]


def test_credentials_are_per_person_and_region_independent(
    aws: None, sts_calls: list[dict[str, Any]]
) -> None:
    with use_target(prod("U0ALICE")):
        whoami()
    with use_target(prod("U0ALICE", region="ap-southeast-1")):
        assert clients.client("sts").meta.region_name == "ap-southeast-1"
        whoami()
    assert len(sts_calls) == 1  # another region: the same credentials
    with use_target(prod("U0BOB")):
        assert "opsbot-U0BOB" in whoami()["Arn"]  # never Alice's credentials
    assert [c["RoleSessionName"] for c in sts_calls] == ["opsbot-U0ALICE", "opsbot-U0BOB"]


def test_expiry_and_refresh(
    aws: None, sts_calls: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    now = [time.time()]
    monkeypatch.setattr(clients, "_now", lambda: now[0])
    with use_target(prod("U0ALICE")):
        whoami()
        now[0] += 3600 - 301  # moto's credentials last an hour: still more than five minutes left
        whoami()
        assert len(sts_calls) == 1
        now[0] += 2  # within five minutes of the expiry: renewed before the next call
        whoami()
        assert len(sts_calls) == 2
        # The renewed credentials were issued (by moto, on the real clock) just now: good for their hour.
        now[0] = time.time() + 600
        whoami()
    assert len(sts_calls) == 2


def test_one_assume_role_per_account_and_person_under_concurrency(aws: None) -> None:
    from botocore.client import BaseClient

    original = BaseClient._make_api_call
    started = threading.Event()

    def slow(self: Any, operation: str, params: Any) -> Any:
        if operation == "AssumeRole":
            started.set()
            threading.Event().wait(0.2)  # every other thread arrives while this call is in flight
        return original(self, operation, params)

    BaseClient._make_api_call = slow  # type: ignore[method-assign]
    try:
        errors: list[BaseException] = []

        def work(user: str) -> None:
            try:
                with use_target(prod(user)):
                    whoami()
            except BaseException as error:  # pragma: no cover - reported below
                errors.append(error)

        threads = [threading.Thread(target=work, args=(u,)) for u in ["U0ALICE"] * 8 + ["U0BOB"] * 4]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]
    assert errors == []
    calls = {key[2]: n for key, n in clients.assume_role_calls.items()}
    assert calls == {"U0ALICE": 1, "U0BOB": 1}


def _refusal(code: str, message: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "AssumeRole")


BOT = "arn:aws:sts::123456789012:assumed-role/opsbot-SlackFunctionRole-1/opsbot-Slack"


@pytest.mark.parametrize(
    ("code", "message", "says", "fix"),
    [
        (
            "AccessDenied",
            f"User: {BOT} is not authorized to perform: sts:AssumeRole on resource: {PROD_ROLE}",
            "the role does not exist, its trust policy does not name opsbot's function roles, or the "
            "externalId in OPSBOT_ACCOUNTS does not match",
            "Deploy member-account.yaml",
        ),
        (
            "AccessDenied",
            f"User: {BOT} is not authorized to perform: sts:AssumeRole on resource: {PROD_ROLE} with an "
            "explicit deny in a service control policy",
            "a service control policy of your AWS Organization denies it",
            "organization's administrator",
        ),
        (
            "AccessDenied",
            f"User: {BOT} is not authorized to perform: sts:AssumeRole on resource: {PROD_ROLE} because no "
            "identity-based policy allows the sts:AssumeRole action",
            "opsbot's own function role is not allowed to call sts:AssumeRole",
            "Accounts parameter",
        ),
        (
            "AccessDenied",
            f"User: {BOT} is not authorized to perform: sts:SetSourceIdentity on resource: {PROD_ROLE}",
            "does not allow sts:SetSourceIdentity",
            "current member-account.yaml",
        ),
        (
            "RegionDisabledException",
            "STS is not activated in this region",
            "STS is not activated",
            "Activate",
        ),
        (
            "ExpiredToken",
            "The security token included in the request is expired",
            "rejected opsbot's own",
            "Refresh",
        ),
    ],
)
def test_a_role_that_cannot_be_assumed_is_a_sentence_with_the_fix(
    aws: None, code: str, message: str, says: str, fix: str
) -> None:
    from botocore.stub import Stubber

    with use_target(None):
        sts = clients.client("sts")
    with Stubber(sts) as stub:
        stub.add_client_error(
            "assume_role", service_error_code=code, service_message=message, http_status_code=403
        )
        with use_target(prod("U0ALICE")), pytest.raises(AwsError) as refused:
            clients.client("logs")
    text = str(refused.value)
    assert "opsbot could not assume role" in text and PROD_ROLE in text and "account `prod`" in text
    assert says in text and fix in text
    # Nothing was cached: the next use tries again.
    assert (PROD_ROLE, "ext-1", "U0ALICE") not in clients._sessions


def test_opsbots_own_table_stays_in_its_own_account(aws: None) -> None:
    """The state table (locks, rate reservations, digests) is opsbot's, whatever account a command reads:
    a member account's DynamoDB client sends calls on it to opsbot's own account."""
    from bot.aws.state import StateTable, create_state_table

    create_state_table("opsbot-state")
    state = StateTable("opsbot-state")
    with use_target(prod("U0ALICE")):
        ddb = clients.client("dynamodb")
        ddb.put_item(TableName="opsbot-state", Item={"pk": {"S": "x"}, "sk": {"S": "y"}})
        assert ddb.get_item(TableName="opsbot-state", Key={"pk": {"S": "x"}, "sk": {"S": "y"}})["Item"]
        with pytest.raises(ClientError) as refused:  # errors come back as they would have
            ddb.put_item(
                TableName="opsbot-state",
                Item={"pk": {"S": "x"}, "sk": {"S": "y"}},
                ConditionExpression="attribute_not_exists(pk)",
            )
        assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
        assert ddb.list_tables()["TableNames"] == []  # the member account has no table of its own
    assert state.get("x", "y") is not None
