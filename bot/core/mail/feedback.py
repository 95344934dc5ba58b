"""Parsing of SES feedback as it reaches Lambda: SNS envelopes around SES notifications.

Two SES formats carry the same payloads: identity *notifications* (``notificationType``) and *event
publishing* records (``eventType``). Both are reduced to one ``RecipientEvent`` per recipient, whose
``event_id`` is the identity of the feedback itself (SES's ``feedbackId`` for bounces and complaints, the
message id for deliveries) rather than of the SNS message carrying it, so the same bounce delivered twice,
or once by each format, is recognised as one event.

Pure functions. Everything that cannot be used raises ``MalformedRecord`` (a ``UsageError``) with the
reason; nothing else is raised for any input.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parseaddr, parsedate_to_datetime
from typing import Any, Literal

from bot.errors import UsageError, echo, is_invisible

EventKind = Literal["bounce", "complaint", "delivery", "reenable", "suppress"]

# The SES types this capability acts on; the others (Send, Reject, Open, Click, DeliveryDelay...) are
# logged and ignored.
HANDLED_TYPES = {"Bounce": "bounce", "Complaint": "complaint", "Delivery": "delivery"}

MAX_ADDRESS = 254
MAX_LOCAL_PART = 64
MAX_DIAGNOSTIC = 1000
MAX_FIELD = 500
MAX_SPELLING = 320

# RFC 5321 allows more, but these are the characters that occur in deliverable addresses; quoted local
# parts are rare enough that an address using one is better reviewed by a person.
_LOCAL_PART = re.compile(r"^[^\s@<>()\[\]\\,;:\"]+$")
_DOMAIN_LABEL = re.compile(r"^(?!-)[^\s@<>()\[\]\\,;:\"._]+(?<!-)$")


def refused_character(text: str) -> str:
    """The first character of ``text`` no deliverable address contains (``bot.errors.is_invisible``: the
    bidi overrides make an address read differently from what it is, lone surrogates cannot be the
    table's key), or ""."""
    return next((char for char in text if is_invisible(char)), "")


class MalformedRecord(UsageError):
    """A record or notification that cannot be used; the message says why."""


class InvalidAddress(UsageError):
    """Text that is not an e-mail address opsbot can track."""


@dataclass(frozen=True)
class RecipientEvent:
    """One thing that happened to one address, in the form the state machine consumes."""

    address: str  # normalised: the table's key
    kind: EventKind
    at_ms: int  # when it happened (epoch milliseconds): the ordering key
    event_id: str  # identity of the feedback (duplicates share it)
    notification_type: str = ""  # "Bounce" | "Complaint" | "Delivery" ("" for a person's action)
    message_id: str = ""
    source: str = ""  # mail.source as SES gave it (may include a display name)
    mail_timestamp: str = ""  # mail.timestamp as SES gave it (the original table stores this string)
    bounce_type: str = ""
    bounce_subtype: str = ""
    diagnostic: str = ""
    status: str = ""  # enhanced status code of a bounce, e.g. 5.1.1
    feedback_type: str = ""  # complaintFeedbackType
    complaint_subtype: str = ""
    by: str = ""  # who, for a person's action
    note: str = ""  # e.g. the reason given with a person's action
    # The address exactly as SES (or the person) wrote it, when that differs from ``address``: the key the
    # original handler used, so an item it wrote under that spelling can be taken over.
    spelled: str = ""


@dataclass(frozen=True)
class SkippedRecipient:
    raw: str
    reason: str


@dataclass(frozen=True)
class ParsedNotification:
    notification_type: str  # as SES named it (eventType or notificationType)
    message_id: str
    source: str
    events: tuple[RecipientEvent, ...] = ()
    skipped: tuple[SkippedRecipient, ...] = ()
    # True for types this capability does not act on (Send, Open, DeliveryDelay...).
    ignored: bool = False


@dataclass(frozen=True)
class RawRecord:
    """One record of a Lambda event, before its message is parsed."""

    index: int
    message: Any  # the SES notification: a JSON string (SNS) or an already decoded mapping
    sns_message_id: str = ""
    sent_at: str = ""  # when SNS (or SQS) got it: the event time of last resort
    sqs_message_id: str = ""  # set for SQS records: what a partial batch failure names
    problem: str = ""  # set when the record itself is unusable

    def label(self) -> str:
        ids = [f"SNS message {self.sns_message_id}"] if self.sns_message_id else []
        ids += [f"SQS message {self.sqs_message_id}"] if self.sqs_message_id else []
        return f"record {self.index}" + (f" ({', '.join(ids)})" if ids else "")


@dataclass(frozen=True)
class BatchParse:
    notifications: list[tuple[RawRecord, ParsedNotification]] = field(default_factory=list)
    malformed: list[tuple[RawRecord, str]] = field(default_factory=list)


# -- addresses -------------------------------------------------------------------------------------


# A Slack link as pasted from a message (``<mailto:jane@example.com|jane@example.com>``).
_SLACK_MAILTO = re.compile(r"<mailto:([^<>|]*)(?:\|[^<>]*)?>", re.IGNORECASE)
_ANGLE = re.compile(r"<([^<>]*)>")


def bare_address(text: str) -> str:
    """The address in what a person pasted, as written (case kept): ``Jane Doe <jane@example.com>``,
    ``"Doe, Jane" <jane@example.com>``, a Slack link ``<mailto:jane@example.com|jane@example.com>``,
    ``mailto:jane@example.com``, or the address alone. Not validated (``normalize_address`` does that);
    text with two addresses raises InvalidAddress, since which one was meant is not known."""
    cleaned = _SLACK_MAILTO.sub(lambda found: f"<{found.group(1)}>", text.strip())
    bracketed = [inner.strip() for inner in _ANGLE.findall(cleaned) if "@" in inner]
    if len(bracketed) > 1:
        raise InvalidAddress(f"{_shown(text)} holds more than one address; give one at a time.")
    if bracketed:
        cleaned = bracketed[0]
    elif "<" in cleaned or '"' in cleaned:
        _, parsed = parseaddr(cleaned)
        cleaned = parsed.strip() or cleaned
    elif len([word for word in cleaned.split() if "@" in word]) > 1:
        raise InvalidAddress(f"{_shown(text)} holds more than one address; give one at a time.")
    cleaned = cleaned.strip("<>").strip()
    if cleaned.lower().startswith("mailto:"):
        cleaned = cleaned[len("mailto:") :]
    return cleaned


def normalize_address(text: object) -> str:
    """An address as the table keys it: trimmed, display name, angle brackets and a ``mailto:`` link
    removed (``bare_address``), lowercase.

    SES and mailbox providers treat the domain case-insensitively and, in practice, the local part too,
    so ``Jane@Example.COM`` and ``jane@example.com`` are one row. Text with a control, bidi or other
    invisible formatting character is refused (``InvalidAddress``), as is anything else that is not an
    address; nothing but ``InvalidAddress`` is raised, for any input.
    """
    if not isinstance(text, str):
        raise InvalidAddress(f"An e-mail address must be text, got {type(text).__name__}.")
    if not text.strip():
        raise InvalidAddress("The e-mail address is empty.")
    shown = _shown(text)
    # Checked on the whole text, before a display name is dropped: what is refused never reaches the
    # table, the log or Slack (``shown`` is a repr, which writes such characters as escapes).
    refused = refused_character(text.strip())
    if refused:
        raise InvalidAddress(
            f"{shown} contains a control or invisible formatting character (U+{ord(refused):04X}), "
            "which an e-mail address cannot contain."
        )
    try:
        cleaned = bare_address(text).lower()
    except InvalidAddress:
        raise
    except Exception:  # the email package's parser on hostile text: an address it cannot read
        raise InvalidAddress(f"{shown} is not an e-mail address (expected name@domain).") from None
    if cleaned.count("@") != 1:
        raise InvalidAddress(f"{shown} is not an e-mail address (expected one @, as in jane@example.com).")
    local, domain = cleaned.split("@")
    domain = domain.rstrip(".")
    if not local or not domain:
        raise InvalidAddress(f"{shown} is not an e-mail address (expected name@domain).")
    if len(local) > MAX_LOCAL_PART or len(cleaned) > MAX_ADDRESS:
        raise InvalidAddress(f"{shown} is too long to be an e-mail address.")
    if not _LOCAL_PART.match(local) or local.startswith(".") or local.endswith(".") or ".." in local:
        raise InvalidAddress(f"{shown} has characters that cannot appear in an e-mail address.")
    labels = domain.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.match(label) for label in labels):
        raise InvalidAddress(f"{shown} does not have a valid domain (as in example.com).")
    return f"{local}@{domain}"


def sender_address(source: str) -> str:
    """The bare address of ``mail.source`` (which may be ``Name <sender@example.com>``)."""
    try:
        return normalize_address(source)
    except InvalidAddress:
        # Shown in the storm digest: without the characters an address may not contain.
        kept = "".join(char for char in source if not refused_character(char))
        return kept.strip()[:MAX_FIELD]


def _shown(text: object) -> str:
    return echo(text)


# -- timestamps ------------------------------------------------------------------------------------

_OFFSET_WITHOUT_COLON = re.compile(r"([+-]\d{2})(\d{2})$")
_FULL_YEAR = re.compile(r"(?<!\d)(19|2\d)\d\d(?!\d)")
_CLOCK = re.compile(r"\d{1,2}:\d{2}")
_SPACE_BEFORE_ZONE = re.compile(r"\s+(?=[+-]\d{2}:?\d{2}$|Z$)")
# Later than this is not an SES timestamp but garbage (or milliseconds read as seconds).
_LATEST = datetime(2200, 1, 1, tzinfo=UTC)
_EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)


def parse_timestamp(value: object) -> int:
    """An SES timestamp -> epoch milliseconds. Raises MalformedRecord when it cannot be read.

    SES writes ISO 8601 with milliseconds and ``Z`` but other forms occur: ``2018-10-08T14:05:45 +0000``,
    offsets without a colon, a space instead of ``T``, RFC 2822 dates, epoch seconds or milliseconds.
    """
    if isinstance(value, bool) or value is None:
        raise MalformedRecord(f"missing or unreadable timestamp {value!r}")
    if isinstance(value, int | float):
        return _epoch(float(value), value)
    if not isinstance(value, str) or not value.strip():
        raise MalformedRecord(f"missing or unreadable timestamp {value!r}")
    text = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return _epoch(float(text), value)
    parsed = _parse_datetime(text)
    if parsed is None:
        raise MalformedRecord(f"unreadable timestamp {_shown(value)}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if not _EARLIEST <= parsed < _LATEST:
        raise MalformedRecord(f"timestamp {_shown(value)} is out of range")
    return round(parsed.timestamp() * 1000)


def _epoch(number: float, original: object) -> int:
    # Ten digits are seconds, thirteen are milliseconds (SES itself only writes ISO text).
    ms = number * 1000 if number < 1e11 else number
    if not _EARLIEST.timestamp() * 1000 <= ms < _LATEST.timestamp() * 1000:
        raise MalformedRecord(f"timestamp {_shown(original)} is out of range")
    return round(ms)


def _parse_datetime(text: str) -> datetime | None:
    candidate = _SPACE_BEFORE_ZONE.sub("", text)
    candidate = re.sub(r"^(\d{4}-\d{2}-\d{2})[ t](\d)", r"\1T\2", candidate)
    if candidate.endswith(("z", "Z")):
        candidate = candidate[:-1] + "+00:00"
    candidate = _OFFSET_WITHOUT_COLON.sub(r"\1:\2", candidate)
    try:
        return datetime.fromisoformat(candidate)
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        pass
    # dateutil fills what is missing from today ("Tuesday", "10" and "May" all parse): it is only asked
    # when the text has a date and a time of its own, so an event is never given an invented time.
    if not (_FULL_YEAR.search(text) and _CLOCK.search(text)):
        return None
    try:
        from dateutil import parser as date_parser

        return date_parser.parse(text)
    except (ValueError, OverflowError, TypeError):
        return None


def iso_ms(at_ms: int) -> str:
    """Epoch milliseconds -> ``2024-05-01T12:00:00.000Z``."""
    moment = datetime.fromtimestamp(at_ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- records ---------------------------------------------------------------------------------------


def split_records(event: object) -> list[RawRecord]:
    """The records of a Lambda event: SNS (``Records[].Sns``), SQS whose bodies are SNS envelopes or, with
    raw message delivery, SES notifications (``Records[].body``), or a bare SES notification.

    A record that is not usable comes back with ``problem`` set, so the caller can log it and go on with
    the others.
    """
    if isinstance(event, Mapping) and "Records" in event:
        records = event.get("Records")
        if not isinstance(records, list):
            return [RawRecord(0, None, problem="the event's Records is not a list")]
        return [_raw_record(index, record) for index, record in enumerate(records)]
    if isinstance(event, Mapping) and ("notificationType" in event or "eventType" in event):
        return [RawRecord(0, event)]
    if isinstance(event, list):
        return [_raw_record(index, record) for index, record in enumerate(event)]
    return [RawRecord(0, None, problem="the event is neither an SNS event nor an SES notification")]


def _raw_record(index: int, record: object) -> RawRecord:
    if not isinstance(record, Mapping):
        return RawRecord(index, None, problem="the record is not an object")
    if record.get("eventSource") == "aws:sqs":
        return _sqs_record(index, record)
    sns = record.get("Sns", record.get("sns"))
    if not isinstance(sns, Mapping):
        if "notificationType" in record or "eventType" in record:
            return RawRecord(index, record)
        return RawRecord(index, None, problem="the record has no Sns object")
    return _from_envelope(index, sns)


def _from_envelope(index: int, sns: Mapping[str, Any], sqs_message_id: str = "") -> RawRecord:
    ids = {
        "sns_message_id": _text(sns.get("MessageId")),
        "sent_at": _text(sns.get("Timestamp")),
        "sqs_message_id": sqs_message_id,
    }
    if sns.get("Type") == "SubscriptionConfirmation":
        return RawRecord(index, None, problem="an SNS subscription confirmation", **ids)
    if sns.get("Message") is None:
        return RawRecord(index, None, problem="the SNS record has no Message", **ids)
    return RawRecord(index, sns.get("Message"), **ids)


def _sqs_record(index: int, record: Mapping[str, Any]) -> RawRecord:
    message_id = _text(record.get("messageId"))
    body = record.get("body")
    try:
        data = json.loads(body) if isinstance(body, str) else None
    except (ValueError, RecursionError):
        data = None
    if isinstance(data, Mapping) and "Type" in data and "Message" in data:
        return _from_envelope(index, data, message_id)
    # Raw message delivery: the body is the SES notification itself (or something the parser will name).
    attributes = record.get("attributes")
    sent = attributes.get("SentTimestamp") if isinstance(attributes, Mapping) else None
    return RawRecord(index, body, sent_at=_text(sent), sqs_message_id=message_id)


def parse_batch(event: object) -> BatchParse:
    """Every record of the event, each parsed or set aside as malformed with the reason."""
    result = BatchParse()
    for raw in split_records(event):
        if raw.problem:
            result.malformed.append((raw, raw.problem))
            continue
        try:
            result.notifications.append((raw, parse_notification(raw.message, fallback_time=raw.sent_at)))
        except MalformedRecord as error:
            result.malformed.append((raw, error.message))
    return result


def parse_notification(message: object, *, fallback_time: str = "") -> ParsedNotification:
    """One SES notification or event-publishing record -> its per-recipient events."""
    data = _decode(message)
    kind_name = data.get("notificationType", data.get("eventType"))
    if not isinstance(kind_name, str) or not kind_name.strip():
        raise MalformedRecord("the message has neither notificationType nor eventType")
    kind_name = kind_name.strip()
    mail = data.get("mail")
    mail = mail if isinstance(mail, Mapping) else {}
    message_id = _text(mail.get("messageId"))
    source = _text(mail.get("source"))
    if kind_name not in HANDLED_TYPES:
        return ParsedNotification(kind_name, message_id, source, ignored=True)
    kind = HANDLED_TYPES[kind_name]
    body_key = kind  # "bounce" / "complaint" / "delivery"
    body = data.get(body_key)
    if not isinstance(body, Mapping):
        raise MalformedRecord(f"a {kind_name} message without its {body_key!r} object")
    if not mail:
        raise MalformedRecord(f"a {kind_name} message without its 'mail' object")
    if not message_id:
        raise MalformedRecord(f"a {kind_name} message without mail.messageId")
    at_ms = _event_time(body.get("timestamp"), mail.get("timestamp"), fallback_time)
    common = {
        "kind": kind,
        "at_ms": at_ms,
        "notification_type": kind_name,
        "message_id": message_id,
        "source": source,
        "mail_timestamp": _text(mail.get("timestamp")) or fallback_time,
    }
    feedback = _text(body.get("feedbackId")) or f"{message_id}:{at_ms}"
    if kind == "bounce":
        # SES's "Undetermined" when the type is missing: a person decides.
        common["bounce_type"] = _text(body.get("bounceType")) or "Undetermined"
        common["bounce_subtype"] = _text(body.get("bounceSubType")) or "Undetermined"
        entries = _recipients(body.get("bouncedRecipients"), "bounce.bouncedRecipients")
        events, skipped = _events_for(entries, common, f"bounce:{feedback}", _bounce_detail)
    elif kind == "complaint":
        common["feedback_type"] = _text(body.get("complaintFeedbackType"), 64)
        common["complaint_subtype"] = _text(body.get("complaintSubType"), 64)
        entries = _recipients(body.get("complainedRecipients"), "complaint.complainedRecipients")
        events, skipped = _events_for(entries, common, f"complaint:{feedback}", None)
    else:
        # One delivery per message and recipient: the message id identifies it.
        common["diagnostic"] = _text(body.get("smtpResponse"), MAX_DIAGNOSTIC)
        entries = _recipients(body.get("recipients"), "delivery.recipients")
        events, skipped = _events_for(entries, common, f"delivery:{message_id}", None)
    if not events and not skipped:
        raise MalformedRecord(f"a {kind_name} message without recipients")
    return ParsedNotification(kind_name, message_id, source, tuple(events), tuple(skipped))


def _decode(message: object) -> Mapping[str, Any]:
    if isinstance(message, Mapping):
        return message
    if isinstance(message, bytes | bytearray):
        try:
            message = message.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedRecord("the message is not UTF-8 text") from None
    if not isinstance(message, str):
        raise MalformedRecord(f"the message is {type(message).__name__}, not JSON text")
    try:
        data = json.loads(message)
    except (ValueError, RecursionError) as error:
        raise MalformedRecord(f"the message is not JSON ({str(error)[:80]})") from None
    if not isinstance(data, Mapping):
        raise MalformedRecord("the message is JSON but not an object")
    return data


def _text(value: object, limit: int = MAX_FIELD) -> str:
    if isinstance(value, str):
        return value.strip()[:limit]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)[:limit]
    return ""


def _event_time(*candidates: object) -> int:
    """The event's own time; SES's mail.timestamp (send time) or SNS's as fallbacks."""
    problems: list[str] = []
    for candidate in candidates:
        if candidate in (None, ""):
            continue
        try:
            return parse_timestamp(candidate)
        except MalformedRecord as error:
            problems.append(error.message)
    raise MalformedRecord(problems[0] if problems else "the message has no timestamp")


def _recipients(items: object, name: str) -> list[Mapping[str, Any]]:
    """Recipient entries as objects with ``emailAddress`` (deliveries list bare addresses)."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise MalformedRecord(f"{name} is not a list")
    return [item if isinstance(item, Mapping) else {"emailAddress": item} for item in items]


def _bounce_detail(entry: Mapping[str, Any]) -> dict[str, str]:
    # diagnosticCode and status are there only when the receiving server sent a DSN.
    return {
        "diagnostic": _text(entry.get("diagnosticCode"), MAX_DIAGNOSTIC),
        "status": _text(entry.get("status"), 32),
    }


def _events_for(
    entries: list[Mapping[str, Any]],
    common: Mapping[str, Any],
    identity: str,
    detail: Callable[[Mapping[str, Any]], dict[str, str]] | None,
) -> tuple[list[RecipientEvent], list[SkippedRecipient]]:
    """One event per recipient whose address is usable; the others are set aside with the reason."""
    events: list[RecipientEvent] = []
    skipped: list[SkippedRecipient] = []
    for entry in entries:
        raw = entry.get("emailAddress")
        try:
            address = normalize_address(raw)
        except InvalidAddress as error:
            skipped.append(SkippedRecipient(_shown(raw), error.message))
            continue
        extra: dict[str, Any] = detail(entry) if detail is not None else {}
        events.append(
            RecipientEvent(
                address=address,
                event_id=f"{identity}:{address}",
                spelled=spelling(raw, address),
                **common,
                **extra,
            )
        )
    return events, skipped


def address_key(text: str) -> tuple[str, str]:
    """(the address as the table keys it, the spelling typed when it is another one, else ""): what a
    command needs to find both opsbot's item and the original handler's row."""
    normalized = normalize_address(text)
    return normalized, spelling(bare_address(text), normalized)


def spelling(raw: object, address: str) -> str:
    """``raw`` when it is another spelling of ``address`` short enough to be a DynamoDB key, else ""."""
    if isinstance(raw, str) and raw != address and len(raw.encode()) <= MAX_SPELLING:
        return raw
    return ""
