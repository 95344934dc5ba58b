"""DynamoDB attribute-value conversion for the low-level client.

We use the client rather than boto3's Table resource everywhere: clients are thread-safe (lazy listeners
run in threads locally), resources are not. Numbers come back as int or float, never Decimal.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

from bot.aws.clients import client
from bot.aws.errors import aws_errors, error_code

_serializer: Any = None
_deserializer: Any = None


def _codecs() -> tuple[Any, Any]:
    global _serializer, _deserializer
    if _serializer is None:
        from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

        _serializer, _deserializer = TypeSerializer(), TypeDeserializer()
    return _serializer, _deserializer


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, Mapping):
        return {k: _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    if isinstance(value, set):
        return {_from_dynamo(v) for v in value}
    return value


def to_item(data: Mapping[str, Any]) -> dict[str, Any]:
    """Plain Python values -> DynamoDB attribute values (``{"S": ...}``)."""
    serializer, _ = _codecs()
    return {k: serializer.serialize(_to_dynamo(v)) for k, v in data.items()}


def to_value(value: Any) -> dict[str, Any]:
    serializer, _ = _codecs()
    return dict(serializer.serialize(_to_dynamo(value)))


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB attribute values -> plain Python values (Decimal -> int/float)."""
    _, deserializer = _codecs()
    return {k: _from_dynamo(deserializer.deserialize(v)) for k, v in item.items()}


def refused_item(error: BaseException) -> dict[str, Any] | None:
    """For a write its condition refused: the item as it was (``{}`` when there was none; the request
    asked for ``ReturnValuesOnConditionCheckFailure=ALL_OLD``). None for any other error."""
    if error_code(error) != "ConditionalCheckFailedException":
        return None
    stored = getattr(error, "response", {}).get("Item")
    return from_item(stored) if stored else {}


def values(data: Mapping[str, Any]) -> dict[str, Any]:
    """ExpressionAttributeValues from ``{":name": value}``."""
    return {k: to_value(v) for k, v in data.items()}


def scan_all(table: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every item of a scan, following LastEvaluatedKey through all pages."""
    ddb = client("dynamodb")
    with aws_errors(resource=f"table {table}"):
        for page in ddb.get_paginator("scan").paginate(TableName=table, **kwargs):
            for item in page.get("Items", []):
                yield from_item(item)


def query_all(table: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    ddb = client("dynamodb")
    with aws_errors(resource=f"table {table}"):
        for page in ddb.get_paginator("query").paginate(TableName=table, **kwargs):
            for item in page.get("Items", []):
                yield from_item(item)
