"""CloudWatch alarms, metric filters, event source mappings and the alarm episode items.

Thin wrappers: every AWS error becomes a sentence naming the missing permission (``bot.aws.errors``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bot.aws.clients import client
from bot.aws.dynamo import from_item, to_item, values
from bot.aws.errors import aws_errors, error_code

EPISODE_PK = "alarm#ep"
EPISODE_TTL_SECONDS = 30 * 86400
MUTE_PK = "alarm#mute"


def describe_alarm(name: str, *, region: str | None = None) -> dict[str, Any] | None:
    """The metric or composite alarm of that name (DescribeAlarms), or None."""
    with aws_errors(resource=f"alarm {name}"):
        page = client("cloudwatch", region=region).describe_alarms(
            AlarmNames=[name], AlarmTypes=["MetricAlarm", "CompositeAlarm"]
        )
    found = page.get("MetricAlarms") or page.get("CompositeAlarms") or []
    return dict(found[0]) if found else None


def metric_filters(namespace: str, metric: str, *, region: str | None = None) -> list[dict[str, Any]]:
    """The metric filters that publish ``namespace``/``metric`` (DescribeMetricFilters, all pages)."""
    found: list[dict[str, Any]] = []
    with aws_errors(resource=f"metric filters of {namespace}/{metric}"):
        kwargs: dict[str, Any] = {"metricName": metric, "metricNamespace": namespace}
        logs = client("logs", region=region)
        while True:
            page = logs.describe_metric_filters(**kwargs)
            found.extend(page.get("metricFilters", []))
            if not page.get("nextToken"):
                return found
            kwargs["nextToken"] = page["nextToken"]


def event_source_mappings(function: str, *, region: str | None = None) -> list[dict[str, Any]]:
    """The event source mappings of a function (ListEventSourceMappings, all pages)."""
    mappings: list[dict[str, Any]] = []
    with aws_errors(resource=f"function {function}"):
        paginator = client("lambda", region=region).get_paginator("list_event_source_mappings")
        for page in paginator.paginate(FunctionName=function):
            mappings.extend(page.get("EventSourceMappings", []))
    return mappings


def metric_maximum(
    namespace: str, metric: str, dimensions: Mapping[str, str], *, start_ms: int, end_ms: int,
    period: int = 60, region: str | None = None,
) -> float | None:  # fmt: skip
    """The largest ``Maximum`` of the metric in the window (GetMetricStatistics), or None without data."""
    from datetime import UTC, datetime

    with aws_errors(resource=f"metric {namespace}/{metric}"):
        page = client("cloudwatch", region=region).get_metric_statistics(
            Namespace=namespace,
            MetricName=metric,
            Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
            StartTime=datetime.fromtimestamp(start_ms / 1000, UTC),
            EndTime=datetime.fromtimestamp(end_ms / 1000, UTC),
            Period=period,
            Statistics=["Maximum"],
        )
    points = [float(p["Maximum"]) for p in page.get("Datapoints", []) if "Maximum" in p]
    return max(points) if points else None


def metric_widget_image(widget: Mapping[str, Any], *, region: str | None = None) -> bytes:
    """The PNG of a metric widget (GetMetricWidgetImage)."""
    with aws_errors(resource="the alarm's graph"):
        answer = client("cloudwatch", region=region).get_metric_widget_image(
            MetricWidget=json.dumps(widget, separators=(",", ":")), OutputFormat="png"
        )
    return bytes(answer["MetricWidgetImage"])


# -- episode items ----------------------------------------------------------------------------------


def episode_get(state_table: str, key: str) -> dict[str, Any] | None:
    with aws_errors(resource=f"state table {state_table}"):
        raw = (
            client("dynamodb")
            .get_item(TableName=state_table, Key=to_item({"pk": EPISODE_PK, "sk": key}), ConsistentRead=True)
            .get("Item")
        )
    return from_item(raw) if raw else None


def episode_put(state_table: str, key: str, data: Mapping[str, Any], *, expected_version: int | None) -> bool:
    """Write the episode item if nobody changed it since ``expected_version`` was read (None: it must not
    exist). False when another invocation got there first (the caller reads again and re-decides)."""
    item = {**data, "pk": EPISODE_PK, "sk": key}
    item["version"] = (expected_version or 0) + 1
    kwargs: dict[str, Any] = {"TableName": state_table, "Item": to_item(item)}
    if expected_version is None:
        kwargs["ConditionExpression"] = "attribute_not_exists(pk)"
    else:
        kwargs["ConditionExpression"] = "version = :v"
        kwargs["ExpressionAttributeValues"] = values({":v": expected_version})
    with aws_errors(resource=f"state table {state_table}"):
        try:
            client("dynamodb").put_item(**kwargs)
        except Exception as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
    return True


def episode_set(state_table: str, key: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Set some attributes of an existing episode (the message ts, the correlation, ack, mute) and bump
    its version, so a concurrent read-decide-write of the same episode starts over. Returns the item."""
    names = {f"#f{i}": name for i, name in enumerate(fields)}
    vals = {f":f{i}": value for i, value in enumerate(fields.values())} | {":one": 1}
    sets = ", ".join(f"#f{i} = :f{i}" for i in range(len(fields)))
    kwargs: dict[str, Any] = {
        "TableName": state_table,
        "Key": to_item({"pk": EPISODE_PK, "sk": key}),
        "UpdateExpression": f"SET {sets} ADD version :one" if sets else "ADD version :one",
        "ConditionExpression": "attribute_exists(pk)",
        "ExpressionAttributeValues": values(vals),
        "ReturnValues": "ALL_NEW",
    }
    if names:
        kwargs["ExpressionAttributeNames"] = names
    with aws_errors(resource=f"state table {state_table}"):
        answer = client("dynamodb").update_item(**kwargs)
    return from_item(answer.get("Attributes", {}))
