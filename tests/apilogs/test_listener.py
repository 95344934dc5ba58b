"""/apilogs through signed requests into the real Bolt app, answered on the local Slack server
(which rejects anything Slack would): lookup, help, usage errors, tail in a thread, Stop, the Tail button,
a timeline too big for a message, unauthorized clicks, the Lambda time limit."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable

import pytest

from bot.aws.clients import client
from bot.local.requests import block_actions_body, slash_command_body
from bot.local.seeds import apilogs as seed_module
from bot.local.slack_api import LocalSlack, Message
from tests.apilogs.conftest import put_lines
from tests.support.slack import ALICE, BOB, OPS_CHANNEL, SlackHarness, find_button

pytestmark = pytest.mark.waits  # tails that run for their --for: collected first (tests/conftest.py)


def now_ms() -> int:
    return int(time.time() * 1000)


def start_command(harness: SlackHarness, text: str, user: tuple[str, str] = ALICE) -> threading.Thread:
    """Send a slash command without waiting for its lazy work (a tail runs until stopped)."""
    body = slash_command_body(
        "/apilogs", text, user_id=user[0], user_name=user[1], channel_id=OPS_CHANNEL[0],
        channel_name=OPS_CHANNEL[1], team_id=harness.slack.team_id,
        response_url=harness.slack.new_response_url(OPS_CHANNEL[0], user[0]),
    )  # fmt: skip
    thread = threading.Thread(target=harness.dispatch, args=(body,), kwargs={"wait": False})
    thread.start()
    thread.join()
    return thread


def click_without_waiting(
    harness: SlackHarness, message: Message, action_id: str, user: tuple[str, str]
) -> None:
    """Like ``harness.click`` but returns once acked: the tail started earlier is still running."""
    element, block_id = find_button(message.blocks, action_id)
    body = block_actions_body(
        action=element, block_id=block_id,
        message={"type": "message", "ts": message.ts, "text": message.text, "blocks": message.blocks},
        user_id=user[0], user_name=user[1], channel_id=message.channel, channel_name=message.channel,
        team_id=harness.slack.team_id,
        response_url=harness.slack.new_response_url(message.channel, user[0], message), message_ts=message.ts,
    )  # fmt: skip
    assert harness.dispatch(body, wait=False).status == 200


def tail_message(slack: LocalSlack) -> Message:
    def found() -> Message | None:
        for message in slack.visible(OPS_CHANNEL[0]):
            if (
                message.kind == "message"
                and not message.thread_ts
                and any(word in json.dumps(message.blocks) for word in ("Tailing", "Tail of"))
            ):
                return message
        return None

    message = slack.wait_for(found, timeout=15)
    assert isinstance(message, Message)
    return message


def thread_of(slack: LocalSlack, parent: Message) -> list[Message]:
    return [m for m in slack.visible(OPS_CHANNEL[0]) if m.thread_ts == parent.ts]


def test_lookup_answers_with_summary_timeline_and_buttons(
    harness: SlackHarness, demo: seed_module.DemoApi
) -> None:
    assert demo.failed is not None
    ack = harness.command("/apilogs", demo.failed.api_request_id)
    assert ack.status == 200 and "Looking up" in ack.text
    reply = harness.last(ALICE)
    flat = json.dumps(reply.blocks)
    assert "POST /orders" in flat and "502" in flat and "KeyError" in flat and "orders-api" in flat
    find_button(reply.blocks, "apilogs:tail")
    insights, _ = find_button(reply.blocks, "link:apilogs-insights")
    assert insights["url"].startswith("https://us-east-1.console.aws.amazon.com/cloudwatch/")
    # Read-only: bob (no grants) gets the same answer.
    harness.command("/apilogs", f"{demo.failed.lambda_ids['orders-api']} --since 2h", user=BOB)
    assert "KeyError" in json.dumps(harness.last(BOB).blocks)


def test_help_and_usage_errors_are_answered_in_the_ack(harness: SlackHarness, aws: None) -> None:
    help_ack = harness.command("/apilogs", "help")
    assert "/apilogs tail" in help_ack.text and "/apilogs &lt;id&gt; [--api" in help_ack.text
    sub_help = harness.command("/apilogs", "help tail")
    assert "--filter" in sub_help.text and "--for" in sub_help.text
    bad = harness.command("/apilogs", "hello")
    assert ":warning:" in bad.text and "not a request id" in bad.text
    assert "Cannot read the duration" in harness.command("/apilogs", "tail --for soon").text
    assert "unclosed" in harness.command("/apilogs", "tail --filter '\"oops'").text
    assert (
        "Unknown option" in harness.command("/apilogs", "9439989f-7543-11e6-8dda-150c09a55dc2 --bogus 1").text
    )
    # Nothing reached AWS or the channel for these.
    assert harness.slack.calls_to("chat.postMessage") == []


def test_nothing_found_is_a_clear_answer(harness: SlackHarness, demo: seed_module.DemoApi) -> None:
    harness.command("/apilogs", "0f7d2c1e-4b2a-4c55-9a3f-8f2b3c4d5e6f --since 20m")
    flat = json.dumps(harness.last(ALICE).blocks)
    assert "Nothing found" in flat and "/aws/lambda/orders-api" in flat


def test_a_timeline_too_big_for_a_message_is_attached(
    harness: SlackHarness, demo: seed_module.DemoApi
) -> None:
    failed = demo.failed
    assert failed is not None
    start = next(e for e in failed.events if e.message.startswith("START"))
    put_lines(
        start.group,
        start.stream,
        [(start.timestamp, f"debug dump line {i} " + "z" * 120) for i in range(300)],
    )
    harness.command("/apilogs", failed.api_request_id)
    [upload] = harness.slack.calls_to("files.completeUploadExternal")
    assert upload.ok
    shared = [m for m in harness.slack.visible(OPS_CHANNEL[0]) if m.files]
    assert shared and "Full timeline" in shared[-1].text
    stored = next(iter(harness.slack.files.values()))
    assert b"debug dump line 299" in stored["content"] and b"Traceback" in stored["content"]
    assert "attached file" in json.dumps(harness.last(ALICE).blocks)


def test_tail_streams_into_a_thread_and_ends_with_a_summary(
    harness: SlackHarness, demo: seed_module.DemoApi
) -> None:
    put_lines(
        "/aws/lambda/users-api", "2026/11/27/[$LATEST]tail", [(now_ms() - 2000, "fresh line for the tail")]
    )
    ack = harness.command("/apilogs", "tail --for 3s --mode poll")
    assert "thread" in ack.text
    parent = tail_message(harness.slack)
    first_post = harness.slack.calls_to("chat.postMessage")[0]
    assert "apilogs:stop" in str(first_post.params["blocks"])
    thread = thread_of(harness.slack, parent)
    assert any("fresh line for the tail" in json.dumps(m.blocks) for m in thread)
    assert "reached its time limit" in thread[-1].text
    # The message lost its Stop button; the user was told it ended.
    assert "apilogs:stop" not in json.dumps(harness.slack.find(parent.ts).blocks)  # type: ignore[union-attr]
    assert "ended" in harness.last(ALICE).text
    # Once ended, the top message no longer says it is tailing.
    top = json.dumps(harness.slack.find(parent.ts).blocks)  # type: ignore[union-attr]
    assert "Tailing" not in top and ":hourglass_flowing_sand:" not in top
    assert "Tail of" in top and "Ended: " in top
    # At most one thread message a second (plus the summary).
    assert len(thread) <= 3 + 1


@pytest.mark.serial  # asserts on the wall clock: run apart from the parallel run
def test_stop_button_ends_the_tail_and_unauthorized_clicks_do_not(
    make_harness: Callable[..., SlackHarness], demo: seed_module.DemoApi
) -> None:
    policy = {
        "rules": [
            {"allow": ["*"], "usergroups": ["S0ONCALL"]},
            {"deny": ["apilogs.tail"], "users": [BOB[0]], "description": "bob may not tail"},
        ]
    }
    harness = make_harness(OPSBOT_POLICY=json.dumps(policy))
    start_command(harness, "tail --for 60s --mode poll")
    parent = tail_message(harness.slack)
    click_without_waiting(harness, parent, "apilogs:stop", BOB)
    harness.slack.wait_for(lambda: any(":no_entry:" in t for t in harness.texts(BOB)))
    time.sleep(1.5)  # the tail goes on: bob's click set no flag
    assert "apilogs:stop" in json.dumps(harness.slack.find(parent.ts).blocks)  # type: ignore[union-attr]
    began = time.monotonic()
    click_without_waiting(harness, parent, "apilogs:stop", ALICE)
    harness.wait()  # the lazy work, the tail included, ends within a poll or two
    assert time.monotonic() - began < 10
    thread = thread_of(harness.slack, parent)
    assert "stopped with the Stop button" in thread[-1].text and "U0ALICE" in thread[-1].text
    assert "apilogs:stop" not in json.dumps(harness.slack.find(parent.ts).blocks)  # type: ignore[union-attr]


def test_tail_button_under_a_lookup(
    harness: SlackHarness, demo: seed_module.DemoApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.listeners import apilogs as listener

    monkeypatch.setattr(listener, "DEFAULT_TAIL", "2s")
    assert demo.failed is not None
    harness.command("/apilogs", demo.failed.api_request_id)
    lookup_reply = harness.last(ALICE)
    harness.click(lookup_reply, "apilogs:tail")
    parent = tail_message(harness.slack)
    assert demo.api_id in json.dumps(parent.blocks) or "shop-api" in json.dumps(parent.blocks)
    assert "reached its time limit" in thread_of(harness.slack, parent)[-1].text
    # The Insights link's click is acknowledged (no error for the user).
    assert harness.click(lookup_reply, "link:apilogs-insights").status == 200


@pytest.mark.serial  # asserts on the wall clock: run apart from the parallel run
def test_tail_stops_before_the_lambda_time_limit(
    harness: SlackHarness, demo: seed_module.DemoApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.listeners import apilogs as listener
    from bot.listeners.framework import runtime_of

    # 3 s of tail after the margins (the runtime's 5 s, the tail's FINISH_MARGIN_S); in Lambda a tail
    # shorter than MIN_TAIL_S is not started, here it may be, so that the test waits 3 s rather than 6.
    monkeypatch.setattr(listener, "MIN_TAIL_S", 2.0)
    runtime = runtime_of(harness.app)
    runtime.lambda_deadline = time.time() + 5 + listener.FINISH_MARGIN_S + 3
    began = time.monotonic()
    harness.command("/apilogs", "tail --for 10m --mode poll")
    assert time.monotonic() - began < 9
    parent = tail_message(harness.slack)
    assert "reached its time limit" in thread_of(harness.slack, parent)[-1].text
    # The --for asked for was more than the run could last: the answer says it was capped, and to what.
    started = json.dumps(harness.slack.calls_to("chat.postMessage")[0].params["blocks"])
    capped = r"--for 10m is more than one run may last \(the Lambda time limit\): capped to [23]s"
    assert re.search(capped, started)
    assert re.search(capped, json.dumps(harness.slack.find(parent.ts).blocks))  # type: ignore[union-attr]
    assert re.search(r"--for was capped to [23]s", harness.last(ALICE).text)


def test_unknown_api_is_a_sentence(harness: SlackHarness, aws: None) -> None:
    client("apigateway").create_rest_api(name="one")
    harness.command("/apilogs", "9439989f-7543-11e6-8dda-150c09a55dc2 --api nope")
    assert "There is no API `nope`" in harness.last(ALICE).text


def test_a_large_replay_is_spread_over_messages_and_nothing_is_lost_silently(
    harness: SlackHarness, demo: seed_module.DemoApi
) -> None:
    import re

    total = sum(len(r.events) for r in demo.requests)
    harness.command("/apilogs", "tail --since 2h --for 2s --mode poll --raw")  # the line view
    parent = tail_message(harness.slack)
    thread = thread_of(harness.slack, parent)[:-1]  # without the summary
    assert len(thread) >= 3
    shown = 0
    skipped = 0
    dated = 0
    for message in thread:
        for block in message.blocks:
            text = block.get("text", {}).get("text", "") if block["type"] == "section" else ""
            if text.startswith("```"):
                # The time of day, with the date on a message's first line and when the day changes.
                stamps = re.findall(r"^(\d{4}-\d\d-\d\dT)?\d\d:\d\d:\d\d\.\d{3}Z ", text, re.MULTILINE)
                shown += len(stamps)
                dated += sum(1 for date in stamps if date)
            for element in block.get("elements", []):
                found = re.search(r"(\d+) lines were skipped", element.get("text", ""))
                skipped += int(found.group(1)) if found else 0
    # Every line was either posted or counted in a "skipped" note.
    assert shown + skipped == total
    assert 0 < skipped < total
    # Each message's first line carries the date; the replay spans two hours (one day change at most).
    messages_with_lines = sum(
        1 for m in thread if any(b.get("text", {}).get("text", "").startswith("```") for b in m.blocks)
    )
    assert messages_with_lines <= dated <= messages_with_lines * 2


def test_a_refused_upload_is_said_in_the_answer(harness: SlackHarness, demo: seed_module.DemoApi) -> None:
    failed = demo.failed
    assert failed is not None
    start = next(e for e in failed.events if e.message.startswith("START"))
    put_lines(
        start.group,
        start.stream,
        [(start.timestamp, f"debug dump line {i} " + "z" * 120) for i in range(300)],
    )
    harness.slack.fail_next("files.getUploadURLExternal", "not_in_channel")
    harness.command("/apilogs", failed.api_request_id)
    flat = json.dumps(harness.last(ALICE).blocks)
    assert "could not be attached (not_in_channel)" in flat and "attached file" not in flat
    find_button(harness.last(ALICE).blocks, "apilogs:tail")


def test_registering_the_listener_loads_no_core_aws_or_render_module() -> None:
    """Cold start: the ack path of every command pays for what the listener module imports."""
    import subprocess
    import sys

    code = "import json, sys\nimport bot.listeners.apilogs\nprint(json.dumps(sorted(sys.modules)))\n"
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout)
    heavy = [m for m in loaded if m.startswith(("bot.core", "bot.aws", "bot.render", "boto3", "botocore"))]
    assert heavy == []


def test_times_and_ids_typed_without_quotes(harness: SlackHarness, demo: seed_module.DemoApi) -> None:
    """``--since 2h ago`` and a pasted ``x-amzn-RequestId: ID`` header are read as people type them."""
    failed = demo.failed
    assert failed is not None
    lambda_id = failed.lambda_ids["orders-api"]
    ack = harness.command("/apilogs", f"{lambda_id} --since 2h ago --until 1 minute ago")
    assert "Looking up" in ack.text
    assert "KeyError" in json.dumps(harness.last(ALICE).blocks)
    ack = harness.command("/apilogs", f"x-amzn-RequestId: {failed.api_request_id}")
    assert "Looking up" in ack.text
    flat = json.dumps(harness.last(ALICE).blocks)
    assert "POST /orders" in flat and "KeyError" in flat
    harness.command("/apilogs", f"--since=90 minutes ago Request ID: {lambda_id}")
    assert "KeyError" in json.dumps(harness.last(ALICE).blocks)
    # What is not a time or a header still gets a clear answer in the ack, and nothing runs.
    posted = len(harness.slack.calls_to("chat.postMessage"))
    assert "Unexpected `soon`" in harness.command("/apilogs", f"{lambda_id} --since 2h soon").text
    assert "Unexpected `extra`" in harness.command("/apilogs", f"{lambda_id} extra").text
    assert "`hello` is not a request id" in harness.command("/apilogs", f"hello {lambda_id}").text
    assert (
        "Unknown time unit `parsecs`"
        in harness.command("/apilogs", f"{lambda_id} --since 2 parsecs ago").text
    )
    assert "Unexpected `soon`" in harness.command("/apilogs", "tail --since 15m soon").text
    assert len(harness.slack.calls_to("chat.postMessage")) == posted
    # Help shows the arguments as before: one id.
    assert "/apilogs &lt;id&gt; [--api" in harness.command("/apilogs", "help").text


def test_tail_since_typed_without_quotes(harness: SlackHarness, demo: seed_module.DemoApi) -> None:
    put_lines("/aws/lambda/users-api", "2026/11/27/[$LATEST]tail", [(now_ms() - 120_000, "two minutes old")])
    ack = harness.command("/apilogs", "tail --since 3 minutes ago --for 2s --mode poll")
    assert "thread" in ack.text
    parent = tail_message(harness.slack)
    assert any("two minutes old" in json.dumps(m.blocks) for m in thread_of(harness.slack, parent))


def test_stop_after_the_tail_ended_says_so(harness: SlackHarness, demo: seed_module.DemoApi) -> None:
    from dataclasses import replace

    harness.command("/apilogs", "tail --for 2s --mode poll")
    parent = tail_message(harness.slack)
    assert "apilogs:stop" not in json.dumps(parent.blocks)  # the tail ended and took its button away
    # A client that has not redrawn yet still shows the button.
    first_post = harness.slack.calls_to("chat.postMessage")[0]
    stale = replace(parent, blocks=first_post.params["blocks"])
    harness.click(stale, "apilogs:stop")
    answer = harness.last(ALICE).text
    assert "already ended" in answer and "summary is in the thread" in answer
    assert "Stopping" not in answer
    # The summary did not turn into "stopped by": the tail ended on its own.
    thread = thread_of(harness.slack, parent)
    assert "reached its time limit" in thread[-1].text and "U0ALICE" not in thread[-1].text
