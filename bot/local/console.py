"""The demo console: type slash commands, see the bot's replies as text, click buttons by number.

Every command and click becomes a real signed request (``bot.local.requests``) POSTed to the app's HTTP
endpoint; replies arrive in the ack response, through ``response_url`` and through the Web API of the
local Slack server, which calls back here to print them.

It behaves as Slack does where a user would notice: a button with a confirmation dialog asks first
(``confirm`` / ``cancel``; cancel sends nothing), and the buttons of a message that was since replaced
(``chat.update``, ``replace_original``) are retired. Interactively, the console goes back to its prompt
after a moment while slow work (a tail) continues and prints as it arrives, so ``click N`` on Stop and
``quit`` are read at any time. A script (``--run``, piped input) stays deterministic: each line waits for
the work it started, unless it ends with ``&``; ``wait`` and ``sleep`` pace the rest.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from bot.local.requests import block_actions_body, signed_headers, slash_command_body
from bot.local.server import TICKET_HEADER, TrackingLazyRunner
from bot.local.slack_api import LocalSlack, Message
from bot.render.text import Button, mrkdwn_to_text, render

CONSOLE_HELP = """\
Console commands:
  /ops help              any slash command, exactly as in Slack
  click N                press button [N]; a button with a confirmation dialog asks first
  confirm | cancel       answer that dialog (cancel sends nothing, as in Slack)
  COMMAND &              a script goes on once COMMAND's work has posted something (e.g. a tail)
  wait [SECONDS]         wait until the work still running has finished (at most SECONDS)
  sleep SECONDS          let SECONDS pass while replies arrive
  alarm fire NAME [ok]   send alarm NAME's CloudWatch notification (ALARM, or OK) through the intake
  shortcut TEXT          post TEXT as you, then use "Look up request ids" on it (a pasted error, an alert)
  mention TEXT           post "@opsbot TEXT" in the channel (opsbot answers in its thread)
  as USER                act as another user (e.g. `as bob` to see a denial); `as` alone lists users
  in CHANNEL             run commands in another channel (`in` alone lists channels)
  help                   this text
  quit                   leave (Ctrl-D works too); work still running (a tail) is stopped"""

# Interactively, how long a command's work may take before the prompt comes back (it goes on behind it).
INTERACTIVE_SETTLE_SECONDS = 3.0
MAX_SLEEP_SECONDS = 3600.0


@dataclass(frozen=True)
class Person:
    user_id: str
    name: str


@dataclass(frozen=True)
class Pending:
    """A click waiting for the answer to its confirmation dialog."""

    number: int
    button: Button
    message: Message
    revision: int
    title: str


class _UnknownCommandNotice(logging.Filter):
    """The console says what Slack would say about an unknown command; Bolt's advice on how to write a
    listener for it is for the app's developers, not for someone trying the demo."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Unhandled request")


def _line_buffer() -> str:
    """What the user has typed so far at the prompt (to draw it again under output that arrived)."""
    try:
        import readline
    except ImportError:  # pragma: no cover - Windows without pyreadline
        return ""
    return str(readline.get_line_buffer())


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
        interactive: bool = False,
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
        self.interactive = interactive
        # How long a line waits for the work it started: a script waits for all of it (deterministic),
        # a person gets the prompt back after a moment.
        self.settle_seconds = INTERACTIVE_SETTLE_SECONDS if interactive else wait_seconds
        # Each button shown, with its message and the message's revision when it was shown: a message
        # replaced since (a newer revision, or deleted) retires its buttons, as Slack no longer shows them.
        self.buttons: list[tuple[Button, Message, int]] = []
        self.pending: Pending | None = None
        self.closed = False
        self.sent = 0  # requests sent to the app (a cancelled dialog or a retired button sends none)
        self.shown = 0  # messages shown (a line ending in `&` waits for the next one)
        self._tickets = itertools.count(1)
        self._print_lock = threading.RLock()
        self._prompt: str | None = None  # the prompt on screen while input() waits
        self._reader: threading.Thread | None = None
        slack.listeners.append(self._on_slack_event)
        bolt_logger = logging.getLogger("slack_bolt.App")
        if not any(isinstance(f, _UnknownCommandNotice) for f in bolt_logger.filters):
            bolt_logger.addFilter(_UnknownCommandNotice())

    # -- output ----------------------------------------------------------------------------------
    def say(self, text: str = "") -> None:
        """Print ``text`` (lines). Output that arrives while the prompt waits for input (a tail's lines)
        is printed above it, and the prompt is drawn again with what was typed so far."""
        with self._print_lock:
            redraw = self._prompt is not None and threading.current_thread() is not self._reader
            if redraw:
                self.out.write("\r\x1b[K")
            self.out.write(text + "\n")
            if redraw and self._prompt is not None:
                self.out.write(self._prompt + _line_buffer())
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
        if self.closed:
            return
        if message.kind == "view":
            self._show(message, "opened a form")
            return
        if message.kind == "ephemeral" and message.ephemeral_to != self.person.user_id:
            return
        if event == "delete":  # gone from Slack, and its buttons with it (see _retired)
            where = self.channels.get(message.channel, message.channel)
            self.say(
                f"\nopsbot deleted its message in #{where}" + (" (thread)." if message.thread_ts else ".")
            )
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
            lines = [f"\n{who}{' ' + what if what else ''}:"]
            lines.extend("  " + line for line in rendered.lines)
            for file in message.files:
                lines.append(
                    f"  [file] {file.get('title') or file.get('name')} ({file.get('length', 0)} bytes)"
                )
            if rendered.buttons:
                labels = []
                for button in rendered.buttons:
                    self.buttons.append((button, message, message.revision))
                    labels.append(f"[{len(self.buttons)}] {button.text}")
                lines.append("  " + "   ".join(labels))
            self.say("\n".join(lines))
            self.shown += 1

    # -- input -----------------------------------------------------------------------------------
    def handle(self, line: str) -> bool:
        """Run one console line. False when the console should stop."""
        line = line.strip()
        if not line or line.startswith("#"):
            return True
        background = line.endswith(" &")  # as in a shell; a slash command's own text ends otherwise
        if background:
            line = line[:-2].rstrip()
        word, _, rest = line.partition(" ")
        rest = rest.strip()
        if word in {"quit", "exit"}:
            return False
        if self.pending is not None and word not in {"confirm", "cancel", "help"}:
            # Slack's dialog is modal: nothing else can be done until it is answered.
            self.say(f"  A dialog is open ({self.pending.title}): answer `confirm` or `cancel` first.")
            return True
        if word == "help":
            self.say(CONSOLE_HELP)
        elif word.startswith("/"):
            self.slash(word, rest, background=background)
        elif word == "click":
            self.click(rest, background=background)
        elif word == "confirm":
            self.confirm(background=background)
        elif word == "cancel":
            self.cancel()
        elif word == "wait":
            self.wait_command(rest)
        elif word == "sleep":
            self.sleep_command(rest)
        elif word == "alarm":
            self.alarm_command(rest)
        elif word in {"shortcut", "mention"}:
            self.message_command(word, rest, background=background)
        elif word == "as":
            self.switch_user(rest)
        elif word == "in":
            self.switch_channel(rest)
        else:
            self.say(f"Unknown console command {word!r}. Slash commands start with '/'; type `help`.")
        return True

    def alarm_command(self, rest: str) -> None:
        """``alarm fire NAME [ok]``: the alarm's notification, as CloudWatch publishes it, through the real
        intake (SQS record, SNS envelope); its post appears like any other message."""
        words = rest.split()
        if len(words) not in (2, 3) or words[0] != "fire" or (len(words) == 3 and words[2].lower() != "ok"):
            self.say("Usage: alarm fire NAME [ok]   (the demo's alarms are in the banner)")
            return
        from bot.local.seeds.alarms import fire

        try:
            report = fire(words[1], "OK" if len(words) == 3 else "ALARM")
        except LookupError as error:
            self.say(f"  {error}")
            return
        self.say(
            f"  (notification sent: {report.posted} posted, {report.updated} updated, "
            f"{report.correlated} correlated, {report.failed} kept for later)"
        )

    def message_command(self, word: str, text: str, *, background: bool = False) -> None:
        """``shortcut TEXT``: a message posted as the current person, then the message shortcut "Look up
        request ids" used on it; ``mention TEXT``: "@opsbot TEXT" posted, and Slack's ``app_mention`` event
        for it. Both go to the app signed, as Slack sends them."""
        from bot.listeners.apilogs_ids import SHORTCUT_CALLBACK
        from bot.local.requests import event_body, message_action_body

        if not text:
            self.say(
                f"Usage: {word} TEXT   (e.g. {word} checkout failed, request id <paste one from the banner>)"
            )
            return
        channel, channel_name = self.channel_id, self.channels[self.channel_id]
        if word == "mention":
            text = f"<@{self.slack.bot_user_id}> {text}"
        message = self.slack.post_as_person(channel, self.person.user_id, text)
        self.say(f"\n{self.person.name} in #{channel_name}: {text}")
        if word == "shortcut":
            self.say(f'{self.person.name} used "Look up request ids" on that message')
            body = message_action_body(
                callback_id=SHORTCUT_CALLBACK, message={"type": "message", "user": message.user,
                "ts": message.ts, "text": text}, user_id=self.person.user_id, user_name=self.person.name,
                channel_id=channel, channel_name=channel_name, team_id=self.slack.team_id,
                response_url=self.slack.new_response_url(channel, self.person.user_id),
            )  # fmt: skip
            form = True
        else:
            event = {"type": "app_mention", "user": self.person.user_id, "text": text, "ts": message.ts,
                     "channel": channel, "event_ts": message.ts, "team": self.slack.team_id,
                     "user_team": self.slack.team_id}  # fmt: skip
            body = event_body(event, team_id=self.slack.team_id, bot_user_id=self.slack.bot_user_id)
            form = False
        ticket = self._ticket()
        self.runner.hold()
        try:
            status, reply = self._post(body, ticket, form=form)
            if status != 200:
                self.say(f"  (the app answered HTTP {status}: {reply[:200]})")
            shown = self.shown
        finally:
            self.runner.release()
        self._await(ticket, background=background, shown=shown)

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

    def slash(self, command: str, text: str, *, background: bool = False) -> None:
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
        ticket = self._ticket()
        self.runner.hold()  # the ack's message first, as in Slack
        try:
            status, reply = self._post(body, ticket)
            if status == 404:
                self.say(f"  (Slack would say: /{command.lstrip('/')} is not a valid command)")
            elif status != 200:
                self.say(f"  (the app answered HTTP {status}: {reply[:200]})")
            else:
                self.slack.record_ack(self.channel_id, self.person.user_id, reply)
            shown = self.shown  # before the work may post: `&` waits for what comes after this
        finally:
            self.runner.release()
        self._await(ticket, background=background, shown=shown)

    def click(self, number: str, *, background: bool = False) -> None:
        if not number.isdigit() or not 1 <= int(number) <= len(self.buttons):
            self.say(
                f"No button [{number}]." + (f" Buttons are 1 to {len(self.buttons)}." if self.buttons else "")
            )
            return
        button, message, revision = self.buttons[int(number) - 1]
        self.say(f"\n{self.person.name} clicked [{number}] {button.text}")
        if self._retired(number, message, revision):
            return
        if button.url:
            self.say(f"  (opens {button.url})")
        dialog = button.element.get("confirm")
        if isinstance(dialog, Mapping):
            title = self._dialog_text(dialog.get("title")) or "Are you sure?"
            self.pending = Pending(int(number), button, message, revision, title)
            yes = self._dialog_text(dialog.get("confirm")) or "Yes"
            no = self._dialog_text(dialog.get("deny")) or "Cancel"
            lines = [f"  ┌ {title}"]
            lines.extend(f"  │ {line}" for line in self._dialog_text(dialog.get("text")).splitlines())
            lines.append(f"  └ `confirm` ({yes})   `cancel` ({no})")
            self.say("\n".join(lines))
            return
        self._send_click(button, message, background=background)

    def confirm(self, *, background: bool = False) -> None:
        pending, self.pending = self.pending, None
        if pending is None:
            self.say("  No dialog is open: `confirm` answers the one a button opens.")
            return
        self.say(f"  {self.person.name} confirmed: {pending.title}")
        # The message may have been replaced while the dialog was open (a colleague's click).
        if self._retired(str(pending.number), pending.message, pending.revision):
            return
        self._send_click(pending.button, pending.message, background=background)

    def cancel(self) -> None:
        pending, self.pending = self.pending, None
        if pending is None:
            self.say("  No dialog is open.")
            return
        self.say(f"  {self.person.name} cancelled: nothing was sent (as in Slack).")

    def _retired(self, number: str, message: Message, revision: int) -> bool:
        if not message.deleted and message.revision == revision:
            return False
        what = "deleted" if message.deleted else "replaced"
        self.say(
            f"  Button [{number}] belonged to a message that has since been {what}; Slack no longer shows "
            "it. Nothing was sent" + ("." if message.deleted else "; use the buttons of the new version.")
        )
        return True

    def _dialog_text(self, obj: Any) -> str:
        if not isinstance(obj, Mapping):
            return ""
        raw = str(obj.get("text", ""))
        return mrkdwn_to_text(raw, self._name) if obj.get("type") == "mrkdwn" else raw

    def _send_click(self, button: Button, message: Message, *, background: bool) -> None:
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
            selected_option=button.option,
        )
        ticket = self._ticket()
        shown = self.shown
        status, reply = self._post(body, ticket)
        if status != 200:
            self.say(f"  (the app answered HTTP {status}: {reply[:200]})")
        self._await(ticket, background=background, shown=shown)

    def _ticket(self) -> str:
        return f"console-{next(self._tickets)}"

    def _post(self, body: str, ticket: str = "", *, form: bool = True) -> tuple[int, str]:
        headers = signed_headers(self.signing_secret, body, form=form)
        if ticket:
            headers[TICKET_HEADER] = ticket  # not signed, not Slack's: lets the console wait for this work
        request = urllib.request.Request(self.app_url, data=body.encode(), headers=headers, method="POST")
        self.sent += 1
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    def _await(self, ticket: str, *, background: bool, shown: int) -> None:
        """Wait for the work of one command or click: all of it (a script), a moment (a person), or, for a
        line ending in `&`, until it posted something after ``shown`` messages or ended."""
        if background:
            deadline = time.monotonic() + self.wait_seconds
            while time.monotonic() < deadline:
                if self.shown > shown or ticket not in self.runner.by_ticket:
                    return
                time.sleep(0.02)
            return
        if not self.runner.wait_idle(self.settle_seconds, ticket=ticket):
            self.say("  (still working; replies will appear here as they arrive)")

    def wait(self) -> None:
        """Wait until no work is running (at most ``wait_seconds``)."""
        if not self.runner.wait_idle(self.wait_seconds):
            self.say("  (still working; replies will appear here as they arrive)")

    def wait_command(self, rest: str) -> None:
        if not rest:
            self.wait()
            return
        seconds = self._seconds(rest, "wait")
        if seconds is not None:
            self.runner.wait_idle(seconds)

    def sleep_command(self, rest: str) -> None:
        seconds = self._seconds(rest, "sleep")
        if seconds is not None:
            time.sleep(seconds)

    def _seconds(self, raw: str, command: str) -> float | None:
        try:
            seconds = float(raw.rstrip("s"))
        except ValueError:
            seconds = -1.0
        if not 0 <= seconds <= MAX_SLEEP_SECONDS:
            self.say(f"`{command}` takes a number of seconds from 0 to {MAX_SLEEP_SECONDS:.0f}, not {raw!r}.")
            return None
        return seconds

    def close(self) -> None:
        """The console is leaving: say so if work is still running (it is about to be stopped), and
        print nothing more."""
        if self.closed:
            return
        if self.runner.running:
            self.say("  (leaving: stopping the work still running)")
        self.closed = True

    def prompt(self) -> str:
        if self.pending is not None:
            return f"{self.pending.title} confirm/cancel> "
        return f"{self.person.name}@#{self.channels[self.channel_id]}> "

    def loop(self, stream: Any, *, interactive: bool) -> None:
        self._reader = threading.current_thread()
        if interactive:
            with contextlib.suppress(ImportError):
                import readline  # noqa: F401  (line editing and history for input())
        while True:
            if interactive:
                prompt = self.prompt()
                with self._print_lock:
                    self._prompt = prompt
                try:
                    line = input(prompt)
                except (EOFError, KeyboardInterrupt):  # Ctrl-D or Ctrl-C: leave, as `quit` does
                    self.say("")
                    return
                finally:
                    with self._print_lock:
                        self._prompt = None
            else:
                raw = stream.readline()
                if not raw:
                    return
                line = raw
            if not self.handle(line):
                return
