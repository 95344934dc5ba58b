"""Two runs on one zone: a plan made before another run's apply is not applied after it.

The scheduled mirror, ``/dns resync`` (a preview applied on click) and the CLI each plan before they take
the apply lock. Under the lock, ``apply`` compares the zone's sync state with the one the plan was made
after; when another run changed Route 53 in between, it sends nothing (the schedule starts over once).
Against moto behind Route 53's rules (``StrictGate``) and the dnspython master of the fixtures (no nsd).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.core.dns import commands, snapshot_store
from bot.core.dns.commands import Prepared, apply, mirror, prepare
from bot.local.slack_api import LocalSlack
from tests.dns import test_incremental, test_listener
from tests.dns.conftest import BASE_RECORDS, ZoneEnv
from tests.dns.support import list_all
from tests.dns.test_incremental import StrictGate
from tests.dns.test_listener import preview, shown
from tests.dns.test_service import CallCounter, managed
from tests.support.slack import OPS_CHANNEL, SlackHarness

# The fixtures of those modules, in this one: moto behind Route 53's rules, and /dns in the Bolt app.
gate = test_incremental.gate
dns_app = test_listener.dns_app
dns_harness = test_listener.dns_harness

T0 = datetime(2025, 3, 4, 14, 5, tzinfo=UTC)
LATE = "late 300 IN A 10.0.0.77"
STALE = re.compile(
    r"Another sync applied changes to example\.com since this plan was made \(serial (\d+) at (\d\d:\d\d) UTC\); "
    r"nothing was applied\. Run `/dns plan example\.com` again\."
)


def sync_state(zone_env: ZoneEnv) -> dict[str, Any]:
    state = zone_env.state.get_sync_state(zone_env.zone.state_key)
    assert state is not None
    return state


def route53_serial(zone_env: ZoneEnv) -> int:
    soa = next(i for i in list_all(zone_env.zone.zone_id) if i["Type"] == "SOA")
    return int(soa["ResourceRecords"][0]["Value"].split()[2])


def lock_held(zone_env: ZoneEnv) -> bool:
    return zone_env.state.get(f"lock#dns-apply:{zone_env.zone.state_key}", "lock") is not None


def test_a_plan_made_before_another_apply_is_refused_and_nothing_is_sent(
    zone_env: ZoneEnv, gate: StrictGate
) -> None:
    assert mirror(zone_env.zone, state=zone_env.state, now=T0).status == "synced"
    zone_env.set_records(101, [*BASE_RECORDS, LATE])
    shown_first = prepare(zone_env.zone, state=zone_env.state)  # a preview: create late
    assert len(shown_first.plan.changes) == 1
    other = mirror(zone_env.zone, state=zone_env.state, now=T0 + timedelta(minutes=3))
    assert other.status == "synced", other.message
    before = sync_state(zone_env)
    assert "applying_since" not in before  # its own record settled its claim

    counter = CallCounter()
    result = apply(shown_first, state=zone_env.state, actor="U0ALICE", now=T0 + timedelta(minutes=5))
    assert result.outcome == "refused" and result.stale and not result.batches
    (sentence,) = result.refused
    match = STALE.fullmatch(sentence)
    assert match is not None, sentence
    assert match.groups() == ("101", "14:08")  # the other run's serial and time
    assert counter.calls == []  # not a single Route 53 request, read or write
    assert not lock_held(zone_env)
    # The other run's record stands: the refusal is not recorded as this zone's last sync.
    assert sync_state(zone_env) == before
    assert gate.refused == []


def test_a_forced_apply_of_an_outdated_plan_is_refused_too(zone_env: ZoneEnv) -> None:
    """Apply anyway overrides the plan's guards, not the fact that the plan is out of date."""
    mirror(zone_env.zone, state=zone_env.state, now=T0)
    zone_env.set_records(101, BASE_RECORDS)
    outdated = prepare(zone_env.zone, state=zone_env.state)
    zone_env.set_records(102, BASE_RECORDS)
    mirror(zone_env.zone, state=zone_env.state, now=T0 + timedelta(minutes=1))
    counter = CallCounter()
    result = apply(outdated, state=zone_env.state, force=True)
    assert result.stale and result.forced and counter.count("ChangeResourceRecordSets") == 0
    assert (route53_serial(zone_env), sync_state(zone_env)["serial"]) == (102, 102)


def test_the_serial_never_goes_backwards(zone_env: ZoneEnv) -> None:
    """(a) of the review: an empty plan for a serial-only change, applied after a newer one, would have
    set Route 53's SOA and the sync state back to its serial."""
    mirror(zone_env.zone, state=zone_env.state, now=T0)
    zone_env.set_records(101, BASE_RECORDS)  # the serial alone changes
    older = prepare(zone_env.zone, state=zone_env.state)
    assert older.plan.empty and older.plan.master_serial == 101
    zone_env.set_records(102, BASE_RECORDS)
    newer = mirror(zone_env.zone, state=zone_env.state, now=T0 + timedelta(minutes=1))
    assert newer.status == "no-changes" and route53_serial(zone_env) == 102

    counter = CallCounter()
    result = apply(older, state=zone_env.state, now=T0 + timedelta(minutes=2))
    assert result.stale and not result.soa_serial_set
    assert counter.count("ChangeResourceRecordSets") == 0
    assert route53_serial(zone_env) == 102
    assert sync_state(zone_env)["serial"] == 102
    assert not lock_held(zone_env)


def test_a_refusal_recorded_after_a_newer_sync_keeps_the_newer_serial(zone_env: ZoneEnv) -> None:
    """A refused plan records why beside the last success: the last success as it is now, not as it was
    when the plan was made (that was serial 100; another run has synced 102 since)."""
    mirror(zone_env.zone, state=zone_env.state, now=T0)
    zone_env.set_records(99, [*BASE_RECORDS, LATE])  # a serial older than the last sync's: guarded
    guarded = prepare(zone_env.zone, state=zone_env.state)
    assert guarded.plan.blocked and guarded.last_sync is not None and guarded.last_sync["serial"] == 100
    zone_env.set_records(102, [*BASE_RECORDS, LATE])
    assert mirror(zone_env.zone, state=zone_env.state, now=T0 + timedelta(minutes=1)).status == "synced"
    synced = sync_state(zone_env)

    result = apply(guarded, state=zone_env.state, now=T0 + timedelta(minutes=2))
    assert result.outcome == "refused" and not result.stale  # refused by its guards, before the lock
    recorded = sync_state(zone_env)
    assert (recorded["serial"], recorded["synced_at"], recorded["status"]) == (
        102,
        synced["synced_at"],
        "refused",
    )
    assert recorded["version"] == synced["version"]  # nothing changed in Route 53: plans stay valid
    # ... so the next run plans against serial 102, as it should.
    zone_env.set_records(103, [*BASE_RECORDS, LATE])
    assert mirror(zone_env.zone, state=zone_env.state, now=T0 + timedelta(minutes=3)).ok


def test_a_record_the_other_run_created_then_the_master_deleted_leaves_route53(
    zone_env: ZoneEnv, gate: StrictGate
) -> None:
    """(b) of the review: the outdated plan, applied, would have kept a snapshot without the other run's
    record, and the next incremental sync would not have deleted it (only the 24 h full check would)."""
    mirror(zone_env.zone, state=zone_env.state, now=T0)
    nothing_to_do = prepare(zone_env.zone, state=zone_env.state)
    assert nothing_to_do.plan.empty
    zone_env.set_records(101, [*BASE_RECORDS, LATE])
    assert mirror(zone_env.zone, state=zone_env.state, now=T0 + timedelta(minutes=1)).mode == "incremental"
    assert apply(nothing_to_do, state=zone_env.state).stale
    remembered, _ = snapshot_store.load(zone_env.state, zone_env.zone)
    assert remembered is not None and ("late.example.com.", "A") in {r.record.key for r in remembered.records}

    zone_env.set_records(102, BASE_RECORDS)
    later = mirror(zone_env.zone, state=zone_env.state, now=T0 + timedelta(minutes=2))
    assert (later.status, later.mode) == ("synced", "incremental"), later.message
    assert ("late.example.com.", "A") not in managed(zone_env)
    assert gate.refused == []


def test_the_scheduled_run_plans_again_instead_of_refusing(
    zone_env: ZoneEnv, gate: StrictGate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nobody is there to click again: the schedule starts over once, from the SOA query."""
    mirror(zone_env.zone, state=zone_env.state, now=T0)
    zone_env.set_records(101, [*BASE_RECORDS, LATE])
    original = commands.prepare_incremental
    raced: list[str] = []

    def resync_lands_meanwhile(*args: Any, **kwargs: Any) -> tuple[Prepared | None, str]:
        planned = original(*args, **kwargs)
        if not raced:  # /dns resync applies 101 while the schedule is between its plan and its lock
            raced.append("resync")
            clicked = apply(
                prepare(zone_env.zone, state=zone_env.state), state=zone_env.state, actor="U0ALICE"
            )
            assert clicked.applied
            zone_env.set_records(102, [*BASE_RECORDS, LATE, "later 300 IN A 10.0.0.78"])
        return planned

    monkeypatch.setattr(commands, "prepare_incremental", resync_lands_meanwhile)
    counter = CallCounter()
    result = mirror(zone_env.zone, state=zone_env.state, now=T0 + timedelta(minutes=1))
    assert raced == ["resync"]
    assert (result.status, result.mode, result.master_serial) == ("synced", "incremental", 102), (
        result.message
    )
    assert result.message.endswith("Another sync applied changes while this run planned; it started over.")
    assert result.soa_queries == 2
    # Alice's batch and SOA serial, then the schedule's for 102; its outdated plan for 101 sent nothing.
    assert counter.count("ChangeResourceRecordSets") == 4
    assert {("late.example.com.", "A"), ("later.example.com.", "A")} <= set(managed(zone_env))
    state = sync_state(zone_env)
    assert (state["serial"], state["actor"], route53_serial(zone_env)) == (102, "schedule", 102)
    assert gate.refused == [] and not lock_held(zone_env)


def test_the_scheduled_run_finds_the_zone_synced_when_it_starts_over(
    zone_env: ZoneEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror(zone_env.zone, state=zone_env.state, now=T0)
    zone_env.set_records(101, [*BASE_RECORDS, LATE])
    original = commands.prepare_incremental

    def resync_lands_meanwhile(*args: Any, **kwargs: Any) -> tuple[Prepared | None, str]:
        planned = original(*args, **kwargs)
        monkeypatch.setattr(commands, "prepare_incremental", original)
        assert apply(
            prepare(zone_env.zone, state=zone_env.state), state=zone_env.state, actor="U0ALICE"
        ).applied
        return planned

    monkeypatch.setattr(commands, "prepare_incremental", resync_lands_meanwhile)
    result = mirror(zone_env.zone, state=zone_env.state, now=T0 + timedelta(minutes=1))
    assert result.status == "up-to-date" and result.ok, result.message
    assert sync_state(zone_env)["actor"] == "U0ALICE"  # the schedule wrote nothing over Alice's sync


def test_the_apply_button_says_another_sync_came_first(
    dns_harness: SlackHarness,
    zone_env: ZoneEnv,
    slack_server: LocalSlack,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The click transfers and plans again (the preview may be minutes old), then takes the lock; the
    scheduled mirror lands in between. Both ways: /dns work in the Slack function or in the mirror."""
    dns_harness.command("/dns", "resync example.com")
    message = preview(dns_harness)
    original: Callable[..., Prepared] = commands.prepare
    landed: list[str] = []

    def schedule_lands_meanwhile(*args: Any, **kwargs: Any) -> Prepared:
        planned = original(*args, **kwargs)
        if not landed:
            landed.append("schedule")
            assert mirror(zone_env.zone, state=zone_env.state).status == "synced"
        return planned

    monkeypatch.setattr(commands, "prepare", schedule_lands_meanwhile)
    counter = CallCounter()
    dns_harness.click(message, "dns:apply")
    assert landed == ["schedule"]
    final = slack_server.find(message.ts, OPS_CHANNEL[0])
    assert final is not None
    text = json.loads(shown(final))
    sentence = " ".join(str(block.get("text", {}).get("text", "")) for block in text)
    assert "Nothing was changed in example.com" in sentence
    match = STALE.search(sentence)
    assert match is not None and match.group(1) == "100", sentence
    assert "dns:apply" not in shown(final)
    # The schedule's batch and SOA serial only: the click sent nothing.
    assert counter.count("ChangeResourceRecordSets") == 2
    assert len([i for i in list_all(zone_env.zone.zone_id) if i["Type"] not in ("SOA", "NS")]) == 9
    assert sync_state(zone_env)["actor"] == "schedule"
    assert not lock_held(zone_env)
    # And the next resync has nothing left to do.
    dns_harness.command("/dns", "resync example.com")
    assert "already matches" in shown(dns_harness.last())


def test_a_run_that_stops_half_way_still_makes_earlier_plans_stale(
    zone_env: ZoneEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Lambda timeout after some batches records no sync; the version was raised before the first one."""
    mirror(zone_env.zone, state=zone_env.state, now=T0)
    zone_env.set_records(101, [*BASE_RECORDS, LATE])
    earlier = prepare(zone_env.zone, state=zone_env.state)
    interrupted = prepare(zone_env.zone, state=zone_env.state)
    original = commands._apply_batches

    def times_out(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)  # the batches reach Route 53 ...
        raise TimeoutError("Task timed out after 300.00 seconds")  # ... and the function dies

    monkeypatch.setattr(commands, "_apply_batches", times_out)
    with pytest.raises(TimeoutError):
        apply(interrupted, state=zone_env.state, now=T0 + timedelta(minutes=2))
    monkeypatch.setattr(commands, "_apply_batches", original)
    assert sync_state(zone_env)["serial"] == 100  # no sync recorded
    counter = CallCounter()
    result = apply(earlier, state=zone_env.state)
    assert result.stale and counter.count("ChangeResourceRecordSets") == 0
    assert "(it began at 14:07 UTC and did not finish); nothing was applied." in result.refused[0]


def test_a_conditional_sync_state_write_refuses_a_moved_version(zone_env: ZoneEnv) -> None:
    key, state = zone_env.zone.state_key, zone_env.state
    assert state.put_sync_state_if(key, {"serial": 1, "version": 1}, field="version", expected=0)
    assert not state.put_sync_state_if(key, {"serial": 0}, field="version", expected=0)
    assert not state.put_sync_state_if(key, {"serial": 0, "version": 1}, field="version", expected=2)
    assert state.put_sync_state_if(key, {"serial": 2, "version": 2}, field="version", expected=1)
    assert sync_state(zone_env)["serial"] == 2
