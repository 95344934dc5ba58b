"""``/fanout``: list (paged, with toggle buttons), check (``--deep``), activate, deactivate, health (with
Pause/Resume buttons), pause and resume."""

from __future__ import annotations

import logging
import secrets
from typing import Any

from bot.errors import OpsbotError, UsageError
from bot.listeners.args import ArgSpec, Flag, ParsedArgs, Positional
from bot.listeners.framework import (
    ActionCall,
    ButtonAction,
    Call,
    Command,
    Reply,
    Subcommand,
    deliver,
    register_action,
    register_command,
    runtime_of,
)

logger = logging.getLogger("opsbot.fanout")

# The same ids as bot.render.fanout (not imported here: registering must not load the core at cold start).
ACTION_ACTIVATE = "fanout:activate"
ACTION_DEACTIVATE = "fanout:deactivate"
ACTION_PAGE_NEXT = "fanout:page:next"
ACTION_PAGE_PREV = "fanout:page:prev"
ACTION_CHECK_NEXT = "fanout:check:next"
ACTION_CHECK_PREV = "fanout:check:prev"
ACTION_PAUSE = "fanout:pause"
ACTION_RESUME = "fanout:resume"

SOURCE = Positional("source", "a source ARN, Kinesis stream name or DynamoDB table name")
TARGET_ID = Positional("id", "the target id")
TABLE = Flag("table", "the targets table, when several are configured", metavar="TABLE")


def _nonce() -> str:
    return secrets.token_hex(4)


def _validate_list(args: ParsedArgs) -> None:
    from bot.core.fanout.commands import validate_type

    validate_type(args.get("type"))


def _validate_health(args: ParsedArgs) -> None:
    from bot.core.fanout.health import parse_window

    if args.get("since"):
        parse_window(args["since"])


def _listing_reply(
    listing: Any,
    *,
    page: int = 0,
    note: str = "",
    replace: bool = False,
    outcome: str = "ok",
    detail: str = "",
) -> Reply:
    from bot.render.blocks import plural
    from bot.render.fanout import listing_blocks

    text = f"{plural(listing.target_count, 'fan-out target')} in {plural(len(listing.groups), 'source')}"
    blocks = listing_blocks(listing, page=page, nonce=_nonce(), note=note)
    return Reply(text=text, blocks=blocks, replace_original=replace, outcome=outcome, detail=detail)


def _list(call: Call) -> Reply:
    from bot.core.fanout.commands import ListFilters, list_mappings

    filters = ListFilters(
        source=call.args.get("source"), type=call.args.get("type"), inactive=bool(call.args.get("inactive"))
    )
    return _listing_reply(list_mappings(call.settings, filters))


def _check_reply(
    call: Call | ActionCall, *, page: int = 0, replace: bool = False, deep: bool = False
) -> Reply:
    from bot.core.fanout.commands import check
    from bot.render.blocks import plural
    from bot.render.fanout import check_blocks

    report = check(call.settings, deep=deep)
    text = f"fan-out check: {plural(report.errors, 'error')}, {plural(report.warnings, 'warning')}"
    return Reply(
        text=text,
        blocks=check_blocks(report, page=page),
        replace_original=replace,
        outcome="ok" if not report.errors else "findings",
    )


def _check(call: Call) -> Reply:
    return _check_reply(call, deep=bool(call.args.get("deep")))


def _check_page(call: ActionCall) -> Reply:
    """Another page of the findings: the check runs again, so the page shows the table as it is now."""
    from bot.render.fanout import parse_check_page

    try:
        page, deep = parse_check_page(call.value)
    except ValueError:
        raise UsageError("That button is no longer valid; run `/fanout check` again.") from None
    return _check_reply(call, page=page, replace=True, deep=deep)


def _toggle_reply(result: Any, user_id: str) -> Reply:
    """The answer to a toggle, from the command or a list button."""
    from bot.render.fanout import toggle_blocks

    return Reply(
        text=result.message,
        blocks=toggle_blocks(result, actor=user_id if result.changed else ""),
        in_channel=result.changed,  # the team sees who changed the fan-out; a no-op stays private
        outcome="changed" if result.changed else "unchanged",
    )


def _toggle_command(active: bool) -> Any:
    def run(call: Call) -> Reply:
        from bot.core.fanout.commands import set_active

        result = set_active(
            call.settings, call.args["source"], call.args["id"], active, table=call.args.get("table")
        )
        return _toggle_reply(result, call.user_id)

    return run


def _announce(call: ActionCall, reply: Reply) -> str:
    """Post a click's change to the channel as the command's reply is posted; '' or why it was not."""
    try:
        if deliver(call.respond, reply, ref=call.ref):
            return ""
        return "the announcement was not delivered"
    except Exception as error:
        # The target has been changed: a lost announcement must not make the click look failed (a retry
        # would find nothing to change).
        logger.warning("could not announce a fan-out change ref=%s: %r", call.ref, error)
        return "the announcement was not delivered"


def _toggle_button(active: bool) -> Any:
    def run(call: ActionCall) -> Reply:
        from bot.core.fanout.commands import list_mappings, parse_source, set_active
        from bot.render.blocks import escape
        from bot.render.fanout import page_of, parse_toggle_value

        try:
            ref = parse_toggle_value(call.value)
        except ValueError:
            raise UsageError("That button is no longer valid; run `/fanout list` again.") from None
        result = set_active(call.settings, ref.source_arn, ref.target_id, active, table=ref.table)
        announced = ""
        if result.changed:  # like the command: a change is announced, a no-op answers the clicker only
            announced = _announce(call, _toggle_reply(result, call.user_id))
        verb = "activated" if active else "deactivated"
        where = parse_source(result.source_arn).display
        if result.changed:
            note = f":white_check_mark: <@{call.user_id}> {verb} *{escape(result.target_id)}* on {escape(where)}."
        else:
            state = "active" if active else "inactive"
            note = f":information_source: *{escape(result.target_id)}* was already {state}; nothing changed."
        # Redraw the page the button was on, with the new state and fresh buttons.
        try:
            try:
                listing = list_mappings(call.settings, ref.filters)
            except UsageError:  # e.g. the filtered source no longer has targets
                listing = list_mappings(call.settings)
        except OpsbotError as error:
            # The change is made: a list that cannot be read again must not make it look failed.
            return Reply(
                text=f"{note} The list could not be redrawn ({error}); run `/fanout list` to see it.",
                outcome="changed" if result.changed else "unchanged",
                detail=announced,
            )
        page = page_of(listing, result.table, result.source_arn, result.target_id)
        return _listing_reply(
            listing,
            page=page,
            note=note,
            replace=True,
            outcome="changed" if result.changed else "unchanged",
            detail=announced,
        )

    return run


def _page(call: ActionCall) -> Reply:
    from bot.core.fanout.commands import list_mappings
    from bot.render.fanout import parse_page_value

    try:
        page, filters = parse_page_value(call.value)
    except ValueError:
        raise UsageError("That button is no longer valid; run `/fanout list` again.") from None
    return _listing_reply(list_mappings(call.settings, filters), page=page, replace=True)


def _health(call: Call) -> Reply:
    from bot.core.fanout.health import health
    from bot.render.fanout import health_blocks

    report = health(call.settings, call.args.get("source"), since=call.args.get("since") or "1h")
    counts: dict[str, int] = {}
    for source in report.sources:
        counts[source.verdict.state] = counts.get(source.verdict.state, 0) + 1
    summary = ", ".join(f"{n} {state}" for state, n in counts.items()) or "no hooked source"
    # Pause/Resume buttons only for those who may use them (a click is authorized again all the same).
    buttons = call.may("fanout.pause") or call.may("fanout.resume")
    return Reply(
        text=f"fan-out health: {summary}",
        blocks=health_blocks(report, buttons=buttons, nonce=_nonce()),
        outcome="ok" if set(counts) <= {"healthy"} else "findings",
    )


# A pause or resume of one source holds this lock while it reads and changes the hook: two buttons (the
# health answer's and the command's confirmation have different idempotency keys) or two commands at once
# would both read "enabled" and both disable and announce.
HOOK_LOCK_SECONDS = 120


def _set_paused_once(call: Call | ActionCall, source: str, paused: bool, table: str | None) -> Any:
    """``set_paused`` while holding the source's lock; a Reply when another pause or resume holds it."""
    import time

    from bot.aws.state import StateTable
    from bot.core.fanout.pause import resolve_hooked, set_paused

    hooked = resolve_hooked(call.settings, source, table=table)
    state = StateTable(call.settings.state_table)
    key = f"fanout-hook:{hooked.function}:{hooked.source.arn}"
    lock = state.acquire_lock(
        key, {"user": call.user_id, "at": int(time.time())}, ttl_seconds=HOOK_LOCK_SECONDS
    )
    if not lock.acquired:
        who = lock.holder.get("user", "someone")
        return Reply(
            text=f":information_source: <@{who}> is pausing or resuming {hooked.source.display} right now; "
            "nothing was changed. Run `/fanout health` in a moment to see its state.",
            outcome="unchanged",
            detail=f"busy: {key}",
        )
    try:
        return set_paused(call.settings, hooked.source.arn, paused, table=hooked.table, hooked=hooked)
    finally:
        try:
            state.release_lock(key, owner=lock.owner)
        except Exception:  # it expires by itself
            logger.exception("could not release lock %s", key)


def _pause_reply(result: Any, user_id: str) -> Reply:
    from bot.render.fanout import pause_blocks

    return Reply(
        text=result.message,
        blocks=pause_blocks(result, actor=user_id if result.changed else ""),
        in_channel=result.changed,  # announced like the other fan-out changes; a no-op stays private
        outcome="changed" if result.changed else "unchanged",
        detail=f"{result.hooked.table}: {result.hooked.source.arn}",
    )


def _pause_command(call: Call) -> Reply:
    """`/fanout pause SOURCE`: nothing changes yet; the answer names the backlog and offers Pause."""
    from bot.core.fanout.pause import preview_pause
    from bot.render.fanout import pause_preview_blocks

    preview = preview_pause(call.settings, call.args["source"], table=call.args.get("table"))
    if preview.already_paused:
        return Reply(
            text=f"The fan-out of {preview.hooked.source.display} to {preview.hooked.function} was already "
            "paused; nothing changed.",
            outcome="unchanged",
        )
    return Reply(
        text=f"Pause the fan-out of {preview.hooked.source.display}? {preview.backlog}",
        blocks=pause_preview_blocks(preview, nonce=_nonce()),
        outcome="confirm",
    )


def _resume_command(call: Call) -> Reply:
    result = _set_paused_once(call, call.args["source"], False, call.args.get("table"))
    return result if isinstance(result, Reply) else _pause_reply(result, call.user_id)


def _hook_button(paused: bool) -> Any:
    def run(call: ActionCall) -> Reply:
        from bot.render.fanout import parse_hook_value, pause_blocks

        try:
            table, source_arn = parse_hook_value(call.value)
        except ValueError:
            raise UsageError("That button is no longer valid; run `/fanout health` again.") from None
        result = _set_paused_once(call, source_arn, paused, table)
        if isinstance(result, Reply):
            return result
        announced = _announce(call, _pause_reply(result, call.user_id)) if result.changed else ""
        return Reply(
            text=result.message,
            blocks=pause_blocks(result, actor=call.user_id if result.changed else ""),
            replace_original=True,
            outcome="changed" if result.changed else "unchanged",
            detail=announced or f"{table}: {source_arn}",
        )

    return run


FANOUT = Command(
    name="fanout",
    summary="aws-lambda-fanout mappings: list with hook state, check, activate, deactivate, health, pause, resume",
    subcommands=(
        Subcommand(
            "list",
            "Targets grouped by source, with each source's hook (event source mapping) to the fan-out function.",
            run=_list,
            spec=ArgSpec(
                positionals=(Positional("source", SOURCE.help, optional=True),),
                flags=(
                    Flag("type", "only targets of this type (kinesis, sqs, sns, es, ...)", metavar="TYPE"),
                    Flag("inactive", "only inactive targets", kind="bool", default=False),
                ),
            ),
            validate=_validate_list,
            working="Reading the fan-out table…",
            examples=("/fanout list", "/fanout list orders --type sqs", "/fanout list --inactive"),
        ),
        Subcommand(
            "check",
            "Every target the fan-out function would skip or mis-handle, with the reason; --deep also "
            "assumes each cross-account target's role and describes its destination (read-only).",
            run=_check,
            spec=ArgSpec(
                flags=(
                    Flag(
                        "deep",
                        "assume each target's role and describe its destination",
                        kind="bool",
                        default=False,
                    ),
                )
            ),
            working="Checking every mapping…",
            examples=("/fanout check", "/fanout check --deep"),
        ),
        Subcommand(
            "health",
            "Per hooked source: hook, iterator age, errors, throttles, stream, and a verdict with why.",
            run=_health,
            spec=ArgSpec(
                positionals=(Positional("source", SOURCE.help, optional=True),),
                flags=(Flag("since", "the window, e.g. 15m, 1h, 1d (default 1h)", metavar="DURATION"),),
            ),
            validate=_validate_health,
            working="Reading the fan-out metrics…",
            examples=("/fanout health", "/fanout health orders --since 6h"),
        ),
        Subcommand(
            "pause",
            "Stop the fan-out function reading a source (disables its hook, like the fanout CLI's pause).",
            run=_pause_command,
            spec=ArgSpec(positionals=(SOURCE,), flags=(TABLE,)),
            mutating=True,
            working="Reading the hook…",
            examples=("/fanout pause orders",),
        ),
        Subcommand(
            "resume",
            "Start reading a paused source again, from where it stopped (the fanout CLI's resume).",
            run=_resume_command,
            spec=ArgSpec(positionals=(SOURCE,), flags=(TABLE,)),
            mutating=True,
            working="Enabling the hook…",
            examples=("/fanout resume orders",),
        ),
        Subcommand(
            "activate",
            "Start forwarding to a target (only if it exists, like the fanout CLI).",
            run=_toggle_command(True),
            spec=ArgSpec(positionals=(SOURCE, TARGET_ID), flags=(TABLE,)),
            mutating=True,
            working="Changing the target…",
            examples=("/fanout activate orders replica",),
        ),
        Subcommand(
            "deactivate",
            "Stop forwarding to a target (only if it exists, like the fanout CLI).",
            run=_toggle_command(False),
            spec=ArgSpec(positionals=(SOURCE, TARGET_ID), flags=(TABLE,)),
            mutating=True,
            working="Changing the target…",
            examples=("/fanout deactivate orders replica",),
        ),
    ),
)


def register(app: Any) -> None:
    runtime_of(app)
    register_command(app, FANOUT)
    register_action(app, ButtonAction(ACTION_ACTIVATE, _toggle_button(True), action="fanout.activate"))
    register_action(app, ButtonAction(ACTION_DEACTIVATE, _toggle_button(False), action="fanout.deactivate"))
    for action_id in (ACTION_PAGE_NEXT, ACTION_PAGE_PREV):
        register_action(app, ButtonAction(action_id, _page, action="fanout.list", mutating=False))
    register_action(app, ButtonAction(ACTION_PAUSE, _hook_button(True), action="fanout.pause"))
    register_action(app, ButtonAction(ACTION_RESUME, _hook_button(False), action="fanout.resume"))
    for action_id in (ACTION_CHECK_NEXT, ACTION_CHECK_PREV):
        register_action(app, ButtonAction(action_id, _check_page, action="fanout.check", mutating=False))
