"""Two (or eight) concurrent activations with the right code: exactly one wins.

moto does not serialise writes: its backend checks a condition and applies the update in separate Python
steps, with no lock, so two request threads can interleave inside one UpdateItem. Real DynamoDB applies
each conditional write to an item atomically. The ``atomic_dynamodb`` fixture restores that guarantee (one
lock around each of moto's item requests, its answer included) so these tests exercise our logic, not moto's.

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
from bot.core.device.commands import GuessingLimits, Reason, activate, register
from tests.support.events import load_event

SERIAL, CLIENT, CODE = "SN-D7F3C8947867", "ID-91B2F06B3F05", "AC-9BE75CD0F1543D44C9AB"
THREADS = 8


# The hook point where a request's parameters are still the API's (``before-call`` sees the serialized
# HTTP request, where ``TableName`` is buried in the body); it runs just before the request is sent.
UPDATE_ITEM = "before-parameter-build.dynamodb.UpdateItem"


def hold_device_writes_until(parties: int) -> Callable[[], None]:
    """Make every UpdateItem on iotCatalog wait until ``parties`` of them are in flight."""
    barrier = threading.Barrier(parties, timeout=20)

    def wait(params: dict[str, Any], **_: Any) -> None:
        if params.get("TableName") == "iotCatalog":
            barrier.wait()

    events = client("dynamodb").meta.events
    events.register(UPDATE_ITEM, wait)
    return lambda: events.unregister(UPDATE_ITEM, wait)


def race(settings: Settings, attempt: Callable[[int], Any]) -> list[Any]:
    release = hold_device_writes_until(THREADS)
    try:
        with ThreadPoolExecutor(THREADS) as pool:
            return list(pool.map(attempt, range(THREADS)))
    finally:
        release()


def ours(settings: Settings) -> Callable[[int], Any]:
    # More attempts at once than the guessing limit allows would be refused before the UpdateItem.
    limits = GuessingLimits(device_failures=THREADS)

    def attempt(n: int) -> Any:
        return activate(settings, SERIAL, CLIENT, CODE, f"owner{n}@example.com", actor=f"U{n}", limits=limits)

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


def test_concurrent_activations_in_process(device_settings: Settings, atomic_dynamodb: None) -> None:
    assert register(device_settings, load_event("device_registration")).ok
    assert_exactly_one_winner(race(device_settings, ours(device_settings)))


def test_a_read_then_update_lets_every_caller_win_under_the_harness(
    device_settings: Settings, atomic_dynamodb: None
) -> None:
    """The control: the seed post's read-compare-update, even with the checks it lacks added in code
    (code matches AND not yet activated), lets one caller win when run one after another and every
    caller win under the harness. So the harness does produce the race that ours must survive."""
    key = to_item({"serialNumber": SERIAL, "clientId": CLIENT})

    def read_then_update(n: int) -> bool:
        ddb = client("dynamodb")
        item = ddb.get_item(TableName="iotCatalog", Key=key, ConsistentRead=True)["Item"]
        if item["activationCode"]["S"] != CODE or item["activated"]["S"] == "true":
            return False
        ddb.update_item(
            TableName="iotCatalog",
            Key=key,
            UpdateExpression="set email = :val1, activated = :val2",
            ExpressionAttributeValues={":val1": {"S": f"owner{n}@example.com"}, ":val2": {"S": "true"}},
        )
        return True

    assert register(device_settings, load_event("device_registration")).ok
    assert sum(read_then_update(n) for n in range(THREADS)) == 1
    assert register(device_settings, load_event("device_registration")).ok is False  # activated now
    client("dynamodb").delete_item(TableName="iotCatalog", Key=key)
    assert register(device_settings, load_event("device_registration")).ok
    assert sum(race(device_settings, read_then_update)) == THREADS


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


def test_concurrent_activations_over_http(moto_server: str, atomic_dynamodb: None) -> None:
    assert os.environ["AWS_ENDPOINT_URL"] == moto_server
    settings = Settings.from_env(
        {"AWS_REGION": "us-east-1", "OPSBOT_STATE_TABLE": "race-state", "OPSBOT_DEVICE_TABLE": "iotCatalog"}
    )
    create_state_table("race-state")
    create_table("iotCatalog", DEVICE_TABLE_DEFINITION)
    assert register(settings, load_event("device_registration")).ok

    assert_exactly_one_winner(race(settings, ours(settings)))


# -- guessing limits under concurrency ---------------------------------------------------------------

WRONG = "AC-BADBADBADBADBADBAD0"
GUESSERS = 12


def hold_until_all_passed_the_lock_checks(parties: int) -> Callable[[], None]:
    """Hold each attempt at its first write to a user's counter until ``parties`` attempts are there.

    Every attempt has read the lock flags by then (no lock is set yet), so all of them would be let
    through by a check of the flags alone; whether the counting lets more than the limit reach the
    catalog is then decided by the counting itself.
    """
    barrier = threading.Barrier(parties, timeout=20)
    seen = threading.local()

    def wait(params: dict[str, Any], **_: Any) -> None:
        key = params.get("Key", {}).get("pk", {}).get("S", "")
        if key.startswith("count#device-user#") and not getattr(seen, "done", False):
            seen.done = True
            barrier.wait()

    events = client("dynamodb").meta.events
    events.register(UPDATE_ITEM, wait)
    return lambda: events.unregister(UPDATE_ITEM, wait)


def catalog_updates() -> Callable[[], int]:
    count = [0]
    lock = threading.Lock()

    def seen(params: dict[str, Any], **_: Any) -> None:
        if params.get("TableName") == "iotCatalog":
            with lock:
                count[0] += 1

    client("dynamodb").meta.events.register(UPDATE_ITEM, seen)
    return lambda: count[0]


def guess_at_once(attempt: Callable[[int], Any]) -> list[Any]:
    release = hold_until_all_passed_the_lock_checks(GUESSERS)
    try:
        with ThreadPoolExecutor(GUESSERS) as pool:
            return list(pool.map(attempt, range(GUESSERS)))
    finally:
        release()


def test_parallel_wrong_codes_cannot_outrun_the_device_limit(
    device_settings: Settings, atomic_dynamodb: None
) -> None:
    assert register(device_settings, load_event("device_registration")).ok
    updates = catalog_updates()

    results = guess_at_once(
        lambda n: activate(device_settings, SERIAL, CLIENT, WRONG, "a@example.com", actor=f"U{n}")
    )

    assert updates() == 5  # only five guesses reached the catalog
    reasons = sorted(r.reason.value for r in results)
    assert reasons == ["locked"] * (GUESSERS - 5) + ["wrong_code"] * 5
    assert sorted(r.attempts_left for r in results if r.reason is Reason.WRONG_CODE) == [0, 1, 2, 3, 4]
    # The fifth wrong code locked the device: even the right code now waits.
    late = activate(device_settings, SERIAL, CLIENT, CODE, "owner@example.com", actor="ULATE")
    assert late.reason is Reason.LOCKED and late.retry_after > 800


def test_parallel_guesses_on_many_devices_cannot_outrun_the_user_limit(
    device_settings: Settings, atomic_dynamodb: None
) -> None:
    limits = GuessingLimits(user_failures=3)
    devices = [(f"SN-{n:012X}", f"ID-{n:012X}") for n in range(GUESSERS)]
    for serial, client_id in devices:
        payload = {**load_event("device_registration"), "serialNumber": serial, "clientId": client_id}
        assert register(device_settings, payload).ok
    updates = catalog_updates()

    def attempt(n: int) -> Any:
        serial, client_id = devices[n]
        return activate(
            device_settings, serial, client_id, WRONG, "a@example.com", actor="UGUESS", limits=limits
        )

    results = guess_at_once(attempt)

    assert updates() == 3
    assert sorted(r.reason.value for r in results) == ["locked"] * (GUESSERS - 3) + ["wrong_code"] * 3
    serial, client_id = devices[0]
    later = activate(device_settings, serial, client_id, CODE, "a@example.com", actor="UGUESS", limits=limits)
    assert later.reason is Reason.LOCKED and "from you" in later.message
