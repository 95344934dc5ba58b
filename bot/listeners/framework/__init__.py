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

The package, by concern: ``declarations`` (what a listener declares), ``runtime`` (settings, policy, audit,
Bolt context plumbing), ``commands``, ``actions`` (buttons) and ``modals`` (the three kinds of Slack
interaction), ``delivery`` (a ``Reply`` to Slack within its limits), ``failures`` (errors as sentences).
"""

from __future__ import annotations

from bot.listeners.args import ArgSpec, Flag, Positional
from bot.listeners.framework.actions import default_idempotency_key, register_action, register_link_buttons
from bot.listeners.framework.commands import (
    Resolved,
    audit_args,
    command_help,
    register_command,
    resolve,
    usage_line,
)
from bot.listeners.framework.declarations import (
    ACK_HANDLE,
    ACK_NOTE,
    ACK_NOTE_HEADER,
    DEFAULT_LAZY_SECONDS,
    LOCK_TTL_SECONDS,
    MAX_MESSAGE_TEXT,
    NOT_IN_CHANNEL_ERRORS,
    UNSTARTED_AUDIT_SECONDS,
    VIEWS_OPEN_TIMEOUT,
    ActionCall,
    ButtonAction,
    Call,
    Command,
    Invocation,
    ModalSubmit,
    Reply,
    Subcommand,
    ViewCall,
)
from bot.listeners.framework.delivery import (
    deliver,
    ephemeral,
    fit_text,
    message_body,
    post_to_response_url,
    safe_respond,
)
from bot.listeners.framework.failures import explain_failure, failure, form_failure, not_started
from bot.listeners.framework.modals import register_modal, view_values
from bot.listeners.framework.runtime import (
    Runtime,
    ack_of,
    audit_soon,
    audit_soon_call,
    bind_runtime,
    caller_from,
    keep_ack_handle,
    runtime_of,
)

__all__ = [
    "ACK_HANDLE",
    "ACK_NOTE",
    "ACK_NOTE_HEADER",
    "DEFAULT_LAZY_SECONDS",
    "LOCK_TTL_SECONDS",
    "MAX_MESSAGE_TEXT",
    "NOT_IN_CHANNEL_ERRORS",
    "UNSTARTED_AUDIT_SECONDS",
    "VIEWS_OPEN_TIMEOUT",
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
    "Resolved",
    "Runtime",
    "Subcommand",
    "ViewCall",
    "ack_of",
    "audit_args",
    "audit_soon",
    "audit_soon_call",
    "bind_runtime",
    "caller_from",
    "command_help",
    "default_idempotency_key",
    "deliver",
    "ephemeral",
    "explain_failure",
    "failure",
    "fit_text",
    "form_failure",
    "keep_ack_handle",
    "message_body",
    "not_started",
    "post_to_response_url",
    "register_action",
    "register_command",
    "register_link_buttons",
    "register_modal",
    "resolve",
    "runtime_of",
    "safe_respond",
    "usage_line",
    "view_values",
]
