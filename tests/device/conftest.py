"""Fixtures for /device: the iotCatalog table and the state table in moto, settings naming both."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot.aws.clients import client
from bot.aws.devices import DEVICE_TABLE_DEFINITION
from bot.aws.dynamo import from_item, to_item
from bot.aws.state import create_table
from bot.config import Settings


@pytest.fixture
def device_settings(state_table: str) -> Settings:
    create_table("iotCatalog", DEVICE_TABLE_DEFINITION)
    return Settings.from_env({"AWS_REGION": "us-east-1", "OPSBOT_STATE_TABLE": state_table})


@pytest.fixture
def raw_item() -> Callable[[str, str], dict[str, Any] | None]:
    """The item exactly as stored (DynamoDB attribute values, so types can be asserted)."""

    def read(serial: str, client_id: str) -> dict[str, Any] | None:
        response = client("dynamodb").get_item(
            TableName="iotCatalog",
            Key=to_item({"serialNumber": serial, "clientId": client_id}),
            ConsistentRead=True,
        )
        item: dict[str, Any] | None = response.get("Item")
        return item

    return read


@pytest.fixture
def put_device() -> Callable[..., dict[str, Any]]:
    """Write an item directly, e.g. in a shape another writer might have used."""

    def put(serial: str, client_id: str, **attributes: Any) -> dict[str, Any]:
        item = {"serialNumber": serial, "clientId": client_id, **attributes}
        client("dynamodb").put_item(TableName="iotCatalog", Item=to_item(item))
        return from_item(to_item(item))

    return put


class Clock:
    """Moves ``time.time`` forward without sleeping (locks and counters read it)."""

    def __init__(self) -> None:
        self.offset = 0.0
        self._real = time.time

    def __call__(self) -> float:
        return self._real() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    fake = Clock()
    monkeypatch.setattr(time, "time", fake)
    yield fake
