"""``/apilogs <id>``: the whole story of one request across API Gateway and its Lambda functions.

The search is targeted, not a scan (the original apilogs read every event of the last hour and let the
user grep):

1. API Gateway side: the execution log group (REST) and the stage's access-log group are searched for
   the id as one quoted term, in a window of +/- 5 minutes around the time a REST request id encodes.
   Extended, HTTP API, Lambda and X-Ray ids lead to the API request id on the way (one more search).
2. From those lines: the function each call went to (``Endpoint request URI``) and its Lambda request
   id(s) (``x-amzn-RequestId=`` in the endpoint response headers, ``AWS Integration Endpoint
   RequestId``, ``Lambda request id:``), status and latencies.
3. Lambda side: only the named function's group is searched for each Lambda request id; without a
   name, every discovered group is searched for the ids we have (the API id catches functions that log
   it: the seed post's technique, Powertools ``correlation_id``). Authorizer calls, whose Lambda id
   API Gateway does not log, are matched by their time window; without an execution log (HTTP APIs)
   the authorizers' groups are searched for the API id in the same round.
4. Each invocation is then read whole from its stream, START to REPORT, so ``print()`` lines that
   carry no id are included. A line that mentions the API id but names no invocation (a ``print()``)
   is placed in the invocation around it in its stream, which runs one invocation at a time.
5. Everything is merged by timestamp across groups (ties by ingestion time) and deduplicated by
   event id.

Every call goes through the shared CloudWatch limiter (``bot.aws.logs``).
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from bot import tracing
from bot.aws import logs as cw
from bot.config import Settings
from bot.core.apilogs import discovery as disc
from bot.core.apilogs.correlate import (
    ApiRequestInfo,
    InvocationSummary,
    Sighting,
    access_request_ids,
    api_ids_in,
    enclosing_invocation,
    error_events,
    exec_request_ids,
    invocation_slice,
    lambda_ids_in,
    read_api_side,
    sightings,
    summarise_invocation,
)
from bot.core.apilogs.formats import parse_lambda_line, split_exec_line
from bot.core.apilogs.ids import IdKind, RequestId, parse_request_id, uuid1_time
from bot.core.apilogs.links import insights_url
from bot.core.apilogs.model import (
    ApiStage,
    CallStats,
    Discovery,
    FunctionRef,
    LogEvent,
    SearchRecord,
    merge_events,
    sort_key,
)
from bot.core.apilogs.scope import ReadLimit
from bot.core.common.timeparse import format_time, parse_time, to_epoch_ms
from bot.errors import UsageError

T = TypeVar("T")

HALF_WINDOW = timedelta(minutes=5)
# What a lookup cut short by its time limit can do about it, by where it was asked.
MORE_TIME = {
    "slack": "The CLI (`opsbot apilogs ID --timeout N`) can search longer.",
    "cli": "Raise --timeout to search longer.",
}
DEFAULT_SINCE = "1h"
# The longest a Lambda invocation can run: its REPORT may come this long after API Gateway's call.
LAMBDA_MAX_MS = 15 * 60 * 1000
# API Gateway and Lambda stamp lines with different hosts' clocks.
CLOCK_SLACK_MS = 2_000
# A call window longer than this is not read whole (a long invocation's stream is read instead).
MAX_CALL_SPAN_MS = 30_000
# The most lines of a call's span read in one go; a busier function has its invocation's stream read.
CALL_WINDOW_EVENTS = 1_000
MAX_INVOCATIONS = 20
# Around a line without a Lambda request id, its stream is read over growing spans until the START
# before it and the REPORT after it are in hand: most invocations are short, so the first span does.
LOCATE_SPANS_MS = (2_000, 10_000, 60_000, 300_000, LAMBDA_MAX_MS)
# Lines without an id placed per function search (each may cost a read or more of its stream).
MAX_LOCATED = 5
LOCATE_MAX_EVENTS = 20_000


@dataclass
class LookupResult:
    request: RequestId
    stage: ApiStage
    start_ms: int
    end_ms: int
    events: list[LogEvent]
    api: ApiRequestInfo | None
    invocations: list[InvocationSummary]
    searches: list[SearchRecord]
    stats: CallStats
    notes: list[str] = field(default_factory=list)
    likely_causes: list[str] = field(default_factory=list)
    elapsed_ms: int = 0
    insights_url: str = ""

    @property
    def found(self) -> bool:
        return bool(self.events)

    @property
    def complete(self) -> bool:
        """False when the time limit stopped a search with more to read."""
        return not any(s.cut_short for s in self.searches)

    @property
    def errors(self) -> list[LogEvent]:
        return error_events(self.events)

    @property
    def groups(self) -> list[str]:
        return list(dict.fromkeys(e.group for e in self.events))

    @property
    def searched_groups(self) -> list[str]:
        return list(dict.fromkeys(s.group for s in self.searches))

    def summary_json(self) -> dict[str, Any]:
        return {
            "request": self.request.to_json(),
            "api": self.stage.to_json(),
            "window": {
                "start": format_time(datetime.fromtimestamp(self.start_ms / 1000, UTC)),
                "end": format_time(datetime.fromtimestamp(self.end_ms / 1000, UTC)),
            },
            "found": self.found,
            "complete": self.complete,
            "requestInfo": self.api.to_json() if self.api else None,
            "invocations": [i.to_json() for i in self.invocations],
            "groups": self.groups,
            "errors": len(self.errors),
            "searches": [s.to_json() for s in self.searches],
            "calls": self.stats.to_json(),
            "elapsedMs": self.elapsed_ms,
            "notes": list(self.notes),
            "likelyCauses": list(self.likely_causes),
            "insightsUrl": self.insights_url,
        }

    def to_json(self) -> dict[str, Any]:
        return {"events": [e.to_json() for e in self.events], "summary": self.summary_json()}


def search_window(
    request: RequestId, *, since: str = "", until: str = "", now: datetime | None = None
) -> tuple[int, int]:
    """[start, end] in epoch ms: around the id's own time when it has one, else --since/--until."""
    now = now or datetime.now(UTC)
    if request.time is not None and not since and not until:
        start, end = request.time - HALF_WINDOW, request.time + HALF_WINDOW
        if start < now:  # nothing is logged after now, unless the id's clock ran ahead of ours
            end = min(end, now)
        return to_epoch_ms(start), to_epoch_ms(end)
    end = parse_time(until, now=now) if until else now
    # Without --since, the hour before the end (--until 3h ago searches 4h ago .. 3h ago).
    start = parse_time(since, now=now) if since else parse_time(DEFAULT_SINCE, now=end)
    if start >= end:
        raise UsageError(f"--since ({format_time(start)}) must be before --until ({format_time(end)}).")
    return to_epoch_ms(start), to_epoch_ms(end)


class _Session:
    """One lookup's searches: runs them through the limiter, in parallel, and records each."""

    def __init__(self, deadline: float | None, limit: ReadLimit | None = None) -> None:
        self.deadline = deadline
        # The caller's read scope: a group outside it is never read, only named as skipped.
        self.limit = limit
        self.skipped: list[str] = []
        self.stats = CallStats()
        self.searches: list[SearchRecord] = []
        self.missing: set[str] = set()
        # Searches that AWS throttling kept from finishing before the deadline.
        self.throttled_out = 0
        self._lock = threading.Lock()

    def search(
        self,
        group: str,
        term: str,
        start_ms: int,
        end_ms: int,
        *,
        purpose: str,
        stream: str = "",
    ) -> list[LogEvent]:
        return self.read(group, term, start_ms, end_ms, purpose=purpose, stream=stream).events

    def read(
        self,
        group: str,
        term: str,
        start_ms: int,
        end_ms: int,
        *,
        purpose: str,
        stream: str = "",
        max_pages: int | None = None,
        page_size: int | None = None,
    ) -> cw.FilterResult:
        if not group or group in self.missing:
            return cw.FilterResult()
        if not self.allows(group):
            return cw.FilterResult()
        result = cw.filter_events(
            group,
            start_ms=start_ms,
            end_ms=end_ms,
            term=term,
            streams=[stream] if stream else (),
            max_pages=max_pages,
            page_size=page_size,
            deadline=self.deadline,
            stats=self.stats,
        )
        record = SearchRecord(
            group,
            term,
            start_ms,
            end_ms,
            len(result.events),
            result.missing,
            stream,
            purpose,
            cut_short=result.deadline_hit,
        )
        with self._lock:
            if result.missing:
                self.missing.add(group)
            if result.throttled:
                self.throttled_out += 1
            self.searches.append(record)
        return result

    def allows(self, group: str) -> bool:
        if self.limit is None or self.limit.allows_group(group):
            return True
        with self._lock:
            if group not in self.skipped:
                self.skipped.append(group)
        return False

    @property
    def cut_short(self) -> int:
        return sum(1 for record in self.searches if record.cut_short)

    def parallel(self, jobs: Sequence[Callable[[], T]]) -> list[T]:
        if len(jobs) <= 1:
            return [job() for job in jobs]
        # Each search in a copy of the lookup's context: its log lines keep the request's fields and its
        # FilterLogEvents spans stay children of the lookup's (bot.observability, bot.tracing).
        contexts = [contextvars.copy_context() for _ in jobs]
        with ThreadPoolExecutor(max_workers=max(1, cw.LIMITER.concurrency)) as pool:
            return list(pool.map(lambda pair: pair[0].run(pair[1]), zip(contexts, jobs, strict=True)))


@tracing.span("apilogs.lookup")
def lookup(
    request_text: str,
    settings: Settings,
    *,
    api: str = "",
    stage: str = "",
    since: str = "",
    until: str = "",
    now: datetime | None = None,
    deadline: float | None = None,
    asked_from: str = "",
    limit: ReadLimit | None = None,
) -> LookupResult:
    """Find every log event of one request. ``deadline`` is a ``time.monotonic()`` value;
    ``asked_from`` ("slack", "cli") chooses the advice given when the deadline cut searches short;
    ``limit`` the caller's read scope (an API or stage outside it is refused, a group outside it is not
    read)."""
    began = time.monotonic()
    now = now or datetime.now(UTC)
    request = parse_request_id(request_text, now=now)
    if since:
        parse_time(since, now=now)  # a bad --since is a usage error even when the id has a time
    if until:
        parse_time(until, now=now)
    target = disc.resolve_stage(
        api or (limit.default_api() if limit else "") or settings.default_api,
        stage or (limit.default_stage() if limit else "") or settings.default_stage,
        region=settings.region,
        limit=limit,
    )
    start_ms, end_ms = search_window(request, since=since, until=until, now=now)
    run = _Lookup(request, target, start_ms, end_ms, _Session(deadline, limit), now)
    run.explicit_window = bool(since or until)
    run.more_time = MORE_TIME.get(asked_from, "")
    result = run.execute()
    result.elapsed_ms = int((time.monotonic() - began) * 1000)
    return result


class _Lookup:
    def __init__(
        self,
        request: RequestId,
        stage: ApiStage,
        start_ms: int,
        end_ms: int,
        session: _Session,
        now: datetime,
    ) -> None:
        self.request = request
        self.stage = stage
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.session = session
        self.now_ms = to_epoch_ms(now)
        self.notes: list[str] = []
        self._discovery: Discovery | None = None
        # --since/--until given: the window is the user's, not the one around the id's own time.
        self.explicit_window = False
        self.more_time = ""  # how to give the lookup more time, where it was asked

    # -- helpers ----------------------------------------------------------------------------------
    def discovery(self) -> Discovery:
        if self._discovery is None:
            self._discovery = disc.discover(self.stage)
            self.notes.extend(self._discovery.notes)
        return self._discovery

    def window_for_api_id(self, api_id: str) -> tuple[int, int]:
        try:
            moment = uuid1_time(api_id)
        except ValueError:
            return self.start_ms, self.end_ms
        start, end = to_epoch_ms(moment - HALF_WINDOW), to_epoch_ms(moment + HALF_WINDOW)
        if not (self.start_ms - LAMBDA_MAX_MS <= start <= self.end_ms + LAMBDA_MAX_MS):
            return self.start_ms, self.end_ms
        return start, min(end, self.now_ms + 60_000)

    # -- the steps --------------------------------------------------------------------------------
    def execute(self) -> LookupResult:
        term = self.request.value
        exec_group, access_group = self.stage.execution_log_group, self.stage.access_log_group
        exec_hits, access_hits = self.session.parallel(
            [
                lambda: self.session.search(
                    exec_group, term, self.start_ms, self.end_ms, purpose="execution log"
                ),
                lambda: self.session.search(
                    access_group, term, self.start_ms, self.end_ms, purpose="access log"
                ),
            ]
        )
        api_id = self._api_request_id(exec_hits, access_hits)
        exec_events = [e for e in exec_hits if split_exec_line(e.message)[0] == api_id] if api_id else []
        if api_id and api_id != term:
            # The id led us to the request; now read all of the request's lines.
            start, end = self.window_for_api_id(api_id)
            more_exec, more_access = self.session.parallel(
                [
                    lambda: self.session.search(
                        exec_group, api_id, start, end, purpose="execution log (request id)"
                    ),
                    lambda: (
                        self.session.search(
                            access_group, api_id, start, end, purpose="access log (request id)"
                        )
                        if not access_hits
                        else []
                    ),
                ]
            )
            exec_events = merge_events(exec_events, more_exec)
            access_hits = merge_events(access_hits, more_access)

        info: ApiRequestInfo | None = None
        if api_id and (exec_events or access_hits):
            info = read_api_side(exec_events, access_hits, api_id)

        lambda_hits, slices, invocations = self._lambda_side(info, api_id)
        if info is None and lambda_hits:
            # A Lambda (or X-Ray) id found in a function's log may name the API request: go back to it.
            info, exec_events, access_hits = self._back_to_api(lambda_hits)
            if info is not None and (info.calls or info.loose_lambda_ids):
                more_hits, more_slices, more_invocations = self._lambda_side(
                    info, info.request_id, skip=invocations
                )
                lambda_hits += more_hits
                slices += more_slices
                invocations += more_invocations

        events = merge_events(exec_events, access_hits, lambda_hits, *slices)
        result = LookupResult(
            request=self.request,
            stage=self.stage,
            start_ms=self.start_ms,
            end_ms=self.end_ms,
            events=events,
            api=info,
            invocations=sorted(invocations, key=lambda i: i.start_ms),
            searches=list(self.session.searches),
            stats=self.session.stats,
            notes=list(dict.fromkeys(self.notes)),
        )
        if self.session.skipped and self.session.limit is not None:
            result.notes.append(self.session.limit.skipped_note(self.session.skipped))
        if self.session.cut_short:
            stopped = f"{self.session.cut_short} of {len(result.searches)} searches"
            if self.session.throttled_out:
                why = (
                    "CloudWatch kept throttling the searches (other callers share its rate limit) and the "
                    f"time limit stopped {stopped} before they were done"
                )
            else:
                why = f"The time limit stopped {stopped} before they were done"
            advice = f" {self.more_time}" if self.more_time else ""
            result.notes.insert(0, f"{why}: this timeline may be incomplete.{advice}")
        terms = [
            t
            for t in [self.request.value, info.request_id if info else "", *(info.lambda_ids if info else [])]
            if t
        ]
        groups = result.groups or [g for g in result.searched_groups if g not in self.session.missing]
        result.insights_url = insights_url(
            self.stage.region,
            groups,
            list(dict.fromkeys(terms)),
            self.start_ms,
            max(self.end_ms, _last_ts(events)),
        )
        if not result.found:
            result.likely_causes = self._likely_causes()
        return result

    def _api_request_id(self, exec_hits: list[LogEvent], access_hits: list[LogEvent]) -> str:
        candidates = exec_request_ids(exec_hits) + access_request_ids(access_hits, self.request.value)
        # A version 1 UUID is usually the API request id, but Lambda request ids were version 1 too (the
        # seed post's 943ad105-7543-11e6-...): the lines say which it is. It is the request's own id when
        # it prefixes execution lines or is an access record's requestId, else the id of the request
        # whose lines mention it (x-amzn-RequestId=, AWS Integration Endpoint RequestId).
        if self.request.value in candidates:
            return self.request.value
        if not candidates:
            return self.request.value if self.request.kind == IdKind.API_REQUEST else ""
        if len(set(candidates)) > 1:
            self.notes.append(
                f"The id appears in the logs of {len(set(candidates))} requests; showing {candidates[0]}."
            )
        return candidates[0]

    def _lambda_window(self, info: ApiRequestInfo | None) -> tuple[int, int]:
        if info is None or info.first_ms is None or info.last_ms is None:
            return self.start_ms, self.end_ms
        return info.first_ms - 60_000, min(info.last_ms + LAMBDA_MAX_MS, self.now_ms + 60_000)

    def _lambda_side(
        self, info: ApiRequestInfo | None, api_id: str, *, skip: Sequence[InvocationSummary] = ()
    ) -> tuple[list[LogEvent], list[list[LogEvent]], list[InvocationSummary]]:
        start, end = self._lambda_window(info)
        done = {i.lambda_id for i in skip}
        jobs: list[Callable[[], list[_Found]]] = []
        if info is not None:
            # Where each named function logs (LoggingConfig): one read per function, all at once.
            named_calls = [call for call in info.calls if call.function]
            named_refs = self.session.parallel(
                [partial(disc.function_ref, c.function, self._discovery, role=c.role) for c in named_calls]
            )
            for call, ref in zip(named_calls, named_refs, strict=True):
                if call.lambda_ids:
                    span = (call.start_ms, call.end_ms) if len(call.lambda_ids) == 1 else None
                    for lambda_id in call.lambda_ids:
                        if lambda_id not in done:
                            jobs.append(
                                self._job_by_id(ref, lambda_id, start, end, "execution log", span=span)
                            )
                elif call.role == "authorizer":
                    jobs.append(self._job_authorizer(ref, call.start_ms, call.end_ms, api_id))
                else:
                    jobs.append(
                        self._job_by_id(ref, api_id, start, end, "api id in function log", locate=True)
                    )
            named = {i for call in info.calls for i in call.lambda_ids}
            for lambda_id in info.loose_lambda_ids:
                if lambda_id in named or lambda_id in done:
                    continue
                routed = self._function_for_route(info)
                refs = [routed] if routed is not None else list(self.discovery().functions)
                for each in refs:
                    jobs.append(self._job_by_id(each, lambda_id, start, end, "access log"))
            told = info.lambda_ids or any(call.function for call in info.calls)
            if not jobs and not told and api_id:
                # API Gateway logged the request but not where it went (ERROR-level logging): ask every
                # function's log for the API id.
                for each in self.discovery().functions:
                    jobs.append(
                        self._job_by_id(each, api_id, start, end, "api id in function log", locate=True)
                    )
            elif api_id and not info.calls:
                # No execution log described the calls (HTTP APIs have none; a REST stage may log access
                # records only), so nothing names the authorizer's invocation: its group is searched for
                # the API id in the same round as the integration's.
                for each in self.discovery().functions:
                    if each.role == "authorizer":
                        jobs.append(
                            self._job_by_id(each, api_id, start, end, "api id in function log", locate=True)
                        )
        else:
            terms = [self.request.value] + ([api_id] if api_id and api_id != self.request.value else [])
            for each in self.discovery().functions:
                for term in terms:
                    by_lambda_id = term == self.request.value and self.request.kind == IdKind.LAMBDA_REQUEST
                    jobs.append(
                        self._job_by_id(
                            each, term, start, end, _matched_by(self.request.kind), locate=not by_lambda_id
                        )
                    )
        found = [item for batch in self.session.parallel(jobs) for item in batch]
        return self._complete(found, done)

    def _function_for_route(self, info: ApiRequestInfo) -> FunctionRef | None:
        discovery = self.discovery()
        candidates = [info.route] if info.route else []
        if info.method and info.path:
            candidates += [f"{info.method} {info.path}", f"ANY {info.path}"]
        for route in candidates:
            ref = discovery.function_for_route(route)
            if ref is not None:
                return ref
        return None

    def _job_by_id(
        self,
        ref: FunctionRef,
        term: str,
        start: int,
        end: int,
        matched_by: str,
        *,
        span: tuple[int, int] | None = None,
        locate: bool = False,
    ) -> Callable[[], list[_Found]]:
        """Search ``ref``'s group for ``term``. With the span of API Gateway's call to the function, its
        lines of that span are read at the same time: they usually hold the whole invocation, which
        then needs no second read of its stream (one round trip less).

        ``locate`` (``term`` is an API Gateway id, not a Lambda one): a line that mentions it without
        naming its invocation (``print()``, the seed post's technique) is placed in the invocation around
        it in its stream, which is then shown whole."""
        window: tuple[int, int] | None = None
        if span is not None and 0 <= span[1] - span[0] <= MAX_CALL_SPAN_MS:
            window = (span[0] - CLOCK_SLACK_MS, span[1] + CLOCK_SLACK_MS)

        def job() -> list[_Found]:
            purpose = f"{ref.name} ({matched_by})"

            def by_id() -> list[LogEvent] | None:
                return self.session.search(ref.log_group, term, start, end, purpose=purpose)

            def call_lines() -> list[LogEvent] | None:
                assert window is not None
                # A busy function writes many lines in any span: read one bounded page, and when that
                # is not all of them, read the invocation's own stream afterwards instead.
                read = self.session.read(
                    ref.log_group,
                    "",
                    window[0],
                    window[1],
                    purpose=f"{ref.name} (call window)",
                    max_pages=1,
                    page_size=CALL_WINDOW_EVENTS,
                )
                return None if read.truncated else read.events

            hits, *rest = self.session.parallel([by_id] if window is None else [by_id, call_lines])
            hits = hits or []
            lines = rest[0] if rest else None
            named = lambda_ids_in(hits)
            # A Lambda id search may also return other invocations that mention it (a caller logging
            # its callee's id); only the invocation that is this id is ours.
            ids = [term] if term in named else list(named)
            if lines is None:
                found = [_Found(ref, lambda_id, hits, hits, matched_by) for lambda_id in ids]
            else:
                context = merge_events(hits, lines)
                found = [_Found(ref, lambda_id, hits, context, matched_by, window) for lambda_id in ids]
            if locate:
                # A stream where a hit names its invocation needs no placing of its other hits.
                named_streams = {stream for _, stream in named.values()}
                loose = [
                    e
                    for e in sorted(hits, key=sort_key)
                    if e.stream not in named_streams and not parse_lambda_line(e.message).request_id
                ]
                found += self._locate_all(ref, loose, matched_by)
            return found or [_Found(ref, "", hits, hits, "")]

        return job

    def _locate_all(self, ref: FunctionRef, loose: list[LogEvent], matched_by: str) -> list[_Found]:
        found: list[_Found] = []
        placed: set[tuple[str, str]] = set()
        for line in loose:
            if line.key in placed:
                continue
            if len(found) >= MAX_LOCATED:
                self.notes.append(
                    f"{ref.name} mentions the request in more invocations than are placed ({MAX_LOCATED})."
                )
                break
            item = self._locate(ref, line, matched_by)
            placed.add(line.key)
            if item is not None and item.invocation is not None:
                placed.update(e.key for e in item.invocation)
                found.append(item)
        return found

    def _locate(self, ref: FunctionRef, line: LogEvent, matched_by: str) -> _Found | None:
        """The invocation around ``line`` in its stream: read outwards from the line until the START
        before it and the REPORT after it are found (or 15 minutes, the longest invocation, each way)."""
        at = line.timestamp
        floor, ceiling = at - LAMBDA_MAX_MS, min(at + LAMBDA_MAX_MS, max(at, self.now_ms + 60_000))
        purpose = f"{ref.name} (invocation around a line without its id)"

        def read(start: int, end: int) -> cw.FilterResult:
            return self.session.read(ref.log_group, "", start, end, purpose=purpose, stream=line.stream)

        low, high = max(floor, at - LOCATE_SPANS_MS[0]), min(ceiling, at + LOCATE_SPANS_MS[0])
        first = read(low, high)
        lines = merge_events(first.events, [line])
        whole = not first.truncated
        for span in LOCATE_SPANS_MS[1:]:
            where = enclosing_invocation(lines, line)
            need_before = where.first is None and low > floor
            need_after = where.last is None and high < ceiling
            if where.settled or not whole or not (need_before or need_after):
                break
            jobs: list[Callable[[], cw.FilterResult]] = []
            new_low, new_high = low, high
            if need_before:
                new_low = max(floor, at - span)
                jobs.append(partial(read, new_low, low - 1))
            if need_after:
                new_high = min(ceiling, at + span)
                jobs.append(partial(read, high + 1, new_high))
            results = self.session.parallel(jobs)
            lines = merge_events(lines, *(r.events for r in results))
            low, high = new_low, new_high
            whole = not any(r.truncated for r in results) and len(lines) <= LOCATE_MAX_EVENTS
        where = enclosing_invocation(lines, line)
        if where.first is not None and where.init_ms and whole:
            # A cold start: its init output may lie before what was read.
            ordered = sorted(lines, key=sort_key)
            began = ordered[where.first]
            if parse_lambda_line(began.message).kind == "start":
                reach = began.timestamp - int(where.init_ms) - CLOCK_SLACK_MS
                if reach < low:
                    lines = merge_events(lines, read(max(floor, reach), low - 1).events)
                    where = enclosing_invocation(lines, line)
        if where.outside or where.conflict or not where.lambda_id:
            return None
        ordered = sorted(lines, key=sort_key)
        first_index = where.first if where.first is not None else 0
        last_index = where.last if where.last is not None else len(ordered) - 1
        invocation = ordered[first_index : last_index + 1]
        return _Found(ref, where.lambda_id, [line], invocation, matched_by, invocation=invocation)

    def _job_authorizer(
        self, ref: FunctionRef, call_start: int, call_end: int, api_id: str
    ) -> Callable[[], list[_Found]]:
        def job() -> list[_Found]:
            # API Gateway does not log an authorizer's Lambda request id: read the function's lines of
            # the call's time span and pick the invocation that ran inside it.
            start, end = call_start - CLOCK_SLACK_MS, call_end + CLOCK_SLACK_MS
            lines = self.session.search(
                ref.log_group, "", start, end, purpose=f"{ref.name} (authorizer call window)"
            )
            mentioning = [e for e in lines if api_id and api_id in e.message]
            named = lambda_ids_in(mentioning)
            window = (start, end)
            if named:
                return [
                    _Found(ref, lambda_id, mentioning, lines, "api id in function log", window)
                    for lambda_id in named
                ]
            starts = [
                (e, parse_lambda_line(e.message).request_id)
                for e in lines
                if parse_lambda_line(e.message).kind == "start" and call_start - CLOCK_SLACK_MS <= e.timestamp
            ]
            if len(starts) == 1:
                return [_Found(ref, starts[0][1], [], lines, "time", window)]
            if len(starts) > 1:
                self.notes.append(
                    f"The authorizer {ref.name} ran {len(starts)} times while this request was being "
                    "authorized; "
                    "its invocation cannot be told apart by time alone."
                )
            return []

        return job

    def _complete(
        self, found: list[_Found], done: set[str]
    ) -> tuple[list[LogEvent], list[list[LogEvent]], list[InvocationSummary]]:
        hits: list[LogEvent] = []
        wanted: dict[str, _Found] = {}
        for item in found:
            hits.extend(item.hits)
            if item.lambda_id and item.lambda_id not in done:
                wanted.setdefault(item.lambda_id, item)
        if len(wanted) > MAX_INVOCATIONS:
            self.notes.append(f"{len(wanted)} invocations matched; showing the first {MAX_INVOCATIONS}.")
            wanted = dict(list(wanted.items())[:MAX_INVOCATIONS])
        fill_jobs: list[Callable[[], tuple[_Found, list[LogEvent]]]] = []
        ready: list[tuple[_Found, list[LogEvent]]] = []
        for lambda_id, item in wanted.items():
            if item.invocation is not None:
                ready.append((item, item.invocation))
                continue
            for seen in sightings(item.context, lambda_id):
                fill_jobs.append(self._job_fill(item, seen))
        slices: list[list[LogEvent]] = []
        invocations: list[InvocationSummary] = []
        for item, events in ready + self.session.parallel(fill_jobs):
            if not events:
                continue
            slices.append(events)
            summary = summarise_invocation(
                events, item.lambda_id, function=item.ref.name, role=item.ref.role, matched_by=item.matched_by
            )
            if summary is not None:
                invocations.append(summary)
        return hits, slices, invocations

    def _job_fill(self, item: _Found, seen: Sighting) -> Callable[[], tuple[_Found, list[LogEvent]]]:
        start = seen.start_ms - (int(seen.init_ms or 0) + 1_000 if seen.init_ms else 0)
        if not seen.has_start:
            start = seen.start_ms - LAMBDA_MAX_MS
        end = seen.end_ms if seen.has_report and seen.end_ms else seen.start_ms + LAMBDA_MAX_MS
        end = min(end, self.now_ms + 60_000)

        # An invocation is a stretch of one stream; the context may hold other streams (the window).
        known = [e for e in item.context if e.group == seen.group and e.stream == seen.stream]

        def job() -> tuple[_Found, list[LogEvent]]:
            if item.window is not None and item.window[0] <= start and end <= item.window[1]:
                # The lines were read without a pattern over a span that holds the whole invocation
                # (the window of API Gateway's call): nothing more to fetch.
                return item, invocation_slice(known, item.lambda_id)
            stream_events = self.session.search(
                seen.group, "", start, end, purpose=f"{item.ref.name} invocation", stream=seen.stream
            )
            return item, invocation_slice(merge_events(stream_events, known), item.lambda_id)

        return job

    def _back_to_api(
        self, lambda_hits: list[LogEvent]
    ) -> tuple[ApiRequestInfo | None, list[LogEvent], list[LogEvent]]:
        api_ids = [i for i in api_ids_in(lambda_hits) if i != self.request.value]
        if not api_ids:
            return None, [], []
        api_id = api_ids[0]
        start, end = self.window_for_api_id(api_id)
        exec_hits, access_hits = self.session.parallel(
            [
                lambda: self.session.search(
                    self.stage.execution_log_group,
                    api_id,
                    start,
                    end,
                    purpose="execution log (from function log)",
                ),
                lambda: self.session.search(
                    self.stage.access_log_group, api_id, start, end, purpose="access log (from function log)"
                ),
            ]
        )
        exec_events = [e for e in exec_hits if split_exec_line(e.message)[0] == api_id]
        if not exec_events and not access_hits:
            return ApiRequestInfo(request_id=api_id), [], []
        return read_api_side(exec_events, access_hits, api_id), exec_events, access_hits

    def _likely_causes(self) -> list[str]:
        causes: list[str] = []
        stage = self.stage
        when = f"{_iso(self.start_ms)} to {_iso(self.end_ms)}"
        if stage.kind == "REST":
            if stage.execution_log_group in self.session.missing:
                causes.append(
                    f"Execution logging is not enabled on stage {stage.stage}: the group "
                    f"{stage.execution_log_group} does not exist "
                    f"(logging level {stage.logging_level or 'OFF'})."
                )
            elif stage.logging_level == "ERROR":
                causes.append(
                    f"Stage {stage.stage} logs errors only (logging level ERROR): successful requests "
                    "leave no "
                    "execution log."
                )
            elif stage.logging_level in {"", "OFF"}:
                causes.append(f"Execution logging is off on stage {stage.stage} (logging level OFF).")
        if not stage.access_log_group:
            causes.append(f"Stage {stage.stage} has no access logging configured.")
        elif stage.access_log_group in self.session.missing:
            causes.append(f"The access-log group {stage.access_log_group} does not exist.")
        if self.request.time is not None:
            request_ms = to_epoch_ms(self.request.time)
            if self.explicit_window and not self.start_ms <= request_ms <= self.end_ms:
                causes.insert(
                    0,
                    f"The id is from {_iso(request_ms)}, outside the window you searched ({when}); drop "
                    "--since/--until to search around the id's own time.",
                )
            causes.extend(self._age_causes(request_ms))
        else:
            causes.append(
                f"The request may be older than the window searched ({when}); try a larger --since."
            )
        causes.append(
            "The request may have gone to another API, stage or region "
            f"(searched {stage.label} in {stage.region})."
        )
        return causes

    def _age_causes(self, request_ms: int) -> list[str]:
        """Whether the id is too old for the logs that exist (retention, or older than the group)."""
        group = self.stage.execution_log_group or self.stage.access_log_group
        if not group or group in self.session.missing or not self.session.allows(group):
            return []
        try:
            info = cw.describe_group(group, stats=self.session.stats)
        except Exception:  # the explanation is a courtesy; the lookup's answer stands without it
            return []
        if info is None:
            return []
        if info.retention_days is not None and self.now_ms - request_ms > info.retention_days * 86_400_000:
            return [
                f"The id is from {_iso(request_ms)}, older than the log retention of {group} "
                f"({info.retention_days} days): its logs have been deleted."
            ]
        if info.created_ms and request_ms < info.created_ms - 60_000:
            return [
                f"The id is from {_iso(request_ms)}, before the log group {group} was created ({_iso(info.created_ms)})."
            ]
        return []


@dataclass
class _Found:
    ref: FunctionRef
    lambda_id: str
    hits: list[LogEvent]  # lines that are about the request (shown)
    context: list[LogEvent]  # lines read to locate the invocation (may hold other invocations)
    matched_by: str
    # Set when ``context`` is every line of the group in this [start, end] (read without a pattern).
    window: tuple[int, int] | None = None
    # The invocation's lines, START to REPORT, when they were read already (placing a print() line).
    invocation: list[LogEvent] | None = None


def _matched_by(kind: IdKind) -> str:
    return {
        IdKind.LAMBDA_REQUEST: "lambda id",
        IdKind.XRAY: "x-ray trace id",
    }.get(kind, "api id in function log")


def _iso(ms: int) -> str:
    return format_time(datetime.fromtimestamp(ms / 1000, UTC))


def _last_ts(events: Sequence[LogEvent]) -> int:
    return events[-1].timestamp if events else 0
