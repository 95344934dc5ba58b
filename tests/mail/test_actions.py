"""/mail status, reenable and suppress in core, with the SES suppression list checked through a Stubber."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.stub import Stubber

from bot.aws import mailing
from bot.aws.clients import client
from bot.config import Settings
from bot.core.mail import commands as mail
from bot.errors import UsageError
from bot.intake.ses_feedback import SesFeedbackApp
from bot.local import mail_samples
from bot.render import mail as render

NOW_MS = int(datetime.now(UTC).timestamp() * 1000)
HOUR = 3_600_000


def feed(settings: Settings, *messages: dict) -> list[Any]:
    """Run the messages through the handler; returns the alerts it posted."""
    poster = _Silent()
    SesFeedbackApp(settings, poster=poster).handle(mail_samples.sns_event(messages))
    return poster.alerts


class _Silent:
    """Alerts are tested elsewhere (here they are only collected); here the table matters."""

    def __init__(self) -> None:
        self.alerts: list[Any] = []

    def post_alert(self, alert: object) -> None:
        self.alerts.append(alert)

    def post_notice(self, text: str) -> None:
        pass

    def post_digest(self, digest: object) -> tuple[str, str]:
        return "C0ALERTS", "1.1"

    def update_digest(self, channel: str, ts: str, digest: object) -> None:
        pass


def not_listed(stubber: Stubber, address: str) -> None:
    stubber.add_client_error(
        "get_suppressed_destination", service_error_code="NotFoundException", http_status_code=404,
        expected_params={"EmailAddress": address},
    )  # fmt: skip


def listed(stubber: Stubber, address: str, reason: str) -> None:
    stubber.add_response(
        "get_suppressed_destination",
        {
            "SuppressedDestination": {
                "EmailAddress": address,
                "Reason": reason,
                "LastUpdateTime": datetime.now(UTC),
            }
        },
        {"EmailAddress": address},
    )


def test_status_of_a_disabled_address(mail_settings: Settings) -> None:
    address = "jane@example.com"
    feed(mail_settings, mail_samples.bounce([address], NOW_MS - HOUR, subtype="NoEmail"))
    status = mail.status("  Jane@Example.com ", mail_settings)
    document = status.to_json()
    assert (document["address"], document["state"], document["reason"]) == (
        address,
        "disable",
        "permanent-bounce",
    )
    assert document["bounceSubType"] == "NoEmail"
    assert document["history"][0]["event"] == "permanent"
    assert document["suppressionList"] == {
        "checked": False, "listed": None, "reason": None, "lastUpdate": None, "error": None,
    }  # fmt: skip


def test_status_of_an_unknown_address_and_invalid_input(mail_settings: Settings) -> None:
    status = mail.status("nobody@example.com", mail_settings)
    assert (status.recorded, status.state) == (False, "enable")
    with pytest.raises(UsageError, match="not an e-mail address"):
        mail.status("nobody-at-example.com", mail_settings)


def test_status_checks_the_suppression_list_when_enabled(
    make_mail_settings: Callable[..., Settings], sesv2: Stubber
) -> None:
    settings = make_mail_settings(OPSBOT_SES_SUPPRESSION="1")
    listed(sesv2, "jane@example.com", "COMPLAINT")
    suppression = mail.status("jane@example.com", settings).suppression
    assert (suppression.checked, suppression.listed, suppression.reason) == (True, True, "COMPLAINT")


def test_reenable_after_complaint_clears_stickiness_and_the_suppression_list(
    make_mail_settings: Callable[..., Settings], sesv2: Stubber
) -> None:
    settings = make_mail_settings(OPSBOT_SES_SUPPRESSION="1")
    address = "angry@example.com"
    feed(settings, mail_samples.complaint([address], NOW_MS - 2 * HOUR))
    sesv2.add_response("delete_suppressed_destination", {}, {"EmailAddress": address})
    not_listed(sesv2, address)
    result = mail.reenable(address, settings, by="slack:U0ALICE")
    assert (result.changed, result.before_state, result.status.state) == (True, "disable", "enable")
    assert result.suppression_list == "removed from the SES suppression list"
    stored = mailing.get_address(settings.mailing_table, address)
    assert stored is not None and (stored["state"], stored["sticky"], stored["reason"]) == (
        "enable",
        False,
        "reenabled",
    )
    assert "by slack:U0ALICE" in stored["history"][0]
    # A later delivery keeps it enabled; a complaint older than the decision does not undo it, but it is
    # not absorbed silently either: an alert flagged for review names who re-enabled it and when.
    assert feed(settings, mail_samples.delivery([address], NOW_MS + HOUR)) == []
    (late,) = feed(settings, mail_samples.complaint([address], NOW_MS - 3 * HOUR))
    assert mail.status(address, make_mail_settings()).state == "enable"
    assert (late.kind, late.address, late.reenabled_by) == ("late-complaint", address, "slack:U0ALICE")
    assert late.reenabled_at == result.status.since
    assert render.alert_why(late, slack=True).startswith(
        "Late complaint (abuse), received after <@U0ALICE> re-enabled"
    )
    # Twice: nothing changes in the table (the suppression-list call is repeated, harmlessly).
    sesv2.add_client_error(
        "delete_suppressed_destination", service_error_code="NotFoundException", http_status_code=404
    )
    not_listed(sesv2, address)
    again = mail.reenable(address, settings, by="slack:U0ALICE")
    assert (again.changed, again.table_changed, again.list_changed) == (False, False, False)
    assert again.suppression_list == "was not on the SES suppression list"
    assert render.resolution_note(again, slack=False).startswith("Kept enabled (nothing changed) by ")


def test_reenable_that_only_removes_from_the_suppression_list_is_a_change(
    make_mail_settings: Callable[..., Settings], sesv2: Stubber
) -> None:
    """Enabled in the table, yet on SES's suppression list (SES would drop every mail to it): re-enabling
    changes the list, so it is reported and audited as a change, not as "nothing changed"."""
    settings = make_mail_settings(OPSBOT_SES_SUPPRESSION="1")
    address = "listed@example.com"
    feed(settings, mail_samples.delivery([address], NOW_MS - HOUR))
    sesv2.add_response("delete_suppressed_destination", {}, {"EmailAddress": address})
    not_listed(sesv2, address)
    result = mail.reenable(address, settings, by="cli:alice")
    assert (result.changed, result.table_changed, result.list_changed) == (True, False, True)
    assert (result.before_state, result.status.state) == ("enable", "enable")
    note = render.resolution_note(result, slack=False)
    assert note == (
        f"Re-enabled (already enabled in the mailing table) by alice at {result.at}; "
        "removed from the SES suppression list."
    )
    assert "nothing changed" not in note
    document = result.to_json()
    assert (document["changed"], document["tableChanged"], document["suppressionListChanged"]) == (
        True,
        False,
        True,
    )
    stored = mailing.get_address(settings.mailing_table, address)
    assert stored is not None and stored["rev"] == 1  # the table was not written


def test_suppress_is_sticky_and_adds_to_the_suppression_list(
    make_mail_settings: Callable[..., Settings], sesv2: Stubber
) -> None:
    settings = make_mail_settings(OPSBOT_SES_SUPPRESSION="1")
    address = "bounced@example.com"
    feed(settings, mail_samples.bounce([address], NOW_MS - HOUR))
    not_listed(sesv2, address)
    sesv2.add_response("put_suppressed_destination", {}, {"EmailAddress": address, "Reason": "BOUNCE"})
    listed(sesv2, address, "BOUNCE")
    result = mail.suppress(address, settings, by="slack:U0ALICE")
    assert (result.changed, result.status.state, result.status.sticky) == (True, "disable", True)
    assert (result.table_changed, result.list_changed) == (True, True)
    assert result.suppression_list == "added to the SES suppression list (reason BOUNCE)"
    feed(settings, mail_samples.delivery([address], NOW_MS + HOUR))  # would re-enable a plain bounce
    assert mail.status(address, make_mail_settings()).state == "disable"
    # Twice: already sticky and already listed with that reason, so no PutSuppressedDestination at all.
    listed(sesv2, address, "BOUNCE")
    listed(sesv2, address, "BOUNCE")
    again = mail.suppress(address, settings, by="slack:U0BOB")
    assert (again.changed, again.table_changed, again.list_changed) == (False, False, False)
    assert again.suppression_list == "already on the SES suppression list (reason BOUNCE)"
    assert render.action_text(again).startswith(
        f"{address}: Kept suppressed (nothing changed) by U0BOB (Slack) at {again.at}; already on the SES"
    )


def test_suppress_reason_defaults_to_complaint_for_a_complainer(
    make_mail_settings: Callable[..., Settings], sesv2: Stubber
) -> None:
    settings = make_mail_settings(OPSBOT_SES_SUPPRESSION="true")
    address = "angry@example.com"
    feed(settings, mail_samples.complaint([address], NOW_MS - HOUR))
    not_listed(sesv2, address)
    sesv2.add_response("put_suppressed_destination", {}, {"EmailAddress": address, "Reason": "COMPLAINT"})
    listed(sesv2, address, "COMPLAINT")
    result = mail.suppress(address, settings, by="cli:alice")
    # Already sticky in the table, but the SES list did change: that is a change, and says so.
    assert (result.changed, result.table_changed, result.list_changed) == (True, False, True)
    assert render.resolution_note(result, slack=False).startswith(
        "Kept suppressed (already suppressed in the mailing table) by "
    )
    assert render.resolution_note(result, slack=False).endswith(
        "; added to the SES suppression list (reason COMPLAINT)."
    )


def test_suppress_an_address_never_heard_of_and_bad_reason(mail_settings: Settings) -> None:
    result = mail.suppress("New@Example.com", mail_settings, by="cli:alice", reason="complaint")
    assert (result.address, result.changed, result.status.state) == ("new@example.com", True, "disable")
    assert result.suppression_list == "SES suppression list not changed (OPSBOT_SES_SUPPRESSION is off)"
    with pytest.raises(UsageError, match="bounce or complaint"):
        mail.suppress("new@example.com", mail_settings, by="cli:alice", reason="spam")


def test_reenable_unknown_address_without_suppression_list_is_a_usage_error(mail_settings: Settings) -> None:
    with pytest.raises(UsageError, match="nothing to re-enable"):
        mail.reenable("ghost@example.com", mail_settings, by="cli:alice")
    assert mailing.get_address(mail_settings.mailing_table, "ghost@example.com") is None


def test_reenable_clears_a_review_flag(mail_settings: Settings) -> None:
    address = "unsure@example.com"
    feed(
        mail_settings,
        mail_samples.bounce([address], NOW_MS - HOUR, bounce_type="Undetermined", subtype="Undetermined"),
    )
    assert mail.status(address, mail_settings).review is True
    result = mail.reenable(address, mail_settings, by="cli:alice")
    assert (result.changed, result.status.review, result.status.state) == (True, False, "enable")


def test_stats_counts_rates_and_thresholds(mail_settings: Settings) -> None:
    addresses = [f"r{n}@example.com" for n in range(96)]
    feed(mail_settings, mail_samples.delivery(addresses, NOW_MS - 2 * HOUR))
    feed(
        mail_settings,
        mail_samples.bounce(["b1@example.com", "b2@example.com", "b3@example.com"], NOW_MS - HOUR),
    )
    feed(
        mail_settings,
        mail_samples.bounce(["t1@example.com"], NOW_MS - HOUR, bounce_type="Transient", subtype="General"),
    )
    feed(mail_settings, mail_samples.complaint(["r1@example.com"], NOW_MS - HOUR))
    feed(mail_settings, mail_samples.complaint(["r1@example.com"], NOW_MS - HOUR))  # the same complaint twice
    result = mail.stats(mail_settings, "2d")
    assert (result.deliveries, result.permanent_bounces, result.transient_bounces, result.complaints) == (
        96,
        3,
        1,
        1,
    )
    assert result.recipients == 100
    assert result.bounce_rate == pytest.approx(0.03)
    assert (result.bounce_level, result.complaint_level) == ("elevated", "paused")  # 3% and 1%
    document = result.to_json()
    assert "permanent bounces / (deliveries + all bounces)" in document["computedFrom"]
    assert document["sesReputation"] is None
    assert "no reputation metrics" in document["sesReputationNote"]
    with pytest.raises(UsageError):
        mail.stats(mail_settings, "banana")


@pytest.mark.parametrize(("deliveries", "known"), [(0, False), (19, False), (20, True)])
def test_stats_give_no_rates_without_enough_delivery_notifications(
    mail_settings: Settings, deliveries: int, known: bool
) -> None:
    """Without Delivery notifications the denominator is the bounces alone: one bounce would read as a 100%
    bounce rate and "SES may pause sending"."""
    if deliveries:
        feed(
            mail_settings,
            mail_samples.delivery([f"r{n}@example.com" for n in range(deliveries)], NOW_MS - HOUR),
        )
    feed(mail_settings, mail_samples.bounce(["gone@example.com"], NOW_MS - HOUR))
    result = mail.stats(mail_settings, "2d")
    assert result.permanent_bounces == 1
    document = result.to_json()
    if known:
        assert result.bounce_rate == pytest.approx(1 / 21)
        assert (result.bounce_level, document["ratesNote"]) == ("elevated", None)
        return
    assert (result.bounce_rate, result.complaint_rate) == (None, None)
    assert (result.bounce_level, result.complaint_level) == ("unknown", "unknown")
    assert document["bounceRate"] is None and document["bounceLevel"] == "unknown"
    expected = "no delivery notifications recorded" if not deliveries else "only 19 delivery notifications"
    assert expected in document["ratesNote"]
    text = render.stats_text(result)
    assert expected in text and "SES may pause sending" not in text
    assert re.search(r"(Bounce|Complaint) rate [0-9n]", text) is None


def test_stats_uses_ses_reputation_metrics_when_present(mail_settings: Settings) -> None:
    now = datetime.now(UTC)
    client("cloudwatch").put_metric_data(
        Namespace="AWS/SES",
        MetricData=[
            {"MetricName": "Reputation.BounceRate", "Value": 0.11, "Timestamp": now - timedelta(hours=1)},
            {
                "MetricName": "Reputation.ComplaintRate",
                "Value": 0.002,
                "Timestamp": now - timedelta(hours=1),
            },
        ],
    )
    result = mail.stats(mail_settings, "7d")
    assert (result.ses_bounce_level, result.ses_complaint_level) == ("paused", "review")


@pytest.mark.parametrize(
    ("rate", "bounce", "complaint"),
    [(0.0, "healthy", "healthy"), (0.0009, "healthy", "healthy"), (0.001, "healthy", "review"),
     (0.005, "healthy", "paused"), (0.02, "elevated", "paused"), (0.05, "review", "paused"),
     (0.10, "paused", "paused")],
)  # fmt: skip
def test_rate_levels_follow_ses_thresholds(rate: float, bounce: str, complaint: str) -> None:
    assert mail.rate_level(rate, mail.BOUNCE_THRESHOLDS) == bounce
    assert mail.rate_level(rate, mail.COMPLAINT_THRESHOLDS) == complaint
    assert mail.rate_level(None, mail.BOUNCE_THRESHOLDS) == "unknown"


def test_configuration_errors_are_sentences() -> None:
    from bot.errors import ConfigError

    for env in ({"OPSBOT_MAIL_TRANSIENT_LIMIT": "many"}, {"OPSBOT_MAIL_TRANSIENT_LIMIT": "0"},
                {"OPSBOT_MAIL_TRANSIENT_WINDOW": "forever"}, {"OPSBOT_MAIL_DIGEST_UPDATE_SECONDS": "soon"}):  # fmt: skip
        with pytest.raises(ConfigError):
            mail.mail_config(Settings.from_env(env))
    config = mail.mail_config(
        Settings.from_env({"OPSBOT_MAIL_TRANSIENT_WINDOW": "7d", "OPSBOT_MAIL_STORM_THRESHOLD": "25"})
    )
    assert (config.rules.transient_window_ms, config.alerts.threshold) == (7 * 86_400_000, 25)


def test_reenable_changes_nothing_when_the_suppression_list_refuses(
    make_mail_settings: Callable[..., Settings], sesv2: Stubber
) -> None:
    from bot.errors import AwsError

    settings = make_mail_settings(OPSBOT_SES_SUPPRESSION="1")
    address = "angry@example.com"
    feed(settings, mail_samples.complaint([address], NOW_MS - HOUR))
    sesv2.add_client_error(
        "delete_suppressed_destination",
        service_error_code="AccessDeniedException",
        service_message="User: arn:aws:sts::123456789012:assumed-role/opsbot/slack is not authorized to perform: "
        "ses:DeleteSuppressedDestination",
        http_status_code=403,
    )
    with pytest.raises(AwsError, match="ses:DeleteSuppressedDestination"):
        mail.reenable(address, settings, by="slack:U0ALICE")
    stored = mailing.get_address(settings.mailing_table, address)
    assert stored is not None and (stored["state"], stored["rev"]) == ("disable", 1)


def test_the_suppression_list_is_left_alone_unless_enabled(mail_settings: Settings) -> None:
    calls: list[str] = []

    def record(model: object, **_: object) -> None:
        calls.append(str(getattr(model, "name", model)))

    sesv2 = client("sesv2")
    sesv2.meta.events.register("before-call.sesv2", record)
    try:
        address = "quiet@example.com"
        feed(mail_settings, mail_samples.complaint([address], NOW_MS - HOUR))
        assert mail.status(address, mail_settings).suppression.checked is False
        assert mail.reenable(address, mail_settings, by="cli:alice").changed is True
        assert mail.suppress(address, mail_settings, by="cli:alice").changed is True
    finally:
        sesv2.meta.events.unregister("before-call.sesv2", record)
    assert calls == []


def test_reenable_an_address_the_original_handler_recorded_under_another_spelling(
    mail_settings: Settings,
) -> None:
    from bot.aws.dynamo import to_item

    spelled = "Jane.Roe@Example.com"
    client("dynamodb").put_item(
        TableName=mail_settings.mailing_table,
        Item=to_item({"UserId": spelled, "notificationType": "Complaint", "from": "news@example.org",
                      "timestamp": "2016-01-27T14:59:38.237Z", "state": "disable"}),
    )  # fmt: skip
    result = mail.reenable(spelled, mail_settings, by="cli:alice")
    assert (result.address, result.before_state, result.changed, result.status.state) == (
        "jane.roe@example.com",
        "disable",
        True,
        "enable",
    )
    stored = mailing.get_address(mail_settings.mailing_table, "jane.roe@example.com")
    assert stored is not None and (stored["state"], stored["reason"]) == ("enable", "reenabled")
