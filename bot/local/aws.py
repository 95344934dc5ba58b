"""The embedded AWS: moto's ThreadedMotoServer on 127.0.0.1 and a free port, and this process pointed
at it (``AWS_ENDPOINT_URL``, fake credentials). Nothing leaves the machine."""

from __future__ import annotations

import os
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


def start_embedded_aws(region: str = "us-east-1") -> EmbeddedAws:
    """Start moto's server and point boto3 in this process at it (environment + fresh client cache)."""
    import logging

    from moto.server import ThreadedMotoServer

    # werkzeug raises its own logger to INFO when unset, which would print every moto request.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

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
