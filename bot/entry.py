"""The Slack function's front door on Lambda: an API Gateway event, or the function's own lazy
self-invocation, becomes a verified request for Bolt, or a 4xx answer with one log line.

Everything here runs before Bolt sees the request, and so before anything parses the body: whatever
arrives from the internet (bytes that are not UTF-8, invalid base64, missing or non-numeric headers, an
event shape nobody expected, absurd sizes) is refused here, not turned into a 500 and a traceback.

The lazy half of a command is an asynchronous invocation of this function by itself (Bolt's
``LambdaLazyListenerRunner``): the original event, with Bolt's ``x-slack-bolt-lazy-*`` headers added and
a top-level ``"method": "NONE"``. API Gateway's events have a fixed set of top-level keys (payload formats
1.0 and 2.0) and a request cannot add one, so only a principal allowed ``lambda:InvokeFunction`` on this
function can send an event with that key: that shape, and nothing a request can carry, marks the
invocation internal. For it the signature is still verified, but not its age, because Lambda may queue
an asynchronous invocation for longer than Slack's five minutes (the template bounds how long:
``MaximumEventAgeInSeconds``). A captured request replayed through API Gateway keeps the age check.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("opsbot.http")

# Slack's signatures are this old at most (its documented replay window).
MAX_SIGNATURE_AGE_SECONDS = 300
# Slack's largest payloads (a block_actions carrying a full message, a view with many inputs) stay well
# below this; Lambda accepts 6 MB and API Gateway 10 MB, which nobody should be able to make us decode.
MAX_BODY_BYTES = 1_000_000
# The internal (lazy) invocation's marker, set by Bolt's LambdaLazyListenerRunner.
LAZY_MARKER_KEY = "method"
LAZY_MARKER_VALUE = "NONE"
# Headers with a meaning inside opsbot or Bolt that only the internal invocation may carry: Bolt runs
# just the named lazy function for x-slack-bolt-lazy-only, and the framework trusts its ack note.
INTERNAL_HEADER_PREFIXES = ("x-slack-bolt-", "x-opsbot-")

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")


class InternalRequestRefused(Exception):
    """The lazy self-invocation failed verification (a signing secret rotated since the ack, say). Raised,
    not answered: the invocation then fails, and Lambda's on-failure destination tells the user that the
    work was not run (bot/intake/lazy_failure.py) instead of leaving "working..." on screen."""


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str  # one sentence for the log; never the body, never a raw header value


@dataclass(frozen=True)
class HttpRequest:
    body: str
    headers: dict[str, str]  # lower-case names
    query: dict[str, str]
    internal: bool
    source: str = ""  # the caller's IP as API Gateway saw it, for the log
    event: dict[str, Any] = field(default_factory=dict, repr=False)


def signature(secret: str, timestamp: int | str, body: str) -> str:
    """Slack's request signature (v0): HMAC-SHA256 of ``v0:<timestamp>:<body>`` with the signing secret."""
    basis = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), basis, hashlib.sha256).hexdigest()


def is_internal_invocation(event: Mapping[str, Any]) -> bool:
    """The lazy self-invocation, recognised by the shape of the event (see the module docstring)."""
    return event.get(LAZY_MARKER_KEY) == LAZY_MARKER_VALUE


def _method(event: Mapping[str, Any]) -> Any:
    context = event.get("requestContext")
    if not isinstance(context, Mapping):
        return None
    http = context.get("http")
    if isinstance(http, Mapping) and "method" in http:  # payload format 2.0
        return http.get("method")
    return context.get("httpMethod", event.get("httpMethod"))  # 1.0


def source_of(event: Mapping[str, Any]) -> str:
    context = event.get("requestContext")
    if not isinstance(context, Mapping):
        return ""
    http, identity = context.get("http"), context.get("identity")
    for part in (http, identity):
        if isinstance(part, Mapping) and isinstance(part.get("sourceIp"), str):
            return str(part["sourceIp"])[:64]
    return ""


def _body(event: Mapping[str, Any]) -> str | Refusal:
    raw = event.get("body")
    if raw is None:
        return ""
    if not isinstance(raw, str):
        return Refusal(400, "the event's body is not a string")
    encoded = event.get("isBase64Encoded", False)
    if encoded not in (True, False):
        return Refusal(400, "the event's isBase64Encoded is not a boolean")
    if len(raw) > (MAX_BODY_BYTES * 4 // 3 + 4 if encoded else MAX_BODY_BYTES):
        return Refusal(400, f"the body is larger than {MAX_BODY_BYTES} bytes")
    if not encoded:
        # A JSON event can carry a lone surrogate (the escape \ud800), which no UTF-8 request body can hold; the
        # signature is computed over the body's UTF-8 bytes, so refuse it here rather than fail there.
        try:
            raw.encode("utf-8")
        except UnicodeEncodeError:
            return Refusal(400, "the body is not UTF-8")
        return raw
    try:
        data = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return Refusal(400, "the body is not valid base64 although isBase64Encoded is true")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return Refusal(400, "the body is not UTF-8")


def _headers(event: dict[str, Any], internal: bool) -> dict[str, str] | Refusal:
    raw = event.get("headers")
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        return Refusal(400, "the event's headers are not an object")
    headers: dict[str, str] = {}
    for name, value in list(raw.items()):
        if not isinstance(name, str) or not isinstance(value, str):
            return Refusal(400, "a header name or value is not a string")
        lower = name.lower()
        if not internal and lower.startswith(INTERNAL_HEADER_PREFIXES):
            # Out of the event too: the lazy runner forwards the event's headers to the internal run.
            del raw[name]
            multi = event.get("multiValueHeaders")
            if isinstance(multi, dict):
                multi.pop(name, None)
            continue
        headers[lower] = value
    return headers


def _query(event: Mapping[str, Any]) -> dict[str, str]:
    raw = event.get("queryStringParameters")
    if not isinstance(raw, Mapping):
        return {}
    return {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, str)}


def read_event(event: Any) -> HttpRequest | Refusal:
    """The request in ``event``, or why it is refused (400: not a well-formed Slack HTTP request)."""
    if not isinstance(event, dict):
        return Refusal(400, "the event is not an object")
    internal = is_internal_invocation(event)
    method = _method(event)
    if method != "POST":
        return Refusal(400, "the event is not an HTTP POST from API Gateway")
    headers = _headers(event, internal)
    if isinstance(headers, Refusal):
        return headers
    body = _body(event)
    if isinstance(body, Refusal):
        return body
    return HttpRequest(body, headers, _query(event), internal, source_of(event), event)


def header_problem(request: HttpRequest, *, now: float | None = None, check_age: bool = True) -> str | None:
    """Why ``request`` cannot carry a valid Slack signature whatever the secret (None: it may)."""
    timestamp = request.headers.get("x-slack-request-timestamp")
    signature = request.headers.get("x-slack-signature")
    if timestamp is None or signature is None:
        return "the Slack signature headers are missing"
    if not _TIMESTAMP.fullmatch(timestamp):
        return "the Slack request timestamp is not a number"
    if not _SIGNATURE.fullmatch(signature):
        return "the Slack signature is malformed"
    age = (time.time() if now is None else now) - int(timestamp)
    if check_age and abs(age) > MAX_SIGNATURE_AGE_SECONDS:
        return f"the Slack signature is {int(age)} s old (at most {MAX_SIGNATURE_AGE_SECONDS} s accepted)"
    return None


def signature_problem(
    secret: str, request: HttpRequest, *, now: float | None = None, check_age: bool = True
) -> str | None:
    """Why Slack's signature on ``request`` does not hold with ``secret`` (None: it holds)."""
    problem = header_problem(request, now=now, check_age=check_age)
    if problem is not None:
        return problem
    timestamp = request.headers["x-slack-request-timestamp"]
    if not secret:
        return "no signing secret is available"
    if not hmac.compare_digest(
        signature(secret, timestamp, request.body), request.headers["x-slack-signature"]
    ):
        return "the Slack signature does not match"
    return None


class Verifier:
    """Checks signatures with the current signing secret; a mismatch may mean the secret was rotated, so
    it asks ``refresh`` (which decides whether a re-read is due) and checks once more if the secret
    changed."""

    def __init__(self, secret: Callable[[], str], refresh: Callable[[], bool] | None = None) -> None:
        self._secret = secret
        self._refresh = refresh

    def problem(self, request: HttpRequest) -> str | None:
        check_age = not request.internal
        # Before the secret is asked for: a request without a well-formed, fresh signature is refused
        # without the container's first read of Secrets Manager (or a 503 while it cannot be read).
        problem = header_problem(request, check_age=check_age)
        if problem is not None:
            return problem
        problem = signature_problem(self._secret(), request, check_age=check_age)
        if problem == "the Slack signature does not match" and self._refresh is not None and self._refresh():
            problem = signature_problem(self._secret(), request, check_age=check_age)
        return problem


def refuse(refusal: Refusal, *, source: str = "") -> dict[str, Any]:
    """The answer to a refused request, and its one log line."""
    logger.warning(
        "refused a request (HTTP %s)%s: %s",
        refusal.status,
        f" from {source}" if source else "",
        refusal.reason,
    )
    return {
        "statusCode": refusal.status,
        "body": '{"error": "invalid request"}',
        "headers": {"content-type": "application/json"},
    }
