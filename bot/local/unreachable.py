"""Endpoints on 127.0.0.1 that fail the ways a network can, for the ack's worst-case tests and bench.

- ``Silent``: accepts connections and never answers (a black hole behind a load balancer, a hung server):
  the client connects, sends, and waits out its read timeout.
- ``Unconnectable``: a listening socket whose accept queue is full, so the kernel drops new SYNs (a
  firewall dropping packets, a VPC without a route): the client waits out its connect timeout.
- ``Refusing``: a bound port nobody listens on: every connection is refused at once.
- ``SlowJson``: answers every request with the same JSON body after ``delay`` seconds (an AWS API that is
  slow but within the client's read timeout).

Each is a context manager; ``url`` is the endpoint to give a client (``AWS_ENDPOINT_URL_<SERVICE>``).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from bot.local.serving import shutdown_now


class _Endpoint:
    url = ""

    def __enter__(self) -> _Endpoint:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError


class Silent(_Endpoint):
    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._held: list[socket.socket] = []
        self._closed = threading.Event()
        threading.Thread(target=self._accept, name="silent-endpoint", daemon=True).start()

    @property
    def connections(self) -> int:
        return len(self._held)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed
                return
            self._held.append(connection)  # kept open and never read: the client waits for an answer

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        for connection in self._held:
            connection.close()


class Unconnectable(_Endpoint):
    def __init__(self) -> None:
        # Linux keeps backlog + 1 connections waiting for accept(); with that one taken and never accepted,
        # the SYNs of every later connection are dropped and connect() waits until its timeout.
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=0)
        address = self._listener.getsockname()
        self.url = f"http://127.0.0.1:{address[1]}"
        self._filler = socket.create_connection(address, timeout=1)

    def close(self) -> None:
        self._filler.close()
        self._listener.close()


class Refusing(_Endpoint):
    def __init__(self) -> None:
        # Bound (so no other process takes the port while the test runs) but not listening: refused.
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def close(self) -> None:
        self._socket.close()


@dataclass
class SlowJson(_Endpoint):
    body: dict[str, Any]
    delay: float
    requests: list[float] = field(default_factory=list)  # when each arrived (time.monotonic())

    def __post_init__(self) -> None:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                endpoint.requests.append(time.monotonic())
                self.rfile.read(int(self.headers.get("content-length") or 0))
                time.sleep(endpoint.delay)
                data = json.dumps(endpoint.body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/x-amz-json-1.1")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: Any) -> None:  # one line per request otherwise
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, name="slow-endpoint", daemon=True).start()

    def close(self) -> None:
        shutdown_now(self._server)
        self._server.server_close()
