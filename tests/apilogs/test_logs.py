"""The CloudWatch wrapper: one shared limiter, throttling retried, pagination through empty pages."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from botocore.stub import Stubber

from bot.aws import logs as cw
from bot.aws.clients import client
from bot.errors import AwsError
from tests.apilogs.conftest import put_lines


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.lock = threading.Lock()

    def __call__(self) -> float:
        with self.lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += max(0.0, seconds)


def test_limiter_holds_filter_log_events_to_five_a_second() -> None:
    clock = FakeClock()
    limiter = cw.Limiter(clock=clock, sleep=clock.sleep)
    started = clock()
    for _ in range(25):
        with limiter.slot("FilterLogEvents"):
            pass
    # A burst of 5, then one every 0.2 s: 20 more calls need 4 seconds.
    assert clock() - started == pytest.approx(4.0, abs=0.01)


def test_limiter_slows_down_when_throttled_and_recovers() -> None:
    clock = FakeClock()
    limiter = cw.Limiter(clock=clock, sleep=clock.sleep)
    limiter.slowdown("FilterLogEvents")
    assert limiter.current_rate("FilterLogEvents") == pytest.approx(2.5)
    clock.sleep(30)
    with limiter.slot("FilterLogEvents"):
        pass
    assert limiter.current_rate("FilterLogEvents") == pytest.approx(5.0)


def test_limiter_bounds_concurrency() -> None:
    limiter = cw.Limiter({"Op": 1000.0}, concurrency=2)
    active = 0
    peak = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal active, peak
        with limiter.slot("Op"):
            with lock:
                active += 1
                peak = max(peak, active)
            time.sleep(0.02)
            with lock:
                active -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak == 2


def _throttle_every(share: int) -> tuple[Any, dict[str, int]]:
    """A before-call hook answering every ``share``-th FilterLogEvents with ThrottlingException."""
    seen = {"calls": 0, "throttled": 0}

    def hook(**_: Any) -> Any:
        seen["calls"] += 1
        if seen["calls"] % share == 0:
            seen["throttled"] += 1
            error = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
            return (
                type("Http", (), {"status_code": 400, "headers": {}})(),
                {**error, "ResponseMetadata": {}},
            )
        return None

    return hook, seen


def test_throttling_on_a_share_of_calls_loses_nothing(aws: None) -> None:
    base = int(time.time() * 1000) - 600_000
    lines = [(base + i, f"line {i} req-7") for i in range(2500)]
    put_lines("/aws/lambda/busy", "s1", lines[:1200])
    put_lines("/aws/lambda/busy", "s2", lines[1200:])
    hook, seen = _throttle_every(2)
    logs = client("logs")
    logs.meta.events.register("before-call.cloudwatch-logs.FilterLogEvents", hook)
    stats = cw.CallStats()
    try:
        # Small pages so that many calls are made (and half of them throttled).
        original = cw.MAX_PAGE_EVENTS
        cw.MAX_PAGE_EVENTS = 300
        result = cw.filter_events(
            "/aws/lambda/busy", start_ms=base, end_ms=base + 10_000, term="req-7", stats=stats
        )
    finally:
        cw.MAX_PAGE_EVENTS = original
        logs.meta.events.unregister("before-call.cloudwatch-logs.FilterLogEvents", hook)
    assert seen["throttled"] >= 5
    assert stats.throttled == seen["throttled"]
    assert sorted(e.message for e in result.events) == sorted(m for _, m in lines)
    assert len({e.key for e in result.events}) == 2500


def test_throttling_past_the_patience_is_a_sentence(aws: None) -> None:
    put_lines("/aws/lambda/busy", "s1", [(int(time.time() * 1000), "x")])
    hook, _ = _throttle_every(1)
    logs = client("logs")
    logs.meta.events.register("before-call.cloudwatch-logs.FilterLogEvents", hook)
    try:
        with (
            cw.use_limiter(cw.Limiter(retry_delays=(0.01,), patience=0.05)),
            pytest.raises(AwsError) as caught,
        ):
            cw.filter_events("/aws/lambda/busy", start_ms=0, end_ms=2_000_000_000_000, term="x")
    finally:
        logs.meta.events.unregister("before-call.cloudwatch-logs.FilterLogEvents", hook)
    assert "throttling" in str(caught.value) and "FilterLogEvents" in str(caught.value)


def test_pagination_follows_next_token_through_empty_pages() -> None:
    """CloudWatch may answer empty pages while it keeps searching (moto never does): Stubber case."""
    logs = client("logs")
    base = {
        "logGroupName": "/aws/lambda/f",
        "startTime": 1,
        "endTime": 2,
        "limit": 10_000,
        "filterPattern": '"abc"',
    }
    event = {"logStreamName": "s", "timestamp": 1, "message": "has abc", "ingestionTime": 2, "eventId": "1"}
    noise = {"logStreamName": "s", "timestamp": 1, "message": "no match", "ingestionTime": 2, "eventId": "2"}
    with Stubber(logs) as stub:
        stub.add_response("filter_log_events", {"events": [], "nextToken": "t1"}, base)
        stub.add_response("filter_log_events", {"events": [], "nextToken": "t2"}, {**base, "nextToken": "t1"})
        stub.add_response(
            "filter_log_events", {"events": [event, noise], "nextToken": "t3"}, {**base, "nextToken": "t2"}
        )
        stub.add_response("filter_log_events", {"events": []}, {**base, "nextToken": "t3"})
        result = cw.filter_events("/aws/lambda/f", start_ms=1, end_ms=2, term="abc")
        stub.assert_no_pending_responses()
    # The event that does not contain the term is dropped by our own check.
    assert [e.message for e in result.events] == ["has abc"]
    assert result.pages == 4 and not result.missing


def test_missing_group_is_reported_not_raised(aws: None) -> None:
    result = cw.filter_events("/aws/lambda/nope", start_ms=0, end_ms=1, term="x")
    assert result.missing and result.events == []


def test_other_errors_are_translated(aws: None) -> None:
    logs = client("logs")
    with Stubber(logs) as stub:
        stub.add_client_error(
            "filter_log_events",
            service_error_code="AccessDeniedException",
            service_message="User: arn:aws:sts::1:assumed-role/x is not authorized to perform: logs:FilterLogEvents",
        )
        with pytest.raises(AwsError) as caught:
            cw.filter_events("/aws/lambda/f", start_ms=0, end_ms=1, term="x")
    assert "logs:FilterLogEvents" in str(caught.value)


def test_describe_group(aws: None) -> None:
    logs = client("logs")
    logs.create_log_group(logGroupName="/aws/lambda/f")
    logs.create_log_group(logGroupName="/aws/lambda/f-other")
    logs.put_retention_policy(logGroupName="/aws/lambda/f", retentionInDays=14)
    info = cw.describe_group("/aws/lambda/f")
    assert info is not None and info.retention_days == 14 and info.arn.endswith(":log-group:/aws/lambda/f")
    assert cw.describe_group("/aws/lambda/missing") is None


@pytest.mark.serial  # asserts on the wall clock: run apart from the parallel run
def test_throttling_until_the_deadline_returns_what_was_read(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Throttling slows a search; when its retries would pass the caller's deadline the pages already
    read are returned, marked cut short, instead of an error that loses them."""
    base = int(time.time() * 1000) - 600_000
    put_lines("/aws/lambda/busy", "s1", [(base + i, f"line {i} req-7") for i in range(900)])
    monkeypatch.setattr(cw, "MAX_PAGE_EVENTS", 300)
    seen = {"calls": 0}

    def hook(**_: Any) -> Any:
        seen["calls"] += 1
        if seen["calls"] == 1:
            return None  # the first page is answered
        error = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
        return (type("Http", (), {"status_code": 400, "headers": {}})(), {**error, "ResponseMetadata": {}})

    logs = cw.logs_client(bounded=True)  # the client of searches with a deadline
    logs.meta.events.register("before-call.cloudwatch-logs.FilterLogEvents", hook)
    stats = cw.CallStats()
    began = time.monotonic()
    try:
        result = cw.filter_events(
            "/aws/lambda/busy", start_ms=base, end_ms=base + 10_000, term="req-7",
            deadline=time.monotonic() + 0.5, stats=stats,
        )  # fmt: skip
    finally:
        logs.meta.events.unregister("before-call.cloudwatch-logs.FilterLogEvents", hook)
    assert time.monotonic() - began < 5
    assert [e.message for e in result.events] == [f"line {i} req-7" for i in range(300)]
    assert result.truncated and result.deadline_hit and result.throttled
    assert stats.throttled >= 2


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Any:
        yield self.data


@pytest.mark.serial  # asserts on the wall clock: run apart from the parallel run
def test_a_search_with_a_deadline_leaves_the_retrying_to_the_limiter(aws: None) -> None:
    """botocore's adaptive retries (8 attempts) may back off for a minute inside one call, past any
    deadline: with a deadline, botocore tries a call at most twice and the limiter, which checks the
    deadline before each retry, does the rest."""
    from botocore.awsrequest import AWSResponse, HTTPHeaders

    put_lines("/aws/lambda/busy", "s1", [(int(time.time() * 1000), "x")])
    sends = {"n": 0}
    body = b'{"__type": "ThrottlingException", "message": "Rate exceeded"}'

    def throttled(request: Any, **_: Any) -> Any:
        sends["n"] += 1  # one per HTTP attempt, botocore's retries included
        headers = HTTPHeaders()
        headers["x-amzn-ErrorType"] = "ThrottlingException"
        return AWSResponse(request.url, 400, headers, _Body(body))

    logs = cw.logs_client(bounded=True)
    assert logs.meta.config.retries["total_max_attempts"] == cw.BOUNDED_ATTEMPTS == 2
    logs.meta.events.register("before-send.cloudwatch-logs.FilterLogEvents", throttled)
    stats = cw.CallStats()
    began = time.monotonic()
    try:
        result = cw.filter_events(
            "/aws/lambda/busy", start_ms=0, end_ms=2_000_000_000_000, term="x",
            deadline=time.monotonic() + 1.0, stats=stats,
        )  # fmt: skip
    finally:
        logs.meta.events.unregister("before-send.cloudwatch-logs.FilterLogEvents", throttled)
    assert result.throttled and result.deadline_hit and result.events == []
    # Each of the limiter's tries is two HTTP attempts, not eight.
    assert stats.throttled >= 1 and sends["n"] == 2 * stats.throttled
    assert time.monotonic() - began < 6
