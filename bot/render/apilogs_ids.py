"""Slack answers for request ids found in a message: the "Look up request ids" shortcut and ``@opsbot``.

Each looked-up id is answered with the lookup's own message (``bot.render.apilogs.lookup_message``),
composed here with what these answers add: a line on what was found in the message (ids left out over
the limit), the **Share in thread** button, and, since a private answer cannot carry a file, a note
instead of the attached full timeline. The public summary of a mention (``public_summary``) holds no
log line: per id its status, method and path, functions and error kind (``bot.core.apilogs.brief``).
Pure.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bot.core.apilogs.brief import RequestBrief
from bot.core.apilogs.ids import EXAMPLES, MAX_IDS_IN_TEXT
from bot.core.apilogs.lookup import LookupResult
from bot.render.apilogs import SlackMessage, lookup_message
from bot.render.blocks import (
    MAX_BLOCKS_MESSAGE,
    MAX_TOTAL_BLOCK_CHARS,
    Block,
    actions,
    block_chars,
    button,
    context,
    escape,
    header,
    section,
    truncate,
)

SHORTCUT_CALLBACK = "apilogs_lookup_ids"
ACTION_SHARE = "apilogs:share"
SHARE_LABEL = "Share in thread"
# Channels where log lines may not be posted: the words of the refusal, and of the mention's reply.
SHARED_CHANNEL_RULE = (
    "this channel is shared with another organisation (Slack Connect), and log lines stay inside ours "
    "unless opsbot's policy lists the channel in `shared_channels`"
)


def share_value(request_id: str, thread_ts: str, result: LookupResult | None) -> str:
    """The Share button's value: the id, the thread to post in, and the stage the lookup found it in."""
    value: dict[str, str] = {"id": request_id, "ts": thread_ts}
    if result is not None:
        value |= {"api": result.stage.api_id, "stage": result.stage.stage}
    return json.dumps(value, separators=(",", ":"))


def read_share_value(value: str) -> dict[str, str] | None:
    try:
        loaded = json.loads(value)
    except ValueError:
        return None
    if not isinstance(loaded, dict) or not isinstance(loaded.get("id"), str) or not loaded["id"]:
        return None
    return {k: v for k, v in loaded.items() if isinstance(k, str) and isinstance(v, str)}


def _ids_word(count: int) -> str:
    return f"{count} request id{'' if count == 1 else 's'}"


def found_line(looked_up: Sequence[str], left_out: Sequence[str]) -> str:
    """What was found in the message, and what was not looked up (mrkdwn)."""
    line = f"Found {_ids_word(len(looked_up) + len(left_out))} in the message"
    if not left_out:
        return line + "."
    shown = ", ".join(f"`{escape(v)}`" for v in left_out[:10]) + (" …" if len(left_out) > 10 else "")
    return (
        f"{line}; looked up the first {len(looked_up)} (at most {MAX_IDS_IN_TEXT} per message). "
        f"Left out: {shown}; `/apilogs <id>` looks one up."
    )


def not_found_line(briefs: Sequence[RequestBrief]) -> str:
    missing = [b.request_id for b in briefs if not b.found and not b.problem]
    if not missing:
        return ""
    return "Not found: " + ", ".join(f"`{escape(v)}`" for v in missing) + "."


def no_ids_message(where: str) -> SlackMessage:
    """The private answer when the text holds no id (``where``: "that message", "your mention")."""
    text = f"No request id in {where}. opsbot looks for {EXAMPLES}."
    return SlackMessage(text, [section(f":mag: {escape(text)}")])


def mention_help(bot_user: str, *, accounts: bool = False) -> SlackMessage:
    """``accounts``: several AWS accounts are configured, so say how to aim the lookup at one."""
    aim = (
        " It looks in this channel's account; add `--account NAME` (and `--region R`) to look in another."
        if accounts
        else ""
    )
    text = (
        f"Mention <@{bot_user}> with request ids in the message, and it looks them up: a short summary in "
        f"the thread, the timeline to you privately. It looks for {escape(EXAMPLES)}.{aim}"
    )
    return SlackMessage(f"Mention opsbot with request ids to look them up. It looks for {EXAMPLES}.{aim}",
                        [section(text)])  # fmt: skip


def _private(message: SlackMessage, request_id: str) -> list[Block]:
    """The lookup's blocks for a private answer: without the promise of an attached file."""
    if message.file is None:
        return list(message.blocks)
    kept = [b for b in message.blocks if "attached file" not in json.dumps(b)]
    note = context(
        f"The full timeline does not fit here: `/apilogs {escape(request_id)}` attaches it as a file in a "
        f"channel, or run `opsbot apilogs {escape(request_id)}`."
    )
    if kept and kept[-1].get("type") == "actions":
        return [*kept[:-1], note, kept[-1]]
    return [*kept, note]


def _compose(
    top: list[Block], body: list[Block], extra: list[dict[str, Any]], request_id: str
) -> list[Block]:
    """``top`` + ``body`` with ``extra`` buttons added to its actions block, within the message limits:
    what does not fit is cut from the end of the body (the timeline), with a note."""
    buttons: list[dict[str, Any]] = list(extra)
    if body and body[-1].get("type") == "actions":
        buttons = [*body[-1]["elements"], *buttons]
        body = body[:-1]
    tail = [actions(buttons)] if buttons else []
    note = context(f"Cut to fit a message: `/apilogs {escape(request_id)}` shows the rest.")
    blocks = [*top, *body, *tail]
    if len(blocks) <= MAX_BLOCKS_MESSAGE and block_chars(blocks) <= MAX_TOTAL_BLOCK_CHARS:
        return blocks
    room = MAX_BLOCKS_MESSAGE - len(top) - len(tail) - 1
    chars = MAX_TOTAL_BLOCK_CHARS - block_chars([*top, *tail, note])
    kept: list[Block] = []
    for block in body[:room]:
        size = block_chars([block])
        if size > chars:
            break
        kept.append(block)
        chars -= size
    return [*top, *kept, note, *tail]


def answer_message(
    result: LookupResult, *, top: Sequence[Block] = (), share: dict[str, Any] | None = None
) -> SlackMessage:
    """One id's private answer: the lookup's message, ``top`` blocks before it, the Share button."""
    message = lookup_message(result)
    blocks = _compose(
        list(top), _private(message, result.request.value), [share] if share else [], result.request.value
    )
    return SlackMessage(message.text, blocks)


def share_button(request_id: str, thread_ts: str, result: LookupResult | None) -> dict[str, Any]:
    return button(SHARE_LABEL, ACTION_SHARE, share_value(request_id, thread_ts, result))


def problem_message(
    request_id: str, kind_label: str, problem: str, *, top: Sequence[Block] = ()
) -> SlackMessage:
    """An id whose lookup could not run (outside the read scope, AWS refused): the sentence saying why."""
    text = f"{request_id} ({kind_label}) was not looked up: {problem}"
    blocks = [
        *top,
        header(truncate(f"Not looked up: {request_id}", 150)),
        section(f":warning: {escape(problem)}"),
    ]
    return SlackMessage(truncate(text, 3000), blocks)


def shared_message(result: LookupResult, *, shared_by: str) -> SlackMessage:
    """The lookup posted in the thread by Share in thread: who shared it on top, no Share button."""
    message = lookup_message(result)
    top = [context(f"<@{shared_by}> shared opsbot's lookup of `{escape(result.request.value)}`.")]
    return SlackMessage(message.text, _compose(top, list(message.blocks), [], result.request.value),
                        message.file)  # fmt: skip


def _brief_line(item: RequestBrief) -> str:
    rid = f"`{escape(item.request_id)}`"
    if item.problem:
        return f"• {rid}: not looked up ({escape(truncate(item.problem, 200))})"
    if not item.found:
        return f"• {rid}: not found"
    icon = "❌" if item.failed else ("⚠️" if item.status is not None and item.status >= 400 else "✅")
    what = f"{item.method} {item.path}".strip() or "request"
    parts = [escape(truncate(what, 120)) + (f" → {item.status}" if item.status is not None else "")]
    if item.functions:
        parts.append(escape(truncate(", ".join(item.functions), 150)))
    if item.error_kind:
        parts.append(f"`{escape(item.error_kind)}`")
    return f"• {icon} {rid} {' · '.join(parts)}"


def public_summary(
    briefs: Sequence[RequestBrief], left_out: Sequence[str], *, asker: str, withheld: bool = False
) -> SlackMessage:
    """The mention's answer in the thread: a line per id (no log lines), the timeline goes privately.

    ``withheld``: the channel is shared with another organisation and not allowed by the policy; only
    that the answer went privately is said."""
    head = f"<@{asker}> asked about {_ids_word(len(briefs) + len(left_out))}"
    if withheld:
        text = f"{head}: the answer went to them privately, because {SHARED_CHANNEL_RULE}."
        return SlackMessage(text, [section(text)])
    lines = [f"{head}; the timelines went to them privately."]
    lines += [_brief_line(item) for item in briefs]
    if left_out:
        lines.append(
            f"{len(left_out)} more left out (at most {MAX_IDS_IN_TEXT} per message): "
            + ", ".join(f"`{escape(v)}`" for v in left_out[:10])
        )
    text = "\n".join(lines)
    return SlackMessage(truncate(text, 3000), [section(text)])


__all__ = [
    "ACTION_SHARE",
    "SHARED_CHANNEL_RULE",
    "SHORTCUT_CALLBACK",
    "answer_message",
    "found_line",
    "mention_help",
    "no_ids_message",
    "not_found_line",
    "problem_message",
    "public_summary",
    "read_share_value",
    "share_button",
    "share_value",
    "shared_message",
]
