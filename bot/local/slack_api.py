"""A local Slack Web API server for the demo and the tests (``SLACK_API_URL`` points the app at it).

It implements the methods opsbot calls, records every call, keeps the messages it was sent (so the demo
console can render them and tests can assert on them), serves ``response_url`` endpoints, and validates
what we send against Slack's Block Kit limits (``bot.render.blocks.problems``): a message Slack would
reject is rejected here too, with Slack's error code, and listed in ``violations`` so tests fail on it.
Binds to 127.0.0.1 only.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from bot.core.ops.checks.slack import manifest_scopes
from bot.local.serving import shutdown_now
from bot.render.blocks import problems

RESPONSE_URL_USES = 5  # Slack allows five uses of a response_url


@dataclass
class Message:
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    kind: str  # "message" | "ephemeral"
    user: str = ""  # who posted it (the bot's user id)
    ephemeral_to: str = ""  # the only user who sees an ephemeral message
    thread_ts: str = ""
    revision: int = 0
    deleted: bool = False
    files: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class ApiCall:
    method: str
    params: dict[str, Any]
    ok: bool
    error: str = ""


@dataclass
class ResponseUrl:
    channel: str
    user: str
    message: Message | None  # the message an interaction came from (for replace_original)
    uses: int = 0


Listener = Callable[[str, Message], None]


class LocalSlack:
    def __init__(
        self,
        *,
        bot_token: str = "xoxb-local-demo-token",
        team_id: str = "T0LOCAL",
        team_name: str = "opsbot-demo",
        bot_user_id: str = "U0OPSBOT",
        bot_id: str = "B0OPSBOT",
        usergroups: dict[str, list[str]] | None = None,
        users: dict[str, str] | None = None,
        channels: dict[str, str] | None = None,
    ) -> None:
        self.bot_token = bot_token
        self.team_id = team_id
        self.team_name = team_name
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.usergroups = dict(usergroups or {})
        self.users = dict(users or {})
        self.channels = dict(channels or {})
        # Channels the bot is not a member of: it cannot post there, not even an ephemeral message.
        self.bot_absent: set[str] = set()
        # Channels shared with another organisation (Slack Connect): conversations.info says is_ext_shared.
        self.ext_shared: set[str] = set()
        # The bot token's scopes, sent as Slack sends them on every Web API answer (x-oauth-scopes).
        self.scopes: tuple[str, ...] = manifest_scopes()
        self.calls: list[ApiCall] = []
        self.messages: list[Message] = []
        self.views: list[dict[str, Any]] = []
        self.files: dict[str, dict[str, Any]] = {}
        self.violations: list[str] = []
        self.listeners: list[Listener] = []
        self._response_urls: dict[str, ResponseUrl] = {}
        self._failures: dict[str, str] = {}
        self._lock = threading.RLock()
        self._ts = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> LocalSlack:
        slack = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._reply(200, {"ok": True}) if self.path == "/health" else self._reply(404, {"ok": False})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                path = urlparse(self.path).path
                try:
                    status, body = slack._route(path, raw, dict(self.headers.items()))
                except Exception as error:  # a bug here must show up in tests, not hang them
                    slack.violations.append(f"local Slack server error on {path}: {error!r}")
                    status, body = 500, {"ok": False, "error": "internal_error"}
                self._reply(status, body)

            def _reply(self, status: int, body: Any) -> None:
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                if self.path.startswith("/api/"):
                    self.send_header("x-oauth-scopes", ",".join(slack.scopes))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits up to one interval, and tests start and stop many servers.
        server = self._server
        self._thread = threading.Thread(
            target=lambda: server.serve_forever(poll_interval=0.05), name="local-slack", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            shutdown_now(self._server)
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LocalSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    @property
    def api_url(self) -> str:
        return self.url + "api/"

    # -- test and console helpers ----------------------------------------------------------------
    def new_response_url(self, channel: str, user: str, message: Message | None = None) -> str:
        key = uuid.uuid4().hex
        with self._lock:
            self._response_urls[key] = ResponseUrl(channel, user, message)
        return f"{self.url}response/{key}"

    def record_ack(self, channel: str, user: str, body: str) -> Message | None:
        """Store (and validate) the message an app returned in its ack, as Slack shows it to the user."""
        if not body.strip():
            return None
        try:
            params = json.loads(body)
        except ValueError:
            params = {"text": body}
        try:
            blocks = self._checked_blocks(params, "ack response")
        except _SlackError:
            return None
        in_channel = params.get("response_type") == "in_channel"
        message = Message(channel, self._next_ts(), str(params.get("text", "")), blocks,
                          "message" if in_channel else "ephemeral", user=self.bot_user_id,
                          ephemeral_to="" if in_channel else user)  # fmt: skip
        with self._lock:
            self.messages.append(message)
        self._emit("new", message)
        return message

    def post_as_person(self, channel: str, user: str, text: str) -> Message:
        """A message a person posts in ``channel`` (the demo console's ``shortcut`` and ``mention``)."""
        message = Message(
            channel=channel, ts=self._next_ts(), text=text, blocks=[], kind="message", user=user
        )
        with self._lock:
            self.messages.append(message)
        return message

    def fail_next(self, method: str, error: str) -> None:
        """Make the next call of ``method`` answer ``{"ok": false, "error": error}``."""
        self._failures[method] = error

    def calls_to(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method == method]

    def visible(self, channel: str | None = None) -> list[Message]:
        return [m for m in self.messages if not m.deleted and (channel is None or m.channel == channel)]

    def find(self, ts: str, channel: str | None = None) -> Message | None:
        for message in self.messages:
            if message.ts == ts and (channel is None or message.channel == channel):
                return message
        return None

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Poll until ``predicate()`` is truthy (lazy work runs in other threads)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = predicate()
            if result:
                return result
            time.sleep(0.01)
        raise TimeoutError("the local Slack server did not see the expected call in time")

    # -- dispatch --------------------------------------------------------------------------------
    def _route(self, path: str, raw: bytes, headers: dict[str, str]) -> tuple[int, Any]:
        if path.startswith("/api/"):
            method = path[len("/api/") :]
            params = self._params(raw, headers)
            return 200, self._api(method, params, headers)
        if path.startswith("/response/"):
            return self._response(path.rsplit("/", 1)[1], raw)
        if path.startswith("/upload/"):
            file_id = path.rsplit("/", 1)[1]
            with self._lock:
                if file_id not in self.files:
                    return 404, {"ok": False}
                self.files[file_id]["content"] = raw
            return 200, b"OK - " + str(len(raw)).encode()
        return 404, {"ok": False, "error": "unknown_path"}

    @staticmethod
    def _params(raw: bytes, headers: dict[str, str]) -> dict[str, Any]:
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        if not raw:
            return {}
        if "json" in content_type:
            loaded = json.loads(raw)
            return loaded if isinstance(loaded, dict) else {}
        return {k: v[-1] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}

    def _authorized(self, params: dict[str, Any], headers: dict[str, str]) -> str:
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else str(params.get("token", ""))
        if not token:
            return "not_authed"
        return "" if token == self.bot_token else "invalid_auth"

    def _api(self, method: str, params: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        error = self._authorized(params, headers)
        if not error:
            error = self._failures.pop(method, "")
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if not error and handler is None:
            error = "unknown_method"
        if error:
            with self._lock:
                self.calls.append(ApiCall(method, params, False, error))
            return {"ok": False, "error": error}
        try:
            result = handler(params)  # type: ignore[misc]
        except _SlackError as failure:
            with self._lock:
                self.calls.append(ApiCall(method, params, False, failure.code))
            return {"ok": False, "error": failure.code, **failure.extra}
        with self._lock:
            self.calls.append(ApiCall(method, params, True))
        return {"ok": True, **result}

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    def _checked_blocks(self, params: dict[str, Any], where: str, surface: str = "message") -> list[Any]:
        blocks = params.get("blocks")
        if isinstance(blocks, str):
            try:
                blocks = json.loads(blocks) if blocks else None
            except ValueError:
                raise _SlackError("invalid_blocks_format") from None
        text = params.get("text")
        found = problems(blocks, text=text if isinstance(text, str) else None, surface=surface)
        if found:
            with self._lock:
                self.violations.extend(f"{where}: {p}" for p in found)
            code = (
                "msg_blocks_too_long"
                if any("characters, more than" in p for p in found)
                else "invalid_blocks"
            )
            raise _SlackError(code, {"errors": found})
        if surface == "message" and not blocks and not text and not params.get("attachments"):
            raise _SlackError("no_text")
        return list(blocks or [])

    def _emit(self, event: str, message: Message) -> None:
        for listener in list(self.listeners):
            try:
                listener(event, message)
            except Exception as error:  # the console must not break the server
                self.violations.append(f"listener failed: {error!r}")

    # -- Web API methods -------------------------------------------------------------------------
    def _m_auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"https://{self.team_name}.slack.com/",
            "team": self.team_name,
            "user": "opsbot",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
        }

    def _m_chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = str(params.get("channel", ""))
        if not channel:
            raise _SlackError("channel_not_found")
        if channel in self.bot_absent:
            raise _SlackError("not_in_channel")
        blocks = self._checked_blocks(params, "chat.postMessage")
        message = Message(
            channel=channel,
            ts=self._next_ts(),
            text=str(params.get("text", "")),
            blocks=blocks,
            kind="message",
            user=self.bot_user_id,
            thread_ts=str(params.get("thread_ts") or ""),
        )
        with self._lock:
            self.messages.append(message)
        self._emit("new", message)
        return {"channel": channel, "ts": message.ts, "message": {"text": message.text, "ts": message.ts}}

    def _m_chat_postEphemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, user = str(params.get("channel", "")), str(params.get("user", ""))
        if not channel or not user:
            raise _SlackError("channel_not_found" if not channel else "user_not_in_channel")
        if channel in self.bot_absent:  # a private channel the bot is not in does not exist for it
            raise _SlackError("channel_not_found")
        blocks = self._checked_blocks(params, "chat.postEphemeral")
        message = Message(channel, self._next_ts(), str(params.get("text", "")), blocks, "ephemeral",
                          user=self.bot_user_id, ephemeral_to=user,
                          thread_ts=str(params.get("thread_ts") or ""))  # fmt: skip
        with self._lock:
            self.messages.append(message)
        self._emit("new", message)
        return {"message_ts": message.ts}

    def _m_chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self.find(str(params.get("ts", "")), str(params.get("channel", "")))
        if message is None or message.deleted:
            raise _SlackError("message_not_found")
        blocks = self._checked_blocks(params, "chat.update")
        with self._lock:
            message.text = str(params.get("text", message.text))
            message.blocks = blocks
            message.revision += 1
        self._emit("update", message)
        return {"channel": message.channel, "ts": message.ts, "text": message.text}

    def _m_chat_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        message = self.find(str(params.get("ts", "")), str(params.get("channel", "")))
        if message is None or message.deleted:
            raise _SlackError("message_not_found")
        message.deleted = True
        self._emit("delete", message)
        return {"channel": message.channel, "ts": message.ts}

    def _m_chat_getPermalink(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, ts = str(params.get("channel", "")), str(params.get("message_ts", ""))
        return {"channel": channel, "permalink": f"{self.url}archives/{channel}/p{ts.replace('.', '')}"}

    def _m_views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        view = params.get("view")
        view = json.loads(view) if isinstance(view, str) else view
        if not isinstance(view, dict) or not params.get("trigger_id"):
            raise _SlackError("invalid_arguments")
        self._checked_blocks({"blocks": view.get("blocks")}, "views.open", surface="modal")
        view = {**view, "id": f"V{len(self.views) + 1:08d}"}
        with self._lock:
            self.views.append(view)
        self._emit("view", Message("", self._next_ts(), "", view.get("blocks", []), "view"))
        return {"view": view}

    def _m_views_update(self, params: dict[str, Any]) -> dict[str, Any]:
        view = params.get("view")
        view = json.loads(view) if isinstance(view, str) else view
        if not isinstance(view, dict):
            raise _SlackError("invalid_arguments")
        self._checked_blocks({"blocks": view.get("blocks")}, "views.update", surface="modal")
        with self._lock:
            self.views.append(view)
        return {"view": view}

    def _m_usergroups_users_list(self, params: dict[str, Any]) -> dict[str, Any]:
        group = str(params.get("usergroup", ""))
        if group not in self.usergroups:
            raise _SlackError("no_such_subteam")
        return {"users": list(self.usergroups[group])}

    def _m_users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = str(params.get("user", ""))
        if user not in self.users:
            raise _SlackError("user_not_found")
        return {"user": {"id": user, "name": self.users[user], "real_name": self.users[user], "tz": "UTC"}}

    def _m_conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = str(params.get("channel", ""))
        if channel not in self.channels:
            raise _SlackError("channel_not_found")
        return {
            "channel": {
                "id": channel,
                "name": self.channels[channel],
                "is_member": channel not in self.bot_absent,
                "is_archived": False,
                "is_shared": channel in self.ext_shared,
                "is_ext_shared": channel in self.ext_shared,
            }
        }

    def _m_files_getUploadURLExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = f"F{uuid.uuid4().hex[:10].upper()}"
        with self._lock:
            self.files[file_id] = {
                "id": file_id,
                "name": str(params.get("filename", "")),
                "length": int(params.get("length") or 0),
                "content": b"",
            }
        return {"upload_url": f"{self.url}upload/{file_id}", "file_id": file_id}

    def _m_files_completeUploadExternal(self, params: dict[str, Any]) -> dict[str, Any]:
        wanted = params.get("files")
        wanted = json.loads(wanted) if isinstance(wanted, str) else wanted or []
        done = []
        for item in wanted:
            stored = self.files.get(str(item.get("id")))
            if stored is None:
                raise _SlackError("file_not_found")
            stored["title"] = item.get("title") or stored["name"]
            done.append({k: v for k, v in stored.items() if k != "content"})
        channel = str(params.get("channel_id") or "")
        if channel:
            comment = str(params.get("initial_comment") or "")
            message = Message(channel, self._next_ts(), comment, [], "message", user=self.bot_user_id,
                              thread_ts=str(params.get("thread_ts") or ""), files=done)  # fmt: skip
            with self._lock:
                self.messages.append(message)
            self._emit("new", message)
        return {"files": done}

    # -- response_url ----------------------------------------------------------------------------
    def _response(self, key: str, raw: bytes) -> tuple[int, Any]:
        with self._lock:
            target = self._response_urls.get(key)
            if target is None:
                return 404, b"expired_url"
            target.uses += 1
            if target.uses > RESPONSE_URL_USES:
                self.violations.append(f"response_url used more than {RESPONSE_URL_USES} times")
                return 404, b"used_url"
        params = json.loads(raw or b"{}")
        try:
            blocks = self._checked_blocks(params, "response_url")
        except _SlackError as failure:
            return 400, failure.code.encode()
        text = str(params.get("text", ""))
        if params.get("delete_original") and target.message is not None:
            target.message.deleted = True
            self._emit("delete", target.message)
            return 200, b"ok"
        if params.get("replace_original") and target.message is not None:
            with self._lock:
                target.message.text = text
                target.message.blocks = blocks
                target.message.revision += 1
            self._emit("update", target.message)
            return 200, b"ok"
        in_channel = params.get("response_type") == "in_channel"
        message = Message(
            channel=target.channel,
            ts=self._next_ts(),
            text=text,
            blocks=blocks,
            kind="message" if in_channel else "ephemeral",
            user=self.bot_user_id,
            ephemeral_to="" if in_channel else target.user,
            thread_ts=str(params.get("thread_ts") or ""),
        )
        with self._lock:
            self.messages.append(message)
        self._emit("new", message)
        return 200, b"ok"


class _SlackError(Exception):
    def __init__(self, code: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.extra = extra or {}
