"""Build the requests Slack sends to an app, signed the way Slack signs them.

Used by the demo console to talk to the real Bolt app, and by the tests. Signing follows Slack's
documented scheme: ``v0=`` + HMAC-SHA256(signing secret, ``v0:{timestamp}:{raw body}``).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from bot.entry import signature


def signed_headers(
    secret: str, body: str, *, timestamp: int | None = None, form: bool = True
) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "content-type": "application/x-www-form-urlencoded" if form else "application/json",
        "x-slack-request-timestamp": str(ts),
        "x-slack-signature": signature(secret, ts, body),
    }


def slash_command_body(
    command: str,
    text: str,
    *,
    user_id: str,
    user_name: str,
    channel_id: str,
    channel_name: str,
    team_id: str,
    team_domain: str = "opsbot-demo",
    response_url: str = "",
    trigger_id: str = "",
) -> str:
    return urlencode(
        {
            "token": "deprecated-verification-token",
            "team_id": team_id,
            "team_domain": team_domain,
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": "A0OPSBOT",
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id or f"{int(time.time())}.{uuid.uuid4().int % 10**12}.demo",
        }
    )


def block_actions_body(
    *,
    action: Mapping[str, Any],
    block_id: str,
    message: Mapping[str, Any] | None,
    user_id: str,
    user_name: str,
    channel_id: str,
    channel_name: str,
    team_id: str,
    response_url: str,
    message_ts: str = "",
    ephemeral: bool = False,
    selected_option: Mapping[str, Any] | None = None,
) -> str:
    """A ``block_actions`` interaction payload for a click on ``action``, as Slack sends it: a button's
    ``text`` and ``value``; for an overflow menu, a select or radio buttons, the chosen option as
    ``selected_option`` (``selected_option``, else the element's own ``selected_option``) and no value."""
    kind = str(action.get("type", "button"))
    clicked: dict[str, Any] = {"type": kind, "action_id": action.get("action_id", ""), "block_id": block_id}
    if kind == "button":
        clicked["text"] = action.get("text", {"type": "plain_text", "text": ""})
        if "value" in action:
            clicked["value"] = action["value"]
    else:
        chosen = selected_option if selected_option is not None else action.get("selected_option")
        if not isinstance(chosen, Mapping):
            raise ValueError(f"a click on a menu ({kind}) sends the chosen option: pass selected_option")
        clicked["selected_option"] = {"text": chosen.get("text"), "value": chosen.get("value", "")}
    clicked["action_ts"] = f"{time.time():.6f}"
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id},
        "api_app_id": "A0OPSBOT",
        "token": "deprecated-verification-token",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel_id,
            "is_ephemeral": ephemeral,
        },
        "trigger_id": f"{int(time.time())}.{uuid.uuid4().int % 10**12}.demo",
        "team": {"id": team_id, "domain": "opsbot-demo"},
        "channel": {"id": channel_id, "name": channel_name},
        "response_url": response_url,
        "actions": [clicked],
    }
    if message is not None:
        payload["message"] = dict(message)
    return urlencode({"payload": json.dumps(payload)})


def view_submission_body(
    *,
    view: Mapping[str, Any],
    values: Mapping[str, str],
    user_id: str,
    user_name: str,
    team_id: str,
) -> str:
    """A ``view_submission`` payload: ``values`` maps block ids to typed text (one input per block)."""
    state: dict[str, Any] = {}
    for block in view.get("blocks", []):
        if block.get("type") != "input":
            continue
        element = block.get("element", {})
        value = values.get(block.get("block_id", ""), "")
        state[block["block_id"]] = {
            element.get("action_id", "value"): {"type": element.get("type"), "value": value}
        }
    payload = {
        "type": "view_submission",
        "team": {"id": team_id, "domain": "opsbot-demo"},
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id},
        "api_app_id": "A0OPSBOT",
        "token": "deprecated-verification-token",
        "trigger_id": f"{int(time.time())}.{uuid.uuid4().int % 10**12}.demo",
        "view": {**view, "state": {"values": state}},
    }
    return urlencode({"payload": json.dumps(payload)})


def message_action_body(
    *,
    callback_id: str,
    message: Mapping[str, Any],
    user_id: str,
    user_name: str,
    channel_id: str,
    channel_name: str,
    team_id: str,
    response_url: str,
    user_team_id: str = "",
) -> str:
    """A message shortcut's ``message_action`` payload, used on ``message`` (``ts``, ``text``, ...)."""
    payload = {
        "type": "message_action",
        "callback_id": callback_id,
        "action_ts": f"{time.time():.6f}",
        "message_ts": message.get("ts", ""),
        "team": {"id": team_id, "domain": "opsbot-demo"},
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": user_team_id or team_id},
        "channel": {"id": channel_id, "name": channel_name},
        "message": dict(message),
        "api_app_id": "A0OPSBOT",
        "token": "deprecated-verification-token",
        "trigger_id": f"{int(time.time())}.{uuid.uuid4().int % 10**12}.demo",
        "response_url": response_url,
    }
    return urlencode({"payload": json.dumps(payload)})


def event_body(
    event: Mapping[str, Any], *, team_id: str, event_id: str = "", bot_user_id: str = "U0OPSBOT"
) -> str:
    """An Events API ``event_callback`` envelope (JSON) around ``event``."""
    envelope = {
        "token": "deprecated-verification-token",
        "team_id": team_id,
        "api_app_id": "A0OPSBOT",
        "event": dict(event),
        "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": team_id, "user_id": bot_user_id, "is_bot": True}],
        "is_ext_shared_channel": False,
    }
    return json.dumps(envelope)
