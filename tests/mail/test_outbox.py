"""Alerts Slack did not take wait in the state table's outbox and go out later, once each (moto + local Slack)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from bot.aws import clients, mailing
from bot.aws.state import StateTable
from bot.config import Settings
from bot.core.mail import alerts as mail_alerts
from bot.core.mail.alerts import MailAlert, deliver
from bot.core.mail.commands import AlertPolicy
from bot.intake.ses_feedback import SesFeedbackApp, SlackAlertPoster
from bot.local import mail_samples
from bot.local.slack_api import LocalSlack
from tests.mail.conftest import ALERTS

T0 = 1_714_550_400_000  # 2024-05-01T08:00:00Z
HOUR = 3_600_000
# Nothing listens there: every Slack call fails to connect, as in an outage.
SLACK_DOWN = "http://127.0.0.1:9/api/"


def bounces(*addresses: str, at: int = T0) -> dict[str, Any]:
    return mail_samples.sqs_event([mail_samples.bounce([a], at) for a in addresses])


def a_delivery(address: str = "reader@example.com") -> dict[str, Any]:
    return mail_samples.sqs_event([mail_samples.delivery([address], T0)])


def outbox(settings: Settings) -> dict[str, Any]:
    return mailing.outbox_get(settings.state_table, now=time.time()) or {}


def waiting(settings: Settings) -> list[str]:
    """Addresses of the alerts waiting in the outbox."""
    return sorted(
        json.loads(v)["alert"]["address"] for k, v in outbox(settings).items() if k.startswith("alert:")
    )


def posted_for(slack: LocalSlack, address: str) -> list[Any]:
    return [m for m in slack.visible(ALERTS) if m.text.split(" — ")[0].endswith(address)]


def test_alerts_survive_a_slack_outage_and_are_posted_once_before_the_new_ones(
    make_mail_settings: Callable[..., Settings], slack_server: LocalSlack
) -> None:
    down = make_mail_settings(SLACK_API_URL=SLACK_DOWN)
    up = make_mail_settings()
    event = bounces("first@example.com", "second@example.com")

    during = SesFeedbackApp(down)(event, None)
    assert during["batchItemFailures"] == []  # the table work is done; Slack's failure is not retried by SQS
    report = SesFeedbackApp(down).handle(bounces("third@example.com"))
    assert (report.alerts_posted, report.alerts_queued) == (0, 1)
    assert waiting(up) == ["first@example.com", "second@example.com", "third@example.com"]
    assert slack_server.visible(ALERTS) == []

    # A redelivery of the first batch (with a new bounce) finds duplicates, which alert nobody: the alerts
    # come from the outbox, ahead of the batch's own.
    after = SesFeedbackApp(up).handle(
        bounces("first@example.com", "second@example.com", "fourth@example.com")
    )
    assert after.duplicates == 2
    assert (after.alerts_posted, after.alerts_delayed, after.alerts_queued) == (4, 3, 0)
    texts = [m.text for m in slack_server.visible(ALERTS)]
    assert [t.split(" — ")[0] for t in texts] == [
        "Disabled: first@example.com", "Disabled: second@example.com", "Disabled: third@example.com",
        "Disabled: fourth@example.com",
    ]  # fmt: skip
    delayed = json.dumps(slack_server.visible(ALERTS)[0].blocks)
    assert "Posted late: Slack could not take this alert at " in delayed
    assert "Posted late" not in json.dumps(slack_server.visible(ALERTS)[-1].blocks)
    buttons = [e["action_id"] for b in slack_server.visible(ALERTS)[0].blocks if b["type"] == "actions"
               for e in b["elements"]]  # fmt: skip
    assert buttons == ["mail:reenable", "mail:suppress", "mail:history"]
    assert waiting(up) == []

    SesFeedbackApp(up).handle(a_delivery())
    SesFeedbackApp(up).handle(event)
    assert len(slack_server.visible(ALERTS)) == 4  # never a second time


def test_an_invocation_without_alerts_of_its_own_flushes_the_outbox(
    make_mail_settings: Callable[..., Settings], slack_server: LocalSlack
) -> None:
    SesFeedbackApp(make_mail_settings(SLACK_API_URL=SLACK_DOWN)).handle(bounces("quiet@example.com"))
    report = SesFeedbackApp(make_mail_settings()).handle(a_delivery())
    assert (report.alerts_posted, report.alerts_delayed) == (1, 1)
    assert len(posted_for(slack_server, "quiet@example.com")) == 1


def test_a_failure_stops_the_invocation_from_trying_the_rest(
    make_mail_settings: Callable[..., Settings], slack_server: LocalSlack
) -> None:
    """One time-out per invocation at most: the function must not spend its own time-out on Slack's."""
    settings = make_mail_settings()
    slack_server.fail_next("chat.postMessage", "ratelimited")
    report = SesFeedbackApp(settings).handle(bounces("r1@example.com", "r2@example.com", "r3@example.com"))
    assert (report.alerts_posted, report.alerts_failed, report.alerts_queued) == (0, 3, 3)
    assert len(slack_server.calls_to("chat.postMessage")) == 1
    assert waiting(settings) == ["r1@example.com", "r2@example.com", "r3@example.com"]


def counting_calls(table: str) -> tuple[list[str], Callable[[], None]]:
    calls: list[str] = []
    ddb = clients.client("dynamodb")

    def count(params: dict[str, Any], model: Any, **_: Any) -> None:
        if params.get("TableName") == table or table in params.get("RequestItems", {}):
            calls.append(model.name)

    ddb.meta.events.register("before-parameter-build.dynamodb", count)
    return calls, lambda: ddb.meta.events.unregister("before-parameter-build.dynamodb", count)


def test_an_empty_outbox_costs_one_get_item_per_invocation(
    make_mail_settings: Callable[..., Settings], slack_server: LocalSlack
) -> None:
    settings = make_mail_settings()
    batch = mail_samples.sqs_event([mail_samples.delivery([f"d{n}@example.com"], T0) for n in range(10)])
    calls, stop = counting_calls(settings.state_table)
    try:
        SesFeedbackApp(settings).handle(batch)
    finally:
        stop()
    # Ten notifications: the day's counters (one update) and the outbox (one read), nothing per record.
    assert sorted(calls) == ["GetItem", "UpdateItem"]

    silent = Settings.from_env({"AWS_REGION": "us-east-1"})  # no alert channel: no outbox either
    calls, stop = counting_calls(silent.state_table)
    try:
        SesFeedbackApp(silent).handle(a_delivery("one.more@example.com"))
    finally:
        stop()
    assert calls == ["UpdateItem"]


def test_concurrent_invocations_post_each_waiting_alert_once(
    make_mail_settings: Callable[..., Settings], slack_server: LocalSlack, atomic_dynamodb: None
) -> None:
    addresses = [f"w{n}@example.com" for n in range(6)]
    SesFeedbackApp(make_mail_settings(SLACK_API_URL=SLACK_DOWN)).handle(bounces(*addresses))
    settings = make_mail_settings(OPSBOT_MAIL_STORM_THRESHOLD="100")
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def invoke(n: int) -> None:
        try:
            start.wait()
            SesFeedbackApp(settings).handle(a_delivery(f"reader{n}@example.com"))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=invoke, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    if waiting(settings):  # an invocation that found the lease taken leaves the rest to the next one
        SesFeedbackApp(settings).handle(a_delivery())
    assert {a: len(posted_for(slack_server, a)) for a in addresses} == dict.fromkeys(addresses, 1)
    assert waiting(settings) == []


def test_a_flush_that_died_holds_its_lease_until_it_expires(
    state_table: str, slack_server: LocalSlack, make_mail_settings: Callable[..., Settings]
) -> None:
    """The lease outlasts the function's time-out; a crashed flusher's entries go out after it expires."""
    state = StateTable(state_table)
    down = SlackAlertPoster(make_mail_settings(SLACK_API_URL=SLACK_DOWN))
    up = SlackAlertPoster(make_mail_settings())
    policy = AlertPolicy(threshold=100)
    now = time.time()
    deliver([alert("crashed@example.com")], state=state, poster=down, policy=policy, now=now)
    assert mailing.outbox_take_lease(state_table, "dead-invocation", now=now, seconds=180)
    live = deliver([alert("new@example.com")], state=state, poster=up, policy=policy, now=now + 1)
    assert (live.posted, live.delayed, live.pending) == (1, 0, 1)  # its own alert, not the leased one
    later = deliver([], state=state, poster=up, policy=policy, now=now + 181)
    assert (later.posted, later.delayed) == (1, 1)
    assert [m.text.split(" — ")[0] for m in slack_server.visible(ALERTS)] == [
        "Disabled: new@example.com", "Disabled: crashed@example.com",
    ]  # fmt: skip


def alert(address: str) -> MailAlert:
    return MailAlert(address=address, kind="permanent-bounce", at="2024-05-01T08:00:00.000Z",
                     notification_type="Bounce", bounce_type="Permanent", bounce_subtype="General",
                     diagnostic="smtp; 550 5.1.1 user unknown", sender="news@example.org")  # fmt: skip


def test_alerts_waiting_more_than_a_day_are_given_up_and_reported(
    state_table: str, slack_server: LocalSlack, make_mail_settings: Callable[..., Settings]
) -> None:
    state = StateTable(state_table)
    down = SlackAlertPoster(make_mail_settings(SLACK_API_URL=SLACK_DOWN))
    up = SlackAlertPoster(make_mail_settings())
    policy = AlertPolicy(threshold=100)
    now = time.time()
    deliver([alert("old@example.com")], state=state, poster=down, policy=policy, now=now)
    deliver([alert("recent@example.com")], state=state, poster=down, policy=policy, now=now + 86_000)
    report = deliver([], state=state, poster=up, policy=policy, now=now + 86_500)
    assert (report.posted, report.delayed, report.dropped) == (1, 1, 1)
    texts = [m.text for m in slack_server.visible(ALERTS)]
    assert texts[0].startswith("Disabled: recent@example.com")
    since = mail_alerts.list_since(now)
    assert texts[1] == (
        f"1 mail alert was not posted (Slack was unavailable for more than a day, refused the message, or too "
        f"many were waiting) since {since}. `/mail list --state disable --since {since}` and "
        f"`/mail list --state review --since {since}` list the addresses."
    )
    assert not outbox(make_mail_settings()).get("dropped")
    deliver([], state=state, poster=up, policy=policy, now=now + 86_600)
    assert len(slack_server.visible(ALERTS)) == 2  # reported once


def test_a_full_outbox_counts_what_it_cannot_keep(
    state_table: str,
    slack_server: LocalSlack,
    make_mail_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(mail_alerts, "MAX_OUTBOX_ALERTS", 2)
    state = StateTable(state_table)
    down = SlackAlertPoster(make_mail_settings(SLACK_API_URL=SLACK_DOWN))
    policy = AlertPolicy(threshold=100)
    first = deliver([alert(f"f{n}@example.com") for n in range(3)], state=state, poster=down, policy=policy)
    assert (first.queued, first.dropped) == (2, 1)
    second = deliver([alert("g@example.com")], state=state, poster=down, policy=policy)
    assert (second.queued, second.dropped) == (0, 1)
    assert outbox(make_mail_settings())["dropped"] == 2
    back = deliver([], state=state, poster=SlackAlertPoster(make_mail_settings()), policy=policy)
    assert (back.posted, back.delayed) == (2, 2)
    texts = [m.text for m in slack_server.visible(ALERTS)]
    assert [t.split(" — ")[0] for t in texts[:2]] == ["Disabled: f0@example.com", "Disabled: f1@example.com"]
    assert texts[2].startswith("2 mail alerts were not posted")


def test_a_message_slack_refuses_is_not_kept_but_reported(
    make_mail_settings: Callable[..., Settings], slack_server: LocalSlack
) -> None:
    settings = make_mail_settings()
    slack_server.fail_next("chat.postMessage", "invalid_blocks")
    report = SesFeedbackApp(settings).handle(bounces("odd@example.com"))
    assert (report.alerts_failed, report.alerts_queued, report.alerts_dropped) == (1, 0, 1)
    assert waiting(settings) == []
    (notice,) = slack_server.visible(ALERTS)
    assert (
        notice.text.startswith("1 mail alert was not posted") and "/mail list --state disable" in notice.text
    )


@contextmanager
def slack_refusing(poster: Any) -> Iterator[None]:
    real = poster.post_digest

    def down(digest: Any) -> tuple[str, str]:
        raise OSError("connection refused")

    poster.post_digest = down
    try:
        yield
    finally:
        poster.post_digest = real


def test_a_storm_digest_slack_did_not_show_is_posted_by_the_next_invocation(
    state_table: str, slack_server: LocalSlack, make_mail_settings: Callable[..., Settings]
) -> None:
    state = StateTable(state_table)
    poster = SlackAlertPoster(make_mail_settings())
    policy = AlertPolicy(threshold=0, digest_update_seconds=0)
    with slack_refusing(poster):
        first = deliver(
            [alert(f"s{n}@example.com") for n in range(3)], state=state, poster=poster, policy=policy
        )
    assert (first.digested, first.failed) == (3, 3)
    assert slack_server.visible(ALERTS) == []
    assert [k for k in outbox(make_mail_settings()) if k.startswith("digest:")]
    # The storm produces no more alerts, yet its digest reaches the channel.
    deliver([], state=state, poster=poster, policy=policy)
    (digest,) = slack_server.visible(ALERTS)
    assert digest.text == "Bounce storm: 3 addresses disabled or flagged"
    assert "`s0@example.com`, `s1@example.com`, `s2@example.com`." in json.dumps(digest.blocks)
    assert not [k for k in outbox(make_mail_settings()) if k.startswith("digest:")]
    deliver([], state=state, poster=poster, policy=policy)
    assert len(slack_server.calls_to("chat.postMessage")) == 1


def test_waiting_alerts_count_against_the_storm_guard(
    make_mail_settings: Callable[..., Settings], slack_server: LocalSlack
) -> None:
    """After a long outage the backlog is one digest, not a flood of single alerts."""
    addresses = [f"b{n}@example.com" for n in range(6)]
    SesFeedbackApp(make_mail_settings(SLACK_API_URL=SLACK_DOWN)).handle(bounces(*addresses))
    settings = make_mail_settings(OPSBOT_MAIL_STORM_THRESHOLD="3", OPSBOT_MAIL_DIGEST_UPDATE_SECONDS="0")
    # Six alerts at once against a threshold of three (the outage's attempts count in the window too).
    report = SesFeedbackApp(settings).handle(a_delivery())
    assert report.alerts_delayed == 6 and report.alerts_posted + report.alerts_digested == 6
    assert report.alerts_digested >= 3
    digest = slack_server.visible(ALERTS)[-1]
    assert digest.text.startswith("Bounce storm: ")
    assert waiting(settings) == []


def test_outbox_entries_round_trip_every_alert_field() -> None:
    original = MailAlert(address="late@example.com", kind="late-complaint", at="2024-05-01T08:00:00.000Z",
                         notification_type="Complaint", feedback_type="abuse", sender="news@example.org",
                         message_id="m-1", reenabled_by="slack:U0ALICE", reenabled_at="2024-05-02T08:00:00.000Z",
                         transient_count=2, sticky=True)  # fmt: skip
    assert MailAlert.from_json(json.loads(json.dumps(original.to_json()))) == original
    with pytest.raises(ValueError):
        MailAlert.from_json({"kind": "complaint"})
