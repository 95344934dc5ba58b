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


def check_page_value(page: int) -> str:
    return json.dumps({"p": page}, separators=(",", ":"))


def parse_check_page_value(value: str) -> int:
    """The page a check page button asks for; ValueError when malformed."""
    data: Any = json.loads(value)
    page = data.get("p") if isinstance(data, dict) else None
    if not isinstance(page, int) or isinstance(page, bool) or page < 0:
        raise ValueError("not a check page reference")
    return page


def check_summary(report: CheckReport) -> str:
    return (
        f"{plural(report.targets_checked, 'target')} in {plural(report.sources_checked, 'source')}: "
        f"{plural(report.errors, 'error')}, {plural(report.warnings, 'warning')}"
    )


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
        navigation.append(button("‹ Previous page", f"{ACTION_CHECK_PAGE}:prev", check_page_value(page - 1)))
    if page + 1 < len(chunks):
        navigation.append(button("Next page ›", f"{ACTION_CHECK_PAGE}:next", check_page_value(page + 1)))
    if navigation:
        blocks.append(actions(navigation, block_id="fanout_check_pages"))
    return blocks


def check_text(report: CheckReport) -> str:
    lines = [check_summary(report)]
    lines += [_finding_line(f, slack=False) for f in report.findings]
    lines += [f"hooks of {function} not checked: {reason}" for function, reason in report.hook_errors.items()]
    return "\n".join(lines)


# -- toggle ----------------------------------------------------------------------------------------


def toggle_blocks(result: ToggleResult, *, actor: str = "") -> list[Block]:
    icon = ":large_green_circle:" if result.active else ":white_circle:"
    by = f" (by <@{actor}>)" if actor else ""
    return [section(f"{icon} {escape(result.message)}{by}")]


def toggle_text(result: ToggleResult) -> str:
    return result.message
