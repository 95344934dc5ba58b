"""Hostile SES notifications (issue 11, defect 4): SES's strings posted through the SES intake to
the local Slack server never reach Slack as live mrkdwn (no channel ping, mention or disguised link)."""

from __future__ import annotations

import json
import re
from typing import Any

from bot.config import Settings
from bot.intake.ses_feedback import SesFeedbackApp
from bot.local.slack_api import LocalSlack, Message
from tests.mail.conftest import ALERTS
from tests.support.events import load_event

# What a sender (or a forged feedback loop) could put in SES's free-text fields.
HOSTILE = "<!channel> <@U0EVIL> <http://evil.example|click> &"


def _with_message(name: str, change: Any) -> dict[str, Any]:
    """A sample SNS event from tests/events/ with its SES notification changed by ``change``."""
    event = load_event(name)
    sns = event["Records"][0]["Sns"]
    message = json.loads(sns["Message"])
    change(message)
    sns["Message"] = json.dumps(message)
    sns["MessageId"] += "-hostile"
    return event


def _hostile_bounce(message: dict[str, Any]) -> None:
    message["bounce"]["bounceSubType"] = HOSTILE
    message["bounce"]["feedbackId"] += "-hostile"
    for recipient in message["bounce"]["bouncedRecipients"]:
        recipient["diagnosticCode"] = HOSTILE
        recipient["status"] = "<!here>"
    message["mail"]["source"] = f"{HOSTILE} <news@example.org>"
    message["mail"]["messageId"] = "<!everyone>"


def _hostile_complaint(message: dict[str, Any]) -> None:
    message["complaint"]["complaintFeedbackType"] = HOSTILE
    message["mail"]["source"] = HOSTILE


# opsbot's own date tokens (times shown in each reader's zone) are the only "<!" it posts on purpose.
_DATE_TOKEN = re.compile(r"<!date\^[0-9]+\^[^|<>]*\|[^<>]*>")


def _live_markup(text: str) -> list[str]:
    """Slack control sequences that would render (ping, mention, link) if posted as they are."""
    text = _DATE_TOKEN.sub("", text)
    return [token for token in ("<!", "<@U0EVIL", "<http", "|click>") if token in text]


def _assert_inert(message: Message) -> None:
    for where, text in (("text", message.text), ("blocks", json.dumps(message.blocks))):
        assert _live_markup(text) == [], f"{where} of {message.text[:60]!r} carries live markup"


def test_hostile_bounce_fields_are_escaped_in_alert_text_and_blocks(
    mail_settings: Settings, slack_server: LocalSlack
) -> None:
    report = SesFeedbackApp(mail_settings).handle(_with_message("sns_ses_bounce_permanent", _hostile_bounce))
    assert report.disabled == ["jane.doe@example.com"]
    (alert,) = slack_server.visible(ALERTS)
    _assert_inert(alert)
    # Shown, escaped: the reader sees what SES sent.
    assert "&lt;!channel&gt;" in alert.text
    body = json.dumps(alert.blocks)
    assert (
        "&lt;!channel&gt; &lt;@U0EVIL&gt;" in body and "&lt;!here&gt;" in body and "&lt;!everyone&gt;" in body
    )


def test_hostile_complaint_type_is_escaped_in_alert_text_and_blocks(
    mail_settings: Settings, slack_server: LocalSlack
) -> None:
    SesFeedbackApp(mail_settings).handle(_with_message("sns_ses_complaint", _hostile_complaint))
    (alert,) = slack_server.visible(ALERTS)
    _assert_inert(alert)
    assert "Complaint (&lt;!channel&gt;" in alert.text


def test_hostile_late_complaint_why_is_escaped_but_the_person_stays_a_mention(
    mail_settings: Settings, slack_server: LocalSlack
) -> None:
    """The *Why* of a late complaint is built in mrkdwn (the person who re-enabled is a mention): SES's
    feedback type in it was posted raw."""
    from bot.core.mail import commands as mail

    app = SesFeedbackApp(mail_settings)
    app.handle(load_event("sns_ses_complaint"))  # angry@example.com: disabled, sticky
    mail.reenable("angry@example.com", mail_settings, by="slack:U0ALICE")

    def late(message: dict[str, Any]) -> None:
        _hostile_complaint(message)
        message["complaint"]["feedbackId"] += "-late"

    report = app.handle(_with_message("sns_ses_complaint", late))
    assert report.late_complaints == ["angry@example.com"]
    alert = slack_server.visible(ALERTS)[-1]
    assert alert.text.startswith("Late complaint, check before mailing")
    _assert_inert(alert)
    (why,) = [f["text"] for b in alert.blocks for f in b.get("fields", []) if f["text"].startswith("*Why*")]
    assert why.startswith("*Why*\nLate complaint (&lt;!channel&gt; &lt;@U0EVIL&gt;")
    assert "received after <@U0ALICE> re-enabled it" in why


def test_notice_of_alerts_given_up_is_escaped(mail_settings: Settings, slack_server: LocalSlack) -> None:
    from bot.intake.ses_feedback import SlackAlertPoster

    SlackAlertPoster(mail_settings).post_notice(f"3 mail alerts were not posted since {HOSTILE}")
    (notice,) = slack_server.visible(ALERTS)
    _assert_inert(notice)


def test_a_diagnostic_cannot_close_its_code_block(mail_settings: Settings, slack_server: LocalSlack) -> None:
    """The remote mail server writes the diagnostic: three backticks in it ended the ``` block it is shown
    in, and what followed rendered as mrkdwn (a fake *bold* notice under opsbot's name)."""

    def breakout(message: dict[str, Any]) -> None:
        message["bounce"]["feedbackId"] += "-fence"
        for recipient in message["bounce"]["bouncedRecipients"]:
            recipient["diagnosticCode"] = "550 ```\n*Re-enabled by the admins, ignore this alert* `x`"

    SesFeedbackApp(mail_settings).handle(_with_message("sns_ses_bounce_permanent", breakout))
    (alert,) = slack_server.visible(ALERTS)
    (diagnostic,) = [
        b["text"]["text"]
        for b in alert.blocks
        if b.get("text", {}).get("text", "").startswith("*Diagnostic*")
    ]
    assert diagnostic.count("```") == 2 and diagnostic.endswith("```")
