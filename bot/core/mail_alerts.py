"""Alerts for new disables, and the bounce-storm guard.

Each newly disabled (or newly flagged) address is one ``MailAlert``. Normally each is posted on its own.
When more than ``threshold`` alerts would go out within a minute (counted across concurrent Lambda
invocations in the state table), a *storm* starts: one digest message is posted and then updated with the
counts (by type, by sender, top diagnostics) instead of flooding the channel. The storm ends
``storm_seconds`` after the last minute that went over the threshold.

Posting is done by an ``AlertPoster`` (the Slack one is in ``bot.mail_feedback_app``); this module only
decides what to post and keeps the counters. It never raises: the table updates the alerts are about are
already stored, and a lost alert is logged.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.aws import mailing
from bot.aws.state import StateTable
from bot.core.mail import AlertPolicy, EventOutcome, window_text
from bot.core.mail_feedback import iso_ms, sender_address
from bot.core.mail_state import MailRules

logger = logging.getLogger("opsbot.mail")

STORM_LOCK = "mail:storm"
# How long past the throttle interval an invocation waits for its counts to be shown.
DIGEST_WAIT_SECONDS = 3.0
# Whoever posts the digest holds this long to do it; if it dies first, another invocation posts.
POST_LOCK_SECONDS = 60
_STATUS_CODE = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
MAX_KEY = 200


@dataclass(frozen=True)
class MailAlert:
    address: str
    kind: str  # permanent-bounce | complaint | transient-bounces | review
    at: str  # event time, ISO
    notification_type: str = ""
    bounce_type: str = ""
    bounce_subtype: str = ""
    diagnostic: str = ""
    status: str = ""
    feedback_type: str = ""
    sender: str = ""
    message_id: str = ""
    transient_count: int = 0
    transient_limit: int = 0
    transient_window: str = ""
    sticky: bool = False

    @classmethod
    def from_outcome(cls, outcome: EventOutcome, rules: MailRules) -> MailAlert:
        event = outcome.event
        after = outcome.after
        kind = after.reason if outcome.newly_disabled else "review"
        return cls(
            address=event.address,
            kind=kind,
            at=iso_ms(event.at_ms),
            notification_type=event.notification_type,
            bounce_type=event.bounce_type,
            bounce_subtype=event.bounce_subtype,
            diagnostic=event.diagnostic if event.kind == "bounce" else "",
            status=event.status,
            feedback_type=event.feedback_type,
            sender=event.source,
            message_id=event.message_id,
            transient_count=after.transient_count,
            transient_limit=rules.transient_limit,
            transient_window=window_text(rules),
            sticky=after.sticky,
        )

    @property
    def type_label(self) -> str:
        """``Permanent/General``, ``Complaint/abuse``, ``Transient/MailboxFull``, ``Undetermined``."""
        if self.notification_type == "Complaint":
            return f"Complaint/{self.feedback_type or 'unspecified'}"
        if self.bounce_type:
            subtype = (
                self.bounce_subtype if self.bounce_subtype and self.bounce_subtype != self.bounce_type else ""
            )
            return f"{self.bounce_type}/{subtype}" if subtype else self.bounce_type
        return self.notification_type or self.kind

    @property
    def diagnostic_code(self) -> str:
        """The enhanced status code the diagnostics are grouped by (bounded, unlike their text)."""
        if self.status:
            return self.status[:32]
        found = _STATUS_CODE.search(self.diagnostic)
        if found:
            return found.group(1)
        return "no DSN" if self.notification_type == "Bounce" else ""


@dataclass(frozen=True)
class Digest:
    storm: str
    started_at: str
    updated_at: str
    total: int
    by_type: dict[str, int]
    by_sender: dict[str, int]
    by_diagnostic: dict[str, int]
    examples: dict[str, str]  # diagnostic code -> one diagnostic text


def digest_of_item(item: Mapping[str, Any], *, now: float) -> Digest:
    def group(prefix: str) -> dict[str, int]:
        return {
            k[len(prefix) :]: int(v) for k, v in item.items() if k.startswith(prefix) and isinstance(v, int)
        }

    return Digest(
        storm=str(item.get("sk", "")),
        started_at=str(item.get("startedAt", "")),
        updated_at=iso_ms(int(now * 1000)),
        total=int(item.get("total", 0)),
        by_type=group("type:"),
        by_sender=group("sender:"),
        by_diagnostic=group("diag:"),
        examples={k[len("example:") :]: str(v) for k, v in item.items() if k.startswith("example:")},
    )


class AlertPoster(Protocol):
    def post_alert(self, alert: MailAlert) -> None: ...

    def post_digest(self, digest: Digest) -> tuple[str, str]:
        """Post the digest; returns (channel id, message ts)."""
        ...

    def update_digest(self, channel: str, ts: str, digest: Digest) -> None: ...


@dataclass
class DispatchReport:
    posted: int = 0
    digested: int = 0
    failed: int = 0
    storm: str = ""
    digest_posted: bool = False
    digest_updated: bool = False
    errors: list[str] = field(default_factory=list)


def dispatch(
    alerts: Sequence[MailAlert],
    *,
    state: StateTable,
    poster: AlertPoster,
    policy: AlertPolicy,
    now: float | None = None,
) -> DispatchReport:
    """Post ``alerts`` one by one, or into the storm digest. Never raises."""
    report = DispatchReport()
    if not alerts:
        return report
    now = time.time() if now is None else now
    try:
        count = mailing.count_alerts(state.name, len(alerts), window_seconds=policy.window_seconds, now=now)
        running = _current_storm(state)
        storm = running
        if count > policy.threshold:
            storm = _start_or_extend_storm(state, running, policy, now)
    except Exception as error:
        # Without the counters there is no storm guard; alerting one by one beats not alerting.
        logger.error(
            "mail alert counters unavailable (%s); posting %d alerts individually", error, len(alerts)
        )
        count, running, storm = 0, None, None
    first_number = count - len(alerts) + 1
    individual: list[MailAlert] = []
    digested: list[MailAlert] = []
    for offset, alert in enumerate(alerts):
        # During a storm everything goes to the digest; otherwise only what is over the threshold.
        if storm is None or (running is None and first_number + offset <= policy.threshold):
            individual.append(alert)
        else:
            digested.append(alert)
    for alert in individual:
        try:
            poster.post_alert(alert)
            report.posted += 1
        except Exception as error:
            report.failed += 1
            report.errors.append(str(error))
            logger.error("mail alert for %s could not be posted: %s", alert.address, error)
    if digested and storm is not None:
        report.storm = storm["storm"]
        report.digested = len(digested)
        _digest(digested, state=state, poster=poster, policy=policy, storm=storm["storm"], report=report)
    return report


def _current_storm(state: StateTable) -> dict[str, Any] | None:
    holder = state.get(f"lock#{STORM_LOCK}", "lock")
    return holder if holder and holder.get("storm") else None


def _start_or_extend_storm(
    state: StateTable, storm: dict[str, Any] | None, policy: AlertPolicy, now: float
) -> dict[str, Any]:
    fresh = {"storm": f"{iso_ms(int(now * 1000))}#{uuid.uuid4().hex[:8]}", "startedEpoch": now}
    # Twice: the storm seen a moment ago may have ended between taking the lock and reading its holder.
    for _ in range(2):
        if storm is not None:
            break
        taken = state.acquire_lock(STORM_LOCK, fresh, ttl_seconds=policy.storm_seconds)
        if taken.acquired:
            logger.warning("mail bounce storm %s started: alerts go to one digest message", fresh["storm"])
            return fresh
        storm = dict(taken.holder) if taken.holder.get("storm") else None
    kept = {k: v for k, v in (storm or fresh).items() if k in {"storm", "startedEpoch"}}
    state.update_lock(STORM_LOCK, kept, ttl_seconds=policy.storm_seconds)
    return kept


def _digest_counts(alerts: Sequence[MailAlert]) -> tuple[dict[str, int], dict[str, str]]:
    increments: dict[str, int] = {"total": 0}
    examples: dict[str, str] = {}
    for alert in alerts:
        increments["total"] += 1
        for key in (f"type:{alert.type_label}", f"sender:{sender_address(alert.sender) or 'unknown'}"):
            key = key[:MAX_KEY]
            increments[key] = increments.get(key, 0) + 1
        code = alert.diagnostic_code
        if code:
            increments[f"diag:{code}"] = increments.get(f"diag:{code}", 0) + 1
            if alert.diagnostic:
                examples.setdefault(f"example:{code}", alert.diagnostic[:300])
    return increments, examples


def _digest(
    alerts: Sequence[MailAlert],
    *,
    state: StateTable,
    poster: AlertPoster,
    policy: AlertPolicy,
    storm: str,
    report: DispatchReport,
) -> None:
    increments, examples = _digest_counts(alerts)
    examples["startedAt"] = iso_ms(int(time.time() * 1000))
    try:
        item = mailing.digest_add(state.name, storm, increments, examples)
        _show_digest(item, int(item["version"]), state=state, poster=poster, policy=policy, report=report)
    except Exception as error:
        report.failed += len(alerts)
        report.errors.append(str(error))
        logger.error("mail storm digest %s could not be posted or updated: %s", storm, error)


def _show_digest(
    item: dict[str, Any],
    mine: int,
    *,
    state: StateTable,
    poster: AlertPoster,
    policy: AlertPolicy,
    report: DispatchReport,
) -> None:
    """Make the digest message show at least version ``mine`` of the counts.

    One invocation posts the message; after that updates are throttled to one per
    ``digest_update_seconds``. An invocation whose counts are not shown yet waits for its turn rather than
    leaving them out: otherwise the last counts of a storm would never reach the channel.
    """
    storm = str(item["sk"])
    deadline = time.monotonic() + 2 * policy.digest_update_seconds + DIGEST_WAIT_SECONDS
    while True:
        now = time.time()
        if not item.get("ts"):
            # One poster per storm; the others wait for its message, then update it if it lacks their counts.
            if state.acquire_lock(
                f"mail:digest-post:{storm}", {"at": now}, ttl_seconds=POST_LOCK_SECONDS
            ).acquired:
                latest = mailing.digest_get(state.name, storm) or item
                channel, ts = poster.post_digest(digest_of_item(latest, now=now))
                mailing.digest_set_message(
                    state.name, storm, channel=channel, ts=ts, now=time.time(), shown=int(latest["version"])
                )
                report.digest_posted = True
                return
            pause = 0.1
        elif int(item.get("shown", 0)) >= mine:
            return
        elif mailing.digest_claim_update(
            state.name, storm, now=now, min_interval=policy.digest_update_seconds
        ):
            latest = mailing.digest_get(state.name, storm) or item
            poster.update_digest(str(latest["channel"]), str(latest["ts"]), digest_of_item(latest, now=now))
            mailing.digest_mark_shown(state.name, storm, int(latest["version"]))
            report.digest_updated = True
            return
        else:
            pause = float(item.get("lastUpdate", now)) + policy.digest_update_seconds - now
        if time.monotonic() + max(pause, 0) > deadline:
            logger.warning("mail storm digest %s: gave up waiting to show version %d", storm, mine)
            return
        time.sleep(max(0.02, pause))
        item = mailing.digest_get(state.name, storm) or item


__all__ = [
    "AlertPoster",
    "Digest",
    "DispatchReport",
    "MailAlert",
    "digest_of_item",
    "dispatch",
]
