"""DNS mirror wiring, per configured zone: the master answers over TCP, the TSIG key and the transfer are
accepted, the hosted zone exists, and the last sync and its state.

In a stack only the DNS mirror function reaches the master (it runs in the VPC), so when
``OPSBOT_DNS_FUNCTION`` names it the facts are read there, through the worker's ``doctor`` op, exactly as
``/dns status`` reads its own; without it they are read here (``opsbot doctor`` next to the master, the
tests). What the facts mean is judged here, in ``zone_findings``, which is pure.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bot.aws.errors import ACCESS_DENIED_CODES
from bot.config import Settings
from bot.core.dns import worker
from bot.core.dns.commands import configured_zones
from bot.core.dns.config import ZoneConfig
from bot.core.ops.commands import DoctorContext
from bot.core.ops.doctor import Finding, Probe
from bot.errors import AwsError, ConfigError, UsageError

AREA = "dns"
# The master ahead of the last sync for longer than this: the schedule (every 15 minutes by default) is not
# catching up.
BEHIND_WARN_SECONDS = 3600
CONFIGURE = (
    "Set the template parameters DnsDomain, DnsMasterAddress and DnsHostedZoneId (they fill OPSBOT_DNS_ZONES), "
    "and DnsSubnetIds/DnsSecurityGroupIds for the VPC the master is reachable from."
)


def _age(text: object, now: datetime) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (now - when).total_seconds()


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{int(seconds // 60)} min"


def zone_findings(doc: Mapping[str, Any], *, via_function: str, now: datetime) -> list[Finding]:
    """Verdicts on one zone's facts (``bot.core.dns.doctor.check_zone``'s JSON). ``via_function`` names
    the mirror function the facts came from ("" = read in this process). Pure."""
    zone, master, zone_id = str(doc.get("domain")), str(doc.get("master")), str(doc.get("zone_id"))
    reader = f"the mirror function {via_function}" if via_function else "this process"
    found: list[Finding] = []
    soa, tsig = doc.get("soa") or {}, doc.get("tsig") or {}
    transfer = doc.get("transfer") or {}
    serial = doc.get("serial")
    target = f"{zone} master {master}"
    if soa.get("kind") == "ok":
        answered = (
            f"SOA serial {serial}" if serial is not None else "an answer (without the serial: see TSIG)"
        )
        found.append(
            Finding(AREA, "master answers", target, "ok", f"{answered} over TCP, asked from {reader}")
        )
    elif soa.get("kind") == "unreachable":
        found.append(
            Finding(
                AREA,
                "master answers",
                target,
                "fail",
                f"no answer to {reader}: {soa.get('error')}",
                f"Check the template parameter DnsMasterAddress ({master}), that the security group "
                "(DnsSecurityGroupIds) and the master's firewall let the mirror function reach TCP port "
                f"{master.rsplit(':', 1)[-1] if ':' in master else 53}, and that the master (NSD) runs and listens there.",
            )
        )
    else:
        found.append(
            Finding(
                AREA,
                "master answers",
                target,
                "fail",
                str(soa.get("error")),
                str(soa.get("hint") or "Point DnsMasterAddress at the zone's primary server."),
            )
        )
    kind = tsig.get("kind")
    if kind == "ok":
        found.append(Finding(AREA, "TSIG", zone, "ok", f"the master accepts the key {tsig.get('name')}"))
    elif kind == "none":
        found.append(
            Finding(
                AREA,
                "TSIG",
                zone,
                "skip",
                "no TSIG key configured: the master must allow transfers to the mirror's address",
                "",
            )
        )
    elif kind == "key":
        found.append(
            Finding(
                AREA,
                "TSIG",
                zone,
                "fail",
                f"the key cannot be read: {tsig.get('error')}",
                "Check the template parameter DnsTsigSecretArn, and that the secret holds the key as "
                "tsig-keygen or NSD prints it (or JSON with name, algorithm, secret).",
            )
        )
    else:
        found.append(
            Finding(
                AREA,
                "TSIG",
                zone,
                "fail",
                f"the master refused the key: {tsig.get('error')}",
                "Make the secret named by DnsTsigSecretArn hold the key of the master's `key:` clause "
                "(same name, algorithm and secret), and check the mirror's clock.",
            )
        )
    kind = transfer.get("kind")
    if kind == "ok":
        found.append(Finding(AREA, "zone transfer", zone, "ok", "the master starts the transfer (AXFR)"))
    elif kind not in (None, "skipped"):
        key = f" {tsig.get('name')}" if tsig.get("name") else " NOKEY"
        found.append(
            Finding(
                AREA,
                "zone transfer",
                zone,
                "fail",
                str(transfer.get("error")),
                f"Allow the transfer on the master: in NSD's zone clause `provide-xfr: <mirror's address or subnet>{key}` "
                "(BIND: allow-transfer), then reload it.",
            )
        )
    found.append(_hosted_zone_finding(doc.get("hosted_zone") or {}, zone, zone_id, via_function))
    found.append(_sync_finding(doc, zone, now))
    return found


def _hosted_zone_finding(hosted: Mapping[str, Any], zone: str, zone_id: str, via_function: str) -> Finding:
    target = f"hosted zone {zone_id}"
    kind = hosted.get("kind")
    if kind == "ok":
        return Finding(AREA, "hosted zone", target, "ok", f"exists, for {hosted.get('name')}")
    lookup = f"`aws route53 list-hosted-zones-by-name --dns-name {zone}` gives its id"
    if kind == "missing":
        return Finding(
            AREA,
            "hosted zone",
            target,
            "fail",
            f"there is no hosted zone {zone_id}",
            f"Set the template parameter DnsHostedZoneId to the hosted zone of {zone} ({lookup}; "
            f"`aws route53 create-hosted-zone --name {zone} --caller-reference opsbot-$(date +%s)` creates one).",
        )
    if kind == "mismatch":
        return Finding(
            AREA,
            "hosted zone",
            target,
            "fail",
            f"{hosted.get('error')}, not {zone}",
            f"Set the template parameter DnsHostedZoneId to the hosted zone of {zone} ({lookup}).",
        )
    if kind == "denied" and via_function:
        # The mirror reads the hosted zone on every run: its own role lacking the read is the failure.
        return Finding(
            AREA,
            "hosted zone",
            target,
            "fail",
            f"the mirror function may not read it: {hosted.get('error')}",
            str(
                hosted.get("hint") or "Add route53:GetHostedZone to the mirror function's role and redeploy."
            ),
        )
    return Finding(
        AREA,
        "hosted zone",
        target,
        "warn",
        f"could not be checked: {hosted.get('error')}",
        str(hosted.get("hint") or ""),
    )


def _sync_finding(doc: Mapping[str, Any], zone: str, now: datetime) -> Finding:
    if doc.get("state_error"):
        return Finding(
            AREA,
            "last sync",
            zone,
            "warn",
            f"could not be checked: {doc['state_error']}",
            "Grant dynamodb:GetItem on the state table (OPSBOT_STATE_TABLE) to the role that read it.",
        )
    last = doc.get("last_sync")
    resync = f"`/dns resync {zone}` shows the plan and applies it"
    if not isinstance(last, Mapping):
        return Finding(
            AREA,
            "last sync",
            zone,
            "warn",
            "never synced",
            f"The schedule (template parameter DnsSchedule) syncs it, or {resync} now.",
        )
    status = str(last.get("status") or "")
    if status in ("failed", "refused"):
        error = str(last.get("error") or "").strip()
        return Finding(
            AREA,
            "last sync",
            zone,
            "fail",
            f"the last sync was {status} at {last.get('failed_at', '?')}" + (f": {error}" if error else ""),
            f"{resync} (a refusal of the guard needs a forced apply after review); the mirror function's log has the run.",
        )
    last_serial, serial = last.get("serial"), doc.get("serial")
    synced = last.get("synced_at")
    age = _age(synced, now)
    if (
        isinstance(serial, int)
        and isinstance(last_serial, int | float)
        and serial != int(last_serial)
        and age is not None
        and age > BEHIND_WARN_SECONDS
    ):
        return Finding(
            AREA,
            "last sync",
            zone,
            "warn",
            f"the master is at serial {serial}, the last sync (at {synced}, {_hours(age)} ago) at {int(last_serial)}",
            f"Check that the zone's schedule (an EventBridge rule of the stack) is enabled and the mirror function's "
            f"log for its runs; {resync}.",
        )
    ago = f", {_hours(age)} ago" if age is not None else ""
    return Finding(AREA, "last sync", zone, "ok", f"serial {last_serial} synced at {synced}{ago}")


def _zone_probe(settings: Settings, zone: ZoneConfig) -> list[Finding]:
    request = {"op": "doctor", "domain": zone.name, "zone_id": zone.zone_id}
    function = settings.dns_function
    try:
        answer = worker.run(settings, request)
    except UsageError as error:
        if not function:
            raise
        return [
            Finding(
                AREA,
                "mirror function",
                function,
                "warn",
                f"the mirror function does not know the doctor's request: {error.message}",
                "Redeploy the stack so that the DNS mirror function runs this version of opsbot.",
            )
        ]
    except AwsError as error:
        if not function or not (
            error.code == "ResourceNotFoundException" or error.code in ACCESS_DENIED_CODES
        ):
            raise
        # /dns itself needs to invoke the mirror: that it cannot is the failure, not a doctor's limit.
        missing = error.code == "ResourceNotFoundException"
        return [
            Finding(
                AREA,
                "mirror function",
                function,
                "fail",
                f"there is no function {function}" if missing else error.message,
                "Set OPSBOT_DNS_FUNCTION to the stack output DnsMirrorFunctionName (the stack creates the "
                "function when DnsDomain is set)."
                if missing
                else "Grant lambda:InvokeFunction on the mirror function to the Slack function's role and redeploy.",
            )
        ]
    zones = answer.get("zones") or []
    return [f for doc in zones for f in zone_findings(doc, via_function=function, now=datetime.now(UTC))]


def probes(context: DoctorContext) -> list[Probe]:
    settings = context.settings
    try:
        zones = configured_zones(settings)
    except (ConfigError, UsageError) as error:
        bad = Finding(
            AREA, "configuration", "OPSBOT_DNS_ZONES", "fail", error.message, error.hint or CONFIGURE
        )
        return [Probe(AREA, "configuration", "OPSBOT_DNS_ZONES", lambda: [bad])]
    if not zones:
        # Aimed at a member account, the zones are those whose "account" names it (configured_zones).
        none = (
            "no DNS zone is configured"
            if context.member is None
            else f'no DNS zone of OPSBOT_DNS_ZONES names account `{context.member.label}` (its "account")'
        )
        skip = Finding(AREA, "configuration", "OPSBOT_DNS_ZONES", "skip", none, CONFIGURE)
        return [Probe(AREA, "configuration", "OPSBOT_DNS_ZONES", lambda: [skip])]
    return [
        Probe(AREA, "zone", f"{zone.name} ({zone.zone_id})", functools.partial(_zone_probe, settings, zone))
        for zone in zones
    ]
