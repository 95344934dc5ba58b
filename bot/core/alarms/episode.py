"""One message per alarm episode: what a state change does to the episode item. Pure.

An episode starts when an alarm goes to ALARM and ends at OK. Its item in the state table (``alarm#ep`` /
the alarm's key) holds the message (channel, ts), the latest alarm, the correlation once known, who
acknowledged it and until when it is muted. ``decide`` takes that item (or None) and a notification and
says what to do:

- ``open``: a new episode, a new top-level post;
- ``update``: the same message updated, and a thread reply when ``reply`` is set;
- ``ignore``: nothing to post (a duplicate, an older notification arriving late, OK with no episode).

A flapping alarm does not flood: an ALARM within ``REOPEN_SECONDS`` of its episode's OK reopens the same
message; past ``MAX_REPLIES_PER_MINUTE`` state changes in a minute the message is still kept up to date
but the thread gets no more replies until the alarm settles (the message says how often it changed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.core.alarms.model import Alarm

REOPEN_SECONDS = 15 * 60
MAX_REPLIES_PER_MINUTE = 3


@dataclass(frozen=True)
class Decision:
    kind: str  # open | update | ignore
    why: str = ""
    reply: str = ""  # the thread reply ("OK after 12 min"); empty: none
    episode_start_ms: int = 0
    changes: int = 1  # state changes of this episode so far, this one included
    recent: tuple[int, ...] = ()  # times of the last state changes (ms), for the flap count


def duration_text(ms: int) -> str:
    seconds = max(0, ms // 1000)
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} d {hours % 24} h"


def decide(item: dict[str, Any] | None, alarm: Alarm) -> Decision:
    open_episode = item is not None and item.get("state") != "OK"
    last_ms = int(item.get("changedMs", 0)) if item else 0
    if item is not None and alarm.changed_ms < last_ms:
        return Decision("ignore", "an older state change arrived after a newer one")
    if item is not None and alarm.changed_ms == last_ms and alarm.state == item.get("state"):
        return Decision("ignore", "duplicate notification")
    recent = tuple(
        t for t in (item.get("recent") or [] if item else []) if alarm.changed_ms - int(t) < 60_000
    )
    recent = (*recent, alarm.changed_ms)[-20:]
    flapping = len(recent) > MAX_REPLIES_PER_MINUTE
    if not open_episode:
        closed_ms = last_ms
        reopen = (
            item is not None
            and item.get("ts")
            and alarm.state == "ALARM"
            and alarm.changed_ms - closed_ms <= REOPEN_SECONDS * 1000
        )
        if alarm.state != "ALARM":
            return Decision("ignore", f"{alarm.state} without an open episode")
        if reopen and item is not None:
            changes = int(item.get("changes", 1)) + 1
            reply = (
                ""
                if flapping
                else f":rotating_light: ALARM again after {duration_text(alarm.changed_ms - closed_ms)} OK"
            )
            return Decision(
                "update", "reopened", reply, int(item.get("startMs", alarm.changed_ms)), changes, recent
            )
        return Decision("open", "new episode", "", alarm.changed_ms, 1, (alarm.changed_ms,))
    assert item is not None
    start = int(item.get("startMs", alarm.changed_ms))
    changes = int(item.get("changes", 1)) + 1
    if alarm.state == "OK":
        reply = f":white_check_mark: OK after {duration_text(alarm.changed_ms - start)}"
    elif alarm.state == "INSUFFICIENT_DATA":
        reply = ":grey_question: Insufficient data: the metric stopped reporting"
    else:
        reply = f":rotating_light: Still in ALARM: {alarm.reason[:300]}" if alarm.reason else ""
    return Decision("update", alarm.state.lower(), "" if flapping else reply, start, changes, recent)
