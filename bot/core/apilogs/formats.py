"""Recognise the log lines API Gateway and Lambda write, and what ids and facts they carry.

Pure functions over message text. Formats (REFERENCE.md, "API Gateway and Lambda logs"):

- API Gateway execution log: every line starts with ``({request id}) ``.
- Access logs: whatever format the stage sets; JSON is common, so JSON keys are read by meaning.
- Lambda platform lines: ``START RequestId: ...``, ``END RequestId: ...``, ``REPORT RequestId: ...``,
  ``INIT_START ...``, and their JSON-format twins ``platform.start`` / ``platform.report``.
- Runtime text: Python ``[LEVEL]\\tTIME\\tREQUEST_ID\\tmsg``, Node ``TIME\\tREQUEST_ID\\tLEVEL\\tmsg``,
  the timeout line ``TIME REQUEST_ID Task timed out after 3.00 seconds``.
- Lambda JSON format ``{"timestamp", "level", "message", "requestId"}`` and Powertools
  ``{"level", "message", "function_request_id", "correlation_id", ...}``.
- ``print()`` output: no id at all; it belongs to the invocation whose START..END encloses it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_ISO = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?"

# -- API Gateway execution log --------------------------------------------------------------------

_EXEC_PREFIX = re.compile(rf"^\((?P<id>{_UUID})\) ?(?P<rest>.*)\Z", re.DOTALL)
_EXTENDED = re.compile(r"Extended Request Id: (?P<id>\S+)")
_HTTP_METHOD = re.compile(r"HTTP Method: (?P<method>[A-Z]+), Resource Path: (?P<path>\S+)")
_ENDPOINT_URI = re.compile(
    r"Endpoint request URI: https://lambda\.[^/\s]+/\d{4}-\d{2}-\d{2}/functions/"
    r"(?P<arn>arn:[^/\s]+?)/invocations"
)
_RECEIVED = re.compile(r"Received response\. Status: (?P<status>\d{3}), Integration latency: (?P<ms>\d+) ms")
_RESPONSE_HEADER_ID = re.compile(rf"x-amzn-RequestId=(?P<id>{_UUID})", re.IGNORECASE)
_LAMBDA_ID_TEXT = re.compile(rf"Lambda request id: (?P<id>{_UUID})", re.IGNORECASE)
_INTEGRATION_ID = re.compile(rf"AWS Integration Endpoint RequestId : (?P<id>{_UUID})")
_METHOD_COMPLETED = re.compile(r"Method completed with status: (?P<status>\d{3})")
_XRAY_LINE = re.compile(r"X-ray Tracing ID : (?P<id>1-[0-9a-fA-F]{8}-[0-9a-fA-F]{24})")
_STARTING_AUTHORIZER = re.compile(r"Starting authorizer: (?P<id>\w+)")
_FUNCTION_ARN = re.compile(
    r"^arn:(?P<partition>[\w-]+):lambda:(?P<region>[\w-]+):(?P<account>\d{12}):function:"
    r"(?P<name>[A-Za-z0-9_-]+)(?::(?P<qualifier>[A-Za-z0-9$_-]+))?$"
)


def split_exec_line(message: str) -> tuple[str | None, str]:
    """``(id) text`` -> (id, text); lines without the prefix -> (None, message)."""
    found = _EXEC_PREFIX.match(message)
    if not found:
        return None, message
    return found.group("id").lower(), found.group("rest")


@dataclass(frozen=True)
class ExecFact:
    """What one execution-log line tells about the request."""

    kind: Literal[
        "extended",
        "method",
        "authorizer_start",
        "authorizer_end",
        "execution_start",
        "endpoint_uri",
        "received",
        "lambda_id",
        "completed",
        "xray",
        "other",
    ]
    value: str = ""
    extra: str = ""
    number: int | None = None


def exec_fact(text: str) -> ExecFact:
    """Classify an execution-log line (without its ``(id)`` prefix)."""
    if m := _ENDPOINT_URI.search(text):
        return ExecFact("endpoint_uri", m.group("arn"))
    if m := _RECEIVED.search(text):
        return ExecFact("received", m.group("status"), number=int(m.group("ms")))
    if m := _INTEGRATION_ID.search(text):
        return ExecFact("lambda_id", m.group("id").lower(), extra="integration")
    if text.startswith("Endpoint response headers:") and (m := _RESPONSE_HEADER_ID.search(text)):
        return ExecFact("lambda_id", m.group("id").lower(), extra="headers")
    if m := _LAMBDA_ID_TEXT.search(text):
        return ExecFact("lambda_id", m.group("id").lower(), extra="failure")
    if m := _METHOD_COMPLETED.search(text):
        return ExecFact("completed", m.group("status"), number=int(m.group("status")))
    if m := _HTTP_METHOD.search(text):
        return ExecFact("method", m.group("method"), extra=m.group("path"))
    if m := _EXTENDED.search(text):
        return ExecFact("extended", m.group("id"))
    if m := _XRAY_LINE.search(text):
        return ExecFact("xray", m.group("id").lower())
    if m := _STARTING_AUTHORIZER.search(text):
        return ExecFact("authorizer_start", m.group("id"))
    if text.startswith(("Successfully completed authorizer execution", "Unauthorized request")) or (
        text.startswith("Execution failed due to configuration error") and "authorizer" in text.lower()
    ):
        return ExecFact("authorizer_end")
    if text.startswith("Starting execution for request"):
        return ExecFact("execution_start")
    return ExecFact("other")


@dataclass(frozen=True)
class FunctionArn:
    name: str
    qualifier: str = ""
    region: str = ""
    account: str = ""
    partition: str = "aws"


def parse_function_arn(arn: str) -> FunctionArn | None:
    found = _FUNCTION_ARN.match(arn.strip())
    if not found:
        return None
    return FunctionArn(
        name=found.group("name"),
        qualifier=found.group("qualifier") or "",
        region=found.group("region"),
        account=found.group("account"),
        partition=found.group("partition"),
    )


# -- Lambda lines ---------------------------------------------------------------------------------

LambdaKind = Literal["init_start", "start", "end", "report", "app", "timeout", "runtime_error", "other"]

_START = re.compile(rf"^START RequestId: (?P<id>{_UUID})(?: Version: (?P<version>\S+))?")
_END = re.compile(rf"^END RequestId: (?P<id>{_UUID})")
_REPORT = re.compile(rf"^REPORT RequestId: (?P<id>{_UUID})")
_INIT_START = re.compile(r"^INIT_START\b")
_PY_TEXT = re.compile(rf"^\[(?P<level>[A-Z]+)\]\t(?P<time>{_ISO})\t(?P<id>{_UUID})\t(?P<msg>.*)\Z", re.DOTALL)
_NODE_TEXT = re.compile(
    rf"^(?P<time>{_ISO})\t(?P<id>{_UUID})\t(?:(?P<level>TRACE|DEBUG|INFO|WARN|WARNING|ERROR|FATAL|CRITICAL)\t)?"
    rf"(?P<msg>.*)\Z",
    re.DOTALL,
)
_TIMEOUT = re.compile(rf"^(?:{_ISO} )?(?P<id>{_UUID}) Task timed out after (?P<secs>[\d.]+) seconds")
_RUNTIME_ERROR = re.compile(rf"^RequestId: (?P<id>{_UUID}) Error: (?P<msg>.*)\Z", re.DOTALL)
_REPORT_FIELDS = {
    "duration_ms": re.compile(r"\tDuration: ([\d.]+) ms"),
    "billed_ms": re.compile(r"Billed Duration: ([\d.]+) ms"),
    "memory_mb": re.compile(r"Memory Size: (\d+) MB"),
    "max_memory_mb": re.compile(r"Max Memory Used: (\d+) MB"),
    "init_ms": re.compile(r"Init Duration: ([\d.]+) ms"),
}
_REPORT_STATUS = re.compile(r"Status: (\w+)")
# How functions log the API Gateway request id (the seed post's technique and common variants).
_API_ID_MENTIONS = [
    re.compile(rf"API Gateway Request ID:? (?P<id>{_UUID})", re.IGNORECASE),
    re.compile(rf"APIG: (?P<id>{_UUID})"),
    re.compile(
        rf"\"(?:apiRequestId|api_request_id|apigwRequestId|correlation_id)\"\s*:\s*\"(?P<id>{_UUID})\""
    ),
]


@dataclass(frozen=True)
class ReportMetrics:
    duration_ms: float | None = None
    billed_ms: float | None = None
    memory_mb: int | None = None
    max_memory_mb: int | None = None
    init_ms: float | None = None
    status: str = ""  # "", success, error, timeout

    def to_json(self) -> dict[str, Any]:
        return {
            "durationMs": self.duration_ms,
            "billedDurationMs": self.billed_ms,
            "memorySizeMB": self.memory_mb,
            "maxMemoryUsedMB": self.max_memory_mb,
            "initDurationMs": self.init_ms,
            "status": self.status or None,
        }


@dataclass(frozen=True)
class LambdaLine:
    kind: LambdaKind
    request_id: str = ""  # the Lambda request id the line names ("" for print() output)
    level: str = ""
    text: str = ""
    api_ids: tuple[str, ...] = ()  # API Gateway request ids the line mentions (correlation)
    report: ReportMetrics | None = None
    version: str = ""


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


def parse_report_text(text: str) -> ReportMetrics:
    values: dict[str, float | None] = {}
    for name, pattern in _REPORT_FIELDS.items():
        found = pattern.search(text)
        values[name] = float(found.group(1)) if found else None
    status = _REPORT_STATUS.search(text)
    return ReportMetrics(
        duration_ms=values["duration_ms"],
        billed_ms=values["billed_ms"],
        memory_mb=_int(values["memory_mb"]),
        max_memory_mb=_int(values["max_memory_mb"]),
        init_ms=values["init_ms"],
        status=status.group(1).lower() if status else "",
    )


def _json_object(message: str) -> dict[str, Any] | None:
    stripped = message.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        return None
    try:
        parsed = json.loads(stripped)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _api_ids_in_text(text: str) -> tuple[str, ...]:
    found: list[str] = []
    for pattern in _API_ID_MENTIONS:
        found.extend(m.group("id").lower() for m in pattern.finditer(text))
    return tuple(dict.fromkeys(found))


def _lambda_json(record: dict[str, Any]) -> LambdaLine:
    kind = str(record.get("type", ""))
    if kind.startswith("platform."):
        body = record.get("record") if isinstance(record.get("record"), dict) else {}
        assert isinstance(body, dict)
        request_id = str(body.get("requestId", "")).lower()
        if kind == "platform.start":
            return LambdaLine("start", request_id, version=str(body.get("version", "")))
        if kind == "platform.report":
            metrics = body.get("metrics") if isinstance(body.get("metrics"), dict) else {}
            assert isinstance(metrics, dict)
            report = ReportMetrics(
                duration_ms=_number(metrics.get("durationMs")),
                billed_ms=_number(metrics.get("billedDurationMs")),
                memory_mb=_int(metrics.get("memorySizeMB")),
                max_memory_mb=_int(metrics.get("maxMemoryUsedMB")),
                init_ms=_number(metrics.get("initDurationMs")),
                status=str(body.get("status", "")).lower(),
            )
            return LambdaLine("report", request_id, report=report)
        if kind in {"platform.initStart", "platform.init-start"}:
            return LambdaLine("init_start")
        if kind == "platform.runtimeDone":
            return LambdaLine("end", request_id)
        return LambdaLine("other", request_id)
    # Powertools names the Lambda id function_request_id; the Lambda JSON format names it requestId.
    request_id = str(record.get("function_request_id") or record.get("requestId") or "").lower()
    level = str(record.get("level", "")).upper()
    message = record.get("message", "")
    text = message if isinstance(message, str) else json.dumps(message)
    api_ids: list[str] = []
    correlation = record.get("correlation_id")
    if isinstance(correlation, str) and correlation:
        api_ids.append(correlation.lower() if re.fullmatch(_UUID, correlation) else correlation)
    api_ids.extend(_api_ids_in_text(text))
    return LambdaLine("app", request_id, level=level, text=text, api_ids=tuple(dict.fromkeys(api_ids)))


def parse_lambda_line(message: str) -> LambdaLine:
    """What a Lambda log line is and which invocation it names."""
    if m := _START.match(message):
        return LambdaLine("start", m.group("id").lower(), version=m.group("version") or "")
    if m := _END.match(message):
        return LambdaLine("end", m.group("id").lower())
    if m := _REPORT.match(message):
        return LambdaLine("report", m.group("id").lower(), report=parse_report_text(message))
    if _INIT_START.match(message):
        return LambdaLine("init_start", text=message)
    if m := _PY_TEXT.match(message):
        text = m.group("msg")
        return LambdaLine("app", m.group("id").lower(), m.group("level"), text, _api_ids_in_text(text))
    if m := _TIMEOUT.match(message):
        return LambdaLine("timeout", m.group("id").lower(), "ERROR", message)
    if m := _NODE_TEXT.match(message):
        text = m.group("msg")
        level = (m.group("level") or "").upper()
        return LambdaLine("app", m.group("id").lower(), level, text, _api_ids_in_text(text))
    if m := _RUNTIME_ERROR.match(message):
        return LambdaLine("runtime_error", m.group("id").lower(), "ERROR", m.group("msg"))
    record = _json_object(message)
    if record is not None:
        return _lambda_json(record)
    return LambdaLine("other", text=message, api_ids=_api_ids_in_text(message))


# -- access logs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessRecord:
    request_id: str = ""
    extended_id: str = ""
    integration_id: str = ""  # $context.integration.requestId: the Lambda request id
    method: str = ""
    path: str = ""
    route: str = ""  # HTTP API route key ("GET /orders")
    status: int | None = None
    latency_ms: int | None = None
    integration_latency_ms: int | None = None
    error: str = ""


def _norm(key: str) -> str:
    return re.sub(r"[^a-z]", "", key.lower())


def _flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        else:
            flat[_norm(name)] = value
    return flat


def _first(flat: dict[str, Any], *names: str) -> str:
    for name in names:
        value = flat.get(name)
        if value not in (None, "", "-"):
            return str(value)
    return ""


_CLF = re.compile(r"\"(?P<method>[A-Z]+) (?P<path>\S+)(?: (?P<proto>HTTP/[\d.]+))?\" (?P<status>\d{3})")


def parse_access_line(message: str) -> AccessRecord | None:
    """Read an access-log line whatever its configured format (JSON by key meaning, else CLF-like)."""
    record = _json_object(message)
    if record is not None:
        flat = _flatten(record)
        route = _first(flat, "routekey")
        method = _first(flat, "httpmethod", "method")
        path = _first(flat, "resourcepath", "path")
        if not method and route and " " in route:
            method = route.split(" ", 1)[0]
        status = _int(_first(flat, "status", "statuscode"))
        return AccessRecord(
            request_id=_first(flat, "requestid", "contextrequestid"),
            extended_id=_first(flat, "extendedrequestid"),
            integration_id=_first(
                flat, "integrationrequestid", "integrationrequestidid", "lambdarequestid", "awsrequestid"
            ).lower(),
            method=method,
            path=path,
            route=route,
            status=status,
            latency_ms=_int(_first(flat, "responselatency", "latency")),
            integration_latency_ms=_int(_first(flat, "integrationlatency")),
            error=_first(flat, "integrationerrormessage", "errormessage", "errormessagestring", "error"),
        )
    found = _CLF.search(message)
    if found:
        return AccessRecord(
            method=found.group("method"), path=found.group("path"), status=int(found.group("status"))
        )
    return None


# -- errors ---------------------------------------------------------------------------------------

_ERROR_LEVELS = {"ERROR", "CRITICAL", "FATAL", "EXCEPTION"}
_ERROR_TEXT = re.compile(
    r"Traceback \(most recent call last\)|Task timed out after|Runtime\.\w+Error|Unhandled Promise Rejection|"
    r"\"errorType\"\s*:|Status: (?:error|timeout)\b|^\[ERROR\]",
    re.MULTILINE,
)
# What API Gateway's execution log says failed. Its dumps of the endpoint's response (headers with
# X-Amz-Function-Error, a body with errorType) only repeat the function's error: not counted again.
_EXEC_ERROR = re.compile(
    r"(?:Execution failed|Lambda execution failed|Lambda invocation failed|Endpoint request timed out"
    r"|Method completed with status: 5\d\d|Gateway response type: \S+ with status code: 5\d\d)"
)


def is_error(message: str) -> bool:
    """Whether a line reports a failure (error level, stack trace, timeout, 5xx)."""
    request_id, text = split_exec_line(message)
    if request_id is not None:
        return _EXEC_ERROR.match(text) is not None
    if _ERROR_TEXT.search(message):
        return True
    line = parse_lambda_line(message)
    if line.level in _ERROR_LEVELS:
        return True
    if line.report is not None and line.report.status in {"error", "timeout", "failure"}:
        return True
    access = parse_access_line(message) if message.lstrip().startswith("{") else None
    return bool(access and access.status is not None and access.status >= 500)
