"""handlers/slack.py with real API Gateway v1 (REST) and v2 (HTTP API) events, signed like Slack signs."""

from __future__ import annotations

import base64
import importlib
import io
import json
import logging
import os
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest

from bot.app import self_invoke_client
from bot.aws import clients
from bot.aws.state import create_state_table
from bot.local.requests import signature, slash_command_body
from bot.local.slack_api import LocalSlack
from tests.support.events import load_event
from tests.support.slack import ALICE, OPS_CHANNEL, SIGNING_SECRET, local_slack

FUNCTION_NAME = "opsbot-slack"
POLICY = json.dumps({"rules": [{"allow": ["*"], "usergroups": ["S0ONCALL"]}]})


@dataclass
class FakeLambdaContext:
    """The attributes Lambda's Python runtime passes in ``context``."""

    function_name: str
    invoked_function_arn: str
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    memory_limit_in_mb: int = 512
    deadline_ms: int = field(default_factory=lambda: int(time.time() * 1000) + 300_000)

    def get_remaining_time_in_millis(self) -> int:
        return self.deadline_ms - int(time.time() * 1000)


@dataclass
class Deployed:
    module: ModuleType
    slack: LocalSlack
    invocations: list[dict[str, Any]]
    context: FakeLambdaContext

    def __call__(self, event: dict[str, Any]) -> dict[str, Any]:
        return self.module.handler(event, self.context)  # type: ignore[no-any-return]


def _create_function() -> str:
    iam = clients.client("iam")
    role = iam.create_role(
        RoleName="opsbot-slack-role",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("handlers/slack.py", "def handler(event, context):\n    return {}\n")
    function = clients.client("lambda").create_function(
        FunctionName=FUNCTION_NAME,
        Runtime="python3.12",
        Role=role,
        Handler="handlers.slack.handler",
        Code={"ZipFile": archive.getvalue()},
    )
    clients.client("lambda").create_alias(FunctionName=FUNCTION_NAME, Name="live", FunctionVersion="$LATEST")
    return str(function["FunctionArn"])


def _load_handler() -> ModuleType:
    sys.modules.pop("handlers.slack", None)
    return importlib.import_module("handlers.slack")


@pytest.fixture
def deployed(monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployed]:
    """The Slack handler as Lambda would run it: moto for AWS (Lambda without Docker), a local Slack."""
    from moto import mock_aws

    slack = local_slack().start()
    env = {
        "SLACK_API_URL": slack.api_url,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_BOT_USER_ID": slack.bot_user_id,
        "SLACK_TEAM_ID": slack.team_id,
        "OPSBOT_POLICY": POLICY,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with mock_aws(config={"lambda": {"use_docker": False}}):
        clients.clear_caches()
        create_state_table("opsbot-state")
        arn = _create_function()
        invocations: list[dict[str, Any]] = []

        def capture(params: dict[str, Any], **_: Any) -> None:
            invocations.append(params)

        self_invoke_client().meta.events.register("provide-client-params.lambda.Invoke", capture)
        module = _load_handler()
        yield Deployed(module, slack, invocations, FakeLambdaContext(FUNCTION_NAME, f"{arn}:live"))
    slack.stop()
    sys.modules.pop("handlers.slack", None)
    assert slack.violations == []


def slash_body(slack: LocalSlack, text: str) -> str:
    return slash_command_body(
        "/ops",
        text,
        user_id=ALICE[0],
        user_name=ALICE[1],
        channel_id=OPS_CHANNEL[0],
        channel_name=OPS_CHANNEL[1],
        team_id=slack.team_id,
        response_url=slack.new_response_url(OPS_CHANNEL[0], ALICE[0]),
    )


def api_event(version: int, body: str, *, timestamp: int | None = None, sign_body: str | None = None,
              headers: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    """A real API Gateway event carrying ``body``, signed over ``sign_body`` (default: the body)."""
    event: dict[str, Any] = load_event("apigw_v1_slack" if version == 1 else "apigw_v2_slack")
    ts = str(int(time.time()) if timestamp is None else timestamp)
    sig = signature(SIGNING_SECRET, ts, body if sign_body is None else sign_body)
    if version == 1:
        event["headers"].update({"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig})
        event["multiValueHeaders"].update({"X-Slack-Request-Timestamp": [ts], "X-Slack-Signature": [sig]})
        event["body"] = body
    else:
        event["headers"].update({"x-slack-request-timestamp": ts, "x-slack-signature": sig})
        event["headers"]["content-length"] = str(len(body))
        event["body"] = base64.b64encode(body.encode()).decode()
    if headers is not None:
        event["headers"] = headers
    return event


@pytest.mark.parametrize("version", [1, 2])
def test_signed_command_is_acked_and_lazy_work_self_invokes_the_invoked_arn(
    deployed: Deployed, version: int
) -> None:
    response = deployed(api_event(version, slash_body(deployed.slack, "whoami")))
    assert response["statusCode"] == 200
    assert "Checking your permissions" in json.loads(response["body"])["text"]
    # Lazy work was handed to an asynchronous invocation of this very function, alias included.
    assert len(deployed.invocations) == 1
    invoke = deployed.invocations[0]
    assert invoke["FunctionName"] == deployed.context.invoked_function_arn
    assert invoke["InvocationType"] == "Event"
    assert deployed.slack.calls_to("auth.test") == []
    assert [m for m in deployed.slack.messages if "You are" in m.text] == []  # not yet: that is the lazy part


@pytest.mark.parametrize("version", [1, 2])
def test_reinvocation_runs_only_the_lazy_function(deployed: Deployed, version: int) -> None:
    deployed(api_event(version, slash_body(deployed.slack, "whoami")))
    payload = json.loads(deployed.invocations[0]["Payload"])
    headers = {k.lower(): v for k, v in payload["headers"].items()}
    assert headers["x-slack-bolt-lazy-only"] == "1"

    response = deployed(payload)
    assert response["statusCode"] == 200
    assert "Checking your permissions" not in (response["body"] or "")  # the ack did not run again
    assert len(deployed.invocations) == 1  # and it did not invoke itself again
    replies = [m for m in deployed.slack.messages if m.text.startswith("*You are*")]
    assert len(replies) == 1 and replies[0].ephemeral_to == ALICE[0]
    audit = clients.client("dynamodb").scan(TableName="opsbot-state")["Items"]
    assert [item["command"]["S"] for item in audit] == ["/ops whoami"]


def _bad_requests(slack: LocalSlack, version: int) -> dict[str, dict[str, Any]]:
    body = slash_body(slack, "whoami")
    good = api_event(version, body)
    return {
        "wrong signature": api_event(version, body, sign_body=body + "x"),
        "missing headers": api_event(
            version, body, headers={"content-type": "application/x-www-form-urlencoded"}
        ),
        "timestamp older than 5 minutes": api_event(version, body, timestamp=int(time.time()) - 301),
        "body altered after signing": {
            **good,
            "body": good["body"].replace("whoami", "policy")
            if version == 1
            else base64.b64encode(body.replace("whoami", "policy").encode()).decode(),
        },
    }


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize(
    "case",
    ["wrong signature", "missing headers", "timestamp older than 5 minutes", "body altered after signing"],
)
def test_unverified_requests_are_rejected_and_nothing_runs(
    deployed: Deployed, version: int, case: str
) -> None:
    response = deployed(_bad_requests(deployed.slack, version)[case])
    assert response["statusCode"] == 401
    assert deployed.invocations == []
    assert deployed.slack.calls == [] and deployed.slack.messages == []
    assert clients.client("dynamodb").scan(TableName="opsbot-state")["Items"] == []


def test_ack_needs_no_slack_web_api(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bolt's default would call auth.test before the first listener; ours authorizes from configuration."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setenv("SLACK_API_URL", f"http://127.0.0.1:{closed_port}/api/")
    module = _load_handler()
    started = time.monotonic()
    response = module.handler(api_event(2, slash_body(deployed.slack, "whoami")), deployed.context)
    assert response["statusCode"] == 200
    assert time.monotonic() - started < 2.5  # Slack's limit is 3 s; a connect attempt would have failed
    assert "Checking your permissions" in json.loads(response["body"])["text"]


def test_importing_the_handler_is_small_and_offline(tmp_path: Any) -> None:
    """No network I/O at import, and nothing the ack path does not need (no dnspython, moto, core)."""
    script = (
        "import socket, sys, json\n"
        "def refuse(*a, **k):\n"
        "    raise AssertionError('network I/O during import')\n"
        "socket.socket.connect = refuse\n"
        "socket.create_connection = refuse\n"
        "import handlers.slack\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "secret",
        "SLACK_API_URL": "http://127.0.0.1:9/api/",
        "OPSBOT_POLICY_PARAMETER": "/opsbot/policy",
    }
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False, cwd=os.getcwd()
    )
    assert result.returncode == 0, result.stderr
    modules = json.loads(result.stdout)
    heavy = [
        m
        for m in modules
        if m.split(".")[0] in {"dns", "moto", "werkzeug", "flask", "hypothesis", "jsonschema"}
    ]
    ours = [m for m in modules if m.startswith(("bot.core", "bot.local", "bot.cli", "bot.render"))]
    assert heavy == [] and ours == []


def test_missing_slack_configuration_fails_at_import_with_a_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLACK_SIGNING_SECRET", raising=False)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    from bot.errors import ConfigError

    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET is not set"):
        _load_handler()
    sys.modules.pop("handlers.slack", None)


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def lambda_root_logger() -> Iterator[None]:
    """The root logger as Lambda's Python runtime leaves it: WARNING."""
    root, opsbot = logging.getLogger(), logging.getLogger("opsbot")
    saved = root.level, opsbot.level
    root.setLevel(logging.WARNING)
    opsbot.setLevel(logging.NOTSET)
    try:
        yield
    finally:
        root.setLevel(saved[0])
        opsbot.setLevel(saved[1])


def test_audit_lines_are_logged_with_lambdas_root_logger_at_warning(
    lambda_root_logger: None, make_harness: Any
) -> None:
    """In Lambda the root logger is at WARNING, and Bolt resets the logger named after the app to the root's
    level on every request: opsbot's INFO lines (the audit) must survive both."""
    collected = Collect()
    audit_logger = logging.getLogger("opsbot.audit")
    audit_logger.addHandler(collected)
    try:
        harness = make_harness()
        harness.command("/ops", "whoami")
        harness.last()
        # The record is written once the reply is out: give the lazy run a moment to finish.
        deadline = time.monotonic() + 10
        while not any("ops.whoami" in line for line in collected.lines) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        audit_logger.removeHandler(collected)
    assert any('"audit"' in line and "ops.whoami" in line for line in collected.lines), collected.lines


def test_opsbot_log_level_can_be_raised(lambda_root_logger: None, make_harness: Any) -> None:
    make_harness(OPSBOT_LOG_LEVEL="warning")
    assert not logging.getLogger("opsbot.audit").isEnabledFor(logging.INFO)
    make_harness(OPSBOT_LOG_LEVEL="nonsense")  # an unknown level is INFO, not a crash
    assert logging.getLogger("opsbot.audit").isEnabledFor(logging.INFO)


# -- the self-invocation fails ---------------------------------------------------------------------

DENIED = (
    "User: arn:aws:sts::123456789012:assumed-role/opsbot-slack-role/opsbot-slack is not authorized to "
    "perform: lambda:InvokeFunction on resource: arn:aws:lambda:us-east-1:123456789012:function:opsbot-slack "
    "because no identity-based policy allows the lambda:InvokeFunction action"
)


def refuse_invoke(code: str, message: str) -> list[int]:
    """Make the self-invocation fail as AWS would answer; returns the list of attempts made."""
    from botocore.exceptions import ClientError

    attempts: list[int] = []

    def refuse(**_: Any) -> None:
        attempts.append(1)
        raise ClientError({"Error": {"Code": code, "Message": message}}, "Invoke")

    self_invoke_client().meta.events.register("before-call.lambda.Invoke", refuse)
    return attempts


def audit_records(predicate: Any = None, timeout: float = 5) -> list[dict[str, Any]]:
    """The audit items, once one matches ``predicate`` (the ack path stores its record in a thread)."""
    from bot.aws.dynamo import from_item

    deadline = time.monotonic() + timeout
    while True:
        items = [from_item(i) for i in clients.client("dynamodb").scan(TableName="opsbot-state")["Items"]]
        if predicate is None or any(predicate(i) for i in items) or time.monotonic() > deadline:
            return items
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        ("AccessDeniedException", DENIED, "opsbot is missing the IAM permission `lambda:InvokeFunction`"),
        ("TooManyRequestsException", "Rate Exceeded.", "AWS Lambda is throttling opsbot"),
    ],
)
def test_a_failed_self_invocation_is_answered_in_the_ack_and_audited(
    deployed: Deployed, code: str, message: str, expected: str
) -> None:
    refuse_invoke(code, message)
    started = time.monotonic()
    response = deployed(api_event(2, slash_body(deployed.slack, "whoami")))
    assert time.monotonic() - started < 2.5
    assert response["statusCode"] == 200
    text = json.loads(response["body"])["text"]
    assert text.startswith(":x: ") and expected in text
    (record,) = audit_records(lambda r: r.get("outcome") == "error")
    assert (record["command"], record["outcome"]) == ("/ops whoami", "error") and expected in record["detail"]


def test_a_self_invocation_that_cannot_connect_is_tried_twice_within_slacks_three_seconds(
    deployed: Deployed,
) -> None:
    from botocore.exceptions import ConnectTimeoutError

    attempts: list[int] = []

    def no_connection(**_: Any) -> None:
        attempts.append(1)
        raise ConnectTimeoutError(endpoint_url="https://lambda.us-east-1.amazonaws.com")

    self_invoke_client().meta.events.register("before-send.lambda.Invoke", no_connection)
    config = self_invoke_client().meta.config
    assert (config.connect_timeout, config.read_timeout) == (1, 2)
    started = time.monotonic()
    response = deployed(api_event(1, slash_body(deployed.slack, "whoami")))
    assert time.monotonic() - started < 3
    assert len(attempts) == 2
    assert "could not reach AWS Lambda in time" in json.loads(response["body"])["text"]
    (record,) = audit_records(lambda r: r.get("outcome") == "error")
    assert record["detail"].startswith("opsbot could not reach AWS Lambda")


def test_when_the_ack_already_answered_a_failed_self_invocation_only_adds_the_record(
    deployed: Deployed,
) -> None:
    refuse_invoke("AccessDeniedException", DENIED)
    response = deployed(api_event(2, slash_body(deployed.slack, "nope")))
    assert "has no subcommand `nope`" in json.loads(response["body"])["text"]  # the usage message stands
    (record,) = audit_records(lambda r: r.get("outcome") == "usage")
    assert (record["command"], record["outcome"]) == ("/ops", "usage")


def test_a_failed_self_invocation_for_a_button_tells_the_clicker_and_is_audited(deployed: Deployed) -> None:
    from bot.listeners.framework import ButtonAction, register_action
    from bot.local.requests import block_actions_body

    ran: list[str] = []
    register_action(deployed.module.app, ButtonAction("test:click", lambda call: ran.append("run") or None,
                                                      action="ops.whoami", mutating=False))  # fmt: skip
    refuse_invoke("AccessDeniedException", DENIED)
    body = block_actions_body(
        action={"type": "button", "action_id": "test:click", "value": "v1"}, block_id="b",
        message={"type": "message", "ts": "1700000000.000100", "text": "t", "blocks": []},
        user_id=ALICE[0], user_name=ALICE[1], channel_id=OPS_CHANNEL[0], channel_name=OPS_CHANNEL[1],
        team_id=deployed.slack.team_id, response_url=deployed.slack.new_response_url(OPS_CHANNEL[0], ALICE[0]),
        message_ts="1700000000.000100", ephemeral=False,
    )  # fmt: skip
    response = deployed(api_event(2, body))
    assert response["statusCode"] == 200
    (note,) = deployed.slack.messages
    assert note.ephemeral_to == ALICE[0] and "`lambda:InvokeFunction`" in note.text
    (record,) = audit_records(lambda r: r.get("outcome") == "error")
    assert (record["kind"], record["command"], record["args"]) == ("action", "button test:click", "v1")
    assert ran == []


def test_what_the_ack_settled_reaches_the_reinvocation(deployed: Deployed) -> None:
    """A form Slack did not open: the ack says so, and the re-invocation records an error, not 'form'."""
    deployed.slack.fail_next("views.open", "expired_trigger_id")
    body = slash_command_body(
        "/device", "activate", user_id=ALICE[0], user_name=ALICE[1], channel_id=OPS_CHANNEL[0],
        channel_name=OPS_CHANNEL[1], team_id=deployed.slack.team_id,
        response_url=deployed.slack.new_response_url(OPS_CHANNEL[0], ALICE[0]),
    )  # fmt: skip
    response = deployed(api_event(2, body))
    assert "`expired_trigger_id`" in json.loads(response["body"])["text"]
    deployed(json.loads(deployed.invocations[0]["Payload"]))
    (record,) = audit_records()
    assert (record["command"], record["outcome"]) == ("/device activate", "error")
    assert record["detail"] == "the form did not open: expired_trigger_id"


def test_a_failed_self_invocation_for_a_form_keeps_it_open_with_the_sentence(deployed: Deployed) -> None:
    from bot.listeners.framework import ModalSubmit, register_modal
    from bot.local.requests import view_submission_body

    register_modal(deployed.module.app, ModalSubmit("test:form", run=lambda call: None, action="ops.whoami",
                                                    mutating=False, secret_fields=frozenset({"pin"})))  # fmt: skip
    refuse_invoke("AccessDeniedException", DENIED)
    view = {
        "type": "modal", "callback_id": "test:form", "private_metadata": json.dumps({"channel": OPS_CHANNEL[0]}),
        "blocks": [{"type": "input", "block_id": block, "element": {"type": "plain_text_input", "action_id": "v"}}
                   for block in ("name", "pin")],
    }  # fmt: skip
    body = view_submission_body(
        view=view, values={"name": "x", "pin": "1234"}, user_id=ALICE[0], user_name=ALICE[1],
        team_id=deployed.slack.team_id,
    )  # fmt: skip
    response = deployed(api_event(2, body))
    answer = json.loads(response["body"])
    assert answer["response_action"] == "errors"
    assert list(answer["errors"]) == ["name"] and "`lambda:InvokeFunction`" in answer["errors"]["name"]
    (record,) = audit_records(lambda r: r.get("outcome") == "error")
    assert (record["kind"], record["channel"]) == ("view", OPS_CHANNEL[0]) and "1234" not in record["args"]


def test_a_link_click_whose_self_invocation_fails_is_still_recorded(deployed: Deployed) -> None:
    from bot.local.requests import block_actions_body

    refuse_invoke("AccessDeniedException", DENIED)
    body = block_actions_body(
        action={"type": "button", "action_id": "link:apilogs-insights"}, block_id="b",
        message={"type": "message", "ts": "1700000000.000100", "text": "t", "blocks": []},
        user_id=ALICE[0], user_name=ALICE[1], channel_id=OPS_CHANNEL[0], channel_name=OPS_CHANNEL[1],
        team_id=deployed.slack.team_id, response_url=deployed.slack.new_response_url(OPS_CHANNEL[0], ALICE[0]),
        message_ts="1700000000.000100", ephemeral=False,
    )  # fmt: skip
    assert deployed(api_event(2, body))["statusCode"] == 200
    (record,) = audit_records(lambda r: r.get("outcome") == "link")
    assert (record["command"], record["user"]) == ("button link:apilogs-insights", ALICE[0])
    assert deployed.slack.messages == []  # the browser opened the link; nothing to tell
