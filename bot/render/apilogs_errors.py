"""Presentation of ``/apilogs errors``: Block Kit for Slack and text for the terminal. Pure."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bot.core.apilogs.errors import ErrorGroup, ErrorsReport
from bot.render.blocks import (
    MAX_BLOCK_ID,
    MAX_BUTTON_VALUE,
    MAX_OPTION_VALUE,
    Block,
    actions,
    button,
    context,
    escape,
    fit,
    section,
    truncate,
)

ACTION_LOOKUP = "apilogs:errors-lookup"  # the same ids as bot.listeners.apilogs
ACTION_LOOKUP_MORE = "apilogs:errors-lookup-more"
ACTION_TAIL_PATH = "apilogs:tail-path"
# The longest path "Tail this path" offers: the longest --path the command takes.
MAX_TAIL_PATH = 512
# What the verdict adds after "N failed" for each --status (5xx, the default, goes without saying).
STATUS_WORDS = {"5xx": "", "4xx": " (4xx)", "all": " (4xx and 5xx)"}


def _clock(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%H:%M:%SZ")


def _span(start_ms: int, end_ms: int) -> str:
    seconds = round((end_ms - start_ms) / 1000)
    if seconds < 60:
        return f"{max(1, seconds)} s"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes / 60:.1f} h".replace(".0 h", " h")


def _when(report: ErrorsReport) -> str:
    """``in the last 15 min`` for a window that ends now; a window that ended earlier (``--until``) by
    its times, so that nobody reads an old window as the current state."""
    span = _span(report.start_ms, report.end_ms)
    if report.until_now:
        return f"in the last {span}"
    start = datetime.fromtimestamp(report.start_ms / 1000, UTC)
    end = datetime.fromtimestamp(report.end_ms / 1000, UTC)
    until = end.strftime("%H:%M" if end.date() == start.date() else "%Y-%m-%d %H:%M")
    return f"from {start.strftime('%Y-%m-%d %H:%M')} to {until} UTC ({span})"


def verdict(report: ErrorsReport) -> str:
    """``41 failed of 1,208 requests (3.4%) in the last 15 min; 2 causes``."""
    kind = STATUS_WORDS.get(report.status, f" ({report.status})")
    failed = f"{report.total:,}{'+' if report.capped else ''} failed{kind}"
    if report.requests:
        share = 100.0 * report.total / report.requests
        failed += f" of {report.requests:,} requests ({share:.1f}%)"
    elif report.requests == 0:
        failed += " of 0 requests"
    else:
        failed += " (total requests unknown: no access log or metric)"
    causes = report.causes
    what = f"; {causes} cause{'' if causes == 1 else 's'}" if report.total else ""
    where = f" on `{report.path}`" if report.path else ""
    return f"{failed}{where} {_when(report)}{what}"


def _group_title(group: ErrorGroup) -> str:
    status = str(group.status) if group.status is not None else "200"
    route = f"{group.method} {group.path}".strip() or "(request not named in the logs)"
    return f"{status} {route}"


def _group_lines(group: ErrorGroup) -> list[str]:
    times = (
        _clock(group.first) if group.first == group.last else f"{_clock(group.first)} – {_clock(group.last)}"
    )
    facts = [f"{group.count:,} request{'' if group.count == 1 else 's'}", times]
    if group.functions:
        facts.append(", ".join(group.functions[:5]))
    return [group.cause or "no cause in the logs", " · ".join(facts)]


def errors_blocks(report: ErrorsReport) -> tuple[str, list[Block]]:
    """The ephemeral answer: the verdict, then one section and one row of buttons per group."""
    head = verdict(report)
    text = f"{report.stage.label}: {head}"
    blocks: list[Block] = [section(f"*{escape(head)}*\n{escape(report.stage.label)}")]
    if report.capped and report.reached_ms is not None:
        blocks.append(
            context(
                f":warning: More than {report.total:,} failing requests: counted up to "
                f"{_clock(report.reached_ms)}. Narrow the window (`--since`, `--until`) or `--path`."
            )
        )
    elif not report.complete:
        blocks.append(context(":warning: Not every log line could be read: the counts may be low."))
    for index, group in enumerate(report.groups):
        blocks.extend(_group_blocks(report, group, index=index))
    if report.function_errors:
        blocks.append(section("*Errors inside functions that still answered*"))
        for index, group in enumerate(report.function_errors, start=len(report.groups)):
            blocks.extend(_group_blocks(report, group, api_ids=True, index=index))
    if not report.groups and not report.function_errors:
        blocks.append(
            context("No failing request in the window. " + f"Groups read: {len(report.groups_read)}.")
        )
    for note in report.notes[:3]:
        blocks.append(context(escape(truncate(note, 1500))))
    kept, dropped = fit(blocks, note="More groups than a message holds: use `opsbot apilogs errors --json`.")
    return text, kept if dropped else blocks


def _group_blocks(
    report: ErrorsReport, group: ErrorGroup, *, api_ids: bool = False, index: int = 0
) -> list[Block]:
    cause, facts = _group_lines(group)
    title = _group_title(group) if not api_ids or group.method else "function error"
    body = f"*{escape(title)}* — {escape(cause)}\n{escape(facts)}"
    samples = group.samples
    if samples:
        body += "\n" + " ".join(f"`{escape(s)}`" for s in samples)
    blocks: list[Block] = [section(body)]
    elements = []
    base = {
        "api": report.stage.api_id,
        "stage": report.stage.stage,
        "start": report.start_ms,
        "end": report.end_ms,
    }
    block_id = None
    if samples:
        elements.append(button("Look up", ACTION_LOOKUP, json.dumps({**base, "id": samples[0]})))
        others = samples[1:]
        if len(others) >= 2:
            # An option's value holds at most 150 characters (a long stage name and the window do not fit
            # with the id): then the options carry the id only and the block the rest (read on click).
            values = [json.dumps({**base, "id": other}, separators=(",", ":")) for other in others]
            if any(len(v) > MAX_OPTION_VALUE for v in values):
                values = [json.dumps({"id": other}, separators=(",", ":")) for other in others]
                block_id = json.dumps({**base, "g": index}, separators=(",", ":"))
            if all(len(v) <= MAX_OPTION_VALUE for v in values) and len(block_id or "") <= MAX_BLOCK_ID:
                elements.append(
                    {
                        "type": "overflow",
                        "action_id": ACTION_LOOKUP_MORE,
                        "options": [
                            {
                                "text": {"type": "plain_text", "text": truncate(f"Look up {other}", 75)},
                                "value": value,
                            }
                            for other, value in zip(others, values, strict=True)
                        ],
                    }
                )
            else:
                block_id = None
        elif others:
            elements.append(
                button("Look up another", ACTION_LOOKUP_MORE, json.dumps({**base, "id": others[0]}))
            )
    value = json.dumps({"api": report.stage.api_id, "stage": report.stage.stage, "path": group.path})
    # A path is what the client sent (CLF access logs): one too long for a button value is not offered.
    if group.path and len(group.path) <= MAX_TAIL_PATH and len(value) <= MAX_BUTTON_VALUE:
        elements.append(button("Tail this path", ACTION_TAIL_PATH, value))
    if elements:
        blocks.append(actions(elements, block_id=block_id))
    return blocks


def errors_text(report: ErrorsReport) -> str:
    """The terminal answer."""
    lines = [f"{report.stage.label}: {verdict(report)}"]
    if report.capped and report.reached_ms is not None:
        lines.append(
            f"More than {report.total:,} failing requests: counted up to {_clock(report.reached_ms)}."
        )
    for group in report.groups:
        cause, facts = _group_lines(group)
        lines.append(f"\n{_group_title(group)}  {cause}\n  {facts}\n  ids: {' '.join(group.samples)}")
    if report.function_errors:
        lines.append("\nErrors inside functions that still answered:")
        for group in report.function_errors:
            cause, facts = _group_lines(group)
            lines.append(f"  {_group_title(group)}  {cause}\n    {facts}\n    ids: {' '.join(group.samples)}")
    lines.extend(f"Note: {n}" for n in report.notes)
    return "\n".join(lines)
