"""The SES feedback Lambda: SNS records -> per-recipient state in the mailing table -> alerts in Slack.

``handlers/ses_feedback.py`` builds one ``SesFeedbackApp`` at import (no I/O) and delegates to it. The
demo's seed and ``opsbot mail feed`` use the same class, so they exercise the real path.

Input: SQS batches whose bodies are SNS envelopes (the deployed path: SNS -> SQS -> Lambda, so one read
and one counter update serve up to ten notifications), SNS events (the function subscribed to the topic
directly), or bare SES notifications.

Order of work for a batch: parse every record (a malformed one is logged with the reason and skipped),
store every event (the table is updated before any alert is posted), then post the alerts: first those an
earlier invocation could not post (kept in the state table's outbox), then the batch's own. A failed post
is logged and the alert kept in the outbox for the next invocation; it never undoes or blocks a table
update (see ``bot.core.mail.alerts``). If an event could not be stored because AWS failed,
the rest of the batch is still processed, then the records concerned are retried: named as
``batchItemFailures`` for SQS, by raising for SNS (Lambda retries the whole event). Events already stored
are then recognised as duplicates and change nothing.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from bot.config import Settings
from bot.errors import OpsbotError
from bot.intake.batch import IntakeApp

logger = logging.getLogger("opsbot.mail")

MAX_LOGGED_MESSAGE = 2000


class FeedbackNotStored(Exception):
    """Some parsed events could not be stored; raising makes Lambda retry the batch."""


@dataclass
class BatchReport:
    records: int = 0
    notifications: int = 0
    events: int = 0
    changed: int = 0
    duplicates: int = 0
    ignored: int = 0
    malformed: int = 0
    skipped_recipients: int = 0
    failed: int = 0
    # Events stored whose copy into the original handler's row (another spelling) failed: retried too.
    mirror_failed: int = 0
    # SQS message ids of the records with an event that could not be stored (retried by SQS).
    failed_messages: list[str] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)
    review: list[str] = field(default_factory=list)
    # Complaints older than a person's re-enable: no state change, but an alert to check the address.
    late_complaints: list[str] = field(default_factory=list)
    alerts_posted: int = 0
    alerts_digested: int = 0
    alerts_failed: int = 0
    # Of those posted or digested: alerts an earlier invocation could not post.
    alerts_delayed: int = 0
    # Kept in the outbox for the next invocation; given up (refused by Slack, outbox full, a day old).
    alerts_queued: int = 0
    alerts_dropped: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class SlackAlertPoster:
    """Posts alerts and the storm digest to ``OPSBOT_ALERT_CHANNEL`` through the Slack Web API."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            from bot.slack_web import web_client

            self._client = web_client(self.settings)
        return self._client

    def _channel(self) -> str:
        if not self.settings.alert_channel:
            raise OpsbotError("OPSBOT_ALERT_CHANNEL is not set, so mail alerts cannot be posted.")
        return self.settings.alert_channel

    def alert(self, alert: Any) -> tuple[str, list[dict[str, Any]]]:
        """The alert's message; with OPSBOT_ACCOUNTS, its buttons carry the account and region the feedback
        was stored in (``SesFeedbackApp.handle``), so Re-enable, Suppress and History act there whatever
        account the alert channel is bound to (and a click is authorized again for that account), and the
        message names them when several accounts are configured."""
        from bot.render.mail import alert_message

        text, blocks = alert_message(alert)
        accounts = self.settings.accounts()
        # Queued before OPSBOT_ACCOUNTS was unset: a button naming an account would be refused on click.
        if not alert.account or not accounts.configured:
            return text, blocks
        from bot.core.common.accounts import OWN_ACCOUNT
        from bot.listeners.framework.accounts import OWN_MARK, describe, wrap_buttons
        from bot.render.blocks import context

        region = alert.region or self.settings.region
        blocks = wrap_buttons(blocks, alert.account, region) or blocks
        entry = OWN_ACCOUNT if alert.account == OWN_MARK else accounts.get(alert.account)
        if accounts.several and entry is not None and len(blocks) < 50:
            blocks = [*blocks, context(describe(entry, region))]
        return text, blocks

    def post_alert(self, alert: Any) -> None:
        text, blocks = self.alert(alert)
        self.client.chat_postMessage(channel=self._channel(), text=text, blocks=blocks, unfurl_links=False)

    def post_digest(self, digest: Any) -> tuple[str, str]:
        from bot.render.mail import digest_message

        text, blocks = digest_message(digest)
        response = self.client.chat_postMessage(channel=self._channel(), text=text, blocks=blocks)
        return str(response.get("channel") or self._channel()), str(response["ts"])

    def update_digest(self, channel: str, ts: str, digest: Any) -> None:
        from bot.render.mail import digest_message

        text, blocks = digest_message(digest)
        self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)

    def post_notice(self, text: str) -> None:
        from bot.render.blocks import escape

        # The notice is built in core from stored values; mrkdwn, so escaped like every other alert text.
        self.client.chat_postMessage(channel=self._channel(), text=escape(text), unfurl_links=False)


class SesFeedbackApp(IntakeApp):
    """Callable Lambda handler for SQS or SNS events carrying SES notifications."""

    def make_poster(self, settings: Settings) -> Any:
        return SlackAlertPoster(settings)

    def handle(self, event: Any, context: Any = None) -> BatchReport:
        from bot.core.mail.alerts import MailAlert
        from bot.core.mail.commands import EventOutcome, count_events, mail_config, record_event
        from bot.core.mail.feedback import RawRecord, parse_batch

        settings = self.settings
        config = mail_config(settings)
        report = BatchReport()
        parsed = parse_batch(event)
        report.records = len(parsed.notifications) + len(parsed.malformed)
        for raw, reason in parsed.malformed:
            report.malformed += 1
            logger.warning(
                "skipping malformed SES feedback %s: %s; message: %s",
                raw.label(),
                reason,
                _loggable(raw.message),
            )
        alerts: list[MailAlert] = []
        failures: list[tuple[RawRecord, str]] = []
        outcomes: list[EventOutcome] = []
        known = self._prefetch(parsed.notifications)
        for raw, notification in parsed.notifications:
            if notification.ignored:
                report.ignored += 1
                logger.info(
                    "ignoring SES %s notification %s (%s)",
                    notification.notification_type,
                    notification.message_id or "without message id",
                    raw.label(),
                )
                continue
            report.notifications += 1
            for skipped in notification.skipped:
                report.skipped_recipients += 1
                logger.warning(
                    "skipping recipient %s of %s %s: %s",
                    skipped.raw,
                    notification.notification_type,
                    notification.message_id,
                    skipped.reason,
                )
            for recipient_event in notification.events:
                report.events += 1
                try:
                    outcome = record_event(recipient_event, settings, config.rules, known=known)
                except OpsbotError as error:
                    report.failed += 1
                    failures.append((raw, f"{recipient_event.event_id}: {error}"))
                    logger.error("could not store %s: %s", recipient_event.event_id, error)
                    continue
                outcomes.append(outcome)
                if outcome.mirror_error:
                    # Stored, alerted and counted now; the retry finds a duplicate and only repeats the copy.
                    report.mirror_failed += 1
                    failures.append((raw, f"{recipient_event.event_id}: {outcome.mirror_error}"))
                if outcome.duplicate:
                    report.duplicates += 1
                    continue
                if outcome.changed:
                    report.changed += 1
                if outcome.late_for_reenable is not None:
                    report.late_complaints.append(recipient_event.address)
                    alerts.append(MailAlert.late_complaint(outcome, config.rules))
                    continue
                if outcome.newly_disabled:
                    report.disabled.append(recipient_event.address)
                elif outcome.newly_in_review:
                    report.review.append(recipient_event.address)
                else:
                    continue
                alerts.append(MailAlert.from_outcome(outcome, config.rules))
        try:
            count_events(settings, outcomes)
        except OpsbotError as error:
            logger.error("daily mail counters not updated (%d events uncounted): %s", len(outcomes), error)
        # Also without alerts of its own: alerts an earlier invocation could not post go out now.
        self._alert(_made_for(alerts, settings, context), report)
        report.failed_messages = sorted({raw.sqs_message_id for raw, _ in failures if raw.sqs_message_id})
        summary = {
            k: v for k, v in report.to_json().items() if k not in {"disabled", "review", "late_complaints"}
        }
        logger.info("ses feedback batch %s", json.dumps(summary, sort_keys=True))
        if any(not raw.sqs_message_id for raw, _ in failures):
            raise FeedbackNotStored(
                f"{len(failures)} of {report.events} feedback events could not be stored (Lambda retries the "
                f"batch; stored events are recognised as duplicates): {failures[0][1]}"
            )
        return report

    def _prefetch(self, notifications: list[Any]) -> dict[str, dict[str, Any] | None]:
        """Every item the batch touches, read in one go (a notification can have 50 recipients)."""
        from bot.aws.mailing import get_addresses

        events = [event for _, n in notifications for event in n.events]
        # The other spellings too: items the original handler wrote under them may need taking over.
        keys = {event.address for event in events} | {event.spelled for event in events if event.spelled}
        if not keys:
            return {}
        try:
            return get_addresses(self.settings.mailing_table, keys)
        except OpsbotError as error:
            # Each event then reads its own item (and fails on its own if AWS really is down).
            logger.warning("could not read the batch's items at once: %s", error)
            return {}

    def _alert(self, alerts: list[Any], report: BatchReport) -> None:
        from bot.aws.state import StateTable
        from bot.core.mail.alerts import deliver
        from bot.core.mail.commands import mail_config

        settings = self.settings
        if not settings.alert_channel and self._poster is None:
            if alerts:
                logger.warning(
                    "OPSBOT_ALERT_CHANNEL is not set: %d mail alerts not posted (%s)",
                    len(alerts),
                    ", ".join(a.address for a in alerts[:10]),
                )
            return
        result = deliver(
            alerts,
            state=StateTable(settings.state_table),
            poster=self.poster,
            policy=mail_config(settings).alerts,
        )
        report.alerts_posted = result.posted
        report.alerts_digested = result.digested
        report.alerts_failed = result.failed
        report.alerts_delayed = result.delayed
        report.alerts_queued = result.queued
        report.alerts_dropped = result.dropped


def _made_for(alerts: list[Any], settings: Settings, context: Any) -> list[Any]:
    """The alerts, each carrying the account and region the batch was stored in (``posting_account``):
    their buttons act there. Unchanged without OPSBOT_ACCOUNTS."""
    from dataclasses import replace

    from bot.aws.targets import posting_account

    if not alerts:
        return alerts
    found = posting_account(settings, context)
    if found is None:
        return alerts
    from bot.listeners.framework.accounts import OWN_MARK

    account, region = found
    return [replace(alert, account=account.name or OWN_MARK, region=region) for alert in alerts]


def _loggable(message: Any) -> str:
    if message is None:
        return "(none)"
    text = message if isinstance(message, str) else json.dumps(message, default=str)
    return text if len(text) <= MAX_LOGGED_MESSAGE else text[:MAX_LOGGED_MESSAGE] + "…"
