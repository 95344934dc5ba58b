"""The Slack function's on-failure destination: lazy work that Lambda dropped or that died.

The lazy half of a command (or button, or form) is an asynchronous invocation of the Slack function by
itself (see bot.entry). Lambda hands it here, as an invocation record, when it could not run it within
``MaximumEventAgeInSeconds`` (throttling, the concurrency limit: condition ``EventAgeExceeded``), when
the Slack function refused it (``InternalRequestRefused``: its signature no longer verified) or when the
run failed as a whole (a timeout or a crash: ``RetriesExhausted`` with a ``functionError``). Without
this the user would see "working..." forever and no audit record would exist.

For each record: one audit record with the outcome (``not_run`` when it never ran; ``error`` when it
stopped part-way, since it may have done some of its work), and an ephemeral message to the user through
the ``response_url`` of the original request, which Slack honours for 30 minutes.

The record comes from Lambda (only Lambda's destination and principals allowed to invoke this function
can send it), and its request payload is the Slack function's own lazy event, whose signature the Slack
function verified; no Slack secret is needed here. Arguments are not recorded (they may hold an
activation code): only the command, its subcommand and whether more followed.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bot.config import Settings, apply_log_level

logger = logging.getLogger("opsbot.lazy")

NOT_RUN = "not_run"
RESPONSE_URL_TIMEOUT = 5
_SUBCOMMAND = re.compile(r"[a-z][a-z0-9-]{0,30}")


@dataclass(frozen=True)
class DroppedWork:
    condition: str
    ran: bool  # Lambda started it at least once (it may have done part of its work)
    refused: bool  # the Slack function refused it (verification), so it did not run
    error: str  # the function error, when it ran
    kind: str  # command | action | view | shortcut
    command: str  # "/ops whoami", "button mail:reenable", "form device:activate"
    args: str
    user: str
    user_name: str
    team: str
    channel: str
    response_url: str
    queued_at: float | None  # epoch seconds of the original request (its Slack timestamp)


def _payload(body: str) -> dict[str, Any]:
    fields = dict(parse_qsl(body, keep_blank_values=True))
    if "payload" in fields:
        loaded = json.loads(fields["payload"])
        return loaded if isinstance(loaded, dict) else {}
    return fields


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def read_record(record: Any) -> DroppedWork | None:
    """What the invocation record says was dropped; None if it is not a lazy Slack event of ours."""
    from bot.entry import HttpRequest, read_event

    if not isinstance(record, dict):
        return None
    context = _object(record.get("requestContext"))
    response = _object(record.get("responseContext"))
    request = read_event(record.get("requestPayload"))
    if not isinstance(request, HttpRequest) or not request.internal:
        return None
    try:
        body = _payload(request.body)
    except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than the parser goes
        return None
    timestamp = request.headers.get("x-slack-request-timestamp", "")
    # ASCII digits only: str.isdigit() is true for "²", which float() refuses.
    queued_at = float(timestamp) if re.fullmatch(r"[0-9]{1,12}", timestamp) else None
    condition = _text(context.get("condition"))
    invoked = context.get("approximateInvokeCount")
    refused = _object(record.get("responsePayload")).get("errorType") == "InternalRequestRefused"
    ran = condition != "EventAgeExceeded" and not refused and (not isinstance(invoked, int) or invoked > 0)
    # The error's type when the function raised one (e.g. InternalRequestRefused), else Lambda's word.
    error = _text(_object(record.get("responsePayload")).get("errorType"))[:80] or _text(
        response.get("functionError")
    )
    if "command" in body:
        words = _text(body.get("text")).split()
        head = [words[0]] if words and _SUBCOMMAND.fullmatch(words[0]) else []
        more = words[len(head) :]
        return DroppedWork(
            condition, ran, refused, error, "command", " ".join([_text(body["command"])[:40], *head]),
            "[redacted]" if more else "", _text(body.get("user_id")), _text(body.get("user_name")),
            _text(body.get("team_id")), _text(body.get("channel_id")), _text(body.get("response_url")), queued_at,
        )  # fmt: skip
    user = _object(body.get("user"))
    team = _object(body.get("team"))
    channel = _object(body.get("channel"))
    kind = _text(body.get("type"))
    if kind == "block_actions":
        actions = _list(body.get("actions"))
        first = _object(actions[0]) if actions else {}
        what, label = "action", f"button {_text(first.get('action_id'))[:60]}"
        response_url = _text(body.get("response_url"))
    elif kind == "view_submission":
        view = _object(body.get("view"))
        what, label = "view", f"form {_text(view.get('callback_id'))[:60]}"
        urls = _list(body.get("response_urls"))
        response_url = next((_text(_object(u).get("response_url")) for u in urls), "")
        try:
            metadata = json.loads(_text(view.get("private_metadata")) or "{}")
        except ValueError:
            metadata = {}
        if not channel and isinstance(metadata, dict):
            channel = {"id": _text(metadata.get("channel"))}
    elif kind == "message_action":  # the "Look up request ids" shortcut
        what, label = "shortcut", f"shortcut {_text(body.get('callback_id'))[:60]}"
        response_url = _text(body.get("response_url"))
    else:
        return None
    return DroppedWork(
        condition, ran, refused, error, what, label, "", _text(user.get("id")),
        _text(user.get("username") or user.get("name")), _text(team.get("id")), _text(channel.get("id")),
        response_url, queued_at,
    )  # fmt: skip


def message(work: DroppedWork, ref: str) -> str:
    name = work.command.removeprefix("button ").removeprefix("form ")
    what = {"command": f"`{name}`", "action": "Your click", "shortcut": "Your shortcut"}.get(
        work.kind, "Your form"
    )
    if work.refused:
        return (
            f":x: {what} was not run: opsbot could not verify the request again when it came to run it (the "
            f"Slack signing secret may have just changed), so nothing was changed. Try again. Reference `{ref}`."
        )
    if not work.ran:
        return (
            f":x: {what} was not run: AWS Lambda did not get to it in time (throttling or its concurrency "
            f"limit), so nothing was changed. Try again. Reference `{ref}`."
        )
    return (
        f":x: {what} stopped before it finished (the function {'timed out or ' if work.error else ''}failed), "
        f"so part of it may have been done: check before trying again. Reference `{ref}`."
    )


def _slack_url(url: str, settings: Settings) -> bool:
    """Only Slack's own response URLs (or the configured Slack API's host: the demo and the tests)."""
    parts, api = urlsplit(url), urlsplit(settings.slack_api_url)
    # The whole netloc, not the hostname: urlsplit takes the host after the last "@" while the HTTP client
    # may not ("https://evil\\@hooks.slack.com"); no user info, no other port.
    if parts.scheme == "https" and parts.netloc.lower() == "hooks.slack.com":
        return True
    return bool(parts.hostname) and (parts.scheme, parts.netloc) == (api.scheme, api.netloc)


def tell(url: str, text: str, *, settings: Settings, ref: str) -> bool:
    if not url or not _slack_url(url, settings):
        logger.warning("lazy work dropped, ref=%s: no Slack response_url to tell the user", ref)
        return False
    try:
        from slack_sdk.webhook import WebhookClient

        response = WebhookClient(url, timeout=RESPONSE_URL_TIMEOUT).send(
            text=text, response_type="ephemeral", replace_original=False
        )
        if response.status_code != 200:
            logger.warning(
                "Slack refused the note about dropped work ref=%s (HTTP %s)", ref, response.status_code
            )
            return False
        return True
    except Exception as error:
        logger.warning("could not tell the user about dropped work ref=%s: %r", ref, error)
        return False


class LazyFailureApp:
    """``handlers/lazy_failure.py`` builds one at import (no I/O) and delegates to it."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings.from_env()
            apply_log_level(self._settings)
        return self._settings

    def __call__(self, event: Any, context: Any) -> dict[str, Any]:
        from bot.security import audit

        settings = self.settings
        work = read_record(event)
        if work is None:
            # Nothing to tell anyone; the line lets an operator find it.
            logger.error("an invocation record that is not a lazy Slack request was ignored")
            return {"recorded": False, "told": False}
        ref = audit.new_ref()
        started = work.queued_at if work.queued_at is not None else time.time()
        outcome = NOT_RUN if not work.ran else "error"
        detail = f"Lambda {work.condition or 'failure'}" + (f" ({work.error})" if work.error else "")
        record = audit.build_record(
            ref=ref, started=started, ended=time.time(), user=work.user, team=work.team, channel=work.channel,
            kind=work.kind, command=work.command, action="", args=work.args, outcome=outcome,
            user_name=work.user_name, detail=detail,
        )  # fmt: skip
        recorded = audit.write(record, state_table=settings.state_table, ttl_days=settings.audit_ttl_days)
        told = tell(work.response_url, message(work, ref), settings=settings, ref=ref)
        return {"recorded": recorded, "told": told, "ref": ref, "outcome": outcome}
