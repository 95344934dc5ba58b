"""The buttons of alarm posts (``bot/intake/alarms.py`` posts them): Look up, Errors since, Acknowledge,
Mute 1h. No slash command: alarms arrive by themselves, and ``opsbot alarms explain`` is the CLI's.

No button changes anything in AWS. Acknowledge (``alarms.ack``) and Mute 1h (``alarms.mute``) change
only opsbot's episode item, and are policy actions like any change: audited, denied unless granted.
Errors since (``alarms.explain``) and Look up (``apilogs.lookup``) read.
"""

from __future__ import annotations

import json
import time
from typing import Any

from bot.errors import UsageError
from bot.listeners.framework import ActionCall, ButtonAction, Reply, register_action, runtime_of

# The same ids as bot.render.alarms (not imported here: registering must not load the core at cold start).
ACTION_LOOKUP = "alarms:lookup"
ACTION_ERRORS = "alarms:errors"
ACTION_ACK = "alarms:ack"
ACTION_MUTE = "alarms:mute"


def _key(call: ActionCall) -> str:
    if not call.value.startswith("arn:"):
        raise UsageError("This button carries no alarm; use `opsbot alarms explain ALARM_NAME`.")
    return call.value


def _episode_reply(view: Any) -> Reply:
    from bot.render.alarms import episode_message

    text, blocks = episode_message(view)
    return Reply(text=text, blocks=blocks, replace_original=True, detail=view.alarm.name)


def _ack(call: ActionCall) -> Reply:
    from bot.core.alarms.commands import acknowledge

    return _episode_reply(acknowledge(call.settings, _key(call), call.user_id))


def _mute(call: ActionCall) -> Reply:
    from bot.core.alarms.commands import mute

    return _episode_reply(mute(call.settings, _key(call), call.user_id))


def _errors(call: ActionCall) -> Reply:
    from bot.core.alarms.commands import errors_since
    from bot.render.alarms import correlation_blocks
    from bot.render.blocks import fit, section

    result = errors_since(call.settings, _key(call))
    head = section(f"*{result.alarm.name}*: the grouping again, from before the alarm until now")
    blocks, _ = fit([head, *correlation_blocks(result.correlation, _key(call))])
    return Reply(
        text=f"{result.alarm.name}: errors since the alarm", blocks=blocks, detail=result.correlation.kind
    )


def _lookup(call: ActionCall) -> Reply:
    from bot.core.apilogs.commands import lookup
    from bot.core.apilogs.scope import ReadLimit
    from bot.render.apilogs import lookup_message

    try:
        value = json.loads(call.value)
        request_id = str(value["id"])
    except (ValueError, KeyError, TypeError):
        raise UsageError("This button carries no request id; paste one into `/apilogs`.") from None
    result = lookup(
        request_id,
        call.settings,
        api=str(value.get("api") or ""),
        stage=str(value.get("stage") or ""),
        deadline=time.monotonic() + max(5.0, call.seconds_left() - 5),
        asked_from="slack",
        limit=ReadLimit.for_lambda(call.runtime.authorizer.policy().read_scope(call.channel_id)),
    )
    message = lookup_message(result)
    return Reply(text=message.text, blocks=message.blocks, outcome="ok" if result.found else "not-found")


def _one_per_episode(call: ActionCall) -> str:
    """One acknowledgement (or mute) per episode message, whoever clicks: a double click does it once."""
    return f"{call.button.action_id}:{call.channel_id}:{call.message_ts}"


BUTTONS = (
    ButtonAction(ACTION_ACK, _ack, action="alarms.ack", idempotency_key=_one_per_episode),
    ButtonAction(ACTION_MUTE, _mute, action="alarms.mute", idempotency_key=_one_per_episode),
    ButtonAction(ACTION_ERRORS, _errors, action="alarms.explain", mutating=False),
    ButtonAction(ACTION_LOOKUP, _lookup, action="apilogs.lookup", mutating=False),
)


def register(app: Any) -> None:
    runtime_of(app)
    for button in BUTTONS:
        register_action(app, button)
