"""Tail by request: the folding of a tail's lines into one entry per request (pure), and through the real
tail against moto and CloudWatch's paging: interleaved requests across three functions, late Lambda
lines, failures expanded, nothing missed or shown twice."""

from __future__ import annotations

import threading
import time
from collections import Counter

from bot.aws.clients import client
from bot.core.apilogs.model import LogEvent
from bot.core.apilogs.tail import Tail
from bot.core.apilogs.tail_requests import RequestEntry, RequestFolder
from bot.local.apilogs_traffic import FunctionSpec, RawEvent, SimRequest, Traffic, write_events
from bot.local.cloudwatch_paging import CloudWatchPaging

API_ID = "abc123defg"
EXEC = f"API-Gateway-Execution-Logs_{API_ID}/prod"
ACCESS = "/aws/apigateway/shop-access"
FUNCTIONS = (
    FunctionSpec("orders-api", "python"),
    FunctionSpec("users-api", "node"),
    FunctionSpec("payments-api", "json"),
)
ROUTES = {"POST /orders": "orders-api", "GET /users": "users-api", "POST /payments": "payments-api"}


def traffic(seed: int = 3) -> Traffic:
    return Traffic(
        api_id=API_ID, stage="prod", functions=FUNCTIONS, routes=ROUTES, access_log_group=ACCESS, seed=seed
    )


def interleaved(start_ms: int, count: int = 12) -> list[SimRequest]:
    """Requests 15 ms apart across the three functions (each lasts longer: they overlap), two failing."""
    gen = traffic()
    routes = list(ROUTES)
    return [
        gen.request(start_ms + 15 * n, routes[n % 3], fail=n in {4, 8}, duration_ms=60 + 7 * n)
        for n in range(count)
    ]


def folder(grace_ms: int = 8_000) -> RequestFolder:
    return RequestFolder(
        api_groups=[EXEC],
        access_group=ACCESS,
        functions={f.group: f.name for f in FUNCTIONS},
        grace_ms=grace_ms,
    )


def as_events(raw: list[RawEvent]) -> list[LogEvent]:
    return [
        LogEvent(e.group, e.stream, e.timestamp, e.message, f"{e.group}:{e.stream}:{n}", e.timestamp)
        for n, e in enumerate(raw)
    ]


def check_grouping(entries: dict[str, RequestEntry], requests: list[SimRequest]) -> None:
    """Every request is one entry holding exactly its lines; every line is in one entry."""
    by_request = {e.api_request_id: e for e in entries.values()}
    assert set(by_request) == {r.api_request_id for r in requests}
    for request in requests:
        entry = by_request[request.api_request_id]
        assert Counter(e.message for e in entry.events) == Counter(e.message for e in request.events)
        assert entry.method == request.method and entry.path == request.path
        assert entry.status == request.status
        function = ROUTES[f"{request.method} {request.path}"]
        assert entry.function == function
        assert entry.lambda_ids == [request.lambda_ids[function]]
        assert entry.duration_ms is not None and entry.latency_ms is not None
        assert entry.failed == (request.status >= 500)
    total = sum(len(e.events) for e in entries.values())
    assert total == sum(len(r.events) for r in requests)


def test_interleaved_requests_with_late_lambda_lines_are_grouped_within_the_grace_period() -> None:
    requests = interleaved(1_800_000_000_000)
    events = as_events([e for r in requests for e in r.events])
    api = [e for e in events if e.group in {EXEC, ACCESS}]
    lambda_lines = [e for e in events if e.group not in {EXEC, ACCESS}]
    fold = folder()
    fold.add(api, now_ms=0)
    # API Gateway has said everything, but the Lambda lines it names are not in: nothing shown yet.
    assert fold.ready(1_000) == []
    # The Lambda lines come 3 s later, a function at a time, the last function's first (a stream's own
    # lines come in their order: Lambda delivers them so, and a poll reads each group forwards).
    shown: list[RequestEntry] = []
    for n, spec in enumerate(reversed(FUNCTIONS)):
        fold.add([e for e in lambda_lines if e.group == spec.group], now_ms=3_000 + 200 * n)
        ready = fold.ready(3_000 + 200 * n)
        # A request is complete, and shown, once its function's lines are in: before the grace period.
        assert {e.function for e in ready} == {spec.name}
        assert [e.first_ms for e in ready] == sorted(e.first_ms for e in ready)
        shown.extend(ready)
    assert len(shown) == len({e.key for e in shown}) == len(requests)
    check_grouping(fold.entries, requests)
    assert fold.ready(60_000) == [] and fold.drain() == []


def test_lines_after_the_grace_period_update_the_entry_shown() -> None:
    requests = interleaved(1_800_000_000_000, count=6)
    events = as_events([e for r in requests for e in r.events])
    api = [e for e in events if e.group in {EXEC, ACCESS}]
    lambda_lines = [e for e in events if e.group not in {EXEC, ACCESS}]
    fold = folder(grace_ms=2_000)
    fold.add(api, now_ms=0)
    assert fold.ready(1_999) == []
    first = fold.ready(2_000)  # the grace period is over: shown without their functions' lines
    assert len(first) == 6 and all(e.duration_ms is None for e in first)
    assert all(e.function for e in first)  # named by the execution log's endpoint URI already
    fold.add(lambda_lines, now_ms=9_000)
    again = fold.ready(9_000)
    assert {e.key for e in again} == {e.key for e in first}  # the same entries, updated
    check_grouping(fold.entries, requests)


def test_an_invocation_waits_for_its_api_lines_then_joins_its_request() -> None:
    [request] = interleaved(1_800_000_000_000, count=1)
    events = as_events(request.events)
    fold = folder()
    fold.add([e for e in events if e.group not in {EXEC, ACCESS}], now_ms=0)
    assert fold.ready(7_999) == []  # held: its API lines may still come
    fold.add([e for e in events if e.group in {EXEC, ACCESS}], now_ms=8_500)
    [entry] = fold.ready(8_500)
    check_grouping(fold.entries, [request])
    assert entry.kind == "request"


def test_print_lines_and_a_cold_start_belong_to_their_invocation_and_strays_stand_alone() -> None:
    [request] = interleaved(1_800_000_000_000, count=1)
    events = as_events(request.events)
    lambda_group = FUNCTIONS[0].group
    stream = next(e.stream for e in events if e.group == lambda_group)
    stray = LogEvent(
        lambda_group, "2026/01/01/[$LATEST]other", events[0].timestamp, "a line of no request", "x"
    )
    fold = folder()
    fold.add([*events, stray], now_ms=0)
    [entry] = fold.ready(0)
    # A line no invocation of its stream claims waits the grace period (its START may be late), then
    # stands alone.
    assert fold.ready(7_999) == []
    [line] = fold.ready(8_000)
    assert line.kind == "line" and line.events == [stray]
    assert any(e.message.startswith("INIT_START") and e.stream == stream for e in entry.events)
    assert any(e.message.startswith("fetched ") for e in entry.events)  # a print() line, no id


def test_a_function_error_behind_a_200_is_a_failing_entry() -> None:
    gen = traffic()
    request = gen.request(1_800_000_000_000, "GET /users")
    lambda_id = request.lambda_ids["users-api"]
    report = next(e for e in request.events if e.message.startswith("REPORT"))
    error = RawEvent(
        report.group,
        report.stream,
        report.timestamp - 1,
        f"2026-01-01T00:00:00.000Z\t{lambda_id}\tERROR\tdb down",
    )
    fold = folder()
    fold.add(as_events([*request.events, error]), now_ms=0)
    [entry] = fold.ready(0)
    assert entry.status == 200 and entry.failed and entry.errors == 1


def write_lines(events: list[RawEvent]) -> None:
    write_events(client("logs"), events)


def test_tail_by_request_through_moto_and_cloudwatch_paging(
    aws: None, cloudwatch: CloudWatchPaging | None
) -> None:
    """The real polling tail feeding the folder: the API Gateway lines are written first, the Lambda lines
    of the same requests a poll or two later, as CloudWatch delivers them; three functions interleaved."""
    start = int(time.time() * 1000) - 2_000
    requests = interleaved(start, count=9)
    api = [e for r in requests for e in r.events if e.group in {EXEC, ACCESS}]
    late = [e for r in requests for e in r.events if e.group not in {EXEC, ACCESS}]
    logs = client("logs")
    for group in [EXEC, ACCESS, *(f.group for f in FUNCTIONS)]:
        logs.create_log_group(logGroupName=group)
    write_lines(api)
    tail = Tail(
        [EXEC, ACCESS, *(f.group for f in FUNCTIONS)], start_ms=start - 1_000, mode="poll", interval=0.1
    )
    tail.poll_rate = 100.0
    fold = folder(grace_ms=5_000)
    shown: dict[str, int] = Counter()
    written = threading.Event()
    batches = tail.batches()
    began = time.monotonic()
    for batch in batches:
        now = int((time.monotonic() - began) * 1000)
        fold.add(batch.events, now)
        for entry in fold.ready(now):
            shown[entry.key] += 1
        if batch.events and not written.is_set():
            write_lines(late)  # the Lambda lines arrive after API Gateway's were read
            written.set()
        if written.is_set() and sum(len(e.events) for e in fold.entries.values()) == sum(
            len(r.events) for r in requests
        ):
            break
        assert time.monotonic() - began < 15
    batches.close()
    for entry in fold.drain():
        shown[entry.key] += 1
    check_grouping(fold.entries, requests)
    # Each shown once: all arrived before the grace period, so none needed an update.
    assert set(shown) == {r.api_request_id for r in requests} and set(shown.values()) == {1}
