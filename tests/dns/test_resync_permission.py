"""`/dns resync` by someone who may not apply: the plan for them alone, with the reason; nothing in the
channel that waits for someone else's click."""

from __future__ import annotations

import json

from bot.local.slack_api import LocalSlack
from tests.dns.conftest import ZoneEnv
from tests.dns.test_listener import dns_app, dns_harness, managed_names  # noqa: F401 (fixtures)
from tests.support.slack import BOB, OPS_CHANNEL, SlackHarness


def test_resync_by_someone_who_may_not_apply_is_shown_to_them_only(
    dns_harness: SlackHarness,  # noqa: F811
    zone_env: ZoneEnv,
    slack_server: LocalSlack,
) -> None:
    dns_harness.command("/dns", "resync example.com", user=BOB)
    answer = dns_harness.last(BOB)
    assert answer.kind == "ephemeral" and answer.ephemeral_to == BOB[0]
    body = json.dumps(answer.blocks)
    assert (
        "Shown only to you: you may not apply it." in body and "only members of <!subteam^S0ONCALL>" in body
    )
    assert "9 to create" in body and "DNS resync: example.com" in body
    assert "dns:apply" not in body and "dns:cancel" not in body
    assert slack_server.calls_to("chat.postMessage") == []  # nothing posted to the channel
    assert [m for m in slack_server.visible(OPS_CHANNEL[0]) if m.kind == "message"] == []
    assert managed_names(zone_env) == set()
