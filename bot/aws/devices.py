"""The IoT device catalog (``iotCatalog``) in DynamoDB, as the seed post's functions write it.

Partition key ``serialNumber`` (S), sort key ``clientId`` (S); ``activated`` is the string "true"/"false"
(a boolean is accepted when read); ``email`` is "not@registered.yet" until activation.

Activation codes travel through this module, so two rules hold here:
- no function returns an item with its ``activationCode`` (``_without_code`` strips it), and
- every request on the table runs with botocore's and urllib3's wire logging muted (``_call``): at DEBUG
  level botocore logs request and response bodies, which would put codes in the log.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bot.aws.clients import client
from bot.aws.dynamo import from_item, refused_item, to_item, values
from bot.aws.errors import aws_errors, error_code
from bot.errors import AwsError

CODE_ATTRIBUTE = "activationCode"
UNREGISTERED_EMAIL = "not@registered.yet"

DEVICE_TABLE_DEFINITION: dict[str, Any] = {
    "AttributeDefinitions": [
        {"AttributeName": "serialNumber", "AttributeType": "S"},
        {"AttributeName": "clientId", "AttributeType": "S"},
    ],
    "KeySchema": [
        {"AttributeName": "serialNumber", "KeyType": "HASH"},
        {"AttributeName": "clientId", "KeyType": "RANGE"},
    ],
    "BillingMode": "PAY_PER_REQUEST",
}

# Every way an item can say "activated": the original writes the string "true"; other writers (or a
# hand edit) may store a boolean or capitalise it. Condition expressions must treat all of them alike.
_ACTIVATED_VALUES: dict[str, Any] = {":act1": "true", ":act2": "True", ":act3": "TRUE", ":actb": True}
_IS_ACTIVATED = "activated IN (:act1, :act2, :act3, :actb)"

_WIRE_LOGGERS = ("botocore", "boto3", "urllib3")
_mute_lock = threading.Lock()
_mute_depth = 0
_saved_levels: dict[str, int] = {}


@contextmanager
def _wire_logging_muted() -> Iterator[None]:
    """Keep request bodies (which hold a code) out of DEBUG logs for the duration of the block.

    Reference-counted so that concurrent activations in threads restore the levels only when the last
    one leaves.
    """
    global _mute_depth
    with _mute_lock:
        if _mute_depth == 0:
            for name in _WIRE_LOGGERS:
                logger = logging.getLogger(name)
                _saved_levels[name] = logger.level
                if logger.getEffectiveLevel() < logging.INFO:
                    logger.setLevel(logging.INFO)
        _mute_depth += 1
    try:
        yield
    finally:
        with _mute_lock:
            _mute_depth -= 1
            if _mute_depth == 0:
                for name, level in _saved_levels.items():
                    logging.getLogger(name).setLevel(level)
                _saved_levels.clear()


def _without_code(item: Mapping[str, Any]) -> dict[str, Any]:
    plain = from_item(item)
    plain.pop(CODE_ATTRIBUTE, None)
    return plain


def _key(serial: str, client_id: str) -> dict[str, Any]:
    return to_item({"serialNumber": serial, "clientId": client_id})


@contextmanager
def _call(table: str) -> Iterator[None]:
    """Every request on the catalog: muted wire logging (responses hold codes too), errors translated."""
    with _wire_logging_muted(), aws_errors(resource=f"device table {table}"):
        yield


@dataclass(frozen=True)
class Attempt:
    """What a conditional activation found. Never carries the stored code."""

    succeeded: bool
    exists: bool
    activated: bool


# -- registration ----------------------------------------------------------------------------------


RESET_ATTRIBUTES = ("deactivatedAt", "deactivatedBy")


def put_registration(table: str, item: Mapping[str, Any]) -> tuple[bool, dict[str, Any] | None]:
    """Write a registration unless an activated device already has this key.

    Returns (written, previous item without its code). ``written`` is False only when the device exists
    and is activated: an activated device is never overwritten.

    A device an operator reset (``/device deactivate``: ``deactivatedAt``) keeps the code the reset
    issued and the record of the reset: the device republishing its registration (after a reboot, say)
    must not bring back the code the reset revoked. That write is a PutItem conditional on the stored code
    being still the one read, so a concurrent activation or reset is never overwritten either.
    """
    for _ in range(3):
        with _call(table):
            try:
                response = client("dynamodb").put_item(
                    TableName=table,
                    Item=to_item(item),
                    ConditionExpression=(
                        f"attribute_not_exists(serialNumber) OR (NOT ({_IS_ACTIVATED}) "
                        "AND attribute_not_exists(deactivatedAt))"
                    ),
                    ExpressionAttributeValues=values(_ACTIVATED_VALUES),
                    ReturnValues="ALL_OLD",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                old = response.get("Attributes")
                return True, (_without_code(old) if old else None)
            except Exception as error:
                previous = refused_item(error)
                if previous is None:
                    raise
        if not previous:
            continue  # deleted meanwhile: write it afresh
        if is_activated(previous.get("activated")):
            return False, None
        kept = {name: previous[name] for name in (CODE_ATTRIBUTE, *RESET_ATTRIBUTES) if name in previous}
        with _call(table):
            try:
                client("dynamodb").put_item(
                    TableName=table,
                    Item=to_item({**item, **kept}),
                    ConditionExpression=f"{CODE_ATTRIBUTE} = :code AND NOT ({_IS_ACTIVATED})",
                    ExpressionAttributeValues=values(
                        {**_ACTIVATED_VALUES, ":code": previous.get(CODE_ATTRIBUTE, "")}
                    ),
                )
                return True, {k: v for k, v in previous.items() if k != CODE_ATTRIBUTE}
            except Exception as error:
                if error_code(error) != "ConditionalCheckFailedException":
                    raise
    raise AwsError(
        f"The registration of {item.get('serialNumber')} kept meeting concurrent changes; it was not stored.",
        code="Conflict",
        hint="The device's next registration will be stored.",
    )


# -- activation ------------------------------------------------------------------------------------


def try_activate(
    table: str, serial: str, client_id: str, *, code: str, email: str, actor: str, at: str
) -> Attempt:
    """One conditional UpdateItem: exists AND code matches AND not activated -> activated, code consumed.

    On failure DynamoDB returns the item as it was (ReturnValuesOnConditionCheckFailure=ALL_OLD), which
    tells an unknown device from a wrong code from an already activated device without a second read
    that could race with another writer.
    """
    ddb = client("dynamodb")
    with _call(table):
        try:
            ddb.update_item(
                TableName=table,
                Key=_key(serial, client_id),
                UpdateExpression="SET email = :email, activated = :yes, activatedAt = :at, activatedBy = :by "
                f"REMOVE {CODE_ATTRIBUTE}",
                ConditionExpression=(
                    f"attribute_exists(serialNumber) AND {CODE_ATTRIBUTE} = :code AND NOT ({_IS_ACTIVATED})"
                ),
                ExpressionAttributeValues=values(
                    {
                        ":email": email,
                        ":yes": "true",
                        ":at": at,
                        ":by": actor,
                        ":code": code,
                        **_ACTIVATED_VALUES,
                    }
                ),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ddb.exceptions.ConditionalCheckFailedException as error:
            old = error.response.get("Item")
            if not old:
                return Attempt(False, exists=False, activated=False)
            return Attempt(False, exists=True, activated=is_activated(from_item(old).get("activated")))
    return Attempt(True, exists=True, activated=True)


def reset_activation(
    table: str, serial: str, client_id: str, *, new_code: str, actor: str, at: str
) -> dict[str, Any] | None:
    """Deactivate: ``activated`` = "false", placeholder e-mail, a new code. None when the device is unknown.

    Returns the item as it was before, without its code.
    """
    ddb = client("dynamodb")
    with _call(table):
        try:
            response = ddb.update_item(
                TableName=table,
                Key=_key(serial, client_id),
                UpdateExpression=f"SET activated = :no, email = :placeholder, {CODE_ATTRIBUTE} = :code, "
                "deactivatedAt = :at, deactivatedBy = :by REMOVE activatedAt, activatedBy",
                ConditionExpression="attribute_exists(serialNumber)",
                ExpressionAttributeValues=values(
                    {
                        ":no": "false",
                        ":placeholder": UNREGISTERED_EMAIL,
                        ":code": new_code,
                        ":at": at,
                        ":by": actor,
                    }
                ),
                ReturnValues="ALL_OLD",
            )
        except ddb.exceptions.ConditionalCheckFailedException:
            return None
    return _without_code(response.get("Attributes", {}))


# -- reading ---------------------------------------------------------------------------------------


def get_device(table: str, serial: str, client_id: str) -> tuple[dict[str, Any], bool] | None:
    """(item without its code, whether it still holds an unused code), or None."""
    with _call(table):
        raw = (
            client("dynamodb")
            .get_item(TableName=table, Key=_key(serial, client_id), ConsistentRead=True)
            .get("Item")
        )
    if raw is None:
        return None
    return _without_code(raw), CODE_ATTRIBUTE in raw


def devices_of_serial(table: str, serial: str, *, limit: int = 100) -> list[tuple[dict[str, Any], bool]]:
    """Every client id registered under one serial number (a hub and its clients), up to ``limit``."""
    found: list[tuple[dict[str, Any], bool]] = []
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "serialNumber = :s",
        "ExpressionAttributeValues": values({":s": serial}),
        "ConsistentRead": True,
    }
    with _call(table):
        while len(found) < limit:
            page = client("dynamodb").query(**kwargs)
            found.extend((_without_code(raw), CODE_ATTRIBUTE in raw) for raw in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return found[:limit]


@dataclass(frozen=True)
class ScanPage:
    items: list[tuple[dict[str, Any], bool]]  # (item without code, holds an unused code)
    next_key: tuple[str, str] | None  # (serialNumber, clientId) to continue after, None at the end
    requests: int
    # The scan stopped at ``max_requests`` pages before ``limit`` devices matched: ``next_key`` goes on.
    partial: bool = False


def scan_devices(
    table: str,
    *,
    device_type: str | None = None,
    activated: bool | None = None,
    limit: int = 20,
    start_after: tuple[str, str] | None = None,
    page_size: int = 200,
    max_requests: int = 10,
) -> ScanPage:
    """Up to ``limit`` matching devices, following DynamoDB's pages until enough are found, at most
    ``max_requests`` pages per call.

    The catalog has no index by type or activation, so a selective filter reads (and DynamoDB charges for)
    every item it passes: the cap keeps one call, and one Slack answer, bounded on a big catalog; the page
    then says it is partial. The continuation point is the key of the last item returned (not DynamoDB's
    LastEvaluatedKey, which may lie beyond items we did not return), or LastEvaluatedKey when the cap
    stopped the scan, so no device is skipped between pages.
    """
    filters: list[str] = []
    names: dict[str, str] = {}
    expression_values: dict[str, Any] = {}
    if device_type is not None:
        filters.append("#type = :type")
        names["#type"] = "type"
        expression_values[":type"] = device_type
    if activated is not None:
        filters.append(_IS_ACTIVATED if activated else f"NOT ({_IS_ACTIVATED})")
        expression_values.update(_ACTIVATED_VALUES)
    kwargs: dict[str, Any] = {"TableName": table, "Limit": page_size}
    if filters:
        kwargs["FilterExpression"] = " AND ".join(filters)
        kwargs["ExpressionAttributeValues"] = values(expression_values)
    if names:
        kwargs["ExpressionAttributeNames"] = names
    if start_after is not None:
        kwargs["ExclusiveStartKey"] = _key(*start_after)

    found: list[tuple[dict[str, Any], bool]] = []
    requests = 0
    with _call(table):
        while True:
            page = client("dynamodb").scan(**kwargs)
            requests += 1
            for raw in page.get("Items", []):
                found.append((_without_code(raw), CODE_ATTRIBUTE in raw))
                if len(found) == limit:
                    last = found[-1][0]
                    more = "LastEvaluatedKey" in page or raw is not page["Items"][-1]
                    next_key = (str(last["serialNumber"]), str(last["clientId"])) if more else None
                    return ScanPage(found, next_key, requests)
            if "LastEvaluatedKey" not in page:
                return ScanPage(found, None, requests)
            last_key = page["LastEvaluatedKey"]
            if requests >= max_requests:
                resume = (str(last_key["serialNumber"]["S"]), str(last_key["clientId"]["S"]))
                return ScanPage(found, resume, requests, partial=True)
            kwargs["ExclusiveStartKey"] = last_key


def is_activated(value: Any) -> bool:
    """``activated`` as the original writes it ("true"/"false") or as a boolean."""
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.strip().lower() == "true"
