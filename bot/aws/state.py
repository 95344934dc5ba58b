"""The state table: audit records, idempotency locks, rate-limit counters, flags and sync state.

One DynamoDB table (``OPSBOT_STATE_TABLE``, default ``opsbot-state``): partition key ``pk`` (S), sort key
``sk`` (S), TTL attribute ``expiresAt`` (epoch seconds). DynamoDB deletes expired items lazily (up to days
later), so every read here also checks ``expiresAt`` itself.

Key layout (one prefix per kind, so kinds never collide):
    audit#<YYYY-MM-DD>      <ISO time>#<reference>     one record per command or button click
    lock#<key>              lock                       idempotency of mutating actions
    count#<key>             <window start>             rate-limit / guessing counters
    flag#<key>              flag                       short-lived flags (e.g. a tail's stop request)
    sync#<name>             state                      last successful sync of a DNS zone, etc.
    rate#<key>              log                        start times reserved under an account-wide quota
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.aws.clients import client, own_client, own_table
from bot.aws.dynamo import from_item, refused_item, to_item, values
from bot.aws.errors import aws_errors, error_code

STATE_TABLE_DEFINITION: dict[str, Any] = {
    "AttributeDefinitions": [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
    ],
    "KeySchema": [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ],
    "BillingMode": "PAY_PER_REQUEST",
}


def _live(item: dict[str, Any], now: int) -> bool:
    expires = item.get("expiresAt")
    return expires is None or int(expires) > now


@dataclass(frozen=True)
class LockResult:
    acquired: bool
    holder: dict[str, Any]  # the record of whoever holds the lock (ours when acquired)
    # The token the lock item carries while it is ours: ``update_lock`` and ``release_lock`` given it act
    # only on our own lock, never on the one another caller took after ours expired.
    owner: str = ""


@dataclass(frozen=True)
class RateLog:
    """The latest start times reserved under one quota (epoch ms, oldest first) and the item's version."""

    starts: tuple[int, ...] = ()
    version: int = 0  # 0: no item (never written, or expired and deleted)


@dataclass(frozen=True)
class Reservation:
    starts: list[int]  # ours, oldest first
    log: RateLog  # the item as our write left it: the next reservation's first guess
    requests: int = 1  # DynamoDB requests it took (1 unless another container wrote in between)
    contended: list[int] = field(default_factory=list)  # versions found newer than our guess
    # The newest start of a log found too far ahead of ``now_ms`` and overwritten (None: none was).
    discarded: int | None = None


def schedule_starts(
    previous: Sequence[int], wanted: int, *, limit: int, window_ms: int, now_ms: int
) -> list[int]:
    """Start times for ``wanted`` calls, none before ``now_ms``, such that no ``window_ms`` span holds more
    than ``limit`` starts counting ``previous`` (a sliding window, the strict reading of "N a second").

    The earliest possible times: a burst of ``limit`` when the log is quiet, then each start one window
    after the ``limit``-th start before it.
    """
    if limit < 1 or wanted < 0:
        raise ValueError("limit must be at least 1 and wanted not negative")
    history = sorted(previous)[-limit:]
    starts: list[int] = []
    for _ in range(wanted):
        start = now_ms
        if len(history) >= limit:
            start = max(start, history[-limit] + window_ms)
        if history:
            start = max(start, history[-1])  # keeps the log in order
        history.append(start)
        starts.append(start)
    return starts


class StateTable:
    def __init__(self, name: str) -> None:
        self.name = name
        own_table(name)  # in opsbot's own account, whatever account a request is aimed at

    def _errors(self) -> Any:
        return aws_errors(resource=f"state table {self.name}")

    # -- generic -----------------------------------------------------------------------------------
    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        with self._errors():
            raw = (
                own_client("dynamodb")
                .get_item(TableName=self.name, Key=to_item({"pk": pk, "sk": sk}), ConsistentRead=True)
                .get("Item")
            )
        if raw is None:
            return None
        item = from_item(raw)
        return item if _live(item, int(time.time())) else None

    def get_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """Read up to 100 items in one strongly consistent BatchGetItem; missing or expired ones are absent.

        For reads that a request needs together (flags and counters before an activation): one round
        trip instead of one per item.
        """
        wanted = list(dict.fromkeys(keys))  # BatchGetItem rejects a request that names a key twice
        if len(wanted) > 100:
            raise ValueError("BatchGetItem reads at most 100 items")
        found: dict[tuple[str, str], dict[str, Any]] = {}
        request: dict[str, Any] = {
            self.name: {"Keys": [to_item({"pk": pk, "sk": sk}) for pk, sk in wanted], "ConsistentRead": True}
        }
        now = int(time.time())
        with self._errors():
            # DynamoDB may leave keys unprocessed under load: ask again for exactly those.
            while request:
                page = own_client("dynamodb").batch_get_item(RequestItems=request)
                for raw in page.get("Responses", {}).get(self.name, []):
                    item = from_item(raw)
                    if _live(item, now):
                        found[(str(item["pk"]), str(item["sk"]))] = item
                request = page.get("UnprocessedKeys") or {}
        return found

    def put(self, pk: str, sk: str, data: dict[str, Any], *, ttl_seconds: int | None = None) -> None:
        item = {**data, "pk": pk, "sk": sk}
        if ttl_seconds is not None:
            item["expiresAt"] = int(time.time()) + ttl_seconds
        with self._errors():
            own_client("dynamodb").put_item(TableName=self.name, Item=to_item(item))

    def delete(self, pk: str, sk: str) -> None:
        with self._errors():
            own_client("dynamodb").delete_item(TableName=self.name, Key=to_item({"pk": pk, "sk": sk}))

    def query(self, pk: str, *, limit: int = 100, newest_first: bool = True) -> list[dict[str, Any]]:
        now = int(time.time())
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": values({":pk": pk}),
            "ScanIndexForward": not newest_first,
        }
        with self._errors():
            while len(items) < limit:
                page = own_client("dynamodb").query(**kwargs)
                items.extend(i for i in map(from_item, page.get("Items", [])) if _live(i, now))
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return items[:limit]

    # -- audit -------------------------------------------------------------------------------------
    def put_audit(self, record: dict[str, Any], *, ttl_days: int) -> None:
        day = str(record["time"])[:10]
        self.put(f"audit#{day}", f"{record['time']}#{record['ref']}", record, ttl_seconds=ttl_days * 86400)

    def audit_of_day(self, day: str, *, limit: int = 50) -> list[dict[str, Any]]:
        return self.query(f"audit#{day}", limit=limit)

    # -- idempotency -------------------------------------------------------------------------------
    def acquire_lock(
        self, key: str, holder: dict[str, Any], *, ttl_seconds: int, owner: str = ""
    ) -> LockResult:
        """Take ``key`` once: the first caller gets ``acquired=True``; later ones see who holds it.

        A lock whose TTL has passed may be taken again even if DynamoDB has not deleted it yet. ``owner``:
        a token only this caller knows (a new random one when empty), stored in the item and returned in
        the result, for ``update_lock`` and ``release_lock``. A caller that chooses it before the call can
        also release a lock whose ``PutItem`` raised after DynamoDB had written it (a timeout).
        """
        now = int(time.time())
        owner = owner or secrets.token_hex(16)
        item = {**holder, "owner": owner, "pk": f"lock#{key}", "sk": "lock", "expiresAt": now + ttl_seconds}
        with self._errors():
            try:
                own_client("dynamodb").put_item(
                    TableName=self.name,
                    Item=to_item(item),
                    ConditionExpression="attribute_not_exists(pk) OR expiresAt <= :now",
                    ExpressionAttributeValues=values({":now": now}),
                )
                return LockResult(True, item, owner)
            except Exception as error:
                if error_code(error) != "ConditionalCheckFailedException":
                    raise
        return LockResult(False, self.get(f"lock#{key}", "lock") or {})

    def update_lock(
        self, key: str, holder: dict[str, Any], *, ttl_seconds: int, owner: str | None = None
    ) -> bool:
        """Record the outcome on a lock we hold (so a later click can say what happened).

        With ``owner``, only while the lock still carries that token: False (nothing written) when it
        does not, because ours expired and another caller holds it now. Without, unconditionally."""
        if owner is None:
            self.put(f"lock#{key}", "lock", holder, ttl_seconds=ttl_seconds)
            return True
        item = {**holder, "owner": owner, "pk": f"lock#{key}", "sk": "lock"}
        item["expiresAt"] = int(time.time()) + ttl_seconds
        return self._if_owner(owner, "put_item", Item=to_item(item))

    def release_lock(self, key: str, *, owner: str) -> bool:
        """Delete our own lock (``owner``: the token ``acquire_lock`` returned): False (nothing deleted)
        when the item does not carry that token (ours expired and it is another caller's, or gone)."""
        return self._if_owner(owner, "delete_item", Key=to_item({"pk": f"lock#{key}", "sk": "lock"}))

    def _if_owner(self, owner: str, operation: str, **request: Any) -> bool:
        with self._errors():
            try:
                getattr(own_client("dynamodb"), operation)(
                    TableName=self.name,
                    ConditionExpression="#owner = :owner",  # OWNER is a DynamoDB reserved word
                    ExpressionAttributeNames={"#owner": "owner"},
                    ExpressionAttributeValues=values({":owner": owner}),
                    **request,
                )
            except Exception as error:
                if error_code(error) != "ConditionalCheckFailedException":
                    raise
                return False
        return True

    # -- counters ----------------------------------------------------------------------------------
    def increment(self, key: str, *, window_seconds: int, by: int = 1) -> int:
        """Add to the counter of the current fixed window and return its new value."""
        now = int(time.time())
        window = now - now % window_seconds
        with self._errors():
            result = own_client("dynamodb").update_item(
                TableName=self.name,
                Key=to_item({"pk": f"count#{key}", "sk": str(window)}),
                UpdateExpression="ADD #c :by SET expiresAt = if_not_exists(expiresAt, :exp)",
                ExpressionAttributeNames={"#c": "count"},
                ExpressionAttributeValues=values({":by": by, ":exp": window + window_seconds}),
                ReturnValues="UPDATED_NEW",
            )
        return int(from_item(result["Attributes"])["count"])

    def count(self, key: str, *, window_seconds: int) -> int:
        now = int(time.time())
        item = self.get(f"count#{key}", str(now - now % window_seconds))
        return int(item["count"]) if item else 0

    # A limit of "N within W seconds" cannot be read off one fixed window: N events straddling a window
    # boundary would never reach N. These counters keep each window's item for two windows and count the
    # current and the previous one together, so N events within W seconds always reach N (events spread
    # over up to 2W may too: the stricter side, which suits guessing limits).
    def add_recent(
        self, key: str, *, window_seconds: int, now: int | None = None, previous: int | None = None
    ) -> int:
        """Count one event; return the events of the current and the previous window together.

        ``previous``: the previous window's count, when the caller has read it already (``recent_keys``).
        """
        now = int(time.time()) if now is None else now
        start = now - now % window_seconds
        current = int(from_item(self._add_one(key, start, window_seconds, "UPDATED_NEW"))["count"])
        if previous is None:
            previous = self._window_count(key, start - window_seconds, now)
        return current + previous

    def add_only(self, key: str, *, window_seconds: int, now: int | None = None) -> None:
        """Count one event in ``add_recent``'s counter without reading any count back (one request)."""
        now = int(time.time()) if now is None else now
        self._add_one(key, now - now % window_seconds, window_seconds, "NONE")

    def _add_one(self, key: str, start: int, window_seconds: int, returning: str) -> dict[str, Any]:
        with self._errors():
            result = own_client("dynamodb").update_item(
                TableName=self.name,
                Key=to_item({"pk": f"count#{key}", "sk": str(start)}),
                UpdateExpression="ADD #c :one SET expiresAt = if_not_exists(expiresAt, :exp)",
                ExpressionAttributeNames={"#c": "count"},
                ExpressionAttributeValues=values({":one": 1, ":exp": start + 2 * window_seconds}),
                ReturnValues=returning,
            )
        return dict(result.get("Attributes", {}))

    @staticmethod
    def recent_keys(key: str, *, window_seconds: int, now: int) -> tuple[tuple[str, str], tuple[str, str]]:
        """The items (current window, previous window) that ``recent`` reads, for ``get_many``."""
        start = now - now % window_seconds
        return (f"count#{key}", str(start)), (f"count#{key}", str(start - window_seconds))

    @staticmethod
    def count_in(items: dict[tuple[str, str], dict[str, Any]], item_key: tuple[str, str]) -> int:
        item = items.get(item_key)
        return int(item.get("count", 0)) if item else 0

    def recent(self, key: str, *, window_seconds: int, now: int | None = None) -> int:
        now = int(time.time()) if now is None else now
        start = now - now % window_seconds
        return self._window_count(key, start, now) + self._window_count(key, start - window_seconds, now)

    def clear_recent(self, key: str, *, window_seconds: int, now: int | None = None) -> None:
        now = int(time.time()) if now is None else now
        start = now - now % window_seconds
        for window_start in (start, start - window_seconds):
            self.delete(f"count#{key}", str(window_start))

    def _window_count(self, key: str, start: int, now: int) -> int:
        with self._errors():
            raw = (
                own_client("dynamodb")
                .get_item(
                    TableName=self.name,
                    Key=to_item({"pk": f"count#{key}", "sk": str(start)}),
                    ConsistentRead=True,
                )
                .get("Item")
            )
        if not raw:
            return 0
        item = from_item(raw)
        return int(item.get("count", 0)) if _live(item, now) else 0

    # -- account-wide rates -------------------------------------------------------------------------
    def reserve_starts(
        self,
        key: str,
        wanted: int,
        *,
        limit: int,
        window_ms: int,
        now_ms: int,
        guess: RateLog | None = None,
        ttl_seconds: int = 3600,
        attempts: int = 8,
        max_ahead_ms: int | None = None,
        dynamodb: Any = None,
    ) -> Reservation:
        """Reserve ``wanted`` start times under the quota ``key`` shared by every process of the account.

        One item holds the last ``limit`` starts reserved. We write the new log on condition that the item
        is still the version ``guess`` says (the state our last write left): one PutItem when no other
        process wrote since. When one did, the refusal carries the current item
        (``ReturnValuesOnConditionCheckFailure``), so the next attempt is right without a read.

        A log whose newest start is more than ``max_ahead_ms`` after ``now_ms`` is not a queue anyone will
        wait for (a container's clock running fast, a hand edit): scheduling after it would put every
        caller to sleep, and each write would carry it forward and renew its TTL. Such a log is replaced by
        our starts from ``now_ms`` (with the same conditional write) and reported in ``discarded``.
        """
        ddb = dynamodb or own_client("dynamodb")
        log = guess or RateLog()
        pk = f"rate#{key}"
        contended: list[int] = []
        for attempt in range(1, attempts + 1):
            history = log.starts
            discarded = None
            if max_ahead_ms is not None and history and max(history) > now_ms + max_ahead_ms:
                discarded, history = max(history), ()
            starts = schedule_starts(history, wanted, limit=limit, window_ms=window_ms, now_ms=now_ms)
            kept = tuple(sorted((*history, *starts))[-limit:])
            version = log.version + 1
            item = {"pk": pk, "sk": "log", "starts": list(kept), "v": version}
            item["expiresAt"] = now_ms // 1000 + ttl_seconds
            condition: dict[str, Any] = (
                {"ConditionExpression": "v = :v", "ExpressionAttributeValues": values({":v": log.version})}
                if log.version
                else {"ConditionExpression": "attribute_not_exists(pk)"}
            )
            with self._errors():
                try:
                    ddb.put_item(
                        TableName=self.name,
                        Item=to_item(item),
                        ReturnValuesOnConditionCheckFailure="ALL_OLD",
                        **condition,
                    )
                    return Reservation(starts, RateLog(kept, version), attempt, contended, discarded)
                except Exception as error:
                    found = refused_item(error)
                    if found is None:
                        raise
            log = RateLog(tuple(sorted(int(s) for s in found.get("starts", []))), int(found.get("v", 0) or 0))
            contended.append(log.version)
        raise RuntimeError(f"{attempts} attempts to reserve {key} met another writer each time")

    # -- flags and sync state ----------------------------------------------------------------------
    def set_flag(self, key: str, data: dict[str, Any], *, ttl_seconds: int) -> None:
        self.put(*self.flag_item_key(key), data, ttl_seconds=ttl_seconds)

    def get_flag(self, key: str) -> dict[str, Any] | None:
        return self.get(*self.flag_item_key(key))

    @staticmethod
    def flag_item_key(key: str) -> tuple[str, str]:
        """The item of flag ``key``, for ``get_many``; its data is the flag's data."""
        return f"flag#{key}", "flag"

    def put_sync_state(self, name: str, data: dict[str, Any]) -> None:
        self.put(f"sync#{name}", "state", data)

    def put_sync_state_if(self, name: str, data: dict[str, Any], *, field: str, expected: int) -> bool:
        """``put_sync_state`` only while the stored item's ``field`` is still ``expected`` (0: no item, or
        an item without it). False, nothing written, when another writer changed it since it was read."""
        item = {**data, "pk": f"sync#{name}", "sk": "state"}
        condition: dict[str, Any] = (
            {"ConditionExpression": "#f = :v", "ExpressionAttributeValues": values({":v": expected})}
            if expected
            else {"ConditionExpression": "attribute_not_exists(#f)"}
        )
        with self._errors():
            try:
                own_client("dynamodb").put_item(
                    TableName=self.name,
                    Item=to_item(item),
                    ExpressionAttributeNames={"#f": field},
                    **condition,
                )
            except Exception as error:
                if error_code(error) != "ConditionalCheckFailedException":
                    raise
                return False
        return True

    def get_sync_state(self, name: str) -> dict[str, Any] | None:
        return self.get(f"sync#{name}", "state")


def create_table(name: str, definition: dict[str, Any], *, ttl_attribute: str = "") -> None:
    """Create a table and wait for it (the demo and tests; in AWS, SAM creates tables)."""
    ddb = client("dynamodb")
    with aws_errors(resource=f"table {name}"):
        try:
            created = ddb.create_table(TableName=name, **definition)
        except Exception as error:
            if error_code(error) != "ResourceInUseException":
                raise
            return
        # DynamoDB answers CREATING and the table takes seconds; an embedded AWS answers ACTIVE at once,
        # and its demo and tests create a table per run: no DescribeTable round trip for them.
        if created.get("TableDescription", {}).get("TableStatus") != "ACTIVE":
            ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        if ttl_attribute:
            ddb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute}
            )


def create_state_table(name: str) -> None:
    create_table(name, STATE_TABLE_DEFINITION, ttl_attribute="expiresAt")
