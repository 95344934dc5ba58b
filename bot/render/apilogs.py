"""Presentation of apilogs results: Block Kit for Slack and (coloured) text for the terminal. Pure."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bot.core.apilogs.compact import Compact, compact
from bot.core.apilogs.correlate import InvocationSummary
from bot.core.apilogs.formats import is_error
from bot.core.apilogs.lookup import LookupResult
from bot.core.apilogs.model import ApiStage, LogEvent
from bot.core.apilogs.tail import TailBatch, TailSummary
from bot.core.apilogs.tail_requests import RequestEntry
from bot.core.common.timeparse import format_time
from bot.errors import echo, escape_invisible
from bot.render.blocks import (
    MAX_BLOCKS_MESSAGE,
    MAX_BUTTON_VALUE,
    MAX_MESSAGE_TEXT,
    MAX_TOTAL_BLOCK_CHARS,
    Block,
    actions,
    block_chars,
    button,
    code_blocks,
    context,
    escape,
    fields_section,
    fit,
    header,
    section,
    slack_time,
    times_in,
    truncate,
)
from bot.render.text import paint

ACTION_TAIL = "apilogs:tail"
ACTION_INSIGHTS = "link:apilogs-insights"  # a link: the framework acks its click
ACTION_STOP = "apilogs:stop"
ACTION_LOOKUP = "apilogs:lookup"
ACTION_FULL = "apilogs:full"
# A timeline line in Slack: long messages (request bodies, stack traces) are cut to keep it readable;
# the attached file has them whole.
SLACK_LINE_CHARS = 400
MAX_ERROR_LINES = 5


@dataclass(frozen=True)
class SlackMessage:
    text: str
    blocks: list[Block]
    # (filename, content) to upload with files_upload_v2 when the timeline did not fit
    file: tuple[str, str] | None = None


# -- shared wording -------------------------------------------------------------------------------


def _iso(ms: int) -> str:
    return format_time(datetime.fromtimestamp(ms / 1000, UTC))


def _clock(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _day(ms: int) -> int:
    return ms // 86_400_000


def group_label(group: str, stage: ApiStage | None = None) -> str:
    """A short name for a log group: ``apigw`` / ``access`` / the function name."""
    if stage is not None:
        if group == stage.execution_log_group:
            return "apigw"
        if group == stage.access_log_group:
            return "access"
    if group.startswith("API-Gateway-Execution-Logs_"):
        return "apigw"
    if group.startswith("/aws/lambda/"):
        return group.removeprefix("/aws/lambda/")
    return group.rstrip("/").rsplit("/", 1)[-1] or group


def _stream_label(stream: str) -> str:
    # "2024/05/01/[$LATEST]6ccf17d298b64b5f..." -> "[$LATEST]6ccf17d2"
    tail = stream.rsplit("/", 1)[-1]
    if "]" in tail:
        version, _, rest = tail.partition("]")
        return f"{version}]{rest[:8]}"
    return tail[:16]


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _ms(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def invocation_line(inv: InvocationSummary) -> str:
    parts = [f"{inv.function}{' (authorizer)' if inv.role == 'authorizer' else ''}", inv.lambda_id]
    if inv.version:
        parts.append(f"version {inv.version}")
    report = inv.report
    if report is not None:
        parts.append(f"{_ms(report.duration_ms)} (billed {_ms(report.billed_ms)})")
        if report.memory_mb:
            parts.append(f"{report.max_memory_mb or '?'}/{report.memory_mb} MB")
        if report.init_ms:
            parts.append(f"cold start {_ms(report.init_ms)}")
        if report.status and report.status != "success":
            parts.append(f"status {report.status}")
    else:
        parts.append("no REPORT line (still running, or outside the window)")
    if inv.errors:
        parts.append(f"{inv.errors} error line{'s' if inv.errors != 1 else ''}")
    if inv.matched_by == "time":
        parts.append("matched by time")
    return " · ".join(parts)


def _headline(result: LookupResult) -> str:
    info = result.api
    if info is not None and (info.method or info.status is not None):
        what = f"{info.method} {info.path}".strip() or "request"
        status = f" → {info.status}" if info.status is not None else ""
        return f"{what}{status}"
    return f"Request {result.request.value}"


def _outcome(result: LookupResult) -> str:
    """ "failed" (5xx or error lines), "client error" (4xx: refused, throttled, not found) or "ok"."""
    status = result.api.status if result.api is not None else None
    if result.errors or (status is not None and status >= 500):
        return "failed"
    if status is not None and 400 <= status < 500:
        return "client error"
    return "ok"


def _latency(result: LookupResult) -> str:
    info = result.api
    if info is None or info.latency_ms is None:
        return "?"
    text = f"{info.latency_ms} ms"
    if info.integration_latency_ms is not None:
        text += f" (integration {info.integration_latency_ms} ms)"
    return text


# Log lines hold what the logged code let anyone write (a request path, a header, a body). Control
# characters would drive an operator's terminal (ESC sequences rewrite or hide lines, OSC 52 sets the
# clipboard, a carriage return overwrites the line) and bidi controls reorder what Slack and the terminal
# show: they are shown as escapes. Tabs and line breaks stay (Lambda's own lines use tabs).
def inert(message: str) -> str:
    """``message`` with control and bidi characters written as ``\\uXXXX`` escapes."""
    text = message.replace("\r\n", "\n")
    return text if text.isascii() and text.isprintable() else escape_invisible(text, keep="\t\n")


def timeline_line(
    event: LogEvent, stage: ApiStage | None, *, limit: int | None = None, full_time: bool = False
) -> str:
    """One line, raw (the Slack paths escape it): ``full_time`` stamps it with the date and zone
    (``2024-05-01T10:15:30.120Z``), else with the time of day (``10:15:30.120Z``)."""
    message = inert(event.message.rstrip("\n"))
    if limit is not None:
        message = truncate(message, limit)
    stamp = _iso(event.timestamp) if full_time else _clock(event.timestamp)
    return f"{stamp} {group_label(event.group, stage):<12} {message}"


def slack_lines(events: Sequence[LogEvent], stage: ApiStage | None) -> list[str]:
    """Timeline lines for a Slack message: the first line and the first of each new day carry the
    date (UTC), the others the time of day only, which keeps lines short in Slack's narrow blocks."""
    lines: list[str] = []
    day: int | None = None
    for event in events:
        today = _day(event.timestamp)
        lines.append(timeline_line(event, stage, limit=SLACK_LINE_CHARS, full_time=today != day))
        day = today
    return lines


# -- lookup: Slack --------------------------------------------------------------------------------


def lookup_message(
    result: LookupResult, *, full: bool = False, ask: dict[str, str] | None = None
) -> SlackMessage:
    """Summary, errors, timeline (or a file when it does not fit), and the buttons. The timeline is the
    compact one (``bot.core.apilogs.compact``) unless ``full``; then a **Full timeline** button (its value:
    ``ask``, what to look up again) shows everything. The attached file always holds the full one."""
    if not result.found:
        return not_found_message(result)
    stage = result.stage
    info = result.api
    icon = {"failed": "❌", "client error": "⚠️"}.get(_outcome(result), "✅")
    head: list[Block] = [header(f"{icon} {_headline(result)}")]
    fields = [
        f"*Request*\n`{result.request.value}`",
        f"*API*\n{escape(stage.name or stage.api_id)} ({stage.api_id}) · {escape(stage.stage)}",
        f"*Status*\n{info.status if info and info.status is not None else '?'}",
        f"*Latency*\n{_latency(result)}",
        f"*Time*\n{slack_time(result.events[0].timestamp)}",
        f"*Functions*\n{escape(', '.join(dict.fromkeys(i.function for i in result.invocations)) or 'none found')}",
    ]
    if info is not None and info.request_id and info.request_id != result.request.value:
        fields.insert(1, f"*API request id*\n`{info.request_id}`")
    head.append(fields_section(fields))
    for invocation in result.invocations:
        head.append(section(f"λ {escape(invocation_line(invocation))}"))
    errors = result.errors
    if errors:
        shown = slack_lines(errors[:MAX_ERROR_LINES], stage)
        more = f" (first {MAX_ERROR_LINES} of {len(errors)})" if len(errors) > MAX_ERROR_LINES else ""
        head.append(section(f":rotating_light: *Errors*{more} (times in UTC)"))
        head.extend(code_blocks(shown, escape_text=True))
    for note in result.notes[:3]:
        head.append(context(f":information_source: {escape(note)}"))
    timeline_of = compact(result.events) if not full else Compact(list(result.events), {})
    left_out = f" · compact: {timeline_of.note()} left out" if timeline_of.dropped else ""
    head.append(
        context(
            f"Timeline (times in UTC): {_count(len(result.events), 'event')} from "
            f"{_count(len(result.groups), 'log group')} · {_count(result.stats.total_calls, 'CloudWatch call')}"
            f" · {result.elapsed_ms / 1000:.1f} s{left_out}"
        )
    )
    row = [tail_button(stage), insights_button(result.insights_url)]
    value = json.dumps(ask or {"id": result.request.value, "api": stage.api_id, "stage": stage.stage})
    # A value cut to fit would be broken JSON: past the limit (never with ids and stage names as AWS caps
    # them) there is no button, and the note below still says the timeline is compact.
    if timeline_of.dropped and len(value) <= MAX_BUTTON_VALUE:
        row.insert(0, button("Full timeline", ACTION_FULL, value))
    buttons = actions(row)
    timeline = code_blocks(slack_lines(timeline_of.events, stage), escape_text=True)
    note = (
        f"The timeline does not fit in a message: all of it ({_count(len(result.events), 'event')}) is in "
        "the attached file."
    )
    room_blocks = MAX_BLOCKS_MESSAGE - len(head) - 1
    room_chars = MAX_TOTAL_BLOCK_CHARS - block_chars(head) - block_chars([buttons])
    kept, dropped = fit(timeline, max_blocks=room_blocks, max_chars=room_chars, note=note)
    if len(head) + 1 > MAX_BLOCKS_MESSAGE or room_chars < 500:
        head, _ = fit(head, max_blocks=MAX_BLOCKS_MESSAGE - 2, max_chars=MAX_TOTAL_BLOCK_CHARS // 2)
        kept, dropped = [context(note)], True
    cut = any(len(e.message) > SLACK_LINE_CHARS for e in timeline_of.events)
    file = (
        (f"apilogs-{result.request.value}.txt", lookup_text(result, colour=False)) if dropped or cut else None
    )
    if cut and not dropped:
        kept.append(context("Long lines are shortened here; the attached file has them whole."))
    # The method and path come from the logs; the text is mrkdwn too (and notifies).
    text = truncate(
        escape(f"{_headline(result)} — {_count(len(result.events), 'log event')} for {result.request.value}"),
        300,
    )
    return SlackMessage(text, [*head, *kept, buttons], file)


def tail_button(stage: ApiStage) -> dict[str, Any]:
    value = json.dumps({"api": stage.api_id, "stage": stage.stage}, separators=(",", ":"))
    return button("Tail this API", ACTION_TAIL, value)


def insights_button(url: str) -> dict[str, Any]:
    return button("Open in CloudWatch Logs Insights", ACTION_INSIGHTS, url=url)


def not_found_message(result: LookupResult) -> SlackMessage:
    searched = _searched_lines(result)
    blocks: list[Block] = [
        header(f"Nothing found for {truncate(result.request.value, 100)}"),
        section(
            f"No log events mention `{result.request.value}` ({result.request.kind.label}) between "
            f"{slack_time(result.start_ms)} and {slack_time(result.end_ms)}."
        ),
        section("*Searched*\n" + "\n".join(f"• {escape(line)}" for line in searched[:15])),
    ]
    if result.likely_causes:
        blocks.append(
            section(
                "*Likely causes*\n"
                + "\n".join(f"• {times_in(cause, slack=True)}" for cause in result.likely_causes)
            )
        )
    for note in result.notes[:3]:
        blocks.append(context(f":information_source: {escape(note)}"))
    blocks.append(actions([tail_button(result.stage), insights_button(result.insights_url)]))
    kept, _ = fit(blocks)
    return SlackMessage(truncate(f"Nothing found for {result.request.value}.", MAX_MESSAGE_TEXT), kept)


def _searched_lines(result: LookupResult) -> list[str]:
    per_group: dict[str, list[str]] = {}
    for record in result.searches:
        label = "missing (the group does not exist)" if record.missing else f"{record.found} found"
        per_group.setdefault(record.group, []).append(
            f"{record.term or 'time window'}: {label}" if not record.missing else label
        )
    return [f"{group}: {'; '.join(dict.fromkeys(items))}" for group, items in per_group.items()]


# -- lookup: terminal -----------------------------------------------------------------------------

_PALETTE = ("36", "35", "34", "33", "32", "96", "95", "94")


# The width of a time on a terminal (``2024-05-01T10:15:30.120Z``), of the group and stream columns.
_TIME_WIDTH, _GROUP_WIDTH, _STREAM_WIDTH = 24, 14, 18


def timeline_header(*, colour: bool = False) -> str:
    """The labels of the columns ``timeline_text`` prints."""
    labels = f"{'TIME':<{_TIME_WIDTH}} {'GROUP':<{_GROUP_WIDTH}} {'STREAM':<{_STREAM_WIDTH}} MESSAGE"
    return paint(labels, "1", colour)


def timeline_text(events: Sequence[LogEvent], stage: ApiStage | None, *, colour: bool) -> list[str]:
    """``TIME  GROUP  STREAM  MESSAGE`` lines (``timeline_header`` labels them); groups in their own
    colour, errors in red."""
    colours: dict[str, str] = {}
    lines: list[str] = []
    for event in events:
        code = colours.setdefault(event.group, _PALETTE[len(colours) % len(_PALETTE)])
        label = group_label(event.group, stage)
        message = inert(event.message.rstrip("\n"))
        first, *rest = message.split("\n")
        prefix = (
            f"{paint(f'{_iso(event.timestamp):<{_TIME_WIDTH}}', '2', colour)} "
            f"{paint(f'{label:<{_GROUP_WIDTH}}', code, colour)} "
            f"{paint(f'{_stream_label(event.stream):<{_STREAM_WIDTH}}', '2', colour)} "
        )
        error = is_error(message)
        lines.append(prefix + (paint(first, "31", colour) if error else first))
        indent = " " * (
            max(_TIME_WIDTH, len(_iso(event.timestamp))) + 1 + _GROUP_WIDTH + 1 + _STREAM_WIDTH + 1
        )
        lines.extend(indent + (paint(line, "31", colour) if error else line) for line in rest)
    return lines


def lookup_text(result: LookupResult, *, colour: bool, full: bool = True) -> str:
    """The terminal answer; ``full=False`` prints the compact timeline and says what it left out."""
    stage = result.stage
    out: list[str] = []
    if not result.found:
        out.append(f"Nothing found for {result.request.value} ({result.request.kind.label}).")
        out.append(f"Window: {_iso(result.start_ms)} .. {_iso(result.end_ms)}")
        out.append("Searched:")
        out.extend(f"  {line}" for line in _searched_lines(result))
        if result.likely_causes:
            out.append("Likely causes:")
            out.extend(f"  - {times_in(cause, slack=False)}" for cause in result.likely_causes)
        out.extend(f"Note: {note}" for note in result.notes)
        out.append(f"Logs Insights: {result.insights_url}")
        return "\n".join(out)
    info = result.api
    emphasis = {"failed": "31;1", "client error": "33;1"}.get(_outcome(result), "1")
    out.append(paint(_headline(result), emphasis, colour) + f"   {stage.label}")
    out.append(f"Request: {result.request.value} ({result.request.kind.label})")
    if info is not None:
        if info.request_id and info.request_id != result.request.value:
            out.append(f"API request id: {info.request_id}")
        if info.extended_id:
            out.append(f"Extended request id: {info.extended_id}")
        out.append(f"Latency: {_latency(result)}")
    for invocation in result.invocations:
        out.append("λ " + invocation_line(invocation))
    errors = result.errors
    if errors:
        out.append(paint(f"Errors ({len(errors)}):", "31;1", colour))
        out.extend(
            "  " + timeline_line(e, stage, limit=200, full_time=True).replace("\n", " ")
            for e in errors[:MAX_ERROR_LINES]
        )
    out.extend(f"Note: {note}" for note in result.notes)
    out.append("")
    shown = compact(result.events) if not full else Compact(list(result.events), {})
    out.append(timeline_header(colour=colour))
    out.extend(timeline_text(shown.events, stage, colour=colour))
    if shown.dropped:
        out.append(paint(f"({shown.note()} left out: --full shows them)", "2", colour))
    out.append("")
    out.append(
        f"{_count(len(result.events), 'event')} from {_count(len(result.groups), 'log group')}; "
        f"{_count(result.stats.total_calls, 'CloudWatch call')} ({_calls(result.stats.calls)}), "
        f"{_count(result.stats.events, 'event')} read, {result.elapsed_ms / 1000:.2f} s"
    )
    out.append(f"Logs Insights: {result.insights_url}")
    return "\n".join(out)


def _calls(calls: dict[str, int]) -> str:
    return ", ".join(f"{op} {n}" for op, n in sorted(calls.items()))


# -- tail -----------------------------------------------------------------------------------------


def _tail_what(stage: ApiStage, groups: Sequence[str], *, pattern: str, path: str = "") -> str:
    names = ", ".join(group_label(g, stage) for g in groups)
    return (
        f"*{escape(stage.name or stage.api_id)}* stage *{escape(stage.stage)}*: "
        f"{_count(len(groups), 'log group')} ({escape(names)})"
        # Posted to the whole channel as opsbot: the caller's pattern capped, and kept inside its code span.
        + (f", filter {escape(echo(pattern))}" if pattern else "")
        + (f", requests to {escape(echo(path))}" if path else "")
    )


def tail_started_message(
    stage: ApiStage,
    groups: Sequence[str],
    tail_id: str,
    *,
    duration: str,
    pattern: str,
    capped_from: str = "",
    path: str = "",
) -> SlackMessage:
    """The tail's top message while it runs, with its Stop button. ``capped_from``: the ``--for`` asked
    for when it was more than the run can last (``duration`` is then what it was capped to)."""
    blocks = [
        section(
            f":hourglass_flowing_sand: Tailing {_tail_what(stage, groups, pattern=pattern, path=path)} for "
            f"{escape(duration)}. New lines appear in this thread (times in UTC)."
        ),
    ]
    if capped_from:
        blocks.append(context(escape(capped_note(capped_from, duration))))
    blocks.append(actions([button("Stop", ACTION_STOP, tail_id, style="danger")]))
    return SlackMessage(f"Tailing {stage.label}", blocks)


def capped_note(asked: str, capped: str) -> str:
    return (
        f"--for {asked} is more than one run may last (the Lambda time limit): capped to {capped}. "
        "For longer, tail again afterwards or use `opsbot apilogs tail`."
    )


def tail_ended_message(
    stage: ApiStage,
    groups: Sequence[str],
    summary: TailSummary,
    *,
    pattern: str,
    who: str = "",
    capped_from: str = "",
    capped_to: str = "",
    path: str = "",
) -> SlackMessage:
    """The top message once the tail has ended (replacing the running one and its Stop button)."""
    blocks = [
        section(
            f"Tail of {_tail_what(stage, groups, pattern=pattern, path=path)}. Its lines are in this thread (times in UTC)."
        ),
        section(
            f":white_check_mark: Ended{who}: {_count(summary.events, 'line')}, {_count(summary.errors, 'error')}."
        ),
    ]
    if capped_from:
        blocks.append(context(escape(capped_note(capped_from, capped_to))))
    return SlackMessage(f"Tail of {stage.label} ended{who}.", blocks)


# What one tail message holds at most; the rest waits for the next message (a second later).
TAIL_MESSAGE_CHARS = 11_000
TAIL_MESSAGE_BLOCKS = 40


def tail_message(
    events: Sequence[LogEvent], stage: ApiStage | None, *, note: str = ""
) -> tuple[SlackMessage, int]:
    """One thread message with as many of ``events`` (oldest first) as fit; returns it and how many."""
    lines: list[str] = []
    used = 0
    day: int | None = None
    for event in events:
        # The date on the message's first line and when the day changes (see slack_lines).
        line = timeline_line(event, stage, limit=SLACK_LINE_CHARS, full_time=_day(event.timestamp) != day)
        size = len(escape(line)) + 1  # as posted: escaping lengthens a line
        if lines and used + size > TAIL_MESSAGE_CHARS:
            break
        lines.append(line)
        used += size
        day = _day(event.timestamp)
    blocks = code_blocks(lines, escape_text=True)[:TAIL_MESSAGE_BLOCKS] if lines else []
    if note:
        blocks.append(context(escape(note)))
    if not blocks:
        blocks = [context("No new lines.")]
    text = truncate(_count(len(lines), "log line") + (f" ({note})" if note else ""), MAX_MESSAGE_TEXT)
    return SlackMessage(text, blocks), len(lines)


def tail_summary_message(summary: TailSummary) -> SlackMessage:
    reason = {
        "stopped": "stopped with the Stop button",
        "interrupted": "stopped (Ctrl-C)",
        "time limit": "reached its time limit",
        "closed": "ended",
    }.get(summary.stop_reason, summary.stop_reason or "ended")
    ended = summary.ended or datetime.now(UTC)
    seconds = (ended - summary.started).total_seconds()
    how = {"live": "Live Tail", "live+poll": "Live Tail, then polling"}.get(summary.mode, "polling")
    text = (
        f"Tail {reason} after {seconds:.0f} s: {_count(summary.events, 'line')} "
        f"({_count(summary.errors, 'error')}) from {_count(len(summary.groups), 'log group')}, by {how}."
    )
    blocks = [section(f":white_check_mark: {escape(text)}")]
    for note in summary.notes[:5]:
        blocks.append(context(escape(note)))
    return SlackMessage(text, blocks)


def tail_batch_text(batch: TailBatch, stage: ApiStage | None, *, colour: bool) -> list[str]:
    return timeline_text(batch.events, stage, colour=colour)


def tail_summary_text(summary: TailSummary) -> str:
    return tail_summary_message(summary).text + "".join(f"\nNote: {note}" for note in summary.notes)


# -- tail by request ------------------------------------------------------------------------------

# Lines of a failing entry shown in Slack (errors first, then the functions' lines); the Look up button
# has them all.
ENTRY_LINES = 8
ENTRIES_PER_MESSAGE = 6


def _entry_icon(entry: RequestEntry) -> str:
    if entry.errors or (entry.status is not None and entry.status >= 500):
        return "❌"
    if entry.status is not None and entry.status >= 400:
        return "⚠️"
    return "✅" if entry.status is not None else "•"


def entry_headline(entry: RequestEntry) -> str:
    """``POST /orders → 502 · 312 ms · λ orders-api 180 ms`` (what is known so far)."""
    if entry.kind == "line":
        return "a line of no request"
    parts: list[str] = []
    if entry.kind == "request":
        what = f"{entry.method} {entry.path}".strip() or "request"
        parts.append(what + (f" → {entry.status}" if entry.status is not None else " (no status yet)"))
        if entry.latency_ms is not None:
            parts.append(f"{entry.latency_ms} ms")
    else:
        parts.append("invocation without API Gateway lines")
    if entry.function:
        parts.append(
            f"λ {entry.function}" + (f" {_ms(entry.duration_ms)}" if entry.duration_ms is not None else "")
        )
    if entry.errors:
        parts.append(_count(entry.errors, "error line"))
    return " · ".join(parts)


def _api_line(event: LogEvent, stage: ApiStage | None) -> bool:
    if stage is not None and event.group in {stage.execution_log_group, stage.access_log_group}:
        return True
    return event.group.startswith("API-Gateway-Execution-Logs_")


def _entry_detail(entry: RequestEntry, stage: ApiStage | None) -> list[LogEvent]:
    """A failing entry's lines worth showing: the errors, then its functions' own lines."""
    errors = [e for e in entry.events if is_error(e.message)]
    rest = [e for e in compact(entry.events).events if e not in errors and not _api_line(e, stage)]
    return (errors + rest)[:ENTRY_LINES]


def lookup_entry_button(entry: RequestEntry, stage: ApiStage) -> dict[str, Any]:
    value = json.dumps(
        {"id": entry.lookup_id, "api": stage.api_id, "stage": stage.stage}, separators=(",", ":")
    )
    return button("Look up", ACTION_LOOKUP, value)


def entry_blocks(entry: RequestEntry, stage: ApiStage | None) -> list[Block]:
    """One entry: its headline (with **Look up** when it failed), then for a failing one its error and
    function lines, for the others how many lines are folded under it."""
    stamp = _clock(entry.first_ms) if entry.events else ""
    head = f"{_entry_icon(entry)} `{stamp}` *{escape(entry_headline(entry))}*"
    if entry.lookup_id:
        head += f"\n`{escape(entry.lookup_id)}`"
    main = section(head)
    if entry.failed and entry.lookup_id and stage is not None:
        main["accessory"] = lookup_entry_button(entry, stage)
    blocks: list[Block] = [main]
    if entry.kind == "line" or entry.failed:
        shown = entry.events[:ENTRY_LINES] if entry.kind == "line" else _entry_detail(entry, stage)
        blocks.extend(code_blocks(slack_lines(shown, stage), escape_text=True)[:1])
        if len(entry.events) > len(shown):
            blocks.append(context(f"+{len(entry.events) - len(shown)} more lines (Look up shows them all)"))
    else:
        functions = sum(1 for e in entry.events if not _api_line(e, stage))
        api = len(entry.events) - functions
        blocks.append(
            context(f"{_count(api, 'API Gateway line')} · {_count(functions, 'Lambda line')} folded")
        )
    return blocks


def tail_entries_message(
    entries: Sequence[RequestEntry], stage: ApiStage | None, *, note: str = ""
) -> tuple[SlackMessage, int]:
    """One thread message holding ``entries`` (oldest first) as far as they fit; returns it and how many."""
    blocks: list[Block] = []
    count = 0
    for entry in entries:
        more = entry_blocks(entry, stage)
        if count and (
            len(blocks) + len(more) > MAX_BLOCKS_MESSAGE - 2
            or block_chars(blocks + more) > TAIL_MESSAGE_CHARS
        ):
            break
        blocks.extend(more)
        count += 1
    if note:
        blocks.append(context(escape(note)))
    if not blocks:
        blocks = [context("No requests yet.")]
    failing = sum(1 for e in entries[:count] if e.failed)
    text = truncate(
        _count(count, "request")
        + (f" ({failing} failing)" if failing else "")
        + (f" ({note})" if note else ""),
        MAX_MESSAGE_TEXT,
    )
    return SlackMessage(text, blocks), count


def entry_text(
    entry: RequestEntry, stage: ApiStage | None, *, colour: bool, events: Sequence[LogEvent] | None = None
) -> list[str]:
    """Terminal: the headline, then its lines indented (``events``: only these, for late lines)."""
    emphasis = {"❌": "31;1", "⚠️": "33;1"}.get(_entry_icon(entry), "1")
    stamp = _iso(entry.first_ms) if entry.events else ""
    late = events is not None
    title = f"{stamp} {_entry_icon(entry)} {entry_headline(entry)}" + (
        f"  {entry.lookup_id}" if entry.lookup_id else ""
    )
    if late:
        title = f"  ↳ later lines of {entry.lookup_id or 'the entry above'} ({entry_headline(entry)})"
    lines = [paint(title, emphasis if not late else "2", colour)]
    shown = list(entry.events if events is None else events)
    if not entry.failed and events is None:
        shown = [e for e in shown if not _api_line(e, stage)]  # the headline says what they say
    lines.extend("    " + line for line in timeline_text(shown, stage, colour=colour))
    return lines
