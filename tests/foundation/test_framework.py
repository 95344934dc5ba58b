"""The command framework through signed requests into the real Bolt app: acks, lazy work, policy,
errors with reference ids, audit records with secrets redacted, idempotent buttons."""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bot.aws import clients
from bot.errors import OpsbotError
from bot.listeners.framework import (
    ActionCall,
    ArgSpec,
    ButtonAction,
    Call,
    Command,
    Positional,
    Reply,
    Subcommand,
    register_action,
    register_command,
    runtime_of,
)
from bot.render.blocks import actions, button, section
from tests.support.slack import ALICE, BOB, CAROL, SlackHarness


def audit_items() -> list[dict[str, Any]]:
    from bot.aws.dynamo import from_item

    items = clients.client("dynamodb").scan(TableName="opsbot-state")["Items"]
    return [from_item(i) for i in items if i["pk"]["S"].startswith("audit#")]


class Recorder:
    def __init__(self) -> None:
        self.calls: list[Call | ActionCall] = []


def add_test_command(harness: SlackHarness, recorder: Recorder, *, fail: Exception | None = None) -> None:
    def run_change(call: Call) -> Reply:
        recorder.calls.append(call)
        if fail is not None:
            raise fail
        blocks = [
            section(f"Changed {call.args['target']}"),
            actions([button("Undo", "testcmd:undo", call.args["target"])]),
        ]
        return Reply(text=f"Changed {call.args['target']}", blocks=blocks, in_channel=True)

    def run_undo(call: ActionCall) -> Reply:
        recorder.calls.append(call)
        return Reply(text=f"Undone by <@{call.user_id}>", replace_original=True, outcome="undone")

    command = Command(
        name="testcmd",
        summary="a command that changes something",
        subcommands=(
            Subcommand(
                "change",
                "Change a target.",
                run=run_change,
                mutating=True,
                spec=ArgSpec((Positional("target"), Positional("code", secret=True, optional=True))),
            ),
        ),
    )
    register_command(harness.app, command)
    register_action(harness.app, ButtonAction("testcmd:undo", run_undo, action="testcmd.change"))
    runtime_of(harness.app).seal()  # re-validate the policy now that testcmd's actions exist


def test_help_lists_every_registered_command(harness: SlackHarness) -> None:
    ack = harness.command("/ops", "help")
    commands = runtime_of(harness.app).commands
    assert "ops" in commands
    for command in commands.values():
        assert f"*{command.slash}*" in ack.text and command.summary in ack.text
    assert audit_items()[0]["outcome"] == "ok"


def test_every_command_answers_help(harness: SlackHarness) -> None:
    for text in ("help", "help whoami", "whoami --help", "whoami help"):
        ack = harness.command("/ops", text)
        assert ack.status == 200 and ack.json["response_type"] == "ephemeral"
    assert "whoami" in harness.command("/ops", "help whoami").text


def test_unknown_subcommand_gets_usage_and_nothing_runs(harness: SlackHarness) -> None:
    ack = harness.command("/ops", "frobnicate now")
    assert "has no subcommand `frobnicate`" in ack.text and "/ops help" in ack.text
    assert [i["outcome"] for i in audit_items()] == ["usage"]
    assert harness.slack.calls == []


def test_whoami_shows_grants_per_user(harness: SlackHarness) -> None:
    recorder = Recorder()
    add_test_command(harness, recorder)
    harness.command("/ops", "whoami", user=ALICE)
    alice = harness.last(ALICE).text
    assert "S0ONCALL" in alice and "`testcmd.change` :lock:" in alice.split("Not allowed")[0]
    harness.command("/ops", "whoami", user=BOB)
    bob = harness.last(BOB).text
    assert "`testcmd.change` :lock:" in bob.split("Not allowed")[1]


def test_mutating_command_denied_names_who_may(harness: SlackHarness) -> None:
    recorder = Recorder()
    add_test_command(harness, recorder)
    harness.command("/testcmd", "change thing", user=BOB)
    assert recorder.calls == []
    denial = harness.last(BOB).text
    assert "You may not run `testcmd.change`" in denial and "members of <!subteam^S0ONCALL>" in denial
    record = audit_items()[0]
    assert (
        record["outcome"] == "denied" and record["user"] == BOB[0] and record["command"] == "/testcmd change"
    )


def test_allowed_command_runs_replies_in_channel_and_audits(harness: SlackHarness) -> None:
    recorder = Recorder()
    add_test_command(harness, recorder)
    ack = harness.command("/testcmd", "change thing AC-0123456789abcdef0123")
    assert "Checking that you may run `testcmd.change`" in ack.text  # the on-call group decides
    assert len(recorder.calls) == 1
    message = harness.last(BOB)  # in_channel: everyone sees it
    assert message.kind == "message" and message.text == "Changed thing"
    (record,) = audit_items()
    assert record["outcome"] == "ok" and record["args"] == "change thing [redacted]"
    assert record["team"] == harness.slack.team_id and record["channel"] == "C0OPS"
    assert isinstance(record["duration_ms"], int) and record["expiresAt"] > 0


def test_secrets_never_reach_the_audit_log_line(
    harness: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    add_test_command(harness, recorder)
    with caplog.at_level(logging.INFO, logger="opsbot.audit"):
        harness.command("/testcmd", "change thing s3cr3t-value")
        harness.command("/testcmd", "change")  # usage error: the text is still masked where it can be
    assert "s3cr3t-value" not in caplog.text
    assert "s3cr3t-value" not in json.dumps(audit_items())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A quote not closed: where the arguments end is unknown, so only the subcommand and the first
        # argument are recorded (the secret is in no format the pattern-based redaction knows).
        ('change thing "s3cr3t-value more', "change thing [redacted]"),
        ("change thing 's3cr3t-value", "change thing [redacted]"),
        ('change "thing s3cr3t-value', "change thing [redacted]"),
        ('change "thing', "change thing"),
        ('"change thing s3cr3t-value', "change thing [redacted]"),
        ('chnage thing "s3cr3t-value', "chnage [redacted]"),  # a typo: whose arguments they are is unknown
    ],
)
def test_text_that_does_not_tokenize_keeps_only_what_cannot_be_secret(
    harness: SlackHarness, caplog: pytest.LogCaptureFixture, text: str, expected: str
) -> None:
    add_test_command(harness, Recorder())
    with caplog.at_level(logging.INFO, logger="opsbot.audit"):
        ack = harness.command("/testcmd", text)
    assert "quote is not closed" in ack.text
    (record,) = audit_items()
    assert record["outcome"] == "usage" and record["args"] == expected
    if "s3cr3t" not in expected:
        assert "s3cr3t" not in caplog.text


def test_a_mistyped_subcommand_of_a_command_with_secrets_keeps_only_its_first_word(
    harness: SlackHarness,
) -> None:
    add_test_command(harness, Recorder())
    ack = harness.command("/testcmd", "chnage thing s3cr3t-value")
    assert "has no subcommand `chnage`" in ack.text and "s3cr3t" not in ack.text
    harness.command("/testcmd", "help change s3cr3t-value")
    assert sorted(r["args"] for r in audit_items()) == ["chnage [redacted]", "help [redacted]"]


def test_a_command_without_secrets_records_a_mistyped_subcommand_as_typed(harness: SlackHarness) -> None:
    from bot.listeners.framework import audit_args

    ops = runtime_of(harness.app).commands["ops"]
    assert audit_args(ops, "whoam i there") == "whoam i there"


def test_a_form_audits_only_the_fields_it_may_show(harness: SlackHarness) -> None:
    from bot.listeners.framework import ModalSubmit

    modal = ModalSubmit(
        "test:form",
        run=lambda call: None,
        action="testcmd.change",
        secret_fields=frozenset({"pin"}),
        shown_fields=frozenset({"name", "pin"}),
    )
    values = {"name": "thing", "pin": "1234", "note": "s3cr3t"}
    assert modal.audit_values(values) == {"name": "thing", "pin": "[redacted]", "note": "[redacted]"}
    everything = ModalSubmit("test:form", run=lambda call: None, action="x", secret_fields=frozenset({"pin"}))
    assert everything.audit_values(values) == {"name": "thing", "pin": "[redacted]", "note": "s3cr3t"}


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (OpsbotError("The table is gone.", hint="Create it."), ":x: The table is gone. Create it."),
        (
            ClientError(
                {
                    "Error": {
                        "Code": "AccessDeniedException",
                        "Message": "User: arn:aws:sts::123456789012:assumed-role/opsbot/fn is not authorized to "
                        "perform: logs:FilterLogEvents on resource: arn:aws:logs:us-east-1:123456789012:log-group:x "
                        "because no identity-based policy allows the logs:FilterLogEvents action",
                    }
                },
                "FilterLogEvents",
            ),
            "missing the IAM permission `logs:FilterLogEvents`",
        ),
    ],
)
def test_errors_with_a_sentence_are_shown(harness: SlackHarness, error: Exception, expected: str) -> None:
    from bot.aws.errors import aws_errors

    def raise_translated() -> None:
        with aws_errors():
            raise error

    failure: Exception
    try:
        raise_translated()
        failure = error
    except Exception as translated:
        failure = translated
    add_test_command(harness, Recorder(), fail=failure)
    harness.command("/testcmd", "change thing")
    assert expected in harness.last().text
    assert audit_items()[0]["outcome"] == "error"


def test_unexpected_errors_show_a_reference_and_log_the_traceback(
    harness: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    add_test_command(harness, Recorder(), fail=KeyError("internal detail"))
    with caplog.at_level(logging.ERROR):
        harness.command("/testcmd", "change thing")
    text = harness.last().text
    assert "Something went wrong (reference `" in text and "internal detail" not in text
    ref = text.split("`")[1]
    assert ref in caplog.text and "KeyError" in caplog.text
    record = audit_items()[0]
    assert record["outcome"] == "failed" and record["ref"] == ref


def test_button_is_authorized_idempotent_and_updates_the_message(harness: SlackHarness) -> None:
    recorder = Recorder()
    add_test_command(harness, recorder)
    harness.command("/testcmd", "change thing")
    message = harness.last()
    stale = copy.deepcopy(message)  # the message as a second client still shows it
    recorder.calls.clear()

    harness.click(message, "testcmd:undo", user=BOB)  # not allowed
    assert recorder.calls == [] and "You may not run `testcmd.change`" in harness.last(BOB).text

    harness.click(message, "testcmd:undo", user=ALICE)
    assert len(recorder.calls) == 1
    assert message.text == f"Undone by <@{ALICE[0]}>" and message.revision == 1

    harness.click(stale, "testcmd:undo", user=ALICE)  # a double click does nothing twice
    assert len(recorder.calls) == 1
    assert "Already done by <@U0ALICE>" in harness.last(ALICE).text
    outcomes = sorted(i["outcome"] for i in audit_items() if i["kind"] == "action")
    assert outcomes == ["denied", "duplicate", "undone"]


def test_policy_with_channel_restriction_and_direct_users(make_harness: Callable[..., SlackHarness]) -> None:
    policy = {
        "rules": [
            {"allow": ["testcmd.change"], "users": [CAROL[0]], "channels": ["C0OPS"]},
            {"deny": ["ops.*"], "channels": ["C0GENERAL"], "description": "keep #general quiet"},
        ]
    }
    harness = make_harness(OPSBOT_POLICY=json.dumps(policy))
    recorder = Recorder()
    add_test_command(harness, recorder)
    harness.command("/testcmd", "change a", user=CAROL, channel=("C0GENERAL", "general"))
    assert recorder.calls == [] and "<@U0CAROL> in <#C0OPS>" in harness.last(CAROL).text
    harness.command("/testcmd", "change b", user=CAROL)
    assert len(recorder.calls) == 1
    harness.command("/ops", "whoami", user=BOB, channel=("C0GENERAL", "general"))
    assert "keep #general quiet" in harness.last(BOB).text


def test_malformed_policy_denies_everything_with_the_reason(
    make_harness: Callable[..., SlackHarness], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="opsbot.security"):
        harness = make_harness(OPSBOT_POLICY='{"rules": [{"allow": "ops.*", "users": ["alice"]}]}')
    assert "policy rejected" in caplog.text and "not a Slack user id" in caplog.text
    harness.command("/ops", "whoami")
    assert "policy is malformed" in harness.last().text
    harness.command("/ops", "policy")
    assert "not a Slack user id" in harness.last().text


def test_policy_from_ssm_parameter_is_read_lazily_and_cached(
    make_harness: Callable[..., SlackHarness],
) -> None:
    ssm = clients.client("ssm")
    ssm.put_parameter(
        Name="/opsbot/policy",
        Type="String",
        Value=json.dumps({"rules": [{"allow": ["*"], "users": [BOB[0]]}]}),
    )
    calls: list[str] = []
    ssm.meta.events.register(
        "provide-client-params.ssm.GetParameter", lambda params, **_: calls.append(params["Name"])
    )
    harness = make_harness(OPSBOT_POLICY_PARAMETER="opsbot/policy")
    assert calls == []  # nothing read at start
    recorder = Recorder()
    add_test_command(harness, recorder)
    harness.command("/testcmd", "change x", user=BOB)
    harness.command("/testcmd", "change y", user=BOB)
    assert len(recorder.calls) == 2
    assert calls == ["/opsbot/policy"]


def test_a_form_opens_in_the_ack_before_any_lazy_work(harness: SlackHarness) -> None:
    """Slack's trigger_id lasts 3 seconds; a lazy invocation may start later than that."""
    ran: list[str] = []

    def form(args: Any, caller: Any) -> dict[str, Any] | None:
        return (
            None
            if args.get("target")
            else {
                "type": "modal",
                "callback_id": "t",
                "title": {"type": "plain_text", "text": "T"},
                "blocks": [],
            }
        )

    command = Command(
        "formcmd",
        "opens a form when called without arguments",
        (Subcommand("go", "Go.", run=lambda call: ran.append("run") or None, modal=form,
                    spec=ArgSpec((Positional("target", optional=True),))),),
    )  # fmt: skip
    register_command(harness.app, command)
    runtime_of(harness.app).seal()
    harness.runner.hold()  # no lazy work may run yet
    try:
        from bot.local.requests import slash_command_body

        body = slash_command_body(
            "/formcmd", "go", user_id=ALICE[0], user_name=ALICE[1], channel_id="C0OPS", channel_name="ops",
            team_id=harness.slack.team_id, response_url=harness.slack.new_response_url("C0OPS", ALICE[0]),
        )  # fmt: skip
        ack = harness.dispatch(body, wait=False)
        assert ack.status == 200 and len(harness.slack.calls_to("views.open")) == 1
    finally:
        harness.runner.release()
    harness.wait()
    assert ran == [] and audit_items()[0]["outcome"] == "form"
    harness.command("/formcmd", "go thing")
    assert ran == ["run"]
