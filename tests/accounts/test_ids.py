"""The "Look up request ids" shortcut and ``@opsbot`` mentions in several accounts, through signed requests
into the real Bolt app: in a channel bound to an account they look up there, with the asker's assumed role,
authorized for that account; a mention may name another with ``--account``; the answers name the account
and their buttons carry it (Share in thread posts prod's lookup, whatever the channel's default is)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.aws import logs as cw
from bot.aws.clients import client
from bot.aws.dynamo import from_item
from bot.listeners.framework.accounts import unwrap_value
from bot.local.apilogs_traffic import write_events
from bot.local.seeds import apilogs as seed_module
from bot.local.slack_api import Message
from tests.accounts.conftest import PROD_ACCOUNT, PROD_ROLE, accounts_json
from tests.support.slack import ALICE, BOB, OPS_CHANNEL, SlackHarness, find_button

CALLBACK = "apilogs_lookup_ids"
SHARE = "apilogs:share"
PROD_CHANNEL = ("C0PROD", "prod-ops")
PROD_LINE = f"Account `prod` ({PROD_ACCOUNT}) · region `us-east-1`"


@pytest.fixture(autouse=True)
def fast_limiter() -> Iterator[None]:
    with cw.use_limiter(cw.Limiter({"FilterLogEvents": 1000.0}, default_rate=1000.0, retry_delays=(0.01,))):
        yield


@pytest.fixture
def apis(aws: None, in_prod: Callable[[], Any]) -> tuple[seed_module.DemoApi, seed_module.DemoApi]:
    """The same API (same id) in opsbot's own account and in prod, each with requests of its own."""
    now = datetime.now(UTC)
    api_id, account = seed_module.create_api("us-east-1")
    own = seed_module.generate(api_id, account, now, count=12, seed=3)
    write_events(client("logs"), (e for r in own.requests for e in r.events))
    with in_prod():
        _, prod_account = seed_module.create_api("us-east-1", api_id=api_id)
        prod = seed_module.generate(api_id, prod_account, now, count=12, seed=29)
        write_events(client("logs"), (e for r in prod.requests for e in r.events))
    assert prod_account == PROD_ACCOUNT
    return own, prod


def failed_id(demo: seed_module.DemoApi) -> str:
    assert demo.failed is not None
    return demo.failed.api_request_id


@pytest.fixture
def harness(make_harness: Callable[..., SlackHarness]) -> SlackHarness:
    made = make_harness(
        OPSBOT_ACCOUNTS=accounts_json(),
        OPSBOT_POLICY=json.dumps({"rules": [], "channel_accounts": {PROD_CHANNEL[0]: "prod"}}),
    )
    made.slack.channels[PROD_CHANNEL[0]] = PROD_CHANNEL[1]
    return made


def pasted(text: str, ts: str = "1700000000.000100") -> dict[str, Any]:
    return {"type": "message", "user": "U0CUSTOMER", "ts": ts, "text": text}


def mention(
    text: str, *, channel: str, user: str = ALICE[0], ts: str = "1700000100.000300"
) -> dict[str, Any]:
    return {"type": "app_mention", "user": user, "text": f"<@U0OPSBOT> {text}", "ts": ts, "channel": channel,
            "event_ts": ts, "team": "T0LOCAL", "user_team": "T0LOCAL"}  # fmt: skip


def ephemerals(harness: SlackHarness, user: tuple[str, str] = ALICE) -> list[Message]:
    return [m for m in harness.seen_by(user) if m.kind == "ephemeral"]


def posted(harness: SlackHarness, channel: str) -> list[Message]:
    return [m for m in harness.slack.visible(channel) if m.kind == "message"]


def audits() -> list[dict[str, Any]]:
    items = client("dynamodb").scan(TableName="opsbot-state")["Items"]
    return sorted(
        (from_item(i) for i in items if i["pk"]["S"].startswith("audit#")), key=lambda a: str(a.get("time"))
    )


def persons(sts_calls: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """(role, source identity) of the roles the code under test assumed (the seeds' aside)."""
    return {(c["RoleArn"], c["SourceIdentity"]) for c in sts_calls if c["RoleSessionName"] != "opsbot-seed"}


def test_the_shortcut_in_a_channel_bound_to_an_account_looks_up_there(
    harness: SlackHarness,
    apis: tuple[seed_module.DemoApi, seed_module.DemoApi],
    sts_calls: list[dict[str, Any]],
) -> None:
    own, prod = apis
    harness.shortcut(CALLBACK, pasted(f"checkout fails: {failed_id(prod)}"), channel=PROD_CHANNEL)
    (answer,) = ephemerals(harness)
    flat = json.dumps(answer.blocks, ensure_ascii=False)
    assert "KeyError" in flat and "Nothing found" not in flat, flat
    assert PROD_LINE in flat  # several accounts: the answer names the one it looked in
    # With Alice's credentials for prod's read role.
    assert persons(sts_calls) == {(PROD_ROLE, ALICE[0])}
    # Its buttons carry prod: Share and the lookup's own.
    for action in (SHARE, "apilogs:tail"):
        button, _ = find_button(answer.blocks, action)
        assert unwrap_value(button["value"])[:3] == (True, "prod", "us-east-1"), button
    (record,) = [a for a in audits() if a.get("kind") == "shortcut"]
    assert (record["account"], record["region"], record["outcome"]) == ("prod", "us-east-1", "ok")

    # Share in thread: prod's lookup in the thread, naming prod.
    harness.click(answer, SHARE)
    (shared,) = posted(harness, PROD_CHANNEL[0])
    shared_flat = json.dumps(shared.blocks, ensure_ascii=False)
    assert "KeyError" in shared_flat and PROD_LINE in shared_flat
    (click,) = [a for a in audits() if a.get("command") == f"button {SHARE}"]
    assert (click["account"], click["outcome"]) == ("prod", "shared")

    # The same id in a channel bound to no account: the default (opsbot's own), where it is not.
    harness.shortcut(CALLBACK, pasted(failed_id(prod), ts="1700000000.000900"))
    elsewhere = json.dumps(ephemerals(harness)[-1].blocks, ensure_ascii=False)
    assert "Nothing found" in elsewhere and "Account `own`" in elsewhere
    # And opsbot's own request is not found in prod.
    harness.shortcut(CALLBACK, pasted(failed_id(own), ts="1700000000.000950"), channel=PROD_CHANNEL)
    assert "Nothing found" in json.dumps(ephemerals(harness)[-1].blocks)


def test_a_mention_looks_up_in_the_channels_account_or_the_one_it_names(
    harness: SlackHarness,
    apis: tuple[seed_module.DemoApi, seed_module.DemoApi],
    sts_calls: list[dict[str, Any]],
) -> None:
    _, prod = apis
    # In the channel bound to prod.
    harness.event(mention(f"what happened to {failed_id(prod)}?", channel=PROD_CHANNEL[0]))
    (summary,) = posted(harness, PROD_CHANNEL[0])
    summary_flat = json.dumps(summary.blocks, ensure_ascii=False)
    assert "502" in summary_flat and PROD_LINE in summary_flat, summary_flat
    (timeline,) = ephemerals(harness)
    assert "KeyError" in json.dumps(timeline.blocks) and PROD_LINE in json.dumps(
        timeline.blocks, ensure_ascii=False
    )
    button, _ = find_button(timeline.blocks, SHARE)
    assert unwrap_value(button["value"])[1] == "prod"

    # In a channel bound to no account, aimed with --account (before or after the id).
    harness.event(
        mention(f"{failed_id(prod)} --account prod", channel=OPS_CHANNEL[0], ts="1700000100.000400")
    )
    (ops_summary,) = posted(harness, OPS_CHANNEL[0])
    assert "502" in json.dumps(ops_summary.blocks) and PROD_LINE in json.dumps(
        ops_summary.blocks, ensure_ascii=False
    )
    assert persons(sts_calls) == {(PROD_ROLE, ALICE[0])}
    records = [a for a in audits() if a.get("kind") == "event"]
    assert [(a["account"], a["outcome"], a["args"]) for a in records] == [("prod", "ok", failed_id(prod))] * 2

    # Without --account in that channel: opsbot's own account, where prod's request is not.
    harness.event(mention(failed_id(prod), channel=OPS_CHANNEL[0], ts="1700000100.000500"))
    assert "not found" in posted(harness, OPS_CHANNEL[0])[-1].text


def test_a_mention_naming_an_account_that_does_not_exist_is_refused_before_any_call(
    harness: SlackHarness,
    apis: tuple[seed_module.DemoApi, seed_module.DemoApi],
    sts_calls: list[dict[str, Any]],
) -> None:
    _, prod = apis
    before = len(sts_calls)
    harness.event(mention(f"--account nope {failed_id(prod)}", channel=OPS_CHANNEL[0]))
    refusal = ephemerals(harness)[-1].text
    assert "There is no account `nope`" in refusal and "prod" in refusal, refusal
    harness.event(mention(f"--account prod --region eu-west-1 {failed_id(prod)}", channel=OPS_CHANNEL[0],
                          ts="1700000100.000600"))  # fmt: skip
    assert "Account `prod` is not configured for region `eu-west-1`" in ephemerals(harness)[-1].text
    harness.event(mention(f"{failed_id(prod)} --account", channel=OPS_CHANNEL[0], ts="1700000100.000700"))
    assert "`--account` needs a value" in ephemerals(harness)[-1].text
    assert posted(harness, OPS_CHANNEL[0]) == [] and len(sts_calls) == before
    assert {a["outcome"] for a in audits() if a.get("kind") == "event"} == {"usage"}
    # Without ids, the help line says how to aim a mention.
    harness.event(mention("hello", channel=OPS_CHANNEL[0], ts="1700000100.000800"))
    assert "add `--account NAME`" in ephemerals(harness)[-1].text


def test_the_lookup_is_authorized_for_the_account_it_goes_to(
    make_harness: Callable[..., SlackHarness],
    apis: tuple[seed_module.DemoApi, seed_module.DemoApi],
    sts_calls: list[dict[str, Any]],
) -> None:
    """Bob may look up in opsbot's own account only: in the channel bound to prod he is refused, before
    any role is assumed in his name."""
    own, prod = apis
    policy = {
        "default_read": "deny",
        "rules": [{"allow": ["apilogs.*"], "users": [BOB[0]], "accounts": ["own"]}],
        "channel_accounts": {PROD_CHANNEL[0]: "prod"},
    }
    harness = make_harness(OPSBOT_ACCOUNTS=accounts_json(), OPSBOT_POLICY=json.dumps(policy))
    harness.slack.channels[PROD_CHANNEL[0]] = PROD_CHANNEL[1]
    harness.shortcut(CALLBACK, pasted(failed_id(prod)), user=BOB, channel=PROD_CHANNEL)
    (refused,) = ephemerals(harness, BOB)
    assert refused.text.startswith(":no_entry: You may not run `apilogs.lookup`"), refused.text
    harness.event(mention(f"--account prod {failed_id(prod)}", channel=OPS_CHANNEL[0], user=BOB[0]))
    assert ephemerals(harness, BOB)[-1].text.startswith(":no_entry:")
    assert persons(sts_calls) == set()
    # In his account, allowed.
    harness.event(mention(failed_id(own), channel=OPS_CHANNEL[0], user=BOB[0], ts="1700000100.000900"))
    assert "KeyError" in json.dumps(ephemerals(harness, BOB)[-1].blocks)
    outcomes = [(a["kind"], a.get("account"), a["outcome"]) for a in audits()]
    assert outcomes == [("shortcut", "prod", "denied"), ("event", "prod", "denied"), ("event", "own", "ok")]
