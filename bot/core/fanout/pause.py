"""``fanout pause|resume SOURCE``: what the aws-lambda-fanout CLI's ``pause``/``resume`` do.

The CLI finds the source's hook with ``list-event-source-mappings --function-name F --event-source-arn S``
and runs ``update-event-source-mapping --uuid U --no-enabled`` (pause) or ``--enabled`` (resume). We make
the same calls, so the CLI and opsbot see one state. A paused hook keeps its position: Lambda stops polling
and, when enabled again, goes on from where it stopped, so nothing is lost unless the records outlive the
stream's retention while paused. Pausing a paused hook (or resuming a running one) changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.aws import fanout as fanout_aws
from bot.config import Settings
from bot.core.fanout.commands import Hook, SourceGroup, SourceRef, snapshot, table_specs
from bot.core.fanout.health import PAUSED_STATES, duration_text, select_groups
from bot.errors import NotFoundError, UsageError, echo


@dataclass(frozen=True)
class HookedSource:
    table: str
    function: str
    source: SourceRef
    active_targets: int


def resolve_hooked(settings: Settings, source: str, *, table: str | None = None) -> HookedSource:
    """The hooked source named ``source`` (an ARN, stream or table name); NotFoundError naming the known
    sources, UsageError when the name is ambiguous. Nothing is changed here."""
    if not source.strip():
        raise UsageError("Give the source: a stream or table name, or a source ARN.")
    snap = snapshot(settings)
    tables = ", ".join(s.table for s in table_specs(settings))
    groups: list[SourceGroup] = list(snap.groups)
    if table is not None:
        groups = [g for g in groups if g.table == table]
        if not any(s.table == table for s in table_specs(settings)):
            raise UsageError(f"{echo(table)} is not one of the configured fan-out tables ({tables}).")
    chosen = select_groups(groups, source, tables, snap.hook_errors)
    distinct = {(g.function, g.source.arn) for g in chosen}
    if len(distinct) > 1:
        listed = "; ".join(sorted(f"{arn} ({function})" for function, arn in distinct))
        raise UsageError(f"{echo(source)} names more than one hooked source ({listed}); give the source ARN.")
    g = chosen[0]
    return HookedSource(g.table, g.function, g.source, sum(1 for t in g.targets if t.active))


def backlog_sentence(hooked: HookedSource, *, retention_hours: int | None, age_ms: float | None) -> str:
    """What pausing lets build up: records wait in the stream, and are lost past its retention."""
    kept = (
        f"the stream keeps records {retention_hours} hours"
        if retention_hours
        else "the stream keeps records only for its retention period"
    )
    targets = f"{hooked.active_targets} active target{'' if hooked.active_targets == 1 else 's'}"
    sentence = (
        f"While paused, new records of {hooked.source.display} pile up unread and its {targets} receive "
        f"nothing; {kept}, so a pause longer than that loses the oldest."
    )
    if age_ms is not None and age_ms > 0:
        sentence += f" The backlog is already {duration_text(age_ms)} old."
    return sentence


@dataclass(frozen=True)
class PausePreview:
    hooked: HookedSource
    hooks: tuple[Hook, ...]
    retention_hours: int | None
    age_ms: float | None

    @property
    def already_paused(self) -> bool:
        return bool(self.hooks) and all(h.state in PAUSED_STATES for h in self.hooks)

    @property
    def backlog(self) -> str:
        return backlog_sentence(self.hooked, retention_hours=self.retention_hours, age_ms=self.age_ms)

    def to_json(self) -> dict[str, Any]:
        return {
            "sourceArn": self.hooked.source.arn,
            "table": self.hooked.table,
            "function": self.hooked.function,
            "hooks": [h.to_json() for h in self.hooks],
            "alreadyPaused": self.already_paused,
            "retentionHours": self.retention_hours,
            "iteratorAgeMs": self.age_ms,
            "backlog": self.backlog,
        }


def _current_hooks(hooked: HookedSource) -> tuple[Hook, ...]:
    mappings = fanout_aws.hooks_of_source(hooked.function, hooked.source.arn)
    hooks = tuple(Hook.from_mapping(m) for m in mappings)
    if not hooks:
        raise NotFoundError(
            f"{hooked.source.display} is no longer hooked to {hooked.function}; nothing was changed."
        )
    return hooks


def _recent_age_ms(hooked: HookedSource) -> float | None:
    """The latest iterator age of the last 15 minutes (the stream's own for Kinesis), for the sentence."""
    from bot.aws.metrics import MetricQuery, get_metric_data
    from bot.core.fanout.health import function_name
    from bot.errors import AwsError

    end = datetime.now(UTC)
    if hooked.source.kind == "kinesis":
        query = MetricQuery(
            "age",
            "AWS/Kinesis",
            "GetRecords.IteratorAgeMilliseconds",
            {"StreamName": hooked.source.name},
            "Maximum",
            60,
        )
    else:
        query = MetricQuery(
            "age",
            "AWS/Lambda",
            "IteratorAge",
            {"FunctionName": function_name(hooked.function)},
            "Maximum",
            60,
        )
    try:
        values = get_metric_data([query], end - timedelta(minutes=15), end).series["age"].values
    except AwsError:
        return None  # the sentence is still true without the figure
    return values[-1] if values else None


def preview_pause(settings: Settings, source: str, *, table: str | None = None) -> PausePreview:
    hooked = resolve_hooked(settings, source, table=table)
    hooks = _current_hooks(hooked)
    retention: int | None = None
    if hooked.source.kind == "kinesis":
        retention = fanout_aws.kinesis_stream(
            hooked.source.name, region=hooked.source.region or None
        ).retention_hours
    elif hooked.source.kind == "dynamodb":
        retention = 24  # DynamoDB Streams: fixed
    age = None if all(h.state in PAUSED_STATES for h in hooks) else _recent_age_ms(hooked)
    return PausePreview(hooked, hooks, retention, age)


@dataclass(frozen=True)
class PauseResult:
    hooked: HookedSource
    paused: bool  # the state asked for
    changed: bool
    hooks: tuple[Hook, ...]  # as they are after the change

    @property
    def verb(self) -> str:
        return "paused" if self.paused else "resumed"

    @property
    def message(self) -> str:
        where = f"The fan-out of {self.hooked.source.display} to {self.hooked.function}"
        if not self.changed:
            state = "paused" if self.paused else "running"
            return f"{where} was already {state}; nothing changed."
        if self.paused:
            return (
                f"{where} is paused (its event source mapping is disabled): records wait in the stream until "
                "`/fanout resume`."
            )
        return f"{where} is resumed: it reads on from where it stopped, the backlog first."

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": True,
            "table": self.hooked.table,
            "function": self.hooked.function,
            "sourceArn": self.hooked.source.arn,
            "paused": self.paused,
            "changed": self.changed,
            "hooks": [h.to_json() for h in self.hooks],
            "message": self.message,
        }


def set_paused(
    settings: Settings,
    source: str,
    paused: bool,
    *,
    table: str | None = None,
    hooked: HookedSource | None = None,
) -> PauseResult:
    """Disable (pause) or enable (resume) every hook from the source to its fan-out function; idempotent.
    ``hooked``: the source already resolved (the caller took a lock on it)."""
    hooked = hooked or resolve_hooked(settings, source, table=table)
    hooks = _current_hooks(hooked)
    after: list[Hook] = []
    changed = False
    for hook in hooks:
        is_paused = hook.state in PAUSED_STATES
        if is_paused == paused:
            after.append(hook)
            continue
        after.append(Hook.from_mapping(fanout_aws.set_hook_enabled(hook.uuid, not paused)))
        changed = True
    return PauseResult(hooked, paused, changed, tuple(after))
