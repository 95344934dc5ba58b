"""API Gateway's CloudWatch metrics: the request ``Count`` of a stage, for when no log counts requests."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.aws.clients import client
from bot.aws.errors import translate


def request_count(
    kind: str, api_name: str, api_id: str, stage: str, start_ms: int, end_ms: int
) -> int | None:
    """Requests the stage served in [start_ms, end_ms] (the ``Count`` metric's sum), or None when the
    metric has no data points there. REST APIs are named by ``ApiName``, HTTP APIs by ``ApiId``."""
    cloudwatch = client("cloudwatch")
    dimensions = (
        [{"Name": "ApiName", "Value": api_name}, {"Name": "Stage", "Value": stage}]
        if kind == "REST"
        else [{"Name": "ApiId", "Value": api_id}, {"Name": "Stage", "Value": stage}]
    )
    query = {
        "Id": "requests",
        "MetricStat": {
            "Metric": {"Namespace": "AWS/ApiGateway", "MetricName": "Count", "Dimensions": dimensions},
            "Period": 60,
            "Stat": "Sum",
        },
    }
    total = 0.0
    points = 0
    try:
        pages = cloudwatch.get_paginator("get_metric_data").paginate(
            MetricDataQueries=[query],
            StartTime=datetime.fromtimestamp(start_ms / 1000, UTC),
            EndTime=datetime.fromtimestamp(end_ms / 1000, UTC),
        )
        for page in pages:
            for result in page.get("MetricDataResults", []):
                values = result.get("Values", [])
                points += len(values)
                total += sum(float(v) for v in values)
    except Exception as error:
        raise translate(
            error, client=cloudwatch, resource=f"the Count metric of {api_name} {stage}"
        ) from error
    return int(total) if points else None
