"""Demo alarms: ``shop-api-5xx`` on the demo API's 5XXError and ``orders-api-errors`` on its orders
function, with their actions on an SNS topic like the stack's ``AlarmTopic``. ``fire`` (the console's
``alarm fire NAME``) sends the notification CloudWatch would publish through the real intake: an SQS record
carrying the SNS envelope, as the deployed queue delivers it."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from bot.aws.clients import client
from bot.local.seeds import SeedContext

TOPIC = "opsbot-demo-alarm-intake"
API_ALARM = "shop-api-5xx"
LAMBDA_ALARM = "orders-api-errors"


def _topic_arn() -> str:
    return str(client("sns").create_topic(Name=TOPIC)["TopicArn"])  # idempotent


def seed(ctx: SeedContext) -> list[str]:
    topic = _topic_arn()
    cloudwatch = client("cloudwatch")
    common: dict[str, Any] = {
        "Statistic": "Sum",
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "Threshold": 1.0,
        "TreatMissingData": "notBreaching",
        "AlarmActions": [topic],
        "OKActions": [topic],
    }
    cloudwatch.put_metric_alarm(
        AlarmName=API_ALARM, AlarmDescription="5XX errors on shop-api prod", Namespace="AWS/ApiGateway",
        MetricName="5XXError", Dimensions=[{"Name": "ApiName", "Value": "shop-api"}, {"Name": "Stage", "Value": "prod"}],
        Period=300, EvaluationPeriods=12, **common,
    )  # fmt: skip
    cloudwatch.put_metric_alarm(
        AlarmName=LAMBDA_ALARM, AlarmDescription="Errors in orders-api", Namespace="AWS/Lambda", MetricName="Errors",
        Dimensions=[{"Name": "FunctionName", "Value": "orders-api"}], Period=300, EvaluationPeriods=12, **common,
    )  # fmt: skip
    return [
        f"alarms: {API_ALARM} (the API's 5XXError) and {LAMBDA_ALARM} (the function's Errors), actions on {TOPIC}.",
        f"  alarm fire {LAMBDA_ALARM}   (its notification through the real intake: a post, then the failing "
        "invocations of its window)",
        f"  alarm fire {API_ALARM}   (the demo API's failing requests of the last hour, grouped, each with Look up)",
        f"  alarm fire {API_ALARM} ok   (OK: the same message updated, a reply in its thread)",
    ]


def notification(name: str, state: str = "ALARM", *, now: datetime | None = None) -> dict[str, Any]:
    """The SNS message CloudWatch publishes for the alarm ``name`` going to ``state`` now."""
    raw = client("cloudwatch").describe_alarms(AlarmNames=[name]).get("MetricAlarms") or []
    if not raw:
        raise LookupError(f"no alarm named {name!r} (the demo has {API_ALARM} and {LAMBDA_ALARM})")
    alarm = raw[0]
    now = now or datetime.now(UTC)
    previous = "OK" if state == "ALARM" else "ALARM"
    crossed = "greater than or equal to" if state == "ALARM" else "not greater than or equal to"
    return {
        "AlarmName": name,
        "AlarmDescription": alarm.get("AlarmDescription"),
        "AWSAccountId": alarm["AlarmArn"].split(":")[4],
        "AlarmConfigurationUpdatedTimestamp": now.strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
        "NewStateValue": state,
        "NewStateReason": f"Threshold Crossed: 1 out of the last {alarm['EvaluationPeriods']} datapoints was "
        f"{crossed} the threshold (1.0).",
        "StateChangeTime": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0000",
        "Region": "US East (N. Virginia)",
        "AlarmArn": alarm["AlarmArn"],
        "OldStateValue": previous,
        "OKActions": alarm.get("OKActions", []),
        "AlarmActions": alarm.get("AlarmActions", []),
        "InsufficientDataActions": [],
        "Trigger": {
            "MetricName": alarm["MetricName"],
            "Namespace": alarm["Namespace"],
            "StatisticType": "Statistic",
            "Statistic": str(alarm.get("Statistic", "Sum")).upper(),
            "Unit": None,
            "Dimensions": [{"value": d["Value"], "name": d["Name"]} for d in alarm.get("Dimensions", [])],
            "Period": alarm["Period"],
            "EvaluationPeriods": alarm["EvaluationPeriods"],
            "ComparisonOperator": alarm["ComparisonOperator"],
            "Threshold": alarm["Threshold"],
            "TreatMissingData": alarm.get("TreatMissingData", "missing"),
            "EvaluateLowSampleCountPercentile": "",
        },
    }


def sqs_event(message: dict[str, Any]) -> dict[str, Any]:
    """The record the alarm queue hands the function: the SNS envelope as the body."""
    envelope = {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": _topic_arn(),
        "Subject": f'{message["NewStateValue"]}: "{message["AlarmName"]}" in US East (N. Virginia)'[:100],
        "Message": json.dumps(message),
        "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
    }
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "body": json.dumps(envelope),
                "eventSource": "aws:sqs",
                "attributes": {},
            }
        ]
    }


def fire(name: str, state: str = "ALARM") -> Any:
    """Send the alarm's notification through the intake (the graph is skipped: moto cannot draw)."""
    from bot.intake.alarms import AlarmsApp

    return AlarmsApp(graph=None).handle(sqs_event(notification(name, state)))
