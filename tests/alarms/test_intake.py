"""The alarm intake end to end: moto's state table, the local Slack server, sample events."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from bot.aws import mailing
from bot.config import Settings
from bot.core.alarms.delivery import OUTBOX_PK
from bot.intake.alarms import AlarmsApp
from bot.local.slack_api import LocalSlack
from tests.alarms.conftest import ALERTS, FakeFind, sample, sns_message, sqs_event

SLACK_DOWN = "http://127.0.0.1:9/api/"  # nothing listens: every call fails to connect


def top_level(slack: LocalSlack) -> list[Any]:
    return [m for m in slack.visible(ALERTS) if not getattr(m, "thread_ts", None)]


def replies(slack: LocalSlack) -> list[Any]:
    return [m for m in slack.visible(ALERTS) if getattr(m, "thread_ts", None)]


def changed(message: dict[str, Any], state: str, at_ms: int) -> dict[str, Any]:
    from datetime import UTC, datetime

    stamp = (
        datetime.fromtimestamp(at_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at_ms % 1000:03d}+0000"
    )
    return {**message, "NewStateValue": state, "OldStateValue": "OK" if state == "ALARM" else "ALARM",
            "StateChangeTime": stamp}  # fmt: skip


def test_alarm_posts_at_once_then_adds_the_correlation(
    alarm_settings: Settings, slack_server: LocalSlack
) -> None:
    find = FakeFind()
    report = AlarmsApp(alarm_settings, find_errors=find, graph=None).handle(
        sample("sns_alarm_apigateway.json")
    )
    assert (report.posted, report.correlated) == (1, 1)
    [post] = top_level(slack_server)
    assert post.text.startswith(":rotating_light: ALARM: shop-api-5xx")
    # The first post said it was still looking; the update carries the group with its Look up button.
    [first] = slack_server.calls_to("chat.postMessage")
    assert "Looking for the failing requests" in json.dumps(first.params.get("blocks"))
    blocks = json.dumps(post.blocks)
    assert (
        "KeyError" in blocks
        and "alarms:lookup" in blocks
        and "e8e5b475-f1e2-11f1-bbf2-5cd8c7aa9a87" in blocks
    )
    [query] = find.queries
    assert (query.kind, query.api, query.stage, query.status) == ("api", "shop-api", "prod", "5xx")
    assert query.end_ms - query.start_ms == 300_000


def test_ok_after_alarm_updates_the_one_message_and_replies_in_its_thread(
    alarm_settings: Settings, slack_server: LocalSlack
) -> None:
    app = AlarmsApp(alarm_settings, find_errors=FakeFind(), graph=None)
    app.handle(sample("sns_alarm_apigateway.json"))
    report = app.handle(sample("sns_alarm_apigateway_ok.json"))
    assert (report.posted, report.updated, report.replies) == (0, 1, 1)
    [post] = top_level(slack_server)
    assert post.text.startswith(":white_check_mark: OK: shop-api-5xx")
    assert "was in alarm for 12 min" in json.dumps(post.blocks)
    [reply] = replies(slack_server)
    assert reply.text == ":white_check_mark: OK after 12 min" and reply.thread_ts == post.ts
    # The correlation found at ALARM stays on the message.
    assert "KeyError" in json.dumps(post.blocks)
    # The same notification again (SNS delivers at least once) changes nothing.
    again = app.handle(sample("sns_alarm_apigateway_ok.json"))
    assert again.ignored == 1 and len(slack_server.visible(ALERTS)) == 2


def test_fifty_state_changes_in_a_minute_do_not_flood(
    alarm_settings: Settings, slack_server: LocalSlack
) -> None:
    app = AlarmsApp(alarm_settings, find_errors=FakeFind(), graph=None)
    base = sns_message("sns_alarm_apigateway.json")
    t0 = 1796609405422
    for n in range(50):
        app.handle(sqs_event(changed(base, "ALARM" if n % 2 == 0 else "OK", t0 + n * 1000)))
    assert len(top_level(slack_server)) == 1
    assert len(replies(slack_server)) <= 4  # the first few changes, then the message just keeps count
    [post] = top_level(slack_server)
    assert "flapping: 50 state changes" in json.dumps(post.blocks)
    assert post.text.startswith(":white_check_mark: OK")  # the last state won


def test_many_alarms_at_once_turn_into_one_digest(
    make_alarm_settings: Callable[..., Settings], slack_server: LocalSlack
) -> None:
    app = AlarmsApp(make_alarm_settings(OPSBOT_ALARM_STORM_THRESHOLD="3"), find_errors=FakeFind(), graph=None)
    base = sns_message("sns_alarm_lambda.json")
    for n in range(12):
        name = f"fn-{n}-errors"
        message = {**base, "AlarmName": name, "AlarmArn": base["AlarmArn"].replace("orders-api-errors", name)}
        app.handle(sqs_event(message))
    # Updates of the digest are throttled; the schedule's flush shows the final count.
    app.handle({"opsbot_alarms": "flush"})
    posts = top_level(slack_server)
    digests = [m for m in posts if m.text.startswith(":rotating_light: Alarm storm")]
    assert len(digests) == 1 and len(posts) == 3 + 1
    assert "9 alarms" in digests[0].text


def test_malformed_records_are_skipped_and_the_batch_succeeds(
    alarm_settings: Settings, slack_server: LocalSlack, caplog: Any
) -> None:
    event = sample("sqs_alarm_batch_mixed.json")
    answer = AlarmsApp(alarm_settings, find_errors=FakeFind(), graph=None)(event)
    assert answer == {"batchItemFailures": []}
    names = sorted(m.text for m in top_level(slack_server))
    assert len(names) == 3 and not any("not json" in n.lower() or "hello" in n for n in names)
    assert "this is not json" in caplog.text  # logged, never posted
    assert not any("hello" in json.dumps(m.blocks) for m in slack_server.visible(ALERTS))


def test_slack_down_loses_nothing_the_next_invocation_posts_it(
    make_alarm_settings: Callable[..., Settings], slack_server: LocalSlack
) -> None:
    down = AlarmsApp(make_alarm_settings(SLACK_API_URL=SLACK_DOWN), find_errors=FakeFind(), graph=None)
    answer = down(sqs_event(sns_message("sns_alarm_apigateway.json")))
    assert answer == {"batchItemFailures": []}  # stored: the record is done, the post waits
    down.handle(sample("sns_alarm_apigateway_ok.json"))
    box = mailing.outbox_get(make_alarm_settings().state_table, now=time.time(), pk=OUTBOX_PK) or {}
    assert any(k.startswith("ep:") for k in box)
    assert slack_server.visible(ALERTS) == []
    # The schedule's flush (or any next invocation) posts the episode as it is now, then the replies.
    report = AlarmsApp(make_alarm_settings(), find_errors=FakeFind(), graph=None).handle(
        {"opsbot_alarms": "flush"}
    )
    assert report.delayed == 1
    [post] = top_level(slack_server)
    assert post.text.startswith(":white_check_mark: OK: shop-api-5xx")
    assert [r.text for r in replies(slack_server)] == [":white_check_mark: OK after 12 min"]
    box = mailing.outbox_get(make_alarm_settings().state_table, now=time.time(), pk=OUTBOX_PK) or {}
    assert not any(k.startswith("ep:") for k in box)
    # Flushing again posts nothing twice.
    AlarmsApp(make_alarm_settings(), find_errors=FakeFind(), graph=None).handle({"opsbot_alarms": "flush"})
    assert len(slack_server.visible(ALERTS)) == 2


def test_no_channel_posts_nothing(state_table: str, slack_server: LocalSlack) -> None:
    from tests.support.slack import harness_settings

    report = AlarmsApp(harness_settings(slack_server), find_errors=FakeFind(), graph=None).handle(
        sample("sns_alarm_apigateway.json")
    )
    assert report.unrouted == 1 and slack_server.visible() == []


def test_routes_send_alarms_to_their_channel(
    make_alarm_settings: Callable[..., Settings], slack_server: LocalSlack
) -> None:
    routes = json.dumps([{"match": "namespace:AWS/ApiGateway", "channel": "C0GENERAL"}])
    AlarmsApp(make_alarm_settings(OPSBOT_ALARM_ROUTES=routes), find_errors=FakeFind(), graph=None).handle(
        sample("sns_alarm_apigateway.json")
    )
    assert slack_server.visible(ALERTS) == [] and len(slack_server.visible("C0GENERAL")) == 1


def test_composite_alarm_posts_without_correlation(
    alarm_settings: Settings, slack_server: LocalSlack
) -> None:
    find = FakeFind()
    AlarmsApp(alarm_settings, find_errors=find, graph=None).handle(sample("sns_alarm_composite.json"))
    [post] = top_level(slack_server)
    blocks = json.dumps(post.blocks)
    assert "composite" in blocks and "child alarms" in blocks and find.queries == []


def test_metric_math_alarm_correlates_on_the_metric_it_reads(
    alarm_settings: Settings, slack_server: LocalSlack
) -> None:
    find = FakeFind()
    AlarmsApp(alarm_settings, find_errors=find, graph=None).handle(sample("sns_alarm_metric_math.json"))
    [query] = find.queries
    assert (query.kind, query.api, query.stage) == ("api", "shop-api", "prod")
    assert "100*errors/requests" in json.dumps(top_level(slack_server)[0].blocks)


def test_with_several_accounts_each_post_names_its_account_and_region(
    make_alarm_settings: Callable[..., Settings], slack_server: LocalSlack
) -> None:
    """As every reply and the SES alerts (docs/accounts.md): the alarm's account, by the entry with a role
    there, else opsbot's own; the line stays when the post is updated."""
    from types import SimpleNamespace

    from tests.accounts.conftest import PROD_ACCOUNT, accounts_json

    own = sns_message("sns_alarm_apigateway.json")
    prod = {**own, "AWSAccountId": PROD_ACCOUNT, "AlarmName": "prod-5xx",
            "AlarmArn": own["AlarmArn"].replace("123456789012", PROD_ACCOUNT).replace("shop-api-5xx", "prod-5xx")}  # fmt: skip
    stranger = {**own, "AWSAccountId": "999999999999", "AlarmName": "other-5xx",
                "AlarmArn": own["AlarmArn"].replace("123456789012", "999999999999").replace("shop-api-5xx", "other-5xx")}  # fmt: skip
    app = AlarmsApp(make_alarm_settings(OPSBOT_ACCOUNTS=accounts_json()), find_errors=FakeFind(), graph=None)
    context = SimpleNamespace(
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:opsbot-Alarms"
    )
    app.handle(sqs_event(own, prod, stranger), context)
    app.handle(sample("sns_alarm_apigateway_ok.json"), context)  # shop-api-5xx is OK again: updated

    def line(name: str) -> str:
        [post] = [m for m in top_level(slack_server) if name in m.text]
        return json.dumps(post.blocks[-1], ensure_ascii=False)

    assert "Account `own` (123456789012) · region `us-east-1`" in line("OK: shop-api-5xx")
    assert f"Account `prod` ({PROD_ACCOUNT}) · region `us-east-1`" in line("prod-5xx")
    assert "Account 999999999999 (no entry of OPSBOT_ACCOUNTS has a role there)" in line("other-5xx")


@pytest.mark.parametrize("accounts", ["", json.dumps({"own": {"regions": ["us-east-1"]}})])
def test_with_one_account_or_none_posts_name_no_account(
    make_alarm_settings: Callable[..., Settings], slack_server: LocalSlack, accounts: str
) -> None:
    settings = make_alarm_settings(OPSBOT_ACCOUNTS=accounts) if accounts else make_alarm_settings()
    AlarmsApp(settings, find_errors=FakeFind(), graph=None).handle(sample("sns_alarm_apigateway.json"))
    [post] = top_level(slack_server)
    assert ":cloud:" not in json.dumps(post.blocks)
