"""/apilogs errors through signed requests into the real Bolt app: the answer, Look up (button and
overflow), Tail this path, usage errors in the ack."""

from __future__ import annotations

import json

import pytest

from bot.local.seeds import apilogs as seed_module
from bot.render.blocks import problems
from tests.support.slack import ALICE, BOB, SlackHarness, find_button


def test_errors_answer_has_verdict_groups_and_buttons(
    harness: SlackHarness, demo: seed_module.DemoApi
) -> None:
    ack = harness.command("/apilogs", "errors --since 1h --status all")
    assert ack.status == 200 and "failing requests" in ack.text
    reply = harness.last(ALICE)
    assert reply.ephemeral_to == ALICE[0] and problems(reply.blocks, text=reply.text) == []
    flat = json.dumps(reply.blocks)
    # The demo holds failures of several kinds: at least three groups.
    assert flat.count('"apilogs:tail-path"') >= 3
    assert (
        "failed (4xx and 5xx) of 30 requests" in flat and "KeyError" in flat and "Integration timeout" in flat
    )
    assert "Errors inside functions that still answered" in flat
    assert demo.failed is not None and demo.failed.api_request_id in flat
    # Look up: the existing lookup of the group's first sample id, for the clicker only.
    harness.click(reply, "apilogs:errors-lookup")
    looked = harness.last(ALICE)
    assert "Method completed" in json.dumps(looked.blocks) or "status" in json.dumps(looked.blocks)
    # Bob (no grants: reads follow default_read) may use it too.
    harness.command("/apilogs", "errors --since 1h", user=BOB)
    assert "failed of" in json.dumps(harness.last(BOB).blocks)


def test_overflow_looks_up_another_sample(harness: SlackHarness, demo: seed_module.DemoApi) -> None:
    harness.command("/apilogs", "errors --since 1h --status all")
    reply = harness.last(ALICE)
    element, _ = find_button(reply.blocks, "apilogs:errors-lookup-more")
    option = element["options"][0] if element["type"] == "overflow" else element
    harness.click(reply, "apilogs:errors-lookup-more", value=option["value"])
    wanted = json.loads(option["value"])["id"]
    assert wanted in json.dumps(harness.last(ALICE).blocks)


def test_usage_errors_are_answered_in_the_ack(harness: SlackHarness, aws: None) -> None:
    assert "--status" in harness.command("/apilogs", "errors --status 3xx").text
    assert "resource path" in harness.command("/apilogs", "errors --path orders").text
    assert "Unexpected" in harness.command("/apilogs", "errors now").text
    assert "--status" in harness.command("/apilogs", "help errors").text
    assert harness.slack.calls_to("chat.postMessage") == []


def test_tail_this_path_starts_a_tail_filtered_to_the_path(
    harness: SlackHarness, demo: seed_module.DemoApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.listeners import apilogs as listener

    monkeypatch.setattr(listener, "DEFAULT_TAIL", "2s")
    harness.command("/apilogs", "errors --since 1h")
    reply = harness.last(ALICE)
    element, _ = find_button(reply.blocks, "apilogs:tail-path")
    path = json.loads(element["value"])["path"]
    harness.click(reply, "apilogs:tail-path")
    started = json.dumps(harness.slack.calls_to("chat.postMessage")[0].params["blocks"])
    # The tail by request, kept to the path's requests (not a filter on the lines, which would drop the
    # functions' lines): the top message says so.
    assert "Tail" in started and f"requests to `{path}`" in started and "filter" not in started


def test_look_up_from_errors_is_the_lookups_own_answer(
    harness: SlackHarness, demo: seed_module.DemoApi
) -> None:
    """Look up on a group answers as `/apilogs ID` does: a timeline with lines too long for Slack (the
    504's access-log record) gets the promised file, and Full timeline searches the same window."""
    harness.command("/apilogs", "errors --since 1h")
    reply = harness.last(ALICE)
    values = [
        element["value"]
        for block in reply.blocks
        if block.get("type") == "actions"
        for element in block["elements"]
        if element.get("action_id") == "apilogs:errors-lookup"
    ]
    timeout = next(
        v for v in values if json.loads(v)["id"] in json.dumps(reply.blocks).split("Integration timeout")[1]
    )
    harness.click(reply, "apilogs:errors-lookup", value=timeout)
    looked = harness.last(ALICE)
    flat = json.dumps(looked.blocks)
    assert "attached file" in flat
    [upload] = harness.slack.calls_to("files.completeUploadExternal")
    assert upload.ok
    stored = next(iter(harness.slack.files.values()))
    assert json.loads(timeout)["id"].encode() in stored["content"]
    element, _ = find_button(looked.blocks, "apilogs:full")
    assert json.loads(element["value"])["id"] == json.loads(timeout)["id"]
