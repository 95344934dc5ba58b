"""Presentation of alarm posts: the episode message, the storm digest, and ``opsbot alarms explain``.

Pure: data in, ``(text, blocks)`` or terminal text out. Buttons carry the episode key (the alarm ARN) and,
for **Look up**, the group's first request id; their action ids are below (the listener's are the same).
"""

from __future__ import annotations

import json
from typing import Any

from bot.core.alarms.correlate import Correlation
from bot.core.alarms.delivery import AlarmDigest, EpisodeView
from bot.core.alarms.episode import duration_text
from bot.core.alarms.model import Alarm
from bot.render.blocks import (
    Block,
    actions,
    block_chars,
    button,
    context,
    escape,
    fit,
    header,
    plural,
    section,
    slack_time,
    truncate,
    utc_text,
)

ACTION_LOOKUP = "alarms:lookup"
ACTION_ERRORS = "alarms:errors"
ACTION_ACK = "alarms:ack"
ACTION_MUTE = "alarms:mute"
ACTION_INSIGHTS = "link:alarms-insights"
ACTIONS_BLOCK = "alarms:actions"
SHOWN_GROUPS = 8

STATE_ICON = {"ALARM": ":rotating_light:", "OK": ":white_check_mark:", "INSUFFICIENT_DATA": ":grey_question:"}
STATE_WORDS = {"ALARM": "ALARM", "OK": "OK", "INSUFFICIENT_DATA": "Insufficient data"}


def _metric_text(alarm: Alarm) -> str:
    if alarm.composite:
        return f"composite: `{truncate(alarm.alarm_rule, 300)}`"
    parts = []
    for metric in alarm.metrics:
        if metric.expression:
            if metric.return_data:
                parts.append(f"`{truncate(metric.expression, 200)}`")
            continue
        dims = ", ".join(f"{k}={v}" for k, v in metric.dimensions.items())
        parts.append(f"{metric.namespace} {metric.name}" + (f" ({dims})" if dims else ""))
    return escape("; ".join(parts[:4]) or "unknown")


def _reason(view: EpisodeView) -> str:
    """The reason in words: CloudWatch's sentence without the datapoint dump of (date) values."""
    reason = view.alarm.reason
    if reason.startswith("Threshold Crossed: "):
        reason = reason[len("Threshold Crossed: ") :]
    return escape(truncate(reason, 500))


def episode_message(view: EpisodeView, *, now: float | None = None) -> tuple[str, list[Block]]:
    import time

    alarm = view.alarm
    now = time.time() if now is None else now
    icon = STATE_ICON.get(alarm.state, ":bell:")
    state = STATE_WORDS.get(alarm.state, alarm.state)
    text = f"{icon} {state}: {alarm.name}"
    if alarm.state == "OK":
        in_alarm = f"was in alarm for {duration_text(alarm.changed_ms - view.start_ms)}"
    else:
        in_alarm = f"in alarm since {slack_time(view.start_ms / 1000)} ({duration_text(int(now * 1000) - view.start_ms)})"
    blocks: list[Block] = [header(f"{STATE_WORDS.get(alarm.state, alarm.state)}: {alarm.name}")]
    if alarm.description:
        blocks.append(context(escape(truncate(alarm.description, 500))))
    fields = [
        f"*State*\n{icon} {state} ({in_alarm})",
        f"*Metric*\n{_metric_text(view.alarm)}",
        f"*Threshold*\n{escape(alarm.threshold_text()) or '—'}"
        + (f" · {alarm.evaluation_periods} × {alarm.period} s" if alarm.period else ""),
        f"*Account / region*\n{alarm.account or '?'} · {alarm.region or '?'}",
    ]
    blocks.append(section(f"*Why:* {_reason(view)}", fields=fields))
    notes = []
    if view.flapping or view.changes > 3:
        notes.append(f":repeat: flapping: {plural(view.changes, 'state change')} in this episode")
    if view.acked_by:
        notes.append(f":eyes: <@{view.acked_by}> is on it (since {slack_time(view.acked_at)})")
    if view.muted_until > now:
        notes.append(f":mute: muted until {slack_time(view.muted_until)}: later changes are not posted")
    if notes:
        blocks.append(context(*notes))
    blocks.extend(correlation_blocks(view.correlation, view.key, correlating=view.correlating))
    buttons = [
        button("Errors since", ACTION_ERRORS, view.key),
        button("Acknowledge", ACTION_ACK, view.key, style="primary"),
        button(
            "Mute 1h",
            ACTION_MUTE,
            view.key,
            confirm=(
                "Mute this alarm?",
                "opsbot stops posting this alarm's state changes for an hour. The alarm itself in AWS is not changed.",
            ),
        ),
    ]
    if view.correlation is not None and view.correlation.insights_url:
        buttons.append(button("Logs Insights", ACTION_INSIGHTS, url=view.correlation.insights_url))
    last = actions(buttons, block_id=ACTIONS_BLOCK)
    # The buttons always stay: the groups are cut first when the message would be too long.
    kept, _ = fit(
        blocks, max_blocks=49, max_chars=12000 - block_chars([last]), note="More in **Errors since**."
    )
    kept.append(last)
    return text, kept


def correlation_blocks(result: Correlation | None, key: str, *, correlating: bool = False) -> list[Block]:
    if result is None:
        return (
            [context(":hourglass_flowing_sand: Looking for the failing requests of the alarm's window…")]
            if correlating
            else []
        )
    window = f"{utc_text(result.start_ms / 1000)} – {utc_text(result.end_ms / 1000)}"
    blocks: list[Block] = []
    if not result.correlated:
        blocks.append(context(f":mag: {escape(result.note) or 'No correlation.'} Window: {window}."))
        return blocks
    total = sum(int(g.get("count", 0)) for g in result.groups)
    what = {
        "api": "failing requests",
        "lambda": "failed invocations",
        "stream": "failed batches",
        "metric-filter": "matching log lines",
    }.get(result.kind, "events")
    head = f":mag: *{total:,} {what}* in the window ({window})" + ("" if result.complete else ", at least")
    if result.groups:
        head += f", {plural(len(result.groups), 'cause')}"
    blocks.append(section(head))
    if result.stream is not None:
        lines = []
        for mapping in result.stream.mappings[:5]:
            source = mapping["source"].split(":")[-1]
            lines.append(
                f"• {mapping['kind']} `{escape(source)}`: *{mapping['state'] or '?'}*, last result {mapping['lastResult'] or '—'}"
            )
        age = result.stream.iterator_age_ms
        lines.append(
            f"• iterator age (max in window): {duration_text(int(age)) if age is not None else 'no data'}"
        )
        blocks.append(section("\n".join(lines) or "No Kinesis or DynamoDB stream mapping."))
    for number, group in enumerate(result.groups[:SHOWN_GROUPS]):
        blocks.append(group_block(group, key, number, target=result.target))
    if len(result.groups) > SHOWN_GROUPS:
        blocks.append(
            context(f"+{len(result.groups) - SHOWN_GROUPS} more causes: **Errors since** lists them all.")
        )
    if result.note:
        blocks.append(context(escape(result.note)))
    return blocks


def group_block(
    group: dict[str, Any], key: str, number: int, *, target: dict[str, str] | None = None
) -> Block:
    route = " ".join(str(x) for x in (group.get("method"), group.get("path"), group.get("status")) if x)
    functions = ", ".join(group.get("functions") or [])
    first, last = group.get("first"), group.get("last")
    when = f"{slack_time(int(first) / 1000)}–{slack_time(int(last) / 1000)}" if first and last else ""
    text = (
        f"*{int(group.get('count', 0)):,}×* "
        + (f"`{escape(route)}` " if route else "")
        + escape(truncate(str(group.get("cause") or "unknown cause"), 300))
    )
    detail = " · ".join(x for x in (escape(functions), when) if x)
    block = section(text + (f"\n{detail}" if detail else ""))
    ids = group.get("requestIds") or []
    if ids:
        # The stage the correlation read (its resolved id when known): the lookup searches that stage,
        # not the default API.
        where = target or {}
        value = {
            "id": ids[0],
            "api": where.get("apiId") or where.get("api", ""),
            "stage": where.get("stage", ""),
        }
        compact = {k: v for k, v in value.items() if v}
        block["accessory"] = button("Look up", ACTION_LOOKUP, json.dumps(compact, separators=(",", ":")))
    return block


def explained_message(result: Any, *, asked_on: str = "that message") -> tuple[str, list[Block]]:
    """``alarms explain`` in Slack (the message shortcut on an AWS Chatbot post or an alarm e-mail): the
    alarm's state and the correlation of its window, with **Look up** on each group."""
    alarm = result.alarm
    icon = STATE_ICON.get(alarm.state, ":bell:")
    state = STATE_WORDS.get(alarm.state, alarm.state or "?")
    text = f"{icon} {alarm.name}: {state}, the failing requests of its window"
    head = section(
        f"{icon} *{escape(alarm.name)}* ({state}), named in {asked_on}: what failed in its window",
        fields=[
            f"*Metric*\n{_metric_text(alarm)}",
            f"*Account / region*\n{alarm.account or '?'} · {alarm.region or '?'}",
        ],
    )
    blocks, _ = fit(
        [head, *correlation_blocks(result.correlation, alarm.arn)],
        max_blocks=50,
        note="More with `opsbot alarms explain`.",
    )
    return text, blocks


def digest_message(digest: AlarmDigest) -> tuple[str, list[Block]]:
    text = f":rotating_light: Alarm storm: {plural(digest.total, 'alarm')} since {digest.started_at}"
    by_state = ", ".join(f"{n} {STATE_WORDS.get(s, s)}" for s, n in sorted(digest.by_state.items()))
    by_ns = ", ".join(
        f"{n} {escape(s)}" for s, n in sorted(digest.by_namespace.items(), key=lambda x: -x[1])[:8]
    )
    names = ", ".join(f"`{escape(n)}`" for n in digest.alarms[:10])
    blocks = [
        header("Alarm storm: one message instead of many"),
        section(
            f"*{digest.total:,}* alarms went off since {digest.started_at} ({by_state}).",
            fields=[f"*By namespace*\n{by_ns or '—'}", f"*First alarms*\n{names or '—'}"],
        ),
        context(
            "Each alarm's own message resumes once fewer alarms go off per minute; `opsbot alarms explain NAME` correlates any of them."
        ),
    ]
    return text, blocks


# -- the terminal -------------------------------------------------------------------------------------


def explain_text(result: Any) -> str:
    data = result.to_json()
    lines = [f"{data['alarm']}: {data['state']} ({data['namespace'] or 'no metric'})"]
    lines.append(
        f"window {utc_text(data['window']['start'] / 1000)} – {utc_text(data['window']['end'] / 1000)}"
    )
    if not data["correlated"]:
        lines.append(data.get("note") or "no correlation")
    for group in data["groups"]:
        route = " ".join(str(x) for x in (group.get("method"), group.get("path"), group.get("status")) if x)
        lines.append(f"  {group['count']:>6}  {route + '  ' if route else ''}{group.get('cause') or ''}")
        ids = group.get("requestIds") or []
        if ids:
            lines.append(f"          e.g. {', '.join(ids[:3])}")
    if data.get("insightsUrl"):
        lines.append(f"Logs Insights: {data['insightsUrl']}")
    return "\n".join(lines)
