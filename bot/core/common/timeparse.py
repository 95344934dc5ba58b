"""Time and duration input as on-call engineers type it, and ISO output with the zone.

Accepted times: ``now``, ``2h ago``, ``2h30m`` (a bare duration means that long ago, as in awslogs),
``30s``, ``3d``, ``1w``, ISO 8601 with or without zone (no zone means UTC), a date ``2024-05-01``,
epoch seconds (10 digits) or milliseconds (13 digits). Everything else raises ``UsageError`` with
examples; nothing else is ever raised.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from bot.errors import UsageError, echo

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_UNIT_WORDS = {
    "sec": "s", "secs": "s", "second": "s", "seconds": "s",
    "min": "m", "mins": "m", "minute": "m", "minutes": "m",
    "hr": "h", "hrs": "h", "hour": "h", "hours": "h",
    "day": "d", "days": "d", "week": "w", "weeks": "w",
}  # fmt: skip
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)")
_EXAMPLES = "e.g. 30s, 15m, 2h30m, 3d, '2h ago', 2024-05-01T12:00:00Z or epoch seconds"
# Anything before 2000 or more than a day ahead is a typo, not a log search.
_EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


def parse_duration(text: str) -> timedelta:
    """``30s``, ``15m``, ``2h30m``, ``3d``, ``1w``, ``90 minutes`` -> timedelta (positive)."""
    cleaned = text.strip().lower()
    if not cleaned:
        raise UsageError(f"Empty duration; {_EXAMPLES}.")
    position = 0
    seconds = 0.0
    for match in _DURATION.finditer(cleaned):
        if cleaned[position : match.start()].strip():
            break
        unit = _UNIT_WORDS.get(match.group(2), match.group(2))
        if unit not in _UNITS:
            raise UsageError(
                f"Unknown time unit {echo(match.group(2))} in {echo(text)}; use s, m, h, d or w."
            )
        seconds += float(match.group(1)) * _UNITS[unit]
        position = match.end()
    if position == 0 or cleaned[position:].strip():
        raise UsageError(f"Cannot read the duration {echo(text)}; {_EXAMPLES}.")
    if seconds <= 0 or seconds > 366 * 86400:
        raise UsageError(f"The duration {echo(text)} must be between 1 second and a year.")
    return timedelta(seconds=seconds)


def parse_time(text: str, *, now: datetime | None = None) -> datetime:
    """A point in time typed by a person -> an aware UTC datetime."""
    now = now or datetime.now(UTC)
    cleaned = text.strip()
    lowered = cleaned.lower()
    if not cleaned:
        raise UsageError(f"Empty time; {_EXAMPLES}.")
    if lowered == "now":
        return now
    if lowered.endswith(" ago"):
        return now - parse_duration(lowered[:-4])
    if re.fullmatch(r"\d{9,10}(\.\d+)?", cleaned):
        return _checked(datetime.fromtimestamp(float(cleaned), UTC), text, now)
    if re.fullmatch(r"\d{12,13}", cleaned):
        return _checked(datetime.fromtimestamp(int(cleaned) / 1000, UTC), text, now)
    if re.fullmatch(r"[\d.\s]+[a-z\s\d.]*", lowered) and re.search(r"[a-z]", lowered):
        return now - parse_duration(lowered)
    return _checked(_parse_iso(cleaned, text), text, now)


def _parse_iso(cleaned: str, original: str) -> datetime:
    candidate = cleaned.replace(" ", "T", 1) if re.match(r"\d{4}-\d{2}-\d{2} \d", cleaned) else cleaned
    if candidate.endswith(("z", "Z")):
        candidate = candidate[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(candidate)
    except ValueError:
        try:
            from dateutil.parser import isoparse

            parsed = isoparse(candidate)
        except (ValueError, OverflowError):
            raise UsageError(f"Cannot read the time {echo(original)}; {_EXAMPLES}.") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _checked(value: datetime, original: str, now: datetime) -> datetime:
    if value < _EARLIEST or value > now + timedelta(days=1):
        raise UsageError(f"The time {echo(original)} is out of range ({format_time(value)}).")
    return value


def format_time(value: datetime) -> str:
    """ISO 8601 with milliseconds and the zone (``Z`` for UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    text = value.isoformat(timespec="milliseconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def to_epoch_ms(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def format_duration(delta: timedelta) -> str:
    """A compact human duration: ``1h 5m``, ``42s``, ``350 ms``."""
    seconds = delta.total_seconds()
    if seconds < 1:
        return f"{round(seconds * 1000)} ms"
    parts = []
    remaining = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if remaining >= size:
            parts.append(f"{remaining // size}{unit}")
            remaining %= size
    return " ".join(parts[:2])
