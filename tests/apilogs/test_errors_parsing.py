"""The pure half of /apilogs errors: line readers and the fold never raise on arbitrary lines, and
every failing request they are given lands in exactly one group."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.apilogs.errors import fold, parse_access, read_exec_line, read_lambda_error, status_wanted
from bot.core.apilogs.model import ApiStage, LogEvent
from tests.support.properties import examples

STAGE = ApiStage("abc123", "prod", "REST", execution_log_group="exec", access_log_group="access")
FRAGMENTS = [
    "(9439989f-7543-11e6-8dda-150c09a55dc2) ", "Method completed with status: ", "502", "Gateway response type: ",
    "THROTTLED with status code: 429", "Execution failed due to configuration error:", "{", "}", '"status":',
    "<request id=\"x\">", "<status>500</status>", "</request>", ",GET,/orders,HTTP/1.1,", '"GET /a HTTP/1.1" 504 1 ',
    "[ERROR]\t2024-05-01T10:00:00.000Z\t1d4e6a3b-0c84-4d55-9d8f-2a9a8c9b7e6f\t", "Task timed out after 3.00 seconds",
    "Endpoint response body before transformations: ", '{"errorType":', "\x00", "\u202e", "<!ENTITY x>", "\n",
]  # fmt: skip
lines = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=30)), max_size=8).map("".join)


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(lines, max_size=20))
def test_readers_and_fold_never_raise(messages: list[str]) -> None:
    events = [LogEvent("g", "s", 1_000 + i, m, str(i)) for i, m in enumerate(messages)]
    for message in messages:
        parse_access(message)
        read_exec_line(message)
        read_lambda_error(message)
    report = fold(STAGE, events, events, [("fn", e) for e in events], status="all")
    report.to_json()
    assert report.total == sum(g.count for g in report.groups)


@settings(max_examples=examples(150), deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["GET", "POST"]), st.sampled_from(["/a", "/b/{id}"]), st.integers(100, 599)
        ),
        max_size=60,
    )
)
def test_every_failing_request_in_exactly_one_group(requests: list[tuple[str, str, int]]) -> None:
    events = [
        LogEvent("access", "s", 1_000 + i, json.dumps({"requestId": f"r{i}", "httpMethod": m, "resourcePath": p, "status": str(s)}), str(i))
        for i, (m, p, s) in enumerate(requests)
    ]  # fmt: skip
    for wanted in ("5xx", "4xx", "all"):
        report = fold(STAGE, events, [], [], status=wanted)
        listed = [i for g in report.groups for i in g.request_ids]
        expected = [f"r{i}" for i, (_, _, s) in enumerate(requests) if status_wanted(s, wanted)]
        assert sorted(listed) == sorted(expected)
        assert report.requests == (len(requests) or None)
        counts = [g.count for g in report.groups]
        assert counts == sorted(counts, reverse=True)
