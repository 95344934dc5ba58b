"""Each correlation kind against moto (logs, metric filters, Lambda mappings); the graph with a Stubber
(moto does not implement GetMetricWidgetImage)."""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace
from typing import Any

import pytest
from botocore.stub import Stubber

from bot.aws.clients import client
from bot.core.alarms.correlate import ErrorQuery, correlate, decide_kind, default_find_errors, lambda_errors
from bot.core.alarms.delivery import draw_graph, graph_widget
from bot.core.alarms.model import window
from bot.core.alarms.parse import parse_batch
from tests.alarms.conftest import FakeFind, sample
from tests.fanout.conftest import create_function, create_stream

T = 1796609400000  # 2026-12-07T02:10:00Z: the Lambda sample's StateChangeTime
ID1, ID2, ID3 = (
    "0f6e1a3c-1b2d-4c5e-8f90-a1b2c3d4e5f1",
    "0f6e1a3c-1b2d-4c5e-8f90-a1b2c3d4e5f2",
    "0f6e1a3c-1b2d-4c5e-8f90-a1b2c3d4e5f3",
)


def alarm_of(name: str) -> Any:
    return parse_batch(sample(name)).alarms[0][1]


def put_lines(group: str, stream: str, lines: list[tuple[int, str]]) -> None:
    logs = client("logs")
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    logs.put_log_events(
        logGroupName=group,
        logStreamName=stream,
        logEvents=[{"timestamp": t, "message": m} for t, m in sorted(lines, key=lambda line: line[0])],
    )


def orders_api_log() -> None:
    put_lines(
        "/aws/lambda/orders-api",
        "2026/12/07/[3]abc",
        [
            (T - 100_000, f"START RequestId: {ID1} Version: 3"),
            (T - 99_000, f"[ERROR]\t2026-12-07T02:08:21.000Z\t{ID1}\tKeyError: 'customer_id'"),
            (T - 98_000, f"END RequestId: {ID1}"),
            (T - 98_000, f"REPORT RequestId: {ID1}\tDuration: 15.74 ms\tBilled Duration: 16 ms\tMemory Size: 128 MB\tMax Memory Used: 70 MB"),
            (T - 60_000, f"START RequestId: {ID2} Version: 3"),
            (T - 59_000, "[ERROR] KeyError: 'customer_id'\nTraceback (most recent call last):"),  # no id: its START places it
            (T - 58_000, f"END RequestId: {ID2}"),
            (T - 30_000, f"START RequestId: {ID3} Version: 3"),
            (T - 1_000, f"2026-12-07T02:09:59.000Z {ID3} Task timed out after 29.03 seconds"),
            (T - 1_000, f"END RequestId: {ID3}"),
            (T - 1_000, f"REPORT RequestId: {ID3}\tDuration: 29030.00 ms\tBilled Duration: 29030 ms\tMemory Size: 128 MB\tMax Memory Used: 80 MB\tStatus: timeout"),
            # Outside the window (2 × 60 s before the state change): not counted.
            (T - 300_000, "[ERROR]\t2026-12-07T02:05:00.000Z\t0f6e1a3c-1b2d-4c5e-8f90-a1b2c3d4e5f9\tValueError: early"),
        ],
    )  # fmt: skip


def test_lambda_alarm_groups_the_functions_failures_by_error(aws: None) -> None:
    orders_api_log()
    create_function("orders-api")
    result = correlate(alarm_of("sns_alarm_lambda.json"))
    assert result.kind == "lambda" and result.correlated and result.complete
    groups = {g["cause"]: g for g in result.groups}
    assert set(groups) == {"KeyError", "Task timed out"}
    assert groups["KeyError"]["count"] == 2 and groups["KeyError"]["requestIds"] == [ID1, ID2]
    assert groups["Task timed out"]["requestIds"] == [ID3]
    assert groups["KeyError"]["functions"] == ["orders-api"]
    assert set(groups["KeyError"]) == {
        "method",
        "path",
        "status",
        "cause",
        "count",
        "first",
        "last",
        "functions",
        "requestIds",
    }
    assert result.groups[0]["cause"] == "KeyError"  # by count
    assert result.aws_calls == 2  # the mappings, one FilterLogEvents


def test_eventbridge_lambda_alarm_is_the_same_correlation(aws: None) -> None:
    orders_api_log()
    alarm = alarm_of("eventbridge_alarm_state_change.json")
    # The event does not say how many periods are evaluated: one period, so only the last minute.
    assert window(alarm) == (T - 60_000, T)
    result = correlate(replace(alarm, evaluation_periods=2))
    assert {g["cause"] for g in result.groups} == {"KeyError", "Task timed out"}


def test_api_alarm_asks_find_errors_for_its_stage(aws: None) -> None:
    find = FakeFind()
    result = correlate(alarm_of("sns_alarm_apigateway.json"), find_errors=find)
    assert result.kind == "api" and result.groups == find.groups
    [query] = find.queries
    assert (query.api, query.stage, query.status, query.region) == ("shop-api", "prod", "5xx", "us-east-1")
    # The default is /apilogs errors itself: an account without that API gets a sentence, not a guess
    # (tests/alarms/test_api_correlation.py has the stage with its logs).
    alone = correlate(alarm_of("sns_alarm_apigateway.json"))
    assert alone.kind == "api" and not alone.correlated and "shop-api" in alone.note


def test_api_alarm_with_resource_and_method(aws: None) -> None:
    alarm = alarm_of("sns_alarm_apigateway.json")
    metric = replace(
        alarm.metrics[0],
        name="4XXError",
        dimensions={"ApiId": "a1b2c3", "Stage": "prod", "Resource": "/orders", "Method": "POST"},
    )
    kind = decide_kind(replace(alarm, metrics=(metric,)))
    assert kind.query is not None
    assert (kind.query.api, kind.query.resource, kind.query.method, kind.query.status) == (
        "a1b2c3",
        "/orders",
        "POST",
        "4xx",
    )


def test_stream_driven_function_shows_its_mappings_iterator_age_and_batch_errors(aws: None) -> None:
    create_function("fanout")
    stream = create_stream()
    client("lambda").create_event_source_mapping(
        EventSourceArn=stream, FunctionName="fanout", StartingPosition="LATEST"
    )
    put_lines("/aws/lambda/fanout", "2026/12/07/[$LATEST]f", [
        (T - 50_000, f"START RequestId: {ID1} Version: $LATEST"),
        (T - 49_000, f"2026-12-07T02:09:11.000Z\t{ID1}\tERROR\tProvisionedThroughputExceededException: shard-000 batch of 100 records"),
        (T - 48_000, f"END RequestId: {ID1}"),
    ])  # fmt: skip
    client("cloudwatch").put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[{"MetricName": "IteratorAge", "Dimensions": [{"Name": "FunctionName", "Value": "fanout"}],
                     "Timestamp": __import__("datetime").datetime.fromtimestamp((T - 30_000) / 1000), "Value": 912000.0}],
    )  # fmt: skip
    lam = alarm_of("sns_alarm_lambda.json")
    alarm = replace(lam, metrics=(replace(lam.metrics[0], dimensions={"FunctionName": "fanout"}),))
    result = correlate(alarm)
    assert result.kind == "stream" and result.stream is not None
    [mapping] = result.stream.mappings
    assert mapping["kind"] == "kinesis" and mapping["source"] == stream and mapping["state"]
    assert [e["count"] for e in result.stream.batch_errors] == [1]
    assert "ProvisionedThroughputExceededException" in result.groups[0]["cause"]


def test_metric_filter_alarm_reads_the_filters_group_with_its_pattern(aws: None) -> None:
    group = "/app/checkout"
    put_lines(group, "web-1", [
        (T - 30_000, f"payment declined for order 1234 request {ID1}"),
        (T - 20_000, f"payment declined for order 987 request {ID2}"),
        (T - 10_000, "all good"),
    ])  # fmt: skip
    client("logs").put_metric_filter(
        logGroupName=group, filterName="declined", filterPattern='"payment declined"',
        metricTransformations=[{"metricName": "Declines", "metricNamespace": "Checkout", "metricValue": "1"}],
    )  # fmt: skip
    base = alarm_of("sns_alarm_lambda.json")
    alarm = replace(
        base, metrics=(replace(base.metrics[0], namespace="Checkout", name="Declines", dimensions={}),)
    )
    result = correlate(alarm)
    assert result.kind == "metric-filter" and result.target["logGroup"] == group
    [only] = result.groups
    assert only["count"] == 2 and only["requestIds"] == [ID1, ID2]
    assert only["cause"] == "payment declined for order … request …"


def test_other_namespaces_say_so_and_link_to_logs_insights(aws: None) -> None:
    base = alarm_of("sns_alarm_lambda.json")
    alarm = replace(
        base,
        metrics=(
            replace(
                base.metrics[0],
                namespace="AWS/SQS",
                name="ApproximateAgeOfOldestMessage",
                dimensions={"QueueName": "q"},
            ),
        ),
    )
    result = correlate(alarm)
    assert result.kind == "none" and not result.correlated
    assert "No correlation exists for AWS/SQS" in result.note
    assert result.insights_url.startswith("https://us-east-1.console.aws.amazon.com/cloudwatch/")
    custom = replace(alarm, metrics=(replace(alarm.metrics[0], namespace="Shop", name="Orders"),))
    assert "no metric filter publishes it" in correlate(custom).note


def test_aws_failure_is_a_sentence_not_an_exception(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.aws import alarms as aws_alarms
    from bot.errors import OpsbotError

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OpsbotError("lambda:ListEventSourceMappings is not allowed.")

    monkeypatch.setattr(aws_alarms, "event_source_mappings", refuse)
    result = correlate(alarm_of("sns_alarm_lambda.json"))
    assert not result.correlated and "ListEventSourceMappings" in result.note


def test_lambda_errors_with_a_missing_group_says_so(aws: None) -> None:
    answer = default_find_errors(ErrorQuery("lambda", T - 60_000, T, function="ghost")).to_json()
    assert answer["groups"] == [] and "does not exist" in answer["note"]
    assert lambda_errors(ErrorQuery("lambda", T - 60_000, T, function="ghost")).correlated is False


def test_graph_is_the_documented_widget_call(aws: None) -> None:
    alarm = alarm_of("sns_alarm_apigateway.json")
    widget = graph_widget(alarm)
    assert widget["metrics"] == [
        ["AWS/ApiGateway", "5XXError", "ApiName", "shop-api", "Stage", "prod", {"stat": "Sum"}]
    ]
    assert widget["annotations"]["horizontal"][0]["value"] == 1.0 and widget["start"] == "-PT3H"
    png = b"\x89PNG\r\n\x1a\n" + b"0" * 32
    with Stubber(client("cloudwatch", region="us-east-1")) as stub:
        stub.add_response(
            "get_metric_widget_image",
            {"MetricWidgetImage": png},
            {"MetricWidget": json.dumps(widget, separators=(",", ":")), "OutputFormat": "png"},
        )
        assert draw_graph(alarm) == png
        stub.assert_no_pending_responses()
    math = graph_widget(alarm_of("sns_alarm_metric_math.json"))
    assert math["metrics"][0] == [{"expression": "100*errors/requests", "id": "e1", "label": "error rate"}]
    assert math["metrics"][1][-1] == {"stat": "Sum", "id": "errors", "visible": False}
