"""activate / deactivate: conditional on the item existing (like the CLI), idempotent, never creating."""

from __future__ import annotations

import json

import pytest

from bot.aws.fanout import FANOUT_TABLE_DEFINITION, register_like_cli
from bot.aws.state import create_table
from bot.cli import main
from bot.config import Settings
from bot.core.fanout.commands import set_active
from bot.errors import UsageError
from tests.fanout.conftest import DDB_STREAM_ARN, KINESIS_ARN, Fanout, raw_items


def active_of(target_id: str, table: str = "fanoutTargets") -> object:
    item = next(i for i in raw_items(table) if i["id"]["S"] == target_id)
    return item.get("active")


def test_activate_and_deactivate_by_arn_and_by_name(fanout: Fanout) -> None:
    fanout.register(target_id="t1", target_type="kinesis", destination="out")

    on = set_active(fanout.settings, KINESIS_ARN, "t1", True)
    assert on.changed and on.active and on.table == "fanoutTargets"
    assert active_of("t1") == {"BOOL": True}
    assert "is now active" in on.message and "within a few minutes" in on.message

    off = set_active(fanout.settings, "inputStream", "t1", False)
    assert off.changed and not off.active and off.source_arn == KINESIS_ARN
    assert active_of("t1") == {"BOOL": False}


def test_toggling_to_the_current_state_is_idempotent(fanout: Fanout) -> None:
    fanout.register(target_id="t1", target_type="kinesis", destination="out", active=True)
    result = set_active(fanout.settings, KINESIS_ARN, "t1", True)
    assert not result.changed and "already active; nothing changed" in result.message
    assert active_of("t1") == {"BOOL": True}


def test_a_string_active_is_repaired_to_a_boolean(fanout: Fanout) -> None:
    from bot.aws.clients import client

    fanout.register(target_id="t1", target_type="kinesis", destination="out")
    client("dynamodb").update_item(
        TableName="fanoutTargets",
        Key={"sourceArn": {"S": KINESIS_ARN}, "id": {"S": "t1"}},
        UpdateExpression="SET active = :s",
        ExpressionAttributeValues={":s": {"S": "true"}},
    )
    result = set_active(fanout.settings, KINESIS_ARN, "t1", True)
    assert result.changed and active_of("t1") == {"BOOL": True}


def test_only_the_active_attribute_changes(fanout: Fanout) -> None:
    fanout.register(
        target_id="t1", target_type="sns", destination="arn:aws:sns:us-east-1:123456789012:t", parallel=False
    )
    before = raw_items()[0]
    set_active(fanout.settings, KINESIS_ARN, "t1", True)
    after = raw_items()[0]
    assert {k: v for k, v in after.items() if k != "active"} == {
        k: v for k, v in before.items() if k != "active"
    }


@pytest.mark.parametrize(
    ("source", "target_id", "message"),
    [
        (KINESIS_ARN, "missing", "No target `missing` for source arn:aws:kinesis"),
        ("arn:aws:kinesis:us-east-1:123456789012:stream/other", "t1", "No target `t1` for source"),
        ("otherStream", "t1", "No source named `otherStream`"),
        ("", "t1", "Give the source"),
    ],
)
def test_unknown_source_or_id_changes_nothing(
    fanout: Fanout, source: str, target_id: str, message: str
) -> None:
    fanout.register(target_id="t1", target_type="kinesis", destination="out")
    before = raw_items()
    with pytest.raises(UsageError, match=message):
        set_active(fanout.settings, source, target_id, True)
    assert raw_items() == before  # no item created, nothing changed


def test_an_id_under_two_sources_with_the_same_name_is_ambiguous(fanout: Fanout) -> None:
    other = "arn:aws:kinesis:us-west-2:123456789012:stream/inputStream"
    fanout.register(target_id="t1", target_type="kinesis", destination="out")
    fanout.register(source_arn=other, target_id="t1", target_type="kinesis", destination="out")
    with pytest.raises(UsageError, match="more than one source"):
        set_active(fanout.settings, "inputStream", "t1", True)
    assert set_active(fanout.settings, other, "t1", True).source_arn == other


def test_several_tables_and_the_table_option(aws: None) -> None:
    for table in ("fanoutTargets", "teamBTargets"):
        create_table(table, FANOUT_TABLE_DEFINITION)
        register_like_cli(
            table, source_arn=DDB_STREAM_ARN, target_id="t1", target_type="sqs", destination="x"
        )
    settings = Settings.from_env({"OPSBOT_FANOUT_TABLE": "fanoutTargets,teamBTargets=teamB"})

    with pytest.raises(UsageError, match="more than one source"):
        set_active(settings, DDB_STREAM_ARN, "t1", True)
    result = set_active(settings, "customers", "t1", True, table="teamBTargets")
    assert result.table == "teamBTargets"
    assert active_of("t1", "teamBTargets") == {"BOOL": True} and active_of("t1") == {"BOOL": False}
    with pytest.raises(UsageError, match="is not one of the configured fan-out tables"):
        set_active(settings, "customers", "t1", True, table="nope")


def test_cli_activate_deactivate(fanout: Fanout, capsys: pytest.CaptureFixture[str]) -> None:
    fanout.register(target_id="t1", target_type="kinesis", destination="out")
    assert main(["fanout", "activate", "inputStream", "t1", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] and document["changed"] and document["active"] is True
    assert main(["fanout", "deactivate", KINESIS_ARN, "t1"]) == 0
    assert "is now inactive" in capsys.readouterr().out
    assert main(["fanout", "deactivate", KINESIS_ARN, "nope"]) == 1  # not found
    assert "nothing was changed" in capsys.readouterr().err


def test_cli_toggles_are_audited(
    fanout: Fanout, state_table: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Like the device and mail CLIs: one record per toggle, whether it changed something or not."""
    from datetime import UTC, datetime

    from bot.aws.state import StateTable

    monkeypatch.setenv("OPSBOT_STATE_TABLE", state_table)
    fanout.register(target_id="t1", target_type="kinesis", destination="out")
    assert main(["fanout", "activate", "inputStream", "t1"]) == 0
    assert main(["fanout", "activate", KINESIS_ARN, "t1"]) == 0
    assert main(["fanout", "deactivate", "inputStream", "t1", "--table", "fanoutTargets"]) == 0
    assert main(["fanout", "deactivate", KINESIS_ARN, "nope"]) == 1  # not found
    capsys.readouterr()

    day = datetime.now(UTC).strftime("%Y-%m-%d")
    records = StateTable(state_table).audit_of_day(day)
    summary = [(r["action"], r["args"], r["outcome"]) for r in records]
    assert sorted(summary) == sorted(
        [
            ("fanout.activate", "inputStream t1", "changed"),
            ("fanout.activate", f"{KINESIS_ARN} t1", "unchanged"),
            ("fanout.deactivate", "inputStream t1 --table fanoutTargets", "changed"),
            ("fanout.deactivate", f"{KINESIS_ARN} nope", "error"),
        ]
    )
    by_args = {r["args"]: r for r in records}
    assert by_args["inputStream t1"]["detail"] == f"fanoutTargets: {KINESIS_ARN} t1"
    assert "nothing was changed" in by_args[f"{KINESIS_ARN} nope"]["detail"]
    assert all(r["kind"] == "cli" and r["channel"] == "cli" and r["user"].startswith("cli:") for r in records)


def test_cli_not_found_with_json(fanout: Fanout, capsys: pytest.CaptureFixture[str]) -> None:
    fanout.register(target_id="t1", target_type="kinesis", destination="out")
    assert main(["fanout", "activate", KINESIS_ARN, "nope", "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert (document["ok"], document["reason"]) == (False, "not-found")
    assert "No target `nope`" in document["message"]
