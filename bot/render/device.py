"""Presentation of /device results: Block Kit for Slack and plain text for the terminal.

Nothing here ever sees an activation code except ``deactivation_blocks`` / ``deactivation_text``, which
show the new code issued by a reset; they are only used for the ephemeral answer to the caller.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from bot.core.device.commands import (
    ActivationResult,
    DeactivationResult,
    DevicePage,
    DeviceView,
    Reason,
    encode_cursor,
)
from bot.errors import echo
from bot.render.blocks import (
    MAX_BLOCKS_MESSAGE,
    MAX_BUTTON_VALUE,
    MAX_TOTAL_BLOCK_CHARS,
    Block,
    actions,
    button,
    context,
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

ACTION_MORE = "device:more"
_DETAIL_CHARS = 300  # device name and type of one row of a list
MODAL_CALLBACK = "device:activate"

_ICONS = {
    Reason.ACTIVATED: ":white_check_mark:",
    Reason.WRONG_CODE: ":x:",
    Reason.UNKNOWN_DEVICE: ":grey_question:",
    Reason.ALREADY_ACTIVATED: ":information_source:",
    Reason.LOCKED: ":lock:",
}


def _dash(value: str) -> str:
    return value if value else "—"


# -- activation ------------------------------------------------------------------------------------


def activation_blocks(result: ActivationResult) -> list[Block]:
    blocks = [section(f"{_ICONS[result.reason]} {escape(result.message)}")]
    if result.reason is Reason.LOCKED or (result.retry_after and not result.ok):
        blocks.append(context("Wrong codes are limited per device and per person; every attempt is audited."))
    return blocks


def activation_text(result: ActivationResult) -> str:
    return ("activated: " if result.ok else f"not activated ({result.reason.value}): ") + result.message


# -- deactivation (shows the new code: ephemeral answers only) --------------------------------------


def deactivation_blocks(result: DeactivationResult) -> list[Block]:
    return [
        section(f":arrows_counterclockwise: {escape(result.message)}"),
        section(f"New activation code, shown only to you: `{result.new_code.reveal()}`"),
        context(
            "Give it to the device owner through a private channel; it is not stored in Slack or the audit."
        ),
    ]


def deactivation_text(result: DeactivationResult) -> str:
    return f"{result.message}\nNew activation code: {result.new_code.reveal()}"


# -- show ------------------------------------------------------------------------------------------


def _lock_minutes(view: DeviceView) -> int:
    return max(1, -(-view.locked_for // 60))  # rounded up, as the answers to activations say it


def _status(view: DeviceView) -> str:
    if view.activated:
        return f":large_green_circle: activated ({escape(view.email)})"
    if view.locked_for:
        return f":lock: not activated, locked for {_lock_minutes(view)} min"
    return ":white_circle: not activated"


def device_blocks(views: Sequence[DeviceView]) -> list[Block]:
    blocks: list[Block] = []
    for view in views:
        blocks.append(header(f"{view.serial} / {view.client_id}"))
        fields = [
            f"*Status*\n{_status(view)}",
            f"*Activation code*\n{view.code_display}",
            f"*Device*\n{escape(_dash(view.device))}",
            f"*Type*\n{escape(_dash(view.type))}",
            f"*Endpoint*\n{escape(_dash(view.endpoint))}",
            f"*Certificate*\n{escape(_dash(view.certificate_id))}",
        ]
        if view.activated:
            fields += [
                f"*Activated at*\n{slack_time(view.activated_at) if view.activated_at else _dash('')}",
                f"*Activated by*\n{_person(view.activated_by)}",
            ]
        fields.append(f"*Wrong codes (last 15–30 min)*\n{view.recent_failures}")
        blocks.append(fields_section(fields))
    kept, _ = fit(
        blocks, note="More client ids exist under this serial number; use `/device show SERIAL CLIENT`."
    )
    return kept


def device_text(views: Sequence[DeviceView]) -> str:
    lines: list[str] = []
    for view in views:
        status = "activated" if view.activated else "not activated"
        if view.locked_for:
            status += f", locked for {_lock_minutes(view)} min"
        lines += [
            f"{view.serial} / {view.client_id}",
            f"  status          {status}",
            f"  email           {_dash(view.email)}",
            f"  activation code {view.code_display}",
            f"  device          {_dash(view.device)}",
            f"  type            {_dash(view.type)}",
            f"  endpoint        {_dash(view.endpoint)}",
            f"  certificate     {_dash(view.certificate_id)}",
            f"  registered at   {_dash(iso_time(view.registered_at))}",
        ]
        if view.activated:
            lines += [
                f"  activated at    {_dash(iso_time(view.activated_at))}",
                f"  activated by    {_dash(view.activated_by)}",
            ]
        lines.append(f"  wrong codes     {view.recent_failures} recently")
    return "\n".join(lines)


# -- list ------------------------------------------------------------------------------------------


def more_value(page: DevicePage, cursor: str) -> str:
    """The "more" button's value: the filters and where to continue (keys only, never a code)."""
    return json.dumps(
        {"c": cursor, "t": page.filters.type, "a": page.filters.activated, "l": page.filters.limit},
        separators=(",", ":"),
    )


def parse_more_value(value: str) -> tuple[str | None, str | None, bool | None, int]:
    """(cursor, type, activated, limit) from a "more" button value; ValueError when malformed."""
    data: Any = json.loads(value)
    if not isinstance(data, dict):
        raise ValueError("not an object")
    cursor, kind, activated, limit = data.get("c"), data.get("t"), data.get("a"), data.get("l", 20)
    if cursor is not None and not isinstance(cursor, str):
        raise ValueError("cursor")
    if kind is not None and not isinstance(kind, str):
        raise ValueError("type")
    if activated is not None and not isinstance(activated, bool):
        raise ValueError("activated")
    if not isinstance(limit, int) or isinstance(limit, bool):
        raise ValueError("limit")
    return cursor, kind, activated, limit


def _filters_text(page: DevicePage) -> str:
    parts = []
    if page.filters.type is not None:
        parts.append(f"type {echo(page.filters.type)}")  # as typed: cut, and not formatted
    if page.filters.activated is not None:
        parts.append("activated" if page.filters.activated else "not activated")
    return ", ".join(parts) if parts else "all devices"


def page_blocks(page: DevicePage, *, continued: bool = False) -> list[Block]:
    title = f"Devices in {page.table}" + (" (continued)" if continued else "")
    blocks: list[Block] = [header(title), context(escape(_filters_text(page)))]
    if page.partial:
        blocks.append(context(_partial_note(page)))
    if not page.devices and not page.next_cursor:
        blocks.append(section("No devices match." if not continued else "No more devices match."))
        return blocks
    rows: list[Block] = []
    for view in page.devices:
        status = ":large_green_circle:" if view.activated else ":white_circle:"
        owner = f" — {escape(view.email)}" if view.activated else ""
        detail = escape(
            truncate(" · ".join(part for part in (view.device, view.type) if part), _DETAIL_CHARS)
        )
        rows.append(
            section(f"{status} `{escape(view.serial)}` / `{escape(view.client_id)}`{owner}\n{detail or ' '}")
        )
    # Room for the "more" button (or the closing note) after the rows that fit.
    kept, _ = fit(blocks + rows, max_blocks=MAX_BLOCKS_MESSAGE - 1, max_chars=MAX_TOTAL_BLOCK_CHARS - 200)
    shown = page.devices[: len(kept) - len(blocks)]
    cursor = page.next_cursor
    if shown and len(shown) < len(page.devices):
        # The rest of this page did not fit in one message: continue after the last device shown.
        cursor = encode_cursor((shown[-1].serial, shown[-1].client_id))
    if not cursor:
        kept.append(context(f"{len(shown)} device{'s' if len(shown) != 1 else ''}; end of list."))
    elif len(value := more_value(page, cursor)) <= MAX_BUTTON_VALUE:
        kept.append(actions([button("More devices", ACTION_MORE, value)], block_id="device_more"))
    else:
        kept.append(context("More devices match; narrow the list with --type or --activated."))
    return kept


def _partial_note(page: DevicePage) -> str:
    return (
        f"Stopped after reading {plural(page.pages_read, 'page')} of the catalog with "
        f"{plural(len(page.devices), 'match', 'matches')}: the catalog has no index for these filters, so "
        "each page costs a full read. More devices may match further on."
    )


def page_text(page: DevicePage) -> str:
    if not page.devices:
        if page.partial and page.next_cursor:
            return f"{_partial_note(page)}\nmore: --cursor {page.next_cursor}"
        return f"No devices match ({_filters_text(page)})."
    width_serial = max(len("SERIAL"), *(len(v.serial) for v in page.devices))
    width_client = max(len("CLIENT ID"), *(len(v.client_id) for v in page.devices))
    lines = [
        f"{'SERIAL':<{width_serial}}  {'CLIENT ID':<{width_client}}  {'ACTIVATED':<9}  TYPE / DEVICE / EMAIL"
    ]
    for view in page.devices:
        extra = " / ".join(
            part for part in (view.type, view.device, view.email if view.activated else "") if part
        )
        lines.append(
            f"{view.serial:<{width_serial}}  {view.client_id:<{width_client}}  "
            f"{'yes' if view.activated else 'no':<9}  {extra}"
        )
    if page.partial:
        lines.append(_partial_note(page))
    if page.next_cursor:
        lines.append(f"more: --cursor {page.next_cursor}")
    return "\n".join(lines)


# -- the activation modal --------------------------------------------------------------------------

MODAL_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("serial", "Serial number", "SN-D7F3C8947867"),
    ("client_id", "Client id", "ID-91B2F06B3F05"),
    ("code", "Activation code", "AC-…"),
    ("email", "Owner e-mail", "owner@example.com"),
)


def activation_modal(*, private_metadata: str = "") -> dict[str, Any]:
    """A modal with the four fields; validation errors come back through ``response_action: errors``."""
    blocks: list[Block] = []
    for name, label, placeholder in MODAL_FIELDS:
        blocks.append(
            {
                "type": "input",
                "block_id": f"device_{name}",
                "label": {"type": "plain_text", "text": label},
                "element": {
                    "type": "plain_text_input",
                    "action_id": "value",
                    "placeholder": {"type": "plain_text", "text": placeholder},
                    "max_length": 256,
                },
            }
        )
    blocks.append(context("The code is checked once and never shown or stored in Slack."))
    view: dict[str, Any] = {
        "type": "modal",
        "callback_id": MODAL_CALLBACK,
        "title": {"type": "plain_text", "text": "Activate a device"},
        "submit": {"type": "plain_text", "text": "Activate"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }
    if private_metadata:
        view["private_metadata"] = private_metadata
    return view


def modal_errors(field_errors: dict[str, str]) -> dict[str, str]:
    """Core field names -> the modal's block ids, for ``ack(response_action="errors", errors=...)``."""
    return {f"device_{name}": message for name, message in field_errors.items()}


def _person(actor: str) -> str:
    """Who activated a device, as the catalog recorded it: a Slack user id (``U0ALICE``, from /device) as a
    mention, anything else (``cli:alice``, the original's writers) as text."""
    if re.fullmatch(r"[UW][A-Z0-9]{2,}", actor or ""):
        return f"<@{actor}>"
    return escape(_dash(actor))
