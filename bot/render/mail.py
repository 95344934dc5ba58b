"""Presentation of /mail: alert and digest messages, status, stats and action results.

Pure functions: data in, ``(text, blocks)`` for Slack or plain text for the terminal out. Alert buttons
carry only the address in their value; their action ids are ``mail:reenable``, ``mail:suppress`` and
``mail:history``. The list's "More addresses" button (``mail:more``) carries its filters and where to go on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from bot.errors import escape_invisible
from bot.render.blocks import (
    MAX_BLOCKS_MESSAGE,
    MAX_BUTTON_VALUE,
    MAX_SECTION_TEXT,
    MAX_TOTAL_BLOCK_CHARS,
    Block,
    actions,
    as_datetime,
    button,
    context,
    divider,
    escape,
    fields_section,
    fit,
    header,
    iso_time,
    plural,
    section,
    slack_time,
    truncate,
)
from bot.render.text import paint

ACTION_REENABLE = "mail:reenable"
ACTION_SUPPRESS = "mail:suppress"
ACTION_HISTORY = "mail:history"
ACTION_MORE = "mail:more"
ALERT_ACTIONS_BLOCK = "mail:alert-actions"
# The alert's note on what happens next: true only until someone decides, so the decision replaces it.
ALERT_NOTE_BLOCK = "mail:alert-note"
RESOLUTION_BLOCK = "mail:resolution"

REASON_WORDS = {
    "permanent-bounce": "permanent bounce",
    "complaint": "complaint",
    "transient-bounces": "repeated transient bounces",
    "suppressed": "suppressed by a person",
    "delivery": "last delivery succeeded",
    "reenabled": "re-enabled by a person",
    "no-feedback": "no disabling feedback",
}

LEVEL_WORDS = {
    "healthy": "healthy",
    "elevated": "above healthy",
    "review": "at SES's review level",
    "paused": "SES may pause sending",
    "unknown": "no data",
}

THRESHOLDS_TEXT = (
    "SES thresholds: bounce rate under 2% healthy, 5% review, 10% sending may be paused; "
    "complaint rate under 0.1% healthy, 0.1% review, 0.5% sending may be paused."
)

_SLACK_USER = re.compile(r"^slack:([UW][A-Z0-9]+)$")


def who(by: str, *, slack: bool) -> str:
    """``slack:U123`` -> a mention in Slack, ``U123 (Slack)`` on a terminal; anything else as is."""
    found = _SLACK_USER.match(by or "")
    if found:
        return f"<@{found.group(1)}>" if slack else f"{found.group(1)} (Slack)"
    shown = by.removeprefix("cli:") if by.startswith("cli:") else by
    return escape(shown) if slack else shown


def visible(text: str) -> str:
    """Control and invisible formatting characters (a bidi override, NUL) written as escapes. Addresses
    with them are refused now; a row stored before that is still shown as what it is."""
    return escape_invisible(text)


def address_code(address: str) -> str:
    """An address in mrkdwn: inline code, so ``*``, ``_`` and ``~`` in it do not format (Slack has no
    other escape for them), ``<>&`` escaped, invisible characters shown (``visible``)."""
    return _inline_code(visible(address)) or "`?`"


def when(value: Any, *, slack: bool) -> str:
    """A time as Slack shows it (a date token, in each reader's zone; mrkdwn) or as the terminal does
    (ISO 8601 with the zone)."""
    return slack_time(value) if slack else iso_time(value)


def _percent(rate: float | None) -> str:
    if rate is None:
        return "n/a"
    value = rate * 100
    return f"{value:.2f}%" if value < 1 else f"{value:.1f}%"


def _state_word(state: str) -> str:
    return "Disabled" if state == "disable" else "Enabled"


# -- alerts ----------------------------------------------------------------------------------------


def alert_title(alert: Any) -> str:
    address = visible(alert.address)
    if alert.kind == "late-complaint":
        return f"Late complaint, check before mailing: {address}"
    if alert.kind == "review":
        return f"Needs review: {address}"
    if alert.kind == "complaint":
        return f"Complaint, disabled: {address}"
    return f"Disabled: {address}"


def alert_why(alert: Any, *, slack: bool = False, slack_times: bool | None = None) -> str:
    """Why the alert, in words; ``slack``: people as mentions (the text is then mrkdwn, escaped);
    ``slack_times`` (default: as ``slack``): times as date tokens, e.g. for a message's notification text."""
    if alert.kind == "late-complaint":
        person = who(alert.reenabled_by, slack=slack) if alert.reenabled_by else "a person"
        in_slack = slack if slack_times is None else slack_times
        at = when(alert.reenabled_at, slack=in_slack) if alert.reenabled_at else "an unknown time"
        # SES's text (complaintFeedbackType): escaped like every outside string in mrkdwn.
        feedback = alert.feedback_type or "no feedback type"
        mrkdwn = slack or in_slack
        if mrkdwn and not slack:  # mrkdwn with people named in words (a notification text): escaped
            person = escape(person)
        return (
            f"Late complaint ({escape(feedback) if mrkdwn else feedback}), received after {person} "
            f"re-enabled it on {at}; check before mailing"
        )
    if alert.kind == "complaint":
        return f"Complaint ({alert.feedback_type or 'no feedback type'})"
    if alert.kind == "transient-bounces":
        return (
            f"{alert.transient_count} transient bounces within {alert.transient_window or 'the window'}"
            f" (last: {alert.type_label})"
        )
    if alert.kind == "review":
        return f"Undetermined bounce ({alert.type_label})"
    return f"Permanent bounce ({alert.type_label})"


def alert_message(alert: Any) -> tuple[str, list[Block]]:
    """The alert posted for a newly disabled (or flagged) address, with its three buttons."""
    title = alert_title(alert)
    why = alert_why(alert)
    late = alert.kind == "late-complaint"
    fields = [
        f"*Address*\n{address_code(alert.address)}",
        f"*Why*\n{alert_why(alert, slack=True) if late else escape(why)}",
        f"*Sender*\n{escape(alert.sender or 'unknown')}",
        f"*Time*\n{slack_time(alert.at)}",
        f"*Message id*\n{_inline_code(alert.message_id or 'unknown')}",
    ]
    if alert.status:
        fields.append(f"*Status code*\n{escape(alert.status)}")
    blocks: list[Block] = [header(title), fields_section(fields)]
    if alert.diagnostic:
        blocks.append(section(f"*Diagnostic*\n{_code_block(alert.diagnostic)}"))
    if late:
        note = (
            "Flagged for review: the address stays enabled, as the later re-enable decided. The complaint "
            "may have arrived late (e.g. a redriven dead-letter queue). Keep enabled, or Suppress."
        )
    elif alert.kind == "complaint" or alert.sticky:
        note = "Sticky: a later delivery will not re-enable this address; only a person can."
    elif alert.kind == "review":
        note = "SES could not tell why this bounced. The address stays enabled until someone decides."
    else:
        note = "A later successful delivery re-enables it; Keep suppressed makes that sticky."
    blocks.append({**context(note), "block_id": ALERT_NOTE_BLOCK})
    if alert.queued_at:
        blocks.append(
            context(f"Posted late: Slack could not take this alert at {slack_time(alert.queued_at)}.")
        )
    review = alert.kind in {"review", "late-complaint"}
    blocks.append(
        actions(
            [
                button(
                    "Keep enabled" if review else "Re-enable",
                    ACTION_REENABLE,
                    alert.address,
                    style="primary",
                    confirm=(
                        reenable_confirm(alert.address, alert.kind)
                        if alert.kind == "complaint" or alert.sticky
                        else None
                    ),
                ),
                button(
                    "Suppress" if review else "Keep suppressed",
                    ACTION_SUPPRESS,
                    alert.address,
                    style="danger",
                ),
                button("History", ACTION_HISTORY, alert.address),
            ],
            block_id=ALERT_ACTIONS_BLOCK,
        )
    )
    # The notification text is mrkdwn too (and notifies): SES's strings in it are escaped as in the blocks;
    # the one time it can hold (a late complaint's) is a date token.
    text = f"{escape(title)} — {alert_why(alert, slack_times=True)}" if late else escape(f"{title} — {why}")
    return truncate(text, 3000), blocks


def reenable_confirm(address: str, reason: str) -> tuple[str, str]:
    """The confirmation a Re-enable button asks for when only a person can undo the disable (sticky)."""
    if reason == "complaint":
        return "Re-enable after a complaint?", f"{address} complained. Mail it again anyway?"
    if reason == "suppressed":
        return (
            "Re-enable a suppressed address?",
            f"{address} was suppressed by a person. Mail it again anyway?",
        )
    return (
        "Re-enable a sticky address?",
        f"{address} complained or was suppressed by a person. Mail it again anyway?",
    )


def resolved_alert(blocks: Sequence[Mapping[str, Any]], note: str) -> list[Block]:
    """The alert's blocks with its buttons, and its note on what happens until someone decides, replaced
    by who did what and when (the message update)."""
    dropped = {ALERT_NOTE_BLOCK, RESOLUTION_BLOCK}
    kept = [dict(b) for b in blocks if b.get("type") != "actions" and b.get("block_id") not in dropped]
    kept.append({**context(note), "block_id": RESOLUTION_BLOCK})
    return fit(kept)[0]


def resolution_note(result: Any, *, slack: bool = True, slack_times: bool | None = None) -> str:
    """Who did what and when, worded after what the address was (so after the alert's button): "Kept
    enabled" (Keep enabled, or re-enabling an address already enabled) or "Re-enabled"; "Kept suppressed"
    or "Suppressed".

    "Nothing changed" only when neither the mailing table nor the SES suppression list changed; a change to
    the list alone says the table already was so. ``slack_times`` (default: as ``slack``): the time as a
    date token, for a Slack message's notification text."""
    person = who(result.by, slack=slack)
    reenable = result.action == "reenable"
    # Nothing changed: the address already was what was asked for. An address enabled in the table but
    # taken off SES's suppression list was not being mailed: that is a re-enable.
    if reenable:
        kept = not result.changed or (result.before_state == "enable" and not result.list_changed)
        done = "Kept enabled" if kept else "Re-enabled"
    else:
        kept = not result.changed or result.before_state == "disable"
        done = "Kept suppressed" if kept else "Suppressed"
    if not result.changed:
        done += " (nothing changed)"
    elif not result.table_changed:
        done += (
            " (already enabled in the mailing table)"
            if reenable
            else " (already suppressed in the mailing table)"
        )
    elif reenable and kept:
        # Re-enabling an enabled address changes only its review flag (an enabled address is never sticky).
        done += " (review flag cleared)"
    at = when(result.at, slack=slack if slack_times is None else slack_times)
    if slack or slack_times:
        return f"{done} by {person if slack else escape(person)} at {at}; {escape(result.suppression_list)}."
    return f"{done} by {person} at {at}; {result.suppression_list}."


# -- digest ----------------------------------------------------------------------------------------


def _top(counts: Mapping[str, int], limit: int) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]


DIGEST_ADDRESSES_SHOWN = 10


def digest_addresses_text(digest: Any) -> str:
    """The first addresses of the storm, then how many more, and how to list them all."""
    shown = digest.addresses[:DIGEST_ADDRESSES_SHOWN]
    if not shown:
        return ""
    more = max(0, digest.total - len(shown))
    listed = ", ".join(address_code(truncate(address, 100)) for address in shown)
    tail = f" and {more:,} more" if more else ""
    since = escape(digest.list_since or "<time>")
    return (
        f"*First addresses*\n{listed}{tail}. "
        f"`/mail list --state disable --since {since}` lists them all "
        f"(`--state review` the flagged ones)."
    )


def digest_message(digest: Any) -> tuple[str, list[Block]]:
    title = f"Bounce storm: {plural(digest.total, 'address', 'addresses')} disabled or flagged"
    by_type = "\n".join(f"{escape(k)}: {v:,}" for k, v in _top(digest.by_type, 8)) or "none"
    by_sender = "\n".join(f"{escape(k)}: {v:,}" for k, v in _top(digest.by_sender, 5)) or "none"
    diagnostics = []
    for code, count in _top(digest.by_diagnostic, 5):
        example = digest.examples.get(code, "")
        line = f"*{escape(code)}*: {count:,}"
        if example:
            line += f" — e.g. {_inline_code(truncate(example, 160)) or '``'}"
        diagnostics.append(line)
    blocks: list[Block] = [
        header(title),
        context(
            f"Started {slack_time(digest.started_at) if digest.started_at else 'just now'} · updated "
            f"{slack_time(digest.updated_at)} · "
            "individual alerts are paused until the storm ends; use `/mail status <address>` for one address."
        ),
        fields_section([f"*By type*\n{by_type}", f"*By sender*\n{by_sender}"]),
        section("*Top diagnostics*\n" + ("\n".join(diagnostics) or "none")),
    ]
    addresses = digest_addresses_text(digest)
    if addresses:
        blocks.append(section(truncate(addresses, 3000)))
    return title, fit(blocks)[0]


# -- status ----------------------------------------------------------------------------------------


def _status_summary(status: Any, *, slack: bool = False) -> str:
    """The state in words; ``slack``: mrkdwn (escaped, the time a date token)."""
    reason = REASON_WORDS.get(status.reason, status.reason)
    since = f" since {when(status.since, slack=slack)}" if status.since else ""
    extra = []
    if status.sticky and status.state == "disable":
        extra.append("sticky: only a person can re-enable it")
    if status.review:
        extra.append("flagged for review (undetermined bounce)")
    tail = f" ({'; '.join(extra)})" if extra else ""
    words = f"{_state_word(status.state)}: {escape(reason) if slack else reason}"
    return f"{words}{since}{escape(tail) if slack else tail}"


def _suppression_words(status: Any, *, slack: bool = False) -> str:
    """The SES suppression-list entry in words; ``slack``: mrkdwn (escaped, the time a date token)."""
    listing = status.suppression
    if not listing.checked:
        return "not checked (OPSBOT_SES_SUPPRESSION is off)"
    if listing.error:
        return f"could not be checked: {escape(listing.error) if slack else listing.error}"
    if listing.listed:
        at = when(listing.last_update, slack=slack) if listing.last_update else "time unknown"
        return f"listed ({escape(listing.reason) if slack else listing.reason}, {at})"
    return "not listed"


def _stored_as_words(status: Any) -> str:
    return (
        f"Recorded by the original handler under {status.stored_as}; opsbot's next update for this address "
        "takes it over under the lowercase address."
    )


def history_lines(history: Sequence[Mapping[str, Any]]) -> list[str]:
    """The stored one-line history entries (``2024-05-01T10:15:30.120Z permanent Permanent/General 5.1.1 …``)."""
    return [str(entry.get("text") or f"{entry.get('at', '')} {entry.get('event', '')}") for entry in history]


# "by slack:U0ALICE" in a stored history line (bot.core.mail.state.history_line).
_HISTORY_PERSON = re.compile(r"(?:^| )by slack:([UW][A-Z0-9]+)(?= |$)")
MAX_HISTORY_LINE = 500


def _code_block(text: str) -> str:
    """Outside text (a remote mail server's diagnostic) in a ``` block it cannot close: backticks shown as
    look-alikes, since a ``` inside would end the block and the rest would render as mrkdwn."""
    return f"```{escape(truncate(text.replace('`', 'ˋ'), 2800))}```"


def _inline_code(text: str) -> str:
    text = text.strip()
    return f"`{escape(text.replace('`', 'ˋ'))}`" if text else ""


def slack_history_line(line: str) -> str:
    """A stored history line for Slack: the text as code, a Slack user as a mention after it (outside the
    code, where Slack renders mentions)."""
    pieces = []
    start = 0
    # The entry's time leads the stored line: a date token (outside the code, where Slack renders it).
    stamp = re.match(r"(\S+) ", line)
    if stamp and as_datetime(stamp.group(1)) is not None and "T" in stamp.group(1):
        pieces.append(slack_time(stamp.group(1)))
        start = stamp.end()
    for found in _HISTORY_PERSON.finditer(line):
        pieces += [_inline_code(line[start : found.start()]), f"by <@{found.group(1)}>"]
        start = found.end()
    pieces.append(_inline_code(line[start:]))
    return " ".join(piece for piece in pieces if piece)


def history_blocks(history: Sequence[Mapping[str, Any]]) -> list[Block]:
    """The history lines for Slack, as few sections as fit."""
    lines = [slack_history_line(truncate(line, MAX_HISTORY_LINE)) for line in history_lines(history)]
    blocks: list[Block] = []
    chunk: list[str] = []
    size = 0
    for line in lines or ["no events recorded"]:
        if chunk and size + len(line) + 1 > MAX_SECTION_TEXT:
            blocks.append(section("\n".join(chunk)))
            chunk, size = [], 0
        chunk.append(line)
        size += len(line) + 1
    blocks.append(section("\n".join(chunk)))
    return blocks


def status_message(status: Any, *, with_buttons: bool = True) -> tuple[str, list[Block]]:
    summary = _status_summary(status, slack=True)
    blocks: list[Block] = [header(visible(status.address)), section(f"*{summary}*")]
    if not status.recorded:
        blocks.append(context("No SES feedback has been recorded for this address."))
    if status.stored_as:
        blocks.append(context(escape(_stored_as_words(status))))
    fields = [
        f"*Last event*\n{escape(status.notification_type or 'none')} {slack_time(status.last_event_at)}".strip(),
        f"*Sender*\n{escape(status.sender or 'unknown')}",
        f"*Last message id*\n{escape(status.last_message_id or 'none')}",
        f"*Transient bounces*\n{status.transient_count} (limit {status.transient_limit} within "
        f"{escape(status.transient_window)})",
        f"*SES suppression list*\n{_suppression_words(status, slack=True)}",
    ]
    if status.bounce_type:
        fields.append(f"*Last bounce*\n{escape(status.bounce_type)}/{escape(status.bounce_subtype)}")
    if status.complaint_feedback_type:
        fields.append(f"*Complaint type*\n{escape(status.complaint_feedback_type)}")
    if status.recorded:
        blocks.append(fields_section(fields))
    if status.diagnostic:
        blocks.append(section(f"*Diagnostic*\n{_code_block(status.diagnostic)}"))
    if status.history:
        blocks.append(section(f"*History* (newest first, last {len(status.history)})"))
        blocks.extend(history_blocks(status.history))
    if with_buttons and status.recorded:
        elements = []
        if status.state == "disable" or status.review:
            confirm = reenable_confirm(status.address, status.reason) if status.sticky else None
            elements.append(
                button("Re-enable", ACTION_REENABLE, status.address, style="primary", confirm=confirm)
            )
        if not (status.state == "disable" and status.sticky):
            elements.append(button("Suppress", ACTION_SUPPRESS, status.address, style="danger"))
        if elements:
            blocks.append(actions(elements, block_id="mail:status-actions"))
    # ``summary`` is mrkdwn already (escaped, its time a date token).
    text = f"{escape(status.address)}: {summary}"
    return truncate(text, 3000), fit(blocks, note="History shortened to fit Slack's limits.")[0]


def history_message(status: Any) -> tuple[str, list[Block]]:
    blocks = [
        section(f"*History of* {address_code(status.address)} (newest first)"),
        *history_blocks(status.history),
    ]
    return escape(f"History of {status.address}"), fit(blocks)[0]


def status_text(status: Any, *, use_colour: bool = False) -> str:
    state = paint(_state_word(status.state), "31" if status.state == "disable" else "32", use_colour)
    first = f"{visible(status.address)}: {state} — {visible(_status_summary(status).split(': ', 1)[1])}"
    lines = [first]
    if not status.recorded:
        lines.append("  no SES feedback recorded for this address")
    if status.stored_as:
        lines.append(f"  {_stored_as_words(status)}")
    else:
        lines += [
            f"  last event:       {status.notification_type or 'none'} {iso_time(status.last_event_at)}".rstrip(),
            f"  sender:           {status.sender or 'unknown'}",
            f"  last message id:  {status.last_message_id or 'none'}",
        ]
        if status.bounce_type:
            lines.append(f"  last bounce:      {status.bounce_type}/{status.bounce_subtype}")
        if status.diagnostic:
            lines.append(f"  diagnostic:       {status.diagnostic}")
        if status.complaint_feedback_type:
            lines.append(f"  complaint type:   {status.complaint_feedback_type}")
        lines.append(
            f"  transient:        {status.transient_count} (limit {status.transient_limit} within "
            f"{status.transient_window})"
        )
    lines.append(f"  suppression list: {_suppression_words(status)}")
    if status.history:
        lines.append("  history (newest first):")
        lines += [f"    {line}" for line in history_lines(status.history)]
    # SES's strings (a remote mail server's diagnostic, an ISP's feedback type) must not drive the terminal:
    # control and bidi characters shown as escapes; opsbot's own colour is only in the first line.
    return "\n".join([first, *(visible(line) for line in lines[1:])])


# -- stats -----------------------------------------------------------------------------------------


def _rate_line(name: str, rate: float | None, level: str) -> str:
    return f"{name} rate {_percent(rate)} — {LEVEL_WORDS.get(level, level)}"


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" + ("" if number == 1 else "s")


def stats_basis(stats: Any) -> str:
    return (
        f"Computed from {stats.deliveries:,} delivery and {stats.bounces:,} bounce notifications "
        f"({stats.permanent_bounces:,} permanent, {stats.transient_bounces:,} transient, "
        f"{stats.undetermined_bounces:,} undetermined) and {_count(stats.complaints, 'complaint')}, "
        "per recipient, "
        f"recorded by opsbot on {stats.first_day} to {stats.last_day} (whole UTC days). "
        f"Bounce rate = permanent bounces / {stats.recipients:,} recipients with a delivery or bounce; "
        "complaint rate = complaints / the same recipients. "
        "SES computes its own rates over all messages sent."
    )


def _reputation_line(stats: Any, *, slack: bool = False) -> str:
    """SES's own metrics in words; ``slack``: mrkdwn (escaped, the time a date token)."""
    metrics = stats.reputation
    if metrics is None:
        note = stats.reputation_note or "No SES reputation metrics."
        return escape(note) if slack else note
    parts = [
        _rate_line("Bounce", metrics.bounce_rate, stats.ses_bounce_level),
        _rate_line("complaint", metrics.complaint_rate, stats.ses_complaint_level),
    ]
    counts = ", ".join(
        f"{name} {value:,}"
        for name, value in (
            ("sends", metrics.sends),
            ("deliveries", metrics.deliveries),
            ("bounces", metrics.bounces),
            ("complaints", metrics.complaints),
        )
        if value is not None
    )
    as_of = f" (as of {when(metrics.rate_time, slack=slack)})" if metrics.rate_time else ""
    line = "; ".join(parts) + (f". Counts in CloudWatch: {counts}." if counts else ".")
    return f"SES reputation metrics{as_of}: " + (escape(line) if slack else line)


def _own_rate_lines(stats: Any) -> list[tuple[str, str]]:
    """(line, level) for the rates opsbot computes, or the one line saying why there are none."""
    if stats.rates_note:
        return [(stats.rates_note, "unknown")]
    return [
        (_rate_line("Bounce", stats.bounce_rate, stats.bounce_level), stats.bounce_level),
        (_rate_line("Complaint", stats.complaint_rate, stats.complaint_level), stats.complaint_level),
    ]


def stats_message(stats: Any) -> tuple[str, list[Block]]:
    lines = [line for line, _ in _own_rate_lines(stats)]
    blocks: list[Block] = [
        header(f"Mail feedback since {stats.first_day}"),
        section("\n".join(f"*{escape(line)}*" for line in lines)),
        context(escape(stats_basis(stats))),
        divider(),
        section(_reputation_line(stats, slack=True)),
        context(THRESHOLDS_TEXT),
    ]
    return escape("; ".join(lines)), fit(blocks)[0]


def stats_text(stats: Any, *, use_colour: bool = False) -> str:
    def painted(line: str, level: str) -> str:
        code = {"healthy": "32", "elevated": "33", "review": "31", "paused": "31"}.get(level, "2")
        return paint(line, code, use_colour)

    return "\n".join(
        [
            f"Mail feedback {stats.first_day} .. {stats.last_day}",
            *("  " + painted(line, level) for line, level in _own_rate_lines(stats)),
            "  " + stats_basis(stats),
            "  " + _reputation_line(stats),
            "  " + THRESHOLDS_TEXT,
        ]
    )


# -- list ------------------------------------------------------------------------------------------

LIST_STATE_WORDS = {"disable": "Disabled", "review": "Flagged for review", "enable": "Enabled"}
_LIST_ICONS = {"disable": ":no_entry:", "enable": ":large_green_circle:"}
LIST_COST_NOTE = (
    "A scan of the mailing table: DynamoDB reads (and charges for) every entry it passes, matching or not."
)


def list_more_value(page: Any, cursor: str) -> str:
    """The "More addresses" button's value: the filters (``since`` resolved) and where to go on."""
    return json.dumps({"c": cursor, "s": page.state, "t": page.since, "l": page.limit}, separators=(",", ":"))


def parse_list_more_value(value: str) -> tuple[str, str, str, int]:
    """(cursor, state, since, limit) from a "More addresses" button value; ValueError when malformed."""
    data: Any = json.loads(value)
    if not isinstance(data, dict):
        raise ValueError("not an object")
    cursor, state, since, limit = data.get("c"), data.get("s"), data.get("t", ""), data.get("l", 20)
    if not isinstance(cursor, str) or not cursor:
        raise ValueError("cursor")
    if not isinstance(state, str) or not isinstance(since, str):
        raise ValueError("filters")
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise ValueError("limit")
    return cursor, state, since, limit


def _list_filters(page: Any, *, slack: bool = False) -> str:
    words = LIST_STATE_WORDS.get(page.state, page.state).lower()
    return f"{words}" + (f", changed since {when(page.since, slack=slack)}" if page.since else "")


def _listed_line(entry: Any, *, slack: bool = False) -> str:
    """One listed address in words; ``slack``: mrkdwn (escaped, the time a date token)."""
    reason = REASON_WORDS.get(entry.reason, entry.reason) or "no reason recorded"
    reason = escape(reason) if slack else reason
    since = f" since {when(entry.since, slack=slack)}" if entry.since else ""
    parts = [f"{_state_word(entry.state)}: {reason}{since}"]
    if entry.sticky and entry.state == "disable":
        parts.append("sticky")
    if entry.review:
        parts.append("flagged for review")
    if entry.original:
        parts.append("the original handler's row")
    return " · ".join(parts)


def list_blocks(page: Any, *, continued: bool = False) -> list[Block]:
    title = f"{LIST_STATE_WORDS.get(page.state, page.state)} addresses" + (
        " (continued)" if continued else ""
    )
    blocks: list[Block] = [
        header(title),
        context(
            f"{_list_filters(page, slack=True)} · {plural(page.scanned, 'entry', 'entries')} scanned. {LIST_COST_NOTE}"
        ),
    ]
    rows: list[Block] = [
        section(
            f"{_LIST_ICONS.get(entry.state, ':white_circle:')} {address_code(truncate(entry.address, 254))}\n"
            f"{_listed_line(entry, slack=True)}"
        )
        for entry in page.addresses
    ]
    shown: list[Any] = []
    if rows:
        # Room for the button (or the closing note) after the rows that fit.
        kept, _ = fit(blocks + rows, max_blocks=MAX_BLOCKS_MESSAGE - 1, max_chars=MAX_TOTAL_BLOCK_CHARS - 400)
        shown = page.addresses[: len(kept) - len(blocks)]
    else:
        nothing = "No more addresses match." if continued else "No addresses match."
        if page.next_cursor:
            nothing = "No addresses match so far; the rest of the table is still to be scanned."
        kept = [*blocks, section(nothing)]
    cursor = page.next_cursor
    if shown and len(shown) < len(page.addresses):
        # The rest of this page did not fit in one message: go on after the last address shown.
        from bot.core.mail.commands import encode_list_cursor

        cursor = encode_list_cursor(shown[-1].address)
    if not cursor:
        kept.append(context(f"{plural(len(shown), 'address', 'addresses')} shown; end of list."))
    elif len(value := list_more_value(page, cursor)) <= MAX_BUTTON_VALUE:
        kept.append(actions([button("More addresses", ACTION_MORE, value)], block_id="mail_more"))
    else:
        kept.append(context("More addresses match; narrow the list with --since, or use `opsbot mail list`."))
    return kept


def list_text(page: Any) -> str:
    lines = [
        f"{LIST_STATE_WORDS.get(page.state, page.state)} addresses in {page.table} ({_list_filters(page)})"
    ]
    if not page.addresses:
        lines.append("  none found" + (" so far (more of the table to scan)" if page.next_cursor else ""))
    width = max([len("ADDRESS"), *(len(a.address) for a in page.addresses)])
    if page.addresses:
        lines.append(f"  {'ADDRESS':<{width}}  STATE    SINCE                     WHY")
    for entry in page.addresses:
        lines.append(
            f"  {entry.address:<{width}}  {entry.state:<7}  {iso_time(entry.since) or '-':<24}  {_listed_line(entry)}"
        )
    lines.append(f"  {plural(page.scanned, 'entry', 'entries')} scanned. {LIST_COST_NOTE}")
    if page.next_cursor:
        lines.append(f"more: --cursor {page.next_cursor}")
    return "\n".join(lines)


# -- a person's decision ---------------------------------------------------------------------------


def action_text(result: Any) -> str:
    now = _state_word(result.status.state).lower()
    return f"{result.address}: {resolution_note(result, slack=False)} Now {now}."


def action_message(result: Any) -> tuple[str, list[Block]]:
    note = resolution_note(result, slack=True)
    blocks = [
        section(f"{address_code(result.address)}: {note}"),
        context(_status_summary(result.status, slack=True)),
    ]
    return f"{escape(result.address)}: {resolution_note(result, slack=False, slack_times=True)}", blocks
