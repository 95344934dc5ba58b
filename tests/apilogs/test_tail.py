"""Tail: polling while a writer appends (nothing missed, nothing twice, new streams picked up), stop
flag, time limit, filter patterns re-checked, Live Tail's event stream and its fallback to polling."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from bot.aws.clients import client
from bot.aws.state import StateTable
from bot.config import Settings
from bot.core.apilogs.commands import plan_tail, stop_flag_key
from bot.core.apilogs.model import LogEvent
from bot.core.apilogs.tail import Tail, TailBatch
from bot.errors import UsageError
from bot.local.cloudwatch_paging import CloudWatchPaging
from tests.apilogs.conftest import FilterCalls, put_lines

GROUPS = ["/aws/lambda/a", "/aws/lambda/b"]


def now_ms() -> int:
    return int(time.time() * 1000)


def make_groups() -> None:
    logs = client("logs")
    for group in GROUPS:
        logs.create_log_group(logGroupName=group)


def collect(tail: Tail, until: Callable[[list[LogEvent]], bool], *, timeout: float = 15.0) -> list[TailBatch]:
    batches: list[TailBatch] = []
    seen: list[LogEvent] = []
    began = time.monotonic()
    generator = tail.batches()
    for batch in generator:
        batches.append(batch)
        seen.extend(batch.events)
        if until(seen) or time.monotonic() - began > timeout:
            break
    generator.close()
    return batches


def test_polling_while_a_writer_appends(aws: None, cloudwatch: CloudWatchPaging | None) -> None:
    make_groups()
    start = now_ms()
    put_lines(GROUPS[0], "old", [(start - 120_000, "before the tail started")])
    written: list[str] = []
    done = threading.Event()

    def writer() -> None:
        for index in range(30):
            stamp = now_ms()
            group = GROUPS[index % 2]
            # A new stream appears half-way; some events arrive late (stamped 4 s in the past).
            stream = "s1" if index < 15 else "s2-new"
            late = index % 7 == 3
            message = f"event {index}{' late' if late else ''}"
            put_lines(group, stream, [(stamp - 4_000 if late else stamp, message)])
            written.append(message)
            time.sleep(0.03)
        done.set()

    # The tail looks 10 s back (as plan_tail does), so events stamped before it started are due too.
    tail = Tail(GROUPS, start_ms=start - 10_000, mode="poll", interval=0.1, overlap_ms=10_000)
    thread = threading.Thread(target=writer)
    thread.start()
    batches = collect(tail, lambda seen: done.is_set() and len(seen) >= 30)
    thread.join()
    messages = [e.message for b in batches for e in b.events]
    assert sorted(messages) == sorted(written)  # every event once; the pre-start one not at all
    assert len(messages) == len(set(messages))
    assert {e.stream for b in batches for e in b.events} == {"s1", "s2-new"}
    assert all(b.mode == "poll" for b in batches)
    # Within a batch, time order across groups.
    for batch in batches:
        assert [e.timestamp for e in batch.events] == sorted(e.timestamp for e in batch.events)


@pytest.mark.serial  # asserts on the wall clock: run apart from the parallel run
def test_stop_flag_from_the_state_table(state_table: str) -> None:
    make_groups()
    state = StateTable(state_table)
    began = time.monotonic()
    pressed: list[float] = []

    def should_stop() -> bool:
        if not pressed and time.monotonic() - began > 0.3:  # the Stop button is pressed during the tail
            state.set_flag(stop_flag_key("t1"), {"by": "U1"}, ttl_seconds=600)
            pressed.append(time.monotonic())
        return state.get_flag(stop_flag_key("t1")) is not None

    # Two groups at 0.5 calls a second make a poll round every 4 s: the flag is still seen within an
    # interval (0.05 s), not only when the round is over. The margin allows for a slow machine.
    tail = Tail(GROUPS, mode="poll", interval=0.05, should_stop=should_stop)
    tail.poll_rate = 0.5
    batches = list(tail.batches())
    assert tail.summary.stop_reason == "stopped"
    assert batches and pressed and time.monotonic() - pressed[0] < 1.5


@pytest.mark.serial  # asserts on the wall clock: run apart from the parallel run
def test_deadline_ends_the_tail(aws: None) -> None:
    make_groups()
    began = time.monotonic()
    tail = Tail(GROUPS, mode="poll", interval=0.1, deadline=time.monotonic() + 0.5)
    list(tail.batches())
    assert 0.4 <= time.monotonic() - began < 2.0
    assert tail.summary.stop_reason == "time limit"


def test_filter_pattern_is_rechecked_on_our_side(aws: None, cloudwatch: CloudWatchPaging | None) -> None:
    make_groups()
    start = now_ms()
    put_lines(
        GROUPS[0], "s", [(start + 1, "[ERROR] boom"), (start + 2, "[INFO] fine"), (start + 3, "WARN disk")]
    )
    tail = Tail(GROUPS, pattern="?ERROR ?WARN", start_ms=start, mode="poll", interval=0.05)
    batches = collect(tail, lambda seen: len(seen) >= 2, timeout=2)
    assert sorted(e.message for b in batches for e in b.events) == ["WARN disk", "[ERROR] boom"]


def test_missing_group_is_noted_and_picked_up_later(aws: None, cloudwatch: CloudWatchPaging | None) -> None:
    client("logs").create_log_group(logGroupName=GROUPS[0])
    start = now_ms()
    tail = Tail(GROUPS, start_ms=start, mode="poll", interval=0.05)
    tail.missing_recheck_s = 0.2
    generator = tail.batches()
    next(generator)
    assert any(GROUPS[1] in note for note in tail.summary.notes)
    put_lines(GROUPS[1], "s", [(start + 5, "first line of a new function")])
    messages: list[str] = []
    for batch in generator:
        messages.extend(e.message for e in batch.events)
        if messages:
            break
    generator.close()
    assert messages == ["first line of a new function"]


def test_live_tail_stream_then_polling_without_repeats(
    aws: None, cloudwatch: CloudWatchPaging | None
) -> None:
    """Live Tail through moto's implementation of the event stream (botocore decodes the real
    vnd.amazon.eventstream encoding). moto answers with one update and closes the session, which
    real CloudWatch does only after hours: the tail must go on by polling without repeating lines."""
    make_groups()
    start = now_ms()
    put_lines(GROUPS[0], "s", [(start + 1, "one"), (start + 2, "two")])
    put_lines(GROUPS[1], "s", [(start + 3, "three")])
    arns = {
        g: client("logs").describe_log_groups(logGroupNamePrefix=g)["logGroups"][0]["logGroupArn"]
        for g in GROUPS
    }
    tail = Tail(GROUPS, start_ms=start, mode="live", interval=0.1, group_arn=arns.__getitem__)
    generator = tail.batches()
    messages: list[str] = []
    modes: set[str] = set()
    appended = False
    for batch in generator:
        messages.extend(e.message for e in batch.events)
        modes.add(batch.mode)
        if "poll" in modes and not appended:
            put_lines(GROUPS[1], "s", [(now_ms(), "four")])
            appended = True
        if "four" in messages:
            break
    generator.close()
    assert sorted(messages) == ["four", "one", "three", "two"]
    assert {"live", "poll"} <= modes
    assert tail.summary.mode == "live+poll"
    assert any("Live Tail stopped" in note for note in tail.summary.notes)
    assert tail.summary.stats.calls.get("StartLiveTail") == 1


def test_live_tail_unavailable_falls_back_cleanly(aws: None) -> None:
    make_groups()

    def no_arn(group: str) -> str:
        from bot.errors import AwsError

        raise AwsError("opsbot is missing the IAM permission `logs:DescribeLogGroups`.", code="AccessDenied")

    tail = Tail(GROUPS, mode="live", interval=0.05, group_arn=no_arn, deadline=time.monotonic() + 0.3)
    batches = list(tail.batches())
    assert batches and all(b.mode == "poll" for b in batches)
    assert any("Live Tail unavailable" in note for note in tail.summary.notes)


def test_auto_mode_polls_against_an_emulator_endpoint(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.aws import clients

    make_groups()
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:5999")
    clients.clear_caches()
    tail = Tail(GROUPS, mode="auto", group_arn=lambda g: g)
    assert not tail._wanted_live()


def test_plan_tail_covers_every_group_of_the_api(aws: None) -> None:
    from bot.local.seeds import apilogs as seed_module

    api_id, _ = seed_module.create_api("us-east-1")
    plan = plan_tail(Settings.from_env({"AWS_REGION": "us-east-1"}), api=api_id, duration="2m", mode="poll")
    assert plan.stage.stage == "prod"
    assert set(plan.groups) == {
        f"API-Gateway-Execution-Logs_{api_id}/prod",
        seed_module.ACCESS_LOG_GROUP,
        "/aws/lambda/orders-api",
        "/aws/lambda/users-api",
        "/aws/lambda/payments-api",
        "/aws/lambda/inventory-api",
        "/aws/lambda/shop-authorizer",
    }
    assert plan.duration_s == 120 and plan.tail.deadline is not None
    with pytest.raises(UsageError):
        plan_tail(Settings.from_env({"AWS_REGION": "us-east-1"}), api=api_id, duration="forever")
    with pytest.raises(UsageError):
        plan_tail(Settings.from_env({"AWS_REGION": "us-east-1"}), api=api_id, pattern='"unclosed')


def test_live_tail_events_of_the_documented_shape() -> None:
    """StartLiveTail's stream items as documented: sessionStart, sessionUpdate (sessionMetadata.sampled,
    sessionResults with logGroupIdentifier ARNs), SessionTimeoutException."""
    arn = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/a"
    tail = Tail(GROUPS, pattern="ERROR", mode="live", group_arn=lambda g: g)
    arns = {arn: GROUPS[0]}
    result = {"logStreamName": "s", "logGroupIdentifier": arn, "timestamp": 5, "ingestionTime": 6}
    update = {
        "sessionUpdate": {
            "sessionMetadata": {"sampled": True},
            "sessionResults": [
                {**result, "message": "[ERROR] boom"},
                {**result, "message": "[INFO] filtered out on our side"},
                {**result, "message": "[ERROR] boom"},  # the same event again: shown once
            ],
        }
    }
    assert tail._live_events({"sessionStart": {"sessionId": "x"}}, arns) == []
    events = tail._live_events(update, arns)
    assert [(e.group, e.message) for e in events] == [(GROUPS[0], "[ERROR] boom")]
    assert any("sampled" in note for note in tail.summary.notes)
    tail._live_events({"SessionTimeoutException": {"message": "Session timed out after 3 hours"}}, arns)
    assert any("3 hours" in note for note in tail.summary.notes)


def test_a_long_live_tail_remembers_only_the_overlap(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Live Tail session may last hours: the lines it showed are forgotten once polling (after the
    session) would not read them again, and none is shown twice."""
    from bot.core.apilogs import tail as tail_module

    arn = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/a"
    clock = {"ms": 1_800_000_000_000}
    consumed = threading.Semaphore(1)

    def updates(group_arns: list[str], **_: object) -> Iterator[dict[str, object]]:
        for update in range(12):
            consumed.acquire(timeout=5)  # one update per batch, however slow the machine
            clock["ms"] += 20_000  # 20 s of logs an update: the overlap (30 s) passes quickly
            result = {"logStreamName": "s", "logGroupIdentifier": arn, "ingestionTime": clock["ms"]}
            yield {
                "sessionUpdate": {
                    "sessionResults": [
                        {**result, "timestamp": clock["ms"] - n, "message": f"line {update}-{n}"}
                        for n in range(10)
                    ]
                }
            }

    monkeypatch.setattr(tail_module.cw, "start_live_tail", updates)
    tail = Tail(
        ["/aws/lambda/a"],
        mode="live",
        interval=0.02,
        group_arn=lambda g: arn,
        wall_ms=lambda: clock["ms"],
        deadline=time.monotonic() + 20,
    )
    shown: list[str] = []
    remembered: list[int] = []
    generator = tail.batches()
    for batch in generator:
        shown.extend(e.message for e in batch.events)
        remembered.append(len(tail._seen))
        if batch.events:
            consumed.release()
        if len(shown) >= 120:
            break
    generator.close()
    assert len(shown) == len(set(shown)) == 120
    # The 30 s overlap is two updates (20 lines, plus the batch just shown): a bounded set, not every
    # one of the 120 lines.
    assert max(remembered) <= 30


def test_a_missing_group_does_not_keep_every_line_in_memory(
    aws: None, cloudwatch: CloudWatchPaging | None
) -> None:
    client("logs").create_log_group(logGroupName=GROUPS[0])  # GROUPS[1] never appears
    start = now_ms()
    written = 0

    def write_some(seen: list[LogEvent]) -> bool:
        nonlocal written
        if written < 40:
            put_lines(GROUPS[0], "s", [(now_ms(), f"event {written + n}") for n in range(4)])
            written += 4
        return len(seen) >= 40

    tail = Tail(GROUPS, start_ms=start, mode="poll", interval=0.05, overlap_ms=100)
    tail.poll_rate = 100.0  # a poll every interval: the test need not wait for the real pace
    batches = collect(tail, write_some, timeout=10)
    assert sum(len(b.events) for b in batches) == 40
    # Only the lines of the last look-back are remembered (not all 40).
    assert len(tail._seen) < 20


def test_polling_leaves_most_of_the_account_quota_to_others(
    aws: None, cloudwatch: CloudWatchPaging | None
) -> None:
    groups = [f"/aws/lambda/f{n}" for n in range(6)]
    for group in groups:
        client("logs").create_log_group(logGroupName=group)
    # A clock that moves only when the tail sleeps: ten seconds of polling, however slow the machine.
    clock = {"now": 0.0}

    def sleep(seconds: float) -> None:
        clock["now"] += seconds

    tail = Tail(groups, mode="poll", interval=0.05, deadline=10.0, clock=lambda: clock["now"], sleep=sleep)
    tail.poll_rate = 6.0  # calls a second (2.5 in real use): six groups make a round every second
    list(tail.batches())
    calls = tail.summary.stats.calls["FilterLogEvents"]
    # Rounds every 0.05 s (the interval) would make 1,200 calls; the rate allows 60, plus the last
    # round's. With CloudWatch's paging a group's poll may take several calls (empty pages): the pace
    # counts those too, not one call per group.
    last_round = 6 * (1 + (cloudwatch.max_empty_run if cloudwatch else 0))
    assert 6 <= calls <= tail.poll_rate * 10.0 + last_round, calls


def _live_result(arn: str, event: dict[str, object]) -> dict[str, object]:
    return {
        "logGroupIdentifier": arn,
        "logStreamName": event["logStreamName"],
        "timestamp": event["timestamp"],
        "ingestionTime": event["ingestionTime"],
        "message": event["message"],
    }


@pytest.mark.parametrize("session_start_first", [True, False])
def test_live_tail_shows_the_look_back_once_before_new_lines(
    aws: None, cloudwatch: CloudWatchPaging | None, monkeypatch: pytest.MonkeyPatch, session_start_first: bool
) -> None:
    """Real Live Tail streams only events that arrive after the session started (moto replays the
    group instead): the look-back (--since) is read once with FilterLogEvents and shown first, in time
    order across groups; a line that both return (it arrived as the session opened) is shown once."""
    from bot.core.apilogs import tail as tail_module

    make_groups()
    start = now_ms() - 60_000
    put_lines(
        GROUPS[0],
        "s",
        [(start - 5_000, "before the look-back"), (start + 1_000, "h1"), (start + 3_000, "h3")],
    )
    put_lines(GROUPS[1], "s", [(start + 2_000, "h2"), (start + 4_000, "both")])
    arns = {g: f"arn:aws:logs:us-east-1:123456789012:log-group:{g}" for g in GROUPS}
    stored = client("logs").filter_log_events(logGroupName=GROUPS[1], filterPattern='"both"')["events"]
    both = _live_result(arns[GROUPS[1]], stored[0])
    new = {"logStreamName": "s2", "timestamp": now_ms(), "ingestionTime": now_ms(), "message": "new"}
    ended = threading.Event()

    def live_only_new(group_arns: list[str], **_: object) -> Iterator[dict[str, object]]:
        assert sorted(group_arns) == sorted(arns.values())
        if session_start_first:
            yield {"sessionStart": {"sessionId": "x"}}
        yield {"sessionUpdate": {"sessionResults": [both]}}
        yield {"sessionUpdate": {"sessionResults": [_live_result(arns[GROUPS[0]], new)]}}
        ended.wait(10)  # the session stays open, as a real one does

    monkeypatch.setattr(tail_module.cw, "start_live_tail", live_only_new)
    tail = Tail(GROUPS, start_ms=start, mode="live", interval=0.05, group_arn=arns.__getitem__)
    calls = FilterCalls(cloudwatch)
    try:
        batches = collect(tail, lambda seen: any(e.message == "new" for e in seen), timeout=10)
    finally:
        ended.set()
    # Each once, the look-back first and in time order across groups, nothing from before it. Whether
    # Live Tail brings "both" before the look-back is read or after, it is shown once, after "h3".
    assert [e.message for b in batches for e in b.events] == ["h1", "h2", "h3", "both", "new"]
    assert all(b.mode == "live" for b in batches) and tail.summary.mode == "live"
    # One search of the look-back per group (and the pages CloudWatch answered it with), no polling.
    assert calls.counted(tail.summary.stats.calls.get("FilterLogEvents", 0))[0] == len(GROUPS)


def test_a_long_look_back_is_read_in_rounds_and_stays_in_time_order(
    aws: None, cloudwatch: CloudWatchPaging | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.core.apilogs import tail as tail_module

    make_groups()
    start = now_ms() - 120_000
    put_lines(GROUPS[0], "s", [(start + 10 * n, f"a{n:02d}") for n in range(20)])
    put_lines(GROUPS[1], "s", [(start + 10 * n + 5, f"b{n:02d}") for n in range(4)])
    # Three lines a read: the first group takes seven rounds, the second one.
    monkeypatch.setattr(tail_module, "MAX_EVENTS_PER_POLL", 3)
    monkeypatch.setattr(tail_module.cw, "MAX_PAGE_EVENTS", 3)
    tail = Tail(GROUPS, start_ms=start, mode="live", interval=0.05, group_arn=lambda g: g)
    batches = list(tail._history())
    stamps = [e.timestamp for b in batches for e in b.events]
    assert len(batches) > 1 and stamps == sorted(stamps)
    assert len(stamps) == 24 and len({e.key for b in batches for e in b.events}) == 24
