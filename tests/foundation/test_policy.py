from __future__ import annotations

import json

import pytest

from bot.security.policy import Policy, PolicyError, parse_policy

ACTIONS = ["dns.apply", "dns.plan", "dns.force", "device.activate", "ops.whoami"]


def policy(rules: list[dict[str, object]], **top: object) -> Policy:
    return parse_policy(json.dumps({"rules": rules, **top}), known_actions=ACTIONS)


def test_default_policy_allows_reads_and_denies_changes() -> None:
    default = parse_policy("")
    assert default.decide("dns.plan", mutating=False, user="U1", channel="C1").allowed
    decision = default.decide("dns.apply", mutating=True, user="U1", channel="C1")
    assert not decision.allowed and "grants it to no one" in decision.reason


def test_user_group_and_channel_rules() -> None:
    p = policy([{"allow": ["dns.*"], "usergroups": ["S0ONCALL"], "channels": ["C0OPS"]}])
    assert p.decide("dns.apply", mutating=True, user="U1", channel="C0OPS", groups={"S0ONCALL"}).allowed
    assert not p.decide("dns.apply", mutating=True, user="U1", channel="C0OPS", groups=set()).allowed
    outside = p.decide("dns.apply", mutating=True, user="U1", channel="C0OTHER", groups={"S0ONCALL"})
    assert not outside.allowed
    assert outside.reason == "only members of <!subteam^S0ONCALL> in <#C0OPS> may run `dns.apply`."
    assert p.usergroups_for("dns.apply") == {"S0ONCALL"} and p.usergroups_for("device.activate") == set()


def test_deny_wins_over_allow_and_can_close_reads() -> None:
    p = policy([{"allow": ["*"], "users": ["U0ALICE"]}, {"deny": ["*"], "channels": ["C0GENERAL"]}])
    assert not p.decide("dns.plan", mutating=False, user="U0ALICE", channel="C0GENERAL").allowed
    assert p.decide("dns.apply", mutating=True, user="U0ALICE", channel="C0OPS").allowed
    closed = policy([], default_read="deny")
    assert not closed.decide("dns.plan", mutating=False, user="U1", channel="C1").allowed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"rules": {}}', '"rules" must be a list'),
        ('{"rulez": []}', "unknown keys: rulez"),
        ('{"default_read": "maybe"}', "default_read"),
        ('{"rules": [{"users": ["U1"]}]}', 'exactly one of "allow" or "deny"'),
        ('{"rules": [{"allow": ["dns.aply"]}]}', "matches no action"),
        ('{"rules": [{"allow": ["*"], "users": ["alice"]}]}', "not a Slack user id"),
        ('{"rules": [{"allow": ["*"], "channels": ["#ops"]}]}', "not a Slack channel id"),
        ('{"rules": [{"allow": [""]}]}', "non-empty strings"),
        ('{"rules": [{"allow": ["*"], "when": "always"}]}', "unknown keys: when"),
    ],
)
def test_malformed_policies_say_where(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(text, known_actions=ACTIONS)


def test_policy_round_trips_to_json() -> None:
    rules = [{"allow": ["dns.apply"], "users": ["U0ALICE"], "channels": ["C0OPS"], "description": "x"}]
    assert policy(rules).to_json() == {"default_read": "allow", "rules": rules}
