"""The /mail capability: record SES feedback, and the commands (status, stats, list, reenable, suppress).

One function per command, taking plain arguments and settings and returning a result dataclass that the
renderers (``bot.render.mail``) turn into Block Kit or terminal text. ``record_event`` is the one write
path: SES feedback and a person's decision both go through the same merge (``bot.core.mail.state``) and the
same conditional write (``bot.aws.mailing``).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import random
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.aws import mailing
from bot.config import Settings
from bot.core.common.timeparse import format_time, parse_duration, parse_time
from bot.core.mail.feedback import RecipientEvent, address_key, iso_ms
from bot.core.mail.state import (
    MERGE_STATE,
    AddressRecord,
    Derived,
    MailRules,
    Mark,
    derive,
    effect_of,
    from_item,
    history_entry,
    mark_of,
    merge,
    same_state,
    to_item,
)
from bot.errors import AwsError, ConfigError, NotFoundError, OpsbotError, UsageError, echo

logger = logging.getLogger("opsbot.mail")

# Each lost race means another writer stored an event for the same address, so losing this often needs
# that many concurrent events for one address (a few at most, even in a bounce storm).
MAX_WRITE_ATTEMPTS = 20

# SES's published thresholds (fractions): below the first the account is healthy, at the second it is
# placed under review, at the third sending may be paused.
BOUNCE_THRESHOLDS = (0.02, 0.05, 0.10)
COMPLAINT_THRESHOLDS = (0.001, 0.001, 0.005)

# The attributes this capability writes; anything else on an item (written by another system) is kept.
OWN_ATTRIBUTES = frozenset(
    {
        "UserId",
        "notificationType",
        "from",
        "timestamp",
        "state",
        "reason",
        "sticky",
        "review",
        "transientCount",
        "mergeState",
        "history",
        "eventTime",
        "lastEventAt",
        "lastMessageId",
        "bounceType",
        "bounceSubType",
        "diagnosticCode",
        "complaintFeedbackType",
        "since",
        "updatedAt",
        "rev",
        # Never copied from the original handler's row into opsbot's item when taking it over.
        "mirroredRev",
    }
)


# -- configuration ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertPolicy:
    # More alerts than this within ``window_seconds`` turn into one digest message.
    threshold: int = 10
    window_seconds: int = 60
    # A storm lasts until this long after the last window that went over the threshold.
    storm_seconds: int = 120
    # The digest message is updated at most this often (Slack's chat.update allows about 50 a minute).
    digest_update_seconds: float = 2.0


@dataclass(frozen=True)
class MailConfig:
    rules: MailRules
    alerts: AlertPolicy


def mail_config(settings: Settings) -> MailConfig:
    """Rules and alert policy from ``OPSBOT_MAIL_*`` variables (docs/configuration.md)."""
    extra = settings.extra

    def whole(name: str, default: int, minimum: int) -> int:
        raw = str(extra.get(name, "")).strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {raw!r}.") from None
        if value < minimum:
            raise ConfigError(f"{name} must be at least {minimum}, got {value}.")
        return value

    window_text = str(extra.get("OPSBOT_MAIL_TRANSIENT_WINDOW", "")).strip()
    try:
        window = parse_duration(window_text) if window_text else timedelta(hours=72)
    except UsageError as error:
        raise ConfigError(f"OPSBOT_MAIL_TRANSIENT_WINDOW: {error.message}") from None
    interval_text = str(extra.get("OPSBOT_MAIL_DIGEST_UPDATE_SECONDS", "")).strip()
    try:
        interval = float(interval_text) if interval_text else 2.0
    except ValueError:
        raise ConfigError(
            f"OPSBOT_MAIL_DIGEST_UPDATE_SECONDS must be a number, got {interval_text!r}."
        ) from None
    return MailConfig(
        rules=MailRules(
            transient_limit=whole("OPSBOT_MAIL_TRANSIENT_LIMIT", 3, 1),
            transient_window_ms=int(window.total_seconds() * 1000),
        ),
        alerts=AlertPolicy(
            threshold=whole("OPSBOT_MAIL_STORM_THRESHOLD", 10, 0),
            digest_update_seconds=max(0.0, interval),
        ),
    )


# -- recording events ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventOutcome:
    event: RecipientEvent
    duplicate: bool
    changed: bool
    before: Derived | None
    after: Derived
    item: dict[str, Any]
    # Set when the original handler's row under the event's spelling could not be brought up to date.
    mirror_error: str = ""
    # A new complaint older than a person's re-enable: that re-enable (the complaint does not undo it).
    late_for_reenable: Mark | None = None

    @property
    def newly_disabled(self) -> bool:
        was_enabled = self.before is None or self.before.state == "enable"
        return self.changed and was_enabled and self.after.state == "disable"

    @property
    def newly_in_review(self) -> bool:
        """Flagged for review while enabled, and was not so before: what a review alert is about.

        A disabled address flagged too (a newer undetermined bounce after a permanent bounce or complaint)
        is not: it is not mailed anyway, and its alert's "Keep enabled" would re-enable it."""
        in_review = self.after.review and self.after.state == "enable"
        was = self.before is not None and self.before.review and self.before.state == "enable"
        return self.changed and in_review and not was


STATS_FIELDS = {
    "permanent": "Bounce:Permanent",
    "transient": "Bounce:Transient",
    "undetermined": "Bounce:Undetermined",
    "complaint": "Complaint",
    "delivery": "Delivery",
}


def record_event(
    event: RecipientEvent,
    settings: Settings,
    rules: MailRules,
    *,
    known: dict[str, dict[str, Any] | None] | None = None,
) -> EventOutcome:
    """Merge one event into its address's item: read, merge, put conditional on the revision read; when
    another invocation wrote in between, merge again with what it wrote (returned with the failed put).

    A duplicate (the same feedback delivered again, by SNS or by the other SES format) is recognised from
    the item and changes nothing. ``known`` holds items already read for this batch (key -> item or None);
    it is used instead of a first read and kept up to date with what is written.

    When the original handler has a row under the spelling the event came with, that row's original
    attributes are then brought up to date too (``_mirror_legacy``); a failure there is reported in the
    outcome's ``mirror_error``, the event itself being stored.
    """
    table = settings.mailing_table
    known = {} if known is None else known
    current = known[event.address] if event.address in known else mailing.get_address(table, event.address)
    for attempt in range(MAX_WRITE_ATTEMPTS):
        base = current if current is not None else _legacy_spelling(table, event.spelled, known)
        record = replace(from_item(base), address=event.address) if base is not None else None
        before = derive(record, rules) if record is not None else None
        if record is not None and before is not None and record.knows(event):
            # A redelivery also repairs a copy that an earlier attempt could not write.
            error = _mirror_legacy(table, event, current, known)
            return EventOutcome(event, True, False, before, before, base or {}, error)
        merged = merge(record, event, rules)
        new_item = {k: v for k, v in (base or {}).items() if k not in OWN_ATTRIBUTES} | to_item(merged, rules)
        changed = current is None or not same_state(current, new_item)
        if changed:
            previous_rev = current.get("rev") if current is not None else None
            # Taking over a row that already holds copies of revisions (opsbot's item was deleted since):
            # continue above them, or the row would refuse every new copy.
            floor = int(base.get(mailing.MIRRORED_REV) or 0) if current is None and base is not None else 0
            new_item["rev"] = max(int(previous_rev or 0), floor) + 1
            new_item["updatedAt"] = format_time(datetime.now(UTC))
            try:
                mailing.put_if_revision(
                    table, new_item, int(previous_rev) if previous_rev is not None else None
                )
            except mailing.RevisionConflict as conflict:
                # Another invocation wrote this address between our read and write: merge into its item at
                # once (it is the newest there is); only after repeated losses back off a little.
                current = conflict.current
                if attempt >= 2:
                    time.sleep(random.uniform(0, 0.005 * attempt))
                continue
        stored = new_item if changed else current or {}
        known[event.address] = stored
        error = _mirror_legacy(table, event, stored, known)
        late = _reenable_it_predates(merged, event) if changed else None
        return EventOutcome(event, False, changed, before, derive(merged, rules), stored, error, late)
    raise AwsError(
        f"The mailing table entry for {event.address} kept changing while {event.event_id} "
        "was being recorded.",
        code="RevisionConflict",
        hint="The batch will be retried.",
    )


def _reenable_it_predates(record: AddressRecord, event: RecipientEvent) -> Mark | None:
    """The person's re-enable that a complaint is older than (None for anything else).

    By the rules such a complaint changes nothing: the person decided later. But it may never have been
    seen by them (a dead-letter queue redriven after the decision), so it is worth an alert."""
    if effect_of(event) != "complaint" or record.reenable is None:
        return None
    return record.reenable if mark_of(event).key < record.reenable.key else None


def _legacy_spelling(
    table: str, spelled: str, known: dict[str, dict[str, Any] | None] | None = None
) -> dict[str, Any] | None:
    """The item the original handler wrote under another spelling of the address (it keyed items by the
    address exactly as SES gave it), while opsbot has no item under the normalised address yet.

    Taking it over keeps what it recorded (a complaint stays sticky); from then on ``_mirror_legacy`` keeps
    its original attributes in step with opsbot's item. Items with opsbot's merge state are never taken:
    opsbot writes normalised keys only. What is read is remembered in ``known``.
    """
    if not spelled:
        return None
    if known is not None and spelled in known:
        item = known[spelled]
    else:
        item = mailing.get_address(table, spelled)
        if known is not None:
            known[spelled] = item
    return item if item is not None and MERGE_STATE not in item else None


def _mirror_legacy(
    table: str,
    event: RecipientEvent,
    stored: dict[str, Any] | None,
    known: dict[str, dict[str, Any] | None],
) -> str:
    """Copy opsbot's result into the original handler's row under the event's spelling, if there is one.

    Readers that look the address up as SES spelled it read that row, so its original attributes
    (``notificationType``, ``from``, ``timestamp``, ``state``) must say what opsbot's item says — a
    complaint must read ``disable`` there too. The row records which revision of opsbot's item it copies
    (``mirroredRev``) and the update is conditional on it being lower, so concurrent or late invocations
    never put an older state over a newer one; a row already holding this revision costs no call. Only those
    attributes and ``mirroredRev`` are written: the row's other attributes, and any written by another
    system after it was read, are left as they are, as is an original attribute opsbot's item lacks. Events
    without another spelling cost nothing, and in a batch the row was read with the others, so a row that
    does not exist costs nothing either. Returns "" or, when the copy could not be written, why.
    """
    if not event.spelled or stored is None or stored.get("rev") is None:
        return ""
    try:
        legacy = _legacy_spelling(table, event.spelled, known)
        rev = int(stored["rev"])
        if legacy is None or int(legacy.get(mailing.MIRRORED_REV) or 0) >= rev:
            return ""
        copied = {k: stored[k] for k in mailing.LEGACY_ATTRIBUTES if k in stored}
        refused = mailing.put_legacy_mirror(table, event.spelled, copied, rev)
    except (OpsbotError, TypeError, ValueError) as error:
        # TypeError/ValueError: a value of opsbot's item that cannot be written as an attribute.
        logger.error(
            "the original handler's row %s was not brought up to date with %s: %s",
            event.spelled,
            event.address,
            error,
        )
        return f"the original handler's row {event.spelled} was not updated: {error}"
    # Written: the row as read plus what was set. Edits other systems made since are not known here; of
    # this entry only mirroredRev and mergeState are looked at again (opsbot's own item exists by now).
    known[event.spelled] = (
        {**legacy, **copied, mailing.MIRRORED_REV: rev} if refused is None else (refused or None)
    )
    return ""


def stored_item(table: str, address: str, spelled: str = "") -> dict[str, Any] | None:
    """The item for ``address`` (normalised), or the original handler's item under ``spelled``."""
    return mailing.get_address(table, address) or _legacy_spelling(table, spelled)


def count_events(settings: Settings, outcomes: list[EventOutcome]) -> None:
    """Add the new (not duplicate) SES events to the daily counters ``/mail stats`` reads.

    Done once per batch, after the items: a failure here loses counts, never state (a retry of the batch
    sees duplicates).
    """
    per_day: dict[str, dict[str, int]] = {}
    for outcome in outcomes:
        counter = STATS_FIELDS.get(effect_of(outcome.event))
        if outcome.duplicate or counter is None:
            continue
        counts = per_day.setdefault(iso_ms(outcome.event.at_ms)[:10], {})
        counts[counter] = counts.get(counter, 0) + 1
    for day, day_counts in sorted(per_day.items()):
        mailing.add_stats(settings.state_table, day, day_counts)


# -- status ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SuppressionStatus:
    checked: bool  # False when OPSBOT_SES_SUPPRESSION is off
    listed: bool | None = None
    reason: str = ""
    last_update: str = ""
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "checked": self.checked,
            "listed": self.listed,
            "reason": self.reason or None,
            "lastUpdate": self.last_update or None,
            "error": self.error or None,
        }


@dataclass(frozen=True)
class MailStatus:
    address: str
    suppression: SuppressionStatus
    transient_limit: int
    transient_window: str
    recorded: bool = False
    state: str = "enable"
    reason: str = "no-feedback"
    since: str = ""
    sticky: bool = False
    review: bool = False
    transient_count: int = 0
    notification_type: str = ""
    sender: str = ""
    last_event_at: str = ""
    last_message_id: str = ""
    bounce_type: str = ""
    bounce_subtype: str = ""
    diagnostic: str = ""
    complaint_feedback_type: str = ""
    updated_at: str = ""
    history: list[dict[str, Any]] = field(default_factory=list)
    # The key of the item shown when it is the original handler's, under another spelling of the address.
    stored_as: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "state": self.state,
            "recorded": self.recorded,
            "reason": self.reason,
            "since": self.since or None,
            "sticky": self.sticky,
            "review": self.review,
            "transientBounces": self.transient_count,
            "transientLimit": self.transient_limit,
            "transientWindow": self.transient_window,
            "notificationType": self.notification_type or None,
            "from": self.sender or None,
            "lastEventAt": self.last_event_at or None,
            "lastMessageId": self.last_message_id or None,
            "bounceType": self.bounce_type or None,
            "bounceSubType": self.bounce_subtype or None,
            "diagnosticCode": self.diagnostic or None,
            "complaintFeedbackType": self.complaint_feedback_type or None,
            "updatedAt": self.updated_at or None,
            "history": self.history,
            "storedAs": self.stored_as or None,
            "suppressionList": self.suppression.to_json(),
        }


def window_text(rules: MailRules) -> str:
    """The transient-bounce window in words (``3d``)."""
    from bot.core.common.timeparse import format_duration

    return format_duration(timedelta(milliseconds=rules.transient_window_ms))


def status_of_item(
    address: str, item: dict[str, Any] | None, rules: MailRules, suppression: SuppressionStatus
) -> MailStatus:
    """The status shown for ``address`` given its stored item (None: never heard of)."""
    limits = (rules.transient_limit, window_text(rules))
    if item is None:
        return MailStatus(address, suppression, *limits)
    record = from_item(item)
    derived = derive(record, rules)
    key = str(item.get("UserId", address))
    return MailStatus(
        address,
        suppression,
        *limits,
        recorded=True,
        state=derived.state,
        reason=derived.reason,
        since=iso_ms(derived.cause.at) if derived.cause is not None else "",
        sticky=derived.sticky,
        review=derived.review,
        transient_count=derived.transient_count,
        notification_type=str(item.get("notificationType", "")),
        sender=str(item.get("from", "")),
        last_event_at=str(item.get("lastEventAt", "")) or str(item.get("timestamp", "")),
        last_message_id=str(item.get("lastMessageId", "")),
        bounce_type=str(item.get("bounceType", "")),
        bounce_subtype=str(item.get("bounceSubType", "")),
        diagnostic=str(item.get("diagnosticCode", "")),
        complaint_feedback_type=str(item.get("complaintFeedbackType", "")),
        updated_at=str(item.get("updatedAt", "")),
        history=[history_entry(mark) for mark in record.history],
        stored_as=key if key != address else "",
    )


def suppression_status(address: str, settings: Settings) -> SuppressionStatus:
    if not settings.ses_suppression:
        return SuppressionStatus(checked=False)
    from bot.aws import ses

    try:
        entry = ses.get_suppressed(address)
    except OpsbotError as error:
        return SuppressionStatus(checked=True, error=error.message)
    if entry is None:
        return SuppressionStatus(checked=True, listed=False)
    return SuppressionStatus(
        checked=True,
        listed=True,
        reason=entry.reason,
        last_update=format_time(entry.last_update) if entry.last_update else "",
    )


def status(address: str, settings: Settings) -> MailStatus:
    """``/mail status <address>``: state, why, last event, history, suppression-list status."""
    normalized, spelled = address_key(address)
    rules = mail_config(settings).rules
    item = stored_item(settings.mailing_table, normalized, spelled)
    return status_of_item(normalized, item, rules, suppression_status(normalized, settings))


# -- list ------------------------------------------------------------------------------------------

LIST_STATES = ("disable", "review", "enable")
MAX_LIST_LIMIT = 1000


@dataclass(frozen=True)
class ListedAddress:
    address: str
    state: str
    reason: str
    since: str
    sticky: bool
    review: bool
    updated_at: str
    # A row the original handler wrote (opsbot has not written it): its notificationType is the reason.
    original: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "state": self.state,
            "reason": self.reason,
            "since": self.since or None,
            "sticky": self.sticky,
            "review": self.review,
            "updatedAt": self.updated_at or None,
            "originalHandlerRow": self.original,
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> ListedAddress:
        original = "rev" not in item
        reason = str(item.get("reason", ""))
        if original:
            reason = f"original handler: {item.get('notificationType') or 'unknown'}"
        return cls(
            address=str(item.get("UserId", "")),
            state=str(item.get("state", "")),
            reason=reason,
            since=str(item.get("since", "") or (item.get("timestamp", "") if original else "")),
            sticky=item.get("sticky") is True,
            review=item.get("review") is True,
            updated_at=str(item.get("updatedAt", "")),
            original=original,
        )


@dataclass(frozen=True)
class AddressList:
    table: str
    state: str
    since: str  # ISO, "" for any time
    limit: int
    addresses: list[ListedAddress]
    next_cursor: str | None
    scanned: int  # entries DynamoDB read for this page, matching or not

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "state": self.state,
            "since": self.since or None,
            "limit": self.limit,
            "addresses": [a.to_json() for a in self.addresses],
            "nextCursor": self.next_cursor,
            "scanned": self.scanned,
        }


def encode_list_cursor(address: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(address).encode()).decode().rstrip("=")


def decode_list_cursor(cursor: str) -> str:
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        value = None
    if not isinstance(value, str) or not value:
        raise UsageError("That page cursor is not valid; start the list again.")
    return value


def resolve_list_since(since: str | None, *, now: datetime | None = None) -> str:
    """``--since`` as typed (``1d``, an ISO time, ...) -> the ISO time compared with ``updatedAt``."""
    if since is None or not since.strip():
        return ""
    return format_time(parse_time(since, now=now))


def list_addresses(
    settings: Settings,
    *,
    state: str = "disable",
    since: str | None = None,
    limit: int = 20,
    cursor: str | None = None,
    now: datetime | None = None,
) -> AddressList:
    """``/mail list``: addresses in a state (or flagged for review), optionally changed since a time.

    A Scan of the mailing table with a filter (it has no index by state): each page reads at most a few
    thousand entries (``bot.aws.mailing.scan_addresses``) and says where to go on. ``since`` filters on
    when opsbot last changed the entry (``updatedAt``), so every address disabled at or after that time
    is listed (and also addresses disabled earlier whose entry changed since: each shows its own since).
    """
    if state not in LIST_STATES:
        raise UsageError(f"--state takes one of {', '.join(LIST_STATES)}, not {echo(state)}.")
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise UsageError(f"--limit must be between 1 and {MAX_LIST_LIMIT}, not {limit}.")
    changed_since = resolve_list_since(since, now=now)
    start_after = decode_list_cursor(cursor) if cursor else None
    page = mailing.scan_addresses(
        settings.mailing_table,
        state=None if state == "review" else state,
        review=True if state == "review" else None,
        changed_since=changed_since or None,
        limit=limit,
        start_after=start_after,
    )
    return AddressList(
        table=settings.mailing_table,
        state=state,
        since=changed_since,
        limit=limit,
        addresses=[ListedAddress.from_item(item) for item in page.items],
        next_cursor=encode_list_cursor(page.next_key) if page.next_key else None,
        scanned=page.scanned,
    )


# -- stats -----------------------------------------------------------------------------------------


def rate_level(rate: float | None, thresholds: tuple[float, float, float]) -> str:
    """healthy | elevated | review | paused (sending may be paused), by SES's thresholds."""
    if rate is None:
        return "unknown"
    healthy, review, paused = thresholds
    if rate >= paused:
        return "paused"
    if rate >= review:
        return "review"
    if rate >= healthy:
        return "elevated"
    return "healthy"


# Fewer delivery notifications than this give no rate: with Delivery notifications off on the SES identity,
# the denominator is the bounces themselves and any single bounce reads as a 100% bounce rate.
MIN_DELIVERIES_FOR_RATES = 20


@dataclass(frozen=True)
class MailStats:
    since: datetime
    until: datetime
    first_day: str
    last_day: str
    deliveries: int
    permanent_bounces: int
    transient_bounces: int
    undetermined_bounces: int
    complaints: int
    reputation: Any = None  # bot.aws.ses.ReputationMetrics when SES published any
    reputation_note: str = ""

    @property
    def bounces(self) -> int:
        return self.permanent_bounces + self.transient_bounces + self.undetermined_bounces

    @property
    def recipients(self) -> int:
        """The denominator: recipients SES reported a delivery or a bounce for."""
        return self.deliveries + self.bounces

    @property
    def rates_known(self) -> bool:
        return self.deliveries >= MIN_DELIVERIES_FOR_RATES

    @property
    def rates_note(self) -> str:
        """Why there are no rates ("" when there are)."""
        if self.rates_known:
            return ""
        if not self.deliveries:
            return (
                "Rates unknown: no delivery notifications recorded. Enable Delivery notifications on the SES "
                "identity (or the configuration set's event destination) to get a bounce rate."
            )
        return (
            f"Rates unknown: only {_plural(self.deliveries, 'delivery notification')} recorded (a rate needs "
            f"at least {MIN_DELIVERIES_FOR_RATES}). Are Delivery notifications enabled on every SES identity?"
        )

    @property
    def bounce_rate(self) -> float | None:
        # SES's bounce rate counts hard (permanent) bounces only.
        return self.permanent_bounces / self.recipients if self.rates_known else None

    @property
    def complaint_rate(self) -> float | None:
        return self.complaints / self.recipients if self.rates_known else None

    @property
    def bounce_level(self) -> str:
        return rate_level(self.bounce_rate, BOUNCE_THRESHOLDS)

    @property
    def complaint_level(self) -> str:
        return rate_level(self.complaint_rate, COMPLAINT_THRESHOLDS)

    @property
    def ses_bounce_level(self) -> str:
        return rate_level(getattr(self.reputation, "bounce_rate", None), BOUNCE_THRESHOLDS)

    @property
    def ses_complaint_level(self) -> str:
        return rate_level(getattr(self.reputation, "complaint_rate", None), COMPLAINT_THRESHOLDS)

    def to_json(self) -> dict[str, Any]:
        return {
            "since": format_time(self.since),
            "until": format_time(self.until),
            "days": [self.first_day, self.last_day],
            "counts": {
                "deliveries": self.deliveries,
                "permanentBounces": self.permanent_bounces,
                "transientBounces": self.transient_bounces,
                "undeterminedBounces": self.undetermined_bounces,
                "complaints": self.complaints,
                "recipients": self.recipients,
            },
            "bounceRate": self.bounce_rate,
            "bounceLevel": self.bounce_level,
            "complaintRate": self.complaint_rate,
            "complaintLevel": self.complaint_level,
            "ratesNote": self.rates_note or None,
            "computedFrom": (
                "feedback notifications recorded by opsbot, per recipient, whole UTC days: bounce rate = "
                "permanent bounces / (deliveries + all bounces); complaint rate = complaints / (deliveries "
                f"+ all bounces); none with fewer than {MIN_DELIVERIES_FOR_RATES} deliveries"
            ),
            "thresholds": {
                name: dict(zip(("healthyBelow", "review", "mayPause"), levels, strict=True))
                for name, levels in (("bounce", BOUNCE_THRESHOLDS), ("complaint", COMPLAINT_THRESHOLDS))
            },
            "sesReputation": self.reputation.to_json() if self.reputation is not None else None,
            "sesBounceLevel": self.ses_bounce_level if self.reputation is not None else None,
            "sesComplaintLevel": self.ses_complaint_level if self.reputation is not None else None,
            "sesReputationNote": self.reputation_note or None,
        }


def _plural(number: int, noun: str) -> str:
    return f"{number:,} {noun}" + ("" if number == 1 else "s")


def stats(settings: Settings, since: str = "7d", *, now: datetime | None = None) -> MailStats:
    """``/mail stats [--since 7d]``: bounce and complaint rates with SES's thresholds."""
    now = now or datetime.now(UTC)
    start = parse_time(since, now=now)
    if start >= now:
        raise UsageError(f"--since {echo(since)} is not in the past.")
    first_day, last_day = start.date().isoformat(), now.date().isoformat()
    days = mailing.read_stats(settings.state_table, first_day, last_day)
    totals: dict[str, int] = {}
    for counts in days.values():
        for name, value in counts.items():
            totals[name] = totals.get(name, 0) + value
    reputation: Any = None
    note = ""
    from bot.aws import ses

    try:
        metrics = ses.reputation_metrics(start, now)
        if metrics.present:
            reputation = metrics
        else:
            note = "SES published no reputation metrics to CloudWatch (AWS/SES) for this period."
    except OpsbotError as error:
        note = f"SES reputation metrics could not be read: {error.message}"
    return MailStats(
        since=start,
        until=now,
        first_day=first_day,
        last_day=last_day,
        deliveries=totals.get("Delivery", 0),
        permanent_bounces=totals.get("Bounce:Permanent", 0),
        transient_bounces=totals.get("Bounce:Transient", 0),
        undetermined_bounces=totals.get("Bounce:Undetermined", 0),
        complaints=totals.get("Complaint", 0),
        reputation=reputation,
        reputation_note=note,
    )


# -- a person's decision ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionResult:
    address: str
    action: str  # "reenable" | "suppress"
    changed: bool  # whether anything changed: the mailing table or the SES suppression list
    table_changed: bool
    list_changed: bool
    by: str
    at: str
    before_state: str
    status: MailStatus
    suppression_list: str  # what happened on the SES suppression list, in words

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "action": self.action,
            "changed": self.changed,
            "tableChanged": self.table_changed,
            "suppressionListChanged": self.list_changed,
            "by": self.by,
            "at": self.at,
            "before": self.before_state,
            "state": self.status.state,
            "suppressionList": self.suppression_list,
            "status": self.status.to_json(),
        }


def _person_event(address: str, kind: str, by: str, *, note: str = "", spelled: str = "") -> RecipientEvent:
    at_ms = int(time.time() * 1000)
    return RecipientEvent(
        address=address,
        kind=kind,  # type: ignore[arg-type]
        at_ms=at_ms,
        event_id=f"{kind}:{at_ms}:{uuid.uuid4().hex[:12]}",
        by=by,
        note=note,
        spelled=spelled,
    )


def reenable(address: str, settings: Settings, *, by: str) -> ActionResult:
    """Enable the address again (clears a complaint's stickiness and a review flag).

    Also removes it from SES's account-level suppression list when ``OPSBOT_SES_SUPPRESSION`` is on.
    Doing it twice changes nothing the second time.
    """
    normalized, spelled = address_key(address)
    rules = mail_config(settings).rules
    current = stored_item(settings.mailing_table, normalized, spelled)
    before = derive(from_item(current), rules) if current is not None else None
    if current is None and not settings.ses_suppression:
        raise NotFoundError(
            f"No feedback is recorded for {echo(normalized)}, so there is nothing to re-enable."
        )
    # The suppression list first: an address enabled in the table but still suppressed by SES would bounce
    # (OnAccountSuppressionList) and be disabled again by the next notification.
    listing = "SES suppression list not checked (OPSBOT_SES_SUPPRESSION is off)"
    removed = False
    if settings.ses_suppression:
        from bot.aws import ses

        removed = ses.delete_suppressed(normalized)
        listing = (
            "removed from the SES suppression list" if removed else "was not on the SES suppression list"
        )
    outcome = None
    if before is not None and (before.state == "disable" or before.sticky or before.review):
        outcome = record_event(_person_event(normalized, "reenable", by, spelled=spelled), settings, rules)
    return _action_result("reenable", normalized, by, before, outcome, current, listing, removed, settings)


def suppress(address: str, settings: Settings, *, by: str, reason: str = "") -> ActionResult:
    """Disable the address and keep it disabled (a later delivery does not re-enable it).

    Also adds it to SES's account-level suppression list (reason BOUNCE or COMPLAINT; by default
    COMPLAINT when the address complained, else BOUNCE) when ``OPSBOT_SES_SUPPRESSION`` is on.
    """
    from bot.aws import ses

    normalized, spelled = address_key(address)
    wanted = reason.strip().upper()
    if wanted and wanted not in ses.REASONS:
        raise UsageError(f"The suppression reason must be bounce or complaint, not {echo(reason)}.")
    rules = mail_config(settings).rules
    current = stored_item(settings.mailing_table, normalized, spelled)
    record = from_item(current) if current is not None else None
    before = derive(record, rules) if record is not None else None
    outcome = None
    if not (before is not None and before.state == "disable" and before.sticky):
        event = _person_event(normalized, "suppress", by, note=wanted, spelled=spelled)
        outcome = record_event(event, settings, rules)
    ses_reason = wanted or ("COMPLAINT" if record is not None and record.complaint is not None else "BOUNCE")
    listing = "SES suppression list not changed (OPSBOT_SES_SUPPRESSION is off)"
    added = False
    if settings.ses_suppression:
        # PutSuppressedDestination answers the same whether or not it changed anything, so look first: an
        # entry with this reason already is nothing to do (and is not reported as a change).
        entry = ses.get_suppressed(normalized)
        if entry is not None and entry.reason == ses_reason:
            listing = f"already on the SES suppression list (reason {ses_reason})"
        else:
            ses.put_suppressed(normalized, ses_reason)
            added = True
            listing = (
                f"added to the SES suppression list (reason {ses_reason})"
                if entry is None
                else f"SES suppression list reason changed from {entry.reason} to {ses_reason}"
            )
    return _action_result("suppress", normalized, by, before, outcome, current, listing, added, settings)


def _action_result(
    action: str,
    address: str,
    by: str,
    before: Derived | None,
    outcome: EventOutcome | None,
    current: dict[str, Any] | None,
    listing: str,
    list_changed: bool,
    settings: Settings,
) -> ActionResult:
    table_changed = outcome is not None and outcome.changed
    changed = table_changed or list_changed
    logger.info(
        "mail %s %s by %s: changed=%s (table %s), %s", action, address, by, changed, table_changed, listing
    )
    item = outcome.item if outcome is not None else current
    return ActionResult(
        address=address,
        action=action,
        changed=changed,
        table_changed=table_changed,
        list_changed=list_changed,
        by=by,
        at=format_time(datetime.now(UTC)),
        before_state=before.state if before else "unknown",
        status=status_of_item(
            address, item, mail_config(settings).rules, suppression_status(address, settings)
        ),
        suppression_list=listing,
    )
