"""``/apilogs errors``: the failing requests of an API stage in a window, grouped by what failed.

Two halves, as elsewhere in apilogs:

- **Pure** (``fold`` and the line readers): log events in, ``ErrorsReport`` out. Every event is read
  again here whatever CloudWatch returned for the filter pattern (moto honours only one quoted term and
  returns everything for ``?a ?b``), so the answer is the same against moto and AWS, and a line we do
  not recognise is skipped, never raised on.
- **AWS-backed** (``find_errors``): one paginated FilterLogEvents search per log group of the stage,
  through the shared limiter (``bot.aws.logs``), in parallel:

  * the access log, read whole: one line per request, it gives the total of the verdict and the
    method, path, status and ids of every failing request in any format (JSON, CLF, CSV, XML);
  * the execution log, filtered to the lines that say why a request failed (``Method completed with
    status: 5``, ``Execution failed``, ``Gateway response type``, the Lambda error body), plus, when no
    access log exists, the one ``HTTP Method:`` line per request (method, path and the total);
  * each Lambda group, filtered to error lines (``ERROR``, ``Task timed out``, ``errorType``...): the
    cause behind a 502, and the errors of invocations that still returned 200.

  Why this method and not a full read or Logs Insights: see docs/apilogs.md ("How errors reads").

``find_errors`` is the entry point for other features (the alarm correlation of issue 16):
``find_errors(settings, stage, start_ms, end_ms, status="5xx", path=None, cap=MAX_FAILING)``.
"""

from __future__ import annotations

import contextvars
import json
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from bot.aws import logs as cw
from bot.config import Settings
from bot.core.apilogs import discovery as disc
from bot.core.apilogs.formats import AccessRecord, parse_access_line, parse_lambda_line, split_exec_line
from bot.core.apilogs.model import ApiStage, CallStats, Discovery, LogEvent, SearchRecord
from bot.core.apilogs.scope import ReadLimit
from bot.core.common.timeparse import format_time, parse_time, to_epoch_ms
from bot.errors import NotAllowedError, UsageError, echo

StatusClass = Literal["5xx", "4xx", "all"]
STATUS_CLASSES: tuple[str, ...] = ("5xx", "4xx", "all")
DEFAULT_SINCE = "15m"
MAX_FAILING = 10_000  # exact counts up to this many failing requests
MAX_GROUP_IDS = 1_000  # request ids kept per group (--json)
SAMPLE_IDS = 5
# Events one search may bring back before the answer says it is incomplete (the access log of a very
# busy stage: 200,000 requests in the window).
MAX_EVENTS_PER_GROUP = 200_000
CAUSE_CHARS = 200

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

# -- the server-side filter patterns (re-checked on our side with bot.core.apilogs.patterns) -------

_EXEC_TERMS_5XX = ('"Method completed with status: 5"',)
_EXEC_TERMS_4XX = ('"Method completed with status: 4"',)
_EXEC_CAUSE_TERMS = (
    '"Execution failed"',
    '"Lambda execution failed"',
    '"Lambda invocation failed"',
    '"Endpoint request timed out"',
    '"Gateway response type"',
    '"Unauthorized request"',
    '"not authorized"',
    "errorType",
)
# Only without an access log: the request line (method, path, the total) and the Lambda id.
_EXEC_REQUEST_TERMS = ('"HTTP Method:"', '"AWS Integration Endpoint RequestId"')
_LAMBDA_TERMS = (
    "ERROR", '"Task timed out"', "errorType", "Traceback", "CRITICAL", "FATAL", '"Error: Runtime"',
    '"Runtime exited"',
)  # fmt: skip
LAMBDA_PATTERN = " ".join(f"?{term}" for term in _LAMBDA_TERMS)


def any_term(pattern: str) -> Callable[[str], bool]:
    """Our own check of an ``?a ?"b c"`` pattern made here: a line holding any of the terms.

    (``patterns.compile_pattern`` reads a tail's ``--filter`` word by word; these patterns hold quoted
    phrases with spaces, so they are checked from the terms they were made of.)"""
    terms = [t.strip('"') for t in re.findall(r'\?("[^"]*"|\S+)', pattern)]
    return lambda message: any(term in message for term in terms)


def exec_pattern(status: str, *, with_requests: bool) -> str:
    """The execution log's filter: the lines that say a request failed and why."""
    terms: list[str] = []
    if status in {"5xx", "all"}:
        terms += _EXEC_TERMS_5XX
    if status in {"4xx", "all"}:
        terms += _EXEC_TERMS_4XX
    terms += _EXEC_CAUSE_TERMS
    if with_requests:
        terms += _EXEC_REQUEST_TERMS
    return " ".join(f"?{term}" for term in terms)


def status_wanted(status: int | None, wanted: str) -> bool:
    if status is None:
        return False
    if wanted == "5xx":
        return 500 <= status <= 599
    if wanted == "4xx":
        return 400 <= status <= 499
    return 400 <= status <= 599


def path_wanted(path: str, wanted: str | None) -> bool:
    """``--path /orders`` (that resource path) or ``/orders*`` (it and below)."""
    if not wanted:
        return True
    if wanted.endswith("*"):
        return path.startswith(wanted[:-1])
    return path.rstrip("/") == wanted.rstrip("/") or path == wanted


# -- reading access lines in every format API Gateway offers --------------------------------------

# CLF preset: ip caller user [time] "METHOD path protocol" status length requestId extendedRequestId
_CLF_IDS = re.compile(
    r"\"(?P<method>[A-Z]+) (?P<path>\S+)(?: HTTP/[\d.]+)?\" (?P<status>\d{3}) (?P<length>\S+)"
    r"(?: (?P<rid>\S+))?(?: (?P<ext>\S+))?"
)
# CSV preset: ip,caller,user,time,method,resourcePath,protocol,status,length,requestId,extendedRequestId
_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY"}


def parse_access(message: str) -> AccessRecord | None:
    """An access-log line in JSON (keys by meaning), XML, CSV or CLF (the console's presets), or None."""
    text = message.strip()
    if text.startswith("{"):
        return parse_access_line(text)
    if text.startswith("<"):
        return _parse_xml(text)
    if (found := _CLF_IDS.search(text)) is not None:
        rid = found.group("rid") or ""
        return AccessRecord(
            request_id="" if rid == "-" else rid,
            extended_id=(found.group("ext") or "").strip("-"),
            method=found.group("method"),
            path=found.group("path"),
            status=int(found.group("status")),
        )
    if "," in text:
        return _parse_csv(text)
    return None


def _parse_xml(text: str) -> AccessRecord | None:
    if "<!" in text:  # a DOCTYPE or ENTITY: never an access line, and never expanded
        return None
    try:
        root = ET.fromstring(text)
    except (ET.ParseError, ValueError):
        return None
    values: dict[str, str] = {re.sub(r"[^a-z]", "", k.lower()): v for k, v in root.attrib.items()}
    for child in root.iter():
        if child is not root and child.text:
            values.setdefault(re.sub(r"[^a-z]", "", child.tag.lower()), child.text.strip())
    status = values.get("status", "")
    method = values.get("httpmethod") or values.get("method", "")
    route = values.get("routekey", "")
    if not method and " " in route:
        method = route.split(" ", 1)[0]
    if not status.isdigit() and not method:
        return None
    return AccessRecord(
        request_id=values.get("requestid") or values.get("id", ""),
        extended_id=values.get("extendedrequestid", ""),
        integration_id=values.get("integrationrequestid", "").lower(),
        method=method,
        path=values.get("resourcepath") or values.get("path", ""),
        route=route,
        status=int(status) if status.isdigit() else None,
        error=values.get("errormessage") or values.get("integrationerrormessage", ""),
    )


def _parse_csv(text: str) -> AccessRecord | None:
    cells = [c.strip().strip('"') for c in text.split(",")]
    # The preset's order; other orders are recognised by the method and the three-digit status.
    for index, cell in enumerate(cells):
        if cell in _METHODS and index + 1 < len(cells):
            path = cells[index + 1]
            rest = cells[index + 2 :]
            status = next((int(c) for c in rest if re.fullmatch(r"[1-5]\d\d", c)), None)
            if status is None:
                return None
            after = rest[rest.index(str(status)) + 1 :]
            ids = [c for c in after[1:] if c and c != "-"]
            return AccessRecord(
                request_id=ids[0] if ids else "",
                extended_id=ids[1] if len(ids) > 1 else "",
                method=cell,
                path=path,
                status=status,
            )
    return None


# -- what a line says about a failure --------------------------------------------------------------

# Lower rank: a better account of the cause (the first found of the best rank is kept).
_RANK_CONFIG, _RANK_TIMEOUT, _RANK_LAMBDA_TYPE, _RANK_GATEWAY, _RANK_LAMBDA_TEXT = 1, 2, 3, 4, 5

_GATEWAY = re.compile(r"Gateway response type: (?P<type>[A-Z_0-9]+) with status code: (?P<status>\d{3})")
_COMPLETED = re.compile(r"Method completed with status: (?P<status>\d{3})")
_HTTP_METHOD = re.compile(r"HTTP Method: (?P<method>[A-Z]+), Resource Path: (?P<path>\S+)")
_CUSTOMER_ERROR = re.compile(
    r"Lambda execution failed with status \d+ due to customer function error: (?P<msg>.*?)"
    r"(?:\. Lambda request id: (?P<id>[0-9a-fA-F-]{36}))?\s*\Z",
    re.DOTALL,
)
_LAMBDA_INVOCATION = re.compile(r"Lambda invocation failed with status: (?P<status>\d{3})")
_CONFIG = re.compile(r"Execution failed due to configuration error:\s*(?P<msg>.*)", re.DOTALL)
_LAMBDA_ID = re.compile(
    r"(?:Lambda request id: |AWS Integration Endpoint RequestId : )(?P<id>[0-9a-fA-F-]{36})"
)
_RESPONSE_BODY = "Endpoint response body before transformations: "
GATEWAY_CAUSES = {
    "THROTTLED": "Throttled (429)",
    "QUOTA_EXCEEDED": "Usage plan quota exceeded (429)",
    "UNAUTHORIZED": "Authorizer: unauthorized (401)",
    "ACCESS_DENIED": "Authorizer deny (403)",
    "AUTHORIZER_FAILURE": "Authorizer failed",
    "AUTHORIZER_CONFIGURATION_ERROR": "Authorizer configuration error",
    "INTEGRATION_TIMEOUT": "Integration timeout",
    "INTEGRATION_FAILURE": "Integration failure",
    "MISSING_AUTHENTICATION_TOKEN": "Missing authentication token (403)",
    "INVALID_API_KEY": "Invalid API key (403)",
    "WAF_FILTERED": "Blocked by AWS WAF (403)",
}


def clean_cause(text: str) -> str:
    """One line of a cause, ids replaced so that the same failure groups together, cut to a length."""
    first = text.strip().splitlines()[0].strip() if text.strip() else ""
    first = _UUID.sub("<id>", first)
    first = re.sub(r"\s+", " ", first)
    return first if len(first) <= CAUSE_CHARS else first[: CAUSE_CHARS - 1] + "…"


def _error_json_cause(payload: Any) -> str:
    if not isinstance(payload, dict):
        return ""
    kind = str(payload.get("errorType") or "").strip()
    message = str(payload.get("errorMessage") or "").strip()
    if "Task timed out after" in message:
        return "Task timed out"
    if kind and message:
        return clean_cause(f"{kind}: {message}")
    return clean_cause(kind or message)


@dataclass(frozen=True)
class ExecInfo:
    """What one execution-log line says (only the facts errors uses)."""

    request_id: str
    method: str = ""
    path: str = ""
    status: int | None = None
    cause: str = ""
    rank: int = 99
    lambda_id: str = ""
    request_line: bool = False


def read_exec_line(message: str) -> ExecInfo | None:
    """The facts of an execution-log line, or None for a line without the ``(id)`` prefix."""
    request_id, text = split_exec_line(message)
    if request_id is None:
        return None
    if m := _HTTP_METHOD.search(text):
        return ExecInfo(request_id, m.group("method"), m.group("path"), request_line=True)
    if m := _COMPLETED.search(text):
        return ExecInfo(request_id, status=int(m.group("status")))
    if m := _GATEWAY.search(text):
        kind = m.group("type")
        cause = GATEWAY_CAUSES.get(kind, f"Gateway response {kind}")
        return ExecInfo(request_id, status=int(m.group("status")), cause=cause, rank=_RANK_GATEWAY)
    if m := _CONFIG.match(text):
        return ExecInfo(
            request_id,
            cause=clean_cause(f"Execution failed due to configuration error: {m.group('msg')}"),
            rank=_RANK_CONFIG,
        )
    if text.startswith("Execution failed due to a timeout error") or text.startswith(
        "Endpoint request timed out"
    ):
        return ExecInfo(request_id, cause="Integration timeout", rank=_RANK_TIMEOUT)
    if m := _CUSTOMER_ERROR.match(text):
        msg = m.group("msg")
        cause = "Task timed out" if "Task timed out after" in msg else clean_cause(f"Lambda error: {msg}")
        return ExecInfo(
            request_id, cause=cause, rank=_RANK_LAMBDA_TEXT, lambda_id=(m.group("id") or "").lower()
        )
    if m := _LAMBDA_INVOCATION.search(text):
        code = m.group("status")
        cause = "Lambda throttled (429)" if code == "429" else f"Lambda invocation failed ({code})"
        found = _LAMBDA_ID.search(text)
        return ExecInfo(
            request_id, cause=cause, rank=_RANK_GATEWAY, lambda_id=found.group("id").lower() if found else ""
        )
    if text.startswith(_RESPONSE_BODY) and "errorType" in text:
        try:
            payload = json.loads(text[len(_RESPONSE_BODY) :])
        except ValueError:
            return ExecInfo(request_id)
        cause = _error_json_cause(payload)
        return ExecInfo(request_id, cause=cause, rank=_RANK_LAMBDA_TYPE if cause else 99)
    if text.startswith("Unauthorized request"):
        return ExecInfo(request_id, cause="Authorizer: unauthorized (401)", rank=_RANK_GATEWAY)
    if "not authorized to perform this operation" in text:
        return ExecInfo(request_id, cause="Authorizer deny (403)", rank=_RANK_GATEWAY)
    if m := _LAMBDA_ID.search(text):
        return ExecInfo(request_id, lambda_id=m.group("id").lower())
    return ExecInfo(request_id)


@dataclass(frozen=True)
class FunctionError:
    """An error line of a function: which invocation, what it says, and the API request it names."""

    lambda_id: str
    cause: str
    api_ids: tuple[str, ...] = ()


def read_lambda_error(message: str) -> FunctionError | None:
    """The function's own account of a failure (an ERROR line, a timeout, a runtime error), or None."""
    line = parse_lambda_line(message)
    if line.kind == "timeout":
        return FunctionError(line.request_id, "Task timed out", line.api_ids)
    if line.kind == "runtime_error":
        return FunctionError(line.request_id, clean_cause(f"Runtime error: {line.text}"), line.api_ids)
    if line.kind == "app" and line.level in {"ERROR", "CRITICAL", "FATAL"}:
        text = line.text
        cause = ""
        start = text.find("{")
        if start != -1:  # Node's "Invoke Error \t{json}", the Lambda JSON format's error object
            try:
                cause = _error_json_cause(json.loads(text[start:]))
            except ValueError:
                cause = ""
        return FunctionError(line.request_id, cause or clean_cause(text), line.api_ids)
    if message.startswith("[ERROR] ") and line.kind == "other":
        # An unhandled Python exception: "[ERROR] KeyError: 'x'\nTraceback..." names no invocation.
        return FunctionError("", clean_cause(message[len("[ERROR] ") :]))
    return None


# -- the report -----------------------------------------------------------------------------------


@dataclass
class ErrorGroup:
    method: str
    path: str
    status: int | None
    cause: str
    count: int = 0
    first: int = 0
    last: int = 0
    functions: list[str] = field(default_factory=list)
    request_ids: list[str] = field(default_factory=list)  # API request ids (Lambda ids without one)

    @property
    def samples(self) -> list[str]:
        return self.request_ids[:SAMPLE_IDS]

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "cause": self.cause,
            "count": self.count,
            "first": self.first,
            "last": self.last,
            "functions": list(self.functions),
            "requestIds": self.request_ids[:MAX_GROUP_IDS],
        }


@dataclass
class ErrorsReport:
    stage: ApiStage
    start_ms: int
    end_ms: int
    status: str
    path: str | None = None
    groups: list[ErrorGroup] = field(default_factory=list)
    # Errors inside functions whose API request did not fail (or whose request the logs do not name).
    function_errors: list[ErrorGroup] = field(default_factory=list)
    total: int = 0  # failing requests counted (at most the cap)
    requests: int | None = None  # all requests in the window, when the logs or metrics tell
    requests_source: str = ""  # "access log" | "execution log" | "metric Count" | ""
    complete: bool = True
    capped: bool = False  # more failing requests than the cap
    reached_ms: int | None = None  # how far (in time) the counted requests go when not complete
    until_now: bool = True  # the window ends now (no --until): the verdict says "in the last 15 min"
    notes: list[str] = field(default_factory=list)
    searches: list[SearchRecord] = field(default_factory=list)
    stats: CallStats = field(default_factory=CallStats)
    groups_read: list[str] = field(default_factory=list)
    elapsed_ms: int = 0

    @property
    def causes(self) -> int:
        return len({g.cause for g in self.groups})

    def to_json(self) -> dict[str, Any]:
        return {
            "window": {"start": self.start_ms, "end": self.end_ms},
            "status": self.status,
            "total": self.total,
            "requests": self.requests,
            "complete": self.complete,
            "groups": [g.to_json() for g in self.groups],
            "functionErrors": [g.to_json() for g in self.function_errors],
            "api": self.stage.to_json(),
            "path": self.path,
            "requestsSource": self.requests_source or None,
            "capped": self.capped,
            "reached": self.reached_ms,
            "notes": list(self.notes),
            "calls": self.stats.to_json(),
            "searches": [s.to_json() for s in self.searches],
        }


# -- the fold (pure) ------------------------------------------------------------------------------


@dataclass
class _Request:
    request_id: str
    at: int
    method: str = ""
    path: str = ""
    status: int | None = None
    cause: str = ""
    rank: int = 99
    lambda_ids: set[str] = field(default_factory=set)
    in_access: bool = False

    def seen(self, ts: int) -> None:
        self.at = min(self.at, ts)

    def offer(self, cause: str, rank: int) -> None:
        if cause and rank < self.rank:
            self.cause, self.rank = cause, rank


def _access_cause(record: AccessRecord) -> tuple[str, int]:
    """The cause an access log states ($context.error.message, integrationErrorMessage)."""
    text = record.error.strip()
    if not text:
        return "", 99
    low = text.lower()
    if "explicit deny" in low or "not authorized" in low or "forbidden" in low:
        return "Authorizer deny (403)", _RANK_GATEWAY
    if low.startswith("unauthorized"):
        return "Authorizer: unauthorized (401)", _RANK_GATEWAY
    if "too many requests" in low or "rate exceeded" in low or "throttl" in low:
        return "Throttled (429)", _RANK_GATEWAY
    if "timed out" in low or "timeout" in low:
        return "Integration timeout", _RANK_TIMEOUT
    return clean_cause(text), _RANK_LAMBDA_TEXT


def fold(
    stage: ApiStage,
    access: Iterable[LogEvent],
    execution: Iterable[LogEvent],
    functions: Iterable[tuple[str, LogEvent]],
    *,
    status: str = "5xx",
    path: str | None = None,
    start_ms: int = 0,
    end_ms: int = 0,
    discovery: Discovery | None = None,
    cap: int = MAX_FAILING,
    count_from_exec: bool = False,
) -> ErrorsReport:
    """Group the failing requests the events describe. ``functions``: (function name, event) pairs."""
    report = ErrorsReport(stage, start_ms, end_ms, status, path or None)
    requests: dict[str, _Request] = {}
    lambda_to_api: dict[str, str] = {}
    # Requests that did not fail in the class asked for, by id: (method, path), for the errors of their
    # functions listed under their own heading.
    answered: dict[str, tuple[str, str]] = {}
    access_count = 0
    exec_count = 0

    def request(request_id: str, ts: int) -> _Request:
        found = requests.get(request_id)
        if found is None:
            found = requests[request_id] = _Request(request_id, ts)
        found.seen(ts)
        return found

    for event in access:
        record = parse_access(event.message)
        if record is None:
            continue
        method, rpath = record.method, record.path
        if record.route and " " in record.route:  # HTTP API: the route is the resource path
            method, rpath = record.route.split(" ", 1)
        if not path_wanted(rpath, path):
            continue
        access_count += 1
        if not status_wanted(record.status, status):
            if record.integration_id and record.request_id:
                lambda_to_api[record.integration_id.lower()] = record.request_id
                answered[record.request_id] = (method, rpath)
            continue
        rid = record.request_id or f"{event.group}:{event.event_id or event.timestamp}"
        item = request(rid, event.timestamp)
        item.in_access = True
        item.method, item.path, item.status = method or item.method, rpath or item.path, record.status
        item.offer(*_access_cause(record))
        if record.integration_id:
            item.lambda_ids.add(record.integration_id.lower())
            lambda_to_api[record.integration_id.lower()] = rid

    exec_seen: dict[str, ExecInfo] = {}
    for event in execution:
        info = read_exec_line(event.message)
        if info is None:
            continue
        if info.request_line:
            exec_count += path_wanted(info.path, path)
        item = request(info.request_id, event.timestamp)
        if info.method and not item.method:
            item.method, item.path = info.method, info.path
        if info.status is not None and not item.in_access:
            item.status = info.status
        item.offer(info.cause, info.rank)
        if info.lambda_id:
            item.lambda_ids.add(info.lambda_id)
            lambda_to_api.setdefault(info.lambda_id, info.request_id)
        exec_seen[info.request_id] = info

    # The functions' own error lines, by invocation.
    by_lambda: dict[str, tuple[str, FunctionError, int]] = {}
    loose: list[tuple[str, FunctionError, int]] = []
    for function, event in functions:
        found = read_lambda_error(event.message)
        if found is None:
            continue
        entry = (function, found, event.timestamp)
        if found.lambda_id:
            by_lambda.setdefault(found.lambda_id, entry)  # the first error line of an invocation
        else:
            loose.append(entry)

    routes = dict(discovery.routes) if discovery is not None else {}
    authorizers = [f.name for f in discovery.functions if f.role == "authorizer"] if discovery else []

    failing: list[_Request] = []
    for item in requests.values():
        if not status_wanted(item.status, status) or not path_wanted(item.path, path):
            continue
        failing.append(item)
    failing.sort(key=lambda r: (r.at, r.request_id))
    if len(failing) > cap:
        report.capped = True
        report.complete = False
        report.reached_ms = failing[cap - 1].at
        failing = failing[:cap]
    report.total = len(failing)

    GroupKey = tuple[str, str, int | None, str]
    groups: dict[GroupKey, ErrorGroup] = {}
    used_lambda: set[str] = set()
    for item in failing:
        names: list[str] = []
        cause, rank = item.cause, item.rank
        for lambda_id in sorted(item.lambda_ids):
            if lambda_id in by_lambda:
                function, error, _ = by_lambda[lambda_id]
                used_lambda.add(lambda_id)
                names.append(function)
                # The function's own words beat API Gateway's paraphrase of them.
                if error.cause and rank >= _RANK_LAMBDA_TYPE:
                    cause, rank = error.cause, _RANK_LAMBDA_TYPE
        if not names:
            if cause.startswith("Authorizer") and authorizers:
                names = list(authorizers)
            elif (routed := routes.get(f"{item.method} {item.path}")) is not None:
                names = [routed]
        key = (item.method, item.path, item.status, cause)
        group = groups.get(key)
        if group is None:
            group = groups[key] = ErrorGroup(item.method, item.path, item.status, cause, first=item.at)
        group.count += 1
        group.first = min(group.first, item.at)
        group.last = max(group.last, item.at)
        for name in names:
            if name not in group.functions:
                group.functions.append(name)
        if len(group.request_ids) < MAX_GROUP_IDS:
            group.request_ids.append(item.request_id)
    report.groups = sorted(groups.values(), key=lambda g: (-g.count, g.first, g.method, g.path))

    # Errors inside functions whose request did not fail in this class (a handled error behind a 200).
    extra: dict[GroupKey, ErrorGroup] = {}
    for lambda_id, (function, error, ts) in sorted(by_lambda.items(), key=lambda kv: kv[1][2]):
        if lambda_id in used_lambda:
            continue
        api_id = lambda_to_api.get(lambda_id) or next(iter(error.api_ids), "")
        api = requests.get(api_id) if api_id else None
        if api is not None and status_wanted(api.status, "all"):
            continue  # its request failed, with a status outside the class asked for
        method, rpath = (api.method, api.path) if api is not None else answered.get(api_id, ("", ""))
        if path and not path_wanted(rpath, path):
            continue
        key = (method, rpath, None, error.cause)
        group = extra.get(key)
        if group is None:
            group = extra[key] = ErrorGroup(method, rpath, None, error.cause, first=ts, functions=[function])
        group.count += 1
        group.first, group.last = min(group.first, ts), max(group.last, ts)
        if function not in group.functions:
            group.functions.append(function)
        if len(group.request_ids) < MAX_GROUP_IDS:
            group.request_ids.append(api_id or lambda_id)
    if not path:
        # A line that names no invocation (an unhandled Python exception) is listed only when no failing
        # request of its function explains it: behind a 502 it is that request's cause, already counted.
        explained = {name for g in report.groups for name in g.functions}
        for function, error, ts in loose:
            if function in explained:
                continue
            key = ("", "", None, error.cause)
            group = extra.get(key)
            if group is None:
                group = extra[key] = ErrorGroup("", "", None, error.cause, first=ts, functions=[function])
            group.count += 1
            group.first, group.last = min(group.first, ts), max(group.last, ts)
    report.function_errors = sorted(extra.values(), key=lambda g: (-g.count, g.first))

    if access_count:
        report.requests, report.requests_source = access_count, "access log"
    elif count_from_exec and exec_count:
        report.requests, report.requests_source = exec_count, "execution log"
    return report


# -- the AWS-backed search ------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """One search per log group: the group, its filter pattern ("" = every line), what it is."""

    group: str
    pattern: str
    role: Literal["access", "execution", "function"]
    function: str = ""


def plan_reads(stage: ApiStage, found: Discovery, status: str) -> list[Plan]:
    plans: list[Plan] = []
    if stage.access_log_group:
        plans.append(Plan(stage.access_log_group, "", "access"))
    if stage.execution_log_group and stage.logging_level != "OFF":
        pattern = exec_pattern(status, with_requests=not stage.access_log_group)
        plans.append(Plan(stage.execution_log_group, pattern, "execution"))
    seen: set[str] = set()
    for ref in found.functions:
        if ref.log_group in seen:
            continue
        seen.add(ref.log_group)
        plans.append(Plan(ref.log_group, LAMBDA_PATTERN, "function", ref.name))
    return plans


def find_errors(
    settings: Settings,
    stage: ApiStage,
    start_ms: int,
    end_ms: int,
    status: str = "5xx",
    path: str | None = None,
    cap: int = MAX_FAILING,
    *,
    deadline: float | None = None,
    scope: ReadLimit | None = None,
    discovery: Discovery | None = None,
) -> ErrorsReport:
    """The failing requests of ``stage`` in [start_ms, end_ms], grouped by what failed.

    ``status``: ``5xx``, ``4xx`` or ``all``; ``path``: a resource path (``/orders``, ``/orders*``);
    ``cap``: failing requests counted exactly before the answer says it stopped; ``deadline``: a
    ``time.monotonic()`` value past which searches stop (the answer is then marked incomplete);
    ``scope``: the caller's read scope (groups outside it are skipped and named).
    """
    if status not in STATUS_CLASSES:
        raise UsageError(f"--status must be one of {', '.join(STATUS_CLASSES)}.")
    began = time.monotonic()
    found = discovery or disc.discover(stage)
    plans = plan_reads(stage, found, status)
    skipped: list[str] = []
    if scope is not None:
        allowed = {p.group for p in plans if scope.allows_group(p.group)}
        skipped = [p.group for p in plans if p.group not in allowed]
        plans = [p for p in plans if p.group in allowed]
        if skipped and not plans:
            raise NotAllowedError(
                f"None of the log groups of {stage.label} may be read in this channel. "
                + scope.skipped_note(skipped)
            )
    if not any(p.role in {"access", "execution"} for p in plans):
        raise UsageError(
            f"{stage.label} writes no API Gateway logs opsbot may read: turn on access logging "
            "(or execution logging for a REST API) on the stage to list its failing requests."
        )
    stats = CallStats()
    searches: list[SearchRecord] = []

    def read(plan: Plan) -> tuple[Plan, cw.FilterResult]:
        matcher = any_term(plan.pattern) if plan.pattern else None
        result = cw.filter_events(
            plan.group,
            start_ms=start_ms,
            end_ms=end_ms,
            pattern=plan.pattern,
            recheck=matcher,
            max_events=MAX_EVENTS_PER_GROUP,
            deadline=deadline,
            stats=stats,
        )
        return plan, result

    workers = max(1, min(len(plans), cw.LIMITER.concurrency))
    # Each search in a copy of the caller's context: a ``region_override`` (the alarm correlation of an
    # alarm in another region) and the tracing span hold in the workers too.
    contexts = [contextvars.copy_context() for _ in plans]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda pair: pair[0].run(read, pair[1]), zip(contexts, plans, strict=True)))
    access: list[LogEvent] = []
    execution: list[LogEvent] = []
    functions: list[tuple[str, LogEvent]] = []
    incomplete: list[str] = []
    for plan, result in results:
        searches.append(
            SearchRecord(
                plan.group, plan.pattern, start_ms, end_ms, len(result.events), result.missing,
                purpose=f"errors: {plan.role}", cut_short=result.truncated,
            )
        )  # fmt: skip
        if result.truncated:
            incomplete.append(plan.group)
        if plan.role == "access":
            access.extend(result.events)
        elif plan.role == "execution":
            execution.extend(result.events)
        else:
            functions.extend((plan.function, e) for e in result.events)
    report = fold(
        stage,
        access,
        execution,
        functions,
        status=status,
        path=path,
        start_ms=start_ms,
        end_ms=end_ms,
        discovery=found,
        cap=cap,
        count_from_exec=not stage.access_log_group,
    )
    report.stats, report.searches = stats, searches
    report.groups_read = [p.group for p in plans]
    report.notes.extend(found.notes)
    missing = [s.group for s in searches if s.missing and s.purpose != "errors: function"]
    if missing:
        report.notes.append(f"No such log group (logging off, or nothing logged yet): {', '.join(missing)}.")
    if incomplete:
        report.complete = False
        report.notes.append(
            "Not every line could be read in time (CloudWatch throttling, the time limit or more than "
            f"{MAX_EVENTS_PER_GROUP:,} lines): {', '.join(incomplete)}; the counts may be low."
        )
    if skipped and scope is not None:
        report.notes.append(scope.skipped_note(skipped))
    # The counting log read to its end with no request line in the window: no request came. That is a
    # count (0), not an unknown total (which is what an absent or unreadable log leaves).
    counting = "access" if stage.access_log_group else "execution"
    if report.requests is None and any(
        plan.role == counting and not result.missing and not result.truncated for plan, result in results
    ):
        report.requests, report.requests_source = 0, f"{counting} log"
    if report.requests is None:
        report.requests = _metric_count(stage, start_ms, end_ms, path)
        if report.requests is not None:
            report.requests_source = "metric Count"
    report.elapsed_ms = int((time.monotonic() - began) * 1000)
    return report


def _metric_count(stage: ApiStage, start_ms: int, end_ms: int, path: str | None) -> int | None:
    """API Gateway's ``Count`` metric for the stage when no log counts the requests (never with --path:
    the per-resource metric needs detailed metrics on; unknown is better than wrong)."""
    if path:
        return None
    from bot.aws.apimetrics import request_count

    try:
        return request_count(
            stage.kind, stage.name or stage.api_id, stage.api_id, stage.stage, start_ms, end_ms
        )
    except Exception:  # the verdict then says the total is unknown; the groups still stand
        return None


def window(since: str = "", until: str = "", *, now: datetime | None = None) -> tuple[int, int]:
    """[start, end] in epoch ms; default the last 15 minutes."""
    now = now or datetime.now(UTC)
    end = parse_time(until, now=now) if until else now
    start = parse_time(since, now=now) if since else parse_time(DEFAULT_SINCE, now=end)
    if start >= end:
        raise UsageError(f"--since ({format_time(start)}) must be before --until ({format_time(end)}).")
    return to_epoch_ms(start), to_epoch_ms(end)


def check_args(status: str = "5xx", path: str = "", since: str = "", until: str = "") -> None:
    """Pure checks of the arguments (the Slack ack path and the CLI run them before any AWS call)."""
    if status not in STATUS_CLASSES:
        raise UsageError(f"--status must be one of {', '.join(STATUS_CLASSES)}, not {echo(status)}.")
    if path and (not path.startswith("/") or len(path) > 512 or any(c.isspace() for c in path)):
        raise UsageError(f"--path is a resource path such as /orders or /orders*, not {echo(path)}.")
    window(since, until)


def errors(
    settings: Settings,
    *,
    api: str = "",
    stage: str = "",
    since: str = "",
    until: str = "",
    status: str = "5xx",
    path: str = "",
    now: datetime | None = None,
    deadline: float | None = None,
    limit: ReadLimit | None = None,
) -> ErrorsReport:
    """The subcommand: resolve the stage (defaults as the lookup), then ``find_errors``."""
    check_args(status, path, since, until)
    start_ms, end_ms = window(since, until, now=now)
    target = disc.resolve_stage(
        api or (limit.default_api() if limit else "") or settings.default_api,
        stage or (limit.default_stage() if limit else "") or settings.default_stage,
        region=settings.region,
        limit=limit,
    )
    report = find_errors(
        settings, target, start_ms, end_ms, status, path or None, deadline=deadline, scope=limit
    )
    report.until_now = not until
    return report


__all__ = [
    "MAX_FAILING",
    "STATUS_CLASSES",
    "ErrorGroup",
    "ErrorsReport",
    "check_args",
    "errors",
    "find_errors",
    "fold",
    "parse_access",
    "read_exec_line",
    "read_lambda_error",
    "window",
]
