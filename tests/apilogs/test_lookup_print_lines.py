"""A function that logs the API Gateway id with a plain ``print()`` (the seed post's technique): the line
names no Lambda request id, so the invocation around it is found in its stream, START to REPORT, and
shown whole; its neighbours in the stream are not."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta

from bot.aws.clients import client
from bot.config import Settings
from bot.core.apilogs.commands import lookup
from bot.core.apilogs.correlate import enclosing_invocation
from bot.core.apilogs.lookup import LookupResult
from bot.core.apilogs.model import LogEvent
from bot.core.common.timeparse import to_epoch_ms
from bot.local.apilogs_traffic import RawEvent, uuid1_at, write_events
from bot.local.seeds import apilogs as seed_module

SETTINGS = Settings.from_env({"AWS_REGION": "us-east-1"})
GROUP = "/aws/lambda/users-api"
STREAM = "2026/11/27/[$LATEST]0123456789abcdef"
REPORT = "REPORT RequestId: {id}\tDuration: 2.00 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 50 MB"


def recent(minutes: int = 10) -> int:
    return to_epoch_ms(datetime.now(UTC) - timedelta(minutes=minutes))


def invocation(
    at: int, lambda_id: str, body: list[tuple[int, str]], *, report: str = REPORT
) -> list[RawEvent]:
    """START, the body lines at their offsets from ``at``, END and REPORT one ms after the last."""
    end = at + (max(offset for offset, _ in body) if body else 0) + 1
    return [
        RawEvent(GROUP, STREAM, at, f"START RequestId: {lambda_id} Version: $LATEST"),
        *(RawEvent(GROUP, STREAM, at + offset, text) for offset, text in body),
        RawEvent(GROUP, STREAM, end, f"END RequestId: {lambda_id}"),
        RawEvent(GROUP, STREAM, end, report.format(id=lambda_id)),
    ]


def keys(events: list[RawEvent]) -> list[tuple[str, str, int, str]]:
    return sorted((e.group, e.stream, e.timestamp, e.message) for e in events)


def found(result: LookupResult) -> list[tuple[str, str, int, str]]:
    return sorted((e.group, e.stream, e.timestamp, e.message) for e in result.events)


def test_a_printed_api_id_brings_the_whole_invocation(aws: None) -> None:
    api_id, _ = seed_module.create_api("us-east-1")  # no execution or access log events are written
    at = recent()
    request_id = uuid1_at(at, random.Random(1))
    ours, before, after = (str(uuid.uuid4()) for _ in range(3))
    mine = invocation(
        at,
        ours,
        [
            (1, f"API Gateway Request ID: {request_id}"),
            (2, "loading the user"),  # another print(): no id at all
            (3, f"[ERROR]\t2026-11-27T04:22:14.681Z\t{ours}\tKeyError: 'user_id'"),
        ],
    )
    # The same environment ran other requests just before and after: same stream, a few ms apart.
    neighbours = invocation(at - 20, before, [(1, "API Gateway Request ID: someone-else")]) + invocation(
        at + 10, after, [(1, "printed by the next request")]
    )
    write_events(client("logs"), neighbours + mine)
    result = lookup(request_id, SETTINGS, api=api_id, stage="prod")
    assert found(result) == keys(mine)
    [summary] = result.invocations
    assert (summary.function, summary.lambda_id, summary.matched_by) == (
        "users-api",
        ours,
        "api id in function log",
    )
    assert summary.report is not None and summary.errors == 1
    assert [e.message for e in result.errors] == [mine[3].message]


def test_a_long_invocation_is_read_outwards_until_its_start_and_report(aws: None) -> None:
    api_id, _ = seed_module.create_api("us-east-1")
    at = recent()
    request_id = uuid1_at(at, random.Random(2))
    ours, earlier = str(uuid.uuid4()), str(uuid.uuid4())
    # START 90 s before the printed id, REPORT 4 minutes after it, lines all along.
    body = [(n * 30_000, f"step {n}") for n in range(1, 12)] + [
        (90_000, f"API Gateway Request ID: {request_id}")
    ]
    mine = invocation(at - 90_000, ours, body)
    noise = invocation(at - 200_000, earlier, [(n, f"earlier line {n}") for n in range(1, 50)])
    write_events(client("logs"), noise + mine)
    result = lookup(request_id, SETTINGS, api=api_id, stage="prod")
    assert found(result) == keys(mine)
    [summary] = result.invocations
    assert summary.lambda_id == ours
    reads = [s for s in result.searches if s.purpose.endswith("(invocation around a line without its id)")]
    assert reads and all(s.stream == STREAM for s in reads)
    # Growing spans: far fewer lines read than the 15 minutes each way it may take.
    assert sum(s.found for s in reads) < 100


def test_init_output_of_a_cold_start_comes_with_the_invocation(aws: None) -> None:
    api_id, _ = seed_module.create_api("us-east-1")
    at = recent()
    request_id = uuid1_at(at, random.Random(3))
    ours = str(uuid.uuid4())
    report = REPORT + "\tInit Duration: 2500.00 ms"
    init = [
        RawEvent(GROUP, STREAM, at - 3_000, "INIT_START Runtime Version: python:3.12.v30"),
        RawEvent(GROUP, STREAM, at - 2_990, "connecting to the database"),
    ]
    mine = init + invocation(at, ours, [(1, f"API Gateway Request ID: {request_id}")], report=report)
    write_events(client("logs"), mine)
    result = lookup(request_id, SETTINGS, api=api_id, stage="prod")
    assert found(result) == keys(mine)
    [summary] = result.invocations
    assert summary.cold_start


def test_lambda_json_format_platform_records_bracket_the_print(aws: None) -> None:
    api_id, _ = seed_module.create_api("us-east-1")
    at = recent()
    request_id = uuid1_at(at, random.Random(4))
    ours = str(uuid.uuid4())
    platform = [
        RawEvent(GROUP, STREAM, at, json.dumps({"type": "platform.start", "record": {"requestId": ours}})),
        RawEvent(GROUP, STREAM, at + 1, f"API Gateway Request ID: {request_id}"),
        RawEvent(
            GROUP,
            STREAM,
            at + 2,
            json.dumps(
                {
                    "type": "platform.report",
                    "record": {"requestId": ours, "metrics": {"durationMs": 1.5, "billedDurationMs": 2}},
                }
            ),
        ),
    ]
    write_events(client("logs"), platform)
    result = lookup(request_id, SETTINGS, api=api_id, stage="prod")
    assert found(result) == keys(platform)
    assert [i.lambda_id for i in result.invocations] == [ours]


def test_a_line_between_invocations_is_not_given_to_a_neighbour(aws: None) -> None:
    api_id, _ = seed_module.create_api("us-east-1")
    at = recent()
    request_id = uuid1_at(at, random.Random(5))
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    stray = RawEvent(GROUP, STREAM, at + 5, f"API Gateway Request ID: {request_id} (background thread)")
    events = [*invocation(at, first, [(1, "one")]), stray, *invocation(at + 10, second, [(1, "two")])]
    write_events(client("logs"), events)
    result = lookup(request_id, SETTINGS, api=api_id, stage="prod")
    assert found(result) == keys([stray])
    assert result.invocations == []


def test_a_lambda_id_printed_by_its_caller_is_not_placed(aws: None) -> None:
    """Searching by a Lambda id, a line that merely mentions it (a caller logging its callee's id) does
    not make the caller's invocation part of the answer."""
    api_id, _ = seed_module.create_api("us-east-1")
    at = recent()
    callee, caller = str(uuid.uuid4()), str(uuid.uuid4())
    calling = invocation(at, caller, [(1, f"invoked the worker: {callee}")])
    write_events(client("logs"), calling)
    result = lookup(callee, SETTINGS, api=api_id, stage="prod", since="1h")
    assert result.invocations == []
    assert found(result) == keys([calling[1]])


def test_enclosing_invocation_uses_the_stream_order_at_equal_times() -> None:
    """START, the print and REPORT in one millisecond, the previous REPORT too: CloudWatch's event order
    decides."""
    lines = [
        LogEvent("g", "s", 5, "REPORT RequestId: aaaaaaaa-0000-4000-8000-000000000000\tDuration: 1 ms", "1"),
        LogEvent("g", "s", 5, "START RequestId: bbbbbbbb-0000-4000-8000-000000000000 Version: 1", "2"),
        LogEvent("g", "s", 5, "API Gateway Request ID: x", "3"),
        LogEvent("g", "s", 5, "REPORT RequestId: bbbbbbbb-0000-4000-8000-000000000000\tDuration: 1 ms", "4"),
    ]
    where = enclosing_invocation(lines, lines[2])
    assert (where.lambda_id, where.first, where.last) == ("bbbbbbbb-0000-4000-8000-000000000000", 1, 3)
    # Interleaved invocations (START of one, REPORT of another around the line): not placed.
    mixed = [lines[1], lines[2], LogEvent("g", "s", 6, lines[0].message, "5")]
    assert enclosing_invocation(mixed, lines[2]).conflict
