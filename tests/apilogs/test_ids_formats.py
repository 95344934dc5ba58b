"""Request-id kinds, the time a UUID v1 encodes, and recognition of every log format."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.aws.logs import quote_term
from bot.core.apilogs.formats import (
    exec_fact,
    is_error,
    parse_access_line,
    parse_function_arn,
    parse_lambda_line,
    split_exec_line,
)
from bot.core.apilogs.ids import IdKind, parse_request_id, uuid1_time
from bot.errors import UsageError
from bot.local.apilogs_traffic import uuid1_at
from tests.support.events import load_event

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_uuid1_time_matches_the_reference_example() -> None:
    moment = uuid1_time("9439989f-7543-11e6-8dda-150c09a55dc2")
    assert moment.isoformat(timespec="milliseconds") == "2016-09-07T21:39:39.144+00:00"


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("9439989f-7543-11e6-8dda-150c09a55dc2", IdKind.API_REQUEST, "9439989f-7543-11e6-8dda-150c09a55dc2"),
        ("x-amzn-RequestId: 9439989F-7543-11E6-8DDA-150C09A55DC2", IdKind.API_REQUEST,
         "9439989f-7543-11e6-8dda-150c09a55dc2"),
        ("0f7d2c1e-4b2a-4c55-9a3f-8f2b3c4d5e6f", IdKind.LAMBDA_REQUEST, "0f7d2c1e-4b2a-4c55-9a3f-8f2b3c4d5e6f"),
        ("Vwc2MGFUrPEFV_g=", IdKind.EXTENDED, "Vwc2MGFUrPEFV_g="),
        ("apigw-requestid: WSg1ihmdliAEJXA=", IdKind.EXTENDED, "WSg1ihmdliAEJXA="),
        ("x-amz-apigw-id=Vwc2MGFUrPEFV_g=", IdKind.EXTENDED, "Vwc2MGFUrPEFV_g="),
        ("`1-5c7674f4-a3491d0a9c8012c191821b83`", IdKind.XRAY, "1-5c7674f4-a3491d0a9c8012c191821b83"),
        ('"{9439989f-7543-11e6-8dda-150c09a55dc2}"', IdKind.API_REQUEST, "9439989f-7543-11e6-8dda-150c09a55dc2"),
    ],
)  # fmt: skip
def test_every_id_kind(text: str, kind: IdKind, value: str) -> None:
    parsed = parse_request_id(text, now=NOW)
    assert (parsed.kind, parsed.value) == (kind, value)


def test_time_carrying_ids() -> None:
    assert parse_request_id("9439989f-7543-11e6-8dda-150c09a55dc2", now=NOW).time == uuid1_time(
        "9439989f-7543-11e6-8dda-150c09a55dc2"
    )
    xray = parse_request_id("1-5c7674f4-a3491d0a9c8012c191821b83", now=NOW)
    assert xray.time == datetime.fromtimestamp(0x5C7674F4, UTC)
    assert parse_request_id("0f7d2c1e-4b2a-4c55-9a3f-8f2b3c4d5e6f", now=NOW).time is None


def test_uuid1_with_an_implausible_time_gets_no_time() -> None:
    # The time field of this v1 UUID lies in 1600: not a request time, so the default window applies.
    parsed = parse_request_id("00000000-0000-1000-8000-000000000000", now=NOW)
    assert parsed.kind == IdKind.API_REQUEST and parsed.time is None


@pytest.mark.parametrize(
    "text",
    [
        "", "   ", "hello", "9439989f-7543-11e6-8dda", "DROP TABLE;", "a" * 200, '"*"',
        # Pattern syntax around or inside an id never reaches CloudWatch.
        '9439989f-7543-11e6-8dda-150c09a55dc2" ?ERROR "x', "9439989f-7543-11e6-8dda-150c09a55dc2 ?ERROR",
        '{ $.requestId = "9439989f-7543-11e6-8dda-150c09a55dc2" }', "Vwc2MGFU rPEFV_g=", 'Vwc2MGFU"rPEFV_g=',
        "-9439989f-7543-11e6-8dda-150c09a55dc2 %.*%",
    ],
)  # fmt: skip
def test_bad_ids_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_request_id(text, now=NOW)
    assert "request id" in str(caught.value)


@given(st.text(max_size=120))
def test_parsing_an_id_raises_only_usage_errors(text: str) -> None:
    try:
        parsed = parse_request_id(text, now=NOW)
    except UsageError:
        return
    # Whatever is accepted is safe to put in a filter pattern: no quotes, spaces or braces.
    assert all(ch.isalnum() or ch in "-_=+/" for ch in parsed.value)


@given(st.text(max_size=60))
def test_quote_term_is_always_one_quoted_term(term: str) -> None:
    pattern = quote_term(term)
    assert pattern.startswith('"') and pattern.endswith('"')
    inner = pattern[1:-1]
    # Every quote inside is escaped, so the term cannot be closed early to add pattern syntax.
    unescaped = inner.replace("\\\\", "").replace('\\"', "")
    assert '"' not in unescaped


# -- execution log --------------------------------------------------------------------------------


def test_execution_log_facts() -> None:
    sample = load_event("apilogs_execution_failed")
    facts = [exec_fact(split_exec_line(message)[1]) for _, message in sample["events"]]
    kinds = [f.kind for f in facts]
    assert kinds.count("endpoint_uri") == 2
    lambda_ids = {f.value for f in facts if f.kind == "lambda_id"}
    assert lambda_ids == {sample["lambda_request_id"]}
    assert {f.extra for f in facts if f.kind == "lambda_id"} == {"headers", "failure", "integration"}
    assert next(f for f in facts if f.kind == "completed").number == 502
    assert next(f for f in facts if f.kind == "method").extra == "/echo"
    assert next(f for f in facts if f.kind == "xray").value == "1-57d08a3b-a3491d0a9c8012c191821b83"
    assert next(f for f in facts if f.kind == "received").number == 25


def test_exec_prefix_split() -> None:
    assert split_exec_line("(9439989F-7543-11e6-8dda-150c09a55dc2) Method completed with status: 200") == (
        "9439989f-7543-11e6-8dda-150c09a55dc2",
        "Method completed with status: 200",
    )
    assert split_exec_line("no prefix here") == (None, "no prefix here")


def test_function_arns_with_qualifiers() -> None:
    assert parse_function_arn("arn:aws:lambda:us-east-1:123456789012:function:echo:live").qualifier == "live"  # type: ignore[union-attr]
    plain = parse_function_arn("arn:aws:lambda:eu-west-1:123456789012:function:echo")
    assert plain is not None and plain.name == "echo" and plain.region == "eu-west-1"
    assert parse_function_arn("arn:aws:s3:::bucket") is None


# -- Lambda lines ---------------------------------------------------------------------------------


@pytest.mark.parametrize("index", range(4))
def test_every_lambda_format(index: int) -> None:
    invocation = load_event("apilogs_lambda_formats")["invocations"][index]
    lambda_id = invocation["lambda_request_id"]
    lines = [parse_lambda_line(message) for _, message in invocation["lines"]]
    assert any(line.kind == "start" and line.request_id == lambda_id for line in lines)
    report = next(line for line in lines if line.kind == "report")
    assert report.request_id == lambda_id and report.report is not None
    assert report.report.duration_ms and report.report.memory_mb
    # Application lines name the invocation; print()/stdout lines name none.
    assert any(line.kind == "app" and line.request_id == lambda_id for line in lines)
    assert any(line.kind == "other" and line.request_id == "" for line in lines)
    mentioned = {api_id for line in lines for api_id in line.api_ids}
    if invocation["api_request_id"]:
        assert invocation["api_request_id"] in mentioned
    else:
        assert not mentioned


def test_report_metrics_text_and_json() -> None:
    formats = load_event("apilogs_lambda_formats")["invocations"]
    text = parse_lambda_line(formats[0]["lines"][-1][1]).report
    assert text is not None
    assert (text.duration_ms, text.billed_ms, text.memory_mb, text.max_memory_mb, text.init_ms, text.status) == (
        9.87, 10.0, 128, 70, 180.2, "error"
    )  # fmt: skip
    json_report = parse_lambda_line(formats[2]["lines"][-1][1]).report
    assert json_report is not None
    assert (json_report.duration_ms, json_report.memory_mb, json_report.init_ms, json_report.status) == (
        9.5, 256, 201.3, "error"
    )  # fmt: skip


def test_timeout_line_names_the_invocation() -> None:
    line = parse_lambda_line(
        "2016-09-07T21:39:39.149Z 943ad105-7543-11e6-a9ac-65e093327849 Task timed out after 3.00 seconds"
    )
    assert line.kind == "timeout" and line.request_id == "943ad105-7543-11e6-a9ac-65e093327849"


def test_errors_are_recognised() -> None:
    formats = load_event("apilogs_lambda_formats")["invocations"]
    python_errors = [m for _, m in formats[0]["lines"] if is_error(m)]
    assert any("Traceback" in m for m in python_errors)
    assert any(m.startswith("REPORT") for m in python_errors)
    assert any("Task timed out" in m for _, m in formats[1]["lines"] if is_error(m))
    assert any('"level":"ERROR"' in m for _, m in formats[2]["lines"] if is_error(m))
    assert not any(is_error(m) for _, m in formats[3]["lines"])
    assert is_error("(9439989f-7543-11e6-8dda-150c09a55dc2) Method completed with status: 502")
    assert not is_error("(9439989f-7543-11e6-8dda-150c09a55dc2) Method completed with status: 200")


def test_execution_log_errors_are_what_api_gateway_says_failed() -> None:
    sample = load_event("apilogs_execution_failed")
    flagged = [split_exec_line(m)[1] for _, m in sample["events"] if is_error(m)]
    assert [text.split(" ", 2)[:2] for text in flagged] == [["Lambda", "execution"], ["Method", "completed"]]
    prefix = "(9439989f-7543-11e6-8dda-150c09a55dc2) "
    assert is_error(prefix + "Lambda invocation failed with status: 429. Lambda request id: x")
    assert is_error(prefix + "Execution failed due to a timeout error")
    assert is_error(prefix + "Endpoint request timed out")
    # Dumps of the function's response repeat its error; they would crowd the real lines out of the
    # five error lines the Slack summary shows.
    assert not is_error(prefix + "Endpoint response headers: {X-Amz-Function-Error=Unhandled}")
    assert not is_error(prefix + 'Endpoint response body before transformations: {"errorType": "KeyError"}')
    # Outside the execution log the same text still counts (a Java runtime's unhandled exception).
    assert is_error('{"errorMessage": "boom", "errorType": "java.lang.RuntimeException"}')


@pytest.mark.parametrize("index", range(3))
def test_access_log_records(index: int) -> None:
    sample = load_event("apilogs_access_records")["records"][index]
    record = parse_access_line(sample["message"])
    assert record is not None
    expect = sample["expect"]
    assert record.request_id == expect["request_id"]
    assert record.integration_id == expect["integration_id"]
    assert (record.status, record.method, record.latency_ms) == (
        expect["status"], expect["method"], expect["latency_ms"]
    )  # fmt: skip


@given(st.text(max_size=300))
def test_line_parsers_never_raise(message: str) -> None:
    parse_lambda_line(message)
    parse_access_line(message)
    exec_fact(split_exec_line(message)[1])
    is_error(message)


def test_generated_request_ids_carry_their_time() -> None:
    recent = NOW - timedelta(minutes=3)
    value = uuid1_at(int(recent.timestamp() * 1000), random.Random(1))
    parsed = parse_request_id(value, now=NOW)
    assert parsed.time is not None and abs((parsed.time - recent).total_seconds()) < 0.01


@pytest.mark.parametrize(
    ("words", "time", "rest"),
    [
        (["2h", "ago", "ID"], "2h ago", ["ID"]),
        (["2", "hours", "ago"], "2 hours ago", []),
        (["1h", "30m", "ago", "--json"], "1h 30m ago", ["--json"]),
        (["1", "hour", "30", "minutes", "ago"], "1 hour 30 minutes ago", []),
        (
            ["90", "minutes", "9439989f-7543-11e6-8dda-150c09a55dc2"],
            "90 minutes",
            ["9439989f-7543-11e6-8dda-150c09a55dc2"],
        ),
        (["2024-05-01", "12:00:00Z", "ID"], "2024-05-01 12:00:00Z", ["ID"]),
        (["2h", "30"], "2h", ["30"]),
        (["2h", "Vwc2MGFUrPEFV_g="], "2h", ["Vwc2MGFUrPEFV_g="]),
        (["2", "parsecs", "ago"], "2 parsecs ago", []),  # one time, so its parser says what is wrong
        (["2h", "--until", "ago"], "2h", ["--until", "ago"]),
        ([], "", []),
    ],
)
def test_time_words(words: list[str], time: str, rest: list[str]) -> None:
    from bot.core.common.timewords import take_time

    assert take_time(words) == (time, rest)


def test_time_flag_values_are_joined_and_ids_freed_of_pasted_headers() -> None:
    from bot.core.apilogs.words import id_from_words
    from bot.core.common.timewords import join_time_values

    tokens = ["ID", "--since", "2h", "ago", "--until=1", "hour", "ago", "--api", "shop"]
    assert join_time_values(tokens) == ["ID", "--since", "2h ago", "--until=1 hour ago", "--api", "shop"]
    assert join_time_values(["--", "--since", "2h", "ago"]) == ["--", "--since", "2h", "ago"]
    assert id_from_words(["x-amzn-RequestId:", "abc"]) == "abc"
    assert id_from_words(["Request", "ID:", "abc"]) == "abc"
    assert id_from_words(["apigw-requestid", "=", "abc"]) == "abc"
    assert id_from_words(["X-Amzn-Trace-Id:", "Root=1-5c7674f4-a3491d0a9c8012c191821b83"]).startswith("Root=")
    with pytest.raises(UsageError, match="Unexpected `ago`"):
        id_from_words(["9439989f-7543-11e6-8dda-150c09a55dc2", "ago"])
    with pytest.raises(UsageError, match="is not a request id"):
        id_from_words(["hello", "9439989f-7543-11e6-8dda-150c09a55dc2"])
