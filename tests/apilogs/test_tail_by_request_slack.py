"""Tail by request in Slack and in the terminal: entries in the thread, a failing one expanded with Look
up (clicked through signed requests into the real Bolt app), edited in place when its Lambda lines arrive
late, --errors, --raw; the CLI's entries, late lines and --json."""

from __future__ import annotations

import json
import threading
import time

import pytest

from bot.aws.clients import client
from bot.local.apilogs_traffic import SimRequest, write_events
from bot.local.seeds import apilogs as seed_module
from bot.local.slack_api import Message
from tests.apilogs.test_listener import start_command, tail_message, thread_of
from tests.support.slack import ALICE, OPS_CHANNEL, SlackHarness, find_button

pytestmark = pytest.mark.waits  # tails that run for their --for: collected first (tests/conftest.py)


def dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def latest_tail(harness: SlackHarness) -> Message:
    tail_message(harness.slack)
    tops = [
        m
        for m in harness.slack.visible(OPS_CHANNEL[0])
        if m.kind == "message" and not m.thread_ts and "Tail" in dumps(m.blocks)
    ]
    return tops[-1]


def now_ms() -> int:
    return int(time.time() * 1000)


def test_a_failing_request_is_one_entry_edited_as_its_late_lambda_lines_arrive_and_looked_up(
    harness: SlackHarness, demo: seed_module.DemoApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.core.apilogs import tail_requests

    monkeypatch.setattr(tail_requests, "GRACE_MS", 500)  # shown before its Lambda lines come
    assert demo.traffic is not None
    request = demo.traffic.request(now_ms() - 1_500, "POST /orders", fail=True)
    api_groups = {f"API-Gateway-Execution-Logs_{demo.api_id}/prod", seed_module.ACCESS_LOG_GROUP}
    write_events(client("logs"), [e for e in request.events if e.group in api_groups])
    start_command(harness, "tail --for 6s --mode poll")
    parent = tail_message(harness.slack)

    def holding() -> object:
        return next(
            (m for m in thread_of(harness.slack, parent) if request.api_request_id in dumps(m.blocks)),
            None,
        )

    first = harness.slack.wait_for(holding, timeout=10)
    flat = dumps(first.blocks)
    assert "POST /orders → 502" in flat and "Lambda execution failed" in flat
    assert "Traceback" not in flat  # the function's lines are not in yet
    # The Lambda lines arrive late: the same thread message is edited, not a new one posted.
    write_events(client("logs"), [e for e in request.events if e.group not in api_groups])
    harness.wait()
    updated = harness.slack.find(first.ts)
    assert updated is not None
    flat = dumps(updated.blocks)
    assert "Traceback" in flat and "λ orders-api" in flat
    assert [m for m in thread_of(harness.slack, parent) if request.api_request_id in dumps(m.blocks)] == [
        updated
    ]
    assert any(
        request.api_request_id in dumps(c.params.get("blocks")) for c in harness.slack.calls_to("chat.update")
    )
    # Look up on the entry: the lookup's answer, for the one who clicked.
    button, _ = find_button(updated.blocks, "apilogs:lookup")
    assert json.loads(button["value"])["id"] == request.api_request_id
    harness.click(updated, "apilogs:lookup")
    answer = dumps(harness.last(ALICE).blocks)
    assert "POST /orders → 502" in answer and "KeyError" in answer and "apilogs:full" in answer


def _failing(request: SimRequest) -> bool:
    """What --errors shows: a 4xx or 5xx, or an error line (a function's ERROR behind a 200)."""
    return request.status >= 400 or any(
        "ERROR" in e.message or "Task timed out" in e.message for e in request.events
    )


def test_errors_shows_only_failing_requests_and_raw_every_line(
    harness: SlackHarness, demo: seed_module.DemoApi
) -> None:
    assert demo.failed is not None
    harness.command("/apilogs", "tail --since 2h --for 2s --mode poll --errors")
    parent = tail_message(harness.slack)
    thread = thread_of(harness.slack, parent)
    flat = dumps([m.blocks for m in thread[:-1]])
    assert demo.failed.api_request_id in flat
    ok = [r for r in demo.requests if not _failing(r)]
    assert ok and not any(r.api_request_id in flat for r in ok)
    assert all(r.api_request_id in flat for r in demo.requests if _failing(r))
    assert "failing requests shown" in dumps(thread[-1].blocks)
    # Without --errors, every request is an entry, the successful ones folded (no lines shown).
    harness.command("/apilogs", "tail --since 2h --for 3s --mode poll")
    parent = latest_tail(harness)
    flat = dumps([m.blocks for m in thread_of(harness.slack, parent)])
    assert ok[-1].api_request_id in flat and "Lambda lines folded" in flat
    assert "Usage" not in harness.command("/apilogs", "tail --raw --for 1s --mode poll").text


def test_the_cli_tail_prints_entries_and_json_requests(
    demo: seed_module.DemoApi, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    assert demo.failed is not None
    # One poll round reads the whole look-back (the tail checks its end only between rounds): 1 s will do.
    args = ["apilogs", "tail", "--api-id", demo.api_id, "--since", "2h", "--for", "1s", "--mode", "poll"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "❌ POST /orders → 502" in out and demo.failed.api_request_id in out
    assert out.count(f"START RequestId: {demo.failed.lambda_ids['orders-api']}") == 1
    assert main([*args, "--errors", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    failing = {r.api_request_id for r in demo.requests if _failing(r)}
    assert {r["requestId"] for r in document["requests"]} == failing
    [failed] = [r for r in document["requests"] if r["requestId"] == demo.failed.api_request_id]
    assert failed["status"] == 502 and failed["function"] == "orders-api" and failed["failed"]
    assert len(failed["events"]) == len(demo.failed.events)
    assert main([*args, "--raw"]) == 0
    raw = capsys.readouterr().out
    assert raw.startswith("TIME") and "→ 502" not in raw
    assert main([*args, "--raw", "--errors"]) == 2
    capsys.readouterr()
    assert main([*args, "--path", "/orders", "--json"]) == 0
    kept = json.loads(capsys.readouterr().out)["requests"]
    assert kept and {r["path"] for r in kept} == {"/orders"}
    assert {r["requestId"] for r in kept} == {r.api_request_id for r in demo.requests if r.path == "/orders"}
    assert main([*args, "--path", "/orders", "--raw"]) == 2


def test_the_cli_prints_late_lines_under_a_reference_to_their_request(
    demo: seed_module.DemoApi, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.cli import main
    from bot.core.apilogs import tail, tail_requests

    monkeypatch.setattr(tail_requests, "GRACE_MS", 300)
    # A poll round a second (the demo's groups would pace rounds 3.2 s apart at the quota's share), so that
    # the entry is printed in an early round and its Lambda lines, written at 2 s, come in a later one.
    monkeypatch.setattr(tail, "POLL_RATE", 10.0)
    assert demo.traffic is not None
    request = demo.traffic.request(now_ms() - 1_500, "GET /users")
    api_groups = {f"API-Gateway-Execution-Logs_{demo.api_id}/prod", seed_module.ACCESS_LOG_GROUP}
    write_events(client("logs"), [e for e in request.events if e.group in api_groups])
    late = threading.Timer(
        2.0, write_events, args=(client("logs"), [e for e in request.events if e.group not in api_groups])
    )
    late.start()
    try:
        assert main(["apilogs", "tail", "--api-id", demo.api_id, "--for", "5s", "--mode", "poll"]) == 0
    finally:
        late.join()
    out = capsys.readouterr().out
    assert "GET /users → 200" in out
    assert f"↳ later lines of {request.api_request_id}" in out
    # Each line once: the START of its invocation printed once, under the late heading.
    lambda_id = request.lambda_ids["users-api"]
    assert out.count(f"START RequestId: {lambda_id}") == 1


def test_path_keeps_the_requests_to_that_path_with_their_lambda_lines(
    harness: SlackHarness, demo: seed_module.DemoApi
) -> None:
    """--path (and Tail this path) filters requests, not lines: the requests to the path come with every
    line of theirs, the functions' included, and requests to other paths are left out."""
    assert demo.failed is not None and demo.failed.path == "/orders"
    harness.command("/apilogs", "tail --since 2h --for 2s --mode poll --path /orders")
    parent = tail_message(harness.slack)
    assert "requests to" in parent.text or "requests to" in dumps(parent.blocks)
    flat = dumps([m.blocks for m in thread_of(harness.slack, parent)])
    # The failing POST /orders is there with its Lambda lines (the stack trace), not only API Gateway's.
    assert demo.failed.api_request_id in flat and "Traceback" in flat
    others = [r for r in demo.requests if r.path != "/orders"]
    assert others and not any(r.api_request_id in flat for r in others)
    assert "--raw" in harness.command("/apilogs", "tail --raw --path /orders").text
    assert "resource path" in harness.command("/apilogs", "tail --path orders").text
