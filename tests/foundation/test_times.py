"""One time format in Slack (a date token with the UTC time as its fallback), one on the terminal (ISO 8601
with the zone), and the demo's terminal rendering of a date token."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.render.blocks import as_datetime, iso_time, slack_time, utc_text
from bot.render.text import mrkdwn_to_text

TOKEN = "<!date^1714550403^{date_short_pretty} {time_secs}|2024-05-01 08:00:03 UTC>"


@pytest.mark.parametrize(
    "value",
    [
        "2024-05-01T08:00:03Z",
        "2024-05-01T08:00:03.000Z",
        "2024-05-01T10:00:03+02:00",
        "2024-05-01 08:00:03",  # no zone: UTC
        1714550403,
        1714550403000,
        "1714550403",
        datetime(2024, 5, 1, 8, 0, 3, tzinfo=UTC),
        datetime(2024, 5, 1, 3, 0, 3, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_every_spelling_of_a_time_gets_the_same_token(value: object) -> None:
    assert slack_time(value) == TOKEN  # type: ignore[arg-type]
    assert iso_time(value) == "2024-05-01T08:00:03.000Z"  # type: ignore[arg-type]
    assert utc_text(value) == "2024-05-01 08:00:03 UTC"  # type: ignore[arg-type]


def test_what_is_not_a_time_is_shown_as_it_is() -> None:
    assert as_datetime("soon") is None and as_datetime("") is None and as_datetime(None) is None
    assert slack_time("<soon>") == "&lt;soon&gt;"  # escaped: it goes into mrkdwn
    assert iso_time("soon") == "soon" and iso_time(None) == ""


def test_the_terminal_shows_a_date_token_as_its_fallback_text() -> None:
    assert mrkdwn_to_text(f"Synced {TOKEN}.") == "Synced 2024-05-01 08:00:03 UTC."
    assert mrkdwn_to_text("at <!date^1714550403^{date_short_pretty}>") == "at 2024-05-01 08:00:03 UTC"


def test_every_emoji_the_app_sends_has_a_terminal_symbol() -> None:
    """The demo console and the CLI render mrkdwn as text: an emoji code the table lacks would show as
    `:large_orange_circle:` next to a verdict (as it did for /fanout health's falling-behind source)."""
    import re
    from pathlib import Path

    from bot.render import text

    root = Path(text.__file__).resolve().parents[1]
    # A code in a string (not a piece of an ARN or an action id such as `fanout:check:next`).
    code = re.compile(r"(?<![\w:})]):[a-z_]+:(?![\w:{])")
    used = {
        match
        for folder in ("render", "listeners")
        for path in (root / folder).rglob("*.py")
        for match in code.findall(path.read_text())
    }
    assert ":large_orange_circle:" in used and ":warning:" in used
    missing = sorted(used - set(text._EMOJI))
    assert missing == []
    assert ":" not in mrkdwn_to_text(":double_vertical_bar: Paused · :large_orange_circle: falling behind")
