"""The alarm intake Lambda: CloudWatch alarm notifications -> one Slack message per alarm episode.

``handlers/alarms.py`` builds one ``AlarmsApp`` at import (no I/O) and delegates to it; the demo's
``alarm fire`` and the tests use the same class, so they run the real path.

Input (``bot.core.alarms.parse``): SQS records carrying the SNS envelope or the raw message, SNS records,
EventBridge ``CloudWatch Alarm State Change`` events (direct or through SQS), and the schedule's
``{"opsbot_alarms": "flush"}`` (or any EventBridge ``Scheduled Event``), which only posts what waits in the
outbox. A malformed or unknown message is logged (cut to 2,000 characters) and skipped: it never fails the
batch and is never posted. An alarm whose episode could not be stored (DynamoDB failing) is named in
``batchItemFailures`` so SQS delivers it again; a post Slack did not take is not a failure of the record:
it waits in the outbox, which the next invocation and the schedule flush.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from bot.config import Settings
from bot.intake.batch import IntakeApp

logger = logging.getLogger("opsbot.alarms")

MAX_LOGGED_MESSAGE = 2000


class AlarmsNotStored(Exception):
    """Some alarms' episodes could not be stored; raising makes Lambda retry the event."""


class SlackAlarmPoster:
    """Posts, updates and threads alarm messages through the Slack Web API."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Any = None
        # The account the intake function runs in (its Lambda ARN), "" when not known (the demo, a test).
        self.running_account = ""

    @property
    def client(self) -> Any:
        if self._client is None:
            from bot.slack_web import web_client

            self._client = web_client(self.settings)
        return self._client

    def episode(self, view: Any) -> tuple[str, list[dict[str, Any]]]:
        """The episode's message; with OPSBOT_ACCOUNTS, its buttons carry the alarm's account and region,
        so Look up and Errors since read where the alarm is, whatever account the channel is bound to
        (and a click is authorized again for that account); with several accounts it ends with the line
        naming them, as every reply and the SES alerts do (docs/accounts.md)."""
        from bot.render.alarms import episode_message

        text, blocks = episode_message(view)
        alarm = view.alarm
        accounts = self.settings.accounts()
        if not accounts.configured:
            return text, blocks
        from bot.listeners.framework.accounts import wrap_buttons
        from bot.render.blocks import context

        region = alarm.region or self.settings.region
        entry = next(
            (a for a in accounts.entries if a.name and alarm.account and a.account_id == alarm.account), None
        )
        if entry is not None:
            blocks = wrap_buttons(blocks, entry.name, region) or blocks
        else:
            # No entry has a role in the alarm's account: the click follows the channel's account. The
            # values are wrapped all the same (with no account), so that one made of the alarm's own
            # data (its ARN) is never read as carrying an account (docs/accounts.md).
            blocks = wrap_buttons(blocks, "", "") or blocks
        if alarm.account and accounts.several and len(blocks) < 50:
            blocks = [*blocks, context(self._account_line(entry, alarm.account, region))]
        return text, blocks

    def _account_line(self, entry: Any, account_id: str, region: str) -> str:
        """The alarm's account: the entry with a role there, else opsbot's own (where the correlation ran),
        unless the function knows it runs in another account than the alarm's."""
        from bot.core.common.accounts import OWN_ACCOUNT
        from bot.listeners.framework.accounts import describe

        if entry is not None:
            return describe(entry, region)
        if self.running_account and account_id != self.running_account:
            return (
                f":cloud: Account {account_id} (no entry of OPSBOT_ACCOUNTS has a role there) · "
                f"region `{region}`"
            )
        own = next((a for a in self.settings.accounts().entries if a.own), OWN_ACCOUNT)
        return describe(own, region, account_id=account_id)

    def post_episode(self, channel: str, view: Any) -> str:
        text, blocks = self.episode(view)
        answer = self.client.chat_postMessage(channel=channel, text=text, blocks=blocks, unfurl_links=False)
        return str(answer["ts"])

    def update_episode(self, channel: str, ts: str, view: Any) -> None:
        text, blocks = self.episode(view)
        self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)

    def reply(self, channel: str, ts: str, text: str) -> None:
        self.client.chat_postMessage(channel=channel, thread_ts=ts, text=text, unfurl_links=False)

    def upload_graph(self, channel: str, ts: str, png: bytes, title: str) -> None:
        self.client.files_upload_v2(
            channel=channel, thread_ts=ts, filename="alarm.png", title=title[:250], content=png
        )

    def post_digest(self, channel: str, digest: Any) -> str:
        from bot.render.alarms import digest_message

        text, blocks = digest_message(digest)
        return str(self.client.chat_postMessage(channel=channel, text=text, blocks=blocks)["ts"])

    def update_digest(self, channel: str, ts: str, digest: Any) -> None:
        from bot.render.alarms import digest_message

        text, blocks = digest_message(digest)
        self.client.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)


class AlarmsApp(IntakeApp):
    """Callable Lambda handler for alarm notifications in any envelope."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        poster: Any = None,
        find_errors: Any = None,
        graph: Any = "default",
    ) -> None:
        super().__init__(settings, poster=poster)
        self.find_errors = find_errors
        self._graph = graph

    def make_poster(self, settings: Settings) -> Any:
        return SlackAlarmPoster(settings)

    def handle(self, event: Any, context: Any = None) -> Any:
        from bot.core.alarms.delivery import AlarmDelivery, AlarmReport, draw_graph
        from bot.core.alarms.parse import parse_batch

        report = AlarmReport()
        if context is not None and hasattr(self.poster, "running_account"):
            from bot.observability import account_of

            self.poster.running_account = account_of(getattr(context, "invoked_function_arn", ""))
        parsed = parse_batch(event)
        for raw, reason in parsed.malformed:
            report.malformed += 1
            logger.warning(
                "skipping alarm record %s: %s; message: %s", raw.label(), reason, _loggable(raw.message)
            )
        graph = draw_graph if self._graph == "default" else self._graph
        delivery = AlarmDelivery(self.settings, self.poster, find_errors=self.find_errors, graph=graph)
        delivery.deliver([(raw.sqs_message_id, alarm) for raw, alarm in parsed.alarms], report)
        summary = {k: v for k, v in report.to_json().items() if k not in {"errors"}}
        logger.info("alarm batch %s", json.dumps(summary, sort_keys=True))
        if "" in report.failed_messages:
            # Not from SQS (an SNS subscription, EventBridge): raising makes Lambda retry the event; alarms
            # already stored are then recognised as duplicates.
            raise AlarmsNotStored(
                f"the episode of {report.failed_messages.count('')} alarms could not be stored"
            )
        report.failed_messages = [m for m in report.failed_messages if m]
        return report


def _loggable(message: Any) -> str:
    if message is None:
        return "(none)"
    text = message if isinstance(message, str) else json.dumps(message, default=str)
    return text if len(text) <= MAX_LOGGED_MESSAGE else text[:MAX_LOGGED_MESSAGE] + "…"
