"""``/dns``: status, plan and resync of zones mirrored into Route 53, with Apply / Apply anyway / Cancel.

``/dns resync`` posts its preview into the channel as the bot (not through the response URL), so that the
Apply click can update that message once per batch with ``chat.update``: a response URL allows only five
uses. Apply, Apply anyway (``dns.force``) and Cancel share one idempotency key per message, so whichever
click comes first decides and the others are told who did what. Apply transfers and plans again and applies
only when the plan is still the one shown (same fingerprint); otherwise it posts the new preview.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from bot.errors import OpsbotError, UsageError
from bot.listeners.args import ArgSpec, Flag, Positional
from bot.listeners.framework import (
    ActionCall,
    ButtonAction,
    Call,
    Command,
    Reply,
    Subcommand,
    register_action,
    register_command,
    runtime_of,
)

logger = logging.getLogger("opsbot.listeners.dns")

# The same ids as bot.render.dns (not imported: registering must not load the core at cold start).
ACTION_APPLY = "dns:apply"
ACTION_FORCE = "dns:force"
ACTION_CANCEL = "dns:cancel"
PROGRESS_INTERVAL = 1.0  # seconds between two progress updates of the message (chat.update is Tier 3)
ANSWER_MARGIN = 10.0  # seconds kept to say what happened when the mirror function does not answer in time

DOMAIN = Positional("domain", "the zone, e.g. corp.example.com")
ZONE_ID = Flag("zone-id", "the hosted zone, when the domain is mirrored into several", metavar="ID")


def _zone(settings: Any, domain: str, zone_id: str | None) -> Any:
    """A zone of OPSBOT_DNS_ZONES (Slack offers no --master: only configured zones are mirrored)."""
    from bot.core.dns.commands import configured_zones
    from bot.core.dns.config import find_zone

    return find_zone(configured_zones(settings), domain, zone_id=zone_id)


def _run(call: Call | ActionCall, request: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """The work itself, in the DNS mirror function when OPSBOT_DNS_FUNCTION names it (it can reach the
    master and holds the Route 53 grants), else here: see bot.core.dns.worker. Its answer is data (the
    JSON of bot.core.dns.wire), rendered here either way."""
    from bot.core.dns.worker import run

    return run(call.settings, request, **kwargs)


def _status(call: Call) -> Reply:
    from bot.core.dns.wire import read, statuses_from_json
    from bot.render.dns import status_blocks, status_summary

    domain = call.args.get("domain")
    if domain:  # a mistyped domain is answered here, without a round trip
        _zone(call.settings, domain, call.args.get("zone-id"))
    answer = _run(call, {"op": "status", "domain": domain, "zone_id": call.args.get("zone-id")})
    statuses = read(statuses_from_json, answer.get("zones"), "status")
    return Reply(text=status_summary(statuses), blocks=status_blocks(statuses))


def _preview(call: Call) -> Any:
    """The zone's plan, as a bot.core.dns.commands.Preview."""
    from bot.core.dns.wire import preview_from_json, read

    zone = _zone(call.settings, call.args["domain"], call.args.get("zone-id"))
    answer = _run(call, {"op": "preview", "domain": zone.name, "zone_id": zone.zone_id})
    return read(preview_from_json, answer.get("preview"), "preview")


def _plan(call: Call) -> Reply:
    from bot.render.dns import plan_blocks, plan_summary_text

    preview = _preview(call)
    return Reply(text=plan_summary_text(preview), blocks=plan_blocks(preview, buttons=False))


def _resync(call: Call) -> Reply | None:
    from bot.render.dns import plan_blocks, plan_summary_text

    zone = _zone(call.settings, call.args["domain"], call.args.get("zone-id"))
    title = f"DNS resync: {zone.name}"
    may_apply = call.runtime.decide("dns.apply", mutating=True, caller=call.caller, client=call.client)
    preview = _preview(call)
    if not may_apply.allowed:
        # Someone who may not apply gets the plan for themselves only: a preview with Apply posted in the
        # channel would wait there for someone else's click.
        from bot.render.blocks import context, fit

        note = f":information_source: Shown only to you: you may not apply it. {may_apply.reason}"
        blocks, _ = fit(
            [context(note), *plan_blocks(preview, buttons=False, title=title)], note="Preview shortened."
        )
        return Reply(text=f"{plan_summary_text(preview)} (you may not apply it)", blocks=blocks)
    if preview.plan.empty:
        return Reply(text=plan_summary_text(preview), blocks=plan_blocks(preview, buttons=False, title=title))
    call.client.chat_postMessage(
        channel=call.channel_id,
        text=f"<@{call.user_id}> asked for a resync. " + plan_summary_text(preview),
        blocks=plan_blocks(preview, buttons=True, title=title),
    )
    return None


def _target(call: ActionCall) -> dict[str, Any]:
    try:
        value = json.loads(call.value)
        if not isinstance(value, dict) or not isinstance(value.get("domain"), str):
            raise ValueError("not a plan")
        return value
    except ValueError:
        raise UsageError("That button is no longer valid; run `/dns resync DOMAIN` again.") from None


def _update(call: ActionCall, text: str, blocks: list[dict[str, Any]]) -> None:
    call.client.chat_update(channel=call.channel_id, ts=call.message_ts, text=text, blocks=blocks)


def _update_quietly(call: ActionCall, text: str, blocks: list[dict[str, Any]]) -> None:
    """Update the preview while another failure is being reported: that failure is the one to tell."""
    try:
        _update(call, text, blocks)
    except Exception as error:
        logger.warning("the DNS preview message was not updated: %s", error)


def _final(
    call: ActionCall, text: str, blocks: list[dict[str, Any]], *, outcome: str, detail: str = ""
) -> Reply:
    """The preview's last state, replacing the message the button was on (one use of its response URL)."""
    return Reply(text=text, blocks=blocks, replace_original=True, outcome=outcome, detail=detail)


def _apply(call: ActionCall, *, force: bool) -> Reply:
    from bot.core.dns.wire import WireError, preview_from_json, read, result_from_json
    from bot.core.dns.worker import stage_of
    from bot.render.blocks import escape, header, section
    from bot.render.dns import (
        plan_blocks,
        plan_summary_text,
        progress_blocks,
        progress_text,
        result_blocks,
        result_detail,
        result_summary,
    )

    target = _target(call)
    zone = _zone(call.settings, target["domain"], str(target.get("zone_id") or "") or None)
    where = " in the DNS mirror function" if call.settings.dns_function else ""
    _update(
        call,
        f"Applying to {zone.name}…",
        [
            header(f"DNS resync: {zone.name}"),
            section(
                f":hourglass_flowing_sand: <@{call.user_id}> clicked Apply: transferring the zone again{where}…"
            ),
        ],
    )
    last_update = 0.0

    def progress(report: Any) -> None:
        # chat.update is Tier 3 (about 50 a minute): the last batch, and at most one a second before it.
        nonlocal last_update
        now = time.monotonic()
        if report.number == report.batches or now - last_update >= PROGRESS_INTERVAL:
            last_update = now
            try:
                _update(call, progress_text(report), progress_blocks(report, actor=call.user_id))
            except Exception as error:  # a refused progress line must not stop the apply between batches
                logger.warning("DNS apply progress not shown: %s", error)

    answer: dict[str, Any] = {}
    shown: Any = None  # a Preview (the zone moved on) or an ApplyResult
    request = {
        "op": "apply",
        "domain": zone.name,
        "zone_id": zone.zone_id,
        "plan": target.get("plan"),
        "force": force,
        "actor": call.user_id,
    }
    try:
        answer = _run(
            call,
            request,
            on_progress=progress,
            state_key=zone.state_key,
            deadline=time.monotonic() + max(1.0, call.seconds_left() - ANSWER_MARGIN),
        )
        if answer.get("superseded"):
            shown = read(preview_from_json, answer.get("preview"), "new preview")
        else:
            shown = read(result_from_json, answer.get("result"), "apply result")
    except Exception as error:
        if isinstance(error, WireError) and not answer.get("superseded"):
            # An answer to an apply came but cannot be read: the batches may have been applied.
            error.dns_stage = "unknown"  # type: ignore[attr-defined]
        if stage_of(error) == "unknown":
            # No answer, or an unexpected failure: some batches may have been applied before it stopped.
            why = escape(str(error)) if isinstance(error, OpsbotError) else "an unexpected error."
            _update_quietly(
                call,
                f"The resync of {zone.name} may be partly applied.",
                [
                    header(f"DNS resync: {zone.name}"),
                    section(
                        f":warning: The apply did not finish normally: {why} Some batches may have been "
                        f"applied. `/dns status` and `/dns plan {zone.name}` show where the zone stands."
                    ),
                ],
            )
        else:
            # The buttons are gone already: say on the message why nothing happened (the clicker also
            # gets the framework's answer) rather than leave it "transferring" for ever.
            _update_quietly(
                call,
                f"Nothing was applied to {zone.name}.",
                [
                    header(f"DNS resync: {zone.name}"),
                    section(
                        f":x: Nothing was applied: {escape(str(error))} Run `/dns resync {zone.name}` again."
                    ),
                ],
            )
        raise
    if answer["superseded"]:
        call.client.chat_postMessage(
            channel=call.channel_id,
            text="The zone changed since the preview. " + plan_summary_text(shown),
            blocks=plan_blocks(shown, buttons=True, title=f"DNS resync: {zone.name} (new preview)"),
        )
        text = (
            f":arrows_counterclockwise: {zone.name} or its hosted zone changed since this preview (master serial "
            f"{target.get('serial')} → {answer['master_serial']}); nothing was applied. "
            "The new preview is below."
        )
        return _final(call, text, [header(f"DNS resync: {zone.name}"), section(text)], outcome="superseded")
    return _final(
        call,
        result_summary(shown, actor=call.user_id),
        result_blocks(shown, actor=call.user_id),
        outcome=shown.outcome,
        detail=result_detail(shown),
    )


def _apply_click(call: ActionCall) -> Reply:
    return _apply(call, force=False)


def _force_click(call: ActionCall) -> Reply:
    return _apply(call, force=True)


def _cancel_click(call: ActionCall) -> Reply:
    from bot.render.blocks import header, section

    domain = str(_target(call)["domain"])
    text = f"Resync of {domain} cancelled by <@{call.user_id}>; nothing was changed."
    return _final(call, text, [header(f"DNS resync: {domain}"), section(text)], outcome="cancelled")


def _one_decision_per_preview(call: ActionCall) -> str:
    """Apply, Apply anyway and Cancel of one preview share a lock: the first click decides."""
    return f"dns:preview:{call.channel_id}:{call.message_ts}"


DNS = Command(
    name="dns",
    summary="mirror on-premises DNS zones into Route 53: status, plan, resync",
    subcommands=(
        Subcommand(
            "status",
            "Configured zones, each with one verdict (in sync, changes pending, failed, never synced) and "
            "its reason, from the SOA serials, the last sync and the last full check (edits made in Route 53 "
            "since show only in `/dns plan`).",
            run=_status,
            spec=ArgSpec(
                positionals=(Positional("domain", "one zone (default: all)", optional=True),),
                flags=(ZONE_ID,),
            ),
            working="Asking the masters and Route 53…",
            examples=("/dns status", "/dns status corp.example.com"),
        ),
        Subcommand(
            "plan",
            "Transfer the zone and show what a resync would change (read-only).",
            run=_plan,
            spec=ArgSpec(positionals=(DOMAIN,), flags=(ZONE_ID,)),
            working="Transferring the zone and reading Route 53…",
            examples=("/dns plan corp.example.com",),
        ),
        Subcommand(
            "resync",
            "Transfer and plan, then post the preview in the channel with Apply and Cancel buttons.",
            run=_resync,
            spec=ArgSpec(positionals=(DOMAIN,), flags=(ZONE_ID,)),
            working="Transferring the zone and planning the resync…",
            examples=("/dns resync corp.example.com",),
        ),
    ),
)


def register(app: Any) -> None:
    runtime_of(app)
    register_command(app, DNS)
    for action_id, run, action in (
        (ACTION_APPLY, _apply_click, "dns.apply"),
        (ACTION_FORCE, _force_click, "dns.force"),
        (ACTION_CANCEL, _cancel_click, "dns.cancel"),
    ):
        register_action(
            app,
            ButtonAction(
                action_id=action_id,
                run=run,
                action=action,
                mutating=True,
                idempotency_key=_one_decision_per_preview,
            ),
        )
