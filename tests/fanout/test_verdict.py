"""The verdict: a pure function of the hook, the window's metrics and the stream, with documented
thresholds. Property: it never raises, and a disabled (paused) hook is always ``paused``."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from bot.aws.fanout import StreamInfo
from bot.core.fanout.commands import Hook
from bot.core.fanout.health import (
    BEHIND,
    FAILING,
    HEALTHY,
    PAUSED,
    VERDICTS,
    SourceMetrics,
    Thresholds,
    group_errors,
    trend,
    verdict,
)


def make_hook(state: str = "Enabled", result: str = "OK") -> Hook:
    return Hook("u", state, 100, "LATEST", result, "User action", "", "arn:aws:lambda:us-east-1:1:function:f")


numbers = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**12), max_value=10**12),
)
states = st.sampled_from(
    ["Enabled", "Enabling", "Disabled", "Disabling", "Updating", "Creating", "Deleting", ""]
) | st.text(max_size=12)
metrics = st.builds(
    SourceMetrics,
    function_iterator_age_max_ms=numbers,
    function_iterator_age_trend=st.sampled_from(["rising", "falling", "steady", "unknown"])
    | st.text(max_size=5),
    stream_iterator_age_max_ms=numbers,
    stream_iterator_age_trend=st.sampled_from(["rising", "steady"]),
    errors=numbers,
    invocations=numbers,
    throttles=numbers,
    duration_max_ms=numbers,
    timeout_ms=numbers,
    concurrency_max=numbers,
    read_throttled=numbers,
    write_throttled=numbers,
)
streams = st.one_of(
    st.none(),
    st.builds(
        StreamInfo,
        status=st.sampled_from(
            ["ACTIVE", "UPDATING", "DELETING", "ENABLED", "DISABLED", "REPLACED", "UNKNOWN", ""]
        ),
        shards_open=st.none() | st.integers(0, 10),
        retention_hours=st.none() | st.integers(0, 8760),
    ),
)


@given(states, st.text(max_size=40), metrics, streams)
def test_never_raises_and_always_explains(
    state: str, result: str, m: SourceMetrics, stream: StreamInfo | None
) -> None:
    found = verdict(make_hook(state, result), m, stream)
    assert found.state in VERDICTS and found.reasons and all(isinstance(r, str) and r for r in found.reasons)


@given(st.sampled_from(["Disabled", "Disabling"]), st.text(max_size=40), metrics, streams)
def test_a_paused_hook_is_always_paused(
    state: str, result: str, m: SourceMetrics, stream: StreamInfo | None
) -> None:
    assert verdict(make_hook(state, result), m, stream).state == PAUSED


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True) | st.integers(), max_size=50))
def test_trend_never_raises(values: list[float]) -> None:
    assert trend(values) in {"rising", "falling", "steady", "unknown"}


def test_thresholds() -> None:
    t = Thresholds()
    hook = make_hook()
    assert verdict(hook, SourceMetrics(stream_iterator_age_max_ms=t.behind_ms)).state == BEHIND
    assert verdict(hook, SourceMetrics(stream_iterator_age_max_ms=t.behind_ms - 1)).state == HEALTHY
    rising = SourceMetrics(function_iterator_age_max_ms=t.rising_ms, function_iterator_age_trend="rising")
    assert verdict(hook, rising).state == BEHIND
    steady = SourceMetrics(function_iterator_age_max_ms=t.rising_ms, function_iterator_age_trend="steady")
    assert verdict(hook, steady).state == HEALTHY
    # The stream's own age wins over the function-wide one (which covers every source of the function).
    both = SourceMetrics(function_iterator_age_max_ms=10 * t.behind_ms, stream_iterator_age_max_ms=100)
    assert verdict(hook, both).state == HEALTHY
    assert verdict(hook, SourceMetrics(errors=5, invocations=100)).state == FAILING
    assert verdict(hook, SourceMetrics(errors=4, invocations=100)).state == HEALTHY
    assert verdict(hook, SourceMetrics(errors=1, invocations=0)).state == FAILING
    timing_out = SourceMetrics(duration_max_ms=2_900, timeout_ms=3_000)
    assert "of the 3.0 s timeout" in verdict(hook, timing_out).why
    assert verdict(make_hook(result="PROBLEM: Function call failed"), SourceMetrics()).state == FAILING
    assert verdict(hook, SourceMetrics(), StreamInfo("DISABLED")).state == FAILING
    assert verdict(hook, SourceMetrics(), StreamInfo("DELETING")).state == FAILING
    assert verdict(hook, SourceMetrics(), StreamInfo("ACTIVE")).state == HEALTHY
    assert verdict(hook, SourceMetrics(stream_iterator_age_max_ms=math.inf)).state == HEALTHY  # not data


def test_trend() -> None:
    assert trend([1000, 2000, 3000, 4000, 5000, 6000]) == "rising"
    assert trend([6000, 5000, 4000, 3000, 2000, 1000]) == "falling"
    assert trend([100, 5000, 100]) == "steady"  # a spike is not a trend
    assert trend([5]) == "unknown"


def test_error_lines_group_by_target() -> None:
    lines = [
        "ERROR sending to target=a failed",
        "ERROR b: AccessDenied",
        "ERROR c: timeout",  # another source's target
        "INFO a: ok",
        "Task timed out after 3.00 seconds",
    ]
    groups = group_errors(lines, ["a", "b"], ["c"])
    assert [(g.target_id, g.count) for g in groups] == [("a", 1), ("b", 1), (None, 1)]
