"""SES v2 suppression list (botocore Stubber: moto does not implement it) and SES metrics in CloudWatch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.stub import Stubber

from bot.aws import ses
from bot.aws.clients import client
from bot.errors import AwsError

WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_get_suppressed_found(sesv2: Stubber) -> None:
    sesv2.add_response(
        "get_suppressed_destination",
        {
            "SuppressedDestination": {
                "EmailAddress": "jane@example.com",
                "Reason": "BOUNCE",
                "LastUpdateTime": WHEN,
                "Attributes": {"MessageId": "m-1", "FeedbackId": "f-1"},
            }
        },
        {"EmailAddress": "jane@example.com"},
    )
    entry = ses.get_suppressed("jane@example.com")
    assert entry is not None
    assert (entry.reason, entry.last_update, entry.message_id, entry.feedback_id) == (
        "BOUNCE",
        WHEN,
        "m-1",
        "f-1",
    )


def test_get_suppressed_not_listed(sesv2: Stubber) -> None:
    sesv2.add_client_error(
        "get_suppressed_destination",
        service_error_code="NotFoundException",
        service_message="Email address jane@example.com does not exist on your suppression list.",
        http_status_code=404,
        expected_params={"EmailAddress": "jane@example.com"},
    )
    assert ses.get_suppressed("jane@example.com") is None


def test_put_suppressed_with_each_reason(sesv2: Stubber) -> None:
    for reason in ("BOUNCE", "COMPLAINT"):
        sesv2.add_response(
            "put_suppressed_destination", {}, {"EmailAddress": "jane@example.com", "Reason": reason}
        )
        ses.put_suppressed("jane@example.com", reason)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ses.put_suppressed("jane@example.com", "SPAM")  # type: ignore[arg-type]


def test_delete_suppressed_is_idempotent(sesv2: Stubber) -> None:
    sesv2.add_response("delete_suppressed_destination", {}, {"EmailAddress": "jane@example.com"})
    sesv2.add_client_error(
        "delete_suppressed_destination",
        service_error_code="NotFoundException",
        http_status_code=404,
        expected_params={"EmailAddress": "jane@example.com"},
    )
    assert ses.delete_suppressed("jane@example.com") is True
    assert ses.delete_suppressed("jane@example.com") is False


def test_missing_permission_is_a_sentence(sesv2: Stubber) -> None:
    sesv2.add_client_error(
        "delete_suppressed_destination",
        service_error_code="AccessDeniedException",
        service_message="User: arn:aws:sts::123456789012:assumed-role/opsbot/slack is not authorized to perform: "
        "ses:DeleteSuppressedDestination",
        http_status_code=403,
    )
    with pytest.raises(AwsError) as caught:
        ses.delete_suppressed("jane@example.com")
    assert "ses:DeleteSuppressedDestination" in caught.value.message


def test_reputation_metrics_from_cloudwatch(aws: None) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    cloudwatch = client("cloudwatch")
    data = [
        ("Reputation.BounceRate", 0.031, now - timedelta(hours=2)),
        ("Reputation.BounceRate", 0.012, now - timedelta(hours=1)),  # the newest rate is the one SES acts on
        ("Reputation.ComplaintRate", 0.0004, now - timedelta(hours=1)),
        ("Send", 600, now - timedelta(hours=3)),
        ("Send", 400, now - timedelta(hours=1)),
        ("Bounce", 12, now - timedelta(hours=1)),
        ("Complaint", 1, now - timedelta(hours=1)),
    ]
    for name, value, when in data:
        cloudwatch.put_metric_data(
            Namespace="AWS/SES", MetricData=[{"MetricName": name, "Value": value, "Timestamp": when}]
        )
    metrics = ses.reputation_metrics(now - timedelta(days=1), now)
    assert metrics.present
    assert metrics.bounce_rate == pytest.approx(0.012)
    assert metrics.complaint_rate == pytest.approx(0.0004)
    assert (metrics.sends, metrics.bounces, metrics.complaints, metrics.deliveries) == (1000, 12, 1, None)


def test_reputation_metrics_absent(aws: None) -> None:
    now = datetime.now(UTC)
    metrics = ses.reputation_metrics(now - timedelta(days=7), now)
    assert not metrics.present
    assert metrics.bounce_rate is None


def test_reputation_rates_over_more_than_63_days_ask_for_hourly_points(aws: None) -> None:
    """CloudWatch answers a five-minute period with nothing when the start is over 63 days ago."""
    cloudwatch = client("cloudwatch")
    periods: list[dict[str, int]] = []

    def record(params: dict, **_: object) -> None:
        periods.append({q["Id"]: q["MetricStat"]["Period"] for q in params["MetricDataQueries"]})

    cloudwatch.meta.events.register("provide-client-params.cloudwatch.GetMetricData", record)
    try:
        now = datetime.now(UTC)
        ses.reputation_metrics(now - timedelta(days=7), now)
        ses.reputation_metrics(now - timedelta(days=90), now)
    finally:
        cloudwatch.meta.events.unregister("provide-client-params.cloudwatch.GetMetricData", record)
    week, quarter = periods
    assert (week["r0"], week["r1"], week["c0"]) == (300, 300, 7 * 86400)
    assert (quarter["r0"], quarter["r1"]) == (3600, 3600)
    assert all(period % 3600 == 0 for period in quarter.values())
