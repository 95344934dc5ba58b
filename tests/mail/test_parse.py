"""Parsing SES feedback: every type and subtype, both SES formats, SNS envelopes, timestamps, addresses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.mail.feedback import (
    InvalidAddress,
    MalformedRecord,
    normalize_address,
    parse_batch,
    parse_notification,
    parse_timestamp,
    split_records,
)
from bot.errors import UsageError
from bot.local import mail_samples
from tests.support.events import load_event
from tests.support.properties import examples


def _message(event_name: str, index: int = 0) -> dict[str, Any]:
    return json.loads(load_event(event_name)["Records"][index]["Sns"]["Message"])


def test_permanent_bounce_notification() -> None:
    parsed = parse_notification(_message("sns_ses_bounce_permanent"))
    assert parsed.notification_type == "Bounce"
    assert not parsed.ignored
    (event,) = parsed.events
    assert event.address == "jane.doe@example.com"  # normalised from Jane.Doe@Example.COM
    assert event.spelled == "Jane.Doe@Example.COM"  # the original handler's key for it
    assert event.kind == "bounce"
    assert (event.bounce_type, event.bounce_subtype) == ("Permanent", "General")
    assert event.status == "5.1.1"
    assert "User unknown" in event.diagnostic
    assert event.at_ms == parse_timestamp("2024-05-01T10:15:30.120Z")  # bounce.timestamp, not mail's
    assert event.mail_timestamp == "2024-05-01T10:15:29.001Z"
    assert event.source == "news@example.org"
    assert event.event_id.startswith("bounce:0100018f2b3c4d5e-11111111")
    assert event.event_id.endswith(":jane.doe@example.com")


def test_multi_recipient_bounce_keeps_good_recipients_and_reports_bad_one() -> None:
    parsed = parse_notification(_message("sns_ses_bounce_multi"))
    assert [e.address for e in parsed.events] == ["gone@example.net", "also.gone@example.net"]
    assert {e.bounce_subtype for e in parsed.events} == {"NoEmail"}
    assert len({e.event_id for e in parsed.events}) == 2
    (skipped,) = parsed.skipped
    assert "not an address" in skipped.raw
    assert "not an e-mail address" in skipped.reason


def test_complaint_and_delivery() -> None:
    (complaint,) = parse_notification(_message("sns_ses_complaint")).events
    assert complaint.kind == "complaint"
    assert complaint.feedback_type == "abuse"
    assert (complaint.address, complaint.spelled) == ("angry@example.com", "")
    deliveries = parse_notification(_message("sns_ses_delivery")).events
    assert [d.address for d in deliveries] == ["angry@example.com", "happy@example.com"]
    assert all(d.kind == "delivery" for d in deliveries)
    assert deliveries[0].event_id != deliveries[1].event_id
    assert deliveries[0].at_ms == parse_timestamp("2024-05-04T09:00:01.300Z")


def test_event_publishing_record_with_display_name_and_plus0000_timestamp() -> None:
    parsed = parse_notification(_message("sns_ses_event_bounce"))
    (event,) = parsed.events
    assert parsed.notification_type == "Bounce"
    assert event.bounce_subtype == "OnAccountSuppressionList"
    assert event.source == "Example News <news@example.org>"
    assert event.at_ms == parse_timestamp("2024-05-05T14:05:45Z")


def test_same_bounce_by_notification_and_by_event_publishing_has_one_identity() -> None:
    as_notification = mail_samples.bounce(["a@example.com"], 1_714_550_000_000, seed="s")
    as_event = mail_samples.bounce(["a@example.com"], 1_714_550_000_000, seed="s", event_publishing=True)
    assert "eventType" in as_event
    assert (
        parse_notification(as_notification).events[0].event_id
        == parse_notification(as_event).events[0].event_id
    )


@pytest.mark.parametrize(
    ("bounce_type", "subtype"),
    [
        ("Undetermined", "Undetermined"),
        ("Permanent", "General"),
        ("Permanent", "NoEmail"),
        ("Permanent", "Suppressed"),
        ("Permanent", "OnAccountSuppressionList"),
        ("Transient", "General"),
        ("Transient", "MailboxFull"),
        ("Transient", "MessageTooLarge"),
        ("Transient", "ContentRejected"),
        ("Transient", "AttachmentRejected"),
    ],
)
def test_every_bounce_subtype_parses(bounce_type: str, subtype: str) -> None:
    message = mail_samples.bounce(
        ["x@example.com"], 1_714_550_000_000, bounce_type=bounce_type, subtype=subtype
    )
    (event,) = parse_notification(message).events
    assert (event.bounce_type, event.bounce_subtype) == (bounce_type, subtype)


def test_other_event_types_are_ignored_not_errors() -> None:
    for kind in ("Send", "Reject", "Open", "Click", "DeliveryDelay", "Subscription", "Rendering Failure"):
        parsed = parse_notification({"eventType": kind, "mail": {"messageId": "m"}})
        assert parsed.ignored
        assert parsed.events == ()


def test_batch_with_malformed_records_in_the_middle() -> None:
    batch = parse_batch(load_event("sns_batch_with_malformed"))
    assert [raw.index for raw, _ in batch.notifications] == [0, 2, 4, 5]
    assert [n.ignored for _, n in batch.notifications] == [False, True, True, False]
    reasons = {raw.index: reason for raw, reason in batch.malformed}
    assert set(reasons) == {1, 3}
    assert "not JSON" in reasons[1]
    assert "'complaint' object" in reasons[3]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2016-01-27T14:59:38.237Z", "2016-01-27T14:59:38.237Z"),
        ("2018-10-08T14:05:45 +0000", "2018-10-08T14:05:45.000Z"),
        ("2018-10-08T14:05:45+0000", "2018-10-08T14:05:45.000Z"),
        ("2018-10-08T16:05:45.5+02:00", "2018-10-08T14:05:45.500Z"),
        ("2018-10-08 14:05:45", "2018-10-08T14:05:45.000Z"),
        ("Mon, 08 Oct 2018 14:05:45 +0000", "2018-10-08T14:05:45.000Z"),
        ("1539007545", "2018-10-08T14:05:45.000Z"),
        ("1539007545123", "2018-10-08T14:05:45.123Z"),
        ("2018/10/08 14:05:45", "2018-10-08T14:05:45.000Z"),
        ("Oct 8 2018 14:05:45 GMT", "2018-10-08T14:05:45.000Z"),
        (1539007545, "2018-10-08T14:05:45.000Z"),
    ],
)
def test_lenient_timestamps(text: object, expected: str) -> None:
    from bot.core.mail.feedback import iso_ms

    assert iso_ms(parse_timestamp(text)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "yesterday-ish",
        None,
        True,
        "2018-13-45T99:00:00Z",
        "99999999999999999",
        "Tuesday",
        "May 10",
        "2018",
        "14:05",
    ],
)
def test_unreadable_timestamps_are_malformed(text: object) -> None:
    with pytest.raises(MalformedRecord):
        parse_timestamp(text)


def test_event_time_falls_back_to_mail_then_sns_timestamp() -> None:
    message = mail_samples.delivery(["a@example.com"], 1_714_550_000_000)
    del message["delivery"]["timestamp"]
    (event,) = parse_notification(message).events
    assert event.at_ms == 1_714_550_000_000 - 1500  # mail.timestamp
    del message["mail"]["timestamp"]
    (event,) = parse_notification(message, fallback_time="2024-05-01T00:00:00Z").events
    assert event.at_ms == parse_timestamp("2024-05-01T00:00:00Z")
    with pytest.raises(MalformedRecord, match="no timestamp"):
        parse_notification(message)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Jane.Doe@Example.COM ", "jane.doe@example.com"),
        ("<jane@example.com>", "jane@example.com"),
        ('"Jane Doe" <Jane@Example.com>', "jane@example.com"),
        ("jane+news@sub.example.co.uk", "jane+news@sub.example.co.uk"),
        ("jane@example.com.", "jane@example.com"),
        # Pasted with a display name, or as Slack shows a link, or as a link's target.
        ("Jane Doe <Jane@example.com>", "jane@example.com"),
        ("Doe, Jane <jane@example.com>", "jane@example.com"),
        ('"Doe, Jane" <jane@example.com>', "jane@example.com"),
        ("<mailto:Jane@example.com|Jane@example.com>", "jane@example.com"),
        ("Jane Doe <mailto:jane@example.com|jane@example.com>", "jane@example.com"),
        ("mailto:jane@example.com", "jane@example.com"),
    ],
)
def test_address_normalisation(text: str, expected: str) -> None:
    assert normalize_address(text) == expected


@pytest.mark.parametrize(
    "text", ["", "   ", "jane", "jane@", "@example.com", "a@@example.com", "a b@example.com", "a@localhost",
             "a@-bad.com", "a..b@example.com", "x" * 65 + "@example.com", 42, "a@example.com b@example.com",
             "<a@example.com> <b@example.com>", "Jane Doe <>"]
)  # fmt: skip
def test_invalid_addresses_get_a_clear_message(text: object) -> None:
    with pytest.raises(InvalidAddress) as caught:
        normalize_address(text)
    assert caught.value.message.endswith(".")


def test_two_addresses_are_refused_with_a_sentence() -> None:
    with pytest.raises(InvalidAddress, match="holds more than one address; give one at a time"):
        normalize_address("Jane <a@example.com>, Joe <b@example.com>")


def test_split_records_handles_odd_events() -> None:
    assert split_records({"Records": "nope"})[0].problem
    assert split_records(42)[0].problem
    assert split_records({"Records": [1]})[0].problem == "the record is not an object"
    confirmation = {"Records": [{"Sns": {"Type": "SubscriptionConfirmation", "Message": "{}"}}]}
    assert "subscription confirmation" in split_records(confirmation)[0].problem
    bare = mail_samples.delivery(["a@example.com"], 1_714_550_000_000)
    (raw,) = split_records(bare)
    assert raw.message is bare


def test_sqs_records_carry_sns_envelopes_or_raw_notifications() -> None:
    message = mail_samples.bounce(["a@example.com"], 1_714_550_000_000)
    wrapped = mail_samples.sqs_event([message])
    (from_envelope,) = split_records(wrapped)
    (from_raw,) = split_records(mail_samples.sqs_event([message], raw=True))
    assert from_envelope.sqs_message_id == wrapped["Records"][0]["messageId"]
    assert from_envelope.sns_message_id  # from the SNS envelope
    assert f"SQS message {from_envelope.sqs_message_id}" in from_envelope.label()
    assert parse_notification(from_envelope.message) == parse_notification(from_raw.message)
    body = json.dumps({"Type": "SubscriptionConfirmation", "MessageId": "x", "Message": "Confirm..."})
    confirmation = {"Records": [{"eventSource": "aws:sqs", "messageId": "m1", "body": body}]}
    (raw,) = split_records(confirmation)
    assert ("subscription confirmation" in raw.problem, raw.sqs_message_id) == (True, "m1")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)
_keys = st.sampled_from(
    ["notificationType", "eventType", "mail", "bounce", "complaint", "delivery", "timestamp", "messageId",
     "bouncedRecipients", "complainedRecipients", "recipients", "emailAddress", "bounceType", "feedbackId"]
)  # fmt: skip
_ses_like = st.recursive(
    st.none()
    | st.text(max_size=30)
    | st.integers()
    | st.sampled_from(["Bounce", "Complaint", "Delivery", "a@b.co"]),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_keys, children, max_size=6),
    max_leaves=30,
)


@settings(max_examples=examples(300), deadline=None)
@given(st.one_of(_json, _ses_like, st.text(max_size=200)))
def test_parsing_anything_raises_only_usage_errors(message: object) -> None:
    try:
        parsed = parse_notification(message)
    except UsageError:
        return
    for event in parsed.events:
        assert normalize_address(event.address) == event.address


@settings(max_examples=examples(200), deadline=None)
@given(st.one_of(_json, st.dictionaries(st.sampled_from(["Records", "Sns", "Message"]), _json)))
def test_batches_never_raise(event: object) -> None:
    batch = parse_batch(event)
    handled = len(batch.notifications) + len(batch.malformed)
    if isinstance(event, dict) and isinstance(event.get("Records"), list):
        assert handled == len(event["Records"])  # every record is either parsed or set aside
    elif isinstance(event, list):
        assert handled == len(event)
    else:
        assert handled == 1


@settings(max_examples=examples(200), deadline=None)
@given(st.text(max_size=80))
def test_address_normalisation_is_idempotent_or_rejects(text: str) -> None:
    try:
        once = normalize_address(text)
    except InvalidAddress:
        return
    assert normalize_address(once) == once
    assert once == once.strip().lower()
