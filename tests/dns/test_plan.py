from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.dns.plan import Action, Batch, Limits, Thresholds, make_plan, validate
from bot.core.dns.records import HostedZone, MasterZone, hosted_zone, master_zone_from_text
from tests.dns.support import SOA_VALUE
from tests.support.properties import examples

ORIGIN = "example.com."
# No share-of-the-zone guard: for tests about something else.
UNGUARDED = Thresholds(max_update_percent=100, max_delete_percent=100, min_records=0)


def master(records: list[str], serial: int = 10) -> MasterZone:
    head = [f"$ORIGIN {ORIGIN}", f"@ 3600 IN SOA ns1.example.net. hostmaster {serial} 7200 900 1209600 300"]
    return master_zone_from_text("\n".join([*head, "@ 3600 IN NS ns1.example.net.", *records]) + "\n", ORIGIN)


def rrset(name: str, rtype: str, ttl: int, *values: str, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "Name": name,
        "Type": rtype,
        "TTL": ttl,
        "ResourceRecords": [{"Value": v} for v in values],
    }
    item.update(extra)
    return item


def route53(*items: dict[str, Any], serial: int = 1) -> HostedZone:
    defaults = [
        rrset(ORIGIN, "NS", 172800, "ns-1.awsdns-1.org.", "ns-2.awsdns-2.net."),
        rrset(ORIGIN, "SOA", 900, SOA_VALUE.replace(" 1 ", f" {serial} ")),
    ]
    return hosted_zone(ORIGIN, [*defaults, *items])


def lines(plan: Any) -> list[str]:
    return [f"{c.action.value} {c.name} {c.rtype}" for c in plan.changes]


# -- normalisation: what must NOT produce changes --------------------------------------------------


def test_escaped_wildcard_matches_the_masters_wildcard() -> None:
    plan = make_plan(
        master(["* 300 IN A 10.0.0.9"]), route53(rrset("\\052.example.com.", "A", 300, "10.0.0.9"))
    )
    assert plan.empty


def test_in_zone_targets_are_not_rewritten() -> None:
    zone = master(
        [
            "www 300 IN CNAME web",
            "web 300 IN A 10.0.0.1",
            "@ 300 IN MX 10 mail",
            "mail 300 IN A 10.0.0.2",
            "_sip._tcp 300 IN SRV 10 60 5060 sip",
            "sip 300 IN A 10.0.0.3",
        ]
    )
    hosted = route53(
        rrset("www.example.com.", "CNAME", 300, "web.example.com"),
        rrset("web.example.com.", "A", 300, "10.0.0.1"),
        rrset("example.com.", "MX", 300, "10 MAIL.example.com."),
        rrset("mail.example.com.", "A", 300, "10.0.0.2"),
        rrset("_sip._tcp.example.com.", "SRV", 300, "10 60 5060 sip.example.com"),
        rrset("sip.example.com.", "A", 300, "10.0.0.3"),
    )
    assert make_plan(zone, hosted).empty


def test_txt_with_several_strings_and_quotes() -> None:
    zone = master(['txt 300 IN TXT "part one" "part \\"two\\""', 'spf 300 IN TXT "v=spf1" "-all"'])
    same = route53(
        rrset("txt.example.com.", "TXT", 300, '"part one" "part \\"two\\""'),
        rrset("spf.example.com.", "TXT", 300, 'v=spf1 "-all"'),
    )
    assert make_plan(zone, same).empty
    joined = route53(
        rrset("txt.example.com.", "TXT", 300, '"part one part \\"two\\""'),
        rrset("spf.example.com.", "TXT", 300, '"v=spf1 -all"'),
    )
    assert lines(make_plan(zone, joined)) == [
        "UPSERT spf.example.com. TXT",
        "UPSERT txt.example.com. TXT",
    ]


def test_value_order_and_case_do_not_matter() -> None:
    zone = master(["ns 300 IN NS b.example.net.", "ns 300 IN NS a.example.net."])
    hosted = route53(rrset("ns.example.com.", "NS", 300, "A.example.net", "b.EXAMPLE.net."))
    assert make_plan(zone, hosted).empty


def test_apex_soa_and_ns_are_left_to_route53() -> None:
    zone = master(["www 300 IN A 10.0.0.1"], serial=99)
    hosted = route53(rrset("www.example.com.", "A", 300, "10.0.0.1"))
    plan = make_plan(zone, hosted)
    assert plan.empty
    assert plan.master_serial == 99 and plan.route53_serial == 1


# -- the diff --------------------------------------------------------------------------------------


def test_create_update_delete() -> None:
    zone = master(["new 300 IN A 10.0.0.1", "changed 300 IN A 10.0.0.3", "ttl 600 IN A 10.0.0.4"])
    hosted = route53(
        rrset("changed.example.com.", "A", 300, "10.0.0.2"),
        rrset("ttl.example.com.", "A", 300, "10.0.0.4"),
        rrset("gone.example.com.", "A", 300, "10.0.0.5"),
    )
    plan = make_plan(zone, hosted)
    assert sorted(lines(plan)) == [
        "CREATE new.example.com. A",
        "DELETE gone.example.com. A",
        "UPSERT changed.example.com. A",
        "UPSERT ttl.example.com. A",
    ]
    assert plan.counts() == {"CREATE": 1, "UPSERT": 2, "DELETE": 1}
    ttl_change = next(c for c in plan.changes if c.name.startswith("ttl."))
    assert "(TTL was 300)" in ttl_change.summary()


def test_ignore_ttl() -> None:
    zone = master(["ttl 600 IN A 10.0.0.4", "both 600 IN A 10.0.0.6"])
    hosted = route53(
        rrset("ttl.example.com.", "A", 300, "10.0.0.4"), rrset("both.example.com.", "A", 300, "10.0.0.5")
    )
    plan = make_plan(zone, hosted, ignore_ttl=True)
    assert lines(plan) == ["UPSERT both.example.com. A"]
    assert plan.ttl_only_ignored == 1


def test_delete_repeats_what_route53_holds() -> None:
    hosted = route53(rrset("\\052.old.example.com.", "TXT", 60, '"b"', '"a"'))
    plan = make_plan(master(["x 300 IN A 10.0.0.1"]), hosted)
    delete = next(c for c in plan.changes if c.action is Action.DELETE)
    assert delete.wire_name == "\\052.old.example.com."
    assert delete.values == ('"b"', '"a"')
    assert delete.to_route53()["ResourceRecordSet"]["TTL"] == 60  # type: ignore[index]


def test_alias_and_routing_policies_are_left_alone() -> None:
    hosted = route53(
        rrset("app.example.com.", "A", 0, AliasTarget={"HostedZoneId": "Z1", "DNSName": "lb.example.net."}),
        rrset("geo.example.com.", "A", 60, "10.0.0.1", SetIdentifier="eu", Weight=10),
    )
    plan = make_plan(master(["www 300 IN A 10.0.0.1"]), hosted)
    assert lines(plan) == ["CREATE www.example.com. A"]
    reasons = {(item.name, item.reason.split(" ")[0]) for item in plan.left_alone}
    assert reasons == {("app.example.com.", "alias"), ("geo.example.com.", "routing")}


def test_master_records_that_clash_with_an_alias_are_left_alone() -> None:
    hosted = route53(rrset("app.example.com.", "A", 0, AliasTarget={"HostedZoneId": "Z1", "DNSName": "lb."}))
    plan = make_plan(master(["app 300 IN A 10.0.0.1", "app 300 IN TXT hi"]), hosted)
    assert lines(plan) == ["CREATE app.example.com. TXT"]
    clash = [i for i in plan.left_alone if i.side == "master"]
    assert [(i.name, i.rtype) for i in clash] == [("app.example.com.", "A")]


def test_unsupported_types_are_reported() -> None:
    plan = make_plan(master(['box 300 IN HINFO "PC" "Linux"', "* 300 IN NS ns.example.net."]), route53())
    assert plan.empty
    assert {(i.rtype, i.reason) for i in plan.left_alone} == {
        ("HINFO", "Route 53 does not support HINFO records"),
        ("NS", "Route 53 does not allow wildcard NS records"),
    }


def test_duplicates_returned_by_moto_are_left_alone() -> None:
    hosted = route53(
        rrset("dup.example.com.", "A", 300, "10.0.0.1"), rrset("dup.example.com.", "A", 300, "10.0.0.2")
    )
    plan = make_plan(master(["dup 300 IN A 10.0.0.3"]), hosted)
    assert plan.empty  # neither a CREATE over them nor a DELETE of one of them
    assert any("twice" in item.reason for item in plan.left_alone)


# -- batching --------------------------------------------------------------------------------------


def test_batches_respect_element_limits_and_upserts_count_twice() -> None:
    zone = master([f"h{n} 300 IN A 10.1.{n // 250}.{n % 250}" for n in range(1500)])
    plan = make_plan(zone, route53())
    assert [b.elements for b in plan.batches] == [1000, 500]
    # The same zone, all updates: 1,500 UPSERTs of one value each count 3,000.
    hosted = route53(*[rrset(f"h{n}.example.com.", "A", 300, "10.9.9.9") for n in range(1500)])
    upserts = make_plan(zone, hosted, thresholds=UNGUARDED)
    assert [len(b.changes) for b in upserts.batches] == [500, 500, 500]
    assert all(b.elements <= 1000 for b in upserts.batches)


def test_batches_respect_the_character_limit() -> None:
    value = "x" * 250
    zone = master([f't{n} 300 IN TXT "{value}"' for n in range(300)])
    plan = make_plan(zone, route53())
    assert all(b.chars <= 32000 for b in plan.batches)
    assert len(plan.batches) == 3  # 252 characters per value: 126 values per request


def test_changes_of_one_name_share_a_batch_and_deletes_come_first() -> None:
    zone = master(["swap 300 IN CNAME target.example.net."] + [f"h{n} 300 IN A 10.0.0.1" for n in range(3)])
    hosted = route53(rrset("swap.example.com.", "A", 300, "10.0.0.7"))
    plan = make_plan(zone, hosted, limits=Limits(max_elements=2), thresholds=UNGUARDED)
    swap_batches = {b.number for b in plan.batches for c in b.changes if c.name == "swap.example.com."}
    assert len(swap_batches) == 1
    swap = [c.action for b in plan.batches for c in b.changes if c.name == "swap.example.com."]
    assert swap == [Action.DELETE, Action.CREATE]
    assert validate(route53(rrset("swap.example.com.", "A", 300, "10.0.0.7")), plan.batches, Limits(2)) == []


def test_a_large_group_is_split_but_never_one_name_and_type() -> None:
    # At one name: A replaced (an UPSERT of 3 values counts 6 > 5, so DELETE 2 + CREATE 3), and two new
    # types of two values each: 9 elements, more than one request of 5 holds.
    zone = master(
        [f"big 300 IN A 10.0.0.{n}" for n in (1, 2, 3)]
        + ["big 300 IN AAAA fd00::1", "big 300 IN AAAA fd00::2", "big 300 IN TXT a", "big 300 IN TXT b"]
    )
    hosted = route53(rrset("big.example.com.", "A", 300, "10.0.9.1", "10.0.9.2"))
    limits = Limits(max_elements=5)
    plan = make_plan(zone, hosted, limits=limits)
    assert [[(c.action.value, c.rtype) for c in b.changes] for b in plan.batches] == [
        [("DELETE", "A"), ("CREATE", "A")],
        [("CREATE", "AAAA"), ("CREATE", "TXT")],
    ]
    assert validate(hosted, plan.batches, limits) == []


def test_an_upsert_too_large_for_a_request_becomes_delete_and_create_in_one_batch() -> None:
    # UPSERT of 6 values counts 12 > 10; deleting the 4 old values and creating the 6 new ones counts 10.
    zone = master([f"rr 300 IN A 10.0.0.{n}" for n in range(1, 7)] + ["other 300 IN A 10.0.1.1"])
    hosted = route53(rrset("rr.example.com.", "A", 300, *[f"10.0.9.{n}" for n in range(1, 5)]))
    plan = make_plan(zone, hosted, limits=Limits(max_elements=10))
    assert [[(c.action, c.name) for c in b.changes] for b in plan.batches] == [
        [(Action.CREATE, "other.example.com.")],
        [(Action.DELETE, "rr.example.com."), (Action.CREATE, "rr.example.com.")],
    ]
    assert plan.batches[1].elements == 10
    assert plan.guards == ()  # a record set replaced is not one deleted
    assert validate(hosted, plan.batches, Limits(max_elements=10)) == []


def test_what_route53_cannot_take_is_left_alone_and_route53_keeps_its_version() -> None:
    huge_txt = " ".join(['"' + "x" * 255 + '"'] * 16)  # 4,127 characters of value: AWS takes 4,000
    zone = master(
        [f"huge 300 IN TXT {huge_txt}", "wide 300 IN A 10.0.0.1", "wide 300 IN A 10.0.0.2"]
        + [f"wide 300 IN A 10.0.0.{n}" for n in range(3, 12)]
    )
    hosted = route53(
        rrset("huge.example.com.", "TXT", 300, '"old"'),
        rrset("wide.example.com.", "A", 300, "10.0.0.1"),
    )
    plan = make_plan(zone, hosted, limits=Limits(max_elements=10))
    assert plan.empty  # neither written nor deleted
    alone = {(i.name, i.reason.split(";")[0]) for i in plan.left_alone if i.side == "master"}
    assert alone == {
        ("huge.example.com.", "a value of 4,127 characters"),
        ("wide.example.com.", "too large for one Route 53 request"),
    }
    assert len(plan.warnings) == 2 and all("Route 53 keeps its own version" in w for w in plan.warnings)
    # Without a version in Route 53 there is nothing to keep, and nothing is created either.
    assert make_plan(zone, route53(), limits=Limits(max_elements=10)).empty


def test_fingerprint_identifies_the_changes() -> None:
    zone = master(["a 300 IN A 10.0.0.1"])
    assert make_plan(zone, route53()).fingerprint() == make_plan(zone, route53()).fingerprint()
    other = master(["a 300 IN A 10.0.0.2"])
    assert make_plan(zone, route53()).fingerprint() != make_plan(other, route53()).fingerprint()


# -- guards ----------------------------------------------------------------------------------------


def test_guard_empty_master() -> None:
    plan = make_plan(master([]), route53(rrset("a.example.com.", "A", 300, "10.0.0.1")), thresholds=UNGUARDED)
    assert [g.code for g in plan.guards] == ["empty"]
    assert "would delete the 1 record set opsbot manages" in plan.guards[0].message


def test_an_empty_master_blocks_nothing_when_nothing_would_be_deleted() -> None:
    """A zone with nothing to mirror on either side is in sync; refusing it failed every scheduled run."""
    alias = rrset(
        "app.example.com.",
        "A",
        0,
        AliasTarget={"HostedZoneId": "Z2", "DNSName": "lb.example.net.", "EvaluateTargetHealth": False},
    )
    del alias["TTL"], alias["ResourceRecords"]
    for hosted in (route53(), route53(alias)):
        plan = make_plan(master([]), hosted)
        assert plan.empty and plan.guards == () and not plan.blocked


@pytest.mark.parametrize(
    ("serial", "last", "blocked"),
    [
        (9, 10, True),
        (10, 10, False),
        (11, 10, False),
        (5, 2**32 - 5, False),
        (2**32 - 5, 5, True),
        (0, 2**31, True),
    ],
)
def test_guard_serial_went_backwards_uses_rfc1982(serial: int, last: int, blocked: bool) -> None:
    plan = make_plan(master(["a 300 IN A 10.0.0.1"], serial=serial), route53(), last_serial=last)
    assert ("serial-backwards" in [g.code for g in plan.guards]) is blocked


def hosts(count: int) -> HostedZone:
    return route53(*[rrset(f"h{n}.example.com.", "A", 300, "10.0.0.1") for n in range(count)])


def after(count: int, *, deleted: int = 0, updated: int = 0) -> MasterZone:
    """The master of a zone of ``count`` hosts (``hosts``) with the first ones deleted, the next updated."""
    return master(
        [
            f"h{n} 300 IN A {'10.0.0.2' if n < deleted + updated else '10.0.0.1'}"
            for n in range(deleted, count)
        ]
    )


def codes(plan: Any) -> list[str]:
    return [guard.code for guard in plan.guards]


def test_a_small_stale_zone_is_not_refused() -> None:
    """Issue 10: the first sync of a 3-record zone whose master dropped 2 of them (67%) was refused. As in
    octoDNS, the shares count only from 10 record sets."""
    plan = make_plan(after(3, deleted=2), hosts(3))
    assert plan.counts()["DELETE"] == 2 and plan.guards == () and not plan.blocked
    assert make_plan(after(9, deleted=9 - 1, updated=1), hosts(9)).guards == ()


def test_a_big_zone_over_either_share_is_refused() -> None:
    assert codes(make_plan(after(10, deleted=4), hosts(10))) == ["too-many-deletes"]
    assert make_plan(after(10, deleted=3), hosts(10)).guards == ()  # exactly 30% is allowed
    assert codes(make_plan(after(10, updated=4), hosts(10))) == ["too-many-updates"]
    assert make_plan(after(10, updated=3), hosts(10)).guards == ()
    both = make_plan(after(20, deleted=7, updated=7), hosts(20))
    assert codes(both) == ["too-many-updates", "too-many-deletes"]
    assert "updates 7 of the 20 record sets in Route 53 (35%" in both.guards[0].message


def test_the_guard_thresholds_are_configurable() -> None:
    stale = after(3, deleted=2)
    assert codes(make_plan(stale, hosts(3), thresholds=Thresholds(min_records=3))) == ["too-many-deletes"]
    assert make_plan(after(10, deleted=4), hosts(10), thresholds=Thresholds(min_records=11)).guards == ()
    loose = Thresholds(max_update_percent=50, max_delete_percent=50)
    assert make_plan(after(10, deleted=4, updated=4), hosts(10), thresholds=loose).guards == ()
    strict = Thresholds(max_update_percent=0, max_delete_percent=0, min_records=0)
    assert codes(make_plan(after(1, updated=1), hosts(1), thresholds=strict)) == ["too-many-updates"]


def test_a_record_set_replaced_counts_as_updated_not_deleted() -> None:
    """A record set too large for an UPSERT is replaced by DELETE + CREATE in one request: an update."""
    # Two values replace one: an UPSERT counts 2 x 2 elements, DELETE + CREATE 1 + 2; the limit is 3.
    grown = [f"h{n} 300 IN A 10.0.0.{value}" for n in range(10) for value in (2, 3)]
    hosted = hosts(10)
    plan = make_plan(master(grown), hosted, limits=Limits(max_elements=3))
    assert plan.counts()["DELETE"] == 10 and plan.counts()["CREATE"] == 10
    assert codes(plan) == ["too-many-updates"]


@given(
    size=st.integers(min_value=0, max_value=30),
    data=st.data(),
    thresholds=st.builds(
        Thresholds,
        max_update_percent=st.sampled_from([0.0, 10.0, 30.0, 50.0, 100.0]),
        max_delete_percent=st.sampled_from([0.0, 10.0, 30.0, 50.0, 100.0]),
        min_records=st.integers(min_value=0, max_value=15),
    ),
)
@settings(max_examples=examples(150), deadline=None)
def test_the_share_guards_follow_octodns(size: int, data: st.DataObject, thresholds: Thresholds) -> None:
    """Refused exactly when the zone has at least ``min_records`` record sets and more than the share of
    them would be updated (or deleted)."""
    deleted = data.draw(st.integers(min_value=0, max_value=size))
    updated = data.draw(st.integers(min_value=0, max_value=size - deleted))
    plan = make_plan(after(size, deleted=deleted, updated=updated), hosts(size), thresholds=thresholds)
    big = size >= thresholds.min_records
    expected = [
        code
        for code, count, limit in (
            ("too-many-updates", updated, thresholds.max_update_percent),
            ("too-many-deletes", deleted, thresholds.max_delete_percent),
        )
        if big and count and count * 100 > limit * size
    ]
    if deleted == size and deleted:
        expected.insert(0, "empty")  # the master kept nothing at all
    assert codes(plan) == expected


# -- client-side validation ------------------------------------------------------------------------


def test_validation_accepts_plans_and_catches_what_aws_rejects() -> None:
    zone = master(["a 300 IN A 10.0.0.1", "b 300 IN A 10.0.0.2"])
    hosted = route53(rrset("c.example.com.", "A", 300, "10.0.0.3"))
    plan = make_plan(zone, hosted, thresholds=UNGUARDED)
    assert validate(hosted, plan.batches) == []
    # The same plan against a Route 53 that moved on (someone created "a" meanwhile) is refused.
    moved = route53(
        rrset("c.example.com.", "A", 300, "10.0.0.3"), rrset("a.example.com.", "A", 300, "10.0.0.1")
    )
    assert any("already exists" in p for p in validate(moved, plan.batches))
    # ... and a DELETE of a record whose values changed.
    changed = route53(rrset("c.example.com.", "A", 300, "10.0.0.4"))
    assert any("differ" in p for p in validate(changed, plan.batches))


def test_validation_catches_a_cname_beside_other_data() -> None:
    zone = master(["x 300 IN CNAME y.example.net."])
    hosted = route53(rrset("x.example.com.", "TXT", 300, '"keep"'))
    plan = make_plan(zone, route53())  # planned against a stale view without the TXT
    assert any("CNAME beside" in p for p in validate(hosted, plan.batches))


def test_validation_catches_a_value_over_4000_characters() -> None:
    (change,) = make_plan(master(['x 300 IN TXT "short"']), route53()).changes
    too_long = replace(change, values=(" ".join(['"' + "y" * 250 + '"'] * 16),))
    assert len(too_long.values[0]) > 4000
    problems = validate(route53(), [Batch(1, (too_long,))])
    assert problems == ["batch 1: CREATE x.example.com. TXT: a value is longer than 4000 characters."]


def test_validation_catches_oversized_batches() -> None:
    zone = master([f"h{n} 300 IN A 10.0.0.1" for n in range(5)])
    plan = make_plan(zone, route53(), limits=Limits(max_elements=10))
    assert any("more than 2" in p for p in validate(route53(), plan.batches, Limits(max_elements=2)))


def test_a_master_record_that_cannot_be_read_is_left_alone_and_route53_keeps_its_own() -> None:
    """A value dnspython transfers but opsbot cannot canonicalise costs that record set, not the zone, and
    is no reason to delete what Route 53 holds there."""
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype
    import dns.rrset

    from bot.core.dns.records import master_zone

    origin = dns.name.from_text(ORIGIN)
    soa = dns.rrset.from_text(
        ORIGIN, 3600, "IN", "SOA", f"ns1.example.net. h.{ORIGIN} 10 7200 900 1209600 300"
    )
    good = dns.rrset.from_text(f"www.{ORIGIN}", 300, "IN", "A", "10.0.0.1")
    odd = dns.rrset.RRset(dns.name.from_text("svc", origin), dns.rdataclass.IN, dns.rdatatype.HTTPS)
    # Wire data that is not an HTTPS record (as a master could send under the generic syntax).
    odd.add(dns.rdata.GenericRdata(dns.rdataclass.IN, dns.rdatatype.HTTPS, b"\x00"), 300)
    zone = master_zone(ORIGIN, [soa, good, odd])
    assert [r.key for r in zone.records] == [("www.example.com.", "A")]
    (left,) = zone.left_alone
    assert (left.side, left.name, left.rtype) == ("master", "svc.example.com.", "HTTPS")
    assert left.reason.startswith("value not understood")
    hosted = route53(
        rrset("www.example.com.", "A", 300, "10.0.0.1"),
        rrset("svc.example.com.", "HTTPS", 300, '1 . alpn="h2"'),
    )
    plan = make_plan(zone, hosted)
    assert plan.empty and not plan.blocked
    assert plan.warnings == (
        "svc.example.com. HTTPS is not mirrored (" + left.reason + "); Route 53 keeps its own version.",
    )
