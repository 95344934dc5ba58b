"""The account-wide FilterLogEvents budget: start times reserved in the state table (moto DynamoDB)."""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from typing import Any

import pytest

from bot.aws import logs as cw
from bot.aws.clients import client
from bot.aws.state import RateLog, StateTable, schedule_starts
from tests.apilogs.conftest import put_lines


def most_in_window(times: list[float] | list[int], window: float) -> int:
    """The largest number of ``times`` within any span shorter than ``window`` (a sliding window)."""
    ordered = sorted(times)
    best = 0
    first = 0
    for last, moment in enumerate(ordered):
        while moment - ordered[first] >= window:
            first += 1
        best = max(best, last - first + 1)
    return best


def test_schedule_is_a_burst_then_one_window_after_the_fifth_before() -> None:
    assert schedule_starts([], 7, limit=5, window_ms=1100, now_ms=0) == [0, 0, 0, 0, 0, 1100, 1100]
    # What other containers reserved counts: two of the five are taken.
    assert schedule_starts([900, 950, 990], 3, limit=5, window_ms=1100, now_ms=1000) == [1000, 1000, 2000]
    # Long past starts do not hold anyone back.
    assert schedule_starts([0, 1, 2, 3, 4], 2, limit=5, window_ms=1100, now_ms=5000) == [5000, 5000]


def test_schedule_never_puts_more_than_the_limit_in_a_window() -> None:
    rng = random.Random(7)
    log: list[int] = []
    now = 0
    for _ in range(300):
        now += rng.randrange(0, 400)
        log += schedule_starts(log, rng.randrange(1, 6), limit=5, window_ms=1100, now_ms=now)
    assert most_in_window(log, 1100) == 5


def test_a_stale_guess_costs_one_more_request_and_the_window_holds(state_table: str) -> None:
    ours, theirs = StateTable(state_table), StateTable(state_table)
    first = ours.reserve_starts("FilterLogEvents", 3, limit=5, window_ms=1100, now_ms=10_000)
    assert (first.starts, first.requests) == ([10_000] * 3, 1)
    # Another container wrote in between: its refused write tells it the current log, no read needed.
    other = theirs.reserve_starts("FilterLogEvents", 4, limit=5, window_ms=1100, now_ms=10_050)
    assert other.requests == 2 and other.starts == [10_050, 10_050, 11_100, 11_100]
    again = ours.reserve_starts("FilterLogEvents", 2, limit=5, window_ms=1100, now_ms=10_100, guess=first.log)
    assert again.requests == 2 and again.contended == [2]
    assert again.starts == [11_100, 11_150]
    # Unchallenged, the guess is right: one request.
    last = ours.reserve_starts("FilterLogEvents", 1, limit=5, window_ms=1100, now_ms=10_200, guess=again.log)
    assert last.requests == 1 and last.starts == [11_150]  # 10_050, its fifth before, + 1_100
    everything = first.starts + other.starts + again.starts + last.starts
    assert most_in_window(everything, 1100) == 5


def test_two_containers_contend_and_stay_within_five_a_second(
    state_table: str, atomic_dynamodb: None
) -> None:
    """Two "containers" (each its own limiter, budget and threads) call at once; every call's start is
    recorded: no second holds more than five, and the reservations came in batches."""
    margin = 0.1
    starts: list[float] = []
    lock = threading.Lock()
    containers = [
        cw.Limiter(shared=cw.SharedBudget(StateTable(state_table), margin=margin, gather=0.02))
        for _ in range(2)
    ]
    barrier = threading.Barrier(6)

    def work(limiter: cw.Limiter) -> None:
        barrier.wait()
        for _ in range(2):
            with limiter.slot("FilterLogEvents"), lock:
                starts.append(time.time())

    threads = [threading.Thread(target=work, args=(c,)) for c in containers for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(starts) == 12
    # Twelve calls at five a (1 + margin)-second window need two more windows after the first burst.
    assert max(starts) - min(starts) >= 2 * (1 + margin) - 0.05
    assert most_in_window(starts, 1.0) <= 5
    budgets = [c.shared for c in containers if c.shared is not None]
    assert sum(b.stats.granted for b in budgets) == 12
    assert sum(b.stats.fallbacks for b in budgets) == 0
    # Threads that wait together reserve together: fewer reservations than calls. A reservation costs a
    # second request only when the other container wrote since its last one.
    reservations = sum(b.stats.reservations for b in budgets)
    assert reservations < 12
    assert reservations <= sum(b.stats.requests for b in budgets) <= 3 * reservations


def test_without_a_table_configured_the_limiter_is_the_process_own() -> None:
    """The CLI and ``opsbot serve`` never call share_budget: no DynamoDB request is made."""
    limiter = cw.Limiter()
    assert limiter.shared is None
    began = time.monotonic()
    for _ in range(5):
        with limiter.slot("FilterLogEvents"):
            pass
    assert time.monotonic() - began < 0.1  # the local burst, nothing else in the way


def _refuse(code: str) -> Any:
    def hook(**_: Any) -> Any:
        error = {"Error": {"Code": code, "Message": "User is not authorized to perform: dynamodb:PutItem"}}
        return type("Http", (), {"status_code": 400, "headers": {}})(), {**error, "ResponseMetadata": {}}

    return hook


def test_dynamodb_refusing_falls_back_to_the_local_limiter_with_a_note(
    state_table: str, caplog: pytest.LogCaptureFixture
) -> None:
    put_lines("/aws/lambda/svc", "s1", [(int(time.time() * 1000) - 1000, "hello req-1")])
    budget_client = cw._budget_client()
    refusals = {"count": 0}
    refuse = _refuse("AccessDeniedException")

    def counted(**kwargs: Any) -> Any:
        refusals["count"] += 1
        return refuse(**kwargs)

    budget_client.meta.events.register("before-call.dynamodb.PutItem", counted)
    budget = cw.SharedBudget(StateTable(state_table), retry_after=60.0)
    limiter = cw.Limiter({"FilterLogEvents": 1000.0}, shared=budget)
    now_ms = int(time.time() * 1000)
    with cw.use_limiter(limiter), caplog.at_level(logging.WARNING, logger="bot.aws.logs"):
        for _ in range(3):
            result = cw.filter_events(
                "/aws/lambda/svc", start_ms=now_ms - 60_000, end_ms=now_ms, term="req-1"
            )
            assert [e.message for e in result.events] == ["hello req-1"]
    # One refusal, then this container's own limiter until retry_after: no request per call.
    assert refusals["count"] == 1 and budget.stats.fallbacks == 1
    notes = [r.getMessage() for r in caplog.records if "paced by this container alone" in r.getMessage()]
    assert len(notes) == 1 and "opsbot-state" in notes[0] and "dynamodb:PutItem" in notes[0]


def test_a_missing_table_falls_back_too(aws: None, caplog: pytest.LogCaptureFixture) -> None:
    budget = cw.SharedBudget(StateTable("no-such-table"))
    limiter = cw.Limiter(shared=budget)
    with caplog.at_level(logging.WARNING, logger="bot.aws.logs"), limiter.slot("FilterLogEvents"):
        pass
    assert budget.stats.fallbacks == 1 and not budget.available
    assert any("no-such-table" in r.getMessage() for r in caplog.records)


def test_the_budget_is_asked_again_after_the_pause(state_table: str) -> None:
    wall = [time.time()]
    budget = cw.SharedBudget(
        StateTable(state_table), retry_after=60.0, gather=0, wall=lambda: wall[0], sleep=lambda s: None
    )
    hook = _refuse("ProvisionedThroughputExceededException")
    cw._budget_client().meta.events.register("before-call.dynamodb.PutItem", hook)
    budget.wait_turn("FilterLogEvents", 5)
    assert budget.stats.fallbacks == 1
    cw._budget_client().meta.events.unregister("before-call.dynamodb.PutItem", hook)
    wall[0] += 30
    budget.wait_turn("FilterLogEvents", 5)
    assert budget.stats.reservations == 0  # still paused
    wall[0] += 31
    budget.wait_turn("FilterLogEvents", 5)
    assert budget.stats.reservations == 1 and budget.stats.fallbacks == 1


def test_a_start_passed_by_more_than_the_grace_is_not_used(state_table: str) -> None:
    """A caller that wakes too late (a busy machine) would crowd the next window: it takes another start."""
    wall = [time.time()]
    oversleep = [0.5]

    def sleep(seconds: float) -> None:
        wall[0] += seconds + oversleep[0]
        oversleep[0] = 0.0

    budget = cw.SharedBudget(StateTable(state_table), gather=0, wall=lambda: wall[0], sleep=sleep)
    for _ in range(5):  # the burst: starts at once, no sleep
        budget.wait_turn("FilterLogEvents", 5)
    budget.wait_turn("FilterLogEvents", 5)  # sleeps to its start, oversleeps, takes the next one
    assert budget.stats.stale == 1 and budget.stats.reservations == 7
    stored = StateTable(state_table).get("rate#FilterLogEvents", "log")
    assert stored is not None and len(stored["starts"]) == 5


def test_throttling_still_slows_the_container_down(state_table: str) -> None:
    """The shared budget does not replace the reaction to ThrottlingException (other tools share the
    account): the call is retried and the local rate halved."""
    put_lines("/aws/lambda/svc", "s1", [(int(time.time() * 1000) - 1000, "hello req-2")])
    seen = {"calls": 0}

    def throttle_first(**_: Any) -> Any:
        seen["calls"] += 1
        if seen["calls"] == 1:
            error = {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}
            return type("Http", (), {"status_code": 400, "headers": {}})(), {**error, "ResponseMetadata": {}}
        return None

    client("logs").meta.events.register("before-call.cloudwatch-logs.FilterLogEvents", throttle_first)
    budget = cw.SharedBudget(StateTable(state_table))
    limiter = cw.Limiter(retry_delays=(0.01,), shared=budget)
    now_ms = int(time.time() * 1000)
    with cw.use_limiter(limiter):
        result = cw.filter_events("/aws/lambda/svc", start_ms=now_ms - 60_000, end_ms=now_ms, term="req-2")
    assert [e.message for e in result.events] == ["hello req-2"]
    assert limiter.current_rate("FilterLogEvents") < 5.0
    assert budget.stats.granted == 2 and budget.stats.fallbacks == 0


# -- an item holding starts far ahead, a deadline before the start, waiting without the slot ------------


def _put_log(table: str, starts: list[int]) -> None:
    from bot.aws.dynamo import to_item

    client("dynamodb").put_item(
        TableName=table,
        Item=to_item({"pk": "rate#FilterLogEvents", "sk": "log", "starts": starts, "v": 1}),
    )


def test_a_future_item_is_reset_from_now_not_slept_for(
    state_table: str, caplog: pytest.LogCaptureFixture
) -> None:
    """One container's clock an hour ahead (or a hand edit) left starts an hour in the future: scheduling
    after them would put every lookup of the account to sleep for an hour, and each write would carry
    them forward. The item is overwritten from now, and the container says so once."""
    now_ms = int(time.time() * 1000)
    _put_log(state_table, [now_ms + 3_600_000] * 5)
    slept: list[float] = []
    budget = cw.SharedBudget(StateTable(state_table), sleep=slept.append, gather=0)
    with caplog.at_level(logging.WARNING, logger="bot.aws.logs"):
        budget.wait_turn("FilterLogEvents", 5)
        _put_log(state_table, [now_ms + 3_600_000] * 5)  # written again (the fast clock is still there)
        budget.reset()  # forget our guess: the next write meets the item as it is now
        budget.wait_turn("FilterLogEvents", 5)
    assert max(slept, default=0.0) < 1.0
    assert budget.stats.resets == 2 and budget.stats.granted == 2 and budget.stats.skipped == 0
    stored = StateTable(state_table).get("rate#FilterLogEvents", "log")
    assert stored is not None and max(stored["starts"]) < now_ms + 60_000
    notes = [r.getMessage() for r in caplog.records if "it was reset from now" in r.getMessage()]
    # An hour ahead of the clock when it was read: seconds pass between the write and the read.
    ahead = re.search(r"up to (\d+) s ahead", notes[0]) if len(notes) == 1 else None
    assert ahead and 3_590 <= int(ahead.group(1)) <= 3_600 and "opsbot-state" in notes[0], notes


def test_a_queue_within_the_horizon_is_kept() -> None:
    """A real queue a few seconds deep is the schedule, not corruption: the next start goes after it."""
    table = StateTable("unused")
    written: list[dict[str, Any]] = []

    class Recorder:
        def put_item(self, **kwargs: Any) -> None:
            written.append(kwargs)

    queue = (10_000 + 4_000, 10_000 + 4_000, 10_000 + 4_000, 10_000 + 4_000, 10_000 + 4_000)
    reservation = table.reserve_starts(
        "FilterLogEvents",
        1,
        limit=5,
        window_ms=1100,
        now_ms=10_000,
        guess=RateLog(queue, 3),
        max_ahead_ms=10_000,
        dynamodb=Recorder(),
    )
    assert reservation.starts == [15_100] and reservation.discarded is None
    far = table.reserve_starts(
        "FilterLogEvents",
        1,
        limit=5,
        window_ms=1100,
        now_ms=10_000,
        guess=RateLog((10_000 + 20_001,), 3),
        max_ahead_ms=10_000,
        dynamodb=Recorder(),
    )
    assert far.starts == [10_000] and far.discarded == 30_001 and far.log.starts == (10_000,)
    assert len(written) == 2 and all(w["ConditionExpression"] == "v = :v" for w in written)


@pytest.mark.serial  # compares reserved starts with the wall clock: a loaded machine shifts them
def test_a_start_past_the_deadline_is_not_waited_for(
    state_table: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Five starts reserved 8 s ahead (a deep queue, within the 10 s horizon): a call with 0.5 s left does
    not sleep past its deadline; it goes at once under the container's own limiter, and says so once."""
    now_ms = int(time.time() * 1000)
    _put_log(state_table, [now_ms + 8_000] * 5)
    slept: list[float] = []
    budget = cw.SharedBudget(StateTable(state_table), sleep=slept.append, gather=0)
    with caplog.at_level(logging.WARNING, logger="bot.aws.logs"):
        budget.wait_turn("FilterLogEvents", 5, within=0.5)
        budget.wait_turn("FilterLogEvents", 5, within=0.5)
    assert slept == [] and budget.stats.skipped == 2 and budget.stats.granted == 0
    notes = [r.getMessage() for r in caplog.records if "without waiting for its start" in r.getMessage()]
    assert len(notes) == 1
    # Without a deadline the wait is bounded too: 5 s at most, never the whole queue.
    budget.wait_turn("FilterLogEvents", 5)
    assert slept == [] and budget.stats.skipped == 3
    # A start within reach is waited for, as before.
    near = cw.SharedBudget(StateTable(state_table), sleep=slept.append, gather=0)
    _put_log(state_table, [int(time.time() * 1000) - 500] * 5)
    near.wait_turn("FilterLogEvents", 5, within=2.0)
    assert len(slept) == 1 and 0.3 < slept[0] <= 2.0 and near.stats.granted == 1


@pytest.mark.serial
def test_a_lookup_with_a_deadline_ends_on_time_whatever_the_item_holds(state_table: str) -> None:
    """filter_events with 1.5 s left and an item booked 4 s ahead: the answer comes within the deadline,
    complete (moto does not throttle the call that went without its start)."""
    put_lines("/aws/lambda/svc", "s1", [(int(time.time() * 1000) - 1000, "hello req-3")])
    now_ms = int(time.time() * 1000)
    _put_log(state_table, [now_ms + 4_000] * 5)
    budget = cw.SharedBudget(StateTable(state_table))
    limiter = cw.Limiter(shared=budget)
    began = time.monotonic()
    with cw.use_limiter(limiter):
        result = cw.filter_events(
            "/aws/lambda/svc",
            start_ms=now_ms - 60_000,
            end_ms=now_ms,
            term="req-3",
            deadline=began + 1.5,
        )
    assert time.monotonic() - began < 1.5
    assert [e.message for e in result.events] == ["hello req-3"] and not result.deadline_hit
    assert budget.stats.skipped == 1


@pytest.mark.serial
def test_waiting_for_a_start_does_not_hold_the_concurrency_slot(state_table: str) -> None:
    """A FilterLogEvents call waiting ~1 s for its start leaves the container's only slot to a
    DescribeLogGroups call, which goes at once."""
    now_ms = int(time.time() * 1000)
    _put_log(state_table, [now_ms] * 5)  # the next start is one window (1.1 s) away
    limiter = cw.Limiter(concurrency=1, shared=cw.SharedBudget(StateTable(state_table), gather=0))
    entered: dict[str, float] = {}
    began = time.monotonic()

    def filter_call() -> None:
        with limiter.slot("FilterLogEvents"):
            entered["FilterLogEvents"] = time.monotonic() - began

    waiting = threading.Thread(target=filter_call)
    waiting.start()
    time.sleep(0.2)  # the filter call has reserved its start and sleeps
    with limiter.slot("DescribeLogGroups"):
        entered["DescribeLogGroups"] = time.monotonic() - began
    waiting.join()
    assert entered["DescribeLogGroups"] < 0.6
    assert 0.8 < entered["FilterLogEvents"] < 2.0
    assert limiter.shared is not None and limiter.shared.stats.granted == 1
