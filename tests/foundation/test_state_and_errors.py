from __future__ import annotations

import threading
import time

import pytest
from botocore.exceptions import ClientError, NoCredentialsError

from bot.aws.errors import aws_errors, translate
from bot.aws.state import StateTable
from bot.errors import AwsError


def test_lock_is_taken_once_even_under_concurrency(state_table: str) -> None:
    state = StateTable(state_table)
    results: list[bool] = []

    def take(n: int) -> None:
        results.append(state.acquire_lock("k", {"user": f"U{n}"}, ttl_seconds=60).acquired)

    threads = [threading.Thread(target=take, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    held = state.acquire_lock("k", {"user": "late"}, ttl_seconds=60)
    assert not held.acquired and held.holder["user"].startswith("U")


def test_expired_lock_can_be_taken_again(state_table: str) -> None:
    state = StateTable(state_table)
    assert state.acquire_lock("k", {"user": "U1"}, ttl_seconds=0).acquired  # expires at once
    second = state.acquire_lock("k", {"user": "U2"}, ttl_seconds=60)
    assert second.acquired
    state.release_lock("k", owner=second.owner)
    assert state.acquire_lock("k", {"user": "U3"}, ttl_seconds=60).acquired


def test_counters_and_flags(state_table: str) -> None:
    state = StateTable(state_table)
    assert [state.increment("guess#SN-1", window_seconds=900) for _ in range(3)] == [1, 2, 3]
    assert state.count("guess#SN-1", window_seconds=900) == 3
    assert state.count("guess#other", window_seconds=900) == 0
    state.set_flag("stop#tail-1", {"by": "U1"}, ttl_seconds=60)
    flag = state.get_flag("stop#tail-1")
    assert flag is not None and flag["by"] == "U1" and flag["expiresAt"] > time.time()
    state.set_flag("gone", {}, ttl_seconds=-1)
    assert state.get_flag("gone") is None  # expired items are invisible before DynamoDB deletes them
    state.put_sync_state("dns#example.com", {"serial": 2026112701, "ratio": 0.5})
    assert state.get_sync_state("dns#example.com")["serial"] == 2026112701  # type: ignore[index]


def test_missing_table_is_named(aws: None) -> None:
    with pytest.raises(AwsError, match="state table nope") as info:
        StateTable("nope").get("a", "b")
    assert info.value.code == "ResourceNotFoundException"
    assert "AWS_REGION" in str(info.value)


def test_access_denied_names_the_permission_and_role() -> None:
    error = ClientError(
        {
            "Error": {
                "Code": "AccessDeniedException",
                "Message": "User: arn:aws:sts::123456789012:assumed-role/opsbot-SlackRole/opsbot-slack is not "
                "authorized to perform: dynamodb:UpdateItem on resource: arn:aws:dynamodb:us-east-1:123456789012:"
                "table/iotCatalog because no identity-based policy allows the dynamodb:UpdateItem action",
            }
        },
        "UpdateItem",
    )
    translated = translate(error)
    assert "`dynamodb:UpdateItem`" in translated.message and "table/iotCatalog" in translated.message
    assert "assumed-role/opsbot-SlackRole" in translated.message and "template.yaml" in str(translated)


def test_access_denied_without_detail_uses_the_operation(aws: None) -> None:
    from bot.aws.clients import client

    logs = client("logs")
    translated = translate(
        ClientError({"Error": {"Code": "AccessDenied", "Message": ""}}, "FilterLogEvents"), client=logs
    )
    assert "`logs:FilterLogEvents`" in translated.message


def test_no_credentials_and_throttling_are_sentences() -> None:
    assert "No AWS credentials" in translate(NoCredentialsError()).message
    throttled = translate(
        ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "X")
    )
    assert "throttling" in throttled.message


def test_aws_errors_context_manager_translates(aws: None) -> None:
    from bot.aws.clients import client

    started = time.time()
    with pytest.raises(AwsError, match="table missing"), aws_errors(resource="table missing"):
        client("dynamodb").describe_table(TableName="missing")
    assert time.time() - started < 10


def test_recent_counter_spans_a_window_boundary(state_table: str) -> None:
    state = StateTable(state_table)
    window = 900
    boundary = 1_800_000_000 - 1_800_000_000 % window + window
    # Three events just before a boundary and two just after: five within 15 minutes.
    counts = [state.add_recent("guess", window_seconds=window, now=boundary - 10 + i) for i in range(3)]
    counts += [state.add_recent("guess", window_seconds=window, now=boundary + i) for i in range(2)]
    assert counts == [1, 2, 3, 4, 5]
    assert state.recent("guess", window_seconds=window, now=boundary + 5) == 5
    assert state.recent("guess", window_seconds=window, now=boundary + 2 * window) == 0
    state.clear_recent("guess", window_seconds=window, now=boundary + 5)
    assert state.recent("guess", window_seconds=window, now=boundary + 5) == 0


def test_read_ahead_counts_match_the_counters(state_table: str) -> None:
    """``recent_keys`` + ``get_many`` + ``add_recent(previous=...)`` count as ``add_recent`` alone does."""
    state = StateTable(state_table)
    window = 900
    boundary = 1_800_000_000 - 1_800_000_000 % window + window
    for i in range(3):
        state.add_only("seen", window_seconds=window, now=boundary - 10 + i)
    now = boundary + 1
    current, previous = StateTable.recent_keys("seen", window_seconds=window, now=now)
    read = state.get_many([current, previous, current])  # a key named twice is read once
    assert (StateTable.count_in(read, current), StateTable.count_in(read, previous)) == (0, 3)
    total = state.add_recent(
        "seen", window_seconds=window, now=now, previous=StateTable.count_in(read, previous)
    )
    assert total == 4 == state.recent("seen", window_seconds=window, now=now)


def test_get_many_skips_expired_items_and_asks_again_for_unprocessed_keys(state_table: str) -> None:
    from botocore.stub import Stubber

    from bot.aws.clients import client
    from bot.aws.dynamo import to_item

    state = StateTable(state_table)
    state.set_flag("live", {"by": "U1"}, ttl_seconds=60)
    state.put("flag#gone", "flag", {"by": "U2"}, ttl_seconds=-1)  # expired, not yet deleted by DynamoDB
    keys = [StateTable.flag_item_key(k) for k in ("live", "gone", "absent")]
    assert list(state.get_many(keys)) == [StateTable.flag_item_key("live")]

    live = to_item({"pk": "flag#live", "sk": "flag", "by": "U1"})
    with Stubber(client("dynamodb")) as stubber:
        unprocessed = {
            state_table: {"Keys": [to_item({"pk": "flag#live", "sk": "flag"})], "ConsistentRead": True}
        }
        stubber.add_response(
            "batch_get_item", {"Responses": {state_table: []}, "UnprocessedKeys": unprocessed}
        )
        stubber.add_response(
            "batch_get_item", {"Responses": {state_table: [live]}}, {"RequestItems": unprocessed}
        )
        found = state.get_many([StateTable.flag_item_key("live")])
        stubber.assert_no_pending_responses()
    assert found[StateTable.flag_item_key("live")]["by"] == "U1"
