"""What one lookup says in a line, without its log lines: the public summary of a mention's answer.

A channel sees the request's status, method and path, the functions it went through and the kind of
error (``KeyError``, ``Task timed out``, ``integration timeout``), never a log line: those hold whatever
the logged code wrote (request bodies, customer data) and go only to the person who asked. The error
kind is a name picked out of the error lines (an exception class, a Lambda ``errorType``, a fixed API
Gateway phrase), not their text. Pure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.core.apilogs.lookup import LookupResult

# An exception class as runtimes print it: ``KeyError``, ``Runtime.ImportModuleError``,
# ``botocore.exceptions.ClientError``, ``TypeError``; the name only, never the message after it.
_EXCEPTION = re.compile(r"\b((?:[A-Za-z_][A-Za-z0-9_]*\.)*[A-Z][A-Za-z0-9_]*(?:Error|Exception|Fault))\b")
_ERROR_TYPE = re.compile(r"\"errorType\"\s*:\s*\"([A-Za-z0-9_.]{1,80})\"")
# Fixed phrases of Lambda and API Gateway, checked in this order, with the name shown for each.
_PHRASES = (
    (re.compile(r"Task timed out after"), "Task timed out"),
    (
        re.compile(r"Execution failed due to a timeout error|Endpoint request timed out"),
        "integration timeout",
    ),
    (re.compile(r"Execution failed due to configuration error"), "configuration error"),
    (re.compile(r"Lambda invocation failed with status: 429|Rate exceeded|TooManyRequests"), "throttled"),
)
MAX_ERROR_KIND = 80


@dataclass(frozen=True)
class RequestBrief:
    """One id's lookup in a line: what a channel may see."""

    request_id: str
    kind_label: str
    found: bool
    method: str = ""
    path: str = ""
    status: int | None = None
    functions: tuple[str, ...] = ()
    error_kind: str = ""
    # The lookup could not run for this id (outside the channel's read scope, AWS refused): a sentence.
    problem: str = ""

    @property
    def failed(self) -> bool:
        return bool(self.error_kind) or (self.status is not None and self.status >= 500)


def error_kind(messages: list[str]) -> str:
    """The kind of the first error the lines name: a Lambda ``errorType``, an exception class, or a fixed
    phrase of Lambda or API Gateway; "" when none does."""
    for message in messages:
        typed = _ERROR_TYPE.search(message)
        if typed:
            return typed.group(1)[:MAX_ERROR_KIND]
    for message in messages:
        for pattern, name in _PHRASES:
            if pattern.search(message):
                return name
    for message in messages:
        named = _EXCEPTION.search(message)
        if named:
            return named.group(1)[:MAX_ERROR_KIND]
    return ""


def brief(result: LookupResult) -> RequestBrief:
    info = result.api
    functions = tuple(dict.fromkeys(i.function for i in result.invocations if i.function))
    if not functions and info is not None:
        functions = tuple(dict.fromkeys(c.function for c in info.calls if c.function))
    return RequestBrief(
        request_id=result.request.value,
        kind_label=result.request.kind.label,
        found=result.found,
        method=info.method if info else "",
        path=info.path if info else "",
        status=info.status if info else None,
        functions=functions,
        error_kind=error_kind([e.message for e in result.errors]) if result.found else "",
    )


def unanswered(request_id: str, kind_label: str, problem: str) -> RequestBrief:
    return RequestBrief(request_id, kind_label, found=False, problem=problem)


__all__ = ["RequestBrief", "brief", "error_kind", "unanswered"]
