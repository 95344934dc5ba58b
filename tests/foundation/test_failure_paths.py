"""What the user sees and what is audited when something goes wrong on the way: long input, replies Slack
refuses, a slow Slack in the ack, rejected forms, link clicks, another workspace, bad signatures."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot.errors import UsageError
from bot.listeners.args import ArgSpec, parse
from bot.listeners.framework import (
    MAX_MESSAGE_TEXT,
    Command,
    ModalSubmit,
    Positional,
    Reply,
    Subcommand,
    register_command,
    register_modal,
    runtime_of,
    usage_line,
)
from bot.listeners.framework import (
    ArgSpec as FrameworkArgSpec,
)
from bot.local.requests import signed_headers, slash_command_body
from bot.local.slack_api import LocalSlack, Message
from bot.render.blocks import actions, button, escape
from tests.foundation.test_framework import audit_items
from tests.support.slack import ALICE, OPS_CHANNEL, SIGNING_SECRET, SlackHarness


def wait_for_audit(predicate: Callable[[dict[str, Any]], bool], timeout: float = 10) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in audit_items() if predicate(r)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def add_command(harness: SlackHarness, name: str, *subs: Subcommand) -> None:
    register_command(harness.app, Command(name, f"test command {name}", subs))
    runtime_of(harness.app).seal()


# -- long input ------------------------------------------------------------------------------------


def test_a_pasted_wall_of_text_gets_a_usage_message_that_fits(harness: SlackHarness) -> None:
    ack = harness.command("/ops", "z" * 3990)
    assert ack.status == 200 and len(ack.text) <= MAX_MESSAGE_TEXT
    seen = harness.last().text  # the local Slack refuses (and records) an ack Slack would refuse
    assert seen.startswith(":warning: `/ops` has no subcommand `zzz") and "…`" in seen
    assert len(seen) < 300
    (record,) = audit_items()
    assert record["outcome"] == "usage"


def test_many_unexpected_arguments_are_counted_not_all_quoted(harness: SlackHarness) -> None:
    harness.command("/ops", "whoami " + "z " * 1900)
    seen = harness.last().text
    assert "Unexpected `z` `z` `z` `z` `z` and 1895 more." in seen and len(seen) < 200


@pytest.mark.parametrize(
    ("tokens", "expected"),
    [
        (["x" * 500], "Unexpected `" + "x" * 79 + "…`."),
        (["--" + "f" * 500], "Unknown option `--" + "f" * 77 + "…`. Options here: --n."),
        (["--n", "y" * 500], "--n takes a whole number, not `" + "y" * 79 + "…`."),
    ],
)
def test_parser_messages_quote_at_most_80_characters(tokens: list[str], expected: str) -> None:
    from bot.listeners.args import Flag

    with pytest.raises(UsageError) as info:
        parse(tokens, ArgSpec(flags=(Flag("n", kind="int"),)))
    assert info.value.message == expected


def test_a_long_error_from_a_run_still_reaches_the_user(harness: SlackHarness) -> None:
    def fail(call: Any) -> Reply:
        raise UsageError("No source named " + "t" * 5000 + ".")

    add_command(harness, "longcmd", Subcommand("go", "Go.", run=fail))
    harness.command("/longcmd", "go")
    seen = harness.last().text
    assert seen.startswith(":warning: No source named ttt") and len(seen) == MAX_MESSAGE_TEXT
    assert [r["outcome"] for r in audit_items()] == ["usage"]


def test_an_aws_error_no_module_translated_still_names_what_to_fix(harness: SlackHarness) -> None:
    """Every AWS call in bot/aws translates its errors; one that does not must not end as ':boom:'."""
    from botocore.exceptions import ClientError

    denied = (
        "User: arn:aws:sts::123456789012:assumed-role/opsbot-slack/x is not authorized to perform: "
        "dynamodb:Scan on resource: arn:aws:dynamodb:us-east-1:123456789012:table/other"
    )

    def fail(call: Any) -> Reply:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": denied}}, "Scan")

    add_command(harness, "rawaws", Subcommand("go", "Go.", run=fail))
    harness.command("/rawaws", "go")
    seen = harness.last().text
    assert seen.startswith(":x: opsbot is missing the IAM permission `dynamodb:Scan`"), seen
    assert "Something went wrong" not in seen
    assert [r["outcome"] for r in audit_items()] == ["error"]


def test_a_reply_slack_refuses_is_replaced_by_a_short_note(
    harness: SlackHarness, slack_server: LocalSlack, caplog: pytest.LogCaptureFixture
) -> None:
    # A section longer than Slack allows, built by hand (the builders in bot.render would cut it).
    too_long = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3500}}]
    add_command(
        harness, "refusedcmd", Subcommand("go", "Go.", run=lambda call: Reply("big", blocks=too_long))
    )
    with caplog.at_level(logging.WARNING, logger="opsbot.listeners"):
        harness.command("/refusedcmd", "go")
    (record,) = audit_items()
    seen = harness.last().text
    assert seen.startswith(":warning: opsbot's reply could not be shown here (Slack answered HTTP 400")
    assert f"Reference `{record['ref']}`" in seen
    assert "Slack refused the reply ref=" + record["ref"] in caplog.text
    assert record["outcome"] == "ok" and "not delivered" in record["detail"]
    assert slack_server.violations and all("response_url" in v for v in slack_server.violations)
    slack_server.violations.clear()  # the refusal was the point of this test

    # A run can say what the user must know all the same (the work was done).
    add_command(
        harness,
        "refusedtoo",
        Subcommand("go", "Go.", run=lambda call: Reply("big", blocks=too_long, if_not_shown="It was done.")),
    )
    harness.command("/refusedtoo", "go")
    assert harness.last().text.endswith("It was done.")
    slack_server.violations.clear()


# -- a slow Slack while a form opens in the ack ----------------------------------------------------


@pytest.fixture
def silent_slack() -> Iterator[str]:
    """A Slack Web API URL that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield f"http://127.0.0.1:{server.getsockname()[1]}/api/"


def form_command(harness: SlackHarness) -> list[str]:
    ran: list[str] = []
    view = {"type": "modal", "callback_id": "t", "title": {"type": "plain_text", "text": "T"}, "blocks": []}
    add_command(
        harness,
        "formcmd",
        Subcommand("go", "Go.", run=lambda call: ran.append("run") or None, modal=lambda args, caller: view,
                   spec=FrameworkArgSpec((Positional("target", optional=True),))),
    )  # fmt: skip
    return ran


@pytest.mark.serial  # asserts on the wall clock: run apart from the parallel run
def test_a_form_slack_does_not_open_in_time_is_a_sentence_within_slacks_three_seconds(
    make_harness: Callable[..., SlackHarness], slack_server: LocalSlack, silent_slack: str
) -> None:
    harness = make_harness(SLACK_API_URL=silent_slack)
    ran = form_command(harness)
    started = time.monotonic()
    ack = harness.command("/formcmd", "go")
    assert time.monotonic() - started < 2.8
    assert ack.status == 200 and "Slack did not open the form in time" in harness.last().text
    (record,) = audit_items()
    assert record["outcome"] == "error" and record["detail"].startswith("the form did not open")
    assert ran == []


def test_a_form_slack_refuses_is_a_sentence_and_an_error_record(harness: SlackHarness) -> None:
    ran = form_command(harness)
    harness.slack.fail_next("views.open", "expired_trigger_id")
    harness.command("/formcmd", "go")
    assert "Slack refused the request (`expired_trigger_id`)" in harness.last().text
    (record,) = audit_items()
    assert (record["outcome"], record["detail"]) == ("error", "the form did not open: expired_trigger_id")
    assert ran == []


# -- audit gaps -------------------------------------------------------------------------------------


def test_a_form_submission_its_checks_reject_is_audited_without_the_values(harness: SlackHarness) -> None:
    ran: list[str] = []
    register_modal(
        harness.app,
        ModalSubmit(
            "test:form",
            run=lambda call: ran.append("run") or Reply("done"),
            action="ops.policy",
            mutating=False,
            validate=lambda values: {} if values.get("name") else {"name": "Give a name, not 'S3CRET'."},
            secret_fields=frozenset({"pin"}),
        ),
    )
    view = {
        "type": "modal",
        "callback_id": "test:form",
        "private_metadata": '{"channel": "C0OPS"}',
        "blocks": [
            {"type": "input", "block_id": "name", "element": {"type": "plain_text_input", "action_id": "v"}},
            {"type": "input", "block_id": "pin", "element": {"type": "plain_text_input", "action_id": "v"}},
        ],
    }
    refused = harness.submit(view, {"name": "", "pin": "S3CRET"})
    assert refused.json["response_action"] == "errors" and "name" in refused.json["errors"]
    (record,) = audit_items()
    assert (record["kind"], record["outcome"], record["detail"]) == ("view", "usage", "invalid: name")
    assert record["channel"] == "C0OPS" and "S3CRET" not in str(record)
    harness.submit(view, {"name": "thing", "pin": "S3CRET"})
    assert ran == ["run"] and sorted(r["outcome"] for r in audit_items()) == ["ok", "usage"]


def test_a_link_button_click_is_audited(harness: SlackHarness) -> None:
    url = "https://console.aws.amazon.com/cloudwatch/home#logsV2:logs-insights"
    message = Message(
        OPS_CHANNEL[0], "1700000000.000100", "logs", [actions([button("Open", "link:apilogs-insights", url=url)])],
        "message",
    )  # fmt: skip
    ack = harness.click(message, "link:apilogs-insights")
    assert ack.status == 200
    (record,) = audit_items()
    assert (record["kind"], record["command"], record["outcome"]) == (
        "action",
        "button link:apilogs-insights",
        "link",
    )
    assert record["user"] == ALICE[0] and record["action"] == "link"


# -- help for a subcommand -------------------------------------------------------------------------


def test_help_for_a_subcommand_works_for_every_command(harness: SlackHarness) -> None:
    ack = harness.command("/ops", "help whoami")
    assert "Show who you are to opsbot" in ack.text and "opsbot commands" not in ack.text
    runtime = runtime_of(harness.app)
    for command in runtime.commands.values():
        for sub in command.subcommands:
            if sub.hidden:
                continue
            text = harness.command(command.slash, f"help {sub.name}").text
            assert escape(usage_line(command, sub)) in text and sub.summary in text, (command.name, sub.name)
    assert {r["outcome"] for r in audit_items()} == {"help"}


# -- another workspace -----------------------------------------------------------------------------


def test_a_request_from_another_workspace_is_refused_without_a_call_to_slack(harness: SlackHarness) -> None:
    body = slash_command_body(
        "/ops", "whoami", user_id=ALICE[0], user_name=ALICE[1], channel_id=OPS_CHANNEL[0],
        channel_name=OPS_CHANNEL[1], team_id="T0ELSEWHERE",
        response_url=harness.slack.new_response_url(OPS_CHANNEL[0], ALICE[0]),
    )  # fmt: skip
    ack = harness.dispatch(body)
    assert ack.status == 200 and "belongs to another Slack workspace" in ack.body
    assert harness.slack.calls == [] and harness.slack.messages == []
    assert audit_items() == []
    # The configured workspace still works.
    harness.command("/ops", "whoami")
    assert harness.last().text.startswith("*You are*")


def test_without_slack_team_id_any_workspace_is_served(make_harness: Callable[..., SlackHarness]) -> None:
    harness = make_harness(SLACK_TEAM_ID="")
    body = slash_command_body(
        "/ops", "help", user_id=ALICE[0], user_name=ALICE[1], channel_id=OPS_CHANNEL[0],
        channel_name=OPS_CHANNEL[1], team_id="T0ELSEWHERE",
    )  # fmt: skip
    assert "opsbot commands" in harness.dispatch(body).text


# -- secrets in the log ----------------------------------------------------------------------------


def test_a_badly_signed_request_does_not_log_its_body(
    make_harness: Callable[..., SlackHarness], caplog: pytest.LogCaptureFixture
) -> None:
    """As under ``opsbot serve``, where the root logger is at INFO when the app is built."""
    caplog.set_level(logging.INFO)
    harness = make_harness()
    code = "AC-0123456789abcdef0123"
    response_url = harness.slack.new_response_url(OPS_CHANNEL[0], ALICE[0])
    body = slash_command_body(
        "/device", f"activate SN-1 ID-2 {code} you@example.com", user_id=ALICE[0], user_name=ALICE[1],
        channel_id=OPS_CHANNEL[0], channel_name=OPS_CHANNEL[1], team_id=harness.slack.team_id,
        response_url=response_url,
    )  # fmt: skip
    forged = harness.dispatch(body, headers=signed_headers("not-the-secret", body))
    stale = harness.dispatch(
        body, headers=signed_headers(SIGNING_SECRET, body, timestamp=int(time.time()) - 400)
    )
    assert forged.status == 401 and stale.status == 401
    assert "Invalid request signature detected" in caplog.text  # the event is still visible
    assert code not in caplog.text and "you%40example.com" not in caplog.text
    assert response_url.split("/")[-1] not in caplog.text
