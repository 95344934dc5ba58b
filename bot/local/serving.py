"""Stopping the local servers (the local Slack, the embedded AWS, test endpoints) at once."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading


def shutdown_now(server: socketserver.TCPServer) -> None:
    """``server.shutdown()`` without waiting for ``serve_forever``'s next poll (up to its interval): a
    connection wakes the poll at once. The tests start and stop a server for most of their cases."""
    stopping = threading.Thread(target=server.shutdown, name="local-server-shutdown", daemon=True)
    stopping.start()
    host, port = server.server_address[:2]
    address = (str(host), int(port))
    while stopping.is_alive():
        with contextlib.suppress(OSError):  # refused: the server is closing, shutdown() returns
            socket.create_connection(address, timeout=1).close()
        stopping.join(0.01)
