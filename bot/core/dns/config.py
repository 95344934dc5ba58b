"""Which zones opsbot mirrors: ``OPSBOT_DNS_ZONES``, master addresses, and the mirror function's events.

``OPSBOT_DNS_ZONES`` is a JSON list, one object per zone::

    [{"domain": "corp.example.com", "master": "10.0.0.53", "zone_id": "Z0123456789ABC",
      "tsig": "secretsmanager:opsbot/dns/corp", "ignore_ttl": false}]

``master`` is ``host``, ``host:port`` or ``[ipv6]:port``; ``tsig`` names where the key is (``file:PATH``,
``secretsmanager:NAME`` or a secret ARN), never the key itself. Optional: ``timeout`` (seconds),
``max_update_percent`` and ``max_delete_percent`` (the guards: a plan that updates or deletes more than
that share of the managed record sets is refused unless forced; 30 each), ``guard_min_records`` (the
zone size from which those shares count, 10: as in octoDNS, a small zone passes) and
``full_check_hours`` (the scheduled run transfers even an unchanged serial after that long, to notice
edits made directly in Route 53).

The mirror function accepts the original's event unchanged (``Domain``, ``MasterDns``, ``ZoneId``,
``IgnoreTTL`` as the string "True"/"False", ``ZoneSerial`` which it ignored and we ignore too) and our own
(``{"domain": "..."}`` naming a configured zone, optionally with ``"zone_id"`` when the domain is mirrored
into several hosted zones, and ``force``; with ``master`` and ``zone_id`` it describes a zone of its own).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from bot.core.dns import names
from bot.core.dns.plan import Thresholds
from bot.errors import ConfigError, UsageError, echo

DEFAULT_PORT = 53
DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_DELETE_PERCENT = 30.0
DEFAULT_MAX_UPDATE_PERCENT = 30.0
DEFAULT_GUARD_MIN_RECORDS = 10
DEFAULT_FULL_CHECK_HOURS = 24.0

_ZONE_ID = re.compile(r"^[A-Z0-9]{1,32}$")
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_ZONE_KEYS = {
    "domain",
    "master",
    "zone_id",
    "tsig",
    "ignore_ttl",
    "timeout",
    "max_update_percent",
    "max_delete_percent",
    "guard_min_records",
    "full_check_hours",
    "account",
}


@dataclass(frozen=True)
class MasterAddress:
    host: str
    port: int = DEFAULT_PORT

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORT else f"{host}:{self.port}"


@dataclass(frozen=True)
class ZoneConfig:
    domain: str  # canonical: example.com.
    master: MasterAddress
    zone_id: str
    tsig: str = ""  # where the TSIG key is; never the key
    ignore_ttl: bool = False
    timeout: float = DEFAULT_TIMEOUT
    max_delete_percent: float = DEFAULT_MAX_DELETE_PERCENT
    full_check_hours: float = DEFAULT_FULL_CHECK_HOURS
    max_update_percent: float = DEFAULT_MAX_UPDATE_PERCENT
    guard_min_records: int = DEFAULT_GUARD_MIN_RECORDS
    # The account of OPSBOT_ACCOUNTS whose Route 53 holds the hosted zone ("" = opsbot's own).
    account: str = ""

    @property
    def name(self) -> str:
        return names.display(self.domain)

    @property
    def state_key(self) -> str:
        """Sync-state name in the state table (one zone may be mirrored into several hosted zones)."""
        return f"dns:{self.name}:{self.zone_id}"

    @property
    def thresholds(self) -> Thresholds:
        return Thresholds(self.max_update_percent, self.max_delete_percent, self.guard_min_records)

    def with_changes(self, **changes: Any) -> ZoneConfig:
        return replace(self, **changes)

    def describe(self) -> dict[str, Any]:
        """JSON-able description without secrets (the TSIG source is a location, not a key)."""
        return {
            "domain": self.name,
            "master": str(self.master),
            "zone_id": self.zone_id,
            "tsig": self.tsig or None,
            "ignore_ttl": self.ignore_ttl,
        }


def parse_master(text: str) -> MasterAddress:
    """``10.0.0.53``, ``10.0.0.53:5353``, ``ns1.corp.example``, ``[fd00::53]:53``, ``fd00::53``."""
    if not isinstance(text, str):
        raise UsageError("The master must be text such as 10.0.0.53 or ns1.corp.example:5353.")
    cleaned = text.strip()
    if not cleaned:
        raise UsageError("The master DNS server is missing; give host or host:port, e.g. 10.0.0.53.")
    host, port_text = cleaned, ""
    if cleaned.startswith("["):
        end = cleaned.find("]")
        if end < 0:
            raise UsageError(f"The master {cleaned!r} opens '[' without closing it.")
        host, rest = cleaned[1:end], cleaned[end + 1 :]
        if rest and not rest.startswith(":"):
            raise UsageError(f"The master {cleaned!r} has text after ']' that is not ':port'.")
        port_text = rest[1:]
        if rest and not port_text:
            raise UsageError(f"The master {cleaned!r} ends with ':' but no port.")
        _check_ip(host, cleaned, version=6)
    elif cleaned.count(":") == 1:
        host, port_text = cleaned.split(":")
        if not port_text:
            raise UsageError(f"The master {cleaned!r} ends with ':' but no port.")
    elif cleaned.count(":") > 1:
        _check_ip(cleaned, cleaned, version=6)
        return MasterAddress(str(ipaddress.IPv6Address(cleaned)))
    port = DEFAULT_PORT
    if port_text:
        if not port_text.isascii() or not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise UsageError(f"The port in {cleaned!r} must be a number from 1 to 65535.")
        port = int(port_text)
    if ":" in host:
        return MasterAddress(str(ipaddress.IPv6Address(host)), port)
    if not _valid_host(host):
        raise UsageError(f"{host!r} is not an IP address or host name.")
    return MasterAddress(host.lower().rstrip("."), port)


def _check_ip(host: str, original: str, *, version: int) -> None:
    try:
        if "%" in host:
            raise ValueError("scoped")
        ipaddress.IPv6Address(host) if version == 6 else ipaddress.IPv4Address(host)
    except ValueError:
        raise UsageError(f"{original!r} is not a valid IPv{version} address.") from None


def _valid_host(host: str) -> bool:
    if not host or not host.isascii():
        return False
    try:
        ipaddress.IPv4Address(host)
        return True
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    if all(label.isdigit() for label in labels):
        return False  # looks like a mistyped IPv4 address
    return len(host) <= 253 and all(_HOST_LABEL.match(label) for label in labels)


def parse_zone_id(text: str) -> str:
    """``Z0123...`` or ``/hostedzone/Z0123...`` -> ``Z0123...``."""
    if not isinstance(text, str):
        raise UsageError("The hosted zone id must be text such as Z0123456789ABCDEFGHIJ.")
    cleaned = text.strip()
    if cleaned.startswith("/hostedzone/"):
        cleaned = cleaned[len("/hostedzone/") :]
    if not _ZONE_ID.match(cleaned):
        raise UsageError(
            f"{echo(text)} is not a Route 53 hosted zone id (letters and digits, e.g. Z0123456789ABC)."
        )
    return cleaned


def parse_tsig_source(value: Any) -> str:
    """``file:PATH``, ``secretsmanager:NAME``, a Secrets Manager ARN, or empty."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise UsageError("tsig must be text: file:PATH, secretsmanager:NAME or a Secrets Manager ARN.")
    cleaned = value.strip()
    if cleaned.startswith("arn:") and ":secretsmanager:" in cleaned:
        return cleaned
    for prefix in ("file:", "secretsmanager:"):
        if cleaned.startswith(prefix) and cleaned[len(prefix) :].strip():
            return prefix + cleaned[len(prefix) :].strip()
    # The value is not repeated: whoever got this wrong may have pasted the key itself.
    raise UsageError(
        "tsig must be file:PATH, secretsmanager:NAME or a Secrets Manager ARN "
        "(the location of the key, never the key itself)."
    )


_TRUE = frozenset({"true", "yes", "1", "on"})
_FALSE = frozenset({"false", "no", "0", "off"})


def parse_bool(value: Any, what: str) -> bool:
    """JSON booleans and the original event's strings "True"/"False" (any case), yes/no, 1/0."""
    if isinstance(value, bool):
        return value
    if value is None or value == "":
        return False
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    word = value.strip().lower() if isinstance(value, str) else None
    if word in _TRUE or word in _FALSE:
        return word in _TRUE
    raise UsageError(f"{what} must be true or false, got {value!r}.")


def _number(data: Mapping[str, Any], key: str, *, low: float, high: float, default: float) -> float:
    """``data[key]`` as a number from ``low`` to ``high`` (a JSON number or numeric text), or ``default``."""
    value = data.get(key)
    if value is None:
        return default
    number: float | None = None
    if not isinstance(value, bool) and isinstance(value, int | float | str):
        with contextlib.suppress(ValueError):
            number = float(value)
    if number is None or not low <= number <= high:
        raise UsageError(f"{key} must be a number from {low:g} to {high:g}, got {value!r}.")
    return number


def _whole(data: Mapping[str, Any], key: str, *, default: int) -> int:
    """``data[key]`` as a whole number from 0 to 10,000,000 (a record set count), or ``default``."""
    number = _number(data, key, low=0, high=10_000_000, default=default)
    if number != int(number):
        raise UsageError(f"{key} must be a whole number, got {data.get(key)!r}.")
    return int(number)


def zone_from_mapping(data: Mapping[str, Any]) -> ZoneConfig:
    """One zone object (``OPSBOT_DNS_ZONES`` entry or our own event) -> ZoneConfig; UsageError if bad."""
    unknown = sorted(set(data) - _ZONE_KEYS)
    if unknown:
        raise UsageError(f"Unknown key {unknown[0]!r}; a zone has {', '.join(sorted(_ZONE_KEYS))}.")
    for required in ("domain", "master", "zone_id"):
        if data.get(required) in (None, ""):
            raise UsageError(f"{required!r} is missing.")
    if not isinstance(data["domain"], str):
        raise UsageError("'domain' must be text such as corp.example.com.")
    return ZoneConfig(
        domain=names.parse_domain(data["domain"]),
        master=parse_master(data["master"]),
        zone_id=parse_zone_id(data["zone_id"]),
        tsig=parse_tsig_source(data.get("tsig")),
        ignore_ttl=parse_bool(data.get("ignore_ttl"), "ignore_ttl"),
        timeout=_number(data, "timeout", low=0.1, high=900, default=DEFAULT_TIMEOUT),
        max_delete_percent=_number(
            data, "max_delete_percent", low=0, high=100, default=DEFAULT_MAX_DELETE_PERCENT
        ),
        full_check_hours=_number(
            data, "full_check_hours", low=0, high=8760, default=DEFAULT_FULL_CHECK_HOURS
        ),
        max_update_percent=_number(
            data, "max_update_percent", low=0, high=100, default=DEFAULT_MAX_UPDATE_PERCENT
        ),
        guard_min_records=_whole(data, "guard_min_records", default=DEFAULT_GUARD_MIN_RECORDS),
        account=_account(data.get("account")),
    )


def _account(value: Any) -> str:
    if value in (None, ""):
        return ""
    if not isinstance(value, str):
        raise UsageError("'account' must be the name of an account in OPSBOT_ACCOUNTS.")
    return value.strip()


def parse_zones(text: str) -> tuple[ZoneConfig, ...]:
    """``OPSBOT_DNS_ZONES`` -> zones. Empty means none; anything wrong raises ConfigError, nothing else."""
    if not isinstance(text, str) or not text.strip():
        return ()
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ConfigError(
            f"OPSBOT_DNS_ZONES is not valid JSON ({error}).",
            hint='Expected a list such as [{"domain": "corp.example.com", "master": "10.0.0.53", '
            '"zone_id": "Z0123456789ABC"}].',
        ) from None
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise ConfigError("OPSBOT_DNS_ZONES must be a JSON list of zone objects.")
    zones: list[ZoneConfig] = []
    seen: set[tuple[str, str]] = set()
    for position, entry in enumerate(data, start=1):
        if not isinstance(entry, dict):
            raise ConfigError(f"OPSBOT_DNS_ZONES entry {position} is not an object.")
        try:
            zone = zone_from_mapping(entry)
        except UsageError as error:
            label = entry.get("domain") if isinstance(entry.get("domain"), str) else f"entry {position}"
            raise ConfigError(f"OPSBOT_DNS_ZONES {label}: {error.message}") from None
        if (zone.domain, zone.zone_id) in seen:
            raise ConfigError(f"OPSBOT_DNS_ZONES lists {zone.name} with hosted zone {zone.zone_id} twice.")
        seen.add((zone.domain, zone.zone_id))
        zones.append(zone)
    return tuple(zones)


def find_zone(zones: tuple[ZoneConfig, ...], domain: str, *, zone_id: str | None = None) -> ZoneConfig:
    """The configured zone for ``domain`` (and ``zone_id`` when given); UsageError naming the choices."""
    wanted = names.parse_domain(domain)
    wanted_id = parse_zone_id(zone_id) if zone_id is not None else None
    matches = [zone for zone in zones if zone.domain == wanted and wanted_id in (None, zone.zone_id)]
    if not matches:
        configured = ", ".join(zone.name for zone in zones) or "none (set OPSBOT_DNS_ZONES)"
        target = echo(names.display(wanted)) + (f" with hosted zone {wanted_id}" if wanted_id else "")
        raise UsageError(f"{target} is not a configured zone. Configured: {configured}.")
    if len(matches) > 1:
        ids = ", ".join(zone.zone_id for zone in matches)
        raise UsageError(
            f"{names.display(wanted)} is mirrored into several hosted zones ({ids}); give --zone-id."
        )
    return matches[0]


@dataclass(frozen=True)
class MirrorRequest:
    zone: ZoneConfig
    force: bool = False


def parse_event(event: Any, zones: tuple[ZoneConfig, ...]) -> tuple[MirrorRequest, ...]:
    """The mirror function's event -> what to mirror. UsageError with a sentence when it is not usable.

    An EventBridge "Scheduled Event" without our input, or ``{"zones": "all"}``, means every configured zone.
    """
    if not isinstance(event, Mapping):
        raise UsageError("The DNS mirror event must be a JSON object.")
    if event.get("zones") == "all" or (
        event.get("detail-type") == "Scheduled Event" and "domain" not in event
    ):
        if not zones:
            raise UsageError("No zones are configured (OPSBOT_DNS_ZONES) for a run over all zones.")
        return tuple(MirrorRequest(zone) for zone in zones)
    return (_parse_one(event, zones),)


def _parse_one(event: Mapping[str, Any], zones: tuple[ZoneConfig, ...]) -> MirrorRequest:
    if "Domain" in event or "MasterDns" in event or "ZoneId" in event:
        missing = [key for key in ("Domain", "MasterDns", "ZoneId") if not event.get(key)]
        if missing:
            raise UsageError(
                f"The event lacks {', '.join(missing)} (all of Domain, MasterDns and ZoneId are required)."
            )
        if not isinstance(event["Domain"], str):
            raise UsageError("Domain must be text.")
        domain = names.parse_domain(event["Domain"])
        configured = [z for z in zones if z.domain == domain]
        base = configured[0] if len(configured) == 1 else None
        zone = ZoneConfig(
            domain=domain,
            master=parse_master(event["MasterDns"]),
            zone_id=parse_zone_id(event["ZoneId"]),
            tsig=base.tsig if base else "",
            ignore_ttl=parse_bool(event.get("IgnoreTTL", "False"), "IgnoreTTL"),
            timeout=base.timeout if base else DEFAULT_TIMEOUT,
            max_delete_percent=base.max_delete_percent if base else DEFAULT_MAX_DELETE_PERCENT,
            full_check_hours=base.full_check_hours if base else DEFAULT_FULL_CHECK_HOURS,
            max_update_percent=base.max_update_percent if base else DEFAULT_MAX_UPDATE_PERCENT,
            guard_min_records=base.guard_min_records if base else DEFAULT_GUARD_MIN_RECORDS,
        )
        return MirrorRequest(zone)
    force = parse_bool(event.get("force"), "force")
    wanted = event.get("domain")
    if not isinstance(wanted, str) or not wanted.strip():
        raise UsageError(
            'The event needs "domain" (a configured zone) or the original Domain/MasterDns/ZoneId keys.'
        )
    if "master" in event:
        zone = zone_from_mapping({k: v for k, v in event.items() if k != "force"})
    else:
        # The template's schedules name domain and hosted zone: one domain may be in two hosted zones.
        zone = find_zone(zones, wanted, zone_id=event.get("zone_id"))
        if "ignore_ttl" in event:
            zone = zone.with_changes(ignore_ttl=parse_bool(event["ignore_ttl"], "ignore_ttl"))
    return MirrorRequest(zone, force=force)
