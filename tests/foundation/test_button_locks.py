"""A button's idempotency lock when DynamoDB fails at each of its steps, through signed requests: two
people clicking opposite decisions on one message, the lock's outcome write failing after the work was done,
taking the lock failing while another click holds it, a lock written before a timeout."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from bot.aws import clients
from bot.aws.state import StateTable
from bot.listeners.framework import (
    ActionCall,
    ButtonAction,
    Command,
    Reply,
    Subcommand,
    register_action,
    register_command,
    runtime_of,
)
from bot.local.slack_api import Message
from bot.render.blocks import actions, button, section
from tests.foundation.test_framework import audit_items
from tests.support.slack import ALICE, CAROL, SlackHarness

# Alice (on call) and Carol (named) may decide; the two decisions share one lock per message.
POLICY = {"rules": [{"allow": ["*"], "usergroups": ["S0ONCALL"]}, {"allow": ["*"], "users": [CAROL[0]]}]}


class Decisions:
    def __init__(self) -> None:
        self.applied: list[tuple[str, str]] = []  # (decision, user)
        self.fail_next = False


def _one_decision(call: ActionCall) -> str:
    return f"decide:{call.channel_id}:{call.message_ts}"


def add_decision_command(harness: SlackHarness, decisions: Decisions) -> None:
    def ask(_: Any) -> Reply:
        blocks = [
            section("Approve or reject?"),
            actions([button("Approve", "decide:approve", "x"), button("Reject", "decide:reject", "x")]),
        ]
        return Reply(text="Approve or reject?", blocks=blocks, in_channel=True)

    def decide(what: str) -> Callable[[ActionCall], Reply]:
        def run(call: ActionCall) -> Reply:
            if decisions.fail_next:
                decisions.fail_next = False
                raise RuntimeError("the work failed")
            decisions.applied.append((what, call.user_id))
            return Reply(text=f"{what} by <@{call.user_id}>", replace_original=True, outcome=what)

        return run

    register_command(
        harness.app, Command("decide", "ask for a decision", (Subcommand("ask", "Ask.", run=ask),))
    )
    for what in ("approve", "reject"):
        register_action(
            harness.app,
            ButtonAction(f"decide:{what}", decide(what), action="decide.make", idempotency_key=_one_decision),
        )
    runtime_of(harness.app).seal()


@pytest.fixture
def decisions(make_harness: Callable[..., SlackHarness]) -> Iterator[tuple[SlackHarness, Decisions, Message]]:
    harness = make_harness(OPSBOT_POLICY=json.dumps(POLICY))
    found = Decisions()
    add_decision_command(harness, found)
    harness.command("/decide", "ask")
    yield harness, found, harness.last()


def _lock_writes(params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    body = json.loads(params.get("body") or b"{}")
    key = body.get("Item") or body.get("Key") or {}
    return str(key.get("pk", {}).get("S", "")), body


@contextmanager
def failing_lock_call(
    operation: str, *, when: Callable[[dict[str, Any]], bool] = lambda body: True, after: bool = False
) -> Iterator[list[str]]:
    """Make DynamoDB ``operation`` on a ``lock#`` item fail once (throttled before the call, or a read
    timeout after DynamoDB applied it) when ``when(request body)`` holds. Yields the failures injected."""
    ddb = clients.client("dynamodb")
    injected: list[str] = []
    pending: list[str] = []  # after=True: the call that is to fail once DynamoDB has applied it

    def inject(model: Any, params: dict[str, Any], **_: Any) -> None:
        pk, body = _lock_writes(params)
        if injected or pending or model.name != operation or not pk.startswith("lock#") or not when(body):
            return
        if after:
            pending.append(operation)
            return
        injected.append(operation)
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, operation)

    def lose_the_answer(**_: Any) -> None:
        if pending and not injected:
            injected.append(pending.pop())
            raise ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")

    ddb.meta.events.register(f"before-call.dynamodb.{operation}", inject)
    ddb.meta.events.register(f"after-call.dynamodb.{operation}", lose_the_answer)
    try:
        yield injected
    finally:
        ddb.meta.events.unregister(f"before-call.dynamodb.{operation}", inject)
        ddb.meta.events.unregister(f"after-call.dynamodb.{operation}", lose_the_answer)


def lock_items() -> list[dict[str, Any]]:
    from bot.aws.dynamo import from_item

    items = clients.client("dynamodb").scan(TableName="opsbot-state")["Items"]
    return [from_item(i) for i in items if i["pk"]["S"].startswith("lock#")]


def action_records() -> list[dict[str, Any]]:
    return sorted((r for r in audit_items() if r["kind"] == "action"), key=lambda r: r["time"])


def is_outcome_write(body: dict[str, Any]) -> bool:
    """The write of the outcome onto a held lock (conditional on the owner), not the taking of it."""
    return "#owner" in str(body.get("ConditionExpression", ""))


def test_opposite_decisions_by_two_people_apply_once(
    decisions: tuple[SlackHarness, Decisions, Message],
) -> None:
    harness, found, message = decisions
    stale = Message(message.channel, message.ts, message.text, list(message.blocks), message.kind)
    harness.click(message, "decide:approve", user=ALICE)
    harness.click(stale, "decide:reject", user=CAROL)
    assert found.applied == [("approve", ALICE[0])]
    assert (
        "Already done by <@U0ALICE>" in harness.last(CAROL).text and "(approve)" in harness.last(CAROL).text
    )
    assert [r["outcome"] for r in action_records()] == ["approve", "duplicate"]


def test_a_failed_outcome_write_keeps_the_lock_and_tells_the_truth(
    decisions: tuple[SlackHarness, Decisions, Message],
) -> None:
    harness, found, message = decisions
    stale = Message(message.channel, message.ts, message.text, list(message.blocks), message.kind)
    with failing_lock_call("PutItem", when=is_outcome_write) as injected:
        harness.click(message, "decide:approve", user=ALICE)
    assert injected == ["PutItem"]
    assert found.applied == [("approve", ALICE[0])]
    # The user sees the change, and no error.
    assert message.text == f"approve by <@{ALICE[0]}>"
    assert not any(":x:" in t or ":boom:" in t for t in harness.texts(ALICE))
    (record,) = action_records()
    assert record["outcome"] == "approve" and "not recorded on the lock" in record["detail"]
    (lock,) = lock_items()  # kept (it expires by its TTL), still marked as running
    assert lock["user"] == ALICE[0] and lock["outcome"] == "running"
    # The opposite decision by someone else does not run.
    harness.click(stale, "decide:reject", user=CAROL)
    assert found.applied == [("approve", ALICE[0])]
    assert "Already done by <@U0ALICE>" in harness.last(CAROL).text
    assert [r["outcome"] for r in action_records()] == ["approve", "duplicate"]


def test_taking_the_lock_fails_without_touching_another_clicks_lock(
    decisions: tuple[SlackHarness, Decisions, Message],
) -> None:
    harness, found, message = decisions
    # Carol's click holds the lock (its work still running) when Alice's PutItem is throttled.
    state = StateTable(harness.settings.state_table)
    key = f"decide:{message.channel}:{message.ts}"
    carol = state.acquire_lock(key, {"user": CAROL[0], "outcome": "running"}, ttl_seconds=600)
    assert carol.acquired
    with failing_lock_call("PutItem") as injected:
        harness.click(message, "decide:approve", user=ALICE)
    assert injected == ["PutItem"] and found.applied == []
    assert "throttl" in harness.last(ALICE).text.lower()
    (lock,) = lock_items()
    assert lock["owner"] == carol.owner and lock["user"] == CAROL[0]  # Carol's lock is still there
    (record,) = action_records()
    assert record["outcome"] == "error"
    # Alice's next click finds Carol's lock.
    harness.click(message, "decide:approve", user=ALICE)
    assert found.applied == [] and "Already done by <@U0CAROL>" in harness.last(ALICE).text


def test_a_lock_written_before_a_timeout_is_released_so_a_retry_runs(
    decisions: tuple[SlackHarness, Decisions, Message],
) -> None:
    harness, found, message = decisions
    with failing_lock_call("PutItem", after=True) as injected:  # DynamoDB wrote it, the answer was lost
        harness.click(message, "decide:approve", user=ALICE)
    assert injected == ["PutItem"] and found.applied == []
    assert lock_items() == []  # ours, so removed again
    harness.click(message, "decide:approve", user=ALICE)
    assert found.applied == [("approve", ALICE[0])]
    assert [r["outcome"] for r in action_records()] == ["error", "approve"]


def test_failed_work_releases_only_its_own_lock(
    decisions: tuple[SlackHarness, Decisions, Message],
) -> None:
    harness, found, message = decisions
    found.fail_next = True
    harness.click(message, "decide:approve", user=ALICE)
    assert found.applied == [] and lock_items() == []
    assert "Something went wrong" in harness.last(ALICE).text
    harness.click(message, "decide:reject", user=CAROL)  # the decision is still open
    assert found.applied == [("reject", CAROL[0])]
    assert [r["outcome"] for r in action_records()] == ["failed", "reject"]


def test_a_failed_release_leaves_the_lock_to_expire(
    decisions: tuple[SlackHarness, Decisions, Message],
) -> None:
    harness, found, message = decisions
    found.fail_next = True
    with failing_lock_call("DeleteItem") as injected:
        harness.click(message, "decide:approve", user=ALICE)
    assert injected == ["DeleteItem"]
    (record,) = action_records()
    assert record["outcome"] == "failed"
    (lock,) = lock_items()
    assert lock["user"] == ALICE[0]


# -- the lock itself ---------------------------------------------------------------------------------


def test_update_and_release_act_only_on_the_owners_lock(state_table: str) -> None:
    state = StateTable(state_table)
    first = state.acquire_lock("k", {"user": "U1"}, ttl_seconds=0)  # expires at once
    second = state.acquire_lock("k", {"user": "U2"}, ttl_seconds=60)
    assert first.acquired and second.acquired and first.owner != second.owner
    assert state.update_lock("k", {"user": "U1", "outcome": "ok"}, ttl_seconds=60, owner=first.owner) is False
    assert state.release_lock("k", owner=first.owner) is False
    held = state.get("lock#k", "lock")
    assert held is not None and held["user"] == "U2" and held["owner"] == second.owner
    assert state.update_lock("k", {"user": "U2", "outcome": "ok"}, ttl_seconds=60, owner=second.owner)
    assert state.get("lock#k", "lock")["outcome"] == "ok"  # type: ignore[index]
    assert state.release_lock("k", owner=second.owner) is True
    assert state.get("lock#k", "lock") is None
    assert state.release_lock("k", owner=second.owner) is False  # gone: nothing to release
