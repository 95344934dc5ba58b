"""Presentation of /mail: within Slack's limits, the right buttons, readable terminal text."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bot.core.mail.alerts import Digest, MailAlert
from bot.core.mail.commands import MailStats, SuppressionStatus, status_of_item
from bot.core.mail.feedback import parse_notification
from bot.core.mail.state import MailRules, merge, to_item
from bot.local import mail_samples
from bot.render import mail as render
from bot.render.blocks import problems

LONG_DIAGNOSTIC = "smtp; 550 5.1.1 <" + "x" * 5000 + "@example.com> user unknown"


def alert(kind: str = "permanent-bounce", **extra: object) -> MailAlert:
    base: dict = {"address": "jane@example.com", "kind": kind, "at": "2024-05-01T10:15:30.120Z",
                  "notification_type": "Bounce", "bounce_type": "Permanent", "bounce_subtype": "General",
                  "diagnostic": "smtp; 550 5.1.1 <jane@example.com> user unknown", "status": "5.1.1",
                  "sender": "News <news@example.org>", "message_id": "0100018f-abc"}  # fmt: skip
    return MailAlert(**{**base, **extra})


def test_alert_blocks_are_valid_and_escape_user_text() -> None:
    text, blocks = render.alert_message(alert())
    assert problems(blocks, text=text) == []
    body = json.dumps(blocks)
    assert "&lt;jane@example.com&gt;" in body  # the diagnostic cannot inject mrkdwn links
    actions = [b for b in blocks if b["type"] == "actions"]
    assert len(actions) == 1 and actions[0]["block_id"] == render.ALERT_ACTIONS_BLOCK
    assert all(len(e["value"]) < 2000 for e in actions[0]["elements"])


def test_alert_with_huge_diagnostic_still_fits() -> None:
    text, blocks = render.alert_message(alert(diagnostic=LONG_DIAGNOSTIC))
    assert problems(blocks, text=text) == []


def test_complaint_alert_asks_before_reenabling() -> None:
    _, blocks = render.alert_message(alert("complaint", notification_type="Complaint", feedback_type="abuse",
                                           bounce_type="", bounce_subtype="", diagnostic="", status="", sticky=True))  # fmt: skip
    reenable = next(
        e
        for b in blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "mail:reenable"
    )
    assert "confirm" in reenable
    assert "Complaint (abuse)" in json.dumps(blocks)


def test_resolved_alert_replaces_the_buttons_with_who_did_what() -> None:
    _, blocks = render.alert_message(alert())
    resolved = render.resolved_alert(blocks, "Re-enabled by <@U0ALICE> at 2024-05-01T11:00:00.000Z.")
    assert not any(b["type"] == "actions" for b in resolved)
    assert resolved[-1]["block_id"] == "mail:resolution"
    again = render.resolved_alert(resolved, "Kept suppressed by <@U0BOB>.")
    assert sum(1 for b in again if b.get("block_id") == "mail:resolution") == 1
    assert problems(again) == []


def test_resolved_alert_drops_the_note_on_what_happens_until_someone_decides() -> None:
    for kind, note in (("review", "stays enabled until someone decides"), ("complaint", "only a person can"),
                       ("permanent-bounce", "A later successful delivery re-enables it")):  # fmt: skip
        _, blocks = render.alert_message(alert(kind))
        assert note in json.dumps(blocks)
        resolved = render.resolved_alert(blocks, "Kept enabled by <@U0ALICE>.")
        assert note not in json.dumps(resolved)
        assert [b["type"] for b in resolved][-1] == "context"
        assert resolved[0] == blocks[0]  # the alert itself stays


def test_history_for_slack_mentions_people_outside_the_code_and_escapes_the_rest() -> None:
    line = render.slack_history_line("2024-05-01T11:00:00.000Z reenable by slack:U0ALICE")
    assert (
        line
        == "<!date^1714561200^{date_short_pretty} {time_secs}|2024-05-01 11:00:00 UTC> `reenable` by <@U0ALICE>"
    )
    assert render.slack_history_line("2024-05-01T11:00:00.000Z suppress by cli:<x>&`y`") == (
        "<!date^1714561200^{date_short_pretty} {time_secs}|2024-05-01 11:00:00 UTC> `suppress by cli:&lt;x&gt;&amp;ˋyˋ`"
    )
    blocks = render.history_blocks([{"text": "a " + "x" * 2000}] * 10)
    assert len(blocks) > 1 and problems(blocks) == []
    assert render.history_blocks([])[0]["text"]["text"] == "no events recorded"


def test_digest_with_many_senders_and_diagnostics_fits() -> None:
    digest = Digest(
        storm="s", started_at="2024-05-01T10:00:00.000Z", updated_at="2024-05-01T10:05:00.000Z", total=123_456,
        by_type={f"Permanent/Sub{n}": n for n in range(40)},
        by_sender={f"sender{n}@example.org": n for n in range(300)},
        by_diagnostic={f"5.{n}.1": n for n in range(50)},
        examples={f"5.{n}.1": LONG_DIAGNOSTIC for n in range(50)},
    )  # fmt: skip
    text, blocks = render.digest_message(digest)
    assert problems(blocks, text=text) == []
    assert text == "Bounce storm: 123,456 addresses disabled or flagged"
    assert "sender299@example.org: 299" in json.dumps(blocks)  # the top sender
    assert "sender0@" not in json.dumps(blocks)
    # With the longest addresses there are (and Slack's characters to escape), still within the limits.
    long = [("<&>" + "x" * 60 + f"{n}").ljust(64, "y") + "@" + "d" * 180 + ".example" for n in range(25)]
    crowded = Digest(**{**digest.__dict__, "addresses": long, "list_since": "2024-05-01T09:58Z"})
    text, blocks = render.digest_message(crowded)
    assert problems(blocks, text=text) == []
    body = json.dumps(blocks)
    assert "and 123,446 more" in body and "&lt;&amp;&gt;" in body and "<&>" not in body
    assert "`/mail list --state disable --since 2024-05-01T09:58Z`" in body


def status_with_history(events: int = 10) -> object:
    rules = MailRules()
    record = None
    for n in range(events):
        message = mail_samples.bounce(["jane@example.com"], 1_714_550_400_000 + n * 1000, seed=f"s{n}")
        message["bounce"]["bouncedRecipients"][0]["diagnosticCode"] = LONG_DIAGNOSTIC
        record = merge(record, parse_notification(message).events[0], rules)
    assert record is not None
    return status_of_item("jane@example.com", to_item(record, rules), rules, SuppressionStatus(checked=False))


def test_status_blocks_and_text() -> None:
    status = status_with_history()
    text, blocks = render.status_message(status)
    assert problems(blocks, text=text) == []
    assert text.startswith("jane@example.com: Disabled: permanent bounce since ")
    ids = [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert ids == ["mail:reenable", "mail:suppress"]
    terminal = render.status_text(status)
    assert "history (newest first):" in terminal
    assert terminal.count("permanent Permanent/General 5.1.1 message 0100018f") == 10
    _, history = render.history_message(status)
    assert problems(history) == []


def test_stats_text_says_what_the_rates_are_computed_from() -> None:
    stats = MailStats(since=datetime(2024, 5, 1, tzinfo=UTC), until=datetime(2024, 5, 8, tzinfo=UTC),
                      first_day="2024-05-01", last_day="2024-05-08", deliveries=960, permanent_bounces=30,
                      transient_bounces=10, undetermined_bounces=0, complaints=2,
                      reputation_note="SES published no reputation metrics to CloudWatch (AWS/SES) for this period.")  # fmt: skip
    text = render.stats_text(stats)
    assert "Bounce rate 3.0% — above healthy" in text
    assert "Complaint rate 0.20% — at SES's review level" in text
    assert "960 delivery and 40 bounce notifications" in text
    assert "/ 1,000 recipients" in text
    assert "under 2% healthy, 5% review, 10% sending may be paused" in text
    message, blocks = render.stats_message(stats)
    assert problems(blocks, text=message) == []


def test_who_renders_people() -> None:
    assert render.who("slack:U0ALICE", slack=True) == "<@U0ALICE>"
    assert render.who("slack:U0ALICE", slack=False) == "U0ALICE (Slack)"
    assert render.who("cli:alice", slack=True) == "alice"
    assert render.who("<script>", slack=True) == "&lt;script&gt;"


def test_times_are_date_tokens_in_slack_and_iso_on_a_terminal() -> None:
    """Slack shows each reader the time in their own zone (the UTC time is the fallback); the CLI prints
    ISO 8601 with the zone."""
    from dataclasses import replace

    status = replace(
        status_with_history(1),  # type: ignore[type-var]
        suppression=SuppressionStatus(
            checked=True, listed=True, reason="BOUNCE", last_update="2024-05-02T08:00:03.000Z"
        ),
    )
    token = "<!date^1714550400^{date_short_pretty} {time_secs}|2024-05-01 08:00:00 UTC>"
    _, blocks = render.status_message(status)
    body = json.dumps(blocks)
    assert f"since {token}" in body
    assert (
        "listed (BOUNCE, <!date^1714636803^{date_short_pretty} {time_secs}|2024-05-02 08:00:03 UTC>)" in body
    )
    terminal = render.status_text(status)
    assert "since 2024-05-01T08:00:00.000Z" in terminal and "2024-05-02T08:00:03.000Z" in terminal
    _, alert_blocks = render.alert_message(alert())
    assert "<!date^1714558530^{date_short_pretty} {time_secs}|2024-05-01 10:15:30 UTC>" in json.dumps(
        alert_blocks
    )


def test_ses_text_on_a_terminal_cannot_drive_it() -> None:
    """The diagnostic is written by the remote mail server: an ESC sequence in it would erase and rewrite
    lines of `opsbot mail status` on the operator's terminal, a bidi override reverse them."""
    message = mail_samples.bounce(["jane@example.com"], 1_714_550_400_000, seed="esc")
    message["bounce"]["bouncedRecipients"][0]["diagnosticCode"] = (
        "550 \x1b[2K\r\x1b[32mdelivered\x07 \u202eko"
    )
    message["bounce"]["bounceSubType"] = "General\x1b]52;c;ZWNobyBoaQ==\x07"
    rules = MailRules()
    record = merge(None, parse_notification(message).events[0], rules)
    status = status_of_item(
        "jane@example.com", to_item(record, rules), rules, SuppressionStatus(checked=False)
    )
    terminal = render.status_text(status)
    assert not any(c in terminal for c in "\x1b\r\x07\u202e"), repr(terminal)
    assert "550 \\u001b[2K\\u000d" in terminal
