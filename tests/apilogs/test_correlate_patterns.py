"""Pure correlation (API side, invocation slices, merge) and client-side filter patterns."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.apilogs.correlate import (
    api_ids_in,
    invocation_slice,
    lambda_ids_in,
    read_api_side,
    sightings,
    summarise_invocation,
)
from bot.core.apilogs.model import LogEvent, merge_events
from bot.core.apilogs.patterns import compile_pattern
from bot.errors import UsageError
from tests.support.events import load_event

EXEC_GROUP = "API-Gateway-Execution-Logs_xyz123abcd/prod"


def exec_events() -> list[LogEvent]:
    sample = load_event("apilogs_execution_failed")
    return [
        LogEvent(EXEC_GROUP, "stream", ts, message, str(index), ts)
        for index, (ts, message) in enumerate(sample["events"])
    ]


def stream_events(
    index: int, *, group: str = "/aws/lambda/f", stream: str = "2024/05/01/[$LATEST]aa"
) -> list[LogEvent]:
    invocation = load_event("apilogs_lambda_formats")["invocations"][index]
    return [
        LogEvent(group, stream, ts, message, f"{index}-{n}", ts)
        for n, (ts, message) in enumerate(invocation["lines"])
    ]


def test_api_side_of_a_failed_request_with_an_authorizer() -> None:
    info = read_api_side(exec_events(), [], "9439989f-7543-11e6-8dda-150c09a55dc2")
    assert (info.method, info.path, info.status, info.integration_latency_ms) == ("GET", "/echo", 502, 25)
    assert info.extended_id == "Vwc2MGFUrPEFV_g="
    assert info.xray_trace_id == "1-57d08a3b-a3491d0a9c8012c191821b83"
    authorizer, integration = info.calls
    assert (authorizer.role, authorizer.function, authorizer.lambda_ids) == ("authorizer", "token-check", [])
    # The authorizer call spans from its start to the "Successfully completed authorizer" line.
    assert (authorizer.start_ms, authorizer.end_ms) == (1473284379144, 1473284379172)
    assert (integration.function, integration.qualifier) == ("echo", "live")
    assert integration.lambda_ids == ["943ad105-7543-11e6-a9ac-65e093327849"]
    assert "Lambda execution failed" in info.error
    assert info.lambda_ids == ["943ad105-7543-11e6-a9ac-65e093327849"]


def test_api_side_ignores_other_requests_and_reads_the_access_log() -> None:
    other = LogEvent(
        EXEC_GROUP,
        "s",
        1473284379150,
        "(11111111-7543-11e6-8dda-150c09a55dc2) Method completed with status: 200",
        "x",
    )
    access = LogEvent(
        "access", "a", 1473284379201,
        load_event("apilogs_access_records")["records"][0]["message"], "a1",
    )  # fmt: skip
    info = read_api_side([*exec_events(), other], [access], "9439989f-7543-11e6-8dda-150c09a55dc2")
    assert info.status == 502 and info.latency_ms == 31
    foreign = read_api_side([], [access], "22222222-7543-11e6-8dda-150c09a55dc2")
    assert foreign.status is None and foreign.loose_lambda_ids == []


def test_access_log_alone_gives_the_lambda_id() -> None:
    record = load_event("apilogs_access_records")["records"][1]["message"]
    info = read_api_side([], [LogEvent("access", "a", 5, record, "1")], "WSg1ihmdliAEJXA=")
    assert info.route == "POST /orders" and info.status == 200
    assert info.loose_lambda_ids == ["4a1b2c3d-1111-4222-8333-944455556666"]


@pytest.mark.parametrize("index", range(4))
def test_invocation_slice_is_start_to_report_with_print_lines(index: int) -> None:
    invocation = load_event("apilogs_lambda_formats")["invocations"][index]
    lambda_id = invocation["lambda_request_id"]
    # Another invocation before and after in the same stream must not leak in.
    before = LogEvent(
        "/aws/lambda/f",
        "2024/05/01/[$LATEST]aa",
        10,
        "START RequestId: 11111111-2222-4333-8444-555555555555 Version: $LATEST",
        "b1",
    )
    before_print = LogEvent("/aws/lambda/f", "2024/05/01/[$LATEST]aa", 11, "earlier print", "b2")
    before_report = LogEvent(
        "/aws/lambda/f",
        "2024/05/01/[$LATEST]aa",
        12,
        "REPORT RequestId: 11111111-2222-4333-8444-555555555555\tDuration: 1 ms",
        "b3",
    )
    after = LogEvent(
        "/aws/lambda/f",
        "2024/05/01/[$LATEST]aa",
        9000,
        "START RequestId: 99999999-2222-4333-8444-555555555555 Version: $LATEST",
        "z1",
    )
    after_print = LogEvent("/aws/lambda/f", "2024/05/01/[$LATEST]aa", 9001, "later print", "z2")
    events = [before, before_print, before_report, *stream_events(index), after, after_print]
    sliced = invocation_slice(events, lambda_id)
    expected = [m for _, m in invocation["lines"]]
    if index != 0:
        assert [e.message for e in sliced] == expected
    else:
        # The cold start's INIT_START and the print() during init come along (only after another REPORT).
        assert [e.message for e in sliced] == expected
        assert sliced[0].message.startswith("INIT_START")
    assert all(e.message not in {"earlier print", "later print"} for e in sliced)


def test_slice_without_report_stops_at_the_next_invocation() -> None:
    events = stream_events(1)[:-2]  # no END/REPORT: e.g. still running
    nxt = LogEvent(
        "/aws/lambda/f",
        "2024/05/01/[$LATEST]aa",
        9000,
        "START RequestId: 99999999-2222-4333-8444-555555555555 Version: $LATEST",
        "z1",
    )
    sliced = invocation_slice([*events, nxt], "943ad105-7543-11e6-a9ac-65e093327849")
    assert sliced[-1].message == events[-1].message and nxt not in sliced


def test_sightings_and_ids() -> None:
    events = stream_events(3)
    [seen] = sightings(events, "c7a1f0de-1111-4a2b-8c3d-444455556666")
    assert (seen.start_ms, seen.end_ms, seen.has_start, seen.has_report) == (4000, 4005, True, True)
    assert set(lambda_ids_in(events)) == {"c7a1f0de-1111-4a2b-8c3d-444455556666"}
    assert api_ids_in(events) == ["d6943dba-ea04-11f1-aabc-49564b047813"]
    summary = summarise_invocation(
        events,
        "c7a1f0de-1111-4a2b-8c3d-444455556666",
        function="inventory-api",
        role="integration",
        matched_by="lambda id",
    )
    assert summary is not None and summary.report is not None and summary.report.billed_ms == 5.0
    assert summary.errors == 0 and not summary.cold_start


def test_merge_orders_across_groups_and_deduplicates_by_event_id() -> None:
    a1 = LogEvent("g1", "s", 100, "a1", "7", ingestion_time=105)
    a1_again = LogEvent("g1", "s", 100, "a1", "7", ingestion_time=105)
    b1 = LogEvent("g2", "s", 100, "b1", "7", ingestion_time=101)  # same event id, other group: distinct
    c1 = LogEvent("g1", "s", 99, "c1", "9", ingestion_time=200)
    tie_late = LogEvent("g1", "s", 100, "tie", "10", ingestion_time=105)
    merged = merge_events([a1, c1], [a1_again, b1, tie_late])
    assert [e.message for e in merged] == ["c1", "b1", "a1", "tie"]


# -- filter patterns ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "message", "expected"),
    [
        ("ERROR", "[ERROR] boom", True),
        ("ERROR", "[INFO] fine", False),
        ('"Task timed out"', "x Task timed out after 3.00 seconds", True),
        ("ERROR Exception", "ERROR: Exception raised", True),
        ("ERROR Exception", "ERROR only", False),
        ("?ERROR ?WARN", "WARN disk", True),
        ("?ERROR ?WARN", "INFO ok", False),
        ("ERROR -Throttling", "ERROR Throttling", False),
        ("ERROR -Throttling", "ERROR other", True),
        ("%user-\\d+%", "hello user-42", True),
        ('{ $.level = "ERROR" }', json.dumps({"level": "ERROR"}), True),
        ('{ $.level = "ERROR" }', json.dumps({"level": "INFO"}), False),
        ('{ $.level = "ERR*" }', json.dumps({"level": "ERROR"}), True),
        ("{ $.latency > 100 && $.status = 200 }", json.dumps({"latency": 150, "status": 200}), True),
        ("{ $.latency > 100 && $.status = 200 }", json.dumps({"latency": 50, "status": 200}), False),
        ('{ ($.a = 1) || ($.b = "x") }', json.dumps({"a": 2, "b": "x"}), True),
        (
            "{ $.record.metrics.durationMs >= 10 }",
            json.dumps({"record": {"metrics": {"durationMs": 10}}}),
            True,
        ),
        ("{ $.missing NOT EXISTS }", json.dumps({"a": 1}), True),
        ("{ $.flag IS TRUE }", json.dumps({"flag": True}), True),
        ("{ $.list[1] = b }", json.dumps({"list": ["a", "b"]}), True),
        ('{ $.level = "ERROR" }', "[ERROR] not json", False),
    ],
)
def test_pattern_semantics(pattern: str, message: str, expected: bool) -> None:
    matcher = compile_pattern(pattern)
    assert matcher.exact and matcher(message) is expected


def test_space_delimited_patterns_are_trusted_to_cloudwatch() -> None:
    matcher = compile_pattern("[ip, user, status=5*]")
    assert not matcher.exact and matcher("anything")


@pytest.mark.parametrize(
    "pattern", ['"unclosed', "{ $.a = ", "{ $.a ~ 1 }", "{ 1 = 1 }", "[a, b", "%(%", "x" * 1025]
)
def test_malformed_patterns_are_usage_errors(pattern: str) -> None:
    with pytest.raises(UsageError):
        compile_pattern(pattern)


@given(st.text(max_size=80), st.text(max_size=80))
def test_patterns_raise_only_usage_errors(pattern: str, message: str) -> None:
    try:
        matcher = compile_pattern(pattern)
    except UsageError:
        return
    assert matcher(message) in {True, False}
