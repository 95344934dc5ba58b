"""Two (or eight) concurrent activations with the right code: exactly one wins.

moto does not serialise writes: its backend checks a condition and applies the update in separate Python
steps, with no lock, so two request threads can interleave inside one UpdateItem. Real DynamoDB applies
each conditional write to an item atomically. The ``atomic_items`` fixture restores that guarantee (one
lock around moto's UpdateItem) so these tests exercise our logic, not moto's.

A botocore hook holds every activation's UpdateItem until all threads have sent theirs, which makes the
worst interleaving certain rather than likely. The same harness lets the seed post's read-compare-update
activate the device several times over (``test_the_originals_read_then_update_lets_every_caller_win``),
which shows the harness can tell a race from its absence.
"""

from __future__ import annotations

import os
import threading
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from bot.aws import clients
from bot.aws.clients import client
from bot.aws.devices import DEVICE_TABLE_DEFINITION
from bot.aws.dynamo import to_item
from bot.aws.state import create_state_table, create_table
from bot.config import Settings
from bot.core.device import Reason, activate, register
from tests.support.events import load_event

SERIAL, CLIENT, CODE = "SN-D7F3C8947867", "ID-91B2F06B3F05", "AC-9BE75CD0F1543D44C9AB"
THREADS = 8


@pytest.fixture
def atomic_items(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.Lock()
    original = DynamoDBBackend.update_item

    def serialised(self: Any, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(self, *args, **kwargs)

    monkeypatch.setattr(DynamoDBBackend, "update_item", serialised)


def hold_device_writes_until(parties: int) -> Callable[[], None]:
    """Make every UpdateItem on iotCatalog wait until ``parties`` of them are in flight."""
    barrier = threading.Barrier(parties, timeout=20)

    def wait(params: dict[str, Any], **_: Any) -> None:
        if params.get("TableName") == "iotCatalog":
            barrier.wait()

    events = client("dynamodb").meta.events
    events.register("before-call.dynamodb.UpdateItem", wait)
    return lambda: events.unregister("before-call.dynamodb.UpdateItem", wait)


def race(settings: Settings, attempt: Callable[[int], Any]) -> list[Any]:
    release = hold_device_writes_until(THREADS)
    try:
        with ThreadPoolExecutor(THREADS) as pool:
            return list(pool.map(attempt, range(THREADS)))
    finally:
        release()


def ours(settings: Settings) -> Callable[[int], Any]:
    def attempt(n: int) -> Any:
        return activate(settings, SERIAL, CLIENT, CODE, f"owner{n}@example.com", actor=f"U{n}")

    return attempt


def stored(table: str = "iotCatalog") -> dict[str, Any]:
    item: dict[str, Any] = client("dynamodb").get_item(
        TableName=table, Key=to_item({"serialNumber": SERIAL, "clientId": CLIENT}), ConsistentRead=True
    )["Item"]
    return item


def assert_exactly_one_winner(results: list[Any]) -> None:
    winners = [r for r in results if r.ok]
    assert len(winners) == 1
    assert sorted(r.reason for r in results if not r.ok) == [Reason.ALREADY_ACTIVATED] * (THREADS - 1)
    winner = results.index(winners[0])
    item = stored()
    assert item["email"] == {"S": f"owner{winner}@example.com"}
    assert item["activatedBy"] == {"S": f"U{winner}"}
    assert "activationCode" not in item


def test_concurrent_activations_in_process(device_settings: Settings, atomic_items: None) -> None:
    assert register(device_settings, load_event("device_registration")).ok
    assert_exactly_one_winner(race(device_settings, ours(device_settings)))


def test_the_originals_read_then_update_lets_every_caller_win(
    device_settings: Settings, atomic_items: None
) -> None:
    """The seed post's activation (get, compare in code, unconditional update) under the same harness."""
    assert register(device_settings, load_event("device_registration")).ok
    key = to_item({"serialNumber": SERIAL, "clientId": CLIENT})

    def original(n: int) -> bool:
        ddb = client("dynamodb")
        item = ddb.get_item(TableName="iotCatalog", Key=key)["Item"]
        if item["activationCode"]["S"] != CODE:
            return False
        ddb.update_item(
            TableName="iotCatalog",
            Key=key,
            UpdateExpression="set email = :val1, activated = :val2",
            ExpressionAttributeValues={":val1": {"S": f"owner{n}@example.com"}, ":val2": {"S": "true"}},
        )
        return True

    assert sum(race(device_settings, original)) == THREADS


@pytest.fixture
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto over real HTTP on 127.0.0.1 (no mock_aws): each request runs in its own server thread."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
    clients.clear_caches()
    try:
        yield f"http://{host}:{port}"
    finally:
        clients.clear_caches()
        # The server shares moto's global backends with this process: leave them empty.
        urllib.request.urlopen(urllib.request.Request(f"http://{host}:{port}/moto-api/reset", method="POST"))
        server.stop()


def test_concurrent_activations_over_http(moto_server: str, atomic_items: None) -> None:
    assert os.environ["AWS_ENDPOINT_URL"] == moto_server
    settings = Settings.from_env(
        {"AWS_REGION": "us-east-1", "OPSBOT_STATE_TABLE": "race-state", "OPSBOT_DEVICE_TABLE": "iotCatalog"}
    )
    create_state_table("race-state")
    create_table("iotCatalog", DEVICE_TABLE_DEFINITION)
    assert register(settings, load_event("device_registration")).ok

    assert_exactly_one_winner(race(settings, ours(settings)))
