"""The buttons of an alarm post, clicked through signed requests into the real Bolt app."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from bot.aws import alarms as aws_alarms
from bot.intake.alarms import AlarmsApp
from bot.local.slack_api import LocalSlack, Message
from tests.alarms.conftest import ALERTS, FakeFind, sample
from tests.conftest import ONCALL_POLICY
from tests.support.slack import ALICE, BOB, SlackHarness

KEY = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:shop-api-5xx"


@pytest.fixture
def alarm_harness(make_harness: Callable[..., SlackHarness]) -> SlackHarness:
    return make_harness(OPSBOT_POLICY=json.dumps(ONCALL_POLICY), OPSBOT_ALERT_CHANNEL=ALERTS)


def posted(harness: SlackHarness) -> Message:
    AlarmsApp(harness.settings, find_errors=FakeFind(), graph=None).handle(
        sample("sns_alarm_apigateway.json")
    )
    return harness.slack.visible(ALERTS)[-1]


def audit_actions(harness: SlackHarness) -> list[tuple[str, str, str]]:
    from bot.aws.state import StateTable

    records = StateTable(harness.settings.state_table).query(
        "audit#" + __import__("time").strftime("%Y-%m-%d"), limit=50
    )
    return [(r.get("action", ""), r.get("user", ""), r.get("outcome", "")) for r in records]


def test_acknowledge_shows_who_is_on_it_and_is_audited(
    alarm_harness: SlackHarness, slack_server: LocalSlack
) -> None:
    post = posted(alarm_harness)
    alarm_harness.click(post, "alarms:ack", user=ALICE)
    updated = slack_server.find(post.ts, ALERTS)
    assert updated is not None and "<@U0ALICE> is on it" in json.dumps(updated.blocks)
    item = aws_alarms.episode_get(alarm_harness.settings.state_table, KEY)
    assert item is not None and item["ackedBy"] == "U0ALICE"
    assert ("alarms.ack", "U0ALICE", "ok") in [
        (a, u.split(":")[-1], o) for a, u, o in audit_actions(alarm_harness)
    ]


def test_unauthorized_acknowledge_and_mute_change_nothing(
    alarm_harness: SlackHarness, slack_server: LocalSlack
) -> None:
    post = posted(alarm_harness)
    before = aws_alarms.episode_get(alarm_harness.settings.state_table, KEY)
    alarm_harness.click(post, "alarms:ack", user=BOB)
    assert "You may not run `alarms.ack`" in alarm_harness.last(BOB).text
    alarm_harness.click(post, "alarms:mute", user=BOB)
    assert "You may not run `alarms.mute`" in alarm_harness.last(BOB).text
    assert aws_alarms.episode_get(alarm_harness.settings.state_table, KEY) == before
    still = slack_server.find(post.ts, ALERTS)
    assert still is not None and "is on it" not in json.dumps(still.blocks)
    outcomes = [(a, o) for a, _, o in audit_actions(alarm_harness)]
    assert ("alarms.ack", "denied") in outcomes and ("alarms.mute", "denied") in outcomes


def test_mute_stops_posting_for_an_hour_and_changes_nothing_in_aws(
    alarm_harness: SlackHarness, slack_server: LocalSlack
) -> None:
    post = posted(alarm_harness)
    alarm_harness.click(post, "alarms:mute", user=ALICE)
    updated = slack_server.find(post.ts, ALERTS)
    assert updated is not None and "muted until" in json.dumps(updated.blocks)
    revision = updated.revision
    report = AlarmsApp(alarm_harness.settings, find_errors=FakeFind(), graph=None).handle(
        sample("sns_alarm_apigateway_ok.json")
    )
    assert report.muted == 1
    after = slack_server.find(post.ts, ALERTS)
    assert after is not None and after.revision == revision and len(slack_server.visible(ALERTS)) == 1
    # The episode still follows the alarm (the state is known when the mute ends).
    item = aws_alarms.episode_get(alarm_harness.settings.state_table, KEY)
    assert item is not None and item["state"] == "OK"


def test_errors_since_and_look_up_answer_the_clicker(
    alarm_harness: SlackHarness, slack_server: LocalSlack
) -> None:
    post = posted(alarm_harness)
    alarm_harness.click(post, "alarms:errors", user=BOB)
    answer = alarm_harness.last(BOB)
    assert answer.kind == "ephemeral" and "shop-api-5xx" in answer.text
    alarm_harness.click(post, "alarms:lookup", user=BOB)
    looked = alarm_harness.last(BOB)
    # The real lookup ran on the alarm's API (moto has no such API here: it says so, in a sentence).
    assert looked.kind == "ephemeral" and "There is no API `shop-api`" in looked.text
