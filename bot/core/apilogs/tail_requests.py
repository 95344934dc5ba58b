"""Fold a tail's lines into one entry per request: pure, fed with events, asked for entries.

``RequestFolder.add(events, now_ms)`` takes the lines of a tail batch (any groups, any order of arrival);
``ready(now_ms)`` returns the entries to show or to show again. The correlation is the lookup's
(``bot.core.apilogs.correlate``, ``formats``):

- execution-log lines carry ``(API request id)``; access-log records carry ``requestId`` (and
  ``integrationRequestId``, the Lambda request id). ``read_api_side`` folds them into method, path,
  status, latency and the Lambda request ids API Gateway logged (``x-amzn-RequestId=`` in the endpoint
  response headers, ``AWS Integration Endpoint RequestId``, ``Lambda request id:``);
- Lambda lines name their invocation (START, REPORT, runtime lines, JSON ``requestId``); ``print()``
  lines name none and belong to the invocation whose START precedes them in their stream (a stream runs
  one invocation at a time); a cold start's INIT_START and what the module printed while loading belong to
  the START that follows; a line that mentions an API request id (the seed post's ``API Gateway Request
  ID:``, Powertools ``correlation_id``) ties its invocation to that request;
- an authorizer invocation, whose id API Gateway does not log, is tied by time: its START inside the
  authorizer call the execution log describes.

An entry is shown once it is complete (the API side has its final status, every invocation it names has
its REPORT, and its access-log record is in when the access log is tailed) or once ``grace_ms`` have passed
since its first line was seen, whichever comes first. Lines arriving later update it (``ready`` returns it
again, marked changed). An invocation no API line names yet waits ``grace_ms`` for one before it is shown
on its own. Every line is in exactly one entry: nothing is dropped, nothing counted twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.core.apilogs.correlate import ApiRequestInfo, read_api_side
from bot.core.apilogs.formats import is_error, parse_access_line, parse_lambda_line, split_exec_line
from bot.core.apilogs.model import Discovery, LogEvent, sort_key

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

# How long an entry waits for its late lines before it is shown anyway (and an invocation for the API
# lines that name it). Measured (docs/apilogs.md, "Tail by request"): the lines of one request reach a
# polling tail of the demo stage (7 groups at 2.5 FilterLogEvents calls a second) at most one poll round
# apart (2.8 s), plus the Lambda log delivery lag (a few seconds: Lambda hands its lines to CloudWatch
# after the invocation, API Gateway as it goes). Later lines still update the entry.
GRACE_MS = 8_000
# An entry nothing has changed for this long is forgotten (memory stays bounded in a tail of hours); a
# line for it after that starts a new entry.
FORGET_MS = 2 * 60_000


def _norm_id(value: str) -> str:
    """REST request ids are UUIDs, compared in lower case (as the execution log's are read); HTTP API
    ids are base64 and case-sensitive."""
    return value.lower() if _UUID.fullmatch(value) else value


@dataclass
class _Spans:
    """The invocations of one Lambda stream as far as seen: a stream runs one invocation at a time, so a
    line without an id belongs to the invocation whose START..REPORT encloses it, and a cold start's lines
    (INIT_START up to the START) to the START that follows. Kept short: only recent ones matter."""

    starts: list[tuple[int, str]] = field(default_factory=list)  # (START time, Lambda id), time order
    ends: dict[str, int] = field(default_factory=dict)  # Lambda id -> REPORT time
    inits: list[int] = field(default_factory=list)

    def started(self, at: int, lambda_id: str) -> None:
        self.starts.append((at, lambda_id))
        self.starts.sort()
        del self.starts[:-50]
        del self.inits[:-10]

    def reported(self, at: int, lambda_id: str) -> None:
        self.ends[lambda_id] = at
        if len(self.ends) > 100:
            kept = {i for _, i in self.starts}
            self.ends = {i: t for i, t in self.ends.items() if i in kept}

    def place(self, at: int) -> str:
        """The invocation a line of time ``at`` belongs to; '' when the lines seen do not tell yet."""
        before = [(t, i) for t, i in self.starts if t <= at]
        if before:
            _, lambda_id = before[-1]
            end = self.ends.get(lambda_id)
            if end is None or at <= end:
                return lambda_id
        # Before a START: a cold start's lines when an INIT_START precedes them with no REPORT between.
        init = max((t for t in self.inits if t <= at), default=None)
        if init is None or any(init <= t <= at for t in self.ends.values()):
            return ""
        after = [(t, i) for t, i in self.starts if t >= at]
        return after[0][1] if after else ""


@dataclass
class RequestEntry:
    """One request (or an invocation, or a line, no request claims) and its lines so far."""

    key: str
    api_request_id: str = ""
    lambda_ids: list[str] = field(default_factory=list)
    events: list[LogEvent] = field(default_factory=list)
    opened_ms: int = 0  # the folder's clock when its first line was seen
    changed_ms: int = 0
    shown: bool = False
    changed: bool = True  # changed since last returned by ready()
    # Filled by refresh(): what the lines say.
    method: str = ""
    path: str = ""
    status: int | None = None
    latency_ms: int | None = None
    function: str = ""
    duration_ms: float | None = None
    errors: int = 0
    info: ApiRequestInfo | None = None
    reports: dict[str, float | None] = field(default_factory=dict)  # lambda id -> REPORT duration
    functions: dict[str, str] = field(default_factory=dict)  # lambda id -> function name
    has_access: bool = False

    @property
    def kind(self) -> str:
        """``request`` (API Gateway lines), ``invocation`` (Lambda lines only), ``line`` (neither)."""
        if self.api_request_id:
            return "request"
        return "invocation" if self.lambda_ids else "line"

    @property
    def first_ms(self) -> int:
        return self.events[0].timestamp if self.events else 0

    @property
    def failed(self) -> bool:
        """A 4xx or 5xx, or an error line (a function's ERROR behind a 200 included)."""
        return self.errors > 0 or (self.status is not None and self.status >= 400)

    @property
    def lookup_id(self) -> str:
        """The id the lookup starts from: the API request id, else the Lambda request id."""
        return self.api_request_id or (self.lambda_ids[0] if self.lambda_ids else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "requestId": self.api_request_id or None,
            "kind": self.kind,
            "method": self.method or None,
            "path": self.path or None,
            "status": self.status,
            "latencyMs": self.latency_ms,
            "function": self.function or None,
            "durationMs": self.duration_ms,
            "lambdaRequestIds": list(self.lambda_ids),
            "errors": self.errors,
            "failed": self.failed,
            "events": [e.to_json() for e in self.events],
        }


class RequestFolder:
    """Entries by request from a tail's lines. ``functions`` maps a Lambda log group to its function's
    name; ``api_groups`` are the execution and access log groups (``access_group`` the latter)."""

    def __init__(
        self,
        *,
        api_groups: Iterable[str] = (),
        access_group: str = "",
        functions: Mapping[str, str] | None = None,
        grace_ms: int = GRACE_MS,
        forget_ms: int = FORGET_MS,
    ) -> None:
        self.api_groups = set(api_groups) | ({access_group} if access_group else set())
        self.access_group = access_group
        self.functions = dict(functions or {})
        self.grace_ms = grace_ms
        self.forget_ms = forget_ms
        self.entries: dict[str, RequestEntry] = {}
        self._by_lambda: dict[str, str] = {}  # Lambda request id -> entry key
        self._spans: dict[tuple[str, str], _Spans] = {}  # per Lambda stream: its invocations' spans
        # Lines without a Lambda request id whose invocation is not known yet (their START is still to
        # come): stream -> (line, when seen).
        self._unplaced: dict[tuple[str, str], list[tuple[LogEvent, int]]] = {}
        self._keys: set[tuple[str, str]] = set()  # event keys folded (a line given twice counts once)
        self._lines = 0

    @classmethod
    def for_discovery(cls, discovery: Discovery, **options: Any) -> RequestFolder:
        """A folder for the groups of an API stage: which are API Gateway's, which function logs where."""
        stage = discovery.stage
        options.setdefault("grace_ms", GRACE_MS)
        return cls(
            api_groups=[stage.execution_log_group] if stage.execution_log_group else [],
            access_group=stage.access_log_group,
            functions={ref.log_group: ref.name for ref in discovery.functions},
            **options,
        )

    # -- feeding ----------------------------------------------------------------------------------
    def add(self, events: Iterable[LogEvent], now_ms: int) -> None:
        touched: set[str] = set()
        for event in sorted(events, key=sort_key):
            if event.key in self._keys:
                continue
            self._keys.add(event.key)
            key = self._fold(event, now_ms)
            if key:
                touched.add(key)
        for key in touched:
            entry = self.entries.get(key)
            if entry is not None:
                self._refresh(entry)
        self._match_authorizers()

    def _line_entry(self, now_ms: int) -> RequestEntry:
        self._lines += 1
        return self._entry(f"line:{self._lines}", now_ms)

    def _entry(self, key: str, now_ms: int, **values: Any) -> RequestEntry:
        entry = self.entries.get(key)
        if entry is None:
            entry = RequestEntry(key, opened_ms=now_ms, changed_ms=now_ms, **values)
            self.entries[key] = entry
        return entry

    def _put(self, entry: RequestEntry, event: LogEvent, now_ms: int) -> str:
        entry.events.append(event)
        if len(entry.events) > 1 and sort_key(entry.events[-2]) > sort_key(event):
            entry.events.sort(key=sort_key)  # a late line belongs earlier
        entry.changed = True
        entry.changed_ms = now_ms
        return entry.key

    def _fold(self, event: LogEvent, now_ms: int) -> str:
        if event.group in self.api_groups:
            request_id = ""
            if event.group == self.access_group:
                record = parse_access_line(event.message)
                request_id = _norm_id(record.request_id) if record else ""
            else:
                request_id = split_exec_line(event.message)[0] or ""
            if not request_id:
                return self._put(self._line_entry(now_ms), event, now_ms)
            entry = self._entry(request_id, now_ms, api_request_id=request_id)
            return self._put(entry, event, now_ms)
        return self._fold_lambda(event, now_ms)

    def _fold_lambda(self, event: LogEvent, now_ms: int) -> str:
        stream = (event.group, event.stream)
        line = parse_lambda_line(event.message)
        lambda_id = line.request_id
        spans = self._spans.setdefault(stream, _Spans())
        if line.kind == "init_start":
            spans.inits.append(event.timestamp)
        if not lambda_id or line.kind == "init_start":
            placed = spans.place(event.timestamp)
            if not placed:
                # Its START (or REPORT) has not arrived yet: held until it does, or the grace period ends.
                self._unplaced.setdefault(stream, []).append((event, now_ms))
                return ""
            lambda_id = placed
        entry = self._invocation_entry(lambda_id, event.group, now_ms)
        if line.kind == "start":
            spans.started(event.timestamp, lambda_id)
        elif line.kind == "report":
            spans.reported(event.timestamp, lambda_id)
        for api_id in line.api_ids:
            entry = self._link(lambda_id, api_id, now_ms)
        key = self._put(entry, event, now_ms)
        if line.kind in {"start", "report"} and stream in self._unplaced:
            self._place_held(stream, now_ms)
        return key

    def _place_held(self, stream: tuple[str, str], now_ms: int) -> None:
        spans = self._spans[stream]
        still: list[tuple[LogEvent, int]] = []
        for event, seen in self._unplaced.pop(stream, []):
            lambda_id = spans.place(event.timestamp)
            if lambda_id:
                entry = self._invocation_entry(lambda_id, event.group, now_ms)
                self._put(entry, event, now_ms)
                self._refresh(entry)
            else:
                still.append((event, seen))
        if still:
            self._unplaced[stream] = still

    def _invocation_entry(self, lambda_id: str, group: str, now_ms: int) -> RequestEntry:
        key = self._by_lambda.get(lambda_id)
        entry = self.entries.get(key) if key else None
        if entry is None:
            entry = self._entry(f"lambda:{lambda_id}", now_ms)
            self._by_lambda[lambda_id] = entry.key
        if lambda_id not in entry.lambda_ids:
            entry.lambda_ids.append(lambda_id)
        entry.functions.setdefault(lambda_id, self.functions.get(group) or group.rsplit("/", 1)[-1])
        return entry

    def _link(self, lambda_id: str, api_id: str, now_ms: int) -> RequestEntry:
        """Tie an invocation to its API request; returns the entry that holds the invocation now."""
        target = self._entry(api_id, now_ms, api_request_id=api_id)
        key = self._by_lambda.get(lambda_id)
        source = self.entries.get(key) if key else None
        if source is target:
            return target
        if source is None:
            self._by_lambda[lambda_id] = target.key
            if lambda_id not in target.lambda_ids:
                target.lambda_ids.append(lambda_id)
            return target
        if source.shown or source.api_request_id:
            # Already shown on its own (its API lines came after the grace period), or part of another
            # request: it stays where it is, now naming its request, so no line is shown twice.
            if not source.api_request_id:
                source.api_request_id = api_id
                source.changed, source.changed_ms = True, now_ms
            return source
        self._merge(source, target, now_ms)
        return target

    def _merge(self, source: RequestEntry, target: RequestEntry, now_ms: int) -> None:
        for lambda_id in source.lambda_ids:
            self._by_lambda[lambda_id] = target.key
            if lambda_id not in target.lambda_ids:
                target.lambda_ids.append(lambda_id)
        target.functions.update(source.functions)
        target.events = sorted([*target.events, *source.events], key=sort_key)
        target.opened_ms = min(target.opened_ms, source.opened_ms)
        target.changed, target.changed_ms = True, now_ms
        del self.entries[source.key]
        self._refresh(target)

    # -- what the lines say -----------------------------------------------------------------------
    def _refresh(self, entry: RequestEntry) -> None:
        if entry.api_request_id:
            exec_events = [
                e for e in entry.events if e.group in self.api_groups and e.group != self.access_group
            ]
            access_events = [e for e in entry.events if e.group == self.access_group]
            entry.has_access = bool(access_events)
            info = read_api_side(exec_events, access_events, entry.api_request_id)
            entry.info = info
            entry.method, entry.path = info.method, info.path
            entry.status, entry.latency_ms = info.status, info.latency_ms
            for lambda_id in info.lambda_ids:
                if self._by_lambda.get(lambda_id) not in (None, entry.key):
                    self._link(lambda_id, entry.api_request_id, entry.changed_ms)
                elif lambda_id not in entry.lambda_ids:
                    self._by_lambda[lambda_id] = entry.key
                    entry.lambda_ids.append(lambda_id)
            for call in info.calls:
                for lambda_id in call.lambda_ids:
                    if call.function:
                        entry.functions.setdefault(lambda_id, call.function)
        entry.reports = {}
        entry.errors = 0
        for event in entry.events:
            if is_error(event.message):
                entry.errors += 1
            if event.group in self.api_groups:
                continue
            line = parse_lambda_line(event.message)
            if line.kind == "report" and line.request_id:
                entry.reports[line.request_id] = line.report.duration_ms if line.report else None
        integration = self._integration_id(entry)
        entry.function = entry.functions.get(integration, "") if integration else ""
        if not entry.function and entry.info is not None:
            entry.function = next((c.function for c in entry.info.calls if c.role == "integration"), "")
        entry.duration_ms = entry.reports.get(integration) if integration else None

    @staticmethod
    def _integration_id(entry: RequestEntry) -> str:
        """The Lambda request id of the request's integration (not its authorizer)."""
        if entry.info is not None:
            for call in entry.info.calls:
                if call.role == "integration" and call.lambda_ids:
                    return call.lambda_ids[0]
            authorizers = {i for c in entry.info.calls if c.role == "authorizer" for i in c.lambda_ids}
            for lambda_id in entry.lambda_ids:
                if lambda_id not in authorizers and lambda_id in entry.info.lambda_ids:
                    return lambda_id
        return entry.lambda_ids[0] if entry.lambda_ids else ""

    def _match_authorizers(self) -> None:
        """An authorizer's invocation is named by no API line: its START inside the authorizer call."""
        waiting = [e for e in self.entries.values() if e.kind == "invocation" and not e.shown]
        if not waiting:
            return
        for entry in list(self.entries.values()):
            if entry.info is None:
                continue
            for call in entry.info.calls:
                if call.role != "authorizer" or call.lambda_ids or not call.function:
                    continue
                for candidate in waiting:
                    if candidate.key not in self.entries:
                        continue
                    lambda_id = candidate.lambda_ids[0]
                    start = next(
                        (
                            e.timestamp
                            for e in candidate.events
                            if parse_lambda_line(e.message).kind == "start"
                        ),
                        None,
                    )
                    if (
                        candidate.functions.get(lambda_id) == call.function
                        and start is not None
                        and call.start_ms <= start <= max(call.end_ms, call.start_ms) + 1_000
                    ):
                        call.lambda_ids.append(lambda_id)
                        self._merge(candidate, entry, entry.changed_ms)
                        break

    # -- what to show -----------------------------------------------------------------------------
    def complete(self, entry: RequestEntry) -> bool:
        if entry.kind == "line":
            return True
        if entry.kind == "invocation":
            # Its API lines may still come: only a tail without API groups shows it at its REPORT.
            return not self.api_groups and all(i in entry.reports for i in entry.lambda_ids)
        if entry.status is None:
            return False
        if self.access_group and not entry.has_access:
            return False
        return all(i in entry.reports for i in entry.lambda_ids)

    def ready(self, now_ms: int) -> list[RequestEntry]:
        """Entries to show for the first time (complete, or past the grace period) or to show again
        (changed since), in order of their first line. Entries long unchanged are forgotten."""
        for stream, held in list(self._unplaced.items()):
            due = [(e, seen) for e, seen in held if now_ms - seen >= self.grace_ms]
            if due:
                # No invocation of its stream claims it within the grace period: a line of its own.
                self._unplaced[stream] = [h for h in held if h not in due]
                for event, seen in due:
                    self._put(self._line_entry(seen), event, now_ms)
                if not self._unplaced[stream]:
                    del self._unplaced[stream]
        out: list[RequestEntry] = []
        for entry in list(self.entries.values()):
            if entry.shown:
                if entry.changed:
                    out.append(entry)
                elif now_ms - entry.changed_ms >= self.forget_ms:
                    self._forget(entry)
            elif self.complete(entry) or now_ms - entry.opened_ms >= self.grace_ms:
                out.append(entry)
        for entry in out:
            entry.shown, entry.changed = True, False
        return sorted(out, key=lambda e: (e.first_ms, e.key))

    def drain(self) -> list[RequestEntry]:
        """At the end of the tail: everything not shown yet, and what changed."""
        for held in self._unplaced.values():
            for event, seen in held:
                self._put(self._line_entry(seen), event, seen)
        self._unplaced.clear()
        out = [e for e in self.entries.values() if not e.shown or e.changed]
        for entry in out:
            entry.shown, entry.changed = True, False
        return sorted(out, key=lambda e: (e.first_ms, e.key))

    def _forget(self, entry: RequestEntry) -> None:
        del self.entries[entry.key]
        for lambda_id in entry.lambda_ids:
            if self._by_lambda.get(lambda_id) == entry.key:
                del self._by_lambda[lambda_id]
        for event in entry.events:
            self._keys.discard(event.key)
