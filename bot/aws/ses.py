"""SES v2 account-level suppression list, and SES's reputation metrics in CloudWatch.

moto implements neither the suppression-list calls nor SES's own metrics; the tests check these wrappers
with botocore's Stubber against the documented request and response shapes, and the metrics reader
against moto's CloudWatch with data put into the ``AWS/SES`` namespace.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from bot.aws.clients import client
from bot.aws.errors import aws_errors, error_code

SuppressionReason = Literal["BOUNCE", "COMPLAINT"]
REASONS: tuple[SuppressionReason, ...] = ("BOUNCE", "COMPLAINT")


@dataclass(frozen=True)
class SuppressionEntry:
    address: str
    reason: str
    last_update: datetime | None
    message_id: str = ""
    feedback_id: str = ""


def get_suppressed(address: str) -> SuppressionEntry | None:
    """The address's entry on the account-level suppression list, or None when it is not on it."""
    ses = client("sesv2")
    with aws_errors(client=ses, resource=f"suppression list entry {address}"):
        try:
            found = ses.get_suppressed_destination(EmailAddress=address)["SuppressedDestination"]
        except Exception as error:
            if error_code(error) == "NotFoundException":
                return None
            raise
    attributes = found.get("Attributes") or {}
    return SuppressionEntry(
        address=str(found.get("EmailAddress", address)),
        reason=str(found.get("Reason", "")),
        last_update=found.get("LastUpdateTime"),
        message_id=str(attributes.get("MessageId", "")),
        feedback_id=str(attributes.get("FeedbackId", "")),
    )


def put_suppressed(address: str, reason: SuppressionReason) -> None:
    """Add (or update) the address on the suppression list; doing it twice is harmless."""
    if reason not in REASONS:
        raise ValueError(f"reason must be one of {REASONS}")
    ses = client("sesv2")
    with aws_errors(client=ses, resource=f"suppression list entry {address}"):
        ses.put_suppressed_destination(EmailAddress=address, Reason=reason)


def delete_suppressed(address: str) -> bool:
    """Remove the address from the suppression list; False when it was not on it."""
    ses = client("sesv2")
    with aws_errors(client=ses, resource=f"suppression list entry {address}"):
        try:
            ses.delete_suppressed_destination(EmailAddress=address)
        except Exception as error:
            if error_code(error) == "NotFoundException":
                return False
            raise
    return True


# -- reputation ------------------------------------------------------------------------------------

_RATE_METRICS = {"bounce_rate": "Reputation.BounceRate", "complaint_rate": "Reputation.ComplaintRate"}
_COUNT_METRICS = {"sends": "Send", "deliveries": "Delivery", "bounces": "Bounce", "complaints": "Complaint"}


@dataclass(frozen=True)
class ReputationMetrics:
    """SES's own figures for the account: rates are fractions (0.05 = 5 %), counts are sums."""

    bounce_rate: float | None
    complaint_rate: float | None
    sends: int | None
    deliveries: int | None
    bounces: int | None
    complaints: int | None
    rate_time: datetime | None  # time of the newest rate data point

    @property
    def present(self) -> bool:
        return any(
            value is not None
            for value in (self.bounce_rate, self.complaint_rate, self.sends, self.bounces, self.complaints)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "bounceRate": self.bounce_rate,
            "complaintRate": self.complaint_rate,
            "sends": self.sends,
            "deliveries": self.deliveries,
            "bounces": self.bounces,
            "complaints": self.complaints,
            "rateTime": self.rate_time.isoformat() if self.rate_time else None,
        }


def reputation_metrics(start: datetime, end: datetime) -> ReputationMetrics:
    """The account-level ``AWS/SES`` metrics between ``start`` and ``end`` (None where SES has no data).

    The reputation rates are SES's running rates: the newest data point is what SES acts on. The counts
    are summed over the period.
    """
    span = max(1, int((end - start).total_seconds()))
    # Counts: one data point for the whole span. Rates: CloudWatch returns nothing for a start older than
    # 63 days unless the period is a whole number of hours (and five-minute points are gone by then).
    period = -(-span // 3600) * 3600 if span > 3600 else 300
    rate_period = 300 if span <= 63 * 86400 else 3600
    wanted = [(f"r{i}", name, rate_period, "Average") for i, name in enumerate(_RATE_METRICS.values())]
    wanted += [(f"c{i}", name, period, "Sum") for i, name in enumerate(_COUNT_METRICS.values())]
    queries = [
        {
            "Id": query_id,
            "MetricStat": {
                "Metric": {"Namespace": "AWS/SES", "MetricName": name},
                "Period": seconds,
                "Stat": stat,
            },
            "ReturnData": True,
        }
        for query_id, name, seconds, stat in wanted
    ]
    cloudwatch = client("cloudwatch")
    results: dict[str, tuple[list[datetime], list[float]]] = {}
    with aws_errors(client=cloudwatch, resource="CloudWatch namespace AWS/SES"):
        pages = cloudwatch.get_paginator("get_metric_data").paginate(
            MetricDataQueries=queries, StartTime=start, EndTime=end, ScanBy="TimestampDescending"
        )
        for page in pages:
            for result in page.get("MetricDataResults", []):
                times, numbers = results.setdefault(result["Id"], ([], []))
                times.extend(result.get("Timestamps", []))
                numbers.extend(float(v) for v in result.get("Values", []))

    def newest(query_id: str) -> tuple[float | None, datetime | None]:
        times, numbers = results.get(query_id, ([], []))
        if not numbers:
            return None, None
        index = max(range(len(times)), key=lambda i: times[i])
        return numbers[index], times[index]

    def total(query_id: str) -> int | None:
        _, numbers = results.get(query_id, ([], []))
        return round(sum(numbers)) if numbers else None

    bounce_rate, bounce_time = newest("r0")
    complaint_rate, complaint_time = newest("r1")
    rate_times = [t for t in (bounce_time, complaint_time) if t is not None]
    return ReputationMetrics(
        bounce_rate=bounce_rate,
        complaint_rate=complaint_rate,
        sends=total("c0"),
        deliveries=total("c1"),
        bounces=total("c2"),
        complaints=total("c3"),
        rate_time=max(rate_times) if rate_times else None,
    )
