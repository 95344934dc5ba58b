"""template.yaml passes cfn-lint and has the shape Lambda needs; manifest.json is a valid Slack app
manifest whose commands are exactly the ones the app listens to."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from bot.cli.local import manifest_with_url
from bot.errors import UsageError
from tests.support import cfn_template

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT.parent / "shared" / "specs" / "slack-app-manifest.schema.1.0.0.json"
LOCAL_SCHEMA = ROOT / "tests" / "events" / "slack-app-manifest.schema.1.0.0.json"


def manifest() -> dict[str, Any]:
    return json.loads((ROOT / "bot" / "manifest.json").read_text())


def schema() -> dict[str, Any]:
    return json.loads((SCHEMA if SCHEMA.exists() else LOCAL_SCHEMA).read_text())


def template() -> dict[str, Any]:
    return cfn_template.load("template.yaml")


@pytest.mark.slow  # cfn-lint loads every resource schema
def test_template_passes_cfn_lint() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), "--format", "parseable", str(ROOT / "template.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    # cfn-lint's exit code is a bit mask: 2 errors, 4 warnings, 8 informational; 1 means it crashed.
    assert result.returncode & 3 == 0, result.stdout + result.stderr


@pytest.mark.slow  # imports cfn-lint (0.6 s of CPU a process), as the check above runs it
@pytest.mark.parametrize("name", ["template.yaml", "member-account.yaml", "alarm-forwarder.yaml"])
def test_the_tests_read_each_template_as_cfn_lint_does(name: str) -> None:
    """The tests read the templates with tests/support/cfn_template.py, not cfn-lint's loader: both must
    give the same dictionaries (the short-form intrinsic functions in their long form)."""
    from cfnlint.decode import cfn_yaml

    assert cfn_template.load(name) == cfn_yaml.load(str(ROOT / name))


def test_slack_function_shape() -> None:
    resources = template()["Resources"]
    function = resources["SlackFunction"]["Properties"]
    assert function["Handler"] == "handlers.slack.handler"
    assert function["FunctionName"] == {"Fn::Sub": "${AWS::StackName}-slack"}
    assert function["EventInvokeConfig"]["MaximumRetryAttempts"] == 0
    env = function["Environment"]["Variables"]
    assert env["OPSBOT_SLACK_SECRET_ID"] == {"Ref": "SlackSecretName"}
    statements = function["Policies"][0]["Statement"]
    invoke = next(s for s in statements if s["Action"] == "lambda:InvokeFunction")
    assert all("${AWS::StackName}-slack" in r["Fn::Sub"] for r in invoke["Resource"])
    globals_ = template()["Globals"]["Function"]
    assert globals_["Runtime"] == "python3.12" and globals_["Architectures"] == ["arm64"]
    table = resources["StateTable"]["Properties"]
    assert (
        table["BillingMode"] == "PAY_PER_REQUEST"
        and table["TimeToLiveSpecification"]["AttributeName"] == "expiresAt"
    )
    assert "SlackEventsUrl" in template()["Outputs"]


SECRET_NAME = re.compile(
    r"(SECRET|TOKEN|PASSWORD|PASSPHRASE|PRIVATE_KEY|API_KEY|CREDENTIALS?)$", re.IGNORECASE
)
SECRET_VALUE = re.compile(
    r"\{\{resolve:(secretsmanager|ssm-secure):|\bxox[abposr]-|\bxapp-|\bv0=|AKIA[A-Z0-9]{16}"
)


def test_no_function_has_a_secret_in_its_environment() -> None:
    """lambda:GetFunctionConfiguration (in ReadOnlyAccess) returns a function's environment: a signing
    secret there would let anyone with read access forge requests. Secrets are read from Secrets Manager."""
    environments = [("Globals", template()["Globals"]["Function"].get("Environment", {}))]
    environments += [
        (name, resource["Properties"].get("Environment", {}))
        for name, resource in template()["Resources"].items()
        if resource["Type"] in ("AWS::Serverless::Function", "AWS::Lambda::Function")
    ]
    assert len(environments) >= 6
    found = [
        f"{function}: {variable}"
        for function, environment in environments
        for variable, value in environment.get("Variables", {}).items()
        if SECRET_NAME.search(variable) or SECRET_VALUE.search(json.dumps(value))
    ]
    assert found == []


def test_the_slack_secret_is_readable_by_the_functions_that_use_it_only() -> None:
    resources = template()["Resources"]
    readers = {}
    for name, resource in resources.items():
        for statement in json.loads(json.dumps(resource.get("Properties", {}).get("Policies", []))):
            for inner in statement.get("Statement", []) if isinstance(statement, dict) else []:
                if "${SlackSecretName}" in json.dumps(inner.get("Resource")):
                    readers[name] = inner
    assert set(readers) == {"SlackFunction", "SesFeedbackFunction", "AlarmsFunction"}
    for statement in readers.values():
        assert statement["Action"] == "secretsmanager:GetSecretValue"
        assert statement["Resource"]["Fn::Sub"].endswith(":secret:${SlackSecretName}-??????")
    for name in readers:
        assert resources[name]["Properties"]["Environment"]["Variables"]["OPSBOT_SLACK_SECRET_ID"] == {
            "Ref": "SlackSecretName"
        }


def test_lazy_work_has_a_bounded_queue_age_and_an_on_failure_destination() -> None:
    """Lazy work Lambda queues past Slack's five minutes still runs (bot/entry.py), up to an age at which
    the response_url (30 minutes) still works for the failure destination; past it, or if it dies, the
    destination writes the audit record and tells the user."""
    resources = template()["Resources"]
    config = resources["SlackFunction"]["Properties"]["EventInvokeConfig"]
    assert 300 < config["MaximumEventAgeInSeconds"] <= 900 and config["MaximumRetryAttempts"] == 0
    on_failure = config["DestinationConfig"]["OnFailure"]
    assert on_failure == {"Type": "Lambda", "Destination": {"Fn::GetAtt": ["LazyFailureFunction", "Arn"]}}
    destination = resources["LazyFailureFunction"]["Properties"]
    assert destination["Handler"] == "handlers.lazy_failure.handler"
    (policy,) = destination["Policies"]
    (statement,) = policy["Statement"]
    assert statement["Action"] == "dynamodb:PutItem" and statement["Resource"] == {
        "Fn::GetAtt": ["StateTable", "Arn"]
    }
    assert statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == ["audit#*"]


def test_no_wildcard_actions_in_iam() -> None:
    """Least privilege: no statement grants every action of a service (e.g. "dynamodb:*")."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "Action" in node and "Effect" in node:
                yield node
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    for statement in walk(template()["Resources"]):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert not [a for a in actions if isinstance(a, str) and (a == "*" or a.endswith(":*"))], statement


def test_manifest_validates_against_slacks_schema() -> None:
    jsonschema.validate(manifest(), schema())


def test_manifest_commands_match_listeners(harness: Any) -> None:
    from bot.listeners.framework import runtime_of

    in_manifest = {c["command"] for c in manifest()["features"]["slash_commands"]}
    listened = {c.slash for c in runtime_of(harness.app).commands.values()}
    assert in_manifest == listened


def test_manifest_with_url() -> None:
    filled = manifest_with_url(manifest(), "https://abc.execute-api.us-east-1.amazonaws.com/slack/events")
    urls = {c["url"] for c in filled["features"]["slash_commands"]} | {
        filled["settings"]["interactivity"]["request_url"],
        filled["settings"]["event_subscriptions"]["request_url"],
    }
    assert urls == {"https://abc.execute-api.us-east-1.amazonaws.com/slack/events"}
    jsonschema.validate(filled, schema())
    with pytest.raises(UsageError):
        manifest_with_url(manifest(), "http://insecure.example.com")


def test_opsbot_manifest_command_prints_it() -> None:
    url = "https://abc.execute-api.us-east-1.amazonaws.com/slack/events"
    result = subprocess.run(
        [sys.executable, "-m", "bot", "manifest", "--url", url], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["settings"]["interactivity"]["request_url"] == url
