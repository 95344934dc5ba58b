"""Reading the targets table as the fanout CLI writes it, every page of it, with each source's hook."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from botocore.stub import Stubber

from bot.aws.clients import client
from bot.aws.dynamo import to_item
from bot.aws.fanout import (
    FANOUT_TABLE_DEFINITION,
    first_page_as_the_function_reads_it,
    list_hooks,
    register_like_cli,
    scan_targets,
)
from bot.aws.state import create_table
from bot.cli import main
from bot.config import Settings
from bot.core.fanout.commands import Hook, ListFilters, check, list_mappings, parse_source, table_specs
from bot.errors import UsageError
from tests.fanout.conftest import (
    DDB_STREAM_ARN,
    KINESIS_ARN,
    Fanout,
    create_function,
    create_stream,
    raw_items,
)


def test_items_are_written_exactly_as_the_cli_writes_them(fanout: Fanout) -> None:
    fanout.register(target_id="target1", target_type="kinesis", destination="outputStream")
    fanout.register(
        target_id="partner",
        target_type="sns",
        destination="arn:aws:sns:us-east-1:210987654321:topic",
        active=True,
        role="arn:aws:iam::210987654321:role/partner",
        external_id="shared-7",
        region="us-west-2",
        parallel=False,
    )
    fanout.register(
        target_id="loose-external-id",
        target_type="sqs",
        destination="https://sqs.us-east-1.amazonaws.com/123456789012/q",
        external_id="ignored-without-role",
    )

    items = {item["id"]["S"]: item for item in raw_items()}
    # `./fanout register kinesis --id target1 --destination outputStream`: active false, collapse none,
    # and nothing else.
    assert items["target1"] == {
        "sourceArn": {"S": KINESIS_ARN},
        "id": {"S": "target1"},
        "type": {"S": "kinesis"},
        "destination": {"S": "outputStream"},
        "active": {"BOOL": False},
        "collapse": {"S": "none"},
    }
    assert items["partner"]["role"] == {"S": "arn:aws:iam::210987654321:role/partner"}
    assert items["partner"]["externalId"] == {"S": "shared-7"}
    assert items["partner"]["region"] == {"S": "us-west-2"}
    assert items["partner"]["parallel"] == {"BOOL": False}
    assert {"convertDDB", "deaggregate", "appendNewlines"}.isdisjoint(items["partner"])
    assert "externalId" not in items["loose-external-id"]  # the CLI writes it only with a role


def test_list_groups_targets_by_source_with_the_cli_defaults(fanout: Fanout) -> None:
    fanout.register(target_id="b", target_type="kinesis", destination="outputStream", active=True)
    fanout.register(target_id="a", target_type="firehose", destination="archive")
    fanout.register(
        source_arn=DDB_STREAM_ARN, target_id="crm", target_type="lambda", destination="crm", convert_ddb=True
    )

    listing = list_mappings(fanout.settings)

    document = listing.to_json()
    assert [s["sourceArn"] for s in document["sources"]] == sorted([KINESIS_ARN, DDB_STREAM_ARN])
    kinesis = next(s for s in document["sources"] if s["sourceArn"] == KINESIS_ARN)
    assert (
        kinesis["kind"] == "kinesis"
        and kinesis["name"] == "inputStream"
        and kinesis["table"] == "fanoutTargets"
    )
    assert [t["id"] for t in kinesis["targets"]] == ["a", "b"]
    assert kinesis["targets"][0] == {
        "id": "a",
        "type": "firehose",
        "destination": "archive",
        "active": False,
        "collapse": "none",
        "hasExternalId": False,
        "options": {},
    }
    crm = next(s for s in document["sources"] if s["kind"] == "dynamodb")
    assert crm["name"] == "customers" and crm["targets"][0]["options"] == {"convertDDB": True}


def test_list_filters_by_source_name_type_and_inactive(fanout: Fanout) -> None:
    fanout.register(target_id="on", target_type="kinesis", destination="out", active=True)
    fanout.register(target_id="off", target_type="kinesis", destination="out2")
    fanout.register(
        target_id="q", target_type="sqs", destination="https://queue.amazonaws.com/123456789012/q"
    )
    fanout.register(source_arn=DDB_STREAM_ARN, target_id="crm", target_type="sqs", destination="x")

    by_name = list_mappings(fanout.settings, ListFilters(source="inputStream"))
    assert [g.source.arn for g in by_name.groups] == [KINESIS_ARN]
    by_table = list_mappings(fanout.settings, ListFilters(source="customers"))
    assert [g.source.arn for g in by_table.groups] == [DDB_STREAM_ARN]
    sqs = list_mappings(fanout.settings, ListFilters(type="sqs"))
    assert sorted(t.id for g in sqs.groups for t in g.targets) == ["crm", "q"]
    inactive = list_mappings(fanout.settings, ListFilters(source=KINESIS_ARN, inactive=True))
    assert sorted(t.id for g in inactive.groups for t in g.targets) == ["off", "q"]
    with pytest.raises(UsageError, match="Unknown target type `queue`"):
        list_mappings(fanout.settings, ListFilters(type="queue"))
    with pytest.raises(UsageError, match="No source `nope`"):
        list_mappings(fanout.settings, ListFilters(source="nope"))


def test_every_page_of_the_table_is_read(fanout: Fanout) -> None:
    # About 1.4 MB of items: DynamoDB (and moto) return at most 1 MB per page.
    padding = "x" * 3500
    ddb = client("dynamodb")
    for n in range(400):
        item = {
            "sourceArn": KINESIS_ARN,
            "id": f"t{n:04d}",
            "type": "kinesis",
            "destination": f"out{n}",
            "active": True,
            "collapse": "none",
            "notes": padding,
        }
        ddb.put_item(TableName="fanoutTargets", Item=to_item(item))

    read = scan_targets("fanoutTargets")
    assert read.pages >= 2 and len(read.items) == 400
    listing = list_mappings(fanout.settings)
    assert listing.target_count == 400

    # What the fan-out function reads: one query page (it never follows LastEvaluatedKey)...
    loaded, more = first_page_as_the_function_reads_it("fanoutTargets", KINESIS_ARN)
    assert more and 0 < len(loaded) < 400
    # ...and check reports the active targets it never loads.
    report = check(fanout.settings)
    (finding,) = [f for f in report.findings if f.rule == "beyond-first-page"]
    assert finding.severity == "error" and finding.reason.startswith(f"{400 - len(loaded)} active targets")
    assert "and " in finding.reason and "more." in finding.reason


def test_several_tables_each_with_its_function(aws: None) -> None:
    for table in ("fanoutTargets", "teamBTargets"):
        create_table(table, FANOUT_TABLE_DEFINITION)
    register_like_cli(
        "fanoutTargets",
        source_arn=KINESIS_ARN,
        target_id="a",
        target_type="kinesis",
        destination="o",
        active=True,
    )
    register_like_cli(
        "teamBTargets",
        source_arn=KINESIS_ARN,
        target_id="b",
        target_type="kinesis",
        destination="o",
        active=True,
    )
    create_stream()
    create_function("fanout")
    create_function("teamB")
    client("lambda").create_event_source_mapping(
        EventSourceArn=KINESIS_ARN, FunctionName="teamB", BatchSize=10, StartingPosition="TRIM_HORIZON"
    )
    settings = Settings.from_env({"OPSBOT_FANOUT_TABLE": "fanoutTargets, teamBTargets=teamB"})
    assert [(s.table, s.function) for s in table_specs(settings)] == [
        ("fanoutTargets", "fanout"),
        ("teamBTargets", "teamB"),
    ]

    groups = list_mappings(settings).groups

    assert [(g.table, g.function, [t.id for t in g.targets]) for g in groups] == [
        ("fanoutTargets", "fanout", ["a"]),
        ("teamBTargets", "teamB", ["b"]),
    ]
    assert groups[0].hook is None
    assert groups[1].hook is not None and groups[1].hook.batch_size == 10


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, [("fanoutTargets", "fanout")]),
        ({"OPSBOT_FANOUT_FUNCTION": "teamB"}, [("teamBTargets", "teamB")]),
        (
            {"OPSBOT_FANOUT_TABLE": "fanoutTargets,teamBTargets", "OPSBOT_FANOUT_FUNCTION": "other"},
            [("fanoutTargets", "fanout"), ("teamBTargets", "teamB")],
        ),
        (
            {
                "OPSBOT_FANOUT_TABLE": "mappings, Targets, teamBTargets=shared",
                "OPSBOT_FANOUT_FUNCTION": "other",
            },
            [("mappings", "other"), ("Targets", "other"), ("teamBTargets", "shared")],
        ),
    ],
)
def test_each_table_belongs_to_the_function_the_cli_names_it_after(
    env: dict[str, str], expected: list[tuple[str, str]]
) -> None:
    assert [(s.table, s.function) for s in table_specs(Settings.from_env(env))] == expected


def test_hook_state_from_event_source_mappings(fanout: Fanout) -> None:
    stream_arn = create_stream()
    assert stream_arn == KINESIS_ARN
    create_function()
    fanout.register(target_id="t", target_type="kinesis", destination="out", active=True)
    lam = client("lambda")
    mapping = lam.create_event_source_mapping(
        EventSourceArn=KINESIS_ARN,
        FunctionName="fanout",
        BatchSize=100,
        StartingPosition="LATEST",
        Enabled=True,
    )
    # `./fanout pause`: update-event-source-mapping --no-enabled
    lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)

    (source,) = list_mappings(fanout.settings).to_json()["sources"]

    hook = source["hook"]
    assert hook["uuid"] == mapping["UUID"]
    assert hook["state"] == "Disabled" and hook["enabled"] is False
    assert hook["batchSize"] == 100 and hook["startingPosition"] == "LATEST"
    assert hook["functionArn"].endswith(":function:fanout")


def test_a_hooked_source_without_targets_is_listed(fanout: Fanout) -> None:
    create_stream()
    create_function()
    client("lambda").create_event_source_mapping(
        EventSourceArn=KINESIS_ARN, FunctionName="fanout", StartingPosition="LATEST"
    )
    (source,) = list_mappings(fanout.settings).groups
    assert source.targets == () and source.hook is not None


def test_unreadable_hooks_are_reported_and_targets_still_listed(fanout: Fanout) -> None:
    fanout.register(target_id="t", target_type="kinesis", destination="out")
    message = (
        "User: arn:aws:sts::123456789012:assumed-role/opsbot/slack is not authorized to perform: "
        "lambda:ListEventSourceMappings on resource: *"
    )
    with Stubber(client("lambda")) as stub:
        stub.add_client_error("list_event_source_mappings", "AccessDeniedException", message, 403)
        listing = list_mappings(fanout.settings)

    assert listing.target_count == 1
    assert "lambda:ListEventSourceMappings" in listing.hook_errors["fanout"]
    (source,) = listing.to_json()["sources"]
    assert source["hook"] is None and source["hookKnown"] is False
    assert "hookErrors" in listing.to_json()


def test_list_hooks_follows_markers_and_reads_the_last_processing_result() -> None:
    """moto returns no LastProcessingResult and never pages; AWS's documented response does both."""
    lam = client("lambda", region="us-east-1")
    mapping = {
        "UUID": "14e0db71-5d35-4eb5-b481-8945cf9d10c2",
        "BatchSize": 100,
        "EventSourceArn": KINESIS_ARN,
        "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:fanout",
        "LastModified": dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC),
        "LastProcessingResult": "PROBLEM: Function call failed",
        "State": "Enabled",
        "StateTransitionReason": "User action",
        "StartingPosition": "LATEST",
    }
    second = {**mapping, "UUID": "2f5c1f6e-0000-4000-8000-000000000000", "EventSourceArn": DDB_STREAM_ARN}
    with Stubber(lam) as stub:
        stub.add_response(
            "list_event_source_mappings",
            {"EventSourceMappings": [mapping], "NextMarker": "page-2"},
            {"FunctionName": "fanout"},
        )
        stub.add_response(
            "list_event_source_mappings",
            {"EventSourceMappings": [second]},
            {"FunctionName": "fanout", "Marker": "page-2"},
        )
        mappings = list_hooks("fanout")
        stub.assert_no_pending_responses()

    assert [m["UUID"] for m in mappings] == [mapping["UUID"], second["UUID"]]
    hook = Hook.from_mapping(mappings[0])
    assert hook.problem and hook.last_processing_result == "PROBLEM: Function call failed"
    assert hook.to_json()["lastModified"] == "2024-05-01T12:00:00+00:00"


@pytest.mark.parametrize(
    ("arn", "kind", "name", "accepted"),
    [
        (KINESIS_ARN, "kinesis", "inputStream", True),
        (DDB_STREAM_ARN, "dynamodb", "customers", True),
        ("arn:aws:dynamodb:us-east-1:123456789012:table/customers", "dynamodb-table", "customers", False),
        ("arn:aws-cn:kinesis:cn-north-1:123456789012:stream/s", "kinesis", "s", False),
        ("arn:aws:kinesis:us-east-1:123456789012:stream/has.dot", "kinesis", "has.dot", False),
        ("inputStream", "unknown", "inputStream", False),
    ],
)
def test_source_arns(arn: str, kind: str, name: str, accepted: bool) -> None:
    ref = parse_source(arn)
    assert (ref.kind, ref.name, ref.accepted) == (kind, name, accepted)


def test_cli_list_json_document(fanout: Fanout, capsys: pytest.CaptureFixture[str]) -> None:
    fanout.register(target_id="t1", target_type="kinesis", destination="out", active=True)
    assert main(["fanout", "list", "--json"]) == 0
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    (source,) = document["sources"]
    assert source["sourceArn"] == KINESIS_ARN and source["hook"] is None
    assert {"id", "type", "destination", "active"} <= set(source["targets"][0])
    assert source["targets"][0]["active"] is True

    assert main(["fanout", "list", "inputStream"]) == 0
    text = capsys.readouterr().out
    assert "Kinesis stream inputStream" in text and "t1" in text and "kinesis" in text
    assert main(["fanout", "list", "--type", "bogus"]) == 2
