"""The per-address feedback state machine, in a form that does not care about arrival order.

The rules, read in event-time order, are a simple machine:

- Permanent bounce -> disable.
- Complaint -> disable, *sticky*: a later delivery does not re-enable it, only a person does.
- Transient bounce -> stays as it is, counted; ``limit`` transient bounces since the last delivery and
  within ``window`` of each other -> disable.
- Undetermined bounce -> flagged for review (until a delivery or a person's decision).
- Delivery -> enable unless sticky (a blocked delivery keeps the sticky cause as the reason); it also
  restarts transient counting.
- A person's re-enable clears everything; a person's suppress disables and is sticky like a complaint.

SNS delivers at least once and in any order, so the stored record is not that machine's state but what
the state is computed *from*: the newest event of each kind (max registers), the transient bounces that can
still matter, and the ten newest events. Merging an event is then commutative, associative and idempotent
(``merge(merge(r, a), b) == merge(merge(r, b), a)`` and ``merge(merge(r, a), a) == merge(r, a)``), and
``derive`` gives exactly what the machine above gives for the same events sorted by time — the property
tests check both against a plain sequential implementation of the rules.

Pure functions; the DynamoDB item layout is at the bottom (``to_item`` / ``from_item``), keeping the
original handler's attributes (``UserId``, ``notificationType``, ``from``, ``timestamp``, ``state``) with
their original meanings so existing readers keep working.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from bot.core.mail.feedback import MalformedRecord, RecipientEvent, iso_ms, parse_timestamp

Effect = Literal["permanent", "transient", "undetermined", "complaint", "delivery", "reenable", "suppress"]
State = Literal["enable", "disable"]

# Ties in event time (same millisecond) are broken by kind, so that the safer outcome wins and every
# order of arrival agrees, then by event id.
RANK: dict[str, int] = {
    "delivery": 0,
    "transient": 1,
    "undetermined": 2,
    "permanent": 3,
    "complaint": 4,
    "reenable": 5,
    "suppress": 6,
}

# Why an address is in its state (stored as ``reason``; the renderers turn it into words).
REASON_NONE = "no-feedback"
REASON_DELIVERY = "delivery"
REASON_REENABLED = "reenabled"
REASON_PERMANENT = "permanent-bounce"
REASON_COMPLAINT = "complaint"
REASON_TRANSIENT = "transient-bounces"
REASON_SUPPRESSED = "suppressed"

_REASON_OF_EFFECT = {
    "permanent": REASON_PERMANENT,
    "complaint": REASON_COMPLAINT,
    "suppress": REASON_SUPPRESSED,
    "transient": REASON_TRANSIENT,
    "delivery": REASON_DELIVERY,
    "reenable": REASON_REENABLED,
}

SES_EFFECTS = frozenset({"permanent", "transient", "undetermined", "complaint", "delivery"})


@dataclass(frozen=True)
class MailRules:
    transient_limit: int = 3
    transient_window_ms: int = 72 * 3600 * 1000
    history_size: int = 10
    # Storage bound for transient bounces kept per address (only reached by an address that keeps
    # bouncing transiently, more than a window apart, with no delivery in between).
    max_transients: int = 100
    # Identities of the newest SES events merged, kept to recognise duplicates beyond the history (so
    # that an event is counted once in the daily statistics).
    seen_size: int = 50


def effect_of(event: RecipientEvent) -> Effect:
    if event.kind == "bounce":
        bounce_type = event.bounce_type.strip().lower()
        if bounce_type == "permanent":
            return "permanent"
        if bounce_type == "transient":
            return "transient"
        # SES's "Undetermined", and any type SES may add later: a person decides.
        return "undetermined"
    return event.kind


@dataclass(frozen=True)
class Mark:
    """One event as the record remembers it."""

    at: int  # epoch ms
    effect: str
    id: str
    detail: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> tuple[int, int, str]:
        return (self.at, RANK.get(self.effect, -1), self.id)

    def get(self, name: str) -> str:
        return self.detail.get(name, "")

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "effect": self.effect,
            "id": self.id,
            **{k: v for k, v in self.detail.items() if v},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Mark:
        detail = {
            str(k): str(v) for k, v in data.items() if k not in {"at", "effect", "id"} and v not in (None, "")
        }
        return cls(int(data.get("at", 0)), str(data.get("effect", "")), str(data.get("id", "")), detail)


def mark_of(event: RecipientEvent) -> Mark:
    effect = effect_of(event)
    detail = {
        "type": event.notification_type,
        "messageId": event.message_id,
        "source": event.source,
        "mailTimestamp": event.mail_timestamp,
        "bounceType": event.bounce_type,
        "bounceSubType": event.bounce_subtype,
        "diagnostic": event.diagnostic,
        "status": event.status,
        "feedbackType": event.feedback_type,
        "complaintSubType": event.complaint_subtype,
        "by": event.by,
        "note": event.note,
    }
    return Mark(event.at_ms, effect, mark_id(event.event_id), {k: v for k, v in detail.items() if v})


def mark_id(event_id: str) -> str:
    """A short, stable stand-in for an event id (ids repeat the address and run to 100+ characters)."""
    return hashlib.sha256(event_id.encode()).hexdigest()[:16]


# What each register keeps of its event (the rest is in the item's plain attributes or not needed).
_REGISTER_DETAIL: dict[str, tuple[str, ...]] = {
    "latest": ("type", "messageId", "source", "mailTimestamp"),
    "bounce": ("bounceType", "bounceSubType", "diagnostic", "status"),
    "complaint": ("feedbackType", "complaintSubType"),
    "reenable": ("by", "note"),
    "suppress": ("by", "note"),
}
MAX_REGISTER_DIAGNOSTIC = 500


def _for_register(name: str, mark: Mark) -> Mark:
    detail = {key: mark.get(key) for key in _REGISTER_DETAIL.get(name, ()) if mark.get(key)}
    if "diagnostic" in detail:
        detail["diagnostic"] = detail["diagnostic"][:MAX_REGISTER_DIAGNOSTIC]
    return Mark(mark.at, mark.effect, mark.id, detail)


def _newer(current: Mark | None, candidate: Mark | None) -> Mark | None:
    if candidate is None:
        return current
    if current is None or candidate.key > current.key:
        return candidate
    return current


def _key(mark: Mark | None) -> tuple[int, int, str]:
    return mark.key if mark is not None else (-1, -1, "")


@dataclass(frozen=True)
class AddressRecord:
    """What is stored about one address: registers, kept transients and history (newest first)."""

    address: str
    latest: Mark | None = None  # newest SES event: the original attributes come from it
    bounce: Mark | None = None  # newest bounce of any type: bounceType, subtype, diagnostic
    permanent: Mark | None = None
    complaint: Mark | None = None
    delivery: Mark | None = None
    undetermined: Mark | None = None
    reenable: Mark | None = None
    suppress: Mark | None = None
    transients: tuple[Mark, ...] = ()  # oldest first
    history: tuple[Mark, ...] = ()  # newest first
    seen: frozenset[str] = frozenset()  # "<event ms>:<hash of event id>" of the newest SES events

    def knows(self, event: RecipientEvent) -> bool:
        """Whether the event was merged already (the duplicate check before anything is written)."""
        if seen_token(event) in self.seen:
            return True
        wanted = mark_id(event.event_id)
        registers = (self.latest, self.permanent, self.complaint, self.delivery, self.reenable, self.suppress)
        return any(mark.id == wanted for mark in self.history) or any(
            mark is not None and mark.id == wanted for mark in registers
        )


def seen_token(event: RecipientEvent) -> str:
    """``<event second, hex>:<hash of the event id>``: short, and ordered by time for trimming."""
    return f"{max(0, event.at_ms // 1000):x}:{hashlib.sha256(event.event_id.encode()).hexdigest()[:10]}"


def _newest_seen(tokens: Iterable[str], size: int) -> frozenset[str]:
    def key(token: str) -> tuple[int, str]:
        at, _, digest = token.partition(":")
        try:
            return (int(at, 16), digest)
        except ValueError:
            return (0, digest)

    return frozenset(sorted(tokens, key=key, reverse=True)[:size])


_REGISTER_OF_EFFECT = {
    "permanent": "permanent",
    "complaint": "complaint",
    "delivery": "delivery",
    "undetermined": "undetermined",
    "reenable": "reenable",
    "suppress": "suppress",
}


def merge(record: AddressRecord | None, event: RecipientEvent, rules: MailRules) -> AddressRecord:
    """The record with ``event`` merged in (any order, any number of times: same result)."""
    base = record or AddressRecord(event.address)
    mark = mark_of(event)
    changes: dict[str, Any] = {}
    if mark.effect in SES_EFFECTS:
        changes["latest"] = _newer(base.latest, _for_register("latest", mark))
    if mark.effect in {"permanent", "transient", "undetermined"}:
        changes["bounce"] = _newer(base.bounce, _for_register("bounce", mark))
    register = _REGISTER_OF_EFFECT.get(mark.effect)
    if register:
        changes[register] = _newer(getattr(base, register), _for_register(register, mark))
    transients = base.transients
    if mark.effect == "transient" and all(t.id != mark.id for t in transients):
        transients = (*transients, Mark(mark.at, mark.effect, mark.id))
    if mark.effect in SES_EFFECTS:
        changes["seen"] = _newest_seen(base.seen | {seen_token(event)}, rules.seen_size)
    merged = replace(base, **changes)
    history = {m.id: m for m in base.history}
    history.setdefault(mark.id, _history_mark(mark))
    newest = sorted(history.values(), key=lambda m: m.key, reverse=True)[: rules.history_size]
    return replace(merged, transients=_kept_transients(merged, transients, rules), history=tuple(newest))


def _kept_transients(record: AddressRecord, transients: Iterable[Mark], rules: MailRules) -> tuple[Mark, ...]:
    """Transient bounces that can still matter: after the last delivery and re-enable, and not so old
    that they can only belong to windows before the latest threshold crossing."""
    floor = max(_key(record.delivery), _key(record.reenable))
    kept = sorted((t for t in transients if t.key > floor), key=lambda m: m.key)
    crossing = latest_crossing(kept, rules)
    if crossing is not None:
        cutoff = crossing.at - rules.transient_window_ms
        kept = [t for t in kept if t.at > cutoff]
    return tuple(kept[-rules.max_transients :])


def latest_crossing(transients: list[Mark], rules: MailRules) -> Mark | None:
    """The newest transient bounce that completes ``limit`` of them within the window (sorted input)."""
    limit = max(1, rules.transient_limit)
    for index in range(len(transients) - 1, limit - 2, -1):
        first = transients[index - limit + 1]
        if transients[index].at - first.at < rules.transient_window_ms:
            return transients[index]
    return None


def transients_in_window(transients: tuple[Mark, ...], rules: MailRules) -> int:
    """Transient bounces within the window that ends at the newest one (compared with the limit)."""
    if not transients:
        return 0
    newest = transients[-1].at
    return sum(1 for t in transients if t.at > newest - rules.transient_window_ms)


@dataclass(frozen=True)
class Derived:
    state: State
    reason: str
    cause: Mark | None  # the event that put the address in its state
    sticky: bool
    review: bool
    transient_count: int


def derive(record: AddressRecord, rules: MailRules) -> Derived:
    """The state the rules give for the events merged into ``record`` (see the module docstring)."""
    crossing = latest_crossing(list(record.transients), rules)
    disabling = [m for m in (record.permanent, record.complaint, record.suppress, crossing) if m is not None]
    enabling = [m for m in (record.delivery, record.reenable) if m is not None]
    sticky_mark = _newer(record.complaint, record.suppress)
    sticky = sticky_mark is not None and sticky_mark.key > _key(record.reenable)
    person_or_delivery = max(_key(record.reenable), _key(record.suppress), _key(record.delivery))
    review = record.undetermined is not None and record.undetermined.key > person_or_delivery
    count = transients_in_window(record.transients, rules)
    candidates = disabling + enabling
    if not candidates:
        return Derived("enable", REASON_NONE, None, sticky, review, count)
    winner = max(candidates, key=lambda m: m.key)
    if winner.effect in {"delivery", "reenable"}:
        if winner.effect == "delivery" and sticky and sticky_mark is not None:
            return Derived(
                "disable", _REASON_OF_EFFECT[sticky_mark.effect], sticky_mark, sticky, review, count
            )
        return Derived("enable", _REASON_OF_EFFECT[winner.effect], winner, sticky, review, count)
    return Derived("disable", _REASON_OF_EFFECT[winner.effect], winner, sticky, review, count)


# -- the DynamoDB item -----------------------------------------------------------------------------

# Attributes that record bookkeeping rather than state: equal records differ only in these.
BOOKKEEPING = frozenset({"updatedAt", "rev"})
MERGE_STATE = "mergeState"
_REGISTERS = (
    "latest",
    "bounce",
    "permanent",
    "complaint",
    "delivery",
    "undetermined",
    "reenable",
    "suppress",
)


def to_item(record: AddressRecord, rules: MailRules) -> dict[str, Any]:
    """The stored item (plain values) without the bookkeeping attributes ``updatedAt`` and ``rev``."""
    derived = derive(record, rules)
    latest = record.latest
    item: dict[str, Any] = {
        "UserId": record.address,
        "state": derived.state,
        "reason": derived.reason,
        "sticky": derived.sticky,
        "review": derived.review,
        "transientCount": derived.transient_count,
        # One line per event, newest first; the merge state holds their keys in the same order.
        "history": [m.get("line") for m in record.history],
        MERGE_STATE: merge_state(record),
    }
    if latest is not None:
        item["notificationType"] = latest.get("type")
        item["from"] = latest.get("source")
        item["timestamp"] = latest.get("mailTimestamp") or iso_ms(latest.at)
        item["eventTime"] = latest.at
        item["lastEventAt"] = iso_ms(latest.at)
        item["lastMessageId"] = latest.get("messageId")
    if record.bounce is not None:
        item["bounceType"] = record.bounce.get("bounceType")
        item["bounceSubType"] = record.bounce.get("bounceSubType")
        item["diagnosticCode"] = record.bounce.get("diagnostic")
    if record.complaint is not None:
        item["complaintFeedbackType"] = record.complaint.get("feedbackType")
    if derived.cause is not None:
        item["since"] = iso_ms(derived.cause.at)
    return {k: v for k, v in item.items() if v not in ("", None)}


def history_entry(mark: Mark) -> dict[str, Any]:
    """One history entry for JSON output: when, what, and the line as stored."""
    return {"at": iso_ms(mark.at), "event": mark.effect, "text": mark.get("line")}


def merge_state(record: AddressRecord) -> str:
    """The registers, kept transients and seen events as one compact JSON string (deterministic).

    This is opsbot's internal merge state: readers use the plain attributes. One string rather than
    nested maps keeps items small and cheap to read and write.
    """
    state = {
        "v": 1,
        "marks": {name: mark.to_json() for name in _REGISTERS if (mark := getattr(record, name)) is not None},
        "transients": [[t.at, t.id] for t in record.transients],
        "seen": sorted(record.seen),
        "history": [[mark.at, mark.effect, mark.id] for mark in record.history],
    }
    return json.dumps(state, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def from_item(item: Mapping[str, Any]) -> AddressRecord:
    """The record stored in ``item``; items written by the original handler become one legacy event."""
    address = str(item.get("UserId", ""))
    try:
        state = json.loads(str(item[MERGE_STATE]))
        marks = state["marks"]
    except (KeyError, ValueError, TypeError):
        return _from_legacy_item(address, item)
    registers: dict[str, Any] = {
        name: Mark.from_json(marks[name]) for name in _REGISTERS if isinstance(marks.get(name), Mapping)
    }
    transients = tuple(
        Mark(int(t[0]), "transient", str(t[1]))
        for t in state.get("transients", [])
        if isinstance(t, list) and len(t) == 2
    )
    lines = item.get("history") or []
    history = tuple(
        Mark(int(key[0]), str(key[1]), str(key[2]), {"line": str(lines[i]) if i < len(lines) else ""})
        for i, key in enumerate(state.get("history", []))
        if isinstance(key, list) and len(key) == 3
    )
    seen = frozenset(str(token) for token in state.get("seen", []))
    return AddressRecord(address, transients=transients, history=history, seen=seen, **registers)


def _history_mark(mark: Mark) -> Mark:
    """What the history keeps of an event: its key and one line of text."""
    return Mark(mark.at, mark.effect, mark.id, {"line": history_line(mark)})


def history_line(mark: Mark) -> str:
    """One history entry as a line of text: ``2024-05-01T10:15:30.120Z permanent Permanent/General 5.1.1``."""
    parts = [iso_ms(mark.at), mark.effect]
    if mark.get("bounceType"):
        parts.append(f"{mark.get('bounceType')}/{mark.get('bounceSubType')}".rstrip("/"))
    for name in ("status", "feedbackType"):
        if mark.get(name):
            parts.append(mark.get(name))
    if mark.get("by"):
        parts.append(f"by {mark.get('by')}")
    if mark.get("messageId"):
        parts.append(f"message {mark.get('messageId')}")
    return " ".join(parts)


def _from_legacy_item(address: str, item: Mapping[str, Any]) -> AddressRecord:
    """An item the original Node.js handler wrote: one event, of its notificationType, at its timestamp."""
    notification_type = str(item.get("notificationType", ""))
    timestamp = str(item.get("timestamp", ""))
    try:
        at = parse_timestamp(timestamp)
    except MalformedRecord:
        at = 0
    state = str(item.get("state", ""))
    if state == "disable":
        effect = "complaint" if notification_type == "Complaint" else "permanent"
    elif state == "enable":
        effect = "delivery"
    else:
        return AddressRecord(address)
    detail = {"type": notification_type, "source": str(item.get("from", "")), "mailTimestamp": timestamp}
    if effect == "permanent":
        detail["bounceType"] = "Permanent"
    mark = Mark(
        at, effect, mark_id(f"legacy:{notification_type}:{timestamp}"), {k: v for k, v in detail.items() if v}
    )
    registers: dict[str, Any] = {
        "latest": _for_register("latest", mark),
        _REGISTER_OF_EFFECT[effect]: _for_register(_REGISTER_OF_EFFECT[effect], mark),
    }
    if effect == "permanent":
        registers["bounce"] = _for_register("bounce", mark)
    return replace(AddressRecord(address, history=(_history_mark(mark),)), **registers)


def same_state(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two items hold the same state (bookkeeping attributes aside)."""
    return {k: v for k, v in a.items() if k not in BOOKKEEPING} == {
        k: v for k, v in b.items() if k not in BOOKKEEPING
    }
