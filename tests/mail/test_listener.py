"""/mail and the alert buttons through signed requests into the real Bolt app (local Slack server)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from botocore.stub import Stubber

from bot.aws import mailing
from bot.intake.ses_feedback import SesFeedbackApp
from bot.local import mail_samples
from bot.local.slack_api import LocalSlack, Message
from tests.conftest import ONCALL_POLICY
from tests.mail.conftest import ALERTS
from tests.support.events import load_event
from tests.support.slack import ALICE, BOB, SlackHarness

ADDRESS = "jane.doe@example.com"


@pytest.fixture
def mail_harness(mailing_table: str, make_harness: Callable[..., SlackHarness]) -> SlackHarness:
    return make_harness(OPSBOT_POLICY=json.dumps(ONCALL_POLICY), OPSBOT_ALERT_CHANNEL=ALERTS)


def alert_for(harness: SlackHarness, event: str = "sns_ses_bounce_permanent") -> Message:
    SesFeedbackApp(harness.settings).handle(load_event(event))
    return harness.slack.visible(ALERTS)[-1]


def state(harness: SlackHarness, address: str = ADDRESS) -> dict:
    item = mailing.get_address(harness.settings.mailing_table, address)
    assert item is not None
    return item


def buttons(message: Message) -> list[str]:
    return [e["action_id"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]]


def test_help_lists_subcommands_and_marks_the_mutating_ones(mail_harness: SlackHarness) -> None:
    ack = mail_harness.command("/mail", "help")
    for expected in ("/mail status &lt;address&gt;", "/mail stats [--since", "/mail reenable &lt;address&gt;` :lock:",
                     "/mail suppress &lt;address&gt;"):  # fmt: skip
        assert expected in ack.text
    assert "Examples" in mail_harness.command("/mail", "status help").text


def test_bad_input_is_answered_in_the_ack_and_nothing_runs(mail_harness: SlackHarness) -> None:
    ack = mail_harness.command("/mail", "status jane-at-example.com")
    assert "`jane-at-example.com` is not an e-mail address" in ack.text
    assert "no subcommand `frobnicate`" in mail_harness.command("/mail", "frobnicate").text
    assert "Cannot read" in mail_harness.command("/mail", "stats --since whenever").text
    assert mail_harness.slack.calls_to("chat.postMessage") == []


def test_status_of_a_slack_formatted_address(mail_harness: SlackHarness) -> None:
    alert_for(mail_harness)
    # Slack sends e-mail addresses in command text as mailto links.
    mail_harness.command("/mail", "status <mailto:Jane.Doe@example.com|Jane.Doe@example.com>", user=BOB)
    reply = mail_harness.last(BOB)
    # The time as a date token (each reader's own zone), with the UTC time as its fallback.
    since = "<!date^1714558530^{date_short_pretty} {time_secs}|2024-05-01 10:15:30 UTC>"
    assert reply.text.startswith(f"{ADDRESS}: Disabled: permanent bounce since {since}")
    assert "permanent Permanent/General 5.1.1" in json.dumps(reply.blocks)
    assert reply.kind == "ephemeral"


def test_stats_without_delivery_notifications_gives_no_rate(mail_harness: SlackHarness) -> None:
    """One bounce and no deliveries would be a 100% bounce rate: the denominator is missing, not the mail."""
    alert_for(mail_harness)
    mail_harness.command("/mail", "stats --since 2024-04-30", user=BOB)
    reply = mail_harness.last(BOB)
    assert reply.text.startswith("Rates unknown: no delivery notifications recorded. Enable Delivery "
                                 "notifications on the SES identity")  # fmt: skip
    body = json.dumps(reply.blocks)
    assert "SES may pause sending" not in reply.text + body and "100.0%" not in body
    assert "Computed from 0 delivery and 1 bounce notifications" in body


def test_reenable_needs_the_grant(mail_harness: SlackHarness) -> None:
    alert_for(mail_harness)
    mail_harness.command("/mail", f"reenable {ADDRESS}", user=BOB)
    assert "You may not run `mail.reenable`" in mail_harness.last(BOB).text
    assert state(mail_harness)["state"] == "disable"
    mail_harness.command("/mail", f"reenable {ADDRESS}", user=ALICE)
    reply = mail_harness.last(ALICE)
    assert reply.kind == "message"  # the channel sees who re-enabled what
    assert "Re-enabled by <@U0ALICE>" in json.dumps(reply.blocks)
    assert state(mail_harness)["state"] == "enable"


def test_suppress_command_with_reason(mail_harness: SlackHarness) -> None:
    mail_harness.command("/mail", "suppress new@example.com --reason complaint")
    assert "Suppressed by <@U0ALICE>" in json.dumps(mail_harness.last().blocks)
    stored = state(mail_harness, "new@example.com")
    assert (stored["state"], stored["sticky"]) == ("disable", True)
    assert (
        "--reason takes one of bounce, complaint"
        in mail_harness.command("/mail", "suppress new@example.com --reason spam").text
    )


def test_reenable_button_updates_the_alert_once(mail_harness: SlackHarness, slack_server: LocalSlack) -> None:
    alert = alert_for(mail_harness)
    assert buttons(alert) == ["mail:reenable", "mail:suppress", "mail:history"]
    original = Message(alert.channel, alert.ts, alert.text, list(alert.blocks), alert.kind)
    mail_harness.click(alert, "mail:reenable", user=ALICE)
    updated = slack_server.find(alert.ts, ALERTS)
    assert updated is not None and buttons(updated) == []
    note = json.dumps(updated.blocks)
    assert "Re-enabled by <@U0ALICE> at " in note and "not changed" not in note
    assert "Disabled: jane.doe@example.com" in note  # the alert itself is still there
    # What happens until someone decides is no longer true once someone has.
    assert "A later successful delivery re-enables it" in json.dumps(original.blocks)
    assert "A later successful delivery" not in note
    assert state(mail_harness)["state"] == "enable"
    rev = state(mail_harness)["rev"]
    # A second click (a stale copy of the message, or someone else at the same moment) does nothing.
    mail_harness.click(original, "mail:suppress", user=ALICE)
    already = mail_harness.last(ALICE).text
    assert "Already done by <@U0ALICE> at <!date^" in already and " UTC>" in already
    assert state(mail_harness)["rev"] == rev
    assert state(mail_harness)["state"] == "enable"


def test_unauthorized_click_changes_nothing(mail_harness: SlackHarness, slack_server: LocalSlack) -> None:
    alert = alert_for(mail_harness)
    before = state(mail_harness)
    mail_harness.click(alert, "mail:reenable", user=BOB)
    assert "You may not run `mail.reenable`" in mail_harness.last(BOB).text
    assert state(mail_harness) == before
    still = slack_server.find(alert.ts, ALERTS)
    assert still is not None and buttons(still) == ["mail:reenable", "mail:suppress", "mail:history"]
    # The decision is still open for someone allowed to make it.
    mail_harness.click(alert, "mail:suppress", user=ALICE)
    assert state(mail_harness)["sticky"] is True


def test_history_button_is_read_only(mail_harness: SlackHarness, slack_server: LocalSlack) -> None:
    alert = alert_for(mail_harness)
    mail_harness.click(alert, "mail:history", user=BOB)
    reply = mail_harness.last(BOB)
    assert reply.kind == "ephemeral" and reply.text == f"History of {ADDRESS}"
    assert "Permanent/General" in json.dumps(reply.blocks)
    still = slack_server.find(alert.ts, ALERTS)
    assert still is not None and buttons(still) == ["mail:reenable", "mail:suppress", "mail:history"]


def test_keep_suppressed_after_a_complaint_adds_to_the_suppression_list(
    mailing_table: str, make_harness: Callable[..., SlackHarness], slack_server: LocalSlack, sesv2: Stubber
) -> None:
    harness = make_harness(
        OPSBOT_POLICY=json.dumps(ONCALL_POLICY), OPSBOT_ALERT_CHANNEL=ALERTS, OPSBOT_SES_SUPPRESSION="1"
    )
    alert = alert_for(harness, "sns_ses_complaint")
    sesv2.add_client_error(
        "get_suppressed_destination", service_error_code="NotFoundException", http_status_code=404
    )
    sesv2.add_response(
        "put_suppressed_destination", {}, {"EmailAddress": "angry@example.com", "Reason": "COMPLAINT"}
    )
    sesv2.add_response(
        "get_suppressed_destination",
        {"SuppressedDestination": {"EmailAddress": "angry@example.com", "Reason": "COMPLAINT",
                                   "LastUpdateTime": datetime.now(UTC)}},
    )  # fmt: skip
    harness.click(alert, "mail:suppress", user=ALICE)
    updated = slack_server.find(alert.ts, ALERTS)
    assert updated is not None
    # The complaint is already sticky in the table, but the suppression list changed: not "nothing changed".
    note = json.dumps(updated.blocks)
    assert "Kept suppressed (already suppressed in the mailing table) by <@U0ALICE>" in note
    assert "nothing changed" not in note
    assert "added to the SES suppression list (reason COMPLAINT)" in note
    from bot.aws.state import StateTable

    audit = StateTable(harness.settings.state_table).audit_of_day(datetime.now(UTC).date().isoformat())
    assert [r["outcome"] for r in audit if "suppress" in str(r.get("command", ""))] == ["ok"]


def test_feedback_handler_failure_to_post_does_not_break_the_button_flow(
    mail_harness: SlackHarness, slack_server: LocalSlack
) -> None:
    slack_server.fail_next("chat.postMessage", "channel_not_found")
    report = SesFeedbackApp(mail_harness.settings).handle(load_event("sns_ses_bounce_permanent"))
    assert report.alerts_failed == 1
    mail_harness.command("/mail", f"reenable {ADDRESS}")
    assert state(mail_harness)["state"] == "enable"


def test_buttons_on_a_status_message(mail_harness: SlackHarness) -> None:
    SesFeedbackApp(mail_harness.settings).handle(
        mail_samples.sns_event([mail_samples.bounce(["x@example.com"], 1_714_550_400_000)])
    )
    mail_harness.command("/mail", "status x@example.com")
    status = mail_harness.last()
    assert buttons(status) == ["mail:reenable", "mail:suppress"]
    mail_harness.click(status, "mail:reenable")
    assert state(mail_harness, "x@example.com")["state"] == "enable"
    assert "Re-enabled by <@U0ALICE>" in json.dumps(mail_harness.last().blocks)


def test_buttons_on_a_late_complaint_alert(mail_harness: SlackHarness, slack_server: LocalSlack) -> None:
    alert_for(mail_harness)
    mail_harness.command("/mail", f"reenable {ADDRESS}", user=ALICE)
    SesFeedbackApp(mail_harness.settings).handle(
        mail_samples.sns_event([mail_samples.complaint([ADDRESS], 1_714_550_400_000)])
    )
    late = slack_server.visible(ALERTS)[-1]
    assert late.text.startswith(f"Late complaint, check before mailing: {ADDRESS}")
    assert state(mail_harness)["state"] == "enable"
    mail_harness.click(late, "mail:reenable", user=BOB)  # deciding needs the grant
    assert "You may not run `mail.reenable`" in mail_harness.last(BOB).text
    mail_harness.click(late, "mail:suppress", user=ALICE)
    assert (state(mail_harness)["state"], state(mail_harness)["sticky"]) == ("disable", True)
    updated = slack_server.find(late.ts, ALERTS)
    assert updated is not None and buttons(updated) == []
    note = json.dumps(updated.blocks)
    assert "Suppressed by <@U0ALICE>" in note and "Kept suppressed" not in note
    assert "the address stays enabled" not in note


def test_keep_enabled_on_a_review_alert(mail_harness: SlackHarness, slack_server: LocalSlack) -> None:
    alert = alert_for(mail_harness, "sns_ses_bounce_undetermined")
    assert alert.text.startswith("Needs review: unsure@example.com")
    assert "stays enabled until someone decides" in json.dumps(alert.blocks)
    mail_harness.click(alert, "mail:reenable", user=ALICE)
    stored = state(mail_harness, "unsure@example.com")
    assert (stored["state"], stored["review"]) == ("enable", False)
    updated = slack_server.find(alert.ts, ALERTS)
    assert updated is not None and buttons(updated) == []
    note = json.dumps(updated.blocks)
    assert "Kept enabled (review flag cleared) by <@U0ALICE> at " in note
    assert "Re-enabled" not in note and "until someone decides" not in note
    assert "Kept enabled (review flag cleared) by U0ALICE (Slack)" in updated.text


def test_status_re_enable_button_asks_first_for_a_sticky_address(mail_harness: SlackHarness) -> None:
    SesFeedbackApp(mail_harness.settings).handle(load_event("sns_ses_complaint"))
    mail_harness.command("/mail", "status angry@example.com")
    (reenable,) = [e for b in mail_harness.last().blocks if b["type"] == "actions" for e in b["elements"]]
    assert reenable["action_id"] == "mail:reenable"
    assert reenable["confirm"]["text"]["text"] == "angry@example.com complained. Mail it again anyway?"
    mail_harness.command("/mail", "suppress suppressed@example.com")
    mail_harness.command("/mail", "status suppressed@example.com")
    (reenable,) = [e for b in mail_harness.last().blocks if b["type"] == "actions" for e in b["elements"]]
    assert "was suppressed by a person" in reenable["confirm"]["text"]["text"]
    # A plain bounce is undone by the next delivery anyway: no question asked.
    SesFeedbackApp(mail_harness.settings).handle(load_event("sns_ses_bounce_permanent"))
    mail_harness.command("/mail", f"status {ADDRESS}")
    reenable = next(e for b in mail_harness.last().blocks if b["type"] == "actions" for e in b["elements"])
    assert reenable["action_id"] == "mail:reenable" and "confirm" not in reenable


def test_history_names_the_slack_user_as_a_mention(mail_harness: SlackHarness) -> None:
    alert = alert_for(mail_harness)
    mail_harness.command("/mail", f"reenable {ADDRESS}", user=ALICE)
    mail_harness.click(alert, "mail:history", user=BOB)
    history = json.dumps(mail_harness.last(BOB).blocks)
    assert "> `reenable` by <@U0ALICE>" in history and "slack:U0ALICE" not in history
    mail_harness.command("/mail", f"status {ADDRESS}", user=BOB)
    status = json.dumps(mail_harness.last(BOB).blocks)
    assert "by <@U0ALICE>" in status and "slack:U0ALICE" not in status


def test_a_no_op_decision_answers_the_caller_only(mail_harness: SlackHarness) -> None:
    """Re-enabling an address that is already enabled changes nothing: nothing is posted to the channel."""
    alert_for(mail_harness)
    mail_harness.command("/mail", f"reenable {ADDRESS}", user=ALICE)
    assert mail_harness.last(ALICE).kind == "message"  # the change itself is announced
    posted = [m for m in mail_harness.slack.visible() if m.kind == "message"]
    mail_harness.command("/mail", f"reenable {ADDRESS}", user=ALICE)
    reply = mail_harness.last(ALICE)
    assert reply.kind == "ephemeral" and reply.ephemeral_to == ALICE[0]
    assert "nothing changed" in json.dumps(reply.blocks)
    assert [m for m in mail_harness.slack.visible() if m.kind == "message"] == posted
    mail_harness.command("/mail", "suppress kept@example.com", user=ALICE)
    mail_harness.command("/mail", "suppress kept@example.com", user=ALICE)
    assert mail_harness.last(ALICE).kind == "ephemeral"


def test_a_no_op_click_answers_the_clicker_and_leaves_the_alert_open(
    mail_harness: SlackHarness, slack_server: LocalSlack
) -> None:
    alert = alert_for(mail_harness)
    mail_harness.command("/mail", f"reenable {ADDRESS}", user=ALICE)  # decided elsewhere first
    mail_harness.click(alert, "mail:reenable", user=ALICE)
    reply = mail_harness.last(ALICE)
    assert reply.kind == "ephemeral" and "Kept enabled (nothing changed)" in json.dumps(reply.blocks)
    still = slack_server.find(alert.ts, ALERTS)
    assert still is not None and buttons(still) == ["mail:reenable", "mail:suppress", "mail:history"]
    # The no-op decided nothing: the alert's decision is still open, not "already done".
    mail_harness.click(alert, "mail:suppress", user=ALICE)
    assert state(mail_harness)["state"] == "disable"
    updated = slack_server.find(alert.ts, ALERTS)
    assert updated is not None and buttons(updated) == []
    assert "Suppressed by <@U0ALICE>" in json.dumps(updated.blocks)


@pytest.mark.parametrize(
    "typed",
    [
        # As Slack sends what was typed: < and > escaped, the address itself made a mailto link.
        "Jane Doe &lt;<mailto:Jane.Doe@example.com|Jane.Doe@example.com>&gt;",
        "“Doe, Jane” &lt;<mailto:jane.doe@example.com|jane.doe@example.com>&gt;",
        "<mailto:jane.doe@example.com|jane.doe@example.com>",
        # As a client or a script sends it unescaped (the demo console does).
        "Jane Doe <jane.doe@example.com>",
    ],
)
def test_an_address_pasted_with_its_display_name(mail_harness: SlackHarness, typed: str) -> None:
    alert_for(mail_harness)
    ack = mail_harness.command("/mail", f"status {typed}", user=BOB)
    assert "Unexpected" not in ack.text and "not an e-mail address" not in ack.text
    assert mail_harness.last(BOB).text.startswith(f"{ADDRESS}: Disabled: permanent bounce")
    mail_harness.command("/mail", f"suppress {typed} --reason complaint", user=ALICE)
    assert state(mail_harness)["sticky"] is True
    mail_harness.command("/mail", f"reenable {typed}", user=ALICE)
    assert state(mail_harness)["state"] == "enable"
    assert "Re-enabled by <@U0ALICE>" in json.dumps(mail_harness.last(ALICE).blocks)


def test_help_names_the_address_once(mail_harness: SlackHarness) -> None:
    assert "&lt;address&gt;..." not in mail_harness.command("/mail", "help").text
