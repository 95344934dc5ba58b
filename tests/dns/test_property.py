"""Property: applying a plan to Route 53 yields the master zone (modulo what is left alone), after which a
second plan is empty. Route 53 is played by a strict model of its documented behaviour, and (fewer
examples) by moto."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.dns import names
from bot.core.dns.plan import ROUTE53_LIMITS, Limits, Thresholds, make_plan, validate
from bot.core.dns.records import MasterZone, RecordSet, hosted_zone
from tests.dns.support import FakeRoute53
from tests.dns.zones import ORIGIN, master_zones, route53_sides
from tests.support.properties import examples

UNGUARDED = Thresholds(max_update_percent=100, max_delete_percent=100, min_records=0)


def _left_alone_keys(plan: Any) -> set[tuple[str, str]]:
    return {(item.name, item.rtype) for item in plan.left_alone if item.side == "master"}


def _untouched(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the mirror must never change: apex SOA/NS, aliases, routing-policy record sets."""
    return sorted(
        (
            item
            for item in items
            if "AliasTarget" in item
            or "SetIdentifier" in item
            or (item["Name"] == ORIGIN and item["Type"] in ("SOA", "NS"))
        ),
        key=lambda item: (item["Name"], item["Type"]),
    )


def check_round(
    master: MasterZone,
    listing_before: list[dict[str, Any]],
    apply_batch: Any,
    listing: Any,
    ignore_ttl: bool,
    limits: Limits = ROUTE53_LIMITS,
) -> None:
    hosted = hosted_zone(ORIGIN, listing_before)
    plan = make_plan(master, hosted, ignore_ttl=ignore_ttl, thresholds=UNGUARDED, limits=limits)
    assert validate(hosted, plan.batches, limits) == []
    for batch in plan.batches:
        apply_batch(batch.to_route53("property test"))
    after_items = listing()
    after = hosted_zone(ORIGIN, after_items)
    # The master's records, except those left alone: there Route 53 keeps what it held (if anything).
    left_alone = _left_alone_keys(plan)
    before = {item.record.key: item.record for item in hosted.records}
    expected: dict[tuple[str, str], RecordSet] = {
        record.key: record for record in master.records if record.key not in left_alone
    }
    expected.update({key: before[key] for key in left_alone if key in before})
    got = {item.record.key: item.record for item in after.records}
    if ignore_ttl:
        assert {k: v.values for k, v in got.items()} == {k: v.values for k, v in expected.items()}
    else:
        assert got == expected
    assert _untouched(after_items) == _untouched(listing_before)
    second = make_plan(master, after, ignore_ttl=ignore_ttl, thresholds=UNGUARDED, limits=limits)
    assert second.empty, [c.summary() for c in second.changes]


@settings(
    max_examples=examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data(), st.booleans(), st.sampled_from([ROUTE53_LIMITS, Limits(max_elements=4)]))
def test_plan_then_apply_yields_the_master_zone(
    data: st.DataObject, ignore_ttl: bool, limits: Limits
) -> None:
    """Also with tiny requests: large groups are split, UPSERTs become DELETE + CREATE, and record sets too
    large even for that are left alone."""
    master = data.draw(master_zones())
    side = data.draw(route53_sides(master))
    fake = FakeRoute53.with_defaults(ORIGIN)
    for item in side.items:
        fake.put_raw(item)
    check_round(master, fake.listing(), fake.change, fake.listing, ignore_ttl, limits)


@settings(
    max_examples=examples(12),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_plan_then_apply_through_moto(data: st.DataObject) -> None:
    from moto import mock_aws

    from bot.aws import clients
    from bot.aws.clients import client
    from bot.aws.route53 import iter_record_sets
    from tests.dns.support import create_hosted_zone

    master = data.draw(master_zones())
    side = data.draw(route53_sides(master))
    with mock_aws():
        clients.clear_caches()
        zone_id = create_hosted_zone(ORIGIN)
        # moto stores names as sent and compares them literally (AWS normalises them), so the records are
        # created with names spelled the way opsbot spells them; the strict model covers AWS's spelling.
        plain = [
            {**item, "Name": names.encode_route53(names.route53_to_canonical(item["Name"]))}
            for item in side.items
            if "SetIdentifier" not in item
        ]
        for item in plain:
            client("route53").change_resource_record_sets(
                HostedZoneId=zone_id,
                ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": item}]},
            )

        def apply_batch(batch: dict[str, Any]) -> None:
            client("route53").change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch=batch)

        before = list(iter_record_sets(zone_id))
        check_round(master, before, apply_batch, lambda: list(iter_record_sets(zone_id)), ignore_ttl=False)
    clients.clear_caches()
