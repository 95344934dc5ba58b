"""The SES feedback handler against moto's DynamoDB, posting alerts to the local Slack server."""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from bot.aws import clients, mailing
from bot.aws.dynamo import scan_all, to_item
from bot.config import Settings
from bot.core.mail.state import BOOKKEEPING
from bot.intake.ses_feedback import FeedbackNotStored, SesFeedbackApp
from bot.local import mail_samples
from bot.local.slack_api import LocalSlack
from bot.render.blocks import slack_time
from bot.render.mail import status_text
from tests.mail.conftest import ALERTS
from tests.support.events import load_event

T0 = 1_714_550_400_000  # 2024-05-01T08:00:00Z
HOUR = 3_600_000


def item(settings: Settings, address: str) -> dict[str, Any]:
    found = mailing.get_address(settings.mailing_table, address)
    assert found is not None, f"no item for {address}"
    return found


def alerts(slack: LocalSlack) -> list[Any]:
    return [m for m in slack.visible(ALERTS)]


def test_permanent_bounce_disables_keeps_original_attributes_and_alerts(
    mail_settings: Settings, slack_server: LocalSlack
) -> None:
    report = SesFeedbackApp(mail_settings)(load_event("sns_ses_bounce_permanent"), None)
    assert report["changed"] == 1
    assert report["disabled"] == ["jane.doe@example.com"]
    stored = item(mail_settings, "jane.doe@example.com")
    # The seed post's attributes, with their original meanings and types.
    assert stored["UserId"] == "jane.doe@example.com"
    assert stored["notificationType"] == "Bounce"
    assert stored["from"] == "news@example.org"
    assert stored["timestamp"] == "2024-05-01T10:15:29.001Z"  # mail.timestamp, as the original stored it
    assert stored["state"] == "disable"
    # ... and the additions.
    assert (stored["bounceType"], stored["bounceSubType"]) == ("Permanent", "General")
    assert "User unknown" in stored["diagnosticCode"]
    assert stored["lastMessageId"].startswith("0100018f2b3c4d5e-aaaaaaaa")
    assert stored["transientCount"] == 0
    assert stored["reason"] == "permanent-bounce"
    assert stored["updatedAt"].endswith("Z")
    assert len(stored["history"]) == 1
    (alert,) = alerts(slack_server)
    assert "jane.doe@example.com" in alert.text
    fields = json.dumps(alert.blocks)
    for expected in ("Permanent bounce (Permanent/General)", "news@example.org", "0100018f2b3c4d5e-aaaaaaaa",
                     "<!date^1714558530^{date_short_pretty} {time_secs}|2024-05-01 10:15:30 UTC>",
                     "User unknown"):  # fmt: skip
        assert expected in fields
    buttons = [e for b in alert.blocks if b["type"] == "actions" for e in b["elements"]]
    assert [b["action_id"] for b in buttons] == ["mail:reenable", "mail:suppress", "mail:history"]
    assert [b["text"]["text"] for b in buttons] == ["Re-enable", "Keep suppressed", "History"]
    assert {b["value"] for b in buttons} == {"jane.doe@example.com"}


def test_multi_recipient_notification_updates_every_recipient(
    mail_settings: Settings, slack_server: LocalSlack, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="opsbot.mail"):
        report = SesFeedbackApp(mail_settings).handle(load_event("sns_ses_bounce_multi"))
    assert sorted(report.disabled) == ["also.gone@example.net", "gone@example.net"]
    assert report.skipped_recipients == 1
    assert "not an address" in caplog.text
    assert item(mail_settings, "also.gone@example.net")["bounceSubType"] == "NoEmail"
    assert mailing.get_address(mail_settings.mailing_table, "ok@example.net") is None  # not bounced
    assert len(alerts(slack_server)) == 2


def test_complaint_is_sticky_when_a_later_delivery_arrives(
    mail_settings: Settings, slack_server: LocalSlack
) -> None:
    app = SesFeedbackApp(mail_settings)
    assert app.handle(load_event("sns_ses_complaint")).disabled == ["angry@example.com"]
    report = app.handle(load_event("sns_ses_delivery"))
    assert report.disabled == []
    angry = item(mail_settings, "angry@example.com")
    assert (angry["state"], angry["reason"], angry["sticky"]) == ("disable", "complaint", True)
    assert angry["notificationType"] == "Delivery"  # the newest event, as the original recorded it
    assert angry["complaintFeedbackType"] == "abuse"
    assert item(mail_settings, "happy@example.com")["state"] == "enable"
    (alert,) = alerts(slack_server)
    assert "Complaint" in alert.text
    assert "Sticky" in json.dumps(alert.blocks)


def test_transient_bounces_disable_at_the_limit(
    make_mail_settings: Callable[..., Settings], slack_server: LocalSlack
) -> None:
    settings = make_mail_settings(OPSBOT_MAIL_TRANSIENT_LIMIT="3", OPSBOT_MAIL_TRANSIENT_WINDOW="24h")
    app = SesFeedbackApp(settings)
    address = "full@example.com"
    for n in range(2):
        message = mail_samples.bounce(
            [address], T0 + n * HOUR, bounce_type="Transient", subtype="MailboxFull"
        )
        assert app.handle(mail_samples.sns_event([message])).disabled == []
        assert item(settings, address)["state"] == "enable"
        assert item(settings, address)["transientCount"] == n + 1
    third = mail_samples.bounce([address], T0 + 5 * HOUR, bounce_type="Transient", subtype="General")
    assert app.handle(mail_samples.sns_event([third])).disabled == [address]
    stored = item(settings, address)
    assert (stored["state"], stored["reason"], stored["transientCount"]) == (
        "disable",
        "transient-bounces",
        3,
    )
    (alert,) = alerts(slack_server)
    assert "3 transient bounces within 1d" in json.dumps(alert.blocks)


def test_undetermined_bounce_is_flagged_for_review(mail_settings: Settings, slack_server: LocalSlack) -> None:
    report = SesFeedbackApp(mail_settings).handle(load_event("sns_ses_bounce_undetermined"))
    assert report.review == ["unsure@example.com"]
    stored = item(mail_settings, "unsure@example.com")
    assert (stored["state"], stored["review"]) == ("enable", True)
    (alert,) = alerts(slack_server)
    assert alert.text.startswith("Needs review")
    labels = [e["text"]["text"] for b in alert.blocks if b["type"] == "actions" for e in b["elements"]]
    assert labels == ["Keep enabled", "Suppress", "History"]


@pytest.mark.parametrize(
    "first",
    [mail_samples.bounce(["gone@example.com"], T0), mail_samples.complaint(["gone@example.com"], T0)],
    ids=["permanent-bounce", "complaint"],
)
def test_undetermined_bounce_of_a_disabled_address_posts_no_review_alert(
    mail_settings: Settings, slack_server: LocalSlack, first: dict[str, Any]
) -> None:
    """The address is flagged, but it is disabled: a "Needs review" alert would say it stays enabled and
    offer Keep enabled, which would re-enable it (and, after a complaint, clear the stickiness unasked)."""
    address = "gone@example.com"
    app = SesFeedbackApp(mail_settings)
    assert app.handle(mail_samples.sns_event([first])).disabled == [address]
    unsure = mail_samples.bounce([address], T0 + HOUR, bounce_type="Undetermined", subtype="Undetermined")
    report = app.handle(mail_samples.sns_event([unsure]))
    assert (report.changed, report.review, report.disabled) == (1, [], [])
    stored = item(mail_settings, address)
    assert (stored["state"], stored["review"]) == ("disable", True)
    assert len(alerts(slack_server)) == 1
    assert not any(a.text.startswith("Needs review") for a in alerts(slack_server))


def test_a_flagged_address_that_becomes_enabled_gets_its_review_alert_then(
    mail_settings: Settings, slack_server: LocalSlack
) -> None:
    """Out of order: the delivery that re-enables a bounced address arrives after a newer undetermined
    bounce. The flag was on a disabled address (no alert); now the address is mailed again, flagged."""
    address = "late@example.com"
    app = SesFeedbackApp(mail_settings)
    app.handle(mail_samples.sns_event([mail_samples.bounce([address], T0)]))
    unsure = mail_samples.bounce([address], T0 + 2 * HOUR, bounce_type="Undetermined", subtype="Undetermined")
    assert app.handle(mail_samples.sns_event([unsure])).review == []
    report = app.handle(mail_samples.sns_event([mail_samples.delivery([address], T0 + HOUR)]))
    assert report.review == [address]
    stored = item(mail_settings, address)
    assert (stored["state"], stored["review"]) == ("enable", True)
    assert alerts(slack_server)[-1].text.startswith(f"Needs review: {address}")
    assert len(alerts(slack_server)) == 2


def test_event_publishing_records_are_handled(mail_settings: Settings) -> None:
    report = SesFeedbackApp(mail_settings).handle(load_event("sns_ses_event_bounce"))
    assert report.disabled == ["listed@example.com"]
    stored = item(mail_settings, "listed@example.com")
    assert stored["bounceSubType"] == "OnAccountSuppressionList"
    assert stored["from"] == "Example News <news@example.org>"
    assert stored["timestamp"] == "2024-05-05T14:05:44 +0000"  # as SES sent it


def test_malformed_record_in_the_middle_of_a_batch_is_logged_and_skipped(
    mail_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="opsbot.mail"):
        report = SesFeedbackApp(mail_settings).handle(load_event("sns_batch_with_malformed"))
    assert (report.records, report.malformed, report.ignored, report.notifications) == (6, 2, 2, 2)
    assert item(mail_settings, "batch.one@example.com")["state"] == "disable"  # record 0
    assert item(mail_settings, "batch.two@example.com")["state"] == "enable"  # record 5, after the bad ones
    assert (
        "record 1 (SNS message 95df01b4-ee98-5cb9-9903-4c221d41eb51): the message is not JSON" in caplog.text
    )
    assert "without its 'complaint' object" in caplog.text
    assert "ignoring SES Send notification" in caplog.text
    assert "ignoring SES DeliveryDelay notification" in caplog.text


def test_duplicate_delivery_changes_nothing_the_second_time(
    mail_settings: Settings, slack_server: LocalSlack
) -> None:
    app = SesFeedbackApp(mail_settings)
    event = load_event("sns_ses_bounce_permanent")
    first = app.handle(event)
    stored = item(mail_settings, "jane.doe@example.com")
    second = app.handle(event)
    assert (first.changed, first.duplicates, second.changed, second.duplicates) == (1, 0, 0, 1)
    assert item(mail_settings, "jane.doe@example.com") == stored  # not even updatedAt or rev
    assert len(alerts(slack_server)) == 1
    # The same bounce published again by event publishing (another SNS message) is the same event.
    message = json.loads(event["Records"][0]["Sns"]["Message"])
    republished = {**message, "eventType": message.pop("notificationType")}
    assert app.handle(mail_samples.sns_event([republished])).duplicates == 1
    day = mailing.read_stats(mail_settings.state_table, "2024-05-01", "2024-05-01")
    assert day == {"2024-05-01": {"Bounce:Permanent": 1}}


def test_old_duplicate_beyond_history_is_still_recognised(mail_settings: Settings) -> None:
    app = SesFeedbackApp(mail_settings)
    old = mail_samples.delivery(["busy@example.com"], T0)
    app.handle(mail_samples.sns_event([old]))
    for n in range(1, 13):  # pushes the first delivery out of the ten-entry history
        app.handle(mail_samples.sns_event([mail_samples.delivery(["busy@example.com"], T0 + n * HOUR)]))
    before = item(mail_settings, "busy@example.com")
    assert all(not line.startswith("2024-05-01T08:00:00.000Z") for line in before["history"])
    report = app.handle(mail_samples.sns_event([old]))
    assert report.duplicates == 1
    assert item(mail_settings, "busy@example.com") == before
    counts = mailing.read_stats(mail_settings.state_table, "2024-05-01", "2024-05-01")["2024-05-01"]
    assert counts == {"Delivery": 13}


def test_an_older_notification_does_not_overwrite_a_newer_one(mail_settings: Settings) -> None:
    app = SesFeedbackApp(mail_settings)
    address = "late@example.com"
    app.handle(mail_samples.sns_event([mail_samples.delivery([address], T0 + 5 * HOUR)]))
    report = app.handle(mail_samples.sns_event([mail_samples.bounce([address], T0 + HOUR)]))
    assert report.disabled == []
    stored = item(mail_settings, address)
    assert (stored["state"], stored["notificationType"], stored["reason"]) == (
        "enable",
        "Delivery",
        "delivery",
    )
    assert stored["eventTime"] == T0 + 5 * HOUR
    assert [line.split()[1] for line in stored["history"]] == ["delivery", "permanent"]  # both, newest first


def test_a_late_complaint_still_disables_sticky(mail_settings: Settings) -> None:
    app = SesFeedbackApp(mail_settings)
    address = "late.complainer@example.com"
    app.handle(mail_samples.sns_event([mail_samples.delivery([address], T0 + 5 * HOUR)]))
    report = app.handle(mail_samples.sns_event([mail_samples.complaint([address], T0 + HOUR)]))
    assert report.disabled == [address]
    assert (item(mail_settings, address)["state"], item(mail_settings, address)["sticky"]) == (
        "disable",
        True,
    )


def test_a_complaint_older_than_a_persons_reenable_is_flagged_for_review(
    mail_settings: Settings, slack_server: LocalSlack
) -> None:
    """E.g. a dead-letter queue redriven after someone re-enabled the address: the state stays as the
    person decided, but the channel is told to check before mailing it."""
    from bot.core.mail import commands as mail

    address = "redriven@example.com"
    app = SesFeedbackApp(mail_settings)
    app.handle(mail_samples.sns_event([mail_samples.bounce([address], T0)]))
    decision = mail.reenable(address, mail_settings, by="slack:U0ALICE")
    late = mail_samples.sns_event([mail_samples.complaint([address], T0 + HOUR, feedback_type="abuse")])
    report = app.handle(late)
    assert (report.changed, report.late_complaints, report.disabled) == (1, [address], [])
    stored = item(mail_settings, address)
    assert (stored["state"], stored["sticky"], stored["reason"]) == ("enable", False, "reenabled")
    alert = alerts(slack_server)[-1]
    assert alert.text == (
        f"Late complaint, check before mailing: {address} — Late complaint (abuse), received after "
        f"U0ALICE (Slack) re-enabled it on {slack_time(decision.status.since)}; check before mailing"
    )
    body = json.dumps(alert.blocks)
    assert f"received after <@U0ALICE> re-enabled it on {slack_time(decision.status.since)}" in body
    assert "Flagged for review" in body
    buttons = [e for b in alert.blocks if b["type"] == "actions" for e in b["elements"]]
    assert [(b["action_id"], b["text"]["text"]) for b in buttons] == [
        ("mail:reenable", "Keep enabled"), ("mail:suppress", "Suppress"), ("mail:history", "History"),
    ]  # fmt: skip
    # The same complaint again is a duplicate: no second alert.
    assert app.handle(late).duplicates == 1
    assert len(alerts(slack_server)) == 2
    # A complaint after the decision is an ordinary one: disabled, sticky, the usual alert.
    report = app.handle(mail_samples.sns_event([mail_samples.complaint([address], int(time.time() * 1000))]))
    assert (report.disabled, report.late_complaints) == ([address], [])
    assert alerts(slack_server)[-1].text.startswith(f"Complaint, disabled: {address}")


def test_concurrent_writer_between_read_and_write_is_merged_not_overwritten(
    mail_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another invocation stores a complaint after we read the item; our conditional write fails, we merge again."""
    from bot.core.mail import commands as core

    address = "race@example.com"
    app = SesFeedbackApp(mail_settings)
    app.handle(mail_samples.sns_event([mail_samples.delivery([address], T0)]))
    real_put = mailing.put_if_revision
    interleaved: list[bool] = []

    def put_after_someone_else(table: str, new_item: dict[str, Any], expected_rev: int | None) -> None:
        if not interleaved:
            interleaved.append(True)
            other = mail_samples.complaint([address], T0 + 2 * HOUR)
            SesFeedbackApp(mail_settings).handle(mail_samples.sns_event([other]))
        real_put(table, new_item, expected_rev)

    monkeypatch.setattr(core.mailing, "put_if_revision", put_after_someone_else)
    app.handle(mail_samples.sns_event([mail_samples.delivery([address], T0 + HOUR)]))
    stored = item(mail_settings, address)
    assert stored["rev"] == 3
    assert [line.split()[1] for line in stored["history"]] == ["complaint", "delivery", "delivery"]
    assert (stored["state"], stored["sticky"]) == ("disable", True)


def put_legacy(table: str, item: dict[str, Any]) -> None:
    """An item as the seed post's handler writes it: an unconditional PutItem of five attributes."""
    clients.client("dynamodb").put_item(TableName=table, Item=to_item(item))


def test_item_from_the_original_handler_keeps_its_meaning_and_foreign_attributes(
    mail_settings: Settings,
) -> None:
    address = "legacy@example.com"
    put_legacy(
        mail_settings.mailing_table,
        {"UserId": address, "notificationType": "Complaint", "from": "news@example.org",
         "timestamp": "2016-01-27T14:59:38.237Z", "state": "disable", "crmId": "C-42"},
    )  # fmt: skip
    SesFeedbackApp(mail_settings).handle(mail_samples.sns_event([mail_samples.delivery([address], T0)]))
    stored = item(mail_settings, address)
    assert (stored["state"], stored["sticky"], stored["crmId"]) == ("disable", True, "C-42")
    assert stored["rev"] == 1


def test_an_item_the_original_handler_wrote_under_another_spelling_is_taken_over(
    mail_settings: Settings,
) -> None:
    """The original keyed items by the address exactly as SES gave it; opsbot keys the lowercase address.

    Its complaint must not be forgotten when the first notification for that address arrives.
    """
    from bot.core.mail import commands as mail

    spelled = "Angry.Reader@Example.COM"
    put_legacy(
        mail_settings.mailing_table,
        {"UserId": spelled, "notificationType": "Complaint", "from": "news@example.org",
         "timestamp": "2016-01-27T14:59:38.237Z", "state": "disable", "crmId": "C-7"},
    )  # fmt: skip
    before = mail.status(spelled, mail_settings)
    assert (before.state, before.sticky, before.stored_as) == ("disable", True, spelled)
    assert f"Recorded by the original handler under {spelled}" in status_text(before)
    report = SesFeedbackApp(mail_settings).handle(
        mail_samples.sns_event([mail_samples.delivery([spelled], T0)])
    )
    assert (report.changed, report.disabled) == (1, [])  # it was disabled already: no alert
    stored = item(mail_settings, "angry.reader@example.com")
    assert (stored["state"], stored["reason"], stored["sticky"], stored["crmId"]) == (
        "disable",
        "complaint",
        True,
        "C-7",
    )
    assert [line.split()[1] for line in stored["history"]] == ["delivery", "complaint"]
    legacy = item(mail_settings, spelled)  # still the original handler's row, saying what opsbot's says
    assert (legacy["state"], legacy["notificationType"], "mergeState" in legacy) == (
        "disable",
        "Delivery",
        False,
    )
    assert mail.status(spelled, mail_settings).stored_as == ""  # opsbot's item answers from now on


def legacy_row(address: str, state: str = "enable", **extra: Any) -> dict[str, Any]:
    return {"UserId": address, "notificationType": "Delivery" if state == "enable" else "Complaint",
            "from": "old@example.org", "timestamp": "2016-01-27T14:59:38.237Z", "state": state, **extra}  # fmt: skip


def test_the_original_handlers_row_under_the_events_spelling_follows_opsbots_state(
    mail_settings: Settings,
) -> None:
    """A reader that looks the address up as SES spelled it (the original handler's key) sees a complaint."""
    from bot.core.mail import commands as mail

    spelled = "Jane.Doe@Example.COM"
    table = mail_settings.mailing_table
    put_legacy(table, legacy_row(spelled, "enable", crmId="C-9"))
    SesFeedbackApp(mail_settings).handle(mail_samples.sns_event([mail_samples.complaint([spelled], T0)]))
    ours, legacy = item(mail_settings, "jane.doe@example.com"), item(mail_settings, spelled)
    assert ours["state"] == legacy["state"] == "disable"
    for name in ("notificationType", "from", "timestamp", "state"):  # the original attributes, as opsbot's
        assert legacy[name] == ours[name], name
    assert (legacy["notificationType"], legacy["from"]) == ("Complaint", "news@example.org")
    # Still the original handler's row: its own attributes kept, none of opsbot's bookkeeping but the copy's
    # revision (and nothing of it leaked into opsbot's item).
    assert (legacy["crmId"], legacy["mirroredRev"], ours["rev"]) == ("C-9", 1, 1)
    assert not {"mergeState", "rev", "history", "reason"} & set(legacy)
    assert "mirroredRev" not in ours
    # Events out of event-time order: an older delivery arriving later changes neither row's state.
    SesFeedbackApp(mail_settings).handle(
        mail_samples.sns_event([mail_samples.delivery([spelled], T0 - HOUR)])
    )
    legacy = item(mail_settings, spelled)
    assert (legacy["state"], legacy["notificationType"], legacy["mirroredRev"]) == ("disable", "Complaint", 2)
    # A newer delivery: the complaint is sticky in both rows; a person's re-enable under that spelling too.
    SesFeedbackApp(mail_settings).handle(
        mail_samples.sns_event([mail_samples.delivery([spelled], T0 + HOUR)])
    )
    assert (item(mail_settings, spelled)["state"], item(mail_settings, spelled)["notificationType"]) == (
        "disable",
        "Delivery",
    )
    mail.reenable(spelled, mail_settings, by="cli:alice")
    assert (
        item(mail_settings, "jane.doe@example.com")["state"]
        == item(mail_settings, spelled)["state"]
        == "enable"
    )


def test_a_late_copy_of_an_older_state_never_overwrites_a_newer_one(
    mail_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two invocations for one address: the one that stored the older state copies it last."""
    from bot.core.mail import commands as core

    spelled = "Late.Copy@Example.COM"
    put_legacy(mail_settings.mailing_table, legacy_row(spelled, "enable"))
    real_copy = mailing.put_legacy_mirror
    copies: list[tuple[int, str]] = []

    def copy_after_someone_else(
        table: str, address: str, attributes: dict[str, Any], rev: int
    ) -> dict[str, Any] | None:
        copies.append((rev, attributes["state"]))
        if len(copies) == 1:  # the bounce's copy is delayed until a newer delivery is stored and copied
            later = mail_samples.delivery([spelled], T0 + 2 * HOUR)
            SesFeedbackApp(mail_settings).handle(mail_samples.sns_event([later]))
        return real_copy(table, address, attributes, rev)

    monkeypatch.setattr(core.mailing, "put_legacy_mirror", copy_after_someone_else)
    report = SesFeedbackApp(mail_settings).handle(
        mail_samples.sns_event([mail_samples.bounce([spelled], T0 + HOUR)])
    )
    assert copies == [(1, "disable"), (2, "enable")]
    assert report.mirror_failed == 0  # refused as older: not a failure
    ours, legacy = item(mail_settings, "late.copy@example.com"), item(mail_settings, spelled)
    assert (ours["state"], ours["rev"]) == ("enable", 2)
    assert (legacy["state"], legacy["notificationType"], legacy["mirroredRev"]) == ("enable", "Delivery", 2)


def test_what_another_system_writes_to_the_row_after_it_was_read_survives_the_copy(
    mail_settings: Settings,
) -> None:
    """The row is read with the batch and updated after opsbot's item is written: an edit by another system
    in between (its own attributes) must not be undone by the copy."""
    spelled = "Edited.Meanwhile@Example.COM"
    table = mail_settings.mailing_table
    put_legacy(table, legacy_row(spelled, "enable", crmId="C-1"))
    ddb = clients.client("dynamodb")
    edits: list[str] = []

    def someone_else_edits(model: Any, params: dict[str, Any], **_: Any) -> None:
        """Just before the copy's write (whichever operation it is), another system edits the row."""
        body = json.loads(params.get("body") or b"{}")
        key = body.get("Key") or body.get("Item") or {}
        if edits or model.name not in ("PutItem", "UpdateItem") or body.get("TableName") != table:
            return
        if key.get("UserId", {}).get("S") != spelled:
            return
        edits.append(model.name)  # once: the edit below is an UpdateItem of that row too
        ddb.update_item(
            TableName=table,
            Key={"UserId": {"S": spelled}},
            UpdateExpression="SET crmId = :crm, optOut = :opt",
            ExpressionAttributeValues={":crm": {"S": "C-2"}, ":opt": {"S": "newsletter"}},
        )

    ddb.meta.events.register("before-call.dynamodb", someone_else_edits)
    try:
        report = SesFeedbackApp(mail_settings).handle(
            mail_samples.sqs_event([mail_samples.complaint([spelled], T0)])
        )
    finally:
        ddb.meta.events.unregister("before-call.dynamodb", someone_else_edits)
    assert len(edits) == 1 and report.mirror_failed == 0
    legacy = item(mail_settings, spelled)
    assert (legacy.get("crmId"), legacy.get("optOut")) == ("C-2", "newsletter")  # the other system's edit
    assert (legacy["state"], legacy["notificationType"], legacy["mirroredRev"]) == ("disable", "Complaint", 1)


def test_the_copy_sets_only_the_original_attributes_and_never_creates_a_row(mail_settings: Settings) -> None:
    table = mail_settings.mailing_table
    put_legacy(table, legacy_row("Kept@Example.COM", "enable", crmId="C-3"))
    # An original attribute opsbot's item has no value for is left as it is, not removed.
    assert mailing.put_legacy_mirror(table, "Kept@Example.COM", {"state": "disable"}, 4) is None
    kept = item(mail_settings, "Kept@Example.COM")
    assert (kept["state"], kept["from"], kept["crmId"], kept["mirroredRev"]) == (
        "disable",
        "old@example.org",
        "C-3",
        4,
    )
    # A copy of an older revision is refused with the row as it is; nothing is written.
    assert mailing.put_legacy_mirror(table, "Kept@Example.COM", {"state": "enable"}, 3) == kept
    assert item(mail_settings, "Kept@Example.COM") == kept
    assert mailing.put_legacy_mirror(table, "Gone@Example.COM", {"state": "disable"}, 1) == {}
    assert mailing.get_address(table, "Gone@Example.COM") is None
    with pytest.raises(ValueError, match="mergeState"):
        mailing.put_legacy_mirror(table, "Kept@Example.COM", {"mergeState": "{}"}, 5)
    assert item(mail_settings, "Kept@Example.COM") == kept


def test_both_functions_that_copy_into_the_original_row_are_granted_its_calls(
    mail_settings: Settings,
) -> None:
    """The IAM coverage test's demo has no row of the original handler: check the copy's calls here."""
    from bot.core.mail import commands as mail
    from tests.foundation.test_deploy_artifacts import template

    def mailing_actions(function: str) -> set[str]:
        policies = template()["Resources"][function]["Properties"]["Policies"]
        found = [s for p in policies for s in p.get("Statement", []) if s.get("Sid") == "MailingTable"]
        assert len(found) == 1, function
        return set(found[0]["Action"])

    table = mail_settings.mailing_table
    put_legacy(table, legacy_row("Both.Paths@Example.COM", "enable"))
    with mailing_calls(table) as feedback_calls:
        SesFeedbackApp(mail_settings).handle(
            mail_samples.sqs_event([mail_samples.bounce(["Both.Paths@Example.COM"], T0)])
        )
    with mailing_calls(table) as slack_calls:
        mail.reenable("Both.Paths@Example.COM", mail_settings, by="cli:alice")
    assert item(mail_settings, "Both.Paths@Example.COM")["mirroredRev"] == 2  # both copies were written
    assert "UpdateItem" in feedback_calls and "UpdateItem" in slack_calls
    assert {f"dynamodb:{c}" for c in feedback_calls} <= mailing_actions("SesFeedbackFunction")
    assert {f"dynamodb:{c}" for c in slack_calls} <= mailing_actions("SlackFunction")


@contextmanager
def mailing_calls(table: str) -> Iterator[list[str]]:
    """The DynamoDB operations made on ``table`` inside the block."""
    calls: list[str] = []
    ddb = clients.client("dynamodb")

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        body = json.loads(params.get("body") or b"{}")  # the request as sent
        if body.get("TableName") == table or table in body.get("RequestItems", {}):
            calls.append(model.name)

    ddb.meta.events.register("before-call.dynamodb", record)
    try:
        yield calls
    finally:
        ddb.meta.events.unregister("before-call.dynamodb", record)


def test_the_copy_costs_one_update_only_where_the_original_handler_has_a_row(mail_settings: Settings) -> None:
    table = mail_settings.mailing_table
    put_legacy(table, legacy_row("Has.Row@Example.COM"))
    app = SesFeedbackApp(mail_settings)

    def calls_for(message: dict[str, Any]) -> list[str]:
        with mailing_calls(table) as calls:
            app.handle(mail_samples.sqs_event([message]))
        return calls

    assert calls_for(mail_samples.bounce(["plain@example.com"], T0)) == ["BatchGetItem", "PutItem"]
    assert calls_for(mail_samples.bounce(["No.Row@Example.COM"], T0)) == ["BatchGetItem", "PutItem"]
    with_row = mail_samples.bounce(["Has.Row@Example.COM"], T0)
    assert calls_for(with_row) == ["BatchGetItem", "PutItem", "UpdateItem"]
    assert calls_for(with_row) == ["BatchGetItem"]  # redelivered: the row holds this revision already
    assert mailing.get_address(table, "No.Row@Example.COM") is None  # no row is ever created


def test_a_copy_that_failed_is_retried_and_the_alert_is_not_repeated(
    mail_settings: Settings, slack_server: LocalSlack
) -> None:
    spelled = "Fail.Copy@Example.COM"
    put_legacy(mail_settings.mailing_table, legacy_row(spelled))
    event = mail_samples.sqs_event([mail_samples.bounce([spelled], T0)])
    app = SesFeedbackApp(mail_settings)
    with throttled(spelled, "UpdateItem"):  # only the copy carries the original spelling
        response = app(event, None)
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][0]["messageId"]}]}
    assert item(mail_settings, "fail.copy@example.com")["state"] == "disable"  # stored, alerted
    assert item(mail_settings, spelled)["state"] == "enable"
    assert len(alerts(slack_server)) == 1
    assert app(event, None) == {"batchItemFailures": []}  # SQS redelivers it: a duplicate, copied now
    legacy = item(mail_settings, spelled)
    assert (legacy["state"], legacy["notificationType"], legacy["mirroredRev"]) == ("disable", "Bounce", 1)
    assert len(alerts(slack_server)) == 1


def test_concurrent_invocations_for_one_address_lose_nothing(
    mail_settings: Settings, monkeypatch: pytest.MonkeyPatch, atomic_dynamodb: None
) -> None:
    """Real threads recording events for one address; every writer reads before any of them writes."""
    import threading

    from bot.core.mail import commands as core
    from bot.core.mail.feedback import parse_notification
    from bot.core.mail.state import AddressRecord, merge
    from bot.core.mail.state import to_item as state_item

    writers, per_writer = 5, 3
    address = "contended@example.com"
    start = threading.Barrier(writers)
    first_put: set[int] = set()
    conflicts: list[int] = []
    real_put = mailing.put_if_revision

    def put(table: str, new_item: dict[str, Any], expected_rev: int | None) -> None:
        if threading.get_ident() not in first_put:
            first_put.add(threading.get_ident())
            start.wait(timeout=10)  # all have read the same item: all but one must lose
        try:
            real_put(table, new_item, expected_rev)
        except mailing.RevisionConflict:
            conflicts.append(1)
            raise

    monkeypatch.setattr(core.mailing, "put_if_revision", put)
    kinds = ["delivery", "transient", "complaint", "permanent", "undetermined"]
    events = {
        writer: [
            parse_notification(
                mail_samples.bounce([address], T0 + (writer * per_writer + n) * HOUR, bounce_type="Transient")
                if kinds[(writer + n) % 5] == "transient"
                else mail_samples.bounce([address], T0 + (writer * per_writer + n) * HOUR)
                if kinds[(writer + n) % 5] == "permanent"
                else mail_samples.bounce([address], T0 + (writer * per_writer + n) * HOUR,
                                         bounce_type="Undetermined", subtype="Undetermined")
                if kinds[(writer + n) % 5] == "undetermined"
                else mail_samples.complaint([address], T0 + (writer * per_writer + n) * HOUR)
                if kinds[(writer + n) % 5] == "complaint"
                else mail_samples.delivery([address], T0 + (writer * per_writer + n) * HOUR)
            ).events[0]
            for n in range(per_writer)
        ]
        for writer in range(writers)
    }  # fmt: skip
    rules = core.mail_config(mail_settings).rules
    reads: list[str] = []
    ddb = clients.client("dynamodb")

    def count_read(**_: Any) -> None:
        reads.append("GetItem")

    ddb.meta.events.register("before-call.dynamodb.GetItem", count_read)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for event in events[n]:
                core.record_event(event, mail_settings, rules)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ddb.meta.events.unregister("before-call.dynamodb.GetItem", count_read)
    assert errors == []
    assert len(conflicts) >= writers - 1  # the race really happened
    assert len(reads) == writers * per_writer  # a lost race re-merges with the item it got back
    expected: AddressRecord | None = None
    for event in sorted((e for batch in events.values() for e in batch), key=lambda e: e.at_ms):
        expected = merge(expected, event, rules)
    assert expected is not None
    stored = item(mail_settings, address)
    assert {k: v for k, v in stored.items() if k not in BOOKKEEPING} == state_item(expected, rules)
    assert stored["rev"] == writers * per_writer  # every event changed the item exactly once


def test_slack_failure_does_not_lose_the_table_update(
    mail_settings: Settings, slack_server: LocalSlack, caplog: pytest.LogCaptureFixture
) -> None:
    slack_server.fail_next("chat.postMessage", "channel_not_found")
    with caplog.at_level(logging.ERROR, logger="opsbot.mail"):
        report = SesFeedbackApp(mail_settings).handle(load_event("sns_ses_bounce_permanent"))
    assert (report.alerts_posted, report.alerts_failed) == (0, 1)
    assert item(mail_settings, "jane.doe@example.com")["state"] == "disable"
    assert "could not be posted" in caplog.text and "channel_not_found" in caplog.text


@contextmanager
def throttled(address: str, operation: str = "PutItem") -> Iterator[None]:
    """DynamoDB refuses every ``operation`` for ``address`` (throttling, after the SDK's retries)."""
    ddb = clients.client("dynamodb")

    class Http:
        status_code = 400
        headers: dict[str, str] = {}

    def throttle(params: dict[str, Any], **_: Any) -> Any:
        body = params.get("body", b"")
        if address in (body.decode() if isinstance(body, bytes) else str(body)):
            error = {"Code": "ProvisionedThroughputExceededException", "Message": "Rate exceeded"}
            return Http(), {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}
        return None

    ddb.meta.events.register(f"before-call.dynamodb.{operation}", throttle)
    try:
        yield
    finally:
        ddb.meta.events.unregister(f"before-call.dynamodb.{operation}", throttle)


def test_aws_failure_on_one_event_raises_after_storing_the_others(mail_settings: Settings) -> None:
    """A throttled write must make Lambda retry the batch; the retry then stores only what is missing."""
    victim = "throttled@example.com"
    event = mail_samples.sns_event(
        [mail_samples.bounce(["first@example.com"], T0), mail_samples.bounce([victim], T0),
         mail_samples.bounce(["last@example.com"], T0)]
    )  # fmt: skip
    with (
        throttled(victim),
        pytest.raises(FeedbackNotStored, match="1 of 3 feedback events could not be stored"),
    ):
        SesFeedbackApp(mail_settings).handle(event)
    assert item(mail_settings, "last@example.com")["state"] == "disable"
    assert mailing.get_address(mail_settings.mailing_table, victim) is None
    retry = SesFeedbackApp(mail_settings).handle(event)  # Lambda's retry
    assert (retry.duplicates, retry.changed) == (2, 1)
    assert item(mail_settings, victim)["state"] == "disable"


def test_sqs_batch_of_envelopes_and_raw_bodies_reports_only_the_failed_message(
    mail_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """The deployed path: SNS -> SQS -> Lambda with ReportBatchItemFailures."""
    victim = "throttled@example.com"
    event = mail_samples.sqs_event(
        [mail_samples.bounce(["sqs.one@example.com"], T0), mail_samples.bounce([victim], T0),
         mail_samples.delivery(["sqs.two@example.com"], T0)]
    )  # fmt: skip
    raw = mail_samples.sqs_event([mail_samples.complaint(["sqs.three@example.com"], T0)], raw=True)
    broken = {**raw["Records"][0], "messageId": "broken-1", "body": "{not json"}
    event["Records"] += [raw["Records"][0], broken]
    app = SesFeedbackApp(mail_settings)
    with caplog.at_level(logging.WARNING, logger="opsbot.mail"), throttled(victim):
        response = app(event, None)
    victim_id = event["Records"][1]["messageId"]
    assert response == {"batchItemFailures": [{"itemIdentifier": victim_id}]}  # not the malformed one
    assert "SQS message broken-1" in caplog.text and "not JSON" in caplog.text
    states = {a: item(mail_settings, a)["state"] for a in ("sqs.one@example.com", "sqs.two@example.com",
                                                             "sqs.three@example.com")}  # fmt: skip
    assert states == {"sqs.one@example.com": "disable", "sqs.two@example.com": "enable",
                      "sqs.three@example.com": "disable"}  # fmt: skip
    # SQS redelivers only the failed message.
    retry = {"Records": [event["Records"][1]]}
    assert app(retry, None) == {"batchItemFailures": []}
    assert item(mail_settings, victim)["state"] == "disable"


def test_without_alert_channel_the_table_is_still_updated(
    mailing_table: str, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings.from_env({"AWS_REGION": "us-east-1"})
    with caplog.at_level(logging.WARNING, logger="opsbot.mail"):
        report = SesFeedbackApp(settings).handle(load_event("sns_ses_bounce_permanent"))
    assert report.disabled == ["jane.doe@example.com"]
    assert "OPSBOT_ALERT_CHANNEL is not set" in caplog.text


# -- the key property: a shuffled, duplicated stream ends where the ordered stream ends -------------


def feedback_stream(rng: random.Random, count: int, people: int = 40) -> list[dict[str, Any]]:
    addresses = [f"user{n:02d}@example.com" for n in range(people)]
    messages: list[dict[str, Any]] = []
    for n in range(count):
        at = T0 + rng.randrange(0, 5 * 24) * HOUR + rng.randrange(0, 3_600) * 1_000
        recipients = rng.sample(addresses, rng.choice([1, 1, 1, 1, 1, 1, 2, 3]))
        roll = rng.random()
        seed = f"n{n}"
        if roll < 0.45:
            messages.append(mail_samples.delivery(recipients, at, seed=seed))
        elif roll < 0.60:
            subtype = rng.choice(["General", "NoEmail", "Suppressed", "OnAccountSuppressionList"])
            messages.append(mail_samples.bounce(recipients, at, subtype=subtype, seed=seed))
        elif roll < 0.85:
            subtype = rng.choice(
                ["General", "MailboxFull", "MessageTooLarge", "ContentRejected", "AttachmentRejected"]
            )
            messages.append(
                mail_samples.bounce(recipients, at, bounce_type="Transient", subtype=subtype, seed=seed)
            )
        elif roll < 0.90:
            messages.append(
                mail_samples.bounce(
                    recipients, at, bounce_type="Undetermined", subtype="Undetermined", seed=seed
                )
            )
        else:
            feedback = rng.choice(["abuse", "fraud", "not-spam", "other", "virus", "auth-failure"])
            messages.append(mail_samples.complaint(recipients, at, feedback_type=feedback, seed=seed))
    return messages


def table_state(table: str) -> dict[str, dict[str, Any]]:
    return {
        item["UserId"]: {k: v for k, v in item.items() if k not in BOOKKEEPING} for item in scan_all(table)
    }


def event_time(message: dict[str, Any]) -> str:
    body = message.get("bounce") or message.get("complaint") or message.get("delivery") or {}
    return str(body["timestamp"])


@pytest.mark.slow  # 690 notifications through the handler and moto, twice
def test_a_shuffled_duplicated_stream_ends_in_the_same_state_as_the_ordered_stream(
    state_table: str,
) -> None:
    """Through the real handler and DynamoDB (moto): batches, prefetch, conditional puts, daily stats.

    300 notifications to 20 people, 14 to 32 events each, ending in each of the three reasons. People do
    not affect each other: the 1,000 notifications to 40 people this once sent repeated the same check
    (80 s a run, the suite's longest test). Any order and any duplicates of the pure rules, with many
    more cases, is tests/mail/test_state.py's property."""
    from bot.aws.mailing import create_mailing_table
    from bot.aws.state import create_state_table

    rng = random.Random(20240501)
    stream = feedback_stream(rng, 300, people=20)
    runs = {}
    for name in ("ordered", "shuffled"):
        create_mailing_table(f"mailing-{name}")
        create_state_table(f"state-{name}")
        settings = Settings.from_env(
            {"OPSBOT_MAILING_TABLE": f"mailing-{name}", "OPSBOT_STATE_TABLE": f"state-{name}",
             "OPSBOT_MAIL_TRANSIENT_LIMIT": "3", "OPSBOT_MAIL_TRANSIENT_WINDOW": "2d"}
        )  # fmt: skip
        if name == "ordered":
            messages = sorted(stream, key=event_time)
        else:
            messages = stream + rng.sample(stream, 90)  # SNS delivers at least once
            rng.shuffle(messages)
        app = SesFeedbackApp(settings)
        reports = [
            app.handle(mail_samples.sns_event(messages[i : i + 10])) for i in range(0, len(messages), 10)
        ]
        runs[name] = (
            table_state(f"mailing-{name}"),
            mailing.read_stats(f"state-{name}", "2024-04-30", "2024-05-12"),
        )
        if name == "shuffled":
            assert sum(r.duplicates for r in reports) >= 90
    ordered, shuffled = runs["ordered"], runs["shuffled"]
    assert len(ordered[0]) == 20
    assert shuffled[0] == ordered[0]
    assert shuffled[1] == ordered[1]  # each notification counted once
    states = {item["state"] for item in ordered[0].values()}
    reasons = {item["reason"] for item in ordered[0].values()}
    assert states == {"enable", "disable"}
    assert reasons == {"complaint", "delivery", "permanent-bounce"}  # the stream exercises the rules
