"""handlers/lazy_failure.py: the Slack function's on-failure destination, with Lambda's invocation records
(tests/events/lambda_destination_*.json) against moto and the local Slack server."""

from __future__ import annotations

import base64
import importlib
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest

from bot.aws import clients
from bot.aws.dynamo import from_item
from bot.aws.state import create_state_table
from bot.local.slack_api import LocalSlack
from tests.support.events import load_event
from tests.support.slack import ALICE, OPS_CHANNEL, local_slack


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalSlack]:
    from moto import mock_aws

    server = local_slack().start()
    monkeypatch.setenv("SLACK_API_URL", server.api_url)
    with mock_aws():
        clients.clear_caches()
        create_state_table("opsbot-state")
        yield server
    server.stop()
    assert server.violations == []


def handler() -> Any:
    sys.modules.pop("handlers.lazy_failure", None)
    return importlib.import_module("handlers.lazy_failure").handler


def with_response_url(record: dict[str, Any], url: str) -> dict[str, Any]:
    """The record's lazy event, its body's response_url pointing at the local Slack."""
    payload = record["requestPayload"]
    fields = dict(parse_qsl(base64.b64decode(payload["body"]).decode(), keep_blank_values=True))
    fields["response_url"] = url
    payload["body"] = base64.b64encode(urlencode(fields).encode()).decode()
    return record


def audit_items() -> list[dict[str, Any]]:
    return [from_item(i) for i in clients.client("dynamodb").scan(TableName="opsbot-state")["Items"]]


def test_work_lambda_dropped_as_too_old_is_audited_and_the_user_told(slack: LocalSlack) -> None:
    record = with_response_url(
        load_event("lambda_destination_event_age_exceeded"), slack.new_response_url(OPS_CHANNEL[0], ALICE[0])
    )
    result = handler()(record, None)
    assert result["recorded"] and result["told"] and result["outcome"] == "not_run"
    (item,) = audit_items()
    assert (item["command"], item["outcome"], item["user"], item["channel"], item["kind"]) == (
        "/ops whoami", "not_run", ALICE[0], OPS_CHANNEL[0], "command",
    )  # fmt: skip
    assert item["ref"] == result["ref"] and item["detail"] == "Lambda EventAgeExceeded"
    (note,) = slack.messages
    assert note.ephemeral_to == ALICE[0]
    assert note.text.startswith(":x: `/ops whoami` was not run") and "nothing was changed" in note.text
    assert result["ref"] in note.text


def test_work_that_died_is_audited_as_an_error_and_the_user_warned(slack: LocalSlack) -> None:
    record = with_response_url(
        load_event("lambda_destination_retries_exhausted"), slack.new_response_url(OPS_CHANNEL[0], ALICE[0])
    )
    result = handler()(record, None)
    assert result["outcome"] == "error"
    (item,) = audit_items()
    assert item["detail"] == "Lambda RetriesExhausted (Unhandled)"
    (note,) = slack.messages
    assert "stopped before it finished" in note.text and "check before trying again" in note.text


def test_lazy_work_the_slack_function_refused_is_reported_as_not_run(slack: LocalSlack) -> None:
    record = with_response_url(
        load_event("lambda_destination_retries_exhausted"), slack.new_response_url(OPS_CHANNEL[0], ALICE[0])
    )
    record["responsePayload"] = {
        "errorMessage": "the Slack signature does not match",
        "errorType": "InternalRequestRefused",
        "requestId": record["requestContext"]["requestId"],
        "stackTrace": ['  File "/var/task/handlers/slack.py", line 14, in handler\n'],
    }
    assert handler()(record, None)["outcome"] == "not_run"
    (item,) = audit_items()
    assert item["detail"] == "Lambda RetriesExhausted (InternalRequestRefused)"
    (note,) = slack.messages
    assert "was not run: opsbot could not verify the request again" in note.text


def test_arguments_are_not_recorded(slack: LocalSlack) -> None:
    record = load_event("lambda_destination_event_age_exceeded")
    payload = record["requestPayload"]
    fields = dict(parse_qsl(base64.b64decode(payload["body"]).decode()))
    fields.update(command="/device", text="activate SN-1 AC-0011223344556677")
    fields["response_url"] = slack.new_response_url(OPS_CHANNEL[0], ALICE[0])
    payload["body"] = base64.b64encode(urlencode(fields).encode()).decode()
    handler()(record, None)
    (item,) = audit_items()
    assert (item["command"], item["args"]) == ("/device activate", "[redacted]")
    assert "AC-0011" not in str(item) and "AC-0011" not in slack.messages[0].text


def test_a_response_url_outside_slack_is_not_called(slack: LocalSlack) -> None:
    record = with_response_url(
        load_event("lambda_destination_event_age_exceeded"), "http://169.254.169.254/x"
    )
    result = handler()(record, None)
    assert result["recorded"] and not result["told"]
    assert slack.messages == []


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r["requestPayload"].pop("method"),  # an API Gateway event, not the lazy self-invocation
        lambda r: r.update(requestPayload={"anything": 1}),
        lambda r: r.update(requestPayload=None),
    ],
    ids=["not internal", "another payload", "no payload"],
)
def test_records_that_are_not_our_lazy_work_change_nothing(slack: LocalSlack, change: Any) -> None:
    record = load_event("lambda_destination_event_age_exceeded")
    change(record)
    assert handler()(record, None) == {"recorded": False, "told": False}
    assert audit_items() == [] and slack.messages == []


def test_a_dropped_button_click_is_audited_and_the_clicker_told(slack: LocalSlack) -> None:
    from bot.local.requests import block_actions_body

    record = load_event("lambda_destination_event_age_exceeded")
    body = block_actions_body(
        action={"type": "button", "action_id": "mail:reenable", "value": "a@example.com"}, block_id="b",
        message={"type": "message", "ts": "1700000000.000100", "text": "t", "blocks": []},
        user_id=ALICE[0], user_name=ALICE[1], channel_id=OPS_CHANNEL[0], channel_name=OPS_CHANNEL[1],
        team_id=slack.team_id, response_url=slack.new_response_url(OPS_CHANNEL[0], ALICE[0]),
        message_ts="1700000000.000100", ephemeral=False,
    )  # fmt: skip
    record["requestPayload"]["body"] = base64.b64encode(body.encode()).decode()
    result = handler()(record, None)
    (item,) = audit_items()
    assert (item["kind"], item["command"], item["outcome"]) == ("action", "button mail:reenable", "not_run")
    assert "args" not in item  # the button's value is not recorded
    (note,) = slack.messages
    assert note.ephemeral_to == ALICE[0] and note.text.startswith(":x: Your click was not run")
    assert result["told"]


def test_a_dropped_shortcut_is_audited_and_its_user_told(slack: LocalSlack) -> None:
    from bot.local.requests import message_action_body

    record = load_event("lambda_destination_event_age_exceeded")
    body = message_action_body(
        callback_id="apilogs_lookup_ids", message={"type": "message", "ts": "1700000000.000100", "text": "t"},
        user_id=ALICE[0], user_name=ALICE[1], channel_id=OPS_CHANNEL[0], channel_name=OPS_CHANNEL[1],
        team_id=slack.team_id, response_url=slack.new_response_url(OPS_CHANNEL[0], ALICE[0]),
    )  # fmt: skip
    record["requestPayload"]["body"] = base64.b64encode(body.encode()).decode()
    handler()(record, None)
    (item,) = audit_items()
    assert (item["kind"], item["command"], item["outcome"]) == (
        "shortcut",
        "shortcut apilogs_lookup_ids",
        "not_run",
    )
    (note,) = slack.messages
    assert note.ephemeral_to == ALICE[0] and note.text.startswith(":x: Your shortcut was not run")


def _with_body(record: dict[str, Any], body: str) -> dict[str, Any]:
    record["requestPayload"]["body"] = base64.b64encode(body.encode()).decode()
    return record


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r["requestPayload"]["headers"].update({"x-slack-request-timestamp": "\u00b2\u00b3"}),
        lambda r: _with_body(r, "payload=" + "%5B" * 50_000),
        lambda r: _with_body(
            r, "payload=" + "%7B%22type%22%3A%22block_actions%22%2C%22actions%22%3A%5B1%5D%7D"
        ),
    ],
    ids=["superscript digits as timestamp", "deeply nested payload", "actions not objects"],
)
def test_hostile_records_never_raise(slack: LocalSlack, change: Any) -> None:
    """Only principals allowed to invoke the function can send a record, but a record that raises would be
    retried by Lambda and alarm: whatever it holds, it is answered."""
    record = load_event("lambda_destination_event_age_exceeded")
    change(record)
    result = handler()(record, None)
    assert isinstance(result, dict)


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.slack.com@evil.example/x",
        "https://hooks.slack.com.evil.example/x",
        "http://hooks.slack.com/x",
        "https://evil.example/https://hooks.slack.com/x",
        "https://evil.example\\@hooks.slack.com/x",
        "file:///etc/passwd",
    ],
)
def test_response_urls_outside_slack_are_never_called(slack: LocalSlack, url: str) -> None:
    from bot.config import Settings
    from bot.intake.lazy_failure import _slack_url

    assert not _slack_url(url, Settings.from_env())
