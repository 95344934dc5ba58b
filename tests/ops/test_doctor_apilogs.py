"""The /apilogs and AWS checks of the doctor against moto: every verdict, and reads that are refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.aws.clients import client
from bot.config import Settings
from bot.core.ops.commands import DoctorOptions, doctor
from bot.core.ops.doctor import DoctorReport, Finding
from bot.local.seeds import apilogs as seed
from tests.apilogs.conftest import fast_limiter  # noqa: F401  (autouse: Logs' quotas, without the waits)
from tests.ops.denial import denied


@pytest.fixture
def api(state_table: str) -> str:
    api_id, _ = seed.create_api()
    return api_id


def run(api_id: str = "", *, all_stages: bool = False, expect_account: str = "", **env: str) -> DoctorReport:
    settings = Settings.from_env({"AWS_REGION": "us-east-1", "OPSBOT_DEFAULT_API": api_id, **env})
    options = DoctorOptions(
        areas=("aws", "apilogs"), all_stages=all_stages, expect_account=expect_account, timeout=30
    )
    return doctor(settings, options, slack=None, signing_secret_set=True)


def find(report: DoctorReport, check: str, target_part: str = "") -> Finding:
    matches = [f for f in report.findings if f.check == check and target_part in f.target]
    assert matches, f"no {check} finding for {target_part!r} in {report.findings}"
    return matches[0]


def set_role(arn: str = "arn:aws:iam::123456789012:role/apigw-logs") -> None:
    client("apigateway").update_account(
        patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": arn}]
    )


def patch_stage(api_id: str, stage: str, *ops: dict[str, Any]) -> None:
    client("apigateway").update_stage(restApiId=api_id, stageName=stage, patchOperations=list(ops))


def test_a_wired_stage_is_ok_everywhere(api: str) -> None:
    set_role()
    report = run(api)
    assert report.summary()["fail"] == 0, report.findings
    assert find(report, "CloudWatch role").status == "ok"
    assert find(report, "execution logging", "prod").status == "ok"
    assert find(report, "access log", "prod").status == "ok"
    assert find(report, "identity").status == "ok"
    assert find(report, "table", "state table").status == "ok"
    functions = find(report, "function log groups")
    assert functions.status in {"ok", "warn"}  # moto creates no group before a function logs


def test_no_cloudwatch_role_fails_with_the_update_account_command(api: str) -> None:
    report = run(api)
    finding = find(report, "CloudWatch role")
    assert finding.status == "fail"
    assert "aws apigateway update-account" in finding.fix and "cloudwatchRoleArn" in finding.fix
    assert report.failed


def test_a_stage_at_error_warns_and_says_how_to_log_at_info(api: str) -> None:
    set_role()
    patch_stage(api, "prod", {"op": "replace", "path": "/*/*/logging/loglevel", "value": "ERROR"})
    finding = find(run(api), "execution logging", "prod")
    assert finding.status == "warn"
    assert "ERROR" in finding.detail
    assert f"--rest-api-id {api} --stage-name prod" in finding.fix
    assert "'op=replace,path=/*/*/logging/loglevel,value=INFO'" in finding.fix


def test_logging_off_fails(api: str) -> None:
    set_role()
    patch_stage(api, "prod", {"op": "replace", "path": "/*/*/logging/loglevel", "value": "OFF"})
    assert find(run(api), "execution logging", "prod").status == "fail"


def test_a_method_that_overrides_info_is_named(api: str) -> None:
    set_role()
    patch_stage(api, "prod", {"op": "replace", "path": "/~1orders/GET/logging/loglevel", "value": "ERROR"})
    finding = find(run(api), "execution logging", "prod")
    assert finding.status == "warn"
    assert "~1orders/GET" in finding.detail


def test_an_access_log_without_the_request_id_fails_and_missing_fields_warn(api: str) -> None:
    set_role()
    patch_stage(
        api,
        "prod",
        {"op": "replace", "path": "/accessLogSettings/format", "value": '{"s":"$context.status"}'},
    )
    finding = find(run(api), "access log", "prod")
    assert finding.status == "fail" and "$context.requestId" in finding.detail
    patch_stage(
        api,
        "prod",
        {"op": "replace", "path": "/accessLogSettings/format", "value": '{"id":"$context.requestId"}'},
    )
    finding = find(run(api), "access log", "prod")
    assert finding.status == "warn"
    assert (
        "$context.integration.requestId" in finding.detail
        and "--patch-operations" in finding.fix
        and "$context.integration.requestId" in finding.fix
    )


def test_every_stage_of_the_default_api_is_checked(api: str) -> None:
    set_role()
    client("apigateway").create_deployment(restApiId=api, stageName="staging")
    report = run(api)
    assert find(report, "access log", "staging").status == "warn"  # no access log there
    assert find(report, "execution logging", "staging").status == "fail"  # never turned on
    assert find(report, "execution logging", "prod").status == "ok"


def test_an_http_api_without_an_access_log_fails(state_table: str) -> None:
    set_role()
    gw2 = client("apigatewayv2")
    api_id = gw2.create_api(Name="http-only", ProtocolType="HTTP")["ApiId"]
    gw2.create_stage(ApiId=api_id, StageName="$default")
    report = run(all_stages=True)
    finding = find(report, "access log", api_id)
    assert finding.status == "fail"
    assert "aws apigatewayv2 update-stage" in finding.fix


def test_no_default_api_is_a_skip_that_names_the_parameters(state_table: str) -> None:
    finding = find(run(), "stage")
    assert finding.status == "skip"
    assert "ApilogsDefaultApi" in finding.fix and "--all" in finding.fix


def test_a_default_api_that_does_not_exist_fails(state_table: str) -> None:
    finding = find(run("no-such-api"), "stage")
    assert finding.status == "fail" and "no-such-api" in finding.detail


def test_a_refused_read_is_a_warning_naming_the_permission_and_the_rest_stands(api: str) -> None:
    set_role()
    with denied("GetAccount") as refused:
        report = run(api)
    assert refused == ["GetAccount"]
    finding = find(report, "CloudWatch role")
    assert finding.status == "warn"
    assert "could not be checked" in finding.detail and "GetAccount" in finding.detail
    assert find(report, "execution logging", "prod").status == "ok"


def test_logs_insights_denied_is_a_failure_with_the_action_to_allow(api: str) -> None:
    set_role()
    client("logs").create_log_group(logGroupName=f"API-Gateway-Execution-Logs_{api}/prod")
    with denied("StartQuery"):
        report = run(api)
    finding = find(report, "Logs Insights permission")
    assert finding.status == "fail"
    assert "logs:StartQuery" in finding.fix


def test_the_state_table_missing_or_foreign_fails(aws: None) -> None:
    report = run()
    assert find(report, "table", "state table").status == "fail"
    client("dynamodb").create_table(
        TableName="opsbot-state",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    finding = find(run(), "table", "state table")
    assert finding.status == "fail" and "id (HASH)" in finding.detail


def test_credentials_of_another_account_fail_the_account_check(state_table: str) -> None:
    report = run(expect_account="210987654321")
    finding = find(report, "account")
    assert finding.status == "fail" and "123456789012" in finding.detail
    assert find(report, "identity").status == "ok"


def test_bad_region_or_account_is_refused_before_anything_is_read() -> None:
    from bot.core.ops.commands import validate_options
    from bot.errors import UsageError

    with pytest.raises(UsageError, match="region"):
        validate_options(DoctorOptions(region="mars-1"))
    with pytest.raises(UsageError, match="12 digits"):
        validate_options(DoctorOptions(expect_account="12345"))


def test_region_reaches_every_stage_read_and_opsbots_own_resources_stay_home(state_table: str) -> None:
    """`--region eu-west-1`: the API there is found by the stage checks (their own parallel reads too),
    while the state table, which lives where opsbot runs, is still found there."""
    from bot.aws.clients import region_override

    with region_override("eu-west-1"):
        api_id, _ = seed.create_api()
        set_role()
    settings = Settings.from_env({"AWS_REGION": "us-east-1", "OPSBOT_DEFAULT_API": api_id})
    options = DoctorOptions(region="eu-west-1", areas=("aws", "apilogs"), all_stages=True, timeout=30)
    report = doctor(settings, options, slack=None, signing_secret_set=True)
    assert find(report, "execution logging", "prod").status == "ok"
    assert find(report, "CloudWatch role").status == "ok"
    assert find(report, "table", "state table").status == "ok"
    assert not [f for f in report.findings if "could not be checked" in f.detail]
    assert report.scope == "eu-west-1 (opsbot's own resources: us-east-1)"


def test_a_probe_that_cannot_reach_logs_is_unknown_not_allowed(api: str) -> None:
    """Throttling (or no route to CloudWatch Logs) says nothing about the permission: a warning."""
    from unittest import mock

    from botocore.client import BaseClient
    from botocore.exceptions import ClientError

    set_role()
    client("logs").create_log_group(logGroupName=f"API-Gateway-Execution-Logs_{api}/prod")
    original = BaseClient._make_api_call

    def throttled(self: Any, operation: str, params: Any) -> Any:
        if operation == "StartQuery":
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, operation
            )
        return original(self, operation, params)

    with mock.patch.object(BaseClient, "_make_api_call", throttled):
        finding = find(run(api), "Logs Insights permission")
    assert finding.status == "warn" and "could not be checked" in finding.detail


def _command_of(fix: str) -> list[str]:
    """The shell words of the first command in a fix (between its backticks)."""
    import shlex

    command = fix.split("`")[1]
    return shlex.split(command.split(" && ")[-1])


def test_the_access_log_fix_is_a_command_that_works(api: str) -> None:
    """Pasting the fix of a stage without an access log gives it one, in the format the checks want."""
    set_role()
    client("apigateway").create_deployment(restApiId=api, stageName="staging")
    before = find(run(api), "access log", "staging")
    assert before.status == "warn"
    assert "aws logs create-log-group --region us-east-1 --log-group-name" in before.fix
    words = _command_of(before.fix)
    assert words[:5] == ["aws", "apigateway", "update-stage", "--region", "us-east-1"]
    operations = json.loads(words[words.index("--patch-operations") + 1])
    destination = operations[0]["value"]
    assert destination.startswith("arn:aws:logs:us-east-1:123456789012:log-group:/aws/apigateway/")
    patch_stage(api, "staging", *operations)
    assert find(run(api), "access log", "staging").status == "ok"


def test_the_cloudwatch_role_fix_names_the_account(api: str) -> None:
    fix = find(run(api), "CloudWatch role").fix
    assert "arn:aws:iam::123456789012:role/APIGatewayPushToCloudWatchLogs" in fix
    assert "<account>" not in fix
