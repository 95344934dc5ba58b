"""The compact timeline: what it keeps and counts (pure), that it never drops an ERROR line (a property),
the lookup's Slack answer compact by default with a Full timeline button that shows everything (signed
requests into the real Bolt app), and the CLI's --full."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.apilogs.compact import compact
from bot.core.apilogs.formats import is_error
from bot.core.apilogs.model import LogEvent
from bot.local.seeds import apilogs as seed_module
from tests.support.properties import examples
from tests.support.slack import ALICE, SlackHarness, find_button

RID = "9439989f-7543-11e6-8dda-150c09a55dc2"
LID = "6f5c4a3b-2d1e-4f0a-9b8c-7d6e5f4a3b2c"
EXEC = "API-Gateway-Execution-Logs_abc/prod"
FN = "/aws/lambda/orders-api"

# Lines as the services write them (REFERENCE.md), errors and not.
EXEC_LINES = [
    "Extended Request Id: Vwc2MGFUrPEFV_g=",
    "Verifying Usage Plan for request: x. API Key:  API Stage: abc/prod",
    "Starting execution for request: x",
    "HTTP Method: POST, Resource Path: /orders",
    "Method request headers: {Accept=application/json}",
    "Endpoint request URI: https://lambda.us-east-1.amazonaws.com/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:orders-api/invocations",
    "Endpoint request headers: {x-amzn-lambda-integration-tag=x}",
    "Received response. Status: 200, Integration latency: 25 ms",
    f"Endpoint response headers: {{x-amzn-RequestId={LID}}}",
    f"Lambda execution failed with status 200 due to customer function error: boom. Lambda request id: {LID}",
    "Execution failed due to a timeout error",
    "Execution failed due to configuration error: Invalid permissions on Lambda function",
    "Method completed with status: 502",
    "Method completed with status: 200",
    f"AWS Integration Endpoint RequestId : {LID}",
    "X-ray Tracing ID : 1-5c7674f4-a3491d0a9c8012c191821b83",
]
LAMBDA_LINES = [
    f"START RequestId: {LID} Version: $LATEST",
    f"END RequestId: {LID}",
    f"REPORT RequestId: {LID}\tDuration: 15.74 ms\tBilled Duration: 16 ms\tMemory Size: 128 MB\tMax Memory Used: 70 MB",
    f"REPORT RequestId: {LID}\tDuration: 3000.00 ms\tStatus: timeout",
    "INIT_START Runtime Version: python:3.12.v38",
    f"[INFO]\t2024-05-01T10:15:30.120Z\t{LID}\tfetched rows",
    f"[ERROR]\t2024-05-01T10:15:30.120Z\t{LID}\tKeyError: 'customer_id'\nTraceback (most recent call last):",
    f"2024-05-01T10:15:30.120Z\t{LID}\tERROR\tInvoke Error",
    f"2024-05-01T10:15:30.120Z {LID} Task timed out after 3.00 seconds",
    '{"level": "ERROR", "message": "db down", "requestId": "' + LID + '"}',
    '{"time": "x", "type": "platform.runtimeDone", "record": {"requestId": "' + LID + '"}}',
    "print output without an id",
    "WARN disk almost full",
]


@st.composite
def timelines(draw: st.DrawFn) -> list[LogEvent]:
    known = st.sampled_from(
        [(EXEC, f"({RID}) {line}") for line in EXEC_LINES] + [(FN, line) for line in LAMBDA_LINES]
    )
    # Any text too, in either group, with or without the execution log's prefix.
    free = st.tuples(
        st.sampled_from([EXEC, FN]),
        st.builds(
            lambda prefix, text: prefix + text, st.sampled_from(["", f"({RID}) "]), st.text(max_size=60)
        ),
    )
    items = draw(st.lists(st.one_of(known, free), max_size=60))
    return [LogEvent(group, "s", 1_000 + n, message, str(n)) for n, (group, message) in enumerate(items)]


@settings(max_examples=examples(300), deadline=None)
@given(timelines())
def test_the_compact_timeline_never_drops_an_error_line(events: list[LogEvent]) -> None:
    result = compact(events)
    kept = {e.event_id for e in result.events}
    assert all(e.event_id in kept for e in events if is_error(e.message))
    assert all(e.event_id in kept for e in events if "ERROR" in e.message or "Traceback" in e.message)
    # What is kept stays in order; what is left out is counted, exactly.
    assert [e.event_id for e in result.events] == [e.event_id for e in events if e.event_id in kept]
    assert len(result.events) + result.dropped == len(events)


def test_what_the_compact_timeline_keeps_and_counts() -> None:
    events = [LogEvent(EXEC, "s", n, f"({RID}) {line}", f"e{n}") for n, line in enumerate(EXEC_LINES)]
    events += [LogEvent(FN, "s", 100 + n, line, f"l{n}") for n, line in enumerate(LAMBDA_LINES)]
    result = compact(events)
    texts = [e.message for e in result.events]
    for wanted in (
        "HTTP Method: POST",
        "Endpoint request URI:",
        "Received response. Status: 200",
        "Method completed with status: 502",
        "Execution failed due to a timeout error",
        "START RequestId",
        "REPORT RequestId",
        "fetched rows",
        "print output without an id",
        "WARN disk",
    ):
        assert any(wanted in t for t in texts), wanted
    for dropped in (
        "Extended Request Id",
        "Endpoint request headers",
        "X-ray Tracing ID",
        "END RequestId",
        "INIT_START",
    ):
        assert not any(dropped in t for t in texts), dropped
    assert result.left_out == {"execution-log": 8, "Lambda platform": 3}
    assert result.note() == "+8 execution-log lines, +3 Lambda platform lines"


def test_the_lookup_answer_is_compact_and_full_timeline_shows_everything(
    harness: SlackHarness, demo: seed_module.DemoApi
) -> None:
    failed = demo.failed
    assert failed is not None
    harness.command("/apilogs", failed.api_request_id)
    compact_answer = harness.last(ALICE)
    flat = json.dumps(compact_answer.blocks)
    assert "KeyError" in flat and "Traceback" in flat and "Method completed with status: 502" in flat
    assert "Endpoint request headers" not in flat and "X-ray Tracing ID" not in flat
    left_out = re.search(r"\+(\d+) execution-log lines", flat)
    assert left_out and int(left_out.group(1)) > 10
    full_button, _ = find_button(compact_answer.blocks, "apilogs:full")
    assert json.loads(full_button["value"])["id"] == failed.api_request_id
    harness.click(compact_answer, "apilogs:full")
    full_answer = harness.slack.find(compact_answer.ts)  # replaced in place
    assert full_answer is not None
    flat_full = json.dumps(full_answer.blocks)
    assert "Endpoint request headers" in flat_full and "X-ray Tracing ID" in flat_full
    assert "KeyError" in flat_full
    with pytest.raises(AssertionError):
        find_button(full_answer.blocks, "apilogs:full")  # nothing left out: no button


def test_the_cli_prints_the_compact_timeline_and_full_with_full(
    demo: seed_module.DemoApi, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    failed = demo.failed
    assert failed is not None
    assert main(["apilogs", failed.api_request_id, "--api-id", demo.api_id]) == 0
    short = capsys.readouterr().out
    assert "Traceback" in short and "Endpoint request headers" not in short
    assert re.search(r"\+\d+ execution-log lines", short) and "--full shows them" in short
    assert main(["apilogs", failed.api_request_id, "--api-id", demo.api_id, "--full"]) == 0
    whole = capsys.readouterr().out
    assert "Endpoint request headers" in whole and "left out" not in whole
    assert main(["apilogs", failed.api_request_id, "--api-id", demo.api_id, "--json"]) == 0
    assert "Endpoint request headers" in capsys.readouterr().out  # --json keeps every line
