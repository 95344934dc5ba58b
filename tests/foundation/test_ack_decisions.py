"""Permission feedback in the ack, through signed requests: a caller the policy refuses from the user id
and channel alone is told so at once (no "working…" line first, no work, one audit record); where only a
user-group lookup can tell, the ack says it is checking, not that the work has started."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from bot.listeners.framework import runtime_of
from tests.foundation.test_framework import Recorder, add_test_command, audit_items
from tests.support.slack import ALICE, BOB, CAROL, SlackHarness

USERS_ONLY = {"rules": [{"allow": ["testcmd.change"], "users": [CAROL[0]]}]}
GROUPS = {"rules": [{"allow": ["*"], "usergroups": ["S0ONCALL"]}]}
CHANNEL_DENY = {
    "rules": [
        {"allow": ["*"], "usergroups": ["S0ONCALL"]},
        {"deny": ["testcmd.*"], "channels": ["C0GENERAL"], "description": "not in #general"},
    ]
}
GENERAL = ("C0GENERAL", "general")


def app_with(make_harness: Callable[..., SlackHarness], **env: str) -> tuple[SlackHarness, Recorder]:
    harness = make_harness(**env)
    recorder = Recorder()
    add_test_command(harness, recorder)
    return harness, recorder


def working_lines(harness: SlackHarness, user: tuple[str, str]) -> list[str]:
    return [t for t in harness.texts(user) if "Working on it" in t]


def test_a_refusal_by_user_id_is_the_ack_itself(make_harness: Callable[..., SlackHarness]) -> None:
    harness, recorder = app_with(make_harness, OPSBOT_POLICY=json.dumps(USERS_ONLY))
    ack = harness.command("/testcmd", "change thing", user=BOB)
    assert ack.text.startswith(":no_entry: You may not run `testcmd.change`: only <@U0CAROL> may run")
    assert harness.texts(BOB) == [ack.text]  # nothing before it, nothing after it
    assert recorder.calls == []
    (record,) = audit_items()
    assert record["outcome"] == "denied" and "only <@U0CAROL>" in record["detail"]
    assert record["command"] == "/testcmd change" and record["user"] == BOB[0]
    # Carol, granted by id, gets the usual "working" line and the work.
    harness.command("/testcmd", "change thing", user=CAROL)
    assert working_lines(harness, CAROL) and len(recorder.calls) == 1


def test_a_channel_deny_rule_is_decided_in_the_ack(make_harness: Callable[..., SlackHarness]) -> None:
    harness, recorder = app_with(make_harness, OPSBOT_POLICY=json.dumps(CHANNEL_DENY))
    ack = harness.command("/testcmd", "change thing", user=ALICE, channel=GENERAL)
    assert ack.text.startswith(":no_entry: You may not run `testcmd.change`: the policy denies")
    assert "not in #general" in ack.text and recorder.calls == []
    assert [r["outcome"] for r in audit_items()] == ["denied"]
    assert harness.slack.calls_to("usergroups.users.list") == []  # decided without asking Slack


def test_no_policy_refuses_changes_in_the_ack(make_harness: Callable[..., SlackHarness]) -> None:
    harness, recorder = app_with(make_harness)
    ack = harness.command("/testcmd", "change thing", user=ALICE)
    assert ack.text.startswith(":no_entry:") and "grants it to no one" in ack.text
    assert recorder.calls == [] and [r["outcome"] for r in audit_items()] == ["denied"]


def test_a_malformed_policy_refuses_in_the_ack(make_harness: Callable[..., SlackHarness]) -> None:
    harness, recorder = app_with(make_harness, OPSBOT_POLICY="{not json")
    ack = harness.command("/testcmd", "change thing", user=ALICE)
    assert ack.text.startswith(":no_entry:") and "policy is malformed" in ack.text
    assert recorder.calls == []


def test_where_a_group_decides_the_ack_says_it_is_checking(make_harness: Callable[..., SlackHarness]) -> None:
    harness, recorder = app_with(make_harness, OPSBOT_POLICY=json.dumps(GROUPS))
    ack = harness.command("/testcmd", "change thing", user=BOB)
    assert ack.text == ":hourglass_flowing_sand: Checking that you may run `testcmd.change`…"
    assert harness.last(BOB).text.startswith(":no_entry: You may not run `testcmd.change`")
    assert working_lines(harness, BOB) == [] and recorder.calls == []
    assert [r["outcome"] for r in audit_items()] == ["denied"]
    # While the group's members are cached (Bob's check listed them), the ack decides for everyone,
    # without asking Slack again.
    lookups = len(harness.slack.calls_to("usergroups.users.list"))
    assert lookups == 1
    assert "Working on it" in harness.command("/testcmd", "change thing", user=ALICE).text
    assert "Working on it" in harness.command("/testcmd", "change thing", user=ALICE).text
    ack = harness.command("/testcmd", "change thing", user=BOB)
    assert ack.text.startswith(":no_entry: You may not run `testcmd.change`: only members of")
    assert len(harness.slack.calls_to("usergroups.users.list")) == lookups
    assert len(recorder.calls) == 2
    assert [r["outcome"] for r in audit_items()].count("denied") == 2


def test_a_failed_group_lookup_is_not_decided_from_the_cache(
    make_harness: Callable[..., SlackHarness],
) -> None:
    harness, recorder = app_with(
        make_harness, OPSBOT_POLICY=json.dumps({"rules": [{"allow": ["*"], "usergroups": ["S0MISSING"]}]})
    )
    harness.command("/testcmd", "change thing", user=ALICE)  # Slack cannot list S0MISSING
    ack = harness.command("/testcmd", "change thing", user=ALICE)
    assert "Checking that you may run" in ack.text and recorder.calls == []


def test_read_only_commands_open_to_everyone_keep_their_working_line(harness: SlackHarness) -> None:
    ack = harness.command("/ops", "whoami", user=BOB)
    assert ack.text.startswith(":hourglass_flowing_sand:") and "Checking that you may" not in ack.text


def test_a_policy_from_ssm_not_fetched_yet_is_checked_in_the_lazy_half(
    make_harness: Callable[..., SlackHarness],
) -> None:
    from bot.aws.clients import client

    client("ssm").put_parameter(Name="/opsbot/policy", Value=json.dumps(USERS_ONLY), Type="String")
    harness, recorder = app_with(make_harness, OPSBOT_POLICY_PARAMETER="/opsbot/policy")
    first = harness.command("/testcmd", "change thing", user=BOB)
    assert "Checking that you may run" in first.text  # the ack makes no AWS call
    assert harness.last(BOB).text.startswith(":no_entry:")
    # Fetched and cached by the lazy half: from now on the ack decides.
    second = harness.command("/testcmd", "change thing", user=BOB)
    assert second.text.startswith(":no_entry:")
    assert recorder.calls == [] and [r["outcome"] for r in audit_items()] == ["denied", "denied"]


@pytest.mark.parametrize("policy", [USERS_ONLY, GROUPS])
def test_the_decision_in_the_ack_is_the_lazy_halfs(
    make_harness: Callable[..., SlackHarness], policy: dict[str, object]
) -> None:
    """Whatever the ack decided, the authorizer decides the same with Slack at hand."""
    harness, _ = app_with(make_harness, OPSBOT_POLICY=json.dumps(policy))
    runtime = runtime_of(harness.app)
    from slack_sdk import WebClient

    slack = WebClient(token=harness.slack.bot_token, base_url=harness.slack.api_url)
    for user in (ALICE, BOB, CAROL):
        for mutating in (True, False):
            now = runtime.authorizer.decide_now(
                "testcmd.change", mutating=mutating, user=user[0], channel="C0OPS"
            )
            full = runtime.authorizer.decide(
                "testcmd.change", mutating=mutating, user=user[0], channel="C0OPS", slack=slack
            )
            if now is not None:
                assert now.allowed == full.allowed, (user, mutating)


def test_a_caller_refused_by_user_id_gets_no_form_to_fill(make_harness: Callable[..., SlackHarness]) -> None:
    """`/device activate` alone opens a form in the ack: for a caller the policy refuses from the user id
    alone, that form would ask for an activation code only to refuse it on submission."""
    policy = {"rules": [{"allow": ["device.activate"], "users": [CAROL[0]]}]}
    harness = make_harness(OPSBOT_POLICY=json.dumps(policy))
    ack = harness.command("/device", "activate", user=BOB)
    assert ack.text.startswith(":no_entry: You may not run `device.activate`: only <@U0CAROL> may run")
    assert harness.slack.calls_to("views.open") == []
    assert [(r["command"], r["outcome"]) for r in audit_items()] == [("/device activate", "denied")]
    # Carol, granted by id, gets the form.
    assert harness.command("/device", "activate", user=CAROL).text == ""
    assert len(harness.slack.calls_to("views.open")) == 1
