"""The embedded AWS: moto's ThreadedMotoServer on 127.0.0.1 and a free port, and this process pointed
at it (``AWS_ENDPOINT_URL``, fake credentials). Nothing leaves the machine."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.aws import clients

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


@dataclass
class EmbeddedAws:
    server: Any
    endpoint: str

    def stop(self) -> None:
        self.server.stop()


# The DynamoDB requests whose answer depends on an item another request may be changing at that moment.
_ITEM_REQUESTS = ("get_item", "put_item", "update_item", "delete_item", "transact_write_items")
_item_lock = threading.RLock()


def make_dynamodb_atomic() -> Callable[[], None]:
    """Serialise moto's DynamoDB item requests, as DynamoDB applies each to an item atomically.

    moto checks a condition and applies an update in separate steps without a lock, and builds an
    UpdateItem's ``ReturnValues`` from the live item after the update returned, so under concurrent
    writers it lets two conditional writes both pass and hands one caller another's ADD. Locking whole
    requests (response included) restores what real DynamoDB guarantees. Returns the undo.
    """
    from moto.dynamodb.responses import DynamoHandler

    originals = {name: DynamoHandler.__dict__[name] for name in _ITEM_REQUESTS}

    def serialised(original: Callable[..., Any]) -> Callable[..., Any]:
        def request(self: Any) -> Any:
            with _item_lock:
                return original(self)

        request.opsbot_serialised = True  # type: ignore[attr-defined]
        return request

    for name, original in originals.items():
        # Patched already (the demo's server in this process): a second lock around it would change nothing.
        if not getattr(original, "opsbot_serialised", False):
            setattr(DynamoHandler, name, serialised(original))

    def undo() -> None:
        for name, original in originals.items():
            setattr(DynamoHandler, name, original)

    return undo


def start_embedded_aws(region: str = "us-east-1") -> EmbeddedAws:
    """Start moto's server and point boto3 in this process at it (environment + fresh client cache)."""
    import logging

    from moto.server import ThreadedMotoServer

    # werkzeug raises its own logger to INFO when unset, which would print every moto request.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    make_dynamodb_atomic()  # the demo answers Slack and the CLI from several threads at once
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ.update(FAKE_CREDENTIALS)
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    os.environ["AWS_REGION"] = region
    os.environ["AWS_DEFAULT_REGION"] = region
    os.environ.pop("AWS_PROFILE", None)
    clients.clear_caches()
    return EmbeddedAws(server, endpoint)
