"""Pure correlation: read what API Gateway logged about a request, find invocations, summarise.

Nothing here talks to AWS; ``bot.core.apilogs.lookup`` feeds these functions the events it fetched.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.core.apilogs.formats import (
    ReportMetrics,
    is_error,
    parse_access_line,
    parse_function_arn,
    parse_lambda_line,
    split_exec_line,
)
from bot.core.apilogs.formats import exec_fact as classify_exec
from bot.core.apilogs.model import LogEvent, sort_key


@dataclass
class IntegrationCall:
    """One Lambda invocation API Gateway made for the request (the integration or an authorizer)."""

    role: str  # "integration" | "authorizer"
    function: str = ""  # function name ("" when the log does not say)
    qualifier: str = ""
    arn: str = ""
    lambda_ids: list[str] = field(default_factory=list)
    start_ms: int = 0
    end_ms: int = 0
    status: int | None = None
    integration_latency_ms: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "function": self.function,
            "qualifier": self.qualifier,
            "lambdaRequestIds": list(self.lambda_ids),
            "startMs": self.start_ms,
            "endMs": self.end_ms,
            "status": self.status,
            "integrationLatencyMs": self.integration_latency_ms,
        }


@dataclass
class ApiRequestInfo:
    """What the API Gateway side (execution and access logs) says about one request."""

    request_id: str = ""
    extended_id: str = ""
    xray_trace_id: str = ""
    method: str = ""
    path: str = ""
    route: str = ""
    status: int | None = None
    latency_ms: int | None = None
    integration_latency_ms: int | None = None
    calls: list[IntegrationCall] = field(default_factory=list)
    # Lambda request ids we could not tie to a function (access log, ERROR-level execution log).
    loose_lambda_ids: list[str] = field(default_factory=list)
    first_ms: int | None = None
    last_ms: int | None = None
    error: str = ""

    @property
    def lambda_ids(self) -> list[str]:
        ids = [i for call in self.calls for i in call.lambda_ids] + self.loose_lambda_ids
        return list(dict.fromkeys(ids))

    def to_json(self) -> dict[str, Any]:
        return {
            "requestId": self.request_id,
            "extendedRequestId": self.extended_id,
            "xrayTraceId": self.xray_trace_id,
            "method": self.method,
            "path": self.path,
            "route": self.route,
            "status": self.status,
            "latencyMs": self.latency_ms,
            "integrationLatencyMs": self.integration_latency_ms,
            "calls": [c.to_json() for c in self.calls],
            "lambdaRequestIds": self.lambda_ids,
        }


def exec_request_ids(events: Iterable[LogEvent]) -> list[str]:
    """The API request ids (the ``(id)`` prefixes) of execution-log events, in order of appearance."""
    ids = [split_exec_line(e.message)[0] for e in sorted(events, key=sort_key)]
    return list(dict.fromkeys(i for i in ids if i))


def read_api_side(
    exec_events: Sequence[LogEvent], access_events: Sequence[LogEvent], request_id: str
) -> ApiRequestInfo:
    """Fold the execution-log lines of ``request_id`` and its access-log record into one picture."""
    info = ApiRequestInfo(request_id=request_id)
    current: IntegrationCall | None = None
    in_authorizer = False
    stamps: list[int] = []
    for event in sorted(exec_events, key=sort_key):
        line_id, text = split_exec_line(event.message)
        if line_id != request_id:
            continue
        stamps.append(event.timestamp)
        fact = classify_exec(text)
        if fact.kind == "extended":
            info.extended_id = fact.value
        elif fact.kind == "method":
            info.method, info.path = fact.value, fact.extra
        elif fact.kind == "authorizer_start":
            in_authorizer = True
            current = IntegrationCall("authorizer", start_ms=event.timestamp, end_ms=event.timestamp)
            info.calls.append(current)
        elif fact.kind == "authorizer_end":
            if current is not None and current.role == "authorizer":
                current.end_ms = event.timestamp
            in_authorizer = False
        elif fact.kind == "execution_start":
            in_authorizer = False
        elif fact.kind == "endpoint_uri":
            arn = parse_function_arn(fact.value)
            if (
                in_authorizer
                and current is not None
                and current.role == "authorizer"
                and not current.function
            ):
                target = current
            else:
                target = IntegrationCall("integration", start_ms=event.timestamp)
                info.calls.append(target)
                current = target
            target.arn = fact.value
            target.function = arn.name if arn else ""
            target.qualifier = arn.qualifier if arn else ""
            target.end_ms = event.timestamp
        elif fact.kind == "received":
            if current is not None:
                current.status = int(fact.value)
                current.integration_latency_ms = fact.number
                current.end_ms = event.timestamp
            info.integration_latency_ms = fact.number
        elif fact.kind == "lambda_id":
            owner = _owner_for_lambda_id(info, current)
            if owner is None:
                if fact.value not in info.loose_lambda_ids:
                    info.loose_lambda_ids.append(fact.value)
            elif fact.value not in owner.lambda_ids:
                owner.lambda_ids.append(fact.value)
                owner.end_ms = max(owner.end_ms, event.timestamp)
        elif fact.kind == "completed":
            info.status = fact.number
        elif fact.kind == "xray":
            info.xray_trace_id = fact.value
        elif current is not None and text.startswith(
            ("Endpoint response", "Authorizer result", "Sending request")
        ):
            # The call lasts until its response is logged.
            current.end_ms = max(current.end_ms, event.timestamp)
        if not info.error and ("Execution failed" in text or "execution failed" in text):
            info.error = text.strip()[:500]
    if stamps:
        info.first_ms, info.last_ms = min(stamps), max(stamps)
        if info.latency_ms is None and len(stamps) > 1:
            info.latency_ms = max(stamps) - min(stamps)
    for event in sorted(access_events, key=sort_key):
        record = parse_access_line(event.message)
        if record is None:
            continue
        known = {request_id.lower(), info.extended_id.lower()} - {""}
        ids = {record.request_id.lower(), record.extended_id.lower()} - {""}
        if ids and not ids & known:
            continue
        info.method = info.method or record.method
        info.path = info.path or record.path
        info.route = record.route or info.route
        info.status = info.status if info.status is not None else record.status
        if record.latency_ms is not None:
            info.latency_ms = record.latency_ms
        if record.integration_latency_ms is not None and info.integration_latency_ms is None:
            info.integration_latency_ms = record.integration_latency_ms
        info.extended_id = info.extended_id or record.extended_id
        if record.error and not info.error:
            info.error = record.error
        if record.integration_id and record.integration_id not in info.lambda_ids:
            info.loose_lambda_ids.append(record.integration_id)
        info.first_ms = event.timestamp if info.first_ms is None else min(info.first_ms, event.timestamp)
        info.last_ms = event.timestamp if info.last_ms is None else max(info.last_ms, event.timestamp)
    return info


def _owner_for_lambda_id(info: ApiRequestInfo, current: IntegrationCall | None) -> IntegrationCall | None:
    if current is not None and current.function:
        return current
    for call in reversed(info.calls):
        if call.function and call.role == "integration":
            return call
    return None


def access_request_ids(events: Iterable[LogEvent], term: str) -> list[str]:
    """Request ids of access-log records that mention ``term`` in any of their id fields."""
    found: list[str] = []
    for event in events:
        record = parse_access_line(event.message)
        if record is None:
            continue
        if term in {record.request_id, record.extended_id, record.integration_id} and record.request_id:
            found.append(record.request_id)
    return list(dict.fromkeys(found))


# -- Lambda side ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sighting:
    """Where a Lambda request id showed up: the stream that holds its invocation."""

    lambda_id: str
    group: str
    stream: str
    start_ms: int  # START (or first line naming the id)
    end_ms: int | None  # REPORT/END, None when not seen
    has_start: bool
    has_report: bool
    init_ms: float | None = None


def lambda_ids_in(events: Iterable[LogEvent]) -> dict[str, tuple[str, str]]:
    """Lambda request ids named by Lambda log lines -> (group, stream) where they were seen first."""
    found: dict[str, tuple[str, str]] = {}
    for event in sorted(events, key=sort_key):
        line = parse_lambda_line(event.message)
        if line.request_id and line.kind != "other":
            found.setdefault(line.request_id, (event.group, event.stream))
    return found


def api_ids_in(events: Iterable[LogEvent]) -> list[str]:
    """API Gateway request ids that Lambda lines mention (Powertools correlation_id, the seed's prefix)."""
    ids: list[str] = []
    for event in events:
        ids.extend(parse_lambda_line(event.message).api_ids)
    return list(dict.fromkeys(ids))


def sightings(events: Iterable[LogEvent], lambda_id: str) -> list[Sighting]:
    """Per stream, the span of the invocation ``lambda_id`` as far as lines naming it show."""
    per_stream: dict[tuple[str, str], dict[str, Any]] = {}
    for event in sorted(events, key=sort_key):
        line = parse_lambda_line(event.message)
        if line.request_id != lambda_id:
            continue
        seen = per_stream.setdefault(
            (event.group, event.stream),
            {"start": event.timestamp, "end": None, "has_start": False, "has_report": False, "init": None},
        )
        if line.kind == "start":
            seen["start"] = event.timestamp if not seen["has_start"] else seen["start"]
            seen["has_start"] = True
        elif line.kind in {"report", "end"}:
            seen["end"] = max(seen["end"] or 0, event.timestamp)
            if line.kind == "report":
                seen["has_report"] = True
                if line.report and line.report.init_ms:
                    seen["init"] = line.report.init_ms
        else:
            seen["start"] = min(seen["start"], event.timestamp)
    return [
        Sighting(lambda_id, g, s, v["start"], v["end"], v["has_start"], v["has_report"], v["init"])
        for (g, s), v in per_stream.items()
    ]


def invocation_slice(stream_events: Sequence[LogEvent], lambda_id: str) -> list[LogEvent]:
    """The events of one invocation in its stream: START .. REPORT, with print() lines in between.

    A cold start's INIT_START (and what the module printed while loading) is included when it directly
    precedes the START. Without a START we begin at the first line naming the id; without a REPORT we
    stop before the next invocation's START.
    """
    ordered = sorted(stream_events, key=sort_key)
    parsed = [parse_lambda_line(e.message) for e in ordered]
    start_index: int | None = None
    for index, line in enumerate(parsed):
        if line.request_id == lambda_id and (line.kind == "start" or start_index is None):
            if line.kind == "start":
                start_index = index
                break
            start_index = index
    if start_index is None:
        return []
    first = start_index
    if parsed[start_index].kind == "start":
        back = start_index - 1
        while back >= 0 and parsed[back].kind not in {"start", "end", "report", "init_start"}:
            back -= 1
        if back >= 0 and parsed[back].kind == "init_start":
            first = back
    last = len(ordered) - 1
    for index in range(start_index + 1, len(ordered)):
        line = parsed[index]
        if line.kind == "report" and line.request_id == lambda_id:
            last = index
            break
        if line.kind in {"start", "init_start"} and line.request_id != lambda_id:
            last = index - 1
            break
    return list(ordered[first : last + 1])


_BOUNDARIES = {"start", "end", "report", "init_start"}


@dataclass(frozen=True)
class Enclosing:
    """Where the invocation around one line of a stream starts and ends, as far as the lines read show.

    ``first``/``last`` index the time-ordered lines given; None means the boundary is not among them yet
    (read earlier or later lines of the stream). ``outside``: the line lies between two invocations.
    ``conflict``: the START before and the REPORT after name different invocations, so the stream does
    not run one invocation at a time and the line cannot be placed.
    """

    lambda_id: str = ""
    first: int | None = None
    last: int | None = None
    outside: bool = False
    conflict: bool = False
    init_ms: float | None = None

    @property
    def settled(self) -> bool:
        return self.outside or self.conflict or (self.first is not None and self.last is not None)


def enclosing_invocation(stream_events: Sequence[LogEvent], line: LogEvent) -> Enclosing:
    """The invocation a line without a Lambda request id (``print()`` output) belongs to.

    A Lambda log stream belongs to one execution environment, which runs one invocation at a time: the
    line belongs to the last START before it and the first REPORT after it, in the stream's own order
    (time, then CloudWatch's event order). Output of a cold start's init phase, between INIT_START and
    the START, belongs to the invocation that follows.
    """
    ordered = sorted(stream_events, key=sort_key)
    at = next((i for i, e in enumerate(ordered) if e.key == line.key), None)
    if at is None:
        return Enclosing()
    parsed = [parse_lambda_line(e.message) for e in ordered]
    lambda_id = ""
    first: int | None = None
    in_init = False
    for index in range(at - 1, -1, -1):
        kind = parsed[index].kind
        if kind == "start":
            lambda_id, first = parsed[index].request_id, index
            break
        if kind == "init_start":
            in_init, first = True, index
            break
        if kind in {"end", "report"}:
            return Enclosing(outside=True)
    if first is not None and not in_init:
        # A cold start's INIT_START and what the module printed while loading come with the invocation.
        for index in range(first - 1, -1, -1):
            kind = parsed[index].kind
            if kind == "init_start":
                first = index
            if kind in _BOUNDARIES:
                break
    last: int | None = None
    init_ms: float | None = None
    for index in range(at + 1, len(ordered)):
        current = parsed[index]
        if current.kind == "start" and in_init and not lambda_id:
            lambda_id = current.request_id
            continue
        if current.kind in {"start", "init_start"}:
            last = index - 1  # the next invocation began without a REPORT for this one (a crash)
            break
        if current.kind == "report":
            if lambda_id and current.request_id != lambda_id:
                return Enclosing(conflict=True)
            lambda_id = lambda_id or current.request_id
            last = index
            init_ms = current.report.init_ms if current.report else None
            break
    return Enclosing(lambda_id, first, last, init_ms=init_ms)


# -- summary --------------------------------------------------------------------------------------


@dataclass
class InvocationSummary:
    function: str
    group: str
    stream: str
    lambda_id: str
    role: str = "integration"
    report: ReportMetrics | None = None
    version: str = ""
    errors: int = 0
    # How we tied it to the request: "execution log", "access log", "api id in function log",
    # "lambda id", or "time" (an authorizer call matched by its time window: less certain).
    matched_by: str = ""
    start_ms: int = 0

    @property
    def cold_start(self) -> bool:
        return bool(self.report and self.report.init_ms)

    def to_json(self) -> dict[str, Any]:
        return {
            "function": self.function,
            "group": self.group,
            "stream": self.stream,
            "lambdaRequestId": self.lambda_id,
            "role": self.role,
            "version": self.version,
            "report": self.report.to_json() if self.report else None,
            "coldStart": self.cold_start,
            "errors": self.errors,
            "matchedBy": self.matched_by,
            "startMs": self.start_ms,
        }


def summarise_invocation(
    events: Sequence[LogEvent], lambda_id: str, *, function: str, role: str, matched_by: str
) -> InvocationSummary | None:
    if not events:
        return None
    report: ReportMetrics | None = None
    version = ""
    errors = 0
    for event in events:
        line = parse_lambda_line(event.message)
        if line.request_id == lambda_id and line.kind == "report":
            report = line.report
        if line.request_id == lambda_id and line.kind == "start":
            version = line.version
        if is_error(event.message):
            errors += 1
    return InvocationSummary(
        function=function,
        group=events[0].group,
        stream=events[0].stream,
        lambda_id=lambda_id,
        role=role,
        report=report,
        version=version,
        errors=errors,
        matched_by=matched_by,
        start_ms=events[0].timestamp,
    )


def error_events(events: Iterable[LogEvent]) -> list[LogEvent]:
    return [e for e in events if is_error(e.message)]
