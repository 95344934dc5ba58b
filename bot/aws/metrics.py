"""CloudWatch GetMetricData in as few requests as the queries allow.

One request carries up to 500 queries (the API's limit); a request's answer may come in several pages
(``NextToken``), which are still the same query batch. Results are returned as time-ordered series.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.aws.clients import client
from bot.aws.errors import aws_errors

MAX_QUERIES_PER_REQUEST = 500


@dataclass(frozen=True)
class MetricQuery:
    """One metric statistic: ``id`` must start with a lower-case letter (the API's rule)."""

    id: str
    namespace: str
    name: str
    dimensions: Mapping[str, str]
    stat: str
    period: int

    def to_api(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "MetricStat": {
                "Metric": {
                    "Namespace": self.namespace,
                    "MetricName": self.name,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in self.dimensions.items()],
                },
                "Period": self.period,
                "Stat": self.stat,
            },
            "ReturnData": True,
        }


@dataclass(frozen=True)
class Series:
    timestamps: tuple[datetime, ...] = ()
    values: tuple[float, ...] = ()


@dataclass
class MetricData:
    series: dict[str, Series] = field(default_factory=dict)
    requests: int = 0  # GetMetricData calls made (pages included)
    batches: int = 0  # query batches (of up to 500 queries)


def batches(queries: Sequence[MetricQuery], size: int = MAX_QUERIES_PER_REQUEST) -> list[list[MetricQuery]]:
    return [list(queries[i : i + size]) for i in range(0, len(queries), size)]


def get_metric_data(
    queries: Sequence[MetricQuery], start: datetime, end: datetime, *, resource: str = "CloudWatch metrics"
) -> MetricData:
    """Every query's data points between ``start`` and ``end``, oldest first."""
    data = MetricData()
    if not queries:
        return data
    cloudwatch = client("cloudwatch")
    collected: dict[str, list[tuple[datetime, float]]] = {q.id: [] for q in queries}
    with aws_errors(client=cloudwatch, resource=resource):
        for batch in batches(queries):
            data.batches += 1
            kwargs: dict[str, Any] = {
                "MetricDataQueries": [q.to_api() for q in batch],
                "StartTime": start,
                "EndTime": end,
                "ScanBy": "TimestampAscending",
            }
            while True:
                page = cloudwatch.get_metric_data(**kwargs)
                data.requests += 1
                for result in page.get("MetricDataResults", []):
                    points = collected.setdefault(result["Id"], [])
                    points.extend(
                        zip(
                            result.get("Timestamps", []),
                            (float(v) for v in result.get("Values", [])),
                            strict=False,
                        )
                    )
                token = page.get("NextToken")
                if not token:
                    break
                kwargs["NextToken"] = token
    for query_id, points in collected.items():
        points.sort(key=lambda point: point[0])
        data.series[query_id] = Series(tuple(p[0] for p in points), tuple(p[1] for p in points))
    return data


def put_metric_points(
    namespace: str, name: str, dimensions: Mapping[str, str], points: Sequence[tuple[datetime, float]]
) -> None:
    """Synthetic data points (the demo and the tests, against the embedded AWS)."""
    cloudwatch = client("cloudwatch")
    data = [
        {
            "MetricName": name,
            "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
            "Timestamp": when,
            "Value": value,
        }
        for when, value in points
    ]
    with aws_errors(client=cloudwatch, resource=f"CloudWatch namespace {namespace}"):
        for start in range(0, len(data), 1000):
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=data[start : start + 1000])
