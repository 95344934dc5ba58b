"""The demo console: type slash commands, see the bot's replies as text, click buttons by number.

Every command and click becomes a real signed request (``bot.local.requests``) POSTed to the app's HTTP
endpoint; replies arrive in the ack response, through ``response_url`` and through the Web API of the
local Slack server, which calls back here to print them.
"""

from __future__ import annotations

import logging
import secrets
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TextIO

from bot.local.requests import block_actions_body, signed_headers, slash_command_body
from bot.local.server import TrackingLazyRunner
from bot.local.slack_api import LocalSlack, Message
from bot.render.text import Button, render

CONSOLE_HELP = """\
Console commands:
  /ops help              any slash command, exactly as in Slack
  click N                press button [N]
  as USER                act as another user (e.g. `as bob` to see a denial); `as` alone lists users
  in CHANNEL             run commands in another channel (`in` alone lists channels)
  help                   this text
  quit                   leave (Ctrl-D works too)"""


@dataclass(frozen=True)
class Person:
    user_id: str
    name: str


class _UnknownCommandNotice(logging.Filter):
    """The console says what Slack would say about an unknown command; Bolt's advice on how to write a
    listener for it is for the app's developers, not for someone trying the demo."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Unhandled request")


class Console:
    def __init__(
        self,
        *,
        slack: LocalSlack,
        app_url: str,
        signing_secret: str,
        runner: TrackingLazyRunner,
        people: Iterable[Person],
        channels: dict[str, str],
        out: TextIO | None = None,
        wait_seconds: float = 600.0,
    ) -> None:
        self.slack = slack
        self.app_url = app_url
        self.signing_secret = signing_secret
        self.runner = runner
        self.people = list(people)
        self.person = self.people[0]
        self.channels = channels
        self.channel_id = next(iter(channels))
        self.out = out or sys.stdout
        self.wait_seconds = wait_seconds
        self.buttons: list[tuple[Button, Message]] = []
        self._print_lock = threading.RLock()
        slack.listeners.append(self._on_slack_event)
        bolt_logger = logging.getLogger("slack_bolt.App")
        if not any(isinstance(f, _UnknownCommandNotice) for f in bolt_logger.filters):
            bolt_logger.addFilter(_UnknownCommandNotice())

    # -- output ----------------------------------------------------------------------------------
    def say(self, text: str = "") -> None:
        with self._print_lock:
            self.out.write(text + "\n")
            self.out.flush()

    def _name(self, slack_id: str) -> str:
        """A readable name for a user or channel id (mentions render as names, as in Slack)."""
        for person in self.people:
            if person.user_id == slack_id:
                return person.name
        if slack_id in self.channels:
            return self.channels[slack_id]
        return "opsbot" if slack_id == self.slack.bot_user_id else slack_id

    def _on_slack_event(self, event: str, message: Message) -> None:
        if message.kind == "view":
            self._show(message, "opened a form")
            return
        if message.kind == "ephemeral" and message.ephemeral_to != self.person.user_id:
            return
        self._show(message, "updated its message" if event == "update" else "")

    def _show(self, message: Message, what: str) -> None:
        rendered = render(message.text, message.blocks, names=self._name)
        where = f"#{self.channels.get(message.channel, message.channel)}" if message.channel else ""
        if message.kind == "ephemeral":
            who = f"opsbot (only visible to you) in {where}"
        elif message.kind == "view":
            who = "opsbot"
        else:
            who = f"opsbot in {where}" + (" (thread)" if message.thread_ts else "")
        with self._print_lock:
            self.say(f"\n{who}{' ' + what if what else ''}:")
            for line in rendered.lines:
                self.say("  " + line)
            for file in message.files:
                self.say(f"  [file] {file.get('title') or file.get('name')} ({file.get('length', 0)} bytes)")
            if rendered.buttons:
                labels = []
                for button in rendered.buttons:
                    self.buttons.append((button, message))
                    labels.append(f"[{len(self.buttons)}] {button.text}")
                self.say("  " + "   ".join(labels))

    # -- input -----------------------------------------------------------------------------------
    def handle(self, line: str) -> bool:
        """Run one console line. False when the console should stop."""
        line = line.strip()
        if not line or line.startswith("#"):
            return True
        word, _, rest = line.partition(" ")
        if word in {"quit", "exit"}:
            return False
        if word == "help":
            self.say(CONSOLE_HELP)
        elif word.startswith("/"):
            self.slash(word, rest.strip())
        elif word == "click":
            self.click(rest.strip())
        elif word == "as":
            self.switch_user(rest.strip())
        elif word == "in":
            self.switch_channel(rest.strip())
        else:
            self.say(f"Unknown console command {word!r}. Slash commands start with '/'; type `help`.")
        return True

    def switch_user(self, name: str) -> None:
        if not name:
            self.say("Users: " + ", ".join(f"{p.name} ({p.user_id})" for p in self.people))
            return
        for person in self.people:
            if name in {person.name, person.user_id}:
                self.person = person
                self.say(f"You are now {person.name} ({person.user_id}).")
                return
        self.say(f"No user {name!r}. Users: " + ", ".join(p.name for p in self.people))

    def switch_channel(self, name: str) -> None:
        name = name.lstrip("#")
        if not name:
            self.say("Channels: " + ", ".join(f"#{n} ({c})" for c, n in self.channels.items()))
            return
        for channel_id, channel_name in self.channels.items():
            if name in {channel_id, channel_name}:
                self.channel_id = channel_id
                self.say(f"You are now in #{channel_name}.")
                return
        self.say(f"No channel {name!r}. Channels: " + ", ".join(f"#{n}" for n in self.channels.values()))

    def slash(self, command: str, text: str) -> None:
        self.say(f"\n{self.person.name} in #{self.channels[self.channel_id]}: {command} {text}".rstrip())
        body = slash_command_body(
            command,
            text,
            user_id=self.person.user_id,
            user_name=self.person.name,
            channel_id=self.channel_id,
            channel_name=self.channels[self.channel_id],
            team_id=self.slack.team_id,
            response_url=self.slack.new_response_url(self.channel_id, self.person.user_id),
            trigger_id=f"demo.{secrets.token_hex(6)}",
        )
        self.runner.hold()  # the ack's message first, as in Slack
        try:
            status, reply = self._post(body)
            if status == 404:
                self.say(f"  (Slack would say: /{command.lstrip('/')} is not a valid command)")
            elif status != 200:
                self.say(f"  (the app answered HTTP {status}: {reply[:200]})")
            else:
                self.slack.record_ack(self.channel_id, self.person.user_id, reply)
        finally:
            self.runner.release()
        self.wait()

    def click(self, number: str) -> None:
        if not number.isdigit() or not 1 <= int(number) <= len(self.buttons):
            self.say(
                f"No button [{number}]." + (f" Buttons are 1 to {len(self.buttons)}." if self.buttons else "")
            )
            return
        button, message = self.buttons[int(number) - 1]
        self.say(f"\n{self.person.name} clicked [{number}] {button.text}")
        if button.url:
            self.say(f"  (opens {button.url})")
        ephemeral = message.kind == "ephemeral"
        body = block_actions_body(
            action=button.element,
            block_id=button.block_id,
            message=None
            if ephemeral
            else {"type": "message", "ts": message.ts, "text": message.text, "blocks": message.blocks},
            user_id=self.person.user_id,
            user_name=self.person.name,
            channel_id=message.channel or self.channel_id,
            channel_name=self.channels.get(message.channel, message.channel),
            team_id=self.slack.team_id,
            response_url=self.slack.new_response_url(message.channel, self.person.user_id, message),
            message_ts=message.ts,
            ephemeral=ephemeral,
        )
        status, reply = self._post(body)
        if status != 200:
            self.say(f"  (the app answered HTTP {status}: {reply[:200]})")
        self.wait()

    def _post(self, body: str) -> tuple[int, str]:
        request = urllib.request.Request(
            self.app_url, data=body.encode(), headers=signed_headers(self.signing_secret, body), method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    def wait(self) -> None:
        if not self.runner.wait_idle(self.wait_seconds):
            self.say("  (still working; replies will appear here as they arrive)")

    def loop(self, stream: Any, *, interactive: bool) -> None:
        while True:
            if interactive:
                try:
                    line = input(f"{self.person.name}@#{self.channels[self.channel_id]}> ")
                except EOFError:
                    self.say("")
                    return
            else:
                raw = stream.readline()
                if not raw:
                    return
                line = raw
            if not self.handle(line):
                return
