"""The Slack function's IAM policy in template.yaml grants every AWS call the bot makes, and little else.

The demo stack (embedded AWS, demo data, the real app behind signed requests) runs every command its banner
suggests and clicks the buttons they offer, while every botocore call is recorded. Each call must be
allowed by a statement of ``SlackFunction``'s policies (DynamoDB calls on the statement naming that table);
each granted action must be used, or be one that only real AWS exercises (listed below with the reason).
A permission forgotten in the template fails here rather than as an AccessDenied in Slack.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from bot.aws import clients
from bot.local.apilogs_traffic import uuid1_at
from bot.local.console import Console
from bot.local.demo import DEMO_CHANNELS, DEMO_PEOPLE, LocalStack, start_local_stack
from tests.foundation.test_deploy_artifacts import template

# Granted, but not called by the demo: each needs something only real AWS or a deployment provides.
ONLY_IN_AWS = {
    "lambda:InvokeFunction": "the lazy listeners' self-invoke (locally they run in threads)",
    "logs:StartLiveTail": "the live tail of /apilogs tail (the demo's tail polls; moto's Live Tail is tested in tests/apilogs)",
    "ssm:GetParameter": "OPSBOT_POLICY_PARAMETER (the demo passes its policy in OPSBOT_POLICY)",
    "ses:GetSuppressedDestination": "the SES account suppression list (OPSBOT_SES_SUPPRESSION off in the demo)",
    "ses:PutSuppressedDestination": "the SES account suppression list",
    "ses:DeleteSuppressedDestination": "the SES account suppression list",
    "secretsmanager:GetSecretValue": "a TSIG key from Secrets Manager (the demo's master has none)",
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


def grants(stack: LocalStack) -> list[tuple[set[str], set[str] | None]]:
    """(actions, tables) per statement; tables is None for statements about something other than tables."""
    settings = stack.settings
    names = {
        "StateTable": {settings.state_table},
        "MailingTableName": {settings.mailing_table},
        "DeviceTableName": {settings.device_table},
        "FanoutTableNames": set(settings.fanout_tables),
    }
    found = []
    for statement in statements(template()["Resources"]["SlackFunction"]["Properties"]["Policies"]):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resource = json.dumps(statement["Resource"])
        tables = {t for marker, named in names.items() if marker in resource for t in named}
        found.append((set(actions), tables if tables else None))
    return found


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
    calls: dict[tuple[str, str], set[str]] = {}
    lock = threading.Lock()
    from botocore.client import BaseClient

    original = BaseClient._make_api_call

    def recording(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        with lock:
            service = self.meta.service_model.service_name
            calls.setdefault((service, operation_name), set()).update(tables_of(operation_name, api_params))
        return original(self, operation_name, api_params)

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
    BaseClient._make_api_call = recording  # type: ignore[method-assign]
    try:
        for command in ["/ops whoami", *commands]:
            before = len(console.buttons)
            console.handle(command)
            for number in range(before + 1, len(console.buttons) + 1):
                button = console.buttons[number - 1][0]
                if not button.url and not NOT_CLICKED.search(button.text):
                    console.handle(f"click {number}")
    finally:
        BaseClient._make_api_call = original  # type: ignore[method-assign]
    transcript = out.getvalue()
    assert "Something went wrong" not in transcript and "refused" not in transcript, transcript

    allowed = grants(demo_stack)
    missing = []
    for (service, operation), tables in sorted(calls.items()):
        action = iam_action(service, operation)
        for table in sorted(tables) or [None]:
            if not any(
                action in actions and (table is None or (named and table in named))
                for actions, named in allowed
            ):
                missing.append(f"{action} on {table}" if table else action)
    assert not missing, f"calls the Slack function's policy does not allow: {missing}"

    used = {iam_action(service, operation) for service, operation in calls}
    granted = {action for actions, _ in allowed for action in actions}
    unexplained = sorted(granted - used - set(ONLY_IN_AWS))
    assert not unexplained, f"granted but never used (least privilege): {unexplained}"
    # The list of exceptions stays true: each is granted, and none is in fact used by the demo.
    assert set(ONLY_IN_AWS) <= granted and not set(ONLY_IN_AWS) & used, sorted(set(ONLY_IN_AWS) & used)
    # The run really covered every capability (a recorder that saw nothing would pass the checks above).
    seen_tables = {t for tables in calls.values() for t in tables}
    settings = demo_stack.settings
    assert {settings.state_table, settings.mailing_table, settings.device_table} <= seen_tables
    assert set(settings.fanout_tables) <= seen_tables
    for service in ("logs", "route53", "lambda", "apigateway"):
        assert any(s == service for s, _ in calls), (service, sorted(calls))
    assert "clicked" in transcript and "Apply" in transcript
