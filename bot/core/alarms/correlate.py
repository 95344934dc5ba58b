"""Which requests failed, and why, in an alarm's window: the correlation an alarm post carries.

``correlate(alarm, find_errors=…)`` decides the kind of correlation from the alarm's metric:

- ``api``: ``AWS/ApiGateway`` with ``ApiName`` or ``ApiId`` and ``Stage`` (optional ``Resource``/``Method``)
  -> the failing requests of the stage, grouped as ``/apilogs errors`` groups them;
- ``lambda``: ``AWS/Lambda`` ``FunctionName`` (``Errors``, ``Throttles``, ``Duration``, …) -> the function's
  failed invocations, grouped by error;
- ``stream``: a Lambda function fed by Kinesis or DynamoDB streams (event source mappings) -> no API
  requests exist; the mappings' state, the iterator age and the batch errors in its log instead;
- ``metric-filter``: a metric that a metric filter publishes (DescribeMetricFilters) -> the log lines of
  the filter's group that match its pattern in the window, grouped;
- ``none``: any other namespace: no correlation, a Logs Insights link.

``find_errors(ErrorQuery) -> result`` answers the API and Lambda cases: ``result.to_json()`` has
``groups`` shaped ``{"method", "path", "status", "cause", "count", "first", "last", "functions",
"requestIds"}`` (the shape of ``opsbot apilogs errors --json``), ``complete`` and ``note``. The default
(``errors_finder(settings)``) is ``/apilogs errors`` itself for an API stage (``api_errors``:
``bot.core.apilogs.errors.find_errors`` on the stage the dimensions name, ``Resource`` as the path, the
groups of the ``Method`` only) and ``lambda_errors`` for a function (its log group: ERROR / ``Task timed
out`` / failed REPORT lines, grouped by error type, with request ids). Tests pass their own.

Every read is made in the alarm's region (``region_override``), whatever the function's own region.
"""

from __future__ import annotations

import contextlib
import functools
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from bot.aws.clients import region_override
from bot.config import Settings
from bot.core.alarms.model import Alarm, MetricRef, window
from bot.errors import NotAllowedError, OpsbotError

if TYPE_CHECKING:
    from bot.core.apilogs.errors import ErrorsReport
    from bot.core.apilogs.scope import ReadLimit

MAX_GROUPS = 25
MAX_IDS = 1000
STREAM_SOURCES = ("kinesis", "dynamodb")
# Metrics of a stream-driven function that say nothing about API requests.
STREAM_METRICS = {"IteratorAge", "Errors", "Throttles", "Duration", "ConcurrentExecutions"}


class ErrorsResult(Protocol):
    def to_json(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ErrorQuery:
    """What the alarm asks ``find_errors`` for."""

    kind: str  # api | lambda
    start_ms: int
    end_ms: int
    region: str = ""
    api: str = ""  # ApiName or ApiId
    stage: str = ""
    resource: str = ""  # the REST resource path, when the metric has it
    method: str = ""
    function: str = ""
    status: str = "5xx"  # 5xx | 4xx | all
    deadline: float | None = None  # time.monotonic() by which to answer (with what was read)


FindErrors = Callable[[ErrorQuery], ErrorsResult]


@dataclass
class StreamInfo:
    mappings: list[dict[str, Any]] = field(default_factory=list)  # source, state, batch size, last result
    iterator_age_ms: float | None = None
    batch_errors: list[dict[str, Any]] = field(default_factory=list)  # {"time", "requestId", "line"}

    def to_json(self) -> dict[str, Any]:
        return {
            "mappings": self.mappings,
            "iteratorAgeMs": self.iterator_age_ms,
            "batchErrors": self.batch_errors,
        }


@dataclass
class Correlation:
    kind: str  # api | lambda | stream | metric-filter | none
    start_ms: int
    end_ms: int
    correlated: bool = False
    target: dict[str, str] = field(default_factory=dict)
    groups: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = True
    note: str = ""  # why there is no correlation, or what is missing from it
    insights_url: str = ""
    stream: StreamInfo | None = None
    aws_calls: int = 0

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "window": {"start": self.start_ms, "end": self.end_ms},
            "correlated": self.correlated,
            "target": self.target,
            "groups": self.groups,
            "complete": self.complete,
            "note": self.note,
            "insightsUrl": self.insights_url,
        }
        if self.stream is not None:
            data["stream"] = self.stream.to_json()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Correlation:
        win = data.get("window") or {}
        stream = data.get("stream")
        return cls(
            kind=str(data.get("kind", "none")),
            start_ms=int(win.get("start", 0)),
            end_ms=int(win.get("end", 0)),
            correlated=bool(data.get("correlated")),
            target=dict(data.get("target") or {}),
            groups=list(data.get("groups") or []),
            complete=bool(data.get("complete", True)),
            note=str(data.get("note", "")),
            insights_url=str(data.get("insightsUrl", "")),
            stream=StreamInfo(
                mappings=list(stream.get("mappings") or []),
                iterator_age_ms=stream.get("iteratorAgeMs"),
                batch_errors=list(stream.get("batchErrors") or []),
            )
            if isinstance(stream, dict)
            else None,
        )


# -- the kind -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    kind: str
    metric: MetricRef | None = None
    query: ErrorQuery | None = None


def api_query(metric: MetricRef, start_ms: int, end_ms: int, region: str) -> ErrorQuery | None:
    dims = metric.dimensions
    api = dims.get("ApiName") or dims.get("ApiId") or ""
    if not api or not dims.get("Stage"):
        return None
    status = {"4XXError": "4xx", "4xx": "4xx", "5XXError": "5xx", "5xx": "5xx"}.get(metric.name, "all")
    return ErrorQuery(
        "api", start_ms, end_ms, region, api=api, stage=dims["Stage"], resource=dims.get("Resource", ""),
        method=dims.get("Method", ""), status=status,
    )  # fmt: skip


def function_of(metric: MetricRef) -> str:
    """``FunctionName`` (an alias's ``Resource`` = ``function:alias`` logs to the same group)."""
    return metric.dimensions.get("FunctionName", "")


def decide_kind(
    alarm: Alarm,
    *,
    mappings: Callable[[str], list[dict[str, Any]]] | None = None,
    span: tuple[int, int] | None = None,
) -> Kind:
    """The correlation kind from the alarm's metrics (metric math: the first metric that names a target).

    ``mappings(function)`` lists a function's event source mappings (only asked for Lambda metrics): a
    function fed by Kinesis or DynamoDB streams is ``stream``. The metric-filter case needs the logs API
    and is decided in ``correlate``. ``span`` is the window (default: the alarm's own).
    """
    start, end = span or window(alarm)
    candidates = [m for m in alarm.metrics if not m.expression and m.namespace]
    for metric in candidates:
        if metric.namespace == "AWS/ApiGateway":
            query = api_query(metric, start, end, alarm.region)
            if query is not None:
                return Kind("api", metric, query)
    for metric in candidates:
        if metric.namespace == "AWS/Lambda" and function_of(metric):
            function = function_of(metric)
            sources = mappings(function) if mappings is not None else []
            if metric.name == "IteratorAge" or any(_stream_source(m) for m in sources):
                return Kind("stream", metric)
            return Kind("lambda", metric, ErrorQuery("lambda", start, end, alarm.region, function=function))
    custom = [m for m in candidates if not m.namespace.startswith("AWS/")]
    if custom:
        return Kind("metric-filter?", custom[0])
    return Kind("none", candidates[0] if candidates else None)


def _stream_source(mapping: dict[str, Any]) -> str:
    arn = str(mapping.get("EventSourceArn") or "")
    service = arn.split(":")[2] if arn.count(":") >= 2 else ""
    return service if service in STREAM_SOURCES else ""


# -- the correlation --------------------------------------------------------------------------------


def correlate(
    alarm: Alarm,
    *,
    settings: Settings | None = None,
    find_errors: FindErrors | None = None,
    at_ms: int | None = None,
    deadline: float | None = None,
    aws: Any = None,
    limit: ReadLimit | None = None,
) -> Correlation:
    """The correlation of ``alarm`` (its window ends at the state change, or at ``at_ms``).

    ``settings`` are the caller's (the intake's, the CLI's); ``find_errors`` replaces the default
    (``default_find_errors`` with those settings). ``aws`` is the module with the AWS calls
    (``bot.aws.alarms`` by default; tests count calls through it). Every read is made in the alarm's
    region. ``limit``: the read scope of the channel a person asked in (log groups outside it are not
    read; the correlation says so). Never raises for AWS failures: the correlation then says what could
    not be read.
    """
    with region_override(alarm.region) if alarm.region else contextlib.nullcontext():
        return _correlate(alarm, settings, find_errors, at_ms, deadline, aws, limit)


def _correlate(
    alarm: Alarm, settings: Settings | None, find_errors: FindErrors | None, at_ms: int | None,
    deadline: float | None, aws: Any, limit: ReadLimit | None,
) -> Correlation:  # fmt: skip
    if aws is None:
        from bot.aws import alarms as aws
    finder = find_errors or errors_finder(settings, limit=limit)
    start, end = window(alarm, at_ms=at_ms)
    calls = [0]

    def mappings(function: str) -> list[dict[str, Any]]:
        calls[0] += 1
        return list(aws.event_source_mappings(function, region=alarm.region or None))

    if alarm.composite:
        return Correlation(
            "none", start, end, note="A composite alarm: its child alarms' posts carry their correlation.",
            insights_url=_insights(alarm, [], start, end),
        )  # fmt: skip
    decided = "none"
    try:
        kind = decide_kind(alarm, mappings=mappings, span=(start, end))
        decided = kind.kind.rstrip("?")
        if kind.kind in {"api", "lambda"} and kind.query is not None:
            query = ErrorQuery(**{**kind.query.__dict__, "deadline": deadline})
            found = finder(query).to_json()
            target = {k: v for k, v in query.__dict__.items() if isinstance(v, str) and v and k != "kind"}
            target.update({k: str(v) for k, v in (found.get("target") or {}).items() if v})
            result = Correlation(
                kind.kind, start, end, correlated=bool(found.get("correlated", True)), target=target,
                groups=list(found.get("groups") or [])[:MAX_GROUPS], complete=bool(found.get("complete", True)),
                note=str(found.get("note") or ""),
            )  # fmt: skip
            calls[0] += int(found.get("awsCalls") or 0)
        elif kind.kind == "stream" and kind.metric is not None:
            _check_group(limit, f"/aws/lambda/{function_of(kind.metric)}")
            result = _stream(alarm, kind.metric, start, end, aws, calls, deadline)
        elif kind.kind == "metric-filter?" and kind.metric is not None:
            result = _metric_filter(alarm, kind.metric, start, end, aws, calls, deadline, finder, limit)
        else:
            namespace = kind.metric.namespace if kind.metric else alarm.namespace or "this alarm"
            result = Correlation(
                "none", start, end, note=f"No correlation exists for {namespace} metrics: the graph and a Logs "
                "Insights link instead.",
            )  # fmt: skip
    except OpsbotError as error:
        # The kind stays (an API alarm whose stage could not be read is still an API alarm).
        result = Correlation(decided, start, end, complete=False, note=f"Not correlated: {error.message}")
    result.aws_calls += calls[0]
    if not result.insights_url:
        result.insights_url = _insights(alarm, _groups_for_link(result), start, end)
    return result


def _check_group(limit: ReadLimit | None, group: str) -> None:
    if limit is not None and not limit.allows_group(group):
        raise NotAllowedError(limit.skipped_note([group]))


def _groups_for_link(result: Correlation) -> list[str]:
    if result.target.get("logGroup"):
        return [result.target["logGroup"]]
    if result.target.get("function"):
        return [f"/aws/lambda/{result.target['function']}"]
    return []


def _insights(alarm: Alarm, groups: Sequence[str], start: int, end: int) -> str:
    from bot.core.apilogs.links import insights_url

    return insights_url(alarm.region or "us-east-1", groups, [], start, end)


# -- metric filters ---------------------------------------------------------------------------------

_UUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
_VARIABLE = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F-]{27}\b|\b\d+(?:\.\d+)?\b|'[^']*'|\"[^\"]*\"")


def _metric_filter(
    alarm: Alarm, metric: MetricRef, start: int, end: int, aws: Any, calls: list[int], deadline: float | None,
    finder: FindErrors, limit: ReadLimit | None = None,
) -> Correlation:  # fmt: skip
    calls[0] += 1
    filters = aws.metric_filters(metric.namespace, metric.name, region=alarm.region or None)
    if not filters:
        return Correlation(
            "none", start, end, note=f"No correlation exists for {metric.namespace}/{metric.name}: no metric "
            "filter publishes it (a custom metric).",
        )  # fmt: skip
    chosen = filters[0]
    group = str(chosen.get("logGroupName") or "")
    pattern = str(chosen.get("filterPattern") or "")
    target = {"logGroup": group, "pattern": pattern, "filter": str(chosen.get("filterName") or "")}
    # An API Gateway execution-log group or a Lambda group: the grouping the seam knows is the better one.
    api = re.fullmatch(r"API-Gateway-Execution-Logs_(?P<id>[a-z0-9]+)/(?P<stage>.+)", group)
    if api:
        query = ErrorQuery(
            "api", start, end, alarm.region, api=api["id"], stage=api["stage"], deadline=deadline
        )
        found = finder(query).to_json()
        calls[0] += int(found.get("awsCalls") or 0)
        return Correlation(
            "metric-filter", start, end, correlated=bool(found.get("correlated", True)), target=target,
            groups=list(found.get("groups") or [])[:MAX_GROUPS], complete=bool(found.get("complete", True)),
            note=str(found.get("note") or ""),
        )  # fmt: skip
    from bot.aws.logs import filter_events

    _check_group(limit, group)
    read = filter_events(
        group, start_ms=start, end_ms=end, pattern=pattern, max_events=10_000, deadline=deadline
    )
    calls[0] += max(1, read.pages)
    if group.startswith("/aws/lambda/"):
        groups = group_lambda_lines([(e.timestamp, e.stream, e.message) for e in read.events], group[12:])
    else:
        groups = group_lines([(e.timestamp, e.message) for e in read.events])
    note = "" if not read.missing else f"The filter's log group {group} does not exist."
    return Correlation(
        "metric-filter", start, end, correlated=not read.missing, target=target, groups=groups,
        complete=not read.truncated, note=note,
    )  # fmt: skip


def _normalise(line: str) -> str:
    """A line with its variable parts (ids, numbers, quoted values) blanked: lines that differ only in
    those are the same failure."""
    first = line.strip().splitlines()[0] if line.strip() else ""
    return _VARIABLE.sub("…", first)[:200]


def group_lines(events: Sequence[tuple[int, str]]) -> list[dict[str, Any]]:
    """Matched lines of any log group, grouped by their normalised text, biggest first."""
    groups: dict[str, dict[str, Any]] = {}
    for at, message in events:
        cause = _normalise(message)
        group = groups.setdefault(cause, _new_group(cause, at))
        _add(group, at, _UUID.findall(message)[:1])
    return _sorted(groups)


def _new_group(cause: str, at: int, *, function: str = "") -> dict[str, Any]:
    return {
        "method": "",
        "path": "",
        "status": None,
        "cause": cause,
        "count": 0,
        "first": at,
        "last": at,
        "functions": [function] if function else [],
        "requestIds": [],
    }


def _add(group: dict[str, Any], at: int, ids: Sequence[str]) -> None:
    group["count"] += 1
    group["first"] = min(group["first"], at)
    group["last"] = max(group["last"], at)
    for request_id in ids:
        if request_id and request_id not in group["requestIds"] and len(group["requestIds"]) < MAX_IDS:
            group["requestIds"].append(request_id)


def _sorted(groups: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(groups.values(), key=lambda g: (-g["count"], g["first"]))[:MAX_GROUPS]


# -- Lambda functions: the default find_errors -----------------------------------------------------

_ERROR_TYPE = re.compile(
    r"^(?:\[ERROR\]\s+)?(?P<type>[A-Za-z_][\w.]*(?:Error|Exception|Exit|Timeout)\w*)\b:?"
)


def _error_type(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    if first.startswith("{"):
        import json

        try:
            data = json.loads(text)
            if isinstance(data, dict) and data.get("errorType"):
                return str(data["errorType"])
        except ValueError:
            pass
    found = _ERROR_TYPE.match(first)
    return found["type"] if found else ""


def group_lambda_lines(events: Sequence[tuple[int, str, str]], function: str) -> list[dict[str, Any]]:
    """A function's failed invocations, grouped by error type (``Task timed out`` and a failed REPORT
    without an error line are their own groups), one request id per failed invocation.

    ``events`` are (time ms, stream, message) in time order. Lines without a request id (the runtime's
    ``[ERROR] KeyError: …`` of an unhandled exception) belong to the invocation whose START..END encloses
    them in the same stream.
    """
    from bot.core.apilogs.formats import is_error, parse_lambda_line

    current: dict[str, str] = {}  # stream -> the open invocation
    failed: dict[str, tuple[int, str]] = {}  # request id -> (time, cause) of its first error
    order: list[str] = []
    anonymous: list[tuple[int, str]] = []
    for at, stream, message in events:
        line = parse_lambda_line(message)
        if line.kind == "start":
            current[stream] = line.request_id
            continue
        if line.kind == "end":
            current.pop(stream, None)
            continue
        request_id = line.request_id or current.get(stream, "")
        if line.kind == "timeout":
            cause = "Task timed out"
        elif line.kind == "report":
            if line.report is None or line.report.status not in {"error", "timeout", "failure"}:
                continue
            cause = "Task timed out" if line.report.status == "timeout" else "failed invocation (REPORT)"
            known = failed.get(request_id)
            if known is not None:
                continue  # its error line already named the cause
        elif is_error(message) or line.level in {"ERROR", "CRITICAL", "FATAL"}:
            text = line.text or message
            kind = _error_type(text)
            cause = kind or _normalise(text)
        else:
            continue
        if not request_id:
            anonymous.append((at, cause))
            continue
        if request_id not in failed or failed[request_id][1] == "failed invocation (REPORT)":
            if request_id not in failed:
                order.append(request_id)
            failed[request_id] = (at if request_id not in failed else failed[request_id][0], cause)
    groups: dict[str, dict[str, Any]] = {}
    for request_id in order:
        at, cause = failed[request_id]
        group = groups.setdefault(cause, _new_group(cause, at, function=function))
        _add(group, at, [request_id])
    for at, cause in anonymous:
        group = groups.setdefault(cause, _new_group(cause, at, function=function))
        _add(group, at, [])
    return _sorted(groups)


@dataclass
class LambdaErrors:
    function: str
    start_ms: int
    end_ms: int
    groups: list[dict[str, Any]]
    complete: bool = True
    correlated: bool = True
    note: str = ""
    aws_calls: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "window": {"start": self.start_ms, "end": self.end_ms},
            "status": "all",
            "total": sum(g["count"] for g in self.groups),
            "requests": None,
            "complete": self.complete,
            "correlated": self.correlated,
            "note": self.note,
            "groups": self.groups,
            "awsCalls": self.aws_calls,
        }


# Lines worth reading: errors, time-outs and the REPORT lines that say an invocation failed, plus the START
# and END lines that place an unhandled exception's id-less lines. CloudWatch's OR of single words (no
# quoted phrase: moto answers a pattern with two quoted terms with nothing); every event is checked again
# here, so ``?Task`` stands for "Task timed out".
LAMBDA_PATTERN = "?ERROR ?Task ?REPORT ?START ?END ?Traceback ?errorType"


def lambda_errors(query: ErrorQuery) -> LambdaErrors:
    """The default ``find_errors`` for a Lambda function: its log group in the window, grouped by error."""
    from bot.aws.logs import filter_events

    group = f"/aws/lambda/{query.function}"
    read = filter_events(
        group,
        start_ms=query.start_ms,
        end_ms=query.end_ms,
        pattern=LAMBDA_PATTERN,
        max_events=50_000,
        deadline=query.deadline,
        recheck=_worth_reading,
    )
    events = sorted(((e.timestamp, e.stream, e.message) for e in read.events), key=lambda e: e[0])
    groups = group_lambda_lines(events, query.function)
    note = f"The log group {group} does not exist (has the function run?)." if read.missing else ""
    if read.truncated:
        note = "Stopped before the end of the window (time limit): counts are a lower bound."
    return LambdaErrors(
        query.function, query.start_ms, query.end_ms, groups, complete=not read.truncated,
        correlated=not read.missing, note=note, aws_calls=max(1, read.pages),
    )  # fmt: skip


def _worth_reading(message: str) -> bool:
    return message.startswith(("START ", "END ", "REPORT ")) or any(
        term in message for term in ("ERROR", "Task timed out", "Traceback", "errorType", '"level":"ERROR"')
    )


def default_find_errors(
    query: ErrorQuery, settings: Settings | None = None, limit: ReadLimit | None = None
) -> ErrorsResult:
    """The real ``find_errors``: ``api_errors`` for an API stage, ``lambda_errors`` for a function; every
    AWS call in the alarm's own region (an alarm forwarded from another region is read where it lives).

    ``limit``: the read scope of the channel a person asked in (the message shortcut); the intake's
    posts have none (the operator routed the alarm to its channel)."""
    scope = region_override(query.region) if query.region else contextlib.nullcontext()
    with scope:
        if query.kind == "lambda":
            _check_group(limit, f"/aws/lambda/{query.function}")
            return lambda_errors(query)
        return api_errors(query, settings, limit=limit)


def errors_finder(settings: Settings | None, *, limit: ReadLimit | None = None) -> FindErrors:
    """``default_find_errors`` with the caller's settings (the intake's, the CLI's, the Slack app's)."""
    return functools.partial(default_find_errors, settings=settings, limit=limit)


@dataclass
class ApiErrors:
    """``/apilogs errors`` on the alarm's stage, as the correlation reads it: ``report.to_json()`` (the
    ``opsbot apilogs errors --json`` document) with ``groups`` narrowed to the alarm's ``Method``, the
    report's ``notes`` as one ``note``, and the calls made."""

    report: ErrorsReport
    method: str = ""
    aws_calls: int = 0

    def to_json(self) -> dict[str, Any]:
        data = self.report.to_json()
        groups = data["groups"]
        notes = list(self.report.notes)
        if self.method:
            # The metric counts that method's requests only: a group of another method is not what
            # raised it. A group whose method the logs do not say is kept (it may be one of them).
            kept = [g for g in groups if not g["method"] or g["method"].upper() == self.method.upper()]
            if len(kept) < len(groups):
                left = sum(g["count"] for g in groups) - sum(g["count"] for g in kept)
                notes.append(
                    f"{left:,} failing request{'' if left == 1 else 's'} of other methods than {self.method} "
                    "left out."
                )
            groups = kept
        behind_200 = sum(g.count for g in self.report.function_errors)
        if behind_200:
            notes.append(
                f"Besides: {behind_200:,} function error{'' if behind_200 == 1 else 's'} behind requests that "
                "did not fail "
                "(`/apilogs errors` lists them)."
            )
        stage = self.report.stage
        return {
            **data,
            "groups": groups,
            "total": sum(g["count"] for g in groups),
            "correlated": True,
            "note": " ".join(notes),
            "awsCalls": self.aws_calls,
            "target": {"apiId": stage.api_id, "stage": stage.stage},
        }


def api_errors(
    query: ErrorQuery, settings: Settings | None = None, *, limit: ReadLimit | None = None
) -> ApiErrors:
    """The failing requests of the alarm's API stage in its window: ``/apilogs errors``'s grouping.

    The stage is resolved from ``ApiName``/``ApiId`` and ``Stage`` (an API name the account uses twice is
    refused with the ids to choose from, as ``/apilogs`` does); the ``Resource`` dimension is the path
    (``--path``); the status class is the metric's (5XXError: 5xx, 4XXError: 4xx, others: both). No read
    scope unless ``limit`` is given: an alarm post goes to the channel its route names, which the operator
    chose for it."""
    from bot.core.apilogs.discovery import resolve_stage
    from bot.core.apilogs.errors import find_errors

    settings = settings or Settings.from_env()
    stage = resolve_stage(query.api, query.stage, region=query.region or settings.region, limit=limit)
    report = find_errors(
        settings, stage, query.start_ms, query.end_ms, status=query.status, path=query.resource or None,
        deadline=query.deadline, scope=limit,
    )  # fmt: skip
    # resolve_stage reads the API and its stage (two or three calls), find_errors discovers the
    # integrations and searches each log group.
    return ApiErrors(report, method=query.method, aws_calls=2 + report.stats.total_calls)


# -- stream-driven functions ------------------------------------------------------------------------

BATCH_ERROR = re.compile(r"batch|shard|sequence|iterator|record", re.IGNORECASE)


def _stream(
    alarm: Alarm, metric: MetricRef, start: int, end: int, aws: Any, calls: list[int], deadline: float | None
) -> Correlation:
    function = function_of(metric)
    region = alarm.region or None
    calls[0] += 1
    raw = aws.event_source_mappings(function, region=region)
    mappings = [
        {
            "source": str(m.get("EventSourceArn") or ""),
            "kind": _stream_source(m),
            "state": str(m.get("State") or ""),
            "batchSize": m.get("BatchSize"),
            "lastResult": str(m.get("LastProcessingResult") or ""),
            "uuid": str(m.get("UUID") or ""),
        }
        for m in raw
        if _stream_source(m)
    ]
    info = StreamInfo(mappings=mappings)
    try:
        calls[0] += 1
        info.iterator_age_ms = aws.metric_maximum(
            "AWS/Lambda", "IteratorAge", {"FunctionName": function}, start_ms=start, end_ms=end, region=region
        )
    except OpsbotError:
        info.iterator_age_ms = None
    errors = lambda_errors(
        ErrorQuery("lambda", start, end, alarm.region, function=function, deadline=deadline)
    )
    calls[0] += errors.aws_calls
    for group in errors.groups:
        info.batch_errors.append(
            {
                "cause": group["cause"],
                "count": group["count"],
                "first": group["first"],
                "requestIds": group["requestIds"][:5],
            }
        )
    return Correlation(
        "stream", start, end, correlated=True, target={"function": function}, groups=errors.groups,
        complete=errors.complete, note=errors.note, stream=info,
    )  # fmt: skip


def elapsed_budget(seconds: float) -> float:
    """A deadline ``seconds`` from now on ``time.monotonic``'s clock."""
    return time.monotonic() + seconds
