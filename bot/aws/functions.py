"""Synchronous calls to another of opsbot's Lambda functions (the Slack function asks the DNS mirror).

``invoke`` sends one JSON payload and returns the function's JSON answer, or raises an AwsError whose
sentence says what to fix: the permission, the function name, the function's own failure or timeout.

One attempt only: a request such as an apply must not be sent twice because a connection dropped after
Lambda accepted it. The read timeout outlasts the called function's own time limit (template.yaml), so
its answer or its timeout always arrives.

The demo and the tests have no Lambda service that runs code (moto's needs Docker): ``serve_locally``
registers a handler that ``invoke`` calls in this process instead, with the same JSON round trip, so the
request and the answer are what Lambda would carry.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any, NoReturn

from bot.aws.clients import own_client
from bot.aws.errors import aws_errors
from bot.errors import AwsError

INVOKE_CONNECT_TIMEOUT = 5.0
INVOKE_READ_TIMEOUT = 310.0  # the DNS mirror function's Timeout (300 s) and some margin
# Lambda's limit for a synchronous answer.
MAX_ANSWER_BYTES = 6 * 1024 * 1024

Handler = Callable[[Any, Any], Any]

_local: dict[str, Handler] = {}
_local_lock = threading.Lock()


def serve_locally(function: str, handler: Handler | None) -> None:
    """Run ``function``'s invocations in this process (``None`` forgets it)."""
    with _local_lock:
        if handler is None:
            _local.pop(function, None)
        else:
            _local[function] = handler


def forget_local_functions() -> None:
    with _local_lock:
        _local.clear()


def invoke_client() -> Any:
    # opsbot's own functions, in its own account, whatever account the request is aimed at.
    return own_client(
        "lambda", attempts=1, connect_timeout=INVOKE_CONNECT_TIMEOUT, read_timeout=INVOKE_READ_TIMEOUT
    )


def invoke(function: str, payload: dict[str, Any], *, purpose: str) -> dict[str, Any]:
    """Invoke ``function`` with ``payload`` and wait for its answer (a JSON object).

    ``purpose`` names the function in messages ("the DNS mirror function")."""
    from bot.aws.targets import WIRE_KEY, to_wire

    wire = to_wire()
    if wire is not None:  # the request's account, region and person go with it (bot.aws.targets)
        payload = {**payload, WIRE_KEY: wire}
    body = json.dumps(payload).encode()
    with _local_lock:
        local = _local.get(function)
    if local is not None:
        try:
            result = local(json.loads(body), None)
        except Exception as error:  # what Lambda would report as the function's error
            _raise_function_error(
                {"errorMessage": str(error), "errorType": type(error).__name__}, function, purpose
            )
        try:
            raw = json.dumps(result).encode()
        except (TypeError, ValueError) as error:  # Lambda could not send such an answer either
            _raise_function_error(
                {"errorMessage": str(error), "errorType": "Runtime.MarshalError"}, function, purpose
            )
        return _answer(raw, function, purpose)
    lambda_client = invoke_client()
    with aws_errors(client=lambda_client, resource=f"{purpose} {function}"):
        response = lambda_client.invoke(FunctionName=function, InvocationType="RequestResponse", Payload=body)
        raw = response["Payload"].read()
    if response.get("FunctionError"):
        try:
            detail = json.loads(raw)
        except ValueError:
            detail = {}
        _raise_function_error(detail, function, purpose)
    return _answer(raw, function, purpose)


def _raise_function_error(detail: Any, function: str, purpose: str) -> NoReturn:
    """The function ran and failed (an exception, its time limit): Lambda's error document as a sentence."""
    message = str(detail.get("errorMessage") or "no error message") if isinstance(detail, dict) else ""
    kind = str(detail.get("errorType") or "") if isinstance(detail, dict) else ""
    if "Task timed out" in message:
        raise AwsError(
            f"{purpose.capitalize()} ({function}) ran out of time before it answered.",
            code="FunctionTimeout",
            hint="Its log says how far it got.",
        )
    raise AwsError(
        f"{purpose.capitalize()} ({function}) failed: {kind + ': ' if kind else ''}{message[:300]}",
        code="FunctionError",
        hint="Its CloudWatch log has the details.",
    )


def _answer(raw: bytes, function: str, purpose: str) -> dict[str, Any]:
    try:
        answer = json.loads(raw) if len(raw) <= MAX_ANSWER_BYTES else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise AwsError(
            f"{purpose.capitalize()} ({function}) answered with something other than a JSON object.",
            code="BadAnswer",
            hint=f"Check that {function} is opsbot's own {purpose.removeprefix('the ')}.",
        )
    return answer
