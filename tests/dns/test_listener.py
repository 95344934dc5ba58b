"""/dns through signed requests into the real Bolt app and the local Slack Web API server."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest

from bot.aws.clients import client
from bot.aws.dynamo import from_item
from bot.aws.functions import serve_locally
from bot.config import Settings
from bot.core.dns.commands import mirror_handler
from bot.core.dns.config import MasterAddress
from bot.local.dns_master import free_port
from bot.local.slack_api import LocalSlack, Message
from tests.conftest import ONCALL_POLICY
from tests.dns.conftest import BASE_RECORDS, ZoneEnv
from tests.dns.support import create_records, list_all
from tests.support.slack import ALICE, BOB, CAROL, OPS_CHANNEL, SlackHarness, find_button

MIRROR_FUNCTION = "opsbot-dns-mirror"


@pytest.fixture(params=["in the Slack function", "in the mirror function"])
def dns_app(request: pytest.FixtureRequest, make_harness: Callable[..., SlackHarness]) -> Iterator[DnsApp]:
    """Every test runs twice: with the /dns work done by the Slack function itself, and sent to the DNS
    mirror function (OPSBOT_DNS_FUNCTION) as in a deployment whose master only the VPC reaches. The mirror
    runs in this process (``serve_locally``) with its own settings: no Slack token, no policy."""
    remote = request.param == "in the mirror function"

    def make(**env: str) -> SlackHarness:
        if not remote:
            return make_harness(**env)
        harness = make_harness(**env, OPSBOT_DNS_FUNCTION=MIRROR_FUNCTION)
        mirror = Settings(
            state_table=harness.settings.state_table, dns_zones_json=harness.settings.dns_zones_json
        )
        serve_locally(MIRROR_FUNCTION, mirror_handler(mirror))
        return harness

    yield DnsApp(make, remote)
    serve_locally(MIRROR_FUNCTION, None)


@dataclass(frozen=True)
class DnsApp:
    make: Callable[..., SlackHarness]
    remote: bool


@pytest.fixture
def dns_harness(zone_env: ZoneEnv, dns_app: DnsApp) -> SlackHarness:
    zones = [{"domain": "example.com", "master": str(zone_env.zone.master), "zone_id": zone_env.zone.zone_id}]
    return dns_app.make(OPSBOT_POLICY=json.dumps(ONCALL_POLICY), OPSBOT_DNS_ZONES=json.dumps(zones))


def preview(harness: SlackHarness) -> Message:
    """The resync preview the bot posted in the channel (the live message: updates change it)."""
    posted = [
        m
        for m in harness.slack.visible(OPS_CHANNEL[0])
        if m.kind == "message" and "DNS resync" in json.dumps(m.blocks)
    ]
    assert posted, "no preview was posted"
    return posted[-1]


def again(message: Message) -> Message:
    """A copy of the message as it is now, to click its buttons later as a client that has not
    refreshed would (its response URL then points at the copy, not at the live message)."""
    return replace(message, blocks=copy.deepcopy(message.blocks))


def shown(message: Message) -> str:
    return json.dumps(message.blocks)


def managed_names(zone_env: ZoneEnv) -> set[str]:
    return {i["Name"] for i in list_all(zone_env.zone.zone_id) if i["Type"] not in ("SOA", "NS")}


def audit(action: str) -> list[dict[str, Any]]:
    items = [from_item(i) for i in client("dynamodb").scan(TableName="opsbot-state")["Items"]]
    return [i for i in items if i["pk"].startswith("audit#") and i.get("action") == action]


def test_help(dns_harness: SlackHarness) -> None:
    ack = dns_harness.command("/dns", "help")
    for word in ("status", "plan", "resync"):
        assert f"/dns {word}" in ack.text
    assert "Apply and Cancel" in dns_harness.command("/dns", "help resync").text
    assert "has no subcommand `sync`" in dns_harness.command("/dns", "sync example.com").text
    assert "Missing &lt;domain&gt;" in dns_harness.command("/dns", "plan").text


def test_status_and_plan_are_read_only_and_open_to_everyone(
    dns_harness: SlackHarness, zone_env: ZoneEnv
) -> None:
    dns_harness.command("/dns", "status", user=BOB)
    status = dns_harness.last(BOB)
    assert status.ephemeral_to == BOB[0] and "never synced" in shown(status)
    dns_harness.command("/dns", "plan example.com", user=BOB)
    plan = dns_harness.last(BOB)
    assert "9 to create, 0 to update, 0 to delete" in shown(plan)
    assert "dns:apply" not in shown(plan)
    assert managed_names(zone_env) == set()


def test_resync_apply_end_to_end(
    dns_harness: SlackHarness, zone_env: ZoneEnv, slack_server: LocalSlack, dns_app: DnsApp
) -> None:
    dns_harness.command("/dns", "resync example.com")
    message = preview(dns_harness)
    stale = again(message)
    assert message.user == slack_server.bot_user_id and message.kind == "message"
    element, _ = find_button(message.blocks, "dns:apply")
    assert json.loads(element["value"])["domain"] == "example.com"

    # Bob may look but not apply: nothing changes, the preview stays.
    dns_harness.click(again(message), "dns:apply", user=BOB)
    assert "You may not run `dns.apply`" in dns_harness.last(BOB).text
    assert managed_names(zone_env) == set()
    assert audit("dns.apply")[0]["outcome"] == "denied"

    dns_harness.click(message, "dns:apply")
    final = slack_server.find(message.ts, OPS_CHANNEL[0])
    assert final is not None
    assert "Applied by" in shown(final) and "9 changes in 1 batch" in shown(final)
    assert "batch 1/1 applied" in shown(final)
    updates = [c for c in slack_server.calls_to("chat.update") if c.params.get("ts") == message.ts]
    if dns_app.remote:  # "transferring again in the DNS mirror function…"; progress once a second at most
        assert "in the DNS mirror function" in json.dumps(updates[0].params)
    else:  # "transferring again…", then a progress line per batch
        assert len(updates) >= 2 and "applied" in json.dumps(updates[-1].params)
    assert len([i for i in list_all(zone_env.zone.zone_id) if i["Type"] not in ("SOA", "NS")]) == 9
    (record,) = [r for r in audit("dns.apply") if r["outcome"] != "denied"]
    assert record["outcome"] == "applied" and record["user"] == ALICE[0]

    # A second click, or Cancel afterwards, does nothing twice.
    dns_harness.click(stale, "dns:cancel")
    assert "Already done by" in dns_harness.last().text
    state = zone_env.state.get_sync_state(zone_env.zone.state_key)
    assert state is not None and state["actor"] == ALICE[0] and state["serial"] == 100

    dns_harness.command("/dns", "resync example.com")
    assert "already matches" in shown(dns_harness.last())


def test_status_right_after_an_apply_says_in_sync_and_nothing_else(
    dns_harness: SlackHarness, zone_env: ZoneEnv
) -> None:
    """Issue 10: one verdict per zone, in Slack too, whichever function did the work."""
    dns_harness.command("/dns", "status")
    before = dns_harness.last()
    assert before.text == "DNS mirror status: example.com: never synced"
    assert "*never synced*: no sync of example.com is recorded." in shown(before)
    dns_harness.command("/dns", "resync example.com")
    dns_harness.click(preview(dns_harness), "dns:apply")
    dns_harness.command("/dns", "status example.com")
    status = dns_harness.last()
    assert status.text == "DNS mirror status: example.com: in sync"
    text = shown(status)
    assert ":large_green_circle:" in text and "*in sync*: Route 53 and the master are at serial 100" in text
    for wrong in ("changes pending", "never synced", "edited since?", "serial drift"):
        assert wrong not in text, wrong
    zone_env.set_records(101, [*BASE_RECORDS, "late 300 IN A 10.0.0.77"])
    dns_harness.command("/dns", "status")
    assert "*changes pending*: the master is at serial 101, the last sync at 100." in shown(
        dns_harness.last()
    )


def test_a_preview_that_went_stale_is_not_applied(
    dns_harness: SlackHarness, zone_env: ZoneEnv, slack_server: LocalSlack
) -> None:
    dns_harness.command("/dns", "resync example.com")
    first = preview(dns_harness)
    zone_env.set_records(101, [*BASE_RECORDS, "late 300 IN A 10.0.0.77"])
    dns_harness.click(first, "dns:apply")
    old = slack_server.find(first.ts, OPS_CHANNEL[0])
    assert old is not None and "changed since this preview" in shown(old) and "dns:apply" not in shown(old)
    assert managed_names(zone_env) == set()
    fresh = preview(dns_harness)
    assert fresh.ts != first.ts and "10 to create" in shown(fresh)
    dns_harness.click(fresh, "dns:apply")
    assert "late.example.com." in managed_names(zone_env)


def test_guards_offer_apply_anyway_to_those_allowed(dns_harness: SlackHarness, zone_env: ZoneEnv) -> None:
    create_records(
        zone_env.zone.zone_id, [(f"old{n}.example.com.", "A", 60, ["10.9.0.1"]) for n in range(10)]
    )
    dns_harness.command("/dns", "resync example.com")
    message = preview(dns_harness)
    assert "Refused unless forced" in shown(message) and "deletes 10 of the 10" in shown(message)
    with pytest.raises(AssertionError):
        find_button(message.blocks, "dns:apply")
    dns_harness.click(again(message), "dns:force", user=BOB)
    assert "You may not run `dns.force`" in dns_harness.last(BOB).text
    dns_harness.click(message, "dns:force")
    assert "(forced)" in shown(dns_harness.slack.find(message.ts, OPS_CHANNEL[0]))  # type: ignore[arg-type]
    assert not any(name.startswith("old") for name in managed_names(zone_env))


def test_forcing_needs_its_own_grant(zone_env: ZoneEnv, dns_app: DnsApp) -> None:
    """Carol may apply plans but not override the guards: the policy can keep dns.force for fewer people."""
    policy = {"rules": [{"allow": ["dns.apply", "dns.cancel"], "users": [CAROL[0]]}]}
    zones = [{"domain": "example.com", "master": str(zone_env.zone.master), "zone_id": zone_env.zone.zone_id}]
    harness = dns_app.make(OPSBOT_POLICY=json.dumps(policy), OPSBOT_DNS_ZONES=json.dumps(zones))
    create_records(
        zone_env.zone.zone_id, [(f"old{n}.example.com.", "A", 60, ["10.9.0.1"]) for n in range(10)]
    )
    harness.command("/dns", "resync example.com", user=CAROL)
    message = preview(harness)
    harness.click(again(message), "dns:force", user=CAROL)
    assert "You may not run `dns.force`" in harness.last(CAROL).text
    assert {f"old{n}.example.com." for n in range(10)} <= managed_names(zone_env)
    zone_env.set_records(100, [*BASE_RECORDS])  # same serial, same plan: the guard still refuses
    harness.click(message, "dns:cancel", user=CAROL)
    assert "cancelled by" in shown(harness.slack.find(message.ts, OPS_CHANNEL[0]))  # type: ignore[arg-type]


def test_a_domain_in_two_hosted_zones_is_chosen_with_zone_id(zone_env: ZoneEnv, dns_app: DnsApp) -> None:
    master = str(zone_env.zone.master)
    zones = [
        {"domain": "example.com", "master": master, "zone_id": zone_env.zone.zone_id},
        {"domain": "example.com", "master": master, "zone_id": "Z0OTHER"},
    ]
    harness = dns_app.make(OPSBOT_POLICY=json.dumps(ONCALL_POLICY), OPSBOT_DNS_ZONES=json.dumps(zones))
    harness.command("/dns", "plan example.com")
    assert "give --zone-id" in harness.last().text and "--master" not in harness.last().text
    harness.command("/dns", f"plan example.com --zone-id {zone_env.zone.zone_id}")
    assert "9 to create" in shown(harness.last())


def test_an_empty_resync_says_so_under_its_own_title(dns_harness: SlackHarness, zone_env: ZoneEnv) -> None:
    dns_harness.command("/dns", "resync example.com")
    dns_harness.click(preview(dns_harness), "dns:apply")
    dns_harness.command("/dns", "resync example.com")
    reply = dns_harness.last()
    assert reply.ephemeral_to == ALICE[0] and "already matches" in shown(reply)
    assert "DNS resync: example.com" in shown(reply) and "dns:apply" not in shown(reply)


def test_cancel(dns_harness: SlackHarness, zone_env: ZoneEnv, slack_server: LocalSlack) -> None:
    dns_harness.command("/dns", "resync example.com")
    message = preview(dns_harness)
    stale = again(message)
    dns_harness.click(message, "dns:cancel")
    after = slack_server.find(message.ts, OPS_CHANNEL[0])
    assert after is not None and "cancelled by" in shown(after) and "dns:apply" not in shown(after)
    dns_harness.click(stale, "dns:apply")
    assert "Already done by" in dns_harness.last().text
    assert managed_names(zone_env) == set()


def test_problems_are_sentences(dns_harness: SlackHarness, zone_env: ZoneEnv, dns_app: DnsApp) -> None:
    dns_harness.command("/dns", "plan other.org")
    assert "`other.org` is not a configured zone. Configured: example.com." in dns_harness.last().text
    assert "--master" not in dns_harness.last().text  # a terminal option, meaningless in Slack
    zones = [
        {
            "domain": "example.com",
            "master": str(MasterAddress("127.0.0.1", free_port())),
            "zone_id": zone_env.zone.zone_id,
            "timeout": 1,
        }
    ]
    down = dns_app.make(OPSBOT_POLICY=json.dumps(ONCALL_POLICY), OPSBOT_DNS_ZONES=json.dumps(zones))
    down.command("/dns", "plan example.com")
    assert "refused the TCP connection" in down.last().text and "Traceback" not in down.last().text
    broken = dns_app.make(OPSBOT_POLICY=json.dumps(ONCALL_POLICY), OPSBOT_DNS_ZONES="[{")
    broken.command("/dns", "status")
    assert "OPSBOT_DNS_ZONES is not valid JSON" in broken.last().text


def test_a_tampered_button_value(dns_harness: SlackHarness) -> None:
    dns_harness.command("/dns", "resync example.com")
    dns_harness.click(preview(dns_harness), "dns:apply", value="{not json")
    assert "no longer valid" in dns_harness.last().text


def test_a_master_that_fails_at_apply_time_leaves_a_clear_message(
    dns_harness: SlackHarness, zone_env: ZoneEnv, slack_server: LocalSlack
) -> None:
    dns_harness.command("/dns", "resync example.com")
    message = preview(dns_harness)
    stale = again(message)
    zone_env.master.stop()
    dns_harness.click(message, "dns:apply")
    assert "refused the TCP connection" in dns_harness.last().text
    after = slack_server.find(message.ts, OPS_CHANNEL[0])
    assert after is not None and "Nothing was applied" in shown(after) and "dns:apply" not in shown(after)
    assert managed_names(zone_env) == set()
    # The failed click released its lock: the decision is still open (a retry reports the same problem).
    dns_harness.click(stale, "dns:cancel")
    cancelled = slack_server.find(message.ts, OPS_CHANNEL[0])
    assert cancelled is not None and "cancelled by" in shown(cancelled)
