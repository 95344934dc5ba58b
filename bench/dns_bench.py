"""DNS mirror: zones of 10,000 and 50,000 records with 1% changed, against the original's one request per change.

For each size: the master (Debian's nsd on 127.0.0.1 when installed, else the in-process dnspython master)
serves the new version of the zone; moto's Route 53 (in-process) holds the previous version, as an earlier
sync left it. Measured: the scheduled run with a full read of Route 53 (SOA query, AXFR, every
ListResourceRecordSets page, plan, apply) and its requests; the same changes sent the original's way, one
request per change, to an identical second hosted zone in the same run; an immediate second run (one SOA
query, no transfer); and the incremental run on a third identical zone, which plans against the snapshot
the earlier sync kept instead of reading Route 53. Target: the incremental run makes at most 20 Route 53
requests in all, reads included (exit 1 otherwise), and leaves its zone as the full run leaves its own.

    .venv/bin/python bench/dns_bench.py [--quick] [--sizes 10000,50000] [--master auto|nsd|local]

The hosted zones are filled through moto's backend objects rather than its API: moto checks every CREATE
against its whole change journal, which makes filling 50,000 records through the API take many minutes.
Reading Route 53 is timed against moto, whose every page sorts the whole zone; real Route 53 reads are
bounded by request latency instead (300 record sets per request).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.core.dns.config import MasterAddress, ZoneConfig

DOMAIN = "bench.example.com."
SERIAL = 2024060101
# Route 53 accepts five API requests per second per account; calls beyond that are throttled.
ROUTE53_REQUESTS_PER_SECOND = 5
MAX_INCREMENTAL_REQUESTS = 20  # a 1% change, every Route 53 request of the incremental run included


@dataclass(frozen=True)
class Record:
    label: str
    rtype: str
    ttl: int
    values: tuple[str, ...]  # canonical Route 53 values

    def zone_lines(self) -> list[str]:
        return [f"{self.label} {self.ttl} IN {self.rtype} {value}" for value in self.values]

    @property
    def name(self) -> str:
        return f"{self.label}.{DOMAIN}"


def generate(count: int) -> list[Record]:
    """A zone of ``count`` record sets of mixed types, as a corporate zone has them."""
    records: list[Record] = [Record("ns1", "A", 3600, ("127.0.0.1",))]
    for n in range(count - 1):
        kind = n % 10
        if kind < 6:
            records.append(Record(f"host{n}", "A", 300, (str(ipaddress.IPv4Address(0x0A000000 + n)),)))
        elif kind == 6:
            records.append(Record(f"alias{n}", "CNAME", 300, (f"host{n - 6}.{DOMAIN}",)))
        elif kind == 7:
            records.append(Record(f"txt{n}", "TXT", 300, (f'"id={n}" "owner=team{n % 7}"',)))
        elif kind == 8:
            records.append(Record(f"v6-{n}", "AAAA", 300, (str(ipaddress.IPv6Address(f"fd00::{n:x}")),)))
        else:
            records.append(
                Record(f"_svc{n}._tcp", "SRV", 300, (f"10 5 {1024 + n % 6000} host{n - 9}.{DOMAIN}",))
            )
    return records


def change_one_percent(records: list[Record], percent: float) -> tuple[list[Record], dict[str, int]]:
    """The next version of the zone: a third of the changes updated, a third deleted, a third new."""
    changes = max(3, int(len(records) * percent / 100))
    step = len(records) // changes
    picked = list(range(0, step * changes, step))[:changes]
    updated = set(picked[0::3])
    deleted = set(picked[1::3])
    added = changes - len(updated) - len(deleted)
    after: list[Record] = []
    for index, record in enumerate(records):
        if index in deleted:
            continue
        if index in updated:
            if record.rtype == "A":
                record = Record(record.label, "A", record.ttl, ("192.0.2.1",))
            else:
                record = Record(record.label, record.rtype, record.ttl * 2, record.values)
        after.append(record)
    after.extend(Record(f"new{n}", "A", 60, (f"198.51.100.{n % 250 + 1}",)) for n in range(added))
    return after, {"UPSERT": len(updated), "DELETE": len(deleted), "CREATE": added}


def zone_file(records: list[Record], serial: int) -> str:
    head = [
        f"$ORIGIN {DOMAIN}",
        f"@ 3600 IN SOA ns1.{DOMAIN} hostmaster.{DOMAIN} {serial} 7200 900 1209600 300",
        f"@ 3600 IN NS ns1.{DOMAIN}",
    ]
    lines = [line for record in records for line in record.zone_lines()]
    return "\n".join([*head, *lines]) + "\n"


# -- masters ---------------------------------------------------------------------------------------


@contextmanager
def nsd(text: str) -> Iterator[MasterAddress]:
    from bot.local.dns_master import nsd_master

    with (
        tempfile.TemporaryDirectory(prefix="opsbot-dns-bench-") as tmp,
        nsd_master(Path(tmp), {DOMAIN: text}, timeout=60) as address,
    ):
        yield address


@contextmanager
def local_master(text: str) -> Iterator[MasterAddress]:
    from bot.local.dns_master import LocalMaster

    with LocalMaster(text, DOMAIN) as master:
        yield master.address


# -- Route 53 --------------------------------------------------------------------------------------


def hosted_zone_with(records: list[Record]) -> str:
    """A moto hosted zone holding ``records``, filled through moto's backend (see the module docstring)."""
    from moto.route53.models import route53_backends

    from bot.aws.clients import client

    response = client("route53").create_hosted_zone(Name=DOMAIN, CallerReference=f"bench-{time.time_ns()}")
    zone_id = str(response["HostedZone"]["Id"]).rsplit("/", 1)[-1]
    zone = route53_backends["123456789012"]["aws"].zones[zone_id]
    for record in records:
        item = {
            "Name": record.name,
            "Type": record.rtype,
            "TTL": record.ttl,
            "ResourceRecords": list(record.values),
        }
        zone.add_rrset(item)
        # moto accepts a DELETE only of what its journal shows was created.
        journal = {**item, "ResourceRecords": [{"Value": v} for v in record.values]}
        zone.rr_changes.append({"Action": "CREATE", "ResourceRecordSet": journal})
    return zone_id


class Calls:
    """Counts Route 53 requests by operation."""

    def __init__(self) -> None:
        from bot.aws.clients import client
        from bot.aws.route53 import change_client

        self.counts: dict[str, int] = {}
        for route53_client in (client("route53"), change_client()):  # change batches have their own client
            route53_client.meta.events.register("before-call.route53.*", self._count)

    def _count(self, event_name: str, **_: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        self.counts[operation] = self.counts.get(operation, 0) + 1

    def snapshot(self) -> dict[str, int]:
        return dict(self.counts)

    def since(self, before: dict[str, int], operation: str) -> int:
        return self.counts.get(operation, 0) - before.get(operation, 0)


# -- one size --------------------------------------------------------------------------------------


def run_size(size: int, percent: float, master_kind: str) -> dict[str, Any]:
    from bot.aws.clients import client
    from bot.aws.state import StateTable, create_state_table
    from bot.core.dns.commands import mirror

    before = generate(size)
    after, expected = change_one_percent(before, percent)
    text = zone_file(after, SERIAL)
    ours_zone, original_zone = hosted_zone_with(before), hosted_zone_with(before)
    create_state_table("opsbot-state")
    state = StateTable("opsbot-state")
    calls = Calls()
    serve = nsd if master_kind == "nsd" else local_master
    with serve(text) as address:
        zone = ZoneConfig(domain=DOMAIN, master=address, zone_id=ours_zone, timeout=30, max_delete_percent=5)
        now = datetime.now(UTC)
        state.put_sync_state(
            zone.state_key,
            {"serial": SERIAL - 1, "status": "ok", "synced_at": (now - timedelta(minutes=15)).isoformat()},
        )
        snapshot = calls.snapshot()
        clock = time.perf_counter()
        result = mirror(zone, state=state, now=now)
        total = time.perf_counter() - clock
        if result.status != "synced" or result.plan is None or result.result is None:
            raise SystemExit(f"the mirror did not sync: {result.status}: {result.message}")
        plan = result.plan
        ours_calls = calls.since(snapshot, "ChangeResourceRecordSets")
        pages = calls.since(snapshot, "ListResourceRecordSets")
        full_requests = sum(calls.since(snapshot, op) for op in calls.counts)

        # The original: one ChangeResourceRecordSets per change, then one for the SOA.
        snapshot = calls.snapshot()
        clock = time.perf_counter()
        for change in plan.changes:
            client("route53").change_resource_record_sets(
                HostedZoneId=original_zone, ChangeBatch={"Changes": [change.to_route53()]}
            )
        soa = next(i for i in client("route53").list_resource_record_sets(HostedZoneId=original_zone, StartRecordName=DOMAIN, StartRecordType="SOA", MaxItems="1")["ResourceRecordSets"] if i["Type"] == "SOA")  # fmt: skip
        client("route53").change_resource_record_sets(
            HostedZoneId=original_zone,
            ChangeBatch={"Changes": [{"Action": "UPSERT", "ResourceRecordSet": soa}]},
        )
        original_seconds = time.perf_counter() - clock
        original_calls = calls.since(snapshot, "ChangeResourceRecordSets")

        snapshot = calls.snapshot()
        clock = time.perf_counter()
        second = mirror(zone, state=state, now=now + timedelta(minutes=15))
        second_seconds = time.perf_counter() - clock
        second_calls = sum(calls.since(snapshot, op) for op in calls.counts)

        incremental = run_incremental(before, address, state, calls, now)
        same = held_records(ours_zone) == held_records(incremental["zone_id"])
    return {
        "size": size,
        "master": master_kind,
        "expected": expected,
        "counts": plan.counts(),
        "changes": len(plan.changes),
        "batches": len(plan.batches),
        "timings": result.timings,
        "total": total,
        "records": result.plan.master_records,
        "pages": pages,
        "ours_calls": ours_calls,
        "original_calls": original_calls,
        "original_seconds": original_seconds,
        "second": second,
        "second_seconds": second_seconds,
        "second_calls": second_calls,
        "full_requests": full_requests,
        "incremental": incremental,
        "same_result": same,
    }


def held_records(zone_id: str) -> set[tuple[str, str, int, tuple[str, ...]]]:
    """What a moto hosted zone holds (its backend objects: reading 50,000 through the API takes a minute)."""
    from moto.route53.models import route53_backends

    zone = route53_backends["123456789012"]["aws"].zones[zone_id]
    return {
        (
            rrset.name.rstrip(".").lower() + ".",
            rrset.type,
            int(rrset.ttl or 0),
            tuple(sorted(map(str, rrset.records))),
        )
        for rrset in zone.rrsets
        if rrset.type != "SOA"  # its serial is set by each sync, the same way
    }


def run_incremental(
    before: list[Record], address: MasterAddress, state: Any, calls: Calls, now: datetime
) -> dict[str, Any]:
    """The scheduled run after a serial change, on a zone whose earlier sync kept its snapshot."""
    from bot.core.dns import snapshot_store
    from bot.core.dns.commands import mirror
    from bot.core.dns.records import hosted_zone

    zone_id = hosted_zone_with(before)
    zone = ZoneConfig(domain=DOMAIN, master=address, zone_id=zone_id, timeout=30, max_delete_percent=5)
    # What the earlier sync kept: the hosted zone as it left it (record sets as ListResourceRecordSets
    # returns them; the SOA is read again by every incremental run).
    items = [
        {
            "Name": record.name,
            "Type": record.rtype,
            "TTL": record.ttl,
            "ResourceRecords": [{"Value": value} for value in record.values],
        }
        for record in before
    ]
    snapshot_store.save(state, zone, hosted_zone(DOMAIN, items), serial=SERIAL - 1)
    earlier = (now - timedelta(minutes=15)).isoformat()
    state.put_sync_state(
        zone.state_key, {"serial": SERIAL - 1, "status": "ok", "synced_at": earlier, "checked_at": earlier}
    )
    snapshot = calls.snapshot()
    clock = time.perf_counter()
    result = mirror(zone, state=state, now=now)
    seconds = time.perf_counter() - clock
    if result.status != "synced" or result.plan is None or result.mode != "incremental":
        raise SystemExit(
            f"the incremental run did not sync: {result.status} ({result.mode}): {result.message}"
        )
    return {
        "zone_id": zone_id,
        "seconds": seconds,
        "timings": result.timings,
        "requests": {op: calls.since(snapshot, op) for op in calls.counts if calls.since(snapshot, op)},
        "batches": len(result.plan.batches),
        "changes": len(result.plan.changes),
        "effects": result.plan.effects(),
    }


def report(r: dict[str, Any]) -> None:
    t = r["timings"]
    counts = r["counts"]
    print(
        f"\nzone of {r['size']:,} record sets, {r['changes']} changed ({counts['CREATE']} created, "
        f"{counts['UPSERT']} updated, {counts['DELETE']} deleted); master: {r['master']}"
    )
    print(f"  SOA query                        {t.soa_query * 1000:9.1f} ms")
    print(f"  transfer (AXFR)                  {t.transfer:9.2f} s   {r['records']:,} record sets")
    print(f"  read Route 53 (moto)             {t.route53_read:9.2f} s   {r['pages']} pages of record sets")
    print(f"  plan                             {t.plan:9.2f} s")
    print(
        f"  apply                            {t.apply:9.2f} s   {r['ours_calls']} ChangeResourceRecordSets "
        f"({r['batches']} batch{'es' if r['batches'] != 1 else ''} + SOA serial)"
    )
    print(f"  whole scheduled run              {r['total']:9.2f} s")
    print(
        f"  original, one request per change {r['original_seconds']:9.2f} s   {r['original_calls']} "
        "ChangeResourceRecordSets (changes + SOA)"
    )
    ratio = r["original_calls"] / max(1, r["ours_calls"])
    floor_original = r["original_calls"] / ROUTE53_REQUESTS_PER_SECOND
    floor_ours = r["ours_calls"] / ROUTE53_REQUESTS_PER_SECOND
    print(
        f"  -> {ratio:.0f}x fewer change requests; at Route 53's {ROUTE53_REQUESTS_PER_SECOND} requests/s the "
        f"original needs at least {floor_original:.0f} s of requests, opsbot {floor_ours:.1f} s"
    )
    second = r["second"]
    print(
        f"  second run                       {r['second_seconds'] * 1000:9.1f} ms  status {second.status}, "
        f"{second.soa_queries} SOA query, transferred: {second.transferred}, Route 53 requests: {r['second_calls']}"
    )
    inc = r["incremental"]
    it = inc["timings"]
    total = sum(inc["requests"].values())
    detail = ", ".join(f"{count} {op}" for op, count in sorted(inc["requests"].items()))
    print(
        f"  incremental run (snapshot)       {inc['seconds']:9.2f} s   transfer {it.transfer:.2f} s, plan "
        f"{it.plan:.2f} s, apply {it.apply:.2f} s; {inc['changes']} changes in {inc['batches']} batches"
    )
    verdict = "PASS" if total <= MAX_INCREMENTAL_REQUESTS and r["same_result"] else "FAIL"
    print(
        f"  -> Route 53 requests, reads included: incremental {total} ({detail}) against {r['full_requests']} "
        f"for the full read; target <= {MAX_INCREMENTAL_REQUESTS}: {verdict}; same zone as the full run: "
        f"{r['same_result']}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="zones of 2,000 and 10,000 record sets")
    parser.add_argument("--sizes", default="", help="comma-separated zone sizes (default 10000,50000)")
    parser.add_argument("--percent", type=float, default=1.0, help="share of record sets changed (default 1)")
    parser.add_argument("--master", choices=["auto", "nsd", "local"], default="auto")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s] or ([2000, 10000] if args.quick else [10000, 50000])
    from bot.local.dns_master import nsd_binary

    have_nsd = nsd_binary() is not None
    master = args.master if args.master != "auto" else ("nsd" if have_nsd else "local")

    os.environ.update(
        {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}
    )  # fmt: skip
    os.environ.pop("AWS_ENDPOINT_URL", None)
    from moto import mock_aws

    from bot.aws import clients

    shown = ", ".join(f"{s:,}" for s in sizes)
    print(f"DNS mirror benchmark: sizes {shown}; {args.percent:g}% changed; master {master}")
    failures = 0
    for size in sizes:
        with mock_aws():
            clients.clear_caches()
            result = run_size(size, args.percent, master)
            clients.clear_caches()
        report(result)
        second = result["second"]
        if result["ours_calls"] >= result["original_calls"] or second.transferred or result["second_calls"]:
            failures += 1
        incremental_requests = sum(result["incremental"]["requests"].values())
        if incremental_requests > MAX_INCREMENTAL_REQUESTS or not result["same_result"]:
            failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
