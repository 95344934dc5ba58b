"""``/apilogs tail``: follow every log group of an API stage, as batches.

``Tail.batches()`` is a generator of ``TailBatch`` (at most one per ``interval``, empty ones included so
the consumer can do its own bookkeeping). It ends when ``should_stop()`` says so (the Slack Stop
button's flag in the state table), at ``deadline`` (``--for``, or before the Lambda time limit), or
when the consumer stops iterating. ``Tail.summary`` then says what happened. The CLI prints batches
until Ctrl-C; the Slack listener posts each non-empty batch to a thread.

Two sources:

- Live Tail (``StartLiveTail``, up to 10 groups) when the endpoint supports it: CloudWatch pushes
  new events about once a second. A background thread reads the stream so that stop and deadline are
  honoured even while no event arrives. Live Tail streams only events that arrive after its session
  started, so the look-back (``--since``, 10 s by default) is read once with ``FilterLogEvents`` when
  the session has answered, and shown first; the seen-set keeps a line that both return from being
  shown twice.
- Polling ``FilterLogEvents`` otherwise (more than 10 groups, an emulator endpoint, no permission, or the
  session ended): each poll reads from the previous poll's time minus ``overlap`` so that events that
  reach CloudWatch late are still seen, and a set of event ids (kept for the overlap) drops the
  repeats. New log streams are included automatically (no stream names are given).
"""

from __future__ import annotations

import contextvars
import logging
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from bot.aws import logs as cw
from bot.core.apilogs.formats import is_error
from bot.core.apilogs.model import CallStats, LogEvent, sort_key
from bot.core.apilogs.patterns import Matcher, compile_pattern
from bot.errors import AwsError

log = logging.getLogger(__name__)

TailMode = Literal["auto", "live", "poll"]
LIVE_TAIL_MAX_GROUPS = 10
DEFAULT_OVERLAP_MS = 30_000
# One poll reads at most this many events per group; the rest comes with the next poll.
MAX_EVENTS_PER_POLL = 10_000
# FilterLogEvents calls a second one polling tail may use: half the account's quota (5 a second), so
# that lookups and other tools of the account are not starved while it runs. With many groups a poll
# round then takes longer than a second; the overlap still covers it.
POLL_RATE = 2.5
# How long the look-back read waits for the Live Tail session to answer: read before the session has
# started, an event arriving in between would be in neither.
HISTORY_WAIT_S = 5.0


@dataclass(frozen=True)
class TailBatch:
    events: tuple[LogEvent, ...]
    mode: str  # "live" or "poll"

    @property
    def errors(self) -> int:
        return sum(1 for e in self.events if is_error(e.message))


@dataclass
class TailSummary:
    groups: list[str]
    pattern: str
    mode: str = ""
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    ended: datetime | None = None
    events: int = 0
    errors: int = 0
    batches: int = 0
    stop_reason: str = ""  # "stopped" (Stop button), "interrupted" (Ctrl-C), "time limit", "closed"
    notes: list[str] = field(default_factory=list)
    stats: CallStats = field(default_factory=CallStats)

    def to_json(self) -> dict[str, Any]:
        return {
            "groups": self.groups,
            "pattern": self.pattern,
            "mode": self.mode,
            "started": self.started.isoformat(),
            "ended": self.ended.isoformat() if self.ended else None,
            "events": self.events,
            "errors": self.errors,
            "batches": self.batches,
            "stopReason": self.stop_reason,
            "notes": self.notes,
            "calls": self.stats.to_json(),
        }


class Tail:
    def __init__(
        self,
        groups: Sequence[str],
        *,
        pattern: str = "",
        start_ms: int | None = None,
        mode: TailMode = "auto",
        interval: float = 1.0,
        overlap_ms: int = DEFAULT_OVERLAP_MS,
        should_stop: Callable[[], bool] = lambda: False,
        deadline: float | None = None,
        group_arn: Callable[[str], str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not groups:
            raise ValueError("a tail needs at least one log group")
        self.groups = list(dict.fromkeys(groups))
        self.matcher: Matcher = compile_pattern(pattern)
        self.pattern = self.matcher.pattern
        self.mode = mode
        # The Slack listener keeps the default second (at most one message a second); tests go faster.
        self.interval = max(0.05, interval)
        self.missing_recheck_s = 60.0
        self.poll_rate = POLL_RATE
        self.overlap_ms = overlap_ms
        self.should_stop = should_stop
        self.deadline = deadline
        self.group_arn = group_arn
        self._clock = clock
        self._wall_ms = wall_ms
        self._sleep = sleep
        start = wall_ms() if start_ms is None else start_ms
        self._next_start: dict[str, int] = {g: start for g in self.groups}
        # Live Tail shows only what arrives after it started: the look-back before it is read once.
        self._history_due = start_ms is not None
        self._seen: dict[tuple[str, str], int] = {}  # event key -> timestamp, pruned past the overlap
        self.summary = TailSummary(groups=list(self.groups), pattern=self.pattern)
        self.missing: set[str] = set()

    # -- common -----------------------------------------------------------------------------------
    def _stop_reason(self) -> str:
        if self.deadline is not None and self._clock() >= self.deadline:
            return "time limit"
        try:
            if self.should_stop():
                return "stopped"
        except Exception:  # a failing stop check must not end the tail silently or crash it
            log.exception("stop check failed")
        return ""

    def _emit(self, events: list[LogEvent], mode: str) -> TailBatch:
        events.sort(key=sort_key)
        batch = TailBatch(tuple(events), mode)
        self.summary.batches += 1 if events else 0
        self.summary.events += len(events)
        self.summary.errors += batch.errors
        return batch

    def _wanted_live(self) -> bool:
        if self.mode == "poll":
            return False
        if len(self.groups) > LIVE_TAIL_MAX_GROUPS or self.group_arn is None:
            if self.mode == "live":
                self.summary.notes.append(
                    f"Live Tail takes at most {LIVE_TAIL_MAX_GROUPS} log groups; polling {len(self.groups)}."
                )
            return False
        return self.mode == "live" or cw.endpoint_supports_live_tail()

    def batches(self) -> Generator[TailBatch, None, None]:
        try:
            if self._wanted_live():
                yield from self._live()
            if not self.summary.stop_reason:
                yield from self._poll()
        finally:
            self.summary.ended = datetime.now(UTC)
            self.summary.stop_reason = self.summary.stop_reason or "closed"

    # -- polling ----------------------------------------------------------------------------------
    def _poll_group(self, group: str, poll_ms: int) -> list[LogEvent]:
        if group in self.missing:
            return []
        start = self._next_start[group]
        result = cw.filter_events(
            group,
            start_ms=start,
            end_ms=poll_ms + 60_000,
            pattern=self.pattern,
            recheck=self.matcher if self.matcher.exact else None,
            max_events=MAX_EVENTS_PER_POLL,
            stats=self.summary.stats,
        )
        if result.missing:
            self.missing.add(group)
            self.summary.notes.append(
                f"The log group {group} does not exist (yet); it is checked again later."
            )
            return []
        if result.truncated and result.events:
            # More than one poll's worth: continue from the last event read, not from the poll time.
            self._next_start[group] = result.events[-1].timestamp
        else:
            self._next_start[group] = max(start, poll_ms - self.overlap_ms)
        return result.events

    def _poll(self) -> Iterator[TailBatch]:
        self.summary.mode = self.summary.mode + "+poll" if self.summary.mode else "poll"
        from concurrent.futures import ThreadPoolExecutor

        rechecked_missing_at = self._clock()
        with ThreadPoolExecutor(max_workers=max(1, min(len(self.groups), cw.LIMITER.concurrency))) as pool:
            while True:
                reason = self._stop_reason()
                if reason:
                    self.summary.stop_reason = reason
                    return
                began = self._clock()
                if self.missing and began - rechecked_missing_at > self.missing_recheck_s:
                    self.missing.clear()  # a group may have been created since (first invocation)
                    rechecked_missing_at = began
                poll_ms = self._wall_ms()
                calls_before = self.summary.stats.calls.get("FilterLogEvents", 0)
                try:
                    results = list(
                        pool.map(
                            _in_this_context(self._poll_group), self.groups, [poll_ms] * len(self.groups)
                        )
                    )
                except AwsError as error:
                    self.summary.notes.append(error.message)
                    raise
                fresh: list[LogEvent] = []
                for events in results:
                    for event in events:
                        if event.key in self._seen or self._content_seen(event):
                            continue
                        self._seen[event.key] = event.timestamp
                        fresh.append(event)
                self._forget_polled()
                yield self._emit(fresh, "poll")
                # Paced by the calls the round made, not one per group: CloudWatch may answer a search
                # with several pages (empty ones while it is still searching), each a call of the quota.
                calls = self.summary.stats.calls.get("FilterLogEvents", 0) - calls_before
                self._wait_until(began + max(self.interval, calls / self.poll_rate))

    def _wait_until(self, moment: float) -> None:
        """Sleep until ``moment``, the deadline or a stop request, checking for those every interval."""
        if self.deadline is not None:
            moment = min(moment, self.deadline)
        while (remaining := moment - self._clock()) > 0:
            self._sleep(min(remaining, self.interval))
            if self._stop_reason():
                return

    def _prune(self, oldest_ms: int) -> None:
        stale = [key for key, ts in self._seen.items() if ts < oldest_ms - 1]
        for key in stale:
            del self._seen[key]

    def _forget_polled(self) -> None:
        """Forget the lines the next poll of their group cannot return again. Per group: a group that
        does not exist (yet) keeps its start, and must not keep every other group's lines alive."""
        stale = [key for key, ts in self._seen.items() if ts < self._next_start.get(key[0], ts) - 1]
        for key in stale:
            del self._seen[key]

    def _content_seen(self, event: LogEvent) -> bool:
        # Events first seen through Live Tail have no event id; recognise them by content.
        return self._content_key(event) in self._seen

    # -- Live Tail --------------------------------------------------------------------------------
    def _live(self) -> Iterator[TailBatch]:
        assert self.group_arn is not None
        try:
            arns = {self.group_arn(g): g for g in self.groups}
        except AwsError as error:
            self.summary.notes.append(f"Live Tail unavailable ({error.message}); polling instead.")
            return
        updates: queue.Queue[tuple[str, Any]] = queue.Queue()
        closing = threading.Event()
        stream_holder: dict[str, Any] = {}

        def reader() -> None:
            try:
                stream = cw.start_live_tail(list(arns), pattern=self.pattern, stats=self.summary.stats)
                stream_holder["stream"] = stream
                for item in stream:
                    if closing.is_set():
                        break
                    updates.put(("item", item))
                updates.put(("end", None))
            except Exception as error:
                updates.put(("error", error))
            finally:
                stream_holder.pop("stream", None)

        # The reader runs in this context: the account, region and person of the request (use_target).
        thread = threading.Thread(
            target=contextvars.copy_context().run, args=(reader,), name="apilogs-live-tail", daemon=True
        )
        thread.start()
        self.summary.mode = "live"
        pending: list[LogEvent] = []
        last_emit = opened = self._clock()
        try:
            while True:
                reason = self._stop_reason()
                if reason:
                    self.summary.stop_reason = reason
                    return
                wait = max(0.05, self.interval - (self._clock() - last_emit))
                if self.deadline is not None:
                    wait = min(wait, max(0.05, self.deadline - self._clock()))
                try:
                    kind, payload = updates.get(timeout=wait)
                except queue.Empty:
                    kind, payload = "tick", None
                if kind == "item":
                    pending.extend(self._live_events(payload, arns))
                    if self._history_due:
                        # The session has answered: what arrives from now on, it streams.
                        yield from self._history()
                elif self._history_due and kind == "tick" and self._clock() - opened >= HISTORY_WAIT_S:
                    yield from self._history()
                if kind in {"end", "error"}:
                    if pending:
                        yield self._emit(pending, "live")
                        pending = []
                    reason_text = (
                        payload.message
                        if isinstance(payload, AwsError)
                        else "the session ended"
                        if kind == "end"
                        else str(payload)
                    )
                    self.summary.notes.append(f"Live Tail stopped ({reason_text}); continuing by polling.")
                    self._resume_after_live()
                    return
                if self._history_due:
                    continue  # the look-back is shown before any line Live Tail brings
                if self._clock() - last_emit >= self.interval:
                    yield self._emit(pending, "live")
                    pending = []
                    last_emit = self._clock()
                    # Only what polling would read again after the session (the overlap) needs
                    # remembering: a session of hours must not keep every line it showed.
                    if self._seen:
                        self._prune(self._resume_from())
        finally:
            closing.set()
            stream = stream_holder.get("stream")
            close = getattr(stream, "close", None)
            if callable(close):
                try:
                    close()
                except Exception:
                    log.debug("closing the Live Tail stream failed", exc_info=True)

    def _history(self) -> Iterator[TailBatch]:
        """The look-back before the Live Tail session (``start_ms`` up to now), read once from every group
        through the shared limiter and shown in time order. A group with more than a read's worth is read
        on in rounds; each round shows only what lies before the point every group has reached, so the
        order holds across groups."""
        from concurrent.futures import ThreadPoolExecutor

        self._history_due = False
        end_ms = self._wall_ms() + 60_000  # as a poll does: clocks of the writers run a little ahead
        cursor = {g: self._next_start[g] for g in self.groups if g not in self.missing}
        held: list[LogEvent] = []

        def read(group: str) -> cw.FilterResult:
            return cw.filter_events(
                group,
                start_ms=cursor[group],
                end_ms=end_ms,
                pattern=self.pattern,
                recheck=self.matcher if self.matcher.exact else None,
                max_events=MAX_EVENTS_PER_POLL,
                deadline=self.deadline,
                stats=self.summary.stats,
            )

        with ThreadPoolExecutor(max_workers=max(1, min(len(cursor), cw.LIMITER.concurrency))) as pool:
            while cursor:
                if self._stop_reason():
                    break
                groups = list(cursor)
                try:
                    results = list(pool.map(_in_this_context(read), groups))
                except AwsError as error:
                    # Live Tail itself is running: the tail goes on without the rest of the lines before it.
                    self.summary.notes.append(
                        f"The lines before the tail could not be read ({error.message})."
                    )
                    break
                for group, result in zip(groups, results, strict=True):
                    if result.missing:
                        self.missing.add(group)
                        del cursor[group]
                        continue
                    for event in result.events:
                        content = self._content_key(event)
                        if event.key in self._seen or content in self._seen:
                            continue
                        # Both keys: Live Tail knows the line by its content, a later poll by its id.
                        self._seen[event.key] = self._seen[content] = event.timestamp
                        held.append(event)
                    if result.deadline_hit:
                        self.summary.notes.append(
                            "The time limit cut short reading the lines before the tail."
                        )
                        del cursor[group]
                    elif result.truncated and result.events:
                        # On from the last line read (its millisecond again: the seen-set drops repeats);
                        # a read's worth of lines in one millisecond must not be read for ever.
                        cursor[group] = max(result.events[-1].timestamp, cursor[group] + 1)
                    else:
                        del cursor[group]
                # A group still being read may yet return lines earlier than another group's last one.
                reached = min(cursor.values(), default=None)
                ready = [e for e in held if reached is None or e.timestamp < reached]
                held = [e for e in held if reached is not None and e.timestamp >= reached]
                if ready:
                    yield self._emit(ready, "live")
        if held:  # stopped or failed between rounds: what was read is already marked seen, so show it
            yield self._emit(held, "live")

    @staticmethod
    def _content_key(event: LogEvent) -> tuple[str, str]:
        return LogEvent(
            event.group, event.stream, event.timestamp, event.message, "", event.ingestion_time
        ).key

    def _live_events(self, item: Any, arns: dict[str, str]) -> list[LogEvent]:
        if not isinstance(item, dict):
            return []
        if "SessionTimeoutException" in item or "SessionStreamingException" in item:
            problem = item.get("SessionTimeoutException") or item.get("SessionStreamingException") or {}
            raise_text = str(problem.get("message", "session ended"))
            self.summary.notes.append(f"Live Tail: {raise_text}")
            return []
        update = item.get("sessionUpdate")
        if not isinstance(update, dict):
            return []
        if (update.get("sessionMetadata") or {}).get("sampled"):
            note = "Live Tail sampled the events (more than 500 a second); some lines are not shown."
            if note not in self.summary.notes:
                self.summary.notes.append(note)
        events: list[LogEvent] = []
        for result in update.get("sessionResults") or []:
            identifier = str(result.get("logGroupIdentifier", ""))
            group = (
                arns.get(identifier)
                or arns.get(identifier.removesuffix(":*"))
                or identifier.split(":log-group:")[-1]
            )
            event = LogEvent(
                group=group,
                stream=str(result.get("logStreamName", "")),
                timestamp=int(result.get("timestamp", 0)),
                message=str(result.get("message", "")),
                event_id="",
                ingestion_time=int(result.get("ingestionTime", 0)),
            )
            if self.matcher.exact and not self.matcher(event.message):
                continue
            if event.key in self._seen:
                continue
            self._seen[event.key] = event.timestamp
            events.append(event)
        return events

    def _resume_after_live(self) -> None:
        """Polling continues where Live Tail left off, overlapping so nothing falls in between."""
        if self._history_due:
            # The session ended before the look-back was read: polling reads it from the start.
            self._history_due = False
            return
        start = self._resume_from()
        for group in self.groups:
            self._next_start[group] = start

    def _resume_from(self) -> int:
        newest = max(self._seen.values(), default=self._wall_ms())
        return min(self._wall_ms(), newest) - self.overlap_ms


def _in_this_context(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` run, in whichever pool thread, in a copy of the context it was wrapped in: a worker
    thread starts with an empty one, and its AWS calls would go to opsbot's own account instead of the
    account, region and person of the request (``bot.aws.clients.use_target``). One copy per call: a
    context cannot be entered by two threads at once."""
    context = contextvars.copy_context()

    def run(*args: Any) -> Any:
        return context.copy().run(function, *args)

    return run
