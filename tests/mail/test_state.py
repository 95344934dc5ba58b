"""The per-address state machine: the rules, and order independence against a plain sequential model."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.mail.feedback import RecipientEvent
from bot.core.mail.state import (
    AddressRecord,
    MailRules,
    derive,
    effect_of,
    from_item,
    mark_id,
    merge,
    to_item,
)
from bot.local.mail_samples import rules_in_time_order
from tests.support.properties import examples

ADDRESS = "jane@example.com"
RULES = MailRules(transient_limit=3, transient_window_ms=10_000)
HOUR = 3_600_000


def event(kind: str, at: int, ident: str = "", **extra: str) -> RecipientEvent:
    """``kind``: permanent | transient | undetermined | complaint | delivery | reenable | suppress."""
    bounce_type = {"permanent": "Permanent", "transient": "Transient", "undetermined": "Undetermined"}
    if kind in bounce_type:
        return RecipientEvent(
            ADDRESS, "bounce", at, ident or f"{kind}:{at}", notification_type="Bounce",
            bounce_type=bounce_type[kind], bounce_subtype=extra.get("subtype", "General"),
            message_id=f"m-{ident or at}", source="news@example.org", mail_timestamp=str(at),
            diagnostic=extra.get("diagnostic", ""),
        )  # fmt: skip
    notification = {"complaint": "Complaint", "delivery": "Delivery"}.get(kind, "")
    return RecipientEvent(
        ADDRESS, kind, at, ident or f"{kind}:{at}", notification_type=notification,  # type: ignore[arg-type]
        message_id=f"m-{ident or at}" if notification else "",
        source="news@example.org" if notification else "",
        feedback_type=extra.get("feedback", "abuse" if kind == "complaint" else ""), by=extra.get("by", ""),
    )  # fmt: skip


def fold(events: Sequence[RecipientEvent], rules: MailRules = RULES) -> AddressRecord:
    record: AddressRecord | None = None
    for item in events:
        record = merge(record, item, rules)
    assert record is not None
    return record


def state_of(*events: RecipientEvent, rules: MailRules = RULES) -> tuple[str, str, bool, bool]:
    derived = derive(fold(events, rules), rules)
    return derived.state, derived.reason, derived.sticky, derived.review


def test_permanent_bounce_disables_and_delivery_reenables() -> None:
    assert state_of(event("permanent", 1)) == ("disable", "permanent-bounce", False, False)
    assert state_of(event("permanent", 1), event("delivery", 2)) == ("enable", "delivery", False, False)


def test_complaint_is_sticky_against_later_delivery_until_a_person_reenables() -> None:
    assert state_of(event("complaint", 1), event("delivery", 2)) == ("disable", "complaint", True, False)
    assert state_of(event("complaint", 1), event("reenable", 3), event("delivery", 4)) == (
        "enable", "delivery", False, False,
    )  # fmt: skip
    # A complaint older than the person's re-enable (arriving late) does not undo it.
    assert state_of(event("reenable", 3), event("complaint", 1)) == ("enable", "reenabled", False, False)


def test_transient_bounces_count_within_the_window_and_delivery_restarts_counting() -> None:
    two = [event("transient", 1_000), event("transient", 2_000)]
    assert state_of(*two) == ("enable", "no-feedback", False, False)
    assert derive(fold(two), RULES).transient_count == 2
    assert state_of(*two, event("transient", 3_000)) == ("disable", "transient-bounces", False, False)
    # Spread wider than the window: no disable.
    assert (
        state_of(event("transient", 0), event("transient", 6_000), event("transient", 12_000))[0] == "enable"
    )
    # A delivery in between restarts the count.
    assert state_of(*two, event("delivery", 2_500), event("transient", 3_000))[0] == "enable"


def test_undetermined_flags_for_review_without_disabling() -> None:
    assert state_of(event("undetermined", 1)) == ("enable", "no-feedback", False, True)
    assert state_of(event("undetermined", 1), event("delivery", 2))[3] is False
    assert state_of(event("undetermined", 1), event("suppress", 2)) == ("disable", "suppressed", True, False)


def test_suppress_is_sticky_and_delivery_does_not_undo_it() -> None:
    assert state_of(event("delivery", 1), event("suppress", 2), event("delivery", 3)) == (
        "disable", "suppressed", True, False,
    )  # fmt: skip


def test_older_event_does_not_overwrite_newer_original_attributes() -> None:
    record = fold([event("delivery", 5 * HOUR, "new"), event("permanent", 1 * HOUR, "old")])
    item = to_item(record, RULES)
    assert item["notificationType"] == "Delivery"
    assert item["state"] == "enable"
    assert item["lastMessageId"] == "m-new"
    assert [line.split()[1] for line in item["history"]] == ["delivery", "permanent"]  # both kept
    assert [mark.id for mark in record.history] == [mark_id("new"), mark_id("old")]


def test_duplicates_change_nothing_and_item_round_trips() -> None:
    events = [event("permanent", 1, subtype="NoEmail", diagnostic="550 5.1.1 no"), event("complaint", 2)]
    once = fold(events)
    twice = fold(events + events)
    assert to_item(once, RULES) == to_item(twice, RULES)
    assert once.knows(events[0])
    again = from_item(to_item(once, RULES))
    assert to_item(again, RULES) == to_item(once, RULES)
    assert to_item(merge(again, events[1], RULES), RULES) == to_item(once, RULES)


def test_history_keeps_the_ten_newest() -> None:
    record = fold([event("delivery", at) for at in range(25, 0, -1)])
    assert [h.at for h in record.history] == list(range(25, 15, -1))


def test_legacy_item_from_the_original_handler_is_understood() -> None:
    legacy = {
        "UserId": ADDRESS, "notificationType": "Complaint", "from": "news@example.org",
        "timestamp": "2016-01-27T14:59:38.237Z", "state": "disable",
    }  # fmt: skip
    record = from_item(legacy)
    assert derive(record, RULES).state == "disable"
    assert derive(record, RULES).sticky
    later = merge(record, event("delivery", 1_700_000_000_000), RULES)
    assert derive(later, RULES).state == "disable"  # the original handler's fault, fixed
    item = to_item(later, RULES)
    assert (item["UserId"], item["state"], item["notificationType"]) == (ADDRESS, "disable", "Delivery")
    bounced = from_item({**legacy, "notificationType": "Bounce"})
    assert derive(merge(bounced, event("delivery", 1_700_000_000_000), RULES), RULES).state == "enable"


def test_unknown_bounce_type_is_reviewed() -> None:
    odd = RecipientEvent(ADDRESS, "bounce", 1, "odd", bounce_type="Sideways")
    assert effect_of(odd) == "undetermined"


# -- order independence, against the rules applied one event at a time (mail_samples) ---------------


KINDS = ["permanent", "transient", "transient", "transient", "undetermined", "complaint", "delivery",
         "delivery", "reenable", "suppress"]  # fmt: skip


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[RecipientEvent], list[RecipientEvent]]:
    count = draw(st.integers(1, 25))
    events = [
        event(draw(st.sampled_from(KINDS)), draw(st.integers(0, 40)) * 1_000, f"e{index}")
        for index in range(count)
    ]
    duplicated = events + draw(st.lists(st.sampled_from(events), max_size=10))
    shuffled = draw(st.permutations(duplicated))
    return events, list(shuffled)


@settings(max_examples=examples(400), deadline=None)
@given(streams(), st.integers(1, 4), st.integers(1, 15))
def test_any_order_with_duplicates_matches_the_sequential_rules(
    stream: tuple[list[RecipientEvent], list[RecipientEvent]], limit: int, window_s: int
) -> None:
    events, shuffled = stream
    rules = MailRules(transient_limit=limit, transient_window_ms=window_s * 1_000)
    ordered_record = fold(sorted(events, key=lambda e: e.at_ms), rules)
    shuffled_record = fold(shuffled, rules)
    assert to_item(shuffled_record, rules) == to_item(ordered_record, rules)
    derived = derive(shuffled_record, rules)
    assert (
        derived.state,
        derived.reason,
        derived.sticky,
        derived.review,
        derived.transient_count,
    ) == rules_in_time_order(events, rules)


@settings(max_examples=examples(200), deadline=None)
@given(streams())
def test_merge_is_idempotent_and_survives_storage(
    stream: tuple[list[RecipientEvent], list[RecipientEvent]],
) -> None:
    _, shuffled = stream
    record: AddressRecord | None = None
    for item in shuffled:
        stored = from_item(to_item(record, RULES)) if record is not None else None
        record = merge(stored, item, RULES)
        assert to_item(merge(record, item, RULES), RULES) == to_item(record, RULES)
    assert record is not None
    assert to_item(fold(shuffled), RULES) == to_item(record, RULES)
