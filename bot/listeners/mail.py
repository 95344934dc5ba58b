"""``/mail``: status, stats, list (with a "More addresses" button), reenable, suppress; and the buttons on
alerts (Re-enable, Keep suppressed, History).

The buttons are the same policy actions as the commands (``mail.reenable``, ``mail.suppress``; History
reads like ``mail.status``). One decision per alert: the idempotency lock is per message and address, so
a double click, or two people clicking Re-enable and Keep suppressed at once, changes things once, and the
alert is replaced by who did what and when.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.errors import UsageError
from bot.listeners.args import ArgSpec, Flag, ParsedArgs, Positional
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

# The same ids as bot.render.mail (not imported here: registering must not load the core at cold start).
ACTION_REENABLE = "mail:reenable"
ACTION_SUPPRESS = "mail:suppress"
ACTION_HISTORY = "mail:history"
ACTION_MORE = "mail:more"
ALERT_ACTIONS_BLOCK = "mail:alert-actions"
SLACK_LIST_LIMIT = 40  # a page of addresses must fit in one message with its button

# The rest of the words: a display name pasted with the address (`Jane Doe <jane@example.com>`) is one.
ADDRESS = Positional(
    "address", "the e-mail address, e.g. jane@example.com (a pasted display name is fine)", words=True
)


def _validate_address(args: ParsedArgs) -> None:
    """Pure (ack path): a bad address is answered at once, nothing runs."""
    from bot.core.mail.feedback import normalize_address

    normalize_address(str(args.get("address", "")))


def _validate_stats(args: ParsedArgs) -> None:
    from bot.core.common.timeparse import parse_time

    parse_time(str(args.get("since") or "7d"))


def _validate_list(args: ParsedArgs) -> None:
    from bot.core.common.timeparse import parse_time

    if args.get("since"):
        parse_time(str(args["since"]))


def _by(user_id: str) -> str:
    return f"slack:{user_id}"


def _status(call: Call) -> Reply:
    from bot.core.mail.commands import status
    from bot.render.mail import status_message

    result = status(str(call.args["address"]), call.settings)
    text, blocks = status_message(result)
    return Reply(text=text, blocks=blocks, detail=result.state)


def _stats(call: Call) -> Reply:
    from bot.core.mail.commands import stats
    from bot.render.mail import stats_message

    result = stats(call.settings, str(call.args.get("since") or "7d"))
    text, blocks = stats_message(result)
    return Reply(text=text, blocks=blocks)


def _list_reply(page: Any, *, continued: bool) -> Reply:
    from bot.render.mail import LIST_STATE_WORDS, list_blocks

    count = len(page.addresses)
    text = (
        f"{count} {LIST_STATE_WORDS.get(page.state, page.state).lower()} address{'es' if count != 1 else ''}"
        f" from {page.table}" + (" (more available)" if page.next_cursor else "")
    )
    return Reply(text=text, blocks=list_blocks(page, continued=continued))


def _list(call: Call) -> Reply:
    from bot.core.mail.commands import list_addresses

    page = list_addresses(
        call.settings,
        state=str(call.args.get("state") or "disable"),
        since=call.args.get("since"),
        limit=int(call.args.get("limit", 20)),
    )
    return _list_reply(page, continued=False)


def _more(call: ActionCall) -> Reply:
    from bot.core.mail.commands import list_addresses
    from bot.render.mail import parse_list_more_value

    try:
        cursor, state, since, limit = parse_list_more_value(call.value)
    except ValueError:
        raise UsageError("That button is no longer valid; run `/mail list` again.") from None
    page = list_addresses(
        call.settings,
        state=state,
        since=since or None,
        limit=max(1, min(limit, SLACK_LIST_LIMIT)),
        cursor=cursor,
    )
    return _list_reply(page, continued=True)


def _outcome(result: Any) -> str:
    return "ok" if result.changed else "unchanged"


def _decision_reply(result: Any) -> Reply:
    """A command's decision: the channel sees who changed what; a no-op (the address already was so)
    answers the caller only, as every no-op does."""
    from bot.render.mail import action_message

    text, blocks = action_message(result)
    return Reply(
        text=text,
        blocks=blocks,
        in_channel=result.changed,
        outcome=_outcome(result),
        detail=result.suppression_list,
    )


def _reenable(call: Call) -> Reply:
    from bot.core.mail.commands import reenable

    return _decision_reply(reenable(str(call.args["address"]), call.settings, by=_by(call.user_id)))


def _suppress(call: Call) -> Reply:
    from bot.core.mail.commands import suppress

    reason = str(call.args.get("reason") or "")
    return _decision_reply(
        suppress(str(call.args["address"]), call.settings, by=_by(call.user_id), reason=reason)
    )


MAIL = Command(
    name="mail",
    summary="SES bounce/complaint state of e-mail addresses: status, rates, re-enable, suppress",
    subcommands=(
        Subcommand(
            "status",
            "State and why, last event, history and the SES suppression-list entry of an address.",
            run=_status,
            spec=ArgSpec(positionals=(ADDRESS,)),
            validate=_validate_address,
            working="Looking the address up…",
            examples=("/mail status jane@example.com",),
        ),
        Subcommand(
            "stats",
            "Bounce and complaint rates against SES's thresholds (and SES's own reputation metrics).",
            run=_stats,
            spec=ArgSpec(
                flags=(
                    Flag("since", "how far back: 7d (default), 36h, 2024-05-01", default="7d", kind="time"),
                )
            ),
            validate=_validate_stats,
            working="Counting feedback…",
            examples=("/mail stats", "/mail stats --since 30d"),
        ),
        Subcommand(
            "list",
            "List addresses by state (scans the mailing table: its cost grows with the table), with a "
            "button for more.",
            run=_list,
            spec=ArgSpec(
                flags=(
                    Flag(
                        "state",
                        "disable (default), review (flagged) or enable",
                        kind="choice",
                        choices=("disable", "review", "enable"),
                        default="disable",
                    ),
                    Flag(
                        "since",
                        "only entries changed since: 1d, 36h, 2024-05-01T10:00Z",
                        metavar="TIME",
                        kind="time",
                    ),
                    Flag(
                        "limit",
                        "addresses per page",
                        kind="int",
                        default=20,
                        minimum=1,
                        maximum=SLACK_LIST_LIMIT,
                    ),
                )
            ),
            validate=_validate_list,
            working="Scanning the mailing table…",
            examples=("/mail list", "/mail list --state review --since 1d --limit 10"),
        ),
        Subcommand(
            "reenable",
            "Enable an address again (clears a complaint's stickiness); removes it from the SES account "
            "suppression list when OPSBOT_SES_SUPPRESSION=1.",
            run=_reenable,
            spec=ArgSpec(positionals=(ADDRESS,)),
            validate=_validate_address,
            mutating=True,
            working="Re-enabling…",
            examples=("/mail reenable jane@example.com",),
        ),
        Subcommand(
            "suppress",
            "Disable an address and keep it disabled; adds it to the SES account suppression list when "
            "OPSBOT_SES_SUPPRESSION=1.",
            run=_suppress,
            spec=ArgSpec(
                positionals=(ADDRESS,),
                flags=(
                    Flag(
                        "reason",
                        "reason on the SES suppression list (default: complaint if it complained, else bounce)",
                        kind="choice",
                        choices=("bounce", "complaint"),
                    ),
                ),
            ),
            validate=_validate_address,
            mutating=True,
            working="Suppressing…",
            examples=(
                "/mail suppress jane@example.com",
                "/mail suppress jane@example.com --reason complaint",
            ),
        ),
    ),
)


# -- buttons ---------------------------------------------------------------------------------------


def _decision_key(call: ActionCall) -> str:
    """One decision per alert (or status message) and address, whichever button is clicked."""
    return f"mail:decision:{call.channel_id}:{call.message_ts}:{call.value}"


def _is_alert(message: Mapping[str, Any]) -> bool:
    return any(block.get("block_id") == ALERT_ACTIONS_BLOCK for block in message.get("blocks", []) or [])


def _decided(call: ActionCall, result: Any) -> Reply:
    from bot.render.mail import action_message, resolution_note, resolved_alert

    text, blocks = action_message(result)
    if not result.changed:
        # A no-op answers the clicker only: the alert (or status message) stays as it was, its decision
        # still open (the framework releases the lock of an unchanged outcome).
        return Reply(text=text, blocks=blocks, outcome=_outcome(result), detail=result.suppression_list)
    message = call.message
    if message and _is_alert(message):
        blocks = resolved_alert(message.get("blocks", []), resolution_note(result, slack=True))
        note = resolution_note(result, slack=False, slack_times=True)
        text = f"{message.get('text', '')} — {note}"[:3000]
    return Reply(
        text=text,
        blocks=blocks,
        replace_original=True,
        outcome=_outcome(result),
        detail=result.suppression_list,
    )


def _address_of(call: ActionCall) -> str:
    if not call.value:
        raise UsageError("This button carries no address; use `/mail status <address>`.")
    return call.value


def _click_reenable(call: ActionCall) -> Reply:
    from bot.core.mail.commands import reenable

    return _decided(call, reenable(_address_of(call), call.settings, by=_by(call.user_id)))


def _click_suppress(call: ActionCall) -> Reply:
    from bot.core.mail.commands import suppress

    return _decided(call, suppress(_address_of(call), call.settings, by=_by(call.user_id)))


def _click_history(call: ActionCall) -> Reply:
    from bot.core.mail.commands import status
    from bot.render.mail import history_message

    text, blocks = history_message(status(_address_of(call), call.settings))
    return Reply(text=text, blocks=blocks)


BUTTONS = (
    ButtonAction(ACTION_REENABLE, _click_reenable, action="mail.reenable", idempotency_key=_decision_key),
    ButtonAction(ACTION_SUPPRESS, _click_suppress, action="mail.suppress", idempotency_key=_decision_key),
    ButtonAction(ACTION_HISTORY, _click_history, action="mail.status", mutating=False),
    ButtonAction(ACTION_MORE, _more, action="mail.list", mutating=False),
)


def register(app: Any) -> None:
    runtime_of(app)  # fail early if the app was not built by bot.app.build_app
    register_command(app, MAIL)
    for button in BUTTONS:
        register_action(app, button)
