"""Presentation of /fanout: Block Kit (paged within Slack's limits) and terminal text."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bot.core.fanout.commands import (
    ERROR,
    CheckReport,
    Hook,
    ListFilters,
    Listing,
    SourceGroup,
    Target,
    ToggleResult,
)
from bot.render.blocks import (
    MAX_BLOCKS_MESSAGE,
    MAX_BUTTON_VALUE,
    MAX_TOTAL_BLOCK_CHARS,
    Block,
    actions,
    block_chars,
    button,
    context,
    divider,
    escape,
    header,
    plural,
    section,
    truncate,
)

ACTION_ACTIVATE = "fanout:activate"
ACTION_DEACTIVATE = "fanout:deactivate"
ACTION_PAGE = "fanout:page"
ACTION_CHECK_PAGE = "fanout:check"

# Room left on every page for the header, the note (a redraw after a click), the page context and the
# navigation buttons: every block a chunk holds, dividers included, counts against the rest.
_PAGE_BLOCKS = MAX_BLOCKS_MESSAGE - 4
_PAGE_CHARS = MAX_TOTAL_BLOCK_CHARS - 3000
_NOTE_CHARS = 800
_CONTEXT_CHARS = 1500


def _hook_line(source_group: SourceGroup) -> str:
    if not source_group.hooks_known:
        return f"hook to {source_group.function}: unknown"
    hook = source_group.hook
    if hook is None:
        return f"not hooked to {source_group.function}"
    return (
        f"hooked to {source_group.function}: "
        + hook_summary(hook)
        + (f" (+{len(source_group.hooks) - 1} more mapping)" if len(source_group.hooks) > 1 else "")
    )


def hook_summary(hook: Hook) -> str:
    parts = [hook.state or "unknown state"]
    if hook.batch_size is not None:
        parts.append(f"batch {hook.batch_size}")
    if hook.starting_position:
        parts.append(hook.starting_position)
    if hook.last_processing_result:
        parts.append(f"last result: {hook.last_processing_result}")
    return ", ".join(parts)


def _details(target: Target) -> str:
    a = target.attributes
    parts: list[str] = []
    if "collapse" in a:
        parts.append(f"collapse {a['collapse']}")
    if "role" in a:
        parts.append(f"role {a['role']}" + (" (external id)" if "externalId" in a else ""))
    if "region" in a:
        parts.append(f"region {a['region']}")
    for name, value in target.options.items():
        shown = str(value).lower() if isinstance(value, bool) else repr(value)
        parts.append(f"{name} {shown}")
    return ", ".join(parts)


@dataclass(frozen=True)
class ToggleRef:
    """What a toggle button identifies: the item, and the listing it was shown in."""

    table: str
    source_arn: str
    target_id: str
    filters: ListFilters


def toggle_value(target: Target, filters: ListFilters, nonce: str = "") -> str:
    """A toggle button's value: the item's key and the listing's filters (to redraw it), nothing secret.

    ``nonce`` makes every drawn button distinct, so the idempotency lock stops a double click on this
    button without blocking a later click on a redrawn one.
    """
    document = {
        "t": target.table,
        "s": target.source_arn,
        "i": target.id,
        "f": [filters.source, filters.type, filters.inactive],
        "n": nonce,
    }
    return json.dumps(document, separators=(",", ":"))


def parse_toggle_value(value: str) -> ToggleRef:
    """The ToggleRef of a toggle button; ValueError when malformed."""
    data: Any = json.loads(value)
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), str) and data.get(k) for k in ("t", "s", "i")
    ):
        raise ValueError("not a fan-out target reference")
    source, kind, inactive = _filters_of(data.get("f", [None, None, False]))
    return ToggleRef(
        data["t"], data["s"], data["i"], ListFilters(source=source, type=kind, inactive=inactive)
    )


def _filters_of(raw: Any) -> tuple[str | None, str | None, bool]:
    if not isinstance(raw, list) or len(raw) != 3:
        raise ValueError("filters")
    source, kind, inactive = raw
    if (source is not None and not isinstance(source, str)) or (
        kind is not None and not isinstance(kind, str)
    ):
        raise ValueError("filters")
    return source, kind, bool(inactive)


def page_of(listing: Listing, table: str, source_arn: str, target_id: str) -> int:
    """The page of the listing that shows this target (0 when it is not shown)."""
    for number, chunk in enumerate(listing_chunks(listing)):
        for block in chunk:
            if block.get("block_id") == _block_id(table, source_arn, target_id):
                return number
    return 0


def _block_id(table: str, source_arn: str, target_id: str) -> str:
    import hashlib

    digest = hashlib.sha256(f"{table}\n{source_arn}\n{target_id}".encode()).hexdigest()[:24]
    return f"fanout_t_{digest}"


def page_value(filters: ListFilters, page: int) -> str:
    return json.dumps(
        {"p": page, "f": [filters.source, filters.type, filters.inactive]}, separators=(",", ":")
    )


def parse_page_value(value: str) -> tuple[int, ListFilters]:
    data: Any = json.loads(value)
    if not isinstance(data, dict):
        raise ValueError("not a page reference")
    page = data.get("p")
    if not isinstance(page, int) or isinstance(page, bool) or page < 0:
        raise ValueError("page")
    source, kind, inactive = _filters_of(data.get("f"))
    return page, ListFilters(source=source, type=kind, inactive=inactive)


def _target_block(target: Target, *, filters: ListFilters, buttons: bool, nonce: str) -> Block:
    state = ":large_green_circle: active" if target.active else ":white_circle: inactive"
    stored = target.attributes.get("active")
    if not isinstance(stored, bool):
        state = f":warning: active is {escape(repr(stored))}"
    destination = escape(truncate(target.destination or repr(target.attributes.get("destination")), 400))
    text = (
        f"*{escape(truncate(target.id, 200))}* · `{escape(target.type or '?')}` → `{destination}` · {state}"
    )
    details = _details(target)
    if details:
        text += "\n" + escape(truncate(details, 1500))
    block = section(text, block_id=_block_id(target.table, target.source_arn, target.id))
    value = toggle_value(target, filters, nonce)
    if buttons and len(value) <= MAX_BUTTON_VALUE:
        if target.active:
            block["accessory"] = button(
                f"Deactivate {target.id}",
                ACTION_DEACTIVATE,
                value,
                style="danger",
                confirm=("Deactivate this target?", f"Records from this source stop going to {target.id}."),
            )
        else:
            block["accessory"] = button(f"Activate {target.id}", ACTION_ACTIVATE, value, style="primary")
    return block


def _source_block(source_group: SourceGroup) -> Block:
    ref = source_group.source
    lines = [
        f"*{escape(ref.display)}*  ·  table `{escape(source_group.table)}`",
        f"`{escape(ref.arn)}`",
        escape(_hook_line(source_group)),
    ]
    if not source_group.targets:
        lines.append("_no targets_")
    return section("\n".join(lines))


def listing_chunks(listing: Listing, *, buttons: bool = True, nonce: str = "") -> list[list[Block]]:
    """The listing split into pages that each fit in one message (with room for header and navigation)."""
    pages: list[list[Block]] = []
    current: list[Block] = []
    used = 0
    for source_group in listing.groups:
        blocks = [_source_block(source_group)] + [
            _target_block(t, filters=listing.filters, buttons=buttons, nonce=nonce)
            for t in source_group.targets
        ]
        for index, block in enumerate(blocks):
            size = block_chars([block])
            # A source that starts below another on the same page is set off by a divider, so it needs
            # room for both; at the top of a page it needs none.
            separated = index == 0 and bool(current)
            if current and (len(current) + 1 + separated > _PAGE_BLOCKS or used + size > _PAGE_CHARS):
                pages.append(current)
                current, used = [], 0
                separated = False
                if index > 0:  # a source continues on the next page: repeat its heading, briefly
                    heading = section(f"*{escape(source_group.source.display)}* (continued)")
                    current.append(heading)
                    used += block_chars([heading])
            if separated:
                current.append(divider())
            current.append(block)
            used += size
    if current:
        pages.append(current)
    return pages


def listing_blocks(
    listing: Listing, *, page: int = 0, buttons: bool = True, nonce: str = "", note: str = ""
) -> list[Block]:
    """One page of the listing. ``note`` (e.g. who just changed what) is shown under the header."""
    chunks = listing_chunks(listing, buttons=buttons, nonce=nonce)
    title = "aws-lambda-fanout targets"
    blocks: list[Block] = [header(title)]
    if note:
        blocks.append(section(truncate(note, _NOTE_CHARS)))
    notes = [f"{plural(listing.target_count, 'target')} in {plural(len(listing.groups), 'source')}"]
    if listing.filters.source:
        notes.append(f"source {escape(listing.filters.source)}")
    if listing.filters.type:
        notes.append(f"type {escape(listing.filters.type)}")
    if listing.filters.inactive:
        notes.append("inactive only")
    for function, reason in listing.hook_errors.items():
        notes.append(f"hooks of {escape(function)} unknown: {escape(truncate(reason, 300))}")
    if not chunks:
        blocks += [context(truncate(" · ".join(notes), _CONTEXT_CHARS)), section("No targets match.")]
        return blocks
    page = max(0, min(page, len(chunks) - 1))
    if len(chunks) > 1:
        notes.append(f"page {page + 1} of {len(chunks)}")
    blocks.append(context(truncate(" · ".join(notes), _CONTEXT_CHARS)))
    blocks += chunks[page]
    navigation = []
    if page > 0:
        navigation.append(
            button("‹ Previous page", f"{ACTION_PAGE}:prev", page_value(listing.filters, page - 1))
        )
    if page + 1 < len(chunks):
        navigation.append(button("Next page ›", f"{ACTION_PAGE}:next", page_value(listing.filters, page + 1)))
    if navigation:
        blocks.append(actions(navigation, block_id="fanout_pages"))
    return blocks


def listing_text(listing: Listing) -> str:
    if not listing.groups:
        return "No targets match."
    lines: list[str] = []
    for source_group in listing.groups:
        ref = source_group.source
        lines.append(f"{ref.display}  [{source_group.table}]")
        lines.append(f"  {ref.arn}")
        lines.append(f"  {_hook_line(source_group)}")
        if not source_group.targets:
            lines.append("  (no targets)")
        else:
            width_id = max(len("ID"), *(len(t.id) for t in source_group.targets))
            width_type = max(len("TYPE"), *(len(t.type or "?") for t in source_group.targets))
            lines.append(f"  {'ID':<{width_id}}  {'TYPE':<{width_type}}  ACTIVE  DESTINATION")
            for target in source_group.targets:
                stored = target.attributes.get("active")
                active = ("yes" if target.active else "no") if isinstance(stored, bool) else f"{stored!r}?"
                lines.append(
                    f"  {target.id:<{width_id}}  {target.type or '?':<{width_type}}  {active:<6}  "
                    f"{target.destination or repr(target.attributes.get('destination'))}"
                )
                details = _details(target)
                if details:
                    lines.append(f"  {'':<{width_id}}  {details}")
        lines.append("")
    for function, reason in listing.hook_errors.items():
        lines.append(f"hooks of {function} unknown: {reason}")
    return "\n".join(lines).rstrip()


# -- check -----------------------------------------------------------------------------------------


def _finding_line(finding: Any, *, slack: bool) -> str:
    where = finding.source_arn + (f" / {finding.target_id}" if finding.target_id else "")
    if slack:
        icon = ":x:" if finding.severity == ERROR else ":warning:"
        return f"{icon} `{escape(truncate(where, 500))}` ({escape(finding.rule)})\n{escape(finding.reason)}"
    return f"{finding.severity.upper():<7} {finding.rule:<24} {where}\n        {finding.reason}"


def check_page_value(page: int, deep: bool = False) -> str:
    document: dict[str, Any] = {"p": page}
    if deep:
        document["d"] = True  # the other pages check --deep too
    return json.dumps(document, separators=(",", ":"))


def parse_check_page_value(value: str) -> int:
    """The page a check page button asks for; ValueError when malformed."""
    return parse_check_page(value)[0]


def parse_check_page(value: str) -> tuple[int, bool]:
    """(page, deep) of a check page button; ValueError when malformed."""
    data: Any = json.loads(value)
    page = data.get("p") if isinstance(data, dict) else None
    if not isinstance(page, int) or isinstance(page, bool) or page < 0:
        raise ValueError("not a check page reference")
    return page, data.get("d") is True


def check_summary(report: CheckReport) -> str:
    summary = (
        f"{plural(report.targets_checked, 'target')} in {plural(report.sources_checked, 'source')}: "
        f"{plural(report.errors, 'error')}, {plural(report.warnings, 'warning')}"
    )
    deep = deep_summary(report)
    return f"{summary} · {deep}" if deep else summary


def _check_head(report: CheckReport, note: str) -> list[Block]:
    summary = check_summary(report)
    blocks: list[Block] = [header("aws-lambda-fanout check"), context(summary + note)]
    for function, reason in report.hook_errors.items():
        blocks.append(context(f"hooks of {escape(function)} not checked: {escape(truncate(reason, 500))}"))
    return blocks


# Room kept on each page for the page note in the summary and the navigation buttons.
_CHECK_PAGE_RESERVE = 600


def check_chunks(report: CheckReport, *, limit_blocks: int = MAX_BLOCKS_MESSAGE) -> list[list[Block]]:
    """The findings split into pages that each fit in one message with the summary and navigation."""
    head = _check_head(report, "")
    room = max(1, limit_blocks - len(head) - 1)
    budget = MAX_TOTAL_BLOCK_CHARS - block_chars(head) - _CHECK_PAGE_RESERVE
    pages: list[list[Block]] = []
    current: list[Block] = []
    used = 0
    for finding in report.findings:
        block = section(_finding_line(finding, slack=True))
        size = block_chars([block])
        if current and (len(current) >= room or used + size > budget):
            pages.append(current)
            current, used = [], 0
        current.append(block)
        used += size
    if current:
        pages.append(current)
    return pages


def check_blocks(
    report: CheckReport, *, page: int = 0, limit_blocks: int = MAX_BLOCKS_MESSAGE
) -> list[Block]:
    """One page of the check's findings, with buttons to the others (like the list's)."""
    chunks = check_chunks(report, limit_blocks=limit_blocks)
    deep = report.deep is not None
    if not chunks:
        return [
            *_check_head(report, ""),
            section(":white_check_mark: The fan-out function would accept every target as configured."),
        ]
    page = max(0, min(page, len(chunks) - 1))
    note = (
        f" · page {page + 1} of {len(chunks)} · `opsbot fanout check` prints all" if len(chunks) > 1 else ""
    )
    blocks = _check_head(report, note) + chunks[page]
    navigation = []
    if page > 0:
        navigation.append(
            button("‹ Previous page", f"{ACTION_CHECK_PAGE}:prev", check_page_value(page - 1, deep))
        )
    if page + 1 < len(chunks):
        navigation.append(
            button("Next page ›", f"{ACTION_CHECK_PAGE}:next", check_page_value(page + 1, deep))
        )
    if navigation:
        blocks.append(actions(navigation, block_id="fanout_check_pages"))
    return blocks


def check_text(report: CheckReport) -> str:
    lines = [check_summary(report)]
    lines += [_finding_line(f, slack=False) for f in report.findings]
    lines += [f"hooks of {function} not checked: {reason}" for function, reason in report.hook_errors.items()]
    deep = deep_text(report)
    if deep:
        lines += ["", deep]
    return "\n".join(lines)


# -- toggle ----------------------------------------------------------------------------------------


def toggle_blocks(result: ToggleResult, *, actor: str = "") -> list[Block]:
    icon = ":large_green_circle:" if result.active else ":white_circle:"
    by = f" (by <@{actor}>)" if actor else ""
    return [section(f"{icon} {escape(result.message)}{by}")]


def toggle_text(result: ToggleResult) -> str:
    return result.message


# -- check --deep ------------------------------------------------------------------------------------


def deep_summary(report: CheckReport) -> str:
    if report.deep is None:
        return ""
    if not report.deep:
        return "no target has a cross-account role to check"
    return (
        f"{plural(len(report.deep), 'cross-account target')} checked through "
        f"{'its role' if len(report.deep) == 1 else 'their roles'}: "
        f"{report.deep_failed} failed"
    )


def deep_text(report: CheckReport) -> str:
    if report.deep is None:
        return ""
    lines = [deep_summary(report)]
    for result in report.deep:
        mark = "OK  " if result.ok else "FAIL"
        lines.append(f"{mark} {result.source_arn} / {result.target_id}: {result.detail}")
    return "\n".join(lines)


# -- health ------------------------------------------------------------------------------------------

ACTION_PAUSE = "fanout:pause"
ACTION_RESUME = "fanout:resume"

_VERDICT_ICONS = {
    "healthy": ":large_green_circle:",
    "falling behind": ":large_orange_circle:",
    "failing": ":red_circle:",
    "paused": ":double_vertical_bar:",
}


def hook_value(table: str, source_arn: str, nonce: str = "") -> str:
    """A Pause/Resume button's value: the source and its table (nothing secret); ``nonce`` makes each drawn
    button its own idempotency key."""
    return json.dumps({"t": table, "s": source_arn, "n": nonce}, separators=(",", ":"))


def parse_hook_value(value: str) -> tuple[str, str]:
    """(table, source ARN) of a Pause/Resume button; ValueError when malformed."""
    data: Any = json.loads(value)
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), str) and data.get(k) for k in ("t", "s")
    ):
        raise ValueError("not a fan-out source reference")
    return data["t"], data["s"]


def _metrics_line(source: Any) -> str:
    from bot.core.fanout.health import duration_text

    m = source.metrics
    parts = [f"iterator age max {duration_text(m.iterator_age_max_ms)} ({m.iterator_age_trend})"]
    if m.stream_iterator_age_max_ms is not None and m.function_iterator_age_max_ms is not None:
        parts.append(f"function-wide {duration_text(m.function_iterator_age_max_ms)}")

    def count(value: float | None) -> str:
        return "no data" if value is None else f"{value:.0f}"

    parts.append(f"errors {count(m.errors)} of {count(m.invocations)} invocations")
    parts.append(f"throttles {count(m.throttles)}")
    duration = f"duration max {duration_text(m.duration_max_ms)}"
    if m.timeout_ms:
        duration += f" of {duration_text(m.timeout_ms)} timeout"
    parts.append(duration)
    concurrency = f"concurrency max {count(m.concurrency_max)}"
    if m.reserved_concurrency is not None:
        concurrency += f" (reserved {m.reserved_concurrency})"
    parts.append(concurrency)
    if source.source.kind == "kinesis":
        parts.append(f"read throttled {count(m.read_throttled)}, write throttled {count(m.write_throttled)}")
    return " · ".join(parts)


def _stream_line(source: Any) -> str:
    stream = source.stream
    if stream is None:
        return ""
    if stream.error:
        return f"stream unknown: {stream.error}"
    if source.source.kind == "kinesis":
        shards = f"{stream.shards_open} open shard{'' if stream.shards_open == 1 else 's'}"
        if stream.shards_total is not None and stream.shards_total != stream.shards_open:
            shards += f" ({stream.shards_total} with closed)"
        return f"stream {stream.status}, {shards}, retention {stream.retention_hours} h"
    return f"table stream {stream.status}"


def _errors_lines(source: Any, *, limit: int) -> list[str]:
    lines: list[str] = []
    for group in source.errors:
        who = f"target {group.target_id}" if group.target_id else "no target named (function-wide)"
        lines.append(
            f"{group.count} error line{'' if group.count == 1 else 's'}, {who}: {group.samples[0][:limit]}"
        )
    return lines


def health_blocks(report: Any, *, buttons: bool = True, nonce: str = "") -> list[Block]:
    """One message: a section per source (verdict, why, hook, stream, metrics, errors) with a Pause button
    on a falling-behind or failing source and Resume on a paused one (``buttons``: the caller may)."""
    from bot.core.fanout.health import BEHIND, FAILING, PAUSED

    window = f"last {report.since} · {report.metric_queries} metric queries in {plural(report.metric_requests, 'request')}"
    blocks: list[Block] = [header("aws-lambda-fanout health"), context(escape(window))]
    if not report.sources:
        blocks.append(section("No hooked source to look at."))
    room = MAX_BLOCKS_MESSAGE - 4
    for source in report.sources[:room]:
        verdict = source.verdict
        icon = _VERDICT_ICONS.get(verdict.state, ":grey_question:")
        lines = [
            f"{icon} *{escape(source.source.display)}* · *{escape(verdict.state)}*: {escape(truncate(verdict.why, 600))}",
            f"hooked to {escape(source.group.function)}: {escape(hook_summary(source.hook))}",
        ]
        stream = _stream_line(source)
        if stream:
            lines.append(escape(truncate(stream, 300)))
        lines.append(escape(_metrics_line(source)))
        lines += [f"• {escape(line)}" for line in _errors_lines(source, limit=200)[:4]]
        block = section(truncate("\n".join(lines), 2900))
        value = hook_value(source.group.table, source.source.arn, nonce)
        if buttons and len(value) <= MAX_BUTTON_VALUE:
            if verdict.state in (BEHIND, FAILING):
                block["accessory"] = button(
                    f"Pause {source.source.name}"[:75],
                    ACTION_PAUSE,
                    value,
                    style="danger",
                    confirm=(f"Pause {source.source.name}?"[:100], pause_confirm_text(source)),
                )
            elif verdict.state == PAUSED:
                block["accessory"] = button(
                    f"Resume {source.source.name}"[:75], ACTION_RESUME, value, style="primary"
                )
        blocks.append(block)
    notes = [f"not hooked: {', '.join(r.name for r in report.unhooked)}"] if report.unhooked else []
    notes += list(report.notes)
    if len(report.sources) > room:
        notes.append(f"{len(report.sources) - room} more sources: `opsbot fanout health` prints all")
    if notes:
        blocks.append(context(escape(truncate(" · ".join(notes), _CONTEXT_CHARS))))
    while block_chars(blocks) > MAX_TOTAL_BLOCK_CHARS and len(blocks) > 3:
        blocks.pop(-2)  # drop the last sources rather than have Slack refuse the whole message
    return blocks


def pause_confirm_text(source: Any) -> str:
    """The confirmation dialog: the backlog that pausing lets build up (Slack allows 300 characters)."""
    retention = source.stream.retention_hours if source.stream else None
    kept = f"{retention} h" if retention else "its retention period"
    return truncate(
        f"Records of {source.source.name} will pile up unread and its {source.active_targets} active targets "
        f"get nothing until resumed; the stream keeps records {kept}. Backlog now: "
        f"{_age_text(source.metrics.iterator_age_max_ms)}.",
        300,
    )


def _age_text(ms: float | None) -> str:
    from bot.core.fanout.health import duration_text

    return "unknown" if ms is None else duration_text(ms)


def health_text(report: Any) -> str:
    lines = [
        f"window: last {report.since} ({report.start.isoformat()} .. {report.end.isoformat()}, "
        f"{report.period} s points); {report.metric_queries} metric queries in "
        f"{plural(report.metric_requests, 'GetMetricData request')}"
    ]
    if not report.sources:
        lines.append("No hooked source to look at.")
    for source in report.sources:
        lines.append("")
        lines.append(f"{source.source.display}  [{source.verdict.state.upper()}]  {source.source.arn}")
        lines.append(f"  why: {source.verdict.why}")
        lines.append(f"  hooked to {source.group.function}: {hook_summary(source.hook)}")
        stream = _stream_line(source)
        if stream:
            lines.append(f"  {stream}")
        lines.append(f"  {_metrics_line(source)}")
        for group in source.errors:
            who = f"target {group.target_id}" if group.target_id else "no target named (function-wide)"
            lines.append(f"  errors, {who}: {group.count}")
            lines += [f"    {sample}" for sample in group.samples]
    if report.unhooked:
        lines.append("")
        lines.append("not hooked: " + ", ".join(r.arn for r in report.unhooked))
    lines += [f"note: {note}" for note in report.notes]
    return "\n".join(lines)


# -- pause / resume -----------------------------------------------------------------------------------


def pause_preview_blocks(preview: Any, *, nonce: str = "") -> list[Block]:
    """The confirmation of `/fanout pause`: the backlog sentence and a Pause button (with a dialog)."""
    hooked = preview.hooked
    value = hook_value(hooked.table, hooked.source.arn, nonce)
    text = (
        f":double_vertical_bar: Pause the fan-out of *{escape(hooked.source.display)}* to "
        f"`{escape(hooked.function)}`?\n{escape(preview.backlog)}"
    )
    return [
        section(truncate(text, 2900)),
        actions(
            [
                button(
                    f"Pause {hooked.source.name}"[:75],
                    ACTION_PAUSE,
                    value,
                    style="danger",
                    confirm=(f"Pause {hooked.source.name}?"[:100], truncate(preview.backlog, 300)),
                )
            ],
            block_id="fanout_pause",
        ),
    ]


def pause_preview_text(preview: Any) -> str:
    return f"Pause the fan-out of {preview.hooked.source.display} to {preview.hooked.function}?\n{preview.backlog}"


def pause_blocks(result: Any, *, actor: str = "") -> list[Block]:
    icon = ":double_vertical_bar:" if result.paused else ":arrow_forward:"
    by = f" (by <@{actor}>)" if actor else ""
    return [section(f"{icon} {escape(result.message)}{by}")]


def pause_text(result: Any) -> str:
    return str(result.message)
