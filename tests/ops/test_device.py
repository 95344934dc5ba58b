"""The doctor's device checks: the catalog table and the IoT rule routing registrations."""

from __future__ import annotations

from collections.abc import Callable

from bot.aws.clients import client
from bot.aws.devices import DEVICE_TABLE_DEFINITION
from bot.aws.state import create_table
from bot.core.ops.checks import device
from tests.ops.conftest import only, run_area, settings_with

FUNCTION = "opsbot-device-registration"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION}"


def rule(name: str, topic: str, function_arn: str = FUNCTION_ARN, *, enabled: bool = True) -> None:
    client("iot").create_topic_rule(
        ruleName=name,
        topicRulePayload={
            "sql": f"SELECT * FROM '{topic}'",
            "actions": [{"lambda": {"functionArn": function_arn}}],
            "ruleDisabled": False,
            "awsIotSqlVersion": "2016-03-23",
        },
    )
    if not enabled:
        client("iot").disable_topic_rule(ruleName=name)


def test_the_stacks_rule_and_table_are_ok(aws: None) -> None:
    create_table("iotCatalog", DEVICE_TABLE_DEFINITION)
    rule("unrelated", "telemetry/#", "arn:aws:lambda:us-east-1:123456789012:function:other")
    rule("opsbotRegistration_ABC", "registration")
    findings = run_area(device, settings_with(OPSBOT_DEVICE_FUNCTION=FUNCTION))
    assert [f.status for f in findings] == ["ok", "ok"]
    assert "serialNumber (HASH), clientId (RANGE)" in only(findings, "table").detail
    routed = only(findings, device.CHECK)
    assert routed.detail == f"rule opsbotRegistration_ABC sends registrations to {FUNCTION_ARN}"


def test_without_the_function_any_lambda_action_counts_and_is_named(aws: None) -> None:
    create_table("iotCatalog", DEVICE_TABLE_DEFINITION)
    rule("devices", "devices/register", "arn:aws:lambda:us-east-1:123456789012:function:whatever:live")
    finding = only(run_area(device, settings_with(OPSBOT_DEVICE_TOPIC="devices/register")), device.CHECK)
    assert finding.status == "ok" and "function:whatever:live" in finding.detail
    assert "OPSBOT_DEVICE_FUNCTION not set" in finding.detail


def test_a_disabled_rule_fails_with_the_command_that_enables_it(aws: None) -> None:
    create_table("iotCatalog", DEVICE_TABLE_DEFINITION)
    rule("opsbotRegistration_ABC", "registration", enabled=False)
    finding = only(run_area(device, settings_with(OPSBOT_DEVICE_FUNCTION=FUNCTION_ARN)), device.CHECK)
    assert finding.status == "fail" and "disabled" in finding.detail
    assert finding.fix == "aws iot enable-topic-rule --rule-name opsbotRegistration_ABC"


def test_no_rule_or_a_rule_to_another_function(aws: None) -> None:
    create_table("iotCatalog", DEVICE_TABLE_DEFINITION)
    settings = settings_with(OPSBOT_DEVICE_FUNCTION=FUNCTION)
    none = only(run_area(device, settings), device.CHECK)
    assert none.status == "fail" and "no IoT rule selects from registration" in none.detail
    assert "DeviceRegistrationTopic=registration" in none.fix and "SELECT * FROM 'registration'" in none.fix
    rule("stale", "registration", "arn:aws:lambda:us-east-1:123456789012:function:old-registration")
    other = only(run_area(device, settings), device.CHECK)
    assert other.status == "fail" and "stale invokes old-registration" in other.detail


def test_mqtt_filters() -> None:
    assert device.topic_matches("registration", "registration")
    assert device.topic_matches("devices/+/register", "devices/eu/register")
    assert device.topic_matches("devices/#", "devices/eu/register")
    assert not device.topic_matches("devices/+", "devices/eu/register")
    assert not device.topic_matches("registration/x", "registration")


def test_the_catalog_keyed_otherwise_or_missing(aws: None) -> None:
    create_table(
        "iotCatalog",
        {
            "AttributeDefinitions": [{"AttributeName": "serialNumber", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "serialNumber", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
        },
    )
    rule("r", "registration")
    wrong = only(run_area(device, settings_with()), "table")
    assert wrong.status == "fail" and "OPSBOT_DEVICE_TABLE" in wrong.fix
    missing = only(run_area(device, settings_with(OPSBOT_DEVICE_TABLE="gone")), "table")
    assert missing.status == "fail" and "DeviceTableExists=false" in missing.fix


def test_denied_reads(aws: None, deny: Callable[..., list[str]]) -> None:
    create_table("iotCatalog", DEVICE_TABLE_DEFINITION)
    deny("ListTopicRules", "DescribeTable", "GetItem")
    findings = run_area(device, settings_with())
    routed = only(findings, device.CHECK)
    assert routed.status == "warn" and "iot:ListTopicRules" in routed.detail
    assert only(findings, "table").status == "fail"


def test_without_describe_a_wrong_key_is_still_found(aws: None, deny: Callable[..., list[str]]) -> None:
    """DescribeTable denied: the capability's own GetItem tells a wrong key from a missing table."""
    create_table(
        "iotCatalog",
        {
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "BillingMode": "PAY_PER_REQUEST",
        },
    )
    deny("DescribeTable")
    wrong = only(run_area(device, settings_with()), "table")
    assert wrong.status == "fail" and "its key is not serialNumber (HASH), clientId (RANGE)" in wrong.detail
    missing = only(run_area(device, settings_with(OPSBOT_DEVICE_TABLE="gone")), "table")
    assert missing.status == "fail" and "no table gone" in missing.detail
