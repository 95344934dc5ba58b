"""Helpers for the DNS mirror's tests: zones, hosted zones in moto, a strict Route 53 model, nsd."""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.aws.clients import client
from bot.core.dns import names
from bot.core.dns.config import MasterAddress
from bot.core.dns.records import parse_route53_value
from bot.core.dns.tsig import TsigKey
from bot.errors import UsageError
from bot.local.dns_master import nsd_binary, nsd_master

SOA_VALUE = "ns-2048.awsdns-64.net. hostmaster.example.com. 1 7200 900 1209600 86400"


def create_hosted_zone(domain: str) -> str:
    """A hosted zone in moto; returns its id (without /hostedzone/)."""
    kwargs: dict[str, Any] = {"Name": domain, "CallerReference": f"test-{time.time_ns()}"}
    return str(client("route53").create_hosted_zone(**kwargs)["HostedZone"]["Id"]).rsplit("/", 1)[-1]


def create_records(zone_id: str, records: Iterable[tuple[str, str, int, Sequence[str]]]) -> None:
    """CREATE plain record sets in moto, 500 per request."""
    changes = [
        {
            "Action": "CREATE",
            "ResourceRecordSet": {
                "Name": name,
                "Type": rtype,
                "TTL": ttl,
                "ResourceRecords": [{"Value": v} for v in values],
            },
        }
        for name, rtype, ttl, values in records
    ]
    for start in range(0, len(changes), 500):
        client("route53").change_resource_record_sets(
            HostedZoneId=zone_id, ChangeBatch={"Changes": changes[start : start + 500]}
        )


def list_all(zone_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"HostedZoneId": zone_id}
    while True:
        page = client("route53").list_resource_record_sets(**kwargs)
        out.extend(page["ResourceRecordSets"])
        if not page["IsTruncated"]:
            return out
        kwargs["StartRecordName"], kwargs["StartRecordType"] = page["NextRecordName"], page["NextRecordType"]


# -- a strict model of Route 53's ChangeResourceRecordSets ----------------------------------------


class InvalidChangeBatch(Exception):
    pass


@dataclass
class FakeRoute53:
    """Route 53's documented behaviour for one hosted zone (what moto does not do):

    a batch is applied entirely or not at all; CREATE fails if the record set exists; DELETE must match
    TTL and values exactly; names are stored lowercase and listed with \\ooo escapes (``*`` as ``\\052``);
    a CNAME cannot share its name with other records; at most 1,000 elements and 32,000 characters of
    values per request, UPSERT counting twice; no value over 4,000 characters.
    """

    origin: str
    items: dict[tuple[str, str, str], dict[str, Any]]
    calls: int = 0

    @classmethod
    def with_defaults(cls, origin: str) -> FakeRoute53:
        fake = cls(origin, {})
        fake.items[(origin, "SOA", "")] = {
            "Name": origin,
            "Type": "SOA",
            "TTL": 900,
            "ResourceRecords": [{"Value": SOA_VALUE}],
        }
        fake.items[(origin, "NS", "")] = {
            "Name": origin,
            "Type": "NS",
            "TTL": 172800,
            "ResourceRecords": [{"Value": f"ns-{n}.awsdns-{n}.org."} for n in (1, 2)],
        }
        return fake

    def put_raw(self, item: Mapping[str, Any]) -> None:
        name = names.route53_to_canonical(str(item["Name"]))
        stored = copy.deepcopy(dict(item))
        stored["Name"] = name
        self.items[(name, str(item["Type"]), str(item.get("SetIdentifier", "")))] = stored

    def listing(self) -> list[dict[str, Any]]:
        """Record sets as ListResourceRecordSets returns them (names escaped the AWS way)."""
        out = []
        for key in sorted(self.items, key=lambda k: (names.sort_key(k[0]), k[1], k[2])):
            item = copy.deepcopy(self.items[key])
            item["Name"] = aws_name(item["Name"])
            out.append(item)
        return out

    def change(self, batch: Mapping[str, Any]) -> None:
        self.calls += 1
        elements = chars = 0
        working = dict(self.items)  # stored items are replaced, never changed in place
        for change in batch["Changes"]:
            action, rrset = change["Action"], change["ResourceRecordSet"]
            weight = 2 if action == "UPSERT" else 1
            values = [rr["Value"] for rr in rrset.get("ResourceRecords", [])]
            elements += len(values) * weight
            chars += sum(len(v) for v in values) * weight
            try:
                name = names.route53_to_canonical(rrset["Name"])
            except UsageError as error:
                raise InvalidChangeBatch(str(error)) from None
            if not names.is_within(name, self.origin):
                raise InvalidChangeBatch(f"{name} is not in {self.origin}")
            for value in values:
                if len(value) > 4000:
                    raise InvalidChangeBatch(f"a value of {key_name(rrset)} is longer than 4,000 characters")
                try:
                    parse_route53_value(rrset["Type"], value)
                except UsageError as error:
                    raise InvalidChangeBatch(str(error)) from None
            key = (name, rrset["Type"], str(rrset.get("SetIdentifier", "")))
            stored = {**copy.deepcopy(rrset), "Name": name}
            if action == "CREATE":
                if key in working:
                    raise InvalidChangeBatch(f"Tried to create {key} but it already exists")
                working[key] = stored
            elif action == "UPSERT":
                working[key] = stored
            elif action == "DELETE":
                current = working.get(key)
                if (
                    current is None
                    or current.get("TTL") != rrset.get("TTL")
                    or sorted(rr["Value"] for rr in current.get("ResourceRecords", [])) != sorted(values)
                ):
                    raise InvalidChangeBatch(f"Tried to delete {key} but it was not found")
                del working[key]
            else:
                raise InvalidChangeBatch(f"unknown action {action}")
        if elements > 1000 or chars > 32000:
            raise InvalidChangeBatch(f"batch too large: {elements} elements, {chars} characters")
        by_name: dict[str, set[str]] = {}
        for name, rtype, _ in working:
            by_name.setdefault(name, set()).add(rtype)
        for name, types in by_name.items():
            if "CNAME" in types and len(types) > 1:
                raise InvalidChangeBatch(f"RRSet of type CNAME with DNS name {name} is not permitted")
        self.items = working


def key_name(rrset: Mapping[str, Any]) -> str:
    return f"{rrset.get('Name')} {rrset.get('Type')}"


def aws_name(canonical: str) -> str:
    """How AWS lists a name: lowercase, \\ooo octal for everything but a-z 0-9 - _ (``*`` is ``\\052``)."""
    parsed = names.from_text(canonical)
    labels = []
    for label in parsed.labels[:-1]:
        labels.append(
            "".join(
                chr(b) if chr(b) in "abcdefghijklmnopqrstuvwxyz0123456789-_" else f"\\{b:03o}"
                for b in label.lower()
            )
        )
    return ".".join(labels) + "."


# -- nsd -----------------------------------------------------------------------------------------------


@contextmanager
def run_nsd(
    workdir: Path, zones: Mapping[str, str], *, key: TsigKey | None = None
) -> Iterator[MasterAddress]:
    """nsd serving ``zones`` on 127.0.0.1 (bot.local.dns_master.nsd_master).

    Skipped without nsd, except where CI demands it (OPSBOT_REQUIRE_NSD=1): there a missing nsd fails.
    """
    if nsd_binary() is None:
        if os.environ.get("OPSBOT_REQUIRE_NSD") == "1":
            pytest.fail("nsd is required (OPSBOT_REQUIRE_NSD=1) but not installed; .ci/run installs it")
        pytest.skip("nsd is not installed (apt-get install nsd)")
    with nsd_master(workdir, zones, key=key) as address:
        yield address
