"""The ``mailing`` table (the seed post's, keyed by ``UserId`` = address) and mail's state-table items.

Writes are read-merge-write with optimistic concurrency: the item carries a revision ``rev``, and every
write is conditional on the revision the merge was computed from, in one transaction with the event's
"seen" marker and its daily counter. So a concurrent writer can never be overwritten with older
information, a notification is counted once, and a duplicate changes nothing. (The merge itself decides
by event time which information is newer; see ``bot.core.mail_state``.)

State-table items of this capability (prefix ``mail#`` so they never collide with other kinds):
    mail#seen#<sha256 of event id>   seen             a notification already merged (TTL 14 days)
    mail#stats                        <day>#<shard>    events per day by kind (TTL 400 days)
    mail#digest                       <storm id>       bounce-storm digest counters and message ts
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from bot.aws.clients import client
from bot.aws.dynamo import from_item, query_all, to_item, values
from bot.aws.errors import aws_errors, error_code
from bot.aws.state import create_table

MAILING_TABLE_DEFINITION: dict[str, Any] = {
    "AttributeDefinitions": [{"AttributeName": "UserId", "AttributeType": "S"}],
    "KeySchema": [{"AttributeName": "UserId", "KeyType": "HASH"}],
    "BillingMode": "PAY_PER_REQUEST",
}

SEEN_TTL_SECONDS = 14 * 86400
STATS_TTL_SECONDS = 400 * 86400
DIGEST_TTL_SECONDS = 7 * 86400
# Counters of one day are spread over a few items so that a bounce storm's concurrent transactions do
# not all conflict on one item.
STATS_SHARDS = 4

STATS_PK = "mail#stats"
DIGEST_PK = "mail#digest"


class RevisionConflict(Exception):
    """Someone else wrote the item since we read it: read again and merge again."""


class AlreadySeen(Exception):
    """The event's seen marker exists: it was merged before."""


def create_mailing_table(name: str) -> None:
    """Create the table (the demo and tests; in AWS, SAM creates it or an existing one is used)."""
    create_table(name, MAILING_TABLE_DEFINITION)


def get_address(table: str, address: str) -> dict[str, Any] | None:
    with aws_errors(resource=f"mailing table {table}"):
        raw = (
            client("dynamodb")
            .get_item(TableName=table, Key={"UserId": {"S": address}}, ConsistentRead=True)
            .get("Item")
        )
    return from_item(raw) if raw is not None else None


def seen_key(event_id: str) -> str:
    return "mail#seen#" + hashlib.sha256(event_id.encode()).hexdigest()[:40]


def stats_sort_key(day: str, event_id: str) -> str:
    shard = int(hashlib.sha256(event_id.encode()).hexdigest()[:8], 16) % STATS_SHARDS
    return f"{day}#{shard}"


@dataclass(frozen=True)
class Commit:
    """One atomic write for one event.

    ``item`` is the new item (plain values, bookkeeping included) or None when the event changes nothing;
    ``expected_rev`` is the revision the merge read (None: no item, or one written by the original
    handler, which has no revision).
    """

    table: str
    address: str
    item: dict[str, Any] | None
    expected_rev: int | None
    state_table: str = ""
    event_id: str = ""  # with state_table: write the seen marker (fails when it exists)
    stats_day: str = ""  # with state_table: add 1 to counter ``stats_field`` of that day
    stats_field: str = ""


def commit(change: Commit) -> None:
    """Apply ``change`` atomically. Raises RevisionConflict or AlreadySeen (nothing written then)."""
    if change.expected_rev is None:
        condition = "attribute_not_exists(#rev)"
        condition_values: dict[str, Any] = {}
    else:
        condition = "#rev = :rev"
        condition_values = values({":rev": change.expected_rev})
    items: list[dict[str, Any]] = []
    if change.item is not None:
        put: dict[str, Any] = {
            "TableName": change.table,
            "Item": to_item(change.item),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#rev": "rev"},
        }
        if condition_values:
            put["ExpressionAttributeValues"] = condition_values
        items.append({"Put": put})
    elif change.state_table and change.event_id:
        check: dict[str, Any] = {
            "TableName": change.table,
            "Key": {"UserId": {"S": change.address}},
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#rev": "rev"},
        }
        if condition_values:
            check["ExpressionAttributeValues"] = condition_values
        items.append({"ConditionCheck": check})
    now = int(time.time())
    if change.state_table and change.event_id:
        items.append(
            {
                "Put": {
                    "TableName": change.state_table,
                    "Item": to_item(
                        {"pk": seen_key(change.event_id), "sk": "seen", "expiresAt": now + SEEN_TTL_SECONDS}
                    ),
                    # An expired marker that DynamoDB has not deleted yet does not count.
                    "ConditionExpression": "attribute_not_exists(pk) OR expiresAt <= :now",
                    "ExpressionAttributeValues": values({":now": now}),
                }
            }
        )
        if change.stats_day and change.stats_field:
            items.append(
                {
                    "Update": {
                        "TableName": change.state_table,
                        "Key": to_item(
                            {"pk": STATS_PK, "sk": stats_sort_key(change.stats_day, change.event_id)}
                        ),
                        "UpdateExpression": "ADD #f :one SET expiresAt = if_not_exists(expiresAt, :exp)",
                        "ExpressionAttributeNames": {"#f": change.stats_field},
                        "ExpressionAttributeValues": values({":one": 1, ":exp": now + STATS_TTL_SECONDS}),
                    }
                }
            )
    if not items:
        return
    _transact(items, change.table)


def _transact(items: list[dict[str, Any]], table: str) -> None:
    ddb = client("dynamodb")
    with aws_errors(resource=f"mailing table {table}"):
        try:
            if len(items) == 1 and "Put" in items[0]:
                ddb.put_item(**items[0]["Put"])
            else:
                ddb.transact_write_items(TransactItems=items)
            return
        except Exception as error:
            code = error_code(error)
            if code == "ConditionalCheckFailedException":
                raise RevisionConflict() from None
            if code != "TransactionCanceledException":
                raise
            reasons = _cancellation_codes(error)
    # The seen marker is always the item after the mailing-table one.
    if len(reasons) >= 2 and reasons[1] == "ConditionalCheckFailed":
        raise AlreadySeen()
    if reasons and reasons[0] == "ConditionalCheckFailed":
        raise RevisionConflict()
    # TransactionConflict (another transaction on the same items at the same moment): try again.
    raise RevisionConflict()


def _cancellation_codes(error: BaseException) -> list[str]:
    response = getattr(error, "response", None) or {}
    reasons = response.get("CancellationReasons")
    if not isinstance(reasons, list):
        return []
    return [str(reason.get("Code", "")) for reason in reasons if isinstance(reason, Mapping)]


def put_address(table: str, item: Mapping[str, Any]) -> None:
    """Unconditional put (tests and the demo's legacy examples only)."""
    with aws_errors(resource=f"mailing table {table}"):
        client("dynamodb").put_item(TableName=table, Item=to_item(dict(item)))


def scan_addresses(table: str) -> Iterator[dict[str, Any]]:
    from bot.aws.dynamo import scan_all

    yield from scan_all(table, ConsistentRead=True)


# -- daily counters --------------------------------------------------------------------------------


def read_stats(state_table: str, first_day: str, last_day: str) -> dict[str, dict[str, int]]:
    """Counters per day (``YYYY-MM-DD``, shards summed) between the two days inclusive."""
    days: dict[str, dict[str, int]] = {}
    items = query_all(
        state_table,
        KeyConditionExpression="pk = :pk AND sk BETWEEN :first AND :last",
        ExpressionAttributeValues=values({":pk": STATS_PK, ":first": first_day, ":last": last_day + "#~"}),
        ConsistentRead=True,
    )
    for item in items:
        day = str(item["sk"]).split("#", 1)[0]
        counts = days.setdefault(day, {})
        for name, value in item.items():
            if name in {"pk", "sk", "expiresAt"} or not isinstance(value, int | float):
                continue
            counts[name] = counts.get(name, 0) + int(value)
    return days


# -- bounce-storm digest ---------------------------------------------------------------------------


def digest_add(
    state_table: str, storm: str, increments: Mapping[str, int], examples: Mapping[str, str]
) -> dict[str, Any]:
    """Add counts to a storm's digest item; returns the whole item after the update."""
    names: dict[str, str] = {}
    vals: dict[str, Any] = {":exp": int(time.time()) + DIGEST_TTL_SECONDS}
    adds: list[str] = []
    sets = ["expiresAt = if_not_exists(expiresAt, :exp)"]
    for index, (name, count) in enumerate(sorted(increments.items())):
        names[f"#a{index}"] = name
        vals[f":a{index}"] = count
        adds.append(f"#a{index} :a{index}")
    for index, (name, text) in enumerate(sorted(examples.items())):
        names[f"#e{index}"] = name
        vals[f":e{index}"] = text
        sets.append(f"#e{index} = if_not_exists(#e{index}, :e{index})")
    expression = "SET " + ", ".join(sets) + (" ADD " + ", ".join(adds) if adds else "")
    kwargs: dict[str, Any] = {
        "TableName": state_table,
        "Key": to_item({"pk": DIGEST_PK, "sk": storm}),
        "UpdateExpression": expression,
        "ExpressionAttributeValues": values(vals),
        "ReturnValues": "ALL_NEW",
    }
    if names:
        kwargs["ExpressionAttributeNames"] = names
    with aws_errors(resource=f"state table {state_table}"):
        result = client("dynamodb").update_item(**kwargs)
    return from_item(result.get("Attributes", {}))


def digest_claim_update(state_table: str, storm: str, *, now: float, min_interval: float) -> bool:
    """Take the right to update the digest message now (at most once per ``min_interval`` seconds)."""
    with aws_errors(resource=f"state table {state_table}"):
        try:
            client("dynamodb").update_item(
                TableName=state_table,
                Key=to_item({"pk": DIGEST_PK, "sk": storm}),
                UpdateExpression="SET lastUpdate = :now",
                ConditionExpression=(
                    "attribute_exists(ts) AND (attribute_not_exists(lastUpdate) OR lastUpdate <= :cutoff)"
                ),
                ExpressionAttributeValues=values({":now": now, ":cutoff": now - min_interval}),
            )
            return True
        except Exception as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            return False


def digest_set_message(state_table: str, storm: str, *, channel: str, ts: str, now: float) -> None:
    with aws_errors(resource=f"state table {state_table}"):
        client("dynamodb").update_item(
            TableName=state_table,
            Key=to_item({"pk": DIGEST_PK, "sk": storm}),
            UpdateExpression="SET ts = :ts, channel = :channel, lastUpdate = :now",
            ExpressionAttributeValues=values({":ts": ts, ":channel": channel, ":now": now}),
        )


def digest_get(state_table: str, storm: str) -> dict[str, Any] | None:
    with aws_errors(resource=f"state table {state_table}"):
        raw = (
            client("dynamodb")
            .get_item(TableName=state_table, Key=to_item({"pk": DIGEST_PK, "sk": storm}), ConsistentRead=True)
            .get("Item")
        )
    return from_item(raw) if raw else None
