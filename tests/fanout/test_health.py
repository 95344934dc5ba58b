"""fanout health against moto: hooks, synthetic metrics (PutMetricData), Kinesis streams, error lines."""

from __future__ import annotations

import json
import time

import pytest

from bot.aws.clients import client
from bot.cli import main
from bot.core.fanout.health import BEHIND, HEALTHY, PAUSED, health
from bot.errors import NotFoundError, UsageError
from tests.fanout.conftest import CLICKS_ARN, KINESIS_ARN, Fanout, two_sources


def verdicts(report: object) -> dict[str, str]:
    return {s.source.name: s.verdict.state for s in report.sources}  # type: ignore[attr-defined]


def test_one_healthy_and_one_falling_behind_source(fanout: Fanout) -> None:
    two_sources(fanout)
    report = health(fanout.settings)

    assert verdicts(report) == {"inputStream": HEALTHY, "clicks": BEHIND}
    assert report.notes == ()  # the function's configuration, concurrency and log group were all read
    clicks = next(s for s in report.sources if s.source.name == "clicks")
    assert "iterator age reached 30 min (rising)" in clicks.verdict.why
    assert "90 reads over the stream's provisioned throughput" in clicks.verdict.why
    assert "60 throttled invocations" in clicks.verdict.why and "1 function error" in clicks.verdict.why
    m = clicks.metrics
    assert m.stream_iterator_age_max_ms == 1_800_000 and m.stream_iterator_age_trend == "rising"
    assert m.invocations == 3000 and m.errors == 1 and m.throttles == 60 and m.duration_max_ms == 800
    assert m.timeout_ms == 3000  # the function's configured timeout (moto's default 3 s)
    assert clicks.stream is not None and clicks.stream.status == "ACTIVE" and clicks.stream.shards_open == 1
    assert clicks.hook.state == "Enabled" and clicks.hook.batch_size == 100
    healthy = next(s for s in report.sources if s.source.name == "inputStream")
    assert healthy.metrics.iterator_age_max_ms == 200
    assert healthy.verdict.reasons == (
        "iterator age 200 ms at most (steady)",
        "1 error, under 5% of invocations",
    )


def test_every_metric_comes_from_one_get_metric_data_request(fanout: Fanout) -> None:
    two_sources(fanout)
    calls: list[int] = []
    cloudwatch = client("cloudwatch")
    original = cloudwatch.get_metric_data

    def counting(**kwargs: object) -> object:
        calls.append(len(kwargs["MetricDataQueries"]))  # type: ignore[arg-type]
        return original(**kwargs)

    cloudwatch.get_metric_data = counting
    try:
        report = health(fanout.settings)
    finally:
        cloudwatch.get_metric_data = original
    # 6 function metrics + 3 per Kinesis stream, in one request.
    assert calls == [12] and report.metric_requests == 1 and report.metric_queries == 12


def test_json_document(fanout: Fanout, capsys: pytest.CaptureFixture[str]) -> None:
    two_sources(fanout)
    assert main(["fanout", "health", "--json"]) == 1  # not every source is healthy
    document = json.loads(capsys.readouterr().out)
    by_arn = {s["sourceArn"]: s for s in document["sources"]}
    clicks = by_arn[CLICKS_ARN]
    assert clicks["verdict"] == BEHIND and clicks["why"]
    assert clicks["hook"]["state"] == "Enabled" and clicks["hook"]["startingPosition"] == "LATEST"
    assert clicks["metrics"]["iteratorAgeMaxMs"] == 1_800_000
    assert clicks["metrics"]["readProvisionedThroughputExceeded"] == 90
    assert clicks["stream"]["shardsOpen"] == 1 and clicks["activeTargets"] == 2
    assert by_arn[KINESIS_ARN]["verdict"] == HEALTHY and by_arn[KINESIS_ARN]["errors"] == []
    assert document["metricRequests"] == 1


def test_one_source_by_name_and_a_short_window(fanout: Fanout, capsys: pytest.CaptureFixture[str]) -> None:
    two_sources(fanout)
    report = health(fanout.settings, "inputStream", since="15m")
    assert verdicts(report) == {"inputStream": HEALTHY} and report.period == 60
    assert main(["fanout", "health", "inputStream", "--since", "15m"]) == 0
    out = capsys.readouterr().out
    assert "Kinesis stream inputStream  [HEALTHY]" in out and "clicks" not in out


def test_an_unknown_source_lists_the_known_ones(fanout: Fanout) -> None:
    two_sources(fanout)
    with pytest.raises(NotFoundError, match=r"No source `nope`.*Known sources: clicks, inputStream"):
        health(fanout.settings, "nope")
    with pytest.raises(UsageError, match="Cannot read the duration"):
        health(fanout.settings, since="soon")


def test_a_source_with_targets_but_no_hook_says_so(fanout: Fanout) -> None:
    two_sources(fanout)
    fanout.register(
        source_arn="arn:aws:kinesis:us-east-1:123456789012:stream/lonely",
        target_id="t",
        target_type="kinesis",
        destination="x",
    )
    with pytest.raises(NotFoundError, match="Kinesis stream lonely is not hooked to fanout"):
        health(fanout.settings, "lonely")
    assert [r.name for r in health(fanout.settings).unhooked] == ["lonely"]


def test_a_paused_hook_is_paused_whatever_the_metrics(fanout: Fanout) -> None:
    uuids = two_sources(fanout)
    client("lambda").update_event_source_mapping(UUID=uuids["clicks"], Enabled=False)
    report = health(fanout.settings)
    assert verdicts(report)["clicks"] == PAUSED


def test_error_lines_are_grouped_by_the_target_they_name(fanout: Fanout) -> None:
    two_sources(fanout)
    logs = client("logs")
    logs.create_log_group(logGroupName="/aws/lambda/fanout")
    logs.create_log_stream(logGroupName="/aws/lambda/fanout", logStreamName="2026/12/07/[$LATEST]abc")
    now = int(time.time() * 1000)
    lines = [
        "2026-12-07T10:00:00.000Z\tid-1\tERROR\tError while sending to target 'warehouse': ServiceUnavailable",
        "2026-12-07T10:00:01.000Z\tid-1\tERROR\tError while sending to target 'warehouse': ServiceUnavailable",
        "2026-12-07T10:00:02.000Z\tid-2\tERROR\tsearch: AccessDenied on sqs:SendMessage",
        "2026-12-07T10:00:03.000Z\tid-3\tERROR\tError while sending to target 'replica': throttled",
        "2026-12-07T10:00:04.000Z\tid-4\tERROR\tUnhandled Promise rejection: Runtime.ImportModuleError",
        "2026-12-07T10:00:05.000Z\tid-4\tINFO\tProcessed 100 records",
        "REPORT RequestId: id-4\tDuration: 15.74 ms\tBilled Duration: 16 ms",
    ]
    logs.put_log_events(
        logGroupName="/aws/lambda/fanout",
        logStreamName="2026/12/07/[$LATEST]abc",
        logEvents=[{"timestamp": now - 60_000 + i, "message": line} for i, line in enumerate(lines)],
    )
    report = health(fanout.settings)
    clicks = next(s for s in report.sources if s.source.name == "clicks")
    groups = {g.target_id: g.count for g in clicks.errors}
    assert groups == {"warehouse": 2, "search": 1, None: 1}  # replica's line belongs to inputStream
    other = next(s for s in report.sources if s.source.name == "inputStream")
    assert {g.target_id: g.count for g in other.errors} == {"replica": 1, None: 1}
    assert "ServiceUnavailable" in clicks.errors[0].samples[0]


def test_queries_beyond_500_go_in_as_few_requests_as_allowed(aws: None) -> None:
    import datetime as dt

    from bot.aws.metrics import MetricQuery, get_metric_data
    from tests.fanout.conftest import put_series

    put_series("AWS/Lambda", "Errors", {"FunctionName": "f7"}, [1.0, 2.0])
    queries = [
        MetricQuery(f"q{i}", "AWS/Lambda", "Errors", {"FunctionName": f"f{i}"}, "Sum", 60) for i in range(501)
    ]
    end = dt.datetime.now(dt.UTC)
    data = get_metric_data(queries, end - dt.timedelta(hours=1), end)
    assert (data.batches, data.requests) == (2, 2)
    assert data.series["q7"].values == (1.0, 2.0) and data.series["q500"].values == ()


def test_unreadable_metrics_leave_the_rest_of_the_report(fanout: Fanout) -> None:
    from botocore.stub import Stubber

    uuids = two_sources(fanout)
    client("lambda").update_event_source_mapping(UUID=uuids["clicks"], Enabled=False)
    message = (
        "User: arn:aws:sts::123456789012:assumed-role/opsbot/x is not authorized to perform: "
        "cloudwatch:GetMetricData"
    )
    with Stubber(client("cloudwatch")) as stub:
        stub.add_client_error("get_metric_data", "AccessDenied", message, 403)
        report = health(fanout.settings)
    assert verdicts(report) == {"inputStream": HEALTHY, "clicks": PAUSED}  # the hook state still counts
    (note,) = report.notes
    assert "metrics unknown: opsbot is missing the IAM permission `cloudwatch:GetMetricData`" in note
    clicks = next(s for s in report.sources if s.source.name == "clicks")
    assert clicks.metrics.iterator_age_max_ms is None and clicks.stream is not None


def test_a_dynamodb_stream_source_and_its_table(fanout: Fanout) -> None:
    from tests.fanout.conftest import create_function, hook, put_series

    ddb = client("dynamodb")
    ddb.create_table(
        TableName="customers",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )
    stream_arn = ddb.describe_table(TableName="customers")["Table"]["LatestStreamArn"]
    create_function()
    fanout.register(source_arn=stream_arn, target_id="crm", target_type="sqs", destination="x", active=True)
    hook(stream_arn)
    put_series("AWS/Lambda", "IteratorAge", {"FunctionName": "fanout"}, [400_000.0] * 5)

    (source,) = health(fanout.settings, "customers").sources
    assert source.stream is not None and source.stream.status == "ENABLED"
    assert source.verdict.state == BEHIND  # the function's age (no per-stream metric for DynamoDB)
    assert source.to_json()["stream"]["retentionHours"] == 24

    ddb.update_table(TableName="customers", StreamSpecification={"StreamEnabled": False})
    (source,) = health(fanout.settings, "customers").sources
    assert source.verdict.state == "failing" and "the table's stream is disabled" in source.verdict.why
