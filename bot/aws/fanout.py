"""The aws-lambda-fanout targets table and the fan-out function's event source mappings.

The table is read and written exactly as the project's bash CLI does (``cli/targets.sh``): keys
``sourceArn`` + ``id``; ``register`` puts ``type``, ``destination``, ``active`` (BOOL, default false) and
``collapse`` (S, default "none"), adds ``role`` (and ``externalId`` only with a role) and ``region`` when
given, and the BOOL flags ``parallel``, ``convertDDB``, ``deaggregate``, ``appendNewlines`` only when given;
``update``/``activate``/``deactivate`` are UpdateItems conditional on ``attribute_exists(id)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.aws.clients import client
from bot.aws.dynamo import from_item, to_item, values
from bot.aws.errors import aws_errors, error_code

FANOUT_TABLE_DEFINITION: dict[str, Any] = {
    "AttributeDefinitions": [
        {"AttributeName": "sourceArn", "AttributeType": "S"},
        {"AttributeName": "id", "AttributeType": "S"},
    ],
    "KeySchema": [
        {"AttributeName": "sourceArn", "KeyType": "HASH"},
        {"AttributeName": "id", "KeyType": "RANGE"},
    ],
    "BillingMode": "PAY_PER_REQUEST",
}


@dataclass(frozen=True)
class TableRead:
    items: list[dict[str, Any]]
    pages: int


def scan_targets(table: str, *, page_size: int | None = None) -> TableRead:
    """Every item of the table, following LastEvaluatedKey to the last page.

    (The fan-out function itself looks for ``ExclusiveStartKey`` in the response, which DynamoDB never
    returns, so it only ever reads the first page; we must not.)
    """
    items: list[dict[str, Any]] = []
    pages = 0
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    if page_size:
        kwargs["Limit"] = page_size
    with aws_errors(resource=f"fan-out table {table}"):
        for page in client("dynamodb").get_paginator("scan").paginate(**kwargs):
            pages += 1
            items.extend(from_item(raw) for raw in page.get("Items", []))
    return TableRead(items, pages)


def get_target(table: str, source_arn: str, target_id: str) -> dict[str, Any] | None:
    with aws_errors(resource=f"fan-out table {table}"):
        raw = (
            client("dynamodb")
            .get_item(
                TableName=table, Key=to_item({"sourceArn": source_arn, "id": target_id}), ConsistentRead=True
            )
            .get("Item")
        )
    return from_item(raw) if raw else None


@dataclass(frozen=True)
class ActiveChange:
    found: bool  # False: no such item (the condition failed, nothing was written)
    previous: Any  # the stored ``active`` before the change (None when absent)


def set_active(table: str, source_arn: str, target_id: str, active: bool) -> ActiveChange:
    """``fanout activate|deactivate``: SET active, only if the item exists (``attribute_exists(id)``)."""
    ddb = client("dynamodb")
    with aws_errors(resource=f"fan-out table {table}"):
        try:
            response = ddb.update_item(
                TableName=table,
                Key=to_item({"sourceArn": source_arn, "id": target_id}),
                UpdateExpression="SET #active = :active",
                ConditionExpression="attribute_exists(id)",
                ExpressionAttributeNames={"#active": "active"},
                ExpressionAttributeValues=values({":active": active}),
                ReturnValues="ALL_OLD",  # moto omits unchanged attributes from UPDATED_OLD
            )
        except Exception as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return ActiveChange(False, None)
            raise
    return ActiveChange(True, from_item(response.get("Attributes", {})).get("active"))


def register_like_cli(
    table: str,
    *,
    source_arn: str,
    target_id: str,
    target_type: str,
    destination: str,
    active: bool | None = None,
    collapse: str | None = None,
    role: str | None = None,
    external_id: str | None = None,
    region: str | None = None,
    parallel: bool | None = None,
    convert_ddb: bool | None = None,
    deaggregate: bool | None = None,
    append_newlines: bool | None = None,
) -> dict[str, Any]:
    """Put an item the way ``./fanout register <type>`` does (an unconditional PutItem).

    ``active`` defaults to false and ``collapse`` to "none"; every other optional attribute is written
    only when given, and ``externalId`` only together with ``role``. Used by the demo and the tests.
    """
    item: dict[str, Any] = {
        "sourceArn": source_arn,
        "id": target_id,
        "type": target_type,
        "destination": destination,
    }
    if role:
        item["role"] = role
        if external_id:
            item["externalId"] = external_id
    if region:
        item["region"] = region
    item["active"] = bool(active) if active is not None else False
    item["collapse"] = collapse or "none"
    for name, flag in (
        ("parallel", parallel),
        ("convertDDB", convert_ddb),
        ("deaggregate", deaggregate),
        ("appendNewlines", append_newlines),
    ):
        if flag is not None:
            item[name] = flag
    with aws_errors(resource=f"fan-out table {table}"):
        client("dynamodb").put_item(TableName=table, Item=to_item(item))
    return item


def list_hooks(function: str) -> list[dict[str, Any]]:
    """Every event source mapping of the fan-out function (all pages)."""
    mappings: list[dict[str, Any]] = []
    with aws_errors(resource=f"function {function}"):
        paginator = client("lambda").get_paginator("list_event_source_mappings")
        for page in paginator.paginate(FunctionName=function):
            mappings.extend(page.get("EventSourceMappings", []))
    return mappings


def first_page_as_the_function_reads_it(table: str, source_arn: str) -> tuple[set[str], bool]:
    """The ids the fan-out function loads for a source, and whether more pages exist.

    Its query (lib/configuration.js) filters on ``active = true`` and, looking for ``ExclusiveStartKey``
    instead of ``LastEvaluatedKey`` in the response, never asks for a second page.
    """
    with aws_errors(resource=f"fan-out table {table}"):
        page = client("dynamodb").query(
            TableName=table,
            Select="ALL_ATTRIBUTES",
            KeyConditionExpression="sourceArn = :sourceArn",
            FilterExpression="active = :active",
            ExpressionAttributeValues=values({":active": True, ":sourceArn": source_arn}),
        )
    ids = {str(from_item(item).get("id")) for item in page.get("Items", [])}
    return ids, "LastEvaluatedKey" in page
