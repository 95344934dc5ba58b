"""The record model, and the normalisation that makes the master's and Route 53's records comparable.

Both sides are turned into ``RecordSet``s whose values are *canonical Route 53 values*: exactly the
strings we would send to Route 53, written one way only. So a comparison is a tuple comparison, and a
planned change carries the strings to send.

Canonical values:
- names inside values (CNAME, NS, PTR, MX, SRV targets) are lowercase and absolute with a trailing dot,
  escaped the Route 53 way (octal); names in other types' values (HTTPS and SVCB targets, NAPTR
  replacements) are lowercase and absolute too, in dnspython's presentation format. The master
  transfers them absolute; Route 53 treats a name without a trailing dot as absolute too. The original
  mirror cut the zone name off one side only and so rewrote every in-zone CNAME/MX/SRV target on every
  run.
- TXT and SPF: every character-string in double quotes, separated by one space, ``"`` and ``\\`` escaped
  with a backslash, bytes outside printable ASCII as ``\\ooo`` (octal, as Route 53 documents), strings
  longer than 255 bytes cut into 255-byte chunks (the DNS limit of one string).
- A and AAAA in their shortest standard form; other types in dnspython's presentation format.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.zone

from bot.core.dns import names
from bot.errors import UsageError

# What ChangeResourceRecordSets accepts (Route 53 "Supported DNS record types").
ROUTE53_TYPES = frozenset(
    {
        "A",
        "AAAA",
        "CAA",
        "CNAME",
        "DS",
        "HTTPS",
        "MX",
        "NAPTR",
        "NS",
        "PTR",
        "SOA",
        "SPF",
        "SRV",
        "SSHFP",
        "SVCB",
        "TLSA",
        "TXT",
    }
)
TXT_TYPES = frozenset({"TXT", "SPF"})
MAX_TXT_STRING = 255
MAX_TTL = 2147483647
# ChangeResourceRecordSets refuses a Value longer than this (RData in the API model).
MAX_VALUE_CHARS = 4000

_SINGLE_NAME_TYPES = frozenset({"CNAME", "NS", "PTR"})


@dataclass(frozen=True, slots=True)
class RecordSet:
    """One record set: owner name and values canonical, values sorted and without duplicates."""

    name: str
    rtype: str
    ttl: int
    values: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.rtype)


@dataclass(frozen=True, slots=True)
class HostedRecord:
    """A Route 53 record set we manage: canonical form plus exactly what Route 53 returned.

    A DELETE must repeat the record set as Route 53 holds it, so it is sent in the returned form.
    """

    record: RecordSet
    wire_name: str
    wire_values: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LeftAlone:
    """A record we do not touch, with the reason shown to the user."""

    side: str  # "master" or "route53"
    name: str
    rtype: str
    reason: str

    def text(self) -> str:
        return f"{self.name} {self.rtype}: {self.reason}"


@dataclass(frozen=True)
class MasterZone:
    origin: str
    serial: int | None
    records: tuple[RecordSet, ...]
    left_alone: tuple[LeftAlone, ...] = ()
    rr_count: int = 0  # resource records received, SOA and apex NS included

    def by_key(self) -> dict[tuple[str, str], RecordSet]:
        return {record.key: record for record in self.records}


@dataclass(frozen=True)
class HostedZone:
    origin: str
    records: tuple[HostedRecord, ...]
    left_alone: tuple[LeftAlone, ...] = ()
    soa: HostedRecord | None = None
    serial: int | None = None
    # Route 53 can hold several record sets at one name and type (routing policies); their keys, so
    # that the planner never creates a plain record set over them.
    occupied: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    warnings: tuple[str, ...] = ()


# -- TXT -------------------------------------------------------------------------------------------


def txt_value(strings: Iterable[bytes]) -> str:
    """Character-strings -> canonical Route 53 TXT value (``"a" "b"``)."""
    parts: list[str] = []
    for string in strings:
        for start in range(0, max(len(string), 1), MAX_TXT_STRING):
            parts.append('"' + _escape_txt(string[start : start + MAX_TXT_STRING]) + '"')
    return " ".join(parts)


def _escape_txt(data: bytes) -> str:
    out: list[str] = []
    for byte in data:
        if byte in (0x22, 0x5C):  # " and \
            out.append("\\" + chr(byte))
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03o}")
    return "".join(out)


def txt_strings(value: str) -> list[bytes]:
    """A TXT value as Route 53 writes it -> its character-strings.

    Quoted strings keep their spaces; unquoted words are strings of their own (RFC 1035); escapes as in
    names (``\\ooo`` octal, ``\\"`` and ``\\\\`` the character itself). An empty value is one empty string.
    """
    strings: list[bytes] = []
    current = bytearray()
    in_quotes = False
    in_word = False
    index = 0
    length = len(value)
    what = f"The TXT value {value!r}"
    while index < length:
        char = value[index]
        if char == "\\":
            byte, index = names.read_escape(value, index, what)
            current.extend(byte)
            in_word = in_word or not in_quotes
            continue
        if char == '"':
            if in_quotes:
                strings.append(bytes(current))
                current = bytearray()
                in_quotes = False
            else:
                if in_word:
                    strings.append(bytes(current))
                    current = bytearray()
                    in_word = False
                in_quotes = True
            index += 1
            continue
        if not in_quotes and char.isspace():
            if in_word:
                strings.append(bytes(current))
                current = bytearray()
                in_word = False
            index += 1
            continue
        current.extend(char.encode("utf-8", "surrogatepass"))
        in_word = in_word or not in_quotes
        index += 1
    if in_quotes:
        raise UsageError(f"The TXT value {value!r} has an unterminated quote.")
    if in_word:
        strings.append(bytes(current))
    return strings or [b""]


# -- values ----------------------------------------------------------------------------------------


def _uint16(text: str, what: str, value: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise UsageError(f"The {what} in {value!r} must be a number from 0 to 65535.")
    return int(text)


def _target(text: str) -> str:
    return names.encode_route53_name(names.decode_route53(text).canonicalize())


def parse_route53_value(rtype: str, value: str) -> str:
    """A value as Route 53 returns it (or as a person typed it) -> canonical value.

    Raises UsageError for anything that is not a valid value of that type; nothing else.
    """
    if not isinstance(value, str):
        raise UsageError(f"A {rtype} value must be text.")
    stripped = value.strip()
    if rtype in TXT_TYPES:
        return txt_value(txt_strings(stripped))
    if not stripped:
        raise UsageError(f"An empty {rtype} value.")
    if rtype == "A":
        try:
            return str(ipaddress.IPv4Address(stripped))
        except ValueError:
            raise UsageError(f"{stripped!r} is not an IPv4 address.") from None
    if rtype == "AAAA":
        try:
            if "%" in stripped:
                raise ValueError("scoped")
            return str(ipaddress.IPv6Address(stripped))
        except ValueError:
            raise UsageError(f"{stripped!r} is not an IPv6 address.") from None
    if rtype in _SINGLE_NAME_TYPES:
        if len(stripped.split()) != 1:
            raise UsageError(f"A {rtype} value is one domain name, got {stripped!r}.")
        return _target(stripped)
    if rtype == "MX":
        parts = stripped.split()
        if len(parts) != 2:
            raise UsageError(f"An MX value is 'preference exchange', got {stripped!r}.")
        return f"{_uint16(parts[0], 'preference', stripped)} {_target(parts[1])}"
    if rtype == "SRV":
        parts = stripped.split()
        if len(parts) != 4:
            raise UsageError(f"An SRV value is 'priority weight port target', got {stripped!r}.")
        numbers = [
            _uint16(part, what, stripped)
            for part, what in zip(parts[:3], ("priority", "weight", "port"), strict=True)
        ]
        return f"{numbers[0]} {numbers[1]} {numbers[2]} {_target(parts[3])}"
    if rtype not in ROUTE53_TYPES:
        raise UsageError(f"Route 53 does not support {rtype} records.")
    try:
        # Route 53 reads every name in a value as absolute; with dnspython's default (relativize=True)
        # names in HTTPS, SVCB and NAPTR values came out relative and could not be canonicalised.
        rdata = dns.rdata.from_text(
            dns.rdataclass.IN, rtype, stripped, origin=dns.name.root, relativize=False
        )
        return canonical_rdata(rdata)
    except Exception as error:  # dnspython raises many kinds for bad text; all mean "not valid"
        raise UsageError(f"{stripped!r} is not a valid {rtype} value ({error}).") from None


def _absolute(name: dns.name.Name, origin: dns.name.Name | None) -> dns.name.Name:
    if name.is_absolute():
        return name
    if origin is None:
        raise ValueError(f"relative name {name} without an origin")
    return name.derelativize(origin)


def _name_value(name: dns.name.Name, origin: dns.name.Name | None) -> str:
    return names.encode_route53_name(_absolute(name, origin).canonicalize())


def canonical_rdata(rdata: dns.rdata.Rdata, origin: dns.name.Name | None = None) -> str:
    """A dnspython rdata (from the transfer) -> canonical Route 53 value.

    Names inside are absolute after a transfer; ``origin`` completes relative ones (a relativized zone).
    """
    rdtype = rdata.rdtype
    if rdtype == dns.rdatatype.A:
        return str(rdata.address)  # type: ignore[attr-defined]
    if rdtype == dns.rdatatype.AAAA:
        return str(ipaddress.IPv6Address(rdata.address))  # type: ignore[attr-defined]
    if rdtype in (dns.rdatatype.CNAME, dns.rdatatype.NS, dns.rdatatype.PTR):
        return _name_value(rdata.target, origin)  # type: ignore[attr-defined]
    if rdtype == dns.rdatatype.MX:
        return f"{rdata.preference} {_name_value(rdata.exchange, origin)}"  # type: ignore[attr-defined]
    if rdtype == dns.rdatatype.SRV:
        target = _name_value(rdata.target, origin)  # type: ignore[attr-defined]
        return f"{rdata.priority} {rdata.weight} {rdata.port} {target}"  # type: ignore[attr-defined]
    if rdtype in (dns.rdatatype.TXT, dns.rdatatype.SPF):
        return txt_value(rdata.strings)  # type: ignore[attr-defined]
    if rdtype in (dns.rdatatype.SVCB, dns.rdatatype.HTTPS):
        # RFC 4034's canonical form predates SVCB and keeps the TargetName's case; names are
        # case-insensitive, so it is lowercased like every other name in a value.
        service_target = _absolute(rdata.target, origin).canonicalize()  # type: ignore[attr-defined]
        rdata = rdata.replace(target=service_target)
    # Other types: RFC 4034's canonical form lowercases embedded names; presentation via dnspython.
    wire = rdata.to_digestable(origin)
    return dns.rdata.from_wire(rdata.rdclass, rdtype, wire, 0, len(wire)).to_text()


def record_set(name: str, rtype: str, ttl: int, values: Iterable[str]) -> RecordSet:
    return RecordSet(name, rtype, ttl, tuple(sorted(set(values))))


# -- the master side -------------------------------------------------------------------------------


def master_zone(origin: str, rrsets: Iterable[dns.rrset.RRset]) -> MasterZone:
    """The records of a transfer (absolute names) -> the master zone as we compare it.

    Apex SOA and NS are Route 53's own and are not mirrored; types Route 53 does not support, records of
    other classes, wildcard NS records and values that cannot be read are reported in ``left_alone``
    (where Route 53 keeps what it holds). An RRset split over several transfer messages is joined; its
    TTL is the lowest seen (as a resolver would cache it).
    """
    origin_name = names.from_text(origin)
    collected: dict[tuple[str, str], tuple[int, set[str]]] = {}
    left: dict[tuple[str, str], LeftAlone] = {}
    unreadable: set[tuple[str, str]] = set()
    serial: int | None = None
    rr_count = 0
    for rrset in rrsets:
        owner = rrset.name if rrset.name.is_absolute() else rrset.name.derelativize(origin_name)
        name = names.canonical(owner)
        rtype = dns.rdatatype.to_text(rrset.rdtype)
        rr_count += len(rrset)
        key = (name, rtype)
        if rrset.rdclass != dns.rdataclass.IN:
            left[key] = LeftAlone("master", name, rtype, f"class {dns.rdataclass.to_text(rrset.rdclass)}")
            continue
        if not names.is_within(name, origin):
            left[key] = LeftAlone("master", name, rtype, "outside the zone")
            continue
        if name == origin and rtype in ("SOA", "NS"):
            if rtype == "SOA" and len(rrset):
                serial = int(next(iter(rrset)).serial)
            continue
        if rtype not in ROUTE53_TYPES:
            left[key] = LeftAlone("master", name, rtype, f"Route 53 does not support {rtype} records")
            continue
        if rtype == "SOA":
            left[key] = LeftAlone("master", name, rtype, "an SOA record below the apex")
            continue
        if rtype == "NS" and name.startswith("*."):
            left[key] = LeftAlone("master", name, rtype, "Route 53 does not allow wildcard NS records")
            continue
        if key in unreadable:
            continue
        try:
            values = {canonical_rdata(rdata, origin_name) for rdata in rrset}
        except Exception as error:  # one odd record set must not stop the zone (dnspython raises many kinds)
            unreadable.add(key)
            collected.pop(key, None)
            left[key] = LeftAlone("master", name, rtype, f"value not understood ({error})")
            continue
        if key in collected:
            ttl, existing = collected[key]
            existing.update(values)
            collected[key] = (min(ttl, rrset.ttl), existing)
        else:
            collected[key] = (int(rrset.ttl), values)
    records = tuple(
        record_set(name, rtype, ttl, values) for (name, rtype), (ttl, values) in collected.items()
    )
    return MasterZone(origin, serial, records, tuple(left.values()), rr_count)


def master_zone_from_text(text: str, origin: str) -> MasterZone:
    """A zone file -> MasterZone (tests, the local master). UsageError when the text is not a zone."""
    try:
        zone = dns.zone.from_text(text, origin=origin, relativize=False, check_origin=False)
    except Exception as error:  # dnspython reports syntax problems with several exception types
        raise UsageError(f"The zone text for {origin} is not valid: {error}") from None
    return master_zone(names.canonical(zone.origin), zone_rrsets(zone))  # type: ignore[arg-type]


def zone_rrsets(zone: dns.zone.Zone) -> list[dns.rrset.RRset]:
    """Every RRset of a dnspython zone with absolute owner names."""
    out: list[dns.rrset.RRset] = []
    origin = zone.origin
    assert origin is not None
    for name, rdataset in zone.iterate_rdatasets():
        owner = name if name.is_absolute() else name.derelativize(origin)
        rrset = dns.rrset.RRset(owner, rdataset.rdclass, rdataset.rdtype)
        rrset.update(rdataset)
        out.append(rrset)
    return out


# -- the Route 53 side -----------------------------------------------------------------------------


_SOA_FIELDS = re.compile(r"([^\s'\"{}]+)\s+([^\s'\"{}]+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)")


def soa_fields(value: str) -> tuple[list[str], bool] | None:
    """The seven SOA fields of a Route 53 SOA value, and whether the value was well-formed.

    moto returns its default SOA malformed (the value wrapped in the text of a dict, or the primary
    server's name with a doubled trailing dot); the fields are recovered from such text, reported as
    malformed, and written back cleanly the next time the serial is set. None when there are no fields.
    """
    fields = value.split()
    clean = len(fields) == 7 and all(part.isdigit() for part in fields[2:])
    if not clean:
        found = _SOA_FIELDS.search(value)
        if found is None:
            return None
        fields = list(found.groups())
    names_ok = all(part.endswith(".") and not part.endswith("..") for part in fields[:2])
    fields[:2] = [part.rstrip(".") + "." for part in fields[:2]]
    if int(fields[2]) >= 2**32:
        return None
    return fields, clean and names_ok


def soa_serial(value: str) -> int | None:
    """The serial of an SOA value, or None when it has none."""
    parsed = soa_fields(value)
    return int(parsed[0][2]) if parsed else None


def with_soa_serial(value: str, serial: int) -> str:
    """The SOA value with its serial replaced (and repaired if malformed); UsageError when unreadable."""
    parsed = soa_fields(value)
    if parsed is None:
        raise UsageError(
            f"The Route 53 SOA value {value!r} is not 'mname rname serial refresh retry expire minimum'."
        )
    fields = parsed[0]
    fields[2] = str(serial % 2**32)
    return " ".join(fields)


def hosted_zone(origin: str, rrsets: Iterable[Mapping[str, Any]]) -> HostedZone:
    """ListResourceRecordSets items -> the Route 53 side as we compare it.

    Alias records, record sets with a routing policy (SetIdentifier) or a traffic policy, and values we
    cannot read are reported in ``left_alone`` and never touched; the apex SOA and NS are Route 53's. Two
    record sets with the same name and type (moto accepts such duplicates, AWS does not) are both left
    alone, since no single change could fix them safely.
    """
    managed: dict[tuple[str, str], HostedRecord] = {}
    left: list[LeftAlone] = []
    occupied: set[tuple[str, str]] = set()
    duplicates: set[tuple[str, str]] = set()
    warnings: list[str] = []
    soa: HostedRecord | None = None
    for item in rrsets:
        wire_name = str(item.get("Name", ""))
        rtype = str(item.get("Type", ""))
        try:
            name = names.route53_to_canonical(wire_name)
        except UsageError as error:
            left.append(LeftAlone("route53", wire_name, rtype, f"name not understood: {error.message}"))
            continue
        key = (name, rtype)
        if "AliasTarget" in item:
            target = str(item["AliasTarget"].get("DNSName", "?"))
            occupied.add(key)
            left.append(LeftAlone("route53", name, rtype, f"alias to {target}"))
            continue
        if "SetIdentifier" in item or "TrafficPolicyInstanceId" in item:
            occupied.add(key)
            reason = (
                f"routing policy (set {item['SetIdentifier']})"
                if "SetIdentifier" in item
                else "managed by a traffic policy"
            )
            left.append(LeftAlone("route53", name, rtype, reason))
            continue
        wire_values = tuple(str(rr.get("Value", "")) for rr in item.get("ResourceRecords", []))
        try:
            ttl = int(item.get("TTL", -1))
        except (TypeError, ValueError):
            ttl = -1
        if name == origin and rtype in ("SOA", "NS"):
            if rtype == "SOA" and wire_values:
                soa = HostedRecord(RecordSet(name, rtype, ttl, wire_values), wire_name, wire_values)
            continue
        if not 0 <= ttl <= MAX_TTL:
            occupied.add(key)
            left.append(LeftAlone("route53", name, rtype, f"TTL {item.get('TTL')!r} not understood"))
            continue
        if rtype not in ROUTE53_TYPES or not wire_values:
            occupied.add(key)
            left.append(LeftAlone("route53", name, rtype, "type or values not understood"))
            continue
        try:
            values = [parse_route53_value(rtype, value) for value in wire_values]
        except UsageError as error:
            occupied.add(key)
            left.append(LeftAlone("route53", name, rtype, f"value not understood: {error.message}"))
            continue
        if key in managed or key in duplicates:
            duplicates.add(key)
            continue
        managed[key] = HostedRecord(record_set(name, rtype, ttl, values), wire_name, wire_values)
    for key in duplicates:
        managed.pop(key, None)
        occupied.add(key)
        left.append(LeftAlone("route53", key[0], key[1], "Route 53 returned this record set twice"))
    serial = None
    if soa is not None:
        parsed = soa_fields(soa.wire_values[0])
        if parsed is None:
            warnings.append(f"The Route 53 SOA value {soa.wire_values[0]!r} cannot be read.")
        else:
            serial = int(parsed[0][2])
            if not parsed[1]:
                warnings.append(
                    f"The Route 53 SOA value {soa.wire_values[0]!r} is malformed; "
                    "it is rewritten when the serial is next set."
                )
    return HostedZone(
        origin,
        tuple(managed.values()),
        tuple(left),
        soa,
        serial,
        frozenset(occupied),
        tuple(warnings),
    )
