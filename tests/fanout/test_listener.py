"""/fanout through signed requests into the real Bolt app and the local Slack Web API server."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from bot.aws.dynamo import from_item
from bot.aws.fanout import FANOUT_TABLE_DEFINITION, register_like_cli
from bot.aws.state import create_table
from bot.listeners import fanout as listener
from bot.local.slack_api import Message
from bot.render import fanout as render
from tests.fanout.conftest import DDB_STREAM_ARN, KINESIS_ARN, raw_items
from tests.support.slack import ALICE, BOB, SlackHarness


@pytest.fixture
def table(state_table: str) -> None:
    create_table("fanoutTargets", FANOUT_TABLE_DEFINITION)
    register_like_cli(
        "fanoutTargets",
        source_arn=KINESIS_ARN,
        target_id="replica",
        target_type="kinesis",
        destination="out",
        active=True,
    )
    register_like_cli(
        "fanoutTargets",
        source_arn=KINESIS_ARN,
        target_id="archive",
        target_type="firehose",
        destination="arch",
    )
    register_like_cli(
        "fanoutTargets", source_arn=DDB_STREAM_ARN, target_id="crm", target_type="sqs", destination="x"
    )


def active_of(target_id: str) -> Any:
    return next(from_item(i) for i in raw_items() if i["id"]["S"] == target_id)["active"]


def audit_items() -> list[dict[str, Any]]:
    from bot.aws.clients import client

    items = client("dynamodb").scan(TableName="opsbot-state")["Items"]
    return [from_item(i) for i in items if i["pk"]["S"].startswith("audit#")]


def test_help(harness: SlackHarness, table: None) -> None:
    ack = harness.command("/fanout", "help")
    for word in ("list", "check", "activate", "deactivate"):
        assert f"/fanout {word}" in ack.text
    assert "has no subcommand" in harness.command("/fanout", "hook orders").text
    assert "Unknown target type `queue`" in harness.command("/fanout", "list --type queue").text


def test_list_and_toggle_with_buttons(harness: SlackHarness, table: None) -> None:
    harness.command("/fanout", "list inputStream")
    listing = harness.last()
    assert "2 fan-out targets in 1 source" in listing.text
    assert "Kinesis stream inputStream" in json.dumps(listing.blocks)
    original = copy.deepcopy(listing)

    harness.click(listing, listener.ACTION_DEACTIVATE)
    assert active_of("replica") is False
    redrawn = shown(harness, listing)
    assert redrawn.kind == "ephemeral" and redrawn.revision == 1
    assert f"<@{ALICE[0]}> deactivated *replica*" in json.dumps(redrawn.blocks)
    values = [
        (b["accessory"]["action_id"], render.parse_toggle_value(b["accessory"]["value"]).target_id)
        for b in redrawn.blocks
        if "accessory" in b
    ]
    assert sorted(values) == [("fanout:activate", "archive"), ("fanout:activate", "replica")]
    assert render.parse_toggle_value(redrawn.blocks[-1]["accessory"]["value"]).filters.source == "inputStream"

    # The same button clicked again (a double click): nothing is done twice.
    harness.click(original, listener.ACTION_DEACTIVATE)
    assert "Already done by" in harness.last().text and active_of("replica") is False

    # The redrawn button works (a new button, a new lock).
    harness.click(redrawn, listener.ACTION_ACTIVATE, value=redrawn.blocks[-1]["accessory"]["value"])
    assert active_of("replica") is True
    outcomes = [r["outcome"] for r in audit_items() if r.get("kind") == "action"]
    assert sorted(outcomes) == ["changed", "changed", "duplicate"]


def shown(harness: SlackHarness, message: Message) -> Message:
    """The message as the user sees it now (a click redraws the list in place)."""
    return next(m for m in harness.seen_by() if m.ts == message.ts)


def channel_messages(harness: SlackHarness, user: tuple[str, str] = ALICE) -> list[Message]:
    return [m for m in harness.seen_by(user) if m.kind == "message"]


def test_a_click_announces_a_change_in_the_channel_like_the_command(
    harness: SlackHarness, table: None
) -> None:
    harness.command("/fanout", "list inputStream")
    listing = harness.last()
    harness.command("/fanout", "list inputStream")
    stale = copy.deepcopy(harness.last())  # a second list, not redrawn by the click on the first
    assert channel_messages(harness) == []

    harness.click(listing, listener.ACTION_DEACTIVATE)
    assert active_of("replica") is False
    (announced,) = channel_messages(harness, BOB)  # everyone in the channel sees it
    assert "target replica of Kinesis stream inputStream is now inactive" in announced.text
    assert f"(by <@{ALICE[0]}>)" in json.dumps(announced.blocks)
    assert f"<@{ALICE[0]}> deactivated *replica*" in json.dumps(shown(harness, listing).blocks)

    # The command announces the same change with the same message.
    harness.command("/fanout", "activate inputStream replica")
    harness.command("/fanout", "deactivate inputStream replica")
    *_, by_command = channel_messages(harness)
    assert (by_command.text, by_command.blocks) == (announced.text, announced.blocks)

    # A click that finds the target already in that state changes nothing and announces nothing.
    harness.click(stale, listener.ACTION_DEACTIVATE)
    assert len(channel_messages(harness)) == 3 and active_of("replica") is False
    assert "*replica* was already inactive; nothing changed" in json.dumps(shown(harness, stale).blocks)
    clicks = [r["outcome"] for r in audit_items() if r.get("kind") == "action"]
    assert sorted(clicks) == ["changed", "unchanged"]


def test_an_unauthorized_click_changes_nothing(harness: SlackHarness, table: None) -> None:
    harness.command("/fanout", "list", user=BOB)  # reading is allowed to everyone
    listing = harness.last(BOB)
    harness.click(listing, listener.ACTION_DEACTIVATE, user=BOB)
    assert "You may not run `fanout.deactivate`" in harness.last(BOB).text
    assert active_of("replica") is True
    (record,) = [r for r in audit_items() if r.get("kind") == "action"]
    assert record["outcome"] == "denied" and record["user"] == BOB[0]


def test_activate_and_deactivate_commands(harness: SlackHarness, table: None) -> None:
    harness.command("/fanout", "activate customers crm")
    announced = harness.last()
    assert announced.kind == "message"  # the channel sees who changed the fan-out
    assert "is now active" in announced.text and f"<@{ALICE[0]}>" in json.dumps(announced.blocks)
    assert active_of("crm") is True

    harness.command("/fanout", f"activate {DDB_STREAM_ARN} crm")
    again = harness.last()
    assert again.kind == "ephemeral" and "already active; nothing changed" in again.text

    harness.command("/fanout", "deactivate customers crm", user=BOB)
    assert "You may not run `fanout.deactivate`" in harness.last(BOB).text
    assert active_of("crm") is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("activate inputStream nope", "No target `nope` for source"),
        ("activate nostream replica", "No source named `nostream`"),
        ("deactivate inputStream replica --table other", "is not one of the configured fan-out tables"),
    ],
)
def test_unknown_source_or_id(harness: SlackHarness, table: None, text: str, message: str) -> None:
    before = raw_items()
    harness.command("/fanout", text)
    assert message in harness.last().text
    assert raw_items() == before


def test_missing_arguments_are_refused_in_the_ack(harness: SlackHarness, table: None) -> None:
    ack = harness.command("/fanout", "activate inputStream")
    assert "Missing &lt;id&gt;" in ack.text


def test_check(harness: SlackHarness, table: None) -> None:
    harness.command("/fanout", "check")
    answer = harness.last()
    assert "fan-out check: 1 error, 1 warning" in answer.text  # counts worded in the singular for one
    assert "destination" in json.dumps(answer.blocks) and "is not the queue URL" in json.dumps(answer.blocks)


def test_long_checks_page_with_buttons(harness: SlackHarness, table: None) -> None:
    for n in range(60):
        register_like_cli(
            "fanoutTargets",
            source_arn=KINESIS_ARN,
            target_id=f"bad{n:03d}",
            target_type="sqs",
            destination="not-a-queue-url",
        )
    harness.command("/fanout", "check", user=BOB)  # reading needs no grant, nor does paging
    first = harness.last(BOB)
    first_page = json.dumps(first.blocks)  # the click replaces this message
    assert "page 1 of 2" in first_page
    harness.click(first, listener.ACTION_CHECK_NEXT, user=BOB)
    second = harness.last(BOB)
    assert "page 2 of 2" in json.dumps(second.blocks) and len(harness.seen_by(BOB)) == 2  # ack + answer
    shown = first_page + json.dumps(second.blocks)
    assert all(f"bad{n:03d}" in shown for n in range(60))
    harness.click(second, listener.ACTION_CHECK_PREV, user=BOB)
    assert "page 1 of 2" in json.dumps(harness.last(BOB).blocks)
    assert f"{render.ACTION_CHECK_PAGE}:next" == listener.ACTION_CHECK_NEXT
    pages = [r for r in audit_items() if r.get("action") == "fanout.check"]
    assert len(pages) == 3 and {r["outcome"] for r in pages} == {"findings"}


def test_long_lists_page_with_buttons(harness: SlackHarness, table: None) -> None:
    for n in range(90):
        register_like_cli(
            "fanoutTargets",
            source_arn=KINESIS_ARN,
            target_id=f"t{n:03d}-" + "z" * 50,
            target_type="sqs",
            destination=f"https://sqs.us-east-1.amazonaws.com/123456789012/q{n:03d}",
        )
    harness.command("/fanout", "list")
    first = harness.last()
    assert "page 1 of" in json.dumps(first.blocks)
    harness.click(first, listener.ACTION_PAGE_NEXT)
    second = harness.last()
    assert "page 2 of" in json.dumps(second.blocks)
    assert f"{render.ACTION_PAGE}:next" == listener.ACTION_PAGE_NEXT
    assert (listener.ACTION_ACTIVATE, listener.ACTION_DEACTIVATE) == (
        render.ACTION_ACTIVATE,
        render.ACTION_DEACTIVATE,
    )
