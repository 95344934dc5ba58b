"""Details of what is shown and recorded: times that core writes into prose (a DNS verdict's reason, a
lookup's likely cause, a history line) in the one format of their surface (a Slack date token, or ISO 8601
with ``Z`` on a terminal); people as mentions; outside text kept in its code span; typed text capped in
audit records."""

from __future__ import annotations

from bot.render.blocks import times_in
from bot.render.device import _person
from bot.render.mail import slack_history_line


def test_iso_times_in_prose_become_date_tokens_in_slack_and_the_rest_is_escaped() -> None:
    shown = times_in("the last full check (2026-12-07T03:34:05+00:00) found <!channel> & more", slack=True)
    assert shown == (
        "the last full check (<!date^1796614445^{date_short_pretty} {time_secs}|2026-12-07 03:34:05 UTC>) "
        "found &lt;!channel&gt; &amp; more"
    )


def test_iso_times_in_prose_are_one_iso_format_on_a_terminal() -> None:
    assert times_in("from 2024-05-01T08:00:03+00:00 to 2024-05-01T09:00:00.5Z", slack=False) == (
        "from 2024-05-01T08:00:03.000Z to 2024-05-01T09:00:00.500Z"
    )
    assert times_in("no time here, 2024-05-01 alone", slack=False) == "no time here, 2024-05-01 alone"


def test_a_history_line_leads_with_a_date_token_outside_its_code() -> None:
    line = slack_history_line("2024-05-01T10:15:30.120Z permanent Permanent/General by slack:U0ALICE")
    assert line.startswith("<!date^1714558530^{date_short_pretty} {time_secs}|2024-05-01 10:15:30 UTC> `")
    assert "by <@U0ALICE>" in line


def test_who_activated_a_device_is_a_mention_when_slack_recorded_a_user() -> None:
    assert _person("U0ALICE") == "<@U0ALICE>"
    assert _person("cli:alice") == "cli:alice"
    assert _person("<!channel>") == "&lt;!channel&gt;"


def test_an_audit_record_keeps_at_most_500_characters_of_what_was_typed() -> None:
    from bot.security.audit import build_record

    record = build_record(
        ref="r", started=0.0, ended=1.0, user="U", team="T", channel="C", kind="command",
        command="/fanout list", action="fanout.list", args="x" * 3000 + " code=AC-0123456789ab", outcome="usage",
    )  # fmt: skip
    assert len(record.args) == 500 and "AC-0123456789ab" not in record.args


def test_a_message_id_cannot_leave_its_code_span() -> None:
    import json

    from bot.core.mail.alerts import MailAlert
    from bot.render.mail import alert_message

    alert = MailAlert(
        "jane@example.com", "permanent-bounce", "2024-05-01T08:00:00Z", message_id="id` *bold* `x"
    )
    _, blocks = alert_message(alert)
    field = next(f for f in json.dumps(blocks).split('"') if f.startswith("*Message id*"))
    assert field.count("`") == 2 and "*bold*" in field  # one code span, with the id's backticks replaced
