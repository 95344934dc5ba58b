"""The command framework every listener module uses.

A slash command is declared as a ``Command`` with ``Subcommand``s; a button as a ``ButtonAction``; a modal
submission as a ``ModalSubmit``. The framework wires them into Bolt so that each one:

1. in the ack path (pure, no I/O, milliseconds): parses the text with ``bot.listeners.args``; answers
   ``help`` and usage errors directly; otherwise acks with an ephemeral "working..." line;
2. in a lazy listener (on Lambda a separate asynchronous invocation of the same function): authorizes the
   caller against the policy (mutating actions are denied unless granted), takes an idempotency lock for
   mutating buttons, runs the work, delivers the ``Reply``, and writes exactly one audit record;
3. never shows a stack trace: errors that carry a sentence (``OpsbotError``, translated AWS errors, Slack
   API errors) are shown as such, anything else as a short message with a reference id that is also in
   the log line with the traceback.

Listener modules expose ``register(app)`` and import their core modules inside ``run`` functions, so the
cold start of ``handlers/slack.py`` stays small.
"""

from __future__ import annotations

import json
import logging
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from bot.config import Settings
from bot.errors import NotAllowedError, OpsbotError, UsageError
from bot.listeners.args import (
    HELP_WORDS,
    ArgSpec,
    Flag,
    ParsedArgs,
    Positional,
    clean_text,
    parse,
    quoted,
    redacted_text,
    tokenize,
)
from bot.security import audit
from bot.security.policy import Caller, Decision

# chat.postEphemeral's answers for a channel the bot cannot post in.
NOT_IN_CHANNEL_ERRORS = frozenset({"channel_not_found", "not_in_channel"})

logger = logging.getLogger("opsbot.listeners")

__all__ = [
    "ActionCall",
    "ArgSpec",
    "ButtonAction",
    "Call",
    "Command",
    "Flag",
    "Invocation",
    "ModalSubmit",
    "Positional",
    "Reply",
    "Runtime",
    "Subcommand",
    "ViewCall",
    "register_action",
    "register_command",
    "register_modal",
    "runtime_of",
]

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


# -- declarations ----------------------------------------------------------------------------------


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
        return self.runtime.decide(action, mutating=True, caller=self.caller, client=self.client).allowed

    def authorize(self, action: str, *, mutating: bool = True) -> Decision:
        """Check a further action mid-run (e.g. ``dns.force``); raises NotAllowedError when denied."""
        decision = self.runtime.decide(action, mutating=mutating, caller=self.caller, client=self.client)
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
        return str(self.action.get("value", ""))

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
    # 3 seconds, sooner than a lazy invocation may start. The submission is authorized and audited.
    modal: Callable[[ParsedArgs, Caller], dict[str, Any] | None] | None = None
    examples: tuple[str, ...] = ()
    hidden: bool = False


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


# -- runtime ---------------------------------------------------------------------------------------


class Runtime:
    """Per-app state shared by all listeners: settings, authorizer, the registry, the deadline."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.commands: dict[str, Command] = {}
        self.buttons: dict[str, ButtonAction] = {}
        self.modals: dict[str, ModalSubmit] = {}
        self._authorizer: Any = None
        # Set by the Lambda handler for each invocation (epoch seconds); None outside Lambda.
        self.lambda_deadline: float | None = None
        # lazy function -> what to do when it could not be started (``lazy_not_started``)
        self._unstarted: dict[Callable[..., None], Callable[[Any, BaseException], None]] = {}

    # The authorizer is created after every listener registered (it validates action names).
    def seal(self) -> None:
        from bot.security.authorizer import Authorizer

        self._authorizer = Authorizer(self.settings, self.known_actions())

    @property
    def authorizer(self) -> Any:
        if self._authorizer is None:
            self.seal()
        return self._authorizer

    def known_actions(self) -> set[str]:
        actions = {cmd.action_of(sub) for cmd in self.commands.values() for sub in cmd.subcommands}
        actions |= {action for cmd in self.commands.values() for action in cmd.sensitive}
        actions |= {b.action for b in self.buttons.values()}
        actions |= {m.action for m in self.modals.values()}
        return actions

    def mutating_actions(self) -> set[str]:
        actions = {cmd.action_of(s) for cmd in self.commands.values() for s in cmd.subcommands if s.mutating}
        actions |= {action for cmd in self.commands.values() for action in cmd.sensitive}
        actions |= {b.action for b in self.buttons.values() if b.mutating}
        actions |= {m.action for m in self.modals.values() if m.mutating}
        return actions

    def deadline(self) -> float:
        if self.lambda_deadline is not None:
            return self.lambda_deadline - 5  # leave time to report before Lambda stops us
        return time.time() + DEFAULT_LAZY_SECONDS

    def decide(self, action: str, *, mutating: bool, caller: Caller, client: Any) -> Decision:
        return self.authorizer.decide(
            action, mutating=mutating, user=caller.user_id, channel=caller.channel_id, slack=client
        )

    def on_unstarted(
        self, function: Callable[..., None], handler: Callable[[Any, BaseException], None]
    ) -> None:
        self._unstarted[function] = handler

    def lazy_not_started(self, function: Callable[..., None], request: Any, error: BaseException) -> None:
        """The lazy half of a request could not be handed over (on Lambda: the self-invocation failed).

        Called in the ack path, by the lazy runner: the listener's handler replaces the ack with a sentence
        and writes the audit record the lazy run would have written. Never raises: Bolt would answer 500."""
        handler = self._unstarted.get(function)
        if handler is None:
            logger.error("lazy work could not be started: %s", error, exc_info=error)
            return
        try:
            handler(request, error)
        except Exception:
            logger.exception("lazy work could not be started, and reporting that failed too")

    def audit(
        self,
        *,
        ref: str,
        started: float,
        caller: Caller,
        kind: str,
        command: str,
        action: str,
        args: str,
        outcome: str,
        detail: str = "",
    ) -> None:
        record = audit.build_record(
            ref=ref,
            started=started,
            ended=time.time(),
            user=caller.user_id,
            team=caller.team_id,
            channel=caller.channel_id,
            user_name=caller.user_name,
            kind=kind,
            command=command,
            action=action,
            args=args,
            outcome=outcome,
            detail=detail,
        )
        audit.write(record, state_table=self.settings.state_table, ttl_days=self.settings.audit_ttl_days)


_runtimes: weakref.WeakKeyDictionary[Any, Runtime] = weakref.WeakKeyDictionary()


class _Shared:
    """A context value that Bolt's deep copy for lazy listeners keeps by reference."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __deepcopy__(self, memo: dict[int, Any]) -> _Shared:
        return self


def keep_ack_handle(app: Any) -> None:
    """Let a lazy runner that fails to start answer in the ack after all (``Runtime.lazy_not_started``)."""

    def ack_handle(context: Any, next: Callable[[], Any]) -> Any:  # Bolt passes arguments by name
        if "ack" in context:
            context[ACK_HANDLE] = _Shared(context["ack"])
        return next()

    app.middleware(ack_handle)


def _ack_of(request: Any) -> Any:
    """The ack that answers Slack for ``request``, even when ``request`` is a lazy runner's copy."""
    handle = request.context.get(ACK_HANDLE)
    return handle.value if isinstance(handle, _Shared) else request.context.ack


def bind_runtime(app: Any, runtime: Runtime) -> None:
    _runtimes[app] = runtime


def runtime_of(app: Any) -> Runtime:
    try:
        return _runtimes[app]
    except KeyError:
        raise RuntimeError("build the app with bot.app.build_app, which binds its runtime") from None


# -- helpers ---------------------------------------------------------------------------------------


def caller_from(body: Mapping[str, Any]) -> Caller:
    """The caller of a slash command (flat payload) or an interaction (nested payload)."""
    user = body.get("user")
    if isinstance(user, dict):
        channel = body.get("channel") or {}
        team = body.get("team") or {}
        return Caller(
            user_id=str(user.get("id", "")),
            user_name=str(user.get("username") or user.get("name") or ""),
            team_id=str(team.get("id", "") if isinstance(team, dict) else team or user.get("team_id", "")),
            channel_id=str(channel.get("id", "") if isinstance(channel, dict) else channel or ""),
        )
    return Caller(
        user_id=str(body.get("user_id", "")),
        user_name=str(body.get("user_name", "")),
        team_id=str(body.get("team_id", "")),
        channel_id=str(body.get("channel_id", "")),
    )


def failure(error: BaseException, ref: str) -> tuple[str, str, str]:
    """(message for the user, audit outcome, audit detail) for an exception raised by a run.

    The detail is the sentence for errors that carry one, else only the exception's type: an
    unexpected error's text may hold data that belongs in the log, not the audit record."""
    message, outcome = explain_failure(error, ref)
    return message, outcome, str(error) if isinstance(error, OpsbotError) else type(error).__name__


def explain_failure(error: BaseException, ref: str) -> tuple[str, str]:
    """(message for the user, audit outcome) for an exception raised by a run."""
    if isinstance(error, UsageError):
        return f":warning: {error}", "usage"
    if isinstance(error, NotAllowedError):
        return f":no_entry: {error}", "denied"
    if isinstance(error, OpsbotError):
        return f":x: {error}", "error"
    aws_error = _untranslated_aws_error(error)
    if aws_error is not None:  # a call that skipped bot.aws.errors: still a sentence that says what to fix
        logger.warning("untranslated AWS error ref=%s: %s", ref, error)
        return f":x: {aws_error}", "error"
    try:
        from slack_sdk.errors import SlackApiError
    except ImportError:  # pragma: no cover - slack_sdk is a dependency
        SlackApiError = ()  # type: ignore[assignment,misc]
    if isinstance(error, SlackApiError):
        code = str(error.response.get("error", "unknown_error"))
        hints = {
            "missing_scope": f"the Slack app lacks the scope `{error.response.get('needed', '?')}`; "
            "add it in the app's OAuth settings (manifest.json) and reinstall.",
            "not_in_channel": "invite opsbot to this channel (`/invite @opsbot`) and try again.",
            "channel_not_found": "opsbot cannot see that channel; invite it or check the channel id.",
            "invalid_auth": "the bot token is wrong or revoked; update SLACK_BOT_TOKEN.",
            "ratelimited": "Slack is rate-limiting opsbot; try again in a minute.",
        }
        hint = hints.get(code, "")
        logger.warning("slack api error ref=%s: %s", ref, error)
        return f":x: Slack refused the request (`{code}`){': ' + hint if hint else '.'}", "error"
    logger.exception("unexpected error ref=%s", ref)
    return (
        f":boom: Something went wrong (reference `{ref}`). "
        "The details are in opsbot's log under that reference.",
        "failed",
    )


def _untranslated_aws_error(error: BaseException) -> OpsbotError | None:
    """A botocore error that reached the framework as it was: translated (missing permission, ...)."""
    import sys

    if "botocore" not in sys.modules:  # nothing can have raised one
        return None
    from botocore.exceptions import BotoCoreError, ClientError

    if not isinstance(error, ClientError | BotoCoreError):
        return None
    from bot.aws.errors import translate

    return translate(error)


def fit_text(text: str) -> str:
    """Every text opsbot sends to Slack passes here: longer than Slack's limit, the message would be
    refused and the user would see nothing at all."""
    if len(text) <= MAX_MESSAGE_TEXT:
        return text
    return text[: MAX_MESSAGE_TEXT - 1] + "…"


def _message(text: str, blocks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"text": fit_text(text)}
    if blocks:
        message["blocks"] = blocks
    return message


def _ephemeral(text: str, blocks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"response_type": "ephemeral", **_message(text, blocks)}


def _refusal(response: Any) -> str:
    """'' when Slack took a response_url message, else what it answered (``respond`` does not raise)."""
    status = getattr(response, "status_code", None)
    if status is None or 200 <= int(status) < 300:
        return ""
    body = "".join(c for c in str(getattr(response, "body", "") or "")[:60] if c.isalnum() or c in "_-. ")
    return f"HTTP {status}" + (f" {body.strip()}" if body.strip() else "")


def deliver(respond: Any, reply: Reply, *, ref: str, for_button: bool = False) -> bool:
    """Send the run's reply; if Slack refuses it, a short note with the reference instead. False then."""
    kwargs = _message(reply.text, reply.blocks)
    if for_button and reply.replace_original:
        response = respond(replace_original=True, **kwargs)
    else:
        kind = "in_channel" if reply.in_channel else "ephemeral"
        response = respond(response_type=kind, replace_original=False, **kwargs)
    refused = _refusal(response)
    if not refused:
        return True
    logger.warning("Slack refused the reply ref=%s (%s); sending a short note instead", ref, refused)
    note = f":warning: opsbot's reply could not be shown here (Slack answered {refused}). Reference `{ref}`."
    _safe_respond(respond, f"{note} {reply.if_not_shown}" if reply.if_not_shown else note, ref=ref)
    return False


# -- slash commands --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolved:
    sub: Subcommand | None  # None: help for the whole command
    args: ParsedArgs | None
    tokens: tuple[str, ...]
    help_for: Subcommand | None = None  # help requested for this subcommand


def resolve(command: Command, text: str) -> Resolved:
    """Which subcommand the text asks for and its parsed arguments. Raises UsageError."""
    tokens = tokenize(text)
    own_help = command.find("help")  # /ops has a real "help" subcommand
    asks_help = not tokens or tokens[0].lower() in HELP_WORDS
    if own_help is not None and asks_help and len(tokens) <= 1:
        return Resolved(own_help, parse((), own_help.spec), ())
    if asks_help:
        wanted = command.find(tokens[1].lower()) if len(tokens) > 1 else None
        if len(tokens) > 1 and wanted is None:
            raise UsageError(f"`{command.slash}` has no subcommand {quoted(tokens[1])}.")
        return Resolved(None, None, tuple(tokens), help_for=wanted)
    first = tokens[0].lower()
    sub = command.find(first)
    rest = tokens[1:]
    if sub is None:
        if not command.default:
            names = ", ".join(s.name for s in command.subcommands if not s.hidden)
            raise UsageError(f"`{command.slash}` has no subcommand {quoted(tokens[0])}. Try one of: {names}.")
        sub = command.find(command.default)
        assert sub is not None, f"default subcommand {command.default} of {command.slash} is not declared"
        rest = tokens
    if any(t.lower() in HELP_WORDS for t in rest if t.startswith("-")) or [t.lower() for t in rest] == [
        "help"
    ]:
        return Resolved(None, None, tuple(tokens), help_for=sub)
    args = parse(rest, sub.spec)
    if sub.validate is not None:
        sub.validate(args)
    return Resolved(sub, args, tuple(rest))


def usage_line(command: Command, sub: Subcommand) -> str:
    words = [command.slash] + ([] if sub.name == command.default else [sub.name])
    spec = sub.spec.usage()
    return " ".join(words + ([spec] if spec else []))


def command_help(command: Command, sub: Subcommand | None = None) -> Reply:
    from bot.render.blocks import context, escape, section

    if sub is not None:
        lines = [f"*{escape(usage_line(command, sub))}*", sub.summary]
        details = [f"• `<{p.name}>` {p.help}" for p in sub.spec.positionals if p.help]
        details += [f"• `--{f.name}` {f.help}" for f in sub.spec.flags if f.help]
        if details:
            lines += ["", *details]
        if sub.examples:
            lines += ["", "Examples:", *(f"`{escape(e)}`" for e in sub.examples)]
        note = "Changes things: needs a policy grant." if sub.mutating else "Read-only."
        return Reply(text="\n".join(lines), blocks=[section("\n".join(lines)), context(note)], outcome="help")
    lines = [f"*{command.slash}* — {command.summary}", ""]
    for item in command.subcommands:
        if item.hidden:
            continue
        marker = " :lock:" if item.mutating else ""
        lines.append(f"`{escape(usage_line(command, item))}`{marker}\n      {item.summary}")
    lines += ["", f"`{command.slash} help <subcommand>` for details. :lock: = needs a policy grant."]
    text = "\n".join(lines)
    return Reply(text=text, blocks=[section(text)], outcome="help")


@dataclass
class _CommandPlan:
    """What the lazy half of a command has to do, decided from the text alone (pure, like the ack)."""

    name: str  # for the audit record: "/device activate"
    action: str
    # Set when nothing is left to run because the ack answered (help, usage, quick, form): the outcome.
    outcome: str = ""
    detail: str = ""
    sub: Subcommand | None = None
    args: ParsedArgs | None = None


def _plan_command(command: Command, text: str, caller: Caller, note: Mapping[str, str]) -> _CommandPlan:
    plan = _CommandPlan(command.slash, command.name)
    try:
        resolved = resolve(command, text)
    except UsageError as error:
        plan.outcome, plan.detail = "usage", error.message  # the ack already showed it
        return plan
    if resolved.sub is None:
        plan.outcome = "help"
        return plan
    sub = resolved.sub
    plan.name, plan.action = f"{command.slash} {sub.name}", command.action_of(sub)
    if note.get("outcome"):
        plan.outcome, plan.detail = note["outcome"], note.get("detail", "")
    elif sub.quick is not None:
        plan.outcome = "ok"  # answered in the ack; pure and revealing nothing, so no policy check
    elif sub.modal is not None and resolved.args is not None and sub.modal(resolved.args, caller):
        plan.outcome = "form"  # the form opened in the ack; its submission is authorized and audited
    else:
        plan.sub, plan.args = sub, resolved.args
    return plan


def _views_open_client(client: Any) -> Any:
    """A client for opening a form in the ack: Bolt's per-request client waits 10 s for Slack (and
    retries), longer than Slack waits for the ack."""
    from slack_sdk import WebClient

    return WebClient(
        token=client.token, base_url=client.base_url, timeout=VIEWS_OPEN_TIMEOUT, retry_handlers=[]
    )


def register_command(app: Any, command: Command) -> None:
    """Wire a command into Bolt: ack (parse, help, usage) + lazy (authorize, run, reply, audit)."""
    runtime = runtime_of(app)
    runtime.commands[command.name] = command

    def ack_command(ack: Any, body: dict[str, Any], client: Any, context: Any) -> None:
        text = str(body.get("text", ""))
        try:
            resolved = resolve(command, text)
        except UsageError as error:
            ack(_ephemeral(f":warning: {error}\nTry `{command.slash} help`."))
            return
        if resolved.sub is None:
            reply = command_help(command, resolved.help_for)
            ack(_ephemeral(reply.text, reply.blocks))
            return
        sub = resolved.sub
        assert resolved.args is not None
        if sub.quick is not None:
            reply = sub.quick(runtime, resolved.args, caller_from(body))
            ack(_ephemeral(reply.text, reply.blocks))
            return
        view = sub.modal(resolved.args, caller_from(body)) if sub.modal is not None else None
        if view is not None:
            try:
                _views_open_client(client).views_open(trigger_id=body.get("trigger_id", ""), view=view)
            except Exception as error:
                message, detail = _form_failure(error)
                context[ACK_NOTE] = {"outcome": "error", "detail": detail}
                ack(_ephemeral(message))
                return
            ack()
            return
        ack(_ephemeral(f":hourglass_flowing_sand: {sub.working}"))

    def run_command(body: dict[str, Any], client: Any, respond: Any, context: Any, request: Any) -> None:
        started = time.time()
        ref = audit.new_ref()
        caller = caller_from(body)
        text = str(body.get("text", ""))
        plan = _plan_command(command, text, caller, _ack_note(context, request))
        outcome, detail = plan.outcome or "ok", plan.detail
        try:
            sub = plan.sub
            if sub is None:
                return
            decision = runtime.decide(plan.action, mutating=sub.mutating, caller=caller, client=client)
            if not decision.allowed:
                outcome, detail = "denied", decision.reason
                _safe_respond(
                    respond, f":no_entry: You may not run `{plan.action}`: {decision.reason}", ref=ref
                )
                return
            assert sub.run is not None and plan.args is not None, f"{plan.name} has neither run nor quick"
            call = Call(
                runtime=runtime, caller=caller, client=client, ref=ref, body=body, started=started,
                command=command, sub=sub, args=plan.args, respond=respond,
            )  # fmt: skip
            reply = sub.run(call)
            if reply is not None:
                outcome, detail = reply.outcome, reply.detail
                if not deliver(respond, reply, ref=ref):
                    detail = "; ".join(filter(None, [detail, "the reply was not delivered"]))
        except Exception as error:
            message, outcome, detail = failure(error, ref)
            _safe_respond(respond, message, ref=ref)
        finally:
            runtime.audit(
                ref=ref,
                started=started,
                caller=caller,
                kind="command",
                command=plan.name,
                action=plan.action,
                args=audit_args(command, text),
                outcome=outcome,
                detail=detail,
            )

    def unstarted(request: Any, error: BaseException) -> None:
        started = time.time()
        ref = audit.new_ref()
        body = request.body
        caller = caller_from(body)
        text = str(body.get("text", ""))
        plan = _plan_command(command, text, caller, _ack_note(request.context, None))
        outcome, detail = plan.outcome, plan.detail
        if plan.sub is not None:  # otherwise the ack's answer stands: only the audit record is missing
            message, detail = _not_started(error, ref)
            outcome = "error"
            _ack_of(request)(**_ephemeral(message))
        _audit_soon(
            runtime, ref=ref, started=started, caller=caller, kind="command", command=plan.name,
            action=plan.action, args=audit_args(command, text), outcome=outcome, detail=detail,
        )  # fmt: skip

    runtime.on_unstarted(run_command, unstarted)
    app.command(command.slash)(ack=ack_command, lazy=[run_command])


def _form_failure(error: BaseException) -> tuple[str, str]:
    """(message for the ack, audit detail) when Slack did not open a form."""
    from slack_sdk.errors import SlackApiError

    if isinstance(error, SlackApiError):
        message, _ = explain_failure(error, "")
        return message, f"the form did not open: {error.response.get('error', 'unknown_error')}"
    logger.warning("could not open a form: %r", error)
    return (
        ":x: Slack did not open the form in time. Try again, or give the arguments on the command line "
        "(`help` shows them).",
        f"the form did not open: {type(error).__name__}",
    )


def audit_args(command: Command, text: str) -> str:
    """The command's arguments for the audit record, secrets masked even when the text did not parse."""
    try:
        tokens = tokenize(text)
    except UsageError:
        return _untokenized_args(command, text)
    sub = command.find(tokens[0].lower()) if tokens else None
    if sub is not None:
        return " ".join([tokens[0], redacted_text(tokens[1:], sub.spec)])
    default = command.find(command.default) if command.default else None
    if default is not None:
        return redacted_text(tokens, default.spec)
    return _first_word_only(command, tokens, " ".join(tokens))


def _has_secrets(command: Command) -> bool:
    return any(sub.spec.secret_names() for sub in command.subcommands)


def _first_word_only(command: Command, words: list[str], otherwise: str) -> str:
    """No subcommand matched (a typo, or ``help``): the words after the first may be the secret arguments
    of the subcommand that was meant, so a command with secret arguments keeps only the first word."""
    if not _has_secrets(command):
        return otherwise
    return " ".join(words[:1] + ([audit.MASK] if words[1:] else []))


def _untokenized_args(command: Command, text: str) -> str:
    """The arguments of a text that does not tokenize (a quote not closed): where each argument starts and
    ends is unknown, so for a subcommand with secret arguments only its name and the first argument are
    kept (the pattern-based ``redact`` knows only some formats of secrets)."""
    words = [word.replace('"', "").replace("'", "") for word in clean_text(text).split()]
    sub = command.find(words[0].lower()) if words else None
    head, rest = words[:1], words[1:]
    if sub is None and command.default:
        sub = command.find(command.default)
        head, rest = [], words
    if sub is None:
        return _first_word_only(command, words, audit.redact(text))
    if not sub.spec.secret_names():
        return audit.redact(text)
    first = rest[0] if rest else ""
    positionals = sub.spec.positionals
    if first and not first.startswith("-") and positionals and not positionals[0].secret:
        head.append(first)
        rest = rest[1:]
    return " ".join(head + ([audit.MASK] if rest else []))


def _safe_respond(respond: Any, text: str, *, ref: str = "") -> None:
    """Send a message to the user; never raises. If Slack refuses it, a short plain one instead."""
    try:
        refused = _refusal(respond(**_ephemeral(text)))
        if refused:
            logger.warning("Slack refused a message ref=%s (%s); sending a short one instead", ref, refused)
            short = "opsbot could not show its message here" + (f" (reference `{ref}`)." if ref else ".")
            refused = _refusal(respond(response_type="ephemeral", replace_original=False, text=short))
            if refused:
                logger.error("Slack refused the short message ref=%s too (%s)", ref, refused)
    except Exception:
        logger.exception("could not deliver a message to the user ref=%s", ref)


def _ack_note(context: Any, request: Any) -> dict[str, str]:
    """What the ack already settled for this request (``ACK_NOTE``), if anything."""
    note = context.get(ACK_NOTE) if context is not None else None
    if not note and request is not None:
        values = (getattr(request, "headers", None) or {}).get(ACK_NOTE_HEADER) or []
        raw = values if isinstance(values, str) else (values[0] if values else "")
        try:
            note = json.loads(raw) if raw else None
        except (TypeError, ValueError):
            note = None
    if not isinstance(note, dict):
        return {}
    return {"outcome": str(note.get("outcome", "")), "detail": str(note.get("detail", ""))}


def _not_started(error: BaseException, ref: str) -> tuple[str, str]:
    """(message for the user, audit detail) when the lazy half of a request could not be handed over."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionError,
        HTTPClientError,
        ReadTimeoutError,
    )

    from bot.aws.errors import THROTTLING_CODES, error_code, translate

    sentence = ""
    if isinstance(error, ClientError) and error_code(error) in THROTTLING_CODES:
        sentence = (
            f"AWS Lambda is throttling opsbot ({error_code(error)}), so the work was not started. "
            "Try again in a minute."
        )
    elif isinstance(error, ReadTimeoutError):
        # The request reached Lambda: the invocation may have been queued after all.
        sentence = (
            "AWS Lambda did not confirm in time that the work started; it may still run. "
            "If no answer follows within a minute, try again."
        )
    elif isinstance(error, (ConnectionError, HTTPClientError)):
        sentence = (
            "opsbot could not reach AWS Lambda in time to start the work "
            f"({type(error).__name__}). Try again in a minute."
        )
    elif isinstance(error, (ClientError, BotoCoreError)):
        sentence = str(translate(error))
    elif isinstance(error, OpsbotError):
        sentence = str(error)
    if sentence:
        logger.error("lazy work not started ref=%s: %s", ref, sentence)
        return f":x: {sentence}", sentence
    logger.error("lazy work not started ref=%s", ref, exc_info=error)
    return (
        f":boom: opsbot could not start the work (reference `{ref}`). "
        "The details are in opsbot's log under that reference.",
        type(error).__name__,
    )


def _audit_soon(runtime: Runtime, **record: Any) -> None:
    """Write an audit record from the ack path without holding the ack for long: AWS may be what failed,
    and the table item would then wait for retries. The ack waits ``UNSTARTED_AUDIT_SECONDS`` at most."""
    _audit_soon_call(lambda: runtime.audit(**record))


def _audit_soon_call(write: Callable[[], None]) -> None:
    import threading

    writer = threading.Thread(target=write, name="opsbot-audit", daemon=True)
    writer.start()
    writer.join(UNSTARTED_AUDIT_SECONDS)


# -- buttons ---------------------------------------------------------------------------------------


def default_idempotency_key(call: ActionCall) -> str:
    return f"{call.button.action_id}:{call.channel_id}:{call.message_ts}:{call.value}"


def register_action(app: Any, button: ButtonAction) -> None:
    runtime = runtime_of(app)
    runtime.buttons[button.action_id] = button

    def ack_action(ack: Any) -> None:
        ack()

    def run_action(body: dict[str, Any], client: Any, respond: Any) -> None:
        started = time.time()
        ref = audit.new_ref()
        caller = caller_from(body)
        action_payload: dict[str, Any] = next(
            (a for a in body.get("actions", []) if a.get("action_id") == button.action_id), {}
        )
        call = ActionCall(
            runtime=runtime, caller=caller, client=client, ref=ref, body=body, started=started,
            button=button, respond=respond, action=action_payload,
        )  # fmt: skip
        outcome, detail = "ok", ""
        lock_key = ""
        try:
            decision = runtime.decide(button.action, mutating=button.mutating, caller=caller, client=client)
            if not decision.allowed:
                outcome, detail = "denied", decision.reason
                _safe_respond(
                    respond, f":no_entry: You may not run `{button.action}`: {decision.reason}", ref=ref
                )
                return
            state = None
            if button.mutating:
                from bot.aws.state import StateTable

                state = StateTable(runtime.settings.state_table)
                lock_key = (button.idempotency_key or default_idempotency_key)(call)
                holder = {"user": caller.user_id, "at": int(started), "ref": ref, "outcome": "running"}
                lock = state.acquire_lock(lock_key, holder, ttl_seconds=button.lock_seconds)
                if not lock.acquired:
                    outcome = "duplicate"
                    who = lock.holder.get("user", "someone")
                    when = lock.holder.get("at")
                    did = lock.holder.get("outcome", "running")
                    at = f" at <!date^{when}^{{date_short_pretty}} {{time}}|{when}>" if when else ""
                    _safe_respond(
                        respond,
                        f":information_source: Already done by <@{who}>{at} ({did}); nothing was changed again.",
                        ref=ref,
                    )
                    lock_key = ""
                    return
            reply = button.run(call)
            if reply is not None:
                outcome, detail = reply.outcome, reply.detail
                if not deliver(respond, reply, ref=ref, for_button=True):
                    detail = "; ".join(filter(None, [detail, "the reply was not delivered"]))
            if state is not None and lock_key:
                holder = {"user": caller.user_id, "at": int(started), "ref": ref, "outcome": outcome}
                state.update_lock(lock_key, holder, ttl_seconds=button.lock_seconds)
                lock_key = ""
        except Exception as error:
            message, outcome, detail = failure(error, ref)
            _safe_respond(respond, message, ref=ref)
        finally:
            if lock_key:
                # The work failed: let a later click try again rather than claim it was done.
                try:
                    from bot.aws.state import StateTable

                    StateTable(runtime.settings.state_table).release_lock(lock_key)
                except Exception:
                    logger.exception("could not release lock %s", lock_key)
            runtime.audit(
                ref=ref,
                started=started,
                caller=caller,
                kind="action",
                command=f"button {button.action_id}",
                action=button.action,
                args=call.value,
                outcome=outcome,
                detail=detail,
            )

    def unstarted(request: Any, error: BaseException) -> None:
        started = time.time()
        ref = audit.new_ref()
        body = request.body
        action_payload: dict[str, Any] = next(
            (a for a in body.get("actions", []) if a.get("action_id") == button.action_id), {}
        )
        message, detail = _not_started(error, ref)
        # Slack shows nothing of a button's ack: the note goes to the response_url, briefly.
        _post_to_response_url(str(body.get("response_url", "")), message, ref=ref)
        _audit_soon(
            runtime, ref=ref, started=started, caller=caller_from(body), kind="action",
            command=f"button {button.action_id}", action=button.action,
            args=str(action_payload.get("value", "")), outcome="error", detail=detail,
        )  # fmt: skip

    runtime.on_unstarted(run_action, unstarted)
    app.action(button.action_id)(ack=ack_action, lazy=[run_action])


def _post_to_response_url(url: str, text: str, *, ref: str) -> None:
    """An ephemeral note from the ack path, with a short timeout (Slack waits 3 s for the ack)."""
    if not url:
        return
    try:
        from slack_sdk.webhook import WebhookClient

        response = WebhookClient(url, timeout=VIEWS_OPEN_TIMEOUT).send(
            text=fit_text(text), response_type="ephemeral", replace_original=False
        )
        refused = _refusal(response)
        if refused:
            logger.warning("Slack refused a note ref=%s (%s)", ref, refused)
    except Exception as error:
        logger.warning("could not send a note ref=%s: %r", ref, error)


def register_link_buttons(app: Any) -> None:
    """Link buttons (``action_id`` starting with ``link:``) open their URL in the browser and still send a
    click: ack it, and record the click (outcome ``link``) like every other one."""
    import re

    runtime = runtime_of(app)

    def ack_link(ack: Any) -> None:
        ack()

    def record(body: Mapping[str, Any], started: float) -> None:
        actions = [a for a in body.get("actions", []) if str(a.get("action_id", "")).startswith("link:")]
        clicked = actions[0] if actions else {}
        runtime.audit(
            ref=audit.new_ref(),
            started=started,
            caller=caller_from(body),
            kind="action",
            command=f"button {clicked.get('action_id', 'link:')}",
            action="link",
            args=str(clicked.get("url") or clicked.get("value") or "")[:300],
            outcome="link",
        )

    def run_link(body: dict[str, Any]) -> None:
        record(body, time.time())

    def unstarted(request: Any, error: BaseException) -> None:
        logger.warning("link click not recorded in the background (%r); recording it now", error)
        started = time.time()
        _audit_soon_call(lambda: record(request.body, started))

    runtime.on_unstarted(run_link, unstarted)
    app.action(re.compile(r"^link:"))(ack=ack_link, lazy=[run_link])


# -- modals ----------------------------------------------------------------------------------------


def view_values(body: Mapping[str, Any]) -> dict[str, str]:
    """block_id -> the submitted value of the single input in that block."""
    state = ((body.get("view") or {}).get("state") or {}).get("values") or {}
    values: dict[str, str] = {}
    for block_id, inputs in state.items():
        for element in inputs.values():
            value = element.get("value")
            if value is None and element.get("selected_option"):
                value = element["selected_option"].get("value")
            values[block_id] = "" if value is None else str(value).strip()
    return values


def register_modal(app: Any, modal: ModalSubmit) -> None:
    runtime = runtime_of(app)
    runtime.modals[modal.callback_id] = modal

    def ack_view(ack: Any, body: dict[str, Any]) -> None:
        errors = modal.validate(view_values(body)) if modal.validate else {}
        if errors:
            ack(response_action="errors", errors=dict(errors))
        else:
            ack()

    def audit_view(body: Mapping[str, Any], **record: Any) -> dict[str, Any]:
        values = view_values(body)
        return dict(
            caller=replace(caller_from(body), channel_id=str(_view_metadata(body).get("channel", ""))),
            kind="view",
            command=f"modal {modal.callback_id}",
            action=modal.action,
            args=json.dumps(modal.audit_values(values), sort_keys=True),
            **record,
        )

    def invalid(values: Mapping[str, str]) -> str:
        """The inputs the ack showed errors under, as the audit detail ('' when valid). Only their names:
        a message may quote what was typed, and a secret typed into the wrong field belongs in neither."""
        errors = modal.validate(values) if modal.validate else {}
        return f"invalid: {', '.join(sorted(errors))}" if errors else ""

    def run_view(body: dict[str, Any], client: Any) -> None:
        started = time.time()
        ref = audit.new_ref()
        values = view_values(body)
        rejected = invalid(values)
        if rejected:  # the modal showed the errors; nothing ran
            runtime.audit(**audit_view(body, ref=ref, started=started, outcome="usage", detail=rejected))
            return
        metadata = _view_metadata(body)
        caller = replace(caller_from(body), channel_id=str(metadata.get("channel", "")))
        call = ViewCall(
            runtime=runtime, caller=caller, client=client, ref=ref, body=body, started=started,
            modal=modal, values=values, metadata=metadata,
        )  # fmt: skip
        outcome, detail = "ok", ""

        def tell(text: str, blocks: list[dict[str, Any]] | None = None) -> None:
            from slack_sdk.errors import SlackApiError

            kwargs = _message(text, blocks)
            if caller.channel_id:
                try:
                    client.chat_postEphemeral(channel=caller.channel_id, user=caller.user_id, **kwargs)
                    return
                except SlackApiError as error:
                    # A form has no response URL: in a channel the bot is not in (a private channel, a DM
                    # between people) Slack refuses the ephemeral, and the answer goes to the user's DM.
                    if error.response.get("error") not in NOT_IN_CHANNEL_ERRORS:
                        raise
            client.chat_postMessage(channel=caller.user_id, **kwargs)

        try:
            decision = runtime.decide(modal.action, mutating=modal.mutating, caller=caller, client=client)
            if not decision.allowed:
                outcome, detail = "denied", decision.reason
                tell(f":no_entry: You may not run `{modal.action}`: {decision.reason}")
                return
            reply = modal.run(call)
            if reply is not None:
                tell(reply.text, reply.blocks)
                outcome, detail = reply.outcome, reply.detail
        except Exception as error:
            message, outcome, detail = failure(error, ref)
            try:
                tell(message)
            except Exception:
                logger.exception("could not deliver an error message to the user")
        finally:
            runtime.audit(**audit_view(body, ref=ref, started=started, outcome=outcome, detail=detail))

    def unstarted(request: Any, error: BaseException) -> None:
        started = time.time()
        ref = audit.new_ref()
        body = request.body
        rejected = invalid(view_values(body))
        if rejected:  # the ack showed the errors in the form: only the audit record is missing
            record = audit_view(body, ref=ref, started=started, outcome="usage", detail=rejected)
        else:
            message, detail = _not_started(error, ref)
            blocks = list(view_values(body))
            if blocks:  # keep the form open, the sentence under its first input
                _ack_of(request)(response_action="errors", errors={blocks[0]: message[:300]})
            record = audit_view(body, ref=ref, started=started, outcome="error", detail=detail)
        _audit_soon(runtime, **record)

    runtime.on_unstarted(run_view, unstarted)
    app.view(modal.callback_id)(ack=ack_view, lazy=[run_view])


def _view_metadata(body: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON object a modal was opened with (``private_metadata``); {} when absent or garbled."""
    try:
        metadata = json.loads((body.get("view") or {}).get("private_metadata") or "{}")
    except ValueError:
        return {}
    return metadata if isinstance(metadata, dict) else {}
