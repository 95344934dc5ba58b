"""``/apilogs``: look up a request across API Gateway and its Lambda functions, or tail them.

``/apilogs <id>`` answers (ephemeral) with the summary and timeline; a timeline too big for a message is
uploaded into the channel as a file. ``/apilogs tail`` and the "Tail this API" button post a message in
the channel and stream batches into its thread (at most one message a second: the core tail yields one
batch per second), until the Stop button (a flag in the state table), ``--for`` or the Lambda time limit.
Then the thread gets a summary and the message loses its Stop button.

What is read is limited by the channel's read scope (``read_scopes`` in the policy; opsbot's own function
logs only where a scope allows them): the core refuses an API or stage outside it and never reads a log
group outside it.

Core, AWS and render modules are imported inside the run functions so the cold start stays small.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import TYPE_CHECKING, Any

from bot.errors import UsageError
from bot.listeners.args import ArgSpec, Flag, ParsedArgs, Positional, parse, quoted_list
from bot.listeners.framework import (
    ActionCall,
    ButtonAction,
    Call,
    Command,
    Reply,
    Subcommand,
    register_action,
    register_command,
    runtime_of,
)

if TYPE_CHECKING:
    from bot.core.apilogs.scope import ReadLimit

logger = logging.getLogger("opsbot.apilogs")

# The same ids as bot.render.apilogs (not imported here: registering must not load the core).
ACTION_TAIL = "apilogs:tail"
ACTION_STOP = "apilogs:stop"
ACTION_LOOKUP = "apilogs:lookup"
ACTION_FULL = "apilogs:full"

# /apilogs errors (bot.render.apilogs_errors): look up a sample id, another one (overflow), tail a path.
ACTION_ERRORS_LOOKUP = "apilogs:errors-lookup"
ACTION_ERRORS_LOOKUP_MORE = "apilogs:errors-lookup-more"
ACTION_TAIL_PATH = "apilogs:tail-path"
DEFAULT_TAIL = "5m"
# Time kept back from the Lambda limit to post what is waiting, the summary and the message update.
FINISH_MARGIN_S = 10.0
# The shortest tail worth starting: with less time left in the invocation, the command says to try again.
MIN_TAIL_S = 5.0
# Lines waiting for Slack (one message a second); beyond this the oldest are skipped, and counted.
MAX_BACKLOG = 2_000
MAX_LINES_PER_MESSAGE = 400
# Tail by request: thread messages waiting to be posted (one Slack write a second); beyond this the oldest
# waiting are skipped, and their requests counted.
MAX_WAITING_MESSAGES = 40
FINAL_MESSAGES = 5

API = Flag("api", "API id or name (default: OPSBOT_DEFAULT_API, or the only API)", metavar="ID|NAME")
STAGE = Flag("stage", "stage (default: OPSBOT_DEFAULT_STAGE, or the API's only stage)", metavar="S")


@dataclass(frozen=True)
class _LooseSpec(ArgSpec):
    """A spec whose last positional also collects words typed without quotes: the rest of a time
    (``--since 2h ago``) and a header name pasted before the id (``x-amzn-RequestId: ID``). ``_values``
    puts them back where they belong. Usage and help show the arguments as written in ``shown``."""

    shown: tuple[Positional, ...] = ()

    def usage(self) -> str:
        return " ".join([p.usage() for p in self.shown] + [f.usage() for f in self.flags])


def _values(args: ParsedArgs, spec: ArgSpec) -> dict[str, Any]:
    """The arguments with each time value whole and the id without the header name pasted with it."""
    from bot.core.apilogs.words import id_from_words

    parsed = parse(args.tokens, spec)
    values = {k: v for k, v in parsed.values.items() if k not in {"id", "words"}}
    if any(p.name == "id" for p in spec.positionals):
        values["id"] = id_from_words(parsed.extra)
    elif parsed.extra:
        raise UsageError(
            f"Unexpected {quoted_list(parsed.extra)}. Quote a value that has spaces, e.g. --since '15m ago'."
        )
    return values


def _check_lookup(args: ParsedArgs) -> None:
    """Pure checks in the ack path, so a typo is answered at once."""
    from bot.core.apilogs.ids import parse_request_id
    from bot.core.common.timeparse import parse_time

    values = _values(args, LOOKUP_SPEC)
    parse_request_id(str(values["id"]))
    for name in ("since", "until"):
        if values.get(name):
            parse_time(str(values[name]))


def _check_tail(args: ParsedArgs) -> None:
    from bot.core.apilogs.patterns import compile_pattern
    from bot.core.common.timeparse import parse_duration, parse_time

    values = _values(args, TAIL_SPEC)
    parse_duration(str(values.get("for") or DEFAULT_TAIL))
    compile_pattern(str(values.get("filter") or ""))
    if values.get("since"):
        parse_time(str(values["since"]))
    _tail_view(values)


def _tail_view(values: dict[str, Any]) -> str:
    """The --raw / --errors / --path choice checked; returns the path ("" for none)."""
    from bot.core.apilogs.errors import check_args

    path = str(values.get("path") or "")
    if values.get("raw") and values.get("errors"):
        raise UsageError("--raw shows every line; --errors shows failing requests: choose one.")
    if path:
        check_args(path=path)
        if values.get("raw"):
            raise UsageError(
                "--path keeps the requests to a path, --raw shows every line as it comes: choose one "
                "(--filter '\"/orders\"' keeps the lines that name a path)."
            )
    return path


def _shared_refusal(call: Call | ActionCall) -> str:
    """Why log lines may not be posted in this channel ('' when they may): a channel shared with another
    organisation (Slack Connect) that the policy does not list in ``shared_channels``. The tail posts its
    lines in the channel's thread and a long timeline is uploaded into the channel as a file, so both ask
    first, like the request-id shortcut's Share in thread (``bot.listeners.apilogs_ids``)."""
    from bot.listeners.apilogs_ids import _sharing

    sharing = _sharing(call.runtime, call.client, call.channel_id)
    return "" if sharing.allowed else sharing.why


def _limit(call: Call | ActionCall) -> ReadLimit:
    """What this channel may read (the policy's read scope for it) and where opsbot's own logs are: the
    core refuses an API or stage outside it and never reads a group outside it."""
    from bot.core.apilogs.scope import ReadLimit

    return ReadLimit.for_lambda(call.runtime.authorizer.policy().read_scope(call.channel_id))


def _lookup(call: Call) -> Reply:
    values = _values(call.args, LOOKUP_SPEC)
    return _answer_lookup(
        call,
        str(values["id"]),
        api=str(values.get("api") or ""),
        stage=str(values.get("stage") or ""),
        since=str(values.get("since") or ""),
        until=str(values.get("until") or ""),
    )


def _answer_lookup(
    call: Call | ActionCall,
    request_id: str,
    *,
    api: str,
    stage: str,
    since: str,
    until: str,
    full: bool = False,
) -> Reply:
    """The lookup's answer: compact timeline unless ``full`` (the Full timeline button asks again with
    the same arguments), the full one attached as a file when it does not fit."""
    from bot.core.apilogs.commands import lookup
    from bot.render.apilogs import lookup_message

    deadline = time.monotonic() + max(5.0, call.seconds_left() - 5)
    result = lookup(
        request_id,
        call.settings,
        api=api,
        stage=stage,
        since=since,
        until=until,
        deadline=deadline,
        asked_from="slack",
        limit=_limit(call),
    )
    ask = {"id": request_id, "api": api or result.stage.api_id, "stage": stage or result.stage.stage}
    ask.update({k: v for k, v in (("since", since), ("until", until)) if v})
    message = lookup_message(result, full=full, ask=ask)
    blocks = message.blocks
    if message.file is not None:
        blocks = _attach(call, result.request.value, message.file, blocks)
    outcome = "ok" if result.found else "not-found"
    return Reply(
        text=message.text,
        blocks=blocks,
        outcome=outcome,
        detail=f"{len(result.events)} event" + ("" if len(result.events) == 1 else "s"),
    )


def _button_target(call: ActionCall) -> dict[str, str]:
    try:
        target = json.loads(call.value)
        if not isinstance(target, dict) or not str(target.get("id", "")):
            raise ValueError
        return {k: str(v) for k, v in target.items()}
    except (ValueError, TypeError):
        raise UsageError("That button is no longer valid; run `/apilogs ID` instead.") from None


def _lookup_button(call: ActionCall) -> Reply:
    """**Look up** on a tail entry: the lookup of that request, for the one who clicked."""
    target = _button_target(call)
    return _answer_lookup(
        call, target["id"], api=target.get("api", ""), stage=target.get("stage", ""), since="", until=""
    )


def _full_button(call: ActionCall) -> Reply:
    """**Full timeline** under a compact lookup answer: the same lookup, every line, in its place."""
    target = _button_target(call)
    reply = _answer_lookup(
        call,
        target["id"],
        api=target.get("api", ""),
        stage=target.get("stage", ""),
        since=target.get("since", ""),
        until=target.get("until", ""),
        full=True,
    )
    return replace(reply, replace_original=True)


def _attach(
    call: Call | ActionCall, request_id: str, file: tuple[str, str], blocks: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Upload the full timeline into the channel; if Slack refuses, the message says so instead."""
    from bot.render.blocks import context, escape, fit

    filename, content = file
    refused = _shared_refusal(call)
    if refused:
        note = context(
            f":lock: The full timeline does not fit in a message and is not attached here: {refused}. "
            "Use `opsbot apilogs ID` or the Logs Insights button."
        )
        kept = [b for b in blocks if "attached file" not in json.dumps(b)]
        return fit([*kept[:-1], note, kept[-1]])[0]
    try:
        call.client.files_upload_v2(
            channel=call.channel_id,
            filename=filename,
            title=f"apilogs {request_id}",
            content=content,
            initial_comment=f"Full timeline of request `{request_id}` (asked by <@{call.user_id}>).",
        )
    except Exception as error:  # SlackApiError, or the upload itself failing
        response: Any = getattr(error, "response", None)
        code = str(response.get("error", "") if hasattr(response, "get") else "") or type(error).__name__
        logger.warning("timeline upload failed: %s", code)
        warning = context(
            f":warning: The timeline does not fit in a message and could not be attached ({escape(code)}): "
            "use `opsbot apilogs ID` or the Logs Insights button."
        )
        # It takes the place of the note that promised the file.
        kept = [b for b in blocks if "attached file" not in json.dumps(b)]
        return fit([*kept[:-1], warning, kept[-1]])[0]
    return blocks


def _tail_command(call: Call) -> Reply:
    values = _values(call.args, TAIL_SPEC)
    path = _tail_view(values)
    return _run_tail(
        call,
        api=str(values.get("api") or ""),
        stage=str(values.get("stage") or ""),
        pattern=str(values.get("filter") or ""),
        duration=str(values.get("for") or DEFAULT_TAIL),
        mode=str(values.get("mode") or "auto"),
        since=str(values.get("since") or ""),
        raw=bool(values.get("raw")),
        errors_only=bool(values.get("errors")),
        path=path,
    )


def _run_tail(
    call: Call | ActionCall,
    *,
    api: str,
    stage: str,
    pattern: str,
    duration: str,
    mode: str = "auto",
    since: str = "",
    raw: bool = False,
    errors_only: bool = False,
    path: str = "",
) -> Reply:
    """Post the tail's message, stream batches into its thread (by request, or ``raw`` lines), finish
    with a summary."""
    from bot.aws.state import StateTable
    from bot.core.apilogs.commands import ended_flag_key, plan_tail, stop_flag_key
    from bot.core.apilogs.model import LogEvent
    from bot.core.common.timeparse import format_duration, parse_duration
    from bot.render.apilogs import (
        tail_ended_message,
        tail_message,
        tail_started_message,
        tail_summary_message,
    )

    refused = _shared_refusal(call)
    if refused:
        # The tail posts log lines in the channel's thread, for everyone in it to read.
        return Reply(
            text=f":lock: No tail here: {refused}. Use `opsbot apilogs tail` or a channel of this workspace only.",
            outcome="refused-shared-channel",
            detail=refused,
        )
    state = StateTable(call.settings.state_table)
    tail_id = call.ref
    flag = stop_flag_key(tail_id)
    seconds_left = call.seconds_left() - FINISH_MARGIN_S
    if seconds_left < MIN_TAIL_S:
        raise UsageError("There is no time left in this invocation to tail; try again.")
    wanted = parse_duration(duration).total_seconds()
    # A --for longer than this invocation may last is capped to what is left, and the top message says so.
    capped = wanted > seconds_left
    shown = format_duration(parse_duration(f"{int(seconds_left)}s")) if capped else duration
    capped_from = duration if capped else ""
    plan = plan_tail(
        call.settings,
        api=api,
        stage=stage,
        pattern=pattern,
        duration=duration,
        since=since,
        mode=mode,
        should_stop=lambda: state.get_flag(flag) is not None,
        deadline=time.monotonic() + seconds_left,
        limit=_limit(call),
    )
    started = tail_started_message(
        plan.stage,
        plan.groups,
        tail_id,
        duration=shown,
        pattern=plan.tail.pattern,
        capped_from=capped_from,
        path=path,
    )
    posted = call.client.chat_postMessage(
        channel=call.channel_id,
        text=f"<@{call.user_id}> started a tail. {started.text}",
        blocks=started.blocks,
    )
    thread = str(posted["ts"])
    backlog: deque[LogEvent] = deque()
    skipped = 0

    def post_some(note: str = "") -> None:
        """One thread message with the oldest waiting lines (the loop runs once a second)."""
        nonlocal skipped
        if skipped:
            lines = f"{skipped} line was" if skipped == 1 else f"{skipped} lines were"
            note = " ".join(filter(None, [note, f"{lines} skipped: more than Slack can show."]))
            skipped = 0
        if not backlog and not note:
            return
        message, shown = tail_message(list(islice(backlog, MAX_LINES_PER_MESSAGE)), plan.stage, note=note)
        for _ in range(shown):
            backlog.popleft()
        call.client.chat_postMessage(
            channel=call.channel_id, thread_ts=thread, text=message.text, blocks=message.blocks
        )

    batches = plan.tail.batches()
    by_request = None if raw else _RequestThread(call, plan, thread, errors_only=errors_only, path=path)
    try:
        if by_request is not None:
            by_request.run(batches)
        for batch in batches if by_request is None else ():
            backlog.extend(batch.events)
            while len(backlog) > MAX_BACKLOG:
                backlog.popleft()
                skipped += 1
            post_some()
        for _ in range(FINAL_MESSAGES):  # what is still waiting, within the margin kept for the end
            if not backlog:
                break
            time.sleep(1.0)
            post_some()
        if backlog:
            skipped += len(backlog)
            backlog.clear()
            post_some("Use the CLI (`opsbot apilogs tail`) or Logs Insights for the rest.")
    finally:
        batches.close()
        summary = plan.tail.summary
        try:
            state.set_flag(
                ended_flag_key(tail_id),
                {"at": int(time.time()), "lines": summary.events, "reason": summary.stop_reason},
                ttl_seconds=86_400,
            )
        except Exception:  # a late Stop click then gets the general answer; the summary matters more
            logger.exception("could not mark tail %s as ended", tail_id)
        # A Stop click that came after the tail ended on its own did not stop it.
        stopped_by = (state.get_flag(flag) or {}) if summary.stop_reason == "stopped" else {}
        if by_request is not None:
            by_request.note_summary()
        done = tail_summary_message(summary)
        who = f" by <@{stopped_by['by']}>" if stopped_by.get("by") else ""
        # The top message no longer says "Tailing": it says what was tailed and how it ended.
        ended = tail_ended_message(
            plan.stage, plan.groups, summary, pattern=plan.tail.pattern, who=who,
            capped_from=capped_from, capped_to=shown, path=path,
        )  # fmt: skip
        try:
            call.client.chat_postMessage(
                channel=call.channel_id, thread_ts=thread, text=done.text + who, blocks=done.blocks
            )
            call.client.chat_update(channel=call.channel_id, ts=thread, text=ended.text, blocks=ended.blocks)
        except Exception:
            logger.exception("could not post the end of tail %s", tail_id)
    lines = plan.tail.summary.events
    counted = f"{lines} line" + ("" if lines == 1 else "s")
    if by_request is not None:
        counted += f" in {by_request.requests} request" + ("" if by_request.requests == 1 else "s")
    capped_note = f" --for was capped to {shown}." if capped_from else ""
    return Reply(
        text=f"The tail of {plan.stage.label} ended: {counted} (see the thread).{capped_note}",
        outcome="ok",
        detail=f"{counted}, {plan.tail.summary.stop_reason}",
    )


@dataclass
class _Slot:
    """One thread message of a tail by request and the entries it holds (``ts`` once posted)."""

    entries: list[Any] = field(default_factory=list)
    ts: str = ""
    note: str = ""


class _RequestThread:
    """Tail by request in a thread: entries from ``RequestFolder``, a few to a message; an entry that
    changes (late lines) is redrawn by editing the message that holds it. One Slack write a second (a new
    message or an edit, oldest waiting first), as the line view posts one message a second."""

    def __init__(
        self, call: Call | ActionCall, plan: Any, thread: str, *, errors_only: bool, path: str = ""
    ) -> None:
        from bot.core.apilogs.tail_requests import RequestFolder

        self.call = call
        self.plan = plan
        self.thread = thread
        self.errors_only = errors_only
        # --path (and "Tail this path"): the requests to that resource path, with every line of theirs
        # (a CloudWatch filter on the path would keep API Gateway's lines and drop the functions').
        self.path = path
        self.folder = RequestFolder.for_discovery(plan.discovery)
        self.slots: list[_Slot] = []
        self.where: dict[str, _Slot] = {}
        self.waiting: deque[_Slot] = deque()
        self.skipped = 0
        self.requests = 0
        self.failing = 0

    def run(self, batches: Any) -> None:
        for batch in batches:
            now = int(time.monotonic() * 1000)
            self.folder.add(batch.events, now)
            self._place(self.folder.ready(now))
            self._write_one()
        self._place(self.folder.drain())
        for _ in range(FINAL_MESSAGES):  # what is still waiting, within the margin kept for the end
            if not self.waiting:
                break
            time.sleep(1.0)
            self._write_one()
        unposted = [slot for slot in self.waiting if not slot.ts]
        self.waiting.clear()  # within the margin kept for the end: edits still waiting are given up
        if unposted:
            self.skipped += sum(len(slot.entries) for slot in unposted)
            self.waiting.append(self._new_slot())
            self._write_one("Use the CLI (`opsbot apilogs tail`) or Logs Insights for the rest.")

    def note_summary(self) -> None:
        which = "failing requests" if self.errors_only else "requests"
        self.plan.tail.summary.notes.insert(
            0, f"{self.requests} {which} shown ({self.failing} failing), grouped by request."
        )

    def _new_slot(self) -> _Slot:
        slot = _Slot()
        self.slots.append(slot)
        return slot

    def _place(self, entries: list[Any]) -> None:
        from bot.core.apilogs.errors import path_wanted
        from bot.render.apilogs import ENTRIES_PER_MESSAGE

        for entry in entries:
            if self.errors_only and not entry.failed:
                continue
            if self.path and not (entry.kind == "request" and path_wanted(entry.path, self.path)):
                continue
            slot = self.where.get(entry.key)
            if slot is None:
                last = self.slots[-1] if self.slots else None
                slot = (
                    last if last is not None and len(last.entries) < ENTRIES_PER_MESSAGE else self._new_slot()
                )
                slot.entries.append(entry)
                self.where[entry.key] = slot
                self.requests += 1
                self.failing += 1 if entry.failed else 0
            if slot not in self.waiting:
                self.waiting.append(slot)
        # More waiting than a second a message can post: the oldest unposted are skipped, and counted.
        unposted = [slot for slot in self.waiting if not slot.ts]
        while len(unposted) > MAX_WAITING_MESSAGES:
            dropped = unposted.pop(0)
            self.waiting.remove(dropped)
            self.skipped += len(dropped.entries)
            for entry in dropped.entries:
                self.where.pop(entry.key, None)
        # Messages not redrawn for long are forgotten (an entry of theirs changing later starts anew).
        if len(self.slots) > 4 * MAX_WAITING_MESSAGES:
            for slot in self.slots[: len(self.slots) // 2]:
                if slot not in self.waiting:
                    for entry in slot.entries:
                        if self.where.get(entry.key) is slot:
                            del self.where[entry.key]
            self.slots = self.slots[len(self.slots) // 2 :]

    def _write_one(self, note: str = "") -> None:
        from bot.render.apilogs import tail_entries_message

        if not self.waiting:
            return
        slot = self.waiting.popleft()
        if self.skipped and not slot.ts:
            counted = f"{self.skipped} request was" if self.skipped == 1 else f"{self.skipped} requests were"
            note = " ".join(filter(None, [note, f"{counted} skipped: more than Slack can show."]))
            self.skipped = 0
        slot.note = note or slot.note
        message, shown = tail_entries_message(slot.entries, self.plan.stage, note=slot.note)
        if shown < len(slot.entries):  # what did not fit goes to the next message
            rest = slot.entries[shown:]
            del slot.entries[shown:]
            spill = _Slot(entries=rest)
            self.slots.insert(self.slots.index(slot) + 1, spill)
            for entry in rest:
                self.where[entry.key] = spill
            self.waiting.appendleft(spill)
        client = self.call.client
        if slot.ts:
            client.chat_update(
                channel=self.call.channel_id, ts=slot.ts, text=message.text, blocks=message.blocks
            )
        else:
            posted = client.chat_postMessage(
                channel=self.call.channel_id, thread_ts=self.thread, text=message.text, blocks=message.blocks
            )
            slot.ts = str(posted["ts"])


def _tail_button(call: ActionCall) -> Reply | None:
    """ "Tail this API" under a lookup: the same tail, once per message however often it is clicked."""
    from bot.aws.state import StateTable

    try:
        target = json.loads(call.value)
        api, stage = str(target["api"]), str(target["stage"])
    except (ValueError, KeyError, TypeError):
        raise UsageError("That button is no longer valid; run `/apilogs tail` instead.") from None
    state = StateTable(call.settings.state_table)
    key = f"apilogs-tail-click:{call.channel_id}:{call.message_ts or call.user_id}:{api}:{stage}"
    lock = state.acquire_lock(key, {"user": call.user_id, "at": int(time.time())}, ttl_seconds=900)
    if not lock.acquired:
        who = lock.holder.get("user", "someone")
        return Reply(
            text=f":information_source: <@{who}> already started a tail of this API from this message."
        )
    try:
        return _run_tail(call, api=api, stage=stage, pattern="", duration=DEFAULT_TAIL)
    finally:
        state.release_lock(key, owner=lock.owner)


def _stop(call: ActionCall) -> Reply:
    from bot.aws.state import StateTable
    from bot.core.apilogs.commands import ended_flag_key, stop_flag_key

    tail_id = call.value.strip()
    if not tail_id:
        raise UsageError("That Stop button is no longer valid.")
    state = StateTable(call.settings.state_table)
    ended = state.get_flag(ended_flag_key(tail_id))
    if ended is not None:
        lines = ended.get("lines")
        shown = f" after {lines} line{'' if lines == 1 else 's'}" if isinstance(lines, int) else ""
        return Reply(
            text=f":information_source: That tail has already ended{shown}; its summary is in the thread.",
            outcome="already-ended",
        )
    state.set_flag(stop_flag_key(tail_id), {"by": call.user_id, "at": int(time.time())}, ttl_seconds=3600)
    return Reply(
        text=":octagonal_sign: Stopping the tail; its summary follows in the thread.", outcome="stopped"
    )


def _check_errors(args: ParsedArgs) -> None:
    from bot.core.apilogs.errors import check_args

    values = _values(args, ERRORS_SPEC)
    check_args(
        str(values.get("status") or "5xx"),
        str(values.get("path") or ""),
        str(values.get("since") or ""),
        str(values.get("until") or ""),
    )


def _errors(call: Call) -> Reply:
    from bot.core.apilogs.errors import errors
    from bot.render.apilogs_errors import errors_blocks

    values = _values(call.args, ERRORS_SPEC)
    report = errors(
        call.settings,
        api=str(values.get("api") or ""),
        stage=str(values.get("stage") or ""),
        since=str(values.get("since") or ""),
        until=str(values.get("until") or ""),
        status=str(values.get("status") or "5xx"),
        path=str(values.get("path") or ""),
        deadline=time.monotonic() + max(5.0, call.seconds_left() - 5),
        limit=_limit(call),
    )
    text, blocks = errors_blocks(report)
    return Reply(
        text=text,
        blocks=blocks,
        detail=f"{report.total} failed in {len(report.groups)} group"
        + ("" if len(report.groups) == 1 else "s"),
    )


def _clicked_value(call: ActionCall) -> dict[str, Any]:
    """The JSON a button (``value``) or an overflow option (``selected_option.value``) carries."""
    raw = call.value
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise UsageError("That button is no longer valid; run `/apilogs errors` again.")
    if "api" not in value:
        # An overflow option whose API, stage and window did not fit its 150 characters: its block has them
        # (bot.render.apilogs_errors). Forged or not, the read scope is checked for what is looked up.
        try:
            block = json.loads(str(call.action.get("block_id") or ""))
        except ValueError:
            block = None
        if isinstance(block, dict):
            value = {**{k: v for k, v in block.items() if k != "g"}, "id": value.get("id", "")}
    return value


def _errors_lookup(call: ActionCall) -> Reply:
    """ "Look up" on a group of /apilogs errors: the lookup of that sample id, only for the clicker. It is
    the lookup's own answer (``_answer_lookup``): the full timeline attached when the compact one is cut,
    and a **Full timeline** button that searches the same window again."""
    from bot.core.apilogs.ids import parse_request_id

    value = _clicked_value(call)
    request_id = str(value.get("id", ""))
    request = parse_request_id(request_id)
    since = until = ""
    if request.time is None and isinstance(value.get("start"), int) and isinstance(value.get("end"), int):
        # Ids that carry no time are searched in the window the errors answer read (and a minute after).
        since, until = str(value["start"]), str(int(value["end"]) + 60_000)
    return _answer_lookup(
        call,
        request_id,
        api=str(value.get("api", "")),
        stage=str(value.get("stage", "")),
        since=since,
        until=until,
    )


def _tail_path_button(call: ActionCall) -> Reply | None:
    """ "Tail this path": the tail of the stage by request, keeping the requests to the resource path."""
    from bot.aws.state import StateTable

    value = _clicked_value(call)
    api, stage, path = str(value.get("api", "")), str(value.get("stage", "")), str(value.get("path", ""))
    if not (api and stage and path.startswith("/")):
        raise UsageError("That button is no longer valid; run `/apilogs errors` again.")
    state = StateTable(call.settings.state_table)
    key = f"apilogs-tail-click:{call.channel_id}:{call.message_ts or call.user_id}:{api}:{stage}:{path}"
    lock = state.acquire_lock(key, {"user": call.user_id, "at": int(time.time())}, ttl_seconds=900)
    if not lock.acquired:
        who = lock.holder.get("user", "someone")
        return Reply(text=f":information_source: <@{who}> already started a tail of this path.")
    try:
        return _run_tail(call, api=api, stage=stage, pattern="", duration=DEFAULT_TAIL, path=path)
    finally:
        state.release_lock(key, owner=lock.owner)


_ID = Positional(
    "id", "x-amzn-RequestId, x-amz-apigw-id, apigw-requestid, Lambda request id or X-Ray trace id"
)
LOOKUP_SPEC = _LooseSpec(
    positionals=(Positional(_ID.name, _ID.help, many=True),),
    flags=(
        API,
        STAGE,
        Flag(
            "since",
            "start of the search, e.g. 2h ago (default: +/- 5 min around a REST request id's time, else 1h)",
            metavar="T",
            kind="time",
        ),
        Flag("until", "end of the search (default: now)", metavar="T", kind="time"),
    ),
    shown=(_ID,),
)
TAIL_SPEC = _LooseSpec(
    # Collects the words of an unquoted --since value; anything else in it is reported as unexpected.
    positionals=(Positional("words", optional=True, many=True),),
    flags=(
        API,
        STAGE,
        Flag("filter", 'a CloudWatch filter pattern, e.g. "?ERROR ?Task"', metavar="PATTERN"),
        Flag(
            "for",
            f"how long (default {DEFAULT_TAIL}; at most until the Lambda time limit)",
            metavar="DURATION",
            default=DEFAULT_TAIL,
        ),
        Flag(
            "since", "also show lines from this far back (default: the last 10 s)", metavar="T", kind="time"
        ),
        Flag("raw", "every line as it comes, not grouped by request", kind="bool", default=False),
        Flag("errors", "only failing requests (4xx, 5xx, or an error line)", kind="bool", default=False),
        Flag(
            "path", "only requests to this resource path (/orders, or /orders* for it and below)", metavar="P"
        ),
        Flag(
            "mode",
            "Live Tail where possible (auto), or force live or poll",
            kind="choice",
            choices=("auto", "live", "poll"),
            default="auto",
        ),
    ),
)

ERRORS_SPEC = _LooseSpec(
    positionals=(Positional("words", optional=True, many=True),),
    flags=(
        API,
        STAGE,
        Flag("since", "start of the window (default: 15m ago)", metavar="T", kind="time"),
        Flag("until", "end of the window (default: now)", metavar="T", kind="time"),
        Flag(
            "status",
            "which failures: 5xx (default), 4xx or all",
            kind="choice",
            choices=("5xx", "4xx", "all"),
            default="5xx",
        ),
        Flag("path", "only this resource path (/orders, or /orders* for it and below)", metavar="P"),
    ),
)

APILOGS = Command(
    name="apilogs",
    summary="the whole story of one API request across API Gateway and its Lambda functions; tail an API",
    default="lookup",
    subcommands=(
        Subcommand(
            "lookup",
            "Find every log line of one request: execution and access logs, each Lambda invocation from START "
            "to REPORT, errors highlighted.",
            run=_lookup,
            spec=LOOKUP_SPEC,
            validate=_check_lookup,
            working="Looking up the request across API Gateway and its Lambda functions…",
            examples=(
                "/apilogs 9439989f-7543-11e6-8dda-150c09a55dc2",
                "/apilogs 943ad105-7543-11e6-a9ac-65e093327849 --since 3h --api shop-api --stage prod",
            ),
        ),
        Subcommand(
            "tail",
            "Follow the API stage in a thread, one entry per request (its Lambda lines folded under it, "
            "failures with Look up), until Stop or --for; --raw shows every line, --errors only failures.",
            run=_tail_command,
            spec=TAIL_SPEC,
            validate=_check_tail,
            working="Starting the tail; lines will appear in a thread…",
            examples=(
                "/apilogs tail --for 10m",
                "/apilogs tail --since 15m --for 1m",
                '/apilogs tail --api shop-api --stage prod --filter "?ERROR ?Task"',
                "/apilogs tail --errors --for 15m",
            ),
        ),
        Subcommand(
            "errors",
            "The failing requests of the stage in a window, grouped by method, path, status and cause, "
            "with Look up and Tail this path buttons.",
            run=_errors,
            spec=ERRORS_SPEC,
            validate=_check_errors,
            working="Reading the stage's failing requests…",
            examples=(
                "/apilogs errors",
                "/apilogs errors --since 1h --status all",
                "/apilogs errors --api shop-api --stage prod --path /orders",
            ),
        ),
    ),
)


def register(app: Any) -> None:
    runtime_of(app)  # fail early if the app was not built by bot.app.build_app
    register_command(app, APILOGS)
    register_action(app, ButtonAction(ACTION_TAIL, _tail_button, action="apilogs.tail", mutating=False))
    register_action(app, ButtonAction(ACTION_STOP, _stop, action="apilogs.tail", mutating=False))
    register_action(app, ButtonAction(ACTION_LOOKUP, _lookup_button, action="apilogs.lookup", mutating=False))
    register_action(app, ButtonAction(ACTION_FULL, _full_button, action="apilogs.lookup", mutating=False))
    for action_id in (ACTION_ERRORS_LOOKUP, ACTION_ERRORS_LOOKUP_MORE):
        register_action(app, ButtonAction(action_id, _errors_lookup, action="apilogs.lookup", mutating=False))
    register_action(
        app, ButtonAction(ACTION_TAIL_PATH, _tail_path_button, action="apilogs.tail", mutating=False)
    )
