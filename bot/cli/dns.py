"""``opsbot dns``: plan, resync, mirror and status of on-premises zones mirrored into Route 53."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from bot.config import Settings


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (containers)
        return "cli:unknown"


def _state(args: argparse.Namespace, settings: Settings) -> Any:
    from bot.aws.state import StateTable

    return None if args.no_state else StateTable(settings.state_table)


def _zone(args: argparse.Namespace, settings: Settings) -> Any:
    from bot.core.dns.commands import zone_for

    return zone_for(
        settings,
        args.domain,
        master=args.master,
        zone_id=args.zone_id,
        tsig=f"file:{args.tsig_key_file}" if args.tsig_key_file else None,
        ignore_ttl=True if args.ignore_ttl else None,
    )


def _plan(args: argparse.Namespace) -> int:
    from bot.cli.output import print_json
    from bot.core.dns.commands import prepare
    from bot.render.dns import plan_json, plan_text

    settings = Settings.from_env()
    prepared = prepare(_zone(args, settings), state=_state(args, settings))
    if args.json:
        print_json(plan_json(prepared))
    else:
        print(plan_text(prepared, limit=args.limit))
    return 0


def _resync(args: argparse.Namespace) -> int:
    from bot.cli.output import print_json
    from bot.core.dns.commands import BatchOutcome, apply, prepare
    from bot.render.dns import plan_json, plan_text, result_text

    settings = Settings.from_env()
    state = _state(args, settings)
    prepared = prepare(_zone(args, settings), state=state)
    if not args.json:
        print(plan_text(prepared, limit=args.limit))
    if not args.apply:
        if args.json:
            print_json(plan_json(prepared))
        elif not prepared.plan.empty:
            print("Nothing was changed; run again with --apply to apply this plan.")
        return 0

    def progress(outcome: BatchOutcome, total: int) -> None:
        # Progress goes to stderr so that --json keeps stdout to one document.
        print(f"batch {outcome.number}/{total}: {outcome.status}", file=sys.stderr, flush=True)

    result = apply(prepared, state=state, force=args.force, actor=_actor(), on_progress=progress)
    if args.json:
        document = plan_json(prepared)
        document.update(result.to_json())
        print_json(document)
    else:
        print(result_text(result))
    return 0 if result.applied else 1


def _mirror(args: argparse.Namespace) -> int:
    from bot.cli.output import emit
    from bot.core.dns.commands import mirror
    from bot.render.dns import mirror_text

    settings = Settings.from_env()
    result = mirror(_zone(args, settings), state=_state(args, settings), force=args.force, actor=_actor())
    emit(result, mirror_text, as_json=args.json)
    return 0 if result.ok else 1


def _without_keys(document: dict[str, Any]) -> dict[str, Any]:
    """The status without the state table's own keys (``pk``, ``sk``, ``expiresAt``): not part of the output."""
    internal = {"pk", "sk", "expiresAt"}
    return {
        key: {k: v for k, v in value.items() if k not in internal} if isinstance(value, dict) else value
        for key, value in document.items()
    }


def _status(args: argparse.Namespace) -> int:
    from bot.cli.output import print_json
    from bot.core.dns.commands import configured_zones, status
    from bot.render.dns import status_text

    settings = Settings.from_env()
    zones = (_zone(args, settings),) if args.domain else configured_zones(settings)
    statuses = status(zones, state=_state(args, settings))
    if args.json:
        print_json({"zones": [_without_keys(item.to_json()) for item in statuses]})
    else:
        print(status_text(statuses))
    return 0


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of changes (0 or more)")
    return int(text)


def _zone_arguments(parser: argparse.ArgumentParser, *, domain_optional: bool = False) -> None:
    if domain_optional:
        parser.add_argument(
            "domain", metavar="DOMAIN", nargs="?", help="one zone (default: every configured zone)"
        )
    else:
        parser.add_argument("domain", metavar="DOMAIN", help="the zone, e.g. corp.example.com")
    parser.add_argument(
        "--master", metavar="HOST[:PORT]", help="the master DNS server (default: OPSBOT_DNS_ZONES)"
    )
    parser.add_argument(
        "--zone-id", metavar="ID", help="the Route 53 hosted zone id (default: OPSBOT_DNS_ZONES)"
    )
    parser.add_argument("--tsig-key-file", metavar="FILE", help="TSIG key (BIND, NSD or JSON format)")
    parser.add_argument("--ignore-ttl", action="store_true", help="do not count TTL-only differences")
    parser.add_argument(
        "--no-state", action="store_true", help="neither read nor record sync state (no state table at hand)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dns",
        help="mirror an on-premises DNS zone into Route 53: plan, resync, mirror, status",
        description="Transfer a zone from its master (AXFR), compare it with a Route 53 hosted zone and "
        "apply the differences in atomic batches. Zones come from OPSBOT_DNS_ZONES or --master/--zone-id.",
    )
    commands = parser.add_subparsers(dest="dns_command", metavar="SUBCOMMAND", required=True)

    plan = commands.add_parser("plan", help="transfer and show what a resync would change (read-only)")
    _zone_arguments(plan)
    plan.add_argument("--limit", type=_count, default=50, help="changes to list (default 50)")
    plan.set_defaults(func=_plan)

    resync = commands.add_parser(
        "resync",
        help="transfer, plan and, with --apply, apply",
        description='Without --apply only plans. --json prints {"changes": N, "batches": N, "applied": '
        "true|false, ...}. Exits 1 when an apply was refused or a batch failed.",
    )
    _zone_arguments(resync)
    resync.add_argument("--apply", action="store_true", help="apply the plan")
    resync.add_argument("--force", action="store_true", help="apply even when a guard refuses")
    resync.add_argument("--limit", type=_count, default=50, help="changes to list (default 50)")
    resync.set_defaults(func=_resync, changes=lambda args: bool(args.apply))

    mirror = commands.add_parser(
        "mirror",
        help="what the schedule runs: one SOA query, and a transfer and apply only when the serial moved",
    )
    _zone_arguments(mirror)
    mirror.add_argument("--force", action="store_true", help="transfer and apply even when a guard refuses")
    mirror.set_defaults(func=_mirror, changes=True)

    status = commands.add_parser(
        "status", help="configured zones, last sync, serial drift and the last full check (no transfer)"
    )
    _zone_arguments(status, domain_optional=True)
    status.set_defaults(func=_status)
