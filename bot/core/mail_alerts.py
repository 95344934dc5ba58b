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
from bot.core.mail import AlertPolicy, EventOutcome
from bot.core.mail_feedback import iso_ms, sender_address

logger = logging.getLogger("opsbot.mail")

ALERT_COUNTER = "mail:alerts"
STORM_LOCK = "mail:storm"
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
    def from_outcome(
        cls, outcome: EventOutcome, *, transient_limit: int = 0, transient_window: str = ""
    ) -> MailAlert:
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
            transient_limit=transient_limit,
            transient_window=transient_window,
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
        count = state.increment(ALERT_COUNTER, window_seconds=policy.window_seconds, by=len(alerts))
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
        _digest(
            digested, state=state, poster=poster, policy=policy, storm=storm["storm"], now=now, report=report
        )
    return report


def _current_storm(state: StateTable) -> dict[str, Any] | None:
    holder = state.get(f"lock#{STORM_LOCK}", "lock")
    return holder if holder and holder.get("storm") else None


def _start_or_extend_storm(
    state: StateTable, storm: dict[str, Any] | None, policy: AlertPolicy, now: float
) -> dict[str, Any]:
    if storm is None:
        fresh = {"storm": f"{iso_ms(int(now * 1000))}#{uuid.uuid4().hex[:8]}", "startedEpoch": now}
        taken = state.acquire_lock(STORM_LOCK, fresh, ttl_seconds=policy.storm_seconds)
        if taken.acquired:
            logger.warning("mail bounce storm %s started: alerts go to one digest message", fresh["storm"])
            return fresh
        storm = dict(taken.holder)
    kept = {k: v for k, v in storm.items() if k in {"storm", "startedEpoch"}}
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
    now: float,
    report: DispatchReport,
) -> None:
    increments, examples = _digest_counts(alerts)
    examples["startedAt"] = iso_ms(int(now * 1000))
    try:
        item = mailing.digest_add(state.name, storm, increments, examples)
        if not item.get("ts"):
            # One poster per storm: whoever takes the lock posts, the others' counts show in the next update.
            if state.acquire_lock(f"mail:digest-post:{storm}", {"at": now}, ttl_seconds=3600).acquired:
                channel, ts = poster.post_digest(digest_of_item(item, now=now))
                mailing.digest_set_message(state.name, storm, channel=channel, ts=ts, now=now)
                report.digest_posted = True
            return
        if mailing.digest_claim_update(state.name, storm, now=now, min_interval=policy.digest_update_seconds):
            latest = mailing.digest_get(state.name, storm) or item
            poster.update_digest(str(latest["channel"]), str(latest["ts"]), digest_of_item(latest, now=now))
            report.digest_updated = True
    except Exception as error:
        report.failed += len(alerts)
        report.errors.append(str(error))
        logger.error("mail storm digest %s could not be posted or updated: %s", storm, error)


__all__ = [
    "AlertPoster",
    "Digest",
    "DispatchReport",
    "MailAlert",
    "digest_of_item",
    "dispatch",
]
