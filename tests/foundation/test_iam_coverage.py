"""Each function's IAM policy in template.yaml grants every AWS call its code makes, and little else.

On the demo stack (embedded AWS, demo data, the real app behind signed requests) the Slack function runs
every command its banner suggests and clicks the buttons they offer; the SES feedback, device registration
and DNS mirror functions are invoked with their events. Every botocore call is recorded. Each call must be
allowed by a statement of that function's policies (DynamoDB calls by the statement naming that table);
each granted action must be used, or be one that only real AWS exercises (listed below with the reason).
A permission forgotten in the template fails here rather than as an AccessDenied in production.
member-account.yaml's roles (what opsbot may do in another account) are covered the same way, by every
command and function at work in the demo's second account: test_iam_member_roles.py.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import re
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot.aws import clients
from bot.aws.functions import serve_locally
from bot.local.apilogs_traffic import uuid1_at
from bot.local.console import Console
from bot.local.demo import DEMO_CHANNELS, DEMO_PEOPLE, LocalStack, start_local_stack
from bot.local.seeds.dns import DEMO_MIRROR_FUNCTION, _demo_mirror
from tests.foundation.test_deploy_artifacts import template
from tests.support import cfn_template

pytestmark = pytest.mark.slow  # the whole demo, seeded in process, every command of its banner

# Granted, but not called here: each needs something only real AWS or a deployment provides.
ONLY_IN_AWS = {
    "lambda:InvokeFunction": (
        "the lazy listeners' self-invoke and the requests to the DNS mirror function (locally both run "
        "in this process)"
    ),
    "logs:StartLiveTail": "the live tail of /apilogs tail (the demo's tail polls; moto's Live Tail is tested in tests/apilogs)",
    "ssm:GetParameter": "OPSBOT_POLICY_PARAMETER (the demo passes its policy in OPSBOT_POLICY)",
    "ses:GetSuppressedDestination": "the SES account suppression list (OPSBOT_SES_SUPPRESSION off in the demo)",
    "ses:PutSuppressedDestination": "the SES account suppression list",
    "ses:DeleteSuppressedDestination": "the SES account suppression list",
    "sts:SetSourceIdentity": "authorized within sts:AssumeRole when it sets SourceIdentity (no call of its own)",
    "sts:TagSession": "authorized within sts:AssumeRole for session tags a member role's trust may require",
    "secretsmanager:GetSecretValue": (
        "the Slack secrets (the demo sets SLACK_SIGNING_SECRET and SLACK_BOT_TOKEN; the read is tested in "
        "test_lambda_handler.py) and a TSIG key (the demo's master has none)"
    ),
}

# Granted to one function, used by it only on paths this run does not take.
NOT_EXERCISED = {
    "SesFeedbackFunction": {
        "sts:AssumeRole": "feedback from a member account's stack (the demo's SES feedback is opsbot's own)",
    },
    "DnsMirrorFunction": {
        "sts:AssumeRole": (
            "/dns work in a member account: the demo runs the mirror function in the Slack function's "
            "process, whose credentials cache already holds the role (one AssumeRole per person and account)"
        ),
    },
    "AlarmsFunction": {
        "sts:AssumeRole": "an alarm of a member account (the demo's alarms are opsbot's own account's)",
    },
    "DeviceRegistrationFunction": {
        "sts:AssumeRole": "registrations from a member account's stack (the demo's are opsbot's own)",
    },
    "SlackFunction": {
        "logs:DescribeMetricFilters": "the Errors since button on a custom-metric alarm post (tests/alarms)",
        "cloudwatch:GetMetricStatistics": "the Errors since button on a stream-driven function's alarm post",
    },
}

# Buttons that would start long-running work or merely close a message.
NOT_CLICKED = re.compile(r"tail|stop|cancel|dismiss", re.IGNORECASE)
BANNER_COMMAND = re.compile(r"/(?:apilogs|device|mail|dns|fanout|ops)\b(?: (?! )[^\s(]+)*")


def iam_action(service: str, operation: str) -> str:
    if service in ("apigateway", "apigatewayv2"):
        return "apigateway:GET" if operation.startswith(("Get", "List")) else f"apigateway:{operation}"
    if service == "lambda" and operation == "Invoke":
        return "lambda:InvokeFunction"
    return f"{'ses' if service == 'sesv2' else service}:{operation}"


def tables_of(operation: str, params: dict[str, Any]) -> set[str]:
    if "TableName" in params:
        return {params["TableName"]}
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return set(params.get("RequestItems", {}))
    if operation == "TransactWriteItems":
        return {next(iter(entry.values()))["TableName"] for entry in params.get("TransactItems", [])}
    return set()


def statements(node: Any) -> Iterator[dict[str, Any]]:
    """Every statement of a policy list, taking both branches of each Fn::If (every feature enabled)."""
    if isinstance(node, dict):
        if "Effect" in node and "Action" in node:
            yield node
            return
        for key, value in node.items():
            if key == "Fn::If":
                for branch in value[1:]:
                    yield from statements(branch)
            else:
                yield from statements(value)
    elif isinstance(node, list):
        for item in node:
            yield from statements(item)


def member_template() -> dict[str, Any]:
    return cfn_template.load("member-account.yaml")


def grants(
    stack: LocalStack, function: str, document: dict[str, Any] | None = None
) -> list[tuple[set[str], set[str] | None]]:
    """(actions, tables) per statement; tables is None for statements about something other than tables."""
    settings = stack.settings
    names = {
        "StateTable": {settings.state_table},
        "MailingTableName": {settings.mailing_table},
        "DeviceTableName": {settings.device_table},
        "FanoutTableNames": set(settings.fanout_tables),
    }
    found = []
    for statement in statements((document or template())["Resources"][function]["Properties"]["Policies"]):
        if statement["Effect"] != "Allow":
            continue
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resource = json.dumps(statement["Resource"])
        tables = {t for marker, named in names.items() if marker in resource for t in named}
        if ":table/" not in resource and "StateTable" not in resource:
            tables = set()  # the names of functions derived from table names (fan-out hooks)
        if ":table/*" in resource:
            tables.add("*")  # every table of the account (a fan-out source's table)
        found.append((set(actions), tables if tables else None))
    return found


class CallRecorder:
    """Every botocore call made while active: (service, operation) -> the tables it named.

    Calls made inside ``run_as(function, ...)`` (another function invoked in this process, as the demo
    runs the DNS mirror for the Slack function) are recorded in ``elsewhere[function]`` instead.
    ``label`` names what runs now (a command, a click): ``callers[(where, action, table)]`` holds the
    labels that made each call; where is "" for this recorder's own calls, else the function or member
    role; table is "" for a call on no DynamoDB table."""

    def __init__(self) -> None:
        self.calls: dict[tuple[str, str], set[str]] = {}
        self.elsewhere: dict[str, CallRecorder] = {}
        self.label = ""
        self.callers: dict[tuple[str, str, str], set[str]] = {}
        self._where = threading.local()
        self._lock = threading.Lock()

    def run_as(self, function: str, handler: Callable[[Any, Any], Any], event: Any, context: Any) -> Any:
        self.elsewhere.setdefault(function, CallRecorder())
        self._where.function = function
        try:
            return handler(event, context)
        finally:
            self._where.function = None

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """This thread's calls inside are not recorded: a test's own seeding between two commands."""
        self._where.paused = True
        try:
            yield
        finally:
            self._where.paused = False

    def __enter__(self) -> CallRecorder:
        from botocore.client import BaseClient

        self._original = original = BaseClient._make_api_call
        recorder = self

        def recording(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            if getattr(client, "opsbot_foreign_credentials", False):
                # A fan-out target's own role (check --deep): that account's grant, not this function's.
                return original(client, operation_name, api_params)
            if getattr(recorder._where, "paused", False):
                return original(client, operation_name, api_params)
            with recorder._lock:
                key = (client.meta.service_model.service_name, operation_name)
                function = getattr(recorder._where, "function", None)
                # A call with a member account's credentials: that role's policy must allow it (a call
                # on opsbot's own table goes home with opsbot's own client, recorded as that call).
                role = getattr(client, "opsbot_role", "")
                goes_home = bool(role) and bool(clients.own_tables() & tables_of(operation_name, api_params))
                if role and not goes_home:
                    function = member_role_of(role)
                    recorder.elsewhere.setdefault(function, CallRecorder())
                if not goes_home:
                    calls = recorder.elsewhere[function].calls if function else recorder.calls
                    tables = tables_of(operation_name, api_params)
                    calls.setdefault(key, set()).update(tables)
                    if recorder.label:
                        for table in tables or {""}:
                            where = (function or "", iam_action(*key), table)
                            recorder.callers.setdefault(where, set()).add(recorder.label)
            return original(client, operation_name, api_params)

        BaseClient._make_api_call = recording  # type: ignore[method-assign]
        return self

    def __exit__(self, *_: object) -> None:
        from botocore.client import BaseClient

        BaseClient._make_api_call = self._original  # type: ignore[method-assign]

    @property
    def actions(self) -> set[str]:
        return {iam_action(service, operation) for service, operation in self.calls}

    @property
    def tables(self) -> set[str]:
        return {table for tables in self.calls.values() for table in tables}


def member_role_of(role_arn: str) -> str:
    """member-account.yaml's logical id of a role by its name (<prefix>-read, <prefix>-change)."""
    return "ChangeRole" if role_arn.endswith("-change") else "ReadRole"


# Calls IAM never refuses, so no policy grants them: "No permissions are required to perform this
# operation" (STS API reference, GetCallerIdentity). /ops doctor asks who it is.
NEEDS_NO_GRANT = {"sts:GetCallerIdentity"}


def assert_policy_covers(stack: LocalStack, function: str, recorder: CallRecorder) -> None:
    allowed = grants(stack, function)
    missing = []
    for (service, operation), tables in sorted(recorder.calls.items()):
        action = iam_action(service, operation)
        if action in NEEDS_NO_GRANT:
            continue
        for table in sorted(tables) or [None]:
            if not any(
                action in actions and (table is None or (named and (table in named or "*" in named)))
                for actions, named in allowed
            ):
                missing.append(f"{action} on {table}" if table else action)
    assert not missing, f"calls the {function} policy does not allow: {missing}"

    granted = {action for actions, _ in allowed for action in actions}
    exceptions = set(ONLY_IN_AWS) | set(NOT_EXERCISED.get(function, {}))
    unexplained = sorted(granted - recorder.actions - exceptions)
    assert not unexplained, f"{function} is granted but never uses (least privilege): {unexplained}"
    # The list of exceptions stays true: none of them is in fact used here.
    assert not exceptions & recorder.actions, sorted(exceptions & recorder.actions)


@pytest.fixture
def demo_stack() -> Iterator[LocalStack]:
    saved = dict(os.environ)
    stack = start_local_stack(embedded_aws=True, seed=True)
    try:
        yield stack
    finally:
        # The server shares moto's global backends with this process: leave them empty for later tests.
        reset = urllib.request.Request(f"{stack.aws.endpoint}/moto-api/reset", method="POST")
        urllib.request.urlopen(reset).close()
        stack.stop()
        os.environ.clear()
        os.environ.update(saved)
        clients.clear_caches()


def test_the_slack_functions_policy_grants_what_the_bot_calls(demo_stack: LocalStack) -> None:
    out = io.StringIO()
    console = Console(
        slack=demo_stack.slack,
        app_url=demo_stack.app_url,
        signing_secret=demo_stack.settings.slack_signing_secret,
        runner=demo_stack.runner,
        people=DEMO_PEOPLE,
        channels=dict(DEMO_CHANNELS),
        out=out,
        wait_seconds=120,
    )
    for message in demo_stack.slack.visible():  # the seeded mail alerts and their buttons
        console._show(message, "")
    commands = [c for line in demo_stack.banner for c in BANNER_COMMAND.findall(line) if " tail" not in c]
    assert len(commands) >= 12, demo_stack.banner
    activate = next(c for c in commands if c.startswith("/device activate")).split()
    # An id from before the demo's log groups existed: the "not found" answer explains why (DescribeLogGroups).
    days_ago = uuid1_at(int(time.time() * 1000) - 2 * 86_400_000, random.Random(7))
    commands += [f"/apilogs {days_ago}", "/mail stats", f"/device deactivate {activate[2]} {activate[3]}"]
    with CallRecorder() as recorder:
        serve_locally(
            DEMO_MIRROR_FUNCTION, lambda e, c: recorder.run_as("DnsMirrorFunction", _demo_mirror, e, c)
        )
        for command in ["/ops whoami", "/ops doctor", *commands]:
            before = len(console.buttons)
            console.handle(command)
            for number in range(before + 1, len(console.buttons) + 1):
                button = console.buttons[number - 1][0]
                if not button.url and not NOT_CLICKED.search(button.text):
                    console.handle(f"click {number}")
                    if (
                        console.pending is not None
                    ):  # a confirmation dialog (Apply): answer it, as a user would
                        console.handle("confirm")
    transcript = out.getvalue()
    assert "Something went wrong" not in transcript and "refused" not in transcript, transcript
    assert "clicked" in transcript and "Apply" in transcript

    assert_policy_covers(demo_stack, "SlackFunction", recorder)
    # The run really covered every capability (a recorder that saw nothing would pass the checks above).
    settings = demo_stack.settings
    assert {settings.state_table, settings.mailing_table, settings.device_table} <= recorder.tables
    assert set(settings.fanout_tables) <= recorder.tables
    for service in ("logs", "lambda", "apigateway"):
        assert any(s == service for s, _ in recorder.calls), (service, sorted(recorder.calls))
    # /dns work went to the mirror function, and only its policy grants Route 53.
    assert not any(s == "route53" for s, _ in recorder.calls), sorted(recorder.calls)
    dns = recorder.elsewhere["DnsMirrorFunction"]
    assert ("route53", "ChangeResourceRecordSets") in dns.calls
    assert_policy_covers(demo_stack, "DnsMirrorFunction", dns)


def test_the_event_functions_policies_grant_what_their_handlers_call(demo_stack: LocalStack) -> None:
    from bot.core.device.commands import registration_handler
    from bot.core.dns.commands import mirror_handler
    from bot.intake.ses_feedback import SesFeedbackApp
    from bot.local import mail_samples
    from tests.support.events import load_event

    settings = demo_stack.settings
    feedback = mail_samples.sqs_event(
        [
            mail_samples.bounce(["new.bounce@example.com"], int(time.time() * 1000)),
            mail_samples.delivery(["reader@example.com"], int(time.time() * 1000)),
        ]
    )
    with CallRecorder() as recorder:
        assert SesFeedbackApp(settings)(feedback, None) == {"batchItemFailures": []}
    assert settings.mailing_table in recorder.tables
    assert_policy_covers(demo_stack, "SesFeedbackFunction", recorder)

    with CallRecorder() as recorder:
        registration_handler(settings)(load_event("device_registration"), None)
    assert recorder.tables == {settings.device_table}
    assert_policy_covers(demo_stack, "DeviceRegistrationFunction", recorder)

    from bot.intake.lazy_failure import LazyFailureApp
    from tests.foundation.test_lazy_failure import with_response_url

    channel, user = next(iter(DEMO_CHANNELS)), DEMO_PEOPLE[0].user_id
    dropped = with_response_url(
        load_event("lambda_destination_event_age_exceeded"), demo_stack.slack.new_response_url(channel, user)
    )
    with CallRecorder() as recorder:
        result = LazyFailureApp(settings)(dropped, None)
    assert result["recorded"] and result["told"]
    assert recorder.tables == {settings.state_table}
    assert_policy_covers(demo_stack, "LazyFailureFunction", recorder)

    # The demo's Route 53 zone was edited by hand: the scheduled run puts it back (a change batch).
    with CallRecorder() as recorder:
        mirror_handler(settings)({"domain": "corp.example.com"}, None)
    assert ("route53", "ChangeResourceRecordSets") in recorder.calls
    assert_policy_covers(demo_stack, "DnsMirrorFunction", recorder)


def test_the_slack_function_cannot_read_the_environment_of_opsbots_functions() -> None:
    """apilogs reads where functions log (GetFunctionConfiguration), which also returns their environment:
    opsbot's own functions hold the Slack bot token and signing secret there."""
    denied = [
        s
        for s in statements(template()["Resources"]["SlackFunction"]["Properties"]["Policies"])
        if s["Effect"] == "Deny" and "lambda:GetFunctionConfiguration" in json.dumps(s["Action"])
    ]
    assert denied and "${AWS::StackName}-*" in json.dumps(denied[0]["Resource"])
    names = [
        r["Properties"]["FunctionName"]["Fn::Sub"]
        for r in template()["Resources"].values()
        if r["Type"] == "AWS::Serverless::Function"
    ]
    assert names and all(name.startswith("${AWS::StackName}-") for name in names)


def test_member_roles_grant_no_more_than_opsbot() -> None:
    """member-account.yaml's roles grant only actions opsbot's own functions are granted (least privilege
    per command: the member roles are the commands' and functions' part of the bot's policy; that each is
    called is test_iam_member_roles.py's), the read role none that changes something, and their trust
    requires the external id and names only opsbot's function roles."""
    bot = template()["Resources"]
    opsbot = {
        action
        for function in (
            "SlackFunction",
            "DnsMirrorFunction",
            "AlarmsFunction",
            "SesFeedbackFunction",
            "DeviceRegistrationFunction",
        )
        for statement in statements(bot[function]["Properties"]["Policies"])
        if statement["Effect"] == "Allow"
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    }
    member = member_template()["Resources"]
    changing = re.compile(r":(Put|Update|Delete|Change|Create)")
    for role in ("ReadRole", "ChangeRole"):
        granted = {
            action
            for statement in statements(member[role]["Properties"]["Policies"])
            for action in (
                statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            )
        }
        assert granted <= opsbot, sorted(granted - opsbot)
        if role == "ReadRole":
            assert not [a for a in granted if changing.search(a)], sorted(granted)
        # opsbot's function roles, and the people of OperatorPrincipalArns (tests/accounts/test_member_template.py).
        trust, operators = member[role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert set(trust["Action"]) == {"sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"}
        assert trust["Condition"]["StringEquals"] == {"sts:ExternalId": {"Ref": "ExternalId"}}
        assert "${OpsbotStackName}-*" in json.dumps(trust["Condition"]["ArnLike"])
        assert operators["Fn::If"][0] == "HasOperatorPrincipals"
    # opsbot may assume exactly the roles member-account.yaml names (<MemberRoleName>-read and -change).
    names = {json.dumps(member[role]["Properties"]["RoleName"]) for role in ("ReadRole", "ChangeRole")}
    assert names == {'{"Fn::Sub": "${RoleNamePrefix}-read"}', '{"Fn::Sub": "${RoleNamePrefix}-change"}'}
    granted_roles = [
        statement["Resource"]
        for statement in statements(bot["SlackFunction"]["Properties"]["Policies"])
        if "sts:AssumeRole" in statement["Action"]
    ]
    assert {"Fn::Sub": "arn:${AWS::Partition}:iam::*:role/${MemberRoleName}-*"} in granted_roles


def test_member_account_template_passes_cfn_lint() -> None:
    import subprocess
    import sys
    from pathlib import Path

    from tests.foundation.test_deploy_artifacts import ROOT

    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "cfn-lint"),
            "--format",
            "parseable",
            str(ROOT / "member-account.yaml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode & 3 == 0, result.stdout + result.stderr


def test_the_alarm_functions_policy_grants_what_the_intake_calls(demo_stack: LocalStack) -> None:
    """The demo's alarms fired through the intake, plus a stream-driven function's (the fan-out function)
    and a custom metric's: every correlation kind, the graph, the storm counters and the episode items."""
    from bot.intake.alarms import AlarmsApp
    from bot.local.seeds.alarms import API_ALARM, LAMBDA_ALARM, notification, sqs_event

    stream = notification(LAMBDA_ALARM)
    stream["AlarmName"], stream["AlarmArn"] = (
        "fanout-iterator-age",
        stream["AlarmArn"].replace(LAMBDA_ALARM, "fanout-iterator-age"),
    )
    stream["Trigger"] = {
        **stream["Trigger"],
        "MetricName": "IteratorAge",
        "Dimensions": [{"name": "FunctionName", "value": "fanout"}],
    }
    custom = notification(LAMBDA_ALARM)
    custom["AlarmName"], custom["AlarmArn"] = (
        "checkout-declines",
        custom["AlarmArn"].replace(LAMBDA_ALARM, "checkout-declines"),
    )
    custom["Trigger"] = {
        **custom["Trigger"],
        "Namespace": "Checkout",
        "MetricName": "Declines",
        "Dimensions": [],
    }
    app = AlarmsApp(demo_stack.settings)  # with the graph: GetMetricWidgetImage is called (moto refuses it)
    # Built before recording: the demo's side (DescribeAlarms, the topic) is CloudWatch's, not the function's.
    events = [sqs_event(m) for m in (notification(API_ALARM), notification(LAMBDA_ALARM), stream, custom)]
    with CallRecorder() as recorder:
        for event in events:
            assert app(event, None) == {"batchItemFailures": []}
        app({"opsbot_alarms": "flush"}, None)
    assert ("cloudwatch", "GetMetricWidgetImage") in recorder.calls
    assert recorder.tables == {demo_stack.settings.state_table}
    assert_policy_covers(demo_stack, "AlarmsFunction", recorder)
