"""Slash commands: resolve the subcommand, parse, answer help and usage errors in the ack, run the rest lazily."""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.errors import ConfigError, UsageError
from bot.listeners.args import (
    HELP_WORDS,
    ParsedArgs,
    clean_text,
    parse,
    quoted,
    redacted_text,
    tokenize,
)
from bot.listeners.framework.accounts import FORM_PLACE, GlobalFlags, split_globals
from bot.listeners.framework.declarations import (
    ACK_NOTE,
    ACK_NOTE_HEADER,
    VIEWS_OPEN_TIMEOUT,
    Call,
    Command,
    Reply,
    Subcommand,
)
from bot.listeners.framework.delivery import deliver, ephemeral, safe_respond
from bot.listeners.framework.failures import failure, form_failure, not_started, usage_text
from bot.listeners.framework.runtime import (
    Place,
    Runtime,
    ack_of,
    audit_soon,
    caller_from,
    quiet_place,
    runtime_of,
)
from bot.security import audit
from bot.security.policy import Caller


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
    if own_help is not None and asks_help:
        # /ops has a real "help" subcommand: `/ops help whoami` is help on its own subcommand, anything
        # else (`/ops help dns`) is for that subcommand to answer.
        own = command.find(tokens[1].lower()) if len(tokens) > 1 else None
        if own is not None:
            return Resolved(None, None, tuple(tokens), help_for=own)
        args = parse(tokens[1:], own_help.spec)
        if own_help.validate is not None:
            own_help.validate(args)
        return Resolved(own_help, args, tuple(tokens[1:]))
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


def is_mutating(command: Command, sub: Subcommand, mutating: Collection[str] = ()) -> bool:
    """Whether running ``sub`` needs a policy grant: it is declared mutating, or its action is one the
    framework treats as mutating (``Runtime.mutating_actions``: a button's or a form's, say)."""
    return sub.mutating or command.action_of(sub) in mutating


LOCK_NOTE = ":lock: = needs a policy grant."


def command_help(command: Command, sub: Subcommand | None = None, mutating: Collection[str] = ()) -> Reply:
    """Help for a command (its subcommands, :lock: on those that need a grant) or for one subcommand.
    ``mutating``: the actions the framework treats as mutating, when known."""
    from bot.render.blocks import context, escape, section

    if sub is not None:
        lines = [f"*{escape(usage_line(command, sub))}*", sub.summary]
        details = [f"• `<{p.name}>` {p.help}" for p in sub.spec.positionals if p.help]
        details += [f"• `--{f.name}` {f.help}" for f in sub.spec.flags if f.help]
        if details:
            lines += ["", *details]
        if sub.examples:
            lines += ["", "Examples:", *(f"`{escape(e)}`" for e in sub.examples)]
        locked = is_mutating(command, sub, mutating)
        note = "Changes things: needs a policy grant." if locked else "Read-only."
        return Reply(text="\n".join(lines), blocks=[section("\n".join(lines)), context(note)], outcome="help")
    lines = [f"*{command.slash}* — {command.summary}", ""]
    locks = False
    for item in command.subcommands:
        if item.hidden:
            continue
        locked = is_mutating(command, item, mutating)
        locks = locks or locked
        marker = " :lock:" if locked else ""
        lines.append(f"`{escape(usage_line(command, item))}`{marker}\n      {item.summary}")
    # The lock's legend only where a line shows one.
    lines += ["", f"`{command.slash} help <subcommand>` for details." + (f" {LOCK_NOTE}" if locks else "")]
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
    flags: GlobalFlags = field(default_factory=GlobalFlags)  # --account and --region
    # The subcommand the text names is aimed at an account (not help, usage or a quick answer): its audit
    # record names the account even when the ack settled the outcome (a denial, a form).
    aimed: Subcommand | None = None


def _plan_command(command: Command, text: str, caller: Caller, note: Mapping[str, str]) -> _CommandPlan:
    plan = _CommandPlan(command.slash, command.name)
    try:
        text, plan.flags = split_globals(command, text)
        resolved = resolve(command, text)
    except UsageError as error:
        plan.outcome, plan.detail = "usage", error.message  # the ack already showed it
        return plan
    if resolved.sub is None:
        plan.outcome = "help"
        return plan
    sub = resolved.sub
    plan.name, plan.action = f"{command.slash} {sub.name}", command.action_of(sub)
    plan.aimed = sub if sub.quick is None else None
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
            text, flags = split_globals(command, text)
            resolved = resolve(command, text)
        except UsageError as error:
            ack(ephemeral(f":warning: {usage_text(error)}\nTry `{command.slash} help`."))
            return
        if resolved.sub is None:
            reply = command_help(command, resolved.help_for, runtime.mutating_actions())
            ack(ephemeral(reply.text, reply.blocks))
            return
        sub = resolved.sub
        assert resolved.args is not None
        if sub.quick is not None:
            reply = sub.quick(runtime, resolved.args, caller_from(body))
            ack(ephemeral(reply.text, reply.blocks))
            return
        caller = caller_from(body)
        try:
            place = ack_place(runtime, caller, flags, sub)
        except UsageError as error:
            from bot.core.common.accounts import with_account_id_hint

            error = with_account_id_hint(error, flags.account, sub.account_id_hint)
            context[ACK_NOTE] = {"outcome": "usage", "detail": error.message}
            ack(ephemeral(f":warning: {usage_text(error)}"))
            return
        except ConfigError as error:  # OPSBOT_ACCOUNTS is malformed: nothing can be aimed anywhere
            context[ACK_NOTE] = {"outcome": "error", "detail": error.message}
            ack(ephemeral(f":x: {error}"))
            return
        action = command.action_of(sub)
        decision = (
            runtime.decide_now(action, mutating=sub.mutating, caller=caller, account=place.account.name)
            if place is not None
            else None
        )
        if decision is not None and not decision.allowed:
            # Refused from the user id and channel alone: say so now, not after a "working" line or a form
            # to fill in (an activation code typed only to be refused). The lazy half only writes the
            # audit record (it keeps AWS out of the ack).
            assert place is not None
            context[ACK_NOTE] = {"outcome": "denied", "detail": decision.reason}
            ack(ephemeral(place.tell(f":no_entry: You may not run `{action}`: {decision.reason}")))
            return
        view = sub.modal(resolved.args, caller) if sub.modal is not None else None
        if view is not None:
            view = aimed_form(view, runtime, flags, place)
            try:
                _views_open_client(client).views_open(trigger_id=body.get("trigger_id", ""), view=view)
            except Exception as error:
                message, detail = form_failure(error)
                context[ACK_NOTE] = {"outcome": "error", "detail": detail}
                ack(ephemeral(message))
                return
            ack()
            return
        if decision is None:
            # Only a Slack user-group lookup (or the policy's fetch) can tell: the ack promises no work.
            ack(ephemeral(f":hourglass_flowing_sand: Checking that you may run `{action}`…"))
            return
        ack(ephemeral(f":hourglass_flowing_sand: {sub.working}"))

    def run_command(body: dict[str, Any], client: Any, respond: Any, context: Any, request: Any) -> None:
        started = time.time()
        ref = audit.new_ref()
        caller = caller_from(body)
        text = str(body.get("text", ""))
        plan = _plan_command(command, text, caller, _ack_note(context, request))
        outcome, detail = plan.outcome or "ok", plan.detail
        place = None
        try:
            sub = plan.sub
            if sub is None:
                aimed = plan.aimed
                if aimed is not None:  # the ack settled it (a denial, a form): the record says where
                    place = quiet_place(lambda: lazy_place(runtime, caller, plan.flags, aimed))
                return
            place = lazy_place(runtime, caller, plan.flags, sub)
            decision = runtime.decide(
                plan.action, mutating=sub.mutating, caller=caller, client=client, account=place.account.name
            )
            if not decision.allowed:
                outcome, detail = "denied", decision.reason
                safe_respond(
                    respond,
                    place.tell(f":no_entry: You may not run `{plan.action}`: {decision.reason}"),
                    ref=ref,
                )
                return
            assert sub.run is not None and plan.args is not None, f"{plan.name} has neither run nor quick"
            call = Call(
                runtime=runtime, caller=caller, client=place.dress_client(client), ref=ref, body=body,
                started=started,
                command=command, sub=sub, args=plan.args, respond=respond,
                account=place.account.name, region=place.region,
            )  # fmt: skip
            from bot.aws.clients import use_target  # on first use: the cold start loads no boto3 code

            with use_target(place.target(caller.user_id, mutating=sub.mutating)):
                reply = sub.run(call)
            if reply is not None:
                reply = place.dress(reply)
                outcome, detail = reply.outcome, reply.detail
                if not deliver(respond, reply, ref=ref):
                    detail = "; ".join(filter(None, [detail, "the reply was not delivered"]))
        except Exception as error:
            message, outcome, detail = failure(error, ref)
            safe_respond(respond, place.tell(message) if place is not None else message, ref=ref)
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
                **(place.audit_fields() if place is not None else {}),
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
            message, detail = not_started(error, ref)
            outcome = "error"
            ack_of(request)(**ephemeral(message))
        place = quiet_place(lambda: runtime.place_now(caller, plan.flags)) if plan.aimed else None
        audit_soon(
            runtime, ref=ref, started=started, caller=caller, kind="command", command=plan.name,
            action=plan.action, args=audit_args(command, text), outcome=outcome, detail=detail,
            **(place.audit_fields() if place is not None else {}),
        )  # fmt: skip

    runtime.on_unstarted(run_command, unstarted)
    app.command(command.slash)(ack=ack_command, lazy=[run_command])


def ack_place(runtime: Runtime, caller: Caller, flags: GlobalFlags, sub: Subcommand) -> Place | None:
    """Where a command goes, as far as the ack can tell without I/O (``Runtime.place_now``): refused here,
    an unknown account or a region outside the list of the account the command would go to (the
    channel's, when the policy is at hand). A subcommand that ``diagnoses_config`` runs in opsbot's own
    account while OPSBOT_ACCOUNTS is malformed, to report it."""
    if _unconfigured(runtime, flags, sub):
        return _own_place(runtime)
    return runtime.place_now(caller, flags)


def lazy_place(runtime: Runtime, caller: Caller, flags: GlobalFlags, sub: Subcommand) -> Place:
    """``Runtime.place``, with the exception of ``ack_place`` for a subcommand that diagnoses the
    configuration."""
    if _unconfigured(runtime, flags, sub):
        return _own_place(runtime)
    return runtime.place(caller, flags)


def _unconfigured(runtime: Runtime, flags: GlobalFlags, sub: Subcommand) -> bool:
    """OPSBOT_ACCOUNTS is malformed and ``sub`` may run all the same (no --account or --region to honour)."""
    if not sub.diagnoses_config or flags.given:
        return False
    try:
        runtime.accounts()
    except ConfigError:
        return True
    return False


def _own_place(runtime: Runtime) -> Place:
    from bot.core.common.accounts import OWN_ACCOUNT

    return Place(OWN_ACCOUNT, runtime.settings.region)


def aimed_form(
    view: dict[str, Any], runtime: Runtime, flags: GlobalFlags, place: Place | None
) -> dict[str, Any]:
    """A form opened by a command aimed at an account: its submission goes there, as the command would
    have (``FORM_PLACE`` in its private_metadata, chosen again and authorized again for that account on
    submit), and, with several accounts, the form says which. Unchanged without OPSBOT_ACCOUNTS.
    ``place`` None: the ack could not tell the channel's account (the policy was not at hand)."""
    from bot.render.blocks import context

    if place is not None and not place.configured:
        return view
    metadata = json.loads(view.get("private_metadata") or "{}")
    if not isinstance(metadata, dict):
        raise TypeError(f"the form of {view.get('callback_id')} needs a JSON object as private_metadata")
    # The account as chosen now (what the form says), else as typed: then chosen on submit, where the
    # policy is at hand. opsbot's own account without a name is what the default chain gives: no name.
    aimed = (
        {"account": place.account.name, "region": place.region}
        if place is not None
        else {"account": flags.account, "region": flags.region}
    )
    metadata[FORM_PLACE] = {key: value for key, value in aimed.items() if value}
    view = {**view, "private_metadata": json.dumps(metadata)}
    if place.named if place is not None else runtime.accounts().several:
        line = place.context_line() if place is not None else ":cloud: Goes to this channel's account."
        view["blocks"] = [context(line), *view.get("blocks", [])]
    return view


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
