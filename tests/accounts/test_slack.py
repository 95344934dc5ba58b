"""Several accounts through signed requests into the real Bolt app: --account/--region, the default
chain, grants per account, buttons replayed against the account they were made for, audit records."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from bot.aws.dynamo import from_item
from bot.aws.fanout import FANOUT_TABLE_DEFINITION, register_like_cli
from bot.aws.state import create_table
from bot.listeners import fanout as listener
from bot.listeners.framework.accounts import unwrap_value
from tests.accounts.conftest import PROD_ACCOUNT, accounts_json
from tests.fanout.conftest import KINESIS_ARN
from tests.support.slack import ALICE, BOB, CAROL, SlackHarness

PROD_KINESIS = KINESIS_ARN.replace("123456789012", PROD_ACCOUNT)
PROD_CHANNEL = ("C0PROD", "prod-ops")


def policy(**extra: Any) -> str:
    return json.dumps(
        {
            "rules": [
                # Alice may toggle fan-out targets everywhere; Carol in staging only.
                {"allow": ["fanout.*"], "users": ["U0ALICE"]},
                {"allow": ["fanout.*"], "users": ["U0CAROL"], "accounts": ["staging"]},
            ],
            **extra,
        }
    )


@pytest.fixture
def tables(state_table: str, in_prod: Callable[[], Any]) -> None:
    """The own account's table holds "replica"; prod's holds "prod-replica" (different demo data)."""
    create_table("fanoutTargets", FANOUT_TABLE_DEFINITION)
    register_like_cli(
        "fanoutTargets", source_arn=KINESIS_ARN, target_id="replica", target_type="kinesis", destination="o"
    )
    with in_prod():
        create_table("fanoutTargets", FANOUT_TABLE_DEFINITION)
        register_like_cli(
            "fanoutTargets",
            source_arn=PROD_KINESIS,
            target_id="prod-replica",
            target_type="kinesis",
            destination="o",
            active=True,
        )


def prod_items(in_prod: Callable[[], Any]) -> list[dict[str, Any]]:
    from bot.aws.clients import client

    with in_prod():
        return [from_item(i) for i in client("dynamodb").scan(TableName="fanoutTargets")["Items"]]


def audits() -> list[dict[str, Any]]:
    from bot.aws.clients import client

    items = client("dynamodb").scan(TableName="opsbot-state")["Items"]
    return sorted(
        (from_item(i) for i in items if i["pk"]["S"].startswith("audit#")), key=lambda a: str(a.get("time"))
    )


def test_a_command_in_a_second_account(
    make_harness: Callable[..., SlackHarness], tables: None, sts_calls: list[dict[str, Any]]
) -> None:
    harness = make_harness(OPSBOT_ACCOUNTS=accounts_json(), OPSBOT_POLICY=policy())
    harness.command("/fanout", "list --account prod")
    shown = harness.last()
    assert "prod-replica" in json.dumps(shown.blocks) and '"replica' not in json.dumps(shown.blocks)
    # Several accounts: the reply names the account and region.
    assert f"Account `prod` ({PROD_ACCOUNT}) · region `us-east-1`" in json.dumps(
        shown.blocks, ensure_ascii=False
    )
    assert [(c["RoleSessionName"], c["SourceIdentity"], c["ExternalId"]) for c in sts_calls] == [
        ("opsbot-U0ALICE", "U0ALICE", "opsbot-prod-1")
    ]
    harness.command("/fanout", "list")  # the default: opsbot's own account
    own = harness.last()
    assert "replica" in json.dumps(own.blocks) and "prod-replica" not in json.dumps(own.blocks)
    assert "Account `own`" in json.dumps(own.blocks)
    records = [a for a in audits() if a["action"] == "fanout.list"]
    assert [(a["account"], a["region"]) for a in records] == [("prod", "us-east-1"), ("own", "us-east-1")]


def test_the_channels_account_is_the_default(make_harness: Callable[..., SlackHarness], tables: None) -> None:
    harness = make_harness(
        OPSBOT_ACCOUNTS=accounts_json(), OPSBOT_POLICY=policy(channel_accounts={"C0PROD": "prod"})
    )
    harness.slack.channels[PROD_CHANNEL[0]] = PROD_CHANNEL[1]
    harness.command("/fanout", "list", channel=PROD_CHANNEL)
    assert "prod-replica" in json.dumps(harness.last().blocks)
    harness.command("/fanout", "list --account own", channel=PROD_CHANNEL)  # --account wins
    assert "prod-replica" not in json.dumps(harness.last().blocks)


def test_unknown_account_and_region_outside_the_list_are_refused_in_the_ack(
    make_harness: Callable[..., SlackHarness], tables: None, sts_calls: list[dict[str, Any]]
) -> None:
    harness = make_harness(OPSBOT_ACCOUNTS=accounts_json(), OPSBOT_POLICY=policy())
    ack = harness.command("/fanout", "list --account production")
    assert (
        "There is no account `production`. The configured accounts are: `own`, `prod`, `staging`." in ack.text
    )
    ack = harness.command("/fanout", "list --account prod --region eu-west-1")
    assert "Account `prod` is not configured for region `eu-west-1`" in ack.text
    ack = harness.command("/fanout", "list --region")
    assert "`--region` needs a value" in ack.text
    assert sts_calls == []  # refused before any AWS call
    assert [a["outcome"] for a in audits()] == ["usage", "usage", "usage"]


def test_grants_per_account(
    make_harness: Callable[..., SlackHarness], tables: None, in_prod: Callable[[], Any]
) -> None:
    harness = make_harness(OPSBOT_ACCOUNTS=accounts_json(), OPSBOT_POLICY=policy())
    ack = harness.command("/fanout", f"deactivate {PROD_KINESIS} prod-replica --account prod", user=CAROL)
    assert "You may not run `fanout.deactivate`" in ack.text and "(account `staging`)" in ack.text
    assert prod_items(in_prod)[0]["active"] is True
    harness.command("/fanout", f"deactivate {PROD_KINESIS} prod-replica --account prod", user=ALICE)
    assert prod_items(in_prod)[0]["active"] is False


def test_a_button_replays_against_the_account_it_was_made_for(
    make_harness: Callable[..., SlackHarness],
    tables: None,
    in_prod: Callable[[], Any],
    sts_calls: list[dict[str, Any]],
) -> None:
    harness = make_harness(OPSBOT_ACCOUNTS=accounts_json(), OPSBOT_POLICY=policy())
    harness.command("/fanout", "list --account prod", user=ALICE)
    listing = harness.last(ALICE)
    toggles = [
        b["accessory"]
        for b in listing.blocks
        if b.get("accessory", {}).get("action_id") == listener.ACTION_DEACTIVATE
    ]
    assert toggles and unwrap_value(toggles[0]["value"])[:3] == (True, "prod", "us-east-1")
    # Bob sees the same message (made in-channel for the test) and clicks: authorized again, for prod.
    harness.click(listing, listener.ACTION_DEACTIVATE, user=BOB)
    assert prod_items(in_prod)[0]["active"] is True
    assert "You may not run `fanout.deactivate`" in harness.last(BOB).text
    # Alice's click goes to prod (not the channel's default, opsbot's own account) with the change role.
    harness.click(listing, listener.ACTION_DEACTIVATE, user=ALICE)
    assert prod_items(in_prod)[0]["active"] is False
    assert (
        sts_calls[-1]["RoleArn"].endswith(":role/opsbot-change")
        and sts_calls[-1]["SourceIdentity"] == "U0ALICE"
    )
    clicks = [a for a in audits() if a["kind"] == "action"]
    assert [(a["user"], a["outcome"], a["account"]) for a in clicks] == [
        ("U0BOB", "denied", "prod"),
        ("U0ALICE", "changed", "prod"),
    ]


def test_a_single_account_configuration_does_not_name_it(
    make_harness: Callable[..., SlackHarness], tables: None
) -> None:
    harness = make_harness(OPSBOT_ACCOUNTS=json.dumps({"own": {}}), OPSBOT_POLICY=policy())
    harness.command("/fanout", "list")
    assert "Account `" not in json.dumps(harness.last().blocks)
    assert "account" not in next(a for a in audits() if a["action"] == "fanout.list")


def test_without_accounts_region_still_works_and_account_is_refused(
    make_harness: Callable[..., SlackHarness], tables: None
) -> None:
    harness = make_harness()
    ack = harness.command("/fanout", "list --account prod")
    assert "opsbot has no accounts configured (OPSBOT_ACCOUNTS)" in ack.text
    harness.command("/fanout", "list --region us-east-1")
    assert "replica" in json.dumps(harness.last().blocks)


def test_ops_accounts_and_whoami(
    make_harness: Callable[..., SlackHarness], tables: None, sts_calls: list[dict[str, Any]]
) -> None:
    harness = make_harness(OPSBOT_ACCOUNTS=accounts_json(), OPSBOT_POLICY=policy())
    harness.command("/ops", "accounts", user=CAROL)
    text = json.dumps(harness.last(CAROL).blocks)
    assert "*own*" in text and "*prod*" in text and "*staging*" in text
    assert "assumed as `arn:aws:sts::222222222222:assumed-role/opsbot-read/opsbot-U0CAROL`" in text
    assert "opsbot-change/opsbot-U0CAROL" in text  # the change role is checked too
    assert {c["RoleArn"] for c in sts_calls} == {
        "arn:aws:iam::222222222222:role/opsbot-read",
        "arn:aws:iam::222222222222:role/opsbot-change",
        "arn:aws:iam::333333333333:role/opsbot-read",
    }
    harness.command("/ops", "whoami", user=CAROL)
    whoami = harness.last(CAROL).text
    assert "• `staging` (us-east-1): may change `fanout.activate`, `fanout.deactivate`" in whoami
    assert "• `prod` (us-east-1, ap-southeast-1): may change nothing" in whoami
