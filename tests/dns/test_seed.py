from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from bot.aws.state import StateTable
from bot.config import Settings
from bot.core.dns.commands import apply, configured_zones, prepare, status, zone_for
from bot.local.seeds import SeedContext


@pytest.fixture
def seeded(state_table: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[SeedContext]:
    from bot.local.seeds import dns as dns_seed

    monkeypatch.delenv("OPSBOT_DNS_ZONES", raising=False)
    ctx = SeedContext(Settings.from_env(), StateTable(state_table), datetime.now(UTC))
    ctx.facts["banner"] = dns_seed.seed(ctx)
    yield ctx
    ctx.facts["dns.master"].stop()
    os.environ.pop("OPSBOT_DNS_ZONES", None)


def test_the_demo_zone_is_out_of_sync_in_instructive_ways(seeded: SeedContext) -> None:
    banner = "\n".join(seeded.facts["banner"])
    assert "/dns plan corp.example.com" in banner and "/dns resync corp.example.com" in banner
    assert "/dns status" in banner
    settings = Settings.from_env()  # the demo reads the settings after seeding, as here
    (zone,) = configured_zones(settings)
    assert zone.zone_id == seeded.facts["dns.zone_id"]
    (before,) = status((zone,), state=seeded.state)
    # Yesterday's sync left a full check that found nothing pending; the serial shows the master moved.
    assert before.serial_drift == "master ahead of the last sync"
    assert before.pending == 0 and before.verdict == "changes pending"
    prepared = prepare(zone_for(settings, "corp.example.com"), state=seeded.state)
    plan = prepared.plan
    assert plan.counts() == {"CREATE": 2, "UPSERT": 2, "DELETE": 2}
    assert not plan.blocked
    reasons = sorted(item.reason.split(" ")[0] for item in plan.left_alone)
    assert reasons == ["Route", "alias"]  # HINFO unsupported, the hand-made alias
    result = apply(prepared, state=seeded.state, actor="U0ALICE")
    assert result.applied and result.soa_serial_set
    assert prepare(zone, state=seeded.state).plan.empty
    (after,) = status((zone,), state=seeded.state)
    assert (after.serial_drift, after.pending, after.verdict) == ("none", 0, "in sync")
