"""Addresses with control or bidi characters (issue 11, defect 5): refused where addresses are normalized
(a clear sentence for /mail, a skipped recipient for SES, the rest of the batch processed), and formatting
characters in the addresses that are shown never render as mrkdwn."""

from __future__ import annotations

import json
import logging
import unicodedata
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.aws.dynamo import scan_all
from bot.config import Settings
from bot.core.mail.feedback import InvalidAddress, normalize_address
from bot.errors import UsageError
from bot.intake.ses_feedback import SesFeedbackApp
from bot.local import mail_samples
from bot.local.slack_api import LocalSlack
from bot.render.mail import address_code, digest_addresses_text, visible
from tests.conftest import ONCALL_POLICY
from tests.mail.conftest import ALERTS
from tests.support.events import load_event
from tests.support.properties import examples
from tests.support.slack import SlackHarness

REFUSED = {"Cc", "Cf", "Cs", "Zl", "Zp"}
HOSTILE = {
    "rlo": "evil\u202e@example.com",
    "nul": "nul\x00@example.com",
    "bell": "bell\x07@example.com",
    "zero-width-space": "zw\u200b@example.com",
    "lri-in-domain": "ok@exa\u2066mple.com",
    "escape-sequence": "term\x1b[31m@example.com",
    "in-display-name": '"Jane \u202e" <jane@example.com>',
}


def _with_recipients(name: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    event = load_event(name)
    sns = event["Records"][0]["Sns"]
    message = json.loads(sns["Message"])
    change(message)
    sns["Message"] = json.dumps(message)
    return event


@pytest.mark.parametrize("hostile", list(HOSTILE.values()), ids=list(HOSTILE))
def test_normalize_refuses_control_and_bidi_characters_with_a_clear_sentence(hostile: str) -> None:
    with pytest.raises(InvalidAddress) as caught:
        normalize_address(hostile)
    message = caught.value.message
    assert "control or invisible formatting character (U+" in message
    # The sentence shows the character as an escape, never the character itself.
    assert not any(unicodedata.category(c) in REFUSED for c in message)


def test_ordinary_addresses_still_normalize() -> None:
    assert normalize_address(" Jane_Doe*x~y@Example.COM\n") == "jane_doe*x~y@example.com"
    assert normalize_address("\tjosé@exämple.com ") == "josé@exämple.com"


_refused_char = st.characters(categories=["Cc", "Cf", "Cs", "Zl", "Zp"])
_address_like = st.builds(
    lambda local, bad, where, domain: f"{local}{bad}@{domain}" if where else f"{local}@{bad}{domain}",
    st.text(alphabet="abcxyz._+-*~`", min_size=1, max_size=10),
    _refused_char,
    st.booleans(),
    st.sampled_from(["example.com", "sub.example.co.uk", "exämple.com"]),
)
_display_named = st.builds(lambda name, addr: f'"{name}" <{addr}>', st.text(max_size=20), _address_like)


@settings(max_examples=examples(400), deadline=None)
@given(st.one_of(st.text(max_size=80), _address_like, _display_named, st.binary(max_size=20)))
def test_normalize_never_returns_refused_characters_and_raises_only_usage_errors(text: object) -> None:
    try:
        normalized = normalize_address(text)
    except UsageError:
        return
    assert not any(unicodedata.category(c) in REFUSED for c in normalized), ascii(normalized)


@pytest.mark.parametrize("hostile", list(HOSTILE.values())[:5], ids=list(HOSTILE)[:5])
def test_recipient_with_control_or_bidi_characters_is_skipped_and_the_rest_processed(
    hostile: str, mail_settings: Settings, slack_server: LocalSlack, caplog: pytest.LogCaptureFixture
) -> None:
    def two_recipients(message: dict[str, Any]) -> None:
        good = message["bounce"]["bouncedRecipients"][0]
        message["bounce"]["bouncedRecipients"] = [{**good, "emailAddress": hostile}, good]

    with caplog.at_level(logging.WARNING, logger="opsbot.mail"):
        report = SesFeedbackApp(mail_settings).handle(
            _with_recipients("sns_ses_bounce_permanent", two_recipients)
        )
    assert (report.skipped_recipients, report.disabled) == (1, ["jane.doe@example.com"])
    # Nothing stored for it, under any spelling; one alert, for the good address.
    assert [item["UserId"] for item in scan_all(mail_settings.mailing_table)] == ["jane.doe@example.com"]
    (alert,) = slack_server.visible(ALERTS)
    assert "jane.doe@example.com" in alert.text
    # One log line naming it and the character's code point (never the character itself).
    (line,) = [r.getMessage() for r in caplog.records if "skipping recipient" in r.getMessage()]
    assert "control or invisible formatting character" in line
    refused = next(c for c in hostile if not (c.isprintable() and c.isascii()))
    assert refused not in line and f"U+{ord(refused):04X}" in line


@pytest.fixture
def mail_harness(mailing_table: str, make_harness: Callable[..., SlackHarness]) -> SlackHarness:
    return make_harness(OPSBOT_POLICY=json.dumps(ONCALL_POLICY), OPSBOT_ALERT_CHANNEL=ALERTS)


@pytest.mark.parametrize("subcommand", ["status", "reenable", "suppress"])
def test_mail_commands_refuse_a_bidi_address_in_the_ack(mail_harness: SlackHarness, subcommand: str) -> None:
    ack = mail_harness.command("/mail", f"{subcommand} evil\u202emoc.elpmaxe@example.com")
    assert ack.status == 200
    assert "contains a control or invisible formatting character (U+202E)" in ack.text
    assert "\u202e" not in ack.text
    assert mail_harness.slack.calls_to("chat.postMessage") == []
    assert list(scan_all(mail_harness.settings.mailing_table)) == []


def test_formatting_characters_in_a_shown_address_do_not_render(
    mail_harness: SlackHarness, slack_server: LocalSlack
) -> None:
    """``_x_``, ``*x*`` and ``~x~`` are valid in a local part; in mrkdwn they would format the alert."""
    address = "*bold*_it_~gone~@example.com"
    SesFeedbackApp(mail_harness.settings).handle(
        mail_samples.sns_event([mail_samples.bounce([address], 1_714_550_400_000)])
    )
    (alert,) = slack_server.visible(ALERTS)
    (field,) = [
        f["text"] for b in alert.blocks for f in b.get("fields", []) if f["text"].startswith("*Address*")
    ]
    assert field == f"*Address*\n`{address}`"
    status = mail_harness.command("/mail", f"status {address}")
    reply = mail_harness.slack.visible()[-1]
    assert status.status == 200 and reply.blocks[0]["text"]["type"] == "plain_text"
    mail_harness.command("/mail", f"reenable {address}")
    decision = mail_harness.slack.visible()[-1]
    assert decision.blocks[0]["text"]["text"].startswith(f"`{address}`: Re-enabled by <@")


def test_shown_addresses_make_stored_invisible_characters_visible() -> None:
    """A row written before such addresses were refused is shown as what it is."""
    assert visible("evil\u202e@example.com") == "evil\\u202e@example.com"
    assert address_code("a`b<c>\x00@example.com") == "`aˋb&lt;c&gt;\\u0000@example.com`"

    class Storm:
        addresses = ["x\u202e@example.com"]
        total = 1
        list_since = "2024-05-01T08:00Z"

    assert "`x\\u202e@example.com`" in digest_addresses_text(Storm())
