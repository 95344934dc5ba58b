"""The DNS mirror's plans, progress, results and status as Slack blocks and as terminal text. Pure.

A resync preview shows the counts per action, the first changes, what is left alone and why, and the
guards; its buttons are ``dns:apply`` (or ``dns:force`` when a guard refuses, for whoever the policy lets
force) and ``dns:cancel``. A button's value identifies the plan (zone, hosted zone, master serial, plan
fingerprint), so Apply applies exactly the plan that was shown or says that the zone moved on.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from bot.core.dns.commands import (
    ApplyProgress,
    ApplyResult,
    BatchOutcome,
    MirrorResult,
    Prepared,
    Preview,
    Verdict,
    ZoneStatus,
)
from bot.core.dns.config import ZoneConfig
from bot.core.dns.plan import Action, Change, Plan
from bot.render.blocks import (
    Block,
    actions,
    button,
    code_blocks,
    context,
    escape,
    fields_section,
    fit,
    header,
    iso_time,
    section,
    slack_time,
    times_in,
    truncate,
)

ACTION_APPLY = "dns:apply"
ACTION_FORCE = "dns:force"
ACTION_CANCEL = "dns:cancel"
PREVIEW_CHANGES = 20
PREVIEW_LEFT_ALONE = 8
PREVIEW_LINE = 160

_SYMBOL = {Action.CREATE: "+", Action.UPSERT: "~", Action.DELETE: "-"}
_WORD = {Action.CREATE: "create", Action.UPSERT: "update", Action.DELETE: "delete"}

# A preview renders the same from a Prepared (in this process) and from a Preview (the DNS mirror
# function's answer, read back by bot.core.dns.wire).
Shown = Prepared | Preview


def _preview(shown: Shown) -> Preview:
    return shown.preview if isinstance(shown, Prepared) else shown


def button_value(shown: Shown) -> str:
    """What identifies the previewed plan (no secret, far below Slack's 2,000 characters)."""
    prepared = _preview(shown)
    return json.dumps(
        {
            "domain": prepared.zone.name,
            "zone_id": prepared.zone.zone_id,
            "serial": prepared.plan.master_serial,
            "plan": prepared.plan.fingerprint(),
        },
        separators=(",", ":"),
    )


def change_line(change: Change) -> str:
    return f"{_SYMBOL[change.action]} {change.summary()}"


def _counts_text(plan: Plan) -> str:
    return _counts_of(plan.counts(), len(plan.batches))


def _counts_of(counts: dict[str, int], batches: int) -> str:
    return (
        f"{counts.get('CREATE', 0)} to create, {counts.get('UPSERT', 0)} to update, "
        f"{counts.get('DELETE', 0)} to delete in {batches} batch{'es' if batches != 1 else ''}"
    )


def _serials(plan: Plan) -> str:
    return (
        f"master serial {plan.master_serial if plan.master_serial is not None else '?'}, Route 53 serial "
        + (str(plan.route53_serial) if plan.route53_serial is not None else "?")
    )


def _left_alone_lines(plan: Plan, limit: int) -> list[str]:
    lines = [item.text() for item in plan.left_alone[:limit]]
    if len(plan.left_alone) > limit:
        lines.append(f"… and {len(plan.left_alone) - limit} more")
    return lines


# -- Slack -----------------------------------------------------------------------------------------


def plan_blocks(shown: Shown, *, buttons: bool, title: str = "") -> list[Block]:
    """The preview of ``/dns plan`` (buttons=False) and ``/dns resync`` (buttons=True)."""
    prepared = _preview(shown)
    zone, plan = prepared.zone, prepared.plan
    blocks: list[Block] = [header(title or f"DNS {'resync' if buttons else 'plan'}: {zone.name}")]
    if plan.empty:
        text = (
            f":white_check_mark: Route 53 zone `{zone.zone_id}` already matches the master `{zone.master}` "
            f"({_serials(plan)})."
        )
        if plan.ttl_only_ignored:
            text += f" {plan.ttl_only_ignored} record sets differ only in TTL (ignored)."
        blocks.append(section(text))
    else:
        counts = plan.counts()
        blocks.append(
            section(
                f"Mirroring `{zone.master}` into hosted zone `{zone.zone_id}`: {_counts_text(plan)} "
                f"({_serials(plan)})."
            )
        )
        blocks.append(
            fields_section(
                [
                    f"*Create*\n{counts['CREATE']}",
                    f"*Update*\n{counts['UPSERT']}",
                    f"*Delete*\n{counts['DELETE']}",
                    f"*Batches*\n{len(plan.batches)}",
                    f"*Master records*\n{plan.master_records}",
                    f"*Route 53 records*\n{plan.route53_records}",
                ]
            )
        )
        # Long values (DKIM keys) are cut so that the preview always has room for what follows.
        listed = [
            escape(truncate(change_line(change), PREVIEW_LINE)) for change in plan.changes[:PREVIEW_CHANGES]
        ]
        blocks.extend(code_blocks(listed))
        if len(plan.changes) > PREVIEW_CHANGES:
            blocks.append(context(f"… and {len(plan.changes) - PREVIEW_CHANGES} more changes."))
    for guard in plan.guards:
        blocks.append(section(f":no_entry: *Refused unless forced:* {escape(guard.message)}"))
    for warning in plan.warnings:
        blocks.append(section(f":warning: {escape(warning)}"))
    if plan.left_alone:
        lines = _left_alone_lines(plan, PREVIEW_LEFT_ALONE)
        blocks.append(
            section(
                f":information_source: *Left alone* ({len(plan.left_alone)}):\n"
                + "\n".join(f"• {escape(line)}" for line in lines)
            )
        )
    footer = context(
        f"Transfer {prepared.timings.transfer:.2f} s · Route 53 read {prepared.timings.route53_read:.2f} s · "
        f"plan {prepared.timings.plan:.2f} s · fingerprint {plan.fingerprint()}"
    )
    tail: list[Block] = [footer]
    if buttons and not plan.empty:
        value = button_value(prepared)
        elements: list[dict[str, Any]] = []
        if plan.blocked:
            elements.append(
                button(
                    "Apply anyway",
                    ACTION_FORCE,
                    value,
                    style="danger",
                    confirm=(
                        "Apply despite the guards?",
                        truncate("; ".join(g.message for g in plan.guards), 280),
                    ),
                )
            )
        else:
            elements.append(
                button(
                    "Apply",
                    ACTION_APPLY,
                    value,
                    style="primary",
                    confirm=(f"Apply to {zone.name}?", truncate(_counts_text(plan) + ".", 280)),
                )
            )
        elements.append(button("Cancel", ACTION_CANCEL, value))
        tail.insert(0, actions(elements, block_id="dns-buttons"))
    kept, _ = fit(blocks, max_blocks=50 - len(tail), max_chars=12000, note="Preview shortened.")
    return [*kept, *tail]


def plan_summary_text(shown: Shown) -> str:
    """The notification text that accompanies the blocks."""
    prepared = _preview(shown)
    plan = prepared.plan
    if plan.empty:
        return f"DNS {prepared.zone.name}: Route 53 matches the master."
    return f"DNS {prepared.zone.name}: {_counts_text(plan)}."


def progress_text(progress: ApplyProgress) -> str:
    return f"Applying batch {progress.number} of {progress.batches}…"


def progress_blocks(progress: ApplyProgress, *, actor: str = "") -> list[Block]:
    """While applying: one line per batch done so far."""
    total = progress.batches
    who = f" by <@{actor}>" if actor else ""
    lines = [_outcome_line(outcome, total) for outcome in progress.outcomes]
    blocks: list[Block] = [
        header(f"DNS resync: {progress.domain}"),
        section(
            f":hourglass_flowing_sand: Applying{who}: batch {progress.number} of {total} "
            f"({_counts_of(progress.counts, total)})."
        ),
    ]
    blocks.extend(code_blocks(lines[-30:], escape_text=True))  # Route 53 errors may quote values
    return fit(blocks)[0]


def _outcome_line(outcome: BatchOutcome, total: int) -> str:
    mark = {"applied": "✓", "failed": "✗", "not attempted": "·"}.get(outcome.status, "?")
    retried = outcome.attempts - 1
    retries = f", {retried} retr{'ies' if retried > 1 else 'y'}" if retried > 0 else ""
    error = f": {outcome.error}" if outcome.error else ""
    return (
        f"{mark} batch {outcome.number}/{total} {outcome.status} "
        f"({outcome.changes} change{'s' if outcome.changes != 1 else ''}{retries}){error}"
    )


def result_blocks(result: ApplyResult, *, actor: str = "") -> list[Block]:
    """After an apply (or a refusal): what happened, batch by batch."""
    zone, plan = result.zone, result.plan
    who = f" by <@{actor}>" if actor else ""
    blocks: list[Block] = [header(f"DNS resync: {zone.name}")]
    icon, sentence = result_sentence(result, who, escape)
    blocks.append(section(f"{icon} {sentence}"))
    if result.batches:
        blocks.extend(
            code_blocks([_outcome_line(o, len(plan.batches)) for o in result.batches][:60], escape_text=True)
        )
    for note in result.notes:
        blocks.append(context(f":warning: {escape(note)}"))
    return fit(blocks, note="Result shortened.")[0]


def result_summary(result: ApplyResult, *, actor: str = "") -> str:
    """The notification text that accompanies ``result_blocks``."""
    return result_sentence(result, f" by <@{actor}>" if actor else "")[1]


def result_detail(result: ApplyResult) -> str:
    """For the audit record: how far the apply got, and which plan."""
    return (
        f"{len(result.applied_batches)}/{len(result.plan.batches)} batches, plan {result.plan.fingerprint()}"
    )


def result_sentence(result: ApplyResult, who: str = "", esc: Callable[[str], str] = str) -> tuple[str, str]:
    """(Slack emoji, sentence) for an apply; ``esc`` escapes the parts that come from outside."""
    zone, plan = result.zone, result.plan
    if result.refused:
        return ":no_entry:", f"Nothing was changed in {zone.name}{who}: " + esc(" ".join(result.refused))
    failed = result.failed_batch
    if failed is not None:
        return (
            ":x:",
            f"Batch {failed.number} failed{who}: {esc(failed.error)} Each batch is atomic: "
            f"{result.applied_text()}; the rest were not attempted. Run the resync again to finish.",
        )
    if plan.empty:
        return ":white_check_mark:", f"{zone.name} already matched the master; nothing to apply."
    forced = " (forced)" if result.forced else ""
    soa = f" Route 53 SOA serial set to {plan.master_serial}." if result.soa_serial_set else ""
    return (
        ":white_check_mark:",
        f"Applied{who}{forced}: {len(plan.changes)} changes in {len(plan.batches)} "
        f"batch{'es' if len(plan.batches) != 1 else ''} to {zone.name} ({result.seconds:.1f} s).{soa}",
    )


def cancelled_blocks(zone: ZoneConfig, *, actor: str = "") -> list[Block]:
    who = f" by <@{actor}>" if actor else ""
    return [header(f"DNS resync: {zone.name}"), section(f"Cancelled{who}; nothing was changed.")]


_VERDICT_ICON = {
    Verdict.IN_SYNC: ":large_green_circle:",
    Verdict.CHANGES_PENDING: ":large_yellow_circle:",
    Verdict.NEVER_SYNCED: ":white_circle:",
    Verdict.FAILED: ":red_circle:",
}


def status_summary(statuses: Sequence[ZoneStatus]) -> str:
    """The notification text: each zone's verdict."""
    lines = [f"{item.zone.name}: {item.verdict}" for item in statuses] or ["No zones are configured."]
    return "DNS mirror status: " + "; ".join(lines)


def status_blocks(statuses: Sequence[ZoneStatus]) -> list[Block]:
    blocks: list[Block] = [header("DNS mirror status")]
    if not statuses:
        blocks.append(section("No zones are configured. Set `OPSBOT_DNS_ZONES` (see docs/configuration.md)."))
        return blocks
    for item in statuses:
        verdict, reason = item.verdict, item.reason
        blocks.append(
            section(
                f"{_VERDICT_ICON[verdict]} *{item.zone.name}* → `{item.zone.zone_id}`: *{verdict}*: "
                + times_in(truncate(reason, 1500), slack=True)
            )
        )
        blocks.append(fields_section(_status_fields(item)))
        # What the verdict's reason does not already say (a failed run, and the master unreachable now).
        others = [e for e in (item.master_error, item.route53_error) if e and e not in reason]
        if others:
            blocks.append(context(*[f":warning: {escape(truncate(e, 500))}" for e in others]))
    return fit(blocks, note="More zones than fit; use the CLI: opsbot dns status.")[0]


def _status_fields(item: ZoneStatus) -> list[str]:
    last = item.last_sync or {}
    synced = slack_time(last["synced_at"]) if last.get("synced_at") else "never"
    counts = last.get("counts") or {}
    applied = (
        f"{counts.get('CREATE', 0)} created, {counts.get('UPSERT', 0)} updated, "
        f"{counts.get('DELETE', 0)} deleted"
        if counts
        else "—"
    )
    return [
        f"*Master*\n`{item.zone.master}` serial {_or_dash(item.master_serial)}",
        f"*Route 53 SOA serial*\n{_or_dash(item.route53_serial)}",
        f"*Last sync*\n{synced} (serial {_or_dash(item.last_serial)})",
        f"*Last changes*\n{applied}",
        f"*Last full check*\n{_check_field(item)}",
    ]


def _check_field(item: ZoneStatus, *, slack: bool = True) -> str:
    check = item.last_check or {}
    if item.pending is None:
        return "none recorded"
    found = (
        f"{item.pending} change{'s' if item.pending != 1 else ''} to make"
        if item.pending
        else "nothing to change"
    )
    checked = (slack_time if slack else iso_time)(check["checked_at"]) if check.get("checked_at") else "?"
    return f"{checked} (serial {_or_dash(check.get('master_serial'))}): {found}"


def _or_dash(value: object) -> str:
    return "—" if value is None else str(value)


# -- terminal --------------------------------------------------------------------------------------


def plan_text(shown: Shown, *, limit: int = 50) -> str:
    prepared = _preview(shown)
    zone, plan = prepared.zone, prepared.plan
    lines = [
        f"{zone.name}: master {zone.master} -> Route 53 hosted zone {zone.zone_id}",
        f"  {_serials(plan)}; {plan.master_records} record sets on the master, "
        f"{plan.route53_records} managed in Route 53",
    ]
    if plan.empty:
        lines.append("  Route 53 already matches the master.")
    else:
        lines.append(f"  {_counts_text(plan)}:")
        for change in plan.changes[:limit]:
            lines.append("    " + change_line(change))
        if len(plan.changes) > limit:
            lines.append(f"    … and {len(plan.changes) - limit} more (--limit N, or --json for all)")
    if plan.ttl_only_ignored:
        lines.append(f"  {plan.ttl_only_ignored} record sets differ only in TTL (ignored, IgnoreTTL).")
    for guard in plan.guards:
        lines.append(f"  REFUSED unless --force: {guard.message}")
    for warning in plan.warnings:
        lines.append(f"  warning: {warning}")
    if plan.left_alone:
        lines.append(f"  left alone ({len(plan.left_alone)}):")
        lines.extend(f"    {line}" for line in _left_alone_lines(plan, 20))
    t = prepared.timings
    lines.append(
        f"  transfer {t.transfer:.2f} s ({prepared.transfer_records} records), Route 53 read "
        f"{t.route53_read:.2f} s, plan {t.plan:.3f} s; fingerprint {plan.fingerprint()}"
    )
    return "\n".join(lines)


def result_text(result: ApplyResult) -> str:
    lines = [result_sentence(result)[1]]
    for outcome in result.batches:
        lines.append("  " + _outcome_line(outcome, len(result.plan.batches)))
    lines.extend(f"  note: {note}" for note in result.notes)
    return "\n".join(lines)


def status_text(statuses: Sequence[ZoneStatus]) -> str:
    if not statuses:
        return "No zones are configured (OPSBOT_DNS_ZONES)."
    lines: list[str] = []
    for item in statuses:
        last = item.last_sync or {}
        lines.append(
            f"{item.zone.name} -> {item.zone.zone_id}: {item.verdict}: {times_in(item.reason, slack=False)}"
        )
        lines.append(f"  master {item.zone.master} serial {_or_dash(item.master_serial)}")
        lines.append(f"  Route 53 SOA serial {_or_dash(item.route53_serial)}")
        synced = iso_time(last["synced_at"]) if last.get("synced_at") else "never"
        lines.append(f"  last sync {synced} (serial {_or_dash(item.last_serial)})")
        lines.append(f"  last full check {_check_field(item, slack=False)}")
        lines.extend(
            f"  problem: {e}" for e in (item.master_error, item.route53_error) if e and e not in item.reason
        )
    return "\n".join(lines)


def mirror_text(result: MirrorResult) -> str:
    return f"{result.status}: {result.message}"


def plan_json(shown: Shown, *, changes: bool = True) -> dict[str, Any]:
    """The plan as one JSON document (``opsbot dns plan|resync --json``)."""
    prepared = _preview(shown)
    plan = prepared.plan
    document: dict[str, Any] = {
        **prepared.zone.describe(),
        "changes": len(plan.changes),
        "batches": len(plan.batches),
        "applied": False,
        "counts": plan.counts(),
        "master_serial": plan.master_serial,
        "route53_serial": plan.route53_serial,
        "master_records": plan.master_records,
        "route53_records": plan.route53_records,
        "ttl_only_ignored": plan.ttl_only_ignored,
        "guards": [{"code": g.code, "message": g.message} for g in plan.guards],
        "warnings": list(plan.warnings),
        "left_alone": [
            {"side": item.side, "name": item.name, "type": item.rtype, "reason": item.reason}
            for item in plan.left_alone
        ],
        "fingerprint": plan.fingerprint(),
        "timings": prepared.timings.to_json(),
    }
    if changes:
        document["change_list"] = [
            {
                "batch": batch.number,
                "action": change.action.value,
                "name": change.name,
                "type": change.rtype,
                "ttl": change.ttl,
                "values": list(change.record.values),
            }
            for batch in plan.batches
            for change in batch.changes
        ]
    return document
