"""The DNS results as JSON and back (bot.core.dns.wire): nothing lost through json.dumps/json.loads, so a
preview, a result or a status renders the same whether the work ran here or in the DNS mirror function."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.dns import wire
from bot.core.dns.commands import ApplyProgress, ApplyResult, BatchOutcome, Preview, Timings, ZoneStatus
from bot.core.dns.config import MasterAddress, ZoneConfig
from bot.core.dns.plan import Limits, Thresholds, make_plan
from bot.core.dns.records import hosted_zone, master_zone_from_text
from bot.render.dns import plan_blocks, plan_text, progress_blocks, result_blocks, status_blocks
from tests.dns.support import FakeRoute53
from tests.dns.zones import ORIGIN, master_zones, route53_sides
from tests.support.properties import examples

ZONE = ZoneConfig(
    "example.com.",
    MasterAddress("fd00::53", 5353),
    "Z0123456789ABC",
    tsig="secretsmanager:opsbot/dns",
    ignore_ttl=True,
    timeout=2.5,
    max_delete_percent=12.5,
    max_update_percent=40,
    guard_min_records=3,
)


def through_json(document: Any) -> Any:
    """What the Invoke does to an answer."""
    return json.loads(json.dumps(document))


@settings(
    max_examples=examples(100),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data(), st.booleans(), st.sampled_from([Limits(), Limits(max_elements=4)]))
def test_any_plan_comes_back_whole(data: st.DataObject, ignore_ttl: bool, limits: Limits) -> None:
    master = data.draw(master_zones())
    fake = FakeRoute53.with_defaults(ORIGIN)
    for item in data.draw(route53_sides(master)).items:
        fake.put_raw(item)
    plan = make_plan(
        master, hosted_zone(ORIGIN, fake.listing()), ignore_ttl=ignore_ttl, limits=limits, last_serial=7
    )
    back = wire.plan_from_json(through_json(wire.plan_to_json(plan)))
    assert back == plan
    assert back.fingerprint() == plan.fingerprint() and back.counts() == plan.counts()
    assert [[c.to_route53() for c in b.changes] for b in back.batches] == [
        [c.to_route53() for c in b.changes] for b in plan.batches
    ]


def sample_plan() -> Any:
    text = (
        "$ORIGIN example.com.\n@ 60 IN SOA ns.example.net. h 5 1 1 1 1\n@ 60 IN NS ns.example.net.\n"
        + "".join(f"h{n} 60 IN A 10.0.0.{n}\n" for n in range(1, 6))
        + "x 60 IN HINFO a b\n"
    )
    hosted = hosted_zone(
        "example.com.",
        [
            {"Name": "old.example.com.", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "10.9.9.9"}]},
            {"Name": "h1.example.com.", "Type": "A", "TTL": 30, "ResourceRecords": [{"Value": "10.0.0.7"}]},
        ],
    )
    master = master_zone_from_text(text, "example.com.")
    return make_plan(master, hosted, limits=Limits(max_elements=2), thresholds=Thresholds(min_records=0))


def test_each_result_comes_back_whole_and_renders_the_same() -> None:
    plan = sample_plan()
    assert plan.guards and plan.left_alone and len(plan.batches) > 1  # something in every field
    preview = Preview(ZONE, plan, Timings(0.1, 0.25, 1 / 3, 0.001, 0), 42)
    back = wire.preview_from_json(through_json(wire.preview_to_json(preview)))
    assert back == preview
    assert plan_blocks(back, buttons=True) == plan_blocks(preview, buttons=True)
    assert plan_text(back) == plan_text(preview)

    outcomes = (
        BatchOutcome(1, 2, "applied", "/change/C1", 2),
        BatchOutcome(2, 2, "failed", error="Throttled <again>", attempts=6),
        BatchOutcome(3, 1, "not attempted"),
    )
    result = ApplyResult(ZONE, plan, outcomes, forced=True, notes=("a note",), seconds=1.2345)
    refused = ApplyResult(ZONE, plan, refused=("Too many.",), seconds=0.5)
    for item in (result, refused):
        again = wire.result_from_json(through_json(wire.result_to_json(item)))
        assert again == item and again.outcome == item.outcome
        assert result_blocks(again, actor="U1") == result_blocks(item, actor="U1")

    progress = ApplyProgress("example.com", plan.counts(), len(plan.batches), outcomes[:2])
    assert wire.progress_from_json(through_json(wire.progress_to_json(progress))) == progress
    assert progress.number == 2

    statuses = [
        ZoneStatus(
            ZONE, {"serial": 5, "status": "ok", "counts": {"CREATE": 1}}, 5, 5, last_check={"pending": 0}
        ),
        ZoneStatus(ZONE, None, None, None, master_error="down", route53_error="denied"),
    ]
    read = wire.statuses_from_json(through_json([wire.status_to_json(s) for s in statuses]))
    assert read == statuses and status_blocks(read) == status_blocks(statuses)
    assert [s.verdict for s in read] == ["in sync", "failed"]


def test_a_zones_settings_travel_and_secrets_do_not() -> None:
    document = wire.zone_to_json(ZONE)
    assert wire.zone_from_json(through_json(document)) == ZONE
    assert document["tsig"] == "secretsmanager:opsbot/dns"  # where the key is, never the key


@pytest.mark.parametrize(
    ("decode", "data"),
    [
        (wire.preview_from_json, None),
        (wire.preview_from_json, {"zone": {}, "plan": {}}),
        (wire.result_from_json, {"zone": wire.zone_to_json(ZONE), "plan": {"changes": [{"action": "MOVE"}]}}),
        (wire.statuses_from_json, [{"zone": wire.zone_to_json(ZONE), "last_sync": "x"}]),
        (wire.progress_from_json, {"domain": "example.com", "counts": [], "batches": 1, "outcomes": []}),
    ],
)
def test_an_answer_of_another_build_is_a_sentence(decode: Any, data: Any) -> None:
    with pytest.raises(
        wire.WireError, match=r"^The DNS mirror function's preview could not be read"
    ) as caught:
        wire.read(decode, data, "preview")
    assert caught.value.hint == "Deploy the Slack function and the DNS mirror function from the same build."


def test_a_large_plan_fits_an_invoke_answer_and_its_progress_a_state_item() -> None:
    """10,000 record sets (Route 53's default quota per hosted zone) to create: the answer stays well
    within the 6 MB a synchronous Invoke returns; the progress item holds no changes at all."""
    text = "$ORIGIN example.com.\n@ 60 IN SOA ns.example.net. h 5 1 1 1 1\n@ 60 IN NS ns.example.net.\n"
    text += "".join(
        f"host-{n}.dept-{n % 50} 300 IN A 10.{n // 65536}.{n // 256 % 256}.{n % 256}\n" for n in range(10000)
    )
    plan = make_plan(master_zone_from_text(text, "example.com."), hosted_zone("example.com.", []))
    size = len(json.dumps(wire.preview_to_json(Preview(ZONE, plan, Timings()))))
    assert size < 2_000_000, size
    outcomes = tuple(
        BatchOutcome(n, 1000, "applied", f"/change/C{n}", 1) for n in range(1, len(plan.batches) + 1)
    )
    progress = json.dumps(
        wire.progress_to_json(ApplyProgress("example.com", plan.counts(), len(outcomes), outcomes))
    )
    assert len(progress) < 4_000
    assert progress_blocks(wire.progress_from_json(json.loads(progress)))
