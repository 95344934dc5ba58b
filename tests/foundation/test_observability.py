"""Observable in production: every log line of a Slack request names it (command, user, channel, team),
its audit reference and the account; OpenTelemetry traces when asked and not a module of it otherwise;
alarms on each of opsbot's functions and queues, published to the alarm topic and an e-mail address."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bot import observability, tracing
from bot.local.requests import signed_headers, slash_command_body
from bot.local.seeds import apilogs as seed_module
from tests.apilogs.conftest import demo, fast_limiter  # noqa: F401  (fixtures)
from tests.support import cfn_template
from tests.support.slack import ALICE, BOB, OPS_CHANNEL, SIGNING_SECRET, SlackHarness

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:opsbot-slack"


class Capture(logging.Handler):
    """A root handler like Lambda's: the request filter on it, the records kept."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def audits(self) -> list[tuple[logging.LogRecord, dict[str, Any]]]:
        found = []
        for record in self.records:
            message = record.getMessage()
            if record.name == "opsbot.audit" and message.startswith('{"audit"'):
                found.append((record, json.loads(message)["audit"]))
        return found


@pytest.fixture
def capture() -> Iterator[Capture]:
    handler = Capture()
    root = logging.getLogger()
    root.addHandler(handler)
    observability.install(root)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


# -- structured logs ---------------------------------------------------------------------------------


def test_every_line_of_a_command_carries_its_slack_request_and_reference(
    harness: SlackHarness, capture: Capture
) -> None:
    harness.command("/ops", "whoami", user=ALICE)
    harness.command("/ops", "policy", user=BOB)
    audits = capture.audits()
    assert [data["user"] for _, data in audits] == [ALICE[0], BOB[0]]
    for record, data in audits:
        # The reference on the line is the one in the record (and the one the user sees), per request.
        assert record.ref == data["ref"]  # type: ignore[attr-defined]
        assert record.slack == {  # type: ignore[attr-defined]
            "command": "/ops",
            "user": data["user"],
            "channel": OPS_CHANNEL[0],
            "team": harness.slack.team_id,
        }
    assert audits[0][1]["ref"] != audits[1][1]["ref"]
    # Every line the lazy work logged after the reference was minted carries it, whichever logger.
    refs = {data["ref"] for _, data in audits}
    with_ref = [r for r in capture.records if getattr(r, "ref", None)]
    assert with_ref and {r.ref for r in with_ref} <= refs  # type: ignore[attr-defined]


def test_the_account_comes_from_the_invoked_function_arn(harness: SlackHarness, capture: Capture) -> None:
    from slack_bolt.request import BoltRequest

    body = slash_command_body(
        "/ops", "whoami", user_id=ALICE[0], user_name=ALICE[1], channel_id=OPS_CHANNEL[0],
        channel_name=OPS_CHANNEL[1], team_id=harness.slack.team_id,
        response_url=harness.slack.new_response_url(OPS_CHANNEL[0], ALICE[0]),
    )  # fmt: skip
    request = BoltRequest(
        body=body,
        headers=signed_headers(SIGNING_SECRET, body),
        context={"aws_lambda_invoked_function_arn": FUNCTION_ARN},
    )
    assert harness.app.dispatch(request).status == 200
    harness.wait()
    [(record, _)] = capture.audits()
    assert record.account == "123456789012"  # type: ignore[attr-defined]


def test_the_fields_are_what_lambdas_json_formatter_can_write(
    harness: SlackHarness, capture: Capture
) -> None:
    """The runtime's formatter adds every unknown record attribute as a top-level key and encodes with no
    fallback for other types: the fields must be plain JSON."""
    harness.command("/ops", "whoami")
    [(record, _)] = capture.audits()
    fields = {key: record.__dict__[key] for key in (observability.SLACK, observability.REF)}
    assert json.loads(json.dumps(fields)) == fields


def test_an_extra_given_by_the_call_is_not_overwritten(capture: Capture) -> None:
    observability.start_request(ref="fromcontext")
    logging.getLogger("opsbot.test").warning("x", extra={"ref": "fromcall"})
    assert capture.records[-1].ref == "fromcall"  # type: ignore[attr-defined]


def test_each_invocation_starts_without_the_last_ones_fields(capture: Capture) -> None:
    from bot.security import audit

    seen: list[str] = []

    def work(event: Any, context: Any) -> None:
        if event == "first":
            audit.new_ref()
        logging.getLogger("opsbot.test").warning(event)
        seen.append(event)

    entry = observability.lambda_entry(work, "test")
    assert entry.__name__ == "handler"
    entry("first", SimpleNamespace(invoked_function_arn=FUNCTION_ARN, aws_request_id="r1"))
    entry(
        "second",
        SimpleNamespace(invoked_function_arn=FUNCTION_ARN.replace("1234", "9999"), aws_request_id="r2"),
    )
    first, second = (r for r in capture.records if r.name == "opsbot.test")
    assert first.ref and first.account == "123456789012"  # type: ignore[attr-defined]
    assert not hasattr(second, "ref") and second.account == "999956789012"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"command": "/apilogs", "user_id": "U1", "channel_id": "C1", "team_id": "T1", "text": "x"},
            {"command": "/apilogs", "user": "U1", "channel": "C1", "team": "T1"},
        ),
        (
            {"type": "block_actions", "user": {"id": "U1"}, "channel": {"id": "C1"}, "team": {"id": "T1"},
             "actions": [{"action_id": "mail:reenable"}]},
            {"command": "action:mail:reenable", "user": "U1", "channel": "C1", "team": "T1"},
        ),
        (
            {"type": "view_submission", "user": {"id": "U1", "team_id": "T1"}, "team": {"id": "T1"},
             "view": {"callback_id": "device:activate"}},
            {"command": "view:device:activate", "user": "U1", "team": "T1"},
        ),
    ],
)  # fmt: skip
def test_slack_fields_of_each_payload(body: dict[str, Any], expected: dict[str, str]) -> None:
    assert observability.slack_fields(body) == expected


@pytest.mark.parametrize(
    ("arn", "account"),
    [
        (FUNCTION_ARN, "123456789012"),
        (FUNCTION_ARN + ":live", "123456789012"),
        ("arn:aws-cn:lambda:cn-north-1:210987654321:function:f", "210987654321"),
        ("", ""),
        ("arn:aws:sqs:us-east-1:123456789012:q", ""),
        ("not an arn", ""),
    ],
)
def test_account_of(arn: str, account: str) -> None:
    assert observability.account_of(arn) == account


# -- tracing -----------------------------------------------------------------------------------------


@pytest.fixture
def spans() -> Iterator[Any]:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tracing.setup(SimpleSpanProcessor(exporter))
    try:
        yield exporter
    finally:
        tracing.shutdown()


def test_a_lookup_is_traced_with_its_aws_and_slack_calls(
    harness: SlackHarness,
    demo: seed_module.DemoApi,  # noqa: F811
    spans: Any,
) -> None:
    assert demo.failed is not None
    harness.command("/apilogs", demo.failed.api_request_id)
    finished = spans.get_finished_spans()
    by_name: dict[str, list[Any]] = {}
    for span in finished:
        by_name.setdefault(span.name, []).append(span)
    [lookup] = by_name["apilogs.lookup"]
    searches = by_name["logs.FilterLogEvents"]
    assert searches
    # Every search is a child of the lookup, also those run in the lookup's worker threads.
    ids = {s.context.span_id: s for s in finished}

    def under_lookup(span: Any) -> bool:
        while span.parent is not None:
            if span.parent.span_id == lookup.context.span_id:
                return True
            span = ids[span.parent.span_id]
        return False

    assert all(under_lookup(s) for s in searches)
    assert all(s.attributes["rpc.service"] == "logs" for s in searches)
    # The answer went to Slack through the response_url: a span of its own.
    assert by_name.get("slack.response_url")


def test_a_failed_aws_call_is_a_failed_span(spans: Any, aws: None) -> None:
    from opentelemetry.trace import StatusCode

    from bot.aws.clients import client

    with pytest.raises(Exception, match="ResourceNotFound"):
        client("logs").filter_log_events(logGroupName="/no/such/group")
    [span] = spans.get_finished_spans()
    assert span.name == "logs.FilterLogEvents" and span.status.status_code is StatusCode.ERROR


def test_tracing_off_imports_no_opentelemetry_and_traces_nothing() -> None:
    code = (
        "import sys, handlers.slack, handlers.ses_feedback, bot.tracing as t\n"
        "print(t.enabled(), sorted(m for m in sys.modules if m.startswith('opentelemetry')))"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "SLACK_BOT_TOKEN": "xoxb-x",
        "SLACK_SIGNING_SECRET": "s",
        "OPSBOT_TRACING": "Off",
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(maxsplit=1) == ["False", "[]\n"]


def test_tracing_on_sets_up_from_the_environment() -> None:
    code = "import handlers.slack, bot.tracing as t\nprint(t.enabled())"
    env = {"PATH": "/usr/bin:/bin", "SLACK_BOT_TOKEN": "xoxb-x", "SLACK_SIGNING_SECRET": "s", "OPSBOT_TRACING": "On",
           "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


# -- the template ------------------------------------------------------------------------------------


def template() -> dict[str, Any]:
    return cfn_template.load("template.yaml")


def of_type(resources: dict[str, Any], kind: str) -> dict[str, Any]:
    return {name: r for name, r in resources.items() if r["Type"] == kind}


def test_every_function_logs_json_and_nothing_names_powertools() -> None:
    text = (ROOT / "template.yaml").read_text()
    assert "POWERTOOLS" not in text
    logging_config = template()["Globals"]["Function"]["LoggingConfig"]
    assert logging_config["LogFormat"] == "JSON" and logging_config["ApplicationLogLevel"] == "INFO"
    for name, function in of_type(template()["Resources"], "AWS::Serverless::Function").items():
        assert "LoggingConfig" not in function["Properties"], f"{name} overrides the JSON log format"


def test_every_function_and_queue_has_its_alarms_published_to_the_topic_and_the_mail() -> None:
    t = template()
    resources = t["Resources"]
    timeout_default = t["Globals"]["Function"]["Timeout"]
    alarms = of_type(resources, "AWS::CloudWatch::Alarm")
    by_target: dict[tuple[str, str], dict[str, Any]] = {}
    for name, alarm in alarms.items():
        p = alarm["Properties"]
        assert p["AlarmActions"] == [{"Ref": "OpsbotAlarmTopic"}], name
        assert p["OKActions"] == [{"Ref": "OpsbotAlarmTopic"}], name
        [dimension] = p["Dimensions"]
        value = dimension["Value"]
        target = value["Ref"] if "Ref" in value else value["Fn::GetAtt"][0]
        by_target[(target, p["MetricName"])] = alarm

    functions = of_type(resources, "AWS::Serverless::Function")
    assert len(functions) >= 5
    for name, function in functions.items():
        timeout = function["Properties"].get("Timeout", timeout_default)
        # The Slack function's long runs are its tails, by design: no Duration alarm (its timeouts are errors).
        metrics = ("Errors", "Throttles") if name == "SlackFunction" else ("Errors", "Throttles", "Duration")
        for metric in metrics:
            alarm = by_target.get((name, metric))
            assert alarm is not None, f"{name} has no {metric} alarm"
            assert alarm.get("Condition") == function.get("Condition"), f"{name} {metric}"
        if name == "SlackFunction":
            assert (name, "Duration") not in by_target
            continue
        duration = by_target[(name, "Duration")]["Properties"]
        assert duration["Threshold"] == timeout * 1000 * 0.8 and duration["Statistic"] == "Maximum"
        assert by_target[(name, "Errors")]["Properties"]["Threshold"] == 0

    queues = of_type(resources, "AWS::SQS::Queue")
    dead_letter = {
        q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for q in queues.values()
        if "RedrivePolicy" in q["Properties"]
    } | {
        f["Properties"]["DeadLetterQueue"]["TargetArn"]["Fn::GetAtt"][0]
        for f in functions.values()
        if "DeadLetterQueue" in f["Properties"]
    }
    assert dead_letter == {
        "SesFeedbackDeadLetterQueue",
        "DeviceRegistrationDeadLetterQueue",
        "AlarmDeadLetterQueue",
    }
    for name in queues:
        metric = (
            "ApproximateNumberOfMessagesVisible" if name in dead_letter else "ApproximateAgeOfOldestMessage"
        )
        assert (name, metric) in by_target, f"{name} has no {metric} alarm"
    assert (
        by_target[("SesFeedbackDeadLetterQueue", "ApproximateNumberOfMessagesVisible")]["Properties"][
            "Threshold"
        ]
        == 0
    )

    subscription = resources["OpsbotAlarmEmail"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"] == {
        "TopicArn": {"Ref": "OpsbotAlarmTopic"},
        "Protocol": "email",
        "Endpoint": {"Ref": "AlarmEmail"},
    }
    assert t["Conditions"]["HasAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}


def test_tracing_is_a_switch_with_its_layer() -> None:
    t = template()
    assert t["Parameters"]["Tracing"]["Default"] == "Off"
    env = t["Globals"]["Function"]["Environment"]["Variables"]
    assert env["OPSBOT_TRACING"] == {"Ref": "Tracing"}
    assert tracing.wanted({"OPSBOT_TRACING": "On"}) and not tracing.wanted({"OPSBOT_TRACING": "Off"})
    layers = t["Globals"]["Function"]["Layers"]
    assert {"Fn::If": ["HasTracingLayer", {"Ref": "TracingLayerArn"}, {"Ref": "AWS::NoValue"}]} in layers
    policy = t["Resources"]["TracingPolicy"]
    assert policy["Condition"] == "TracingOn"
    roles = [r for r in policy["Properties"]["Roles"] if "Ref" in r]
    functions = of_type(t["Resources"], "AWS::Serverless::Function")
    unconditional = {f"{n}Role" for n, f in functions.items() if "Condition" not in f}
    assert {r["Ref"] for r in roles} == unconditional


def test_a_value_json_cannot_encode_is_written_as_text(capture: Capture) -> None:
    """Lambda's formatter has no fallback encoder: a field it could not encode would lose the line."""
    observability.start_request(ref=Path("/x"), account=b"1234")  # type: ignore[arg-type]
    logging.getLogger("opsbot.test").warning("y")
    record = capture.records[-1]
    fields = {"ref": record.ref, "account": record.account}  # type: ignore[attr-defined]
    assert json.loads(json.dumps(fields)) == {"ref": "/x", "account": "b'1234'"}


@pytest.mark.serial  # a wall-clock bound
def test_a_collector_that_is_down_costs_an_invocation_little(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listens where spans go: the invocation still ends at once (the ack has 2.5 s in all)."""
    import socket
    import time

    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OPSBOT_TRACING", "On")
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TIMEOUT", raising=False)
    tracing.setup_from_env()
    context = SimpleNamespace(
        aws_request_id="r1", invoked_function_arn="arn:aws:lambda:us-east-1:1:function:f"
    )
    try:
        began = time.monotonic()
        with tracing.invocation("slack", context):
            pass
        assert time.monotonic() - began < 1.0
    finally:
        tracing.shutdown()


def test_setting_tracing_up_twice_traces_each_call_once(aws: None) -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from bot.aws.clients import client

    first, second = InMemorySpanExporter(), InMemorySpanExporter()
    tracing.setup(SimpleSpanProcessor(first))
    tracing.setup(SimpleSpanProcessor(second))  # replaces the first: botocore is wrapped once
    try:
        client("logs").describe_log_groups()
        assert [s.name for s in second.get_finished_spans()] == ["logs.DescribeLogGroups"]
        assert first.get_finished_spans() == ()
    finally:
        tracing.shutdown()
