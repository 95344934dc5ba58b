"""Incremental sync: plans against the snapshot of the last sync, proven by Route 53's exact DELETE check.

moto accepts a DELETE that does not match what it holds and applies half of a failing batch, so the
refusal is tested against the strict Route 53 model the other DNS tests replay (``FakeRoute53``): as a
property on pure plans, and end to end as a gate in front of moto (``StrictGate``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.aws import route53
from bot.core.dns import names, snapshot, snapshot_store
from bot.core.dns.commands import mirror
from bot.core.dns.plan import Action, Plan, Thresholds, make_plan
from bot.core.dns.records import HostedZone, MasterZone, RecordSet, hosted_zone, master_zone_from_text
from bot.errors import AwsError
from bot.local.dns_master import zone_text
from tests.dns.conftest import BASE_RECORDS, DOMAIN, ZoneEnv
from tests.dns.support import FakeRoute53, InvalidChangeBatch, list_all, run_nsd
from tests.dns.test_nsd import big_zone
from tests.dns.test_service import CallCounter, managed
from tests.dns.zones import ORIGIN, master_zones, route53_sides
from tests.support.properties import examples

UNGUARDED = Thresholds(max_update_percent=100, max_delete_percent=100, min_records=0)


def same_plan(a: Plan, b: Plan) -> list[tuple[Any, ...]]:
    """A plan's changes and batches as Route 53 reads them: a name may be spelled ``*`` (as opsbot sends
    it) or ``\\052`` (as Route 53 lists it), which Route 53 takes as the same name."""

    def shape(plan: Plan) -> list[tuple[Any, ...]]:
        return [
            (
                batch.number,
                tuple(
                    (c.action, c.record, names.route53_to_canonical(c.wire_name), c.values, c.previous)
                    for c in batch.changes
                ),
            )
            for batch in plan.batches
        ]

    assert shape(a) == shape(b)
    assert (a.guards, a.route53_records, a.left_alone) == (b.guards, b.route53_records, b.left_alone)
    return shape(a)


def held(hosted: HostedZone) -> dict[tuple[str, str], RecordSet]:
    return {item.record.key: item.record for item in hosted.records}


# -- pure: the snapshot --------------------------------------------------------------------------


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_snapshot_reads_back_as_the_hosted_zone_it_was(data: st.DataObject) -> None:
    master = data.draw(master_zones())
    fake = FakeRoute53.with_defaults(ORIGIN)
    for item in data.draw(route53_sides(master)).items:  # odd spellings, aliases, routing policies
        fake.put_raw(item)
    hosted = hosted_zone(ORIGIN, fake.listing())
    blob = snapshot.encode(hosted, "Z1")
    back = snapshot.decode(blob, origin=ORIGIN, zone_id="Z1", expected_digest=snapshot.digest(blob))
    assert sorted(back.records, key=lambda r: r.record.key) == sorted(
        hosted.records, key=lambda r: r.record.key
    )
    assert (back.occupied, back.left_alone, back.soa, back.serial, back.warnings) == (
        hosted.occupied,
        hosted.left_alone,
        hosted.soa,
        hosted.serial,
        hosted.warnings,
    )


def test_a_damaged_or_foreign_snapshot_is_refused() -> None:
    fake = FakeRoute53.with_defaults(ORIGIN)
    fake.put_raw(
        {"Name": f"www.{ORIGIN}", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "10.0.0.1"}]}
    )
    blob = snapshot.encode(hosted_zone(ORIGIN, fake.listing()), "Z1")
    sha = snapshot.digest(blob)
    damaged = blob[:-5] + bytes(b ^ 0xFF for b in blob[-5:])
    with pytest.raises(snapshot.SnapshotError, match="digest"):
        snapshot.decode(damaged, origin=ORIGIN, zone_id="Z1", expected_digest=sha)
    with pytest.raises(snapshot.SnapshotError, match="digest"):
        snapshot.decode(blob[: len(blob) // 2], origin=ORIGIN, zone_id="Z1", expected_digest=sha)
    with pytest.raises(snapshot.SnapshotError, match=r"not .* in Z2"):
        snapshot.decode(blob, origin=ORIGIN, zone_id="Z2", expected_digest=sha)
    # Bytes that match their digest but are not a snapshot (another format, say).
    other = b"something else"
    with pytest.raises(snapshot.SnapshotError, match="format"):
        snapshot.decode(other, origin=ORIGIN, zone_id="Z1", expected_digest=snapshot.digest(other))


# -- pure: incremental plan = full-read plan; a hand edit it touches is refused ----------------------


def _next_version(draw: st.DrawFn, master: MasterZone) -> MasterZone:
    """The master's next serial: some record sets gone, some with a new TTL or fewer values, new names."""
    records: list[RecordSet] = []
    for record in master.records:
        fate = draw(st.sampled_from(["same", "same", "same", "ttl", "values", "gone"]))
        if fate == "gone":
            continue
        if fate == "ttl":
            record = RecordSet(record.name, record.rtype, record.ttl + 1, record.values)
        elif fate == "values" and len(record.values) > 1:
            record = RecordSet(record.name, record.rtype, record.ttl, record.values[1:])
        records.append(record)
    taken = {record.name for record in master.records}
    extra = draw(master_zones())
    records.extend(record for record in extra.records if record.name not in taken)
    if draw(st.booleans()):
        records.append(RecordSet(f"handmade.{ORIGIN}", "A", 60, ("10.7.7.7",)))
    return MasterZone(ORIGIN, (master.serial or 0) + 1, tuple(records), master.left_alone)


def _hand_edit(draw: st.DrawFn, fake: FakeRoute53) -> tuple[str, str] | None:
    """One edit made in Route 53 apart from the mirror (or none): a TTL changed, a record set deleted, or
    one added."""
    editable = [
        key
        for key, item in fake.items.items()
        if not key[2] and "AliasTarget" not in item and not (key[0] == ORIGIN and key[1] in ("SOA", "NS"))
    ]
    kind = draw(st.sampled_from(["none", "ttl", "delete", "add"]))
    if kind == "add" and (f"handmade.{ORIGIN}", "A", "") not in fake.items:
        fake.put_raw(
            {"Name": f"handmade.{ORIGIN}", "Type": "A", "TTL": 30, "ResourceRecords": [{"Value": "10.6.6.6"}]}
        )
        return (f"handmade.{ORIGIN}", "A")
    if kind in ("ttl", "delete") and editable:
        key = draw(st.sampled_from(sorted(editable)))
        if kind == "delete":
            del fake.items[key]
        else:
            item = copy.deepcopy(fake.items[key])
            item["TTL"] = int(item["TTL"]) + 3
            fake.items[key] = item
        return (key[0], key[1])
    return None


@pytest.mark.slow  # 150 zones, each planned in full and incrementally, applied, hand-edited
@settings(
    max_examples=examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data(), st.booleans())
def test_the_incremental_plan_is_the_full_read_plan_and_hand_edits_are_refused(
    data: st.DataObject, ignore_ttl: bool
) -> None:
    thresholds = UNGUARDED
    first = data.draw(master_zones())
    fake = FakeRoute53.with_defaults(ORIGIN)
    for item in data.draw(route53_sides(first)).items:
        fake.put_raw(item)
    # The first sync: a full read, a plan, its batches; what is remembered is computed, not read.
    before = hosted_zone(ORIGIN, fake.listing())
    plan = make_plan(first, before, ignore_ttl=ignore_ttl, thresholds=thresholds)
    for batch in plan.batches:
        fake.change(batch.to_route53("first sync"))
    remembered = snapshot.after_batches(before, plan.batches)
    read = hosted_zone(ORIGIN, fake.listing())
    assert held(remembered) == held(read)
    blob = snapshot.encode(remembered, "Z1")
    remembered = snapshot.decode(blob, origin=ORIGIN, zone_id="Z1", expected_digest=snapshot.digest(blob))

    second = data.draw(st.composite(_next_version)(first))
    edited = data.draw(st.composite(_hand_edit)(fake))
    incremental = make_plan(second, remembered, ignore_ttl=ignore_ttl, thresholds=thresholds, exact=True)
    assert not any(c.action is Action.UPSERT for c in incremental.changes)
    if edited is None:
        # Nothing changed apart from the mirror: the same plan as after reading Route 53 in full.
        full = make_plan(
            second,
            hosted_zone(ORIGIN, fake.listing()),
            ignore_ttl=ignore_ttl,
            thresholds=thresholds,
            exact=True,
        )
        same_plan(incremental, full)
    touched = {c.record.key for c in incremental.changes}
    refused = False
    for batch in incremental.batches:
        try:
            fake.change(batch.to_route53("incremental"))
        except InvalidChangeBatch:
            refused = True
            break
    if edited is not None and edited in touched:
        assert refused, f"the hand edit of {edited} went through"
    if not refused:
        # Everything the plan touched is now as the master has it.
        now = held(hosted_zone(ORIGIN, fake.listing()))
        wanted = {record.key: record for record in second.records}
        left_alone = {(item.name, item.rtype) for item in incremental.left_alone}
        for key in touched - left_alone:
            if key in wanted:
                if ignore_ttl:
                    assert now[key].values == wanted[key].values
                else:
                    assert now[key] == wanted[key]
            elif key not in wanted:
                assert key not in now
    # The fallback after a refusal, or the periodic full check: a full read and plan finish the job.
    full = make_plan(
        second, hosted_zone(ORIGIN, fake.listing()), ignore_ttl=ignore_ttl, thresholds=thresholds
    )
    for batch in full.batches:
        fake.change(batch.to_route53("full"))
    assert make_plan(second, hosted_zone(ORIGIN, fake.listing()), ignore_ttl=ignore_ttl).empty


# -- end to end: moto behind Route 53's rules ------------------------------------------------------


class StrictGate:
    """Route 53's checks in front of moto: each ChangeResourceRecordSets is first replayed on a
    FakeRoute53 holding what moto holds; when the model refuses it, the call fails as AWS fails it
    (InvalidChangeBatch, nothing applied) and moto never sees it."""

    def __init__(self, zone_id: str, origin: str = DOMAIN) -> None:
        self.zone_id, self.origin = zone_id, origin
        self.refused: list[str] = []
        # Its own client: the reads it makes are not the mirror's (CallCounter counts the cached ones).
        self.reader = boto3.client("route53", region_name="us-east-1")
        route53.change_client().meta.events.register(
            "before-parameter-build.route53.ChangeResourceRecordSets", self._check
        )

    def _listing(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"HostedZoneId": self.zone_id}
        while True:
            page = self.reader.list_resource_record_sets(**kwargs)
            out.extend(page["ResourceRecordSets"])
            if not page["IsTruncated"]:
                return out
            kwargs["StartRecordName"], kwargs["StartRecordType"] = (
                page["NextRecordName"],
                page["NextRecordType"],
            )

    def _check(self, params: dict[str, Any], **_: Any) -> None:
        fake = FakeRoute53(self.origin, {})
        for item in self._listing():
            fake.put_raw(item)
        try:
            fake.change(params["ChangeBatch"])
        except InvalidChangeBatch as error:
            self.refused.append(str(error))
            raise ClientError(
                {"Error": {"Code": "InvalidChangeBatch", "Message": f"[{error}]"}}, "ChangeResourceRecordSets"
            ) from None


@pytest.fixture
def gate(zone_env: ZoneEnv) -> Iterator[StrictGate]:
    yield StrictGate(zone_env.zone.zone_id)


def _upsert(zone_id: str, name: str, rtype: str, ttl: int, values: list[str]) -> None:
    boto3.client("route53", region_name="us-east-1").change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Changes": [
                {
                    "Action": "UPSERT",
                    "ResourceRecordSet": {
                        "Name": name,
                        "Type": rtype,
                        "TTL": ttl,
                        "ResourceRecords": [{"Value": v} for v in values],
                    },
                }
            ]
        },
    )


def _expected(serial: int, records: list[str]) -> dict[tuple[str, str], RecordSet]:
    return {r.key: r for r in master_zone_from_text(zone_text(DOMAIN, serial, records), DOMAIN).records}


NEXT = [r for r in BASE_RECORDS if not r.startswith("mail ") and not r.startswith("sip ")] + [
    "mail 300 IN A 10.0.0.26",
    "new 60 IN A 10.0.0.7",
]


def test_a_serial_change_reads_route53s_soa_only_and_plans_as_a_full_read(
    zone_env: ZoneEnv, gate: StrictGate
) -> None:
    now = datetime(2024, 6, 1, tzinfo=UTC)
    assert mirror(zone_env.zone, state=zone_env.state, now=now).mode == "full"  # no snapshot yet
    first_state = zone_env.state.get_sync_state(zone_env.zone.state_key)
    assert first_state is not None
    hosted = hosted_zone(DOMAIN, list_all(zone_env.zone.zone_id))
    zone_env.set_records(101, NEXT)
    counter = CallCounter()
    result = mirror(zone_env.zone, state=zone_env.state, now=now + timedelta(hours=1))
    assert result.status == "synced" and result.mode == "incremental", result.message
    assert counter.calls.count("ListResourceRecordSets") == 1 and "GetHostedZone" not in counter.calls
    assert counter.count("ChangeResourceRecordSets") == 2  # one batch, then the SOA serial
    assert gate.refused == []
    assert managed(zone_env) == _expected(101, NEXT)
    # The plan a full read of Route 53 would have made.
    full = make_plan(
        master_zone_from_text(zone_text(DOMAIN, 101, NEXT), DOMAIN),
        hosted,
        last_serial=100,
        thresholds=zone_env.zone.thresholds,
        exact=True,
    )
    assert result.plan is not None
    shape = same_plan(result.plan, full)
    assert len(shape) == 1 and result.plan.effects() == {"created": 1, "updated": 1, "deleted": 1}
    # The sync is recorded; the full check still counts from the first sync, which read everything.
    state = zone_env.state.get_sync_state(zone_env.zone.state_key)
    assert state is not None and state["serial"] == 101 and state["mode"] == "incremental"
    assert state["checked_at"] == first_state["checked_at"]
    # And the next serial goes incremental again, from the snapshot this sync left.
    zone_env.set_records(102, [*NEXT, "later 60 IN A 10.0.0.8"])
    again = mirror(zone_env.zone, state=zone_env.state, now=now + timedelta(hours=2))
    assert again.mode == "incremental" and again.status == "synced", again.message
    assert managed(zone_env) == _expected(102, [*NEXT, "later 60 IN A 10.0.0.8"])


def test_a_hand_edit_the_plan_touches_is_refused_then_read_in_full(
    zone_env: ZoneEnv, gate: StrictGate
) -> None:
    now = datetime(2024, 6, 1, tzinfo=UTC)
    mirror(zone_env.zone, state=zone_env.state, now=now)
    _upsert(zone_env.zone.zone_id, "mail.example.com.", "A", 300, ["10.9.9.9"])  # by hand, in the console
    zone_env.set_records(101, NEXT)
    counter = CallCounter()
    result = mirror(zone_env.zone, state=zone_env.state, now=now + timedelta(hours=1))
    assert result.status == "synced" and result.mode == "full after refusal", result.message
    assert len(gate.refused) == 1 and "mail.example.com." in gate.refused[0]
    assert "refused batch 1 of the incremental sync" in result.message
    assert counter.count("GetHostedZone") == 1  # the full read
    assert managed(zone_env) == _expected(101, NEXT)
    state = zone_env.state.get_sync_state(zone_env.zone.state_key)
    assert state is not None and (state["status"], state["serial"], state["mode"]) == ("ok", 101, "full")
    # The full read left a snapshot of its own: the next serial is incremental again.
    # (Not back to BASE_RECORDS: moto refuses a CREATE that repeats one in its journal while any record
    # set sorts after it, even one deleted since; AWS does not.)
    later = [*NEXT, "later 60 IN A 10.0.0.8"]
    zone_env.set_records(102, later)
    again = mirror(zone_env.zone, state=zone_env.state, now=now + timedelta(hours=2))
    assert (again.status, again.mode, len(gate.refused)) == ("synced", "incremental", 1), again.message
    assert managed(zone_env) == _expected(102, later)


def test_an_edit_the_plan_does_not_touch_waits_for_the_periodic_full_check(
    zone_env: ZoneEnv, gate: StrictGate
) -> None:
    now = datetime(2024, 6, 1, tzinfo=UTC)
    mirror(zone_env.zone, state=zone_env.state, now=now)
    _upsert(zone_env.zone.zone_id, "www.example.com.", "A", 300, ["10.9.9.9"])
    zone_env.set_records(101, NEXT)
    first = mirror(zone_env.zone, state=zone_env.state, now=now + timedelta(hours=1))
    assert (first.status, first.mode) == ("synced", "incremental")
    assert managed(zone_env)[("www.example.com.", "A")].values == ("10.9.9.9",)
    # A serial change after full_check_hours (24 by default) since the last full read: a full read again,
    # although incremental syncs happened in between.
    zone_env.set_records(102, [*NEXT, "later 60 IN A 10.0.0.8"])
    counter = CallCounter()
    later = mirror(zone_env.zone, state=zone_env.state, now=now + timedelta(hours=25))
    assert (later.status, later.mode) == ("synced", "full"), later.message
    assert counter.count("ListResourceRecordSets") >= 1 and counter.count("GetHostedZone") == 1
    assert managed(zone_env) == _expected(102, [*NEXT, "later 60 IN A 10.0.0.8"])
    assert gate.refused == []


@pytest.mark.parametrize("damage", ["missing", "corrupt", "chunk missing", "other zone"])
def test_without_a_usable_snapshot_the_zone_is_read_in_full(
    zone_env: ZoneEnv, gate: StrictGate, damage: str
) -> None:
    now = datetime(2024, 6, 1, tzinfo=UTC)
    mirror(zone_env.zone, state=zone_env.state, now=now)
    pk = snapshot_store.snapshot_pk(zone_env.zone)
    manifest = zone_env.state.get(pk, snapshot_store.MANIFEST)
    assert manifest is not None and manifest["chunks"] == 1
    chunk = snapshot_store.chunk_sk(str(manifest["generation"]), 0)
    if damage == "missing":
        zone_env.state.delete(pk, snapshot_store.MANIFEST)
    elif damage == "chunk missing":
        zone_env.state.delete(pk, chunk)
    elif damage == "corrupt":
        data = snapshot_store._bytes(zone_env.state.get(pk, chunk)["data"])  # type: ignore[index]
        zone_env.state.put(pk, chunk, {"data": data[:-3] + b"xyz"})
    else:  # a snapshot of another hosted zone, copied over (its digest is right)
        other = snapshot.encode(HostedZone(DOMAIN, ()), "ZOTHER")
        zone_env.state.put(pk, chunk, {"data": other})
        zone_env.state.put(pk, snapshot_store.MANIFEST, {**manifest, "sha256": snapshot.digest(other)})
    zone_env.set_records(101, NEXT)
    counter = CallCounter()
    result = mirror(zone_env.zone, state=zone_env.state, now=now + timedelta(hours=1))
    assert (result.status, result.mode) == ("synced", "full"), result.message
    assert counter.count("GetHostedZone") == 1
    assert managed(zone_env) == _expected(101, NEXT)
    loaded, why = snapshot_store.load(zone_env.state, zone_env.zone)
    assert loaded is not None and why == ""  # the full sync kept a new one


def test_a_sync_that_fails_leaves_no_snapshot_behind(
    zone_env: ZoneEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime(2024, 6, 1, tzinfo=UTC)
    mirror(zone_env.zone, state=zone_env.state, now=now)
    zone_env.set_records(101, NEXT)

    def throttled(*_: Any, **__: Any) -> Any:
        raise AwsError("Route 53 is busy.", code="Throttling")

    with monkeypatch.context() as patched:
        patched.setattr(route53, "change_batch", throttled)
        failed = mirror(zone_env.zone, state=zone_env.state, now=now + timedelta(hours=1))
    assert failed.status == "failed" and failed.mode == "incremental"  # not a refusal: no full read
    assert snapshot_store.load(zone_env.state, zone_env.zone)[0] is None
    retried = mirror(zone_env.zone, state=zone_env.state, now=now + timedelta(hours=1, minutes=15))
    assert (retried.status, retried.mode) == ("synced", "full"), retried.message
    assert managed(zone_env) == _expected(101, NEXT)


def test_a_snapshot_larger_than_an_item_is_kept_in_chunks(
    zone_env: ZoneEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = zone_text(DOMAIN, 7, big_zone(3000))
    empty = HostedZone(DOMAIN, ())
    hosted = snapshot.after_batches(empty, make_plan(master_zone_from_text(text, DOMAIN), empty).batches)
    monkeypatch.setattr(snapshot_store, "CHUNK_BYTES", 10_000)
    assert snapshot_store.save(zone_env.state, zone_env.zone, hosted, serial=7)
    manifest = zone_env.state.get(snapshot_store.snapshot_pk(zone_env.zone), snapshot_store.MANIFEST)
    assert manifest is not None and manifest["chunks"] > 1
    loaded, _ = snapshot_store.load(zone_env.state, zone_env.zone)
    assert loaded is not None and held(loaded) == held(hosted)
    assert not snapshot_store.save(
        zone_env.state, zone_env.zone, hosted, serial=7
    )  # unchanged: not rewritten
    # A new generation replaces the old one, whose chunks are deleted.
    smaller = HostedZone(DOMAIN, hosted.records[:10])
    assert snapshot_store.save(zone_env.state, zone_env.zone, smaller, serial=8)
    old = str(manifest["generation"])
    assert (
        zone_env.state.get(snapshot_store.snapshot_pk(zone_env.zone), snapshot_store.chunk_sk(old, 0)) is None
    )


@pytest.mark.slow  # zone transfers from a real nsd
def test_incremental_sync_from_nsd(tmp_path: Path, zone_env: ZoneEnv, gate: StrictGate) -> None:
    """Real transfers: nsd serves 2,000 record sets, then the next serial with 1% changed."""
    records = [*BASE_RECORDS, *big_zone(2000)]
    changed = [line for line in records if not line.startswith(("host1 ", "host2 "))] + [
        "host1 300 IN A 10.44.0.1",
        "fresh 300 IN A 10.44.0.2",
    ]
    now = datetime(2024, 6, 1, tzinfo=UTC)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    with run_nsd(tmp_path / "one", {DOMAIN: zone_text(DOMAIN, 1, records)}) as address:
        first = mirror(zone_env.zone.with_changes(master=address), state=zone_env.state, now=now)
    assert first.status == "synced", first.message
    with run_nsd(tmp_path / "two", {DOMAIN: zone_text(DOMAIN, 2, changed)}) as address:
        counter = CallCounter()
        second = mirror(
            zone_env.zone.with_changes(master=address), state=zone_env.state, now=now + timedelta(hours=1)
        )
    assert (second.status, second.mode) == ("synced", "incremental"), second.message
    assert len(counter.calls) == 3  # the SOA, one batch, the SOA serial
    assert second.plan is not None and second.plan.effects() == {"created": 1, "updated": 1, "deleted": 1}
    assert managed(zone_env) == _expected(2, changed)
