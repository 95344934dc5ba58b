"""What a listener module declares: commands and subcommands, buttons, modal submissions, the call
objects their functions receive and the ``Reply`` they return; the limits the framework works within.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.config import Settings
from bot.errors import NotAllowedError
from bot.listeners.args import (
    ArgSpec,
    ParsedArgs,
)
from bot.security import audit
from bot.security.policy import Caller, Decision

if TYPE_CHECKING:
    from bot.listeners.framework.runtime import Runtime


# chat.postEphemeral's answers for a channel the bot cannot post in.
NOT_IN_CHANNEL_ERRORS = frozenset({"channel_not_found", "not_in_channel"})


LOCK_TTL_SECONDS = 86400


# Lambda's own limit is the function timeout; outside Lambda a lazy run gets this long.
DEFAULT_LAZY_SECONDS = 900


# Slack refuses a message (ack, response_url, chat.postEphemeral) whose text is longer than this.
MAX_MESSAGE_TEXT = 4000


# Slack gives an ack 3 seconds; a form opened in the ack gets this long from Slack's Web API.
VIEWS_OPEN_TIMEOUT = 2


# When the lazy half could not be handed over, the ack waits this long for the audit record's item.
UNSTARTED_AUDIT_SECONDS = 0.5


# What the ack already settled (e.g. the form could not be opened), for the lazy run's audit record: in the
# Bolt context for lazy runs in threads, in this header of the re-invocation event on Lambda.
ACK_NOTE = "opsbot_ack_note"


ACK_NOTE_HEADER = "x-opsbot-ack-note"


# The request's own ``ack``, in the context: Bolt hands lazy runners a deep copy of the request, whose
# ``ack`` would no longer change what the ack path returns.
ACK_HANDLE = "opsbot_ack_handle"


@dataclass(frozen=True)
class Reply:
    """What a run returns; the framework delivers it.

    Commands: ephemeral to the caller unless ``in_channel``. Buttons: ``replace_original`` updates the
    message the button was on (e.g. to show who did what), otherwise an ephemeral note to the clicker.
    ``outcome`` is the audit outcome (``ok`` unless the run says otherwise, e.g. ``wrong-code``).
    """

    text: str
    blocks: list[dict[str, Any]] | None = None
    in_channel: bool = False
    replace_original: bool = False
    outcome: str = "ok"
    detail: str = ""
    # Added to the short note that replaces a reply Slack refused: what the user must know all the same
    # (the work was done, how to see its result).
    if_not_shown: str = ""


@dataclass(kw_only=True)
class Invocation:
    """What every lazy run (command, button, modal) shares: who asked, how to answer, the time left."""

    runtime: Runtime
    caller: Caller
    client: Any  # slack_sdk.WebClient pointed at SLACK_API_URL
    ref: str  # the reference id in the audit record and the log
    body: Mapping[str, Any]  # the Slack payload
    started: float = field(default_factory=time.time)
    # The account (its name in OPSBOT_ACCOUNTS, "" = opsbot's own) and region the run's AWS calls go to.
    account: str = ""
    region: str = ""

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def channel_id(self) -> str:
        return self.caller.channel_id

    @property
    def user_id(self) -> str:
        return self.caller.user_id

    @property
    def trigger_id(self) -> str:
        return str(self.body.get("trigger_id", ""))

    def seconds_left(self) -> float:
        """Time before the Lambda invocation running this call is stopped (minus a safety margin)."""
        return self.runtime.deadline() - time.time()

    def may(self, action: str) -> bool:
        """Whether the caller holds a grant for ``action`` (a command's ``sensitive`` one): no error, so a
        run can show less rather than refuse."""
        return self.runtime.decide(
            action, mutating=True, caller=self.caller, client=self.client, account=self.account
        ).allowed

    def authorize(self, action: str, *, mutating: bool = True) -> Decision:
        """Check a further action mid-run (e.g. ``dns.force``); raises NotAllowedError when denied."""
        decision = self.runtime.decide(
            action, mutating=mutating, caller=self.caller, client=self.client, account=self.account
        )
        if not decision.allowed:
            raise NotAllowedError(f"You may not run `{action}`: {decision.reason}")
        return decision


@dataclass(kw_only=True)
class Call(Invocation):
    """A lazy run of a slash command."""

    command: Command
    sub: Subcommand
    args: ParsedArgs
    respond: Any  # slack_bolt Respond (posts to the response_url)


@dataclass(kw_only=True)
class ActionCall(Invocation):
    """A lazy run of a button click."""

    button: ButtonAction
    respond: Any
    action: Mapping[str, Any]

    @property
    def value(self) -> str:
        """A button's value, or the option chosen in an overflow menu, a select or radio buttons."""
        if "value" in self.action:
            return str(self.action.get("value", ""))
        selected = self.action.get("selected_option")
        return str(selected.get("value", "")) if isinstance(selected, Mapping) else ""

    @property
    def message(self) -> Mapping[str, Any]:
        return self.body.get("message") or {}

    @property
    def message_ts(self) -> str:
        container = self.body.get("container") or {}
        return str(container.get("message_ts") or self.message.get("ts") or "")


@dataclass(kw_only=True)
class ViewCall(Invocation):
    """A submitted modal: ``values`` maps each input's block_id to its value; ``metadata`` is the
    JSON object the modal was opened with (``private_metadata``), e.g. the channel to answer in."""

    modal: ModalSubmit
    values: Mapping[str, str]
    metadata: Mapping[str, Any]


@dataclass(frozen=True)
class Subcommand:
    name: str
    summary: str
    run: Callable[[Call], Reply | None] | None = None  # lazy work
    spec: ArgSpec = field(default_factory=ArgSpec)
    mutating: bool = False
    action: str = ""  # policy action; defaults to "<command>.<name>"
    working: str = "Working on it…"
    # Answered in the ack itself (must be pure and fast), e.g. static help. No policy check: only for
    # answers that reveal nothing and change nothing.
    quick: Callable[[Runtime, ParsedArgs, Caller], Reply] | None = None
    validate: Callable[[ParsedArgs], None] | None = None  # extra pure checks in the ack path
    # A form to open instead of running (e.g. `/device activate` without arguments): returns the modal
    # view, or None to run normally. Opened in the ack itself, because Slack's trigger_id expires after
    # 3 seconds, sooner than a lazy invocation may start. The submission is authorized and audited, and
    # goes to the account the command was aimed at (the framework adds it to the view's private_metadata,
    # which must be a JSON object if the view sets it).
    modal: Callable[[ParsedArgs, Caller], dict[str, Any] | None] | None = None
    examples: tuple[str, ...] = ()
    hidden: bool = False
    # Added to the refusal of an account id given to ``--account`` that names no configured account, with
    # ``{id}`` standing for it: where a flag once took an id (the doctor's ``--expect-account``).
    account_id_hint: str = ""
    # Runs in opsbot's own account while OPSBOT_ACCOUNTS is malformed, instead of being refused like every
    # other command: the doctor, which reports the configuration as a failing check with the fix.
    diagnoses_config: bool = False


@dataclass(frozen=True)
class Command:
    name: str  # without the slash: "device"
    summary: str
    subcommands: tuple[Subcommand, ...]
    # Used when the first word is not a subcommand name, e.g. "/apilogs <id>" runs "lookup".
    default: str = ""
    # Actions checked inside a run (``Invocation.may``) that show sensitive data, such as the owners of
    # devices: like mutating actions they need a grant, and /ops whoami lists them.
    sensitive: tuple[str, ...] = ()

    @property
    def slash(self) -> str:
        return f"/{self.name}"

    def find(self, name: str) -> Subcommand | None:
        for sub in self.subcommands:
            if sub.name == name:
                return sub
        return None

    def action_of(self, sub: Subcommand) -> str:
        return sub.action or f"{self.name}.{sub.name}"


@dataclass(frozen=True)
class ButtonAction:
    action_id: str  # e.g. "mail:reenable"
    run: Callable[[ActionCall], Reply | None]
    action: str  # policy action, e.g. "mail.reenable"
    mutating: bool = True
    # Mutating clicks take a lock on this key, so a double click (or two people) does the work once.
    # Default: action id + channel + message ts + button value.
    idempotency_key: Callable[[ActionCall], str] | None = None
    lock_seconds: int = LOCK_TTL_SECONDS


@dataclass(frozen=True)
class ModalSubmit:
    callback_id: str
    run: Callable[[ViewCall], Reply | None]
    action: str
    mutating: bool = True
    # Pure validation in the ack path: block_id -> error shown under that input in the modal.
    validate: Callable[[Mapping[str, str]], Mapping[str, str]] | None = None
    secret_fields: frozenset[str] = frozenset()
    # When set, the audit record shows only these fields and masks all others: for forms where a secret
    # typed into the wrong field must stay out of the record as well.
    shown_fields: frozenset[str] | None = None

    def audit_values(self, values: Mapping[str, str]) -> dict[str, str]:
        def shown(name: str) -> bool:
            if name in self.secret_fields:
                return False
            return self.shown_fields is None or name in self.shown_fields

        return {name: (value if shown(name) else audit.MASK) for name, value in values.items()}
