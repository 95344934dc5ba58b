"""Buttons: authorize the click, take the idempotency lock for mutating ones, run, update the message."""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.listeners.framework.accounts import unwrap_action
from bot.listeners.framework.declarations import ActionCall, ButtonAction
from bot.listeners.framework.delivery import deliver, post_to_response_url, safe_respond
from bot.listeners.framework.failures import failure, not_started
from bot.listeners.framework.runtime import Runtime, audit_soon, audit_soon_call, caller_from, runtime_of
from bot.security import audit

if TYPE_CHECKING:
    from bot.aws.state import LockResult, StateTable

logger = logging.getLogger("opsbot.listeners")

# The audit outcome of a mutating run that changed nothing (the thing already was so).
UNCHANGED = "unchanged"


def default_idempotency_key(call: ActionCall) -> str:
    return f"{call.button.action_id}:{call.channel_id}:{call.message_ts}:{call.value}"


@dataclass(frozen=True)
class _Held:
    """A button's idempotency lock while this click holds it."""

    state: StateTable
    key: str
    owner: str
    seconds: int

    def record(self, user: str, at: int, ref: str, outcome: str) -> str:
        """Write the outcome on the lock; '' when written, else a note for the audit detail.

        A failed write keeps the lock as it is ("running", until its TTL): the work was done, so a second
        click, even one for the opposite decision, must still find the lock taken."""
        holder = {"user": user, "at": at, "ref": ref, "outcome": outcome}
        try:
            if self.state.update_lock(self.key, holder, ttl_seconds=self.seconds, owner=self.owner):
                return ""
            logger.warning("lock %s expired and was taken by another click before the outcome", self.key)
            return "the lock had expired and was taken by another click"
        except Exception as error:
            logger.warning(
                "lock %s: outcome not recorded, the lock stays until it expires: %r", self.key, error
            )
            return f"the outcome was not recorded on the lock ({type(error).__name__}); it stays until it expires"

    def release(self) -> None:
        try:
            self.state.release_lock(self.key, owner=self.owner)
        except Exception:
            # It expires by itself; a later click is refused as a duplicate until then.
            logger.exception("could not release lock %s", self.key)


def _take_lock(runtime: Runtime, button: ButtonAction, call: ActionCall) -> tuple[_Held | None, LockResult]:
    """(the lock when this click took it, else None; the lock's record). Raises when DynamoDB fails: then
    nothing ran, and only a lock carrying our token (written before a timeout) is removed again."""
    from bot.aws.state import StateTable

    state = StateTable(runtime.settings.state_table)
    key = (button.idempotency_key or default_idempotency_key)(call)
    owner = secrets.token_hex(16)
    holder = {"user": call.user_id, "at": int(call.started), "ref": call.ref, "outcome": "running"}
    held = _Held(state, key, owner, button.lock_seconds)
    try:
        lock = state.acquire_lock(key, holder, ttl_seconds=button.lock_seconds, owner=owner)
    except Exception:
        held.release()
        raise
    return (held if lock.acquired else None), lock


def _already_done(lock: LockResult) -> str:
    who = lock.holder.get("user", "someone")
    when = lock.holder.get("at")
    did = lock.holder.get("outcome", "running")
    did = "still in progress or its outcome was not recorded" if did == "running" else did
    from bot.render.blocks import slack_time

    at = f" at {slack_time(when)}" if when else ""
    return f":information_source: Already done by <@{who}>{at} ({did}); nothing was changed again."


def register_action(app: Any, button: ButtonAction) -> None:
    runtime = runtime_of(app)
    runtime.buttons[button.action_id] = button

    def ack_action(ack: Any) -> None:
        ack()

    def run_action(body: dict[str, Any], client: Any, respond: Any) -> None:
        started = time.time()
        ref = audit.new_ref()
        caller = caller_from(body)
        clicked: dict[str, Any] = next(
            (a for a in body.get("actions", []) if a.get("action_id") == button.action_id), {}
        )
        call = ActionCall(
            runtime=runtime, caller=caller, client=client, ref=ref, body=body, started=started,
            button=button, respond=respond, action=clicked,
        )  # fmt: skip
        outcome, detail = "ok", ""
        place = None
        # Set only once the lock is ours, so nothing below can touch a lock another click holds; and
        # every write to it is conditional on our owner token (``StateTable.update_lock``/``release_lock``).
        held: _Held | None = None
        done = False  # the work ran to its end: from here on, a failure must not make it look undone
        try:
            # The account and region the element was made for (the framework wrapped its value, or each
            # of its options): the click goes there, and is authorized again for that account.
            call.action, made_for = unwrap_action(clicked)
            place = runtime.place(caller, made_for)
            call.account, call.region = place.account.name, place.region
            call.client = place.dress_client(client)
            decision = runtime.decide(
                button.action,
                mutating=button.mutating,
                caller=caller,
                client=client,
                account=place.account.name,
            )
            if not decision.allowed:
                outcome, detail = "denied", decision.reason
                safe_respond(
                    respond,
                    place.tell(f":no_entry: You may not run `{button.action}`: {decision.reason}"),
                    ref=ref,
                )
                return
            if button.mutating:
                held, taken = _take_lock(runtime, button, call)
                if held is None:
                    outcome = "duplicate"
                    safe_respond(respond, _already_done(taken), ref=ref)
                    return
            from bot.aws.clients import use_target  # on first use: the cold start loads no boto3 code

            with use_target(place.target(caller.user_id, mutating=button.mutating)):
                reply = button.run(call)
            done = True
            if reply is not None:
                reply = place.dress(reply)
                outcome, detail = reply.outcome, reply.detail
            if held is not None and outcome == UNCHANGED:
                # A no-op decided nothing: release the lock so a later click may still decide rather than
                # be told it was "already done".
                held.release()
                held = None
            elif held is not None:
                # Before the reply: a second click from now on says what happened rather than "running".
                note = held.record(caller.user_id, int(started), ref, outcome)
                detail = "; ".join(filter(None, [detail, note]))
            if reply is not None and not deliver(respond, reply, ref=ref, for_button=True):
                detail = "; ".join(filter(None, [detail, "the reply was not delivered"]))
        except Exception as error:
            if done:
                # The change was made: the user must not read that it failed, nor the audit say so.
                logger.exception("button %s ref=%s: failed after the work was done", button.action_id, ref)
                detail = "; ".join(filter(None, [detail, f"after the work: {type(error).__name__}"]))
                safe_respond(
                    respond,
                    f":information_source: The change was made, but opsbot could not finish reporting it "
                    f"(reference `{ref}`).",
                    ref=ref,
                )
            else:
                message, outcome, detail = failure(error, ref)
                safe_respond(respond, place.tell(message) if place is not None else message, ref=ref)
        finally:
            if held is not None and not done:
                # The work failed: let a later click try again rather than claim it was done.
                held.release()
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
                **(place.audit_fields() if place is not None else {}),
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
