"""The compact timeline: the lines a person needs at 3 a.m., and a count of the others. Pure.

Kept: the request line (``HTTP Method: ..., Resource Path: ...``, an access-log record), the hops
(``Starting authorizer``, ``Endpoint request URI``, ``Received response. Status: ..., Integration
latency``, ``Method completed with status``, the authorizer's outcome), every WARN/ERROR line and stack
trace (``is_error``, or a WARN/ERROR/FATAL/CRITICAL/Exception/Traceback word anywhere in the line), the
functions' own lines (everything a Lambda group holds but its platform bookkeeping) and START/REPORT.
Left out, and counted: the execution log's header, body and usage-plan dumps, and the platform lines
END, INIT_START and the JSON format's other ``platform.*`` records.

Whatever else changes here, a line ``is_error`` calls an error is never left out (a property test holds
this for any input).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from bot.core.apilogs.formats import exec_fact, is_error, parse_lambda_line, split_exec_line
from bot.core.apilogs.model import LogEvent

_ALARM = re.compile(
    r"\b(?:WARN|WARNING|ERROR|FATAL|CRITICAL|Exception|Traceback)\b|Task timed out", re.IGNORECASE
)
_EXEC_KEPT = {"method", "endpoint_uri", "received", "completed", "authorizer_start", "authorizer_end"}
# Execution-log lines that tell how the request went though exec_fact has no kind for them.
_EXEC_OUTCOME = (
    "Execution failed",
    "Lambda execution failed",
    "Lambda invocation failed",
    "Endpoint request timed out",
    "Gateway response type",
    "Unauthorized request",
    "Authorizer result",
    "API Key ",  # "API Key ... authorized" / "... not authorized": throttling and keys
    "Method request throttled",
    "Throttled",
)


@dataclass(frozen=True)
class Compact:
    events: list[LogEvent]
    left_out: dict[str, int]  # "execution-log" / "Lambda platform" -> lines left out

    @property
    def dropped(self) -> int:
        return sum(self.left_out.values())

    def note(self) -> str:
        """``+31 execution-log lines, +2 Lambda platform lines`` ('' when nothing was left out)."""
        return ", ".join(f"+{n} {kind} line{'' if n == 1 else 's'}" for kind, n in self.left_out.items() if n)


def _kind(event: LogEvent) -> str:
    """'' when the line is kept, else the kind it is counted as."""
    message = event.message
    if is_error(message) or _ALARM.search(message):
        return ""
    request_id, text = split_exec_line(message)
    if request_id is not None:
        if exec_fact(text).kind in _EXEC_KEPT or text.startswith(_EXEC_OUTCOME):
            return ""
        return "execution-log"
    line = parse_lambda_line(message)
    if line.kind in {"end", "init_start"} or (line.kind == "other" and line.request_id):
        return "Lambda platform"
    return ""


def compact(events: Sequence[LogEvent]) -> Compact:
    """The kept lines in their order, and how many of each kind were left out."""
    kept: list[LogEvent] = []
    left_out: Counter[str] = Counter()
    for event in events:
        kind = _kind(event)
        if kind:
            left_out[kind] += 1
        else:
            kept.append(event)
    order = ("execution-log", "Lambda platform")
    return Compact(kept, {k: left_out[k] for k in order if left_out[k]})
