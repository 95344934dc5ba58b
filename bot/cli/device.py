"""``opsbot device``: activate, show, list and deactivate devices of the IoT catalog."""

from __future__ import annotations

import argparse
import copy
import sys
from dataclasses import replace
from typing import Any

from bot.config import Settings
from bot.security.audit import cli_actor

ACTIVATE_USAGE = "SERIAL CLIENT_ID CODE EMAIL"


def _read_code(value: str) -> str:
    # "-" keeps the code out of the shell history and the process list.
    return sys.stdin.readline().strip() if value == "-" else value


def _activate(args: argparse.Namespace) -> int:
    from bot.cli.output import emit
    from bot.core.device.commands import MASK, activate
    from bot.errors import OpsbotError, UsageError
    from bot.render.device import activation_text

    given = [args.serial, args.client_id, args.code, args.email]
    code = ""
    try:
        if args.extra or None in given:
            # Not argparse's own error: it would repeat the extra arguments, and one may be the code.
            raise UsageError(
                f"{'Too many arguments' if args.extra else 'Missing arguments'}: give {ACTIVATE_USAGE} "
                "(CODE may be - to read it from stdin)."
            )
        code = _read_code(args.code)
        result = activate(
            Settings.from_env(), args.serial, args.client_id, code, args.email, actor=cli_actor()
        )
    except OpsbotError as error:
        # Our messages never hold the code; an AWS message is not ours, so it is masked in case it quotes a
        # request value. ``main`` prints the sentence, and with --json the failure's document.
        message = str(error)
        masked = message.replace(code, MASK) if len(code) >= 4 else message
        if masked == message:
            raise
        safe = copy.copy(error)
        safe.message, safe.hint, safe.args = masked, None, (masked,)
        raise safe from None
    emit(result, activation_text, as_json=args.json)
    return 0 if result.ok else 1


def _show(args: argparse.Namespace) -> int:
    from bot.cli.output import print_json
    from bot.core.device.commands import show
    from bot.render.device import device_text

    views = show(Settings.from_env(), args.serial, args.client_id)
    if args.json:
        print_json({"devices": [view.to_json() for view in views]})
    else:
        print(device_text(views))
    return 0


def _list(args: argparse.Namespace) -> int:
    from bot.cli.output import emit
    from bot.core.device.commands import DeviceFilters, list_devices, parse_activated, parse_limit
    from bot.render.device import page_text

    settings = Settings.from_env()
    filters = DeviceFilters(
        type=args.type, activated=parse_activated(args.activated), limit=parse_limit(args.limit)
    )
    page = list_devices(settings, filters, cursor=args.cursor)
    if args.all:
        devices = list(page.devices)
        while page.next_cursor:
            page = list_devices(settings, filters, cursor=page.next_cursor)
            devices.extend(page.devices)
        page = replace(page, devices=devices, next_cursor=None)
    emit(page, page_text, as_json=args.json)
    return 0


def _deactivate(args: argparse.Namespace) -> int:
    from bot.cli.output import print_json
    from bot.core.device.commands import deactivate
    from bot.render.device import deactivation_text

    result = deactivate(Settings.from_env(), args.serial, args.client_id, actor=cli_actor())
    if args.json:
        print_json(result.to_json(reveal_code=True))
    else:
        print(deactivation_text(result))
    return 0


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "device",
        help="IoT device catalog: activate, show, list, deactivate",
        description="The iotCatalog table of the IoT backend (OPSBOT_DEVICE_TABLE, default iotCatalog).",
    )
    commands = parser.add_subparsers(dest="device_command", metavar="SUBCOMMAND", required=True)

    activate = commands.add_parser(
        "activate",
        usage=f"opsbot device activate [-h] {ACTIVATE_USAGE} [--json]",
        help="activate a device with its code and register the owner's e-mail",
        description="Exits 0 when the device was activated, 1 otherwise (wrong code, unknown device, "
        "already activated, locked out after too many wrong codes, an AWS error), 2 on bad input. With "
        '--json, stdout always holds one document: {"ok": false, "reason": "usage"|"not-found"|"error", '
        '"message": ...} for bad input and errors.',
    )
    # Optional for argparse and checked by _activate, which answers in JSON with --json and repeats no
    # argument (argparse's errors name the arguments it did not expect, and one may be the code).
    activate.add_argument("serial", metavar="SERIAL", nargs="?")
    activate.add_argument("client_id", metavar="CLIENT_ID", nargs="?")
    activate.add_argument(
        "code", metavar="CODE", nargs="?", help="the activation code, or - to read it from stdin"
    )
    activate.add_argument("email", metavar="EMAIL", nargs="?")
    activate.add_argument("extra", nargs="*", help=argparse.SUPPRESS)
    activate.add_argument("--json", action="store_true", help='print {"ok": ..., "reason": ...}')
    activate.set_defaults(func=_activate, changes=True)

    show = commands.add_parser("show", help="one device, or every client id under a serial (code masked)")
    show.add_argument("serial", metavar="SERIAL")
    show.add_argument("client_id", metavar="CLIENT_ID", nargs="?")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=_show)

    listing = commands.add_parser("list", help="devices, a page at a time")
    listing.add_argument("--type", help="only devices of this type")
    listing.add_argument("--activated", metavar="yes|no", help="only activated (yes) or not activated (no)")
    listing.add_argument("--limit", default="20", help="devices per page (1-1000, default 20)")
    listing.add_argument("--cursor", help="continue after the page that printed this cursor")
    listing.add_argument("--all", action="store_true", help="follow every page to the end")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=_list)

    deactivate = commands.add_parser(
        "deactivate", help="reset activation and print a new activation code (for the caller only)"
    )
    deactivate.add_argument("serial", metavar="SERIAL")
    deactivate.add_argument("client_id", metavar="CLIENT_ID")
    deactivate.add_argument("--json", action="store_true")
    deactivate.set_defaults(func=_deactivate, changes=True)
