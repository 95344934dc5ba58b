"""pause / resume: the aws-lambda-fanout CLI's calls, so the CLI and opsbot see one state; idempotent."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.aws.clients import client
from bot.aws.dynamo import from_item
from bot.cli import main
from bot.core.fanout.commands import list_mappings
from bot.core.fanout.pause import preview_pause, set_paused
from bot.errors import AwsError, NotFoundError, UsageError
from tests.fanout.conftest import CLICKS_ARN, KINESIS_ARN, Fanout, two_sources


def original_cli_list(
    source_arn: str, function: str = "fanout", table: str = "fanoutTargets"
) -> dict[str, Any]:
    """What `./fanout list` and `./fanout hooks` show, from the calls the bash CLI makes:
    ``aws dynamodb query --key-condition-expression 'sourceArn = :sourceArn'`` on the targets table and
    ``aws lambda list-event-source-mappings --function-name F --event-source-arn S``."""
    items = client("dynamodb").query(
        TableName=table,
        KeyConditionExpression="sourceArn = :sourceArn",
        ExpressionAttributeValues={":sourceArn": {"S": source_arn}},
    )["Items"]
    mappings = client("lambda").list_event_source_mappings(FunctionName=function, EventSourceArn=source_arn)
    return {
        "targets": sorted(from_item(i)["id"] for i in items),
        "hooks": [(m["UUID"], m["State"]) for m in mappings["EventSourceMappings"]],
    }


def original_cli_pause(source_arn: str, enabled: bool, function: str = "fanout") -> None:
    """`./fanout pause|resume`: the first mapping's UUID, then update-event-source-mapping --[no-]enabled."""
    lam = client("lambda")
    uuid = lam.list_event_source_mappings(FunctionName=function, EventSourceArn=source_arn)[
        "EventSourceMappings"
    ][0]["UUID"]
    lam.update_event_source_mapping(UUID=uuid, Enabled=enabled)


def test_pause_is_seen_by_the_original_cli_and_back(fanout: Fanout) -> None:
    uuids = two_sources(fanout)
    result = set_paused(fanout.settings, "clicks", True)
    assert result.changed and result.hooked.source.arn == CLICKS_ARN
    assert "is paused" in result.message
    assert original_cli_list(CLICKS_ARN) == {
        "targets": ["search", "warehouse"],
        "hooks": [(uuids["clicks"], "Disabled")],
    }
    assert original_cli_list(KINESIS_ARN)["hooks"] == [(uuids["inputStream"], "Enabled")]  # untouched

    original_cli_pause(CLICKS_ARN, True)  # the CLI's pause of a paused hook: same state
    original_cli_pause(CLICKS_ARN, enabled=True)  # the CLI resumes it: opsbot sees it running
    (group,) = [g for g in list_mappings(fanout.settings).groups if g.source.arn == CLICKS_ARN]
    assert group.hook is not None and group.hook.state == "Enabled"
    original_cli_pause(CLICKS_ARN, enabled=False)
    again = set_paused(fanout.settings, CLICKS_ARN, True)
    assert not again.changed and "already paused; nothing changed" in again.message


def test_pause_and_resume_are_idempotent(fanout: Fanout) -> None:
    two_sources(fanout)
    assert set_paused(fanout.settings, "clicks", True).changed
    assert not set_paused(fanout.settings, "clicks", True).changed
    resumed = set_paused(fanout.settings, "clicks", False)
    assert resumed.changed and "from where it stopped" in resumed.message
    assert not set_paused(fanout.settings, "clicks", False).changed
    assert original_cli_list(CLICKS_ARN)["hooks"][0][1] == "Enabled"


def test_the_preview_names_the_backlog(fanout: Fanout) -> None:
    two_sources(fanout)
    preview = preview_pause(fanout.settings, "clicks")
    assert not preview.already_paused and preview.retention_hours == 24
    assert "2 active targets receive nothing" in preview.backlog
    assert "the stream keeps records 24 hours" in preview.backlog
    assert "The backlog is already 30 min old." in preview.backlog
    assert original_cli_list(CLICKS_ARN)["hooks"][0][1] == "Enabled"  # a preview changes nothing


@pytest.mark.parametrize(
    ("source", "error", "message"),
    [
        ("nope", NotFoundError, "No source `nope`.*Known sources: clicks, inputStream"),
        ("", UsageError, "Give the source"),
    ],
)
def test_bad_source_changes_nothing(
    fanout: Fanout, source: str, error: type[Exception], message: str
) -> None:
    two_sources(fanout)
    with pytest.raises(error, match=message):
        set_paused(fanout.settings, source, True)
    assert all(
        state == "Enabled"
        for arn in (CLICKS_ARN, KINESIS_ARN)
        for _, state in original_cli_list(arn)["hooks"]
    )


def test_cli_pause_needs_yes_when_not_interactive(fanout: Fanout, capsys: pytest.CaptureFixture[str]) -> None:
    two_sources(fanout)
    assert main(["fanout", "pause", "clicks"]) == 2
    assert (
        "pile up unread" in capsys.readouterr().err
        and original_cli_list(CLICKS_ARN)["hooks"][0][1] == "Enabled"
    )
    assert main(["fanout", "pause", "clicks", "--yes", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["changed"] and document["paused"] and document["hooks"][0]["state"] == "Disabled"
    assert main(["fanout", "resume", CLICKS_ARN]) == 0
    assert "is resumed" in capsys.readouterr().out


def test_unreadable_hooks_are_said_so_not_called_unhooked(fanout: Fanout) -> None:
    from botocore.stub import Stubber

    two_sources(fanout)
    message = "User: arn:aws:sts::123456789012:assumed-role/opsbot/x is not authorized to perform: lambda:ListEventSourceMappings"
    with Stubber(client("lambda")) as stub:
        stub.add_client_error("list_event_source_mappings", "AccessDeniedException", message, 403)
        with pytest.raises(
            AwsError, match=r"The hooks of fanout are unknown.*lambda:ListEventSourceMappings"
        ):
            set_paused(fanout.settings, "clicks", True)
