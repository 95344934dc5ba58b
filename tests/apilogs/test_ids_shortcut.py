"""Request ids wherever they appear, through signed requests into the real Bolt app: the "Look up request
ids" message shortcut (0, 1 and 7 ids, Share in thread, a Slack Connect channel, an unauthorized user, a
person of another organisation) and ``@opsbot`` mentions (in a thread, without ids, a retried event)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.aws.state import StateTable
from bot.local.seeds import apilogs as seed_module
from bot.local.slack_api import Message
from tests.support.slack import ALICE, BOB, OPS_CHANNEL, SlackHarness, find_button

CALLBACK = "apilogs_lookup_ids"
SHARE = "apilogs:share"
# Lines of the failed demo request that must never reach a channel through a public summary.
LOG_LINE_WORDS = ("Traceback", "Method completed", "Endpoint request", "customer_id")


def pasted(text: str, ts: str = "1700000000.000100", **extra: Any) -> dict[str, Any]:
    """A message as Slack hands it to a message shortcut."""
    return {"type": "message", "user": "U0CUSTOMER", "ts": ts, "text": text,
            "client_msg_id": "5b2c3d4e-0000-4000-8000-1234567890ab", **extra}  # fmt: skip


def ephemerals(harness: SlackHarness, user: tuple[str, str] = ALICE) -> list[Message]:
    return [m for m in harness.seen_by(user) if m.kind == "ephemeral"]


def posted(harness: SlackHarness) -> list[Message]:
    return [m for m in harness.slack.visible(OPS_CHANNEL[0]) if m.kind == "message"]


def audits(harness: SlackHarness) -> list[dict[str, Any]]:
    day = datetime.now(UTC).date().isoformat()
    return StateTable(harness.settings.state_table).audit_of_day(day, limit=200)


def test_shortcut_on_a_message_with_one_id(harness: SlackHarness, demo: seed_module.DemoApi) -> None:
    failed = demo.failed
    assert failed is not None
    text = f"Customer: checkout fails!\n```HTTP/1.1 502\nx-amzn-RequestId: {failed.api_request_id}```"
    ack = harness.shortcut(CALLBACK, pasted(text))
    assert ack.status == 200 and ack.body == ""
    (answer,) = ephemerals(harness)
    flat = json.dumps(answer.blocks)
    assert "POST /orders" in flat and "502" in flat and "KeyError" in flat and "orders-api" in flat
    assert "Found 1 request id in the message." in flat
    find_button(answer.blocks, SHARE)
    find_button(answer.blocks, "apilogs:tail")  # the lookup's own buttons stay
    assert posted(harness) == []  # private by default
    (record,) = [a for a in audits(harness) if a.get("kind") == "shortcut"]
    assert record["action"] == "apilogs.lookup" and record["outcome"] == "ok"
    assert record["args"] == failed.api_request_id  # the ids, not the pasted text
