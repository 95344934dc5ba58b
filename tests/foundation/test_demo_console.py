"""The demo console behaves like Slack: background work while it reads, dialogs, retired buttons, live
traffic. In-process: the seeded demo stack (embedded AWS on 127.0.0.1, local Slack, the real app) and the
console that types into it."""

from __future__ import annotations

import io
import json
import os
import socket
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from bot.aws import clients
from bot.local.apilogs_traffic import write_events
from bot.local.console import Console
from bot.local.demo import DEMO_CHANNELS, DEMO_PEOPLE, LocalStack, running_tails, start_local_stack
from bot.local.slack_api import Message

_ENV_PREFIXES = ("AWS_", "OPSBOT_", "SLACK_")


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    saved = dict(os.environ)
    demo = start_local_stack(embedded_aws=True, seed=True, live_traffic=True)
    demo.traffic.interval = (0.2, 0.6)  # requests arrive faster than in the demo: the test waits less
    demo.facts["env"] = {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIXES)}
    try:
        yield demo
    finally:
        demo.traffic.stop()
        # The server shares moto's global backends with this process: leave them empty for later tests.
        urllib.request.urlopen(
            urllib.request.Request(f"{demo.aws.endpoint}/moto-api/reset", method="POST")
        ).close()
        demo.stop()
        os.environ.clear()
        os.environ.update(saved)
        clients.clear_caches()


@pytest.fixture
def console(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Console]:
    # Every test starts from a clean environment (tests/conftest.py): point this one at the demo again.
    for key, value in stack.facts["env"].items():
        monkeypatch.setenv(key, value)
    clients.clear_caches()
    typed = Console(
        slack=stack.slack,
        app_url=stack.app_url,
        signing_secret=stack.settings.slack_signing_secret,
        runner=stack.runner,
        people=DEMO_PEOPLE,
        channels=dict(DEMO_CHANNELS),
        out=io.StringIO(),
        wait_seconds=90,
    )
    try:
        yield typed
    finally:
        typed.close()
        stack.slack.listeners.remove(typed._on_slack_event)
        stack.stop_background_work()


def transcript(console: Console) -> str:
    out = console.out
    assert isinstance(out, io.StringIO)
    return out.getvalue()


def button_number(console: Console, text: str, after: int = 0) -> int:
    """The number of the last button labelled ``text`` shown after button ``after``."""
    numbers = [i for i, (b, _, _) in enumerate(console.buttons, 1) if i > after and b.text.startswith(text)]
    assert numbers, (text, [b.text for b, _, _ in console.buttons])
    return numbers[-1]


def thread_of(slack: Any, parent: Message) -> str:
    return "\n".join(
        m.text + json.dumps(m.blocks) for m in slack.visible(parent.channel) if m.thread_ts == parent.ts
    )


@pytest.mark.slow  # the whole demo, seeded in process
@pytest.mark.serial  # asserts on the wall clock: run apart from the parallel run
def test_a_tail_runs_in_the_background_shows_live_traffic_and_stops_on_its_button(
    stack: LocalStack, console: Console
) -> None:
    before = len(console.buttons)
    started = time.monotonic()
    # `&`: the script goes on once the tail has posted its message (the one with Stop).
    console.handle("/apilogs tail --since 1s --for 2m &")
    stop = button_number(console, "Stop", after=before)
    tail_message = console.buttons[stop - 1][1]
    assert stack.runner.running >= 1 and running_tails(stack.slack)
    # The console keeps reading while the tail runs: another command answers at once.
    console.handle("/ops whoami")
    assert "You may run:" in transcript(console).split("/ops whoami", 1)[1]
    assert stack.runner.running >= 1, "the tail ended before it was stopped"
    assert time.monotonic() - started < 60

    # The embedded AWS keeps writing requests into the API's log groups: the tail's thread shows them.
    first_live = len(stack.traffic.requests)

    def live_line_shown() -> bool:
        shown = thread_of(stack.slack, tail_message)
        return any(r.api_request_id in shown for r in stack.traffic.requests[first_live:])

    stack.slack.wait_for(live_line_shown, timeout=60)

    clicked = time.monotonic()
    console.handle(f"click {stop}")
    console.handle("wait")
    assert stack.runner.running == 0
    assert time.monotonic() - clicked < 20, "Stop took too long"
    out = transcript(console)
    assert "Stopping the tail" in out
    assert "stopped with the Stop button" in out and "Ended by @alice" in out
    assert running_tails(stack.slack) == []

    # The tail's message was replaced (it lost its Stop button): its old number is retired.
    sent = console.sent
    console.handle(f"click {stop}")
    assert console.sent == sent
    assert "has since been replaced" in transcript(console).rsplit("clicked", 1)[1]


@pytest.mark.slow  # the whole demo, seeded in process
def test_a_confirmation_dialog_cancel_sends_nothing_confirm_applies_and_old_buttons_retire(
    stack: LocalStack, console: Console
) -> None:
    before = len(console.buttons)
    console.handle("/dns resync corp.example.com")
    apply = button_number(console, "Apply", after=before)
    button, plan_message, _ = console.buttons[apply - 1]
    assert "confirm" in button.element
    revision = plan_message.revision

    sent = console.sent
    console.handle(f"click {apply}")
    dialog = transcript(console).rsplit("clicked", 1)[1]
    assert (
        "Apply to corp.example.com" in dialog
        and "`confirm` (Yes)" in dialog
        and "`cancel` (Cancel)" in dialog
    )
    assert console.sent == sent and console.pending is not None
    # The dialog is modal, as Slack's: nothing else runs until it is answered.
    console.handle("/ops whoami")
    assert "answer `confirm` or `cancel` first" in transcript(console) and console.sent == sent
    console.handle("cancel")
    assert "nothing was sent" in transcript(console)
    assert console.sent == sent and console.pending is None and plan_message.revision == revision

    console.handle(f"click {apply}")
    console.handle("confirm")
    assert console.sent == sent + 1
    assert "Applied" in transcript(console).rsplit("confirmed", 1)[1]
    # Apply replaced the plan message: its buttons are retired, and the new version's are numbered anew.
    assert plan_message.revision > revision
    console.handle(f"click {apply}")
    assert console.sent == sent + 1
    assert f"Button [{apply}] belonged to a message that has since been replaced" in transcript(console)
    console.handle("confirm")
    assert "No dialog is open" in transcript(console)


@pytest.mark.slow  # the whole demo, seeded in process
def test_alarm_fire_posts_the_api_alarm_with_the_demos_failures_grouped(
    stack: LocalStack, console: Console
) -> None:
    before, shown = len(console.buttons), len(transcript(console))
    console.handle("alarm fire shop-api-5xx")
    said = transcript(console)[shown:]
    assert "1 posted" in said and "1 correlated" in said
    [post] = [m for m in stack.slack.visible("C0ALERTS") if m.text.endswith("ALARM: shop-api-5xx")]
    blocks = json.dumps(post.blocks)
    # The seeded hour's failures of every 5xx kind (the live traffic may add more of them).
    for route in ("POST /orders 502", "GET /users 504", "POST /payments 500"):
        assert f"`{route}`" in blocks, route
    assert "KeyError" in blocks and "Integration timeout" in blocks and "configuration error" in blocks
    # Each group has its Look up, numbered in the console like any button.
    assert len([b for b, _, _ in console.buttons[before:] if b.text == "Look up"]) >= 3
    assert stack.facts["apilogs.request_id"] in blocks  # the banner's failed POST /orders


@pytest.mark.slow  # the whole demo, seeded in process
@pytest.mark.serial  # asserts on the wall clock: run apart from the parallel run
def test_wait_and_sleep_take_seconds(console: Console) -> None:
    started = time.monotonic()
    console.handle("sleep 0.2")
    console.handle("wait 1")
    console.handle("wait")
    assert time.monotonic() - started < 5
    console.handle("sleep forever")
    assert "takes a number of seconds" in transcript(console)


def test_a_port_in_use_is_refused_at_once() -> None:
    from bot.local.aws import start_embedded_aws

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        with pytest.raises(OSError):
            start_embedded_aws(port=taken.getsockname()[1])
    assert "AWS_ENDPOINT_URL" not in os.environ


def test_live_traffic_writes_requests_now_in_the_formats_of_the_seeded_hour(aws: None) -> None:
    from datetime import UTC, datetime, timedelta

    from bot.aws.clients import client
    from bot.local.seeds.apilogs import ACCESS_LOG_GROUP, ROUTES, create_api, generate, live_traffic

    api_id, account = create_api()
    demo = generate(api_id, account, datetime.now(UTC) - timedelta(minutes=5), count=10)
    logs = client("logs")
    write_events(logs, (e for r in demo.requests for e in r.events))
    live = live_traffic(demo)
    live.failure_rate = 1.0  # every request fails: the tracebacks are part of the formats
    now_ms = int(time.time() * 1000)
    requests = [live.step() for _ in range(len(ROUTES) * 2)]
    assert {f"{r.method} {r.path}" for r in requests} <= set(ROUTES)
    for request in requests:
        assert now_ms - 5_000 <= request.at_ms <= int(time.time() * 1000)
        assert {ACCESS_LOG_GROUP, f"API-Gateway-Execution-Logs_{api_id}/prod"} <= request.groups()
        # Each is in CloudWatch, found by its id as a tail or a lookup would.
        found = logs.filter_log_events(
            logGroupName=ACCESS_LOG_GROUP, filterPattern=f'"{request.api_request_id}"'
        )["events"]
        assert len(found) == 1 and json.loads(found[0]["message"])["status"] == "502"
    written = [e.message for r in requests for e in r.events]
    assert any(m.startswith("REPORT RequestId:") for m in written)  # text runtimes
    assert any('"type": "platform.report"' in m for m in written)  # the Lambda JSON log format
    assert any("Traceback (most recent call last)" in m for m in written)
    assert any('"correlation_id"' in m for m in written)  # Powertools


def test_the_demo_port_falls_back_when_taken_and_the_banner_names_the_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import errno
    from types import SimpleNamespace

    from bot.errors import ConfigError
    from bot.local import demo

    asked: list[int] = []

    def fake_stack(**kwargs: Any) -> Any:
        asked.append(kwargs["aws_port"])
        if kwargs["aws_port"] != 0:
            raise OSError(errno.EADDRINUSE, "Address already in use")
        aws = SimpleNamespace(port=40123, endpoint="http://127.0.0.1:40123")
        return SimpleNamespace(
            aws=aws, cli_env={"AWS_ENDPOINT_URL": aws.endpoint, "OPSBOT_DNS_ZONES": '[{"a": 1}]'}
        )

    monkeypatch.setattr(demo, "start_local_stack", fake_stack)
    stack, note = demo._start_demo_stack(None, embedded_aws=True, seed=True)
    assert asked == [demo.DEMO_AWS_PORT, 0] and "port 4599 is in use" in note
    banner = "\n".join(demo.cli_banner(stack, note))
    assert 'eval "$(opsbot demo --print-env --aws-port 40123)"' in banner
    assert "export OPSBOT_DNS_ZONES='[{\"a\": 1}]'" in banner and "unset AWS_PROFILE" in banner
    # A port asked for by name is not silently replaced.
    with pytest.raises(ConfigError, match=r"Port 5555 of 127\.0\.0\.1 is in use"):
        demo._start_demo_stack(5555, embedded_aws=True, seed=True)


def test_print_env_without_a_running_demo_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert main(["demo", "--print-env", "--aws-port", str(port)]) == 3
    err = capsys.readouterr().err
    assert f"No opsbot demo is running on 127.0.0.1:{port}" in err and "Start `opsbot demo`" in err


@pytest.mark.slow  # the whole demo, seeded in process
def test_shortcut_and_mention_from_the_console(stack: LocalStack, console: Console) -> None:
    """The README's shortcut and mention can be tried in the demo: a message posted as the person, then the
    shortcut on it or the app_mention event, signed as Slack sends them, through the real app."""
    failed = stack.facts["apilogs.request_id"]
    shown = len(transcript(console))
    console.handle(f"shortcut checkout broke for a customer, request id {failed}")
    said = transcript(console)[shown:]
    assert 'used "Look up request ids"' in said and failed in said
    assert "502" in said and "Share in thread" in said and "Something went wrong" not in said
    shown = len(transcript(console))
    console.handle(f"mention is {failed} the checkout outage?")
    said = transcript(console)[shown:]
    assert f"<@{stack.slack.bot_user_id}> is {failed}" in said
    # The public summary in the thread of the mention, the timeline privately.
    mention = [m for m in stack.slack.visible() if m.user != stack.slack.bot_user_id and failed in m.text][-1]
    replies = [m for m in stack.slack.visible(mention.channel) if m.thread_ts == mention.ts]
    assert replies and any("502" in m.text + json.dumps(m.blocks) for m in replies)
    shown = len(transcript(console))
    console.handle("shortcut")
    assert "Usage: shortcut TEXT" in transcript(console)[shown:]
