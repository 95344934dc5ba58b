"""SES notifications, SNS and SQS events built in code, in the shapes SES, SNS and Lambda document; and
the feedback rules as the issue states them, applied one event at a time, to check opsbot against.

The demo seed feeds these through the real feedback handler; the benchmark and the property tests build
streams of thousands with them. (Hand-written samples of every type live in ``tests/events/``.)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

from bot.core.mail.feedback import RecipientEvent, iso_ms
from bot.core.mail.state import RANK, MailRules, effect_of

TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:ses-notifications"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:opsbot-ses-feedback"
ACCOUNT = "123456789012"

DIAGNOSTICS = {
    ("Permanent", "General"): ("5.1.1", "smtp; 550 5.1.1 user unknown"),
    ("Permanent", "NoEmail"): (
        "5.1.1",
        "smtp; 550 5.1.1 The email account that you tried to reach does not exist",
    ),
    ("Permanent", "Suppressed"): ("5.1.1", "Amazon SES has suppressed sending to this address"),
    ("Permanent", "OnAccountSuppressionList"): (
        "5.1.1",
        "Amazon SES did not send the message to this address because it is on the suppression list for your "
        "account.",
    ),
    ("Transient", "General"): ("4.4.7", "smtp; 421 4.4.7 message expired"),
    ("Transient", "MailboxFull"): ("4.2.2", "smtp; 452 4.2.2 mailbox full"),
    ("Transient", "MessageTooLarge"): ("5.3.4", "smtp; 552 5.3.4 message size exceeds fixed limit"),
    ("Transient", "ContentRejected"): ("5.7.1", "smtp; 554 5.7.1 message content rejected"),
    ("Transient", "AttachmentRejected"): ("5.7.1", "smtp; 554 5.7.1 attachment rejected"),
    ("Undetermined", "Undetermined"): ("", ""),
}


def _hex(seed: str, length: int) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


def message_id(seed: str) -> str:
    return f"0100018f{_hex(seed, 8)}-{_hex(seed + 'a', 8)}-{_hex(seed + 'b', 4)}-{_hex(seed + 'c', 4)}-000000"


def _mail(at_ms: int, seed: str, recipients: Sequence[str], source: str) -> dict[str, Any]:
    return {
        "timestamp": iso_ms(at_ms - 1500),
        "source": source,
        "sourceArn": f"arn:aws:ses:us-east-1:{ACCOUNT}:identity/{source.rsplit('@', 1)[-1].rstrip('>')}",
        "sourceIp": "192.0.2.10",
        "sendingAccountId": ACCOUNT,
        "messageId": message_id(seed),
        "destination": list(recipients),
    }


def bounce(
    recipients: Sequence[str],
    at_ms: int,
    *,
    bounce_type: str = "Permanent",
    subtype: str = "General",
    seed: str = "",
    source: str = "news@example.org",
    event_publishing: bool = False,
) -> dict[str, Any]:
    seed = seed or f"bounce:{','.join(recipients)}:{at_ms}"
    status, diagnostic = DIAGNOSTICS.get((bounce_type, subtype), ("5.0.0", "smtp; 550 rejected"))
    bounced: list[dict[str, str]] = []
    for address in recipients:
        entry = {"emailAddress": address, "action": "failed"}
        if status:
            entry["status"] = status
        if diagnostic:
            entry["diagnosticCode"] = diagnostic
        bounced.append(entry)
    return {
        "eventType" if event_publishing else "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": subtype,
            "bouncedRecipients": bounced,
            "timestamp": iso_ms(at_ms),
            "feedbackId": f"{message_id(seed + ':feedback')}",
            "reportingMTA": "dsn; a8-12.smtp-out.amazonses.com",
        },
        "mail": _mail(at_ms, seed, recipients, source),
    }


def complaint(
    recipients: Sequence[str],
    at_ms: int,
    *,
    feedback_type: str = "abuse",
    seed: str = "",
    source: str = "news@example.org",
) -> dict[str, Any]:
    seed = seed or f"complaint:{','.join(recipients)}:{at_ms}"
    return {
        "notificationType": "Complaint",
        "complaint": {
            "userAgent": "ExampleCorp Feedback Loop (V0.01)",
            "complainedRecipients": [{"emailAddress": address} for address in recipients],
            "complaintFeedbackType": feedback_type,
            "arrivalDate": iso_ms(at_ms - 1000),
            "timestamp": iso_ms(at_ms),
            "feedbackId": message_id(seed + ":feedback"),
        },
        "mail": _mail(at_ms, seed, recipients, source),
    }


def delivery(
    recipients: Sequence[str], at_ms: int, *, seed: str = "", source: str = "news@example.org"
) -> dict[str, Any]:
    seed = seed or f"delivery:{','.join(recipients)}:{at_ms}"
    return {
        "notificationType": "Delivery",
        "mail": _mail(at_ms, seed, recipients, source),
        "delivery": {
            "timestamp": iso_ms(at_ms),
            "processingTimeMillis": 1500,
            "recipients": list(recipients),
            "smtpResponse": "250 2.0.0 OK",
            "reportingMTA": "a8-70.smtp-out.amazonses.com",
        },
    }


def sns_record(message: Any, *, sns_id: str = "", at_ms: int = 0) -> dict[str, Any]:
    body = message if isinstance(message, str) else json.dumps(message, separators=(",", ":"))
    return {
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": f"{TOPIC_ARN}:2bcfbf39-05c3-41de-beaa-fcfcc21c8f55",
        "Sns": {
            "Type": "Notification",
            "MessageId": sns_id or _hex(body, 32),
            "TopicArn": TOPIC_ARN,
            "Subject": None,
            "Message": body,
            "Timestamp": iso_ms(at_ms) if at_ms else "",
            "SignatureVersion": "1",
            "Signature": "EXAMPLE",
            "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-example.pem",
            "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
            "MessageAttributes": {},
        },
    }


def sns_event(messages: Iterable[Any]) -> dict[str, Any]:
    """An SNS event for Lambda. (SNS itself delivers one record per invocation; tests batch more.)"""
    return {"Records": [sns_record(message) for message in messages]}


def sqs_event(messages: Iterable[Any], *, raw: bool = False) -> dict[str, Any]:
    """An SQS event for Lambda (up to ten records) from a queue subscribed to the topic: each body is the
    SNS envelope, or with raw message delivery the SES notification itself."""
    records = []
    for message in messages:
        envelope = sns_record(message)["Sns"]
        body = envelope["Message"] if raw else json.dumps(envelope, separators=(",", ":"))
        records.append(
            {
                "messageId": f"{_hex(body, 8)}-{_hex(body + 'q', 4)}-{_hex(body + 'r', 4)}-{_hex(body + 's', 12)}",
                "receiptHandle": "AQEB" + _hex(body + "h", 40),
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1714550400000"},
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode()).hexdigest(),  # SQS's own checksum
                "eventSource": "aws:sqs",
                "eventSourceARN": QUEUE_ARN,
                "awsRegion": "us-east-1",
            }
        )
    return {"Records": records}


# -- the rules, one event at a time ----------------------------------------------------------------

Outcome = tuple[str, str, bool, bool, int]  # state, reason, sticky, review, transient bounces in the window


def rules_in_time_order(events: Iterable[RecipientEvent], rules: MailRules) -> Outcome:
    """The issue's rules applied to one address's events sorted by event time, duplicates dropped.

    A plain state machine, independent of ``bot.core.mail.state``'s merge (only the tie order of events
    in the same millisecond is shared): the tests and the benchmark compare opsbot with it.
    """
    unique = {e.event_id: e for e in events}.values()
    ordered = sorted(unique, key=lambda e: (e.at_ms, RANK[effect_of(e)], e.event_id))
    state, reason, sticky, review, cause = "enable", "no-feedback", False, False, ""
    transients: list[int] = []
    for item in ordered:
        effect = effect_of(item)
        if effect == "permanent":
            state, reason = "disable", "permanent-bounce"
        elif effect in {"complaint", "suppress"}:
            cause = "complaint" if effect == "complaint" else "suppressed"
            state, reason, sticky = "disable", cause, True
            review = review and effect == "complaint"
        elif effect == "reenable":
            state, reason, sticky, review, transients = "enable", "reenabled", False, False, []
        elif effect == "delivery":
            transients, review = [], False
            state, reason = ("disable", cause) if sticky else ("enable", "delivery")
        elif effect == "transient":
            transients.append(item.at_ms)
            in_window = sum(1 for t in transients if t > item.at_ms - rules.transient_window_ms)
            if in_window >= rules.transient_limit:
                state, reason = "disable", "transient-bounces"
        elif effect == "undetermined":
            review = True
    count = sum(1 for t in transients if t > max(transients) - rules.transient_window_ms) if transients else 0
    return state, reason, sticky, review, count
