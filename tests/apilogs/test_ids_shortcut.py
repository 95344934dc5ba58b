"""Request ids wherever they appear, through signed requests into the real Bolt app: the "Look up request
ids" message shortcut (0, 1 and 7 ids, Share in thread, a Slack Connect channel, an unauthorized user, a
person of another organisation) and ``@opsbot`` mentions (in a thread, without ids, a retried event)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.aws.state import StateTable
from bot.local.seeds import apilogs as seed_module
from bot.local.slack_api import Message
from tests.support.slack import ALICE, BOB, OPS_CHANNEL, SlackHarness, find_button

CALLBACK = "apilogs_lookup_ids"
SHARE = "apilogs:share"
# Lines of the failed demo request that must never reach a channel through a public summary.
LOG_LINE_WORDS = ("Traceback", "Method completed", "Endpoint request", "customer_id")


def pasted(text: str, ts: str = "1700000000.000100", **extra: Any) -> dict[str, Any]:
    """A message as Slack hands it to a message shortcut."""
    return {"type": "message", "user": "U0CUSTOMER", "ts": ts, "text": text,
            "client_msg_id": "5b2c3d4e-0000-4000-8000-1234567890ab", **extra}  # fmt: skip


def ephemerals(harness: SlackHarness, user: tuple[str, str] = ALICE) -> list[Message]:
    return [m for m in harness.seen_by(user) if m.kind == "ephemeral"]


def posted(harness: SlackHarness) -> list[Message]:
    return [m for m in harness.slack.visible(OPS_CHANNEL[0]) if m.kind == "message"]


def audits(harness: SlackHarness) -> list[dict[str, Any]]:
    day = datetime.now(UTC).date().isoformat()
    return StateTable(harness.settings.state_table).audit_of_day(day, limit=200)


def test_shortcut_on_a_message_with_one_id(harness: SlackHarness, demo: seed_module.DemoApi) -> None:
    failed = demo.failed
    assert failed is not None
    text = f"Customer: checkout fails!\n```HTTP/1.1 502\nx-amzn-RequestId: {failed.api_request_id}```"
    ack = harness.shortcut(CALLBACK, pasted(text))
    assert ack.status == 200 and ack.body == ""
    (answer,) = ephemerals(harness)
    flat = json.dumps(answer.blocks)
    assert "POST /orders" in flat and "502" in flat and "KeyError" in flat and "orders-api" in flat
    assert "Found 1 request id in the message." in flat
    find_button(answer.blocks, SHARE)
    find_button(answer.blocks, "apilogs:tail")  # the lookup's own buttons stay
    assert posted(harness) == []  # private by default
    (record,) = [a for a in audits(harness) if a.get("kind") == "shortcut"]
    assert record["action"] == "apilogs.lookup" and record["outcome"] == "ok"
    assert record["args"] == failed.api_request_id  # the ids, not the pasted text


def test_shortcut_on_a_message_without_ids_says_so_privately(harness: SlackHarness, aws: None) -> None:
    text = "checkout is down again?? see https://status.example.com/incidents and order 12345"
    harness.shortcut(CALLBACK, pasted(text))
    (answer,) = ephemerals(harness)
    assert "No request id in that message" in answer.text
    assert posted(harness) == [] and harness.slack.calls_to("conversations.info") == []
    (record,) = [a for a in audits(harness) if a.get("kind") == "shortcut"]
    assert record["outcome"] == "no-ids"


def test_shortcut_on_seven_ids_looks_up_five_and_names_the_rest(
    harness: SlackHarness, demo: seed_module.DemoApi
) -> None:
    ids = [r.api_request_id for r in demo.requests[:7]]
    assert len(set(ids)) == 7
    # An alert from another tool: the ids in its attachment, one repeated in upper case.
    alert = pasted("5 failed requests", attachments=[{"fallback": "failures", "fields": [
        {"title": "ids", "value": "\n".join([*ids, ids[0].upper()])}]}])  # fmt: skip
    harness.shortcut(CALLBACK, alert)
    answers = ephemerals(harness)
    assert len(answers) == 5  # one per id looked up: five uses of the response_url, Slack's limit
    first = json.dumps(answers[0].blocks)
    assert "Found 7 request ids in the message; looked up the first 5" in first
    assert ids[5] in first and ids[6] in first  # the ones left out are named
    for request_id, answer in zip(ids[:5], answers, strict=True):
        assert request_id in json.dumps(answer.blocks)
    (record,) = [a for a in audits(harness) if a.get("kind") == "shortcut"]
    assert "5 looked up" in record["detail"] and "2 left out" in record["detail"]


def test_ids_not_found_are_named(harness: SlackHarness, demo: seed_module.DemoApi) -> None:
    failed = demo.failed
    assert failed is not None
    missing = "0f7d2c1e-4b2a-4c55-9a3f-8f2b3c4d5e6f"
    harness.shortcut(CALLBACK, pasted(f"two ids: {missing} and {failed.lambda_ids['orders-api']}"))
    answers = ephemerals(harness)
    assert len(answers) == 2
    assert f"Not found: `{missing}`" in json.dumps(answers[0].blocks)
    assert "Nothing found" in json.dumps(answers[0].blocks)
    assert "KeyError" in json.dumps(answers[1].blocks)


def test_share_in_thread_posts_the_lookup_once(harness: SlackHarness, demo: seed_module.DemoApi) -> None:
    failed = demo.failed
    assert failed is not None
    message = pasted(f"look: {failed.api_request_id}", ts="1700000000.000200", thread_ts="1700000000.000100")
    harness.shortcut(CALLBACK, message)
    (answer,) = ephemerals(harness)
    harness.click(answer, SHARE)
    (shared,) = posted(harness)
    assert shared.thread_ts == "1700000000.000100"  # the thread the message is in
    flat = json.dumps(shared.blocks)
    assert "U0ALICE" in flat and "shared" in flat and "KeyError" in flat
    assert SHARE not in flat
    assert "Shared in the thread" in harness.last(ALICE).text
    harness.click(answer, SHARE, user=BOB)  # a second click shares nothing again
    assert len(posted(harness)) == 1
    assert "already shared" in harness.last(BOB).text


def test_slack_connect_channel_refuses_share_unless_the_policy_allows_it(
    make_harness: Callable[..., SlackHarness], demo: seed_module.DemoApi
) -> None:
    failed = demo.failed
    assert failed is not None
    harness = make_harness(OPSBOT_POLICY=json.dumps({"rules": []}))
    harness.shortcut(CALLBACK, pasted(failed.api_request_id))
    (before,) = ephemerals(harness)  # answered while the channel was internal: it has Share
    harness.slack.ext_shared.add(OPS_CHANNEL[0])
    harness.shortcut(CALLBACK, pasted(failed.api_request_id))
    answer = ephemerals(harness)[-1]
    # The private answer still comes (to a member of this workspace), without Share, saying why.
    assert "KeyError" in json.dumps(answer.blocks)
    assert SHARE not in json.dumps(answer.blocks)
    assert "shared with another organisation" in json.dumps(answer.blocks)
    harness.click(before, SHARE)  # the channel is checked when Share is clicked
    assert posted(harness) == []
    assert "Not shared" in harness.last(ALICE).text
    refused = [a for a in audits(harness) if a.get("command") == f"button {SHARE}"]
    assert [a["outcome"] for a in refused] == ["refused-shared-channel"]
    # A person of another organisation gets no log lines, even privately.
    harness.shortcut(CALLBACK, pasted(failed.api_request_id), user=("U0PARTNER", "partner"),
                     user_team_id="T0PARTNER")  # fmt: skip
    assert [m.text for m in ephemerals(harness, ("U0PARTNER", "partner"))] == [
        ":no_entry: opsbot shows log lines to members of its own workspace only, and this channel is not "
        "one the policy opens to another organisation (`shared_channels`)."
    ]
    # Listed in shared_channels: Share posts.
    allowed = make_harness(OPSBOT_POLICY=json.dumps({"rules": [], "shared_channels": [OPS_CHANNEL[0]]}))
    allowed.click(before, SHARE)
    assert len(posted(allowed)) == 1


def test_unauthorized_user_gets_no_lookup(
    make_harness: Callable[..., SlackHarness], demo: seed_module.DemoApi
) -> None:
    failed = demo.failed
    assert failed is not None
    policy = {"default_read": "deny", "rules": [{"allow": ["apilogs.*"], "usergroups": ["S0ONCALL"]}]}
    harness = make_harness(OPSBOT_POLICY=json.dumps(policy))
    harness.shortcut(CALLBACK, pasted(failed.api_request_id), user=BOB)
    (answer,) = ephemerals(harness, BOB)
    assert answer.text.startswith(":no_entry: You may not run `apilogs.lookup`")
    assert "KeyError" not in json.dumps(answer.blocks)
    harness.event(mention(f"<@U0OPSBOT> {failed.api_request_id}", user=BOB[0]))
    assert posted(harness) == []
    assert ephemerals(harness, BOB)[-1].text.startswith(":no_entry:")
    outcomes = sorted((a["kind"], a["outcome"]) for a in audits(harness))
    assert outcomes == [("event", "denied"), ("shortcut", "denied")]


# -- mentions -----------------------------------------------------------------------------------------


def mention(
    text: str, *, user: str = ALICE[0], ts: str = "1700000100.000300", thread_ts: str = ""
) -> dict[str, Any]:
    event = {"type": "app_mention", "user": user, "text": text, "ts": ts, "channel": OPS_CHANNEL[0],
             "event_ts": ts, "team": "T0LOCAL", "user_team": "T0LOCAL"}  # fmt: skip
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def test_mention_in_a_thread_answers_publicly_in_short_and_privately_in_full(
    harness: SlackHarness, demo: seed_module.DemoApi
) -> None:
    failed = demo.failed
    assert failed is not None
    ack = harness.event(mention(f"<@U0OPSBOT> what happened to {failed.extended_id}?",
                                thread_ts="1700000000.000100"))  # fmt: skip
    assert ack.status == 200
    (summary,) = posted(harness)
    assert summary.thread_ts == "1700000000.000100"
    flat = json.dumps(summary.blocks)
    assert "502" in flat and "orders-api" in flat and "KeyError" in flat and "POST /orders" in flat
    assert not [word for word in LOG_LINE_WORDS if word in flat]
    (timeline,) = ephemerals(harness)
    assert timeline.thread_ts == "1700000000.000100" and timeline.ephemeral_to == ALICE[0]
    assert "Traceback" in json.dumps(timeline.blocks)
    (record,) = [a for a in audits(harness) if a.get("kind") == "event"]
    assert record["outcome"] == "ok" and record["args"] == failed.extended_id


def test_mention_without_ids_is_a_private_help_line(harness: SlackHarness, aws: None) -> None:
    harness.event(mention("<@U0OPSBOT> hi, are you there? ping <@U0BOB>"))
    assert posted(harness) == []
    (help_line,) = ephemerals(harness)
    assert "request ids" in help_line.text


def test_retried_event_is_answered_once(harness: SlackHarness, demo: seed_module.DemoApi) -> None:
    failed = demo.failed
    assert failed is not None
    event = mention(f"<@U0OPSBOT> {failed.api_request_id}")
    harness.event(event, event_id="Ev0RETRIED1")
    harness.event(event, event_id="Ev0RETRIED1", retry=1)
    harness.event(event, event_id="Ev0RETRIED1", retry=2)
    assert len(posted(harness)) == 1 and len(ephemerals(harness)) == 1
    outcomes = sorted(a["outcome"] for a in audits(harness) if a.get("kind") == "event")
    assert outcomes == ["duplicate", "duplicate", "ok"]


def test_mention_in_a_slack_connect_channel_keeps_details_private(
    harness: SlackHarness, demo: seed_module.DemoApi
) -> None:
    failed = demo.failed
    assert failed is not None
    harness.slack.ext_shared.add(OPS_CHANNEL[0])
    harness.event(mention(f"<@U0OPSBOT> {failed.api_request_id}"))
    (summary,) = posted(harness)
    assert "shared with another organisation" in summary.text
    assert "KeyError" not in json.dumps(summary.blocks) and "502" not in json.dumps(summary.blocks)
    assert "KeyError" in json.dumps(ephemerals(harness)[0].blocks)


def test_messages_of_other_apps_are_ignored(harness: SlackHarness, demo: seed_module.DemoApi) -> None:
    failed = demo.failed
    assert failed is not None
    event = mention(f"<@U0OPSBOT> {failed.api_request_id}") | {"bot_id": "B0ALERTS", "subtype": "bot_message"}
    harness.event(event)
    assert harness.slack.calls == [] and audits(harness) == []


@pytest.mark.parametrize("kind", ["shortcut", "mention"])
def test_acks_make_no_slack_call(harness: SlackHarness, aws: None, kind: str) -> None:
    """The ack is answered before the lazy work starts: nothing in it waits on Slack."""
    from bot.local.requests import event_body, message_action_body, signed_headers
    from tests.support.slack import SIGNING_SECRET

    some_id = "9439989f-7543-11e6-8dda-150c09a55dc2"
    if kind == "shortcut":
        body = message_action_body(
            callback_id=CALLBACK, message=pasted(some_id), user_id=ALICE[0], user_name=ALICE[1],
            channel_id=OPS_CHANNEL[0], channel_name=OPS_CHANNEL[1], team_id=harness.slack.team_id,
            response_url=harness.slack.new_response_url(OPS_CHANNEL[0], ALICE[0]),
        )  # fmt: skip
        headers = signed_headers(SIGNING_SECRET, body)
    else:
        body = event_body(mention(f"<@U0OPSBOT> {some_id}"), team_id=harness.slack.team_id)
        headers = signed_headers(SIGNING_SECRET, body, form=False)
    harness.runner.hold()
    try:
        ack = harness.dispatch(body, headers=headers, wait=False)
        assert ack.status == 200 and ack.body == ""
        assert harness.slack.calls == []
    finally:
        harness.runner.release()
    harness.wait()


def test_unsigned_requests_are_refused(harness: SlackHarness, aws: None) -> None:
    from bot.local.requests import event_body, signed_headers

    body = event_body(mention("<@U0OPSBOT> 9439989f-7543-11e6-8dda-150c09a55dc2"), team_id="T0LOCAL")
    ack = harness.dispatch(body, headers=signed_headers("not-the-secret", body, form=False))
    assert ack.status == 401 and harness.slack.calls == []


def test_the_manifest_declares_what_the_app_listens_to() -> None:
    from bot.core.ops.checks.slack import manifest_scopes
    from bot.listeners.apilogs_ids import SHORTCUT_CALLBACK
    from bot.render import apilogs_ids as render

    manifest = json.loads((Path(__file__).parents[2] / "bot" / "manifest.json").read_text())
    shortcuts = manifest["features"]["shortcuts"]
    assert [(s["type"], s["callback_id"]) for s in shortcuts] == [("message", SHORTCUT_CALLBACK)]
    assert SHORTCUT_CALLBACK == render.SHORTCUT_CALLBACK
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == ["app_mention"]
    assert "app_mentions:read" in manifest_scopes()  # what /ops doctor compares the token's scopes with
