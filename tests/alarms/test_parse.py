"""Both formats, every envelope, composite and metric-math alarms; malformed records never raise."""

from __future__ import annotations

import json

import pytest

from bot.core.alarms.model import window
from bot.core.alarms.parse import parse_batch
from bot.core.alarms.routing import Route, channel_for, parse_routes
from bot.errors import ConfigError
from tests.alarms.conftest import sample, sns_message, sqs_event


def test_sns_metric_alarm_is_read_with_region_from_the_arn() -> None:
    [(_, alarm)] = parse_batch(sample("sns_alarm_apigateway.json")).alarms
    assert alarm.name == "shop-api-5xx" and alarm.state == "ALARM" and alarm.previous == "OK"
    assert alarm.region == "us-east-1" and alarm.account == "123456789012"  # not "US East (N. Virginia)"
    assert alarm.changed_ms == 1796609405422
    metric = alarm.primary
    assert metric is not None and metric.namespace == "AWS/ApiGateway"
    assert metric.dimensions == {"ApiName": "shop-api", "Stage": "prod"}
    assert alarm.threshold_text() == "≥ 1"
    assert window(alarm) == (1796609405422 - 300_000, 1796609405422)


def test_lambda_alarm_window_is_evaluation_periods_times_period() -> None:
    [(_, alarm)] = parse_batch(sample("sns_alarm_lambda.json")).alarms
    assert (alarm.period, alarm.evaluation_periods) == (60, 2)
    start, end = window(alarm)
    assert end - start == 120_000


def test_statistics_are_spelled_as_get_metric_data_wants_them() -> None:
    """SNS writes SUM; an extended statistic is case-sensitive (p99, not P99)."""
    message = sns_message("sns_alarm_lambda.json")
    assert message["Trigger"]["Statistic"] == "SUM"
    [(_, alarm)] = parse_batch(sqs_event(message)).alarms
    assert alarm.primary is not None and alarm.primary.stat == "Sum"
    trigger = {**message["Trigger"], "Statistic": None, "ExtendedStatistic": "p99"}
    [(_, alarm)] = parse_batch(sqs_event({**message, "Trigger": trigger})).alarms
    assert alarm.primary is not None and alarm.primary.stat == "p99"


def test_metric_math_alarm_keeps_its_metrics_and_expression() -> None:
    [(_, alarm)] = parse_batch(sample("sns_alarm_metric_math.json")).alarms
    assert alarm.metric_math
    assert [m.id for m in alarm.metrics] == ["e1", "errors", "requests"]
    assert alarm.metrics[0].expression == "100*errors/requests"
    assert alarm.primary is not None and alarm.primary.name == "5XXError"
    assert alarm.namespace == "AWS/ApiGateway"


def test_composite_alarm_has_its_rule_and_no_metric() -> None:
    [(_, alarm)] = parse_batch(sample("sns_alarm_composite.json")).alarms
    assert alarm.composite and alarm.alarm_rule.startswith('ALARM("shop-api-5xx")')
    assert alarm.metrics == () and alarm.namespace == ""


def test_eventbridge_event_direct_and_through_sqs_give_the_same_alarm() -> None:
    event = sample("eventbridge_alarm_state_change.json")
    [(_, direct)] = parse_batch(event).alarms
    [(raw, queued)] = parse_batch(sqs_event(event)).alarms
    assert direct == queued and raw.sqs_message_id == "m-0"
    assert direct.source == "eventbridge" and direct.previous == "OK"
    assert direct.primary is not None and direct.primary.dimensions == {"FunctionName": "orders-api"}
    # The same alarm from SNS has the same key, so both formats share one episode.
    [(_, from_sns)] = parse_batch(sample("sns_alarm_lambda.json")).alarms
    assert from_sns.key == direct.key


def test_sqs_raw_message_delivery_and_sns_records() -> None:
    message = sns_message("sns_alarm_lambda.json")
    [(_, raw)] = parse_batch(sqs_event(message, envelope=False)).alarms
    [(_, enveloped)] = parse_batch(sqs_event(message)).alarms
    [(_, sns)] = parse_batch(sample("sns_alarm_lambda.json")).alarms
    assert raw == enveloped == sns


def test_a_mixed_batch_keeps_the_good_and_names_the_bad() -> None:
    parsed = parse_batch(sample("sqs_alarm_batch_mixed.json"))
    assert [a.name for _, a in parsed.alarms] == [
        "shop-api-5xx",
        "shop-api-error-rate",
        "fanout-iterator-age",
    ]
    reasons = {raw.sqs_message_id: reason for raw, reason in parsed.malformed}
    assert set(reasons) == {
        "5b4757a7-2a29-48cd-b4b7-cf25995e19ad",
        "6c5868b8-3b3a-49de-85c8-d036aa6f2abe",
        "7d6979c9-4c4b-4aef-96d9-e147bb7a3bcf",
    }
    assert "not JSON" in reasons["5b4757a7-2a29-48cd-b4b7-cf25995e19ad"]
    cross = parsed.alarms[2][1]
    assert (cross.account, cross.region) == ("210987654321", "eu-west-1")


@pytest.mark.parametrize(
    "message",
    [
        None,
        42,
        [],
        "",
        "{",
        {"AlarmName": "x", "NewStateValue": "PANIC", "StateChangeTime": "2026-12-07T00:00:00Z"},
        {"AlarmName": "x", "NewStateValue": "ALARM", "StateChangeTime": "yesterday"},
        {"AlarmName": "x", "NewStateValue": "ALARM", "StateChangeTime": "2026-12-07T00:00:00"},
        {"detail-type": "EC2 Instance State-change Notification", "detail": {}},
        {"detail-type": "CloudWatch Alarm State Change", "detail": {"alarmName": "x", "state": "ALARM"}},
        {
            "AlarmName": "x",
            "NewStateValue": "ALARM",
            "StateChangeTime": "2026-12-07T00:00:00Z",
            "Trigger": "?",
        },
    ],
)
def test_malformed_messages_are_reasons_never_exceptions(message: object) -> None:
    body = message if isinstance(message, str) else json.dumps(message)
    event = {"Records": [{"messageId": "m", "eventSource": "aws:sqs", "body": body}]}
    parsed = parse_batch(event)
    assert len(parsed.alarms) + len(parsed.malformed) == 1
    if parsed.alarms:  # a Trigger that is not an object is ignored, not fatal
        assert parsed.alarms[0][1].metrics == ()


def test_routes_first_match_wins_else_the_alert_channel() -> None:
    routes = parse_routes(
        json.dumps(
            [
                {"match": "namespace:AWS/Lambda", "channel": "C0LAMBDA"},
                {"match": "shop-*", "channel": "C0SHOP"},
                {"match": "*", "channel": "C0ALL"},
            ]
        )
    )
    alarms = {a.name: a for _, a in parse_batch(sample("sqs_alarm_batch_mixed.json")).alarms}
    [(_, lam)] = parse_batch(sample("sns_alarm_lambda.json")).alarms
    assert channel_for(lam, routes, "C0DEFAULT") == "C0LAMBDA"
    assert channel_for(alarms["shop-api-5xx"], routes, "C0DEFAULT") == "C0SHOP"
    assert channel_for(alarms["shop-api-5xx"], (Route("orders-*", "C0X"),), "C0DEFAULT") == "C0DEFAULT"
    for bad in ("{", '{"match": "*"}', '[{"match": "*"}]', '[{"match": "", "channel": "C"}]'):
        with pytest.raises(ConfigError):
            parse_routes(bad)
