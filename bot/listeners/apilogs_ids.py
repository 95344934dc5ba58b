"""Request ids wherever they appear: the "Look up request ids" message shortcut and ``@opsbot <text>``.

- The shortcut, on any message (a customer's pasted error, another tool's alert, a stack trace): the ids
  in it (``bot.core.apilogs.ids.find_request_ids``: every kind the lookup knows, deduplicated, at most
  five) are looked up like ``/apilogs <id>`` and answered to the person who used it, privately (the
  shortcut's ``response_url``, one message per id), each with **Share in thread**.
- A mention in a channel: a short public summary in the thread (status, function, error kind: no log
  line) and the timelines privately to the person who asked (``chat.postEphemeral``). A mention without
  ids gets a private help line; nothing is posted in the channel.

On an AWS Chatbot alarm post or an alarm e-mail (its text names a CloudWatch alarm), the shortcut also
answers, privately, with ``alarms explain`` for that alarm (``alarms.explain``, its own audit record): the
failing requests of the alarm's window, grouped, as opsbot's own alarm post carries them.

Both look up in the account the channel is bound to (the policy's ``channel_accounts``, else the default
account, else opsbot's own: docs/accounts.md), with the asker's assumed role there; a mention may name
another with ``--account NAME`` (and ``--region R``) in its text. The answers name the account when
several are configured, and their buttons (Share in thread, the lookup's own) carry it, as every
command's do. Both are authorized as ``apilogs.lookup`` for that account and read only what the channel's
read scope allows (the same policy as ``/apilogs``); each use writes one audit record. Log lines never go into a channel shared with
another organisation (Slack Connect), nor to a person of another organisation, unless the policy lists
the channel in ``shared_channels``: Share in thread checks the channel when it is clicked.

Slack sends an event again when it saw no answer within 3 seconds (``X-Slack-Retry-Num``): the mention
is answered once, whichever delivery comes first, through a lock on the event id in the state table.
Acks are immediate and pure; the work runs in lazy listeners (on Lambda, the function's own asynchronous
invocation), like every other command.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.listeners.framework import (
    ActionCall,
    ButtonAction,
    Reply,
    Runtime,
    audit_soon,
    caller_from,
    deliver,
    failure,
    not_started,
    post_to_response_url,
    register_action,
    runtime_of,
    safe_respond,
)
from bot.security import audit
from bot.security.policy import Caller

if TYPE_CHECKING:
    from bot.core.apilogs.brief import RequestBrief
    from bot.core.apilogs.ids import IdsInText, RequestId
    from bot.core.apilogs.lookup import LookupResult
    from bot.listeners.framework.runtime import Place
    from bot.render.blocks import Block

logger = logging.getLogger("opsbot.apilogs")

# The same ids as bot.render.apilogs_ids (not imported here: registering must not load the core).
SHORTCUT_CALLBACK = "apilogs_lookup_ids"
ACTION_SHARE = "apilogs:share"
ACTION = "apilogs.lookup"
# The shortcut on an AWS Chatbot alarm post or an alarm e-mail: the alarm's correlation.
ALARM_ACTION = "alarms.explain"
MAX_RESPONSES = 5  # uses of a response_url
# A mention's event id is answered once within this long (Slack retries within minutes).
EVENT_LOCK_SECONDS = 3600
# A lookup shared in a thread is posted once per message and id, however often Share is clicked.
SHARE_LOCK_SECONDS = 86_400
# Where a message keeps text an id may be in: its text, attachments (other tools' alerts) and blocks.
_TEXT_KEYS = frozenset({"text", "fallback", "pretext", "title", "value", "url", "footer"})
_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")


# -- reading Slack payloads ----------------------------------------------------------------------------


def _strings(value: Any, key: str = "", depth: int = 0) -> Iterator[str]:
    """Every string under one of ``_TEXT_KEYS``, depth first (a message's order)."""
    if depth > 12:
        return
    if isinstance(value, str):
        if key in _TEXT_KEYS:
            yield value
    elif isinstance(value, dict):
        for name, item in value.items():
            yield from _strings(item, str(name), depth + 1)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, key, depth + 1)


def message_text(message: Mapping[str, Any]) -> str:
    """The words of a Slack message as ids may hide in them: text, attachments, blocks. Not its metadata:
    ``client_msg_id`` is a UUID too, and no request id."""
    parts = [message.get("text")] if isinstance(message.get("text"), str) else []
    parts += list(_strings({k: v for k, v in message.items() if k in {"attachments", "blocks", "files"}}))
    return "\n".join(str(p) for p in parts)


def _mention_text(event: Mapping[str, Any]) -> str:
    """A mention's text without the mentions (``<@U0OPSBOT>``): user ids are not request ids anyway, but
    a help line must not be owed to a bare mention with only names in it."""
    return _MENTION.sub(" ", message_text(event))


def _retry_num(request: Any) -> int:
    headers = getattr(request, "headers", None) or {}
    values = headers.get("x-slack-retry-num") or []
    raw = values if isinstance(values, str) else (values[0] if values else "")
    return int(raw) if str(raw).isdigit() else 0


# -- shared work -----------------------------------------------------------------------------------------


@dataclass
class _Answered:
    """One id's lookup: the result, or why it could not run."""

    request: RequestId
    result: LookupResult | None = None
    problem: str = ""

    def brief(self) -> RequestBrief:
        from bot.core.apilogs.brief import brief, unanswered

        if self.result is None:
            return unanswered(self.request.value, self.request.kind.label, self.problem)
        return brief(self.result)


def _limit(runtime: Runtime, channel: str) -> Any:
    from bot.core.apilogs.scope import ReadLimit

    return ReadLimit.for_lambda(runtime.authorizer.policy().read_scope(channel))


def _look_up_all(runtime: Runtime, place: Place, caller: Caller, ids: Sequence[RequestId]) -> list[_Answered]:
    """Each id's lookup, in parallel (they share the CloudWatch limiter), within the lazy run's time, in
    ``place``'s account and region with the asker's credentials there. An error that carries a sentence
    (outside the read scope, AWS refused) belongs to its id; anything else fails the run (the framework
    reports it with the reference)."""
    import contextvars
    from concurrent.futures import ThreadPoolExecutor

    from bot.aws.clients import use_target
    from bot.core.apilogs.commands import lookup
    from bot.errors import OpsbotError

    settings = runtime.settings
    limit = _limit(runtime, caller.channel_id)
    deadline = time.monotonic() + max(5.0, runtime.deadline() - time.time() - 5)

    def one(request: RequestId) -> _Answered:
        try:
            result = lookup(request.value, settings, deadline=deadline, asked_from="slack", limit=limit)
        except OpsbotError as error:
            return _Answered(request, problem=str(error))
        return _Answered(request, result)

    with (
        use_target(place.target(caller.user_id, mutating=False)),
        ThreadPoolExecutor(max_workers=max(1, len(ids)), thread_name_prefix="opsbot-ids") as pool,
    ):
        # Each thread in a copy of this context: the target (account, region, person) goes with it.
        futures = [pool.submit(contextvars.copy_context().run, one, request) for request in ids]
        return [future.result() for future in futures]


@dataclass(frozen=True)
class _Sharing:
    """May log lines be posted in the channel? ``why`` says why not (a sentence's end, mrkdwn)."""

    allowed: bool
    shared: bool = False
    why: str = ""


def _sharing(runtime: Runtime, client: Any, channel: str) -> _Sharing:
    """Whether the channel is shared with another organisation (Slack Connect), and if so whether the
    policy lets log lines in all the same. A channel Slack cannot describe is treated as shared."""
    from bot.render.apilogs_ids import SHARED_CHANNEL_RULE

    if runtime.authorizer.policy().allows_shared(channel):
        return _Sharing(True)
    try:
        info = client.conversations_info(channel=channel)
        described = info.get("channel") or {}
    except Exception as error:  # SlackApiError (missing_scope, channel_not_found) or no answer
        response: Any = getattr(error, "response", None)
        code = str(response.get("error", "") if hasattr(response, "get") else "") or type(error).__name__
        logger.warning("conversations.info %s failed (%s): treated as shared", channel, code)
        return _Sharing(False, True, f"opsbot could not tell whether this channel is shared with another "
                                     f"organisation (Slack answered `{code}`)")  # fmt: skip
    if described.get("is_ext_shared") or described.get("is_pending_ext_shared"):
        return _Sharing(False, True, SHARED_CHANNEL_RULE)
    return _Sharing(True)


def _outsider(runtime: Runtime, caller: Caller, user_team: str) -> str:
    """A refusal when the person asking belongs to another organisation (Slack Connect), else ""."""
    ours = runtime.settings.slack_team_id
    if not ours or not user_team or user_team == ours:
        return ""
    if runtime.authorizer.policy().allows_shared(caller.channel_id):
        return ""
    return (
        "opsbot shows log lines to members of its own workspace only, and this channel is not one the "
        "policy opens to another organisation (`shared_channels`)."
    )


def _counts(answered: Sequence[_Answered], left_out: Sequence[str]) -> str:
    found = sum(1 for a in answered if a.result is not None and a.result.found)
    missing = sum(1 for a in answered if a.result is not None and not a.result.found)
    problems = sum(1 for a in answered if a.result is None)
    parts = [f"{len(answered)} looked up", f"{found} found"]
    if missing:
        parts.append(f"{missing} not found")
    if problems:
        parts.append(f"{problems} not looked up")
    if left_out:
        parts.append(f"{len(left_out)} left out")
    return ", ".join(parts)


def _outcome(answered: Sequence[_Answered]) -> str:
    if any(a.result is not None and a.result.found for a in answered):
        return "ok"
    return "not-found" if any(a.result is not None for a in answered) else "error"


def _private_messages(
    answered: Sequence[_Answered],
    found: IdsInText,
    *,
    thread_ts: str,
    shareable: bool,
    sharing_note: str,
) -> list[tuple[str, list[Block]]]:
    """One private message per id; the first one opens with what was found in the message."""
    from bot.render.apilogs_ids import (
        answer_message,
        found_line,
        not_found_line,
        problem_message,
        share_button,
    )
    from bot.render.blocks import context

    briefs = [a.brief() for a in answered]
    lines = [found_line([a.request.value for a in answered], found.left_out), not_found_line(briefs)]
    if not shareable and sharing_note:
        lines.append(f":lock: Not shareable here: {sharing_note}.")
    top: list[Block] = [context(" ".join(line for line in lines if line))]
    out: list[tuple[str, list[Block]]] = []
    for index, item in enumerate(answered):
        first = top if index == 0 else []
        if item.result is None:
            message = problem_message(item.request.value, item.request.kind.label, item.problem, top=first)
        else:
            share = share_button(item.request.value, thread_ts, item.result) if shareable else None
            message = answer_message(item.result, top=first, share=share)
        out.append((message.text, message.blocks))
    return out


# -- the shortcut ------------------------------------------------------------------------------------------


def _alarm_named(text: str) -> tuple[str, str]:
    """(alarm name, region) that an AWS Chatbot post or an alarm e-mail names; ("", "") for any other."""
    from bot.core.alarms.commands import alarm_name_in_text, alarm_region_in_text

    name = alarm_name_in_text(text)
    return (name, alarm_region_in_text(text)) if name else ("", "")


def _explain_alarm(
    runtime: Runtime, caller: Caller, client: Any, respond: Any, name: str, region: str, refusal: str
) -> None:
    """``alarms explain`` for the alarm a post names, answered privately (one response_url use), with its
    own audit record (``alarms.explain``): the correlation a post of opsbot's own would carry, for a team
    whose alarms reach the channel through AWS Chatbot or e-mail. In the channel's account, in the region
    the post names (refused when that account is not configured for it)."""
    from bot.aws.clients import use_target
    from bot.core.alarms.commands import explain
    from bot.listeners.framework.accounts import GlobalFlags
    from bot.render.alarms import explained_message

    started = time.time()
    ref = audit.new_ref()
    outcome, detail = "ok", ""
    place: Place | None = None
    try:
        place = runtime.place(caller, GlobalFlags(region=region))
        decision = runtime.decide(
            ALARM_ACTION, mutating=False, caller=caller, client=client, account=place.account.name
        )
        refusal = refusal or (
            "" if decision.allowed else f"You may not run `{ALARM_ACTION}`: {decision.reason}"
        )
        if refusal:
            outcome, detail = "denied", refusal
            safe_respond(respond, f":no_entry: {refusal}", ref=ref)
            return
        deadline = time.monotonic() + max(5.0, runtime.deadline() - time.time() - 5)
        with use_target(place.target(caller.user_id, mutating=False)):
            result = explain(
                runtime.settings, name, deadline=deadline, limit=_limit(runtime, caller.channel_id)
            )
        text, blocks = explained_message(result, asked_on="that alarm post")
        correlation = result.correlation
        detail = f"{correlation.kind}, {len(correlation.groups)} groups" + (
            "" if correlation.correlated else ", not correlated"
        )
        if not deliver(respond, place.dress(Reply(text, blocks)), ref=ref):
            detail += "; the reply was not delivered"
    except Exception as error:
        message, outcome, detail = failure(error, ref)
        safe_respond(respond, message, ref=ref)
    finally:
        runtime.audit(ref=ref, started=started, caller=caller, kind="shortcut",
                      command=f"shortcut {SHORTCUT_CALLBACK}", action=ALARM_ACTION, args=name,
                      outcome=outcome, detail=detail,
                      **(place.audit_fields() if place is not None else {}))  # fmt: skip


def _run_shortcut(runtime: Runtime, body: Mapping[str, Any], client: Any, respond: Any) -> None:
    from dataclasses import replace

    from bot.core.apilogs.ids import find_request_ids
    from bot.render.apilogs_ids import no_ids_message

    started = time.time()
    ref = audit.new_ref()
    caller = caller_from(body)
    message = body.get("message") or {}
    outcome, detail, args = "ok", "", ""
    user = body.get("user") or {}
    alarm_only = False
    place: Place | None = None
    try:
        text = message_text(message) if isinstance(message, dict) else ""
        found = find_request_ids(text)
        alarm, region = _alarm_named(text)
        if alarm:
            # The alarm's answer takes one of the response_url's five uses.
            keep = MAX_RESPONSES - 1
            found = replace(found, ids=found.ids[:keep],
                            left_out=(*(r.value for r in found.ids[keep:]), *found.left_out))  # fmt: skip
            _explain_alarm(runtime, caller, client, respond, alarm, region,
                           _outsider(runtime, caller, str(user.get("team_id", ""))))  # fmt: skip
            if not found.ids:
                alarm_only = True  # the alarm's own audit record says what was done
                return
        args = " ".join(r.value for r in found.ids) + (
            f" (+{len(found.left_out)} left out)" if found.left_out else ""
        )
        if not found.ids:
            outcome = "no-ids"
            empty = no_ids_message("that message")
            deliver(respond, Reply(empty.text, empty.blocks), ref=ref)
            return
        # The channel's account (a shortcut's message has no flags of the asker's to read).
        place = runtime.place(caller)
        decision = runtime.decide(ACTION, mutating=False, caller=caller, client=client,
                                  account=place.account.name)  # fmt: skip
        refusal = "" if decision.allowed else f"You may not run `{ACTION}`: {decision.reason}"
        refusal = refusal or _outsider(runtime, caller, str(user.get("team_id", "")))
        if refusal:
            outcome, detail = "denied", refusal
            safe_respond(respond, f":no_entry: {refusal}", ref=ref)
            return
        sharing = _sharing(runtime, client, caller.channel_id)
        answered = _look_up_all(runtime, place, caller, found.ids)
        thread_ts = str(message.get("thread_ts") or message.get("ts") or "")
        messages = _private_messages(answered, found, thread_ts=thread_ts, shareable=sharing.allowed,
                                     sharing_note=sharing.why)  # fmt: skip
        outcome, detail = _outcome(answered), _counts(answered, found.left_out)
        # One response_url use per message: at most five ids, Slack's five uses.
        for text_, blocks in messages:
            if not deliver(respond, place.dress(Reply(text_, blocks)), ref=ref):
                detail += "; a reply was not delivered"
    except Exception as error:
        message_text_, outcome, detail = failure(error, ref)
        safe_respond(respond, message_text_, ref=ref)
    finally:
        if not alarm_only:
            runtime.audit(ref=ref, started=started, caller=caller, kind="shortcut",
                          command=f"shortcut {SHORTCUT_CALLBACK}", action=ACTION, args=args,
                          outcome=outcome, detail=detail,
                          **(place.audit_fields() if place is not None else {}))  # fmt: skip


# -- the mention ---------------------------------------------------------------------------------------------


def _mention_caller(body: Mapping[str, Any]) -> Caller:
    event = body.get("event") or {}
    return Caller(
        user_id=str(event.get("user", "")),
        team_id=str(body.get("team_id", "")),
        channel_id=str(event.get("channel", "")),
    )


def _first_delivery(runtime: Runtime, body: Mapping[str, Any], retry: int) -> bool:
    """Whether this delivery of the event is the one to answer: the first to take the event's lock. When
    DynamoDB cannot tell, a first delivery answers and a retry does not (at most one answer is lost,
    never two given)."""
    from bot.aws.state import StateTable

    event_id = str(body.get("event_id") or "")
    if not event_id:
        return retry == 0
    holder = {"at": int(time.time()), "retry": retry}
    try:
        lock = StateTable(runtime.settings.state_table).acquire_lock(
            f"apilogs-mention:{event_id}", holder, ttl_seconds=EVENT_LOCK_SECONDS
        )
    except Exception as error:
        logger.warning("event %s: the answered-once lock failed (%r); retry %d", event_id, error, retry)
        return retry == 0
    return lock.acquired


def _ephemeral(
    client: Any, caller: Caller, thread_ts: str, text: str, blocks: list[Block] | None = None
) -> None:
    from bot.listeners.framework import fit_text

    client.chat_postEphemeral(channel=caller.channel_id, user=caller.user_id, thread_ts=thread_ts or None,
                              text=fit_text(text), blocks=blocks)  # fmt: skip


def _run_mention(runtime: Runtime, body: Mapping[str, Any], client: Any, request: Any) -> None:
    from bot.core.apilogs.ids import find_request_ids
    from bot.listeners.framework.accounts import split_free_text_globals
    from bot.render.apilogs_ids import mention_help, public_summary

    event = body.get("event") or {}
    if event.get("bot_id") or event.get("subtype"):  # another app's message: nobody to answer privately
        return
    started = time.time()
    ref = audit.new_ref()
    caller = _mention_caller(body)
    thread_ts = str(event.get("thread_ts") or event.get("ts") or "")
    retry = _retry_num(request)
    if not _first_delivery(runtime, body, retry):
        logger.info("event %s delivered again (retry %d): already answered", body.get("event_id"), retry)
        runtime.audit(ref=ref, started=started, caller=caller, kind="event", command="mention",
                      action=ACTION, args="", outcome="duplicate", detail=f"retry {retry}")  # fmt: skip
        return
    outcome, detail, args = "ok", "", ""
    place: Place | None = None
    try:
        # ``--account NAME`` / ``--region R`` in the text aim the lookup, as on a command.
        text, flags = split_free_text_globals(_mention_text(event))
        found = find_request_ids(text)
        args = " ".join(r.value for r in found.ids) + (
            f" (+{len(found.left_out)} left out)" if found.left_out else ""
        )
        if not found.ids:
            outcome = "no-ids"
            help_message = mention_help(
                runtime.settings.slack_bot_user_id or "opsbot", accounts=runtime.accounts().several
            )
            _ephemeral(client, caller, thread_ts, help_message.text, help_message.blocks)
            return
        place = runtime.place(caller, flags)
        decision = runtime.decide(ACTION, mutating=False, caller=caller, client=client,
                                  account=place.account.name)  # fmt: skip
        refusal = "" if decision.allowed else f"You may not run `{ACTION}`: {decision.reason}"
        refusal = refusal or _outsider(
            runtime, caller, str(event.get("user_team") or event.get("team") or "")
        )
        if refusal:
            outcome, detail = "denied", refusal
            _ephemeral(client, caller, thread_ts, f":no_entry: {refusal}")
            return
        sharing = _sharing(runtime, client, caller.channel_id)
        answered = _look_up_all(runtime, place, caller, found.ids)
        outcome, detail = _outcome(answered), _counts(answered, found.left_out)
        public = public_summary([a.brief() for a in answered], found.left_out, asker=caller.user_id,
                                withheld=not sharing.allowed)  # fmt: skip
        summary = place.dress(Reply(public.text, public.blocks))
        client.chat_postMessage(channel=caller.channel_id, thread_ts=thread_ts or None, text=summary.text,
                                blocks=summary.blocks)  # fmt: skip
        for text, blocks in _private_messages(answered, found, thread_ts=thread_ts,
                                              shareable=sharing.allowed, sharing_note=sharing.why):  # fmt: skip
            private = place.dress(Reply(text, blocks))
            _ephemeral(client, caller, thread_ts, private.text, private.blocks)
    except Exception as error:
        text, outcome, detail = failure(error, ref)
        try:
            _ephemeral(client, caller, thread_ts, text)
        except Exception:
            logger.exception("could not tell the user about a failure ref=%s", ref)
    finally:
        runtime.audit(ref=ref, started=started, caller=caller, kind="event", command="mention",
                      action=ACTION, args=args, outcome=outcome, detail=detail,
                      **(place.audit_fields() if place is not None else {}))  # fmt: skip


# -- Share in thread ---------------------------------------------------------------------------------------------


def _place_of(call: ActionCall) -> Place:
    """Where the click went (the framework placed it: its account and region)."""
    from bot.listeners.framework.accounts import OWN_MARK, GlobalFlags

    if not call.runtime.accounts().configured:
        return call.runtime.place(call.caller, GlobalFlags(region=call.region))
    # Placed again as the click was (what it carried, already checked): opsbot's own unnamed account is
    # OWN_MARK, which only a carried value may name.
    return call.runtime.place(call.caller, GlobalFlags(call.account or OWN_MARK, call.region, carried=True))


def _share(call: ActionCall) -> Reply:
    """Post one id's lookup in the thread of the message it came from; once per message and id."""
    from bot.aws.state import StateTable
    from bot.core.apilogs.commands import lookup
    from bot.errors import UsageError
    from bot.render.apilogs_ids import read_share_value, shared_message

    value = read_share_value(call.value)
    if value is None:
        raise UsageError("That button is no longer valid; use the shortcut on the message again.")
    user = call.body.get("user") or {}
    refusal = _outsider(call.runtime, call.caller, str(user.get("team_id", "")))
    if refusal:
        return Reply(f":no_entry: {refusal}", outcome="denied", detail=refusal)
    sharing = _sharing(call.runtime, call.client, call.channel_id)
    if not sharing.allowed:
        return Reply(f":lock: Not shared: {sharing.why}. The answer above stays visible to you only.",
                     outcome="refused-shared-channel", detail=sharing.why)  # fmt: skip
    thread_ts = value.get("ts", "")
    state = StateTable(call.settings.state_table)
    key = f"apilogs-share:{call.channel_id}:{thread_ts}:{value['id']}"
    lock = state.acquire_lock(
        key, {"user": call.user_id, "at": int(time.time())}, ttl_seconds=SHARE_LOCK_SECONDS
    )
    if not lock.acquired:
        who = lock.holder.get("user", "someone")
        return Reply(f":information_source: <@{who}> already shared this lookup in the thread.",
                     outcome="duplicate")  # fmt: skip
    try:
        deadline = time.monotonic() + max(5.0, call.seconds_left() - 5)
        result = lookup(value["id"], call.settings, api=value.get("api", ""), stage=value.get("stage", ""),
                        deadline=deadline, asked_from="slack", limit=_limit(call.runtime, call.channel_id))  # fmt: skip
        message = shared_message(result, shared_by=call.user_id)
        # The click's account (the one the answer was made for): named in the thread as in the answer.
        shared = _place_of(call).dress(Reply(message.text, message.blocks))
        call.client.chat_postMessage(channel=call.channel_id, thread_ts=thread_ts or None, text=shared.text,
                                     blocks=shared.blocks)  # fmt: skip
        if message.file is not None:
            filename, content = message.file
            call.client.files_upload_v2(channel=call.channel_id, thread_ts=thread_ts or None, filename=filename,
                                        title=f"apilogs {value['id']}", content=content)  # fmt: skip
    except Exception:
        state.release_lock(key, owner=lock.owner)  # not shared: a later click may try again
        raise
    return Reply(":white_check_mark: Shared in the thread.", outcome="shared",
                 detail=f"{value['id']} in thread {thread_ts}")  # fmt: skip


# -- wiring ----------------------------------------------------------------------------------------------------------


def register(app: Any) -> None:
    runtime = runtime_of(app)

    def ack_shortcut(ack: Any) -> None:
        ack()  # Slack shows nothing of a shortcut's ack: the answers come through the response_url

    def run_shortcut(body: dict[str, Any], client: Any, respond: Any) -> None:
        _run_shortcut(runtime, body, client, respond)

    def shortcut_unstarted(request: Any, error: BaseException) -> None:
        started = time.time()
        ref = audit.new_ref()
        message, detail = not_started(error, ref)
        post_to_response_url(str(request.body.get("response_url", "")), message, ref=ref)
        audit_soon(runtime, ref=ref, started=started, caller=caller_from(request.body), kind="shortcut",
                   command=f"shortcut {SHORTCUT_CALLBACK}", action=ACTION, args="", outcome="error",
                   detail=detail)  # fmt: skip

    def ack_mention(ack: Any) -> None:
        ack()

    def run_mention(body: dict[str, Any], client: Any, request: Any) -> None:
        _run_mention(runtime, body, client, request)

    def mention_unstarted(request: Any, error: BaseException) -> None:
        # An event has no response_url, and the ack path makes no Slack call: the log and the audit say it.
        started = time.time()
        ref = audit.new_ref()
        _, detail = not_started(error, ref)
        audit_soon(runtime, ref=ref, started=started, caller=_mention_caller(request.body), kind="event",
                   command="mention", action=ACTION, args="", outcome="error", detail=detail)  # fmt: skip

    runtime.on_unstarted(run_shortcut, shortcut_unstarted)
    runtime.on_unstarted(run_mention, mention_unstarted)
    app.message_shortcut(SHORTCUT_CALLBACK)(ack=ack_shortcut, lazy=[run_shortcut])
    app.event("app_mention")(ack=ack_mention, lazy=[run_mention])
    register_action(app, ButtonAction(ACTION_SHARE, _share, action=ACTION, mutating=False))


__all__ = ["ACTION_SHARE", "SHORTCUT_CALLBACK", "message_text", "register"]
