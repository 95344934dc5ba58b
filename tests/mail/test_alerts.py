"""Alerts in the alert channel and the bounce-storm guard (counters in moto's state table)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable

import pytest

from bot.aws.dynamo import scan_all
from bot.aws.state import StateTable
from bot.config import Settings
from bot.core.mail import alerts as mail_alerts
from bot.core.mail.alerts import MailAlert, dispatch
from bot.core.mail.commands import AlertPolicy
from bot.intake.ses_feedback import SesFeedbackApp, SlackAlertPoster
from bot.local import mail_samples
from bot.local.slack_api import LocalSlack
from tests.mail.conftest import ALERTS

NOW_MS = int(time.time() * 1000)


def bounces(prefix: str, count: int, source: str = "news@example.org") -> dict:
    recipients = [f"{prefix}{n}@example.com" for n in range(count)]
    return mail_samples.sns_event([mail_samples.bounce([r], NOW_MS, source=source) for r in recipients])


def storm_settings(make_mail_settings: Callable[..., Settings]) -> Settings:
    return make_mail_settings(OPSBOT_MAIL_STORM_THRESHOLD="3", OPSBOT_MAIL_DIGEST_UPDATE_SECONDS="0.3")


def test_storm_posts_one_digest_and_keeps_updating_it(
    make_mail_settings: Callable[..., Settings], slack_server: LocalSlack
) -> None:
    app = SesFeedbackApp(storm_settings(make_mail_settings))
    first = app.handle(bounces("a", 10))
    assert (first.alerts_posted, first.alerts_digested) == (3, 7)
    messages = slack_server.visible(ALERTS)
    assert len(messages) == 4  # three alerts, then the digest
    digest = messages[-1]
    assert digest.text == "Bounce storm: 7 addresses disabled or flagged"
    initial = json.dumps(digest.blocks)
    # Within the throttle interval of the digest's post: the update waits its turn instead of being dropped
    # (otherwise the storm's last counts would never be shown).
    second = app.handle(bounces("b", 5, source="Billing <billing@example.org>"))
    assert (second.alerts_posted, second.alerts_digested) == (0, 5)  # the storm is on: nothing individual
    assert len(slack_server.visible(ALERTS)) == 4  # no new message...
    assert len(slack_server.calls_to("chat.update")) == 1  # ...the digest was updated
    updated = slack_server.find(digest.ts, ALERTS)
    assert updated is not None and updated.text == "Bounce storm: 12 addresses disabled or flagged"
    body = json.dumps(updated.blocks)
    for expected in ("Permanent/General: 12", "news@example.org: 7", "billing@example.org: 5", "*5.1.1*: 12",
                     "user unknown"):  # fmt: skip
        assert expected in body
    # The first ten digested addresses, in the order they came, then how many more and how to list them.
    first = ", ".join(f"`{a}@example.com`" for a in [f"a{n}" for n in range(3, 10)] + ["b0", "b1", "b2"])
    assert f"*First addresses*\\n{first} and 2 more." in body
    since = mail_alerts.list_since(time.time())
    assert since[:13] in body and "`/mail list --state disable --since " in body
    assert "`a9@example.com`." in initial and "more." not in initial  # seven of seven at first


def test_concurrent_invocations_post_a_single_digest_that_ends_up_showing_every_count(
    make_mail_settings: Callable[..., Settings], slack_server: LocalSlack, atomic_dynamodb: None
) -> None:
    settings = make_mail_settings(OPSBOT_MAIL_STORM_THRESHOLD="0", OPSBOT_MAIL_DIGEST_UPDATE_SECONDS="0.2")
    errors: list[BaseException] = []

    def invoke(prefix: str) -> None:
        try:
            SesFeedbackApp(settings).handle(bounces(prefix, 4))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=invoke, args=(f"t{n}-",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    (digest,) = slack_server.visible(ALERTS)  # one message, no individual alerts
    assert len(slack_server.calls_to("chat.postMessage")) == 1
    # What the channel shows, not just what the state table counted:
    assert digest.text == "Bounce storm: 16 addresses disabled or flagged"
    assert "news@example.org: 16" in json.dumps(digest.blocks)
    # Ten addresses shown; the item keeps a bounded list however many invocations add to it.
    shown = re.findall(r"`(t\d-\d@example.com)`", json.dumps(digest.blocks))
    assert len(shown) == 10 and len(set(shown)) == 10 and "and 6 more." in json.dumps(digest.blocks)
    (item,) = [i for i in scan_all(settings.state_table) if i["pk"] == "mail#digest"]
    assert 10 <= len(item["addresses"]) < 10 + 4


def test_storm_guard_counts_a_burst_that_straddles_a_minute_boundary(
    state_table: str, slack_server: LocalSlack
) -> None:
    from tests.support.slack import harness_settings

    poster = SlackAlertPoster(harness_settings(slack_server, OPSBOT_ALERT_CHANNEL=ALERTS))
    state = StateTable(state_table)
    policy = AlertPolicy(threshold=4, digest_update_seconds=0)
    boundary = (int(time.time()) // 60 + 1) * 60
    first = dispatch(alerts_for("early", 3), state=state, poster=poster, policy=policy, now=boundary - 1)
    later = dispatch(alerts_for("late", 3), state=state, poster=poster, policy=policy, now=boundary + 1)
    # Six alerts within two seconds: the fifth and sixth are over the threshold of four.
    assert (first.posted, first.digested) == (3, 0)
    assert (later.posted, later.digested, later.digest_posted) == (1, 2, True)


def test_storm_guard_does_not_add_up_alerts_nearly_two_minutes_apart(
    state_table: str, slack_server: LocalSlack
) -> None:
    """6 alerts at 1 s into a minute and 5 at 119 s are 118 s apart: not more than 10 within a minute."""
    from tests.support.slack import harness_settings

    poster = SlackAlertPoster(harness_settings(slack_server, OPSBOT_ALERT_CHANNEL=ALERTS))
    state = StateTable(state_table)
    policy = AlertPolicy(threshold=10, digest_update_seconds=0)
    start = (int(time.time()) // 60 + 1) * 60
    first = dispatch(alerts_for("early", 6), state=state, poster=poster, policy=policy, now=start + 1)
    later = dispatch(alerts_for("late", 5), state=state, poster=poster, policy=policy, now=start + 119)
    # Estimate at 119 s: 6 x (1 s of the previous window still in the last minute / 60 s) + 5 = 5.1.
    assert (first.posted, first.digested) == (6, 0)
    assert (later.posted, later.digested, later.digest_posted, later.storm) == (5, 0, False, "")
    assert len(slack_server.visible(ALERTS)) == 11


def test_storm_guard_counts_more_than_the_threshold_within_a_minute_across_a_boundary(
    state_table: str, slack_server: LocalSlack
) -> None:
    from tests.support.slack import harness_settings

    poster = SlackAlertPoster(harness_settings(slack_server, OPSBOT_ALERT_CHANNEL=ALERTS))
    state = StateTable(state_table)
    policy = AlertPolicy(threshold=10, digest_update_seconds=0)
    boundary = (int(time.time()) // 60 + 1) * 60
    first = dispatch(alerts_for("early", 6), state=state, poster=poster, policy=policy, now=boundary - 5)
    later = dispatch(alerts_for("late", 5), state=state, poster=poster, policy=policy, now=boundary + 5)
    # 11 alerts within 10 s: 6 x 55/60 + 5 = 10.5 > 10, so the eleventh goes to the digest.
    assert (first.posted, first.digested) == (6, 0)
    assert (later.posted, later.digested, later.digest_posted) == (4, 1, True)


def test_sliding_share_of_the_previous_window() -> None:
    from bot.aws.mailing import sliding_share

    shares = [sliding_share(6, window_seconds=60, elapsed=e) for e in (0, 0.5, 30, 55, 59, 59.9, 60, 90)]
    assert shares == [6, 6, 3, 1, 1, 1, 0, 0]  # rounded up; exactly 3 at half-time, not 4 by float error
    assert sliding_share(0, window_seconds=60, elapsed=10) == 0


def test_a_storm_that_ends_while_being_joined_does_not_break_alerting(
    state_table: str, slack_server: LocalSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The storm lock was taken, then expired before its holder could be read: start a new storm."""
    from bot.aws.state import LockResult
    from tests.support.slack import harness_settings

    state = StateTable(state_table)
    real_acquire = StateTable.acquire_lock
    vanished: list[str] = []

    def acquire(self: StateTable, key: str, holder: dict, *, ttl_seconds: int) -> LockResult:
        if key == "mail:storm" and not vanished:
            vanished.append(key)
            return LockResult(False, {})
        return real_acquire(self, key, holder, ttl_seconds=ttl_seconds)

    monkeypatch.setattr(StateTable, "acquire_lock", acquire)
    poster = SlackAlertPoster(harness_settings(slack_server, OPSBOT_ALERT_CHANNEL=ALERTS))
    report = dispatch(alerts_for("v", 2), state=state, poster=poster, policy=AlertPolicy(threshold=0))
    assert vanished and report.errors == []
    assert (report.digested, report.digest_posted) == (2, True)


def alerts_for(prefix: str, count: int) -> list[MailAlert]:
    return [MailAlert(address=f"{prefix}{n}@example.com", kind="permanent-bounce", at="2024-05-01T00:00:00.000Z",
                      notification_type="Bounce", bounce_type="Permanent", bounce_subtype="General")
            for n in range(count)]  # fmt: skip


def test_storm_ends_and_single_alerts_resume(state_table: str, slack_server: LocalSlack) -> None:
    from tests.support.slack import harness_settings

    settings = harness_settings(slack_server, OPSBOT_ALERT_CHANNEL=ALERTS)
    poster = SlackAlertPoster(settings)
    state = StateTable(state_table)
    policy = AlertPolicy(threshold=1, window_seconds=1, storm_seconds=1, digest_update_seconds=0)
    alerts = alerts_for("s", 3)
    report = dispatch(alerts, state=state, poster=poster, policy=policy)
    assert (report.posted, report.digested, report.digest_posted) == (1, 2, True)
    time.sleep(2.2)  # the storm's lock expires
    # Counted in a quiet window (the guard also weighs in the previous window, so not the next one).
    later = dispatch(alerts[:1], state=state, poster=poster, policy=policy, now=time.time() + 10)
    assert (later.posted, later.digested) == (1, 0)


def test_digest_failure_is_logged_not_raised(state_table: str) -> None:
    class Broken:
        def post_alert(self, alert: MailAlert) -> None:
            raise RuntimeError("slack is down")

        def post_digest(self, digest: object) -> tuple[str, str]:
            raise RuntimeError("slack is down")

        def update_digest(self, channel: str, ts: str, digest: object) -> None:
            raise RuntimeError("slack is down")

    alerts = [MailAlert(address=f"x{n}@example.com", kind="complaint", at="2024-05-01T00:00:00.000Z",
                        notification_type="Complaint", feedback_type="abuse") for n in range(3)]  # fmt: skip
    report = dispatch(alerts, state=StateTable(state_table), poster=Broken(), policy=AlertPolicy(threshold=1))
    assert report.failed == 3
    assert all("slack is down" in e for e in report.errors)


def test_alert_type_labels_and_diagnostic_codes() -> None:
    complaint = MailAlert(
        "a@example.com", "complaint", "t", notification_type="Complaint", feedback_type="abuse"
    )
    assert (complaint.type_label, complaint.diagnostic_code) == ("Complaint/abuse", "")
    bounce = MailAlert("a@example.com", "permanent-bounce", "t", notification_type="Bounce", bounce_type="Permanent",
                       bounce_subtype="General", diagnostic="smtp; 550 5.1.1 user unknown")  # fmt: skip
    assert (bounce.type_label, bounce.diagnostic_code) == ("Permanent/General", "5.1.1")
    bare = MailAlert("a@example.com", "review", "t", notification_type="Bounce", bounce_type="Undetermined",
                     bounce_subtype="Undetermined")  # fmt: skip
    assert (bare.type_label, bare.diagnostic_code) == ("Undetermined", "no DSN")
