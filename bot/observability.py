"""What every log line of a request carries: the Slack request, the audit reference and the account.

On Lambda the functions log in Lambda's JSON log format (template.yaml, ``LoggingConfig``): the runtime's
formatter writes the timestamp, level, logger, message and request id, and adds every attribute of the
record it does not know as a top-level key. ``RequestContextFilter`` sets three such attributes on each
record from a context variable bound at the start of a request:

- ``slack``: ``{"command", "user", "channel", "team"}`` of the Slack request being served;
- ``ref``: the audit reference of the command (``bot.security.audit.new_ref`` binds it);
- ``account``: the AWS account, from the invoked function's ARN (no STS call).

A context variable rather than a global: lazy work outside Lambda runs in threads (``opsbot serve``, the
demo, the tests), each started in a copy of its request's context. Outside Lambda nothing is installed and
the text logs stay as they are. Nothing here does I/O or imports more than the standard library: it is
on every cold start's path.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

# The keys the filter sets on records (and Logs Insights queries by).
SLACK, REF, ACCOUNT = "slack", "ref", "account"

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_fields: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "opsbot_log_fields", default=_EMPTY
)


def start_request(**fields: Any) -> None:
    """A new request: forget the fields of the one before (a Lambda container serves many), keep these."""
    _fields.set(MappingProxyType({k: v for k, v in fields.items() if v}))


def bind(**fields: Any) -> None:
    """Add fields to the current request's; empty values are left out (a lookup's missing channel)."""
    added = {k: v for k, v in fields.items() if v}
    if added:
        _fields.set(MappingProxyType({**_fields.get(), **added}))


def current() -> Mapping[str, Any]:
    return _fields.get()


def account_of(function_arn: str | None) -> str:
    """The account id in a Lambda function ARN (arn:partition:lambda:region:account:function:name[:alias])."""
    parts = (function_arn or "").split(":")
    return parts[4] if len(parts) > 4 and parts[2] == "lambda" and parts[4].isdigit() else ""


def slack_fields(body: Mapping[str, Any]) -> dict[str, str]:
    """command, user, channel and team of a Slack payload: a slash command (flat form fields) or an
    interaction (nested objects; "command" is then the button's action id or the form's callback id)."""

    def the_id(value: Any) -> str:
        return str(value.get("id", "")) if isinstance(value, Mapping) else str(value or "")

    if "command" in body:
        command = str(body.get("command", ""))
    elif isinstance(body.get("actions"), list) and body["actions"]:
        first = body["actions"][0]
        command = f"action:{first.get('action_id', '')}" if isinstance(first, Mapping) else ""
    elif isinstance(body.get("view"), Mapping):
        command = f"view:{body['view'].get('callback_id', '')}"
    else:
        command = str(body.get("type", ""))
    user = body.get("user")
    fields = {
        "command": command,
        "user": the_id(user) if user is not None else str(body.get("user_id", "")),
        "channel": the_id(body.get("channel")) if "channel" in body else str(body.get("channel_id", "")),
        "team": the_id(body.get("team")) if "team" in body else str(body.get("team_id", "")),
    }
    return {k: v for k, v in fields.items() if v}


def start_invocation(context: Any) -> None:
    """Start of a Lambda invocation: only the account is known (handlers bind the rest)."""
    start_request(account=account_of(getattr(context, "invoked_function_arn", "")))


class RequestContextFilter(logging.Filter):
    """Sets ``slack``, ``ref`` and ``account`` on every record passing through a handler, from the request
    the logging thread serves. An attribute the call set itself (``extra=``) is left alone."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _fields.get().items():
            if key not in record.__dict__:
                setattr(record, key, _plain(value))
        return True


def _plain(value: Any) -> Any:
    """JSON as Lambda's formatter writes it (it has no fallback encoder: one value it cannot encode would
    lose the line): strings, numbers, booleans and None as they are, mappings of those, anything else as
    its str()."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def install(root: logging.Logger | None = None) -> None:
    """Add the filter to the root logger's handlers (on Lambda: the runtime's, set up before the handler
    module is imported). A handler filter, not a logger filter: records that propagate from ``opsbot.*``,
    Bolt or botocore pass only through the root's handlers."""
    for handler in (root or logging.getLogger()).handlers:
        if not any(isinstance(f, RequestContextFilter) for f in handler.filters):
            handler.addFilter(RequestContextFilter())


def lambda_entry(handler: Any, name: str) -> Any:
    """A Lambda entry point around ``handler(event, context)``: the log filter installed (on the runtime's
    handler, in place by now), each invocation's fields started from its context, and the invocation
    traced when tracing is on (bot.tracing; nothing of OpenTelemetry is imported otherwise)."""
    from bot import tracing

    install()
    tracing.setup_from_env()

    def handler_(event: Any, context: Any) -> Any:
        start_invocation(context)
        with tracing.invocation(name, context):
            return handler(event, context)

    handler_.__name__ = handler_.__qualname__ = "handler"  # what the template's Handler names
    handler_.__wrapped__ = handler  # type: ignore[attr-defined]
    return handler_
