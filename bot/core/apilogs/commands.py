"""One function per subcommand, taking plain arguments and settings (used by the CLI and Slack)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.aws import logs as cw
from bot.config import Settings
from bot.core.apilogs import discovery as disc
from bot.core.apilogs.lookup import LookupResult, lookup
from bot.core.apilogs.model import ApiStage, Discovery
from bot.core.apilogs.scope import ReadLimit
from bot.core.apilogs.tail import Tail, TailMode
from bot.core.common.timeparse import parse_duration, parse_time, to_epoch_ms
from bot.errors import AwsError, NotAllowedError, UsageError

TAIL_MODES: tuple[TailMode, ...] = ("auto", "live", "poll")


def stop_flag_key(tail_id: str) -> str:
    """The state-table flag a Stop button sets and the tail polls."""
    return f"apilogs-tail:{tail_id}"


def ended_flag_key(tail_id: str) -> str:
    """The state-table flag a tail sets when it is over, so a late Stop click is told so."""
    return f"apilogs-tail-ended:{tail_id}"


@dataclass
class TailPlan:
    stage: ApiStage
    discovery: Discovery
    groups: list[str]
    tail: Tail
    duration_s: float | None


def plan_tail(
    settings: Settings,
    *,
    api: str = "",
    stage: str = "",
    pattern: str = "",
    duration: str = "",
    since: str = "",
    mode: str = "auto",
    should_stop: Callable[[], bool] = lambda: False,
    deadline: float | None = None,
    now: datetime | None = None,
    limit: ReadLimit | None = None,
) -> TailPlan:
    """Resolve the API stage, discover its groups once, and prepare a Tail over all of them.

    ``deadline`` is a ``time.monotonic()`` value (the Lambda time limit); ``duration`` (``--for``) may
    end the tail sooner. ``limit``: the caller's read scope (an API or stage outside it is refused;
    groups outside it are left out of the tail and named in its summary).
    """
    if mode not in TAIL_MODES:
        raise UsageError(f"--mode must be one of {', '.join(TAIL_MODES)}.")
    duration_s = parse_duration(duration).total_seconds() if duration else None
    now = now or datetime.now(UTC)
    start_ms = to_epoch_ms(parse_time(since, now=now)) if since else to_epoch_ms(now) - 10_000
    target = disc.resolve_stage(
        api or (limit.default_api() if limit else "") or settings.default_api,
        stage or (limit.default_stage() if limit else "") or settings.default_stage,
        region=settings.region,
        limit=limit,
    )
    found = disc.discover(target)
    groups = list(found.all_groups)
    skipped: list[str] = []
    if limit is not None:
        groups, skipped = limit.split(groups)
        if skipped and not groups:
            raise NotAllowedError(
                f"None of the log groups of {target.label} may be read in this channel. "
                + limit.skipped_note(skipped)
            )
    if not groups:
        raise UsageError(
            f"{target.label} has no log groups to tail: no execution or access logging "
            "and no Lambda functions."
        )
    end = deadline
    if duration_s is not None:
        end = min(end, time.monotonic() + duration_s) if end is not None else time.monotonic() + duration_s
    tail = Tail(
        groups,
        pattern=pattern,
        start_ms=start_ms,
        mode=mode,
        should_stop=should_stop,
        deadline=end,
        group_arn=_group_arn,
    )
    tail.summary.notes.extend(found.notes)
    if skipped and limit is not None:
        tail.summary.notes.append(limit.skipped_note(skipped))
    return TailPlan(target, found, groups, tail, duration_s)


def _group_arn(group: str) -> str:
    info = cw.describe_group(group)
    if info is None or not info.arn:
        raise AwsError(f"The log group {group} does not exist.", code="ResourceNotFoundException")
    return info.arn


__all__ = [
    "TAIL_MODES",
    "LookupResult",
    "TailPlan",
    "ended_flag_key",
    "lookup",
    "plan_tail",
    "stop_flag_key",
]
