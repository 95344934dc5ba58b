"""The ``mailing`` table (the seed post's, keyed by ``UserId`` = address) and mail's state-table items.

Writes are read-merge-write with optimistic concurrency: the item carries a revision ``rev`` and every
put is conditional on the revision the merge was computed from, so a concurrent writer is never
overwritten with older information (the merge itself decides by event time what is newer; see
``bot.core.mail.state``). A put that loses the race gets the winner's item back with the failure, so the
merge is redone without another read. A duplicate is recognised from the item before anything is written.

State-table items of this capability (prefix ``mail#`` so they never collide with other kinds):
    mail#stats     <day>#<shard>    feedback events per day by kind (TTL 400 days)
    mail#alerts    <window start>   alerts of one minute, for the storm guard's sliding-window estimate
                                    (TTL two minutes)
    mail#digest    <storm id>       bounce-storm digest counters, the first addresses, the digest
                                    message's ts and the version of the counts it shows
    mail#outbox    pending          alerts and digests that could not be posted yet (Slack failed), the
                                    flush lease, and the count of alerts dropped from it (TTL two days)

The outbox is one item: the feedback function's IAM policy grants the state table GetItem, PutItem and
UpdateItem only (no Query, no DeleteItem), so everything is reached by key and changed by UpdateItem. Each
pending alert is one attribute (``alert:<id>``), so adding and removing one never rewrites the others.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.aws.clients import client
from bot.aws.dynamo import from_item, query_all, refused_item, to_item, values
from bot.aws.errors import aws_errors, error_code
from bot.aws.state import create_table
from bot.errors import AwsError

MAILING_TABLE_DEFINITION: dict[str, Any] = {
    "AttributeDefinitions": [{"AttributeName": "UserId", "AttributeType": "S"}],
    "KeySchema": [{"AttributeName": "UserId", "KeyType": "HASH"}],
    "BillingMode": "PAY_PER_REQUEST",
}

STATS_TTL_SECONDS = 400 * 86400
DIGEST_TTL_SECONDS = 7 * 86400
# Counters of one day are spread over a few items so that a bounce storm's concurrent Lambda invocations
# do not all update one item.
STATS_SHARDS = 4

STATS_PK = "mail#stats"
ALERTS_PK = "mail#alerts"
DIGEST_PK = "mail#digest"
OUTBOX_PK = "mail#outbox"
OUTBOX_SK = "pending"
# The outbox item outlives its entries (a day each): an invocation in the second day still finds entries
# too old to post and reports them as dropped rather than the item vanishing with them unreported.
OUTBOX_TTL_SECONDS = 2 * 86400
OUTBOX_ALERT_PREFIX = "alert:"
OUTBOX_DIGEST_PREFIX = "digest:"
# Addresses kept on a storm's digest item (concurrent invocations may overshoot by one batch's worth).
DIGEST_ADDRESSES = 10


# The attributes the seed post's handler writes (besides the key): what its readers look at.
LEGACY_ATTRIBUTES = ("notificationType", "from", "timestamp", "state")
# On a row of the original handler: the ``rev`` of opsbot's item whose state was last copied into it.
MIRRORED_REV = "mirroredRev"


class RevisionConflict(Exception):
    """Someone else wrote the item since we read it: merge again with ``current``, what is there now."""

    def __init__(self, current: dict[str, Any] | None) -> None:
        super().__init__("the item changed since it was read")
        self.current = current


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


def get_addresses(table: str, addresses: Iterable[str]) -> dict[str, dict[str, Any] | None]:
    """Several items in as few calls as possible (BatchGetItem, 100 keys a call); None for absent ones."""
    wanted = sorted(set(addresses))
    found: dict[str, dict[str, Any] | None] = dict.fromkeys(wanted)
    ddb = client("dynamodb")
    with aws_errors(resource=f"mailing table {table}"):
        for start in range(0, len(wanted), 100):
            keys: list[dict[str, Any]] = [
                {"UserId": {"S": address}} for address in wanted[start : start + 100]
            ]
            for attempt in range(8):
                response = ddb.batch_get_item(RequestItems={table: {"Keys": keys, "ConsistentRead": True}})
                for raw in response.get("Responses", {}).get(table, []):
                    item = from_item(raw)
                    found[str(item["UserId"])] = item
                keys = response.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
                if not keys:
                    break
                time.sleep(min(1.0, 0.05 * 2**attempt))
            else:
                raise AwsError(
                    f"DynamoDB kept leaving keys of mailing table {table} unread (throttled).",
                    code="UnprocessedKeys",
                    operation="BatchGetItem",
                )
    return found


def put_if_revision(table: str, item: Mapping[str, Any], expected_rev: int | None) -> None:
    """Put ``item`` if the stored item still has ``expected_rev`` (None: no item, or one written by the
    original handler, which has no revision). Raises RevisionConflict, carrying the stored item, otherwise;
    nothing is written then."""
    kwargs: dict[str, Any] = {
        "TableName": table,
        "Item": to_item(dict(item)),
        "ExpressionAttributeNames": {"#rev": "rev"},
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    if expected_rev is None:
        kwargs["ConditionExpression"] = "attribute_not_exists(#rev)"
    else:
        kwargs["ConditionExpression"] = "#rev = :rev"
        kwargs["ExpressionAttributeValues"] = values({":rev": expected_rev})
    with aws_errors(resource=f"mailing table {table}"):
        try:
            client("dynamodb").put_item(**kwargs)
        except Exception as error:
            stored = refused_item(error)
            if stored is None:
                raise
            raise RevisionConflict(stored or None) from None


def put_legacy_mirror(
    table: str, address: str, attributes: Mapping[str, Any], rev: int
) -> dict[str, Any] | None:
    """Copy opsbot's state into the original handler's row under ``address``: set ``attributes`` (some of
    ``LEGACY_ATTRIBUTES``) and ``MIRRORED_REV`` = ``rev``, if the row is still there, still not opsbot's
    own, and holds no newer copy. Returns None when written, else the row as it is (``{}`` when it is
    gone): a copy of a later revision is never overwritten by an earlier one, whatever order concurrent
    invocations write in.

    A conditional UpdateItem of those attributes only, not a PutItem of the row read earlier: whatever
    another system wrote to the row since (its own attributes) is kept. The condition also keeps it from
    creating a row that is not there."""
    unexpected = set(attributes) - set(LEGACY_ATTRIBUTES)
    if unexpected:
        raise ValueError(f"not attributes of the original handler: {sorted(unexpected)}")
    names = {f"#a{i}": name for i, name in enumerate(attributes)}
    updates: dict[str, Any] = {f":a{i}": value for i, value in enumerate(attributes.values())}
    sets = [f"#a{i} = :a{i}" for i in range(len(names))] + ["#mirrored = :rev"]
    kwargs: dict[str, Any] = {
        "TableName": table,
        "Key": {"UserId": {"S": address}},
        "UpdateExpression": "SET " + ", ".join(sets),
        "ConditionExpression": (
            "attribute_exists(UserId) AND attribute_not_exists(mergeState) "
            "AND (attribute_not_exists(#mirrored) OR #mirrored < :rev)"
        ),
        "ExpressionAttributeNames": {**names, "#mirrored": MIRRORED_REV},
        "ExpressionAttributeValues": values({**updates, ":rev": rev}),
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    with aws_errors(resource=f"mailing table {table}"):
        try:
            client("dynamodb").update_item(**kwargs)
        except Exception as error:
            stored = refused_item(error)
            if stored is None:
                raise
            return stored
    return None


# -- daily counters --------------------------------------------------------------------------------


def add_stats(state_table: str, day: str, counts: Mapping[str, int]) -> None:
    """Add ``counts`` (counter name -> how many) to the counters of ``day`` (``YYYY-MM-DD``)."""
    if not counts:
        return
    names = {f"#c{i}": name for i, name in enumerate(sorted(counts))}
    numbers: dict[str, Any] = {f":c{i}": counts[name] for i, name in enumerate(sorted(counts))}
    numbers[":exp"] = int(time.time()) + STATS_TTL_SECONDS
    adds = ", ".join(f"#c{i} :c{i}" for i in range(len(counts)))
    with aws_errors(resource=f"state table {state_table}"):
        client("dynamodb").update_item(
            TableName=state_table,
            Key=to_item({"pk": STATS_PK, "sk": f"{day}#{random.randrange(STATS_SHARDS)}"}),
            UpdateExpression=f"ADD {adds} SET expiresAt = if_not_exists(expiresAt, :exp)",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values(numbers),
        )


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


# -- the storm guard ------------------------------------------------------------------------------


def count_alerts(
    state_table: str, count: int, *, window_seconds: int, now: float, pk: str = ALERTS_PK
) -> int:
    """Add ``count`` alerts to the current fixed window; return an estimate of the alerts of the last
    ``window_seconds`` (these included), rounded up.

    The sliding-window counter: the previous window's count weighted by the share of that window still
    inside the last ``window_seconds``, plus the current window's. A burst straddling a window boundary is
    counted (mostly) whole, unlike with one fixed window; unlike adding the whole previous window, alerts
    nearly two windows apart are not counted together. The estimate assumes the previous window's alerts
    were spread evenly over it. Rounded up, ``estimate > threshold`` holds exactly when the unrounded
    estimate is over the (whole-number) threshold.
    """
    start = int(now) - int(now) % window_seconds
    ddb = client("dynamodb")
    with aws_errors(resource=f"state table {state_table}"):
        result = ddb.update_item(
            TableName=state_table,
            Key=to_item({"pk": pk, "sk": str(start)}),
            UpdateExpression="ADD #c :n SET expiresAt = if_not_exists(expiresAt, :exp)",
            ExpressionAttributeNames={"#c": "count"},
            ExpressionAttributeValues=values({":n": count, ":exp": start + 2 * window_seconds}),
            ReturnValues="UPDATED_NEW",
        )
        previous = ddb.get_item(
            TableName=state_table,
            Key=to_item({"pk": pk, "sk": str(start - window_seconds)}),
            ConsistentRead=True,
        ).get("Item")
    current = int(from_item(result["Attributes"])["count"])
    earlier = int(from_item(previous).get("count", 0)) if previous else 0
    return current + sliding_share(earlier, window_seconds=window_seconds, elapsed=now - start)


def sliding_share(previous_count: int, *, window_seconds: int, elapsed: float) -> int:
    """The part of the previous window's count that the sliding window ending ``elapsed`` seconds into the
    current window still covers, rounded up (a tiny tolerance absorbs float error: 6 x 30/60 is 3, not 4)."""
    overlap = min(1.0, max(0.0, (window_seconds - elapsed) / window_seconds))
    return max(0, math.ceil(previous_count * overlap - 1e-9))


# -- bounce-storm digest ---------------------------------------------------------------------------
# Every addition bumps the digest's ``version``; the message records the version it shows (``shown``), so
# whoever added counts can tell whether the message shows them yet.


def digest_add(
    state_table: str,
    storm: str,
    increments: Mapping[str, int],
    examples: Mapping[str, str],
    addresses: Sequence[str] = (),
    *,
    pk: str = DIGEST_PK,
) -> dict[str, Any]:
    """Add counts to a storm's digest item; returns the whole item after the update.

    ``addresses`` are appended to the item's ``addresses`` list while it holds fewer than
    ``DIGEST_ADDRESSES`` (in the same update, conditional on its size): the digest shows the first ones.
    Once the list is full the update is repeated without them, and this process remembers it, so a long
    storm costs one update per batch as before.
    """
    names: dict[str, str] = {}
    vals: dict[str, Any] = {":exp": int(time.time()) + DIGEST_TTL_SECONDS, ":one": 1}
    adds: list[str] = ["version :one"]
    sets = ["expiresAt = if_not_exists(expiresAt, :exp)"]
    for index, (name, count) in enumerate(sorted(increments.items())):
        names[f"#a{index}"] = name
        vals[f":a{index}"] = count
        adds.append(f"#a{index} :a{index}")
    for index, (name, text) in enumerate(sorted(examples.items())):
        names[f"#e{index}"] = name
        vals[f":e{index}"] = text
        sets.append(f"#e{index} = if_not_exists(#e{index}, :e{index})")
    kwargs: dict[str, Any] = {
        "TableName": state_table,
        "Key": to_item({"pk": pk, "sk": storm}),
        "ReturnValues": "ALL_NEW",
    }
    wanted = list(dict.fromkeys(addresses))[:DIGEST_ADDRESSES]
    ddb = client("dynamodb")
    with aws_errors(resource=f"state table {state_table}"):
        if wanted and storm not in _full_digests:
            try:
                result = ddb.update_item(
                    **kwargs,
                    UpdateExpression="SET "
                    + ", ".join([*sets, "#addrs = list_append(if_not_exists(#addrs, :none), :addrs)"])
                    + " ADD "
                    + ", ".join(adds),
                    ConditionExpression="attribute_not_exists(#addrs) OR size(#addrs) < :max",
                    ExpressionAttributeNames={**names, "#addrs": "addresses"},
                    ExpressionAttributeValues=values(
                        {**vals, ":none": [], ":addrs": wanted, ":max": DIGEST_ADDRESSES}
                    ),
                )
                return from_item(result.get("Attributes", {}))
            except Exception as error:
                if error_code(error) != "ConditionalCheckFailedException":
                    raise
                if len(_full_digests) > 100:
                    _full_digests.clear()
                _full_digests.add(storm)
        if names:
            kwargs["ExpressionAttributeNames"] = names
        result = ddb.update_item(
            **kwargs,
            UpdateExpression="SET " + ", ".join(sets) + " ADD " + ", ".join(adds),
            ExpressionAttributeValues=values(vals),
        )
    return from_item(result.get("Attributes", {}))


# Storms whose digest item holds its ``DIGEST_ADDRESSES`` already (per process; a miss costs one update).
_full_digests: set[str] = set()


def digest_claim_update(
    state_table: str, storm: str, *, now: float, min_interval: float, pk: str = DIGEST_PK
) -> bool:
    """Take the right to update the digest message now (at most once per ``min_interval`` seconds)."""
    return _update_if(
        state_table,
        storm,
        "SET lastUpdate = :now",
        "attribute_exists(ts) AND (attribute_not_exists(lastUpdate) OR lastUpdate <= :cutoff)",
        {":now": now, ":cutoff": now - min_interval},
        pk=pk,
    )


def digest_set_message(
    state_table: str, storm: str, *, channel: str, ts: str, now: float, shown: int, pk: str = DIGEST_PK
) -> None:
    """Record the posted digest message and the version of the counts it shows."""
    with aws_errors(resource=f"state table {state_table}"):
        client("dynamodb").update_item(
            TableName=state_table,
            Key=to_item({"pk": pk, "sk": storm}),
            UpdateExpression="SET ts = :ts, channel = :channel, lastUpdate = :now, shown = :shown",
            ExpressionAttributeValues=values({":ts": ts, ":channel": channel, ":now": now, ":shown": shown}),
        )


def digest_mark_shown(state_table: str, storm: str, version: int) -> None:
    """The message now shows the counts of ``version`` (never lowered by a slower, older update)."""
    _update_if(
        state_table, storm, "SET shown = :v", "attribute_not_exists(shown) OR shown < :v", {":v": version}
    )


def _update_if(
    state_table: str, storm: str, update: str, condition: str, vals: dict[str, Any], *, pk: str = DIGEST_PK
) -> bool:
    """A conditional update of the storm's digest item; False when the condition did not hold."""
    with aws_errors(resource=f"state table {state_table}"):
        try:
            client("dynamodb").update_item(
                TableName=state_table,
                Key=to_item({"pk": pk, "sk": storm}),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=values(vals),
            )
            return True
        except Exception as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            return False


def digest_get(state_table: str, storm: str, *, pk: str = DIGEST_PK) -> dict[str, Any] | None:
    with aws_errors(resource=f"state table {state_table}"):
        raw = (
            client("dynamodb")
            .get_item(TableName=state_table, Key=to_item({"pk": pk, "sk": storm}), ConsistentRead=True)
            .get("Item")
        )
    return from_item(raw) if raw else None


# -- the alert outbox ------------------------------------------------------------------------------
# Alerts that could not be posted wait here for the next invocation. One invocation at a time flushes it,
# holding a lease (``leaseUntil``/``leaseOwner``) longer than the function's timeout: entries are removed
# one by one as they are posted, so a flush that dies part-way leaves only the unposted ones, and no two
# invocations post the same entry.


def _outbox_key(pk: str = OUTBOX_PK) -> dict[str, Any]:
    # ``pk``: another capability's outbox (the alarm intake keeps its own, ``alarm#outbox``).
    return to_item({"pk": pk, "sk": OUTBOX_SK})


def outbox_get(state_table: str, *, now: float, pk: str = OUTBOX_PK) -> dict[str, Any] | None:
    """The outbox item (None when there is none, or it has expired but DynamoDB has not deleted it yet)."""
    with aws_errors(resource=f"state table {state_table}"):
        raw = (
            client("dynamodb")
            .get_item(TableName=state_table, Key=_outbox_key(pk), ConsistentRead=True)
            .get("Item")
        )
    if not raw:
        return None
    item = from_item(raw)
    expires = item.get("expiresAt")
    return None if expires is not None and int(expires) <= now else item


def outbox_add(state_table: str, entries: Mapping[str, str], *, now: float, pk: str = OUTBOX_PK) -> None:
    """Add (or replace) entries: attribute name -> JSON text. Refreshes the item's TTL."""
    items = sorted(entries.items())
    with aws_errors(resource=f"state table {state_table}"):
        # A few dozen attributes per request keeps the expression well under DynamoDB's 4 KB.
        for start in range(0, len(items), 40):
            chunk = items[start : start + 40]
            client("dynamodb").update_item(
                TableName=state_table,
                Key=_outbox_key(pk),
                UpdateExpression="SET expiresAt = :exp, "
                + ", ".join(f"#n{i} = :v{i}" for i in range(len(chunk))),
                ExpressionAttributeNames={f"#n{i}": name for i, (name, _) in enumerate(chunk)},
                ExpressionAttributeValues=values(
                    {":exp": int(now) + OUTBOX_TTL_SECONDS}
                    | {f":v{i}": text for i, (_, text) in enumerate(chunk)}
                ),
            )


def outbox_add_dropped(state_table: str, count: int, *, since: str, now: float, pk: str = OUTBOX_PK) -> None:
    """Count alerts that were given up (outbox full, or a day old): the next flush reports them."""
    with aws_errors(resource=f"state table {state_table}"):
        client("dynamodb").update_item(
            TableName=state_table,
            Key=_outbox_key(pk),
            UpdateExpression="ADD dropped :n SET droppedSince = if_not_exists(droppedSince, :since), "
            "expiresAt = :exp",
            ExpressionAttributeValues=values(
                {":n": count, ":since": since, ":exp": int(now) + OUTBOX_TTL_SECONDS}
            ),
        )


def outbox_reported_dropped(state_table: str, count: int, *, pk: str = OUTBOX_PK) -> None:
    """``count`` dropped alerts were reported: subtract them (others may have been counted meanwhile)."""
    with aws_errors(resource=f"state table {state_table}"):
        client("dynamodb").update_item(
            TableName=state_table,
            Key=_outbox_key(pk),
            UpdateExpression="SET dropped = dropped - :n REMOVE droppedSince",
            ConditionExpression="dropped >= :n",
            ExpressionAttributeValues=values({":n": count}),
        )


def outbox_take_lease(state_table: str, owner: str, *, now: float, seconds: int, pk: str = OUTBOX_PK) -> bool:
    """Become the one invocation that flushes the outbox, for ``seconds``. False: someone else is."""
    with aws_errors(resource=f"state table {state_table}"):
        try:
            client("dynamodb").update_item(
                TableName=state_table,
                Key=_outbox_key(pk),
                UpdateExpression="SET leaseUntil = :until, leaseOwner = :owner",
                ConditionExpression="attribute_exists(pk) AND "
                "(attribute_not_exists(leaseUntil) OR leaseUntil < :now)",
                ExpressionAttributeValues=values({":until": now + seconds, ":owner": owner, ":now": now}),
            )
            return True
        except Exception as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            return False


def outbox_release_lease(state_table: str, owner: str, *, pk: str = OUTBOX_PK) -> None:
    with aws_errors(resource=f"state table {state_table}"):
        try:
            client("dynamodb").update_item(
                TableName=state_table,
                Key=_outbox_key(pk),
                UpdateExpression="REMOVE leaseUntil, leaseOwner",
                ConditionExpression="leaseOwner = :owner",
                ExpressionAttributeValues=values({":owner": owner}),
            )
        except Exception as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise


def outbox_remove(state_table: str, names: Sequence[str], *, pk: str = OUTBOX_PK) -> None:
    """Remove entries (posted, or given up). Never creates the item."""
    if not names:
        return
    with aws_errors(resource=f"state table {state_table}"):
        for start in range(0, len(names), 40):
            chunk = list(names[start : start + 40])
            try:
                client("dynamodb").update_item(
                    TableName=state_table,
                    Key=_outbox_key(pk),
                    UpdateExpression="REMOVE " + ", ".join(f"#n{i}" for i in range(len(chunk))),
                    ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeNames={f"#n{i}": name for i, name in enumerate(chunk)},
                )
            except Exception as error:
                if error_code(error) != "ConditionalCheckFailedException":
                    raise


# -- listing addresses -----------------------------------------------------------------------------

# What a listing shows of an item (the merge state and history, the bulk of an item, are not transferred;
# a Scan's read capacity is charged on whole items all the same).
_LIST_ATTRIBUTES = (
    "UserId",
    "state",
    "reason",
    "since",
    "sticky",
    "review",
    "updatedAt",
    "notificationType",
    "timestamp",
    "rev",
)


@dataclass(frozen=True)
class AddressScan:
    items: list[dict[str, Any]]
    next_key: str | None  # the address to continue after; None when the table was read to its end
    scanned: int  # items DynamoDB read (and charged for), matching or not
    requests: int


def scan_addresses(
    table: str,
    *,
    state: str | None = None,
    review: bool | None = None,
    changed_since: str | None = None,
    limit: int = 20,
    start_after: str | None = None,
    page_size: int = 500,
    max_requests: int = 10,
) -> AddressScan:
    """Up to ``limit`` items matching the filters, scanning at most ``max_requests`` pages of the table.

    The mailing table has no index by state, so this is a Scan with a filter: DynamoDB reads (and charges
    for) every item it passes, matching or not. ``max_requests`` bounds one call; when it is reached before
    ``limit`` items matched, ``next_key`` says where to go on. ``changed_since`` (ISO, ``…Z``) keeps items
    opsbot changed at or after it (``updatedAt``); rows of the original handler by their ``timestamp``.
    The continuation point is the key of the last item returned, or DynamoDB's LastEvaluatedKey when the
    cap stopped the scan, so nothing is skipped between pages.
    """
    filters: list[str] = []
    names: dict[str, str] = {f"#p{i}": name for i, name in enumerate(_LIST_ATTRIBUTES)}
    expression_values: dict[str, Any] = {}
    if state is not None:
        filters.append("#p1 = :state")
        expression_values[":state"] = state
    if review is not None:
        filters.append("#p5 = :review")
        expression_values[":review"] = review
    if changed_since is not None:
        filters.append("(#p6 >= :since OR (attribute_not_exists(#p6) AND #p8 >= :since))")
        expression_values[":since"] = changed_since
    kwargs: dict[str, Any] = {
        "TableName": table,
        "Limit": page_size,
        "ProjectionExpression": ", ".join(names),
        "ExpressionAttributeNames": names,
    }
    if filters:
        kwargs["FilterExpression"] = " AND ".join(filters)
        kwargs["ExpressionAttributeValues"] = values(expression_values)
    if start_after is not None:
        kwargs["ExclusiveStartKey"] = {"UserId": {"S": start_after}}
    found: list[dict[str, Any]] = []
    scanned = requests = 0
    with aws_errors(resource=f"mailing table {table}"):
        while True:
            page = client("dynamodb").scan(**kwargs)
            requests += 1
            scanned += int(page.get("ScannedCount", 0))
            raws = page.get("Items", [])
            for index, raw in enumerate(raws):
                found.append(from_item(raw))
                if len(found) == limit:
                    more = "LastEvaluatedKey" in page or index < len(raws) - 1
                    return AddressScan(found, str(found[-1]["UserId"]) if more else None, scanned, requests)
            last = page.get("LastEvaluatedKey")
            if last is None:
                return AddressScan(found, None, scanned, requests)
            if requests >= max_requests:
                return AddressScan(found, str(last["UserId"]["S"]), scanned, requests)
            kwargs["ExclusiveStartKey"] = last
