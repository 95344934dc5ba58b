"""The embedded AWS: moto's server on 127.0.0.1 (a given port, or a free one), and this process pointed
at it (``AWS_ENDPOINT_URL``, fake credentials). Nothing leaves the machine."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.aws import clients
from bot.local.serving import shutdown_now

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


@dataclass
class EmbeddedAws:
    server: Any
    endpoint: str
    region: str = "us-east-1"

    @property
    def port(self) -> int:
        return int(self.endpoint.rsplit(":", 1)[1])

    def stop(self) -> None:
        self.server.stop()


class _MotoServer:
    """moto's werkzeug app served from a thread, like ``moto.server.ThreadedMotoServer``, except that the
    port is bound here, in the caller's thread: a port in use raises ``OSError`` at once (where
    ThreadedMotoServer binds in its thread and leaves ``start()`` waiting forever, and werkzeug's own
    bind would print to stderr and exit the process)."""

    def __init__(self, host: str, port: int) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        app = DomainDispatcherApplication(create_backend_app)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            # As werkzeug and http.server do: a port left in TIME_WAIT by a demo that just ended is free.
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((host, port))
            listener.listen(128)
            self._server = make_server(
                host, port, app, threaded=True, request_handler=MotoRequestHandler, fd=listener.fileno()
            )
        finally:
            listener.close()  # werkzeug holds its own duplicate of the socket
        self._thread = threading.Thread(target=self._server.serve_forever, name="embedded-aws", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def get_host_and_port(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def stop(self) -> None:
        shutdown_now(self._server)
        self._server.server_close()
        self._thread.join(timeout=5)


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


def report_ses_notification_topics() -> None:
    """Make moto's SES answer GetIdentityNotificationAttributes with the topics it was given.

    moto 5 keeps what SetIdentityNotificationTopic sets but leaves BounceTopic/ComplaintTopic/DeliveryTopic
    out of the answer, so every identity would look unwired to `/ops doctor`. SES returns them.
    """
    from moto.ses.models import SESBackend

    original = SESBackend.get_identity_notification_attributes
    if getattr(original, "opsbot_topics", False):
        return

    def with_topics(self: Any, identities: list[str]) -> dict[str, dict[str, Any]]:
        answer = original(self, identities)
        for identity, attributes in answer.items():
            for kind, topic in self.sns_topics.get(identity, {}).items():
                if kind in ("Bounce", "Complaint", "Delivery") and topic:
                    attributes[f"{kind}Topic"] = topic
        return answer

    with_topics.opsbot_topics = True  # type: ignore[attr-defined]
    SESBackend.get_identity_notification_attributes = with_topics  # type: ignore[method-assign]


def start_embedded_aws(region: str = "us-east-1", port: int = 0) -> EmbeddedAws:
    """Start moto's server on 127.0.0.1:``port`` (0: a free port) and point boto3 in this process at it
    (environment + fresh client cache). A port in use raises ``OSError``."""
    import logging

    # werkzeug raises its own logger to INFO when unset, which would print every moto request.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    make_dynamodb_atomic()  # the demo answers Slack and the CLI from several threads at once
    report_ses_notification_topics()
    server = _MotoServer("127.0.0.1", port)
    server.start()
    host, bound = server.get_host_and_port()
    endpoint = f"http://{host}:{bound}"
    os.environ.update(FAKE_CREDENTIALS)
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    os.environ["AWS_REGION"] = region
    os.environ["AWS_DEFAULT_REGION"] = region
    os.environ.pop("AWS_PROFILE", None)
    clients.clear_caches()
    return EmbeddedAws(server, endpoint, region)
