"""Log lines and Slack Connect, attacked through the real Bolt app: every path that posts log lines in a
channel (the tail's thread from the command and both tail buttons, the full timeline uploaded as a file
from a lookup or its Full timeline button) refuses a channel shared with another organisation unless the
policy lists it in ``shared_channels``; the private answers still come."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from bot.local.seeds import apilogs as seed_module
from tests.apilogs.conftest import put_lines
from tests.support.slack import ALICE, OPS_CHANNEL, SlackHarness

pytestmark = pytest.mark.waits  # tails that run for their --for: collected first (tests/conftest.py)


def in_channel(harness: SlackHarness) -> list[str]:
    """Everything posted in the channel for all to read (messages and files), as text."""
    return [
        json.dumps([m.text, m.blocks, m.files])
        for m in harness.slack.visible(OPS_CHANNEL[0])
        if m.kind == "message"
    ]


def big_timeline(demo: seed_module.DemoApi) -> str:
    failed = demo.failed
    assert failed is not None
    start = next(e for e in failed.events if e.message.startswith("START"))
    lines = [(start.timestamp, f"debug dump line {i} customer_id=42 " + "z" * 120) for i in range(300)]
    put_lines(start.group, start.stream, lines)
    return failed.api_request_id


@pytest.fixture
def shortened(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.listeners import apilogs as listener

    monkeypatch.setattr(listener, "DEFAULT_TAIL", "2s")


def test_no_tail_in_a_shared_channel(harness: SlackHarness, demo: seed_module.DemoApi) -> None:
    harness.slack.ext_shared.add(OPS_CHANNEL[0])
    for text in ("tail --raw --since 1h --for 2s", "tail --since 1h --for 2s"):
        harness.command("/apilogs", text)
        assert in_channel(harness) == []
        assert "No tail here" in harness.last(ALICE).text
        assert "shared with another organisation" in harness.last(ALICE).text


def test_tail_buttons_refuse_a_shared_channel(
    harness: SlackHarness, demo: seed_module.DemoApi, shortened: None
) -> None:
    assert demo.failed is not None
    harness.command("/apilogs", demo.failed.api_request_id)
    lookup = harness.last(ALICE)
    harness.command("/apilogs", "errors --since 1h")
    errors = harness.last(ALICE)
    harness.slack.ext_shared.add(OPS_CHANNEL[0])  # shared after the answers were drawn
    harness.click(lookup, "apilogs:tail")
    assert "No tail here" in harness.last(ALICE).text
    harness.click(errors, "apilogs:tail-path")
    assert "No tail here" in harness.last(ALICE).text
    assert in_channel(harness) == []


def test_a_channel_slack_will_not_describe_counts_as_shared(
    harness: SlackHarness, demo: seed_module.DemoApi
) -> None:
    harness.slack.fail_next("conversations.info", "missing_scope")
    harness.command("/apilogs", "tail --raw --since 1h --for 2s")
    assert in_channel(harness) == []
    assert "missing_scope" in harness.last(ALICE).text


def test_the_full_timeline_is_not_uploaded_into_a_shared_channel(
    harness: SlackHarness, demo: seed_module.DemoApi
) -> None:
    request_id = big_timeline(demo)
    harness.slack.ext_shared.add(OPS_CHANNEL[0])
    harness.command("/apilogs", request_id)
    answer = harness.last(ALICE)
    assert answer.ephemeral_to == ALICE[0] and "KeyError" in json.dumps(answer.blocks)
    assert "not attached here" in json.dumps(answer.blocks)
    harness.click(answer, "apilogs:full")
    assert "not attached here" in json.dumps(harness.last(ALICE).blocks)
    assert harness.slack.calls_to("files.completeUploadExternal") == []
    assert in_channel(harness) == []


def test_a_listed_shared_channel_gets_the_tail_and_the_file(
    make_harness: Callable[..., SlackHarness], demo: seed_module.DemoApi
) -> None:
    policy = {"rules": [], "shared_channels": [OPS_CHANNEL[0]]}
    harness = make_harness(OPSBOT_POLICY=json.dumps(policy))
    harness.slack.ext_shared.add(OPS_CHANNEL[0])
    harness.command("/apilogs", big_timeline(demo))
    [upload] = harness.slack.calls_to("files.completeUploadExternal")
    assert upload.ok
    harness.command("/apilogs", "tail --raw --since 1h --for 2s")
    assert any("log lines" in text for text in in_channel(harness))
