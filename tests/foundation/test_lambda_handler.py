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


@pytest.mark.serial  # asserts on the wall clock: run apart from the parallel run
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


@pytest.mark.parametrize(
    "secrets",
    [
        {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_SIGNING_SECRET": "secret"},
        {"OPSBOT_SLACK_SECRET_ID": "opsbot/slack", "AWS_ENDPOINT_URL": "http://127.0.0.1:9"},
    ],
    ids=["environment", "secrets manager"],
)
def test_importing_the_handler_is_small_and_offline(tmp_path: Any, secrets: dict[str, str]) -> None:
    """No network I/O at import (the Slack secrets are read on the first request), and nothing the ack
    path does not need (no dnspython, moto, core)."""
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
        **{k: v for k, v in os.environ.items() if k not in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET")},
        **secrets,
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


@pytest.mark.serial  # asserts on the wall clock: run apart from the parallel run
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


@pytest.mark.serial  # asserts on the wall clock: run apart from the parallel run
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


@pytest.mark.serial  # asserts on the wall clock: run apart from the parallel run
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
    assert (config.connect_timeout, config.read_timeout, config.retries["total_max_attempts"]) == (
        0.3,
        0.5,
        1,
    )
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


# -- malformed HTTP requests: a corpus, each answered 4xx with one log line --------------------------


def _signed_v2(body: bytes, *, timestamp: str | None = None, **extra_headers: str) -> dict[str, Any]:
    """An API Gateway v2 event whose body is ``body`` (base64), signed correctly over its text."""
    event: dict[str, Any] = load_event("apigw_v2_slack")
    ts = str(int(time.time())) if timestamp is None else timestamp
    text = body.decode("utf-8", "replace")
    event["headers"].update(
        {"x-slack-request-timestamp": ts, "x-slack-signature": signature(SIGNING_SECRET, ts, text)}
    )
    event["headers"].update(extra_headers)
    event["body"] = base64.b64encode(body).decode()
    return event


def _without(event: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k not in keys}


def _v1_headers(event: dict[str, Any], **changes: str | None) -> dict[str, Any]:
    for name, value in changes.items():
        header = name.replace("_", "-")
        if value is None:
            event["headers"].pop(header, None)
            event["multiValueHeaders"].pop(header, None)
        else:
            event["headers"][header] = value
            event["multiValueHeaders"][header] = [value]
    return event


def _v2_headers(event: dict[str, Any], **changes: str | None) -> dict[str, Any]:
    for name, value in changes.items():
        header = name.replace("_", "-").lower()
        if value is None:
            event["headers"].pop(header, None)
        else:
            event["headers"][header] = value
    return event


def _malformed(slack: LocalSlack) -> dict[str, tuple[int, Any]]:
    body = slash_body(slack, "whoami")
    now = str(int(time.time()))
    v1, v2 = (lambda: api_event(1, body)), (lambda: api_event(2, body))
    huge = "text=" + "a" * 7_000_000
    return {
        # Encodings
        "v2 body not UTF-8": (400, _signed_v2(b"command=%2Fops&text=\xff\xfe\xfa")),
        "v1 body not UTF-8": (
            400,
            {**v1(), "isBase64Encoded": True, "body": base64.b64encode(b"\xc3\x28 text").decode()},
        ),
        # A JSON event may carry a lone surrogate escape no UTF-8 body can hold: it crashed the HMAC.
        "v1 body with a lone surrogate": (400, {**v1(), "body": "command=%2Fops&text=\ud800"}),
        "v2 invalid base64": (400, {**v2(), "body": "!!not base64!!"}),
        "v1 invalid base64 with isBase64Encoded true": (
            400,
            {**v1(), "isBase64Encoded": True, "body": "%%%"},
        ),
        "v2 truncated base64": (400, {**v2(), "body": v2()["body"][:-3]}),
        "v2 without isBase64Encoded": (401, _without(v2(), "isBase64Encoded")),
        "v1 without isBase64Encoded, unsigned": (
            401,
            _v1_headers(_without(v1(), "isBase64Encoded"), X_Slack_Signature=None),
        ),
        "isBase64Encoded not a boolean": (400, {**v2(), "isBase64Encoded": "yes"}),
        # Headers
        "v1 non-numeric timestamp": (401, _v1_headers(v1(), X_Slack_Request_Timestamp="soon")),
        "v2 non-numeric timestamp": (401, _v2_headers(v2(), X_Slack_Request_Timestamp="1e9")),
        "v2 negative timestamp": (401, _v2_headers(v2(), X_Slack_Request_Timestamp="-5")),
        "v2 timestamp of 5000 digits": (401, _v2_headers(v2(), X_Slack_Request_Timestamp="9" * 5000)),
        "v2 timestamp far in the future": (401, api_event(2, body, timestamp=int(time.time()) + 3600)),
        "v1 missing timestamp": (401, _v1_headers(v1(), X_Slack_Request_Timestamp=None)),
        "v2 missing timestamp": (401, _v2_headers(v2(), X_Slack_Request_Timestamp=None)),
        "v1 missing signature": (401, _v1_headers(v1(), X_Slack_Signature=None)),
        "v2 missing signature": (401, _v2_headers(v2(), X_Slack_Signature=None)),
        "v2 empty signature": (401, _v2_headers(v2(), X_Slack_Signature="")),
        "v2 signature of another scheme": (401, _v2_headers(v2(), X_Slack_Signature="v1=" + "0" * 64)),
        "v2 two signatures joined": (
            401,
            _v2_headers(v2(), X_Slack_Signature=f"{v2()['headers']['x-slack-signature']},v0=" + "0" * 64),
        ),
        "v2 huge signature": (401, _v2_headers(v2(), X_Slack_Signature="v0=" + "a" * 100_000)),
        "v1 headers null": (401, {**v1(), "headers": None, "multiValueHeaders": None}),
        "v2 headers missing": (401, _without(v2(), "headers")),
        "v2 headers a list": (400, {**v2(), "headers": [["x-slack-signature", "v0=1"]]}),
        "v2 header value a number": (
            400,
            _v2_headers(v2(), X_Slack_Request_Timestamp=None)
            | {"headers": {**v2()["headers"], "x-slack-request-timestamp": int(now)}},
        ),
        # Bodies and sizes
        "v1 body missing": (401, _without(v1(), "body")),
        "v2 body null": (401, {**v2(), "body": None}),
        "v1 body an object": (400, {**v1(), "body": {"command": "/ops"}}),
        "v1 body of 7 MB": (400, api_event(1, huge)),
        "v2 body of 7 MB": (400, {**v2(), "body": base64.b64encode(huge.encode()).decode()}),
        "signed body that is broken JSON": (400, _signed_v2(b'{"type": "block_actions", ')),
        "signed payload that is broken JSON": (400, _signed_v2(b"payload=%7B%22type%22%3A")),
        "signed body that is a JSON list": (400, _signed_v2(b"[1, 2]")),
        # Event shapes
        "not an object": (400, ["POST", body]),
        "empty event": (400, {}),
        "v2 GET": (400, {**v2(), "requestContext": {**v2()["requestContext"], "http": {"method": "GET"}}}),
        "v1 without requestContext": (400, _without(v1(), "requestContext", "httpMethod")),
        "requestContext a string": (400, {**v2(), "requestContext": "POST"}),
    }


def _malformed_names() -> list[str]:
    class _Names:
        team_id = "T0"

        @staticmethod
        def new_response_url(*_: Any) -> str:
            return "http://127.0.0.1:9/hooks/x"

    return list(_malformed(_Names()))  # type: ignore[arg-type]


@pytest.mark.parametrize("case", _malformed_names())
def test_malformed_requests_are_refused_with_one_log_line_and_nothing_runs(
    deployed: Deployed, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    status, event = _malformed(deployed.slack)[case]
    caplog.set_level(logging.INFO)
    caplog.clear()
    response = deployed(event)  # never raises
    assert response["statusCode"] == status
    lines = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert len(lines) == 1, [r.getMessage()[:200] for r in lines]
    (line,) = lines
    assert line.name == "opsbot.http" and line.exc_info is None
    assert len(line.getMessage()) < 300  # a sentence, not the body or a header echoed
    assert deployed.invocations == []
    assert deployed.slack.calls == [] and deployed.slack.messages == []
    assert clients.client("dynamodb").scan(TableName="opsbot-state")["Items"] == []


def test_a_request_cannot_claim_to_be_the_lazy_half_through_headers(deployed: Deployed) -> None:
    """Bolt runs only the lazy function for x-slack-bolt-lazy-only, and the framework trusts its ack note:
    from API Gateway both are dropped, so the request is an ordinary one (ack, then self-invocation)."""
    event = api_event(2, slash_body(deployed.slack, "whoami"))
    event["headers"].update({"x-slack-bolt-lazy-only": "1", "x-slack-bolt-lazy-function-name": "run",
                             "x-opsbot-ack-note": '{"outcome": "ok"}'})  # fmt: skip
    response = deployed(event)
    assert "Checking your permissions" in json.loads(response["body"])["text"]
    (invoke,) = deployed.invocations
    forwarded = json.loads(invoke["Payload"])["headers"]
    assert "x-opsbot-ack-note" not in forwarded and forwarded["x-slack-bolt-lazy-function-name"] != "run"


# -- the lazy half queued for longer than Slack's five minutes ----------------------------------------


def _resigned(event: dict[str, Any], timestamp: int) -> dict[str, Any]:
    """``event`` with a valid signature made at ``timestamp`` (as if Slack had sent it then)."""
    event = json.loads(json.dumps(event))
    body = base64.b64decode(event["body"]).decode() if event.get("isBase64Encoded") else event["body"]
    sig = signature(SIGNING_SECRET, str(timestamp), body)
    for name in list(event["headers"]):
        if name.lower() == "x-slack-request-timestamp":
            event["headers"][name] = str(timestamp)
        elif name.lower() == "x-slack-signature":
            event["headers"][name] = sig
    event.pop("multiValueHeaders", None)
    return event


@pytest.mark.parametrize("version", [1, 2])
def test_lazy_work_queued_longer_than_five_minutes_still_runs_but_a_replay_does_not(
    deployed: Deployed, version: int
) -> None:
    """Lambda may queue the asynchronous self-invocation (throttling, concurrency): its signature is
    verified without the age limit, because the event's shape (Bolt's top-level "method": "NONE") says it
    came from a direct invoke. The same request, as old, through API Gateway is refused."""
    original = api_event(version, slash_body(deployed.slack, "whoami"))
    deployed(json.loads(json.dumps(original)))
    ten_minutes_ago = int(time.time()) - 600
    late = _resigned(json.loads(deployed.invocations[0]["Payload"]), ten_minutes_ago)
    assert late["method"] == "NONE"

    replayed = deployed(_resigned(original, ten_minutes_ago))
    assert replayed["statusCode"] == 401
    assert not [m for m in deployed.slack.messages if m.text.startswith("*You are*")]

    response = deployed(late)
    assert response["statusCode"] == 200
    (reply,) = [m for m in deployed.slack.messages if m.text.startswith("*You are*")]
    assert reply.ephemeral_to == ALICE[0]
    (record,) = audit_records()
    assert (record["command"], record["outcome"]) == ("/ops whoami", "ok")
    assert len(deployed.invocations) == 1


@pytest.mark.parametrize(
    "tamper",
    [
        lambda e: e["headers"].update({"x-slack-signature": "v0=" + "0" * 64}),
        lambda e: e.update(body=base64.b64encode(b"command=%2Fops&text=policy").decode()),
        lambda e: e["headers"].pop("x-slack-signature"),
    ],
    ids=["wrong signature", "other body", "no signature"],
)
def test_an_internal_lazy_event_is_still_verified(deployed: Deployed, tamper: Any) -> None:
    """Refused by raising: the failed invocation goes to the on-failure destination, which tells the user."""
    from bot.entry import InternalRequestRefused

    deployed(api_event(2, slash_body(deployed.slack, "whoami")))
    late = _resigned(json.loads(deployed.invocations[0]["Payload"]), int(time.time()) - 600)
    tamper(late)
    with pytest.raises(InternalRequestRefused):
        deployed(late)
    assert not [m for m in deployed.slack.messages if m.text.startswith("*You are*")]


# -- the Slack secrets from Secrets Manager -----------------------------------------------------------

SECRET_ID = "opsbot/slack"


@dataclass
class WithSecret:
    deployed: Deployed
    reads: list[int]

    def put(self, signing_secret: str) -> None:
        clients.client("secretsmanager").put_secret_value(
            SecretId=SECRET_ID,
            SecretString=json.dumps(
                {"signing_secret": signing_secret, "bot_token": self.deployed.slack.bot_token}
            ),
        )


@pytest.fixture
def with_secret(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> WithSecret:
    """The handler as deployed: no secret in the environment, one Secrets Manager secret named by
    OPSBOT_SLACK_SECRET_ID. Its clock is ours to move."""
    import bot.slack_secrets
    from bot.slack_secrets import secrets_client

    monkeypatch.delenv("SLACK_SIGNING_SECRET")
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    monkeypatch.setenv("OPSBOT_SLACK_SECRET_ID", SECRET_ID)
    now = [1000.0]
    monkeypatch.setattr(bot.slack_secrets, "clock", lambda: now[0])
    clients.client("secretsmanager").create_secret(
        Name=SECRET_ID,
        SecretString=json.dumps({"signing_secret": SIGNING_SECRET, "bot_token": deployed.slack.bot_token}),
    )
    reads: list[int] = []
    secrets_client().meta.events.register(
        "provide-client-params.secretsmanager.GetSecretValue", lambda **_: reads.append(1)
    )
    deployed.module = _load_handler()
    fixture = WithSecret(deployed, reads)
    fixture.now = now  # type: ignore[attr-defined]
    return fixture


def _advance(with_secret: WithSecret, seconds: float) -> None:
    with_secret.now[0] += seconds  # type: ignore[attr-defined]


def test_secrets_are_read_on_the_first_request_only_and_used_for_the_token(with_secret: WithSecret) -> None:
    deployed = with_secret.deployed
    assert with_secret.reads == []  # not at import
    for _ in range(3):
        response = deployed(api_event(2, slash_body(deployed.slack, "whoami")))
        assert "Checking your permissions" in json.loads(response["body"])["text"]
    assert len(with_secret.reads) == 1
    # The lazy half runs with the cached secrets (no second read), and authorizes with the secret's token.
    deployed(json.loads(deployed.invocations[0]["Payload"]))
    assert [m for m in deployed.slack.messages if m.text.startswith("*You are*")]
    assert len(with_secret.reads) == 1
    from bot.app import secrets_of

    assert secrets_of(deployed.module.app).bot_token() == deployed.slack.bot_token


def test_the_secret_read_is_quick_to_give_up() -> None:
    from bot.slack_secrets import secrets_client

    config = secrets_client().meta.config
    assert (config.connect_timeout, config.read_timeout, config.retries["total_max_attempts"]) == (
        0.3,
        0.4,
        1,
    )


def test_forged_requests_cannot_drive_secret_reads(with_secret: WithSecret) -> None:
    deployed = with_secret.deployed
    body = slash_body(deployed.slack, "whoami")
    assert deployed(api_event(2, body))["statusCode"] == 200
    forged = api_event(2, body, sign_body=body + "x")
    for _ in range(20):
        assert deployed(forged)["statusCode"] == 401
    assert len(with_secret.reads) == 1  # the first read was less than five minutes ago
    _advance(with_secret, 301)
    for _ in range(20):
        assert deployed(forged)["statusCode"] == 401
    assert len(with_secret.reads) == 2  # one re-read per five minutes at most


def test_forged_requests_cannot_drive_reads_while_secrets_manager_fails(with_secret: WithSecret) -> None:
    """Once the container holds the secrets, a failed re-read waits the whole re-read interval too."""
    deployed = with_secret.deployed
    body = slash_body(deployed.slack, "whoami")
    assert deployed(api_event(2, body))["statusCode"] == 200
    clients.client("secretsmanager").delete_secret(SecretId=SECRET_ID, ForceDeleteWithoutRecovery=True)
    forged = api_event(2, body, sign_body=body + "x")
    _advance(with_secret, 301)
    assert deployed(forged)["statusCode"] == 401  # the re-read it drove failed; the cached secret stays
    for _ in range(19):
        _advance(with_secret, 15)
        assert deployed(forged)["statusCode"] == 401
    assert len(with_secret.reads) == 2  # not one every 10 s while the secret cannot be read
    assert deployed(api_event(2, slash_body(deployed.slack, "whoami")))["statusCode"] == 200


def test_requests_that_cannot_be_signed_read_no_secret(with_secret: WithSecret) -> None:
    """Unsigned, malformed or stale requests are refused before the secret is asked for: on a new container
    they neither cause its read nor, while Secrets Manager is unreachable, a 503."""
    deployed = with_secret.deployed
    body = slash_body(deployed.slack, "whoami")
    unsigned = api_event(2, body, headers={"content-type": "application/x-www-form-urlencoded"})
    stale = api_event(2, body, timestamp=int(time.time()) - 3600)
    malformed = api_event(2, body)
    malformed["headers"]["x-slack-signature"] = "v0=nothex"
    clients.client("secretsmanager").delete_secret(SecretId=SECRET_ID, ForceDeleteWithoutRecovery=True)
    for event in (unsigned, stale, malformed):
        assert deployed(event)["statusCode"] == 401
    assert with_secret.reads == []


def test_a_rotated_signing_secret_is_picked_up_within_five_minutes(with_secret: WithSecret) -> None:
    deployed = with_secret.deployed
    body = slash_body(deployed.slack, "whoami")
    assert deployed(api_event(2, body))["statusCode"] == 200
    with_secret.put("rotated-signing-secret-0123456789")
    ts = str(int(time.time()))
    new_headers = {"x-slack-request-timestamp": ts, "x-slack-signature": signature("rotated-signing-secret-0123456789", ts, body)}  # fmt: skip
    signed_with_new = api_event(2, body)
    signed_with_new["headers"].update(new_headers)
    assert deployed(json.loads(json.dumps(signed_with_new)))["statusCode"] == 401  # read 0 s ago: not yet
    _advance(with_secret, 300)
    assert deployed(json.loads(json.dumps(signed_with_new)))["statusCode"] == 200
    assert len(with_secret.reads) == 2
    assert deployed(api_event(2, body))["statusCode"] == 401  # the old secret no longer works


def test_an_unreadable_secret_is_one_log_line_and_retried_later(
    with_secret: WithSecret, caplog: pytest.LogCaptureFixture
) -> None:
    deployed = with_secret.deployed
    clients.client("secretsmanager").delete_secret(SecretId=SECRET_ID, ForceDeleteWithoutRecovery=True)
    caplog.set_level(logging.INFO)
    event = api_event(2, slash_body(deployed.slack, "whoami"))
    response = deployed(json.loads(json.dumps(event)))
    assert response["statusCode"] == 503
    (line,) = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert "could not be read (ResourceNotFoundException)" in line.getMessage() and line.exc_info is None
    for _ in range(5):
        assert deployed(json.loads(json.dumps(event)))["statusCode"] == 503
    assert len(with_secret.reads) == 1  # no read for ten seconds after a failed one
    clients.client("secretsmanager").create_secret(
        Name=SECRET_ID,
        SecretString=json.dumps({"signing_secret": SIGNING_SECRET, "bot_token": deployed.slack.bot_token}),
    )
    _advance(with_secret, 11)
    assert deployed(json.loads(json.dumps(event)))["statusCode"] == 200
    assert deployed.invocations and deployed.slack.calls == []


def test_lazy_work_on_a_container_that_cannot_read_the_secret_fails_the_invocation(
    with_secret: WithSecret,
) -> None:
    """The lazy half often lands on a new container, whose first request reads the secret. If that read
    fails, a 503 answer would count as success for Lambda: the work lost, "working..." forever, nothing
    audited. Raising sends it to the on-failure destination, which records it and tells the user."""
    from bot.entry import InternalRequestRefused

    deployed = with_secret.deployed
    deployed(api_event(2, slash_body(deployed.slack, "whoami")))
    lazy = json.loads(deployed.invocations[0]["Payload"])
    deployed.module = _load_handler()  # a cold container
    clients.client("secretsmanager").delete_secret(SecretId=SECRET_ID, ForceDeleteWithoutRecovery=True)
    with pytest.raises(InternalRequestRefused, match="could not be read"):
        deployed(lazy)
    assert not [m for m in deployed.slack.messages if m.text.startswith("*You are*")]


def test_a_secret_without_both_keys_is_refused_with_a_sentence(
    with_secret: WithSecret, caplog: pytest.LogCaptureFixture
) -> None:
    clients.client("secretsmanager").put_secret_value(
        SecretId=SECRET_ID, SecretString='{"signing_secret": "x"}'
    )
    caplog.set_level(logging.INFO)
    response = with_secret.deployed(api_event(2, slash_body(with_secret.deployed.slack, "whoami")))
    assert response["statusCode"] == 503
    assert (
        "must be JSON with the keys signing_secret and bot_token" in caplog.text and '"x"' not in caplog.text
    )


def test_alerts_outside_a_request_take_the_token_from_the_secret(with_secret: WithSecret) -> None:
    from bot.config import Settings
    from bot.slack_web import web_client

    client = web_client(Settings.from_env())
    assert client.token == with_secret.deployed.slack.bot_token and len(with_secret.reads) == 1
