"""/fanout health, pause and resume through signed requests into the real Bolt app."""

from __future__ import annotations

import contextlib
import copy
import json
from typing import Any

import pytest

from bot.aws.clients import client
from bot.aws.dynamo import from_item
from bot.config import Settings
from bot.listeners import fanout as listener
from bot.render import fanout as render
from tests.fanout.conftest import CLICKS_ARN, Fanout, two_sources
from tests.fanout.test_pause import original_cli_list
from tests.support.slack import ALICE, BOB, SlackHarness


@pytest.fixture
def sources(state_table: str) -> dict[str, str]:
    from bot.aws.fanout import FANOUT_TABLE_DEFINITION, register_like_cli
    from bot.aws.state import create_table

    create_table("fanoutTargets", FANOUT_TABLE_DEFINITION)
    fanout = Fanout(
        Settings.from_env({"AWS_REGION": "us-east-1"}),
        "fanoutTargets",
        lambda **kw: register_like_cli(
            "fanoutTargets",
            **{
                "source_arn": kw.pop("source_arn", None)
                or "arn:aws:kinesis:us-east-1:123456789012:stream/inputStream",
                **kw,
            },
        ),
    )
    return two_sources(fanout)


def state_of_clicks() -> str:
    return str(original_cli_list(CLICKS_ARN)["hooks"][0][1])


def audit_items() -> list[dict[str, Any]]:
    items = client("dynamodb").scan(TableName="opsbot-state")["Items"]
    return [from_item(i) for i in items if i["pk"]["S"].startswith("audit#")]


def test_health_shows_verdicts_and_a_pause_button_for_the_falling_behind_source(
    harness: SlackHarness, sources: dict[str, str]
) -> None:
    harness.command("/fanout", "health")
    answer = harness.last()
    assert answer.text in (
        "fan-out health: 1 falling behind, 1 healthy",
        "fan-out health: 1 healthy, 1 falling behind",
    )
    shown = json.dumps(answer.blocks)
    assert (
        "Kinesis stream clicks" in shown
        and "falling behind" in shown
        and "iterator age reached 30 min" in shown
    )
    buttons = [b["accessory"] for b in answer.blocks if "accessory" in b]
    (pause,) = buttons  # only the falling-behind source has one
    assert pause["action_id"] == listener.ACTION_PAUSE == render.ACTION_PAUSE
    assert "Backlog now: 30 min" in pause["confirm"]["text"]["text"]

    harness.click(answer, listener.ACTION_PAUSE)
    assert state_of_clicks() == "Disabled"
    announced = [m for m in harness.seen_by(BOB) if m.kind == "message"]
    assert len(announced) == 1 and "Kinesis stream clicks to fanout is paused" in announced[0].text
    assert f"(by <@{ALICE[0]}>)" in json.dumps(announced[0].blocks)

    harness.command("/fanout", "health clicks")
    paused = harness.last()
    assert "1 paused" in paused.text
    (resume,) = [b["accessory"] for b in paused.blocks if "accessory" in b]
    assert resume["action_id"] == listener.ACTION_RESUME
    harness.click(paused, listener.ACTION_RESUME)
    assert state_of_clicks() == "Enabled"
    outcomes = sorted(
        r["outcome"] for r in audit_items() if r.get("action") in ("fanout.pause", "fanout.resume")
    )
    assert outcomes == ["changed", "changed"]


def test_those_who_may_not_pause_see_no_button_and_cannot_pause(
    harness: SlackHarness, sources: dict[str, str]
) -> None:
    harness.command("/fanout", "health", user=BOB)  # reading is allowed to everyone
    answer = harness.last(BOB)
    assert "falling behind" in json.dumps(answer.blocks)
    assert not any("accessory" in b for b in answer.blocks)

    harness.command("/fanout", "pause clicks", user=BOB)
    assert "You may not run `fanout.pause`" in harness.last(BOB).text
    # A button drawn for someone else, clicked by Bob: refused, nothing changed.
    harness.command("/fanout", "health")
    harness.click(harness.last(), listener.ACTION_PAUSE, user=BOB)
    assert "You may not run `fanout.pause`" in harness.last(BOB).text
    assert state_of_clicks() == "Enabled"
    denied = [r for r in audit_items() if r.get("outcome") == "denied"]
    assert {r["user"] for r in denied} == {BOB[0]} and len(denied) == 2


def test_pause_command_confirms_with_the_backlog_then_pauses_once(
    harness: SlackHarness, sources: dict[str, str]
) -> None:
    harness.command("/fanout", "pause clicks")
    preview = copy.deepcopy(harness.last())  # the click replaces the message the local Slack keeps
    assert preview.kind == "ephemeral" and state_of_clicks() == "Enabled"  # nothing changed yet
    shown = json.dumps(preview.blocks)
    assert "pile up unread" in shown and "24 hours" in shown and "30 min old" in shown
    harness.click(preview, listener.ACTION_PAUSE)
    assert state_of_clicks() == "Disabled"
    assert "is paused" in json.dumps(harness.last().blocks)

    harness.click(preview, listener.ACTION_PAUSE)  # a double click does nothing twice
    assert "Already done by" in harness.last().text

    harness.command("/fanout", "pause clicks")  # idempotent: says so, privately
    again = harness.last()
    assert again.kind == "ephemeral" and "was already paused; nothing changed" in again.text

    harness.command("/fanout", "resume clicks")
    resumed = harness.last()
    assert resumed.kind == "message" and "is resumed" in resumed.text and state_of_clicks() == "Enabled"


def test_bad_source_lists_the_known_ones(harness: SlackHarness, sources: dict[str, str]) -> None:
    harness.command("/fanout", "pause nope")
    assert "Known sources: clicks, inputStream" in harness.last().text
    harness.command("/fanout", "health nope")
    assert "Known sources: clicks, inputStream" in harness.last().text
    ack = harness.command("/fanout", "health --since soon")
    assert "Cannot read the duration" in ack.text
    assert state_of_clicks() == "Enabled"


def test_help_lists_the_new_subcommands(harness: SlackHarness, sources: dict[str, str]) -> None:
    ack = harness.command("/fanout", "help")
    for word in ("health", "pause", "resume", "check"):
        assert f"/fanout {word}" in ack.text


def test_two_pause_buttons_clicked_at_once_pause_and_announce_once(
    harness: SlackHarness, sources: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The health answer's Pause and the command's confirmation are two buttons (two idempotency keys):
    clicked together, both would read the hook enabled before either disabled it."""
    import threading

    from bot.aws import fanout as fanout_aws

    harness.command("/fanout", "health")
    health = copy.deepcopy(harness.last())
    harness.command("/fanout", "pause clicks")
    preview = copy.deepcopy(harness.last())
    read = fanout_aws.hooks_of_source
    both_read = threading.Barrier(2, timeout=3)

    def slow_read(*args: Any, **kwargs: Any) -> Any:
        found = read(*args, **kwargs)
        # The two clicks both read the hook before either changes it (unless one was turned away first).
        with contextlib.suppress(threading.BrokenBarrierError):
            both_read.wait()
        return found

    monkeypatch.setattr(fanout_aws, "hooks_of_source", slow_read)
    updates: list[str] = []
    update = fanout_aws.set_hook_enabled
    monkeypatch.setattr(
        fanout_aws, "set_hook_enabled", lambda *a, **k: updates.append(a[0]) or update(*a, **k)
    )
    clicks = [
        threading.Thread(target=harness.click, args=(message, listener.ACTION_PAUSE))
        for message in (health, preview)
    ]
    for click in clicks:
        click.start()
    for click in clicks:
        click.join()
    harness.wait()
    assert state_of_clicks() == "Disabled"
    assert len(updates) == 1
    announced = [m for m in harness.seen_by(BOB) if m.kind == "message"]
    assert len(announced) == 1, [m.text for m in announced]
    assert any("right now; nothing was changed" in m.text for m in harness.seen_by(ALICE))
