"""Serve the Bolt app over HTTP (``opsbot serve``, and the demo console's target).

A small threaded server: POST /slack/events -> Bolt; GET /health. Lazy listeners run in threads
(``TrackingLazyRunner``), which also lets the console wait until a command's work has finished.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from slack_bolt.lazy_listener.thread_runner import ThreadLazyListenerRunner
from slack_bolt.request import BoltRequest

logger = logging.getLogger("opsbot.server")

# Slack's payloads are a few kilobytes; anything much larger is not from Slack.
MAX_BODY_BYTES = 1024 * 1024


# The demo console marks each request it sends with a ticket, so that it can wait for the work of one
# command (a lookup's reply) without waiting for another's (a tail running in the background).
TICKET_HEADER = "x-opsbot-console-ticket"


class TrackingLazyRunner(ThreadLazyListenerRunner):
    """Bolt's thread lazy runner, counting the lazy functions still running (the console waits on it).

    ``daemon=True`` (the demo) runs each lazy function in a daemon thread of its own instead of the pool:
    work still running when the console quits (a tail told to stop, a slow lookup) cannot keep the
    process alive, where the pool's threads are joined at interpreter exit."""

    def __init__(
        self, logger_: logging.Logger, executor: Executor | None = None, *, daemon: bool = False
    ) -> None:
        super().__init__(logger_, executor or ThreadPoolExecutor(max_workers=8, thread_name_prefix="lazy"))
        self.daemon = daemon
        self.running = 0
        self.by_ticket: Counter[str] = Counter()
        self._idle = threading.Condition()
        # Cleared while a caller shows the ack's message, so that lazy replies never overtake it
        # (in Slack the ack travels back before a Lambda re-invocation could answer).
        self.gate = threading.Event()
        self.gate.set()

    @staticmethod
    def ticket_of(request: Any) -> str:
        headers = getattr(request, "headers", None) or {}
        value = headers.get(TICKET_HEADER) or ""
        return str(value[0] if isinstance(value, (list, tuple)) and value else value)

    def start(self, function: Callable[..., None], request: Any) -> None:
        ticket = self.ticket_of(request)
        with self._idle:
            self.running += 1
            self.by_ticket[ticket] += 1

        # Lazy work runs in a copy of its request's context (the log fields of bot.observability), as it
        # does on Lambda, where the re-invocation dispatches it in the thread that verified it.
        context = contextvars.copy_context()

        def run() -> None:
            try:
                self.gate.wait(timeout=10)
                context.run(self.run, function, request)
            except Exception:
                self.logger.exception("lazy listener failed")
            finally:
                with self._idle:
                    self.running -= 1
                    self.by_ticket[ticket] -= 1
                    if self.by_ticket[ticket] <= 0:
                        del self.by_ticket[ticket]
                    self._idle.notify_all()

        if self.daemon:
            threading.Thread(target=run, name="lazy", daemon=True).start()
        else:
            self.executor.submit(run)

    def hold(self) -> None:
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()

    def wait_idle(self, timeout: float, *, ticket: str | None = None) -> bool:
        """True once no lazy work is running (only that of ``ticket`` if given); False if ``timeout``
        seconds passed first."""
        with self._idle:
            if ticket is None:
                return self._idle.wait_for(lambda: self.running == 0, timeout=timeout)
            return self._idle.wait_for(lambda: ticket not in self.by_ticket, timeout=timeout)


def make_server(
    app: Any, host: str = "127.0.0.1", port: int = 0, path: str = "/slack/events"
) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            logger.debug(format, *args)

        def do_GET(self) -> None:
            if self.path == "/health":
                self._send(200, b'{"ok": true}', {"Content-Type": "application/json"})
            else:
                self._send(404, b"Not Found", {})

        def do_POST(self) -> None:
            if self.path.split("?", 1)[0] != path:
                self._send(404, b"Not Found", {})
                return
            raw_length = (self.headers.get("Content-Length") or "0").strip()
            if not raw_length.isdigit():
                self._refuse(400, "Content-Length must be a whole number of bytes.")
                return
            length = int(raw_length)
            if length > MAX_BODY_BYTES:
                self._refuse(413, f"The body is larger than {MAX_BODY_BYTES} bytes.")
                return
            # Undecodable bytes fail the signature check (401) rather than the connection.
            body = self.rfile.read(length).decode("utf-8", errors="replace") if length else ""
            headers: dict[str, str | Sequence[str]] = {k.lower(): v for k, v in self.headers.items()}
            response = app.dispatch(BoltRequest(body=body, headers=headers))
            data = (response.body or "").encode("utf-8")
            self._send(response.status, data, response.first_headers_without_set_cookie())

        def _refuse(self, status: int, reason: str) -> None:
            logger.warning("refused a request from %s: %s", self.client_address[0], reason)
            # The body was not read: the connection cannot carry another request.
            self.close_connection = True
            self._send(
                status, reason.encode(), {"Content-Type": "text/plain; charset=utf-8", "Connection": "close"}
            )

        def _send(self, status: int, data: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for key, value in headers.items():
                if key.lower() != "content-length":
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(
        target=lambda: server.serve_forever(poll_interval=0.05), name="opsbot-http", daemon=True
    )
    thread.start()
    return thread


def server_url(server: ThreadingHTTPServer, path: str = "/slack/events") -> str:
    host, port = server.server_address[:2]
    return f"http://{host!s}:{port}{path}"
