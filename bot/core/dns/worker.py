"""The work behind ``/dns`` status, plan, resync and the Apply click, as JSON in and JSON out.

The seed's master is on premises, reachable only from inside a VPC; the scheduled mirror function runs
there, the Slack function does not (template.yaml explains why it has no ``VpcConfig``). So when
``OPSBOT_DNS_FUNCTION`` names the mirror function, the Slack listener sends it a request (a synchronous
Invoke, ``{"opsbot_dns": {...}}``) and shows what comes back: the transfer, the Route 53 reads and writes
and the TSIG key all stay with the function that is granted them. Without it the same ``handle`` runs in
the Slack function (the CLI's ``opsbot serve`` against a reachable master, the tests).

Requests (``op``): ``status`` (``domain`` optional), ``preview`` (``domain``), ``apply`` (``domain``,
``plan`` = the fingerprint shown, ``force``, ``actor``) and the doctor's read-only ``doctor`` (``domain``
optional; ``bot.core.dns.doctor``). Each names the zone by ``domain`` and optional
``zone_id`` among the function's own ``OPSBOT_DNS_ZONES``: a request cannot bring its own master or
hosted zone. Answers carry data, never Slack blocks (core does not render): ``zones`` (statuses),
``preview`` or ``result`` in the JSON form of ``wire``, which the Slack side reads back into the same
dataclasses and renders, exactly as when the work runs in its own process. A failure is
``{"ok": false, "stage", "kind", "error", "hint"}`` and becomes the same OpsbotError on the Slack side
(``raise_failure``). Its ``stage`` is always "prepare": ``service.apply``
reports a failed batch in its result and raises only before the first one, so a failure answer means
nothing was applied. Only the Slack side can meet "unknown" (``stage_of``): the function ran and gave no
answer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from bot.config import Settings
from bot.core.dns.commands import ApplyProgress
from bot.errors import AwsError, ConfigError, OpsbotError, UsageError

REQUEST_KEY = "opsbot_dns"
FUNCTION_PURPOSE = "the DNS mirror function"
# Invoke failures after which the function may have done (part of) its work.
MAY_HAVE_RUN = frozenset({"FunctionTimeout", "FunctionError", "BadAnswer", "NoAnswer", "ReadTimeoutError"})
OPERATIONS = ("status", "preview", "apply", "doctor")

# Called after each batch with the batches done so far (in the mirror function, through the state table:
# an Invoke answers once, at the end).
ProgressReporter = Callable[[ApplyProgress], None]

log = logging.getLogger("opsbot.dns")

_KINDS: dict[str, type[OpsbotError]] = {"usage": UsageError, "config": ConfigError, "aws": AwsError}


def _kind(error: OpsbotError) -> str:
    return next((kind for kind, cls in _KINDS.items() if isinstance(error, cls)), "error")


def failure(error: OpsbotError, stage: str) -> dict[str, Any]:
    return {"ok": False, "stage": stage, "kind": _kind(error), "error": error.message, "hint": error.hint}


def raise_failure(answer: Mapping[str, Any]) -> None:
    """Raise the error an answer reports, as the class it had (usage errors stay usage errors), with the
    stage it happened in (``stage_of``)."""
    if answer.get("ok"):
        return
    cls = _KINDS.get(str(answer.get("kind")), OpsbotError)
    hint = answer.get("hint")
    error = cls(
        str(answer.get("error") or "The DNS mirror function failed."), hint=str(hint) if hint else None
    )
    error.dns_stage = str(answer.get("stage") or "prepare")  # type: ignore[attr-defined]
    raise error


def stage_of(error: BaseException) -> str:
    """Where a request failed: "prepare" (nothing was applied) or "unknown" (no answer came, or the work
    failed unexpectedly: an apply may be partly done)."""
    if not isinstance(error, OpsbotError):
        return "unknown"
    return str(getattr(error, "dns_stage", "prepare"))


def _text(request: Mapping[str, Any], key: str, *, required: bool = False) -> str:
    value = request.get(key)
    if value is None or value == "":
        if required:
            raise UsageError(f"The DNS request lacks {key}.")
        return ""
    if not isinstance(value, str):
        raise UsageError(f"The DNS request's {key} must be text.")
    return value


def _zone(settings: Settings, request: Mapping[str, Any]) -> Any:
    from bot.core.dns.commands import configured_zones
    from bot.core.dns.config import find_zone

    return find_zone(
        configured_zones(settings),
        _text(request, "domain", required=True),
        zone_id=_text(request, "zone_id") or None,
    )


def handle(
    request: Any, settings: Settings, *, on_progress: ProgressReporter | None = None
) -> dict[str, Any]:
    """Run one request; never raises an OpsbotError (it is the answer). Anything else is a bug."""
    try:
        if not isinstance(request, Mapping) or request.get("op") not in OPERATIONS:
            raise UsageError(f"A DNS request is a JSON object with op one of {', '.join(OPERATIONS)}.")
        op = request["op"]
        if op == "status":
            return _status(settings, request)
        if op == "preview":
            return _preview(settings, request)
        if op == "doctor":
            return _doctor(settings, request)
        return _apply(settings, request, on_progress)
    except OpsbotError as error:
        # Nothing was sent to Route 53: service.apply reports a failed batch in its result and raises only
        # before the first batch (the lock), never after one.
        return failure(error, "prepare")


def _state(settings: Settings) -> Any:
    from bot.aws.state import StateTable

    return StateTable(settings.state_table)


def _status(settings: Settings, request: Mapping[str, Any]) -> dict[str, Any]:
    from bot.core.dns.commands import configured_zones, status
    from bot.core.dns.wire import status_to_json

    zones = (_zone(settings, request),) if request.get("domain") else configured_zones(settings)
    return {"ok": True, "zones": [status_to_json(item) for item in status(zones, state=_state(settings))]}


def _doctor(settings: Settings, request: Mapping[str, Any]) -> dict[str, Any]:
    """``/ops doctor``'s read of each zone's wiring (bot.core.dns.doctor); read-only."""
    from bot.core.dns.commands import configured_zones
    from bot.core.dns.doctor import check_zone

    zones = (_zone(settings, request),) if request.get("domain") else configured_zones(settings)
    return {"ok": True, "zones": [check_zone(zone, state=_state(settings)) for zone in zones]}


def _preview(settings: Settings, request: Mapping[str, Any]) -> dict[str, Any]:
    from bot.core.dns.commands import prepare
    from bot.core.dns.wire import preview_to_json

    prepared = prepare(_zone(settings, request), state=_state(settings))
    return {
        "ok": True,
        "domain": prepared.zone.name,
        "empty": prepared.plan.empty,
        "preview": preview_to_json(prepared.preview),
    }


def _apply(
    settings: Settings, request: Mapping[str, Any], on_progress: ProgressReporter | None
) -> dict[str, Any]:
    from bot.core.dns.commands import BatchOutcome, apply, prepare
    from bot.core.dns.wire import preview_to_json, result_to_json

    actor = _text(request, "actor")
    state = _state(settings)
    zone = _zone(settings, request)
    prepared = prepare(zone, state=state)
    if prepared.plan.fingerprint() != request.get("plan"):
        return {
            "ok": True,
            "superseded": True,
            "domain": zone.name,
            "master_serial": prepared.plan.master_serial,
            "preview": preview_to_json(prepared.preview),
        }
    outcomes: list[BatchOutcome] = []
    token = _text(request, "progress")
    if on_progress is None and token:
        on_progress = _progress_writer(state, progress_key(zone.state_key, token))
    plan = prepared.plan

    def progress(outcome: BatchOutcome, total: int) -> None:
        outcomes.append(outcome)
        if on_progress is not None:
            on_progress(ApplyProgress(zone.name, plan.counts(), total, tuple(outcomes)))

    result = apply(prepared, state=state, force=bool(request.get("force")), actor=actor, on_progress=progress)
    return {
        "ok": True,
        "superseded": False,
        "domain": zone.name,
        "outcome": result.outcome,
        "result": result_to_json(result),
    }


# -- progress of an apply run in the mirror function ---------------------------------------------------
#
# An Invoke answers once, at the end; the preview message should still move batch by batch. So the mirror
# writes each batch's progress to one state-table item named by the request (``progress``, a token the
# Slack side chose) under the zone's ``sync#`` partition, which its IAM condition already allows, and the
# Slack side reads that item about once a second while it waits for the answer.

PROGRESS_TTL_SECONDS = 3600
PROGRESS_POLL_SECONDS = 1.0


def progress_key(state_key: str, token: str) -> tuple[str, str]:
    return f"sync#{state_key}", f"progress#{token}"


def _progress_writer(state: Any, key: tuple[str, str]) -> ProgressReporter:
    from bot.core.dns.wire import progress_to_json

    def write(progress: ApplyProgress) -> None:
        try:
            data = {
                "number": progress.number,
                "total": progress.batches,
                "progress": json.dumps(progress_to_json(progress), separators=(",", ":")),
            }
            state.put(*key, data, ttl_seconds=PROGRESS_TTL_SECONDS)
        except OpsbotError as error:  # progress is a courtesy: the apply goes on without it
            log.warning("DNS apply progress not recorded: %s", error)

    return write


def _invoke_watching(
    settings: Settings,
    request: dict[str, Any],
    state_key: str,
    on_progress: ProgressReporter,
    deadline: float | None,
) -> dict[str, Any]:
    """Invoke the mirror function for an apply and pass on its progress while waiting for the answer,
    until ``deadline`` (a ``time.monotonic()`` value: the Slack function must still say what happened)."""
    import threading
    import time
    import uuid

    from bot.aws.functions import invoke
    from bot.core.dns.wire import progress_from_json

    token = uuid.uuid4().hex
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def call() -> None:
        try:
            outcome["answer"] = invoke(
                settings.dns_function, {REQUEST_KEY: {**request, "progress": token}}, purpose=FUNCTION_PURPOSE
            )
        except BaseException as error:  # re-raised in the caller's thread
            outcome["error"] = error
        finally:
            done.set()

    import contextvars

    # In this request's context: the invocation carries its account and person (bot.aws.targets).
    threading.Thread(
        target=contextvars.copy_context().run, args=(call,), name="dns-apply-invoke", daemon=True
    ).start()
    key, shown = progress_key(state_key, token), 0
    while not done.wait(PROGRESS_POLL_SECONDS):
        if deadline is not None and time.monotonic() >= deadline:
            raise AwsError(
                f"{FUNCTION_PURPOSE.capitalize()} ({settings.dns_function}) did not answer in the time this "
                "request has left.",
                code="NoAnswer",
                hint="Its log says how far it got.",
            )
        try:
            item = _read_progress(settings.state_table, key)
            number = int(item.get("number", 0)) if item else 0
            if item and number > shown:
                shown = number
                on_progress(progress_from_json(json.loads(str(item["progress"]))))
        except Exception as error:  # progress is a courtesy: the answer must still be waited for
            log.warning("DNS apply progress not shown: %s", error)
    if "error" in outcome:
        raise outcome["error"]
    answer: dict[str, Any] = outcome["answer"]
    return answer


def _read_progress(table: str, key: tuple[str, str]) -> dict[str, Any] | None:
    """One short read: a slow state table must not hold up the wait for the answer."""
    from bot.aws.clients import own_client
    from bot.aws.dynamo import from_item, to_item
    from bot.aws.errors import aws_errors

    with aws_errors(resource=f"state table {table}"):
        raw = (
            own_client("dynamodb", attempts=1, connect_timeout=1, read_timeout=2)
            .get_item(TableName=table, Key=to_item({"pk": key[0], "sk": key[1]}), ConsistentRead=True)
            .get("Item")
        )
    return from_item(raw) if raw else None


def handle_event(event: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """The mirror function's side: one request from the Slack function, logged as one JSON line."""
    from bot.aws.clients import use_target
    from bot.aws.targets import WIRE_KEY, from_wire

    request = event.get(REQUEST_KEY)
    # The Slack request's account and person (an apply changes, everything else reads).
    mutating = isinstance(request, Mapping) and request.get("op") == "apply"
    try:
        target = from_wire(settings, event.get(WIRE_KEY), mutating=mutating)
    except OpsbotError as error:
        return failure(error, "prepare")
    with use_target(target):
        answer = handle(request, settings)
    summary = {
        key: request.get(key)
        for key in ("op", "domain", "zone_id", "actor", "force")
        if isinstance(request, Mapping)
    }
    summary |= {
        key: answer.get(key) for key in ("ok", "outcome", "superseded", "stage", "error") if key in answer
    }
    log.info(json.dumps({"dns_request": summary}, default=str))
    return answer


def run(
    settings: Settings,
    request: dict[str, Any],
    *,
    on_progress: ProgressReporter | None = None,
    state_key: str = "",
    deadline: float | None = None,
) -> dict[str, Any]:
    """The Slack side: ``handle`` here, or in the mirror function when OPSBOT_DNS_FUNCTION names it.

    Raises the request's failure as the OpsbotError it was (see ``stage_of``); returns a successful answer.
    ``state_key`` (the zone's) lets an apply in the mirror function report its progress; ``deadline``
    bounds the wait for it."""
    if not settings.dns_function:
        answer = handle(request, settings, on_progress=on_progress)
    else:
        from bot.aws.errors import error_code
        from bot.aws.functions import invoke

        try:
            if request.get("op") == "apply" and on_progress is not None and state_key:
                answer = _invoke_watching(settings, request, state_key, on_progress, deadline)
            else:
                answer = invoke(settings.dns_function, {REQUEST_KEY: request}, purpose=FUNCTION_PURPOSE)
        except OpsbotError as error:
            # The function ran, or may have, and gave no answer: an apply may have begun. Refused before
            # it ran (permission, no such function, throttled, no connection): nothing happened.
            ran = error_code(error) in MAY_HAVE_RUN
            error.dns_stage = "unknown" if ran and request.get("op") == "apply" else "prepare"  # type: ignore[attr-defined]
            raise
    raise_failure(answer)
    return answer
