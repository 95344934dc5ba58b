"""``fanout health``: is each hooked source's fan-out keeping up, and if not, why.

Per source: the hook (event source mapping), the fan-out function's CloudWatch metrics (``AWS/Lambda``
IteratorAge, Errors, Invocations, Throttles, Duration, ConcurrentExecutions), for a Kinesis source the
stream's own (``AWS/Kinesis`` GetRecords.IteratorAgeMilliseconds, Read/WriteProvisionedThroughputExceeded)
and shards, for a DynamoDB stream the table's stream state; the function's error lines of the window. Every
metric of every source comes from one GetMetricData query batch.

The verdict (``verdict``) is a pure function of those, with the thresholds in ``Thresholds`` (documented in
docs/fanout.md): paused, failing, falling behind or healthy, each with the reasons.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.aws import fanout as fanout_aws
from bot.aws.fanout import FunctionInfo, StreamInfo
from bot.config import Settings
from bot.core.common.timeparse import parse_duration
from bot.core.fanout.commands import Hook, SourceGroup, SourceRef, snapshot, source_matches, table_specs
from bot.errors import AwsError, NotFoundError, echo

HEALTHY = "healthy"
BEHIND = "falling behind"
FAILING = "failing"
PAUSED = "paused"
VERDICTS = (HEALTHY, BEHIND, FAILING, PAUSED)

PAUSED_STATES = frozenset({"Disabled", "Disabling"})
RUNNING_STATES = frozenset({"Enabled", "Enabling", "Updating", "Creating"})
KINESIS_OK = frozenset({"ACTIVE", "UPDATING"})


@dataclass(frozen=True)
class Thresholds:
    """When a source is falling behind or failing (docs/fanout.md explains each)."""

    behind_ms: float = 5 * 60_000  # iterator age at or above this: falling behind
    rising_ms: float = 60_000  # iterator age at or above this and rising: falling behind
    error_rate: float = 0.05  # Errors / Invocations at or above this: failing
    timeout_ratio: float = 0.9  # the longest Duration at or above this share of the timeout: failing


THRESHOLDS = Thresholds()


def _num(value: Any) -> float | None:
    """A finite number or None: metrics may be missing, and nothing odd may make a verdict raise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def trend(values: Sequence[float]) -> str:
    """rising / falling / steady from the first and last thirds of a series; unknown under two points."""
    points = [v for v in (_num(x) for x in values) if v is not None]
    if len(points) < 2:
        return "unknown"
    third = max(1, len(points) // 3)
    first = sum(points[:third]) / third
    last = sum(points[-third:]) / third
    if last > first * 1.5 and last - first >= 1000:
        return "rising"
    if last < first / 1.5 and first - last >= 1000:
        return "falling"
    return "steady"


def _count(value: float, noun: str) -> str:
    return f"{value:.0f} {noun}{'' if round(value) == 1 else 's'}"


def duration_text(ms: float | None) -> str:
    if ms is None:
        return "no data"
    seconds = ms / 1000
    if seconds < 1:
        return f"{ms:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass(frozen=True)
class SourceMetrics:
    """What the window's metrics say about one source (None: no data points)."""

    function_iterator_age_max_ms: float | None = None
    function_iterator_age_trend: str = "unknown"
    stream_iterator_age_max_ms: float | None = None  # Kinesis sources only
    stream_iterator_age_trend: str = "unknown"
    errors: float | None = None
    invocations: float | None = None
    throttles: float | None = None
    duration_max_ms: float | None = None
    timeout_ms: float | None = None
    concurrency_max: float | None = None
    reserved_concurrency: int | None = None
    read_throttled: float | None = None  # ReadProvisionedThroughputExceeded (Kinesis)
    write_throttled: float | None = None  # WriteProvisionedThroughputExceeded (Kinesis)

    @property
    def iterator_age_max_ms(self) -> float | None:
        """The source's own age when known (a Kinesis stream's metric is per stream), else the function's
        (which covers every source hooked to it)."""
        stream = _num(self.stream_iterator_age_max_ms)
        return stream if stream is not None else _num(self.function_iterator_age_max_ms)

    @property
    def iterator_age_trend(self) -> str:
        if _num(self.stream_iterator_age_max_ms) is not None:
            return self.stream_iterator_age_trend
        return self.function_iterator_age_trend

    def to_json(self) -> dict[str, Any]:
        return {
            "iteratorAgeMaxMs": self.iterator_age_max_ms,
            "iteratorAgeTrend": self.iterator_age_trend,
            "functionIteratorAgeMaxMs": self.function_iterator_age_max_ms,
            "streamIteratorAgeMaxMs": self.stream_iterator_age_max_ms,
            "errors": self.errors,
            "invocations": self.invocations,
            "throttles": self.throttles,
            "durationMaxMs": self.duration_max_ms,
            "timeoutMs": self.timeout_ms,
            "concurrencyMax": self.concurrency_max,
            "reservedConcurrency": self.reserved_concurrency,
            "readProvisionedThroughputExceeded": self.read_throttled,
            "writeProvisionedThroughputExceeded": self.write_throttled,
        }


@dataclass(frozen=True)
class Verdict:
    state: str
    reasons: tuple[str, ...]

    @property
    def why(self) -> str:
        return "; ".join(self.reasons)


def verdict(
    hook: Hook,
    metrics: SourceMetrics,
    stream: StreamInfo | None = None,
    thresholds: Thresholds = THRESHOLDS,
) -> Verdict:
    """One source's verdict with its reasons. Pure; never raises. A disabled hook is always ``paused``."""
    age = metrics.iterator_age_max_ms
    age_trend = metrics.iterator_age_trend
    if hook.state in PAUSED_STATES:
        reasons = [f"the hook is {hook.state}: records wait in the stream until it is resumed"]
        if age is not None:
            reasons.append(f"iterator age reached {duration_text(age)} in the window")
        return Verdict(PAUSED, tuple(reasons))

    failing: list[str] = []
    if hook.state not in RUNNING_STATES:
        failing.append(f"the hook is {hook.state or 'in an unknown state'}")
    if hook.problem:
        failing.append(f"the hook's last processing result is {hook.last_processing_result!r}")
    if stream is not None:
        if stream.status in ("DISABLED", "REPLACED"):
            failing.append(
                "the table's stream is disabled"
                if stream.status == "DISABLED"
                else "the table has a newer stream; this hook reads one that expires"
            )
        elif stream.status not in ("ENABLED", "UNKNOWN", "") and stream.status not in KINESIS_OK:
            failing.append(f"the stream is {stream.status}")
    errors, invocations = _num(metrics.errors), _num(metrics.invocations)
    if errors is not None and errors > 0:
        if invocations is None or invocations <= 0:
            failing.append(_count(errors, "function error"))
        elif errors / invocations >= thresholds.error_rate:
            failing.append(
                f"{errors:.0f} errors in {invocations:.0f} invocations ({errors / invocations:.0%}): "
                "failed batches are retried and hold the shard back"
            )
    duration, timeout = _num(metrics.duration_max_ms), _num(metrics.timeout_ms)
    if duration is not None and timeout and duration >= thresholds.timeout_ratio * timeout:
        failing.append(
            f"the longest run took {duration_text(duration)} of the {duration_text(timeout)} timeout"
        )
    if failing:
        return Verdict(FAILING, tuple(failing))

    behind: list[str] = []
    if age is not None and age >= thresholds.behind_ms:
        behind.append(f"iterator age reached {duration_text(age)} ({age_trend})")
    elif age is not None and age >= thresholds.rising_ms and age_trend == "rising":
        behind.append(f"iterator age is rising, {duration_text(age)} at most")
    if behind:
        throttles = _num(metrics.throttles)
        if throttles:
            behind.append(f"{_count(throttles, 'throttled invocation')} (concurrency)")
        read = _num(metrics.read_throttled)
        if read:
            behind.append(
                f"{_count(read, 'read')} over the stream's provisioned throughput (noisy neighbours)"
            )
        if errors:
            behind.append(_count(errors, "function error"))
        return Verdict(BEHIND, tuple(behind))

    healthy = [
        f"iterator age {duration_text(age)} at most ({age_trend})"
        if age is not None
        else "no iterator age in the window (no records, or none processed yet)"
    ]
    if errors:
        healthy.append(f"{_count(errors, 'error')}, under {thresholds.error_rate:.0%} of invocations")
    else:
        healthy.append("no errors")
    return Verdict(HEALTHY, tuple(healthy))


# -- error lines -----------------------------------------------------------------------------------

_ERROR_LINE = re.compile(
    r"\bERROR\b|\berror\b|\bError\b|Exception|Task timed out|\bfail(?:ed|ure)?\b|Runtime\.", re.IGNORECASE
)
_PLATFORM = re.compile(r"^(START|END|REPORT|INIT_START) ")
# The function's own words for a target: "target 'replica'", "target=replica", "[replica]" ...
_TARGET_WORD = re.compile(r"target[\s:=]+['\"]?([A-Za-z0-9_.:/-]+)", re.IGNORECASE)


def is_error_line(message: str) -> bool:
    return not _PLATFORM.match(message) and _ERROR_LINE.search(message) is not None


def named_target(message: str, ids: Iterable[str]) -> str | None:
    """The target id a log line names: after the word target, or any known id as a whole word."""
    known = sorted(set(ids), key=len, reverse=True)
    found = _TARGET_WORD.search(message)
    if found and found.group(1).strip("'\".,") in known:
        return found.group(1).strip("'\".,")
    for target_id in known:
        if target_id and re.search(rf"(?<![\w-]){re.escape(target_id)}(?![\w-])", message):
            return target_id
    return None


@dataclass(frozen=True)
class ErrorGroup:
    target_id: str | None  # None: the line names no target of this function's sources
    count: int
    samples: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"targetId": self.target_id, "count": self.count, "lines": list(self.samples)}


MAX_SAMPLES = 3


def group_errors(
    messages: Iterable[str], own_ids: Iterable[str], other_ids: Iterable[str]
) -> list[ErrorGroup]:
    """The error lines that concern one source, grouped by the target they name. Lines naming another
    source's target are left out; lines naming none are grouped under None (function-wide). Pure."""
    own = set(own_ids)
    others = set(other_ids) - own
    counts: dict[str | None, int] = {}
    samples: dict[str | None, list[str]] = {}
    for message in messages:
        if not is_error_line(message):
            continue
        target = named_target(message, own | others)
        if target in others:
            continue
        counts[target] = counts.get(target, 0) + 1
        kept = samples.setdefault(target, [])
        if len(kept) < MAX_SAMPLES:
            kept.append(message.strip()[:500])
    order = sorted(counts, key=lambda t: (t is None, -counts[t], t or ""))
    return [ErrorGroup(t, counts[t], tuple(samples[t])) for t in order]


# -- the report ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceHealth:
    group: SourceGroup
    hook: Hook
    metrics: SourceMetrics
    stream: StreamInfo | None
    verdict: Verdict
    errors: tuple[ErrorGroup, ...]
    active_targets: int

    @property
    def source(self) -> SourceRef:
        return self.group.source

    def to_json(self) -> dict[str, Any]:
        stream: dict[str, Any] | None = None
        if self.stream is not None:
            stream = {
                "status": self.stream.status,
                "shardsOpen": self.stream.shards_open,
                "shardsTotal": self.stream.shards_total,
                "retentionHours": self.stream.retention_hours,
            }
            if self.stream.error:
                stream["error"] = self.stream.error
        return {
            "sourceArn": self.source.arn,
            "kind": self.source.kind,
            "name": self.source.name,
            "table": self.group.table,
            "function": self.group.function,
            "verdict": self.verdict.state,
            "why": list(self.verdict.reasons),
            "hook": self.hook.to_json(),
            "stream": stream,
            "activeTargets": self.active_targets,
            "metrics": self.metrics.to_json(),
            "errors": [e.to_json() for e in self.errors],
        }


@dataclass(frozen=True)
class HealthReport:
    sources: tuple[SourceHealth, ...]
    start: datetime
    end: datetime
    period: int
    metric_queries: int
    metric_requests: int
    unhooked: tuple[SourceRef, ...] = ()
    notes: tuple[str, ...] = ()  # what could not be read, and why
    since: str = "1h"

    def to_json(self) -> dict[str, Any]:
        return {
            "sources": [s.to_json() for s in self.sources],
            "window": {
                "start": self.start.isoformat(),
                "end": self.end.isoformat(),
                "periodSeconds": self.period,
            },
            "metricQueries": self.metric_queries,
            "metricRequests": self.metric_requests,
            "unhooked": [r.arn for r in self.unhooked],
            "notes": list(self.notes),
        }


def parse_window(since: str) -> timedelta:
    text = since.strip().lower().removesuffix(" ago").strip()
    window = parse_duration(text)
    if window > timedelta(days=15):
        # GetMetricData keeps one-minute points 15 days; beyond that the answer would be coarse and slow.
        from bot.errors import UsageError

        raise UsageError(f"--since {echo(since)} is too long; health looks at most 15 days back.")
    return window


def period_for(window: timedelta) -> int:
    """About sixty points per series: a multiple of 60 seconds (CloudWatch's standard resolution)."""
    seconds = max(60, int(window.total_seconds()))
    return max(60, math.ceil(seconds / 60 / 60) * 60)


def function_name(function: str) -> str:
    """The FunctionName dimension: the name, also when configured as an ARN."""
    if function.startswith("arn:"):
        parts = function.split(":")
        return parts[6] if len(parts) > 6 else function
    return function


def known_sources_text(groups: Iterable[SourceGroup]) -> str:
    names = sorted({f"{g.source.name}" for g in groups if g.hooks})
    return ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "") or "none"


def select_groups(
    groups: Sequence[SourceGroup],
    source: str | None,
    tables: str,
    hook_errors: Mapping[str, str] | None = None,
) -> list[SourceGroup]:
    """The hooked groups asked for; NotFoundError naming the known sources when ``source`` is none of them."""
    if not source:
        return [g for g in groups if g.hooks]
    matching = [g for g in groups if source_matches(g.source, source.strip())]
    hooked = [g for g in matching if g.hooks]
    if hooked:
        return hooked
    unknown = [g for g in matching if not g.hooks_known]
    if unknown:
        reason = (hook_errors or {}).get(unknown[0].function, "they could not be read")
        raise AwsError(
            f"The hooks of {unknown[0].function} are unknown, so {unknown[0].source.display} cannot be looked at: {reason}"
        )
    if matching:
        raise NotFoundError(
            f"{matching[0].source.display} is not hooked to {matching[0].function}: no records flow to its "
            f"targets (hook it with the aws-lambda-fanout CLI). Hooked sources: {known_sources_text(groups)}."
        )
    raise NotFoundError(
        f"No source {echo(source)} in {tables}. Known sources: {known_sources_text(groups)} "
        "(a stream or table name, or a source ARN)."
    )


def _queries(functions: Sequence[str], streams: Sequence[tuple[str, str]], period: int) -> list[Any]:
    from bot.aws.metrics import MetricQuery

    queries: list[MetricQuery] = []
    for index, function in enumerate(functions):
        dims = {"FunctionName": function_name(function)}
        for suffix, name, stat in (
            ("age", "IteratorAge", "Maximum"),
            ("err", "Errors", "Sum"),
            ("inv", "Invocations", "Sum"),
            ("thr", "Throttles", "Sum"),
            ("dur", "Duration", "Maximum"),
            ("con", "ConcurrentExecutions", "Maximum"),
        ):
            queries.append(MetricQuery(f"f{index}{suffix}", "AWS/Lambda", name, dims, stat, period))
    for index, (stream, _region) in enumerate(streams):
        dims = {"StreamName": stream}
        for suffix, name, stat in (
            ("age", "GetRecords.IteratorAgeMilliseconds", "Maximum"),
            ("rpe", "ReadProvisionedThroughputExceeded", "Sum"),
            ("wpe", "WriteProvisionedThroughputExceeded", "Sum"),
        ):
            queries.append(MetricQuery(f"k{index}{suffix}", "AWS/Kinesis", name, dims, stat, period))
    return queries


@dataclass
class _Read:
    """What was read for the report (kept apart so ``assemble`` stays pure)."""

    series: dict[str, tuple[float, ...]] = field(default_factory=dict)
    functions: dict[str, FunctionInfo] = field(default_factory=dict)
    streams: dict[str, StreamInfo] = field(default_factory=dict)  # source ARN -> stream
    logs: dict[str, list[str]] = field(default_factory=dict)  # function -> error lines of the window
    notes: list[str] = field(default_factory=list)


def _max(values: Sequence[float] | None) -> float | None:
    return max(values) if values else None


def _sum(values: Sequence[float] | None) -> float | None:
    return float(sum(values)) if values else None


def source_metrics(
    series: Mapping[str, Sequence[float]], f_index: int, k_index: int | None, info: FunctionInfo | None
) -> SourceMetrics:
    def get(key: str) -> Sequence[float] | None:
        return series.get(key)

    f = f"f{f_index}"
    k = f"k{k_index}" if k_index is not None else None
    return SourceMetrics(
        function_iterator_age_max_ms=_max(get(f + "age")),
        function_iterator_age_trend=trend(get(f + "age") or ()),
        stream_iterator_age_max_ms=_max(get(k + "age")) if k else None,
        stream_iterator_age_trend=trend(get(k + "age") or ()) if k else "unknown",
        errors=_sum(get(f + "err")),
        invocations=_sum(get(f + "inv")),
        throttles=_sum(get(f + "thr")),
        duration_max_ms=_max(get(f + "dur")),
        timeout_ms=info.timeout_seconds * 1000.0 if info and info.timeout_seconds else None,
        concurrency_max=_max(get(f + "con")),
        reserved_concurrency=info.reserved_concurrency if info else None,
        read_throttled=_sum(get(k + "rpe")) if k else None,
        write_throttled=_sum(get(k + "wpe")) if k else None,
    )


def health(
    settings: Settings,
    source: str | None = None,
    *,
    since: str = "1h",
    now: datetime | None = None,
    thresholds: Thresholds = THRESHOLDS,
) -> HealthReport:
    from bot.aws.logs import filter_events
    from bot.aws.metrics import get_metric_data

    window = parse_window(since)
    end = (now or datetime.now(UTC)).replace(microsecond=0)
    start = end - window
    period = period_for(window)
    snap = snapshot(settings)
    tables = ", ".join(s.table for s in table_specs(settings))
    chosen = select_groups(snap.groups, source, tables, snap.hook_errors)
    notes = [f"hooks of {f} unknown: {why}" for f, why in snap.hook_errors.items()]
    unhooked = tuple(
        g.source for g in snap.groups if not g.hooks and not source and g.function not in snap.hook_errors
    )

    functions = list(dict.fromkeys(g.function for g in chosen))
    kinesis = [(g.source.name, g.source.region) for g in chosen if g.source.kind == "kinesis"]
    kinesis = list(dict.fromkeys(kinesis))
    queries = _queries(functions, kinesis, period)
    read = _Read(notes=notes)
    requests = 0
    try:
        data = get_metric_data(queries, start, end, resource="the fan-out metrics")
        read.series = {key: s.values for key, s in data.series.items()}
        requests = data.requests
    except AwsError as error:
        read.notes.append(f"metrics unknown: {error}")
    for function in functions:
        info = fanout_aws.function_info(function)
        read.functions[function] = info
        if info.error:
            read.notes.append(f"configuration of {function} unknown: {info.error}")
        group_name = info.log_group or f"/aws/lambda/{function_name(function)}"
        try:
            found = filter_events(
                group_name,
                start_ms=int(start.timestamp() * 1000),
                end_ms=int(end.timestamp() * 1000),
                pattern='?ERROR ?Error ?error ?Exception ?"Task timed out"',
                recheck=is_error_line,
                max_events=2000,
                max_pages=20,
            )
            read.logs[function] = [e.message for e in found.events]
        except AwsError as error:
            read.notes.append(f"error lines of {function} unknown: {error}")
    for g in chosen:
        if g.source.kind == "kinesis":
            read.streams[g.source.arn] = fanout_aws.kinesis_stream(
                g.source.name, region=g.source.region or None
            )
        elif g.source.kind == "dynamodb":
            read.streams[g.source.arn] = fanout_aws.stream_of_table(
                g.source.name, g.source.arn, region=g.source.region or None
            )
    sources = assemble(chosen, functions, kinesis, read, thresholds)
    return HealthReport(
        tuple(sources), start, end, period, len(queries), requests, unhooked, tuple(read.notes), since
    )


def assemble(
    chosen: Sequence[SourceGroup],
    functions: Sequence[str],
    kinesis: Sequence[tuple[str, str]],
    read: _Read,
    thresholds: Thresholds = THRESHOLDS,
) -> list[SourceHealth]:
    sources: list[SourceHealth] = []
    for g in chosen:
        hook = g.hook
        if hook is None:
            continue
        f_index = functions.index(g.function)
        k_key = (g.source.name, g.source.region)
        k_index = kinesis.index(k_key) if g.source.kind == "kinesis" and k_key in kinesis else None
        metrics = source_metrics(read.series, f_index, k_index, read.functions.get(g.function))
        stream = read.streams.get(g.source.arn)
        siblings = [o for o in chosen if o.function == g.function and o is not g]
        errors = group_errors(
            read.logs.get(g.function, []),
            [t.id for t in g.targets],
            [t.id for o in siblings for t in o.targets],
        )
        sources.append(
            SourceHealth(
                group=g,
                hook=hook,
                metrics=metrics,
                stream=stream,
                verdict=verdict(hook, metrics, stream, thresholds),
                errors=tuple(errors),
                active_targets=sum(1 for t in g.targets if t.active),
            )
        )
    return sources
