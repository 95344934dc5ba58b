"""The local Slack Web API server rejects what Slack would reject, so tests and the demo catch it."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.local.slack_api import LocalSlack
from bot.render.blocks import button, code_blocks, fit, header, problems, section


@pytest.fixture
def slack() -> Any:
    with LocalSlack(usergroups={"S1": ["U1"]}) as server:
        yield server


def client(slack: LocalSlack, token: str | None = None) -> WebClient:
    return WebClient(token=token or slack.bot_token, base_url=slack.api_url)


def test_post_update_and_record(slack: LocalSlack) -> None:
    web = client(slack)
    posted = web.chat_postMessage(channel="C1", text="hi", blocks=[section("hello")])
    web.chat_update(channel="C1", ts=posted["ts"], text="bye", blocks=[section("bye")])
    (message,) = slack.messages
    assert message.text == "bye" and message.revision == 1
    assert [c.method for c in slack.calls] == ["chat.postMessage", "chat.update"]


@pytest.mark.parametrize(
    ("blocks", "error"),
    [
        ([{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}], "invalid_blocks"),
        ([header("h" * 10)] * 51, "invalid_blocks"),
        ([section("y" * 2999)] * 5, "msg_blocks_too_long"),
        ([{"type": "actions", "elements": [button(f"b{i}", f"a{i}") for i in range(26)]}], "invalid_blocks"),
        ([{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}], "invalid_blocks"),
        (
            [
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "text": {"type": "plain_text", "text": "b"},
                            "action_id": "a",
                            "value": "v" * 2001,
                        }
                    ],
                }
            ],
            "invalid_blocks",
        ),
    ],
)
def test_messages_slack_would_reject_are_rejected(slack: LocalSlack, blocks: list[Any], error: str) -> None:
    with pytest.raises(SlackApiError) as info:
        client(slack).chat_postMessage(channel="C1", text="t", blocks=blocks)
    assert info.value.response["error"] == error
    assert slack.violations and slack.messages == []


def test_bad_token_and_unknown_method(slack: LocalSlack) -> None:
    with pytest.raises(SlackApiError, match="invalid_auth"):
        client(slack, token="xoxb-wrong").auth_test()
    with pytest.raises(SlackApiError, match="unknown_method"):
        client(slack).api_call("chat.frobnicate")


def test_response_url_replaces_and_allows_five_uses(slack: LocalSlack) -> None:
    posted = client(slack).chat_postMessage(channel="C1", text="alert")
    message = slack.find(posted["ts"])
    url = slack.new_response_url("C1", "U1", message)

    def post(body: dict[str, Any]) -> int:
        request = urllib.request.Request(
            url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)

    assert post({"replace_original": True, "text": "handled"}) == 200
    assert message is not None and message.text == "handled"
    assert [post({"text": f"n{i}"}) for i in range(5)] == [200, 200, 200, 200, 404]


def test_files_upload_v2_round_trip(slack: LocalSlack) -> None:
    client(slack).files_upload_v2(
        channel="C1", content="line 1\nline 2\n", filename="timeline.txt", title="Timeline"
    )
    (stored,) = slack.files.values()
    assert stored["content"] == b"line 1\nline 2\n" and stored["title"] == "Timeline"
    assert slack.messages[-1].files[0]["name"] == "timeline.txt"


def test_usergroups(slack: LocalSlack) -> None:
    assert client(slack).usergroups_users_list(usergroup="S1")["users"] == ["U1"]
    with pytest.raises(SlackApiError, match="no_such_subteam"):
        client(slack).usergroups_users_list(usergroup="S9")


def test_builders_stay_within_limits() -> None:
    lines = [f"2026-11-27T01:00:{i % 60:02d}Z  line {i} " + "x" * (i % 300) for i in range(2000)]
    blocks = code_blocks(lines)
    assert all(not problems([b]) for b in blocks)
    kept, dropped = fit([header("t"), *blocks], note="Truncated: the full timeline is attached.")
    assert dropped and problems(kept) == []
    assert kept[-1]["type"] == "context"


def test_the_console_retires_the_buttons_of_a_replaced_or_deleted_message(slack: LocalSlack) -> None:
    import io
    import logging

    from bot.local.console import Console, Person
    from bot.local.server import TrackingLazyRunner
    from bot.render.blocks import actions

    out = io.StringIO()
    console = Console(
        slack=slack, app_url="http://127.0.0.1:9/unused", signing_secret="s",
        runner=TrackingLazyRunner(logging.getLogger("test")), people=[Person("U1", "alice")],
        channels={"C1": "ops"}, out=out,
    )  # fmt: skip
    web = client(slack)
    posted = web.chat_postMessage(
        channel="C1", text="v1", blocks=[section("v1"), actions([button("Go", "a:go")])]
    )
    web.chat_update(
        channel="C1", ts=posted["ts"], text="v2", blocks=[section("v2"), actions([button("Go", "a:go")])]
    )
    assert [b.text for b, _, _ in console.buttons] == ["Go", "Go"]  # [1] of v1, [2] of v2
    console.handle("click 1")
    assert "Button [1] belonged to a message that has since been replaced" in out.getvalue()
    # An ephemeral message replaced through its response_url (replace_original) retires its buttons too.
    url = slack.new_response_url("C1", "U1")
    request = urllib.request.Request(
        url,
        data=json.dumps({"text": "e1", "blocks": [actions([button("Undo", "a:undo")])]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request).close()
    ephemeral = console.buttons[-1][1]
    replace = urllib.request.Request(
        slack.new_response_url("C1", "U1", ephemeral),
        data=json.dumps({"replace_original": True, "text": "done"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(replace).close()
    console.handle("click 3")
    assert "Button [3] belonged to a message that has since been replaced" in out.getvalue()
    web.chat_delete(channel="C1", ts=posted["ts"])
    assert "opsbot deleted its message in #ops." in out.getvalue()
    console.handle("click 2")
    assert "Button [2] belonged to a message that has since been deleted" in out.getvalue()
    assert console.sent == 0  # nothing reached the app
