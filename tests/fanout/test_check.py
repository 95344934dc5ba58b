"""Every check rule, with the reason it gives; then the whole check against moto."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.aws.clients import client
from bot.cli import main
from bot.core.fanout.commands import (
    ERROR,
    WARNING,
    Hook,
    SourceGroup,
    Target,
    check,
    check_group,
    check_target,
    list_mappings,
    parse_source,
)
from tests.fanout.conftest import DDB_STREAM_ARN, KINESIS_ARN, Fanout, create_function, create_stream

VALID: dict[str, dict[str, Any]] = {
    "kinesis": {"destination": "outputStream"},
    "firehose": {"destination": "archive-stream"},
    "lambda": {"destination": "my-function"},
    "sqs": {"destination": "https://sqs.us-east-1.amazonaws.com/123456789012/my-queue"},
    "sns": {"destination": "arn:aws:sns:us-east-1:123456789012:my-topic"},
    "es": {"destination": "search-logs-abc123def.us-east-1.es.amazonaws.com#doc/index"},
    "iot": {"destination": "a1b2c3d4e5f6g7.iot.us-east-1.amazonaws.com#devices/updates"},
    "memcached": {"destination": "cache.abc123.cfg.use1.cache.amazonaws.com:11211"},
    "redis": {"destination": "redis.abc123.ng.0001.use1.cache.amazonaws.com:6379"},
}


def target(source: str = KINESIS_ARN, **attributes: Any) -> Target:
    item: dict[str, Any] = {
        "sourceArn": source,
        "id": "t1",
        "type": "kinesis",
        "destination": "outputStream",
        "active": True,
        "collapse": "none",
    }
    for name, value in attributes.items():
        if value is None:
            item.pop(name, None)
        else:
            item[name] = value
    return Target.from_item(item, table="fanoutTargets")


def rules(t: Target) -> list[tuple[str, str]]:
    return [(f.severity, f.rule) for f in check_target(t)]


def reason(t: Target, rule: str) -> str:
    (finding,) = [f for f in check_target(t) if f.rule == rule]
    return finding.reason


@pytest.mark.parametrize("kind", sorted(VALID))
def test_a_valid_target_of_every_type_passes(kind: str) -> None:
    assert rules(target(type=kind, **VALID[kind])) == []
    assert rules(target(source=DDB_STREAM_ARN, type=kind, **VALID[kind])) == []


@pytest.mark.parametrize(
    ("kind", "destination", "expected"),
    [
        ("kinesis", "arn:aws:kinesis:us-east-1:123456789012:stream/out", "is an ARN"),
        ("kinesis", "has.dot", "is not the stream name"),
        ("firehose", "x" * 65, "is not the delivery stream name"),
        ("lambda", "arn:aws:lambda:us-east-1:123456789012:function:f", "the CLI stores only the name part"),
        ("lambda", "f:prod", "no qualifier"),
        ("sqs", "my-queue", "is not the queue URL"),
        ("sqs", "https://sqs.us-east-1.amazonaws.com/123456789012/q.fifo", "no FIFO queues"),
        ("sns", "my-topic", "is not the topic ARN"),
        ("es", "search-logs-abc.us-east-1.es.amazonaws.com", "# and doctype/index"),
        ("iot", "a1b2c3.iot.us-east-1.amazonaws.com", "# and the MQTT topic"),
        ("memcached", "cache.abc123.cfg.use1.cache.amazonaws.com", "configuration endpoint and port"),
        ("redis", "redis.abc123.ng.0001.use1.cache.amazonaws.com", "primary endpoint and port"),
    ],
)
def test_destination_format_per_type(kind: str, destination: str, expected: str) -> None:
    t = target(type=kind, destination=destination)
    assert rules(t) == [(ERROR, "destination")]
    assert expected in reason(t, "destination")


def test_missing_destination() -> None:
    assert "destination is nothing" in reason(target(destination=None), "destination")


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        ("arn:aws:dynamodb:us-east-1:123456789012:table/customers", "is a DynamoDB table ARN"),
        ("arn:aws-cn:kinesis:cn-north-1:123456789012:stream/s", "outside the aws partition"),
        (
            "arn:aws:kinesis:us-east-1:123456789012:stream/a.b",
            "names a stream the function's pattern rejects",
        ),
        ("arn:aws:kinesis:us-gov-west-1:123456789012:stream/s", "has a region (us-gov-west-1)"),
        ("arn:aws:kinesis:us-east-1:1234:stream/s", "no 12-digit account id"),
        ("inputStream", "neither a Kinesis stream ARN nor a DynamoDB stream ARN"),
    ],
)
def test_source_arn_format(arn: str, expected: str) -> None:
    t = target(source=arn)
    assert (ERROR, "source-arn") in rules(t)
    assert expected in reason(t, "source-arn")


@pytest.mark.parametrize(
    ("value", "shown"), [(None, "nothing"), ("Kinesis", "the string 'Kinesis'"), (3, "the number 3")]
)
def test_type_must_be_known(value: Any, shown: str) -> None:
    t = target(type=value)
    assert rules(t) == [(ERROR, "type")]
    assert f"type is {shown}" in reason(t, "type") and "not one of kinesis, firehose" in reason(t, "type")


@pytest.mark.parametrize(
    ("stored", "shown"), [("true", "the string 'true'"), (None, "nothing"), (1, "the number 1")]
)
def test_active_must_be_a_boolean(stored: Any, shown: str) -> None:
    t = target(active=stored)
    assert rules(t) == [(ERROR, "active")]
    assert shown in reason(t, "active") and not t.active


def test_missing_collapse_makes_the_function_skip_the_target() -> None:
    t = target(collapse=None)
    assert rules(t) == [(ERROR, "collapse-missing")]
    assert "the CLI writes 'none'" in reason(t, "collapse-missing")


@pytest.mark.parametrize(
    ("value", "severity"),
    [
        ("xml", ERROR),
        ("json", ERROR),
        (True, ERROR),
        ("concat-gzip", WARNING),
        ("JSONL", WARNING),
        ("nonenone", WARNING),
    ],
)
def test_unknown_collapse_values(value: Any, severity: str) -> None:
    t = target(type="sqs", collapse=value, **VALID["sqs"])
    assert rules(t) == [(severity, "collapse")]
    expected = "loose check lets it through" if severity == WARNING else "the target is ignored"
    assert expected in reason(t, "collapse")


@pytest.mark.parametrize("kind", sorted(VALID))
def test_collapse_none_passes_for_every_type(kind: str) -> None:
    assert rules(target(type=kind, collapse="none", **VALID[kind])) == []


@pytest.mark.parametrize("value", sorted(["JSON", "concat", "concat-b64"]))
@pytest.mark.parametrize("kind", ["sqs", "sns", "iot"])
def test_collapse_is_reset_by_the_loader_for_sqs_sns_and_iot(kind: str, value: str) -> None:
    # lib/configuration.js: `case "sqs": case "sns": case "iot": { }` has no break and falls through to
    # `default: { target.collapse = null; }`; fanout.js then sends one record per message.
    t = target(type=kind, collapse=value, **VALID[kind])
    assert rules(t) == [(WARNING, "collapse-unused")]
    assert "each record is sent as its own message" in reason(t, "collapse-unused")


def test_collapse_has_no_effect_on_batch_api_types() -> None:
    t = target(collapse="JSON")
    assert rules(t) == [(WARNING, "collapse-unused")]
    assert "no effect on kinesis targets" in reason(t, "collapse-unused")


def test_role_without_external_id() -> None:
    t = target(role="arn:aws:iam::210987654321:role/partner")
    assert rules(t) == [(WARNING, "role-without-external-id")]
    assert "confused deputy" in reason(t, "role-without-external-id")
    assert rules(target(role="arn:aws:iam::210987654321:role/partner", externalId="shared-secret-7")) == []


def test_role_format() -> None:
    t = target(role="partner", externalId="abc123")
    assert rules(t) == [(ERROR, "role")]
    assert "is not an IAM role ARN" in reason(t, "role")


def test_external_id_without_role_and_malformed() -> None:
    assert rules(target(externalId="abc123")) == [(WARNING, "external-id-without-role")]
    # The loader rejects a non-string externalId whether or not there is a role.
    assert rules(target(externalId=12345)) == [(ERROR, "external-id")]
    bad = target(role="arn:aws:iam::210987654321:role/partner", externalId="x")
    assert rules(bad) == [(ERROR, "external-id")]
    assert "AssumeRole" in reason(bad, "external-id")


def test_region_format() -> None:
    assert rules(target(region="us-west-2")) == []
    t = target(region="Oregon")
    assert rules(t) == [(ERROR, "region")]
    assert "'Oregon'" in reason(t, "region")


def test_caches_ignore_role_and_region() -> None:
    t = target(type="redis", region="us-west-2", **VALID["redis"])
    assert rules(t) == [(WARNING, "cache-cross-account")]
    assert "ignores their role and region" in reason(t, "cache-cross-account")
    # The loader drops them before checking them: a malformed one does not make it skip the target.
    dropped = target(type="memcached", role="partner", region="Oregon", **VALID["memcached"])
    assert rules(dropped) == [(WARNING, "cache-cross-account")]


def test_flag_types() -> None:
    assert rules(target(parallel="false")) == [(ERROR, "parallel")]
    t = target(deaggregate="false")
    assert rules(t) == [(WARNING, "flag-type")]
    assert "'false' included, as true" in reason(t, "flag-type")
    assert rules(target(appendNewlines=True, parallel=False)) == []


def test_flags_for_the_other_kind_of_source() -> None:
    assert rules(target(convertDDB=True)) == [(WARNING, "flag-source")]
    assert rules(target(source=DDB_STREAM_ARN, deaggregate=True)) == [(WARNING, "flag-source")]
    assert rules(target(source=DDB_STREAM_ARN, convertDDB=True)) == []


def hook(state: str = "Enabled", result: str = "OK") -> Hook:
    return Hook.from_mapping(
        {
            "UUID": "u",
            "State": state,
            "BatchSize": 100,
            "StartingPosition": "LATEST",
            "LastProcessingResult": result,
        }
    )


def group(targets: tuple[Target, ...], hooks: tuple[Hook, ...], known: bool = True) -> SourceGroup:
    return SourceGroup("fanoutTargets", "fanout", parse_source(KINESIS_ARN), targets, hooks, known)


def source_rules(g: SourceGroup) -> list[str]:
    return [f.rule for f in check_group(g)]


def test_hook_rules() -> None:
    active, inactive = target(), target(active=False)
    assert source_rules(group((active,), ())) == ["not-hooked"]
    assert source_rules(group((inactive,), ())) == []
    assert source_rules(group((active,), (hook(),))) == []
    assert source_rules(group((active,), (hook("Disabled"),))) == ["hook-disabled"]
    assert source_rules(group((active,), (hook(result="PROBLEM: Function call failed"),))) == ["hook-problem"]
    assert source_rules(group((active,), (hook(), hook()))) == ["duplicate-hooks"]
    assert source_rules(group((), (hook(),))) == ["hooked-without-targets"]
    assert source_rules(group((active,), (), known=False)) == []
    (finding,) = check_group(group((active,), (hook("Disabled"),)))
    assert "Disabled (paused)" in finding.reason and finding.target_id is None


attribute_values = (
    st.none() | st.booleans() | st.integers() | st.text(max_size=80) | st.lists(st.text(max_size=5))
)


@given(
    st.text(max_size=120),
    st.dictionaries(
        st.sampled_from(
            [
                "type",
                "destination",
                "active",
                "collapse",
                "role",
                "externalId",
                "region",
                "parallel",
                "convertDDB",
            ]
        ),
        attribute_values,
    ),
)
def test_check_never_raises(source: str, attributes: dict[str, Any]) -> None:
    item = {"sourceArn": source, "id": "t", **attributes}
    for finding in check_target(Target.from_item(item, table="t")):
        assert finding.severity in {ERROR, WARNING} and finding.reason.endswith((".", ")"))


def test_check_against_the_table_and_the_hooks(fanout: Fanout, capsys: pytest.CaptureFixture[str]) -> None:
    create_stream()
    create_function()
    client("lambda").create_event_source_mapping(
        EventSourceArn=KINESIS_ARN, FunctionName="fanout", StartingPosition="LATEST"
    )
    fanout.register(target_id="good", target_type="kinesis", destination="out", active=True)
    fanout.register(
        target_id="bad", target_type="lambda", destination="arn:aws:lambda:us-east-1:1:function:f"
    )
    fanout.register(
        source_arn=DDB_STREAM_ARN, target_id="lonely", target_type="sqs", destination="x", active=True
    )

    report = check(fanout.settings)

    found = sorted((f.rule, f.target_id) for f in report.findings)
    assert found == [("destination", "bad"), ("destination", "lonely"), ("not-hooked", None)]
    assert report.errors == 2 and report.warnings == 1 and report.targets_checked == 3
    assert report.findings[0].severity == ERROR  # errors first

    assert main(["fanout", "check", "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["errors"] == 2 and {f["rule"] for f in document["findings"]} == {
        "destination",
        "not-hooked",
    }
    assert main(["fanout", "check"]) == 1
    assert "ERROR" in capsys.readouterr().out


def test_check_passes_on_a_clean_table(fanout: Fanout, capsys: pytest.CaptureFixture[str]) -> None:
    fanout.register(target_id="good", target_type="kinesis", destination="out")
    assert main(["fanout", "check"]) == 0
    assert "1 target in 1 source: 0 errors, 0 warnings" in capsys.readouterr().out


def test_plain_table_names_are_checked_against_their_own_function(aws: None) -> None:
    """`teamBTargets` is the CLI's table of function `teamB` (TABLE_NAME=${FUNCTION_NAME}Targets)."""
    from bot.aws.fanout import FANOUT_TABLE_DEFINITION, register_like_cli
    from bot.aws.state import create_table
    from bot.config import Settings

    team_b_stream = create_stream("teamBStream")
    for table, function, source in (
        ("fanoutTargets", "fanout", create_stream()),
        ("teamBTargets", "teamB", team_b_stream),
    ):
        create_table(table, FANOUT_TABLE_DEFINITION)
        register_like_cli(
            table, source_arn=source, target_id="t", target_type="kinesis", destination="out", active=True
        )
        create_function(function)
        client("lambda").create_event_source_mapping(
            EventSourceArn=source, FunctionName=function, StartingPosition="LATEST"
        )
    settings = Settings.from_env({"OPSBOT_FANOUT_TABLE": "fanoutTargets,teamBTargets"})

    report = check(settings)

    assert report.findings == () and report.sources_checked == 2 and report.targets_checked == 2
    assert [(g.table, g.function, g.hook is not None) for g in list_mappings(settings).groups] == [
        ("fanoutTargets", "fanout", True),
        ("teamBTargets", "teamB", True),
    ]
