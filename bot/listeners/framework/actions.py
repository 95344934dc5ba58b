"""Buttons: authorize the click, take the idempotency lock for mutating ones, run, update the message."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from bot.listeners.framework.declarations import ActionCall, ButtonAction
from bot.listeners.framework.delivery import deliver, post_to_response_url, safe_respond
from bot.listeners.framework.failures import failure, not_started
from bot.listeners.framework.runtime import audit_soon, audit_soon_call, caller_from, runtime_of
from bot.security import audit

logger = logging.getLogger("opsbot.listeners")

# The audit outcome of a mutating run that changed nothing (the thing already was so).
UNCHANGED = "unchanged"


def default_idempotency_key(call: ActionCall) -> str:
    return f"{call.button.action_id}:{call.channel_id}:{call.message_ts}:{call.value}"


def register_action(app: Any, button: ButtonAction) -> None:
    runtime = runtime_of(app)
    runtime.buttons[button.action_id] = button

    def ack_action(ack: Any) -> None:
        ack()

    def run_action(body: dict[str, Any], client: Any, respond: Any) -> None:
        started = time.time()
        ref = audit.new_ref()
        caller = caller_from(body)
        action_payload: dict[str, Any] = next(
            (a for a in body.get("actions", []) if a.get("action_id") == button.action_id), {}
        )
        call = ActionCall(
            runtime=runtime, caller=caller, client=client, ref=ref, body=body, started=started,
            button=button, respond=respond, action=action_payload,
        )  # fmt: skip
        outcome, detail = "ok", ""
        lock_key = ""
        try:
            decision = runtime.decide(button.action, mutating=button.mutating, caller=caller, client=client)
            if not decision.allowed:
                outcome, detail = "denied", decision.reason
                safe_respond(
                    respond, f":no_entry: You may not run `{button.action}`: {decision.reason}", ref=ref
                )
                return
            state = None
            if button.mutating:
                from bot.aws.state import StateTable

                state = StateTable(runtime.settings.state_table)
                lock_key = (button.idempotency_key or default_idempotency_key)(call)
                holder = {"user": caller.user_id, "at": int(started), "ref": ref, "outcome": "running"}
                lock = state.acquire_lock(lock_key, holder, ttl_seconds=button.lock_seconds)
                if not lock.acquired:
                    outcome = "duplicate"
                    who = lock.holder.get("user", "someone")
                    when = lock.holder.get("at")
                    did = lock.holder.get("outcome", "running")
                    from bot.render.blocks import slack_time

                    at = f" at {slack_time(when)}" if when else ""
                    safe_respond(
                        respond,
                        f":information_source: Already done by <@{who}>{at} ({did}); nothing was changed again.",
                        ref=ref,
                    )
                    lock_key = ""
                    return
            reply = button.run(call)
            if reply is not None:
                outcome, detail = reply.outcome, reply.detail
                if not deliver(respond, reply, ref=ref, for_button=True):
                    detail = "; ".join(filter(None, [detail, "the reply was not delivered"]))
            if state is not None and lock_key and outcome != UNCHANGED:
                holder = {"user": caller.user_id, "at": int(started), "ref": ref, "outcome": outcome}
                state.update_lock(lock_key, holder, ttl_seconds=button.lock_seconds)
                lock_key = ""
            # An unchanged outcome (a no-op) decided nothing: the finally below releases its lock, so a
            # later click may still decide rather than be told it was "already done".
        except Exception as error:
            message, outcome, detail = failure(error, ref)
            safe_respond(respond, message, ref=ref)
        finally:
            if lock_key:
                # The work failed or changed nothing: let a later click try again rather than claim it
                # was done.
                try:
                    from bot.aws.state import StateTable

                    StateTable(runtime.settings.state_table).release_lock(lock_key)
                except Exception:
                    logger.exception("could not release lock %s", lock_key)
            runtime.audit(
                ref=ref,
                started=started,
                caller=caller,
                kind="action",
                command=f"button {button.action_id}",
                action=button.action,
                args=call.value,
                outcome=outcome,
                detail=detail,
            )

    def unstarted(request: Any, error: BaseException) -> None:
        started = time.time()
        ref = audit.new_ref()
        body = request.body
        action_payload: dict[str, Any] = next(
            (a for a in body.get("actions", []) if a.get("action_id") == button.action_id), {}
        )
        message, detail = not_started(error, ref)
        # Slack shows nothing of a button's ack: the note goes to the response_url, briefly.
        post_to_response_url(str(body.get("response_url", "")), message, ref=ref)
        audit_soon(
            runtime, ref=ref, started=started, caller=caller_from(body), kind="action",
            command=f"button {button.action_id}", action=button.action,
            args=str(action_payload.get("value", "")), outcome="error", detail=detail,
        )  # fmt: skip

    runtime.on_unstarted(run_action, unstarted)
    app.action(button.action_id)(ack=ack_action, lazy=[run_action])


def register_link_buttons(app: Any) -> None:
    """Link buttons (``action_id`` starting with ``link:``) open their URL in the browser and still send a
    click: ack it, and record the click (outcome ``link``) like every other one."""
    import re

    runtime = runtime_of(app)

    def ack_link(ack: Any) -> None:
        ack()

    def record(body: Mapping[str, Any], started: float) -> None:
        actions = [a for a in body.get("actions", []) if str(a.get("action_id", "")).startswith("link:")]
        clicked = actions[0] if actions else {}
        runtime.audit(
            ref=audit.new_ref(),
            started=started,
            caller=caller_from(body),
            kind="action",
            command=f"button {clicked.get('action_id', 'link:')}",
            action="link",
            args=str(clicked.get("url") or clicked.get("value") or "")[:300],
            outcome="link",
        )

    def run_link(body: dict[str, Any]) -> None:
        record(body, time.time())

    def unstarted(request: Any, error: BaseException) -> None:
        logger.warning("link click not recorded in the background (%r); recording it now", error)
        started = time.time()
        audit_soon_call(lambda: record(request.body, started))

    runtime.on_unstarted(run_link, unstarted)
    app.action(re.compile(r"^link:"))(ack=ack_link, lazy=[run_link])
