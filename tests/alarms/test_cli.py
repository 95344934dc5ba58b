"""``opsbot alarms explain`` against moto's CloudWatch (DescribeAlarms) and logs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.aws.clients import client
from bot.cli import main
from bot.core.alarms.commands import alarm_name_in_text
from tests.alarms.conftest import sqs_event
from tests.alarms.test_correlate import ID1, ID2, ID3, T, orders_api_log


def put_alarm() -> None:
    client("cloudwatch").put_metric_alarm(
        AlarmName="orders-api-errors", Namespace="AWS/Lambda", MetricName="Errors",
        Dimensions=[{"Name": "FunctionName", "Value": "orders-api"}], Statistic="Sum", Period=60,
        EvaluationPeriods=2, Threshold=0.0, ComparisonOperator="GreaterThanThreshold",
    )  # fmt: skip


def test_explain_json_has_the_documented_shape(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    put_alarm()
    orders_api_log()
    code = main(["alarms", "explain", "orders-api-errors", "--at", "2026-12-07T02:10:00Z", "--json"])
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert code == 0
    assert {"alarm", "state", "namespace", "window", "correlated", "groups"} <= set(document)
    assert document["alarm"] == "orders-api-errors" and document["namespace"] == "AWS/Lambda"
    assert document["window"] == {"start": T - 120_000, "end": T} and document["correlated"] is True
    ids = [i for g in document["groups"] for i in g["requestIds"]]
    assert sorted(ids) == sorted([ID1, ID2, ID3])


def test_explain_text_and_an_unknown_alarm(aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    put_alarm()
    orders_api_log()
    assert main(["alarms", "explain", "orders-api-errors", "--at", "2026-12-07T02:10:00Z"]) == 0
    out = capsys.readouterr().out
    assert "KeyError" in out and "Task timed out" in out
    assert main(["alarms", "explain", "nope", "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is False and "No alarm named 'nope'" in document["message"]


def test_the_alarm_name_in_a_chatbot_or_mail_post() -> None:
    assert (
        alarm_name_in_text("CloudWatch Alarm | shop-api-5xx | us-east-1 | Account: 123456789012")
        == "shop-api-5xx"
    )
    assert alarm_name_in_text('ALARM: "orders-api-errors" in US East (N. Virginia)') == "orders-api-errors"
    assert alarm_name_in_text("lunch?") == ""


def test_feed_reads_every_file_before_handling_any(
    aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    not_an_alarm = tmp_path / "not-an-alarm.json"
    not_an_alarm.write_text(json.dumps(sqs_event({"AlarmName": "x", "NewStateValue": "SIDEWAYS"})))
    assert main(["alarms", "feed", str(not_an_alarm), "--json"]) == 0
    [report] = json.loads(capsys.readouterr().out)["batches"]
    assert report["malformed"] == 1 and report["posted"] == 0
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert main(["alarms", "feed", str(not_an_alarm), str(broken)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "broken.json is not JSON" in err  # the good file first was not handled either
