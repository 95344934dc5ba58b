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
        # A second "rules" would silently replace the first (a deny rule lost).
        ('{"rules": [{"deny": ["dns.apply"]}], "rules": []}', "names 'rules' twice"),
        ('{"rules": [{"allow": ["dns.plan"], "users": ["U1"], "users": ["U2"]}]}', "names 'users' twice"),
    ],
)
def test_malformed_policies_say_where(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(text, known_actions=ACTIONS)


def test_policy_round_trips_to_json() -> None:
    rules = [{"allow": ["dns.apply"], "users": ["U0ALICE"], "channels": ["C0OPS"], "description": "x"}]
    assert policy(rules).to_json() == {"default_read": "allow", "rules": rules}


# -- read scopes (issue 11, defect 9) ---------------------------------------------------------------

SCOPES = [
    {"channels": ["C0SHOP"], "apis": ["shop-api", "a1b2c3d4e5"], "stages": ["prod", "stag*"],
     "log_groups": ["API-Gateway-Execution-Logs_", "/aws/lambda/shop-"], "description": "the shop team"},
    {"channels": ["C0PLATFORM"], "opsbot_logs": True},
    {"apis": []},
]  # fmt: skip


def test_read_scopes_parse_and_the_first_that_applies_to_the_channel_wins() -> None:
    p = policy([], read_scopes=SCOPES)
    shop = p.read_scope("C0SHOP")
    assert shop.apis == ("shop-api", "a1b2c3d4e5") and shop.stages == ("prod", "stag*")
    assert shop.allows_api("zzzzzz1234", "Shop-API") and shop.allows_api("a1b2c3d4e5", "renamed")
    assert not shop.allows_api("b2c3d4e5f6", "billing-api")
    assert shop.allows_stage("staging") and not shop.allows_stage("dev")
    assert shop.allows_group("/aws/lambda/shop-orders") and not shop.allows_group("/aws/lambda/billing")
    platform = p.read_scope("C0PLATFORM")
    assert platform.unrestricted and platform.opsbot_logs
    # The scope without channels is every other channel's: here, nothing.
    other = p.read_scope("C0GENERAL")
    assert other.apis == () and not other.allows_api("a1b2c3d4e5", "shop-api")
    assert p.to_json()["read_scopes"][0]["stages"] == ["prod", "stag*"]
    assert parse_policy(json.dumps(p.to_json()), known_actions=ACTIONS).read_scopes == p.read_scopes


def test_without_read_scopes_every_channel_reads_everything_but_opsbot_logs() -> None:
    """Backward compatible: a policy written before scopes reads as it did, opsbot's own logs excepted."""
    for p in (parse_policy(""), policy([{"allow": ["*"], "users": ["U0ALICE"]}])):
        scope = p.read_scope("C0ANY")
        assert scope.unrestricted and scope.allows_api("abc123def4", "anything") and scope.allows_stage("x")
        assert scope.allows_group("/aws/lambda/orders-api", opsbot_prefixes=["/aws/lambda/opsbot-"])
        assert not scope.allows_group("/aws/lambda/opsbot-slack", opsbot_prefixes=["/aws/lambda/opsbot-"])
        assert "read_scopes" not in p.to_json()


def test_a_channel_no_read_scope_applies_to_reads_nothing() -> None:
    p = policy([], read_scopes=SCOPES[:1])
    scope = p.read_scope("C0GENERAL")
    assert scope.unlisted and not scope.allows_api("a1b2c3d4e5", "shop-api")
    assert "none applies here" in scope.refusal("API `shop-api`")


def test_refusals_name_what_is_allowed() -> None:
    shop = policy([], read_scopes=SCOPES).read_scope("C0SHOP")
    assert shop.refusal("API `billing-api` (b2c3d4e5f6)") == (
        "Reading API `billing-api` (b2c3d4e5f6) is not allowed in this channel: here, /apilogs may read only "
        "API `shop-api` or `a1b2c3d4e5`, stage `prod` or `stag*`, log groups starting with "
        "`API-Gateway-Execution-Logs_` or `/aws/lambda/shop-` (the shop team)."
    )
    nothing = policy([], read_scopes=SCOPES).read_scope("C0GENERAL")
    assert nothing.refusal("API `shop-api`").endswith("here, /apilogs may read no API logs.")


@pytest.mark.parametrize(
    ("scopes", "message"),
    [
        ({}, '"read_scopes" must be a list'),
        (["C0OPS"], "read scope 1 must be an object"),
        ([{"channels": ["#shop"]}], "read scope 1 channels has '#shop', which is not a Slack channel id"),
        ([{"apis": "shop-api", "users": ["U0ALICE"]}], "read scope 1 has unknown keys: users"),
        ([{"stages": [""]}], "read scope 1 stages must be a list of non-empty strings"),
        ([{"log_groups": [42]}], "read scope 1 log_groups must be a list of non-empty strings"),
        ([{}, {"opsbot_logs": "yes"}], "read scope 2 opsbot_logs must be true or false"),
    ],
)
def test_malformed_read_scopes_say_where(scopes: object, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(json.dumps({"rules": [], "read_scopes": scopes}), known_actions=ACTIONS)
