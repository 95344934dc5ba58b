"""``/device``: activate (arguments or a modal), show, list (with a "more" button), deactivate.

The activation code is a secret argument: the framework masks it in the audit record (with every argument
after the serial, extra ones included, since a forgotten or swapped argument moves the code; in the form,
every field but the serial), no answer repeats it, and the core never logs it; the audit record names the
device in its detail, with the client id only once the catalog confirmed it. The framework's audit record
of each attempt carries the outcome
(activated, wrong_code, unknown_device, already_activated, locked), so the core's own per-attempt record
(used by the CLI) is switched off here to keep one record per attempt; the same for deactivate.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from bot.errors import UsageError
from bot.listeners.args import ArgSpec, Flag, ParsedArgs, Positional
from bot.listeners.framework import (
    ActionCall,
    ButtonAction,
    Call,
    Command,
    ModalSubmit,
    Reply,
    Subcommand,
    ViewCall,
    register_action,
    register_command,
    register_modal,
    runtime_of,
)
from bot.security.policy import Caller

ACTIVATE_FIELDS = ("serial", "client-id", "code", "email")
# The same ids as bot.render.device (not imported here: registering must not load the core at cold start).
ACTION_MORE = "device:more"
# Owners' e-mail addresses are personal data: show and list mask them unless the caller holds this grant.
ACTION_OWNERS = "device.owners"
MODAL_CALLBACK = "device:activate"
SLACK_LIST_LIMIT = 40  # a page of devices must fit in one message with its button

SERIAL = Positional("serial", "the serial number, e.g. SN-D7F3C8947867")
CLIENT_ID = Positional("client-id", "the client id, e.g. ID-91B2F06B3F05")


def _validate_activate(args: ParsedArgs) -> None:
    """Pure (ack path): all four arguments or none (none opens the form); formats checked up front."""
    from bot.core.device.commands import activation_field_errors

    given = [args.get(name) for name in ACTIVATE_FIELDS]
    if not any(given):
        return
    if not all(given):
        raise UsageError(
            "Give all four: serial number, client id, activation code and e-mail "
            "(or nothing, to open a form that keeps the code out of the channel history)."
        )
    errors = activation_field_errors(*(str(value) for value in given))
    if errors:
        raise UsageError(" ".join(errors.values()))


def _activation_reply(result: Any) -> Reply:
    from bot.render.device import activation_blocks, activation_text

    return Reply(
        text=activation_text(result),
        blocks=activation_blocks(result),
        outcome=result.reason.value,
        detail=result.target,  # the audit's args mask all but the serial
    )


def _activate(call: Call) -> Reply:
    from bot.core.device.commands import activate

    serial, client_id, code, email = (call.args.get(name) for name in ACTIVATE_FIELDS)
    result = activate(call.settings, serial, client_id, code, email, actor=call.user_id, audit=False)
    return _activation_reply(result)


def _activation_form(args: ParsedArgs, caller: Caller) -> dict[str, Any] | None:
    """`/device activate` alone opens the form (in the ack: the trigger id lasts 3 seconds)."""
    if args.get("serial"):
        return None
    from bot.render.device import activation_modal

    return activation_modal(private_metadata=json.dumps({"channel": caller.channel_id}))


def _modal_values(values: Mapping[str, str]) -> tuple[str, str, str, str]:
    return (
        values.get("device_serial", ""),
        values.get("device_client_id", ""),
        values.get("device_code", ""),
        values.get("device_email", ""),
    )


def _validate_modal(values: Mapping[str, str]) -> Mapping[str, str]:
    from bot.core.device.commands import activation_field_errors
    from bot.render.device import modal_errors

    return modal_errors(activation_field_errors(*_modal_values(values)))


def _activate_from_modal(call: ViewCall) -> Reply:
    from bot.core.device.commands import activate

    serial, client_id, code, email = _modal_values(call.values)
    result = activate(call.settings, serial, client_id, code, email, actor=call.user_id, audit=False)
    return _activation_reply(result)


def _show(call: Call) -> Reply:
    from bot.core.device.commands import show
    from bot.render.blocks import plural
    from bot.render.device import device_blocks

    serial = call.args.get("serial")
    if not serial:
        raise UsageError(
            "Give the serial number, and optionally the client id: `/device show SERIAL [CLIENT_ID]`."
        )
    views = show(call.settings, serial, call.args.get("client-id"))
    if not call.may(ACTION_OWNERS):
        views = [view.owner_hidden() for view in views]
    text = f"{plural(len(views), 'device')} with serial number {serial}."
    return Reply(text=text, blocks=device_blocks(views))


def _page_reply(call: Call | ActionCall, page: Any, *, continued: bool) -> Reply:
    from bot.render.device import page_blocks

    if not call.may(ACTION_OWNERS):
        page = replace(page, devices=[view.owner_hidden() for view in page.devices])

    count = len(page.devices)
    text = f"{count} device{'s' if count != 1 else ''} from {page.table}" + (
        " (more available)" if page.next_cursor else ""
    )
    return Reply(text=text, blocks=page_blocks(page, continued=continued))


def _list(call: Call) -> Reply:
    from bot.core.device.commands import DeviceFilters, list_devices, parse_activated

    filters = DeviceFilters(
        type=call.args.get("type"),
        activated=parse_activated(call.args.get("activated")),
        limit=int(call.args.get("limit", 20)),
    )
    return _page_reply(call, list_devices(call.settings, filters), continued=False)


def _more(call: ActionCall) -> Reply:
    from bot.core.device.commands import DeviceFilters, list_devices
    from bot.render.device import parse_more_value

    try:
        cursor, kind, activated, limit = parse_more_value(call.value)
    except ValueError:
        raise UsageError("That button is no longer valid; run `/device list` again.") from None
    filters = DeviceFilters(type=kind, activated=activated, limit=max(1, min(limit, SLACK_LIST_LIMIT)))
    return _page_reply(call, list_devices(call.settings, filters, cursor=cursor), continued=True)


def _deactivate(call: Call) -> Reply:
    from dataclasses import replace

    from bot.core.device.commands import deactivate, mask_email
    from bot.render.device import deactivation_blocks

    serial, client_id = call.args.get("serial"), call.args.get("client-id")
    if not serial or not client_id:
        raise UsageError("Give the serial number and the client id: `/device deactivate SERIAL CLIENT_ID`.")
    result = deactivate(call.settings, serial, client_id, actor=call.user_id, audit=False)
    if result.previous_email and not call.may(ACTION_OWNERS):  # masked, as show and list would mask it
        result = replace(result, previous_email=mask_email(result.previous_email))
    # The new code is only in the blocks of this ephemeral answer, not in its notification text.
    return Reply(
        text=result.message,
        blocks=deactivation_blocks(result),
        outcome="reset",
        if_not_shown=(
            f"The device was reset all the same; its new code was in that reply. Run `/device deactivate "
            f"{result.serial} {result.client_id}` again for another code."
        ),
    )


DEVICE = Command(
    name="device",
    summary="IoT device catalog: activate devices safely, show, list, reset",
    sensitive=(ACTION_OWNERS,),
    subcommands=(
        Subcommand(
            "activate",
            "Activate a device with its activation code and register the owner's e-mail. "
            "Without arguments, opens a form.",
            run=_activate,
            modal=_activation_form,
            spec=ArgSpec(
                positionals=(
                    # Everything after the serial is masked in the audit record, not only the code's
                    # position: a forgotten or swapped argument moves the code to another position.
                    replace(SERIAL, optional=True),
                    replace(CLIENT_ID, optional=True, secret=True),
                    Positional(
                        "code",
                        "the activation code (never shown, logged or stored)",
                        optional=True,
                        secret=True,
                    ),
                    Positional("email", "the owner's e-mail address", optional=True, secret=True),
                )
            ),
            mutating=True,
            validate=_validate_activate,
            working="Checking the activation code…",
            examples=(
                "/device activate",
                "/device activate SN-D7F3C8947867 ID-91B2F06B3F05 AC-… owner@example.com",
            ),
        ),
        Subcommand(
            "show",
            "Show a device (or every client id under a serial number); the code is masked, and so is the "
            "owner's e-mail unless you hold `device.owners`.",
            run=_show,
            spec=ArgSpec(positionals=(SERIAL, replace(CLIENT_ID, optional=True))),
            working="Looking the device up…",
            examples=("/device show SN-D7F3C8947867",),
        ),
        Subcommand(
            "list",
            "List devices a page at a time, with a button for more (owners masked without `device.owners`).",
            run=_list,
            spec=ArgSpec(
                flags=(
                    Flag("type", "only devices of this type", metavar="TYPE"),
                    Flag(
                        "activated",
                        "only activated (yes) or not activated (no)",
                        kind="choice",
                        choices=("yes", "no"),
                    ),
                    Flag(
                        "limit",
                        "devices per page",
                        kind="int",
                        default=20,
                        minimum=1,
                        maximum=SLACK_LIST_LIMIT,
                    ),
                )
            ),
            working="Reading the catalog…",
            examples=("/device list --activated no --limit 10",),
        ),
        Subcommand(
            "deactivate",
            "Reset a device's activation and issue a new activation code, shown only to you.",
            run=_deactivate,
            spec=ArgSpec(positionals=(SERIAL, CLIENT_ID)),
            mutating=True,
            working="Resetting the device…",
            examples=("/device deactivate SN-D7F3C8947867 ID-91B2F06B3F05",),
        ),
    ),
)


def register(app: Any) -> None:
    runtime_of(app)
    register_command(app, DEVICE)
    register_action(app, ButtonAction(action_id=ACTION_MORE, run=_more, action="device.list", mutating=False))
    register_modal(
        app,
        ModalSubmit(
            callback_id=MODAL_CALLBACK,
            run=_activate_from_modal,
            action="device.activate",
            mutating=True,
            validate=_validate_modal,
            secret_fields=frozenset({"device_code"}),
            # Not only the code's field: a code pasted into the client id's (or any other) field must
            # not reach the record either. The serial alone says which device was tried.
            shown_fields=frozenset({"device_serial"}),
        ),
    )
