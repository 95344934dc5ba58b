from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.common.timeparse import format_duration, format_time, parse_duration, parse_time
from bot.errors import UsageError

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("2h30m", 9000), ("3d", 259200), ("1w", 604800), ("90 minutes", 5400),
     ("1h 5m", 3900), ("1.5h", 5400)],
)  # fmt: skip
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("2h ago", NOW - timedelta(hours=2)),
        ("2h30m", NOW - timedelta(hours=2, minutes=30)),
        ("30s", NOW - timedelta(seconds=30)),
        ("3d", NOW - timedelta(days=3)),
        ("2026-11-27T10:00:00Z", datetime(2026, 11, 27, 10, tzinfo=UTC)),
        ("2026-11-27T10:00:00", datetime(2026, 11, 27, 10, tzinfo=UTC)),
        ("2026-11-27 11:00:00+01:00", datetime(2026, 11, 27, 10, tzinfo=UTC)),
        ("2026-11-27", datetime(2026, 11, 27, tzinfo=UTC)),
        ("1764230400", datetime(2025, 11, 27, 8, tzinfo=UTC)),
        ("1764230400000", datetime(2025, 11, 27, 8, tzinfo=UTC)),
    ],
)
def test_times(text: str, expected: datetime) -> None:
    assert parse_time(text, now=NOW) == expected


@pytest.mark.parametrize(
    "text", ["", "yesterday-ish", "5 parsecs ago", "2h and then", "1999-01-01", "0s ago"]
)
def test_bad_times_say_what_is_expected(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_time(text, now=NOW)
    assert info.value.message


def test_format_time_shows_zone() -> None:
    assert format_time(datetime(2016, 9, 7, 21, 39, 39, 144000, tzinfo=UTC)) == "2016-09-07T21:39:39.144Z"
    assert format_duration(timedelta(hours=1, minutes=5, seconds=3)) == "1h 5m"
    assert format_duration(timedelta(milliseconds=350)) == "350 ms"


@given(st.text(max_size=40))
def test_parse_time_raises_only_usage_errors(text: str) -> None:
    try:
        value = parse_time(text, now=NOW)
    except UsageError:
        return
    assert value.tzinfo is not None


@given(st.text(max_size=40))
def test_parse_duration_raises_only_usage_errors(text: str) -> None:
    try:
        value = parse_duration(text)
    except UsageError:
        return
    assert value > timedelta(0)
