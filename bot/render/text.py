"""Render Slack messages (text + Block Kit) as readable terminal text. Pure.

Used by the demo console. Buttons are returned separately so the console can number them
(``click N``); mentions and links become readable (``@U0ALICE``, ``label (url)``), mrkdwn markers go.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

_LINK = re.compile(r"<([^<>|]+)(?:\|([^<>]*))?>")
_BOLD = re.compile(r"(?<![\w*])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?!\s)([^_\n]+?)(?<!\s)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~(?!\s)([^~\n]+?)(?<!\s)~(?![\w~])")
_EMOJI = {
    ":warning:": "⚠",
    ":x:": "✗",
    ":white_check_mark:": "✓",
    ":heavy_check_mark:": "✓",
    ":no_entry:": "⛔",
    ":lock:": "🔒",
    ":boom:": "💥",
    ":hourglass_flowing_sand:": "⏳",
    ":cloud:": "☁",
    ":information_source:": "ℹ",
    ":rotating_light:": "🚨",
    ":red_circle:": "●",
    ":large_green_circle:": "●",
    ":large_yellow_circle:": "●",
    ":white_circle:": "○",
    ":grey_question:": "?",
    ":question:": "?",
    ":arrows_counterclockwise:": "↻",
    ":memo:": "✎",
    ":mag:": "🔍",
    ":email:": "✉",
    ":envelope:": "✉",
    ":bell:": "🔔",
    ":no_bell:": "🔕",
    ":octagonal_sign:": "⛔",
    ":stopwatch:": "⏱",
    ":zzz:": "z",
    ":page:": "📄",
    ":large_orange_circle:": "●",
    ":double_vertical_bar:": "⏸",
    ":arrow_forward:": "▶",
    ":repeat:": "↻",
    ":mute:": "🔇",
    ":eyes:": "👀",
}


@dataclass(frozen=True)
class Button:
    text: str
    action_id: str
    block_id: str
    element: Mapping[str, Any]
    url: str = ""
    # An option of an overflow menu (a select, radio buttons): what the click sends as selected_option.
    option: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Rendered:
    lines: list[str]
    buttons: list[Button]


def _link(match: re.Match[str], names: Callable[[str], str]) -> str:
    target, label = match.group(1), match.group(2)
    if target.startswith("@"):
        return "@" + names(target[1:])
    if target.startswith("#"):
        return "#" + (label or names(target[1:]))
    if target.startswith("!subteam^"):
        return "@" + (label or target[len("!subteam^") :])
    if target.startswith("!date^"):
        # A date token: its fallback text, as a Slack client that cannot format it shows it.
        if label:
            return label
        parts = target.split("^")
        try:
            return datetime.fromtimestamp(int(parts[1]), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        except (ValueError, IndexError):
            return target
    if target.startswith("!"):
        return "@" + target[1:]
    if target.startswith("mailto:"):
        return label or target[len("mailto:") :]
    return f"{label} ({target})" if label and label != target else target


def mrkdwn_to_text(text: str, names: Callable[[str], str] = lambda x: x) -> str:
    """Slack mrkdwn -> plain text, keeping ``` blocks and `code` readable."""
    out: list[str] = []
    for index, part in enumerate(text.split("```")):
        if index % 2 == 1:
            # code: shown verbatim, but Slack's three escapes apply inside code too (and Slack shows them
            # as the characters)
            out.append(part.strip("\n").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
            continue
        # Inside `code` Slack formats nothing: `path=/*/*/logging` keeps its stars.
        spans = part.split("`")
        if len(spans) % 2 == 0:  # an unpaired backtick is a character, not a span
            spans[-2:] = ["`".join(spans[-2:])]
        for number, span in enumerate(spans):
            if number % 2 == 0:
                span = _LINK.sub(lambda m: _link(m, names), span)
                span = _BOLD.sub(r"\1", span)
                span = _ITALIC.sub(r"\1", span)
                span = _STRIKE.sub(r"\1", span)
                for code, symbol in _EMOJI.items():
                    span = span.replace(code, symbol)
            spans[number] = span.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
        out.append("`".join(spans))
    return "\n".join(p for p in out if p != "") if len(out) > 1 else out[0]


def _text(obj: Any, names: Callable[[str], str]) -> str:
    if not isinstance(obj, Mapping):
        return ""
    raw = str(obj.get("text", ""))
    return mrkdwn_to_text(raw, names) if obj.get("type") == "mrkdwn" else raw


def render(
    text: str,
    blocks: Sequence[Mapping[str, Any]] | None,
    *,
    width: int = 100,
    names: Callable[[str], str] = lambda x: x,
) -> Rendered:
    """A message as terminal lines plus its buttons in order."""
    lines: list[str] = []
    buttons: list[Button] = []
    if not blocks:
        lines.extend(mrkdwn_to_text(text, names).splitlines() or [""])
        return Rendered(lines, buttons)

    def wrap(value: str, indent: str = "") -> None:
        for line in value.splitlines() or [""]:
            if len(line) <= width or line.startswith((" ", "\t")):
                lines.append(indent + line)
            else:
                lines.extend(
                    textwrap.wrap(line, width, initial_indent=indent, subsequent_indent=indent) or [""]
                )

    def add_button(element: Mapping[str, Any], block_id: str) -> None:
        def label(item: Mapping[str, Any]) -> str:
            return str((item.get("text") or {}).get("text", ""))

        where: dict[str, Any] = {
            "action_id": str(element.get("action_id", "")),
            "block_id": block_id,
            "element": element,
        }
        if element.get("type") in ("overflow", "static_select", "radio_buttons"):
            # Each option is a button of its own here: choosing it is one click, as in Slack's menu.
            options = [o for o in element.get("options") or [] if isinstance(o, Mapping)]
            buttons.extend(Button(text=label(option), option=option, **where) for option in options)
        elif element.get("type") == "button":
            buttons.append(Button(text=label(element), url=str(element.get("url", "")), **where))

    for block in blocks:
        kind = block.get("type")
        block_id = str(block.get("block_id", ""))
        if kind == "header":
            title = _text(block.get("text"), names)
            lines.extend([title.upper(), "=" * min(width, len(title))])
        elif kind == "section":
            if block.get("text"):
                wrap(_text(block["text"], names))
            for field in (_text(f, names) for f in block.get("fields", [])):
                # Fields are usually "*Label*\nvalue": one "Label: value" line reads best in a terminal.
                label, _, value = field.partition("\n")
                wrap(f"{label}: {value.strip()}" if value.strip() and "\n" not in value.strip() else field)
            accessory = block.get("accessory")
            if isinstance(accessory, Mapping):
                add_button(accessory, block_id)
        elif kind == "context":
            wrap(
                "  ".join(_text(e, names) for e in block.get("elements", []) if isinstance(e, Mapping)), "  "
            )
        elif kind == "divider":
            lines.append("-" * min(width, 60))
        elif kind == "actions":
            for element in block.get("elements", []):
                add_button(element, block_id)
        elif kind == "input":
            label = _text(block.get("label"), names)
            lines.append(f"[{label}: ______]")
        elif kind == "rich_text":
            wrap(text)
    return Rendered(lines, buttons)


def paint(text: str, code: str, enabled: bool) -> str:
    """ANSI colour (``code`` such as "31" red, "33" yellow, "2" dim) when ``enabled`` (a terminal)."""
    return f"\x1b[{code}m{text}\x1b[0m" if enabled else text
