"""API Gateway alarms correlated by ``/apilogs errors`` itself, against moto: the demo API (the traffic
generator's failing requests of several kinds), the alarm's notification through the real intake, the
post's **Look up** clicked through signed requests, and ``opsbot alarms explain --json``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from bot.aws.clients import client
from bot.cli import main
from bot.config import Settings
from bot.core.alarms.correlate import ErrorQuery, correlate, default_find_errors
from bot.core.alarms.parse import parse_batch
from bot.intake.alarms import AlarmsApp
from bot.local.apilogs_traffic import SimRequest, write_events
from bot.local.seeds import alarms as alarm_seed
from bot.local.seeds import apilogs as seed_module
from bot.local.slack_api import LocalSlack, Message
from tests.alarms.conftest import ALERTS
from tests.apilogs.test_errors import mixed, traffic
from tests.conftest import ONCALL_POLICY
from tests.support.slack import BOB, OPS_CHANNEL, SlackHarness

OPS = OPS_CHANNEL[0]


@pytest.fixture
def shop(aws: None) -> list[SimRequest]:
    """The demo API (shop-api, prod) with two rounds of every kind of failure in the last 12 minutes."""
    api_id, _ = seed_module.create_api("us-east-1")
    requests = mixed(traffic(api_id))
    write_events(client("logs"), [e for r in requests for e in r.events])
    return requests


def put_api_alarm(name: str, metric: str = "5XXError", **dimensions: str) -> None:
    dims = {"ApiName": seed_module.API_NAME, "Stage": seed_module.STAGE, **dimensions}
    client("cloudwatch").put_metric_alarm(
        AlarmName=name, Namespace="AWS/ApiGateway", MetricName=metric, Statistic="Sum", Period=60,
        EvaluationPeriods=15, Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold",
        Dimensions=[{"Name": k, "Value": v} for k, v in dims.items()],
    )  # fmt: skip


def notification(name: str) -> dict[str, Any]:
    """The SQS record the alarm queue hands the intake, as CloudWatch publishes it now."""
    return alarm_seed.sqs_event(alarm_seed.notification(name))


def ids_of(requests: list[SimRequest], *statuses: int) -> set[str]:
    return {r.api_request_id for r in requests if r.status in statuses}


def groups_of(blocks: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(text, Look up value) of each group section of a post."""
    out = []
    for block in blocks:
        accessory = block.get("accessory") or {}
        if accessory.get("action_id") == "alarms:lookup":
            out.append((block["text"]["text"], json.loads(accessory["value"])))
    return out


@pytest.fixture
def alarm_harness(make_harness: Callable[..., SlackHarness]) -> SlackHarness:
    return make_harness(OPSBOT_POLICY=json.dumps(ONCALL_POLICY), OPSBOT_ALERT_CHANNEL=ALERTS)


def test_a_5xx_alarm_post_carries_the_failing_requests_grouped_with_look_up(
    shop: list[SimRequest], alarm_harness: SlackHarness, slack_server: LocalSlack
) -> None:
    put_api_alarm("shop-api-5xx")
    report = AlarmsApp(alarm_harness.settings, graph=None).handle(notification("shop-api-5xx"))
    assert report.posted == 1 and report.correlated == 1
    post: Message = slack_server.visible(ALERTS)[-1]
    groups = groups_of(post.blocks)
    texts = " ".join(text for text, _ in groups)
    assert "6 failing requests" in json.dumps(post.blocks)
    assert "`POST /orders 502` KeyError: 'customer_id'" in texts
    assert "`GET /users 504` Integration timeout" in texts
    assert "`POST /payments 500` Execution failed due to configuration error" in texts
    # A 5XXError alarm: the 4xx are not its cause. By route header: the texts hold epoch times ("…4030…").
    statuses = {int(m) for m in re.findall(r"`[A-Z]+ \S+ (\d{3})`", texts)}
    assert statuses == {500, 502, 504}
    # Each Look up carries a failing request of its group and the stage the correlation read.
    values = [value for _, value in groups]
    assert {v["id"] for v in values} <= ids_of(shop, 500, 502, 504) and len(values) == 3
    api_id = client("apigateway").get_rest_apis()["items"][0]["id"]
    assert all(v["api"] == api_id and v["stage"] == "prod" for v in values)
    # The function error behind a 200 is not a failing request: named, not grouped.
    assert "behind requests that did not fail" in json.dumps(post.blocks)

    # By its route: a group's text holds ids and times, in which "504" may appear by chance.
    timeout = next(v for t, v in groups if "`GET /users 504`" in t)
    alarm_harness.click(post, "alarms:lookup", user=BOB, value=json.dumps(timeout))
    answer = alarm_harness.last(BOB)
    assert answer.kind == "ephemeral" and timeout["id"] in answer.text + json.dumps(answer.blocks)
    assert "504" in answer.text + json.dumps(answer.blocks)


def test_a_4xx_alarm_asks_for_the_4xx(shop: list[SimRequest], settings: Settings) -> None:
    put_api_alarm("shop-api-4xx", "4XXError")
    alarm = parse_batch(notification("shop-api-4xx")).alarms[0][1]
    result = correlate(alarm, settings=settings)
    assert result.kind == "api" and result.correlated and result.complete
    assert {(g["method"], g["path"], g["status"]) for g in result.groups} == {
        ("GET", "/inventory", 429),
        ("GET", "/orders", 403),
    }
    assert {i for g in result.groups for i in g["requestIds"]} == ids_of(shop, 403, 429)


def test_a_resource_and_method_alarm_narrows_to_its_path_and_method(
    shop: list[SimRequest], settings: Settings
) -> None:
    put_api_alarm("payments-5xx", Resource="/payments", Method="POST")
    alarm = parse_batch(notification("payments-5xx")).alarms[0][1]
    result = correlate(alarm, settings=settings)
    assert [(g["method"], g["path"], g["status"], g["count"]) for g in result.groups] == [
        ("POST", "/payments", 500, 2)
    ]
    assert result.target["resource"] == "/payments" and result.target["method"] == "POST"
    # The same path with another method: /users failed only on GET, so nothing is the POST's doing.
    query = ErrorQuery(
        "api", result.start_ms, result.end_ms, "us-east-1", api="shop-api", stage="prod", resource="/users",
        method="POST",
    )  # fmt: skip
    answer = default_find_errors(query, settings).to_json()
    assert answer["groups"] == [] and answer["complete"]
    assert "2 failing requests of other methods than POST left out" in answer["note"]


def test_an_api_without_logs_or_unknown_is_a_sentence(aws: None, settings: Settings) -> None:
    seed_module.create_api("us-east-1")
    put_api_alarm("ghost-5xx", ApiName="ghost-api")
    result = correlate(parse_batch(notification("ghost-5xx")).alarms[0][1], settings=settings)
    assert result.kind == "api" and not result.correlated and result.groups == []
    assert result.note.startswith("Not correlated: ") and "ghost-api" in result.note


def test_explain_json_of_an_api_alarm_has_the_groups_of_apilogs_errors(
    shop: list[SimRequest], capsys: pytest.CaptureFixture[str]
) -> None:
    put_api_alarm("shop-api-5xx")
    assert main(["alarms", "explain", "shop-api-5xx", "--json"]) == 0
    explained = json.loads(capsys.readouterr().out)
    assert explained["namespace"] == "AWS/ApiGateway" and explained["correlated"] is True
    window = explained["window"]
    assert main([
        "apilogs", "errors", "--api-id", "shop-api", "--stage", "prod", "--since", str(window["start"]),
        "--until", str(window["end"]), "--json",
    ]) == 0  # fmt: skip
    errors = json.loads(capsys.readouterr().out)
    assert explained["groups"] == errors["groups"] and len(errors["groups"]) == 3
    assert {i for g in explained["groups"] for i in g["requestIds"]} == ids_of(shop, 500, 502, 504)


# -- where teams already get alarms: the "Look up request ids" shortcut on an AWS Chatbot post -----------

CHATBOT_TITLE = ":rotating_light: CloudWatch Alarm | shop-api-5xx | us-east-1 | Account: 123456789012"


def chatbot_post(ts: str = "1796640000.000200") -> dict[str, Any]:
    """An alarm as AWS Chatbot posts it into a channel: a bot message, the title naming the alarm, the
    reason as text, a console link (no request id anywhere)."""
    return {
        "type": "message", "subtype": "bot_message", "bot_id": "B0CHATBOT", "ts": ts, "text": "",
        "attachments": [{
            "color": "#A30200",
            "fallback": CHATBOT_TITLE,
            "title": CHATBOT_TITLE,
            "title_link": "https://console.aws.amazon.com/cloudwatch/home?region=us-east-1#alarmsV2:alarm/shop-api-5xx",
            "text": "Threshold Crossed: 1 out of the last 15 datapoints [2.0 (07/12/26 12:40:00)] was greater than "
                    "or equal to the threshold (1.0) (minimum 1 datapoint for OK -> ALARM transition).",
            "footer": "Amazon CloudWatch",
        }],
    }  # fmt: skip


def test_the_shortcut_on_a_chatbot_alarm_post_answers_with_the_correlation(
    shop: list[SimRequest], alarm_harness: SlackHarness
) -> None:
    put_api_alarm("shop-api-5xx")
    alarm_harness.shortcut("apilogs_lookup_ids", chatbot_post(), user=BOB)
    [answer] = [m for m in alarm_harness.seen_by(BOB) if m.kind == "ephemeral"]
    groups = groups_of(answer.blocks)
    texts = " ".join(text for text, _ in groups)
    assert "shop-api-5xx" in answer.text and "`GET /users 504` Integration timeout" in texts
    assert {v["id"] for _, v in groups} <= ids_of(shop, 500, 502, 504) and len(groups) == 3
    assert [m for m in alarm_harness.slack.visible(OPS) if m.kind == "message"] == []  # privately
    records = [r for r in audit_of_today(alarm_harness) if r.get("kind") == "shortcut"]
    assert [(r["action"], r["args"], r["outcome"]) for r in records] == [
        ("alarms.explain", "shop-api-5xx", "ok")
    ]


def test_the_shortcut_on_an_alarm_post_needs_alarms_explain(
    make_harness: Callable[..., SlackHarness], aws: None
) -> None:
    policy = {"default_read": "deny", "rules": [{"allow": ["apilogs.*"], "users": [BOB[0]]}]}
    harness = make_harness(OPSBOT_POLICY=json.dumps(policy))
    harness.shortcut("apilogs_lookup_ids", chatbot_post(), user=BOB)
    [answer] = [m for m in harness.seen_by(BOB) if m.kind == "ephemeral"]
    assert answer.text.startswith(":no_entry: You may not run `alarms.explain`")
    records = [r for r in audit_of_today(harness) if r.get("kind") == "shortcut"]
    assert [(r["action"], r["outcome"]) for r in records] == [("alarms.explain", "denied")]


def audit_of_today(harness: SlackHarness) -> list[dict[str, Any]]:
    from datetime import UTC, datetime

    from bot.aws.state import StateTable

    return StateTable(harness.settings.state_table).audit_of_day(
        datetime.now(UTC).date().isoformat(), limit=50
    )
