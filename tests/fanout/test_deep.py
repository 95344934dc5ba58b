"""check --deep: cross-account targets, proven through their own role in a second moto account."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.aws.clients import client, client_with_credentials
from bot.cli import main
from bot.core.fanout.commands import check
from tests.fanout.conftest import KINESIS_ARN, Fanout

PARTNER = "222222222222"
ROLE = f"arn:aws:iam::{PARTNER}:role/fanout-partner"


def in_partner_account(service: str, region: str = "us-east-1") -> Any:
    """A client whose calls land in the partner account's moto backend (an assumed role there)."""
    credentials = client("sts").assume_role(RoleArn=ROLE, RoleSessionName="setup")["Credentials"]
    return client_with_credentials(service, region=region, credentials=credentials)


@pytest.fixture
def partner(fanout: Fanout) -> dict[str, str]:
    """A stream and a topic in the partner account (eu-west-1 and us-east-1), and targets pointing at them."""
    in_partner_account("kinesis", "eu-west-1").create_stream(StreamName="partner-orders", ShardCount=1)
    topic = in_partner_account("sns").create_topic(Name="partner-topic")["TopicArn"]
    assert f":{PARTNER}:" in topic
    fanout.register(
        target_id="stream",
        target_type="kinesis",
        destination="partner-orders",
        role=ROLE,
        external_id="opsbot-ext-1",
        region="eu-west-1",
        active=True,
    )
    fanout.register(
        target_id="topic", target_type="sns", destination=topic, role=ROLE, external_id="x-2", active=True
    )
    fanout.register(
        target_id="gone",
        target_type="sqs",
        destination=f"https://sqs.us-east-1.amazonaws.com/{PARTNER}/missing-queue",
        role=ROLE,
        external_id="x-3",
        active=True,
    )
    fanout.register(target_id="local", target_type="kinesis", destination="same-account", active=True)
    return {"topic": topic}


def test_each_role_is_assumed_and_its_destination_described(fanout: Fanout, partner: dict[str, str]) -> None:
    # The destination is not in opsbot's own account: only the target's role can see it.
    assert client("kinesis", region="eu-west-1").list_streams()["StreamNames"] == []

    report = check(fanout.settings, deep=True)

    assert report.deep is not None
    by_id = {r.target_id: r for r in report.deep}
    assert set(by_id) == {"stream", "topic", "gone"}  # the same-account target has no role to check
    assert by_id["stream"].ok and by_id["stream"].region == "eu-west-1" and by_id["stream"].account == PARTNER
    assert "stream ACTIVE in account 222222222222 (eu-west-1)" in by_id["stream"].detail
    assert by_id["topic"].ok and "topic found" in by_id["topic"].detail
    gone = by_id["gone"]
    assert not gone.ok
    assert gone.detail.startswith(
        f"The sqs destination https://sqs.us-east-1.amazonaws.com/{PARTNER}/missing-queue could not be described "
        f"in account {PARTNER} (us-east-1) as {ROLE}: "
    )
    assert "NonExistentQueue" in gone.detail or "does not exist" in gone.detail
    (finding,) = [f for f in report.findings if f.rule == "deep"]
    assert finding.target_id == "gone" and finding.severity == "error"
    assert report.deep_failed == 1


def test_the_external_id_is_passed_and_refusals_are_sentences(
    fanout: Fanout, partner: dict[str, str]
) -> None:
    """moto never refuses AssumeRole (ARCHITECTURE.md): the refusal AWS gives for a wrong externalId is
    stubbed as documented, and the request is checked to carry the target's externalId."""
    from botocore.stub import Stubber

    from bot.core.fanout.commands import Target
    from bot.core.fanout.deep import check_one

    target = Target.from_item(
        {
            "sourceArn": KINESIS_ARN,
            "id": "t",
            "type": "kinesis",
            "destination": "s",
            "role": ROLE,
            "externalId": "wrong",
        },
        table="fanoutTargets",
    )
    message = f"User: arn:aws:sts::123456789012:assumed-role/opsbot/x is not authorized to perform: sts:AssumeRole on resource: {ROLE}"
    with Stubber(client("sts")) as stub:
        stub.add_client_error(
            "assume_role",
            "AccessDenied",
            message,
            403,
            expected_params={
                "RoleArn": ROLE,
                "RoleSessionName": "opsbot-fanout-check",
                "DurationSeconds": 900,
                "ExternalId": "wrong",
            },
        )
        result = check_one(target, "us-east-1")
    assert not result.ok
    assert result.detail.startswith(f"Could not assume {ROLE} with its externalId: ")
    assert "sts:AssumeRole" in result.detail and result.detail.endswith(".")
    # AWS's AccessDenied does not say which cause: the trust policy and the externalId come first.
    assert "trust policy" in result.detail and "externalId condition" in result.detail


def test_cli_check_deep_json(
    fanout: Fanout, partner: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["fanout", "check", "--deep", "--json"]) == 1  # one destination is missing
    document = json.loads(capsys.readouterr().out)
    assert {(d["id"], d["ok"]) for d in document["deep"]} == {
        ("stream", True),
        ("topic", True),
        ("gone", False),
    }
    assert main(["fanout", "check", "--deep"]) == 1
    out = capsys.readouterr().out
    assert "3 cross-account targets checked through their roles: 1 failed" in out
    assert "FAIL " in out and "OK   " in out


@pytest.mark.parametrize("external_id", ["not valid: has spaces", "ok-but-echoed-by-aws"])
def test_the_external_id_never_reaches_the_answer(fanout: Fanout, external_id: str) -> None:
    """STS echoes a value it rejects; a malformed id is not sent at all, any echo is masked."""
    from botocore.stub import Stubber

    from bot.core.fanout.commands import Target
    from bot.core.fanout.deep import check_one

    item = {"sourceArn": KINESIS_ARN, "id": "t", "type": "kinesis", "destination": "s", "role": ROLE,
            "externalId": external_id}  # fmt: skip
    target = Target.from_item(item, table="fanoutTargets")
    echo = f"1 validation error detected: Value '{external_id}' at 'externalId' failed to satisfy constraint"
    with Stubber(client("sts")) as stub:
        stub.add_client_error("assume_role", "ValidationError", echo, 400)
        result = check_one(target, "us-east-1")
        assert not result.ok and external_id not in result.detail
        assert external_id not in json.dumps(result.to_json()) and result.detail.endswith(".")
