"""Hypothesis strategies for random zones: the master's records and a Route 53 side that differs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.TXT
import dns.rrset
from hypothesis import strategies as st

from bot.core.dns import names
from bot.core.dns.records import MasterZone, master_zone
from tests.dns.support import aws_name

ORIGIN = "example.com."
ORIGIN_NAME = dns.name.from_text(ORIGIN)

plain_label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=6)
odd_label = st.sampled_from(["Mixed", "UPPER", "sp ace", "dot.in", "ü", "a*b", 'q"t', "back\\slash"])
label = st.one_of(plain_label, plain_label, plain_label, odd_label)


@st.composite
def owner(draw: st.DrawFn) -> dns.name.Name:
    labels = draw(st.lists(label, min_size=0, max_size=2))
    if draw(st.integers(0, 5)) == 0:
        labels = ["*", *labels]
    return dns.name.Name([part.encode("utf-8") for part in labels] + list(ORIGIN_NAME.labels))


@st.composite
def target(draw: st.DrawFn) -> str:
    """A name in a value: in the zone (relative in zone-file syntax) or elsewhere, any case."""
    name = draw(
        st.sampled_from(["www", "Mail", "sip", "host.sub", "ns1.Example.NET.", "target.example.org."])
    )
    return name


txt_string = st.binary(max_size=60) | st.binary(min_size=200, max_size=255)


@st.composite
def rdatas(draw: st.DrawFn, rtype: str) -> list[dns.rdata.Rdata]:
    count = draw(st.integers(1, 3))

    def make(text: str) -> dns.rdata.Rdata:
        return dns.rdata.from_text("IN", rtype, text, origin=ORIGIN_NAME, relativize=False)

    out: list[dns.rdata.Rdata] = []
    for _ in range(count):
        if rtype == "A":
            out.append(make(str(draw(st.ip_addresses(v=4)))))
        elif rtype == "AAAA":
            out.append(make(str(draw(st.ip_addresses(v=6)))))
        elif rtype == "MX":
            out.append(make(f"{draw(st.integers(0, 100))} {draw(target())}"))
        elif rtype == "SRV":
            numbers = draw(st.tuples(st.integers(0, 65535), st.integers(0, 65535), st.integers(1, 65535)))
            out.append(make(f"{numbers[0]} {numbers[1]} {numbers[2]} {draw(target())}"))
        elif rtype in ("CNAME", "NS", "PTR"):
            out.append(make(draw(target())))
            if rtype == "CNAME":
                break
        elif rtype == "TXT":
            strings = draw(st.lists(txt_string, min_size=1, max_size=3))
            out.append(dns.rdtypes.ANY.TXT.TXT(dns.rdataclass.IN, dns.rdatatype.TXT, strings))
        elif rtype == "CAA":
            out.append(
                make(f'0 {draw(st.sampled_from(["issue", "issuewild"]))} "{draw(plain_label)}.example.net"')
            )
        elif rtype in ("HTTPS", "SVCB"):
            out.append(make(draw(service_binding(rtype))))
        elif rtype == "NAPTR":
            order, preference = draw(st.integers(0, 65535)), draw(st.integers(0, 65535))
            if draw(st.booleans()):
                regexp = f"!^.*$!sip:{draw(plain_label)}@example.net!"
                out.append(make(f'{order} {preference} "u" "E2U+sip" "{regexp}" .'))
            else:
                out.append(make(f'{order} {preference} "S" "SIP+D2U" "" {draw(target())}'))
        elif rtype == "SSHFP":
            fingerprint = draw(st.sampled_from([(1, 20), (2, 32)]))
            out.append(make(f"{draw(st.integers(1, 4))} {fingerprint[0]} {draw(hex_digest(fingerprint[1]))}"))
        elif rtype == "TLSA":
            matching = draw(st.sampled_from([(1, 32), (2, 64)]))
            usage, selector = draw(st.integers(0, 3)), draw(st.integers(0, 1))
            out.append(make(f"{usage} {selector} {matching[0]} {draw(hex_digest(matching[1]))}"))
        elif rtype == "DS":
            digest = draw(st.sampled_from([(2, 32), (4, 48)]))
            key_tag, algorithm = draw(st.integers(0, 65535)), draw(st.sampled_from([8, 13, 15]))
            out.append(make(f"{key_tag} {algorithm} {digest[0]} {draw(hex_digest(digest[1]))}"))
    return out


def hex_digest(size: int) -> st.SearchStrategy[str]:
    return st.binary(min_size=size, max_size=size).map(bytes.hex)


@st.composite
def service_binding(draw: st.DrawFn, rtype: str) -> str:
    """An HTTPS or SVCB value: AliasMode (priority 0, a target only) or ServiceMode with parameters."""
    where = draw(st.one_of(st.just("."), target()))
    if draw(st.integers(0, 3)) == 0:
        return f"0 {where if where != '.' else 'www'}"
    params = [f"alpn={draw(st.sampled_from(['h2', 'h3', 'h2,h3', 'http/1.1']))}"]
    if draw(st.booleans()):
        params.append(f"port={draw(st.integers(1, 65535))}")
    if rtype == "SVCB" and draw(st.booleans()):
        params.append(f"ipv4hint={draw(st.ip_addresses(v=4))}")
    return f"{draw(st.integers(1, 3))} {where} {' '.join(params)}"


# Every type Route 53 takes besides SOA and SPF (SPF is TXT by another number).
TYPES = ["A", "AAAA", "MX", "SRV", "TXT", "NS", "PTR", "CAA", "HTTPS", "SVCB", "NAPTR", "SSHFP", "TLSA", "DS"]


@st.composite
def name_contents(draw: st.DrawFn, name: dns.name.Name) -> list[str]:
    """Types at one name: a CNAME alone, or some other types (never NS at a wildcard or the apex)."""
    apex = name == ORIGIN_NAME
    wildcard = name.labels[0] == b"*"
    if not apex and draw(st.integers(0, 4)) == 0:
        return ["CNAME"]
    # DS records belong to the parent side of a delegation: never at the apex.
    allowed = [t for t in TYPES if not ((t == "NS" and (apex or wildcard)) or (t == "DS" and apex))]
    return draw(st.lists(st.sampled_from(allowed), min_size=1, max_size=3, unique=True))


@st.composite
def master_zones(draw: st.DrawFn) -> MasterZone:
    owners = draw(st.lists(owner(), min_size=0, max_size=12, unique_by=lambda n: n.canonicalize()))
    rrsets: list[dns.rrset.RRset] = []
    soa = dns.rrset.from_text(
        ORIGIN, 3600, "IN", "SOA", f"ns1.example.net. hostmaster.{ORIGIN} 7 7200 900 1209600 300"
    )
    rrsets.append(soa)
    rrsets.append(dns.rrset.from_text(ORIGIN, 3600, "IN", "NS", "ns1.example.net."))
    for name in owners:
        for rtype in draw(name_contents(name)):
            rrset = dns.rrset.RRset(name, dns.rdataclass.IN, dns.rdatatype.from_text(rtype))
            ttl = draw(st.sampled_from([60, 300, 3600]))
            for rdata in draw(rdatas(rtype)):
                rrset.add(rdata, ttl)
            rrsets.append(rrset)
    return master_zone(ORIGIN, rrsets)


@dataclass(frozen=True)
class Route53Side:
    items: list[dict[str, Any]]  # as ListResourceRecordSets would return them


def _spelled(rtype: str, value: str, style: int) -> str:
    """An equivalent spelling of a canonical value, as a person or another tool may have written it."""
    if style == 0:
        return value
    if rtype in ("CNAME", "NS", "PTR"):
        return value.rstrip(".").upper() if style == 1 else value.rstrip(".")
    if rtype in ("MX", "SRV"):
        parts = value.split(" ")
        parts[-1] = parts[-1].rstrip(".")
        parts[0] = "0" + parts[0]
        return " ".join(parts)
    if rtype == "AAAA":
        return value.upper()
    if rtype in ("SSHFP", "TLSA", "DS"):
        return value.upper()  # the digest in upper-case hex
    if rtype in ("HTTPS", "SVCB"):
        parts = value.split(" ")
        if parts[1] != ".":
            parts[1] = parts[1].upper() if style == 1 else parts[1].rstrip(".")
        return " ".join(parts)
    if rtype == "NAPTR":
        parts = value.split(" ")
        if parts[-1] != ".":
            parts[-1] = parts[-1].rstrip(".").upper()
        return " ".join(parts)
    return value


@st.composite
def route53_sides(draw: st.DrawFn, master: MasterZone) -> Route53Side:
    """Route 53 before the sync: some master records as they are (spelled differently), some changed,
    some missing, extra records, aliases and routing-policy records; always valid for Route 53."""
    items: list[dict[str, Any]] = []
    types_at: dict[str, set[str]] = {}
    for record in master.records:
        fate = draw(st.sampled_from(["same", "same", "ttl", "values", "missing"]))
        if fate == "missing":
            continue
        values = list(record.values)
        ttl = record.ttl
        if fate == "ttl":
            ttl = ttl + 1
        elif fate == "values":
            values = values[:-1] if len(values) > 1 else (["10.9.9.9"] if record.rtype == "A" else values)
            ttl = ttl if values != list(record.values) else ttl + 7
        style = draw(st.integers(0, 2))
        items.append(
            {
                "Name": aws_name(record.name),
                "Type": record.rtype,
                "TTL": ttl,
                "ResourceRecords": [{"Value": _spelled(record.rtype, v, style)} for v in values],
            }
        )
        types_at.setdefault(record.name, set()).add(record.rtype)
    extras = draw(
        st.lists(st.tuples(owner(), st.sampled_from(["A", "TXT", "ALIAS", "WEIGHTED"])), max_size=5)
    )
    for name, kind in extras:
        canonical = names.canonical(name)
        rtype = "A" if kind != "TXT" else "TXT"
        here = types_at.setdefault(canonical, set())
        if rtype in here or "CNAME" in here or (canonical == ORIGIN and kind == "ALIAS"):
            continue
        here.add(rtype)
        item: dict[str, Any] = {"Name": aws_name(canonical), "Type": rtype}
        if kind == "ALIAS":
            item["AliasTarget"] = {
                "HostedZoneId": "Z2",
                "DNSName": "lb.example.net.",
                "EvaluateTargetHealth": False,
            }
        else:
            item["TTL"] = 120
            item["ResourceRecords"] = [{"Value": "10.8.8.8" if rtype == "A" else '"stale"'}]
            if kind == "WEIGHTED":
                item.update({"SetIdentifier": "blue", "Weight": 5})
        items.append(item)
    return Route53Side(items)
