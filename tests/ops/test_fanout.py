"""The doctor's fan-out checks: targets tables, hooks (event source mappings), targets the function skips."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.aws.clients import client
from bot.core.ops.checks import fanout as fanout_checks
from bot.core.ops.commands import DoctorContext
from tests.fanout.conftest import Fanout, create_function, create_stream
from tests.ops.conftest import run_area, settings_with


def hook(stream: str, *, enabled: bool = True) -> str:
    uuid: str = client("lambda").create_event_source_mapping(
        EventSourceArn=stream, FunctionName="fanout", StartingPosition="LATEST", Enabled=enabled
    )["UUID"]
    return uuid


def test_a_hooked_source_with_valid_targets_is_ok(fanout: Fanout) -> None:
    create_function()
    stream = create_stream()
    fanout.register(
        source_arn=stream,
        target_id="t1",
        target_type="sqs",
        destination="https://sqs.us-east-1.amazonaws.com/123456789012/q",
        active=True,
    )
    hook(stream)
    findings = run_area(fanout_checks, fanout.settings)
    assert [(f.check, f.status) for f in findings] == [("hook", "ok"), ("table", "ok"), ("target", "ok")]
    assert findings[0].target == "Kinesis stream inputStream -> fanout"


def test_a_paused_hook_warns_with_the_command_that_enables_it(fanout: Fanout) -> None:
    create_function()
    uuid = hook(create_stream(), enabled=False)
    [paused] = [f for f in run_area(fanout_checks, fanout.settings) if f.check == "hook"]
    assert paused.status == "warn" and "Disabled" in paused.detail
    assert paused.fix == f"aws lambda update-event-source-mapping --uuid {uuid} --enabled"


@pytest.mark.parametrize(
    ("mapping", "status", "words"),
    [
        ({"State": "Enabled", "LastProcessingResult": "OK"}, "ok", "last result: OK"),
        ({"State": "Enabled", "LastProcessingResult": "No records processed"}, "ok", "No records processed"),
        ({"State": "Creating"}, "ok", "Creating"),
        ({"State": "Updating", "LastProcessingResult": "OK"}, "ok", "Updating"),
        (
            {"State": "Disabling", "StateTransitionReason": "USER_INITIATED"},
            "warn",
            "Disabling (USER_INITIATED)",
        ),
        (
            {"State": "Enabled", "LastProcessingResult": "PROBLEM: Function call failed"},
            "fail",
            "Function call failed",
        ),
    ],
)
def test_hook_verdicts(mapping: dict[str, str], status: str, words: str) -> None:
    found = fanout_checks.hook_finding(
        "fanout",
        {"UUID": "u-1", "EventSourceArn": "arn:aws:kinesis:us-east-1:123456789012:stream/s", **mapping},
    )
    assert found.status == status and words in found.detail


def test_targets_the_function_skips_are_one_failure_each(fanout: Fanout) -> None:
    create_function()
    stream = create_stream()
    hook(stream)
    fanout.register(
        source_arn=stream, target_id="bad-queue", target_type="sqs", destination="not-a-url", active=True
    )
    fanout.register(
        source_arn=stream, target_id="good", target_type="kinesis", destination="out", active=True
    )
    targets = [f for f in run_area(fanout_checks, fanout.settings) if f.check == "target"]
    assert [(f.target, f.status) for f in targets] == [("Kinesis stream inputStream / bad-queue", "fail")]
    assert "/fanout check" in targets[0].fix


def test_many_target_errors_are_capped(fanout: Fanout) -> None:
    items = [
        {
            "sourceArn": "arn:aws:kinesis:us-east-1:123456789012:stream/s",
            "id": f"t{n:02}",
            "type": "nope",
            "destination": "x",
            "active": True,
            "collapse": "none",
        }
        for n in range(13)
    ]
    found = fanout_checks.target_findings("fanoutTargets", items)
    assert len(found) == fanout_checks.TARGET_ERRORS_SHOWN + 1
    assert "3 more target errors" in found[-1].detail


def test_no_table_no_function_no_hooks(aws: None) -> None:
    settings = settings_with(OPSBOT_FANOUT_TABLE="missingTargets")
    findings = {f.check: f for f in run_area(fanout_checks, settings)}
    assert findings["table"].status == "fail" and "no table missingTargets" in findings["table"].detail
    # moto, like Lambda, lists no mappings for a function it does not have
    assert findings["hook"].status == "warn" and "no event source mapping" in findings["hook"].detail


def test_a_bad_table_setting_is_a_failure_not_a_crash() -> None:
    [probe] = fanout_checks.probes(DoctorContext(settings_with(OPSBOT_FANOUT_TABLE="=fn"), "us-east-1"))
    [finding] = probe.run()
    assert finding.status == "fail" and finding.target == "OPSBOT_FANOUT_TABLE"


def test_denied_hook_read_is_a_warning(fanout: Fanout, deny: Callable[..., list[str]]) -> None:
    deny("ListEventSourceMappings")
    [hooks] = [f for f in run_area(fanout_checks, fanout.settings) if f.check == "hook"]
    assert hooks.status == "warn" and "lambda:ListEventSourceMappings" in hooks.detail
