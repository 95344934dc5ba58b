"""CloudWatch Logs: every call opsbot makes goes through one shared limiter.

CloudWatch quotas are per account and region (FilterLogEvents: 5 requests/s), so one process must not
fire more than that however many lookups or tails run in it. ``LIMITER`` holds a token bucket per
operation and a semaphore bounding concurrent calls. When AWS throttles anyway (other processes share
the quota), botocore's adaptive retries absorb it first; if they give up we slow the bucket down and
retry until the caller's deadline, so throttling makes a lookup slower, never wrong or failed: a search
that throttling keeps from finishing by the deadline returns what it read, marked ``deadline_hit``.
A search with a deadline uses a client that retries once only (``logs_client(bounded=True)``):
botocore's adaptive backoff over eight attempts can sleep for a minute inside one call, past any
deadline, while ``Limiter.call`` checks the deadline before each retry.

The quota is the account's, not the process's: on Lambda every Slack command runs in a container of its
own, so four lookups and a tail are five processes whose limiters know nothing of each other. The Slack
function therefore also paces ``FilterLogEvents`` through a ``SharedBudget`` in the state table
(``share_budget``): start times reserved in one DynamoDB item, a batch per write, so that no second of
the account holds more than five calls. Without the table (CLI, ``opsbot serve``), or when DynamoDB
refuses, the per-process limiter and the retries above are what is left. A call waits for its start at
most until its deadline and never more than ``max_wait`` (5 s); one further ahead goes at once under that
same fallback, and an item holding starts beyond the ``horizon`` (10 s; a clock running fast elsewhere, a
hand edit) is overwritten from now, so no item can put the account's lookups to sleep.

Pagination follows ``nextToken`` until it is absent: FilterLogEvents may return empty pages while it
keeps searching.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from bot.aws.clients import client, own_client, register_cache
from bot.aws.errors import THROTTLING_CODES, error_code, translate
from bot.aws.state import RateLog, StateTable

log = logging.getLogger(__name__)

T = TypeVar("T")

# Requests per second per account and region (CloudWatch Logs service quotas).
DEFAULT_RATES: Mapping[str, float] = {
    "FilterLogEvents": 5.0,
    "GetLogEvents": 10.0,
    "DescribeLogGroups": 5.0,
    "DescribeLogStreams": 5.0,
    "StartLiveTail": 5.0,
    "StartQuery": 5.0,
}
DEFAULT_CONCURRENCY = 4
# How long one call may keep retrying throttling before the caller hears about it.
DEFAULT_THROTTLE_PATIENCE = 120.0
MAX_PAGE_EVENTS = 10_000
# botocore attempts (the first included) of a call made for a caller with a deadline.
BOUNDED_ATTEMPTS = 2


class _Bucket:
    def __init__(self, rate: float) -> None:
        self.nominal = rate
        self.rate = rate
        self.tokens = rate  # a full second's worth: a burst of `rate` calls may start at once
        self.updated = 0.0


# -- the account's budget, shared by every container -----------------------------------------------

# Operations paced across containers: the one whose quota lookups and tails spend.
SHARED_OPERATIONS = frozenset({"FilterLogEvents"})


@dataclass
class _Reserved:
    starts: list[int] = field(default_factory=list)  # epoch ms reserved and not yet used, oldest first
    reserving: bool = False
    waiting: int = 0
    guess: RateLog | None = None


@dataclass
class BudgetStats:
    reservations: int = 0
    requests: int = 0  # DynamoDB requests made (a reservation takes two when another container wrote)
    granted: int = 0  # start times calls went at
    stale: int = 0  # start times found passed by more than the grace (the caller was late): not used
    busy: int = 0  # ... of which late because every concurrency slot of the container was taken
    fallbacks: int = 0
    skipped: int = 0  # calls that went without waiting: their start was past the deadline or max_wait
    resets: int = 0  # items found holding starts beyond the horizon, overwritten from now


class SharedBudget:
    """Start times for calls, reserved in the state table so that every container of the account together
    stays within the quota.

    A call waits for a start time of its own. Threads that need one while none is held ask together: one
    of them reserves a start for each (one conditional PutItem, ``StateTable.reserve_starts``), so the
    cost is a DynamoDB request per batch of calls, not per call. The schedule is a sliding window of
    ``1 + margin`` seconds holding at most the quota's calls: the margin absorbs how late a call may
    reach AWS after its start (a start older than ``grace`` is not used), so no real second of the
    account's sees more than the quota whatever the phase of the containers' clocks (Lambda's are
    synchronised by the Amazon Time Sync Service).

    DynamoDB failing (no table, AccessDenied, an outage) never fails a call: the container goes on with its
    own limiter for ``retry_after`` seconds, and says so in its log.
    """

    def __init__(
        self,
        table: StateTable,
        *,
        operations: frozenset[str] = SHARED_OPERATIONS,
        margin: float = 0.1,
        grace: float = 0.04,
        gather: float = 0.003,
        retry_after: float = 60.0,
        max_wait: float = 5.0,
        horizon: float = 10.0,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not 0 <= grace < margin:
            raise ValueError("the grace must be shorter than the margin it is taken from")
        if horizon <= 1.0 + margin:
            raise ValueError("the horizon must be longer than the window, or every queue looks corrupt")
        self.table = table
        self.operations = operations
        self.margin = margin
        self.grace = grace
        self.gather = gather
        self.retry_after = retry_after
        self.max_wait = max_wait
        self.horizon = horizon
        self.stats = BudgetStats()
        self._wall = wall
        self._sleep = sleep
        self._cond = threading.Condition()
        self._reserved: dict[str, _Reserved] = {}
        self._off_until = 0.0

    def reset(self) -> None:
        """Forget the reserved starts, the guess of the item and any pause (the endpoint changed)."""
        with self._cond:
            self._reserved.clear()
            self._off_until = 0.0

    def covers(self, operation: str) -> bool:
        return operation in self.operations

    @property
    def available(self) -> bool:
        return self._wall() >= self._off_until

    def wait_turn(
        self,
        operation: str,
        quota: float,
        *,
        within: float | None = None,
        gate: threading.Semaphore | None = None,
    ) -> None:
        """Return at this call's start time (or at once, when the call is not paced by the shared budget),
        holding ``gate`` (the limiter's concurrency slot) when one is given.

        A call waits for its start at most ``within`` seconds (what is left before the caller's deadline)
        and never more than ``max_wait``. A start further ahead is not waited for: the call goes at once,
        paced by the container's own limiter and the retries of throttling, as when DynamoDB is
        unavailable. Its start stays reserved (an unused start only leaves a place of the quota empty;
        taking it back is not safe, the item keeps only the last ``limit`` starts).

        The sleep happens before ``gate`` is taken, so that waiting for the account's budget does not keep
        this container's other CloudWatch calls (DescribeLogGroups, GetLogEvents) from their slots; the
        gate is then taken within the grace of the start, or the start is late like any other.
        """
        limit = max(1, int(quota))
        bound = self.max_wait if within is None else max(0.0, min(within, self.max_wait))
        latest = self._wall() + bound
        while True:
            start = self._next_start(operation, limit)
            if start is None:
                break
            if start / 1000 > latest:
                self._skip(operation, start)
                break
            delay = start / 1000 - self._wall()
            if delay > 0:
                self._sleep(delay)  # at most ``bound``: the start is no later than ``latest``
            if gate is not None and not gate.acquire(
                timeout=max(0.0, start / 1000 + self.grace - self._wall())
            ):
                # Every slot busy past the grace: calling later could crowd the window after the start.
                with self._cond:
                    self.stats.stale += 1
                    self.stats.busy += 1
                continue
            on_time = self._wall() * 1000 <= start + self.grace * 1000
            with self._cond:
                if on_time:
                    self.stats.granted += 1
                    return
                # Late (a busy machine): calling now could crowd the window after it; take another start.
                self.stats.stale += 1
            if gate is not None:
                gate.release()
        if gate is not None:
            gate.acquire()

    def _skip(self, operation: str, start: int) -> None:
        ahead = start / 1000 - self._wall()
        with self._cond:
            self.stats.skipped += 1
            first = self.stats.skipped == 1
        (log.warning if first else log.debug)(
            "A %s call went without waiting for its start in the account's shared budget, %.1f s ahead "
            "(past the call's deadline or the %.0f s a call waits at most); this container's own limiter "
            "and the retries of throttling pace it.",
            operation,
            ahead,
            self.max_wait,
        )

    def _next_start(self, operation: str, limit: int) -> int | None:
        with self._cond:
            state = self._reserved.setdefault(operation, _Reserved())
            while True:
                if not self.available:
                    return None
                # Starts whose time has passed beyond the grace are lost to a caller that did not come.
                oldest = self._wall() * 1000 - self.grace * 1000
                while state.starts and state.starts[0] < oldest:
                    state.starts.pop(0)
                    self.stats.stale += 1
                if state.starts:
                    return state.starts.pop(0)
                if not state.reserving:
                    state.reserving = True
                    break
                state.waiting += 1
                try:
                    self._cond.wait(timeout=5.0)
                finally:
                    state.waiting -= 1
        try:
            if self.gather > 0:
                self._sleep(self.gather)  # threads of the same lookup starting together ask together
            with self._cond:
                wanted = min(limit, state.waiting + 1)
                guess = state.guess
            reservation = self.table.reserve_starts(
                operation,
                wanted,
                limit=limit,
                window_ms=round((1.0 + self.margin) * 1000),
                now_ms=int(self._wall() * 1000),
                guess=guess,
                max_ahead_ms=round(self.horizon * 1000),
                dynamodb=_budget_client(),
            )
        except Exception as error:
            with self._cond:
                state.reserving = False
                self._off_until = self._wall() + self.retry_after
                self.stats.fallbacks += 1
                self._cond.notify_all()
            log.warning(
                "%s is paced by this container alone for %.0f s: the account's shared budget in the "
                "state table %s is unavailable (%s).",
                operation,
                self.retry_after,
                self.table.name,
                getattr(error, "message", None) or error,
            )
            return None
        first_reset = False
        with self._cond:
            state.reserving = False
            state.guess = reservation.log
            self.stats.reservations += 1
            self.stats.requests += reservation.requests
            mine, *others = reservation.starts
            state.starts = sorted(state.starts + others)
            if reservation.discarded is not None:
                self.stats.resets += 1
                first_reset = self.stats.resets == 1
            self._cond.notify_all()
        if reservation.discarded is not None:
            (log.warning if first_reset else log.debug)(
                "The account's %s budget in the state table %s held starts up to %.0f s ahead of this "
                "container's clock (a clock running fast elsewhere, or a hand edit); it was reset from now.",
                operation,
                self.table.name,
                reservation.discarded / 1000 - self._wall(),
            )
        return mine


def _budget_client() -> Any:
    # The budget sits in the way of a lookup: a slow DynamoDB must turn into the local fallback quickly,
    # not into botocore's eight attempts with the default timeouts.
    # The rate reservations are in opsbot's own state table, whatever account the lookup reads.
    return own_client("dynamodb", attempts=2, connect_timeout=1.0, read_timeout=1.0)


class Limiter:
    """Token buckets per operation plus a bound on concurrent calls, shared by every thread; with a
    ``SharedBudget``, its operations are also paced across every container of the account."""

    def __init__(
        self,
        rates: Mapping[str, float] = DEFAULT_RATES,
        *,
        default_rate: float = 5.0,
        concurrency: int = DEFAULT_CONCURRENCY,
        retry_delays: Sequence[float] = (0.5, 1.0, 2.0, 4.0, 8.0),
        patience: float = DEFAULT_THROTTLE_PATIENCE,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        shared: SharedBudget | None = None,
    ) -> None:
        self.rates = dict(rates)
        self.default_rate = default_rate
        self.concurrency = concurrency
        self.retry_delays = tuple(retry_delays)
        self.patience = patience
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}
        self._slots = threading.BoundedSemaphore(concurrency)
        self.shared = shared

    def share(self, budget: SharedBudget | None) -> None:
        """Pace the budget's operations across containers too (None: this process alone)."""
        self.shared = budget

    def _bucket(self, operation: str) -> _Bucket:
        bucket = self._buckets.get(operation)
        if bucket is None:
            bucket = _Bucket(self.rates.get(operation, self.default_rate))
            bucket.updated = self._clock()
            self._buckets[operation] = bucket
        return bucket

    def _take(self, operation: str) -> float:
        """Take a token if one is there (0.0), else say how long to wait for one."""
        with self._lock:
            bucket = self._bucket(operation)
            now = self._clock()
            elapsed = max(0.0, now - bucket.updated)
            bucket.updated = now
            # A slowed bucket recovers a little with every second without throttling.
            bucket.rate = min(bucket.nominal, bucket.rate + 0.1 * elapsed * bucket.nominal)
            bucket.tokens = min(bucket.rate, bucket.tokens + elapsed * bucket.rate)
            # The epsilon keeps float rounding from turning a due token into an endless tiny wait.
            if bucket.tokens >= 1.0 - 1e-9:
                bucket.tokens = max(0.0, bucket.tokens - 1.0)
                return 0.0
            return max(1e-3, (1.0 - bucket.tokens) / bucket.rate)

    def slowdown(self, operation: str) -> None:
        """AWS throttled us: halve this operation's rate (it recovers gradually)."""
        with self._lock:
            bucket = self._bucket(operation)
            bucket.rate = max(bucket.nominal / 8, bucket.rate / 2)
            bucket.tokens = min(bucket.tokens, 0.0)

    def current_rate(self, operation: str) -> float:
        with self._lock:
            return self._bucket(operation).rate

    def _wait_token(self, operation: str) -> None:
        while True:
            wait = self._take(operation)
            if wait <= 0:
                return
            self._sleep(wait)

    @contextmanager
    def slot(self, operation: str, *, deadline: float | None = None) -> Iterator[None]:
        """Wait for a token of ``operation`` and a free concurrency slot (and, for an operation of the
        shared budget, its start time, waited for until ``deadline`` at most); hold the slot while inside.

        An operation of the shared budget takes its token and waits for its start before the slot: the
        waits hold nothing of this container's, and the slot, taken at the start, bounds only calls in
        flight. (A lookup runs as many threads as there are slots, so a slot is free at its start unless
        other operations of the same container hold them all; then the start is late and another is
        taken.) Other operations wait for their token in the slot, as a burst of calls freed together
        would otherwise go at once.
        """
        shared = self.shared
        if shared is None or not shared.covers(operation):
            with self._slots:
                self._wait_token(operation)
                yield
            return
        self._wait_token(operation)
        with self._lock:
            quota = self._bucket(operation).nominal
        within = None if deadline is None else deadline - self._clock()
        shared.wait_turn(operation, quota, within=within, gate=self._slots)
        try:
            yield
        finally:
            self._slots.release()

    def call(
        self,
        operation: str,
        func: Callable[[], T],
        *,
        deadline: float | None = None,
        stats: CallStats | None = None,
    ) -> T:
        """Run one AWS call within the limits; retry throttling with backoff until ``deadline``."""
        give_up_at = self._clock() + self.patience if deadline is None else deadline
        attempt = 0
        while True:
            with self.slot(operation, deadline=deadline):
                try:
                    return func()
                except Exception as error:
                    if error_code(error) not in THROTTLING_CODES:
                        raise
                    throttled = error
            if stats is not None:
                stats.count_throttle()
            self.slowdown(operation)
            delay = self.retry_delays[min(attempt, len(self.retry_delays) - 1)] if self.retry_delays else 0.0
            delay *= 0.5 + random.random() / 2
            attempt += 1
            if self._clock() + delay > give_up_at:
                raise throttled
            log.debug("%s throttled; retry %d in %.2fs", operation, attempt, delay)
            self._sleep(delay)


LIMITER = Limiter()


@contextmanager
def use_limiter(limiter: Limiter) -> Iterator[Limiter]:
    """Swap the shared limiter (benchmarks and tests with their own clocks or rates)."""
    global LIMITER
    previous, LIMITER = LIMITER, limiter
    try:
        yield limiter
    finally:
        LIMITER = previous


def _reset_shared_budget() -> None:
    if LIMITER.shared is not None:
        LIMITER.shared.reset()


register_cache(_reset_shared_budget)


def share_budget(state_table: str) -> None:
    """Pace FilterLogEvents across every container of the account through ``state_table`` (the Slack
    function on Lambda, whose commands run in containers of their own)."""
    LIMITER.share(SharedBudget(StateTable(state_table)))


# -- events and counters -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogEvent:
    """One CloudWatch Logs event, wherever it came from (FilterLogEvents or Live Tail)."""

    group: str
    stream: str
    timestamp: int  # epoch ms, the event's own time
    message: str
    event_id: str = ""
    ingestion_time: int = 0

    @property
    def key(self) -> tuple[str, str]:
        """Identity for deduplication: event ids are unique within a log group."""
        if self.event_id:
            return (self.group, self.event_id)
        # Live Tail results carry no event id; the content identifies them well enough.
        return (self.group, f"{self.stream}\x00{self.timestamp}\x00{self.ingestion_time}\x00{self.message}")

    def to_json(self) -> dict[str, Any]:
        return {
            "timestamp": self.timestamp,
            "group": self.group,
            "stream": self.stream,
            "message": self.message,
            "eventId": self.event_id,
            "ingestionTime": self.ingestion_time,
        }


@dataclass
class CallStats:
    """CloudWatch calls made, events transferred and throttling met (searches run in threads)."""

    calls: dict[str, int] = field(default_factory=dict)
    events: int = 0
    throttled: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, operation: str, events: int = 0) -> None:
        with self._lock:
            self.calls[operation] = self.calls.get(operation, 0) + 1
            self.events += events

    def count_throttle(self) -> None:
        with self._lock:
            self.throttled += 1

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def to_json(self) -> dict[str, Any]:
        return {"calls": dict(self.calls), "events": self.events, "throttled": self.throttled}


def quote_term(term: str) -> str:
    """A CloudWatch filter pattern matching ``term`` literally: one double-quoted term.

    Quoting makes every character literal (ids hold ``-`` and ``=``, which would otherwise be pattern
    syntax); backslashes and quotes are escaped so no input can close the quote and add syntax.
    """
    escaped = term.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def contains_term(message: str, term: str) -> bool:
    """Our own check of what a quoted-term filter promised (CloudWatch and moto differ)."""
    return term in message


# -- FilterLogEvents ------------------------------------------------------------------------------


def logs_client(*, bounded: bool = False) -> Any:
    """The CloudWatch Logs client; ``bounded`` for calls that must end by a deadline (the retries of
    throttling are then left to ``Limiter.call``, which knows the deadline)."""
    return client("logs", attempts=BOUNDED_ATTEMPTS) if bounded else client("logs")


@dataclass
class FilterResult:
    events: list[LogEvent] = field(default_factory=list)
    missing: bool = False  # the log group does not exist
    truncated: bool = False  # stopped at max_events, max_pages or the deadline with more to read
    deadline_hit: bool = False  # truncated because the caller's deadline passed
    throttled: bool = False  # ... while AWS was still throttling (retries would have passed it)
    pages: int = 0


def filter_events(
    group: str,
    *,
    start_ms: int,
    end_ms: int,
    term: str = "",
    pattern: str = "",
    streams: Sequence[str] = (),
    max_events: int = 50_000,
    max_pages: int | None = None,
    page_size: int | None = None,
    deadline: float | None = None,
    stats: CallStats | None = None,
    recheck: Callable[[str], bool] | None = None,
) -> FilterResult:
    """Events of ``group`` in [start_ms, end_ms] that contain ``term`` (or match ``pattern``).

    ``term`` is sent as one double-quoted term and every returned event is checked again here: moto
    and CloudWatch differ in filter semantics, and only this check is ours. A group that does not exist
    is reported as ``missing`` rather than raised, so one absent group does not fail a lookup. Reading
    stops, with ``truncated`` set, after ``max_events`` events, ``max_pages`` pages that held events, or
    at ``deadline``.
    """
    if term and pattern:
        raise ValueError("give term or pattern, not both")
    kwargs: dict[str, Any] = {
        "logGroupName": group,
        "startTime": int(start_ms),
        "endTime": int(end_ms),
        "limit": page_size or MAX_PAGE_EVENTS,
    }
    if term:
        kwargs["filterPattern"] = quote_term(term)
    elif pattern:
        kwargs["filterPattern"] = pattern
    if streams:
        kwargs["logStreamNames"] = list(streams)[:100]
    keep: Callable[[str], bool] | None = (lambda m: contains_term(m, term)) if term else recheck
    logs = logs_client(bounded=deadline is not None)
    result = FilterResult()
    # Pages that brought events: an empty page with a nextToken only says CloudWatch is still searching,
    # so it does not count towards max_pages (a one-page read must not give up on it).
    filled = 0
    while True:
        if deadline is not None and time.monotonic() > deadline:
            result.truncated = result.deadline_hit = True
            break
        try:
            page = LIMITER.call(
                "FilterLogEvents", lambda: logs.filter_log_events(**kwargs), deadline=deadline, stats=stats
            )
        except Exception as error:
            if error_code(error) == "ResourceNotFoundException":
                result.missing = True
                if stats is not None:
                    stats.count("FilterLogEvents")
                return result
            if deadline is not None and error_code(error) in THROTTLING_CODES:
                # Retrying would pass the caller's time limit: what was read stands, marked as cut
                # short, so the answer can say it may be incomplete instead of losing it all.
                result.truncated = result.deadline_hit = result.throttled = True
                break
            raise translate(error, client=logs, resource=f"log group {group}") from error
        raw = page.get("events", [])
        result.pages += 1
        filled += bool(raw)
        if stats is not None:
            stats.count("FilterLogEvents", len(raw))
        for item in raw:
            message = str(item.get("message", ""))
            if keep is not None and not keep(message):
                continue
            result.events.append(
                LogEvent(
                    group=group,
                    stream=str(item.get("logStreamName", "")),
                    timestamp=int(item.get("timestamp", 0)),
                    message=message,
                    event_id=str(item.get("eventId", "")),
                    ingestion_time=int(item.get("ingestionTime", 0)),
                )
            )
        token = page.get("nextToken")
        if not token:
            break
        if len(result.events) >= max_events or (max_pages is not None and filled >= max_pages):
            result.truncated = True
            break
        kwargs["nextToken"] = token
    return result


# -- log groups -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupInfo:
    name: str
    arn: str
    retention_days: int | None
    created_ms: int


def describe_group(name: str, *, stats: CallStats | None = None) -> GroupInfo | None:
    """The group named exactly ``name`` (retention, ARN), or None when it does not exist."""
    logs = client("logs")
    try:
        page = LIMITER.call(
            "DescribeLogGroups",
            lambda: logs.describe_log_groups(logGroupNamePrefix=name, limit=50),
            stats=stats,
        )
    except Exception as error:
        raise translate(error, client=logs, resource=f"log group {name}") from error
    if stats is not None:
        stats.count("DescribeLogGroups")
    for group in page.get("logGroups", []):
        if group.get("logGroupName") == name:
            arn = str(group.get("logGroupArn") or str(group.get("arn", "")).removesuffix(":*"))
            retention = group.get("retentionInDays")
            return GroupInfo(
                name, arn, int(retention) if retention else None, int(group.get("creationTime", 0))
            )
    return None


# -- Live Tail ------------------------------------------------------------------------------------


def endpoint_supports_live_tail() -> bool:
    """Live Tail streams from ``streaming-``/``stream-`` prefixed AWS hosts; a custom endpoint given by
    IP address or to an emulator (the demo's moto server) cannot take the host prefix."""
    import ipaddress
    from urllib.parse import urlparse

    host = urlparse(client("logs").meta.endpoint_url).hostname or ""
    try:
        ipaddress.ip_address(host)
        return False
    except ValueError:
        pass
    return host.endswith((".amazonaws.com", ".amazonaws.com.cn", ".api.aws"))


def start_live_tail(
    group_arns: Sequence[str], *, pattern: str = "", stats: CallStats | None = None
) -> Iterator[dict[str, Any]]:
    """Open a Live Tail session (up to 10 groups) and yield its raw stream events.

    Each item is ``{"sessionStart": ...}``, ``{"sessionUpdate": {"sessionMetadata", "sessionResults"}}``
    or an exception event; translated AwsError on failure to open.
    """
    if not 1 <= len(group_arns) <= 10:
        raise ValueError("Live Tail takes 1 to 10 log groups")
    logs = client("logs")
    kwargs: dict[str, Any] = {"logGroupIdentifiers": list(group_arns)}
    if pattern:
        kwargs["logEventFilterPattern"] = pattern
    try:
        response = LIMITER.call("StartLiveTail", lambda: logs.start_live_tail(**kwargs), stats=stats)
    except Exception as error:
        raise translate(error, client=logs, resource="Live Tail") from error
    if stats is not None:
        stats.count("StartLiveTail")
    stream = response["responseStream"]
    try:
        yield from stream
    except Exception as error:
        raise translate(error, client=logs, resource="Live Tail") from error
    finally:
        close = getattr(stream, "close", None)
        if callable(close):
            close()
