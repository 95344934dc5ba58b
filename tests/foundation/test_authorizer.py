"""The authorizer through signed requests into the real app: user groups looked up only when they matter,
what a failed lookup allows and denies, and how long the policy and memberships are cached."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest

from bot.aws import clients
from bot.security.policy import parse_policy
from tests.foundation.test_framework import Recorder, add_test_command, audit_items
from tests.support.slack import ALICE, BOB, ONCALL_GROUP, SlackHarness

GROUP_GRANT = {"rules": [{"allow": ["*"], "usergroups": [ONCALL_GROUP]}]}
GROUP_DENY = {
    "rules": [
        {"deny": ["*"], "usergroups": [ONCALL_GROUP], "description": "on call: hands off"},
        {"allow": ["*"], "users": [ALICE[0]]},
    ]
}


def lookups(harness: SlackHarness) -> int:
    return len(harness.slack.calls_to("usergroups.users.list"))


def with_policy(
    make_harness: Callable[..., SlackHarness], policy: dict[str, Any], **env: str
) -> SlackHarness:
    harness = make_harness(OPSBOT_POLICY=json.dumps(policy), **env)
    add_test_command(harness, Recorder())
    return harness


def test_groups_are_not_looked_up_when_they_cannot_change_the_decision(
    make_harness: Callable[..., SlackHarness],
) -> None:
    harness = with_policy(make_harness, GROUP_GRANT)
    harness.command("/ops", "policy", user=BOB)  # read-only and open: a grant could add nothing
    assert harness.last(BOB).text.startswith("*Policy*")
    assert lookups(harness) == 0
    harness.command("/testcmd", "change x")  # a grant could allow it: look
    assert harness.last().text == "Changed x" and lookups(harness) == 1


def test_a_failed_lookup_keeps_reads_open_and_applies_no_grant(
    make_harness: Callable[..., SlackHarness], caplog: pytest.LogCaptureFixture
) -> None:
    harness = with_policy(make_harness, GROUP_GRANT)
    harness.slack.fail_next("usergroups.users.list", "missing_scope")
    with caplog.at_level(logging.WARNING, logger="opsbot.security"):
        harness.command("/testcmd", "change x")  # alice is on call, but Slack will not say so
    denial = harness.last().text
    assert denial.startswith(":no_entry: You may not run `testcmd.change`")
    assert f"could not check your membership of <!subteam^{ONCALL_GROUP}> (missing_scope)" in denial
    assert "could not list the members of user group S0ONCALL (missing_scope)" in caplog.text
    for user in (ALICE, BOB):
        harness.command("/ops", "policy", user=user)
        assert harness.last(user).text.startswith("*Policy*")
    harness.command("/ops", "whoami")
    assert "Slack would not list <!subteam^S0ONCALL> (missing_scope)" in harness.last().text
    outcomes = [r["outcome"] for r in audit_items() if r["command"] == "/testcmd change"]
    assert outcomes == ["denied"]


def test_a_deny_rule_that_cannot_be_checked_denies_changes_but_not_reads(
    make_harness: Callable[..., SlackHarness],
) -> None:
    harness = with_policy(make_harness, GROUP_DENY)
    harness.slack.fail_next("usergroups.users.list", "ratelimited")
    harness.command("/ops", "policy", user=BOB)  # bob is in no group; the read stays open
    assert harness.last(BOB).text.startswith("*Policy*")
    harness.command("/testcmd", "change x", user=BOB)  # not granted anyway
    assert "only <@U0ALICE> may run" in harness.last(BOB).text
    # Alice is granted by name, but may be in the on-call group, whose deny rule cannot be checked.
    harness.command("/testcmd", "change x")
    denial = harness.last().text
    assert (
        "the policy denies `testcmd.change` to members of <!subteam^S0ONCALL> (on call: hands off)" in denial
    )
    assert "grants to those groups were not applied and their deny rules were." in denial
    assert "(ratelimited)" in denial


def test_a_deny_rule_that_can_be_checked_is_applied(make_harness: Callable[..., SlackHarness]) -> None:
    harness = with_policy(make_harness, GROUP_DENY)
    harness.command("/ops", "policy")  # alice is on call: the deny rule covers reads too
    assert "the policy denies `ops.policy` to members of" in harness.last().text
    harness.command("/testcmd", "change x", user=BOB)
    assert "only <@U0ALICE> may run" in harness.last(BOB).text


@pytest.mark.parametrize(("seconds", "expected"), [("0", 3), ("300", 1)])
def test_group_memberships_are_cached_for_opsbot_policy_cache_seconds(
    make_harness: Callable[..., SlackHarness], seconds: str, expected: int
) -> None:
    harness = with_policy(make_harness, GROUP_GRANT, OPSBOT_POLICY_CACHE_SECONDS=seconds)
    for target in ("a", "b", "c"):
        harness.command("/testcmd", f"change {target}")
        assert harness.last().text == f"Changed {target}"
    assert lookups(harness) == expected


def test_a_malformed_ssm_policy_is_fetched_and_logged_once_per_cache_period(
    make_harness: Callable[..., SlackHarness], caplog: pytest.LogCaptureFixture
) -> None:
    ssm = clients.client("ssm")
    ssm.put_parameter(Name="/opsbot/policy", Type="String", Value="{bad")
    calls: list[str] = []
    ssm.meta.events.register(
        "provide-client-params.ssm.GetParameter", lambda params, **_: calls.append("get")
    )
    harness = make_harness(OPSBOT_POLICY_PARAMETER="opsbot/policy")
    with caplog.at_level(logging.ERROR, logger="opsbot.security"):
        for _ in range(3):
            harness.command("/ops", "whoami")
            assert "policy is malformed" in harness.last().text
    assert calls == ["get"]
    assert caplog.text.count("opsbot policy rejected") == 1


def test_a_fixed_ssm_policy_is_picked_up_after_the_cache_period(
    make_harness: Callable[..., SlackHarness], caplog: pytest.LogCaptureFixture
) -> None:
    ssm = clients.client("ssm")
    ssm.put_parameter(Name="/opsbot/policy", Type="String", Value="{bad")
    harness = make_harness(OPSBOT_POLICY_PARAMETER="opsbot/policy", OPSBOT_POLICY_CACHE_SECONDS="0")
    harness.command("/ops", "policy")
    assert "malformed" in harness.last().text
    ssm.put_parameter(Name="/opsbot/policy", Type="String", Value=json.dumps(GROUP_GRANT), Overwrite=True)
    with caplog.at_level(logging.WARNING, logger="opsbot.security"):
        harness.command("/ops", "policy")
    assert harness.last().text.startswith("*Policy* from SSM parameter /opsbot/policy")
    assert "opsbot policy fixed" in caplog.text


@pytest.mark.parametrize(
    ("policy", "mutating", "user", "expected"),
    [
        (GROUP_GRANT, False, BOB[0], set()),  # open read: nothing to gain
        (GROUP_GRANT, True, BOB[0], {ONCALL_GROUP}),  # a grant could allow it
        (GROUP_DENY, True, BOB[0], set()),  # denied by default, and no group grants it
        (GROUP_DENY, True, ALICE[0], {ONCALL_GROUP}),  # allowed by name; the group's deny could revoke
        ({"rules": [{"deny": ["*"], "users": [BOB[0]]}, {"allow": ["*"], "usergroups": ["S0X"]}]}, True,
         BOB[0], set()),  # denied by a rule that applies whatever the groups
        ({"rules": [{"allow": ["*"], "usergroups": ["S0X"], "channels": ["C0OTHER"]}]}, True, BOB[0],
         set()),  # the group's rule is for another channel
    ],
)  # fmt: skip
def test_groups_that_matter(policy: dict[str, Any], mutating: bool, user: str, expected: set[str]) -> None:
    parsed = parse_policy(json.dumps(policy))
    assert parsed.groups_that_matter("dns.apply", mutating=mutating, user=user, channel="C0OPS") == expected
