"""Block Kit builders that stay within Slack's limits, and the checker that enforces those limits.

Pure functions: data in, JSON-able dicts out. The limits are Slack's documented ones (REFERENCE.md);
``problems()`` is what the local Slack Web API server runs on every message we send, so a message Slack
would reject fails our tests and the demo.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from bot.core.common.timeparse import format_time

Block = dict[str, Any]

MAX_BLOCKS_MESSAGE = 50
MAX_BLOCKS_MODAL = 100
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
SLACK_MAX_BUTTON_VALUE = 2000
# An option (overflow, select): its text and value, and how many an overflow menu holds.
MAX_OPTION_TEXT = 75
SLACK_MAX_OPTION_VALUE = 150
# With OPSBOT_ACCOUNTS the framework adds the account and region a reply was made for to every button's
# and option's value (bot.listeners.framework.accounts.ACCOUNT_ROOM: the marker, a 40-character name, a
# 25-character region, two separators). A value longer than Slack's limit less this room would leave its
# element out of the message, so the renderers keep their values to these:
ACCOUNT_ROOM = 73
MAX_BUTTON_VALUE = SLACK_MAX_BUTTON_VALUE - ACCOUNT_ROOM
MAX_OPTION_VALUE = SLACK_MAX_OPTION_VALUE - ACCOUNT_ROOM
MAX_OVERFLOW_OPTIONS = 5
MAX_ACTION_ID = 255
MAX_BLOCK_ID = 255
MAX_ACTIONS_ELEMENTS = 25
MAX_CONTEXT_ELEMENTS = 10
MAX_CONFIRM_TEXT = 300
MAX_URL = 3000
# Slack answers msg_blocks_too_long when all the text in a message's blocks adds up to about this much.
MAX_TOTAL_BLOCK_CHARS = 13000
MAX_MESSAGE_TEXT = 4000

ELLIPSIS = "…"


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)] + ELLIPSIS


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plural(count: int, noun: str, many: str = "") -> str:
    """``1 line``, ``2 lines``, ``1,200 entries`` (``many``: the plural when it is not noun + s)."""
    return f"{count:,} {noun if count == 1 else (many or noun + 's')}"


# -- times -----------------------------------------------------------------------------------------
# One format in Slack: the date token, which each reader's client shows in their own zone, with the UTC
# time as its fallback text (notifications, old clients). Slack does not render the token inside code
# (``` or `), so code keeps UTC times and says so. One format on a terminal: ISO 8601 with the zone.

TimeValue = datetime | str | int | float | None

_EPOCH = re.compile(r"^\d{9,13}(\.\d+)?$")


def as_datetime(value: TimeValue) -> datetime | None:
    """An aware UTC datetime from a datetime, an ISO 8601 text (``Z`` or an offset; no zone = UTC),
    epoch seconds or milliseconds; None for anything else (empty, unreadable)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, int | float):
            moment = datetime.fromtimestamp(value / 1000 if value > 1e11 else value, UTC)
        else:
            text = value.strip()
            if not text:
                return None
            if _EPOCH.match(text):
                return as_datetime(float(text))
            if text.endswith(("Z", "z")):
                text = text[:-1] + "+00:00"
            moment = datetime.fromisoformat(text.replace(" ", "T", 1) if " " in text[:11] else text)
    except (ValueError, OverflowError, OSError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def utc_text(value: TimeValue) -> str:
    """``2024-05-01 08:00:03 UTC``: the fallback text of a date token; unreadable values as they are."""
    moment = as_datetime(value)
    if moment is None:
        return "" if value is None else str(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def slack_time(value: TimeValue) -> str:
    """A time for Slack mrkdwn (not inside code): ``<!date^EPOCH^{date_short_pretty} {time_secs}|…>``,
    shown in each reader's own zone, with the UTC time as its fallback. A value that is not a time is
    returned escaped, as it is."""
    moment = as_datetime(value)
    if moment is None:
        return escape("" if value is None else str(value))
    epoch = int(moment.timestamp())
    return f"<!date^{epoch}^{{date_short_pretty}} {{time_secs}}|{utc_text(moment)}>"


def iso_time(value: TimeValue) -> str:
    """A time on a terminal (the CLI): ISO 8601 with milliseconds and the zone, ``2024-05-01T08:00:03.120Z``.
    A value that is not a time is returned as it is."""
    moment = as_datetime(value)
    if moment is None:
        return "" if value is None else str(value)
    return format_time(moment)


# An ISO 8601 time with a zone inside prose that core wrote (a DNS verdict's reason, a lookup's hint).
_ISO_IN_TEXT = re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2})")


def times_in(text: str, *, slack: bool) -> str:
    """``text`` with the ISO times core put in it shown as everywhere else: in Slack (``text`` escaped
    here) date tokens, on a terminal ISO 8601 with milliseconds and ``Z``."""
    if not slack:
        return _ISO_IN_TEXT.sub(lambda found: iso_time(found.group()), text)
    parts, last = [], 0
    for found in _ISO_IN_TEXT.finditer(text):
        parts += [escape(text[last : found.start()]), slack_time(found.group())]
        last = found.end()
    return "".join([*parts, escape(text[last:])])


def mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def plain(text: str, limit: int = MAX_SECTION_TEXT) -> dict[str, Any]:
    return {"type": "plain_text", "text": truncate(text, limit), "emoji": True}


def header(text: str) -> Block:
    return {"type": "header", "text": plain(text, MAX_HEADER_TEXT)}


def section(text: str, *, fields: Sequence[str] = (), block_id: str | None = None) -> Block:
    block: Block = {"type": "section", "text": mrkdwn(truncate(text, MAX_SECTION_TEXT))}
    if fields:
        block["fields"] = [mrkdwn(truncate(f, MAX_FIELD_TEXT)) for f in fields[:MAX_FIELDS]]
    if block_id:
        block["block_id"] = block_id[:MAX_BLOCK_ID]
    return block


def fields_section(fields: Sequence[str]) -> Block:
    return {"type": "section", "fields": [mrkdwn(truncate(f, MAX_FIELD_TEXT)) for f in fields[:MAX_FIELDS]]}


def context(*texts: str) -> Block:
    return {"type": "context", "elements": [mrkdwn(truncate(t, MAX_FIELD_TEXT)) for t in texts[:10]]}


def divider() -> Block:
    return {"type": "divider"}


def button(
    text: str,
    action_id: str,
    value: str = "",
    *,
    style: str | None = None,
    url: str | None = None,
    confirm: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """A button. ``value`` must fit, with room for the account (callers keep state in the table, not in
    the value)."""
    if len(value) > MAX_BUTTON_VALUE:
        raise ValueError(
            f"button value of {len(value)} characters exceeds {MAX_BUTTON_VALUE} (Slack's "
            f"{SLACK_MAX_BUTTON_VALUE} less the room for the account)"
        )
    element: dict[str, Any] = {
        "type": "button",
        "text": plain(text, MAX_BUTTON_TEXT),
        "action_id": action_id[:MAX_ACTION_ID],
    }
    if value:
        element["value"] = value
    if style in {"primary", "danger"}:
        element["style"] = style
    if url:
        element["url"] = url[:MAX_URL]
    if confirm:
        title, body = confirm
        element["confirm"] = {
            "title": plain(title, 100),
            "text": plain(body, MAX_CONFIRM_TEXT),
            "confirm": plain("Yes", 30),
            "deny": plain("Cancel", 30),
        }
    return element


def actions(elements: Sequence[dict[str, Any]], *, block_id: str | None = None) -> Block:
    block: Block = {"type": "actions", "elements": list(elements[:MAX_ACTIONS_ELEMENTS])}
    if block_id:
        block["block_id"] = block_id[:MAX_BLOCK_ID]
    return block


def code_blocks(
    lines: Iterable[str], *, max_chars: int = MAX_SECTION_TEXT, escape_text: bool = False
) -> list[Block]:
    """Sections holding ``lines`` in ``` fences, each within the section limit; long lines are cut.

    Slack reads mrkdwn inside fences too: ``<!channel>``, ``<@U123>`` and ``<https://x|y>`` still
    notify and link. ``escape_text`` escapes lines that come from outside (log lines); without it the
    caller has escaped them, or they hold nothing but our own words.
    """
    fence = 8  # the two "```\n" fences
    budget = max_chars - fence
    blocks: list[Block] = []
    chunk: list[str] = []
    size = 0
    for raw in lines:
        text = raw.replace("```", "ˋˋˋ")
        line = _cut_escaped(escape(text), budget) if escape_text else truncate(text, budget)
        if chunk and size + len(line) + 1 > budget:
            blocks.append(section("```\n" + "\n".join(chunk) + "\n```"))
            chunk, size = [], 0
        chunk.append(line)
        size += len(line) + 1
    if chunk:
        blocks.append(section("```\n" + "\n".join(chunk) + "\n```"))
    return blocks


def _cut_escaped(text: str, limit: int) -> str:
    """``truncate`` for escaped text: an entity cut in half (``&am…``) is dropped whole."""
    cut = truncate(text, limit)
    if cut == text:
        return text
    body = cut[: -len(ELLIPSIS)]
    amp = body.rfind("&")
    if amp != -1 and ";" not in body[amp:]:
        body = body[:amp]
    return body + ELLIPSIS


def block_chars(blocks: Sequence[Block]) -> int:
    """Characters of text across the blocks, as Slack counts them towards msg_blocks_too_long."""
    total = 0

    def walk(node: Any) -> None:
        nonlocal total
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    total += len(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(list(blocks))
    return total


def fit(
    blocks: Sequence[Block],
    *,
    max_blocks: int = MAX_BLOCKS_MESSAGE,
    max_chars: int = MAX_TOTAL_BLOCK_CHARS,
    note: str = "",
) -> tuple[list[Block], bool]:
    """Keep leading blocks while within the message limits. Returns (blocks, whether any were dropped).

    When blocks are dropped and ``note`` is given, a context block with it is appended (within limits).
    """
    reserve = 1 if note else 0
    kept: list[Block] = []
    used = len(note)
    for block in blocks:
        size = block_chars([block])
        if len(kept) + 1 + reserve > max_blocks or used + size > max_chars:
            if note:
                kept.append(context(note))
            return kept, True
        kept.append(block)
        used += size
    return kept, False


# -- the checker -----------------------------------------------------------------------------------


def _text_of(obj: Any) -> str:
    if isinstance(obj, dict):
        return str(obj.get("text", ""))
    return ""


def _check_element(element: dict[str, Any], where: str, out: list[str]) -> None:
    kind = element.get("type")
    if kind == "button":
        if len(_text_of(element.get("text"))) > MAX_BUTTON_TEXT:
            out.append(f"{where}: button text longer than {MAX_BUTTON_TEXT}")
        if len(str(element.get("value", ""))) > SLACK_MAX_BUTTON_VALUE:
            out.append(f"{where}: button value longer than {SLACK_MAX_BUTTON_VALUE}")
        if "url" in element and len(str(element["url"])) > MAX_URL:
            out.append(f"{where}: button url longer than {MAX_URL}")
        confirm = element.get("confirm")
        if isinstance(confirm, dict) and len(_text_of(confirm.get("text"))) > MAX_CONFIRM_TEXT:
            out.append(f"{where}: confirm text longer than {MAX_CONFIRM_TEXT}")
    options = element.get("options")
    if kind == "overflow" and (
        not isinstance(options, list) or not 2 <= len(options) <= MAX_OVERFLOW_OPTIONS
    ):
        out.append(f"{where}: overflow must hold 2 to {MAX_OVERFLOW_OPTIONS} options")
    for option in options if isinstance(options, list) else []:
        if not isinstance(option, dict):
            out.append(f"{where}: option is not an object")
            continue
        if len(_text_of(option.get("text"))) > MAX_OPTION_TEXT:
            out.append(f"{where}: option text longer than {MAX_OPTION_TEXT}")
        if len(str(option.get("value", ""))) > SLACK_MAX_OPTION_VALUE:
            out.append(f"{where}: option value longer than {SLACK_MAX_OPTION_VALUE}")
    action_id = element.get("action_id")
    if action_id is not None and (not isinstance(action_id, str) or len(action_id) > MAX_ACTION_ID):
        out.append(f"{where}: action_id missing or longer than {MAX_ACTION_ID}")


def problems(blocks: Any, *, text: str | None = None, surface: str = "message") -> list[str]:
    """Everything in a message (or modal) that Slack would reject; empty when it is acceptable."""
    out: list[str] = []
    if text is not None and len(text) > MAX_MESSAGE_TEXT:
        out.append(f"text longer than {MAX_MESSAGE_TEXT} characters ({len(text)})")
    if blocks is None:
        return out
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except ValueError:
            return [*out, "blocks is not valid JSON"]
    if not isinstance(blocks, list):
        return [*out, "blocks must be a list"]
    limit = MAX_BLOCKS_MODAL if surface == "modal" else MAX_BLOCKS_MESSAGE
    if len(blocks) > limit:
        out.append(f"{len(blocks)} blocks, more than {limit}")
    if surface == "message" and block_chars(blocks) > MAX_TOTAL_BLOCK_CHARS:
        out.append(f"blocks hold {block_chars(blocks)} characters, more than {MAX_TOTAL_BLOCK_CHARS}")
    block_ids: set[str] = set()
    for index, block in enumerate(blocks):
        where = f"block {index}"
        if not isinstance(block, dict) or "type" not in block:
            out.append(f"{where}: not a block")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if len(str(block_id)) > MAX_BLOCK_ID:
                out.append(f"{where}: block_id longer than {MAX_BLOCK_ID}")
            if block_id in block_ids:
                out.append(f"{where}: duplicate block_id {block_id!r}")
            block_ids.add(str(block_id))
        kind = block["type"]
        if kind == "header":
            if len(_text_of(block.get("text"))) > MAX_HEADER_TEXT:
                out.append(f"{where}: header text longer than {MAX_HEADER_TEXT}")
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                out.append(f"{where}: section needs text or fields")
            if len(_text_of(block.get("text"))) > MAX_SECTION_TEXT:
                out.append(f"{where}: section text longer than {MAX_SECTION_TEXT}")
            fields = block.get("fields", [])
            if len(fields) > MAX_FIELDS:
                out.append(f"{where}: {len(fields)} fields, more than {MAX_FIELDS}")
            for field in fields:
                if len(_text_of(field)) > MAX_FIELD_TEXT:
                    out.append(f"{where}: field longer than {MAX_FIELD_TEXT}")
            if isinstance(block.get("accessory"), dict):
                _check_element(block["accessory"], where, out)
        elif kind == "actions":
            elements = block.get("elements", [])
            if not elements or len(elements) > MAX_ACTIONS_ELEMENTS:
                out.append(f"{where}: actions must hold 1 to {MAX_ACTIONS_ELEMENTS} elements")
            seen: set[str] = set()
            for element in elements:
                _check_element(element, where, out)
                action_id = element.get("action_id")
                if action_id in seen:
                    out.append(f"{where}: duplicate action_id {action_id!r}")
                if action_id:
                    seen.add(action_id)
        elif kind == "context":
            elements = block.get("elements", [])
            if not elements or len(elements) > MAX_CONTEXT_ELEMENTS:
                out.append(f"{where}: context must hold 1 to {MAX_CONTEXT_ELEMENTS} elements")
        elif kind == "input":
            if len(_text_of(block.get("label"))) > 2000:
                out.append(f"{where}: input label longer than 2000")
        elif kind not in {"divider", "image", "rich_text", "file", "video"}:
            out.append(f"{where}: unknown block type {kind!r}")
    return out
