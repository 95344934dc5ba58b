"""Alerts for new disables, and the bounce-storm guard.

Each newly disabled (or newly flagged) address is one ``MailAlert``. Normally each is posted on its own.
When more than ``threshold`` alerts would go out within a minute (counted across concurrent Lambda
invocations in the state table), a *storm* starts: one digest message is posted and then updated with the
counts (by type, by sender, top diagnostics) instead of flooding the channel. The storm ends
``storm_seconds`` after the last minute that went over the threshold.

Posting is done by an ``AlertPoster`` (the Slack one is in ``bot.intake.ses_feedback``); this module only
decides what to post and keeps the counters. It never raises: the table updates the alerts are about are
already stored.

A failed post does not lose the alert (``deliver``): alerts Slack did not take, and digests it did not
show, wait in the state table's outbox (``bot.aws.mailing``) and go out at the next invocation, before
that invocation's own alerts. Only one invocation at a time flushes the outbox (a lease), and each entry is
removed as soon as it is posted, so none is posted twice. Entries are kept for a day; what is given up then
(or does not fit in the outbox) is counted and reported in the channel once Slack is back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Protocol

from bot.aws import mailing
from bot.aws.state import StateTable
from bot.core.mail.commands import AlertPolicy, EventOutcome, window_text
from bot.core.mail.feedback import MalformedRecord, iso_ms, parse_timestamp, sender_address
from bot.core.mail.state import MailRules
from bot.errors import OpsbotError

logger = logging.getLogger("opsbot.mail")

STORM_LOCK = "mail:storm"
# How long past the throttle interval an invocation waits for its counts to be shown.
DIGEST_WAIT_SECONDS = 3.0
# Whoever posts the digest holds this long to do it; if it dies first, another invocation posts.
POST_LOCK_SECONDS = 60
_STATUS_CODE = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
MAX_KEY = 200

# The outbox: entries are kept this long; the flush lease outlasts the function's timeout (60 s), so a
# live flusher never loses it to another invocation.
OUTBOX_KEEP_SECONDS = 86400
OUTBOX_LEASE_SECONDS = 180
# Alerts waiting at most (about 1 KB each; concurrent invocations may overshoot by their own few). The
# storm guard already limits how many single alerts a minute can produce.
MAX_OUTBOX_ALERTS = 150
MAX_OUTBOX_DIAGNOSTIC = 1000
# Slack refused the message itself: posting it again would fail again. Any other failure (no connection,
# time-out, rate limit, server error, channel or token problem) is taken as Slack being unavailable: the
# rest is not tried in this invocation and waits in the outbox.
MESSAGE_REFUSED = frozenset(
    {"invalid_blocks", "invalid_blocks_format", "msg_too_long", "no_text", "too_many_attachments"}
)


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
    # kind "late-complaint": the person's re-enable the complaint predates (who, when).
    reenabled_by: str = ""
    reenabled_at: str = ""
    # Set when the alert is posted from the outbox: when its first post failed.
    queued_at: str = ""
    # With OPSBOT_ACCOUNTS: the account its buttons act on (the name in OPSBOT_ACCOUNTS, "-" for opsbot's
    # own unnamed account) and its region, those of the feedback function's work. Kept in the outbox, so an
    # alert posted late by another invocation still goes to its own account. "": the channel's account.
    account: str = ""
    region: str = ""

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

    @classmethod
    def late_complaint(cls, outcome: EventOutcome, rules: MailRules) -> MailAlert:
        """A complaint older than a person's re-enable: the state stays as the rules say (enabled), but
        someone should look before mailing the address again (it may be a redriven, late delivery)."""
        reenable = outcome.late_for_reenable
        alert = cls.from_outcome(outcome, rules)
        return cls(
            **{
                **asdict(alert),
                "kind": "late-complaint",
                "reenabled_by": reenable.get("by") if reenable is not None else "",
                "reenabled_at": iso_ms(reenable.at) if reenable is not None else "",
            }
        )

    @property
    def alert_id(self) -> str:
        """Stable per alert: the same alert queued twice is one outbox entry."""
        key = "\n".join((self.address, self.kind, self.at, self.message_id, self.reenabled_at))
        return hashlib.sha256(key.encode()).hexdigest()[:20]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["diagnostic"] = self.diagnostic[:MAX_OUTBOX_DIAGNOSTIC]
        return {k: v for k, v in data.items() if v not in ("", 0, False)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MailAlert:
        known = {f.name for f in fields(cls)}
        kept = {k: v for k, v in data.items() if k in known}
        if not isinstance(kept.get("address"), str) or not isinstance(kept.get("kind"), str):
            raise ValueError("an alert needs an address and a kind")
        return cls(**{"at": "", **kept})

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
    addresses: list[str] = field(default_factory=list)  # the first ones, in the order they came
    list_since: str = ""  # a ``/mail list --since`` that covers every address of the storm


# Items are written before their alerts are counted, by invocations that run at most a minute (the
# function's timeout): changed at most that long before the storm (or the outbox entry) began.
LIST_MARGIN_SECONDS = 120


def list_since(at: float) -> str:
    """A ``--since`` for ``/mail list`` covering entries changed for alerts counted from ``at`` on."""
    minute = int(at - LIST_MARGIN_SECONDS) // 60 * 60
    return iso_ms(minute * 1000)[:16] + "Z"


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
        addresses=list(dict.fromkeys(str(a) for a in item.get("addresses") or [])),
        list_since=_list_since_text(str(item.get("startedAt", ""))),
    )


def _list_since_text(started: str) -> str:
    try:
        return list_since(parse_timestamp(started) / 1000) if started else ""
    except MalformedRecord:
        return ""


class AlertPoster(Protocol):
    def post_alert(self, alert: MailAlert) -> None: ...

    def post_digest(self, digest: Digest) -> tuple[str, str]:
        """Post the digest; returns (channel id, message ts)."""
        ...

    def update_digest(self, channel: str, ts: str, digest: Digest) -> None: ...

    def post_notice(self, text: str) -> None:
        """A plain message to the alert channel (alerts that were given up)."""
        ...


@dataclass
class DispatchReport:
    posted: int = 0
    digested: int = 0
    failed: int = 0
    storm: str = ""
    digest_posted: bool = False
    digest_updated: bool = False
    errors: list[str] = field(default_factory=list)
    # Not posted because Slack was unavailable (worth posting later), and refused by Slack for good.
    unposted: list[MailAlert] = field(default_factory=list)
    refused: list[MailAlert] = field(default_factory=list)
    # Storms whose digest message does not show (all) their counts yet.
    digests_unshown: list[str] = field(default_factory=list)
    slack_down: bool = False


def refused_by_slack(error: BaseException) -> bool:
    """Whether Slack refused this message itself (as opposed to being unavailable)."""
    response = getattr(error, "response", None)
    try:
        code = response.get("error") if response is not None else None
    except (AttributeError, TypeError):
        return False
    return code in MESSAGE_REFUSED


def dispatch(
    alerts: Sequence[MailAlert],
    *,
    state: StateTable,
    poster: AlertPoster,
    policy: AlertPolicy,
    now: float | None = None,
    on_done: Callable[[MailAlert], None] | None = None,
) -> DispatchReport:
    """Post ``alerts`` one by one, or into the storm digest. Never raises.

    ``on_done`` is called for each alert once it is posted, or counted into the digest. After the first
    failure that looks like Slack being unavailable, the remaining alerts are not tried (they are
    ``unposted``; waiting on a time-out for each would only risk the function's own time-out).
    """
    report = DispatchReport()

    def done(alert: MailAlert) -> None:
        if on_done is not None:
            try:
                on_done(alert)
            except Exception as error:  # the callback's own failures are its to log
                logger.error("mail alert bookkeeping for %s failed: %s", alert.address, error)

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
        if report.slack_down:
            report.failed += 1
            report.unposted.append(alert)
            continue
        try:
            poster.post_alert(alert)
        except Exception as error:
            report.failed += 1
            report.errors.append(str(error))
            if refused_by_slack(error):
                report.refused.append(alert)
                logger.error("mail alert for %s was refused by Slack: %s", alert.address, error)
            else:
                report.slack_down = True
                report.unposted.append(alert)
                logger.error("mail alert for %s could not be posted: %s", alert.address, error)
            continue
        report.posted += 1
        done(alert)
    if digested and storm is not None:
        report.storm = storm["storm"]
        report.digested = len(digested)
        _digest(
            digested,
            state=state,
            poster=poster,
            policy=policy,
            storm=storm["storm"],
            report=report,
            done=done,
        )
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
    done: Callable[[MailAlert], None],
) -> None:
    increments, examples = _digest_counts(alerts)
    examples["startedAt"] = iso_ms(int(time.time() * 1000))
    try:
        item = mailing.digest_add(state.name, storm, increments, examples, [a.address for a in alerts])
    except Exception as error:
        # Not even counted: the alerts themselves are worth another try.
        report.failed += len(alerts)
        report.errors.append(str(error))
        report.unposted.extend(alerts)
        logger.error("mail storm digest %s could not be updated: %s", storm, error)
        return
    for alert in alerts:
        done(alert)  # counted: from here on the digest message is what remains to be shown
    if report.slack_down:
        report.failed += len(alerts)
        report.errors.append(f"storm digest {storm} not shown: {report.errors[0] if report.errors else ''}")
        report.digests_unshown.append(storm)
        return
    try:
        shown = _show_digest(
            item, int(item["version"]), state=state, poster=poster, policy=policy, report=report
        )
    except Exception as error:
        report.failed += len(alerts)
        report.errors.append(str(error))
        report.digests_unshown.append(storm)
        report.slack_down = report.slack_down or not refused_by_slack(error)
        logger.error("mail storm digest %s could not be posted or updated: %s", storm, error)
        return
    if not shown:
        report.digests_unshown.append(storm)


def _show_digest(
    item: dict[str, Any],
    mine: int,
    *,
    state: StateTable,
    poster: AlertPoster,
    policy: AlertPolicy,
    report: DispatchReport,
) -> bool:
    """Make the digest message show at least version ``mine`` of the counts; False when it gave up waiting.

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
            lock = f"mail:digest-post:{storm}"
            if state.acquire_lock(lock, {"at": now}, ttl_seconds=POST_LOCK_SECONDS).acquired:
                latest = mailing.digest_get(state.name, storm) or item
                try:
                    channel, ts = poster.post_digest(digest_of_item(latest, now=now))
                except Exception:
                    # Let the next try (this storm's next batch, or the outbox) post at once. An expired
                    # lock rather than a deleted one: the feedback function may not DeleteItem.
                    state.update_lock(lock, {"at": now}, ttl_seconds=0)
                    raise
                mailing.digest_set_message(
                    state.name, storm, channel=channel, ts=ts, now=time.time(), shown=int(latest["version"])
                )
                report.digest_posted = True
                return True
            pause = 0.1
        elif int(item.get("shown", 0)) >= mine:
            return True
        elif mailing.digest_claim_update(
            state.name, storm, now=now, min_interval=policy.digest_update_seconds
        ):
            latest = mailing.digest_get(state.name, storm) or item
            poster.update_digest(str(latest["channel"]), str(latest["ts"]), digest_of_item(latest, now=now))
            mailing.digest_mark_shown(state.name, storm, int(latest["version"]))
            report.digest_updated = True
            return True
        else:
            pause = float(item.get("lastUpdate", now)) + policy.digest_update_seconds - now
        if time.monotonic() + max(pause, 0) > deadline:
            logger.warning("mail storm digest %s: gave up waiting to show version %d", storm, mine)
            return False
        time.sleep(max(0.02, pause))
        item = mailing.digest_get(state.name, storm) or item


# -- the outbox: alerts that could not be posted yet -----------------------------------------------


@dataclass
class DeliveryReport:
    posted: int = 0  # posted on their own (delayed ones included)
    digested: int = 0  # counted into a storm digest (delayed ones included)
    failed: int = 0  # posts that failed (the alerts are queued unless refused or over the limit)
    delayed: int = 0  # alerts from the outbox posted or digested now
    queued: int = 0  # alerts put in the outbox for a later invocation
    dropped: int = 0  # alerts given up: refused by Slack, outbox full, or waited a day
    pending: int = 0  # alerts found waiting in the outbox
    errors: list[str] = field(default_factory=list)


def deliver(
    alerts: Sequence[MailAlert],
    *,
    state: StateTable,
    poster: AlertPoster,
    policy: AlertPolicy,
    now: float | None = None,
) -> DeliveryReport:
    """Post what waits in the outbox, then ``alerts``; keep whatever Slack did not take. Never raises.

    Costs one GetItem when the outbox is empty (whether or not there are alerts).
    """
    now = time.time() if now is None else now
    report = DeliveryReport()
    owner = uuid.uuid4().hex
    box = _read_outbox(state, now)
    waiting = _entries(box) if box is not None else _Entries()
    report.pending = len(waiting.alerts)
    leased = False
    if waiting.alerts or waiting.digests or waiting.broken or waiting.dropped > 0:
        try:
            leased = mailing.outbox_take_lease(state.name, owner, now=now, seconds=OUTBOX_LEASE_SECONDS)
        except OpsbotError as error:
            logger.error("mail alert outbox not flushed: %s", error.message)
    try:
        _deliver(alerts, waiting if leased else _Entries(), state=state, poster=poster, policy=policy,
                 now=now, report=report, waiting_count=len(waiting.alerts))  # fmt: skip
    except Exception as error:
        # The table updates are stored whatever happens here; failing the batch would only make its retry
        # find duplicates, which alert nobody.
        logger.exception("mail alerts: delivery failed part-way: %s", error)
        report.errors.append(str(error))
    finally:
        if leased:
            try:
                mailing.outbox_release_lease(state.name, owner)
            except OpsbotError as error:
                # It expires by itself; until then nobody else flushes.
                logger.warning("mail alert outbox lease not released: %s", error.message)
    return report


@dataclass
class _Entries:
    alerts: list[tuple[str, MailAlert, float]] = field(default_factory=list)  # (attribute, alert, queued)
    digests: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)  # attributes that cannot be read back
    dropped: int = 0
    dropped_since: str = ""


def _read_outbox(state: StateTable, now: float) -> dict[str, Any] | None:
    try:
        return mailing.outbox_get(state.name, now=now)
    except OpsbotError as error:
        # New alerts still go out; what waits goes out with a later invocation.
        logger.error("mail alert outbox not read: %s", error.message)
        return None


def _entries(box: Mapping[str, Any]) -> _Entries:
    found = _Entries(dropped=int(box.get("dropped") or 0), dropped_since=str(box.get("droppedSince") or ""))
    for name, value in box.items():
        if name.startswith(mailing.OUTBOX_DIGEST_PREFIX):
            found.digests.append(name[len(mailing.OUTBOX_DIGEST_PREFIX) :])
        elif name.startswith(mailing.OUTBOX_ALERT_PREFIX):
            try:
                entry = json.loads(str(value))
                # Alerts queued together keep their order (``n``) within the same ``queuedAt``.
                queued = float(entry["queuedAt"]) + int(entry.get("n", 0)) * 1e-6
                found.alerts.append((name, MailAlert.from_json(entry["alert"]), queued))
            except (ValueError, KeyError, TypeError) as error:
                logger.error("unreadable mail alert outbox entry %s (%s): %s", name, error, str(value)[:500])
                found.broken.append(name)
    found.alerts.sort(key=lambda entry: (entry[2], entry[0]))  # oldest first
    return found


def _entry(alert: MailAlert, *, queued_at: float, number: int, error: str) -> str:
    return json.dumps(
        {"alert": alert.to_json(), "queuedAt": queued_at, "n": number, "error": error[:300]},
        separators=(",", ":"),
        ensure_ascii=False,
    )


def _deliver(
    alerts: Sequence[MailAlert],
    waiting: _Entries,
    *,
    state: StateTable,
    poster: AlertPoster,
    policy: AlertPolicy,
    now: float,
    report: DeliveryReport,
    waiting_count: int,
) -> None:
    """The work of ``deliver``; ``waiting`` holds what this invocation flushes (empty without the lease)."""
    cutoff = now - OUTBOX_KEEP_SECONDS
    expired = [(name, alert) for name, alert, queued in waiting.alerts if queued <= cutoff]
    for _, alert in expired:
        logger.error("mail alert for %s given up: not posted within a day (Slack unavailable)", alert.address)
    # Waiting alerts go first; each is known by its object (``id``) to remove its entry once posted.
    delayed_alerts: list[MailAlert] = []
    flushing: dict[int, str] = {}
    for name, alert, queued in waiting.alerts:
        if queued > cutoff:
            delayed = _delayed(alert, queued)
            flushing[id(delayed)] = name
            delayed_alerts.append(delayed)
    gone = [name for name, _ in expired] + waiting.broken
    if gone:
        _remove(state, gone)

    def posted(alert: MailAlert) -> None:
        name = flushing.get(id(alert))
        if name is None:
            return
        report.delayed += 1
        try:
            mailing.outbox_remove(state.name, [name])
        except OpsbotError as error:
            logger.error(
                "mail alert for %s was posted but is still in the outbox (it may be posted again): %s",
                alert.address,
                error.message,
            )

    result = dispatch(
        [*delayed_alerts, *alerts], state=state, poster=poster, policy=policy, now=now, on_done=posted
    )
    report.posted, report.digested, report.failed = result.posted, result.digested, result.failed
    report.errors.extend(result.errors)
    slack_down = result.slack_down

    # Refused for good: taken out of the outbox (or never put in), counted as given up.
    refused_waiting = [flushing[id(a)] for a in result.refused if id(a) in flushing]
    if refused_waiting:
        _remove(state, refused_waiting)
    given_up = len(expired) + len(result.refused)

    # Digests whose message did not show their counts (this invocation's, and those that waited).
    unshown = list(result.digests_unshown)
    for storm in waiting.digests:
        if slack_down:
            break
        try:
            item = mailing.digest_get(state.name, storm)
            if item is not None and not _show_digest(
                item, int(item.get("version", 0)), state=state, poster=poster, policy=policy,
                report=DispatchReport(),
            ):  # fmt: skip
                continue
        except Exception as error:
            report.errors.append(str(error))
            slack_down = not refused_by_slack(error)
            logger.error("mail storm digest %s still not shown: %s", storm, error)
            continue
        _remove(state, [mailing.OUTBOX_DIGEST_PREFIX + storm])

    # What was given up before, and now: said in the channel once Slack takes messages again.
    reported = 0
    # The notice's ``/mail list --since`` must reach back to the oldest alert given up.
    earliest = min([now, *(queued for _, _, queued in waiting.alerts if queued <= cutoff)])
    if not slack_down and (waiting.dropped > 0 or given_up):
        total = waiting.dropped + given_up
        since = min(filter(None, [waiting.dropped_since, list_since(earliest)]))
        noticed = False
        try:
            poster.post_notice(dropped_notice(total, since))
            reported, noticed = given_up, True
        except Exception as error:
            report.errors.append(str(error))
            logger.error("the notice of %d mail alerts given up could not be posted: %s", total, error)
        if noticed and waiting.dropped > 0:
            try:
                mailing.outbox_reported_dropped(state.name, waiting.dropped)
            except OpsbotError as error:
                logger.error("mail alerts given up were reported, but still counted: %s", error.message)

    # Keep what Slack did not take (this invocation's alerts; those from the outbox are still there).
    fresh = [a for a in result.unposted if id(a) not in flushing]
    room = max(0, MAX_OUTBOX_ALERTS - waiting_count)
    kept, over = fresh[:room], fresh[room:]
    reason = result.errors[0] if result.errors else "not posted"
    entries = {
        mailing.OUTBOX_ALERT_PREFIX + alert.alert_id: _entry(alert, queued_at=now, number=n, error=reason)
        for n, alert in enumerate(kept)
    }
    entries |= {mailing.OUTBOX_DIGEST_PREFIX + storm: json.dumps({"queuedAt": now}) for storm in unshown}
    if entries:
        try:
            mailing.outbox_add(state.name, entries, now=now)
            report.queued = len(kept)
            if kept:
                logger.warning("%d mail alerts kept in the outbox for the next invocation", len(kept))
        except OpsbotError as error:
            logger.error(
                "%d mail alerts lost: neither posted nor kept (%s): %s",
                len(kept),
                error.message,
                ", ".join(a.address for a in kept[:20]),
            )
            given_up += len(kept)
    for alert in over:
        logger.error("mail alert for %s given up: the outbox is full", alert.address)
    given_up += len(over)
    report.dropped = given_up
    unreported = given_up - reported
    if unreported > 0:
        try:
            mailing.outbox_add_dropped(state.name, unreported, since=list_since(earliest), now=now)
        except OpsbotError as error:
            logger.error("%d mail alerts given up and not counted: %s", unreported, error.message)


def _delayed(alert: MailAlert, queued: float) -> MailAlert:
    return MailAlert(**{**asdict(alert), "queued_at": iso_ms(int(queued * 1000))})


def _remove(state: StateTable, names: Sequence[str]) -> None:
    try:
        mailing.outbox_remove(state.name, names)
    except OpsbotError as error:
        logger.error("mail alert outbox entries not removed (%s): %s", ", ".join(names[:5]), error.message)


def dropped_notice(count: int, since: str) -> str:
    alerts = "alert was" if count == 1 else "alerts were"
    return (
        f"{count:,} mail {alerts} not posted (Slack was unavailable for more than a day, refused the "
        f"message, or too many were waiting) since {since}. `/mail list --state disable --since {since}` "
        f"and `/mail list --state review --since {since}` list the addresses."
    )


__all__ = [
    "AlertPoster",
    "DeliveryReport",
    "Digest",
    "DispatchReport",
    "MailAlert",
    "deliver",
    "digest_of_item",
    "dispatch",
    "dropped_notice",
]
