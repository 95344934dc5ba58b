"""The alarm intake's work: episodes in the state table, posts through an injected poster, the storm
guard and the outbox. Never raises for Slack failures: a post Slack did not take waits in the outbox.

Order for a batch (``deliver``): first what waits in the outbox (an earlier invocation's posts, or the
schedule's flush), then each alarm: decide against its episode item (conditional write, re-read on a
race), post or update at once. Only then the slow part: the correlation of each new episode (bounded by
``correlate_seconds``), added to its message when ready, and the graph uploaded into the thread. A slow or
failing correlation never delays or loses a post.

The storm guard is the mail alerts' (``bot.aws.mailing.count_alerts``, a sliding-window counter shared by
concurrent invocations, and its digest item), under the alarm intake's own keys: past
``storm_threshold`` new episodes a minute, new episodes are counted into one digest message per storm
instead of a post each. The outbox is the mail outbox's item and lease, under ``alarm#outbox``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.aws import alarms as aws_alarms
from bot.aws import mailing
from bot.aws.state import StateTable
from bot.config import Settings
from bot.core.alarms.correlate import Correlation, FindErrors, correlate
from bot.core.alarms.episode import Decision, decide
from bot.core.alarms.model import Alarm
from bot.core.alarms.routing import Route, channel_for, parse_routes
from bot.errors import ConfigError, OpsbotError

logger = logging.getLogger("opsbot.alarms")

ALERTS_PK = "alarm#alerts"
DIGEST_PK = "alarm#digest"
OUTBOX_PK = "alarm#outbox"
STORM_LOCK = "alarm:storm"
OUTBOX_ENTRY = "ep:"
OUTBOX_DIGEST = "digest:"
OUTBOX_KEEP_SECONDS = 86400
OUTBOX_LEASE_SECONDS = 180
MAX_REPLIES_KEPT = 10
PUT_ATTEMPTS = 4


@dataclass(frozen=True)
class AlarmConfig:
    routes: tuple[Route, ...] = ()
    default_channel: str = ""
    storm_threshold: int = 10
    window_seconds: int = 60
    storm_seconds: int = 120
    digest_update_seconds: float = 2.0
    correlate_seconds: float = 20.0
    graph: bool = True


def alarm_config(settings: Settings) -> AlarmConfig:
    extra = settings.extra

    def number(name: str, default: float, minimum: float) -> float:
        raw = str(extra.get(name, "")).strip()
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}.") from None
        if value < minimum:
            raise ConfigError(f"{name} must be at least {minimum:g}, got {raw}.")
        return value

    return AlarmConfig(
        routes=parse_routes(str(extra.get("OPSBOT_ALARM_ROUTES", ""))),
        default_channel=settings.alert_channel,
        storm_threshold=int(number("OPSBOT_ALARM_STORM_THRESHOLD", 10, 0)),
        correlate_seconds=number("OPSBOT_ALARM_CORRELATE_SECONDS", 20.0, 0),
        graph=str(extra.get("OPSBOT_ALARM_GRAPH", "1")).strip().lower() not in {"0", "false", "no", "off"},
    )


@dataclass
class EpisodeView:
    """Everything a rendered alarm message shows (the poster renders it)."""

    key: str
    alarm: Alarm
    start_ms: int
    changes: int = 1
    flapping: bool = False
    acked_by: str = ""
    acked_at: float = 0.0
    muted_until: float = 0.0
    correlation: Correlation | None = None
    correlating: bool = False

    @classmethod
    def of(cls, item: dict[str, Any], *, correlating: bool = False) -> EpisodeView:
        alarm = Alarm.from_json(json.loads(str(item["alarm"])))
        raw = item.get("correlation")
        return cls(
            key=str(item["sk"]),
            alarm=alarm,
            start_ms=int(item.get("startMs", alarm.changed_ms)),
            changes=int(item.get("changes", 1)),
            flapping=len(item.get("recent") or []) > 3,
            acked_by=str(item.get("ackedBy") or ""),
            acked_at=float(item.get("ackedAt") or 0),
            muted_until=float(item.get("mutedUntil") or 0),
            correlation=Correlation.from_json(json.loads(str(raw))) if raw else None,
            correlating=correlating,
        )


@dataclass(frozen=True)
class AlarmDigest:
    storm: str
    channel: str
    total: int
    by_state: dict[str, int]
    by_namespace: dict[str, int]
    alarms: list[str]
    started_at: str


class AlarmPoster(Protocol):
    def post_episode(self, channel: str, view: EpisodeView) -> str:
        """Post the episode's message; returns its ts."""
        ...

    def update_episode(self, channel: str, ts: str, view: EpisodeView) -> None: ...

    def reply(self, channel: str, ts: str, text: str) -> None: ...

    def upload_graph(self, channel: str, ts: str, png: bytes, title: str) -> None: ...

    def post_digest(self, channel: str, digest: AlarmDigest) -> str: ...

    def update_digest(self, channel: str, ts: str, digest: AlarmDigest) -> None: ...


@dataclass
class AlarmReport:
    alarms: int = 0
    malformed: int = 0
    ignored: int = 0
    muted: int = 0
    unrouted: int = 0
    posted: int = 0
    updated: int = 0
    replies: int = 0
    digested: int = 0
    correlated: int = 0
    graphs: int = 0
    failed: int = 0  # posts, updates or replies Slack did not take (kept in the outbox)
    queued: int = 0
    delayed: int = 0  # outbox entries posted now
    pending: int = 0  # outbox entries found
    aws_calls: int = 0
    errors: list[str] = field(default_factory=list)
    failed_messages: list[str] = field(default_factory=list)  # SQS ids whose episode could not be stored

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


@dataclass
class _Work:
    """What the batch posted, for the slow phase (correlation and graph)."""

    key: str
    channel: str
    ts: str
    alarm: Alarm


class AlarmDelivery:
    def __init__(
        self,
        settings: Settings,
        poster: AlarmPoster,
        *,
        config: AlarmConfig | None = None,
        find_errors: FindErrors | None = None,
        graph: Callable[[Alarm], bytes] | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.poster = poster
        self.config = config or alarm_config(settings)
        self.find_errors = find_errors
        self.graph = graph
        self.now = now
        self.state = StateTable(settings.state_table)
        self._outbox: dict[str, dict[str, Any]] = {}  # entries to add at the end: name -> entry
        self._waiting: dict[str, dict[str, Any]] = {}  # entries still in the outbox after the flush

    # -- the batch --------------------------------------------------------------------------------

    def deliver(self, alarms: Sequence[tuple[str, Alarm]], report: AlarmReport) -> None:
        """``alarms``: (SQS message id or "", alarm)."""
        self._flush(report)
        work: list[_Work] = []
        for message_id, alarm in alarms:
            report.alarms += 1
            try:
                posted = self._one(alarm, report)
            except OpsbotError as error:
                # The episode could not be read or stored: SQS delivers the record again.
                report.errors.append(error.message)
                report.failed_messages.append(message_id)  # "" outside SQS: the caller raises
                logger.error("alarm %s not handled: %s", alarm.name, error.message)
                continue
            if posted is not None:
                work.append(posted)
        self._save_outbox(report)
        if work:
            self._correlate(work, report)

    def _one(self, alarm: Alarm, report: AlarmReport) -> _Work | None:
        channel = channel_for(alarm, self.config.routes, self.config.default_channel)
        if not channel:
            report.unrouted += 1
            logger.warning(
                "alarm %s: no route and OPSBOT_ALARM_CHANNEL/OPSBOT_ALERT_CHANNEL unset", alarm.name
            )
            return None
        for _ in range(PUT_ATTEMPTS):
            item = aws_alarms.episode_get(self.state.name, alarm.key)
            decision = decide(item, alarm)
            if decision.kind == "ignore":
                report.ignored += 1
                logger.info("alarm %s %s: %s", alarm.name, alarm.state, decision.why)
                return None
            data = self._next_item(item, alarm, decision, channel)
            if aws_alarms.episode_put(
                self.state.name,
                alarm.key,
                data,
                expected_version=None if item is None else int(item["version"]),
            ):
                data["sk"] = alarm.key
                data["version"] = (0 if item is None else int(item["version"])) + 1
                return self._show(data, decision, report, item)
        raise OpsbotError(f"the episode of {alarm.name} kept changing under this invocation")

    def _next_item(
        self, item: dict[str, Any] | None, alarm: Alarm, decision: Decision, channel: str
    ) -> dict[str, Any]:
        kept = {} if decision.kind == "open" or item is None else dict(item)
        for name in ("pk", "sk", "version"):
            kept.pop(name, None)
        return {
            **kept,
            "alarm": json.dumps(alarm.to_json(), separators=(",", ":")),
            "state": alarm.state,
            "changedMs": alarm.changed_ms,
            "startMs": decision.episode_start_ms,
            "changes": decision.changes,
            "recent": list(decision.recent),
            "channel": kept.get("channel") or channel,
            "ts": kept.get("ts", ""),
            "expiresAt": int(self.now()) + aws_alarms.EPISODE_TTL_SECONDS,
        }

    def _show(
        self, item: dict[str, Any], decision: Decision, report: AlarmReport, before: dict[str, Any] | None
    ) -> _Work | None:
        key, channel, ts = str(item["sk"]), str(item["channel"]), str(item.get("ts") or "")
        muted = float(item.get("mutedUntil") or 0) > self.now()
        if muted:
            report.muted += 1
            logger.info("alarm %s is muted: %s not posted", key, item["state"])
            return None
        if decision.kind == "open":
            if self._storm(item, report):
                return None
            return self._post(item, report)
        if not ts:
            # The first post is still waiting (or the episode is in a digest): the outbox shows it as it is now.
            self._queue(key, decision.reply, report)
            return None
        view = EpisodeView.of(item)
        try:
            self.poster.update_episode(channel, ts, view)
            report.updated += 1
            if decision.reply:
                self.poster.reply(channel, ts, decision.reply)
                report.replies += 1
        except Exception as error:
            self._failed(key, decision.reply, error, report)
        return None

    def _post(self, item: dict[str, Any], report: AlarmReport) -> _Work | None:
        key, channel = str(item["sk"]), str(item["channel"])
        view = EpisodeView.of(item, correlating=True)
        try:
            ts = self.poster.post_episode(channel, view)
        except Exception as error:
            self._failed(key, "", error, report)
            return None
        report.posted += 1
        try:
            aws_alarms.episode_set(self.state.name, key, {"ts": ts})
        except OpsbotError as error:
            logger.error(
                "alarm %s posted but its message not recorded (a later change posts anew): %s", key, error
            )
        return _Work(key, channel, ts, view.alarm)

    def _failed(self, key: str, reply: str, error: BaseException, report: AlarmReport) -> None:
        report.failed += 1
        report.errors.append(str(error)[:300])
        logger.error("alarm %s: Slack did not take the post (kept in the outbox): %s", key, error)
        self._queue(key, reply, report)

    def _queue(self, key: str, reply: str, report: AlarmReport) -> None:
        name = OUTBOX_ENTRY + key
        entry = self._outbox.get(name) or self._waiting.get(name) or {"queuedAt": self.now(), "replies": []}
        if reply:
            entry["replies"] = [*entry.get("replies", []), reply][-MAX_REPLIES_KEPT:]
        self._outbox[name] = entry

    def _save_outbox(self, report: AlarmReport) -> None:
        if not self._outbox:
            return
        entries = {name: json.dumps(entry, separators=(",", ":")) for name, entry in self._outbox.items()}
        try:
            mailing.outbox_add(self.state.name, entries, now=self.now(), pk=OUTBOX_PK)
            report.queued += len(entries)
        except OpsbotError as error:
            logger.error("%d alarm posts neither posted nor kept: %s", len(entries), error.message)
        self._outbox = {}

    # -- the outbox -------------------------------------------------------------------------------

    def _flush(self, report: AlarmReport) -> None:
        """Post what earlier invocations could not. One GetItem when nothing waits."""
        self._waiting = {}
        now = self.now()
        try:
            box = mailing.outbox_get(self.state.name, now=now, pk=OUTBOX_PK)
        except OpsbotError as error:
            logger.error("alarm outbox not read: %s", error.message)
            return
        if not box:
            return
        entries: dict[str, dict[str, Any]] = {}
        for name, value in box.items():
            if name.startswith((OUTBOX_ENTRY, OUTBOX_DIGEST)):
                try:
                    entries[name] = dict(json.loads(str(value)))
                except ValueError:
                    entries[name] = {"queuedAt": 0}
        report.pending = len(entries)
        if not entries:
            return
        owner = uuid.uuid4().hex
        try:
            if not mailing.outbox_take_lease(
                self.state.name, owner, now=now, seconds=OUTBOX_LEASE_SECONDS, pk=OUTBOX_PK
            ):
                return
        except OpsbotError as error:
            logger.error("alarm outbox not flushed: %s", error.message)
            return
        try:
            self._flush_entries(entries, report, now)
        finally:
            try:
                mailing.outbox_release_lease(self.state.name, owner, pk=OUTBOX_PK)
            except OpsbotError as error:
                logger.warning("alarm outbox lease not released: %s", error.message)

    def _flush_entries(self, entries: dict[str, dict[str, Any]], report: AlarmReport, now: float) -> None:
        done: list[str] = []
        for name, entry in sorted(entries.items(), key=lambda e: float(e[1].get("queuedAt", 0))):
            if float(entry.get("queuedAt", 0)) < now - OUTBOX_KEEP_SECONDS:
                logger.error("alarm outbox entry %s given up: not posted within a day", name)
                done.append(name)
                continue
            try:
                if name.startswith(OUTBOX_DIGEST):
                    self._show_digest(name[len(OUTBOX_DIGEST) :], report, force=True)
                else:
                    self._flush_episode(name[len(OUTBOX_ENTRY) :], entry, report)
            except Exception as error:
                report.errors.append(str(error)[:300])
                logger.error("alarm outbox entry %s still not posted: %s", name, error)
                # Keep what is left; stop at the first failure (Slack is still down).
                self._waiting = {n: e for n, e in entries.items() if n not in done}
                break
            done.append(name)
            report.delayed += 1
        if done:
            try:
                mailing.outbox_remove(self.state.name, done, pk=OUTBOX_PK)
            except OpsbotError as error:
                logger.error(
                    "alarm outbox entries posted but not removed (may post again): %s", error.message
                )

    def _flush_episode(self, key: str, entry: dict[str, Any], report: AlarmReport) -> None:
        item = aws_alarms.episode_get(self.state.name, key)
        if item is None or item.get("digested"):
            return
        channel, ts = str(item["channel"]), str(item.get("ts") or "")
        view = EpisodeView.of(item)
        if not ts:
            ts = self.poster.post_episode(channel, view)
            report.posted += 1
            aws_alarms.episode_set(self.state.name, key, {"ts": ts})
            if item.get("state") != "OK" and not item.get("correlation"):
                self._correlate([_Work(key, channel, ts, view.alarm)], report)
        else:
            self.poster.update_episode(channel, ts, view)
            report.updated += 1
        for reply in entry.get("replies") or []:
            self.poster.reply(channel, ts, str(reply))
            report.replies += 1

    # -- the storm guard --------------------------------------------------------------------------

    def _storm(self, item: dict[str, Any], report: AlarmReport) -> bool:
        """Count the new episode; True when it went into the storm digest instead of its own post."""
        cfg = self.config
        now = self.now()
        try:
            count = mailing.count_alerts(
                self.state.name, 1, window_seconds=cfg.window_seconds, now=now, pk=ALERTS_PK
            )
            holder = self.state.get(f"lock#{STORM_LOCK}", "lock")
            storm = holder if holder and holder.get("storm") else None
            if count <= cfg.storm_threshold and storm is None:
                return False
            if count > cfg.storm_threshold:
                storm = self._start_or_extend(storm, now)
        except OpsbotError as error:
            logger.error("alarm storm counters unavailable (%s): posting on its own", error.message)
            return False
        assert storm is not None
        alarm = EpisodeView.of(item).alarm
        name = str(storm["storm"])
        try:
            mailing.digest_add(
                self.state.name, name,
                {"total": 1, f"type:{alarm.state}": 1, f"sender:{alarm.namespace or 'composite'}": 1},
                {"startedAt": str(storm.get("startedAt", "")), "channel": str(item["channel"])},
                [alarm.name], pk=DIGEST_PK,
            )  # fmt: skip
            aws_alarms.episode_set(self.state.name, str(item["sk"]), {"digested": name})
        except OpsbotError as error:
            logger.error(
                "alarm %s not counted into the storm digest (posting on its own): %s", alarm.name, error
            )
            return False
        report.digested += 1
        try:
            self._show_digest(name, report)
        except Exception as error:
            report.failed += 1
            report.errors.append(str(error)[:300])
            self._outbox[OUTBOX_DIGEST + name] = {"queuedAt": now}
        return True

    def _start_or_extend(self, storm: dict[str, Any] | None, now: float) -> dict[str, Any]:
        from datetime import UTC, datetime

        started = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        fresh = {"storm": f"{started}#{uuid.uuid4().hex[:8]}", "startedAt": started}
        if storm is None:
            taken = self.state.acquire_lock(STORM_LOCK, fresh, ttl_seconds=self.config.storm_seconds)
            if taken.acquired:
                logger.warning("alarm storm %s started: new alarms go to one digest message", fresh["storm"])
                return fresh
            storm = dict(taken.holder)
        kept = {k: v for k, v in storm.items() if k in {"storm", "startedAt"}}
        self.state.update_lock(STORM_LOCK, kept, ttl_seconds=self.config.storm_seconds)
        return kept

    def _show_digest(self, storm: str, report: AlarmReport, *, force: bool = False) -> None:
        item = mailing.digest_get(self.state.name, storm, pk=DIGEST_PK)
        if item is None:
            return
        digest = _digest(item)
        now = self.now()
        if not item.get("ts"):
            if self.state.acquire_lock(f"alarm:digest-post:{storm}", {"at": now}, ttl_seconds=60).acquired:
                ts = self.poster.post_digest(digest.channel, digest)
                mailing.digest_set_message(
                    self.state.name, storm, channel=digest.channel, ts=ts, now=now, shown=int(item["version"]), pk=DIGEST_PK
                )  # fmt: skip
                report.posted += 1
                return
            self._outbox[OUTBOX_DIGEST + storm] = {"queuedAt": now}
            return
        if force or mailing.digest_claim_update(
            self.state.name, storm, now=now, min_interval=self.config.digest_update_seconds, pk=DIGEST_PK
        ):
            self.poster.update_digest(str(item["channel"]), str(item["ts"]), digest)
            report.updated += 1
            return
        # Throttled: the schedule's flush shows the final counts.
        self._outbox[OUTBOX_DIGEST + storm] = {"queuedAt": now}

    # -- the slow phase ---------------------------------------------------------------------------

    def _correlate(self, work: Sequence[_Work], report: AlarmReport) -> None:
        deadline = time.monotonic() + self.config.correlate_seconds
        for job in work:
            left = deadline - time.monotonic()
            if left <= 0:
                logger.warning("alarm %s: no time left to correlate", job.alarm.name)
                break
            started = time.monotonic()
            # The alarm's account (OPSBOT_ACCOUNTS): its logs are read there, as opsbot-alarms.
            with _in_account_of(self.settings, job.alarm):
                result = correlate(
                    job.alarm, settings=self.settings, find_errors=self.find_errors, deadline=deadline
                )
            report.aws_calls += result.aws_calls
            if time.monotonic() > deadline:
                result.complete = False
                result.note = result.note or "Stopped at the time limit: counts are a lower bound."
            logger.info(
                "alarm %s correlated (%s, %d groups) in %.2f s", job.alarm.name, result.kind, len(result.groups),
                time.monotonic() - started,
            )  # fmt: skip
            try:
                item = aws_alarms.episode_set(
                    self.state.name,
                    job.key,
                    {"correlation": json.dumps(result.to_json(), separators=(",", ":"))},
                )
            except OpsbotError as error:
                logger.error("alarm %s: correlation not stored: %s", job.alarm.name, error.message)
                continue
            try:
                self.poster.update_episode(job.channel, job.ts, EpisodeView.of(item))
                report.correlated += 1
            except Exception as error:
                self._failed(job.key, "", error, report)
            if self.config.graph and self.graph is not None:
                try:
                    with _in_account_of(self.settings, job.alarm):
                        png = self.graph(job.alarm)
                    report.aws_calls += 1
                    self.poster.upload_graph(job.channel, job.ts, png, f"{job.alarm.name}: the last 3 hours")
                    report.graphs += 1
                except Exception as error:  # a missing graph is not worth failing anything for
                    logger.warning("alarm %s: graph not shown: %s", job.alarm.name, error)
        self._save_outbox(report)


def _in_account_of(settings: Settings, alarm: Alarm) -> Any:
    """AWS calls inside go to the alarm's account when OPSBOT_ACCOUNTS has a role there (docs/accounts.md),
    with its read-only role: the intake only reads there (logs, metrics, the API's configuration)."""
    from bot.aws.clients import use_target
    from bot.aws.targets import for_function

    return use_target(for_function(settings, "alarms", account_id=alarm.account, mutating=False))


def _digest(item: dict[str, Any]) -> AlarmDigest:
    def group(prefix: str) -> dict[str, int]:
        return {
            k[len(prefix) :]: int(v) for k, v in item.items() if k.startswith(prefix) and isinstance(v, int)
        }

    return AlarmDigest(
        storm=str(item.get("sk", "")),
        channel=str(item.get("channel", "")),
        total=int(item.get("total", 0)),
        by_state=group("type:"),
        by_namespace=group("sender:"),
        alarms=list(dict.fromkeys(str(a) for a in item.get("addresses") or [])),
        started_at=str(item.get("startedAt", "")),
    )


def graph_widget(alarm: Alarm, *, now_ms: int | None = None) -> dict[str, Any]:
    """The GetMetricWidgetImage definition: the alarm's metric over the last 3 hours with its threshold."""
    metrics: list[list[Any]] = []
    for metric in alarm.metrics:
        if metric.expression:
            metrics.append(
                [
                    {
                        "expression": metric.expression,
                        "id": metric.id or "e1",
                        "label": metric.label or metric.expression,
                    }
                ]
            )
            continue
        row: list[Any] = [metric.namespace, metric.name]
        for name, value in metric.dimensions.items():
            row += [name, value]
        options: dict[str, Any] = {"stat": metric.stat or alarm.statistic or "Average"}
        if metric.id:
            options["id"] = metric.id
        if not metric.return_data:
            options["visible"] = False
        row.append(options)
        metrics.append(row)
    widget: dict[str, Any] = {
        "metrics": metrics,
        "period": alarm.period or 300,
        "start": "-PT3H",
        "end": "P0D",
        "title": alarm.name[:100],
        "width": 800,
        "height": 300,
        "region": alarm.region or "us-east-1",
    }
    if alarm.threshold is not None:
        widget["annotations"] = {
            "horizontal": [{"label": "threshold", "value": alarm.threshold, "color": "#d62728"}]
        }
    return widget


def draw_graph(alarm: Alarm) -> bytes:
    return aws_alarms.metric_widget_image(graph_widget(alarm), region=alarm.region or None)
